//! The node's HTTP server, assembled from actix-http and actix-server
//! rather than actix-web's `HttpServer`, for one reason: a WebSocket must
//! leave the HTTP/1 dispatcher once its `101` is written.
//!
//! Inside the dispatcher, every socket keeps two 8 KiB buffers, a task and
//! two channels for its whole life: 16 of the 24 KiB an idle conversation
//! cost (docs/benchmarks.md, memory). Here, a request that asks to upgrade
//! to a WebSocket goes to [`takeover`]: it runs the same actix-web `App`
//! (same routes, middleware and errors), and when the handler answered
//! `101` with a [`Takeover`] attached, writes the `101`, takes the socket
//! out of the dispatcher, and hands it over.
//! Any other answer is written as it is and the connection closes.

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::{h1, ConnectionType, HttpService, Request, StatusCode};
use actix_server::Server;
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt,
};
use actix_web::dev::{AppConfig, ServiceResponse};
use actix_web::{App, Error, HttpResponse};
use bytes::BytesMut;
use futures_util::SinkExt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Attached to a `101` answer (in its extensions): what runs on the
/// socket, and on what the client sent behind its request, once the answer
/// is written.
pub struct Takeover(Box<dyn FnOnce(TcpStream, BytesMut)>);

impl Takeover {
    pub fn new(run: impl FnOnce(TcpStream, BytesMut) + 'static) -> Self {
        Self(Box::new(run))
    }
}

/// Connections waiting to be accepted, per listener: enough for a
/// reconnect storm of thousands of sessions at once.
const BACKLOG: u32 = 4096;

/// How the server runs: which address, how many HTTP workers.
pub struct Listen {
    pub addr: SocketAddr,
    pub workers: usize,
    /// Run on each worker's thread as it starts (the overload lag probe).
    pub on_worker_start: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

/// Binds `listen` and builds the server (not yet running). `app` makes one
/// `App` per worker; it is called twice per worker: once for plain
/// requests, once for upgrades.
pub fn bind<F, T, B>(listen: &Listen, app: F) -> std::io::Result<(Server, SocketAddr)>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let listener = listener(listen.addr)?;
    let addr = listener.local_addr()?;
    let on_worker_start = listen.on_worker_start.clone();
    let server = Server::build()
        .workers(listen.workers.max(1))
        .disable_signals()
        .shutdown_timeout(5)
        .listen("switchboard-http", listener, move || {
            if let Some(started) = &on_worker_start {
                started();
            }
            let plain = app().into_factory().map_err(|error| error.error_response());
            let upgrades = app.clone();
            HttpService::build()
                // Chat frames are small and latency-bound: without this,
                // Nagle's algorithm holds a frame for up to 40 ms behind an
                // unacked one.
                .tcp_nodelay(true)
                // actix-web's `HttpServer` defaults.
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .upgrade(fn_factory(move || {
                    let factory = upgrades().into_factory();
                    async move {
                        let app = Rc::new(factory.new_service(AppConfig::default()).await?);
                        Ok::<_, ()>(fn_service(move |(request, framed)| {
                            takeover(Rc::clone(&app), request, framed)
                        }))
                    }
                }))
                // The default `AppConfig` only names a host for URL
                // generation, which no route uses.
                .finish(map_config(plain, |()| AppConfig::default()))
                .tcp()
        })?
        .run();
    Ok((server, addr))
}

/// A listening socket with address reuse (a restarted node binds its port
/// at once) and a deep backlog.
fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)?.into_std()
}

/// Answers a request that asked to upgrade: through the `App`, like any
/// request; a `101` carrying a [`Takeover`] then gets the socket.
async fn takeover<S, B>(
    app: Rc<S>,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    let response: HttpResponse = match app.call(request).await {
        Ok(response) => response.into_parts().1.map_into_boxed_body(),
        Err(error) => error.error_response(),
    };
    let (mut head, body) = actix_http::Response::from(response).into_parts();
    let takeover = head.extensions_mut().remove::<Takeover>();
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(Takeover(run))) = (head.status(), takeover) {
        framed
            .send(h1::Message::Item((head, BodySize::None)))
            .await?;
        let parts = framed.into_parts();
        run(parts.io, parts.read_buf);
        return Ok(());
    }
    // Refused (or not ours): the whole answer, then the connection closes,
    // as the client asked for a protocol switch that did not happen.
    let body = actix_http::body::to_bytes(body)
        .await
        .map_err(|error| actix_web::error::ErrorInternalServerError(error.to_string()))?;
    head.head_mut().set_connection_type(ConnectionType::Close);
    let length = u64::try_from(body.len()).unwrap_or(u64::MAX);
    framed
        .send(h1::Message::Item((head, BodySize::Sized(length))))
        .await?;
    if !body.is_empty() {
        framed.send(h1::Message::Chunk(Some(body))).await?;
    }
    Ok(())
}
