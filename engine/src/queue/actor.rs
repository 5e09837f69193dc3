//! The queue actor: the only place routing decisions are made, so one
//! conversation never goes to two agents. It keeps the waiting list and a
//! view of the agents serving the queue, reserves a slot at the best agent,
//! and hands the reservation to the conversation, which opens the offer.

use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use switchboard_proto::model::{
    AgentState, QueueInfo, QueueStats, RoutingDecision, WithdrawReason,
};
use switchboard_proto::{AgentId, ConversationId, OfferId, QueueId, Timestamp};

use super::routing::{self, AgentView};
use super::waiting::{Position, Waiting, WaitingList};
use crate::agent::actor::{FromConversation as ToAgent, Refused, Reserve};
use crate::context::EngineContext;
use crate::conversation::actor::OfferReserved;
use crate::conversation::state::{AgentNotice, QueueNotice, Seat};
use crate::error::EngineError;

/// Counters behind `GET /api/v1/stats`.
#[derive(Debug, Default, Clone)]
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
    engine: Arc<EngineContext>,
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
            engine,
        }
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
                tracing::debug!(agent_id = %seat.id, why = refused.why, "reservation refused");
                if refused.why == "already_holds_conversation" {
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
        }
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;
}

/// An agent serving this queue reports its state and load.
#[derive(Message)]
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
#[derive(Message)]
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
    }
}

/// The queue's row for the directory and for stats.
#[derive(Message)]
#[rtype(result = "QueueStats")]
pub struct Snapshot;

impl Handler<Snapshot> for QueueActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _message: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats())
    }
}
