//! One test per conversation rule of DESIGN.md, run on the pure state
//! machine: no actors, no runtime, no clock.

use super::state::*;
use crate::queue::waiting::Position;
use std::sync::Arc;
use switchboard_proto::model::*;
use switchboard_proto::{AgentId, ClientMsgId, ConversationId, OfferId, QueueId, Timestamp};

const RONA_MS: u64 = 30_000;
const WRAP_MS: u64 = 120_000;

fn seat(id: &str) -> Seat {
    Seat {
        id: AgentId::new(id),
        name: format!("{}{}", id[..1].to_uppercase(), &id[1..]),
    }
}

fn agent(id: &str) -> AgentId {
    AgentId::new(id)
}

fn routing(chosen: &str) -> RoutingDecision {
    RoutingDecision {
        queue: QueueId::new("sales"),
        rule: "test".into(),
        chosen: AgentId::new(chosen),
        eligible: 1,
        candidates: Vec::new(),
        excluded_count: 0,
        excluded: Vec::new(),
    }
}

fn reasons() -> Arc<Vec<Reason>> {
    Arc::new(vec![Reason {
        id: "resolved".into(),
        label: "Resolved".into(),
    }])
}

fn resolved() -> Reason {
    reasons()[0].clone()
}

fn new_conversation() -> NewConversation {
    NewConversation {
        id: ConversationId::new("c1"),
        customer: Customer {
            name: "Ada".into(),
            email: None,
            ..Default::default()
        },
        attributes: Default::default(),
        queue: NamedRef::new("sales", "Sales"),
        first_message: "Hello".into(),
        max_message_chars: 100,
        timing: Timing {
            rona_timeout_ms: RONA_MS,
            auto_wrap_up_ms: WRAP_MS,
        },
        wrap_up_reasons: reasons(),
    }
}

fn queued() -> Conversation {
    let (conversation, _) = Conversation::start(new_conversation(), Timestamp(1_000)).unwrap();
    conversation
}

fn offered_to(conversation: &mut Conversation, who: &str, offer: &str) -> Vec<Effect> {
    conversation.offer_reserved(
        &QueueId::new("sales"),
        OfferId::new(offer),
        seat(who),
        routing(who),
        Timestamp(2_000),
    )
}

fn active_with(owner: &str) -> Conversation {
    let mut conversation = queued();
    offered_to(&mut conversation, owner, "o1");
    conversation
        .accept(&agent(owner), &OfferId::new("o1"), Timestamp(3_000))
        .unwrap();
    conversation
}

fn in_conference(owner: &str, guest: &str) -> Conversation {
    let mut conversation = active_with(owner);
    conversation
        .conference(
            &agent(owner),
            OfferId::new("o2"),
            seat(guest),
            Timestamp(4_000),
        )
        .unwrap();
    conversation
        .accept(&agent(guest), &OfferId::new("o2"), Timestamp(5_000))
        .unwrap();
    conversation
}

fn appended_texts(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Append(message) => Some(message.text.clone()),
            _ => None,
        })
        .collect()
}

fn notices_to<'a>(effects: &'a [Effect], who: &str) -> Vec<&'a AgentNotice> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Agent(id, notice) if id.as_str() == who => Some(notice),
            _ => None,
        })
        .collect()
}

fn say(
    conversation: &mut Conversation,
    speaker: Speaker<'_>,
    text: &str,
    id: &str,
) -> Result<u64, crate::error::EngineError> {
    conversation
        .send(
            speaker,
            text.into(),
            ClientMsgId::new(id),
            100,
            Timestamp(6_000),
        )
        .map(|(message, _)| message.seq)
}

#[test]
fn new_conversation_waits_at_the_tail_of_its_queue_with_message_one() {
    let (conversation, effects) =
        Conversation::start(new_conversation(), Timestamp(1_000)).unwrap();
    assert_eq!(conversation.state, ConversationState::Queued);
    assert_eq!(conversation.last_seq(), 1);
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("sales"),
        QueueNotice::Enqueue {
            position: Position::Tail,
            queued_since: Timestamp(1_000)
        }
    )));
}

#[test]
fn offer_carries_the_popover_fields_and_starts_the_rona_timer() {
    let mut conversation = queued();
    let effects = offered_to(&mut conversation, "bob", "o1");
    assert_eq!(conversation.state, ConversationState::Offered);
    assert!(effects.contains(&Effect::StartTimer(
        Timer::OfferExpiry(OfferId::new("o1")),
        RONA_MS
    )));
    let Some(AgentNotice::OfferReady(offer)) = notices_to(&effects, "bob").first().copied() else {
        panic!("no offer for bob: {effects:?}");
    };
    assert_eq!(offer.customer.name, "Ada");
    assert_eq!(offer.queue.name, "Sales");
    assert_eq!(offer.agent.name, "Bob");
    assert_eq!(offer.created_at, Timestamp(1_000));
    assert_eq!(offer.expires_at, Timestamp(2_000 + RONA_MS as i64));
    assert_eq!(offer.messages.len(), 1);
}

#[test]
fn one_conversation_is_never_offered_to_two_agents() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let effects = offered_to(&mut conversation, "dave", "o2");
    assert_eq!(
        notices_to(&effects, "dave"),
        [&AgentNotice::OfferWithdrawn {
            offer_id: OfferId::new("o2"),
            reason: WithdrawReason::Cancelled
        }]
    );
    assert!(conversation.pending_offer_for(&agent("dave")).is_none());
}

#[test]
fn accept_makes_the_agent_owner_and_says_it_joined() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let effects = conversation
        .accept(&agent("bob"), &OfferId::new("o1"), Timestamp(3_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Active);
    assert_eq!(conversation.owner(), Some(&agent("bob")));
    assert_eq!(appended_texts(&effects), ["Bob joined the chat"]);
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("sales"),
        QueueNotice::Answered { wait_ms: 2_000 }
    )));
}

#[test]
fn a_retried_accept_succeeds_again_and_changes_nothing() {
    let mut conversation = queued();
    offered_to(&mut conversation, "alice", "o1");
    assert!(!conversation
        .accept(&agent("alice"), &OfferId::new("o1"), Timestamp(3_000))
        .unwrap()
        .is_empty());
    let before = conversation.record();
    let again = conversation
        .accept(&agent("alice"), &OfferId::new("o1"), Timestamp(4_000))
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(conversation.record(), before);
    // Someone else, or another offer, still gets `no_offer`.
    assert!(conversation
        .accept(&agent("bob"), &OfferId::new("o1"), Timestamp(4_000))
        .is_err());
    assert!(conversation
        .accept(&agent("alice"), &OfferId::new("o2"), Timestamp(4_000))
        .is_err());
}

#[test]
fn accept_without_the_pending_offer_is_no_offer_and_changes_nothing() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let error = conversation
        .accept(&agent("dave"), &OfferId::new("o1"), Timestamp(3_000))
        .unwrap_err();
    assert!(matches!(error, crate::error::EngineError::NoOffer(_)));
    assert_eq!(conversation.state, ConversationState::Offered);
    assert!(conversation.pending_offer_for(&agent("bob")).is_some());
}

#[test]
fn rona_returns_the_conversation_to_the_head_of_its_queue() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let effects = conversation.offer_expired(&OfferId::new("o1"), Timestamp(40_000));
    assert_eq!(conversation.state, ConversationState::Queued);
    assert_eq!(
        notices_to(&effects, "bob"),
        [&AgentNotice::OfferWithdrawn {
            offer_id: OfferId::new("o1"),
            reason: WithdrawReason::Rona
        }]
    );
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("sales"),
        QueueNotice::Enqueue {
            position: Position::Head,
            queued_since: Timestamp(1_000)
        }
    )));
    assert_eq!(conversation.record().offers[0].outcome, OfferOutcome::Rona);
}

#[test]
fn late_rona_timer_for_an_accepted_offer_is_ignored() {
    let mut conversation = active_with("bob");
    let effects = conversation.offer_expired(&OfferId::new("o1"), Timestamp(40_000));
    assert!(effects.is_empty());
    assert_eq!(conversation.state, ConversationState::Active);
}

#[test]
fn messages_are_numbered_without_gaps() {
    let mut conversation = active_with("bob");
    assert_eq!(
        say(&mut conversation, Speaker::Agent(&agent("bob")), "Hi", "a"),
        Ok(3)
    );
    assert_eq!(say(&mut conversation, Speaker::Customer, "Hey", "b"), Ok(4));
    let seqs: Vec<u64> = conversation
        .messages_after(0)
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn send_is_idempotent_on_client_msg_id() {
    let mut conversation = active_with("bob");
    let first = conversation
        .send(
            Speaker::Customer,
            "Hey".into(),
            ClientMsgId::new("x"),
            100,
            Timestamp(6_000),
        )
        .unwrap();
    let retry = conversation
        .send(
            Speaker::Customer,
            "Hey".into(),
            ClientMsgId::new("x"),
            100,
            Timestamp(7_000),
        )
        .unwrap();
    assert_eq!(first.0.seq, retry.0.seq);
    assert!(retry.1.is_empty(), "a retry appends nothing");
    assert_eq!(conversation.last_seq(), 3);
}

#[test]
fn agent_text_with_reserved_characters_is_refused_and_stores_nothing() {
    let mut conversation = active_with("bob");
    let error = say(
        &mut conversation,
        Speaker::Agent(&agent("bob")),
        "<b>hi</b>",
        "a",
    )
    .unwrap_err();
    assert_eq!(
        error.code(),
        switchboard_proto::ErrorCode::ReservedCharacters
    );
    assert_eq!(conversation.last_seq(), 2);
}

#[test]
fn customer_text_may_contain_angle_brackets() {
    let mut conversation = active_with("bob");
    assert_eq!(
        say(
            &mut conversation,
            Speaker::Customer,
            "<img src=x onerror=alert(1)>",
            "a"
        ),
        Ok(3)
    );
}

#[test]
fn agent_not_in_the_conversation_cannot_write() {
    let mut conversation = active_with("bob");
    let error = say(&mut conversation, Speaker::Agent(&agent("dave")), "hi", "a").unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::Forbidden);
}

#[test]
fn transfer_is_refused_before_accept() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let error = conversation
        .transfer_to_queue(
            &agent("bob"),
            NamedRef::new("support", "Support"),
            Timestamp(3_000),
        )
        .unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::InvalidState);
    assert_eq!(conversation.state, ConversationState::Offered);
}

#[test]
fn transfer_is_owner_only() {
    let mut conversation = active_with("bob");
    let error = conversation
        .transfer_to_queue(
            &agent("dave"),
            NamedRef::new("support", "Support"),
            Timestamp(4_000),
        )
        .unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::NotOwner);
    assert_eq!(conversation.owner(), Some(&agent("bob")));
}

#[test]
fn transfer_to_a_queue_requeues_and_the_owner_owes_a_wrap_up() {
    let mut conversation = active_with("bob");
    let effects = conversation
        .transfer_to_queue(
            &agent("bob"),
            NamedRef::new("support", "Support"),
            Timestamp(4_000),
        )
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Queued);
    assert_eq!(conversation.queue.id, "support");
    assert_eq!(conversation.owner(), None);
    assert!(conversation.owes_wrap_up(&agent("bob")));
    assert!(matches!(
        notices_to(&effects, "bob")[..],
        [AgentNotice::WrapUpRequired(_)]
    ));
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("support"),
        QueueNotice::Enqueue {
            position: Position::Tail,
            queued_since: Timestamp(4_000)
        }
    )));
    assert_eq!(
        appended_texts(&effects),
        ["Bob transferred the chat to Support"]
    );
}

#[test]
fn transfer_to_an_agent_offers_kind_transfer_from_the_owner() {
    let mut conversation = active_with("bob");
    let effects = conversation
        .transfer_to_agent(
            &agent("bob"),
            OfferId::new("o2"),
            seat("dave"),
            Timestamp(4_000),
        )
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Offered);
    let Some(AgentNotice::OfferReady(offer)) = notices_to(&effects, "dave").first().copied() else {
        panic!("no offer for dave");
    };
    assert_eq!(offer.kind, OfferKind::Transfer);
    assert_eq!(
        offer.from_agent.as_ref().map(|a| a.id.as_str()),
        Some("bob")
    );
    assert!(conversation.owes_wrap_up(&agent("bob")));
}

#[test]
fn unanswered_transfer_returns_the_conversation_to_the_head_of_its_queue() {
    let mut conversation = active_with("bob");
    conversation
        .transfer_to_agent(
            &agent("bob"),
            OfferId::new("o2"),
            seat("dave"),
            Timestamp(4_000),
        )
        .unwrap();
    let effects = conversation.offer_expired(&OfferId::new("o2"), Timestamp(40_000));
    assert_eq!(conversation.state, ConversationState::Queued);
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("sales"),
        QueueNotice::Enqueue {
            position: Position::Head,
            queued_since: Timestamp(40_000)
        }
    )));
    // The customer's last line said "transferred to Dave": it is told
    // where the chat is now.
    assert_eq!(appended_texts(&effects), [TRANSFER_FELL_BACK]);
}

#[test]
fn an_unanswered_new_offer_goes_back_to_the_queue_without_a_word() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let effects = conversation.offer_expired(&OfferId::new("o1"), Timestamp(40_000));
    assert_eq!(conversation.state, ConversationState::Queued);
    assert!(appended_texts(&effects).is_empty());
}

#[test]
fn involved_agents_are_those_present_offered_or_owing_a_wrap_up() {
    use crate::agent::availability::Involvement;
    let mut conversation = active_with("bob");
    assert_eq!(
        conversation.involved_agents(),
        [(agent("bob"), Involvement::Present)]
    );
    conversation
        .transfer_to_agent(
            &agent("bob"),
            OfferId::new("o2"),
            seat("dave"),
            Timestamp(4_000),
        )
        .unwrap();
    // Dave is offered it; Bob left and owes the wrap-up.
    assert_eq!(
        conversation.involved_agents(),
        [
            (agent("dave"), Involvement::Present),
            (agent("bob"), Involvement::OwesWrapUp)
        ]
    );
}

#[test]
fn transfer_is_refused_during_a_conference() {
    let mut conversation = in_conference("bob", "alice");
    let error = conversation
        .transfer_to_queue(
            &agent("bob"),
            NamedRef::new("support", "Support"),
            Timestamp(6_000),
        )
        .unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::InvalidState);
}

#[test]
fn conference_is_refused_before_accept() {
    let mut conversation = queued();
    let error = conversation
        .conference(
            &agent("bob"),
            OfferId::new("o2"),
            seat("alice"),
            Timestamp(3_000),
        )
        .unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::InvalidState);
}

#[test]
fn conference_accept_says_the_guest_joined_to_everyone() {
    let mut conversation = active_with("bob");
    conversation
        .conference(
            &agent("bob"),
            OfferId::new("o2"),
            seat("alice"),
            Timestamp(4_000),
        )
        .unwrap();
    assert_eq!(conversation.state, ConversationState::ConferenceRequested);
    let effects = conversation
        .accept(&agent("alice"), &OfferId::new("o2"), Timestamp(5_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Conference);
    assert!(conversation.is_present(&agent("alice")));
    assert_eq!(appended_texts(&effects), ["Alice joined the chat"]);
}

#[test]
fn unanswered_conference_returns_to_active_and_tells_the_owner() {
    let mut conversation = active_with("bob");
    conversation
        .conference(
            &agent("bob"),
            OfferId::new("o2"),
            seat("alice"),
            Timestamp(4_000),
        )
        .unwrap();
    let effects = conversation.offer_expired(&OfferId::new("o2"), Timestamp(40_000));
    assert_eq!(conversation.state, ConversationState::Active);
    assert!(matches!(
        notices_to(&effects, "alice")[..],
        [AgentNotice::OfferWithdrawn {
            reason: WithdrawReason::Rona,
            ..
        }]
    ));
    assert!(matches!(
        notices_to(&effects, "bob")[..],
        [AgentNotice::Notice(notice)] if notice.code == "conference_no_answer"
    ));
}

#[test]
fn end_conference_releases_the_guest_who_owes_a_wrap_up() {
    let mut conversation = in_conference("bob", "alice");
    let effects = conversation
        .end_conference(&agent("bob"), Timestamp(6_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Active);
    assert!(!conversation.is_present(&agent("alice")));
    assert!(conversation.owes_wrap_up(&agent("alice")));
    assert_eq!(appended_texts(&effects), ["Alice left the chat"]);
}

#[test]
fn end_by_the_owner_requires_a_wrap_up_from_every_agent_present() {
    let mut conversation = in_conference("bob", "alice");
    let effects = conversation
        .end(Speaker::Agent(&agent("bob")), Timestamp(7_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Ended);
    assert_eq!(appended_texts(&effects), ["Bob ended the chat"]);
    assert!(conversation.owes_wrap_up(&agent("bob")));
    assert!(conversation.owes_wrap_up(&agent("alice")));
}

#[test]
fn end_is_owner_only() {
    let mut conversation = in_conference("bob", "alice");
    let error = conversation
        .end(Speaker::Agent(&agent("alice")), Timestamp(7_000))
        .unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::NotOwner);
}

#[test]
fn customer_leaving_an_active_chat_ends_it() {
    let mut conversation = active_with("bob");
    let effects = conversation
        .end(Speaker::Customer, Timestamp(7_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Ended);
    assert_eq!(appended_texts(&effects), ["Ada ended the chat"]);
}

#[test]
fn customer_leaving_before_accept_abandons_and_withdraws_the_offer() {
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let effects = conversation
        .end(Speaker::Customer, Timestamp(3_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Abandoned);
    assert!(matches!(
        notices_to(&effects, "bob")[..],
        [AgentNotice::OfferWithdrawn {
            reason: WithdrawReason::CustomerLeft,
            ..
        }]
    ));
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("sales"),
        QueueNotice::Remove { abandoned: true }
    )));
    assert!(effects.contains(&Effect::Finished));
}

#[test]
fn last_wrap_up_closes_the_conversation() {
    let mut conversation = in_conference("bob", "alice");
    conversation
        .end(Speaker::Agent(&agent("bob")), Timestamp(7_000))
        .unwrap();
    let effects = conversation
        .wrap_up(
            &agent("bob"),
            resolved(),
            Some("done".into()),
            false,
            Timestamp(8_000),
        )
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Ended);
    assert!(notices_to(&effects, "bob").contains(&&AgentNotice::Released));
    let effects = conversation
        .wrap_up(&agent("alice"), resolved(), None, true, Timestamp(9_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Closed);
    assert!(effects.contains(&Effect::Finished));
    let record = conversation.record();
    assert_eq!(record.wrap_ups.len(), 2);
    assert!(record.wrap_ups[1].automatic);
    assert_eq!(record.closed_at, Some(Timestamp(9_000)));
}

#[test]
fn wrap_up_not_owed_is_refused() {
    let mut conversation = active_with("bob");
    let error = conversation
        .wrap_up(&agent("bob"), resolved(), None, false, Timestamp(8_000))
        .unwrap_err();
    assert_eq!(error.code(), switchboard_proto::ErrorCode::InvalidState);
}

#[test]
fn record_keeps_legs_offers_and_the_routing_decision() {
    let mut conversation = active_with("bob");
    conversation
        .transfer_to_queue(
            &agent("bob"),
            NamedRef::new("support", "Support"),
            Timestamp(4_000),
        )
        .unwrap();
    let record = conversation.record();
    assert_eq!(record.legs.len(), 1);
    assert_eq!(record.legs[0].left_because.as_deref(), Some("transferred"));
    assert_eq!(record.offers[0].outcome, OfferOutcome::Accepted);
    assert_eq!(
        record.offers[0].routing.as_ref().map(|r| r.chosen.as_str()),
        Some("bob")
    );
    assert_eq!(record.first_accepted_at, Some(Timestamp(3_000)));
}

#[test]
fn customer_leaving_after_a_transfer_ends_the_chat_not_abandons_it() {
    let mut conversation = active_with("bob");
    conversation
        .transfer_to_queue(
            &agent("bob"),
            NamedRef::new("support", "Support"),
            Timestamp(4_000),
        )
        .unwrap();
    let effects = conversation
        .end(Speaker::Customer, Timestamp(5_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Ended);
    assert!(effects.contains(&Effect::Queue(
        QueueId::new("support"),
        QueueNotice::Remove { abandoned: false }
    )));
    // Bob still owes the wrap-up of his leg; then it closes.
    let effects = conversation
        .wrap_up(&agent("bob"), resolved(), None, false, Timestamp(6_000))
        .unwrap();
    assert_eq!(conversation.state, ConversationState::Closed);
    assert!(effects.contains(&Effect::Finished));
}

#[test]
fn a_retried_send_is_recognised_even_after_the_end() {
    let mut conversation = active_with("bob");
    let first = say(&mut conversation, Speaker::Customer, "Bye", "x").unwrap();
    conversation
        .end(Speaker::Agent(&agent("bob")), Timestamp(7_000))
        .unwrap();
    assert_eq!(
        say(&mut conversation, Speaker::Customer, "Bye", "x"),
        Ok(first)
    );
}

#[test]
fn filled_template_text_may_contain_what_the_customer_typed() {
    let mut conversation = active_with("bob");
    let (message, _) = conversation
        .send_filled_template(
            &agent("bob"),
            "Hello <Ann>".into(),
            ClientMsgId::new("t"),
            100,
            Timestamp(6_000),
        )
        .unwrap();
    assert_eq!(message.text, "Hello <Ann>");
}

#[test]
fn failover_restores_a_conversation_from_its_snapshot_and_log_with_its_timers() {
    // An offer in flight (RONA due at 2_000 + RONA_MS) ...
    let mut offered = queued();
    offered_to(&mut offered, "alice", "o1");
    let bytes = rmp_serde::to_vec_named(&offered).unwrap();
    let mut restored: Conversation = rmp_serde::from_slice(&bytes).unwrap();
    // The snapshot carries no messages: they come back from the log.
    assert_eq!(restored.last_seq(), 0);
    let log = offered.messages_after(0).to_vec();
    let effects = restored.restore(log, Timestamp(12_000));
    assert_eq!(restored.last_seq(), 1);
    assert_eq!(restored.summary(), offered.summary());
    assert_eq!(
        effects.last(),
        Some(&Effect::StartTimer(
            Timer::OfferExpiry(OfferId::new("o1")),
            2_000 + RONA_MS - 12_000
        ))
    );
    // The popover is sent again (its node may have died before sending it).
    assert!(matches!(
        notices_to(&effects, "alice").as_slice(),
        [AgentNotice::OfferReady(offer)] if offer.offer_id == OfferId::new("o1")
    ));

    // A queued one tells its queue again that it waits.
    let waiting = queued();
    let bytes = rmp_serde::to_vec_named(&waiting).unwrap();
    let mut restored: Conversation = rmp_serde::from_slice(&bytes).unwrap();
    let effects = restored.restore(waiting.messages_after(0).to_vec(), Timestamp(3_000));
    assert_eq!(
        effects,
        vec![Effect::Queue(
            QueueId::new("sales"),
            QueueNotice::Enqueue {
                position: Position::Head,
                queued_since: Timestamp(1_000)
            }
        )]
    );

    // ... and a wrap-up owed whose deadline already passed fires at once.
    let mut ended = active_with("alice");
    ended
        .end(Speaker::Agent(&agent("alice")), Timestamp(5_000))
        .unwrap();
    let bytes = rmp_serde::to_vec_named(&ended).unwrap();
    let mut restored: Conversation = rmp_serde::from_slice(&bytes).unwrap();
    let effects = restored.restore(ended.messages_after(0).to_vec(), Timestamp(500_000));
    assert_eq!(
        effects.last(),
        Some(&Effect::StartTimer(Timer::AutoWrapUp(agent("alice")), 0))
    );
    assert!(matches!(
        notices_to(&effects, "alice").as_slice(),
        [AgentNotice::WrapUpRequired(required)] if required.conversation_id == ended.id
    ));
    assert_eq!(restored.record(), ended.record());

    // A send retried after the failover is still recognised.
    let mut active = active_with("alice");
    let alice = agent("alice");
    let first = say(&mut active, Speaker::Agent(&alice), "Hi", "m-1").unwrap();
    let bytes = rmp_serde::to_vec_named(&active).unwrap();
    let mut restored: Conversation = rmp_serde::from_slice(&bytes).unwrap();
    restored.restore(active.messages_after(0).to_vec(), Timestamp(9_000));
    let again = say(&mut restored, Speaker::Agent(&alice), "Hi", "m-1").unwrap();
    assert_eq!(again, first);
    assert_eq!(restored.last_seq(), active.last_seq());
}

/// The events a transition yields, by type name, in order.
fn event_types(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Event(event) => Some(event.kind.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn events_are_the_seam_each_transition_yields_its_events_in_order() {
    let (mut conversation, effects) =
        Conversation::start(new_conversation(), Timestamp(1_000)).unwrap();
    assert_eq!(
        event_types(&effects),
        ["conversation.created", "conversation.queued"]
    );
    let created = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Event(event) => Some(event),
            _ => None,
        })
        .unwrap();
    assert_eq!(created.conversation_id, Some(ConversationId::new("c1")));
    assert_eq!(created.queue_id, Some(QueueId::new("sales")));
    assert_eq!(created.at, Timestamp(1_000));

    let offered = offered_to(&mut conversation, "bob", "o1");
    assert_eq!(event_types(&offered), ["conversation.offered"]);
    let rona = conversation.offer_expired(&OfferId::new("o1"), Timestamp(40_000));
    assert_eq!(
        event_types(&rona),
        ["conversation.rona", "conversation.queued"]
    );
    offered_to(&mut conversation, "dave", "o2");
    let accepted = conversation
        .accept(&agent("dave"), &OfferId::new("o2"), Timestamp(41_000))
        .unwrap();
    assert_eq!(event_types(&accepted), ["conversation.accepted"]);
    let Some(Effect::Event(event)) = accepted.iter().find(|e| matches!(e, Effect::Event(_))) else {
        unreachable!()
    };
    assert_eq!(event.agent_id, Some(agent("dave")));
    // The wait counts from when it entered the queue, RONA included.
    assert_eq!(event.data["wait_ms"], 40_000);

    let ended = conversation
        .end(Speaker::Agent(&agent("dave")), Timestamp(50_000))
        .unwrap();
    assert_eq!(event_types(&ended), ["conversation.ended"]);
    let closed = conversation
        .wrap_up(&agent("dave"), resolved(), None, false, Timestamp(51_000))
        .unwrap();
    assert_eq!(
        event_types(&closed),
        ["wrap_up.submitted", "conversation.closed"]
    );
    // A refused command yields nothing.
    assert!(conversation
        .wrap_up(&agent("dave"), resolved(), None, false, Timestamp(52_000))
        .is_err());
}

#[test]
fn events_are_the_seam_a_message_is_its_own_event_with_the_agent_who_wrote_it() {
    let mut conversation = active_with("bob");
    let (message, _) = conversation
        .send(
            Speaker::Agent(&agent("bob")),
            "Hi".into(),
            ClientMsgId::new("m1"),
            100,
            Timestamp(6_000),
        )
        .unwrap();
    let event = conversation.message_event(&message);
    assert_eq!(event.kind.as_str(), "message.created");
    assert_eq!(event.agent_id, Some(agent("bob")));
    assert_eq!(event.data["message"]["text"], "Hi");
    assert_eq!(event.at, Timestamp(6_000));
}

/// The data of the one event of `kind` among `effects`.
fn event_data(effects: &[Effect], kind: switchboard_proto::feed::EventType) -> serde_json::Value {
    effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Event(event) if event.kind == kind => Some(event.data.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind:?} in {effects:?}"))
}

#[test]
fn the_queue_answers_a_chat_once_until_it_enters_a_queue_again() {
    use switchboard_proto::feed::EventType;
    let mut conversation = queued();
    offered_to(&mut conversation, "bob", "o1");
    let first = conversation
        .accept(&agent("bob"), &OfferId::new("o1"), Timestamp(3_000))
        .unwrap();
    assert_eq!(
        event_data(&first, EventType::ConversationAccepted)["first_in_queue"],
        true
    );
    // Bob transfers it to Dave, who lets it ring: back in Sales, offered
    // to Carol by the queue, whose accept is not the queue's answer again.
    conversation
        .transfer_to_agent(
            &agent("bob"),
            OfferId::new("o2"),
            seat("dave"),
            Timestamp(4_000),
        )
        .unwrap();
    conversation.offer_expired(&OfferId::new("o2"), Timestamp(40_000));
    conversation.offer_reserved(
        &QueueId::new("sales"),
        OfferId::new("o3"),
        seat("carol"),
        routing("carol"),
        Timestamp(41_000),
    );
    let again = conversation
        .accept(&agent("carol"), &OfferId::new("o3"), Timestamp(42_000))
        .unwrap();
    assert_eq!(
        event_data(&again, EventType::ConversationAccepted)["first_in_queue"],
        false
    );
    assert!(!again
        .iter()
        .any(|effect| matches!(effect, Effect::Queue(_, QueueNotice::Answered { .. }))));
    // Moved to Support: the next accept there is Support's answer.
    conversation
        .transfer_to_queue(
            &agent("carol"),
            NamedRef::new("support", "Support"),
            Timestamp(50_000),
        )
        .unwrap();
    conversation.offer_reserved(
        &QueueId::new("support"),
        OfferId::new("o4"),
        seat("sam"),
        routing("sam"),
        Timestamp(51_000),
    );
    let support = conversation
        .accept(&agent("sam"), &OfferId::new("o4"), Timestamp(52_000))
        .unwrap();
    let data = event_data(&support, EventType::ConversationAccepted);
    assert_eq!(
        (data["first_in_queue"].clone(), data["wait_ms"].clone()),
        (serde_json::json!(true), serde_json::json!(2_000))
    );
}

#[test]
fn a_wrap_up_reports_the_leg_it_wraps_up_and_its_queue() {
    use switchboard_proto::feed::EventType;
    // Bob owns the chat from 3 s, transfers it to Support at 10 s (he owes
    // its wrap-up), and joins it again later as Sam's guest.
    let mut conversation = active_with("bob");
    conversation
        .transfer_to_queue(
            &agent("bob"),
            NamedRef::new("support", "Support"),
            Timestamp(10_000),
        )
        .unwrap();
    conversation.offer_reserved(
        &QueueId::new("support"),
        OfferId::new("o2"),
        seat("sam"),
        routing("sam"),
        Timestamp(11_000),
    );
    conversation
        .accept(&agent("sam"), &OfferId::new("o2"), Timestamp(12_000))
        .unwrap();
    conversation
        .conference(
            &agent("sam"),
            OfferId::new("o3"),
            seat("bob"),
            Timestamp(13_000),
        )
        .unwrap();
    conversation
        .accept(&agent("bob"), &OfferId::new("o3"), Timestamp(14_000))
        .unwrap();
    let effects = conversation
        .wrap_up(&agent("bob"), resolved(), None, false, Timestamp(20_000))
        .unwrap();
    let wrapped = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Event(event) if event.kind == EventType::WrapUpSubmitted => Some(event),
            _ => None,
        })
        .expect("wrap_up.submitted");
    assert_eq!(
        wrapped.data["role"], "owner",
        "his first leg, not the guest leg"
    );
    assert_eq!(
        wrapped.data["handle_ms"], 17_000,
        "accepted at 3 s, wrapped up at 20 s"
    );
    assert_eq!(
        wrapped.queue_id,
        Some(QueueId::new("sales")),
        "the leg was in Sales"
    );
}
