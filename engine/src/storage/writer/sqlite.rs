//! SQLite's writer: a connection of its own, run synchronously on the
//! writer's thread. sqlx runs each SQLite connection on a worker thread and
//! hands it every statement and its answer; a busy node's batch is dozens
//! of statements, so the hand-offs, not SQLite, were most of a message's
//! cost (docs/benchmarks.md). Here a statement is a call, prepared once.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql, TransactionBehavior};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::model::Message;

use super::{Backend, WriteError, BATCH_TIMEOUT};
use crate::events::DomainEvent;
use crate::storage::change::{
    latest_per_seq, message_of_event, sqlite_event_values, Change, HighestSeq, MessageRow, Value,
    SQLITE_INSERT_EVENT, SQLITE_INSERT_MESSAGE, SQLITE_NEWEST_SEQ,
};
use crate::storage::StorageError;

/// Which SQLite database the writer opens: the pool's.
#[derive(Debug, Clone)]
pub(crate) enum SqliteTarget {
    File(PathBuf),
    /// A named in-memory database in shared-cache mode (`memory:`), by its
    /// `file:` URI: alive while any connection to it is open.
    Memory(String),
}

/// Messages indexed per transaction: a few milliseconds of the writer's.
const INDEX_CHUNK: usize = 256;

/// Least time between two checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The WAL starts over after every this many checkpoints (about 2 s).
const RESTART_EVERY_PASSES: u32 = 4;

pub(crate) struct SqliteBackend {
    connection: Connection,
    /// `None` for `memory:` (no WAL).
    checkpoints: Option<Checkpoints>,
    /// When the running batch must give up (ms after `epoch`), read by
    /// SQLite's progress handler.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    /// The last `seq` given: `events.seq` and `messages.rowid` both come
    /// from it, in the order of the changes, so the feed reads the two
    /// tables in one order. Read again at the start of each batch, under
    /// the write lock, in case another connection added a row; a batch
    /// that fails leaves a gap, which readers step over.
    last_seq: i64,
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Int(Some(int)) => ValueRef::Integer(*int),
            Value::Text(Some(text)) => ValueRef::Text(text.as_bytes()),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
            Value::Int(None) | Value::Text(None) => ValueRef::Null,
        }))
    }
}

/// Runs a PRAGMA, whether or not it answers with a row.
fn pragma(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut statement = connection.prepare(sql)?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

impl SqliteBackend {
    pub fn open(target: &SqliteTarget) -> Result<SqliteBackend, StorageError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let opened = match target {
            SqliteTarget::File(path) => Connection::open_with_flags(path, flags),
            SqliteTarget::Memory(uri) => Connection::open_with_flags(uri, flags),
        };
        let failed = |error: rusqlite::Error| {
            StorageError::Unavailable(format!("the SQLite writer's connection: {error}"))
        };
        let connection = opened.map_err(failed)?;
        for sql in crate::storage::SQLITE_PRAGMAS {
            pragma(&connection, sql).map_err(failed)?;
        }
        // Most statements the writer runs are the same few, prepared once.
        connection.set_prepared_statement_cache_capacity(64);
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Instant::now();
        let watched = deadline.clone();
        // Every few thousand VM steps: past the deadline, the statement
        // stops (SQLITE_INTERRUPT) and the batch fails.
        connection.progress_handler(
            10_000,
            Some(move || epoch.elapsed().as_millis() as u64 > watched.load(Ordering::Relaxed)),
        );
        let checkpoints = match target {
            SqliteTarget::File(path) => {
                // Commits append to the WAL and never wait for a disk: the
                // checkpoint (copying the WAL into the file, two fsyncs of
                // up to several ms each) runs on a thread of its own.
                pragma(&connection, "PRAGMA wal_autocheckpoint = 0").map_err(failed)?;
                // The WAL file keeps its size when it starts over (reused
                // pages cost less than new ones), up to 64 MiB.
                pragma(&connection, "PRAGMA journal_size_limit = 67108864").map_err(failed)?;
                Some(Checkpoints::start(path)?)
            }
            SqliteTarget::Memory(_) => None,
        };
        let last_seq = newest_seq(&connection).map_err(failed)?;
        Ok(SqliteBackend {
            connection,
            checkpoints,
            deadline,
            epoch,
            last_seq,
        })
    }

    fn apply_changes(&mut self, writes: &[&[Change]]) -> rusqlite::Result<()> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another connection may have added a message row (a lost
        // conversation closed by recovery, with the rowid SQLite gives):
        // the counter goes past it. Read under the write lock.
        self.last_seq = self.last_seq.max(newest_seq(&tx)?);
        let changes = writes.iter().copied().flatten();
        let in_batch: HashSet<(&str, i64)> = changes
            .clone()
            .filter_map(|change| match change {
                Change::Message(message) => Some((
                    message.conversation_id.as_str(),
                    i64::try_from(message.seq).unwrap_or(i64::MAX),
                )),
                _ => None,
            })
            .collect();
        // A `message.created` whose message is in this batch is that
        // message's row, at the `seq` its place among the changes gives.
        let mut as_rows: HashMap<(&str, i64), (i64, &DomainEvent)> = HashMap::new();
        let mut messages: Vec<&Message> = Vec::new();
        let last_seq = &mut self.last_seq;
        let mut next_seq = || {
            *last_seq += 1;
            *last_seq
        };
        for change in changes {
            match change {
                Change::Message(message) => messages.push(message),
                Change::Event(event) => {
                    let seq = next_seq();
                    match message_of_event(event).filter(|key| in_batch.contains(key)) {
                        Some(key) => {
                            as_rows.entry(key).or_insert((seq, event));
                        }
                        None => {
                            execute(&tx, SQLITE_INSERT_EVENT, &sqlite_event_values(event, seq))?;
                        }
                    }
                }
                other => {
                    for statement in other.statements() {
                        execute(&tx, statement.sql, &statement.values)?;
                    }
                }
            }
        }
        let mut highest = HighestSeq::default();
        for message in latest_per_seq(&messages) {
            let row = MessageRow::of(message)
                .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))?;
            let (rowid, event) = match as_rows.get(&(row.conversation_id, row.seq)) {
                Some((seq, event)) => (*seq, Some(*event)),
                None => (next_seq(), None),
            };
            if execute(&tx, SQLITE_INSERT_MESSAGE, &row.sqlite_values(rowid, event))? > 0 {
                highest.stored(row.conversation_id, row.seq);
            }
        }
        for statement in highest.statements() {
            execute(&tx, statement.sql, &statement.values)?;
        }
        tx.commit()
    }

    /// Puts up to [`INDEX_CHUNK`] messages' words into the FTS5 index in
    /// one transaction (one index segment for all of them); a replaced
    /// message's old words go first. Returns whether more wait.
    fn index_some(&mut self) -> rusqlite::Result<bool> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let waiting: Vec<(i64, String, i64, String)> = tx
            .prepare_cached(
                "SELECT rowid, conversation_id, seq, words FROM messages WHERE indexed = 0 LIMIT $1",
            )?
            .query_map([INDEX_CHUNK as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (rowid, conversation, seq, words) in &waiting {
            let rowid = Value::Int(Some(*rowid));
            execute(
                &tx,
                "DELETE FROM message_words WHERE rowid = $1",
                std::slice::from_ref(&rowid),
            )?;
            if !words.is_empty() {
                execute(
                    &tx,
                    "INSERT INTO message_words (rowid, text, conversation_id, seq) VALUES ($1, $2, $3, $4)",
                    &[
                        rowid.clone(),
                        Value::text(words),
                        Value::text(conversation),
                        Value::Int(Some(*seq)),
                    ],
                )?;
            }
            execute(
                &tx,
                "UPDATE messages SET indexed = 1 WHERE rowid = $1",
                std::slice::from_ref(&rowid),
            )?;
        }
        tx.commit()?;
        Ok(waiting.len() == INDEX_CHUNK)
    }

    /// Runs `work` with the batch deadline set.
    fn timed<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> rusqlite::Result<T>,
    ) -> Result<T, WriteError> {
        let deadline = self.epoch.elapsed() + BATCH_TIMEOUT;
        self.deadline
            .store(deadline.as_millis() as u64, Ordering::Relaxed);
        let result = work(self);
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        result.map_err(write_error)
    }
}

/// The newest `seq` given: of `events` and of `messages` rows.
fn newest_seq(connection: &Connection) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(SQLITE_NEWEST_SEQ)?
        .query_row([], |row| row.get(0))
}

/// Runs one statement (prepared once, then from the cache); returns how
/// many rows it changed.
fn execute(connection: &Connection, sql: &str, values: &[Value<'_>]) -> rusqlite::Result<usize> {
    let mut statement = connection.prepare_cached(sql)?;
    for (at, value) in values.iter().enumerate() {
        statement.raw_bind_parameter(at + 1, value)?;
    }
    statement.raw_execute()
}

/// Whether SQLite itself failed (busy past its timeout, out of time, out of
/// disk, I/O) rather than refused this write.
fn write_error(error: rusqlite::Error) -> WriteError {
    use rusqlite::ErrorCode::*;
    let database = matches!(
        error.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | SystemIoFailure
                | DiskFull
                | CannotOpen
                | OperationInterrupted
                | DatabaseCorrupt
                | NotADatabase
                | OutOfMemory
        )
    );
    let error = match error.sqlite_error_code() {
        Some(OperationInterrupted) => StorageError::Unavailable(format!(
            "a batch took more than {} s",
            BATCH_TIMEOUT.as_secs()
        )),
        _ => StorageError::Unavailable(error.to_string()),
    };
    WriteError { database, error }
}

/// The WAL's checkpoints, shared between the writer and a thread of their
/// own. A checkpoint copies the WAL's pages into the database file and
/// syncs both (two fsyncs, of several ms each when much waits): on the
/// thread, not in a commit. But SQLite starts the WAL over from its
/// beginning only when a write begins with every frame copied, and under
/// steady writes the thread's checkpoint never ends with nothing new behind
/// it; so once it has copied the bulk, the writer copies the few frames
/// committed since, itself, between two batches, and the WAL restarts
/// instead of growing for ever.
struct Checkpoints {
    /// Told after each commit.
    nudge: std::sync::mpsc::SyncSender<()>,
    /// Set by the thread after each checkpoint.
    bulk_copied: Arc<AtomicBool>,
}

impl Checkpoints {
    /// Starts the thread that checkpoints the WAL of `path` (PASSIVE: never
    /// waiting for the writer or readers), at most every
    /// [`CHECKPOINT_EVERY`] while commits come. It ends with the writer.
    fn start(path: &std::path::Path) -> Result<Checkpoints, StorageError> {
        let failed = |error: &dyn std::fmt::Display| {
            StorageError::Unavailable(format!("the SQLite checkpointer: {error}"))
        };
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| failed(&error))?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let bulk_copied = Arc::new(AtomicBool::new(false));
        let copied = bulk_copied.clone();
        std::thread::Builder::new()
            .name("switchboard-db-checkpoint".into())
            .spawn(move || {
                let mut last: Option<Instant> = None;
                let mut passes = 0_u32;
                while nudged.recv().is_ok() {
                    if let Some(last) = last {
                        // Pacing, not waiting for an event: the WAL may
                        // grow for this long before it is copied.
                        std::thread::sleep(CHECKPOINT_EVERY.saturating_sub(last.elapsed()));
                    }
                    last = Some(Instant::now());
                    passes += 1;
                    match pragma(&connection, "PRAGMA wal_checkpoint(PASSIVE)") {
                        // The writer's part stalls its commits for a few
                        // ms (two fsyncs): not after every pass.
                        Ok(()) if passes.is_multiple_of(RESTART_EVERY_PASSES) => {
                            copied.store(true, Ordering::Release)
                        }
                        Ok(()) => {}
                        Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
                    }
                }
            })
            .map_err(|error| failed(&error))?;
        Ok(Checkpoints { nudge, bulk_copied })
    }

    /// After a commit: copies the rest if the thread copied the bulk, and
    /// asks for the next checkpoint.
    fn committed(&self, connection: &Connection) {
        if self.bulk_copied.swap(false, Ordering::AcqRel) {
            let started = Instant::now();
            if let Err(error) = pragma(connection, "PRAGMA wal_checkpoint(PASSIVE)") {
                tracing::warn!(%error, "WAL checkpoint failed");
            }
            metrics::histogram!("switchboard_db_wal_catch_up_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        // Full: a checkpoint is already asked for.
        let _ = self.nudge.try_send(());
    }
}

impl Backend for SqliteBackend {
    fn apply(&mut self, writes: &[&[Change]]) -> Result<(), WriteError> {
        self.timed(|backend| backend.apply_changes(writes))?;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.committed(&self.connection);
        }
        Ok(())
    }

    fn indexes_later(&self) -> bool {
        true
    }

    fn index(&mut self) -> Result<bool, WriteError> {
        self.timed(Self::index_some)
    }
}
