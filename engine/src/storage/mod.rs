//! The system of record: a database (SQLite for one node, PostgreSQL for a
//! cluster) that keeps every conversation, its transcript and, for an
//! embedded node, the live state its actors need after a restart.
//!
//! Code map:
//! - this file: [`Database`], opened from `[storage] database_url`, with its
//!   migrations (`engine/migrations/<dialect>/`) run at start, and its own
//!   small runtime, so a connection's I/O never depends on an actor thread.
//! - [`change`]: what can be written ([`Change`]) and the SQL that writes
//!   it, once for both databases.
//! - [`writer`]: the one ordered write path, a thread of its own. Changes
//!   are queued and applied in batches, one transaction each (group
//!   commit); a change's future resolves once its batch is committed.
//!   SQLite is written on that thread through a connection of its own;
//!   PostgreSQL through the pool.
//! - [`records`]: what people and other systems read: a record, search with
//!   cursor paging, export rows, retention.
//! - [`customers`]: verified customers linked across chats, erasure.
//! - [`live`]: the engine's [`Store`](crate::cluster::store::Store) on the
//!   database (embedded), and [`Recorded`](live::Recorded), which puts any
//!   other store's writes on the record too (memory, Redis).
//!
//! It knows no actor and no HTTP: it stores bytes and records.

pub mod change;
pub mod customers;
pub mod live;
pub mod records;
pub mod writer;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use writer::sqlite::SqliteTarget;

pub use change::Change;

/// Which SQL the database speaks: the few statements that differ (full-text
/// search, upserts of blobs) are chosen by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `sqlite://path`, `postgres://...`, or `memory:` (an in-memory SQLite
    /// database: gone with the process; for tests and benchmarks).
    pub url: String,
    pub max_connections: u32,
    /// How long a query waits for a free connection, and a start for the
    /// database to answer.
    pub acquire_timeout: Duration,
    /// Most changes committed in one transaction.
    pub batch_max: usize,
}

impl DatabaseConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            batch_max: 512,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("database {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("database {url} has schema version {found}, newer than this node understands ({known}); upgrade the node")]
    SchemaNewer { url: String, found: i64, known: i64 },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data undecodable: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        StorageError::Unavailable(error.to_string())
    }
}

/// `url` with its password, if any, replaced by `***`: URLs are logged and
/// shown in errors.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    let path = if rest.contains('/') {
        format!("/{path}")
    } else {
        String::new()
    };
    format!("{scheme}://{masked}@{host}{path}")
}

/// A handle on the database: cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    /// First, so it is dropped first: its thread ends with the last handle.
    writer: writer::Writer,
    pool: AnyPool,
    dialect: Dialect,
    /// Runs every query: a pooled PostgreSQL socket is bound to the runtime
    /// that opened it, and actor threads come and go.
    runtime: OwnedRuntime,
    /// False from a failed batch or health check until one succeeds.
    healthy: Arc<AtomicBool>,
    url: String,
    /// The URL as configured, password included: for connections of their
    /// own (a cluster's `LISTEN`). Never shown.
    connect_url: String,
    memory: bool,
    /// This database's id, which every event cursor names.
    feed_id: String,
    /// Raised after each commit that stored events.
    events: crate::events::feed::EventSignal,
}

/// A runtime that may be dropped from inside another runtime (tests drop
/// engines in async code, where a plain `Runtime` drop panics).
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime lives as long as the database"),
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Database {
    /// Connects, creates a SQLite file (and its folder) if missing, and runs
    /// the migrations. Fails when the database cannot be reached or holds a
    /// schema newer than this node's.
    pub async fn open(config: DatabaseConfig) -> Result<Database, StorageError> {
        sqlx::any::install_default_drivers();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-db")
            .enable_all()
            .build()
            .map_err(|error| StorageError::Unavailable(format!("database runtime: {error}")))?;
        let runtime = OwnedRuntime(Some(runtime));
        let handle = runtime.handle().clone();
        let shown = redacted(&config.url);
        let opened = handle
            .spawn(connect(config.clone()))
            .await
            .map_err(|error| StorageError::Unavailable(error.to_string()))??;
        let (pool, dialect, sqlite) = opened;
        let healthy = Arc::new(AtomicBool::new(true));
        let feed_id = handle
            .spawn(feed_id(pool.clone()))
            .await
            .map_err(|error| StorageError::Unavailable(error.to_string()))??;
        let events = crate::events::feed::EventSignal::default();
        let backend: Box<dyn writer::Backend> = match &sqlite {
            Some(target) => Box::new(writer::sqlite::SqliteBackend::open(target)?),
            None => Box::new(writer::pool::PoolBackend::new(
                pool.clone(),
                dialect,
                handle.clone(),
            )),
        };
        let writer = writer::Writer::start(
            &handle,
            backend,
            config.batch_max,
            healthy.clone(),
            events.clone(),
        )?;
        let database = Database {
            inner: Arc::new(Inner {
                pool,
                dialect,
                runtime,
                writer,
                healthy,
                url: shown,
                connect_url: config.url.clone(),
                memory: config.url == "memory:",
                feed_id,
                events,
            }),
        };
        database.watch_health();
        Ok(database)
    }

    /// `memory:`: nothing outlives the process.
    pub fn is_memory(&self) -> bool {
        self.inner.memory
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// The URL, password masked.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Did the last write or health check reach the database?
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Acquire)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// This database's id: event cursors name it.
    pub fn feed_id(&self) -> &str {
        &self.inner.feed_id
    }

    /// Raised after each commit that stored events.
    pub fn event_signal(&self) -> &crate::events::feed::EventSignal {
        &self.inner.events
    }

    /// Applies `changes` in the next batch; resolves once it is committed.
    pub fn write(
        &self,
        changes: Vec<Change>,
    ) -> impl std::future::Future<Output = Result<(), StorageError>> + Send + 'static {
        self.inner.writer.submit(changes)
    }

    /// Resolves once every message written so far can be found by search
    /// (SQLite indexes words in batches, at most a second behind).
    pub(crate) async fn index_now(&self) -> Result<(), StorageError> {
        self.inner.writer.index_now().await
    }

    /// The URL as configured (password included: never log it).
    pub(crate) fn connect_url(&self) -> &str {
        &self.inner.connect_url
    }

    /// Runs `work` on the database's runtime, in the background.
    pub(crate) fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.runtime.handle().spawn(work);
    }

    /// Runs `work` on the database's runtime.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        F: std::future::Future<Output = Result<T, StorageError>> + Send + 'static,
        T: Send + 'static,
    {
        self.inner
            .runtime
            .handle()
            .spawn(work)
            .await
            .map_err(|error| StorageError::Unavailable(error.to_string()))?
    }

    /// Checks the database once a second while nothing else says whether it
    /// answers, so `/readyz` turns and comes back on its own.
    fn watch_health(&self) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.runtime.handle().spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let pool = inner.pool.clone();
                let healthy = inner.healthy.clone();
                drop(inner);
                let answered = tokio::time::timeout(
                    Duration::from_secs(2),
                    sqlx::query("SELECT 1").execute(&pool),
                )
                .await;
                let ok = matches!(answered, Ok(Ok(_)));
                if healthy.swap(ok, Ordering::AcqRel) != ok {
                    if ok {
                        tracing::info!("database answers again");
                    } else {
                        tracing::error!("database does not answer");
                    }
                }
            }
        });
    }
}

/// The id this database's event cursors carry, made at its first start.
async fn feed_id(pool: AnyPool) -> Result<String, StorageError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('feed_id', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().simple().to_string())
    .execute(&pool)
    .await?;
    let row = sqlx::query("SELECT value FROM meta WHERE key = 'feed_id'")
        .fetch_one(&pool)
        .await?;
    Ok(sqlx::Row::try_get::<String, _>(&row, 0)?)
}

/// Every SQLite connection's settings, the pool's and the writer's.
/// WAL: readers never wait on the writer. NORMAL: a commit is safe from a
/// killed process (not from a power cut until the next checkpoint). Pages
/// from memory, not from read(2): a 16 MiB page cache per connection and
/// the file mapped (reads then cost no system call), measured in
/// docs/benchmarks.md.
pub(crate) const SQLITE_PRAGMAS: [&str; 6] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA cache_size = -16384",
    "PRAGMA mmap_size = 268435456",
    "PRAGMA temp_store = MEMORY",
];

/// Opens the pool and brings the schema up to date. For SQLite, also says
/// which database the writer's own connection opens.
async fn connect(
    config: DatabaseConfig,
) -> Result<(AnyPool, Dialect, Option<writer::sqlite::SqliteTarget>), StorageError> {
    let shown = redacted(&config.url);
    let unreachable = |error: &dyn std::fmt::Display| StorageError::Unreachable {
        url: shown.clone(),
        reason: error.to_string(),
    };
    let (url, dialect, sqlite) = if config.url == "memory:" {
        // Named, so that the writer's connection finds the same database.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "switchboard-memory-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let uri = format!("file:{name}?mode=memory&cache=shared");
        (
            format!("sqlite:{uri}"),
            Dialect::Sqlite,
            Some(SqliteTarget::Memory(uri)),
        )
    } else if let Some(path) = config.url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or(path);
        let target = SqliteTarget::File(file.into());
        if let Some(folder) = std::path::Path::new(file).parent() {
            if !folder.as_os_str().is_empty() {
                std::fs::create_dir_all(folder).map_err(|error| unreachable(&error))?;
            }
        }
        let url = if path.contains("mode=") {
            config.url.clone()
        } else if path.contains('?') {
            format!("{}&mode=rwc", config.url)
        } else {
            format!("{}?mode=rwc", config.url)
        };
        (url, Dialect::Sqlite, Some(target))
    } else if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
        (config.url.clone(), Dialect::Postgres, None)
    } else {
        return Err(StorageError::Unreachable {
            url: shown,
            reason: "unknown scheme: use sqlite://, postgres:// or memory:".into(),
        });
    };
    let options = AnyConnectOptions::from_str(&url)
        .map_err(|error| unreachable(&error))?
        .disable_statement_logging();
    let memory = matches!(sqlite, Some(SqliteTarget::Memory(_)));
    let mut pool = AnyPoolOptions::new()
        .max_connections(if memory {
            1
        } else {
            config.max_connections.max(2)
        })
        .acquire_timeout(config.acquire_timeout);
    if memory {
        // One connection for readers, kept for ever: with the writer's, it
        // keeps the database.
        pool = pool
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    if dialect == Dialect::Sqlite {
        pool = pool.after_connect(|conn, _| {
            Box::pin(async move {
                for sql in SQLITE_PRAGMAS {
                    conn.execute(sql).await?;
                }
                Ok(())
            })
        });
    }
    let pool = pool
        .connect_with(options)
        .await
        .map_err(|error| unreachable(&error))?;
    let migrator = match dialect {
        Dialect::Sqlite => &SQLITE_MIGRATIONS,
        Dialect::Postgres => &POSTGRES_MIGRATIONS,
    };
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    migrator.run(&pool).await.map_err(|error| match error {
        sqlx::migrate::MigrateError::VersionMissing(found) => StorageError::SchemaNewer {
            url: shown.clone(),
            found,
            known,
        },
        other => StorageError::Migration(other.to_string()),
    })?;
    Ok((pool, dialect, sqlite))
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redacted("postgres://sb:secret@db.internal:5432/switchboard"),
            "postgres://sb:***@db.internal:5432/switchboard"
        );
        assert_eq!(
            redacted("postgres://sb@db/switchboard"),
            "postgres://sb@db/switchboard"
        );
        assert_eq!(redacted("sqlite://data/sb.db"), "sqlite://data/sb.db");
    }
}
