//! The agent state machine: routing state and slots. Pure: no actix, no I/O.
//!
//! An agent has `max_chats` slots. A slot is held by an offer in flight, an
//! active conversation, or a conversation awaiting this agent's wrap-up.
//! Offers go only to an `available` agent with a free slot; `rona` is left
//! only by setting `available` by hand.

use std::collections::BTreeMap;
use switchboard_proto::event::{AgentStateEvent, WrapUpRequired};
use switchboard_proto::model::{AgentInfo, AgentState, CannotTake, Offer, WithdrawReason};
use switchboard_proto::{AgentId, ConversationId, IdleReasonId, OfferId, Timestamp};

use super::availability::{can_take, Involvement};
use crate::error::EngineError;

/// What occupies one slot.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Slot {
    /// Reserved for an offer; `offer` is filled once the conversation sent it.
    Offered {
        offer_id: OfferId,
        offer: Option<Box<Offer>>,
    },
    Active,
    /// The agent left or the conversation ended; the slot frees on wrap-up.
    WrapUp(WrapUpRequired),
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub max_chats: u32,
    pub state: AgentState,
    pub idle_reason: Option<IdleReasonId>,
    /// When the current state began.
    pub since: Timestamp,
    /// When the agent last became available: ties in routing go to the
    /// agent available longest.
    pub available_since: Timestamp,
    pub slots: BTreeMap<ConversationId, Slot>,
}

/// What the actor must do after a transition.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentEffect {
    /// The state changed: push `agent_state` to the agent's sessions.
    PublishState,
    /// Load or state changed: tell the queues this agent serves.
    ReportToQueues,
    PublishOffer(Box<Offer>),
    PublishWithdrawn {
        conversation_id: ConversationId,
        offer_id: OfferId,
        reason: WithdrawReason,
    },
    PublishWrapUpRequired(WrapUpRequired),
}

impl Agent {
    /// A freshly logged-in agent: `idle`, no slots.
    pub fn logged_in(
        id: AgentId,
        name: String,
        max_chats: u32,
        idle_reason: Option<IdleReasonId>,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            name,
            max_chats,
            state: AgentState::Idle,
            idle_reason,
            since: now,
            available_since: now,
            slots: BTreeMap::new(),
        }
    }

    pub fn load(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn has_free_slot(&self) -> bool {
        self.load() < self.max_chats
    }

    /// Counts only conversations the agent is actually talking in.
    pub fn active_chats(&self) -> u32 {
        self.slots
            .values()
            .filter(|slot| matches!(slot, Slot::Active))
            .count() as u32
    }

    pub fn state_event(&self) -> AgentStateEvent {
        AgentStateEvent {
            state: self.state,
            reason: self.idle_reason.clone(),
            since: self.since,
        }
    }

    /// The row the directory and stats show. `active_chats` counts every
    /// occupied slot, since that is what routing weighs.
    pub fn info(&self) -> AgentInfo {
        AgentInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            active_chats: self.load(),
            max_chats: self.max_chats,
            can_take: None,
            why_not: None,
        }
    }

    pub fn pending_offers(&self) -> Vec<Offer> {
        self.slots
            .values()
            .filter_map(|slot| match slot {
                Slot::Offered {
                    offer: Some(offer), ..
                } => Some((**offer).clone()),
                _ => None,
            })
            .collect()
    }

    pub fn wrap_ups_owed(&self) -> Vec<WrapUpRequired> {
        self.slots
            .values()
            .filter_map(|slot| match slot {
                Slot::WrapUp(required) => Some(required.clone()),
                _ => None,
            })
            .collect()
    }

    fn enter(&mut self, state: AgentState, reason: Option<IdleReasonId>, now: Timestamp) {
        if state == AgentState::Available && self.state != AgentState::Available {
            self.available_since = now;
        }
        self.state = state;
        self.idle_reason = reason;
        self.since = now;
    }

    /// `set_state available`: the only way out of `rona`.
    pub fn set_available(&mut self, now: Timestamp) -> Vec<AgentEffect> {
        if self.state == AgentState::Available {
            return Vec::new();
        }
        self.enter(AgentState::Available, None, now);
        vec![AgentEffect::PublishState, AgentEffect::ReportToQueues]
    }

    /// `set_state idle`: refused from `rona`, which only `available` leaves.
    pub fn set_idle(
        &mut self,
        reason: Option<IdleReasonId>,
        now: Timestamp,
    ) -> Result<Vec<AgentEffect>, EngineError> {
        if self.state == AgentState::Rona {
            return Err(EngineError::invalid_state(
                "an agent in rona can only set itself available",
            ));
        }
        if self.state == AgentState::Idle && self.idle_reason == reason {
            return Ok(Vec::new());
        }
        self.enter(AgentState::Idle, reason, now);
        Ok(vec![AgentEffect::PublishState, AgentEffect::ReportToQueues])
    }

    /// Why this agent cannot take an offer for `conversation_id` now, if
    /// it cannot ([`availability::can_take`], the rule the transfer dialog
    /// shows too).
    pub fn refusal(&self, conversation_id: &ConversationId) -> Option<CannotTake> {
        let involvement = match self.slots.get(conversation_id) {
            None => Involvement::None,
            Some(Slot::WrapUp(_)) => Involvement::OwesWrapUp,
            Some(Slot::Offered { .. } | Slot::Active) => Involvement::Present,
        };
        can_take(self.state, self.load(), self.max_chats, involvement).err()
    }

    /// A queue, a transfer or a conference asks for a slot for an offer.
    /// Atomic in the agent's mailbox: one slot is never given twice.
    pub fn reserve(
        &mut self,
        conversation_id: ConversationId,
        offer_id: OfferId,
    ) -> Result<Vec<AgentEffect>, CannotTake> {
        if let Some(why) = self.refusal(&conversation_id) {
            return Err(why);
        }
        self.slots.insert(
            conversation_id,
            Slot::Offered {
                offer_id,
                offer: None,
            },
        );
        Ok(vec![AgentEffect::ReportToQueues])
    }

    /// The conversation sent the offer's details: show the popover. A stale
    /// offer (the reservation is gone) is ignored.
    pub fn offer_ready(&mut self, offer: Offer) -> Vec<AgentEffect> {
        match self.slots.get_mut(&offer.conversation_id) {
            Some(Slot::Offered {
                offer_id,
                offer: details,
            }) if *offer_id == offer.offer_id => {
                let offer = Box::new(offer);
                *details = Some(offer.clone());
                vec![AgentEffect::PublishOffer(offer)]
            }
            _ => Vec::new(),
        }
    }

    /// Is a slot reserved for `offer_id` still waiting for its offer?
    pub fn awaits_offer(&self, conversation_id: &ConversationId, offer_id: &OfferId) -> bool {
        matches!(
            self.slots.get(conversation_id),
            Some(Slot::Offered { offer_id: held, offer: None }) if held == offer_id
        )
    }

    /// A reservation whose offer never came (the conversation stopped, or
    /// its answer was lost) frees its slot; one with its offer is kept.
    pub fn drop_unoffered(
        &mut self,
        conversation_id: &ConversationId,
        offer_id: &OfferId,
    ) -> Vec<AgentEffect> {
        if !self.awaits_offer(conversation_id, offer_id) {
            return Vec::new();
        }
        self.slots.remove(conversation_id);
        vec![AgentEffect::ReportToQueues]
    }

    /// `accept`: the offer to forward to the conversation.
    pub fn offer_to_accept(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<OfferId, EngineError> {
        match self.slots.get(conversation_id) {
            Some(Slot::Offered {
                offer_id,
                offer: Some(_),
            }) => Ok(offer_id.clone()),
            _ => Err(EngineError::NoOffer(conversation_id.clone())),
        }
    }

    /// The conversation confirmed the accept: the slot becomes active.
    pub fn accepted(
        &mut self,
        conversation_id: &ConversationId,
        offer_id: &OfferId,
    ) -> Vec<AgentEffect> {
        match self.slots.get_mut(conversation_id) {
            Some(slot @ Slot::Offered { .. }) => {
                if matches!(slot, Slot::Offered { offer_id: held, .. } if held == offer_id) {
                    *slot = Slot::Active;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The offer is gone (RONA, customer left, cancelled). RONA also moves
    /// the agent to `rona`. A withdrawal for another offer is ignored.
    pub fn offer_withdrawn(
        &mut self,
        conversation_id: &ConversationId,
        offer_id: &OfferId,
        reason: WithdrawReason,
        now: Timestamp,
    ) -> Vec<AgentEffect> {
        let shown = match self.slots.get(conversation_id) {
            Some(Slot::Offered {
                offer_id: held,
                offer,
            }) if held == offer_id => offer.is_some(),
            _ => return Vec::new(),
        };
        self.slots.remove(conversation_id);
        let mut effects = Vec::new();
        if shown {
            effects.push(AgentEffect::PublishWithdrawn {
                conversation_id: conversation_id.clone(),
                offer_id: offer_id.clone(),
                reason,
            });
        }
        if reason == WithdrawReason::Rona && self.state != AgentState::Rona {
            self.enter(AgentState::Rona, None, now);
            effects.push(AgentEffect::PublishState);
        }
        effects.push(AgentEffect::ReportToQueues);
        effects
    }

    /// The agent left the conversation or it ended: it owes a wrap-up and
    /// keeps the slot until then.
    pub fn wrap_up_required(&mut self, required: WrapUpRequired) -> Vec<AgentEffect> {
        self.slots.insert(
            required.conversation_id.clone(),
            Slot::WrapUp(required.clone()),
        );
        vec![AgentEffect::PublishWrapUpRequired(required)]
    }

    /// The wrap-up is in: the slot is free.
    pub fn released(&mut self, conversation_id: &ConversationId) -> Vec<AgentEffect> {
        match self.slots.remove(conversation_id) {
            Some(_) => vec![AgentEffect::ReportToQueues],
            None => Vec::new(),
        }
    }

    /// Logout is refused while the agent holds offers or conversations.
    pub fn check_logout(&self) -> Result<(), EngineError> {
        if self.slots.is_empty() {
            Ok(())
        } else {
            Err(EngineError::invalid_state(format!(
                "cannot log out while holding {} offer(s) or conversation(s)",
                self.slots.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::model::{Customer, NamedRef, OfferKind};

    fn agent(max_chats: u32) -> Agent {
        Agent::logged_in(
            AgentId::new("alice"),
            "Alice".into(),
            max_chats,
            None,
            Timestamp(0),
        )
    }

    fn offer(conversation: &str, offer_id: &str) -> Offer {
        Offer {
            offer_id: OfferId::new(offer_id),
            conversation_id: ConversationId::new(conversation),
            kind: OfferKind::New,
            customer: Customer {
                name: "Ada".into(),
                email: None,
                ..Default::default()
            },
            queue: NamedRef::new("sales", "Sales"),
            agent: NamedRef::new("alice", "Alice"),
            from_agent: None,
            created_at: Timestamp(0),
            offered_at: Timestamp(1),
            expires_at: Timestamp(2),
            messages: Vec::new(),
        }
    }

    fn offered(agent: &mut Agent, conversation: &str, offer_id: &str) {
        agent
            .reserve(ConversationId::new(conversation), OfferId::new(offer_id))
            .unwrap();
        agent.offer_ready(offer(conversation, offer_id));
    }

    #[test]
    fn agent_starts_idle_after_login() {
        assert_eq!(agent(2).state, AgentState::Idle);
    }

    #[test]
    fn only_available_agent_with_free_slot_gets_offers() {
        let mut alice = agent(1);
        assert_eq!(
            alice.reserve(ConversationId::new("c1"), OfferId::new("o1")),
            Err(CannotTake::NotAvailable)
        );
        alice.set_available(Timestamp(5));
        assert!(alice
            .reserve(ConversationId::new("c1"), OfferId::new("o1"))
            .is_ok());
        assert_eq!(
            alice.reserve(ConversationId::new("c2"), OfferId::new("o2")),
            Err(CannotTake::NoFreeSlot)
        );
    }

    #[test]
    fn offers_in_flight_and_wrap_ups_count_against_slots() {
        let mut alice = agent(2);
        alice.set_available(Timestamp(1));
        offered(&mut alice, "c1", "o1");
        alice.wrap_up_required(WrapUpRequired {
            conversation_id: ConversationId::new("c0"),
            reasons: Vec::new(),
            auto_wrap_up_at: Timestamp(9),
        });
        assert_eq!(alice.load(), 2);
        assert!(!alice.has_free_slot());
        alice.released(&ConversationId::new("c0"));
        assert!(alice.has_free_slot());
    }

    #[test]
    fn rona_moves_agent_to_rona_and_frees_the_slot() {
        let mut alice = agent(1);
        alice.set_available(Timestamp(1));
        offered(&mut alice, "c1", "o1");
        let effects = alice.offer_withdrawn(
            &ConversationId::new("c1"),
            &OfferId::new("o1"),
            WithdrawReason::Rona,
            Timestamp(3),
        );
        assert_eq!(alice.state, AgentState::Rona);
        assert_eq!(alice.load(), 0);
        assert!(effects.contains(&AgentEffect::PublishState));
        assert!(matches!(effects[0], AgentEffect::PublishWithdrawn { .. }));
    }

    #[test]
    fn rona_agent_gets_no_offer_until_available_by_hand() {
        let mut alice = agent(1);
        alice.set_available(Timestamp(1));
        offered(&mut alice, "c1", "o1");
        alice.offer_withdrawn(
            &ConversationId::new("c1"),
            &OfferId::new("o1"),
            WithdrawReason::Rona,
            Timestamp(3),
        );
        assert_eq!(
            alice.reserve(ConversationId::new("c2"), OfferId::new("o2")),
            Err(CannotTake::NotAvailable)
        );
        assert!(alice.set_idle(None, Timestamp(4)).is_err());
        alice.set_available(Timestamp(5));
        assert!(alice
            .reserve(ConversationId::new("c2"), OfferId::new("o2"))
            .is_ok());
    }

    #[test]
    fn stale_withdrawal_for_another_offer_is_ignored() {
        let mut alice = agent(1);
        alice.set_available(Timestamp(1));
        offered(&mut alice, "c1", "o2");
        let effects = alice.offer_withdrawn(
            &ConversationId::new("c1"),
            &OfferId::new("o1"),
            WithdrawReason::Rona,
            Timestamp(3),
        );
        assert!(effects.is_empty());
        assert_eq!(alice.state, AgentState::Available);
    }

    #[test]
    fn reservation_without_its_offer_is_dropped_in_time() {
        let mut alice = agent(1);
        alice.set_available(Timestamp(1));
        alice
            .reserve(ConversationId::new("c1"), OfferId::new("o1"))
            .unwrap();
        let effects = alice.drop_unoffered(&ConversationId::new("c1"), &OfferId::new("o1"));
        assert_eq!(effects, [AgentEffect::ReportToQueues]);
        assert!(alice.has_free_slot());
        // A reservation whose offer arrived is an offer: RONA handles it.
        offered(&mut alice, "c2", "o2");
        assert!(alice
            .drop_unoffered(&ConversationId::new("c2"), &OfferId::new("o2"))
            .is_empty());
        assert_eq!(alice.load(), 1);
    }

    #[test]
    fn a_reservation_awaits_its_offer_until_the_offer_comes() {
        let mut alice = agent(2);
        alice.set_available(Timestamp(1));
        let (c1, o1) = (ConversationId::new("c1"), OfferId::new("o1"));
        alice.reserve(c1.clone(), o1.clone()).unwrap();
        assert!(alice.awaits_offer(&c1, &o1));
        assert!(!alice.awaits_offer(&c1, &OfferId::new("other")));
        offered(&mut alice, "c2", "o2");
        assert!(!alice.awaits_offer(&ConversationId::new("c2"), &OfferId::new("o2")));
        assert!(!alice.awaits_offer(&ConversationId::new("c3"), &o1));
    }

    #[test]
    fn accept_needs_a_pending_offer() {
        let mut alice = agent(1);
        assert!(matches!(
            alice.offer_to_accept(&ConversationId::new("c1")),
            Err(EngineError::NoOffer(_))
        ));
        alice.set_available(Timestamp(1));
        offered(&mut alice, "c1", "o1");
        let offer_id = alice.offer_to_accept(&ConversationId::new("c1")).unwrap();
        alice.accepted(&ConversationId::new("c1"), &offer_id);
        assert_eq!(alice.slots[&ConversationId::new("c1")], Slot::Active);
        assert_eq!(alice.active_chats(), 1);
    }

    #[test]
    fn logout_is_refused_while_holding_conversations() {
        let mut alice = agent(1);
        assert!(alice.check_logout().is_ok());
        alice.set_available(Timestamp(1));
        offered(&mut alice, "c1", "o1");
        assert!(matches!(
            alice.check_logout(),
            Err(EngineError::InvalidState(_))
        ));
    }

    #[test]
    fn longest_available_is_measured_from_becoming_available() {
        let mut alice = agent(1);
        alice.set_available(Timestamp(10));
        alice.set_available(Timestamp(20));
        assert_eq!(alice.available_since, Timestamp(10));
        alice.set_idle(None, Timestamp(30)).unwrap();
        alice.set_available(Timestamp(40));
        assert_eq!(alice.available_since, Timestamp(40));
    }
}
