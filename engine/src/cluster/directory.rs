//! Where each actor lives, and the handles actors use to reach each other.
//! Embedded: a map of local addresses, with actors spread over a few
//! arbiters so every core works. A cluster resolves the same ids to actors
//! on other nodes behind the same [`ActorRef`] methods.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use switchboard_proto::{AgentId, ConversationId, QueueId};

use super::bus::Bus;
use super::key::ActorKey;
use super::routed::Routed;
use crate::agent::actor::AgentActor;
use crate::conversation::actor::ConversationActor;
use crate::error::EngineError;
use crate::queue::actor::QueueActor;

/// How long a command waits for a local actor's answer before `unavailable`.
/// (A remote actor's answer waits `cluster.request_timeout`.)
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on one actor: its mailbox on this node, or its name for the
/// cluster bus to deliver to whichever node owns it.
pub struct ActorRef<A: Actor>(Route<A>);

enum Route<A: Actor> {
    Local(Addr<A>),
    Remote { key: ActorKey, bus: Arc<Bus> },
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        Self(match &self.0 {
            Route::Local(addr) => Route::Local(addr.clone()),
            Route::Remote { key, bus } => Route::Remote {
                key: key.clone(),
                bus: bus.clone(),
            },
        })
    }
}

impl<A: Actor> ActorRef<A> {
    pub fn new(addr: Addr<A>) -> Self {
        Self(Route::Local(addr))
    }

    /// Fire and forget, for messages that must not be lost (offers,
    /// withdrawals, wrap-ups): the mailbox grows rather than dropping them.
    /// Each is answered by a state change, never by a reply.
    pub fn tell<M>(&self, message: M)
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Routed,
    {
        match &self.0 {
            Route::Local(addr) => addr.do_send(message),
            Route::Remote { key, bus } => bus.tell(key.clone(), &message),
        }
    }

    /// Request and reply, bounded by [`ASK_TIMEOUT`] (or, to another node,
    /// by the cluster's request timeout).
    pub async fn ask<M>(&self, message: M) -> Result<M::Result, EngineError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Routed,
    {
        match &self.0 {
            Route::Local(addr) => Ok(addr.send(message).timeout(ASK_TIMEOUT).await?),
            Route::Remote { key, bus } => bus.ask(key.clone(), &message).await,
        }
    }
}

/// The mailboxes of every actor that was running here.
pub struct Running {
    pub agents: Vec<Addr<AgentActor>>,
    pub queues: Vec<Addr<QueueActor>>,
    pub conversations: Vec<Addr<ConversationActor>>,
}

/// The actors running on this node, by id, and (in a cluster) the bus that
/// reaches the rest. A lookup answers the local mailbox when the actor runs
/// here, otherwise a routed handle (cluster) or `None` (embedded: it does
/// not exist).
pub struct Directory {
    agents: RwLock<HashMap<AgentId, Addr<AgentActor>>>,
    queues: RwLock<HashMap<QueueId, Addr<QueueActor>>>,
    conversations: RwLock<HashMap<ConversationId, Addr<ConversationActor>>>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    bus: OnceLock<Arc<Bus>>,
}

fn lookup<Id, A>(
    map: &RwLock<HashMap<Id, Addr<A>>>,
    id: &Id,
    bus: Option<&Arc<Bus>>,
    key: impl FnOnce() -> ActorKey,
) -> Option<ActorRef<A>>
where
    Id: std::hash::Hash + Eq,
    A: Actor,
{
    if let Some(addr) = map.read().get(id) {
        return Some(ActorRef::new(addr.clone()));
    }
    bus.map(|bus| {
        ActorRef(Route::Remote {
            key: key(),
            bus: bus.clone(),
        })
    })
}

/// The actor running under `id`, or the one `start` starts, listed under
/// the same write lock: one actor per id, found from its first moment.
fn running_or_start<Id, A>(
    map: &RwLock<HashMap<Id, Addr<A>>>,
    id: Id,
    start: impl FnOnce() -> Addr<A>,
) -> Addr<A>
where
    Id: std::hash::Hash + Eq,
    A: Actor,
{
    map.write().entry(id).or_insert_with(start).clone()
}

impl Directory {
    /// `workers` arbiters (threads) host the actors.
    pub fn new(workers: usize) -> Self {
        let arbiters = (0..workers.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        Self {
            agents: RwLock::default(),
            queues: RwLock::default(),
            conversations: RwLock::default(),
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            bus: OnceLock::new(),
        }
    }

    /// Joins a cluster: lookups of actors not running here go to the bus.
    pub fn connect(&self, bus: Arc<Bus>) {
        let _ = self.bus.set(bus);
    }

    pub fn is_clustered(&self) -> bool {
        self.bus.get().is_some()
    }

    /// The caller's own arbiter when it runs on one (a request handler on
    /// an HTTP worker), else the next, round robin. A conversation started
    /// here shares its thread with the sessions that worker serves: a chat
    /// message between them then wakes no other thread, which on a small
    /// machine is most of a message's cost.
    pub fn arbiter_of_caller(&self) -> ArbiterHandle {
        Arbiter::try_current().unwrap_or_else(|| self.arbiter().clone())
    }

    /// The arbiters that host actors (each gets a lag probe).
    pub fn arbiters(&self) -> &[ArbiterHandle] {
        &self.arbiters
    }

    /// The next arbiter, round robin.
    pub fn arbiter(&self) -> &ArbiterHandle {
        let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        &self.arbiters[index]
    }

    pub fn agent(&self, id: &AgentId) -> Option<ActorRef<AgentActor>> {
        lookup(&self.agents, id, self.bus.get(), || {
            ActorKey::Agent(id.clone())
        })
    }

    /// The agent's actor if it runs on this node.
    pub fn local_agent(&self, id: &AgentId) -> Option<Addr<AgentActor>> {
        self.agents.read().get(id).cloned()
    }

    /// The agent's actor, started by `start` if it is not running here.
    /// Check-and-start happens under one lock: one actor per agent.
    pub fn agent_or_start(
        &self,
        id: &AgentId,
        start: impl FnOnce() -> Addr<AgentActor>,
    ) -> ActorRef<AgentActor> {
        ActorRef::new(running_or_start(&self.agents, id.clone(), start))
    }

    pub fn remove_agent(&self, id: &AgentId) {
        self.agents.write().remove(id);
    }

    pub fn queue(&self, id: &QueueId) -> Option<ActorRef<QueueActor>> {
        lookup(&self.queues, id, self.bus.get(), || {
            ActorKey::Queue(id.clone())
        })
    }

    pub fn local_queue(&self, id: &QueueId) -> Option<Addr<QueueActor>> {
        self.queues.read().get(id).cloned()
    }

    /// The queue's actor, started by `start` if it is not running here
    /// (under one lock: one actor per queue).
    pub fn queue_or_start(
        &self,
        id: &QueueId,
        start: impl FnOnce() -> Addr<QueueActor>,
    ) -> Addr<QueueActor> {
        running_or_start(&self.queues, id.clone(), start)
    }

    pub fn remove_queue(&self, id: &QueueId) {
        self.queues.write().remove(id);
    }

    pub fn conversation(&self, id: &ConversationId) -> Option<ActorRef<ConversationActor>> {
        lookup(&self.conversations, id, self.bus.get(), || {
            ActorKey::Conversation(id.clone())
        })
    }

    pub fn local_conversation(&self, id: &ConversationId) -> Option<Addr<ConversationActor>> {
        self.conversations.read().get(id).cloned()
    }

    /// Starts a conversation's actor and lists it under one lock, so the
    /// actor is found by id from its first moment: its opening effects
    /// (enqueue, then an offer reserved for it) may reach other actors
    /// before `start` has even returned here.
    pub fn start_conversation(
        &self,
        id: ConversationId,
        start: impl FnOnce() -> Addr<ConversationActor>,
    ) -> ActorRef<ConversationActor> {
        ActorRef::new(running_or_start(&self.conversations, id, start))
    }

    pub fn remove_conversation(&self, id: &ConversationId) {
        self.conversations.write().remove(id);
    }

    pub fn live_conversations(&self) -> usize {
        self.conversations.read().len()
    }

    /// Forgets every actor running here and answers their mailboxes, so the
    /// caller can stop them (this node lost its lease: others own them now).
    pub fn take_all(&self) -> Running {
        Running {
            agents: self.agents.write().drain().map(|(_, addr)| addr).collect(),
            queues: self.queues.write().drain().map(|(_, addr)| addr).collect(),
            conversations: self
                .conversations
                .write()
                .drain()
                .map(|(_, addr)| addr)
                .collect(),
        }
    }
}

impl Directory {
    /// Does the actor run on this node?
    pub fn runs(&self, key: &ActorKey) -> bool {
        match key {
            ActorKey::Agent(id) => self.agents.read().contains_key(id),
            ActorKey::Queue(id) => self.queues.read().contains_key(id),
            ActorKey::Conversation(id) => self.conversations.read().contains_key(id),
        }
    }
}
