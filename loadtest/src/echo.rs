//! `echo-server`: a plain WebSocket echo through the same stack the node
//! uses (actix-web 4 + actix-ws, the same frame limits, HTTP workers as
//! configured), so its latency is the floor a chat message's two hops sit on.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::AggregatedMessage;
use std::net::SocketAddr;

const MAX_FRAME_BYTES: usize = 64 * 1024;

async fn echo(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let mut stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = stream.recv().await {
            let sent = match message {
                AggregatedMessage::Text(text) => session.text(text).await,
                AggregatedMessage::Binary(bytes) => session.binary(bytes).await,
                AggregatedMessage::Ping(payload) => session.pong(&payload).await,
                AggregatedMessage::Pong(_) => Ok(()),
                AggregatedMessage::Close(_) => break,
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

/// Serves `/ws` on `listen` until the process is killed.
pub fn serve(listen: SocketAddr, workers: usize) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().route("/ws", web::get().to(echo)))
            .workers(workers.max(1))
            .bind(listen)?
            .run()
            .await
    })
}
