//! The queue actor: the only place routing decisions are made, so one
//! conversation never goes to two agents. It keeps the waiting list and a
//! view of the agents serving the queue, reserves a slot at the best agent,
//! and hands the reservation to the conversation, which opens the offer.

use actix::prelude::*;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use switchboard_proto::event::ServerFrame;
use switchboard_proto::model::{
    AgentState, CannotTake, QueueInfo, QueueStats, QueueStatus, RoutingDecision, WithdrawReason,
};
use switchboard_proto::{AgentId, ConversationId, OfferId, QueueId, Timestamp};

use super::estimate::{self, Announced, Answer, AnswerHistory, Staffing};
use super::routing::{self, AgentView};
use super::waiting::{Position, Waiting, WaitingList};
use crate::agent::actor::{FromConversation as ToAgent, Refused, Reserve};
use crate::cluster::hub::{Published, Topic};
use crate::cluster::key::ActorKey;
use crate::cluster::routed::{load_snapshot, wrong_kind, Activate, Retire};
use crate::cluster::store::{Snapshot as Stored, StateWrite, StoreError};
use crate::context::EngineContext;
use crate::conversation::actor::OfferReserved;
use crate::conversation::state::{AgentNotice, QueueNotice, Seat};
use crate::error::EngineError;

/// Counters behind `GET /api/v1/stats`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Counters {
    offered: u64,
    accepted: u64,
    abandoned: u64,
    rona: u64,
    total_wait_ms: u64,
    answered_within_service_level: u64,
}

pub struct QueueActor {
    id: QueueId,
    name: String,
    waiting: WaitingList,
    agents: HashMap<AgentId, AgentView>,
    /// Conversations an agent refused because it still holds them (it left
    /// them and owes the wrap-up). Cleared when the agent reports again.
    holding: HashMap<AgentId, HashSet<ConversationId>>,
    counters: Counters,
    service_level_ms: u64,
    /// Recent answers: the rate behind each customer's estimated wait.
    answers: AnswerHistory,
    /// What each waiting customer was last told (`queue_status`).
    announced: Announced,
    /// The queue changed since statuses were last sent.
    status_stale: bool,
    /// Statuses went out less than an interval ago: the next round waits
    /// for this timer, so a customer hears at most once per interval.
    status_hold: Option<SpawnHandle>,
    engine: Arc<EngineContext>,
    /// Cluster only: a snapshot write is in flight; state changed since it
    /// began; the bytes last saved.
    saving: bool,
    unsaved: bool,
    saved: Vec<u8>,
}

/// What a cluster keeps of a queue, so a new owner rebuilds it. The agents'
/// views are rebuilt from presence.
#[derive(Serialize, Deserialize)]
struct QueueSnapshot {
    waiting: Vec<Waiting>,
    counters: Counters,
    #[serde(default)]
    answers: AnswerHistory,
}

impl QueueActor {
    pub fn new(id: QueueId, name: String, engine: Arc<EngineContext>) -> Self {
        let service_level_ms = engine.catalog.config.service_level.as_millis() as u64;
        Self {
            id,
            name,
            waiting: WaitingList::default(),
            agents: HashMap::new(),
            holding: HashMap::new(),
            counters: Counters::default(),
            service_level_ms,
            answers: AnswerHistory::default(),
            announced: Announced::default(),
            status_stale: false,
            status_hold: None,
            engine,
            saving: false,
            unsaved: false,
            saved: Vec::new(),
        }
    }

    /// In a cluster, saves the waiting list and counters (fenced), without
    /// holding up the mailbox: one write at a time, the latest state each
    /// time, none when nothing changed. (Who waits is also in the index the
    /// conversations write; this keeps the order and the counters.)
    fn persist(&mut self, ctx: &mut Context<Self>) {
        let store = self.engine.store.clone();
        if !store.keeps_state() {
            return;
        }
        if self.saving {
            self.unsaved = true;
            return;
        }
        let snapshot = QueueSnapshot {
            waiting: self.waiting.in_order(),
            counters: self.counters.clone(),
            answers: self.answers.clone(),
        };
        let bytes = match rmp_serde::to_vec_named(&snapshot) {
            Ok(bytes) => bytes,
            Err(error) => return tracing::error!(%error, "queue snapshot not encoded"),
        };
        if bytes == self.saved {
            return;
        }
        self.saving = true;
        self.unsaved = false;
        let mut write = StateWrite::new(ActorKey::Queue(self.id.clone()));
        write.snapshot = Stored::Keep(bytes.clone());
        ctx.spawn(store.write(write).into_actor(self).map(move |result, queue, ctx| {
            queue.saving = false;
            match result {
                Ok(()) => {
                    queue.saved = bytes;
                    if queue.unsaved {
                        queue.persist(ctx);
                    }
                }
                Err(StoreError::Fenced) => {
                    tracing::warn!(queue_id = %queue.id, "another node owns this queue now; stopping here");
                    queue.engine.directory.remove_queue(&queue.id);
                    ctx.stop();
                }
                Err(error) => {
                    tracing::error!(queue_id = %queue.id, %error, "queue state not saved; retrying");
                    ctx.run_later(std::time::Duration::from_millis(500), |queue, ctx| {
                        queue.persist(ctx)
                    });
                }
            }
        }));
    }

    /// Agents serving the queue now, as the estimate counts them.
    fn staffing(&self) -> Staffing {
        Staffing {
            logged_in: self.agents.len() as u32,
            available: self
                .agents
                .values()
                .filter(|agent| agent.state == AgentState::Available)
                .count() as u32,
        }
    }

    /// Every waiting customer's place and estimated wait, first in line
    /// first (those an agent is being reserved for are ahead).
    fn statuses(&self) -> Vec<QueueStatus> {
        let now = Timestamp::now();
        let staffing = self.staffing();
        self.waiting
            .in_order()
            .into_iter()
            .zip(1u32..)
            .map(|(waiting, position)| {
                estimate::status(
                    waiting.conversation_id,
                    position,
                    &self.answers,
                    staffing,
                    now,
                )
            })
            .collect()
    }

    /// The queue changed: tell waiting customers whose place or estimate
    /// changed, now, or when the last round's interval is over.
    fn announce(&mut self, ctx: &mut Context<Self>) {
        self.status_stale = true;
        if self.status_hold.is_none() {
            self.send_statuses(ctx);
        }
    }

    fn send_statuses(&mut self, ctx: &mut Context<Self>) {
        self.status_hold = None;
        if !self.status_stale {
            return;
        }
        self.status_stale = false;
        let changed = self.announced.changed(self.statuses());
        if changed.is_empty() {
            return;
        }
        for status in changed {
            let topic = Topic::Customer(status.conversation_id.clone());
            let frame = Published::new(ServerFrame::QueueStatus(status));
            self.engine.hub.publish(&topic, frame);
        }
        let interval = self.engine.catalog.config.routing.queue_status_interval;
        self.status_hold = Some(ctx.run_later(interval, |queue, ctx| queue.send_statuses(ctx)));
    }

    fn record_depth(&self) {
        metrics::gauge!("switchboard_queue_depth", "queue" => self.id.0.clone())
            .set(self.waiting.len() as f64);
    }

    /// Does `agent` already hold `conversation` (it left it and owes the
    /// wrap-up), as it said when it refused a reservation?
    fn holds(&self, agent: &AgentId, conversation: &ConversationId) -> bool {
        self.holding
            .get(agent)
            .is_some_and(|held| held.contains(conversation))
    }

    /// The first conversation in line that an eligible agent can take, and
    /// the routing decision for it.
    fn next_offer(&self) -> Option<(ConversationId, RoutingDecision)> {
        if !self.agents.values().any(AgentView::is_eligible) {
            return None;
        }
        self.waiting.ready().find_map(|waiting| {
            let conversation = &waiting.conversation_id;
            routing::decide(&self.id, self.agents.values(), |agent| {
                self.holds(agent, conversation)
            })
            .map(|decision| (conversation.clone(), decision))
        })
    }

    /// Offers waiting conversations, best agent first, for as long as a
    /// conversation and an agent that can take it remain.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if !self.engine.lease_valid() {
            // This node may no longer own the queue: offer nothing.
            return;
        }
        if self.engine.is_resuming() {
            // An embedded node starting again: its conversations are not
            // all running yet, and one offered now would be lost. `Resumed`
            // dispatches once they are.
            return;
        }
        while let Some((conversation_id, decision)) = self.next_offer() {
            let Some(waiting) = self.waiting.reserve(&conversation_id) else {
                break;
            };
            let Some(view) = self.agents.get_mut(&decision.chosen) else {
                break;
            };
            // Count the reservation in flight so the next pick sees it.
            view.load += 1;
            let seat = Seat {
                id: view.id.clone(),
                name: view.name.clone(),
            };
            let offer_id = OfferId::generate();
            let Some(agent) = self.engine.directory.agent(&seat.id) else {
                self.agents.remove(&seat.id);
                self.waiting.settle(&conversation_id);
                self.waiting.insert(waiting, Position::Head);
                continue;
            };
            let reserve = Reserve {
                conversation_id,
                offer_id: offer_id.clone(),
            };
            let request = async move { agent.ask(reserve).await };
            ctx.spawn(request.into_actor(self).map(move |reply, queue, ctx| {
                queue.reserved(reply, waiting, offer_id, seat, decision, ctx)
            }));
        }
        self.record_depth();
        self.persist(ctx);
        self.announce(ctx);
    }

    fn reserved(
        &mut self,
        reply: Result<Result<(), Refused>, EngineError>,
        waiting: Waiting,
        offer_id: OfferId,
        seat: Seat,
        decision: RoutingDecision,
        ctx: &mut Context<Self>,
    ) {
        // Still waiting here, or did it leave while the slot was reserved?
        let still_waiting = self.waiting.settle(&waiting.conversation_id).is_some();
        let conversation = self
            .engine
            .directory
            .conversation(&waiting.conversation_id)
            .filter(|_| still_waiting);
        match reply {
            Ok(Ok(())) => match conversation {
                Some(conversation) => {
                    self.counters.offered += 1;
                    metrics::counter!("switchboard_offers_total", "queue" => self.id.0.clone())
                        .increment(1);
                    let conversation_id = waiting.conversation_id.clone();
                    let handed = OfferReserved {
                        queue: self.id.clone(),
                        offer_id: offer_id.clone(),
                        agent: seat.clone(),
                        routing: decision,
                    };
                    // If the conversation stops before it reads this (the
                    // customer left), the slot is handed back.
                    let request = async move { conversation.ask(handed).await };
                    ctx.spawn(request.into_actor(self).map(move |delivered, queue, _ctx| {
                        if delivered.is_err() {
                            queue.hand_back(&conversation_id, &seat, offer_id);
                        }
                    }));
                }
                None => {
                    tracing::debug!(
                        conversation_id = %waiting.conversation_id,
                        "left the queue while an agent was reserved; handing the slot back"
                    );
                    self.hand_back(&waiting.conversation_id, &seat, offer_id);
                }
            },
            Ok(Err(refused)) => {
                tracing::debug!(agent_id = %seat.id, why = refused.why.as_str(), "reservation refused");
                if matches!(
                    refused.why,
                    CannotTake::AlreadyInConversation | CannotTake::OwesWrapUp
                ) {
                    // Skip this agent for this conversation only, until it
                    // reports again (its wrap-up frees it).
                    self.holding
                        .entry(seat.id.clone())
                        .or_default()
                        .insert(waiting.conversation_id.clone());
                }
                self.agents.insert(refused.view.id.clone(), refused.view);
                if still_waiting {
                    self.waiting.insert(waiting, Position::Head);
                }
            }
            Err(error) if error.code() == switchboard_proto::ErrorCode::InvalidState => {
                // Its actor is gone: the agent logged out.
                self.agents.remove(&seat.id);
                if still_waiting {
                    self.waiting.insert(waiting, Position::Head);
                }
            }
            Err(error) => {
                // The agent did not answer in time: it reserved nothing (an
                // unanswered request is skipped). Keep it, without this load.
                tracing::warn!(agent_id = %seat.id, %error, "agent did not answer a reservation");
                if let Some(view) = self.agents.get_mut(&seat.id) {
                    view.load = view.load.saturating_sub(1);
                }
                if still_waiting {
                    self.waiting.insert(waiting, Position::Head);
                }
            }
        }
        self.dispatch(ctx);
    }

    /// Frees a slot reserved for a conversation that no longer waits here.
    fn hand_back(&self, conversation_id: &ConversationId, seat: &Seat, offer_id: OfferId) {
        if let Some(agent) = self.engine.directory.agent(&seat.id) {
            agent.tell(ToAgent {
                conversation_id: conversation_id.clone(),
                notice: AgentNotice::OfferWithdrawn {
                    offer_id,
                    reason: WithdrawReason::Cancelled,
                },
            });
        }
    }

    fn info(&self) -> QueueInfo {
        let now = Timestamp::now();
        QueueInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            waiting: self.waiting.len() as u32,
            longest_wait_s: self
                .waiting
                .oldest_since()
                .map_or(0, |since| now.millis_since(since) / 1000),
            available_agents: self
                .agents
                .values()
                .filter(|agent| agent.is_eligible())
                .count() as u32,
        }
    }

    fn stats(&self) -> QueueStats {
        let info = self.info();
        let counters = &self.counters;
        let answered = counters.accepted;
        QueueStats {
            id: info.id,
            name: info.name,
            waiting: info.waiting,
            longest_wait_s: info.longest_wait_s,
            available_agents: info.available_agents,
            offered: counters.offered,
            accepted: counters.accepted,
            abandoned: counters.abandoned,
            rona: counters.rona,
            average_speed_of_answer_s: (answered > 0)
                .then(|| counters.total_wait_ms as f64 / answered as f64 / 1000.0),
            service_level_pct: (answered > 0)
                .then(|| counters.answered_within_service_level as f64 * 100.0 / answered as f64),
            today: None,
        }
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.dispatch(ctx);
    }
}

/// The node has resumed every conversation: offer what waits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resumed;

impl Handler<Resumed> for QueueActor {
    type Result = ();

    fn handle(&mut self, _message: Resumed, ctx: &mut Self::Context) {
        self.dispatch(ctx);
    }
}

impl Handler<Retire> for QueueActor {
    type Result = ();

    fn handle(&mut self, _message: Retire, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Activate for QueueActor {
    /// A queue rebuilt from its snapshot (or empty), with the views of the
    /// logged-in agents who serve it, read from presence.
    fn activate(
        engine: &Arc<EngineContext>,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Addr<Self>, EngineError>> {
        let engine = engine.clone();
        let key = key.clone();
        Box::pin(async move {
            let ActorKey::Queue(id) = &key else {
                return Err(wrong_kind(&key, "a queue"));
            };
            if let Some(addr) = engine.directory.local_queue(id) {
                return Ok(addr);
            }
            let name = engine
                .catalog
                .queue(id)
                .map(|queue| queue.name.clone())
                .ok_or_else(|| EngineError::not_found("queue", id))?;
            let snapshot: Option<QueueSnapshot> = load_snapshot(&engine, &key).await?;
            let serving = |agent: &AgentId| {
                engine
                    .catalog
                    .agent(agent)
                    .is_some_and(|config| config.queues.contains(id))
            };
            let agents: HashMap<AgentId, AgentView> = engine
                .store
                .presence()
                .await?
                .into_iter()
                .filter(|view| serving(&view.id) && view.state != AgentState::Offline)
                .map(|view| (view.id.clone(), view))
                .collect();
            // Who waits is what the conversations wrote (the index); the
            // order is the snapshot's (RONA puts some at the head).
            let indexed = engine.store.waiting(id).await?;
            let mut queue = QueueActor::new(id.clone(), name, engine.clone());
            queue.agents = agents;
            let mut waiting = Vec::new();
            if let Some(snapshot) = snapshot {
                waiting = snapshot.waiting;
                queue.counters = snapshot.counters;
                queue.answers = snapshot.answers;
            }
            let still: HashSet<&ConversationId> = indexed.iter().map(|(id, _)| id).collect();
            waiting.retain(|entry| still.contains(&entry.conversation_id));
            let listed: HashSet<ConversationId> = waiting
                .iter()
                .map(|entry| entry.conversation_id.clone())
                .collect();
            for (conversation_id, queued_since) in &indexed {
                if !listed.contains(conversation_id) {
                    waiting.push(Waiting {
                        conversation_id: conversation_id.clone(),
                        priority: 0,
                        queued_since: *queued_since,
                    });
                }
            }
            queue.waiting = WaitingList::from_order(waiting);
            let arbiter = engine.directory.arbiter();
            Ok(engine
                .directory
                .queue_or_start(id, || QueueActor::start_in_arbiter(arbiter, move |_| queue)))
        })
    }
}

/// An agent serving this queue reports its state and load.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct AgentStatus(pub AgentView);

impl Handler<AgentStatus> for QueueActor {
    type Result = ();

    fn handle(&mut self, message: AgentStatus, ctx: &mut Self::Context) {
        let view = message.0;
        self.holding.remove(&view.id);
        if view.state == AgentState::Offline {
            self.agents.remove(&view.id);
        } else {
            self.agents.insert(view.id.clone(), view);
        }
        self.dispatch(ctx);
    }
}

/// What a conversation tells its queue.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct FromConversation {
    pub conversation_id: ConversationId,
    pub notice: QueueNotice,
}

impl Handler<FromConversation> for QueueActor {
    type Result = ();

    fn handle(&mut self, message: FromConversation, ctx: &mut Self::Context) {
        match message.notice {
            QueueNotice::Enqueue {
                position,
                queued_since,
            } => {
                self.waiting.insert(
                    Waiting {
                        conversation_id: message.conversation_id,
                        priority: 0,
                        queued_since,
                    },
                    position,
                );
                self.dispatch(ctx);
            }
            QueueNotice::Remove { abandoned } => {
                self.waiting.remove(&message.conversation_id);
                if abandoned {
                    self.counters.abandoned += 1;
                    metrics::counter!("switchboard_abandoned_total", "queue" => self.id.0.clone())
                        .increment(1);
                }
                self.record_depth();
            }
            QueueNotice::Answered { wait_ms } => {
                let available_agents = self.staffing().available;
                self.answers.record(Answer {
                    at: Timestamp::now(),
                    available_agents,
                });
                self.counters.accepted += 1;
                self.counters.total_wait_ms += wait_ms;
                if wait_ms <= self.service_level_ms {
                    self.counters.answered_within_service_level += 1;
                }
                metrics::histogram!("switchboard_queue_wait_seconds", "queue" => self.id.0.clone())
                    .record(wait_ms as f64 / 1000.0);
            }
            QueueNotice::Rona => self.counters.rona += 1,
        }
        self.persist(ctx);
        self.announce(ctx);
    }
}

/// The queue's row for the directory and for stats.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "QueueStats")]
pub struct Snapshot;

impl Handler<Snapshot> for QueueActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _message: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats())
    }
}

/// A waiting customer's status now, for the `queue_status` that follows
/// the `hello` of a customer session opening while it waits. `None`: it
/// does not wait in this queue.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Option<QueueStatus>")]
pub struct StatusOf(pub ConversationId);

impl Handler<StatusOf> for QueueActor {
    type Result = MessageResult<StatusOf>;

    fn handle(&mut self, message: StatusOf, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.statuses()
                .into_iter()
                .find(|status| status.conversation_id == message.0),
        )
    }
}

crate::routed!(
    StatusOf => "queue.status_of",
    AgentStatus => "queue.agent_status",
    FromConversation => "queue.from_conversation",
    Snapshot => "queue.snapshot",
);
