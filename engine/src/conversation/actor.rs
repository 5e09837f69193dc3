//! The conversation actor: runs [`Conversation`] transitions, owns the RONA
//! and auto-wrap-up timers, appends messages to the store before anyone sees
//! them, and fans events out to the customer and the agents present.

use actix::prelude::*;
use actix::SpawnHandle;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use switchboard_proto::event::{ServerFrame, Typing};
use switchboard_proto::model::{ConversationRecord, ConversationSummary, Message, RoutingDecision};
use switchboard_proto::{
    AgentId, ClientMsgId, OfferId, QueueId, TemplateId, Timestamp, TransferTarget, WrapUpReasonId,
};

use super::state::{Conversation, Effect, Seat, Speaker, Timer};
use crate::agent::actor::{FromConversation as ToAgent, Reserve};
use crate::agent::availability::Involvement;
use crate::cluster::hub::{Published, Topic};
use crate::cluster::key::ActorKey;
use crate::cluster::node;
use crate::cluster::routed::{load_snapshot, wrong_kind, Activate, Retire};
use crate::cluster::store::{Snapshot as Stored, StateWrite, StoreError};
use crate::context::EngineContext;
use crate::conversation::state::AgentNotice;
use crate::error::EngineError;
use crate::events::DomainEvent;
use crate::queue::actor::FromConversation as ToQueue;
use switchboard_proto::model::WithdrawReason;

/// Who sends a command to a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Party {
    Customer,
    Agent(AgentId),
}

impl Party {
    fn speaker(&self) -> Speaker<'_> {
        match self {
            Party::Customer => Speaker::Customer,
            Party::Agent(agent) => Speaker::Agent(agent),
        }
    }
}

pub struct ConversationActor {
    conversation: Conversation,
    /// Effects of the opening transition, run once the actor has started.
    opening: Vec<Effect>,
    timers: HashMap<Timer, SpawnHandle>,
    /// A transfer or conference is reserving its target's slot.
    reserving: bool,
    engine: Arc<EngineContext>,
}

type Reply<T> = Result<T, EngineError>;

/// A transition's effects, sorted for carrying out: messages to append,
/// agents who left (they see the messages too), whether it finished, the
/// events it yields (in the order it yielded them, `message.created` for
/// each message among them), and the rest.
struct Plan {
    appended: Vec<Arc<Message>>,
    leavers: Vec<AgentId>,
    finished: bool,
    events: Vec<DomainEvent>,
    after: Vec<Effect>,
}

impl Plan {
    fn of(effects: Vec<Effect>, conversation: &Conversation) -> Self {
        let mut plan = Plan {
            appended: Vec::new(),
            leavers: Vec::new(),
            finished: false,
            events: Vec::new(),
            after: Vec::new(),
        };
        for effect in effects {
            match effect {
                Effect::Append(message) => {
                    plan.events.push(conversation.message_event(&message));
                    plan.appended.push(message);
                }
                Effect::Event(event) => plan.events.push(*event),
                Effect::Finished => plan.finished = true,
                Effect::SummaryTo(agent) => {
                    plan.leavers.push(agent.clone());
                    plan.after.push(Effect::SummaryTo(agent));
                }
                other => plan.after.push(other),
            }
        }
        plan
    }
}

fn refuse<T: 'static>(error: EngineError) -> AtomicResponse<ConversationActor, Reply<T>> {
    AtomicResponse::new(Box::pin(fut::ready(Err(error))))
}

impl ConversationActor {
    pub fn new(
        conversation: Conversation,
        opening: Vec<Effect>,
        engine: Arc<EngineContext>,
    ) -> Self {
        Self {
            conversation,
            opening,
            timers: HashMap::new(),
            reserving: false,
            engine,
        }
    }

    /// Topics of everyone present: the customer and the agents in the chat.
    fn audience(&self) -> Vec<Topic> {
        std::iter::once(Topic::Customer(self.conversation.id.clone()))
            .chain(
                self.conversation
                    .present_agents()
                    .map(|agent| Topic::Agent(agent.clone())),
            )
            .collect()
    }

    fn broadcast(&self, frame: ServerFrame) {
        let frame = Published::new(frame);
        for topic in self.audience() {
            self.engine.hub.publish(&topic, frame.clone());
        }
    }

    /// Delivers a message to everyone present, and to `leavers`: agents who
    /// left in the transition that wrote it, so they see it too ("... left
    /// the chat", "... transferred the chat to ...").
    fn deliver(&self, message: &Message, leavers: &[AgentId]) {
        metrics::counter!("switchboard_messages_total").increment(1);
        let frame = Published::new(ServerFrame::Message(message.clone()));
        let mut audience = self.audience();
        for agent in leavers {
            let topic = Topic::Agent(agent.clone());
            if !audience.contains(&topic) {
                audience.push(topic);
            }
        }
        for topic in audience {
            self.engine.hub.publish(&topic, frame.clone());
        }
    }

    fn key(&self) -> ActorKey {
        ActorKey::Conversation(self.conversation.id.clone())
    }

    /// Carries out effects. Appends (and the final save) run as one
    /// sequential future under `ctx.wait`, so the mailbox pauses until the
    /// store has them and messages are delivered in `seq` order. (A context
    /// polls its wait queue last-in first, so a handler waits at most once.)
    ///
    /// In a cluster the conversation's snapshot is written first, fenced,
    /// and only then are the effects carried out: a node that lost the
    /// conversation to another changes nothing anyone sees.
    fn run(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        let mut plan = Plan::of(effects, &self.conversation);
        let embedded = !self.engine.store.keeps_state();
        if embedded {
            for effect in std::mem::take(&mut plan.after) {
                self.apply(effect, ctx);
            }
        }
        ctx.wait(self.store_and_deliver(plan, true).map(|_, _, _| ()));
    }

    /// Carries out a command's transition and answers `answer`: at once in
    /// one process; in a cluster once the transition is saved (and
    /// `unavailable` if it could not be, since then it did not happen).
    /// The mailbox waits either way (`AtomicResponse`).
    fn commit<T: 'static>(
        &mut self,
        effects: Vec<Effect>,
        answer: T,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Reply<T>> {
        if !self.engine.store.keeps_state() {
            self.run(effects, ctx);
            return Box::pin(fut::ready(Ok(answer)));
        }
        let plan = Plan::of(effects, &self.conversation);
        let saved = self.store_and_deliver(plan, true);
        Box::pin(saved.map(move |result, _, _| result.map(|()| answer).map_err(EngineError::from)))
    }

    /// Writes `appended` (and the snapshot in a cluster; when `finished`,
    /// the record) to the store, then carries out `after`, delivers the
    /// messages and, when `finished`, stops the actor.
    /// A plain `send` (`transition` false) changes nothing a snapshot keeps
    /// (the messages live in the log), so in a cluster it writes only the log.
    fn store_and_deliver(
        &mut self,
        plan: Plan,
        transition: bool,
    ) -> impl ActorFuture<Self, Output = Result<(), StoreError>> + 'static {
        let Plan {
            appended,
            leavers,
            finished,
            events,
            after,
        } = plan;
        let store = self.engine.store.clone();
        let mut write = StateWrite::new(self.key());
        write.messages = appended.clone();
        write.events = events;
        if !transition {
            // Only the log.
        } else if store.keeps_state() {
            write.waiting = Some((
                self.conversation.queue_id(),
                self.conversation.waiting_since().filter(|_| !finished),
            ));
        }
        if transition {
            write.record = Some(self.conversation.record_head());
        }
        if finished {
            if store.keeps_state() {
                write.snapshot = Stored::Delete;
            }
        } else if store.keeps_state() && transition {
            match rmp_serde::to_vec_named(&self.conversation) {
                Ok(bytes) => write.snapshot = Stored::Keep(bytes),
                Err(error) => tracing::error!(%error, "conversation snapshot not encoded"),
            }
        }
        store
            .write(write)
            .into_actor(self)
            .map(move |result, actor, ctx| {
                match &result {
                    Ok(()) => {
                        for effect in after {
                            actor.apply(effect, ctx);
                        }
                        for message in &appended {
                            actor.deliver(message, &leavers);
                        }
                        if finished {
                            actor.finish(ctx);
                        }
                    }
                    Err(StoreError::Fenced) => actor.retire(ctx),
                    Err(error) => {
                        // Whether Redis applied the write is unknown, so the
                        // state in memory may be ahead of it or not: stop,
                        // and start again from what Redis holds (a retried
                        // `send` is then found in the log, or stored anew).
                        tracing::warn!(conversation_id = %actor.conversation.id, %error, "store write failed; restarting from the store");
                        actor.retire(ctx);
                        node::reactivate_later(actor.engine.clone(), actor.key());
                    }
                }
                result
            })
    }

    /// Stops without a word: another node owns this conversation now, or
    /// this node starts it again from its store.
    fn retire(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(conversation_id = %self.conversation.id, "conversation stops here");
        if self
            .engine
            .directory
            .local_conversation(&self.conversation.id)
            .is_some_and(|addr| addr == ctx.address())
        {
            self.engine
                .directory
                .remove_conversation(&self.conversation.id);
            metrics::gauge!("switchboard_conversations_live").decrement(1.0);
        }
        ctx.stop();
    }

    /// Replies to a `send` only once its message is in the store.
    fn acknowledge_send(
        &mut self,
        result: Reply<(Arc<Message>, Vec<Effect>)>,
    ) -> AtomicResponse<Self, Reply<Arc<Message>>> {
        match result {
            Err(error) => AtomicResponse::new(Box::pin(fut::ready(Err(error)))),
            // A retry: the message exists already; nothing to store.
            Ok((message, effects)) if effects.is_empty() => {
                AtomicResponse::new(Box::pin(fut::ready(Ok(message))))
            }
            Ok((message, append)) => {
                let plan = Plan::of(append, &self.conversation);
                let stored = self.store_and_deliver(plan, false);
                AtomicResponse::new(Box::pin(stored.map(move |result, _, _| {
                    result.map(|()| message).map_err(EngineError::from)
                })))
            }
        }
    }

    fn apply(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::Broadcast => {
                self.broadcast(ServerFrame::Conversation(self.conversation.summary()))
            }
            Effect::SummaryTo(agent) => self.engine.publish(
                Topic::Agent(agent),
                ServerFrame::Conversation(self.conversation.summary()),
            ),
            Effect::Agent(agent, notice) => self.tell_agent(&agent, notice),
            Effect::Queue(queue, notice) => match self.engine.directory.queue(&queue) {
                Some(actor) => actor.tell(ToQueue {
                    conversation_id: self.conversation.id.clone(),
                    notice,
                }),
                None => tracing::error!(queue_id = %queue, "queue actor missing"),
            },
            Effect::StartTimer(timer, millis) => {
                let fired = timer.clone();
                let handle = ctx.run_later(Duration::from_millis(millis), move |actor, ctx| {
                    actor.fire(fired, ctx)
                });
                if let Some(previous) = self.timers.insert(timer, handle) {
                    ctx.cancel_future(previous);
                }
            }
            Effect::CancelTimer(timer) => {
                if let Some(handle) = self.timers.remove(&timer) {
                    ctx.cancel_future(handle);
                }
            }
            Effect::Append(_) | Effect::Finished | Effect::Event(_) => {
                debug_assert!(false, "appends, events and finish are run by `run`");
            }
        }
    }

    fn tell_agent(&self, agent: &AgentId, notice: AgentNotice) {
        match self.engine.directory.agent(agent) {
            Some(actor) => actor.tell(ToAgent {
                conversation_id: self.conversation.id.clone(),
                notice,
            }),
            None => tracing::warn!(agent_id = %agent, "agent not logged in; notice dropped"),
        }
    }

    fn fire(&mut self, timer: Timer, ctx: &mut Context<Self>) {
        self.timers.remove(&timer);
        let now = Timestamp::now();
        let effects = match timer {
            Timer::OfferExpiry(offer_id) => {
                tracing::info!(conversation_id = %self.conversation.id, %offer_id, "offer expired (rona)");
                self.conversation.offer_expired(&offer_id, now)
            }
            Timer::AutoWrapUp(agent) => {
                let reason = self.engine.catalog.default_wrap_up_reason();
                self.conversation
                    .wrap_up(&agent, reason, None, true, now)
                    .unwrap_or_default()
            }
        };
        self.run(effects, ctx);
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        tracing::debug!(conversation_id = %self.conversation.id, state = ?self.conversation.state, "conversation finished");
        self.engine
            .directory
            .remove_conversation(&self.conversation.id);
        metrics::gauge!("switchboard_conversations_live").decrement(1.0);
        ctx.stop();
    }

    /// May this party read the conversation (summary, resume)?
    fn check_reader(&self, party: &Party) -> Reply<()> {
        match party {
            Party::Customer => Ok(()),
            Party::Agent(agent)
                if self.conversation.took_part(agent) || self.conversation.is_present(agent) =>
            {
                Ok(())
            }
            Party::Agent(_) => Err(EngineError::Forbidden(
                "you are not in this conversation".into(),
            )),
        }
    }

    fn answer(&self) -> Reply<ConversationSummary> {
        Ok(self.conversation.summary())
    }

    /// Reserves `target`'s slot, then applies `open` (transfer or
    /// conference) if the conversation still allows it; otherwise hands the
    /// reservation back.
    fn reserve_then(
        &mut self,
        by: AgentId,
        target: AgentId,
        open: fn(&mut Conversation, &AgentId, OfferId, Seat, Timestamp) -> Reply<Vec<Effect>>,
    ) -> ResponseActFuture<Self, Reply<ConversationSummary>> {
        if self.reserving {
            return Box::pin(fut::ready(Err(EngineError::invalid_state(
                "a transfer or conference is being set up",
            ))));
        }
        let Some(config) = self.engine.catalog.agent(&target) else {
            return Box::pin(fut::ready(Err(EngineError::not_found("agent", &target))));
        };
        let seat = Seat {
            id: config.id.clone(),
            name: config.name.clone(),
        };
        let Some(actor) = self.engine.directory.agent(&target) else {
            return Box::pin(fut::ready(Err(EngineError::AgentUnavailable(format!(
                "{} is not logged in",
                seat.name
            )))));
        };
        let offer_id = OfferId::generate();
        let reserve = Reserve {
            conversation_id: self.conversation.id.clone(),
            offer_id: offer_id.clone(),
        };
        self.reserving = true;
        let request = async move { actor.ask(reserve).await };
        Box::pin(request.into_actor(self).then(move |reply, actor, ctx| {
            actor.reserving = false;
            let opened = match reply {
                Ok(Ok(())) => open(
                    &mut actor.conversation,
                    &by,
                    offer_id.clone(),
                    seat.clone(),
                    Timestamp::now(),
                )
                .inspect_err(|_| {
                    actor.tell_agent(
                        &seat.id,
                        AgentNotice::OfferWithdrawn {
                            offer_id,
                            reason: WithdrawReason::Cancelled,
                        },
                    )
                }),
                Ok(Err(refused)) => Err(EngineError::AgentUnavailable(
                    crate::agent::availability::refusal_sentence(&seat.name, refused.why),
                )),
                Err(error) => Err(error),
            };
            let answered: ResponseActFuture<Self, Reply<ConversationSummary>> = match opened {
                Ok(effects) => {
                    let summary = actor.conversation.summary();
                    Box::pin(actor.commit(effects, summary, ctx))
                }
                Err(error) => Box::pin(fut::ready(Err(error))),
            };
            answered
        }))
    }
}

impl Actor for ConversationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!("switchboard_conversations_live").increment(1.0);
        let opening = std::mem::take(&mut self.opening);
        self.run(opening, ctx);
    }
}

impl Handler<Retire> for ConversationActor {
    type Result = ();

    fn handle(&mut self, _message: Retire, ctx: &mut Self::Context) {
        metrics::gauge!("switchboard_conversations_live").decrement(1.0);
        ctx.stop();
    }
}

impl Activate for ConversationActor {
    /// A live conversation rebuilt from its snapshot and log, its timers
    /// started again from their deadlines. One with no snapshot is finished
    /// (its record answers) or unknown: `not_found`.
    fn activate(
        engine: &Arc<EngineContext>,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Addr<Self>, EngineError>> {
        let engine = engine.clone();
        let key = key.clone();
        Box::pin(async move {
            let ActorKey::Conversation(id) = &key else {
                return Err(wrong_kind(&key, "a conversation"));
            };
            if let Some(addr) = engine.directory.local_conversation(id) {
                return Ok(addr);
            }
            let mut conversation: Conversation = load_snapshot(&engine, &key)
                .await?
                .ok_or_else(|| EngineError::not_found("conversation", id))?;
            let log = engine.store.load_log(id, 0).await?;
            if engine.bus.is_some() {
                // The record may be a write behind the live state (the last
                // owner died between the two): write it whole again.
                let mut changes = Vec::with_capacity(log.len() + 1);
                let mut head = conversation.record_head();
                head.messages.clear();
                let row = crate::storage::records::RecordRow::of(&head)?;
                changes.push(crate::storage::Change::Record(Box::new(row)));
                changes.extend(log.iter().cloned().map(crate::storage::Change::Message));
                engine.database.write(changes).await?;
            }
            let timers = conversation.restore(log, Timestamp::now());
            if let Some(addr) = engine.directory.local_conversation(id) {
                return Ok(addr);
            }
            let shared = engine.clone();
            let arbiter = engine.directory.arbiter();
            engine.directory.start_conversation(id.clone(), || {
                ConversationActor::start_in_arbiter(arbiter, move |_| {
                    ConversationActor::new(conversation, timers, shared)
                })
            });
            tracing::info!(conversation_id = %id, "conversation running on this node");
            engine
                .directory
                .local_conversation(id)
                .ok_or_else(|| EngineError::Unavailable(format!("conversation {id} stopped")))
        })
    }
}

/// The queue reserved a slot for this conversation at an agent.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct OfferReserved {
    pub queue: QueueId,
    pub offer_id: OfferId,
    pub agent: Seat,
    pub routing: RoutingDecision,
}

impl Handler<OfferReserved> for ConversationActor {
    type Result = ();

    fn handle(&mut self, message: OfferReserved, ctx: &mut Self::Context) {
        let effects = self.conversation.offer_reserved(
            &message.queue,
            message.offer_id,
            message.agent,
            message.routing,
            Timestamp::now(),
        );
        self.run(effects, ctx);
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct AcceptOffer {
    pub agent: AgentId,
    pub offer_id: OfferId,
}

impl Handler<AcceptOffer> for ConversationActor {
    type Result = AtomicResponse<Self, Reply<ConversationSummary>>;

    fn handle(&mut self, message: AcceptOffer, ctx: &mut Self::Context) -> Self::Result {
        let offered_at = self.conversation.created_at;
        let effects =
            match self
                .conversation
                .accept(&message.agent, &message.offer_id, Timestamp::now())
            {
                Ok(effects) => effects,
                Err(error) => return refuse(error),
            };
        metrics::histogram!("switchboard_accept_latency_seconds")
            .record(Timestamp::now().millis_since(offered_at) as f64 / 1000.0);
        let summary = self.conversation.summary();
        AtomicResponse::new(self.commit(effects, summary, ctx))
    }
}

/// `send` (and `send_template`, already filled).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<Arc<Message>, EngineError>")]
pub struct Say {
    pub party: Party,
    pub text: String,
    pub client_msg_id: ClientMsgId,
}

impl Handler<Say> for ConversationActor {
    type Result = AtomicResponse<Self, Reply<Arc<Message>>>;

    fn handle(&mut self, message: Say, _ctx: &mut Self::Context) -> Self::Result {
        let max_chars = self.engine.catalog.config.max_message_chars;
        let result = self.conversation.send(
            message.party.speaker(),
            message.text,
            message.client_msg_id,
            max_chars,
            Timestamp::now(),
        );
        self.acknowledge_send(result)
    }
}

/// `send_template`: fills the slots, then sends as the agent.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<Arc<Message>, EngineError>")]
pub struct SayTemplate {
    pub agent: AgentId,
    pub template_id: TemplateId,
    pub params: BTreeMap<String, String>,
    pub client_msg_id: ClientMsgId,
}

impl Handler<SayTemplate> for ConversationActor {
    type Result = AtomicResponse<Self, Reply<Arc<Message>>>;

    fn handle(&mut self, message: SayTemplate, _ctx: &mut Self::Context) -> Self::Result {
        let filled = (|| {
            let template = self
                .engine
                .catalog
                .template(&message.template_id)
                .ok_or_else(|| EngineError::not_found("template", &message.template_id))?;
            let author = self.conversation.author(Speaker::Agent(&message.agent))?;
            let customer = &self.conversation.customer;
            let queue_name = self.conversation.queue.name.as_str();
            switchboard_proto::template::fill(&template.text, |slot| match slot {
                "customerName" => Some(customer.name.as_str()),
                "customerEmail" => customer.email.as_deref(),
                "agentName" => Some(author.name.as_str()),
                "queueName" => Some(queue_name),
                other => message.params.get(other).map(String::as_str),
            })
            .map_err(EngineError::MissingTemplateParams)
        })();
        let text = match filled {
            Ok(text) => text,
            Err(error) => return AtomicResponse::new(Box::pin(fut::ready(Err(error)))),
        };
        let max_chars = self.engine.catalog.config.max_message_chars;
        // The params are typed by the agent: the agent text rules apply.
        for value in message.params.values() {
            if let Err(error) = switchboard_proto::validation::check_agent_text(value, max_chars) {
                return AtomicResponse::new(Box::pin(fut::ready(Err(error.into()))));
            }
        }
        let result = self.conversation.send_filled_template(
            &message.agent,
            text,
            message.client_msg_id,
            max_chars,
            Timestamp::now(),
        );
        self.acknowledge_send(result)
    }
}

/// `typing`: relayed to the others present. May be dropped under load.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), EngineError>")]
pub struct TypingNow {
    pub party: Party,
}

impl Handler<TypingNow> for ConversationActor {
    type Result = Reply<()>;

    fn handle(&mut self, message: TypingNow, _ctx: &mut Self::Context) -> Self::Result {
        let from = self.conversation.author(message.party.speaker())?;
        let own_topic = match &message.party {
            Party::Customer => Topic::Customer(self.conversation.id.clone()),
            Party::Agent(agent) => Topic::Agent(agent.clone()),
        };
        let frame = Published::new(ServerFrame::Typing(Typing {
            conversation_id: self.conversation.id.clone(),
            from,
        }));
        for topic in self.audience() {
            if topic != own_topic {
                self.engine.hub.publish(&topic, frame.clone());
            }
        }
        Ok(())
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct Transfer {
    pub by: AgentId,
    pub to: TransferTarget,
}

impl Handler<Transfer> for ConversationActor {
    type Result = ResponseActFuture<Self, Reply<ConversationSummary>>;

    fn handle(&mut self, message: Transfer, ctx: &mut Self::Context) -> Self::Result {
        match message.to {
            TransferTarget::Queue(queue_id) => {
                let result = match self.engine.catalog.queue(&queue_id).cloned() {
                    None => Err(EngineError::not_found("queue", &queue_id)),
                    Some(queue) => {
                        self.conversation
                            .transfer_to_queue(&message.by, queue, Timestamp::now())
                    }
                };
                match result {
                    Ok(effects) => {
                        let summary = self.conversation.summary();
                        Box::pin(self.commit(effects, summary, ctx))
                    }
                    Err(error) => Box::pin(fut::ready(Err(error))),
                }
            }
            TransferTarget::Agent(target) => {
                if let Err(error) = self.conversation.check_transfer(&message.by, &target) {
                    return Box::pin(fut::ready(Err(error)));
                }
                self.reserve_then(message.by, target, Conversation::transfer_to_agent)
            }
        }
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct Invite {
    pub by: AgentId,
    pub agent: AgentId,
}

impl Handler<Invite> for ConversationActor {
    type Result = ResponseActFuture<Self, Reply<ConversationSummary>>;

    fn handle(&mut self, message: Invite, _ctx: &mut Self::Context) -> Self::Result {
        if let Err(error) = self
            .conversation
            .check_conference(&message.by, &message.agent)
        {
            return Box::pin(fut::ready(Err(error)));
        }
        self.reserve_then(message.by, message.agent, Conversation::conference)
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct EndConference {
    pub by: AgentId,
}

impl Handler<EndConference> for ConversationActor {
    type Result = AtomicResponse<Self, Reply<ConversationSummary>>;

    fn handle(&mut self, message: EndConference, ctx: &mut Self::Context) -> Self::Result {
        match self
            .conversation
            .end_conference(&message.by, Timestamp::now())
        {
            Ok(effects) => {
                let summary = self.conversation.summary();
                AtomicResponse::new(self.commit(effects, summary, ctx))
            }
            Err(error) => refuse(error),
        }
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct End {
    pub by: Party,
}

impl Handler<End> for ConversationActor {
    type Result = AtomicResponse<Self, Reply<ConversationSummary>>;

    fn handle(&mut self, message: End, ctx: &mut Self::Context) -> Self::Result {
        match self
            .conversation
            .end(message.by.speaker(), Timestamp::now())
        {
            Ok(effects) => {
                let summary = self.conversation.summary();
                AtomicResponse::new(self.commit(effects, summary, ctx))
            }
            Err(error) => refuse(error),
        }
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct WrapUp {
    pub agent: AgentId,
    pub reason: WrapUpReasonId,
    pub notes: Option<String>,
}

impl Handler<WrapUp> for ConversationActor {
    type Result = AtomicResponse<Self, Reply<ConversationSummary>>;

    fn handle(&mut self, message: WrapUp, ctx: &mut Self::Context) -> Self::Result {
        let transition = (|| {
            let reason = self
                .engine
                .catalog
                .wrap_up_reason(&message.reason)
                .ok_or_else(|| EngineError::not_found("wrap-up reason", &message.reason))?;
            let notes = message.notes.filter(|notes| !notes.trim().is_empty());
            if let Some(notes) = &notes {
                let max = self.engine.catalog.config.max_message_chars;
                if notes.chars().count() > max {
                    return Err(switchboard_proto::validation::TextError::TooLong {
                        chars: notes.chars().count(),
                        max,
                    }
                    .into());
                }
            }
            self.conversation
                .wrap_up(&message.agent, reason, notes, false, Timestamp::now())
        })();
        match transition {
            Ok(effects) => {
                let summary = self.conversation.summary();
                AtomicResponse::new(self.commit(effects, summary, ctx))
            }
            Err(error) => refuse(error),
        }
    }
}

/// `resume`: the messages after `after_seq`, for a reconnecting client.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<Arc<Message>>, EngineError>")]
pub struct Resume {
    pub party: Party,
    pub after_seq: u64,
}

impl Handler<Resume> for ConversationActor {
    type Result = Reply<Vec<Arc<Message>>>;

    fn handle(&mut self, message: Resume, _ctx: &mut Self::Context) -> Self::Result {
        self.check_reader(&message.party)?;
        Ok(self.conversation.messages_after(message.after_seq).to_vec())
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<ConversationSummary, EngineError>")]
pub struct Summary {
    pub party: Party,
}

impl Handler<Summary> for ConversationActor {
    type Result = Reply<ConversationSummary>;

    fn handle(&mut self, message: Summary, _ctx: &mut Self::Context) -> Self::Result {
        self.check_reader(&message.party)?;
        self.answer()
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "ConversationRecord")]
pub struct Record;

impl Handler<Record> for ConversationActor {
    type Result = MessageResult<Record>;

    fn handle(&mut self, _message: Record, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.conversation.record())
    }
}

/// Who has a part in the conversation now, for the transfer and conference
/// dialogs: asked by an agent who took part in it, or a supervisor.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<(AgentId, Involvement)>, EngineError>")]
pub struct Involved {
    pub viewer: AgentId,
    pub supervisor: bool,
}

impl Handler<Involved> for ConversationActor {
    type Result = Reply<Vec<(AgentId, Involvement)>>;

    fn handle(&mut self, message: Involved, _ctx: &mut Self::Context) -> Self::Result {
        if !message.supervisor && !self.conversation.took_part(&message.viewer) {
            return Err(EngineError::Forbidden(
                "only agents in this conversation, or supervisors, may ask who can take it".into(),
            ));
        }
        Ok(self.conversation.involved_agents())
    }
}

crate::routed!(
    Involved => "conversation.involved",
    OfferReserved => "conversation.offer_reserved",
    AcceptOffer => "conversation.accept_offer",
    Say => "conversation.say",
    SayTemplate => "conversation.say_template",
    TypingNow => "conversation.typing",
    Transfer => "conversation.transfer",
    Invite => "conversation.invite",
    EndConference => "conversation.end_conference",
    End => "conversation.end",
    WrapUp => "conversation.wrap_up",
    Resume => "conversation.resume",
    Summary => "conversation.summary",
    Record => "conversation.record",
);
