//! `echo-server`: a plain WebSocket echo through the same stack the node
//! uses (the gateway's server and WebSocket layer: actix-http, the socket
//! taken over after the `101`, the same frame limits and buffers; HTTP
//! workers as configured), so its latency is the floor a chat message's
//! two hops sit on.

use actix_web::{web, App, HttpRequest, HttpResponse};
use std::net::SocketAddr;
use switchboard_gateway::server::{self, Listen};
use switchboard_gateway::websocket;
use tokio_tungstenite::tungstenite::Message;

async fn echo(req: HttpRequest) -> actix_web::Result<HttpResponse> {
    let mut answer = websocket::handshake(&req, None)
        .map_err(|error| actix_web::error::ErrorBadRequest(error.to_string()))?;
    websocket::hand_over(&mut answer, |mut socket| async move {
        while let Some(Ok(message)) = socket.receive().await {
            let echoed = match message {
                Message::Text(_) | Message::Binary(_) => socket.buffer(message),
                // Pings are answered by the WebSocket as it reads.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
                Message::Close(_) => break,
            };
            if echoed.is_err() || socket.flush().await.is_err() {
                break;
            }
        }
        let _ = socket.close(None).await;
    });
    Ok(answer)
}

/// Serves `/ws` on `listen` until the process is killed.
pub fn serve(listen: SocketAddr, workers: usize) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let listen = Listen {
            addr: listen,
            workers,
            on_worker_start: None,
        };
        let (server, _) = server::bind(&listen, || App::new().route("/ws", web::get().to(echo)))?;
        server.await
    })
}
