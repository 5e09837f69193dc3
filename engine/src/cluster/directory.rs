//! Where each actor lives, and the handles actors use to reach each other.
//! Embedded: a map of local addresses, with actors spread over a few
//! arbiters so every core works. A cluster resolves the same ids to actors
//! on other nodes behind the same [`ActorRef`] methods.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchboard_proto::{AgentId, ConversationId, QueueId};

use crate::agent::actor::AgentActor;
use crate::conversation::actor::ConversationActor;
use crate::error::EngineError;
use crate::queue::actor::QueueActor;

/// How long a command waits for an actor's answer before `unavailable`.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on one actor.
pub struct ActorRef<A: Actor>(Addr<A>);

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<A: Actor> ActorRef<A> {
    pub fn new(addr: Addr<A>) -> Self {
        Self(addr)
    }

    /// Fire and forget, for messages that must not be lost (offers,
    /// withdrawals, wrap-ups): the mailbox grows rather than dropping them.
    /// Each is answered by a state change, never by a reply.
    pub fn tell<M>(&self, message: M)
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.0.do_send(message);
    }

    /// Request and reply, bounded by [`ASK_TIMEOUT`].
    pub async fn ask<M>(&self, message: M) -> Result<M::Result, EngineError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        Ok(self.0.send(message).timeout(ASK_TIMEOUT).await?)
    }
}

pub struct Directory {
    agents: RwLock<HashMap<AgentId, ActorRef<AgentActor>>>,
    queues: RwLock<HashMap<QueueId, ActorRef<QueueActor>>>,
    conversations: RwLock<HashMap<ConversationId, ActorRef<ConversationActor>>>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
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
        }
    }

    /// The next arbiter, round robin.
    pub fn arbiter(&self) -> &ArbiterHandle {
        let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        &self.arbiters[index]
    }

    pub fn agent(&self, id: &AgentId) -> Option<ActorRef<AgentActor>> {
        self.agents.read().get(id).cloned()
    }

    /// The agent's actor, started by `start` if it is not running.
    /// Check-and-start happens under one lock: one actor per agent.
    pub fn agent_or_start(
        &self,
        id: &AgentId,
        start: impl FnOnce() -> Addr<AgentActor>,
    ) -> ActorRef<AgentActor> {
        let mut agents = self.agents.write();
        agents
            .entry(id.clone())
            .or_insert_with(|| ActorRef::new(start()))
            .clone()
    }

    pub fn remove_agent(&self, id: &AgentId) {
        self.agents.write().remove(id);
    }

    pub fn queue(&self, id: &QueueId) -> Option<ActorRef<QueueActor>> {
        self.queues.read().get(id).cloned()
    }

    pub fn add_queue(&self, id: QueueId, addr: Addr<QueueActor>) {
        self.queues.write().insert(id, ActorRef::new(addr));
    }

    pub fn queues(&self) -> Vec<(QueueId, ActorRef<QueueActor>)> {
        let mut queues: Vec<_> = self
            .queues
            .read()
            .iter()
            .map(|(id, actor)| (id.clone(), actor.clone()))
            .collect();
        queues.sort_by(|a, b| a.0.cmp(&b.0));
        queues
    }

    pub fn conversation(&self, id: &ConversationId) -> Option<ActorRef<ConversationActor>> {
        self.conversations.read().get(id).cloned()
    }

    pub fn add_conversation(&self, id: ConversationId, addr: Addr<ConversationActor>) {
        self.conversations.write().insert(id, ActorRef::new(addr));
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
        let mut conversations = self.conversations.write();
        let actor = ActorRef::new(start());
        conversations.insert(id, actor.clone());
        actor
    }

    pub fn remove_conversation(&self, id: &ConversationId) {
        self.conversations.write().remove(id);
    }

    pub fn live_conversations(&self) -> usize {
        self.conversations.read().len()
    }
}
