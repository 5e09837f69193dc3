//! Assembles a node: the engine, the HTTP server and its routes, and the
//! drain signal. Used by the binary and by the tests, which start real
//! servers on free loopback ports.

use actix_web::dev::ServerHandle;
use actix_web::{web, App};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use switchboard_engine::storage::Database;
use switchboard_engine::Engine;
use tokio::sync::watch;

use crate::api_error::{json_error, path_error, query_error};
use crate::auth::{AuthError, Credentials, TokenSigner};
use crate::session::SessionLimits;
use crate::settings::Settings;
use crate::throttle::{AccountThrottle, AddressThrottle, TrustedProxies};
use crate::{customers, feed, observability, records, reports, rest, session, web as ui};

/// Largest REST body accepted (a chat start with its first message).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared by every request and session of a node.
pub struct AppState {
    pub engine: Engine,
    pub credentials: Credentials,
    pub signer: TokenSigner,
    /// `[widget] identity_secret`: checks customers' signed identities.
    pub identity_secret: Option<crate::settings::TokenSecret>,
    pub metrics: PrometheusHandle,
    pub limits: SessionLimits,
    /// Chats started per client address.
    pub chat_throttle: AddressThrottle,
    /// Login attempts per client address.
    pub login_throttle: AddressThrottle,
    /// Login attempts per account, whichever address they come from.
    pub account_throttle: AccountThrottle,
    pub trusted_proxies: TrustedProxies,
    /// Export a span per WebSocket command (an OTLP endpoint is set).
    pub trace_commands: bool,
    /// argon2 verifications running at once: each takes ~19 MiB and a
    /// blocking thread, so a burst of logins cannot balloon the node.
    pub password_checks: tokio::sync::Semaphore,
    /// Flips to `true` once when the node starts draining.
    drain: watch::Sender<bool>,
}

impl AppState {
    pub fn is_draining(&self) -> bool {
        *self.drain.borrow()
    }

    pub fn drain_signal(&self) -> watch::Receiver<bool> {
        self.drain.subscribe()
    }

    /// Stop taking sessions; every open session gets `reconnect` and closes.
    pub fn start_drain(&self) {
        self.drain.send_replace(true);
    }

    /// Gauges read at scrape time.
    pub fn observe_gauges(&self) {
        metrics::gauge!("switchboard_conversations_on_node")
            .set(self.engine.live_conversations() as f64);
        metrics::gauge!("switchboard_overload_shed_ratio").set(self.engine.admission().shed());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("credentials: {0}")]
    Credentials(#[from] AuthError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot join the cluster: {0}")]
    Cluster(switchboard_engine::EngineError),
    #[error("storage.database_url: {0}")]
    Database(#[from] switchboard_engine::storage::StorageError),
    #[error("cannot resume from the database: {0}")]
    Resume(switchboard_engine::EngineError),
}

/// A running node.
pub struct Running {
    pub addr: SocketAddr,
    pub server: ServerHandle,
    /// Where `/metrics` is served (`[server] metrics_listen`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    metrics_server: Option<ServerHandle>,
    pub state: web::Data<AppState>,
}

impl Running {
    /// Drains sessions, then stops the HTTP server.
    /// Drains: sessions are told to reconnect elsewhere, the node's actors
    /// are handed to the other nodes (in a cluster), then the server stops.
    pub async fn shutdown(&self) {
        self.state.start_drain();
        self.state.engine.resign().await;
        self.server.stop(true).await;
        if let Some(metrics) = &self.metrics_server {
            metrics.stop(true).await;
        }
    }
}

/// Options that are not configuration: how many HTTP workers, and the
/// session heartbeat (tests shorten it).
#[derive(Clone, Debug)]
pub struct StartOptions {
    pub workers: usize,
    pub ping_interval: std::time::Duration,
    pub client_timeout: std::time::Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        let limits = SessionLimits::default();
        Self {
            workers: crate::settings::auto_workers(),
            ping_interval: limits.ping_interval,
            client_timeout: limits.client_timeout,
        }
    }
}

/// Starts a node. Must run inside an actix `System` (the engine's actors
/// live on its arbiters). The HTTP server runs until stopped.
pub async fn start(settings: &Settings, options: StartOptions) -> Result<Running, StartError> {
    let workers = options.workers.max(1);
    let database = Database::open(settings.database_config()).await?;
    tracing::info!(database = database.url(), "system of record open");
    let engine = match settings.cluster_config() {
        None => Engine::start_embedded(settings.engine_config(), database, workers)
            .await
            .map_err(StartError::Resume)?,
        Some(cluster) => {
            Engine::start_cluster(settings.engine_config(), cluster, database, workers)
                .await
                .map_err(StartError::Cluster)?
        }
    };
    engine.keep_retention(settings.storage.retention_days);
    let (drain, _) = watch::channel(false);
    let state = web::Data::new(AppState {
        engine,
        credentials: Credentials::from_settings(settings)?,
        signer: TokenSigner::from_settings(settings),
        identity_secret: settings.widget.identity_secret.clone(),
        metrics: observability::metrics(),
        limits: SessionLimits {
            commands_per_second: settings.limits.commands_per_second,
            command_burst: settings.limits.command_burst,
            ping_interval: options.ping_interval,
            client_timeout: options.client_timeout,
        },
        chat_throttle: AddressThrottle::per_minute(
            settings.limits.chats_per_minute_per_address,
            "chats from this address",
        ),
        login_throttle: AddressThrottle::per_minute(
            settings.limits.logins_per_minute_per_address,
            "login attempts from this address",
        ),
        account_throttle: AccountThrottle::per_minute(
            settings.limits.logins_per_minute_per_account,
            "login attempts for this account",
        ),
        trusted_proxies: settings.server.trusted_proxies.clone(),
        trace_commands: settings.telemetry.otlp_endpoint.is_some(),
        password_checks: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |cores| cores.get()),
        ),
        drain,
    });
    let shared = state.clone();
    let allowed_origins = std::sync::Arc::new(settings.widget.allowed_origins.clone());
    let admission = std::sync::Arc::downgrade(state.engine.admission());
    let listen = crate::server::Listen {
        addr: settings.server.listen,
        workers,
        // Each HTTP worker's lag is how long a frame read from a socket
        // waits for its thread: part of the node's overload signal.
        on_worker_start: Some(std::sync::Arc::new(move || {
            actix_web::rt::spawn(switchboard_engine::admission::Admission::probe(
                admission.clone(),
            ));
        })),
    };
    let app = move || {
        App::new()
            .wrap(crate::browser_policy::cors(allowed_origins.clone()))
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .app_data(shared.clone())
            .configure(routes)
    };
    let (server, addr) = crate::server::bind(&listen, app).map_err(|source| StartError::Bind {
        addr: listen.addr,
        source,
    })?;
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let (metrics_addr, metrics_server) = match settings.server.metrics_listen {
        None => (None, None),
        Some(addr) => {
            let (bound, server) = serve_metrics(addr, state.clone())?;
            (Some(bound), Some(server))
        }
    };
    Ok(Running {
        addr,
        server: handle,
        metrics_addr,
        metrics_server,
        state,
    })
}

/// `/metrics` on a listener of its own (loopback by default): it names
/// queues and agents and counts the traffic, which the clients' listener
/// has no business showing. One worker: a scrape is cheap and rare.
fn serve_metrics(
    addr: SocketAddr,
    state: web::Data<AppState>,
) -> Result<(SocketAddr, ServerHandle), StartError> {
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(rest::metrics))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .map_err(|source| StartError::Bind { addr, source })?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((bound, handle))
}

/// Every route of a node.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .app_data(web::PathConfig::default().error_handler(path_error))
    .service(
        web::scope("/api/v1")
            .service(resource("/agent/login", "POST").route(web::post().to(rest::login)))
            .service(resource("/chats", "POST").route(web::post().to(rest::start_chat)))
            .service(resource("/ws", "GET").route(web::get().to(session::connect)))
            .service(resource("/queues", "GET").route(web::get().to(rest::queues)))
            .service(resource("/agents", "GET").route(web::get().to(rest::agents)))
            .service(resource("/wrapup-reasons", "GET").route(web::get().to(rest::wrap_up_reasons)))
            .service(resource("/idle-reasons", "GET").route(web::get().to(rest::idle_reasons)))
            .service(resource("/templates", "GET").route(web::get().to(rest::templates)))
            .service(resource("/conversations", "GET").route(web::get().to(records::search)))
            .service(resource("/conversations/export", "GET").route(web::get().to(records::export)))
            .service(
                resource("/conversations/{id}", "GET").route(web::get().to(rest::conversation)),
            )
            .service(
                resource("/conversations/{id}/transcript", "GET")
                    .route(web::get().to(records::transcript)),
            )
            .service(
                resource("/customers/{id}", "GET, DELETE")
                    .route(web::get().to(customers::profile))
                    .route(web::delete().to(customers::erase)),
            )
            .service(
                resource("/customers/{id}/conversations", "GET")
                    .route(web::get().to(customers::conversations)),
            )
            .service(resource("/stats", "GET").route(web::get().to(rest::stats)))
            .service(resource("/events", "GET").route(web::get().to(feed::events)))
            .service(resource("/reports/queues", "GET").route(web::get().to(reports::queues)))
            .service(resource("/reports/agents", "GET").route(web::get().to(reports::agents)))
            .service(
                resource("/admin/api-keys", "GET, POST")
                    .route(web::post().to(feed::create_api_key))
                    .route(web::get().to(feed::api_keys)),
            )
            .service(
                resource("/admin/api-keys/{id}", "DELETE")
                    .route(web::delete().to(feed::revoke_api_key)),
            )
            .service(
                resource("/admin/webhooks", "GET, POST")
                    .route(web::post().to(feed::create_webhook))
                    .route(web::get().to(feed::webhooks)),
            )
            .service(
                resource("/admin/webhooks/{id}", "DELETE")
                    .route(web::delete().to(feed::delete_webhook)),
            )
            .service(
                resource("/admin/webhooks/{id}/deliveries", "GET")
                    .route(web::get().to(feed::deliveries)),
            )
            .service(resource("/openapi.json", "GET").route(web::get().to(rest::openapi)))
            .default_service(web::to(rest::not_found)),
    )
    .service(resource("/healthz", "GET").route(web::get().to(rest::healthz)))
    .service(resource("/readyz", "GET").route(web::get().to(rest::readyz)))
    .service(resource("/", "GET").route(web::get().to(ui::desktop)))
    .service(resource("/supervisor", "GET").route(web::get().to(ui::supervisor)))
    .service(resource("/supervisor/reports", "GET").route(web::get().to(ui::reports)))
    .service(resource("/demo", "GET").route(web::get().to(ui::demo)))
    .service(resource("/widget.js", "GET").route(web::get().to(ui::widget)))
    .service(resource("/assets/{path:.*}", "GET").route(web::get().to(ui::asset)));
}

/// A path and the methods it takes (`allow`, as the `Allow` header says
/// them): any other method gets `405 method_not_allowed` with `Allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || rest::method_not_allowed(allow)))
}
