//! Real processes for cluster tests: a `redis-server` on a free loopback
//! port (which the test may kill, restart or pause), a database of the
//! test's own on the machine's PostgreSQL (the system of record),
//! `switchboard` nodes started from the test binary's own build, each with
//! its config file and log in a temporary directory, and a cluster of all
//! three.
//!
//! Every wait polls a condition against a deadline; nothing sleeps blindly.
//! Processes are killed on drop; when a test panics, the logs' tails are
//! printed (the test harness shows them with the failure) and the temporary
//! directories are kept.

use std::collections::HashSet;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::api_support::CONFIG;
use crate::client::{assert_acked_delivered, assert_same_thread, check_stream, Party};

/// The shared token secret of the test config (api/support.rs).
pub const TOKEN_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// Heartbeat TTL and peer request timeout of test clusters: failover in
/// about a second.
pub const HEARTBEAT_TTL_MS: u64 = 1000;
pub const REQUEST_TIMEOUT_MS: u64 = 1000;
/// How long a process may take to become ready.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a process may take to exit after a signal.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);
/// Poll interval of every readiness wait.
pub const POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Bounded test bodies and the cluster slots.

/// Runs a test body under a deadline; a body that overruns fails the test
/// instead of hanging the suite.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("test did not finish within {limit:?}");
    }
}

/// At most this many clusters run at once in the test binary (the machine
/// has two cores; each cluster is a Redis and three nodes).
const MAX_CLUSTERS: usize = 2;
static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

/// A held cluster slot; released on drop.
pub struct Slot(());

impl Slot {
    /// Blocks until a slot is free. Called before a test's clock starts.
    pub fn acquire() -> Slot {
        let mut taken = SLOTS.lock().unwrap_or_else(|poison| poison.into_inner());
        while *taken >= MAX_CLUSTERS {
            taken = SLOT_FREED
                .wait(taken)
                .unwrap_or_else(|poison| poison.into_inner());
        }
        *taken += 1;
        Slot(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = SLOTS.lock().unwrap_or_else(|poison| poison.into_inner());
        *taken -= 1;
        SLOT_FREED.notify_one();
    }
}

// ---------------------------------------------------------------------------
// Ports and directories.

static PORTS_HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port that was free a moment ago and that this process has
/// not handed out before (so two tests never get the same one).
pub fn free_port() -> u16 {
    let mut handed_out = PORTS_HANDED_OUT
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        drop(listener);
        if handed_out.insert(port) {
            return port;
        }
    }
}

static DIRS: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir; removed on drop unless the
/// test is panicking (then kept, and its path printed).
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "switchboard-cluster-{}-{}-{label}-{nanos}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The last `lines` lines of a file (a process log).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(64 * 1024)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends a signal with `kill(1)` (no libc in the tests).
fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Waits (polling) until the child exits; kills it at the deadline.
fn wait_exit(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

// ---------------------------------------------------------------------------
// Redis.

/// A `redis-server` of the test's own, on a free loopback port, with an
/// append-only file in its directory so a restart keeps the data.
pub struct RedisServer {
    pub port: u16,
    extra_args: Vec<String>,
    dir: TempDir,
    child: Option<Child>,
    /// Logs already printed (a panicking test drops several holders).
    pub name: String,
}

impl RedisServer {
    pub fn start(extra_args: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            dir: TempDir::new("redis"),
            child: None,
            name: "redis".into(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path.join("redis.log")
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("redis log file");
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "no", "--daemonize", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir.path)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let mut child = command
            .spawn()
            .expect("redis-server starts (is it installed?)");
        let start = Instant::now();
        loop {
            if self.ping() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "redis-server exited ({status}) at start:\n{}",
                    tail(&self.log_path(), 30)
                );
            }
            if start.elapsed() > START_DEADLINE {
                let _ = child.kill();
                panic!(
                    "redis-server did not answer PING within {START_DEADLINE:?}:\n{}",
                    tail(&self.log_path(), 30)
                );
            }
            std::thread::sleep(POLL);
        }
        self.child = Some(child);
    }

    /// Whether the server answers PING now.
    pub fn ping(&self) -> bool {
        self.query::<String>(&mut redis::cmd("PING")).is_ok()
    }

    /// kill -9: no goodbye to its clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (the append-only file
    /// brings the data back).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// One command on a fresh connection (Redis may have restarted since
    /// the last one), with short timeouts.
    pub fn query<T: redis::FromRedisValue>(
        &self,
        command: &mut redis::Cmd,
    ) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
        connection.set_read_timeout(Some(Duration::from_secs(5)))?;
        connection.set_write_timeout(Some(Duration::from_secs(5)))?;
        command.query(&mut connection)
    }

    /// `GET key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.query(redis::cmd("GET").arg(key)).expect("GET answers")
    }

    /// `KEYS pattern` (test Redis: tiny).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .query(redis::cmd("KEYS").arg(pattern))
            .expect("KEYS answers");
        keys.sort();
        keys
    }

    /// `CLIENT KILL TYPE pubsub`: every subscriber connection dropped.
    pub fn kill_pubsub_clients(&self) -> i64 {
        self.query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
            .expect("CLIENT KILL answers")
    }

    /// `DEBUG SLEEP seconds`, on its own thread (the server stalls for
    /// everyone meanwhile); join the handle to know it is over.
    pub fn debug_sleep(&self, seconds: f64) -> std::thread::JoinHandle<()> {
        let url = self.url();
        std::thread::spawn(move || {
            let client = redis::Client::open(url).expect("redis url");
            let mut connection = client
                .get_connection_with_timeout(Duration::from_secs(2))
                .expect("connect for DEBUG SLEEP");
            let _: redis::RedisResult<()> = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query(&mut connection);
        })
    }

    /// The message log of a conversation: (entry id, decoded `m`).
    pub fn stream(&self, key: &str) -> Vec<(String, serde_json::Value)> {
        let reply: redis::streams::StreamRangeReply = self
            .query(redis::cmd("XRANGE").arg(key).arg("-").arg("+"))
            .expect("XRANGE answers");
        reply
            .ids
            .into_iter()
            .map(|entry| {
                let message = match entry.map.get("m") {
                    Some(redis::Value::BulkString(bytes)) => {
                        switchboard_proto::codec::Codec::MsgPack
                            .decode_value(bytes)
                            .unwrap_or(serde_json::Value::Null)
                    }
                    _ => serde_json::Value::Null,
                };
                (entry.id, message)
            })
            .collect()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} (port {}) log tail ---\n{}",
                self.name,
                self.port,
                self.log_tail(20)
            );
        }
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL.

/// The PostgreSQL that runs on every machine of this project (DESIGN.md):
/// loopback, user `postgres`, trust auth. `.ci/run` starts it if it is down.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of the test's own (`sb_test_<uuid>`), created empty (the
/// nodes run the migrations) and dropped on drop, `WITH (FORCE)` so the
/// connections of a node that is still up, or was killed, do not keep it.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let name = format!("sb_test_{}", uuid::Uuid::now_v7().simple());
        if let Err(error) = psql("postgres", &format!("CREATE DATABASE {name}")) {
            panic!(
                "cannot create a test database on the PostgreSQL at {POSTGRES} (trust auth; \
                 start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) \
                 main start`): {error}"
            );
        }
        PgDatabase { name }
    }

    /// The URL a node's `storage.database_url` takes.
    pub fn url(&self) -> String {
        format!("{POSTGRES}/{}", self.name)
    }

    /// One statement in this database; its rows as `psql -tA` prints them
    /// (`|` between columns, one line a row).
    pub fn query(&self, sql: &str) -> String {
        psql(&self.name, sql).unwrap_or_else(|error| panic!("{error}"))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = psql("postgres", &drop) {
            eprintln!("test database {} not dropped: {error}", self.name);
        }
    }
}

/// Runs `sql` with `psql` in `database` (no password: trust auth); a
/// connection gives up after 5 s and a statement after 30 s, so a database
/// that hangs fails the test instead of blocking it.
pub fn psql(database: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"])
        .args(["-d", database])
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGOPTIONS", "-c statement_timeout=30000")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| {
            format!("psql does not run (is the PostgreSQL client installed?): {error}")
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned())
    } else {
        Err(format!(
            "psql -d {database} -c {sql:?}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ))
    }
}

// ---------------------------------------------------------------------------
// Nodes.

/// What a node's config varies in from the shared test config.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub rona_timeout_ms: u64,
    pub auto_wrap_up_ms: u64,
    pub heartbeat_ttl_ms: u64,
    pub request_timeout_ms: u64,
    /// `RUST_LOG` of the node.
    pub log_filter: String,
    /// Where the node exports its spans (OTLP/HTTP), if anywhere.
    pub otlp_endpoint: Option<String>,
    /// `storage.database_url`. A cluster node needs one (a `Cluster` gives
    /// its nodes their shared database); with none, an embedded node keeps
    /// its SQLite file in its own directory.
    pub database_url: Option<String>,
    /// More environment for the process (`SWITCHBOARD__...` overrides).
    /// Nothing else of the test's own `SWITCHBOARD*` environment reaches it.
    pub env: Vec<(String, String)>,
    /// Text of the shared config replaced (from, to): Sam an admin, say.
    pub config_edits: Vec<(String, String)>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            rona_timeout_ms: 30_000,
            auto_wrap_up_ms: 60_000,
            heartbeat_ttl_ms: HEARTBEAT_TTL_MS,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            log_filter: "info".into(),
            otlp_endpoint: None,
            database_url: None,
            env: Vec::new(),
            config_edits: Vec::new(),
        }
    }
}

/// The shared test config (api/support.rs) with this node's listen address,
/// node id, cluster keys (none: embedded), database (none: no `[storage]`
/// key) and timeouts; no per-address throttles (every test client comes
/// from 127.0.0.1).
pub fn node_config(
    port: u16,
    node_id: &str,
    redis_url: Option<&str>,
    database_url: Option<&str>,
    options: &NodeOptions,
) -> String {
    let mut server = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:0\"\nnode_id = \"{node_id}\"\n"
    );
    if let Some(url) = redis_url {
        server.push_str(&format!(
            "[cluster]\nredis_url = \"{url}\"\nkey_prefix = \"sb\"\nheartbeat_ttl_ms = {}\nrequest_timeout_ms = {}\n",
            options.heartbeat_ttl_ms, options.request_timeout_ms
        ));
    }
    let replacements = [
        (
            "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n",
            server,
        ),
        (
            "rona_timeout_ms = 30000\n",
            format!("rona_timeout_ms = {}\n", options.rona_timeout_ms),
        ),
        (
            "auto_wrap_up_ms = 60000\n",
            format!("auto_wrap_up_ms = {}\n", options.auto_wrap_up_ms),
        ),
        (
            "command_burst = 1000\n",
            "command_burst = 1000\nchats_per_minute_per_address = 0\nlogins_per_minute_per_address = 0\n\
             logins_per_minute_per_account = 0\n"
                .to_owned(),
        ),
    ];
    let mut config = CONFIG.to_owned();
    for (from, to) in &options.config_edits {
        assert!(
            config.contains(from.as_str()),
            "api CONFIG changed: no {from:?}"
        );
        config = config.replacen(from.as_str(), to, 1);
    }
    for (from, to) in replacements {
        assert!(config.contains(from), "api CONFIG changed: no {from:?}");
        config = config.replacen(from, &to, 1);
    }
    if let Some(url) = database_url {
        let key = format!("database_url = \"{url}\"\n");
        if config.contains("\n[storage]\n") {
            config = config.replacen("\n[storage]\n", &format!("\n[storage]\n{key}"), 1);
        } else {
            config.push_str(&format!("\n[storage]\n{key}"));
        }
    }
    config
}

/// One `switchboard` process.
pub struct NodeProcess {
    pub node_id: String,
    pub port: u16,
    redis_url: Option<String>,
    pub options: NodeOptions,
    dir: TempDir,
    child: Option<Child>,
    /// Set while the process is SIGSTOPped (drop continues it first).
    stopped: bool,
}

impl NodeProcess {
    /// Starts a node and waits until `/readyz` answers 200.
    pub async fn start(
        node_id: &str,
        redis_url: Option<&str>,
        options: NodeOptions,
    ) -> NodeProcess {
        let mut node = NodeProcess {
            node_id: node_id.to_owned(),
            port: free_port(),
            redis_url: redis_url.map(str::to_owned),
            options,
            dir: TempDir::new(node_id),
            child: None,
            stopped: false,
        };
        node.spawn_ready().await;
        node
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path.join("node.log")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The node's command: its config file written, its environment set;
    /// stdin closed, output not yet directed.
    fn command(&self) -> Command {
        let config_path = self.dir.path.join("switchboard.toml");
        let database_url = self.options.database_url.clone().or_else(|| {
            self.redis_url
                .is_none()
                .then(|| format!("sqlite://{}/switchboard.db", self.dir.path.display()))
        });
        let config = node_config(
            self.port,
            &self.node_id,
            self.redis_url.as_deref(),
            database_url.as_deref(),
            &self.options,
        );
        std::fs::write(&config_path, config).expect("write node config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SWITCHBOARD") {
                command.env_remove(key);
            }
        }
        if let Some(endpoint) = &self.options.otlp_endpoint {
            command.env("SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT", endpoint);
        }
        command
            .envs(self.options.env.iter().map(|(key, value)| (key, value)))
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", &self.options.log_filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("node log file");
        let child = self
            .command()
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("switchboard binary starts");
        self.child = Some(child);
        self.stopped = false;
    }

    /// Runs a node that must refuse to start: waits for it to exit and
    /// returns its exit status and what it wrote to stderr. Fails the test
    /// if the node becomes ready instead, or runs on past the deadline.
    pub async fn refused(
        node_id: &str,
        redis_url: Option<&str>,
        options: NodeOptions,
    ) -> (std::process::ExitStatus, String) {
        let mut node = NodeProcess {
            node_id: node_id.to_owned(),
            port: free_port(),
            redis_url: redis_url.map(str::to_owned),
            options,
            dir: TempDir::new(node_id),
            child: None,
            stopped: false,
        };
        let stderr_path = node.dir.path.join("stderr.log");
        let stdout = File::create(node.log_path()).expect("node log file");
        let stderr = File::create(&stderr_path).expect("node stderr file");
        let child = node
            .command()
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("switchboard binary starts");
        node.child = Some(child);
        let start = Instant::now();
        loop {
            let exited = node
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                node.child = None;
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                return (status, stderr);
            }
            assert!(
                readyz(node.port).await != Some(200),
                "node {node_id} started (/readyz answers 200) where it should have refused:\n{}",
                node.log_tail(20)
            );
            assert!(
                start.elapsed() < START_DEADLINE,
                "node {node_id} neither exited nor became ready within {START_DEADLINE:?}:\n{}",
                node.log_tail(20)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn spawn_ready(&mut self) {
        self.spawn();
        self.wait_ready().await;
    }

    /// Waits until `/readyz` answers 200; panics with the log tail if the
    /// process exits or the deadline passes.
    pub async fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if readyz(self.port).await == Some(200) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "node {} exited ({status}) before it was ready:\n{}",
                        self.node_id,
                        self.log_tail(40)
                    );
                }
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "node {} not ready within {START_DEADLINE:?}:\n{}",
                self.node_id,
                self.log_tail(40)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `/readyz` until it answers `status`, within `limit`.
    pub async fn wait_readyz(&self, status: u16, limit: Duration) {
        let start = Instant::now();
        loop {
            let now = readyz(self.port).await;
            if now == Some(status) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "node {}: /readyz never answered {status} within {limit:?} (last: {now:?}):\n{}",
                self.node_id,
                self.log_tail(30)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
    }

    /// SIGTERM, then waits for the exit (drain); returns its status.
    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("node runs");
        if self.stopped {
            signal(child.id(), "CONT");
            self.stopped = false;
        }
        signal(child.id(), "TERM");
        wait_exit(&mut child, EXIT_DEADLINE).unwrap_or_else(|| {
            panic!(
                "node {} did not exit within {EXIT_DEADLINE:?} of SIGTERM:\n{}",
                self.node_id,
                self.log_tail(30)
            )
        })
    }

    /// SIGSTOP: the process freezes (sockets stay open).
    pub fn stop(&mut self) {
        signal(self.pid().expect("node runs"), "STOP");
        self.stopped = true;
    }

    /// SIGCONT.
    pub fn cont(&mut self) {
        signal(self.pid().expect("node runs"), "CONT");
        self.stopped = false;
    }

    /// Starts the node again (same id, port and config) after a kill or a
    /// drain, and waits until it is ready.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.kill9();
        }
        self.spawn_ready().await;
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.stopped {
            if let Some(pid) = self.pid() {
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(pid.to_string())
                    .status();
            }
        }
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- node {} (port {}) log tail ---\n{}",
                self.node_id,
                self.port,
                self.log_tail(40)
            );
        }
    }
}

/// `GET /readyz` over a plain TCP connection (answers within a second or
/// counts as no answer).
pub async fn readyz(port: u16) -> Option<u16> {
    http_status(port, "/readyz").await
}

async fn http_status(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
}

// ---------------------------------------------------------------------------
// Clusters.

/// One Redis, one PostgreSQL database and `n` nodes (`n1`, `n2`, ...)
/// sharing both. Holds a cluster slot for its lifetime. Dropped in field
/// order: the nodes are killed before Redis and before their database is
/// dropped.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    pub redis: RedisServer,
    pub database: PgDatabase,
    /// The options every node of this cluster starts with (its database's
    /// URL set).
    pub options: NodeOptions,
    _slot: Slot,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, NodeOptions::default(), &[]).await
    }

    pub async fn start_with(n: usize, options: NodeOptions, redis_args: &[&str]) -> Cluster {
        let slot = Slot::acquire();
        let redis = RedisServer::start(redis_args);
        let database = PgDatabase::create();
        let options = NodeOptions {
            database_url: Some(database.url()),
            ..options
        };
        let mut cluster = Cluster {
            nodes: Vec::with_capacity(n),
            redis,
            database,
            options,
            _slot: slot,
        };
        for _ in 0..n {
            cluster.start_node().await;
        }
        cluster
    }

    /// Starts one more node (`n<count + 1>`) on this cluster's Redis and
    /// database, and waits until it is ready; returns its index.
    pub async fn start_node(&mut self) -> usize {
        let id = format!("n{}", self.nodes.len() + 1);
        let node = NodeProcess::start(&id, Some(&self.redis.url()), self.options.clone()).await;
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The chat is whole up to `last`: every party holds the same thread,
    /// everything acknowledged reached every party, and the Stream in Redis
    /// holds `1..=last` with no gap.
    pub fn assert_chat_intact(&self, id: &str, last: u64, parties: &[&Party]) {
        assert_same_thread(id, last, parties);
        assert_acked_delivered(id, parties, parties);
        assert_eq!(
            check_stream(&self.redis.stream(&format!("sb:log:{id}")), id),
            Ok(last)
        );
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NodeProcess::url).collect()
    }

    /// The owner record of an actor (`agent`, `queue` or `conv`).
    pub fn owner(&self, kind: &str, id: &str) -> Option<String> {
        self.redis.get(&format!("sb:owner:{kind}:{id}"))
    }

    /// Polls until the owner of an actor is recorded, within `limit`.
    pub async fn wait_owner(&self, kind: &str, id: &str, limit: Duration) -> (usize, String) {
        let start = Instant::now();
        loop {
            if let Some(owner) = self.owner(kind, id) {
                if let Some(index) = self
                    .nodes
                    .iter()
                    .position(|node| incarnation_of(&owner, &node.node_id))
                {
                    return (index, owner);
                }
            }
            assert!(
                start.elapsed() < limit,
                "no owner of {kind}:{id} within {limit:?} (now {:?})",
                self.owner(kind, id)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until the owner of an actor is a live incarnation other than
    /// `old`, on a node other than `not_on`; returns (index, incarnation).
    pub async fn wait_owner_moved(
        &mut self,
        kind: &str,
        id: &str,
        old: &str,
        not_on: usize,
        limit: Duration,
    ) -> (usize, String) {
        let start = Instant::now();
        loop {
            if let Some(owner) = self.owner(kind, id) {
                let index = self
                    .nodes
                    .iter()
                    .position(|node| incarnation_of(&owner, &node.node_id));
                if let Some(index) = index {
                    if owner != old && index != not_on && self.nodes[index].is_running() {
                        return (index, owner);
                    }
                }
            }
            assert!(
                start.elapsed() < limit,
                "{kind}:{id} still owned by {:?} after {limit:?} (old owner {old})",
                self.owner(kind, id)
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Whether `incarnation` ("n1.<suffix>") belongs to node `node_id` ("n1").
pub fn incarnation_of(incarnation: &str, node_id: &str) -> bool {
    incarnation == node_id
        || incarnation
            .strip_prefix(node_id)
            .is_some_and(|rest| rest.starts_with(['.', '-', ':', '_']))
}

/// Polls `condition` until it holds, within `limit`; panics naming `what`.
pub async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}
