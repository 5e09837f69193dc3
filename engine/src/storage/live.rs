//! The engine's [`Store`] and the database.
//!
//! - [`SqlStore`]: an embedded node keeps everything in its database (SQLite):
//!   snapshots, logs, presence, queue indexes and records, each write one
//!   change list in the group commit. A restart finds every actor where it
//!   was.
//! - [`Recorded`]: another store (in memory, or Redis in a cluster) keeps
//!   the live state; every conversation write then goes to the record too,
//!   and a message is acknowledged only once both have it. The live write
//!   comes first because it is the fenced one: a node that lost the
//!   conversation writes neither. If the node dies between the two, the
//!   record is one write behind until the conversation's new owner writes
//!   it whole again as it takes it over.

use futures_util::future::BoxFuture;
use sqlx::Row;
use std::sync::Arc;
use switchboard_proto::model::Message;
use switchboard_proto::{AgentId, ConversationId, QueueId, Timestamp};

use super::records::RecordRow;
use super::{Change, Database, StorageError};
use crate::cluster::key::ActorKey;
use crate::cluster::store::{Presence, Snapshot, StateWrite, Store, StoreError};
use crate::events::DomainEvent;
use crate::queue::routing::AgentView;

impl From<StorageError> for StoreError {
    fn from(error: StorageError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

fn encoded<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|error| StoreError::Unavailable(error.to_string()))
}

/// The record part of a write: the conversation's row (first, so its
/// messages find it), its new messages, and (unless the live store carries
/// them) its events.
fn record_changes(write: &mut StateWrite, with_events: bool) -> Result<Vec<Change>, StoreError> {
    let mut changes = Vec::with_capacity(write.messages.len() + write.events.len() + 1);
    if let Some(record) = &write.record {
        changes.push(Change::Record(Box::new(RecordRow::of(record)?)));
    }
    changes.extend(write.messages.iter().cloned().map(Change::Message));
    if with_events {
        changes.extend(
            write
                .events
                .drain(..)
                .map(|event| Change::Event(Arc::new(event))),
        );
    }
    Ok(changes)
}

fn event_changes(events: Vec<DomainEvent>) -> Vec<Change> {
    events
        .into_iter()
        .map(|event| Change::Event(Arc::new(event)))
        .collect()
}

/// Everything an embedded node keeps, in its database.
pub struct SqlStore {
    database: Database,
}

impl SqlStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    fn changes(mut write: StateWrite) -> Result<Vec<Change>, StoreError> {
        let mut changes = record_changes(&mut write, true)?;
        let actor = write.key.name();
        match write.snapshot {
            Snapshot::Unchanged => {}
            Snapshot::Keep(bytes) => changes.push(Change::Snapshot {
                actor,
                bytes: Some(bytes),
            }),
            Snapshot::Delete => changes.push(Change::Snapshot { actor, bytes: None }),
        }
        match write.presence {
            None => {}
            Some((agent, Presence::Listed(view))) => changes.push(Change::Presence {
                agent: agent.as_str().to_owned(),
                view: Some(encoded(&view)?),
            }),
            Some((agent, Presence::LoggedOut(at))) => {
                changes.push(Change::Presence {
                    agent: agent.as_str().to_owned(),
                    view: None,
                });
                changes.push(Change::Logout {
                    agent: agent.as_str().to_owned(),
                    at_ms: at.millis(),
                });
            }
        }
        if let (Some((queue, since)), ActorKey::Conversation(id)) = (write.waiting, &write.key) {
            changes.push(Change::Waiting {
                queue: queue.as_str().to_owned(),
                conversation: id.as_str().to_owned(),
                since_ms: since.map(Timestamp::millis),
            });
        }
        Ok(changes)
    }
}

impl Store for SqlStore {
    fn keeps_state(&self) -> bool {
        true
    }

    fn carries_events(&self) -> bool {
        true
    }

    fn append_events(
        &self,
        events: Vec<DomainEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let write = self.database.write(event_changes(events));
        Box::pin(async move { Ok(write.await?) })
    }

    fn write(&self, write: StateWrite) -> BoxFuture<'static, Result<(), StoreError>> {
        let changes = Self::changes(write);
        let database = self.database.clone();
        Box::pin(async move { Ok(database.write(changes?).await?) })
    }

    fn create_state(
        &self,
        key: &ActorKey,
        snapshot: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let write = self.database.write(vec![Change::CreateSnapshot {
            actor: key.name(),
            bytes: snapshot,
        }]);
        Box::pin(async move { Ok(write.await?) })
    }

    fn load_state(
        &self,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        let found = rows(
            &self.database,
            "SELECT snapshot FROM actor_state WHERE actor = $1",
            Some(key.name()),
            |row| row.try_get::<Vec<u8>, _>(0),
        );
        Box::pin(async move { Ok(found.await?.pop()) })
    }

    fn load_log(
        &self,
        id: &ConversationId,
        after_seq: u64,
    ) -> BoxFuture<'static, Result<Vec<Arc<Message>>, StoreError>> {
        let database = self.database.clone();
        let id = id.clone();
        Box::pin(async move { Ok(database.messages(&id, after_seq).await?) })
    }

    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentView>, StoreError>> {
        let views = rows(&self.database, "SELECT view FROM presence", None, |row| {
            row.try_get::<Vec<u8>, _>(0)
        });
        Box::pin(async move {
            views
                .await?
                .iter()
                .map(|bytes| {
                    rmp_serde::from_slice(bytes).map_err(|error| {
                        StoreError::Unavailable(format!("undecodable presence row: {error}"))
                    })
                })
                .collect()
        })
    }

    fn logged_out_at(
        &self,
        agent: &AgentId,
    ) -> BoxFuture<'static, Result<Option<Timestamp>, StoreError>> {
        let at = rows(
            &self.database,
            "SELECT at_ms FROM logouts WHERE agent_id = $1",
            Some(agent.as_str().to_owned()),
            |row| row.try_get::<i64, _>(0),
        );
        Box::pin(async move { Ok(at.await?.pop().map(Timestamp)) })
    }

    fn waiting(
        &self,
        queue: &QueueId,
    ) -> BoxFuture<'static, Result<Vec<(ConversationId, Timestamp)>, StoreError>> {
        let found = rows(
            &self.database,
            "SELECT conversation_id, since_ms FROM waiting WHERE queue_id = $1",
            Some(queue.as_str().to_owned()),
            |row| {
                Ok((
                    ConversationId::new(row.try_get::<String, _>(0)?),
                    Timestamp(row.try_get::<i64, _>(1)?),
                ))
            },
        );
        Box::pin(async move { Ok(found.await?) })
    }

    fn stored_actors(&self) -> BoxFuture<'static, Result<Vec<ActorKey>, StoreError>> {
        let names = rows(
            &self.database,
            "SELECT actor FROM actor_state",
            None,
            |row| row.try_get::<String, _>(0),
        );
        Box::pin(async move {
            Ok(names
                .await?
                .iter()
                .filter_map(|name| ActorKey::parse(name))
                .collect())
        })
    }
}

/// Runs `sql` (with `arg` as `$1`, if any) on the database's runtime and
/// reads each row with `read`.
fn rows<T: Send + 'static>(
    database: &Database,
    sql: &'static str,
    arg: Option<String>,
    read: fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
) -> impl std::future::Future<Output = Result<Vec<T>, StorageError>> + Send + 'static {
    let database = database.clone();
    async move {
        let pool = database.pool().clone();
        database
            .run(async move {
                let mut query = sqlx::query(sql);
                if let Some(arg) = arg {
                    query = query.bind(arg);
                }
                let found = query.fetch_all(&pool).await?;
                Ok(found.iter().map(read).collect::<Result<Vec<T>, _>>()?)
            })
            .await
    }
}

/// A live store (memory, Redis) whose conversation writes also go to the
/// record, once the live (fenced) write succeeded.
pub struct Recorded<S> {
    live: S,
    database: Database,
}

impl<S: Store> Recorded<S> {
    pub fn new(live: S, database: Database) -> Self {
        Self { live, database }
    }

    /// A write to the live store, with the conversation's record (and, where
    /// the live store does not carry them, its events) in the database.
    fn write_state(&self, mut write: StateWrite) -> BoxFuture<'static, Result<(), StoreError>> {
        let events_here = !self.live.carries_events() && !write.events.is_empty();
        if write.record.is_none() && write.messages.is_empty() && !events_here {
            // Not a conversation's: applied as the live store applies it
            // (the memory store before the future is even polled).
            return self.live.write(write);
        }
        let recorded = record_changes(&mut write, !self.live.carries_events())
            .map(|changes| self.database.write(changes));
        write.record = None;
        // The live store first: in a cluster its write is fenced, so a node
        // that lost the conversation writes no record either. If the node
        // dies between the two, the record is one write behind; the next
        // owner writes the whole record again when it takes the
        // conversation over (`ConversationActor::activate`). Both futures
        // are lazy: nothing is sent before it is polled.
        let live = self.live.write(write);
        Box::pin(async move {
            live.await?;
            Ok(recorded?.await?)
        })
    }
}

impl<S: Store> Store for Recorded<S> {
    fn keeps_state(&self) -> bool {
        self.live.keeps_state()
    }

    fn carries_events(&self) -> bool {
        true
    }

    fn append_events(
        &self,
        events: Vec<DomainEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if self.live.carries_events() {
            return self.live.append_events(events);
        }
        let write = self.database.write(event_changes(events));
        Box::pin(async move { Ok(write.await?) })
    }

    fn write(&self, write: StateWrite) -> BoxFuture<'static, Result<(), StoreError>> {
        if let Some((agent, Presence::LoggedOut(at))) = &write.presence {
            // A logout also goes to the database: it must outlive a Redis
            // restarted empty, or the tokens it revoked would work again.
            let logout = self.database.write(vec![Change::Logout {
                agent: agent.as_str().to_owned(),
                at_ms: at.millis(),
            }]);
            let rest = self.write_state(write);
            return Box::pin(async move {
                rest.await?;
                Ok(logout.await?)
            });
        }
        self.write_state(write)
    }

    fn create_state(
        &self,
        key: &ActorKey,
        snapshot: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.live.create_state(key, snapshot)
    }

    fn load_state(
        &self,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        self.live.load_state(key)
    }

    fn load_log(
        &self,
        id: &ConversationId,
        after_seq: u64,
    ) -> BoxFuture<'static, Result<Vec<Arc<Message>>, StoreError>> {
        self.live.load_log(id, after_seq)
    }

    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentView>, StoreError>> {
        self.live.presence()
    }

    /// The later of the live store's and the database's: the live store
    /// (Redis) may have restarted empty; the database has every logout.
    fn logged_out_at(
        &self,
        agent: &AgentId,
    ) -> BoxFuture<'static, Result<Option<Timestamp>, StoreError>> {
        let live = self.live.logged_out_at(agent);
        let recorded = rows(
            &self.database,
            "SELECT at_ms FROM logouts WHERE agent_id = $1",
            Some(agent.as_str().to_owned()),
            |row| row.try_get::<i64, _>(0),
        );
        Box::pin(async move {
            let live = live.await?;
            let recorded = recorded.await?.pop().map(Timestamp);
            Ok(live.max(recorded))
        })
    }

    fn waiting(
        &self,
        queue: &QueueId,
    ) -> BoxFuture<'static, Result<Vec<(ConversationId, Timestamp)>, StoreError>> {
        self.live.waiting(queue)
    }

    fn stored_actors(&self) -> BoxFuture<'static, Result<Vec<ActorKey>, StoreError>> {
        self.live.stored_actors()
    }
}
