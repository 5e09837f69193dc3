//! A cluster's one ordered path for events into PostgreSQL.
//!
//! A node appends the events of an actor's write to the outbox, a Redis
//! stream, in the same fenced script as the write itself: the state and
//! its events are both stored or neither, and the stream's order is the
//! order in which the writes happened (per conversation and per agent,
//! since each has one owner at a time, fenced).
//!
//! One node at a time (a [`Lease`]) copies the stream into the `events`
//! table. Each copy is one transaction that first locks `event_feed`'s
//! row, checks that the stream position it read from is the one stored
//! and that no later lease holder has written (its epoch), then inserts
//! the events and stores the new position. So:
//! - every event is copied exactly once (the position moves with the
//!   events, atomically), whichever node dies when;
//! - `seq` is given under the lock, so commit order is `seq` order and a
//!   reader paging by `seq` never skips one;
//! - a node that lost the lease while copying cannot commit after its
//!   successor.
//!
//! Entries are trimmed from the stream once copied. Every node listens for
//! the copier's `NOTIFY` to wake its readers and webhook workers.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::lease::Lease;
use crate::cluster::placement::Placement;
use crate::context::EngineContext;
use crate::events::DomainEvent;
use crate::storage::change::insert_event;
use crate::storage::writer::pool::bound;
use crate::storage::{Database, StorageError};

/// Events copied per transaction, at most.
const BATCH: usize = 1000;
/// How long an idle copier waits before it looks at the stream again.
const IDLE: Duration = Duration::from_millis(10);
/// The copier's lease lapses this long after its node died.
const LEASE_TTL: Duration = Duration::from_secs(6);
/// Locks the row every transaction that inserts events locks first
/// (`POSTGRES_LOCK_EVENTS`), and reads where the copy stands.
const LOCK_FEED: &str = "SELECT position, epoch FROM event_feed WHERE name = 'outbox' FOR UPDATE";
/// The channel a copy notifies.
pub const CHANNEL: &str = "switchboard_events";

/// Starts this node's part: it copies while it holds the lease, and it
/// wakes its own readers when any node copied.
pub(crate) fn start(engine: Arc<EngineContext>, placement: Arc<Placement>) {
    let database = engine.database.clone();
    database.spawn(listen(database.clone()));
    actix::spawn(copy(engine, placement));
}

/// Raises the event signal on every `NOTIFY` from a copier.
async fn listen(database: Database) {
    loop {
        let listened = async {
            let mut listener = sqlx::postgres::PgListener::connect(database.connect_url()).await?;
            listener.listen(CHANNEL).await?;
            loop {
                listener.recv().await?;
                database.event_signal().raise();
            }
        };
        let result: Result<(), sqlx::Error> = listened.await;
        if let Err(error) = result {
            tracing::warn!(%error, "not listening for new events; trying again");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What a copy found.
enum Copied {
    /// The events up to this stream position are in the database.
    To(String),
    /// Another holder moved the position, or holds a later lease: read it
    /// again.
    Stale,
}

async fn copy(engine: Arc<EngineContext>, placement: Arc<Placement>) {
    let keys = placement.keys().clone();
    let mut conn = placement.connection();
    let mut lease = Lease::shared(
        placement.connection(),
        keys.outbox_lease(),
        keys.outbox_epoch(),
        placement.me().to_owned(),
        LEASE_TTL,
    );
    let outbox = keys.outbox();
    let database = engine.database.clone();
    // Where this node knows the stream was copied up to.
    let mut position: Option<String> = None;
    let mut held = false;
    loop {
        if engine.is_resigned() {
            lease.release().await;
            return;
        }
        if !lease.keep().await {
            if held {
                tracing::info!("no longer copying the event outbox");
                held = false;
            }
            position = None;
            tokio::time::sleep(LEASE_TTL / 3).await;
            continue;
        }
        if !held {
            tracing::info!(
                epoch = lease.epoch(),
                "copying the event outbox from this node"
            );
            held = true;
        }
        let from = match &position {
            Some(position) => position.clone(),
            None => match stored_position(&database).await {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(%error, "event outbox position not read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let entries: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XRANGE")
            .arg(&outbox)
            .arg(format!("({from}"))
            .arg("+")
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut conn)
            .await;
        let entries = match entries {
            Ok(reply) => reply.ids,
            Err(error) => {
                tracing::warn!(%error, "event outbox not read");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(last) = entries.last().map(|entry| entry.id.clone()) else {
            position = Some(from);
            tokio::time::sleep(IDLE).await;
            continue;
        };
        let events: Vec<DomainEvent> = entries
            .iter()
            .filter_map(|entry| {
                let bytes: Vec<u8> = entry.get("e")?;
                match serde_json::from_slice(&bytes) {
                    Ok(event) => Some(event),
                    Err(error) => {
                        tracing::error!(entry = %entry.id, %error, "undecodable outbox entry skipped");
                        None
                    }
                }
            })
            .collect();
        let started = std::time::Instant::now();
        match store(&database, &from, &last, lease.epoch(), events).await {
            Ok(Copied::To(to)) => {
                metrics::histogram!("switchboard_outbox_copy_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("switchboard_outbox_events_total")
                    .increment(entries.len() as u64);
                database.event_signal().raise();
                let trimmed: redis::RedisResult<i64> = redis::cmd("XTRIM")
                    .arg(&outbox)
                    .arg("MINID")
                    .arg(&to)
                    .query_async(&mut conn)
                    .await;
                if let Err(error) = trimmed {
                    tracing::warn!(%error, "event outbox not trimmed");
                }
                position = Some(to);
            }
            Ok(Copied::Stale) => {
                tracing::warn!(
                    "the event outbox moved under this node; reading its position again"
                );
                position = None;
            }
            Err(error) => {
                tracing::warn!(%error, "events not copied into the database; trying again");
                position = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn stored_position(database: &Database) -> Result<String, StorageError> {
    let pool = database.pool().clone();
    database
        .run(async move {
            let row = sqlx::query("SELECT position FROM event_feed WHERE name = 'outbox'")
                .fetch_one(&pool)
                .await?;
            Ok(sqlx::Row::try_get::<String, _>(&row, 0)?)
        })
        .await
}

/// One copy: the events read after `from` up to `to`, under `epoch`.
async fn store(
    database: &Database,
    from: &str,
    to: &str,
    epoch: i64,
    events: Vec<DomainEvent>,
) -> Result<Copied, StorageError> {
    let pool = database.pool().clone();
    let (from, to) = (from.to_owned(), to.to_owned());
    database
        .run(async move {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(LOCK_FEED).fetch_one(&mut *tx).await?;
            let stored: String = sqlx::Row::try_get(&row, 0)?;
            let stored_epoch: i64 = sqlx::Row::try_get(&row, 1)?;
            if stored != from || stored_epoch > epoch {
                return Ok(Copied::Stale);
            }
            for event in &events {
                let statement = insert_event(event);
                bound(sqlx::query(statement.sql), &statement.values)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE event_feed SET position = $1, epoch = $2 WHERE name = 'outbox'")
                .bind(&to)
                .bind(epoch)
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Copied::To(to))
        })
        .await
}
