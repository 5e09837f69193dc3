//! The agent actor: runs [`Agent`] transitions and carries out their effects
//! (events to the agent's sessions, status to its queues, presence).

use actix::prelude::*;
use std::sync::Arc;
use switchboard_proto::event::{AgentStateEvent, OfferWithdrawn, ServerFrame, WrapUpRequired};
use switchboard_proto::model::{AgentState, ConversationSummary, Offer};
use switchboard_proto::{ConversationId, IdleReasonId, OfferId, RequestedState, Timestamp};

use super::state::{Agent, AgentEffect};
use crate::cluster::hub::Topic;
use crate::context::EngineContext;
use crate::conversation::actor::AcceptOffer;
use crate::conversation::state::AgentNotice;
use crate::error::EngineError;
use crate::queue::actor::AgentStatus;
use crate::queue::routing::AgentView;

pub struct AgentActor {
    agent: Agent,
    engine: Arc<EngineContext>,
}

impl AgentActor {
    pub fn new(agent: Agent, engine: Arc<EngineContext>) -> Self {
        Self { agent, engine }
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
        self.engine
            .store
            .put_presence(&self.agent.id, Some(self.agent.info()));
    }

    fn topic(&self) -> Topic {
        Topic::Agent(self.agent.id.clone())
    }

    fn run(&mut self, effects: Vec<AgentEffect>) {
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

    fn started(&mut self, _ctx: &mut Self::Context) {
        tracing::info!(agent_id = %self.agent.id, "agent logged in");
        self.report_to_queues();
    }
}

/// `set_state`.
#[derive(Message)]
#[rtype(result = "Result<AgentStateEvent, EngineError>")]
pub struct SetState {
    pub state: RequestedState,
    pub reason: Option<IdleReasonId>,
}

impl Handler<SetState> for AgentActor {
    type Result = Result<AgentStateEvent, EngineError>;

    fn handle(&mut self, message: SetState, _ctx: &mut Self::Context) -> Self::Result {
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
        self.run(effects);
        Ok(self.agent.state_event())
    }
}

/// A queue, transfer or conference asks for a slot for an offer.
#[derive(Message)]
#[rtype(result = "Result<(), Refused>")]
pub struct Reserve {
    pub conversation_id: ConversationId,
    pub offer_id: OfferId,
}

/// Why a reservation was refused, with the agent's state now, so the asking
/// queue corrects its view.
#[derive(Debug, Clone)]
pub struct Refused {
    pub why: &'static str,
    pub view: AgentView,
}

impl Handler<Reserve> for AgentActor {
    type Result = Result<(), Refused>;

    fn handle(&mut self, message: Reserve, _ctx: &mut Self::Context) -> Self::Result {
        match self
            .agent
            .reserve(message.conversation_id, message.offer_id)
        {
            Ok(effects) => {
                self.run(effects);
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
#[derive(Message)]
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
        Box::pin(request.into_actor(self).map(move |result, actor, _ctx| {
            if result.is_ok() {
                let effects = actor.agent.accepted(&conversation_id, &offer_id);
                actor.run(effects);
                actor.report_to_queues();
            }
            result
        }))
    }
}

/// What a conversation tells this agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromConversation {
    pub conversation_id: ConversationId,
    pub notice: AgentNotice,
}

impl Handler<FromConversation> for AgentActor {
    type Result = ();

    fn handle(&mut self, message: FromConversation, _ctx: &mut Self::Context) {
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
        self.run(effects);
    }
}

/// What a new session of this agent needs for `hello`.
#[derive(Debug, Clone)]
pub struct AgentSnapshot {
    pub state: AgentStateEvent,
    pub offers: Vec<Offer>,
    /// Conversations the agent is in or owes a wrap-up for.
    pub conversations: Vec<ConversationId>,
    pub wrap_ups: Vec<WrapUpRequired>,
}

#[derive(Message)]
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
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct Logout;

impl Handler<Logout> for AgentActor {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, _message: Logout, ctx: &mut Self::Context) -> Self::Result {
        self.agent.check_logout()?;
        let mut view = self.view();
        view.state = AgentState::Offline;
        if let Some(config) = self.engine.catalog.agent(&self.agent.id) {
            for queue in &config.queues {
                if let Some(actor) = self.engine.directory.queue(queue) {
                    actor.tell(AgentStatus(view.clone()));
                }
            }
        }
        self.engine.store.put_presence(&self.agent.id, None);
        self.engine.directory.remove_agent(&self.agent.id);
        // Every tab of the agent ends, not only the one that logged out.
        self.engine.hub.close(&self.topic());
        tracing::info!(agent_id = %self.agent.id, "agent logged out");
        ctx.stop();
        Ok(())
    }
}

/// Starts an agent's actor in the logged-in `idle` state, with no idle
/// reason (the agent has not picked one).
pub fn start(engine: &Arc<EngineContext>, config: crate::config::AgentConfig) -> Addr<AgentActor> {
    let agent = Agent::logged_in(
        config.id,
        config.name,
        config.max_chats,
        None,
        Timestamp::now(),
    );
    // Listed before the actor runs: a directory lookup right after the
    // login answers with the agent, idle.
    engine.store.put_presence(&agent.id, Some(agent.info()));
    let shared = engine.clone();
    AgentActor::start_in_arbiter(engine.directory.arbiter(), move |_ctx| {
        AgentActor::new(agent, shared)
    })
}
