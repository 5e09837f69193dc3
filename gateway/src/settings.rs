//! The gateway's settings: a TOML file (or the built-in demo config) plus
//! `SWITCHBOARD__SECTION__KEY` environment overrides, validated once at start.
//!
//! Loading is split in two so every rule lives in one place:
//! - the file and environment are merged by the `config` crate into
//!   [`RawSettings`], a serde mirror of the TOML that rejects unknown keys and
//!   leaves every value optional;
//! - [`validate`] applies the defaults and every rule, and fails on the first
//!   problem with a message that names the key (`agents[2].queues: ...`).
//!
//! After that a [`Settings`] is known good: the engine gets its part through
//! [`Settings::engine_config`], the auth layer reads the agents' credentials
//! and the token secret, and nothing downstream re-checks configuration.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::PasswordHash;
use serde::Deserialize;
use switchboard_engine::config::{
    AgentConfig, ClusterConfig, EngineConfig, QueueConfig, RoutingConfig, TemplateConfig,
};
use switchboard_engine::events::webhooks::WebhookConfig;
use switchboard_engine::storage::DatabaseConfig;
use switchboard_proto::model::Reason;
use switchboard_proto::validation::RESERVED_CHARACTERS;
use switchboard_proto::{AgentId, NodeId, QueueId, TemplateId, WrapUpReasonId};

/// The config that runs when no file is given: two queues, five agents with
/// plain demo passwords, reasons and templates.
pub const DEMO_CONFIG: &str = include_str!("demo.toml");

/// The token secret `demo.toml` carries. Known to anyone who read the
/// source, so the loader warns whenever it is in use, even from a file.
pub const DEMO_TOKEN_SECRET: &str = "switchboard-demo-token-secret-not-for-production";

/// Environment overrides look like `SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS`.
pub const ENV_PREFIX: &str = "SWITCHBOARD";
/// Separates the prefix, the section and the key in an override's name.
pub const ENV_SEPARATOR: &str = "__";
/// The environment variable naming the config file when `--config` is absent.
pub const CONFIG_PATH_ENV: &str = "SWITCHBOARD_CONFIG";

/// Shortest token secret accepted: HMAC-SHA256 wants at least 256 bits.
pub const MIN_TOKEN_SECRET_BYTES: usize = 32;

/// Placeholders the shipped examples and guides once carried. A secret that
/// contains one was copied, not made.
const PLACEHOLDER_SECRETS: [&str; 3] = ["change-me", "replace-me", "changeme"];

/// Why `secret` is public knowledge, if it is: the demo config's secret, or
/// a placeholder from an example. Refused in a config file; the built-in demo
/// config only warns.
fn known_secret(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    if secret == DEMO_TOKEN_SECRET {
        Some("it is the built-in demo config's secret, published with the source")
    } else if PLACEHOLDER_SECRETS.iter().any(|p| lower.contains(p)) {
        Some("it is a placeholder from an example file")
    } else {
        None
    }
}

/// Refuses a known secret for `key`; `lets` says what anyone could do with
/// it.
fn refuse_known_secret(key: &str, secret: &str, lets: &str) -> Result<(), SettingsError> {
    match known_secret(secret) {
        None => Ok(()),
        Some(which) => Err(SettingsError::invalid(
            key,
            format!(
                "{which}, so anyone who has read it can {lets}; make one with \
                 `switchboard gen-secret` (or `openssl rand -hex 32`)"
            ),
        )),
    }
}

/// A new random secret for `token_secret` or `identity_secret`: 32 bytes
/// from the OS's generator, as 64 hex digits.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Why settings could not be loaded. Every variant's message names the file
/// or the key so an operator can fix it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, a value of the wrong type or an unknown key, as the
    /// `config` crate reports it (with the key when it knows it).
    #[error("{origin}: {source}")]
    Parse {
        origin: String,
        #[source]
        source: config::ConfigError,
    },
    /// A value that parsed but breaks a rule.
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

impl SettingsError {
    fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        SettingsError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Where the settings came from; the first log line says which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: the built-in [`DEMO_CONFIG`].
    Demo,
    /// A TOML file given with `--config` or `SWITCHBOARD_CONFIG`.
    File(PathBuf),
    /// TOML text handed over directly (tests and embedding).
    Text,
}

/// Validated settings. Built only by the loaders, so every value here has
/// passed the rules in [`validate`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub cluster: ClusterSettings,
    pub storage: StorageSettings,
    pub widget: WidgetSettings,
    pub routing: RoutingSettings,
    pub limits: LimitSettings,
    pub stats: StatsSettings,
    /// `[webhooks]`: delivery and which targets are allowed.
    pub webhooks: WebhookConfig,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub queues: Vec<QueueSettings>,
    pub agents: Vec<AgentSettings>,
    pub wrap_up_reasons: Vec<Reason>,
    /// The reason an automatic wrap-up records; one of `wrap_up_reasons`.
    pub default_wrap_up_reason: WrapUpReasonId,
    pub idle_reasons: Vec<Reason>,
    pub templates: Vec<TemplateSettings>,
    source: ConfigSource,
    warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Already resolved: `"auto"` in the file becomes a concrete id at load,
    /// so the whole process agrees on one value.
    pub node_id: NodeId,
    /// `trusted_proxies`: the reverse proxies (CIDRs) whose
    /// `X-Forwarded-For` names the client. Empty: the peer is the client.
    pub trusted_proxies: crate::throttle::TrustedProxies,
    /// HTTP worker threads, and as many engine arbiters. Already resolved:
    /// `0` in the file (the default) becomes [`auto_workers`] at load.
    pub workers: usize,
    /// `metrics_listen`: where `/metrics` is served, apart from the clients'
    /// listener (default loopback). `None` (`""`): not served.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// `None`: embedded mode, in-memory bus and store, one process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several clusters can share one Redis.
    pub key_prefix: String,
    /// A node whose heartbeat is older than this counts as dead; its actors
    /// move to the others.
    pub heartbeat_ttl: Duration,
    /// How long a command to an actor on another node waits for its answer.
    pub request_timeout: Duration,
}

/// `[widget]`: what the chat widget's web sites may tell the engine.
#[derive(Clone, Debug, Default)]
pub struct WidgetSettings {
    /// The key web sites sign their customers' identities with (HS256).
    /// `None`: identities are refused (every chat is anonymous).
    pub identity_secret: Option<TokenSecret>,
    /// The sites that embed the widget: they may load its script and call
    /// what it calls (start a chat, its WebSocket) from their pages.
    pub allowed_origins: crate::browser_policy::AllowedOrigins,
}

/// `[storage]`: the system of record.
#[derive(Clone, Debug)]
pub struct StorageSettings {
    /// `sqlite://PATH` (embedded default), `postgres://...` (required in a
    /// cluster), or `memory:` (nothing kept past the process).
    pub database_url: String,
    /// Finished conversations older than this are deleted (0: never).
    pub retention_days: u32,
    pub max_connections: u32,
    /// How long a query waits for a connection (and a start for the
    /// database to answer).
    pub acquire_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct RoutingSettings {
    pub rona_timeout: Duration,
    pub auto_wrap_up: Duration,
    pub default_max_chats: u32,
    /// At most one `queue_status` per waiting customer per interval.
    pub queue_status_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct LimitSettings {
    pub max_message_chars: usize,
    /// Sustained WebSocket commands per second per session before
    /// `rate_limited`.
    pub commands_per_second: std::num::NonZeroU32,
    /// Commands a session may send in a burst above that rate.
    pub command_burst: std::num::NonZeroU32,
    /// Chats one client address may start per minute (0: no limit).
    pub chats_per_minute_per_address: u32,
    /// Login attempts one client address may make per minute (0: no limit).
    pub logins_per_minute_per_address: u32,
    /// Login attempts one account may be tried with per minute, from all
    /// addresses together (0: no limit).
    pub logins_per_minute_per_account: u32,
    /// The standing queue past which the node sheds work (0: never).
    pub overload_target: Duration,
}

#[derive(Clone, Debug)]
pub struct StatsSettings {
    /// Conversations accepted within this time count toward service level.
    pub service_level: Duration,
    /// Abandoned within this wait: a short abandon, left out of service
    /// level.
    pub short_abandon: Duration,
    /// Whose "today" `/api/v1/stats` shows.
    pub time_zone: chrono_tz::Tz,
}

#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub token_secret: TokenSecret,
    pub token_ttl: Duration,
}

/// The HMAC key for tokens. Its `Debug` never prints it, so settings can be
/// logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// `None`: no span export.
    pub otlp_endpoint: Option<String>,
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct QueueSettings {
    pub id: QueueId,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub id: AgentId,
    pub name: String,
    pub username: String,
    pub password: PasswordSetting,
    pub queues: Vec<QueueId>,
    pub max_chats: u32,
    pub roles: Vec<AgentRole>,
}

/// How an agent's password is kept in the config. `Debug` prints neither.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordSetting {
    /// An argon2 PHC string, already checked to parse.
    Hash(String),
    /// Plain text: demos and tests only; the loader warns.
    Plain(String),
}

impl fmt::Debug for PasswordSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSetting::Hash(_) => f.write_str("Hash(<redacted>)"),
            PasswordSetting::Plain(_) => f.write_str("Plain(<redacted>)"),
        }
    }
}

/// What an agent may do: every agent handles chats; a supervisor also sees
/// stats, the supervisor view and every record; an admin may do what a
/// supervisor does, and erase customers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentRole {
    Agent,
    Supervisor,
    Admin,
}

impl AgentRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Agent => "agent",
            AgentRole::Supervisor => "supervisor",
            AgentRole::Admin => "admin",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "agent" => Some(AgentRole::Agent),
            "supervisor" => Some(AgentRole::Supervisor),
            "admin" => Some(AgentRole::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TemplateSettings {
    pub id: TemplateId,
    pub name: String,
    pub text: String,
}

impl Settings {
    /// Loads the file at `config_path`, or the built-in demo config when it is
    /// `None`, then applies overrides from `env` (pass `std::env::vars()` in
    /// the binary, a literal list in tests) and validates the result.
    pub fn load<I, K, V>(config_path: Option<&Path>, env: I) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        match config_path {
            None => Self::load_text(DEMO_CONFIG, ConfigSource::Demo, env),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::load_text(&text, ConfigSource::File(path.to_path_buf()), env)
            }
        }
    }

    /// Like [`Settings::load`] with TOML text instead of a file; for tests and
    /// for embedding the engine.
    pub fn from_toml_str<I, K, V>(toml: &str, env: I) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::load_text(toml, ConfigSource::Text, env)
    }

    fn load_text<I, K, V>(
        toml: &str,
        source: ConfigSource,
        env: I,
    ) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let origin = match &source {
            ConfigSource::Demo => "built-in demo config".to_owned(),
            ConfigSource::File(path) => format!("config file {}", path.display()),
            ConfigSource::Text => "config".to_owned(),
        };
        let env_map: config::Map<String, String> = env
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        let raw: RawSettings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .separator(ENV_SEPARATOR)
                    .source(Some(env_map)),
            )
            .build()
            .and_then(|merged| merged.try_deserialize())
            .map_err(|error| SettingsError::Parse {
                origin,
                source: error,
            })?;
        validate(raw, source)
    }

    /// True when no config file was given and the demo config runs.
    pub fn is_demo(&self) -> bool {
        self.source == ConfigSource::Demo
    }

    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// Things that work but an operator should know (plain passwords, the
    /// demo token secret). The binary logs each one as a warning at start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The part the engine needs. Credentials stay here in the gateway.
    /// How this node joins a cluster; `None` when it runs embedded.
    pub fn cluster_config(&self) -> Option<ClusterConfig> {
        let redis_url = self.cluster.redis_url.clone()?;
        Some(ClusterConfig {
            redis_url,
            key_prefix: self.cluster.key_prefix.clone(),
            heartbeat_ttl: self.cluster.heartbeat_ttl,
            request_timeout: self.cluster.request_timeout,
        })
    }

    /// Where the system of record is, and how to reach it.
    pub fn database_config(&self) -> DatabaseConfig {
        DatabaseConfig {
            max_connections: self.storage.max_connections,
            acquire_timeout: self.storage.acquire_timeout,
            ..DatabaseConfig::new(self.storage.database_url.clone())
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            node_id: self.server.node_id.clone(),
            routing: RoutingConfig {
                rona_timeout: self.routing.rona_timeout,
                auto_wrap_up: self.routing.auto_wrap_up,
                default_max_chats: self.routing.default_max_chats,
                queue_status_interval: self.routing.queue_status_interval,
            },
            max_message_chars: self.limits.max_message_chars,
            overload: switchboard_engine::admission::OverloadConfig {
                target: self.limits.overload_target,
                ..Default::default()
            },
            service_level: self.stats.service_level,
            short_abandon: self.stats.short_abandon,
            time_zone: self.stats.time_zone,
            queues: self
                .queues
                .iter()
                .map(|queue| QueueConfig {
                    id: queue.id.clone(),
                    name: queue.name.clone(),
                })
                .collect(),
            agents: self
                .agents
                .iter()
                .map(|agent| AgentConfig {
                    id: agent.id.clone(),
                    name: agent.name.clone(),
                    queues: agent.queues.clone(),
                    max_chats: agent.max_chats,
                    roles: agent
                        .roles
                        .iter()
                        .map(|role| role.as_str().to_owned())
                        .collect(),
                })
                .collect(),
            wrap_up_reasons: self.wrap_up_reasons.clone(),
            default_wrap_up_reason: self.default_wrap_up_reason.clone(),
            idle_reasons: self.idle_reasons.clone(),
            templates: self
                .templates
                .iter()
                .map(|template| TemplateConfig {
                    id: template.id.clone(),
                    name: template.name.clone(),
                    text: template.text.clone(),
                })
                .collect(),
            webhooks: self.webhooks.clone(),
        }
    }
}

/// The config file path: `--config` wins over `SWITCHBOARD_CONFIG`; an empty
/// value counts as absent. `None` means the demo config.
pub fn resolve_config_path(cli: Option<PathBuf>, env_value: Option<String>) -> Option<PathBuf> {
    cli.filter(|path| !path.as_os_str().is_empty()).or_else(|| {
        env_value
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    })
}

// ---------------------------------------------------------------------------
// The TOML as written. Every field optional so that `validate` decides
// defaults and reports missing keys by their full name; unknown keys are
// refused so a typo is an error, not a silently ignored setting.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of config sections")]
struct RawSettings {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    widget: RawWidget,
    #[serde(default)]
    routing: RawRouting,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    stats: RawStats,
    #[serde(default)]
    webhooks: RawWebhooks,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    telemetry: RawTelemetry,
    #[serde(default)]
    queues: Vec<RawQueue>,
    #[serde(default)]
    agents: Vec<RawAgent>,
    #[serde(default)]
    wrap_up_reasons: Vec<RawReason>,
    #[serde(default)]
    wrap_up: RawWrapUp,
    #[serde(default)]
    idle_reasons: Vec<RawReason>,
    #[serde(default)]
    templates: Vec<RawTemplate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [server] table")]
struct RawServer {
    listen: Option<String>,
    node_id: Option<String>,
    trust_forwarded_for: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    metrics_listen: Option<String>,
    workers: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [cluster] table")]
struct RawCluster {
    redis_url: Option<String>,
    key_prefix: Option<String>,
    heartbeat_ttl_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [widget] table")]
struct RawWidget {
    identity_secret: Option<String>,
    allowed_origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [storage] table")]
struct RawStorage {
    database_url: Option<String>,
    retention_days: Option<u64>,
    max_connections: Option<u64>,
    acquire_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [routing] table")]
struct RawRouting {
    rona_timeout_ms: Option<u64>,
    auto_wrap_up_ms: Option<u64>,
    default_max_chats: Option<u64>,
    queue_status_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [limits] table")]
struct RawLimits {
    max_message_chars: Option<u64>,
    commands_per_second: Option<u64>,
    command_burst: Option<u64>,
    records_kept: Option<u64>,
    chats_per_minute_per_address: Option<u64>,
    logins_per_minute_per_address: Option<u64>,
    logins_per_minute_per_account: Option<u64>,
    overload_target_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [stats] table")]
struct RawStats {
    service_level_s: Option<u64>,
    short_abandon_s: Option<u64>,
    time_zone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [webhooks] table")]
struct RawWebhooks {
    allow_private_targets: Option<bool>,
    timeout_ms: Option<u64>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    batch_max: Option<u64>,
}

/// `[webhooks]`, every value checked.
/// `widget.allowed_origins`: `scheme://host[:port]` each (what a browser
/// sends as `Origin`), or `["*"]` for any site.
fn allowed_origins(
    entries: Vec<String>,
) -> Result<crate::browser_policy::AllowedOrigins, SettingsError> {
    use crate::browser_policy::AllowedOrigins;
    const KEY: &str = "widget.allowed_origins";
    if entries.iter().any(|entry| entry == "*") {
        if entries.len() > 1 {
            return Err(SettingsError::invalid(KEY, "\"*\" (any site) stands alone"));
        }
        return Ok(AllowedOrigins::Any);
    }
    if entries.is_empty() {
        return Ok(AllowedOrigins::None);
    }
    let origins = entries
        .into_iter()
        .map(|entry| {
            let parsed = url::Url::parse(&entry).ok().filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
                    && url.fragment().is_none()
                    && !entry.ends_with('/')
            });
            match parsed {
                Some(url) => Ok(url.origin().ascii_serialization()),
                None => Err(SettingsError::invalid(
                    KEY,
                    format!(
                        "not an origin: {entry:?} (expected scheme://host[:port], e.g. \
                         \"https://www.example.com\", with no path)"
                    ),
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(AllowedOrigins::List(origins))
}

/// `server.trusted_proxies`: CIDRs (`10.0.0.0/8`) or single addresses.
fn trusted_proxies(entries: Vec<String>) -> Result<crate::throttle::TrustedProxies, SettingsError> {
    let nets = entries
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    SettingsError::invalid(
                        "server.trusted_proxies",
                        format!("not an address or CIDR: {entry:?} (expected e.g. \"10.0.0.0/8\")"),
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(crate::throttle::TrustedProxies(nets))
}

fn validate_webhooks(raw: RawWebhooks) -> Result<WebhookConfig, SettingsError> {
    let defaults = WebhookConfig::default();
    let millis = |key: &str, value: Option<u64>, default: Duration| {
        let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        positive(key, value.unwrap_or(default)).map(Duration::from_millis)
    };
    let retry_initial = millis(
        "webhooks.retry_initial_ms",
        raw.retry_initial_ms,
        defaults.retry_initial,
    )?;
    let retry_max = millis(
        "webhooks.retry_max_ms",
        raw.retry_max_ms,
        defaults.retry_max,
    )?;
    if retry_max < retry_initial {
        return Err(SettingsError::invalid(
            "webhooks.retry_max_ms",
            "must be at least webhooks.retry_initial_ms",
        ));
    }
    let batch_max = positive(
        "webhooks.batch_max",
        raw.batch_max.unwrap_or(defaults.batch_max as u64),
    )?;
    if batch_max > 1000 {
        return Err(SettingsError::invalid("webhooks.batch_max", "at most 1000"));
    }
    Ok(WebhookConfig {
        allow_private_targets: raw.allow_private_targets.unwrap_or(false),
        timeout: millis("webhooks.timeout_ms", raw.timeout_ms, defaults.timeout)?,
        retry_initial,
        retry_max,
        batch_max: batch_max as usize,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [auth] table")]
struct RawAuth {
    token_secret: Option<String>,
    token_ttl_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [telemetry] table")]
struct RawTelemetry {
    otlp_endpoint: Option<String>,
    log_format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[queues]] table")]
struct RawQueue {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[agents]] table")]
struct RawAgent {
    id: Option<String>,
    name: Option<String>,
    username: Option<String>,
    password_hash: Option<String>,
    password: Option<String>,
    queues: Option<Vec<String>>,
    max_chats: Option<u64>,
    roles: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a reason table (id, label)")]
struct RawReason {
    id: Option<String>,
    label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [wrap_up] table")]
struct RawWrapUp {
    default_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[templates]] table")]
struct RawTemplate {
    id: Option<String>,
    name: Option<String>,
    text: Option<String>,
}

// ---------------------------------------------------------------------------
// Defaults (DESIGN.md, section Config).

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Loopback: metrics name queues, agents and volumes, not for the public.
const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
const AUTO_NODE_ID: &str = "auto";
const DEFAULT_KEY_PREFIX: &str = "sb";
const MAX_WORKERS: u64 = 256;
const DEFAULT_HEARTBEAT_TTL_MS: u64 = 3000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2000;
const DEFAULT_RONA_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_AUTO_WRAP_UP_MS: u64 = 120_000;
const DEFAULT_QUEUE_STATUS_INTERVAL_MS: u64 = 2_000;
const DEFAULT_MAX_CHATS: u64 = 3;
const DEFAULT_MAX_MESSAGE_CHARS: u64 = 4_000;
const DEFAULT_SERVICE_LEVEL_S: u64 = 30;
/// `[stats] short_abandon_s`: part 2, section 4.
const DEFAULT_SHORT_ABANDON_S: u64 = 5;
const DEFAULT_TOKEN_TTL_S: u64 = 43_200;

// ---------------------------------------------------------------------------
// Validation: defaults, then every rule, first failure wins.

fn validate(raw: RawSettings, source: ConfigSource) -> Result<Settings, SettingsError> {
    let mut warnings = Vec::new();

    let listen_text = raw
        .server
        .listen
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        SettingsError::invalid(
            "server.listen",
            format!("not a socket address: {listen_text:?} (expected e.g. \"127.0.0.1:8080\")"),
        )
    })?;
    let metrics_listen = match raw
        .server
        .metrics_listen
        .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.to_owned())
    {
        text if text.is_empty() => None,
        text => Some(text.parse::<SocketAddr>().map_err(|_| {
            SettingsError::invalid(
                "server.metrics_listen",
                format!(
                    "not a socket address: {text:?} (expected e.g. \"127.0.0.1:9464\", or \"\" \
                     for no metrics)"
                ),
            )
        })?),
    };
    if metrics_listen == Some(listen) && listen.port() != 0 {
        return Err(SettingsError::invalid(
            "server.metrics_listen",
            "must differ from server.listen: metrics are kept off the clients' listener",
        ));
    }
    let node_id_text = raw
        .server
        .node_id
        .unwrap_or_else(|| AUTO_NODE_ID.to_owned());
    let node_id = if node_id_text == AUTO_NODE_ID {
        NodeId::new(auto_node_id())
    } else {
        check_id("server.node_id", &node_id_text)?;
        NodeId::new(node_id_text)
    };

    let workers = match raw.server.workers.unwrap_or(0) {
        0 => auto_workers(),
        n if n > MAX_WORKERS => {
            return Err(SettingsError::invalid(
                "server.workers",
                format!("at most {MAX_WORKERS} (0: half the cores)"),
            ))
        }
        n => n as usize,
    };

    let redis_url = raw.cluster.redis_url.filter(|url| !url.is_empty());
    if let Some(url) = &redis_url {
        const SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
            return Err(SettingsError::invalid(
                "cluster.redis_url",
                "must start with redis://, rediss://, redis+unix:// or unix:// (empty: embedded mode)",
            ));
        }
    }
    let key_prefix = raw
        .cluster
        .key_prefix
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    check_id("cluster.key_prefix", &key_prefix)?;
    let heartbeat_ttl_ms = raw
        .cluster
        .heartbeat_ttl_ms
        .unwrap_or(DEFAULT_HEARTBEAT_TTL_MS);
    if heartbeat_ttl_ms < 300 {
        return Err(SettingsError::invalid(
            "cluster.heartbeat_ttl_ms",
            "must be at least 300 (a heartbeat is renewed every third of it)",
        ));
    }
    let request_timeout_ms = positive(
        "cluster.request_timeout_ms",
        raw.cluster
            .request_timeout_ms
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS),
    )?;

    let storage = validate_storage(raw.storage, redis_url.is_some())?;
    if raw.limits.records_kept.is_some() {
        warnings.push(
            "limits.records_kept is no longer used: every conversation is kept in the database \
             for storage.retention_days"
                .to_owned(),
        );
    }

    let rona_timeout_ms = positive(
        "routing.rona_timeout_ms",
        raw.routing
            .rona_timeout_ms
            .unwrap_or(DEFAULT_RONA_TIMEOUT_MS),
    )?;
    let auto_wrap_up_ms = positive(
        "routing.auto_wrap_up_ms",
        raw.routing
            .auto_wrap_up_ms
            .unwrap_or(DEFAULT_AUTO_WRAP_UP_MS),
    )?;
    let default_max_chats = chat_count(
        "routing.default_max_chats",
        raw.routing.default_max_chats.unwrap_or(DEFAULT_MAX_CHATS),
    )?;
    let queue_status_interval_ms = positive(
        "routing.queue_status_interval_ms",
        raw.routing
            .queue_status_interval_ms
            .unwrap_or(DEFAULT_QUEUE_STATUS_INTERVAL_MS),
    )?;
    let max_message_chars = positive(
        "limits.max_message_chars",
        raw.limits
            .max_message_chars
            .unwrap_or(DEFAULT_MAX_MESSAGE_CHARS),
    )?;
    let max_message_chars = usize::try_from(max_message_chars)
        .map_err(|_| SettingsError::invalid("limits.max_message_chars", "too large"))?;
    let service_level_s = positive(
        "stats.service_level_s",
        raw.stats.service_level_s.unwrap_or(DEFAULT_SERVICE_LEVEL_S),
    )?;
    let short_abandon_s = raw.stats.short_abandon_s.unwrap_or(DEFAULT_SHORT_ABANDON_S);
    if short_abandon_s > 3600 {
        return Err(SettingsError::invalid(
            "stats.short_abandon_s",
            "at most 3600 (0: no abandon is short)",
        ));
    }
    // The reports' own reading of a time zone's name, UTC when absent.
    let time_zone = switchboard_engine::reports::query::time_zone(raw.stats.time_zone.as_deref())
        .map_err(|error| {
        let problem = error.to_string();
        let problem = problem.strip_prefix("tz: ").unwrap_or(&problem).to_owned();
        SettingsError::invalid("stats.time_zone", problem)
    })?;

    if raw.server.trust_forwarded_for == Some(true) {
        return Err(SettingsError::invalid(
            "server.trust_forwarded_for",
            "replaced by [server] trusted_proxies: list the reverse proxies' addresses \
             (CIDRs, e.g. [\"10.0.0.0/8\"]) so a client cannot forge its own address",
        ));
    }
    let trusted_proxies = trusted_proxies(raw.server.trusted_proxies.unwrap_or_default())?;
    let token_secret = raw.auth.token_secret.ok_or_else(|| {
        SettingsError::invalid(
            "auth.token_secret",
            "required (every node of a cluster must use the same secret)",
        )
    })?;
    if token_secret.len() < MIN_TOKEN_SECRET_BYTES {
        return Err(SettingsError::invalid(
            "auth.token_secret",
            format!("must be at least {MIN_TOKEN_SECRET_BYTES} bytes"),
        ));
    }
    if source == ConfigSource::Demo && known_secret(&token_secret).is_some() {
        warnings.push(
            "auth.token_secret: the built-in demo secret is in use, so anyone can forge tokens; \
             set SWITCHBOARD__AUTH__TOKEN_SECRET or [auth] token_secret"
                .to_owned(),
        );
    } else {
        refuse_known_secret("auth.token_secret", &token_secret, "forge tokens")?;
    }
    let allowed_origins = allowed_origins(raw.widget.allowed_origins.unwrap_or_default())?;
    let identity_secret = match raw.widget.identity_secret.filter(|s| !s.is_empty()) {
        None => None,
        Some(secret) if secret.len() < MIN_TOKEN_SECRET_BYTES => {
            return Err(SettingsError::invalid(
                "widget.identity_secret",
                format!("must be at least {MIN_TOKEN_SECRET_BYTES} bytes"),
            ))
        }
        Some(secret) => {
            refuse_known_secret("widget.identity_secret", &secret, "sign identities")?;
            Some(TokenSecret(secret))
        }
    };
    let token_ttl_s = positive(
        "auth.token_ttl_s",
        raw.auth.token_ttl_s.unwrap_or(DEFAULT_TOKEN_TTL_S),
    )?;

    let otlp_endpoint = raw.telemetry.otlp_endpoint.filter(|url| !url.is_empty());
    if let Some(url) = &otlp_endpoint {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SettingsError::invalid(
                "telemetry.otlp_endpoint",
                "must start with http:// or https:// (empty: no export)",
            ));
        }
    }
    let log_format = match raw.telemetry.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(SettingsError::invalid(
                "telemetry.log_format",
                format!("{other:?} is not \"text\" or \"json\""),
            ))
        }
    };

    let queues = validate_queues(raw.queues)?;
    let agents = validate_agents(raw.agents, &queues, default_max_chats)?;
    let plain_password_agents: Vec<&str> = agents
        .iter()
        .filter(|agent| matches!(agent.password, PasswordSetting::Plain(_)))
        .map(|agent| agent.id.as_str())
        .collect();
    if !plain_password_agents.is_empty() {
        warnings.push(format!(
            "agents {} use plain passwords (demos and tests only); \
             set password_hash instead (`switchboard hash-password`)",
            plain_password_agents.join(", ")
        ));
    }

    let wrap_up_reasons = validate_reasons("wrap_up_reasons", raw.wrap_up_reasons)?;
    if wrap_up_reasons.is_empty() {
        return Err(SettingsError::invalid(
            "wrap_up_reasons",
            "at least one wrap-up reason is required",
        ));
    }
    let default_reason = raw.wrap_up.default_reason.ok_or_else(|| {
        SettingsError::invalid(
            "wrap_up.default_reason",
            "required (the reason an automatic wrap-up records)",
        )
    })?;
    if !wrap_up_reasons
        .iter()
        .any(|reason| reason.id == default_reason)
    {
        return Err(SettingsError::invalid(
            "wrap_up.default_reason",
            format!("{default_reason:?} is not one of wrap_up_reasons"),
        ));
    }
    let idle_reasons = validate_reasons("idle_reasons", raw.idle_reasons)?;
    let templates = validate_templates(raw.templates, max_message_chars)?;

    Ok(Settings {
        server: ServerSettings {
            listen,
            node_id,
            trusted_proxies,
            workers,
            metrics_listen,
        },
        storage,
        widget: WidgetSettings {
            identity_secret,
            allowed_origins,
        },
        cluster: ClusterSettings {
            redis_url,
            key_prefix,
            heartbeat_ttl: Duration::from_millis(heartbeat_ttl_ms),
            request_timeout: Duration::from_millis(request_timeout_ms),
        },
        routing: RoutingSettings {
            rona_timeout: Duration::from_millis(rona_timeout_ms),
            auto_wrap_up: Duration::from_millis(auto_wrap_up_ms),
            default_max_chats,
            queue_status_interval: Duration::from_millis(queue_status_interval_ms),
        },
        limits: LimitSettings {
            max_message_chars,
            commands_per_second: positive_u32(
                "limits.commands_per_second",
                raw.limits.commands_per_second.unwrap_or(50),
            )?,
            command_burst: positive_u32(
                "limits.command_burst",
                raw.limits.command_burst.unwrap_or(200),
            )?,
            chats_per_minute_per_address: u32::try_from(
                raw.limits.chats_per_minute_per_address.unwrap_or(60),
            )
            .map_err(|_| {
                SettingsError::invalid("limits.chats_per_minute_per_address", "too large")
            })?,
            logins_per_minute_per_address: u32::try_from(
                raw.limits.logins_per_minute_per_address.unwrap_or(30),
            )
            .map_err(|_| {
                SettingsError::invalid("limits.logins_per_minute_per_address", "too large")
            })?,
            logins_per_minute_per_account: u32::try_from(
                raw.limits.logins_per_minute_per_account.unwrap_or(10),
            )
            .map_err(|_| {
                SettingsError::invalid("limits.logins_per_minute_per_account", "too large")
            })?,
            overload_target: match raw.limits.overload_target_ms {
                None => switchboard_engine::admission::OverloadConfig::default().target,
                Some(ms) if ms <= 60_000 => Duration::from_millis(ms),
                Some(_) => {
                    return Err(SettingsError::invalid(
                        "limits.overload_target_ms",
                        "at most 60000 (0 turns shedding off)",
                    ))
                }
            },
        },
        stats: StatsSettings {
            service_level: Duration::from_secs(service_level_s),
            short_abandon: Duration::from_secs(short_abandon_s),
            time_zone,
        },
        webhooks: validate_webhooks(raw.webhooks)?,
        auth: AuthSettings {
            token_secret: TokenSecret(token_secret),
            token_ttl: Duration::from_secs(token_ttl_s),
        },
        telemetry: TelemetrySettings {
            otlp_endpoint,
            log_format,
        },
        queues,
        agents,
        wrap_up_reasons,
        default_wrap_up_reason: WrapUpReasonId::new(default_reason),
        idle_reasons,
        templates,
        source,
        warnings,
    })
}

/// The embedded default: a SQLite file beside the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchboard-data/switchboard.db";

fn validate_storage(raw: RawStorage, clustered: bool) -> Result<StorageSettings, SettingsError> {
    const KEY: &str = "storage.database_url";
    let database_url = match raw.database_url.filter(|url| !url.is_empty()) {
        Some(url) => url,
        None if clustered => {
            return Err(SettingsError::invalid(
                KEY,
                "required in a cluster (cluster.redis_url is set): a postgres:// URL",
            ))
        }
        None => DEFAULT_DATABASE_URL.to_owned(),
    };
    let postgres =
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
    let sqlite = database_url.starts_with("sqlite://") && database_url.len() > "sqlite://".len();
    if !(postgres || sqlite || database_url == "memory:") {
        return Err(SettingsError::invalid(
            KEY,
            "must be sqlite://PATH, postgres://... or memory:",
        ));
    }
    if clustered && !postgres {
        return Err(SettingsError::invalid(
            KEY,
            "a cluster (cluster.redis_url is set) keeps its record in PostgreSQL: use a postgres:// URL",
        ));
    }
    let retention_days = u32::try_from(raw.retention_days.unwrap_or(365))
        .map_err(|_| SettingsError::invalid("storage.retention_days", "too large"))?;
    let max_connections = u32::try_from(raw.max_connections.unwrap_or(8))
        .ok()
        .filter(|n| (2..=1_000).contains(n))
        .ok_or_else(|| {
            SettingsError::invalid(
                "storage.max_connections",
                "from 2 to 1000 (one connection writes, the others read)",
            )
        })?;
    let acquire_timeout_ms = positive(
        "storage.acquire_timeout_ms",
        raw.acquire_timeout_ms.unwrap_or(5_000),
    )?;
    Ok(StorageSettings {
        database_url,
        retention_days,
        max_connections,
        acquire_timeout: Duration::from_millis(acquire_timeout_ms),
    })
}

fn validate_queues(raw: Vec<RawQueue>) -> Result<Vec<QueueSettings>, SettingsError> {
    if raw.is_empty() {
        return Err(SettingsError::invalid(
            "queues",
            "at least one queue is required",
        ));
    }
    let mut seen = HashSet::new();
    let mut queues = Vec::with_capacity(raw.len());
    for (index, queue) in raw.into_iter().enumerate() {
        let key = format!("queues[{index}]");
        let id = unique_id(&key, queue.id, &mut seen)?;
        let name = required_text(&key, "name", queue.name)?;
        queues.push(QueueSettings {
            id: QueueId::new(id),
            name,
        });
    }
    Ok(queues)
}

fn validate_agents(
    raw: Vec<RawAgent>,
    queues: &[QueueSettings],
    default_max_chats: u32,
) -> Result<Vec<AgentSettings>, SettingsError> {
    let mut seen_ids = HashSet::new();
    let mut seen_usernames = HashSet::new();
    let mut agents = Vec::with_capacity(raw.len());
    for (index, agent) in raw.into_iter().enumerate() {
        let key = format!("agents[{index}]");
        let id = unique_id(&key, agent.id, &mut seen_ids)?;
        let name = required_text(&key, "name", agent.name)?;
        let username = required_text(&key, "username", agent.username)?;
        if username.trim() != username {
            return Err(SettingsError::invalid(
                format!("{key}.username"),
                "must not start or end with whitespace",
            ));
        }
        if !seen_usernames.insert(username.clone()) {
            return Err(SettingsError::invalid(
                format!("{key}.username"),
                format!("duplicate username {username:?}"),
            ));
        }
        let password = match (agent.password_hash, agent.password) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::invalid(
                    key,
                    "give password_hash or password, not both",
                ))
            }
            (None, None) => {
                return Err(SettingsError::invalid(
                    key,
                    "needs password_hash or password",
                ))
            }
            (Some(hash), None) => {
                if !is_argon2_hash(&hash) {
                    return Err(SettingsError::invalid(
                        format!("{key}.password_hash"),
                        "not an argon2 hash (expected a PHC string such as \"$argon2id$v=19$...\"; \
                         make one with `switchboard hash-password`)",
                    ));
                }
                PasswordSetting::Hash(hash)
            }
            (None, Some(plain)) => {
                if plain.is_empty() {
                    return Err(SettingsError::invalid(
                        format!("{key}.password"),
                        "must not be empty",
                    ));
                }
                PasswordSetting::Plain(plain)
            }
        };
        let mut agent_queues: Vec<QueueId> = Vec::new();
        for queue in agent.queues.unwrap_or_default() {
            if !queues.iter().any(|known| known.id.as_str() == queue) {
                return Err(SettingsError::invalid(
                    format!("{key}.queues"),
                    format!("unknown queue {queue:?}"),
                ));
            }
            let queue_id = QueueId::new(queue);
            if agent_queues.contains(&queue_id) {
                return Err(SettingsError::invalid(
                    format!("{key}.queues"),
                    format!("queue {:?} listed twice", queue_id.as_str()),
                ));
            }
            agent_queues.push(queue_id);
        }
        let max_chats = match agent.max_chats {
            None => default_max_chats,
            Some(value) => chat_count(&format!("{key}.max_chats"), value)?,
        };
        let roles = match agent.roles {
            None => vec![AgentRole::Agent],
            Some(names) => {
                if names.is_empty() {
                    return Err(SettingsError::invalid(
                        format!("{key}.roles"),
                        "must name at least one role (\"agent\", \"supervisor\", \"admin\")",
                    ));
                }
                let mut roles = Vec::with_capacity(names.len());
                for name in names {
                    let role = AgentRole::parse(&name).ok_or_else(|| {
                        SettingsError::invalid(
                            format!("{key}.roles"),
                            format!("unknown role {name:?} (expected \"agent\", \"supervisor\" or \"admin\")"),
                        )
                    })?;
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
                roles
            }
        };
        agents.push(AgentSettings {
            id: AgentId::new(id),
            name,
            username,
            password,
            queues: agent_queues,
            max_chats,
            roles,
        });
    }
    Ok(agents)
}

/// Wrap-up and idle reasons share a shape and the same rules.
fn validate_reasons(section: &str, raw: Vec<RawReason>) -> Result<Vec<Reason>, SettingsError> {
    let mut seen = HashSet::new();
    let mut reasons = Vec::with_capacity(raw.len());
    for (index, reason) in raw.into_iter().enumerate() {
        let key = format!("{section}[{index}]");
        let id = unique_id(&key, reason.id, &mut seen)?;
        let label = required_text(&key, "label", reason.label)?;
        reasons.push(Reason { id, label });
    }
    Ok(reasons)
}

fn validate_templates(
    raw: Vec<RawTemplate>,
    max_message_chars: usize,
) -> Result<Vec<TemplateSettings>, SettingsError> {
    let mut seen = HashSet::new();
    let mut templates = Vec::with_capacity(raw.len());
    for (index, template) in raw.into_iter().enumerate() {
        let key = format!("templates[{index}]");
        let id = unique_id(&key, template.id, &mut seen)?;
        let name = required_text(&key, "name", template.name)?;
        let text = required_text(&key, "text", template.text)?;
        if text.chars().count() > max_message_chars {
            return Err(SettingsError::invalid(
                format!("{key}.text"),
                format!("longer than limits.max_message_chars ({max_message_chars})"),
            ));
        }
        // A filled template is sent as agent text, where '<' and '>' are
        // reserved: outside a slot they would be refused at every use.
        let literal =
            switchboard_proto::template::fill(&text, |_| Some("")).unwrap_or_else(|_| text.clone());
        if literal.contains(RESERVED_CHARACTERS) {
            return Err(SettingsError::invalid(
                format!("{key}.text"),
                "'<' and '>' may only appear around a slot name such as <customerName>",
            ));
        }
        templates.push(TemplateSettings {
            id: TemplateId::new(id),
            name,
            text,
        });
    }
    Ok(templates)
}

/// Ids end up in URLs, Redis keys and log fields: keep them to a safe set.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_id(key: &str, id: &str) -> Result<(), SettingsError> {
    if is_valid_id(id) {
        Ok(())
    } else if id.is_empty() {
        Err(SettingsError::invalid(key, "must not be empty"))
    } else {
        Err(SettingsError::invalid(
            key,
            format!("{id:?} may only contain letters, digits, '_', '.' and '-'"),
        ))
    }
}

/// A required id that no earlier entry of the same list used.
fn unique_id(
    key: &str,
    raw: Option<String>,
    seen: &mut HashSet<String>,
) -> Result<String, SettingsError> {
    let id = required_id(key, "id", raw)?;
    if !seen.insert(id.clone()) {
        return Err(SettingsError::invalid(
            format!("{key}.id"),
            format!("duplicate id {id:?}"),
        ));
    }
    Ok(id)
}

fn required_id(parent: &str, field: &str, value: Option<String>) -> Result<String, SettingsError> {
    let key = format!("{parent}.{field}");
    let id = value.ok_or_else(|| SettingsError::invalid(&key, "required"))?;
    check_id(&key, &id)?;
    Ok(id)
}

fn required_text(
    parent: &str,
    field: &str,
    value: Option<String>,
) -> Result<String, SettingsError> {
    let key = format!("{parent}.{field}");
    let text = value.ok_or_else(|| SettingsError::invalid(&key, "required"))?;
    if text.trim().is_empty() {
        return Err(SettingsError::invalid(key, "must not be empty"));
    }
    Ok(text)
}

/// HTTP workers (and engine arbiters) when the file says `0` or nothing:
/// half the cores, at least one. A conversation lives on the worker that
/// created it; more threads than that only add context switches on a small
/// machine (see docs/benchmarks.md).
pub fn auto_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cores| cores.get() / 2)
        .max(1)
}

fn positive_u32(key: &str, value: u64) -> Result<std::num::NonZeroU32, SettingsError> {
    let value = u32::try_from(positive(key, value)?)
        .map_err(|_| SettingsError::invalid(key, "too large"))?;
    std::num::NonZeroU32::new(value)
        .ok_or_else(|| SettingsError::invalid(key, "must be greater than 0"))
}

fn positive(key: &str, value: u64) -> Result<u64, SettingsError> {
    if value == 0 {
        return Err(SettingsError::invalid(key, "must be greater than 0"));
    }
    Ok(value)
}

fn chat_count(key: &str, value: u64) -> Result<u32, SettingsError> {
    let value = positive(key, value)?;
    u32::try_from(value).map_err(|_| SettingsError::invalid(key, "too large"))
}

/// Only the PHC shape and the algorithm are checked here; the parameters are
/// read again when a password is verified.
fn is_argon2_hash(phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => {
            matches!(
                parsed.algorithm.as_str(),
                "argon2id" | "argon2i" | "argon2d"
            ) && parsed.hash.is_some()
                && argon2::Params::try_from(&parsed).is_ok()
        }
        Err(_) => false,
    }
}

/// `node_id = "auto"`: hostname, pid and a random suffix. The suffix matters:
/// in a container the pid is often 1 on every start, and a restarted node
/// must not inherit the ownership records of its previous life.
fn auto_node_id() -> String {
    let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    let safe_hostname: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let suffix: u32 = rand::random();
    format!("{safe_hostname}-{}-{suffix:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    /// A small valid config; tests break one thing at a time.
    const MINIMAL: &str = r#"
[auth]
token_secret = "0123456789abcdef0123456789abcdef"

[[queues]]
id = "sales"
name = "Sales"

[[queues]]
id = "support"
name = "Support"

[[agents]]
id = "a1"
name = "Agent One"
username = "one"
password = "one-pass"
queues = ["sales"]

[[wrap_up_reasons]]
id = "done"
label = "Done"

[wrap_up]
default_reason = "done"
"#;

    fn load_err(toml: &str) -> String {
        match Settings::from_toml_str(toml, NO_ENV) {
            Ok(_) => panic!("config should have been refused"),
            Err(error) => error.to_string(),
        }
    }

    fn load_env(toml: &str, env: &[(&str, &str)]) -> Settings {
        match Settings::from_toml_str(toml, env.iter().copied()) {
            Ok(settings) => settings,
            Err(error) => panic!("config should load: {error}"),
        }
    }

    fn load_err_env(toml: &str, env: &[(&str, &str)]) -> String {
        match Settings::from_toml_str(toml, env.iter().copied()) {
            Ok(_) => panic!("config should have been refused"),
            Err(error) => error.to_string(),
        }
    }

    fn assert_starts_with(message: &str, expected: &str) {
        assert!(
            message.starts_with(expected),
            "error {message:?} should start with {expected:?}"
        );
    }

    fn demo() -> Settings {
        match Settings::load(None, NO_ENV) {
            Ok(settings) => settings,
            Err(error) => panic!("demo config must load: {error}"),
        }
    }

    /// What an operator sets beside an example file: a secret of their own.
    fn secret_from_env() -> [(&'static str, String); 1] {
        [("SWITCHBOARD__AUTH__TOKEN_SECRET", generate_secret())]
    }

    #[test]
    fn example_files_carry_no_secret() {
        for example in [
            include_str!("../../deploy/switchboard.example.toml"),
            include_str!("../../deploy/cluster.example.toml"),
        ] {
            let error = match Settings::from_toml_str(example, NO_ENV) {
                Ok(_) => panic!("an example file must not carry a usable secret"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains("auth.token_secret"), "{error}");
            assert!(error.contains("required"), "{error}");
        }
    }

    #[test]
    fn known_secrets_are_refused_outside_the_demo_config() {
        let with_secret = |secret: &str| {
            MINIMAL.replace(
                "token_secret = \"0123456789abcdef0123456789abcdef\"",
                &format!("token_secret = \"{secret}\""),
            )
        };
        for secret in [
            DEMO_TOKEN_SECRET,
            "change-me-change-me-change-me-change-me",
            "REPLACE-ME-REPLACE-ME-REPLACE-ME-REPLACE-ME",
        ] {
            let error = match Settings::from_toml_str(&with_secret(secret), NO_ENV) {
                Ok(_) => panic!("{secret} must be refused"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains("auth.token_secret"), "{error}");
            assert!(error.contains("gen-secret"), "{error}");
        }
        // The same text with an operator's own secret loads.
        let own = generate_secret();
        assert_eq!(own.len(), 64);
        assert_ne!(own, generate_secret());
        if let Err(error) = Settings::from_toml_str(&with_secret(&own), NO_ENV) {
            panic!("{error}");
        }
    }

    #[test]
    fn a_known_identity_secret_is_refused() {
        let text = format!(
            "{MINIMAL}\n[widget]\nidentity_secret = \"change-me-change-me-change-me-change-me\"\n"
        );
        let error = match Settings::from_toml_str(&text, NO_ENV) {
            Ok(_) => panic!("a placeholder identity secret must be refused"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("widget.identity_secret"), "{error}");
    }

    #[test]
    fn cluster_example_config_in_deploy_validates() {
        let example = include_str!("../../deploy/cluster.example.toml");
        let settings = match Settings::from_toml_str(example, secret_from_env()) {
            Ok(settings) => settings,
            Err(error) => panic!("deploy/cluster.example.toml must validate: {error}"),
        };
        let cluster = settings.cluster_config().expect("the example is a cluster");
        assert!(cluster.redis_url.starts_with("redis://"));
        assert_eq!(cluster.heartbeat_ttl, Duration::from_millis(3000));
    }

    #[test]
    fn example_config_in_deploy_validates() {
        let example = include_str!("../../deploy/switchboard.example.toml");
        let settings = match Settings::from_toml_str(example, secret_from_env()) {
            Ok(settings) => settings,
            Err(error) => panic!("deploy/switchboard.example.toml must validate: {error}"),
        };
        assert_eq!(settings.queues.len(), 2);
        // The example shows argon2 hashes, not plain passwords.
        assert!(settings.warnings().iter().all(|w| !w.contains("plain")));
    }

    #[test]
    fn demo_config_loads_and_validates() {
        let settings = demo();
        assert!(settings.is_demo());
        let queue_ids: Vec<&str> = settings.queues.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(queue_ids, ["sales", "support"]);
        let agent_ids: Vec<&str> = settings.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(agent_ids, ["alice", "bob", "carol", "dave", "sam"]);
        for agent in &settings.agents {
            assert_eq!(
                agent.password,
                PasswordSetting::Plain(format!("{}-demo", agent.username))
            );
        }
        let sam = &settings.agents[4];
        assert_eq!(sam.name, "Sam Rivera");
        assert_eq!(
            sam.roles,
            [AgentRole::Agent, AgentRole::Supervisor, AgentRole::Admin]
        );
        assert_eq!(settings.agents[0].roles, [AgentRole::Agent]);
        assert_eq!(settings.agents[0].max_chats, 3);
        let reason_ids: Vec<&str> = settings
            .wrap_up_reasons
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            reason_ids,
            ["resolved", "follow_up", "escalated", "no_response", "spam"]
        );
        assert_eq!(settings.default_wrap_up_reason.as_str(), "no_response");
        let idle_ids: Vec<&str> = settings
            .idle_reasons
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            idle_ids,
            ["break", "lunch", "training", "meeting", "after_call_work"]
        );
        let template_ids: Vec<&str> = settings.templates.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(template_ids, ["greeting", "order_status", "closing"]);
        assert_eq!(
            settings.templates[0].text,
            "Hello <customerName>, I'm <agentName> from <queueName>. How can I help you today?"
        );
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.cluster.redis_url, None);
        assert_eq!(settings.routing.rona_timeout, Duration::from_secs(30));
    }

    #[test]
    fn demo_config_warns_about_demo_secret_and_plain_passwords() {
        let settings = demo();
        assert!(DEMO_CONFIG.contains(DEMO_TOKEN_SECRET));
        assert_eq!(
            settings.auth.token_secret.as_bytes(),
            DEMO_TOKEN_SECRET.as_bytes()
        );
        assert!(settings
            .warnings()
            .iter()
            .any(|w| w.starts_with("auth.token_secret:")));
        assert!(settings
            .warnings()
            .iter()
            .any(|w| w.contains("plain passwords") && w.contains("alice")));
    }

    #[test]
    fn demo_secret_warning_goes_away_when_env_overrides_it() {
        let settings = match Settings::load(
            None,
            [(
                "SWITCHBOARD__AUTH__TOKEN_SECRET",
                "an-operator-chosen-secret-of-40-bytes!!",
            )],
        ) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert!(!settings
            .warnings()
            .iter()
            .any(|w| w.starts_with("auth.token_secret:")));
    }

    #[test]
    fn defaults_apply_when_keys_are_omitted() {
        let settings = match Settings::from_toml_str(MINIMAL, NO_ENV) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert!(!settings.is_demo());
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
        assert!(!settings.server.node_id.as_str().is_empty());
        assert_ne!(settings.server.node_id.as_str(), "auto");
        assert!(is_valid_id(settings.server.node_id.as_str()));
        assert_eq!(settings.cluster.redis_url, None);
        assert_eq!(settings.cluster.key_prefix, "sb");
        assert_eq!(settings.routing.rona_timeout, Duration::from_millis(30_000));
        assert_eq!(
            settings.routing.auto_wrap_up,
            Duration::from_millis(120_000)
        );
        assert_eq!(settings.routing.default_max_chats, 3);
        assert_eq!(settings.limits.max_message_chars, 4000);
        assert_eq!(settings.stats.service_level, Duration::from_secs(30));
        assert_eq!(settings.auth.token_ttl, Duration::from_secs(43_200));
        assert_eq!(settings.telemetry.otlp_endpoint, None);
        assert_eq!(settings.telemetry.log_format, LogFormat::Text);
        assert_eq!(settings.agents[0].max_chats, 3);
        assert_eq!(settings.agents[0].roles, [AgentRole::Agent]);
        assert!(settings.idle_reasons.is_empty());
        assert!(settings.templates.is_empty());
    }

    #[test]
    fn agent_max_chats_defaults_to_routing_default_max_chats() {
        let toml = MINIMAL.replace("[auth]", "[routing]\ndefault_max_chats = 5\n\n[auth]");
        let settings = match Settings::from_toml_str(&toml, NO_ENV) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(settings.agents[0].max_chats, 5);
    }

    #[test]
    fn env_override_wins_over_file() {
        let toml = MINIMAL.replace("[auth]", "[routing]\nrona_timeout_ms = 1000\n\n[auth]");
        let settings = match Settings::from_toml_str(
            &toml,
            [
                ("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", "5000"),
                ("SWITCHBOARD__SERVER__NODE_ID", "node-7"),
            ],
        ) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(settings.routing.rona_timeout, Duration::from_millis(5000));
        assert_eq!(settings.server.node_id.as_str(), "node-7");
    }

    #[test]
    fn storage_defaults_to_a_sqlite_file_and_a_year() {
        let settings = load_env(MINIMAL, &[]);
        assert_eq!(settings.storage.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(settings.storage.retention_days, 365);
    }

    #[test]
    fn a_cluster_requires_a_postgres_database_naming_the_key() {
        let redis = ("SWITCHBOARD__CLUSTER__REDIS_URL", "redis://127.0.0.1:6379");
        assert_starts_with(
            &load_err_env(MINIMAL, &[redis]),
            "storage.database_url: required in a cluster",
        );
        let sqlite = ("SWITCHBOARD__STORAGE__DATABASE_URL", "sqlite://data/sb.db");
        assert_starts_with(
            &load_err_env(MINIMAL, &[redis, sqlite]),
            "storage.database_url: a cluster (cluster.redis_url is set) keeps its record in PostgreSQL",
        );
    }

    #[test]
    fn a_database_url_of_another_kind_is_refused() {
        for url in ["mysql://db/sb", "sqlite://", "switchboard.db"] {
            let env = [("SWITCHBOARD__STORAGE__DATABASE_URL", url)];
            assert_starts_with(
                &load_err_env(MINIMAL, &env),
                "storage.database_url: must be sqlite://PATH, postgres://... or memory:",
            );
        }
    }

    #[test]
    fn records_kept_is_accepted_with_a_warning() {
        let toml = MINIMAL.replace("[auth]", "[limits]\nrecords_kept = 10\n\n[auth]");
        let settings = load_env(&toml, &[]);
        assert!(
            settings
                .warnings()
                .iter()
                .any(|w| w.contains("records_kept is no longer used")),
            "{:?}",
            settings.warnings()
        );
    }

    #[test]
    fn a_short_identity_secret_is_refused() {
        let env = [("SWITCHBOARD__WIDGET__IDENTITY_SECRET", "short")];
        assert_starts_with(
            &load_err_env(MINIMAL, &env),
            "widget.identity_secret: must be at least 32 bytes",
        );
    }

    #[test]
    fn env_override_wins_over_demo_config() {
        let settings = match Settings::load(
            None,
            [
                ("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", "5000"),
                ("SWITCHBOARD__SERVER__LISTEN", "0.0.0.0:9000"),
                ("SWITCHBOARD__CLUSTER__REDIS_URL", "redis://127.0.0.1:6379"),
                (
                    "SWITCHBOARD__STORAGE__DATABASE_URL",
                    "postgres://sb@127.0.0.1/sb",
                ),
            ],
        ) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert!(settings.is_demo());
        assert_eq!(settings.routing.rona_timeout, Duration::from_millis(5000));
        assert_eq!(settings.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(
            settings.cluster.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379")
        );
    }

    #[test]
    fn env_without_the_prefix_is_ignored() {
        let settings = match Settings::from_toml_str(
            MINIMAL,
            [
                ("SWITCHBOARD_CONFIG", "/etc/switchboard.toml"),
                ("ROUTING__RONA_TIMEOUT_MS", "1"),
                ("PATH", "/usr/bin"),
            ],
        ) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(settings.routing.rona_timeout, Duration::from_millis(30_000));
    }

    #[test]
    fn bad_env_value_names_the_key() {
        let message = load_err_env(
            MINIMAL,
            &[("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", "soon")],
        );
        assert!(message.contains("routing.rona_timeout_ms"), "{message}");
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", "0")]);
        assert_eq!(message, "routing.rona_timeout_ms: must be greater than 0");
    }

    #[test]
    fn unknown_key_in_file_is_refused_naming_it() {
        let message = load_err(&MINIMAL.replace("[auth]", "[routing]\nrona_timeout = 5\n\n[auth]"));
        assert!(message.contains("rona_timeout"), "{message}");
        assert!(message.contains("unknown field"), "{message}");
        let message = load_err(&format!("{MINIMAL}\n[colours]\nbackground = \"red\"\n"));
        assert!(message.contains("colours"), "{message}");
        let message = load_err(&MINIMAL.replace("password = \"one-pass\"", "pasword = \"x\""));
        assert!(message.contains("pasword"), "{message}");
    }

    #[test]
    fn unknown_key_in_env_is_refused_naming_it() {
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__ROUTING__RONA_TIMEOUT", "5000")]);
        assert!(message.contains("rona_timeout"), "{message}");
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__ROUTING", "5000")]);
        assert!(message.contains("expected a [routing] table"), "{message}");
    }

    #[test]
    fn toml_syntax_error_is_reported_with_its_origin() {
        let message = load_err("[server\nlisten = ");
        assert_starts_with(&message, "config: ");
    }

    #[test]
    fn missing_file_is_reported_with_its_path() {
        let path = Path::new("/nonexistent/switchboard-test.toml");
        match Settings::load(Some(path), NO_ENV) {
            Ok(_) => panic!("a missing file must be an error"),
            Err(error) => {
                assert_starts_with(
                    &error.to_string(),
                    "cannot read config file /nonexistent/switchboard-test.toml",
                );
            }
        }
    }

    #[test]
    fn file_given_is_not_demo() {
        let path = std::env::temp_dir().join(format!(
            "switchboard-settings-test-{}.toml",
            std::process::id()
        ));
        if let Err(error) = std::fs::write(&path, MINIMAL) {
            panic!("cannot write {}: {error}", path.display());
        }
        let loaded = Settings::load(Some(&path), NO_ENV);
        let _ = std::fs::remove_file(&path);
        let settings = match loaded {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert!(!settings.is_demo());
        assert_eq!(settings.source(), &ConfigSource::File(path));
    }

    #[test]
    fn config_path_comes_from_cli_then_env() {
        assert_eq!(
            resolve_config_path(Some("a.toml".into()), Some("b.toml".into())),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            resolve_config_path(None, Some("b.toml".into())),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(resolve_config_path(None, Some(String::new())), None);
        assert_eq!(resolve_config_path(None, None), None);
    }

    #[test]
    fn report_settings_are_checked_naming_the_key() {
        let message = load_err_env(
            MINIMAL,
            &[("SWITCHBOARD__STATS__TIME_ZONE", "Mars/Olympus")],
        );
        assert!(message.starts_with("stats.time_zone: "), "{message}");
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__STATS__SHORT_ABANDON_S", "3601")]);
        assert!(message.starts_with("stats.short_abandon_s: "), "{message}");
        let settings = Settings::from_toml_str(
            MINIMAL,
            [
                (
                    "SWITCHBOARD__STATS__TIME_ZONE".to_owned(),
                    "Europe/Rome".to_owned(),
                ),
                (
                    "SWITCHBOARD__STATS__SHORT_ABANDON_S".to_owned(),
                    "0".to_owned(),
                ),
            ],
        )
        .expect("valid");
        assert_eq!(settings.stats.time_zone, chrono_tz::Tz::Europe__Rome);
        assert_eq!(settings.stats.short_abandon, Duration::ZERO);
        let defaults = Settings::from_toml_str(MINIMAL, Vec::<(String, String)>::new()).unwrap();
        assert_eq!(defaults.stats.short_abandon, Duration::from_secs(5));
        assert_eq!(defaults.stats.time_zone, chrono_tz::Tz::UTC);
    }

    #[test]
    fn zero_durations_and_counts_are_refused() {
        for (section, key) in [
            ("routing", "rona_timeout_ms"),
            ("routing", "auto_wrap_up_ms"),
            ("routing", "default_max_chats"),
            ("routing", "queue_status_interval_ms"),
            ("limits", "max_message_chars"),
            ("stats", "service_level_s"),
            ("auth", "token_ttl_s"),
        ] {
            let env_key = format!(
                "SWITCHBOARD__{}__{}",
                section.to_uppercase(),
                key.to_uppercase()
            );
            let message = load_err_env(MINIMAL, &[(env_key.as_str(), "0")]);
            assert_eq!(message, format!("{section}.{key}: must be greater than 0"));
        }
        let message = load_err(&MINIMAL.replace(
            "queues = [\"sales\"]",
            "queues = [\"sales\"]\nmax_chats = 0",
        ));
        assert_eq!(message, "agents[0].max_chats: must be greater than 0");
    }

    #[test]
    fn negative_number_names_the_key() {
        let message =
            load_err(&MINIMAL.replace("[auth]", "[routing]\nrona_timeout_ms = -5\n\n[auth]"));
        assert!(message.contains("routing.rona_timeout_ms"), "{message}");
    }

    #[test]
    fn listen_must_be_a_socket_address() {
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__SERVER__LISTEN", "localhost")]);
        assert_starts_with(&message, "server.listen: not a socket address");
    }

    #[test]
    fn explicit_node_id_must_be_a_valid_id() {
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__SERVER__NODE_ID", "node 1")]);
        assert_starts_with(&message, "server.node_id: ");
    }

    #[test]
    fn auto_node_ids_differ_between_starts() {
        assert_ne!(auto_node_id(), auto_node_id());
        assert!(is_valid_id(&auto_node_id()));
    }

    #[test]
    fn redis_url_needs_a_redis_scheme() {
        let message = load_err_env(
            MINIMAL,
            &[("SWITCHBOARD__CLUSTER__REDIS_URL", "localhost:6379")],
        );
        assert_starts_with(&message, "cluster.redis_url: ");
    }

    #[test]
    fn cluster_timings_are_checked() {
        let message = load_err_env(
            MINIMAL,
            &[("SWITCHBOARD__CLUSTER__HEARTBEAT_TTL_MS", "100")],
        );
        assert_starts_with(&message, "cluster.heartbeat_ttl_ms: ");
        let message = load_err_env(
            MINIMAL,
            &[("SWITCHBOARD__CLUSTER__REQUEST_TIMEOUT_MS", "0")],
        );
        assert_starts_with(&message, "cluster.request_timeout_ms: ");
    }

    #[test]
    fn workers_default_to_half_the_cores_and_are_bounded() {
        let settings = load_env(MINIMAL, &[]);
        assert_eq!(settings.server.workers, auto_workers());
        let settings = load_env(MINIMAL, &[("SWITCHBOARD__SERVER__WORKERS", "0")]);
        assert_eq!(settings.server.workers, auto_workers());
        let settings = load_env(MINIMAL, &[("SWITCHBOARD__SERVER__WORKERS", "3")]);
        assert_eq!(settings.server.workers, 3);
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__SERVER__WORKERS", "100000")]);
        assert_starts_with(&message, "server.workers: ");
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__SERVER__WORKERS", "-1")]);
        assert!(message.contains("server.workers"), "{message}");
    }

    #[test]
    fn otlp_endpoint_needs_an_http_scheme() {
        let message = load_err_env(
            MINIMAL,
            &[("SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT", "collector:4317")],
        );
        assert_starts_with(&message, "telemetry.otlp_endpoint: ");
    }

    #[test]
    fn log_format_is_text_or_json() {
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "xml")]);
        assert_starts_with(&message, "telemetry.log_format: ");
        let settings = match Settings::from_toml_str(
            MINIMAL,
            [("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json")],
        ) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(settings.telemetry.log_format, LogFormat::Json);
    }

    #[test]
    fn token_secret_is_required_and_at_least_32_bytes() {
        let message = load_err_env(MINIMAL, &[("SWITCHBOARD__AUTH__TOKEN_SECRET", "short")]);
        assert_eq!(message, "auth.token_secret: must be at least 32 bytes");
        let without = MINIMAL.replace("token_secret = \"0123456789abcdef0123456789abcdef\"", "");
        assert_starts_with(&load_err(&without), "auth.token_secret: required");
    }

    #[test]
    fn at_least_one_queue_is_required() {
        let toml = r#"
[auth]
token_secret = "0123456789abcdef0123456789abcdef"
[[wrap_up_reasons]]
id = "done"
label = "Done"
[wrap_up]
default_reason = "done"
"#;
        assert_eq!(load_err(toml), "queues: at least one queue is required");
    }

    #[test]
    fn duplicate_queue_id_is_refused() {
        let toml = MINIMAL.replace("id = \"support\"", "id = \"sales\"");
        assert_eq!(load_err(&toml), "queues[1].id: duplicate id \"sales\"");
    }

    #[test]
    fn ids_are_non_empty_and_safe_characters() {
        let toml = MINIMAL.replace("id = \"support\"", "id = \"sup port\"");
        assert_starts_with(
            &load_err(&toml),
            "queues[1].id: \"sup port\" may only contain",
        );
        let toml = MINIMAL.replace("id = \"support\"", "id = \"\"");
        assert_eq!(load_err(&toml), "queues[1].id: must not be empty");
        let toml = MINIMAL.replace("id = \"done\"", "id = \"done/now\"");
        assert_starts_with(&load_err(&toml), "wrap_up_reasons[0].id: ");
        assert!(is_valid_id("after_call_work.v2-B"));
        assert!(!is_valid_id("a:b"));
    }

    #[test]
    fn missing_required_field_names_the_key() {
        let toml = MINIMAL.replace("name = \"Support\"", "");
        assert_eq!(load_err(&toml), "queues[1].name: required");
        let toml = MINIMAL.replace("username = \"one\"", "");
        assert_eq!(load_err(&toml), "agents[0].username: required");
    }

    #[test]
    fn agent_queues_must_be_known() {
        let toml = MINIMAL.replace("queues = [\"sales\"]", "queues = [\"sales\", \"foo\"]");
        assert_eq!(load_err(&toml), "agents[0].queues: unknown queue \"foo\"");
    }

    #[test]
    fn agent_queue_index_in_error_is_the_agents_position() {
        let toml = format!(
            "{MINIMAL}
[[agents]]
id = \"a2\"
name = \"Agent Two\"
username = \"two\"
password = \"two-pass\"
queues = [\"support\"]

[[agents]]
id = \"a3\"
name = \"Agent Three\"
username = \"three\"
password = \"three-pass\"
queues = [\"foo\"]
"
        );
        assert_eq!(load_err(&toml), "agents[2].queues: unknown queue \"foo\"");
    }

    #[test]
    fn agent_needs_password_hash_or_password() {
        let toml = MINIMAL.replace("password = \"one-pass\"", "");
        assert_eq!(
            load_err(&toml),
            "agents[0]: needs password_hash or password"
        );
    }

    #[test]
    fn agent_may_not_give_both_password_hash_and_password() {
        let toml = MINIMAL.replace(
            "password = \"one-pass\"",
            "password = \"one-pass\"\npassword_hash = \"$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"",
        );
        assert_eq!(
            load_err(&toml),
            "agents[0]: give password_hash or password, not both"
        );
    }

    #[test]
    fn password_hash_must_be_argon2() {
        for not_argon2 in [
            "hunter2",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$pbkdf2-sha256$29000$N2ZsrXWu1Zqz1jqnFCKkVA$yIQzgC2CZcwZF5LNC5kE3g3fXxjE3B6V2ZhGEYJ1VDs",
        ] {
            let toml = MINIMAL.replace(
                "password = \"one-pass\"",
                &format!("password_hash = '{not_argon2}'"),
            );
            assert_starts_with(&load_err(&toml), "agents[0].password_hash: not an argon2 hash");
        }
    }

    #[test]
    fn argon2_password_hash_is_accepted_without_warning() {
        let hash = match crate::auth::hash_password("s3cret") {
            Ok(hash) => hash,
            Err(error) => panic!("{error}"),
        };
        let toml = MINIMAL.replace(
            "password = \"one-pass\"",
            &format!("password_hash = '{hash}'"),
        );
        let settings = match Settings::from_toml_str(&toml, NO_ENV) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(settings.agents[0].password, PasswordSetting::Hash(hash));
        assert!(settings.warnings().is_empty());
    }

    #[test]
    fn duplicate_agent_id_or_username_is_refused() {
        let second = "
[[agents]]
id = \"a1\"
name = \"Again\"
username = \"again\"
password = \"x\"
";
        assert_eq!(
            load_err(&format!("{MINIMAL}{second}")),
            "agents[1].id: duplicate id \"a1\""
        );
        let second = second
            .replace("id = \"a1\"", "id = \"a2\"")
            .replace("again\"", "one\"");
        assert_eq!(
            load_err(&format!("{MINIMAL}{second}")),
            "agents[1].username: duplicate username \"one\""
        );
    }

    #[test]
    fn roles_must_be_agent_supervisor_or_admin() {
        let toml = MINIMAL.replace(
            "queues = [\"sales\"]",
            "queues = [\"sales\"]\nroles = [\"owner\"]",
        );
        assert_starts_with(&load_err(&toml), "agents[0].roles: unknown role \"owner\"");
        let toml = MINIMAL.replace("queues = [\"sales\"]", "queues = [\"sales\"]\nroles = []");
        assert_starts_with(
            &load_err(&toml),
            "agents[0].roles: must name at least one role",
        );
    }

    #[test]
    fn at_least_one_wrap_up_reason_is_required() {
        let toml = MINIMAL
            .replace("[[wrap_up_reasons]]\nid = \"done\"\nlabel = \"Done\"\n", "")
            .replace("[wrap_up]\ndefault_reason = \"done\"\n", "");
        assert_eq!(
            load_err(&toml),
            "wrap_up_reasons: at least one wrap-up reason is required"
        );
    }

    #[test]
    fn default_reason_must_be_a_wrap_up_reason() {
        let toml = MINIMAL.replace("default_reason = \"done\"", "default_reason = \"x\"");
        assert_eq!(
            load_err(&toml),
            "wrap_up.default_reason: \"x\" is not one of wrap_up_reasons"
        );
        let toml = MINIMAL.replace("default_reason = \"done\"", "");
        assert_starts_with(&load_err(&toml), "wrap_up.default_reason: required");
    }

    #[test]
    fn duplicate_idle_reason_is_refused() {
        let toml = format!(
            "{MINIMAL}\n[[idle_reasons]]\nid = \"break\"\nlabel = \"Break\"\n[[idle_reasons]]\nid = \"break\"\nlabel = \"Pause\"\n"
        );
        assert_eq!(
            load_err(&toml),
            "idle_reasons[1].id: duplicate id \"break\""
        );
    }

    #[test]
    fn template_text_may_use_angle_brackets_only_for_slots() {
        let toml = format!(
            "{MINIMAL}\n[[templates]]\nid = \"t\"\nname = \"T\"\ntext = \"Hello <customerName>, 1 < 2\"\n"
        );
        assert_starts_with(&load_err(&toml), "templates[0].text: ");
        let toml = format!(
            "{MINIMAL}\n[[templates]]\nid = \"t\"\nname = \"T\"\ntext = \"Hello <customerName>, order <orderId>\"\n"
        );
        assert!(Settings::from_toml_str(&toml, NO_ENV).is_ok());
    }

    #[test]
    fn template_text_must_fit_max_message_chars() {
        let toml = format!(
            "{MINIMAL}\n[limits]\nmax_message_chars = 5\n[[templates]]\nid = \"t\"\nname = \"T\"\ntext = \"Hello there\"\n"
        );
        assert_starts_with(&load_err(&toml), "templates[0].text: longer than");
    }

    #[test]
    fn engine_config_carries_the_validated_values() {
        let settings = match Settings::load(
            None,
            [
                ("SWITCHBOARD__SERVER__NODE_ID", "n1"),
                ("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", "1500"),
            ],
        ) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        let engine = settings.engine_config();
        assert_eq!(engine.node_id.as_str(), "n1");
        assert_eq!(engine.routing.rona_timeout, Duration::from_millis(1500));
        assert_eq!(engine.routing.auto_wrap_up, Duration::from_secs(120));
        assert_eq!(engine.max_message_chars, 4000);
        assert_eq!(engine.service_level, Duration::from_secs(30));
        assert_eq!(engine.queues.len(), 2);
        assert_eq!(engine.agents.len(), 5);
        assert_eq!(engine.agents[4].roles, ["agent", "supervisor", "admin"]);
        assert_eq!(engine.default_wrap_up_reason.as_str(), "no_response");
        assert_eq!(engine.idle_reasons.len(), 5);
        assert_eq!(engine.templates.len(), 3);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let printed = format!("{:?}", demo());
        assert!(!printed.contains(DEMO_TOKEN_SECRET));
        assert!(!printed.contains("alice-demo"));
    }
}
