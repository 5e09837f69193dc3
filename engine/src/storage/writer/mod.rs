//! The database's one write path. Every change goes through one thread that
//! takes what has queued up (at most `batch_max` writes), applies it in one
//! transaction and answers each write once the transaction is committed:
//! group commit, so a thousand messages a second cost a few dozen commits,
//! and a message is acknowledged only after it is durable.
//!
//! How a batch is applied is the [`Backend`]'s: [`sqlite`] runs SQLite on
//! the writer's own thread and connection (no hand-off per statement);
//! [`pool`] sends the statements through sqlx (PostgreSQL, a server).
//!
//! A batch that fails for a reason other than the database itself (a
//! refused write) is applied again one write at a time, so one bad write
//! fails alone.

pub(crate) mod pool;
pub(crate) mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::{Change, StorageError};
use crate::events::feed::EventSignal;

/// How the writer's thread applies batches.
pub(crate) trait Backend: Send + 'static {
    /// Applies `writes` in one transaction, in order, whole or not at all.
    fn apply(&mut self, writes: &[&[Change]]) -> Result<(), WriteError>;

    /// Does search find new messages only once [`index`](Self::index)
    /// took them (SQLite's FTS5 index, filled in batches)?
    fn indexes_later(&self) -> bool;

    /// Puts a few hundred of the messages that wait into the search index
    /// (a short transaction: writes wait behind it); returns whether more
    /// wait.
    fn index(&mut self) -> Result<bool, WriteError>;
}

/// Why a batch failed.
#[derive(Debug)]
pub(crate) struct WriteError {
    /// The database failed (unreachable, out of time, out of disk), not
    /// the write: trying the writes alone would not help, and the node is
    /// not ready until a write succeeds.
    pub database: bool,
    pub error: StorageError,
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
    /// Time to index what a quiet writer left waiting.
    Tick,
}

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Writes waiting for the writer before a new one waits for room.
const QUEUED_MAX: usize = 65_536;

/// Longest a batch may take before it counts as failed.
pub(crate) const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite: how far the search index may fall behind the messages.
const INDEX_EVERY: Duration = Duration::from_secs(1);

fn stopped() -> StorageError {
    StorageError::Unavailable("the database writer stopped".into())
}

impl Writer {
    /// Starts the writer's thread; `runtime` keeps its clock (the index's
    /// tick). The thread ends once the last [`Writer`] handle is dropped.
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        backend: Box<dyn Backend>,
        batch_max: usize,
        healthy: Arc<AtomicBool>,
        events: EventSignal,
    ) -> Result<Writer, StorageError> {
        let (jobs, queued) = mpsc::channel(QUEUED_MAX);
        if backend.indexes_later() {
            let ticks = jobs.downgrade();
            runtime.spawn(async move {
                let mut every = tokio::time::interval(INDEX_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    let Some(jobs) = ticks.upgrade() else { return };
                    // A full queue has a batch coming, which checks anyway.
                    let _ = jobs.try_send(Job::Tick);
                }
            });
        }
        std::thread::Builder::new()
            .name("switchboard-db-writer".into())
            .spawn(move || run(queued, backend, batch_max.max(1), healthy, events))
            .map_err(|error| StorageError::Unavailable(format!("database writer: {error}")))?;
        Ok(Writer { jobs })
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

/// The writer's thread: waits for work, takes all that queued up, applies
/// it as one batch, and indexes words when due or asked.
fn run(
    mut queued: mpsc::Receiver<Job>,
    mut backend: Box<dyn Backend>,
    batch_max: usize,
    healthy: Arc<AtomicBool>,
    events: EventSignal,
) {
    let mut batch: Vec<Write> = Vec::with_capacity(batch_max);
    let mut index_asks: Vec<oneshot::Sender<Result<(), StorageError>>> = Vec::new();
    // Messages written whose words are not indexed yet.
    let mut unindexed = false;
    let mut last_index = Instant::now();
    while let Some(first) = queued.blocking_recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write { changes, done } => batch.push(Write { changes, done }),
                Job::Index { done } => index_asks.push(done),
                Job::Tick => {}
            }
            if batch.len() < batch_max {
                next = queued.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let wrote_messages = write_batch(backend.as_mut(), &healthy, &events, &mut batch);
            unindexed |= wrote_messages && backend.indexes_later();
        }
        if !index_asks.is_empty() {
            // A search waits: all of it, now.
            let result = loop {
                match backend.index() {
                    Ok(true) => continue,
                    Ok(false) => break Ok(()),
                    Err(failed) => break Err(failed.error),
                }
            };
            last_index = Instant::now();
            unindexed = result.is_err();
            for ask in index_asks.drain(..) {
                let _ = ask.send(result.clone());
            }
        } else if unindexed && last_index.elapsed() >= INDEX_EVERY {
            // One chunk between batches, so no write waits long for it.
            let started = Instant::now();
            let indexed = backend.index();
            metrics::histogram!("switchboard_db_index_seconds")
                .record(started.elapsed().as_secs_f64());
            match indexed {
                Ok(true) => {}
                Ok(false) => {
                    unindexed = false;
                    last_index = Instant::now();
                }
                Err(failed) => {
                    tracing::warn!(error = %failed.error, "search index not brought up to date");
                    last_index = Instant::now();
                }
            }
        }
    }
}

/// Applies a batch and answers each of its writes. Returns whether it
/// stored messages.
fn write_batch(
    backend: &mut dyn Backend,
    healthy: &AtomicBool,
    events: &EventSignal,
    batch: &mut Vec<Write>,
) -> bool {
    let has =
        |wanted: fn(&Change) -> bool| batch.iter().any(|write| write.changes.iter().any(wanted));
    let has_messages = has(|c| matches!(c, Change::Message(_)));
    let has_events = has(|c| matches!(c, Change::Event(_)));
    metrics::histogram!("switchboard_db_batch_writes").record(batch.len() as f64);
    let started = Instant::now();
    let writes: Vec<&[Change]> = batch.iter().map(|write| write.changes.as_slice()).collect();
    let result = backend.apply(&writes);
    drop(writes);
    metrics::histogram!("switchboard_db_commit_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            healthy.store(true, Ordering::Release);
            for write in batch.drain(..) {
                let _ = write.done.send(Ok(()));
            }
            if has_events {
                events.raise();
            }
        }
        Err(failed) if batch.len() > 1 && !failed.database => {
            for write in batch.drain(..) {
                let alone = backend.apply(&[write.changes.as_slice()]);
                if let Err(failed) = &alone {
                    tracing::error!(error = %failed.error, "a write was refused by the database");
                }
                let _ = write.done.send(alone.map_err(|failed| failed.error));
            }
            if has_events {
                events.raise();
            }
        }
        Err(failed) => {
            if failed.database {
                healthy.store(false, Ordering::Release);
            }
            tracing::error!(error = %failed.error, writes = batch.len(), "database batch failed");
            for write in batch.drain(..) {
                let _ = write.done.send(Err(failed.error.clone()));
            }
        }
    }
    has_messages
}
