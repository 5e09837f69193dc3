//! The agent actor: runs [`Agent`] transitions and carries out their effects
//! (events to the agent's sessions, status to its queues, presence).

use actix::prelude::*;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_proto::event::{AgentStateEvent, OfferWithdrawn, ServerFrame, WrapUpRequired};
use switchboard_proto::model::{AgentState, CannotTake, ConversationSummary, Offer};
use switchboard_proto::{ConversationId, IdleReasonId, OfferId, RequestedState, Timestamp};

use super::state::{Agent, AgentEffect, Slot};
use crate::cluster::hub::Topic;
use crate::cluster::key::ActorKey;
use crate::cluster::routed::{load_snapshot, wrong_kind, Activate, Retire};
use crate::cluster::store::{Presence, Snapshot as Stored, StateWrite, StoreError};
use crate::context::EngineContext;
use crate::conversation::actor::{AcceptOffer, Party, Summary};
use crate::conversation::state::AgentNotice;
use crate::error::EngineError;
use crate::events::DomainEvent;
use crate::queue::actor::AgentStatus;
use crate::queue::routing::AgentView;

/// How long a reserved slot waits for its offer before it is freed: longer
/// than any ask that could still deliver the offer (the queue or the
/// conversation may have died in between, on another node).
const RESERVATION_TTL: std::time::Duration = std::time::Duration::from_secs(12);

/// How often (in a cluster) an agent checks wrap-ups it still owes past
/// their deadline: if the conversation is gone, the notice that freed the
/// slot was lost with a node, and the slot is freed here.
const STALE_WRAP_UP_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

pub struct AgentActor {
    agent: Agent,
    engine: Arc<EngineContext>,
    /// One timer per slot reserved and not yet offered. Cancelled as soon
    /// as the offer comes: actix polls every live timer of an actor on each
    /// of its messages, so timers left to run out cost a busy agent (ten
    /// offers a second keep 120 alive) a fifth of the node's CPU.
    reservation_timers: HashMap<ConversationId, (OfferId, SpawnHandle)>,
}

impl AgentActor {
    pub fn new(agent: Agent, engine: Arc<EngineContext>) -> Self {
        Self {
            agent,
            engine,
            reservation_timers: HashMap::new(),
        }
    }

    fn view(&self) -> AgentView {
        AgentView {
            id: self.agent.id.clone(),
            name: self.agent.name.clone(),
            state: self.agent.state,
            load: self.agent.load(),
            max_chats: self.agent.max_chats,
            available_since: self.agent.available_since,
        }
    }

    fn report_to_queues(&self) {
        let view = self.view();
        if let Some(config) = self.engine.catalog.agent(&self.agent.id) {
            for queue in &config.queues {
                if let Some(actor) = self.engine.directory.queue(queue) {
                    actor.tell(AgentStatus(view.clone()));
                }
            }
        }
    }

    /// Frees the slot reserved for `offer_id` if its offer has not come by
    /// [`RESERVATION_TTL`].
    fn watch_reservation(
        &mut self,
        conversation_id: ConversationId,
        offer_id: OfferId,
        ctx: &mut Context<Self>,
    ) {
        let (id, offer) = (conversation_id.clone(), offer_id.clone());
        let handle = ctx.run_later(RESERVATION_TTL, move |actor, ctx| {
            actor.reservation_timers.remove(&id);
            let effects = actor.agent.drop_unoffered(&id, &offer);
            if !effects.is_empty() {
                tracing::warn!(agent_id = %actor.agent.id, conversation_id = %id, "reserved slot freed: its offer never came");
                actor.run(effects, ctx);
            }
        });
        if let Some((_, previous)) = self
            .reservation_timers
            .insert(conversation_id, (offer_id, handle))
        {
            ctx.cancel_future(previous);
        }
    }

    /// Cancels the timers of reservations that are no longer waiting for
    /// their offer (it came, or the slot went another way).
    fn cancel_settled_reservations(&mut self, ctx: &mut Context<Self>) {
        let agent = &self.agent;
        self.reservation_timers
            .retain(|conversation_id, (offer_id, handle)| {
                let waiting = agent.awaits_offer(conversation_id, offer_id);
                if !waiting {
                    ctx.cancel_future(*handle);
                }
                waiting
            });
    }

    /// Frees wrap-up slots whose conversation has finished (its `Released`
    /// was lost when a node died between saving and telling).
    fn free_stale_wrap_ups(&mut self, ctx: &mut Context<Self>) {
        let now = Timestamp::now();
        let stale: Vec<ConversationId> = self
            .agent
            .slots
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::WrapUp(required)
                    if now.millis_since(required.auto_wrap_up_at)
                        > STALE_WRAP_UP_CHECK.as_millis() as u64 =>
                {
                    Some(id.clone())
                }
                _ => None,
            })
            .collect();
        for conversation_id in stale {
            let Some(conversation) = self.engine.directory.conversation(&conversation_id) else {
                continue;
            };
            let party = Party::Agent(self.agent.id.clone());
            let ask = async move { conversation.ask(Summary { party }).await };
            ctx.spawn(ask.into_actor(self).map(move |answer, actor, ctx| {
                let gone = match answer {
                    Ok(Err(error)) | Err(error) => error.code() == switchboard_proto::ErrorCode::NotFound,
                    Ok(Ok(_)) => false,
                };
                if gone {
                    tracing::warn!(agent_id = %actor.agent.id, %conversation_id, "wrap-up slot freed: its conversation is closed");
                    let effects = actor.agent.released(&conversation_id);
                    actor.run(effects, ctx);
                }
            }));
        }
    }

    fn key(&self) -> ActorKey {
        ActorKey::Agent(self.agent.id.clone())
    }

    /// Writes the agent's directory row (and, in a cluster, its snapshot,
    /// fenced). The next message waits for a cluster write, so writes land
    /// in order; a fenced write stops the actor (another node owns it).
    fn persist(&self, events: Vec<DomainEvent>, ctx: &mut Context<Self>) {
        let store = &self.engine.store;
        let mut write = StateWrite::new(self.key());
        write.presence = Some((self.agent.id.clone(), Presence::Listed(self.view())));
        write.events = events;
        if !store.keeps_state() && !write.events.is_empty() {
            // Presence is applied at once; the events are stored before
            // the next message (they keep the agent's order).
            ctx.wait(
                store
                    .write(write)
                    .into_actor(self)
                    .map(|result, actor, ctx| actor.written(result, ctx)),
            );
        } else if store.keeps_state() {
            match rmp_serde::to_vec_named(&self.agent) {
                Ok(bytes) => write.snapshot = Stored::Keep(bytes),
                Err(error) => tracing::error!(%error, "agent snapshot not encoded"),
            }
            ctx.wait(
                store
                    .write(write)
                    .into_actor(self)
                    .map(|result, actor, ctx| actor.written(result, ctx)),
            );
        } else {
            // The embedded store applies it before answering.
            drop(store.write(write));
        }
    }

    fn written(&mut self, result: Result<(), StoreError>, ctx: &mut Context<Self>) {
        match result {
            Ok(()) => {}
            Err(StoreError::Fenced) => {
                tracing::warn!(agent_id = %self.agent.id, "another node owns this agent now; stopping here");
                self.engine.directory.remove_agent(&self.agent.id);
                ctx.stop();
            }
            Err(error) => {
                tracing::error!(agent_id = %self.agent.id, %error, "agent state not saved")
            }
        }
    }

    fn topic(&self) -> Topic {
        Topic::Agent(self.agent.id.clone())
    }

    /// Runs after every transition: saves the agent (some transitions, an
    /// accept among them, change its slots without any other effect).
    fn run(&mut self, effects: Vec<AgentEffect>, ctx: &mut Context<Self>) {
        let events = effects
            .iter()
            .filter(|effect| matches!(effect, AgentEffect::PublishState))
            .map(|_| {
                DomainEvent::agent_state_changed(
                    &self.agent.id,
                    &self.agent.state_event(),
                    Timestamp::now(),
                )
            })
            .collect();
        self.persist(events, ctx);
        if !self.reservation_timers.is_empty() {
            self.cancel_settled_reservations(ctx);
        }
        for effect in effects {
            match effect {
                AgentEffect::PublishState => {
                    if self.agent.state == AgentState::Rona {
                        metrics::counter!("switchboard_rona_total").increment(1);
                    }
                    self.engine.publish(
                        self.topic(),
                        ServerFrame::AgentState(self.agent.state_event()),
                    );
                }
                AgentEffect::ReportToQueues => self.report_to_queues(),
                AgentEffect::PublishOffer(offer) => {
                    self.engine
                        .publish(self.topic(), ServerFrame::Offer(*offer));
                }
                AgentEffect::PublishWithdrawn {
                    conversation_id,
                    offer_id,
                    reason,
                } => self.engine.publish(
                    self.topic(),
                    ServerFrame::OfferWithdrawn(OfferWithdrawn {
                        conversation_id,
                        offer_id,
                        reason,
                    }),
                ),
                AgentEffect::PublishWrapUpRequired(required) => {
                    self.engine
                        .publish(self.topic(), ServerFrame::WrapUpRequired(required));
                }
            }
        }
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(agent_id = %self.agent.id, "agent running on this node");
        // Restored with reservations whose offers may never come.
        let unoffered: Vec<_> = self
            .agent
            .slots
            .iter()
            .filter_map(|(conversation_id, slot)| match slot {
                super::state::Slot::Offered {
                    offer_id,
                    offer: None,
                } => Some((conversation_id.clone(), offer_id.clone())),
                _ => None,
            })
            .collect();
        for (conversation_id, offer_id) in unoffered {
            self.watch_reservation(conversation_id, offer_id, ctx);
        }
        if self.engine.store.keeps_state() {
            ctx.run_interval(STALE_WRAP_UP_CHECK, |actor, ctx| {
                actor.free_stale_wrap_ups(ctx)
            });
        }
        self.persist(Vec::new(), ctx);
        self.report_to_queues();
    }
}

impl Handler<Retire> for AgentActor {
    type Result = ();

    fn handle(&mut self, _message: Retire, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Activate for AgentActor {
    /// A logged-in agent's actor, rebuilt from its snapshot; an agent with
    /// no snapshot is not logged in.
    fn activate(
        engine: &Arc<EngineContext>,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Addr<Self>, EngineError>> {
        let engine = engine.clone();
        let key = key.clone();
        Box::pin(async move {
            let ActorKey::Agent(id) = &key else {
                return Err(wrong_kind(&key, "an agent"));
            };
            if let Some(addr) = engine.directory.local_agent(id) {
                return Ok(addr);
            }
            let agent: Agent = load_snapshot(&engine, &key)
                .await?
                .ok_or_else(|| EngineError::invalid_state("the agent is not logged in"))?;
            let shared = engine.clone();
            let arbiter = engine.directory.arbiter();
            engine.directory.agent_or_start(id, || {
                AgentActor::start_in_arbiter(arbiter, move |_| AgentActor::new(agent, shared))
            });
            engine
                .directory
                .local_agent(id)
                .ok_or_else(|| EngineError::Unavailable(format!("agent {id} stopped")))
        })
    }
}

/// `set_state`.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<AgentStateEvent, EngineError>")]
pub struct SetState {
    pub state: RequestedState,
    pub reason: Option<IdleReasonId>,
}

impl Handler<SetState> for AgentActor {
    type Result = Result<AgentStateEvent, EngineError>;

    fn handle(&mut self, message: SetState, ctx: &mut Self::Context) -> Self::Result {
        let now = Timestamp::now();
        let effects = match message.state {
            RequestedState::Available => self.agent.set_available(now),
            RequestedState::Idle => {
                if let Some(reason) = &message.reason {
                    if !self.engine.catalog.is_idle_reason(reason) {
                        return Err(EngineError::not_found("idle reason", reason));
                    }
                }
                self.agent.set_idle(message.reason, now)?
            }
        };
        self.run(effects, ctx);
        Ok(self.agent.state_event())
    }
}

/// A queue, transfer or conference asks for a slot for an offer.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), Refused>")]
pub struct Reserve {
    pub conversation_id: ConversationId,
    pub offer_id: OfferId,
}

/// Why a reservation was refused, with the agent's state now, so the asking
/// queue corrects its view.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    pub why: CannotTake,
    pub view: AgentView,
}

impl Handler<Reserve> for AgentActor {
    type Result = Result<(), Refused>;

    fn handle(&mut self, message: Reserve, ctx: &mut Self::Context) -> Self::Result {
        let (conversation_id, offer_id) =
            (message.conversation_id.clone(), message.offer_id.clone());
        match self
            .agent
            .reserve(message.conversation_id, message.offer_id)
        {
            Ok(effects) => {
                self.run(effects, ctx);
                self.watch_reservation(conversation_id, offer_id, ctx);
                Ok(())
            }
            Err(why) => Err(Refused {
                why,
                view: self.view(),
            }),
        }
    }
}

/// `accept`: forwarded to the conversation, which decides.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct Accept {
    pub conversation_id: ConversationId,
}

impl Handler<Accept> for AgentActor {
    type Result = ResponseActFuture<Self, Result<ConversationSummary, EngineError>>;

    fn handle(&mut self, message: Accept, _ctx: &mut Self::Context) -> Self::Result {
        let conversation_id = message.conversation_id;
        let offer_id = match self.agent.offer_to_accept(&conversation_id) {
            Ok(offer_id) => offer_id,
            // A retried accept whose answer was lost: the chat is this
            // agent's already, so it answers as the first one did.
            Err(_) if self.agent.slots.get(&conversation_id) == Some(&Slot::Active) => {
                return self.summary_of(conversation_id);
            }
            Err(error) => return Box::pin(fut::ready(Err(error))),
        };
        let Some(conversation) = self.engine.directory.conversation(&conversation_id) else {
            return Box::pin(fut::ready(Err(EngineError::NoOffer(conversation_id))));
        };
        let agent_id = self.agent.id.clone();
        let ask_offer = offer_id.clone();
        let request = async move {
            conversation
                .ask(AcceptOffer {
                    agent: agent_id,
                    offer_id: ask_offer,
                })
                .await?
        };
        Box::pin(request.into_actor(self).map(move |result, actor, ctx| {
            if result.is_ok() {
                let effects = actor.agent.accepted(&conversation_id, &offer_id);
                actor.run(effects, ctx);
                actor.report_to_queues();
            }
            result
        }))
    }
}

impl AgentActor {
    /// The summary of a conversation this agent is in, as `accept` answers.
    fn summary_of(
        &self,
        conversation_id: ConversationId,
    ) -> ResponseActFuture<Self, Result<ConversationSummary, EngineError>> {
        let Some(conversation) = self.engine.directory.conversation(&conversation_id) else {
            return Box::pin(fut::ready(Err(EngineError::NoOffer(conversation_id))));
        };
        let party = Party::Agent(self.agent.id.clone());
        let request = async move { conversation.ask(Summary { party }).await? };
        Box::pin(request.into_actor(self))
    }
}

/// What a conversation tells this agent.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct FromConversation {
    pub conversation_id: ConversationId,
    pub notice: AgentNotice,
}

impl Handler<FromConversation> for AgentActor {
    type Result = ();

    fn handle(&mut self, message: FromConversation, ctx: &mut Self::Context) {
        let now = Timestamp::now();
        let effects = match message.notice {
            AgentNotice::OfferReady(offer) => self.agent.offer_ready(*offer),
            AgentNotice::OfferWithdrawn { offer_id, reason } => {
                self.agent
                    .offer_withdrawn(&message.conversation_id, &offer_id, reason, now)
            }
            AgentNotice::WrapUpRequired(required) => self.agent.wrap_up_required(required),
            AgentNotice::Released => self.agent.released(&message.conversation_id),
            AgentNotice::Notice(notice) => {
                self.engine
                    .publish(self.topic(), ServerFrame::Notice(notice));
                Vec::new()
            }
        };
        self.run(effects, ctx);
    }
}

/// What a new session of this agent needs for `hello`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub state: AgentStateEvent,
    pub offers: Vec<Offer>,
    /// Conversations the agent is in or owes a wrap-up for.
    pub conversations: Vec<ConversationId>,
    pub wrap_ups: Vec<WrapUpRequired>,
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AgentSnapshot")]
pub struct Snapshot;

impl Handler<Snapshot> for AgentActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _message: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        let conversations = self
            .agent
            .slots
            .iter()
            .filter(|(_, slot)| !matches!(slot, super::state::Slot::Offered { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        MessageResult(AgentSnapshot {
            state: self.agent.state_event(),
            offers: self.agent.pending_offers(),
            conversations,
            wrap_ups: self.agent.wrap_ups_owed(),
        })
    }
}

/// `logout`: refused while the agent holds offers or conversations.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), EngineError>")]
pub struct Logout;

impl Handler<Logout> for AgentActor {
    type Result = AtomicResponse<Self, Result<(), EngineError>>;

    /// Saved first (presence gone, in a cluster the snapshot too); only
    /// then do the queues hear the agent is offline and every tab (on
    /// every node) end. A logout that could not be saved did not happen.
    fn handle(&mut self, _message: Logout, _ctx: &mut Self::Context) -> Self::Result {
        if let Err(error) = self.agent.check_logout() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(error))));
        }
        let mut write = StateWrite::new(self.key());
        let now = Timestamp::now();
        write.presence = Some((self.agent.id.clone(), Presence::LoggedOut(now)));
        write.events = vec![DomainEvent::agent_logged_out(&self.agent.id, now)];
        if self.engine.store.keeps_state() {
            write.snapshot = Stored::Delete;
        }
        let written = self.engine.store.write(write);
        AtomicResponse::new(Box::pin(written.into_actor(self).map(
            |result, actor, ctx| {
                if let Err(error) = result {
                    actor.written(Err(error.clone()), ctx);
                    return Err(EngineError::from(error));
                }
                let mut view = actor.view();
                view.state = AgentState::Offline;
                if let Some(config) = actor.engine.catalog.agent(&actor.agent.id) {
                    for queue in &config.queues {
                        if let Some(queue) = actor.engine.directory.queue(queue) {
                            queue.tell(AgentStatus(view.clone()));
                        }
                    }
                }
                actor.engine.directory.remove_agent(&actor.agent.id);
                actor.engine.hub.close(&actor.topic());
                tracing::info!(agent_id = %actor.agent.id, "agent logged out");
                ctx.stop();
                Ok(())
            },
        )))
    }
}

/// An agent just logged in: `idle`, with no idle reason (the agent has not
/// picked one).
pub fn logged_in(config: crate::config::AgentConfig) -> Agent {
    Agent::logged_in(
        config.id,
        config.name,
        config.max_chats,
        None,
        Timestamp::now(),
    )
}

/// Starts a logged-in agent's actor on an embedded node.
pub fn start(engine: &Arc<EngineContext>, config: crate::config::AgentConfig) -> Addr<AgentActor> {
    let agent = logged_in(config);
    let shared = engine.clone();
    AgentActor::start_in_arbiter(engine.directory.arbiter(), move |_ctx| {
        AgentActor::new(agent, shared)
    })
}

crate::routed!(
    SetState => "agent.set_state",
    Reserve => "agent.reserve",
    Accept => "agent.accept",
    FromConversation => "agent.from_conversation",
    Snapshot => "agent.snapshot",
    Logout => "agent.logout",
);
