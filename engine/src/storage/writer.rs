//! The database's one write path. Every change goes through one task that
//! takes what has queued up (at most `batch_max` writes), applies it in one
//! transaction and answers each write once the transaction is committed:
//! group commit, so a thousand messages a second cost a few dozen commits,
//! and a message is acknowledged only after it is durable.
//!
//! A batch that fails for a reason other than a lost connection is applied
//! again one write at a time, so one bad write fails alone.

use sqlx::{Any, AnyPool, Transaction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::model::Message;
use tokio::sync::{mpsc, oneshot};

use super::records::RecordRow;
use super::{Dialect, StorageError};

/// One thing to store. A write is a list of them, applied in order, whole.
#[derive(Debug, Clone)]
pub enum Change {
    /// An actor's snapshot (`kind:id`): `Some` keeps it, `None` deletes it.
    Snapshot {
        actor: String,
        bytes: Option<Vec<u8>>,
    },
    /// An actor's first snapshot, unless it has one.
    CreateSnapshot { actor: String, bytes: Vec<u8> },
    /// A logged-in agent's directory row; `None` when it logs out.
    Presence {
        agent: String,
        view: Option<Vec<u8>>,
    },
    /// When the agent last logged out (tokens issued before it are refused).
    Logout { agent: String, at_ms: i64 },
    /// A conversation's place in a queue's index; `None` once it left.
    Waiting {
        queue: String,
        conversation: String,
        since_ms: Option<i64>,
    },
    /// The conversation's record as it stands (its messages apart).
    Record(Box<RecordRow>),
    /// A message of a conversation's log and transcript. Stored once: a
    /// second write of the same `seq` changes nothing.
    Message(Arc<Message>),
}

enum Job {
    Write {
        changes: Vec<Change>,
        done: oneshot::Sender<Result<(), StorageError>>,
    },
    /// Bring the search index up to date now (a search is about to run).
    Index {
        done: oneshot::Sender<Result<(), StorageError>>,
    },
}

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Writes waiting for the writer before a new one waits for room.
const QUEUED_MAX: usize = 65_536;

/// Longest a batch may take before it counts as failed.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite: how far the search index may fall behind the messages.
const INDEX_EVERY: Duration = Duration::from_secs(1);

fn stopped() -> StorageError {
    StorageError::Unavailable("the database writer stopped".into())
}

impl Writer {
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        pool: AnyPool,
        dialect: Dialect,
        batch_max: usize,
        healthy: Arc<AtomicBool>,
    ) -> Writer {
        let (jobs, queued) = mpsc::channel(QUEUED_MAX);
        runtime.spawn(run(queued, pool, dialect, batch_max.max(1), healthy));
        Writer { jobs }
    }

    pub(crate) fn submit(
        &self,
        changes: Vec<Change>,
    ) -> impl std::future::Future<Output = Result<(), StorageError>> + Send + 'static {
        let jobs = self.jobs.clone();
        async move {
            if changes.is_empty() {
                return Ok(());
            }
            let (done, answer) = oneshot::channel();
            jobs.send(Job::Write { changes, done })
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        }
    }

    /// Resolves once every message written before is in the search index.
    pub(crate) fn index_now(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StorageError>> + Send + 'static {
        let jobs = self.jobs.clone();
        async move {
            let (done, answer) = oneshot::channel();
            jobs.send(Job::Index { done })
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        }
    }
}

struct Write {
    changes: Vec<Change>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

async fn run(
    mut queued: mpsc::Receiver<Job>,
    pool: AnyPool,
    dialect: Dialect,
    batch_max: usize,
    healthy: Arc<AtomicBool>,
) {
    let mut batch: Vec<Write> = Vec::with_capacity(batch_max);
    let mut index_asks: Vec<oneshot::Sender<Result<(), StorageError>>> = Vec::new();
    // SQLite: messages written whose words are not indexed yet.
    let mut unindexed = dialect == Dialect::Sqlite;
    let mut last_index = Instant::now();
    loop {
        let first = if unindexed {
            let wait = INDEX_EVERY.saturating_sub(last_index.elapsed());
            match tokio::time::timeout(wait, queued.recv()).await {
                Ok(job) => job,
                Err(_) => {
                    index(&pool, &mut unindexed, &mut last_index, Vec::new()).await;
                    continue;
                }
            }
        } else {
            queued.recv().await
        };
        let Some(first) = first else { return };
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write { changes, done } => batch.push(Write { changes, done }),
                Job::Index { done } => index_asks.push(done),
            }
            if batch.len() < batch_max {
                next = queued.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let wrote_messages = write_batch(&pool, dialect, &healthy, &mut batch).await;
            unindexed |= dialect == Dialect::Sqlite && wrote_messages;
        }
        let due = unindexed && last_index.elapsed() >= INDEX_EVERY;
        if dialect == Dialect::Sqlite && (due || !index_asks.is_empty()) {
            index(
                &pool,
                &mut unindexed,
                &mut last_index,
                std::mem::take(&mut index_asks),
            )
            .await;
        } else {
            for ask in index_asks.drain(..) {
                let _ = ask.send(Ok(()));
            }
        }
    }
}

/// Indexes what waits (all of it), then answers `asks`.
async fn index(
    pool: &AnyPool,
    unindexed: &mut bool,
    last_index: &mut Instant,
    asks: Vec<oneshot::Sender<Result<(), StorageError>>>,
) {
    *last_index = Instant::now();
    let result = loop {
        match super::records::index_words(pool).await {
            Ok(0) => break Ok(()),
            Ok(_) => continue,
            Err(error) => break Err(StorageError::from(error)),
        }
    };
    match &result {
        Ok(()) => *unindexed = false,
        Err(error) => tracing::warn!(%error, "search index not brought up to date"),
    }
    for ask in asks {
        let _ = ask.send(result.clone());
    }
}

/// Applies a batch and answers each of its writes. Returns whether it
/// stored messages.
async fn write_batch(
    pool: &AnyPool,
    dialect: Dialect,
    healthy: &AtomicBool,
    batch: &mut Vec<Write>,
) -> bool {
    let has_messages = batch.iter().any(|write| {
        write
            .changes
            .iter()
            .any(|c| matches!(c, Change::Message(_)))
    });
    metrics::histogram!("switchboard_db_batch_writes").record(batch.len() as f64);
    let started = Instant::now();
    let result = match tokio::time::timeout(
        BATCH_TIMEOUT,
        apply(pool, dialect, batch.iter().map(|write| &write.changes)),
    )
    .await
    {
        Ok(result) => result,
        // A database that stopped answering mid-batch (a lost socket, a
        // lock held elsewhere): the batch fails, its transaction is rolled
        // back, and the node reports itself not ready.
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    };
    metrics::histogram!("switchboard_db_commit_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            healthy.store(true, Ordering::Release);
            for write in batch.drain(..) {
                let _ = write.done.send(Ok(()));
            }
        }
        Err(error) if batch.len() > 1 && !is_connection_error(&error) => {
            for write in batch.drain(..) {
                let alone = apply(pool, dialect, std::iter::once(&write.changes)).await;
                if let Err(error) = &alone {
                    tracing::error!(%error, "a write was refused by the database");
                }
                let _ = write.done.send(alone.map_err(StorageError::from));
            }
        }
        Err(error) => {
            if is_connection_error(&error) {
                healthy.store(false, Ordering::Release);
            }
            tracing::error!(%error, writes = batch.len(), "database batch failed");
            let error = StorageError::from(error);
            for write in batch.drain(..) {
                let _ = write.done.send(Err(error.clone()));
            }
        }
    }
    has_messages
}

fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
    )
}

/// One transaction for the batch. Messages, most of what a busy node
/// writes, go last and together, a few multi-row statements for the lot
/// (each statement is a round trip to the database's thread or server);
/// the rest goes in order. A conversation's row exists by then: its first
/// write carries its record before its first message.
async fn apply<'a>(
    pool: &AnyPool,
    dialect: Dialect,
    writes: impl Iterator<Item = &'a Vec<Change>>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut messages: Vec<&Message> = Vec::new();
    for changes in writes {
        for change in changes {
            apply_one(&mut tx, change, &mut messages).await?;
        }
    }
    super::records::insert_messages(&mut tx, dialect, &messages).await?;
    tx.commit().await
}

async fn apply_one<'a>(
    tx: &mut Transaction<'static, Any>,
    change: &'a Change,
    messages: &mut Vec<&'a Message>,
) -> Result<(), sqlx::Error> {
    match change {
        Change::Snapshot {
            actor,
            bytes: Some(bytes),
        } => {
            sqlx::query(
                "INSERT INTO actor_state (actor, snapshot) VALUES ($1, $2) \
                 ON CONFLICT (actor) DO UPDATE SET snapshot = excluded.snapshot",
            )
            .bind(actor.as_str())
            .bind(bytes.as_slice())
            .execute(&mut **tx)
            .await?;
        }
        Change::Snapshot { actor, bytes: None } => {
            sqlx::query("DELETE FROM actor_state WHERE actor = $1")
                .bind(actor.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Change::CreateSnapshot { actor, bytes } => {
            sqlx::query(
                "INSERT INTO actor_state (actor, snapshot) VALUES ($1, $2) \
                 ON CONFLICT (actor) DO NOTHING",
            )
            .bind(actor.as_str())
            .bind(bytes.as_slice())
            .execute(&mut **tx)
            .await?;
        }
        Change::Presence {
            agent,
            view: Some(view),
        } => {
            sqlx::query(
                "INSERT INTO presence (agent_id, view) VALUES ($1, $2) \
                 ON CONFLICT (agent_id) DO UPDATE SET view = excluded.view",
            )
            .bind(agent.as_str())
            .bind(view.as_slice())
            .execute(&mut **tx)
            .await?;
        }
        Change::Presence { agent, view: None } => {
            sqlx::query("DELETE FROM presence WHERE agent_id = $1")
                .bind(agent.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Change::Logout { agent, at_ms } => {
            sqlx::query(
                "INSERT INTO logouts (agent_id, at_ms) VALUES ($1, $2) \
                 ON CONFLICT (agent_id) DO UPDATE SET at_ms = excluded.at_ms",
            )
            .bind(agent.as_str())
            .bind(*at_ms)
            .execute(&mut **tx)
            .await?;
        }
        Change::Waiting {
            queue,
            conversation,
            since_ms: Some(since),
        } => {
            sqlx::query(
                "INSERT INTO waiting (queue_id, conversation_id, since_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (queue_id, conversation_id) DO UPDATE SET since_ms = excluded.since_ms",
            )
            .bind(queue.as_str())
            .bind(conversation.as_str())
            .bind(*since)
            .execute(&mut **tx)
            .await?;
        }
        Change::Waiting {
            queue,
            conversation,
            since_ms: None,
        } => {
            sqlx::query("DELETE FROM waiting WHERE queue_id = $1 AND conversation_id = $2")
                .bind(queue.as_str())
                .bind(conversation.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Change::Record(row) => super::records::upsert(tx, row).await?,
        // Stored together after the rest of the batch (`apply`).
        Change::Message(message) => messages.push(message),
    }
    Ok(())
}
