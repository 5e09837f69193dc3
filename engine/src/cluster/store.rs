//! Where actor state, conversation logs and agent presence
//! are kept. [`MemoryStore`] serves the embedded node; `RedisStore` (in
//! `cluster::redis_store`) serves a cluster. Futures, so a networked store
//! fits unchanged.

use futures_util::future::{ready, BoxFuture};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_proto::model::{ConversationRecord, Message};
use switchboard_proto::{AgentId, ConversationId, QueueId, Timestamp};

use super::key::ActorKey;
use crate::events::DomainEvent;
use crate::queue::routing::AgentView;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// This node no longer owns the actor (its lease lapsed and another
    /// node took over): the write was refused and the actor must stop.
    #[error("this node no longer owns the actor; write refused")]
    Fenced,
}

/// What happens to an actor's snapshot in a [`StateWrite`].
#[derive(Debug, Clone, Default)]
pub enum Snapshot {
    #[default]
    Unchanged,
    /// The actor's state now (MessagePack).
    Keep(Vec<u8>),
    /// The actor is done (logged out, closed): drop its state and release it.
    Delete,
}

/// One write of an actor: applied whole, and in a cluster only while this
/// node owns the actor (fenced).
#[derive(Debug, Clone)]
pub struct StateWrite {
    pub key: ActorKey,
    pub snapshot: Snapshot,
    /// Appended to the conversation's log. A message is acknowledged to its
    /// sender only after the write that carries it completes.
    pub messages: Vec<Arc<Message>>,
    /// An agent's directory row.
    pub presence: Option<(AgentId, Presence)>,
    /// A conversation's record as it stands after this write (its
    /// messages are `messages`): set on every transition, so the system of
    /// record follows a conversation from its first write.
    pub record: Option<ConversationRecord>,
    /// A conversation's place in its queue's index: `Some(since)` while it
    /// waits there, `None` once it does not. A new owner of the queue
    /// rebuilds its waiting list from this index, so a conversation that
    /// was told to wait just before the queue's node died still waits.
    pub waiting: Option<(QueueId, Option<Timestamp>)>,
    /// What other systems are told of this write, in order: stored with
    /// it (embedded: the same transaction; a cluster: the same fenced
    /// Redis script appends them to the outbox).
    pub events: Vec<DomainEvent>,
}

/// What a write says of an agent's presence.
#[derive(Debug, Clone)]
pub enum Presence {
    /// Logged in: its row in the directory, as it is now.
    Listed(AgentView),
    /// Logged out at this instant: the row goes, and the agent's tokens
    /// issued up to now stop working ([`Store::logged_out_at`]).
    LoggedOut(Timestamp),
}

impl StateWrite {
    pub fn new(key: ActorKey) -> Self {
        Self {
            key,
            snapshot: Snapshot::Unchanged,
            messages: Vec::new(),
            presence: None,
            record: None,
            waiting: None,
            events: Vec::new(),
        }
    }
}

pub trait Store: Send + Sync + 'static {
    /// Does this store keep actor snapshots and logs (a cluster, where
    /// another node may rebuild an actor)? When not, actors skip encoding
    /// snapshots nobody reads.
    fn keeps_state(&self) -> bool;
    /// Does [`write`](Self::write) store a write's events itself (the
    /// database's own store; Redis's outbox)? When not, whoever wraps the
    /// store puts them in the database ([`Recorded`]).
    ///
    /// [`Recorded`]: crate::storage::live::Recorded
    fn carries_events(&self) -> bool {
        false
    }
    fn write(&self, write: StateWrite) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Stores events that come with no actor's write (an erasure), after
    /// every event stored before. Not fenced.
    fn append_events(
        &self,
        events: Vec<DomainEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        drop(events);
        Box::pin(ready(Ok(())))
    }
    /// Creates an actor's first snapshot unless one exists (an agent logs
    /// in). Not fenced: it only ever fills an empty place.
    fn create_state(
        &self,
        key: &ActorKey,
        snapshot: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
    fn load_state(&self, key: &ActorKey)
        -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>>;
    /// A conversation's log after `after_seq`, in order.
    fn load_log(
        &self,
        id: &ConversationId,
        after_seq: u64,
    ) -> BoxFuture<'static, Result<Vec<Arc<Message>>, StoreError>>;
    /// Every logged-in agent's row.
    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentView>, StoreError>>;
    /// When the agent last logged out, if ever (kept after a new login:
    /// tokens issued before it stay refused).
    fn logged_out_at(
        &self,
        agent: &AgentId,
    ) -> BoxFuture<'static, Result<Option<Timestamp>, StoreError>>;
    /// The conversations waiting in `queue`, as their own writes say.
    fn waiting(
        &self,
        queue: &QueueId,
    ) -> BoxFuture<'static, Result<Vec<(ConversationId, Timestamp)>, StoreError>>;
    /// Every actor with a snapshot, for a node that starts again on its own
    /// store (embedded, on a database). A cluster adopts through placement.
    fn stored_actors(&self) -> BoxFuture<'static, Result<Vec<ActorKey>, StoreError>> {
        Box::pin(ready(Ok(Vec::new())))
    }
}

/// The live state of a `memory:` node: presence and logouts only. In one
/// process the actors' own state is the state, and the record is kept by
/// the database beside it (`storage::live::Recorded`), so a second copy
/// here would only cost a lock on every message.
#[derive(Default)]
pub struct MemoryStore {
    presence: RwLock<HashMap<AgentId, AgentView>>,
    /// One entry per agent that ever logged out (bounded by the catalog).
    logouts: RwLock<HashMap<AgentId, Timestamp>>,
}

impl Store for MemoryStore {
    fn keeps_state(&self) -> bool {
        false
    }

    /// Applied at once (before the future is even polled), so a login is
    /// listed in the directory from the moment it returns.
    fn write(&self, write: StateWrite) -> BoxFuture<'static, Result<(), StoreError>> {
        match write.presence {
            Some((agent, Presence::Listed(row))) => {
                self.presence.write().insert(agent, row);
            }
            Some((agent, Presence::LoggedOut(at))) => {
                self.presence.write().remove(&agent);
                self.logouts.write().insert(agent, at);
            }
            None => {}
        }
        Box::pin(ready(Ok(())))
    }

    fn create_state(
        &self,
        _key: &ActorKey,
        _snapshot: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(ready(Ok(())))
    }

    fn load_state(
        &self,
        _key: &ActorKey,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(ready(Ok(None)))
    }

    fn load_log(
        &self,
        _id: &ConversationId,
        _after_seq: u64,
    ) -> BoxFuture<'static, Result<Vec<Arc<Message>>, StoreError>> {
        Box::pin(ready(Ok(Vec::new())))
    }

    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentView>, StoreError>> {
        let rows = self.presence.read().values().cloned().collect();
        Box::pin(ready(Ok(rows)))
    }

    fn logged_out_at(
        &self,
        agent: &AgentId,
    ) -> BoxFuture<'static, Result<Option<Timestamp>, StoreError>> {
        Box::pin(ready(Ok(self.logouts.read().get(agent).copied())))
    }

    /// The queue actor's own list is the only one in one process.
    fn waiting(
        &self,
        _queue: &QueueId,
    ) -> BoxFuture<'static, Result<Vec<(ConversationId, Timestamp)>, StoreError>> {
        Box::pin(ready(Ok(Vec::new())))
    }
}
