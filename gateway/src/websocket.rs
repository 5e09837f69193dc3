//! The WebSocket under a session: the handshake's answer, and the framing
//! on the socket once the server has handed it over
//! ([`crate::server::Takeover`]). Apart from the session so that the load
//! harness's echo floor runs exactly this layer.

use actix_web::{HttpRequest, HttpResponse};
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Message};

use crate::server::Takeover;

pub use actix_http::ws::HandshakeError;

/// Largest frame a client may send (a 4,000-character message is far less).
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Bytes read from the socket at a time. A chat frame is a few hundred
/// bytes; the buffer stays allocated for the socket's life, so it is kept
/// small (a long message takes a few reads).
const READ_BUFFER_BYTES: usize = 1024;

/// Frames queued for one write: above this, writing starts before the flush.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Most a socket may hold unwritten (a client that stops reading): past
/// it, sending fails and the session ends. An agent's `hello` with all its
/// conversations is far less.
const MAX_UNWRITTEN_BYTES: usize = 8 * 1024 * 1024;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_write_buffer_size(MAX_UNWRITTEN_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// A server-side WebSocket on a taken-over socket: tungstenite's protocol
/// over the tokio socket. Frames are buffered without waiting
/// ([`Socket::buffer`]); only reading and flushing wait, for readiness. A
/// session's future then carries no write futures, and a burst of frames
/// leaves in one write.
pub struct Socket {
    io: TcpStream,
    protocol: WebSocketContext,
}

/// The socket as tungstenite sees it: reads and writes that never wait
/// (`WouldBlock` when the socket is not ready, with `cx` woken once it is).
/// Through tokio's `poll_read`, a read shorter than the buffer marks the
/// socket drained, so the next read waits for readiness rather than
/// making a system call that would only say `EAGAIN` (one per frame read).
struct Polled<'a, 'b> {
    io: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
}

impl Read for Polled<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(read) => read.map(|()| buf.filled().len()),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Polled<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(written) => written,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(error: &Error) -> bool {
    matches!(error, Error::Io(error) if error.kind() == io::ErrorKind::WouldBlock)
}

/// A message that cannot be sent: the socket is closed, or holds too much
/// unwritten already.
#[derive(Debug, thiserror::Error)]
#[error("cannot send: {0}")]
pub struct Unsendable(Box<Error>);

impl Socket {
    /// `read`: what the client sent behind its handshake, already read.
    fn new(io: TcpStream, read: Vec<u8>) -> Self {
        Self {
            io,
            protocol: WebSocketContext::from_partially_read(read, Role::Server, Some(config())),
        }
    }

    /// The next message; `None` once the connection is closed. Pings and
    /// closes are answered as they are read. Cancel-safe: a partial frame
    /// stays buffered.
    pub fn receive(&mut self) -> impl Future<Output = Option<Result<Message, Error>>> + '_ {
        // A poll function rather than an `async fn` awaiting `readable()`:
        // the future is then one pointer, not a readiness waiter, in every
        // idle session (docs/benchmarks.md, memory).
        std::future::poll_fn(move |cx| self.poll_receive(cx))
    }

    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let io = &mut self.io;
        match self.protocol.read(&mut Polled { io, cx }) {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            // `cx` is woken when there is more to read.
            Err(error) if would_block(&error) => Poll::Pending,
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    /// Queues a message for the next [`Socket::flush`] (written at once
    /// when the queue is long). Fails when the socket is closed or holds
    /// [`MAX_UNWRITTEN_BYTES`] already.
    pub fn buffer(&mut self, message: Message) -> Result<(), Unsendable> {
        // Nothing waits on this write: a full socket is left to the flush.
        let cx = &mut Context::from_waker(Waker::noop());
        let io = &mut self.io;
        match self.protocol.write(&mut Polled { io, cx }, message) {
            // Queued; the socket is full for now.
            Err(error) if would_block(&error) => Ok(()),
            written => written.map_err(|error| Unsendable(Box::new(error))),
        }
    }

    /// Writes everything queued (and pending pongs).
    pub fn flush(&mut self) -> impl Future<Output = Result<(), Error>> + '_ {
        std::future::poll_fn(move |cx| self.poll_flush(cx))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let io = &mut self.io;
        match self.protocol.flush(&mut Polled { io, cx }) {
            // `cx` is woken when the socket takes more.
            Err(error) if would_block(&error) => Poll::Pending,
            Ok(()) | Err(Error::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// Sends a close frame (once) and writes it out; the client's answer
    /// comes through [`Socket::receive`].
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        let cx = &mut Context::from_waker(Waker::noop());
        let io = &mut self.io;
        match self.protocol.close(&mut Polled { io, cx }, frame) {
            Err(error) if would_block(&error) => self.flush().await,
            Ok(()) | Err(Error::ConnectionClosed) => Ok(()),
            Err(error) => Err(error),
        }
    }
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
            actix_web::rt::spawn(run(Socket::new(io, read.to_vec())));
        }));
}
