//! The conversation state machine. Pure: no actix, no I/O, no clock (every
//! transition takes `now`). Each transition checks before it changes
//! anything, so a refused command leaves the conversation as it was, and
//! returns the effects the actor must carry out.
//!
//! ```text
//! queued -> offered -> active <-> conference_requested -> conference -> active
//!    ^         |          |                                   
//!    +--RONA---+          +-> ended -> closed (every wrap-up in)
//! queued/offered --customer leaves--> abandoned
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use switchboard_proto::event::{Notice, WrapUpRequired};
use switchboard_proto::model::*;
use switchboard_proto::validation::{check_agent_text, check_customer_text};
use switchboard_proto::{
    AgentId, ClientMsgId, ConversationId, MessageId, OfferId, QueueId, Timestamp,
};

use crate::agent::availability::Involvement;
use crate::error::EngineError;
use crate::events::DomainEvent;
use crate::queue::waiting::Position;
use switchboard_proto::feed::EventType;

/// What everyone in a chat reads when a transfer to an agent was not
/// accepted in time and the chat went back to its queue.
pub const TRANSFER_FELL_BACK: &str =
    "Your chat is back in the queue; the next available agent will answer.";

/// An agent as a conversation knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seat {
    pub id: AgentId,
    pub name: String,
}

impl Seat {
    fn named_ref(&self) -> NamedRef {
        NamedRef::new(self.id.as_str(), self.name.as_str())
    }
}

/// Who issues a command inside a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaker<'a> {
    Customer,
    Agent(&'a AgentId),
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    pub rona_timeout_ms: u64,
    pub auto_wrap_up_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// RONA: the offer was not accepted in time.
    OfferExpiry(OfferId),
    /// The agent did not wrap up in time.
    AutoWrapUp(AgentId),
}

/// Told to an agent's actor about this conversation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AgentNotice {
    OfferReady(Box<Offer>),
    OfferWithdrawn {
        offer_id: OfferId,
        reason: WithdrawReason,
    },
    WrapUpRequired(WrapUpRequired),
    /// The agent's wrap-up is in: its slot is free.
    Released,
    Notice(Notice),
}

/// Told to a queue's actor about this conversation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum QueueNotice {
    Enqueue {
        position: Position,
        queued_since: Timestamp,
    },
    Remove {
        abandoned: bool,
    },
    /// An agent accepted a routed offer after `wait_ms` in the queue.
    Answered {
        wait_ms: u64,
    },
    Rona,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Put the message in the log, then deliver it to everyone present.
    Append(Arc<Message>),
    /// The summary changed: send `conversation` to everyone present.
    Broadcast,
    /// Send the summary to an agent who just left.
    SummaryTo(AgentId),
    Agent(AgentId, AgentNotice),
    Queue(QueueId, QueueNotice),
    StartTimer(Timer, u64),
    CancelTimer(Timer),
    /// Nothing more will happen: keep the record and stop.
    Finished,
    /// Tell other systems ([`DomainEvent`]): stored with the transition's
    /// write, in its order.
    Event(Box<DomainEvent>),
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct PendingOffer {
    offer_id: OfferId,
    kind: OfferKind,
    agent: Seat,
    from: Option<Seat>,
    offered_at: Timestamp,
    expires_at: Timestamp,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct OwedWrapUp {
    agent: Seat,
    /// When the automatic wrap-up is due (re-armed after a failover).
    due_at: Timestamp,
    /// The leg it wraps up, for reports: its queue (the wrap-up counts
    /// there, even after a transfer moved the conversation on), its role
    /// and when it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue: Option<QueueId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<LegRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    joined_at: Option<Timestamp>,
}

/// Serialized as a cluster snapshot without its messages: those live in
/// the conversation's log and are put back by [`Conversation::restore`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub customer: Customer,
    pub attributes: std::collections::BTreeMap<String, serde_json::Value>,
    pub queue: NamedRef,
    pub created_at: Timestamp,
    pub state: ConversationState,
    /// When it entered its current queue; the wait that speed of answer counts.
    queued_since: Timestamp,
    owner: Option<Seat>,
    guest: Option<Seat>,
    pending: Option<PendingOffer>,
    owed: Vec<OwedWrapUp>,
    legs: Vec<Leg>,
    offers: Vec<OfferRecord>,
    wrap_ups: Vec<WrapUpRecord>,
    #[serde(skip)]
    messages: Vec<Arc<Message>>,
    /// `(author id, client_msg_id)` -> seq: a retried `send` adds nothing.
    /// Rebuilt from the messages on restore, so a snapshot stays small.
    #[serde(skip)]
    sent: HashMap<(String, ClientMsgId), u64>,
    first_accepted_at: Option<Timestamp>,
    /// An agent accepted it since it entered its current queue: a later
    /// accept from the queue (after a transfer to an agent went
    /// unanswered) is not the queue's answer again.
    #[serde(default)]
    answered_in_queue: bool,
    ended_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    timing: Timing,
    wrap_up_reasons: Arc<Vec<Reason>>,
}

/// What `start` needs to open a conversation.
pub struct NewConversation {
    pub id: ConversationId,
    pub customer: Customer,
    pub attributes: std::collections::BTreeMap<String, serde_json::Value>,
    pub queue: NamedRef,
    pub first_message: String,
    pub max_message_chars: usize,
    pub timing: Timing,
    pub wrap_up_reasons: Arc<Vec<Reason>>,
}

impl Conversation {
    /// What a chat start must carry: a customer name and a first message
    /// within the length limit. Checked before anything is stored.
    pub fn check_start(
        customer: &Customer,
        first_message: &str,
        max_message_chars: usize,
    ) -> Result<(), EngineError> {
        check_customer_text(first_message, max_message_chars)?;
        if customer.name.trim().is_empty() {
            return Err(EngineError::BadRequest("customer.name is empty".into()));
        }
        Ok(())
    }

    /// A customer opens a chat: message 1 is the first question, and the
    /// conversation waits at the tail of its queue.
    pub fn start(new: NewConversation, now: Timestamp) -> Result<(Self, Vec<Effect>), EngineError> {
        Self::check_start(&new.customer, &new.first_message, new.max_message_chars)?;
        let mut conversation = Self {
            id: new.id,
            customer: new.customer,
            attributes: new.attributes,
            queue: new.queue,
            created_at: now,
            state: ConversationState::Queued,
            queued_since: now,
            owner: None,
            guest: None,
            pending: None,
            owed: Vec::new(),
            legs: Vec::new(),
            offers: Vec::new(),
            wrap_ups: Vec::new(),
            messages: Vec::new(),
            sent: HashMap::new(),
            first_accepted_at: None,
            answered_in_queue: false,
            ended_at: None,
            closed_at: None,
            timing: new.timing,
            wrap_up_reasons: new.wrap_up_reasons,
        };
        let author = conversation.customer_author();
        let created = conversation.event(
            EventType::ConversationCreated,
            None,
            serde_json::json!({
                "customer": {
                    "id": conversation.customer.id,
                    "name": conversation.customer.name,
                    "verified": conversation.customer.verified,
                },
                "queue": conversation.queue,
                "attributes": conversation.attributes,
            }),
            now,
        );
        let queued = conversation.queued_event("created", now);
        let first = conversation.push_message(author, new.first_message, None, now);
        let effects = vec![
            created,
            queued,
            Effect::Append(first),
            Effect::Queue(
                conversation.queue_id(),
                QueueNotice::Enqueue {
                    position: Position::Tail,
                    queued_since: now,
                },
            ),
        ];
        Ok((conversation, effects))
    }

    /// Puts back the messages of a conversation read from a cluster
    /// snapshot (they travel in the log, not the snapshot) and returns what
    /// to do again: the timers (RONA for the offer in flight, auto wrap-up
    /// for each wrap-up owed; a deadline already past fires at once), and
    /// the notices its old node may have died before sending (enqueue, the
    /// offer), which their receivers take as no-ops when repeated.
    pub fn restore(&mut self, messages: Vec<Arc<Message>>, now: Timestamp) -> Vec<Effect> {
        self.sent = messages
            .iter()
            .filter_map(|message| {
                let author = message.from.id.clone()?;
                let client_msg_id = message.client_msg_id.clone()?;
                Some(((author, client_msg_id), message.seq))
            })
            .collect();
        self.messages = messages;
        let remaining = |deadline: Timestamp| deadline.millis_since(now);
        let mut timers = Vec::new();
        // The node may have died between saving and telling: tell again
        // (the queue and the agent take a repeat as a no-op).
        if let Some(since) = self.waiting_since() {
            timers.push(Effect::Queue(
                self.queue_id(),
                QueueNotice::Enqueue {
                    position: Position::Head,
                    queued_since: since,
                },
            ));
        }
        if let Some(pending) = &self.pending {
            timers.push(Effect::Agent(
                pending.agent.id.clone(),
                AgentNotice::OfferReady(Box::new(self.offer_payload(pending))),
            ));
            timers.push(Effect::StartTimer(
                Timer::OfferExpiry(pending.offer_id.clone()),
                remaining(pending.expires_at),
            ));
        }
        for owed in &self.owed {
            timers.push(Effect::Agent(
                owed.agent.id.clone(),
                AgentNotice::WrapUpRequired(WrapUpRequired {
                    conversation_id: self.id.clone(),
                    reasons: self.wrap_up_reasons.as_ref().clone(),
                    auto_wrap_up_at: owed.due_at,
                }),
            ));
            timers.push(Effect::StartTimer(
                Timer::AutoWrapUp(owed.agent.id.clone()),
                remaining(owed.due_at),
            ));
        }
        timers
    }

    /// Did `agent` accept the offer `offer_id`?
    fn accepted(&self, agent: &AgentId, offer_id: &OfferId) -> bool {
        self.offers.iter().any(|offer| {
            &offer.offer_id == offer_id
                && offer.agent.id == agent.as_str()
                && offer.outcome == OfferOutcome::Accepted
        })
    }

    /// Since when it waits in its queue, while it does.
    pub fn waiting_since(&self) -> Option<Timestamp> {
        (self.state == ConversationState::Queued).then_some(self.queued_since)
    }

    pub fn queue_id(&self) -> QueueId {
        QueueId::new(self.queue.id.as_str())
    }

    pub fn last_seq(&self) -> u64 {
        self.messages.len() as u64
    }

    pub fn owner(&self) -> Option<&AgentId> {
        self.owner.as_ref().map(|seat| &seat.id)
    }

    /// Agents present now (owner and conference guest).
    pub fn present_agents(&self) -> impl Iterator<Item = &AgentId> {
        self.owner
            .iter()
            .chain(self.guest.iter())
            .map(|seat| &seat.id)
    }

    pub fn is_present(&self, agent: &AgentId) -> bool {
        self.present_agents().any(|present| present == agent)
    }

    /// Did this agent ever hold a leg (so it may read the record)?
    pub fn took_part(&self, agent: &AgentId) -> bool {
        self.legs.iter().any(|leg| leg.agent.id == agent.as_str())
    }

    /// The conversation will change no more and no wrap-up is owed.
    pub fn is_finished(&self) -> bool {
        self.state.is_final() && self.owed.is_empty()
    }

    pub fn messages_after(&self, after_seq: u64) -> &[Arc<Message>] {
        let start = (after_seq as usize).min(self.messages.len());
        &self.messages[start..]
    }

    fn customer_author(&self) -> Author {
        Author {
            role: Role::Customer,
            id: Some(self.id.0.clone()),
            name: self.customer.name.clone(),
        }
    }

    fn push_message(
        &mut self,
        from: Author,
        text: String,
        client_msg_id: Option<ClientMsgId>,
        now: Timestamp,
    ) -> Arc<Message> {
        let seq = self.messages.len() as u64 + 1;
        if let (Some(author), Some(client_msg_id)) = (&from.id, &client_msg_id) {
            self.sent
                .insert((author.clone(), client_msg_id.clone()), seq);
        }
        let message = Arc::new(Message {
            conversation_id: self.id.clone(),
            seq,
            id: MessageId::for_seq(&self.id, seq),
            from,
            text,
            ts: now,
            client_msg_id,
        });
        self.messages.push(message.clone());
        message
    }

    fn system_message(&mut self, text: String, now: Timestamp) -> Effect {
        Effect::Append(self.push_message(Author::system(), text, None, now))
    }

    /// An event of this conversation (its queue and customer filled in).
    fn event(
        &self,
        kind: EventType,
        agent: Option<&AgentId>,
        data: serde_json::Value,
        now: Timestamp,
    ) -> Effect {
        let mut event = DomainEvent::new(kind, now, data);
        event.conversation_id = Some(self.id.clone());
        event.queue_id = Some(self.queue_id());
        event.customer_id = self.customer.id.clone();
        event.agent_id = agent.cloned();
        Effect::Event(Box::new(event))
    }

    /// `conversation.queued`: it waits in its queue now, and `why`.
    fn queued_event(&self, why: &str, now: Timestamp) -> Effect {
        self.event(
            EventType::ConversationQueued,
            None,
            serde_json::json!({ "queue": self.queue, "reason": why, "queued_since": self.queued_since }),
            now,
        )
    }

    /// `message.created` for a message of this conversation's log.
    pub fn message_event(&self, message: &Message) -> DomainEvent {
        let author = message
            .from
            .id
            .as_ref()
            .filter(|_| message.from.role == Role::Agent);
        match self.event(
            EventType::MessageCreated,
            author.map(|id| AgentId::new(id.as_str())).as_ref(),
            serde_json::json!({ "message": message }),
            message.ts,
        ) {
            Effect::Event(event) => *event,
            _ => unreachable!("event() makes an event"),
        }
    }

    pub fn summary(&self) -> ConversationSummary {
        let mut participants = vec![Participant {
            role: Role::Customer,
            id: self.id.0.clone(),
            name: self.customer.name.clone(),
        }];
        for seat in self.owner.iter().chain(self.guest.iter()) {
            participants.push(Participant {
                role: Role::Agent,
                id: seat.id.0.clone(),
                name: seat.name.clone(),
            });
        }
        ConversationSummary {
            conversation_id: self.id.clone(),
            state: self.state,
            queue: self.queue.clone(),
            participants,
            owner: self.owner().cloned(),
            customer: self.customer.clone(),
            created_at: self.created_at,
            last_seq: self.last_seq(),
        }
    }

    pub fn record(&self) -> ConversationRecord {
        let mut record = self.record_head();
        record.messages = self.messages.iter().map(|m| (**m).clone()).collect();
        record
    }

    /// The record without its messages: what changes at a transition (the
    /// messages are stored one by one as they come).
    pub fn record_head(&self) -> ConversationRecord {
        let summary = self.summary();
        ConversationRecord {
            conversation_id: self.id.clone(),
            state: self.state,
            customer: self.customer.clone(),
            attributes: self.attributes.clone(),
            queue: self.queue.clone(),
            created_at: self.created_at,
            first_accepted_at: self.first_accepted_at,
            ended_at: self.ended_at,
            closed_at: self.closed_at,
            participants: summary.participants,
            owner: summary.owner,
            legs: self.legs.clone(),
            offers: self.offers.clone(),
            wrap_ups: self.wrap_ups.clone(),
            messages: Vec::new(),
            erased: false,
        }
    }

    fn offer_payload(&self, pending: &PendingOffer) -> Offer {
        Offer {
            offer_id: pending.offer_id.clone(),
            conversation_id: self.id.clone(),
            kind: pending.kind,
            customer: self.customer.clone(),
            queue: self.queue.clone(),
            agent: pending.agent.named_ref(),
            from_agent: pending.from.as_ref().map(Seat::named_ref),
            created_at: self.created_at,
            offered_at: pending.offered_at,
            expires_at: pending.expires_at,
            messages: self.messages.iter().map(|m| (**m).clone()).collect(),
        }
    }

    /// The offer of the agent's pending offer, if it has one (for `hello`).
    pub fn pending_offer_for(&self, agent: &AgentId) -> Option<Offer> {
        let pending = self.pending.as_ref().filter(|p| &p.agent.id == agent)?;
        Some(self.offer_payload(pending))
    }

    /// Opens an offer and returns its effects: the RONA timer, the popover.
    fn open_offer(
        &mut self,
        offer_id: OfferId,
        kind: OfferKind,
        agent: Seat,
        from: Option<Seat>,
        routing: Option<RoutingDecision>,
        now: Timestamp,
    ) -> Vec<Effect> {
        let pending = PendingOffer {
            offer_id: offer_id.clone(),
            kind,
            agent: agent.clone(),
            from,
            offered_at: now,
            expires_at: now.plus_millis(self.timing.rona_timeout_ms),
        };
        // Exactly one more: most conversations see one or two offers, and
        // `push` would reserve four records (1 KiB) on the first.
        self.offers.reserve_exact(1);
        self.offers.push(OfferRecord {
            offer_id: offer_id.clone(),
            kind,
            agent: agent.named_ref(),
            from_agent: pending.from.as_ref().map(Seat::named_ref),
            offered_at: now,
            expires_at: pending.expires_at,
            outcome: OfferOutcome::Pending,
            resolved_at: None,
            routing,
        });
        let offer = self.offer_payload(&pending);
        let data = serde_json::json!({
            "offer_id": offer_id,
            "kind": kind,
            "agent": agent.named_ref(),
            "from_agent": pending.from.as_ref().map(Seat::named_ref),
            "expires_at": pending.expires_at,
        });
        let happened = match kind {
            OfferKind::Conference => EventType::ConferenceRequested,
            OfferKind::New | OfferKind::Transfer => EventType::ConversationOffered,
        };
        let event = self.event(happened, Some(&agent.id), data, now);
        self.pending = Some(pending);
        vec![
            event,
            Effect::StartTimer(Timer::OfferExpiry(offer_id), self.timing.rona_timeout_ms),
            Effect::Agent(agent.id, AgentNotice::OfferReady(Box::new(offer))),
            Effect::Broadcast,
        ]
    }

    /// Takes the pending offer and records how it ended.
    fn close_offer(&mut self, outcome: OfferOutcome, now: Timestamp) -> Option<PendingOffer> {
        let pending = self.pending.take()?;
        if let Some(record) = self
            .offers
            .iter_mut()
            .rev()
            .find(|record| record.offer_id == pending.offer_id)
        {
            record.outcome = outcome;
            record.resolved_at = Some(now);
        }
        Some(pending)
    }

    /// The queue reserved a slot at `agent`: offer it. If the conversation is
    /// no longer waiting in that queue (the customer left, it was already
    /// offered), the reservation is handed back instead: one conversation is
    /// never offered to two agents.
    pub fn offer_reserved(
        &mut self,
        queue: &QueueId,
        offer_id: OfferId,
        agent: Seat,
        routing: RoutingDecision,
        now: Timestamp,
    ) -> Vec<Effect> {
        let waiting_here = self.state == ConversationState::Queued
            && self.pending.is_none()
            && self.queue.id == queue.as_str();
        if !waiting_here {
            return vec![Effect::Agent(
                agent.id,
                AgentNotice::OfferWithdrawn {
                    offer_id,
                    reason: WithdrawReason::Cancelled,
                },
            )];
        }
        self.state = ConversationState::Offered;
        self.open_offer(offer_id, OfferKind::New, agent, None, Some(routing), now)
    }

    /// The offered agent accepts.
    pub fn accept(
        &mut self,
        agent: &AgentId,
        offer_id: &OfferId,
        now: Timestamp,
    ) -> Result<Vec<Effect>, EngineError> {
        let matches = self
            .pending
            .as_ref()
            .is_some_and(|p| &p.offer_id == offer_id && &p.agent.id == agent);
        if !matches {
            // A retried accept (its answer was lost) succeeds again, and
            // changes nothing, while the agent is still in the chat.
            if self.accepted(agent, offer_id) && self.is_present(agent) {
                return Ok(Vec::new());
            }
            return Err(EngineError::NoOffer(self.id.clone()));
        }
        let Some(pending) = self.close_offer(OfferOutcome::Accepted, now) else {
            return Err(EngineError::NoOffer(self.id.clone()));
        };
        let mut effects = vec![Effect::CancelTimer(Timer::OfferExpiry(
            pending.offer_id.clone(),
        ))];
        let mut data = serde_json::json!({
            "offer_id": pending.offer_id,
            "kind": pending.kind,
            "agent": pending.agent.named_ref(),
        });
        let first_in_queue = pending.kind != OfferKind::Conference && !self.answered_in_queue;
        if pending.kind != OfferKind::Conference {
            // How long it waited in its queue, and whether this is the
            // queue's answer to it (reports' handled and speed of answer).
            data["wait_ms"] = serde_json::json!(now.millis_since(self.queued_since));
            data["first_in_queue"] = serde_json::json!(first_in_queue);
        }
        let happened = match pending.kind {
            OfferKind::Conference => EventType::ConferenceStarted,
            OfferKind::New | OfferKind::Transfer => EventType::ConversationAccepted,
        };
        effects.push(self.event(happened, Some(&pending.agent.id), data, now));
        let role = match pending.kind {
            OfferKind::New | OfferKind::Transfer => {
                if first_in_queue {
                    effects.push(Effect::Queue(
                        self.queue_id(),
                        QueueNotice::Answered {
                            wait_ms: now.millis_since(self.queued_since),
                        },
                    ));
                }
                self.first_accepted_at.get_or_insert(now);
                self.answered_in_queue = true;
                self.owner = Some(pending.agent.clone());
                self.state = ConversationState::Active;
                LegRole::Owner
            }
            OfferKind::Conference => {
                self.guest = Some(pending.agent.clone());
                self.state = ConversationState::Conference;
                LegRole::Guest
            }
        };
        self.legs.push(Leg {
            agent: pending.agent.named_ref(),
            role,
            joined_at: now,
            left_at: None,
            left_because: None,
        });
        effects.push(Effect::Broadcast);
        effects.push(self.system_message(format!("{} joined the chat", pending.agent.name), now));
        Ok(effects)
    }

    /// The RONA timer fired. A timer for an older offer is ignored.
    pub fn offer_expired(&mut self, offer_id: &OfferId, now: Timestamp) -> Vec<Effect> {
        if self.pending.as_ref().map(|p| &p.offer_id) != Some(offer_id) {
            return Vec::new();
        }
        let Some(pending) = self.close_offer(OfferOutcome::Rona, now) else {
            return Vec::new();
        };
        let rona = self.event(
            EventType::ConversationRona,
            Some(&pending.agent.id),
            serde_json::json!({
                "offer_id": pending.offer_id,
                "kind": pending.kind,
                "agent": pending.agent.named_ref(),
            }),
            now,
        );
        let mut effects = vec![
            rona,
            Effect::Agent(
                pending.agent.id.clone(),
                AgentNotice::OfferWithdrawn {
                    offer_id: pending.offer_id.clone(),
                    reason: WithdrawReason::Rona,
                },
            ),
        ];
        match pending.kind {
            OfferKind::New | OfferKind::Transfer => {
                if pending.kind == OfferKind::Transfer {
                    self.queued_since = now;
                    // The customer's last line said it went to that agent:
                    // say where it is now.
                    effects.push(self.system_message(TRANSFER_FELL_BACK.to_owned(), now));
                }
                self.state = ConversationState::Queued;
                effects.push(self.queued_event("rona", now));
                effects.push(Effect::Queue(self.queue_id(), QueueNotice::Rona));
                effects.push(Effect::Queue(
                    self.queue_id(),
                    QueueNotice::Enqueue {
                        position: Position::Head,
                        queued_since: self.queued_since,
                    },
                ));
            }
            OfferKind::Conference => {
                self.state = ConversationState::Active;
                effects.push(self.event(
                    EventType::ConferenceEnded,
                    Some(&pending.agent.id),
                    serde_json::json!({ "agent": pending.agent.named_ref(), "reason": "no_answer" }),
                    now,
                ));
                if let Some(owner) = &self.owner {
                    effects.push(Effect::Agent(
                        owner.id.clone(),
                        AgentNotice::Notice(Notice {
                            conversation_id: self.id.clone(),
                            code: "conference_no_answer".into(),
                            text: format!(
                                "{} did not accept the conference in time",
                                pending.agent.name
                            ),
                        }),
                    ));
                }
            }
        }
        effects.push(Effect::Broadcast);
        effects
    }

    /// `send`. A retry with a known `client_msg_id` returns the message it
    /// already made and changes nothing.
    pub fn send(
        &mut self,
        speaker: Speaker<'_>,
        text: String,
        client_msg_id: ClientMsgId,
        max_chars: usize,
        now: Timestamp,
    ) -> Result<(Arc<Message>, Vec<Effect>), EngineError> {
        let typed = |text: &str| match speaker {
            Speaker::Customer => check_customer_text(text, max_chars),
            Speaker::Agent(_) => check_agent_text(text, max_chars),
        };
        self.send_checked(speaker, text, client_msg_id, typed, now)
    }

    /// `send_template`: the text is the template's, filled; only its length
    /// is checked (a customer named `<Ann>` may be greeted by name). The
    /// params the agent typed are checked as agent text by the caller.
    pub fn send_filled_template(
        &mut self,
        agent: &AgentId,
        text: String,
        client_msg_id: ClientMsgId,
        max_chars: usize,
        now: Timestamp,
    ) -> Result<(Arc<Message>, Vec<Effect>), EngineError> {
        let filled = |text: &str| check_customer_text(text, max_chars);
        self.send_checked(Speaker::Agent(agent), text, client_msg_id, filled, now)
    }

    /// A retry with a known `client_msg_id` returns the message it made,
    /// whatever happened since (even after the end).
    fn send_checked(
        &mut self,
        speaker: Speaker<'_>,
        text: String,
        client_msg_id: ClientMsgId,
        check: impl Fn(&str) -> Result<(), switchboard_proto::validation::TextError>,
        now: Timestamp,
    ) -> Result<(Arc<Message>, Vec<Effect>), EngineError> {
        let author_key = match speaker {
            Speaker::Customer => self.id.0.clone(),
            Speaker::Agent(agent) => agent.0.clone(),
        };
        if let Some(&seq) = self.sent.get(&(author_key, client_msg_id.clone())) {
            let existing = self.messages[(seq - 1) as usize].clone();
            return Ok((existing, Vec::new()));
        }
        let author = self.author(speaker)?;
        check(&text)?;
        let message = self.push_message(author, text, Some(client_msg_id), now);
        Ok((message.clone(), vec![Effect::Append(message)]))
    }

    /// The author a speaker writes as, if it may write now.
    pub fn author(&self, speaker: Speaker<'_>) -> Result<Author, EngineError> {
        match speaker {
            Speaker::Customer => {
                if matches!(
                    self.state,
                    ConversationState::Ended
                        | ConversationState::Closed
                        | ConversationState::Abandoned
                ) {
                    return Err(EngineError::invalid_state("the conversation has ended"));
                }
                Ok(self.customer_author())
            }
            Speaker::Agent(agent) => {
                let seat = self
                    .owner
                    .iter()
                    .chain(self.guest.iter())
                    .find(|seat| &seat.id == agent)
                    .ok_or_else(|| {
                        EngineError::Forbidden("you are not in this conversation".into())
                    })?;
                if !matches!(
                    self.state,
                    ConversationState::Active
                        | ConversationState::ConferenceRequested
                        | ConversationState::Conference
                ) {
                    return Err(EngineError::invalid_state(format!(
                        "cannot write in a conversation that is {}",
                        self.state.as_str()
                    )));
                }
                Ok(Author {
                    role: Role::Agent,
                    id: Some(seat.id.0.clone()),
                    name: seat.name.clone(),
                })
            }
        }
    }

    /// The owner, if `by` owns the conversation and it is in one of `states`.
    fn check_owner(
        &self,
        by: &AgentId,
        action: &'static str,
        states: &[ConversationState],
    ) -> Result<Seat, EngineError> {
        if !states.contains(&self.state) {
            return Err(EngineError::invalid_state(format!(
                "cannot {action} a conversation that is {}",
                self.state.as_str()
            )));
        }
        match &self.owner {
            Some(owner) if &owner.id == by => Ok(owner.clone()),
            _ => Err(EngineError::NotOwner(action)),
        }
    }

    /// Checks a transfer could start (before a target's slot is reserved).
    pub fn check_transfer(&self, by: &AgentId, target: &AgentId) -> Result<(), EngineError> {
        self.check_target(by, target, "transfer", "you cannot transfer to yourself")
            .map(|_| ())
    }

    /// Checks that `by` may hand the conversation (transfer) or bring in
    /// (conference) another agent now: the owner, after accept, not during
    /// a conference, and not naming itself.
    fn check_target(
        &self,
        by: &AgentId,
        target: &AgentId,
        action: &'static str,
        naming_itself: &'static str,
    ) -> Result<Seat, EngineError> {
        let owner = self.check_owner(by, action, &[ConversationState::Active])?;
        if target == by {
            return Err(EngineError::BadRequest(naming_itself.into()));
        }
        Ok(owner)
    }

    /// Checks a conference could start (before the invitee's slot is reserved).
    pub fn check_conference(&self, by: &AgentId, target: &AgentId) -> Result<(), EngineError> {
        self.check_target(by, target, "conference", "you cannot invite yourself")
            .map(|_| ())
    }

    /// The owner leaves (a transfer): its leg ends and it owes a wrap-up.
    fn owner_leaves(&mut self, because: &str, now: Timestamp) -> Vec<Effect> {
        let Some(owner) = self.owner.take() else {
            return Vec::new();
        };
        self.end_leg(&owner.id, because, now);
        let mut effects = vec![Effect::SummaryTo(owner.id.clone())];
        effects.extend(self.owe_wrap_up(owner, now));
        effects
    }

    fn end_leg(&mut self, agent: &AgentId, because: &str, now: Timestamp) {
        if let Some(leg) = self
            .legs
            .iter_mut()
            .rev()
            .find(|leg| leg.agent.id == agent.as_str() && leg.left_at.is_none())
        {
            leg.left_at = Some(now);
            leg.left_because = Some(because.to_owned());
        }
    }

    fn owe_wrap_up(&mut self, agent: Seat, now: Timestamp) -> Vec<Effect> {
        let required = WrapUpRequired {
            conversation_id: self.id.clone(),
            reasons: self.wrap_up_reasons.as_ref().clone(),
            auto_wrap_up_at: now.plus_millis(self.timing.auto_wrap_up_ms),
        };
        let timer = Timer::AutoWrapUp(agent.id.clone());
        let due_at = required.auto_wrap_up_at;
        let notice = Effect::Agent(agent.id.clone(), AgentNotice::WrapUpRequired(required));
        // The leg that just ended is the agent's last.
        let leg = self
            .legs
            .iter()
            .rev()
            .find(|leg| leg.agent.id == agent.id.as_str());
        let (role, joined_at) = (leg.map(|leg| leg.role), leg.map(|leg| leg.joined_at));
        self.owed.push(OwedWrapUp {
            agent,
            due_at,
            queue: Some(self.queue_id()),
            role,
            joined_at,
        });
        vec![
            notice,
            Effect::StartTimer(timer, self.timing.auto_wrap_up_ms),
        ]
    }

    /// Transfer to a queue: the conversation re-enters that queue and the
    /// owner leaves at once.
    pub fn transfer_to_queue(
        &mut self,
        by: &AgentId,
        queue: NamedRef,
        now: Timestamp,
    ) -> Result<Vec<Effect>, EngineError> {
        let owner = self.check_owner(by, "transfer", &[ConversationState::Active])?;
        let mut effects = self.owner_leaves("transferred", now);
        effects.push(self.event(
            EventType::ConversationTransferred,
            Some(&owner.id),
            serde_json::json!({
                "from_agent": owner.named_ref(),
                "from_queue": self.queue,
                "to_queue": queue,
            }),
            now,
        ));
        effects.push(self.system_message(
            format!("{} transferred the chat to {}", owner.name, queue.name),
            now,
        ));
        self.queue = queue;
        self.state = ConversationState::Queued;
        self.queued_since = now;
        self.answered_in_queue = false;
        effects.push(self.queued_event("transferred", now));
        effects.push(Effect::Queue(
            self.queue_id(),
            QueueNotice::Enqueue {
                position: Position::Tail,
                queued_since: now,
            },
        ));
        effects.push(Effect::Broadcast);
        Ok(effects)
    }

    /// Transfer to an agent whose slot is already reserved for `offer_id`.
    pub fn transfer_to_agent(
        &mut self,
        by: &AgentId,
        offer_id: OfferId,
        target: Seat,
        now: Timestamp,
    ) -> Result<Vec<Effect>, EngineError> {
        let owner = self.check_target(
            by,
            &target.id,
            "transfer",
            "you cannot transfer to yourself",
        )?;
        let mut effects = self.owner_leaves("transferred", now);
        effects.push(self.event(
            EventType::ConversationTransferred,
            Some(&owner.id),
            serde_json::json!({ "from_agent": owner.named_ref(), "to_agent": target.named_ref() }),
            now,
        ));
        effects.push(self.system_message(
            format!("{} transferred the chat to {}", owner.name, target.name),
            now,
        ));
        self.state = ConversationState::Offered;
        effects.extend(self.open_offer(
            offer_id,
            OfferKind::Transfer,
            target,
            Some(owner),
            None,
            now,
        ));
        Ok(effects)
    }

    /// Invite an agent whose slot is already reserved for `offer_id`.
    pub fn conference(
        &mut self,
        by: &AgentId,
        offer_id: OfferId,
        target: Seat,
        now: Timestamp,
    ) -> Result<Vec<Effect>, EngineError> {
        let owner =
            self.check_target(by, &target.id, "conference", "you cannot invite yourself")?;
        self.state = ConversationState::ConferenceRequested;
        Ok(self.open_offer(
            offer_id,
            OfferKind::Conference,
            target,
            Some(owner),
            None,
            now,
        ))
    }

    /// Withdraws a pending conference invitation, if any.
    fn cancel_invitation(&mut self, now: Timestamp) -> Vec<Effect> {
        let is_invitation = self
            .pending
            .as_ref()
            .is_some_and(|p| p.kind == OfferKind::Conference);
        if !is_invitation {
            return Vec::new();
        }
        let mut effects = Vec::new();
        if let Some(pending) = &self.pending {
            effects.push(self.event(
                EventType::ConferenceEnded,
                Some(&pending.agent.id),
                serde_json::json!({ "agent": pending.agent.named_ref(), "reason": "withdrawn" }),
                now,
            ));
        }
        effects.extend(self.withdraw_pending(WithdrawReason::Cancelled, now));
        effects
    }

    /// `end_conference`: the guest leaves (or the invitation is withdrawn).
    pub fn end_conference(
        &mut self,
        by: &AgentId,
        now: Timestamp,
    ) -> Result<Vec<Effect>, EngineError> {
        self.check_owner(
            by,
            "end the conference of",
            &[
                ConversationState::ConferenceRequested,
                ConversationState::Conference,
            ],
        )?;
        let mut effects = self.cancel_invitation(now);
        if let Some(guest) = self.guest.take() {
            effects.push(self.event(
                EventType::ConferenceEnded,
                Some(&guest.id),
                serde_json::json!({ "agent": guest.named_ref(), "reason": "ended" }),
                now,
            ));
            self.end_leg(&guest.id, "conference_ended", now);
            effects.push(Effect::SummaryTo(guest.id.clone()));
            effects.push(self.system_message(format!("{} left the chat", guest.name), now));
            effects.extend(self.owe_wrap_up(guest, now));
        }
        self.state = ConversationState::Active;
        effects.push(Effect::Broadcast);
        Ok(effects)
    }

    /// `end` by the owner or the customer. A customer who leaves before an
    /// agent accepted abandons the conversation.
    pub fn end(&mut self, by: Speaker<'_>, now: Timestamp) -> Result<Vec<Effect>, EngineError> {
        let talking = [
            ConversationState::Active,
            ConversationState::ConferenceRequested,
            ConversationState::Conference,
        ];
        let waiting = matches!(
            self.state,
            ConversationState::Queued | ConversationState::Offered
        );
        let ender = match by {
            Speaker::Agent(agent) => self.check_owner(agent, "end", &talking)?.name,
            Speaker::Customer => {
                if waiting && self.first_accepted_at.is_none() {
                    return Ok(self.abandon(now));
                }
                if !waiting && !talking.contains(&self.state) {
                    return Err(EngineError::invalid_state("the conversation has ended"));
                }
                self.customer.name.clone()
            }
        };
        // Waiting after an agent had answered (it was transferred): the
        // chat ends, it was not abandoned.
        let mut effects = if waiting {
            let mut effects = self.withdraw_pending(WithdrawReason::CustomerLeft, now);
            effects.push(Effect::Queue(
                self.queue_id(),
                QueueNotice::Remove { abandoned: false },
            ));
            effects
        } else {
            self.cancel_invitation(now)
        };
        self.state = ConversationState::Ended;
        self.ended_at = Some(now);
        let (role, agent) = match by {
            Speaker::Agent(agent) => ("agent", Some(agent)),
            Speaker::Customer => ("customer", None),
        };
        effects.push(self.event(
            EventType::ConversationEnded,
            agent,
            serde_json::json!({ "by": { "role": role, "id": agent, "name": ender } }),
            now,
        ));
        effects.push(self.system_message(format!("{ender} ended the chat"), now));
        effects.push(Effect::Broadcast);
        let present: Vec<Seat> = self
            .owner
            .iter()
            .chain(self.guest.iter())
            .cloned()
            .collect();
        for seat in present {
            self.end_leg(&seat.id, "ended", now);
            effects.extend(self.owe_wrap_up(seat, now));
        }
        if self.owed.is_empty() {
            effects.extend(self.close(now));
        }
        Ok(effects)
    }

    /// Withdraws the pending offer, whatever its kind.
    fn withdraw_pending(&mut self, reason: WithdrawReason, now: Timestamp) -> Vec<Effect> {
        let outcome = match reason {
            WithdrawReason::CustomerLeft => OfferOutcome::CustomerLeft,
            WithdrawReason::Rona => OfferOutcome::Rona,
            WithdrawReason::Cancelled | WithdrawReason::AcceptedElsewhere => {
                OfferOutcome::Cancelled
            }
        };
        let Some(pending) = self.close_offer(outcome, now) else {
            return Vec::new();
        };
        vec![
            Effect::CancelTimer(Timer::OfferExpiry(pending.offer_id.clone())),
            Effect::Agent(
                pending.agent.id,
                AgentNotice::OfferWithdrawn {
                    offer_id: pending.offer_id,
                    reason,
                },
            ),
        ]
    }

    /// Every wrap-up is in: closed, nothing more will happen.
    fn close(&mut self, now: Timestamp) -> Vec<Effect> {
        self.state = ConversationState::Closed;
        self.closed_at = Some(now);
        let wrap_ups: Vec<&str> = self.wrap_ups.iter().map(|w| w.reason.id.as_str()).collect();
        let closed = self.event(
            EventType::ConversationClosed,
            None,
            serde_json::json!({
                "created_at": self.created_at,
                "first_accepted_at": self.first_accepted_at,
                "ended_at": self.ended_at,
                "wrap_ups": wrap_ups,
                "message_count": self.messages.len(),
            }),
            now,
        );
        vec![closed, Effect::Broadcast, Effect::Finished]
    }

    /// The customer left before any agent accepted.
    fn abandon(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut effects = self.withdraw_pending(WithdrawReason::CustomerLeft, now);
        self.state = ConversationState::Abandoned;
        self.ended_at = Some(now);
        effects.push(self.event(
            EventType::ConversationAbandoned,
            None,
            serde_json::json!({
                "wait_ms": now.millis_since(self.queued_since),
                "created_at": self.created_at,
            }),
            now,
        ));
        let name = self.customer.name.clone();
        effects.push(self.system_message(format!("{name} left the chat"), now));
        effects.push(Effect::Queue(
            self.queue_id(),
            QueueNotice::Remove { abandoned: true },
        ));
        effects.push(Effect::Broadcast);
        if self.is_finished() {
            effects.push(Effect::Finished);
        }
        effects
    }

    /// `wrap_up` (or the automatic one): frees the agent's slot; the last
    /// one of an ended conversation closes it.
    pub fn wrap_up(
        &mut self,
        agent: &AgentId,
        reason: Reason,
        notes: Option<String>,
        automatic: bool,
        now: Timestamp,
    ) -> Result<Vec<Effect>, EngineError> {
        let Some(index) = self.owed.iter().position(|owed| &owed.agent.id == agent) else {
            return Err(EngineError::invalid_state(
                "no wrap-up is owed for this conversation",
            ));
        };
        let owed = self.owed.remove(index);
        // Reports count an owner's leg as a handled chat, with its handle
        // time (accepted -> wrapped up).
        let mut submitted = self.event(
            EventType::WrapUpSubmitted,
            Some(agent),
            serde_json::json!({
                "agent": owed.agent.named_ref(),
                "reason": reason,
                "notes": notes,
                "automatic": automatic,
                "role": owed.role,
                "handle_ms": owed.joined_at.map(|joined| now.millis_since(joined)),
            }),
            now,
        );
        if let (Effect::Event(event), Some(queue)) = (&mut submitted, owed.queue.clone()) {
            event.queue_id = Some(queue);
        }
        self.wrap_ups.push(WrapUpRecord {
            agent: owed.agent.named_ref(),
            reason,
            notes,
            at: now,
            automatic,
        });
        let mut effects = vec![submitted];
        if !automatic {
            effects.push(Effect::CancelTimer(Timer::AutoWrapUp(agent.clone())));
        }
        effects.push(Effect::Agent(agent.clone(), AgentNotice::Released));
        if self.state == ConversationState::Ended && self.owed.is_empty() {
            effects.extend(self.close(now));
        } else if self.is_finished() {
            effects.push(Effect::Finished);
        }
        Ok(effects)
    }

    /// Every agent with a part in the conversation now, and which part:
    /// present (owner, guest, or offered it right now) or owing its
    /// wrap-up. Whoever is not listed has none.
    pub fn involved_agents(&self) -> Vec<(AgentId, Involvement)> {
        let present = self
            .owner
            .iter()
            .chain(self.guest.iter())
            .chain(self.pending.iter().map(|pending| &pending.agent))
            .map(|seat| (seat.id.clone(), Involvement::Present));
        let owing = self
            .owed
            .iter()
            .map(|owed| (owed.agent.id.clone(), Involvement::OwesWrapUp));
        present.chain(owing).collect()
    }

    pub fn owes_wrap_up(&self, agent: &AgentId) -> bool {
        self.owed.iter().any(|owed| &owed.agent.id == agent)
    }
}
