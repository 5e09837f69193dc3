//! The WebSocket under a session: the handshake's answer, and the framing
//! on the socket once the server has handed it over
//! ([`crate::server::Takeover`]). Apart from the session so that the load
//! harness's echo floor runs exactly this layer.

use actix_web::{HttpRequest, HttpResponse};
use futures_util::FutureExt;
use std::future::Future;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::server::Takeover;

pub use actix_http::ws::HandshakeError;

/// A server-side WebSocket on a taken-over socket.
pub type Socket = WebSocketStream<TcpStream>;

/// Largest frame a client may send (a 4,000-character message is far less).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Bytes read from the socket at a time. A chat frame is a few hundred
/// bytes; the buffer stays allocated for the socket's life, so it is kept
/// small (a long message takes a few reads).
const READ_BUFFER_BYTES: usize = 1024;

/// Frames queued for one write: above this, writing starts before the flush.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Checks the handshake of `req`; the `101` answer (naming `subprotocol`,
/// when the client asked for one). Nothing runs on it until [`hand_over`].
pub fn handshake(
    req: &HttpRequest,
    subprotocol: Option<&'static str>,
) -> Result<HttpResponse, HandshakeError> {
    let mut answer = actix_http::ws::handshake(req.head())?;
    if let Some(subprotocol) = subprotocol {
        answer.insert_header((actix_web::http::header::SEC_WEBSOCKET_PROTOCOL, subprotocol));
    }
    Ok(HttpResponse::from(answer.finish()).map_into_boxed_body())
}

/// Attaches `run` to a `101` answer: once the answer is written, `run`
/// gets the WebSocket, as a task on the worker that took the connection.
pub fn hand_over<F, Fut>(answer: &mut HttpResponse, run: F)
where
    F: FnOnce(Socket) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    answer
        .extensions_mut()
        .insert(Takeover::new(move |io, read| {
            // What the client sent right behind its handshake was read with
            // it: the WebSocket starts from there.
            let mut opening = Box::pin(WebSocketStream::from_partially_read(
                io,
                read.to_vec(),
                Role::Server,
                Some(config()),
            ));
            // Opening waits for nothing, so it is done here: the task then
            // holds the session alone, not the opening beside it
            // (docs/benchmarks.md, memory).
            match (&mut opening).now_or_never() {
                Some(socket) => {
                    actix_web::rt::spawn(run(socket));
                }
                None => {
                    actix_web::rt::spawn(async move { run(opening.await).await });
                }
            }
        }));
}
