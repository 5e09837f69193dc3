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
use crate::throttle::AddressThrottle;
use crate::{customers, feed, observability, records, rest, session, web as ui};

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
    pub trust_forwarded_for: bool,
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
            "chats",
        ),
        login_throttle: AddressThrottle::per_minute(
            settings.limits.logins_per_minute_per_address,
            "login attempts",
        ),
        trust_forwarded_for: settings.server.trust_forwarded_for,
        trace_commands: settings.telemetry.otlp_endpoint.is_some(),
        password_checks: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |cores| cores.get()),
        ),
        drain,
    });
    let shared = state.clone();
    let listen = crate::server::Listen {
        addr: settings.server.listen,
        workers,
    };
    let app = move || {
        App::new()
            .wrap(cors())
            .app_data(shared.clone())
            .configure(routes)
    };
    let (server, addr) = crate::server::bind(&listen, app).map_err(|source| StartError::Bind {
        addr: listen.addr,
        source,
    })?;
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(Running {
        addr,
        server: handle,
        state,
    })
}

/// Cross-origin access: the chat widget runs on customers' own sites and
/// loads its script, styles and API from this node. Any origin is allowed:
/// every API call carries a bearer token (never a cookie), so a foreign page
/// can do nothing it does not already hold a token for.
fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::AUTHORIZATION,
        ])
        .max_age(3600)
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
            .route("/agent/login", web::post().to(rest::login))
            .route("/chats", web::post().to(rest::start_chat))
            .route("/ws", web::get().to(session::connect))
            .route("/queues", web::get().to(rest::queues))
            .route("/agents", web::get().to(rest::agents))
            .route("/wrapup-reasons", web::get().to(rest::wrap_up_reasons))
            .route("/idle-reasons", web::get().to(rest::idle_reasons))
            .route("/templates", web::get().to(rest::templates))
            .route("/conversations", web::get().to(records::search))
            .route("/conversations/export", web::get().to(records::export))
            .route("/conversations/{id}", web::get().to(rest::conversation))
            .route(
                "/conversations/{id}/transcript",
                web::get().to(records::transcript),
            )
            .route("/customers/{id}", web::get().to(customers::profile))
            .route("/customers/{id}", web::delete().to(customers::erase))
            .route(
                "/customers/{id}/conversations",
                web::get().to(customers::conversations),
            )
            .route("/stats", web::get().to(rest::stats))
            .route("/events", web::get().to(feed::events))
            .route("/admin/api-keys", web::post().to(feed::create_api_key))
            .route("/admin/api-keys", web::get().to(feed::api_keys))
            .route(
                "/admin/api-keys/{id}",
                web::delete().to(feed::revoke_api_key),
            )
            .route("/admin/webhooks", web::post().to(feed::create_webhook))
            .route("/admin/webhooks", web::get().to(feed::webhooks))
            .route(
                "/admin/webhooks/{id}",
                web::delete().to(feed::delete_webhook),
            )
            .route(
                "/admin/webhooks/{id}/deliveries",
                web::get().to(feed::deliveries),
            )
            .route("/openapi.json", web::get().to(rest::openapi))
            .default_service(web::to(rest::not_found)),
    )
    .route("/healthz", web::get().to(rest::healthz))
    .route("/readyz", web::get().to(rest::readyz))
    .route("/metrics", web::get().to(rest::metrics))
    .route("/", web::get().to(ui::desktop))
    .route("/supervisor", web::get().to(ui::supervisor))
    .route("/demo", web::get().to(ui::demo))
    .route("/widget.js", web::get().to(ui::widget))
    .route("/assets/{path:.*}", web::get().to(ui::asset));
}
