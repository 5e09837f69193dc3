//! The projection's rules, each by name, on hand-made events; and a
//! property test: however the events are cut into steps, stored between
//! them and ticked at bucket ends, the projection makes the buckets the
//! whole-list recomputation makes.

use super::projection::{bucket_of, Buckets, Projection, ReportRules, BUCKET_MS};
use super::recompute::recompute;
use crate::events::DomainEvent;
use proptest::prelude::*;
use serde_json::json;
use switchboard_proto::feed::EventType;
use switchboard_proto::{AgentId, QueueId, Timestamp};

const RULES: ReportRules = ReportRules {
    service_level_ms: 30_000,
    short_abandon_ms: 5_000,
};

/// 2026-12-08T09:00:00Z plus `minutes`.
fn at(minutes: f64) -> Timestamp {
    Timestamp(1_796_720_400_000 + (minutes * 60_000.0) as i64)
}

fn event(
    kind: EventType,
    minutes: f64,
    agent: Option<&str>,
    data: serde_json::Value,
) -> DomainEvent {
    let mut event = DomainEvent::new(kind, at(minutes), data);
    event.agent_id = agent.map(AgentId::new);
    event.queue_id = Some(QueueId::new("sales"));
    event
}

fn agent_event(kind: EventType, minutes: f64, data: serde_json::Value) -> DomainEvent {
    let mut event = event(kind, minutes, Some("ann"), data);
    event.queue_id = None;
    event
}

fn fold(events: &[DomainEvent], until: f64) -> Buckets {
    let mut projection = Projection::default();
    let mut buckets = Buckets::default();
    for event in events {
        projection.apply(event, &RULES, &mut buckets);
    }
    projection.advance(at(until), &mut buckets);
    buckets
}

fn quarter(minutes: f64) -> i64 {
    bucket_of(at(minutes).millis())
}

const MIN: u64 = 60_000;

#[test]
fn state_time_is_split_at_interval_boundaries() {
    let events = [
        agent_event(EventType::AgentLoggedIn, 10.0, json!({})),
        agent_event(
            EventType::AgentStateChanged,
            12.0,
            json!({"state": "available"}),
        ),
        agent_event(
            EventType::AgentStateChanged,
            20.0,
            json!({"state": "idle", "reason": "lunch"}),
        ),
        agent_event(EventType::AgentLoggedOut, 40.0, json!({})),
    ];
    let buckets = fold(&events, 60.0);
    let ann = AgentId::new("ann");
    let first = &buckets.agents[&(quarter(0.0), ann.clone())];
    assert_eq!(first.logged_in_ms, 5 * MIN);
    assert_eq!(first.idle_by_reason_ms["none"], 2 * MIN);
    assert_eq!(first.available_ms, 3 * MIN);
    let second = &buckets.agents[&(quarter(15.0), ann.clone())];
    assert_eq!(second.logged_in_ms, 15 * MIN);
    assert_eq!(second.available_ms, 5 * MIN);
    assert_eq!(second.idle_by_reason_ms["lunch"], 10 * MIN);
    assert_eq!(second.idle_ms, 10 * MIN);
    let third = &buckets.agents[&(quarter(30.0), ann.clone())];
    assert_eq!(third.logged_in_ms, 10 * MIN);
    assert!(
        !buckets.agents.contains_key(&(quarter(45.0), ann)),
        "logged out"
    );
}

#[test]
fn an_ended_bucket_is_complete_at_its_tick_and_never_reopened() {
    let mut projection = Projection::default();
    let mut buckets = Buckets::default();
    let login = agent_event(EventType::AgentLoggedIn, 10.0, json!({}));
    projection.apply(&login, &RULES, &mut buckets);
    projection.tick(at(15.0), &mut buckets);
    let ann = AgentId::new("ann");
    assert_eq!(
        buckets.agents[&(quarter(0.0), ann.clone())].logged_in_ms,
        5 * MIN
    );
    assert_eq!(projection.ticked_to(), at(15.0).millis());
    // An event a little late (before the tick) counts from the tick on.
    let late = agent_event(
        EventType::AgentStateChanged,
        14.0,
        json!({"state": "available"}),
    );
    let mut after = Buckets::default();
    projection.apply(&late, &RULES, &mut after);
    projection.advance(at(20.0), &mut after);
    assert!(!after.agents.contains_key(&(quarter(0.0), ann.clone())));
    assert_eq!(after.agents[&(quarter(15.0), ann)].available_ms, 5 * MIN);
}

#[test]
fn a_rona_return_is_not_a_new_entry() {
    let events = [
        event(
            EventType::ConversationQueued,
            1.0,
            None,
            json!({"reason": "created"}),
        ),
        event(
            EventType::ConversationRona,
            2.0,
            Some("ann"),
            json!({"kind": "new"}),
        ),
        event(
            EventType::ConversationQueued,
            2.0,
            None,
            json!({"reason": "rona"}),
        ),
        event(
            EventType::ConversationQueued,
            3.0,
            None,
            json!({"reason": "transferred"}),
        ),
    ];
    let buckets = fold(&events, 5.0);
    let sales = &buckets.queues[&(quarter(0.0), QueueId::new("sales"))];
    assert_eq!(sales.entered, 2);
    assert_eq!(sales.rona, 1);
    assert_eq!(buckets.agents[&(quarter(0.0), AgentId::new("ann"))].rona, 1);
}

#[test]
fn handled_is_the_first_accept_in_the_queue_with_its_wait() {
    let events = [
        event(
            EventType::ConversationAccepted,
            1.0,
            Some("ann"),
            json!({"kind": "new", "wait_ms": 10_000}),
        ),
        event(
            EventType::ConversationAccepted,
            2.0,
            Some("bob"),
            json!({"kind": "transfer", "wait_ms": 70_000}),
        ),
        event(
            EventType::ConversationAccepted,
            3.0,
            Some("ann"),
            json!({"kind": "new", "wait_ms": 40_000}),
        ),
        event(
            EventType::ConferenceStarted,
            4.0,
            Some("cy"),
            json!({"kind": "conference"}),
        ),
        // Offered again by the queue after a transfer to an agent went
        // unanswered: the queue had answered it already.
        event(
            EventType::ConversationAccepted,
            4.5,
            Some("dee"),
            json!({"kind": "new", "wait_ms": 5_000, "first_in_queue": false}),
        ),
    ];
    let buckets = fold(&events, 5.0);
    let sales = &buckets.queues[&(quarter(0.0), QueueId::new("sales"))];
    assert_eq!(
        sales.handled, 2,
        "a transfer's, a conference's or a second accept is not handled"
    );
    assert_eq!(sales.wait_ms, 50_000);
    assert_eq!(sales.handled_in_sl, 1);
    assert_eq!(sales.max_wait_ms, Some(40_000));
    let cy = &buckets.agents[&(quarter(0.0), AgentId::new("cy"))];
    assert_eq!((cy.accepted, cy.conferences_joined), (1, 1));
}

#[test]
fn an_event_committed_after_its_bucket_closed_counts_in_the_open_one() {
    let mut projection = Projection::default();
    let mut buckets = Buckets::default();
    projection.tick(at(15.0), &mut buckets);
    let late = [
        event(
            EventType::ConversationAbandoned,
            14.0,
            None,
            json!({"wait_ms": 60_000}),
        ),
        agent_event(EventType::AgentLoggedIn, 14.5, json!({})),
    ];
    for event in &late {
        projection.apply(event, &RULES, &mut buckets);
    }
    projection.advance(at(16.0), &mut buckets);
    assert!(buckets
        .queues
        .keys()
        .all(|(bucket, _)| *bucket == quarter(15.0)));
    assert!(buckets
        .agents
        .keys()
        .all(|(bucket, _)| *bucket == quarter(15.0)));
    assert_eq!(
        buckets.agents[&(quarter(15.0), AgentId::new("ann"))].logged_in_ms,
        MIN
    );
}

#[test]
fn a_wait_erased_before_it_was_kept_counts_the_chat_but_no_wait() {
    let events = [
        event(
            EventType::ConversationAbandoned,
            1.0,
            None,
            json!({"erased": true}),
        ),
        event(
            EventType::ConversationAccepted,
            2.0,
            Some("ann"),
            json!({"erased": true, "kind": "new"}),
        ),
    ];
    let buckets = fold(&events, 5.0);
    let sales = &buckets.queues[&(quarter(0.0), QueueId::new("sales"))];
    assert_eq!(
        (sales.abandoned, sales.short_abandoned, sales.max_wait_ms),
        (1, 0, None)
    );
    assert_eq!(
        (sales.handled, sales.answered, sales.handled_in_sl),
        (1, 0, 0)
    );
}

#[test]
fn a_short_abandon_is_within_short_abandon_s() {
    let events = [
        event(
            EventType::ConversationAbandoned,
            1.0,
            None,
            json!({"wait_ms": 5_000}),
        ),
        event(
            EventType::ConversationAbandoned,
            2.0,
            None,
            json!({"wait_ms": 5_001}),
        ),
    ];
    let buckets = fold(&events, 5.0);
    let sales = &buckets.queues[&(quarter(0.0), QueueId::new("sales"))];
    assert_eq!((sales.abandoned, sales.short_abandoned), (2, 1));
    assert_eq!(sales.max_wait_ms, Some(5_001));
}

#[test]
fn handle_time_is_the_owners_leg_and_a_guests_wrap_up_only_counts_its_reason() {
    let wrap = |minutes, agent, role, handle_ms: u64| {
        event(
            EventType::WrapUpSubmitted,
            minutes,
            Some(agent),
            json!({"reason": {"id": "sale", "label": "Sale"}, "role": role, "handle_ms": handle_ms}),
        )
    };
    let events = [
        wrap(1.0, "ann", "owner", 120_000),
        wrap(2.0, "cy", "guest", 30_000),
    ];
    let buckets = fold(&events, 5.0);
    let sales = &buckets.queues[&(quarter(0.0), QueueId::new("sales"))];
    assert_eq!((sales.handles, sales.handle_ms), (1, 120_000));
    assert_eq!(sales.wrap_ups["sale"], 2);
    let ann = &buckets.agents[&(quarter(0.0), AgentId::new("ann"))];
    assert_eq!((ann.handled, ann.handle_ms), (1, 120_000));
    assert!(!buckets
        .agents
        .contains_key(&(quarter(0.0), AgentId::new("cy"))));
}

#[test]
fn occupancy_is_time_holding_a_chat_until_its_wrap_up() {
    let events = [
        agent_event(EventType::AgentLoggedIn, 0.0, json!({})),
        event(
            EventType::ConversationAccepted,
            5.0,
            Some("ann"),
            json!({"kind": "new"}),
        ),
        event(
            EventType::ConversationAccepted,
            6.0,
            Some("ann"),
            json!({"kind": "new"}),
        ),
        event(EventType::WrapUpSubmitted, 8.0, Some("ann"), json!({})),
        event(EventType::WrapUpSubmitted, 11.0, Some("ann"), json!({})),
    ];
    let buckets = fold(&events, 15.0);
    let ann = &buckets.agents[&(quarter(0.0), AgentId::new("ann"))];
    assert_eq!(ann.occupied_ms, 6 * MIN);
    assert_eq!(ann.logged_in_ms, 15 * MIN);
}

/// Random events: any counted type, any of three agents or none, two
/// queues, plausible data, in time order.
fn events() -> impl Strategy<Value = Vec<DomainEvent>> {
    let kinds = super::projector::COUNTED;
    let one = (
        0..kinds.len(),
        0u64..(20 * MIN),
        proptest::option::of(0..3usize),
        0..2usize,
        0..3usize,
        0u64..120_000,
    );
    proptest::collection::vec(one, 0..120).prop_map(move |draws| {
        let mut now = at(0.0).millis();
        draws
            .into_iter()
            .map(|(kind, gap, agent, queue, pick, ms)| {
                now += gap as i64 / 4;
                let kind = kinds[kind];
                let reason = match kind {
                    EventType::WrapUpSubmitted => {
                        let id = ["sale", "info", "spam"][pick];
                        json!({ "id": id })
                    }
                    EventType::AgentStateChanged => json!(["lunch", "break", "x"][pick]),
                    _ => json!(["created", "rona", "transferred"][pick]),
                };
                let (flow, state, role) = (
                    ["new", "transfer", "conference"][pick],
                    ["available", "idle", "rona"][pick],
                    ["owner", "guest", "owner"][pick],
                );
                let data = json!({
                    "kind": flow,
                    "reason": reason,
                    "state": state,
                    "wait_ms": ms,
                    "handle_ms": ms * 3,
                    "role": role,
                    "to_queue": if pick == 0 { json!({"id": "b"}) } else { json!(null) },
                });
                let mut event = DomainEvent::new(kind, Timestamp(now), data);
                if event.data["to_queue"].is_null() {
                    event
                        .data
                        .as_object_mut()
                        .map(|data| data.remove("to_queue"));
                }
                event.agent_id = agent.map(|i| AgentId::new(["ann", "bob", "cy"][i]));
                event.queue_id = Some(QueueId::new(["a", "b"][queue]));
                event
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn any_cut_into_stored_steps_makes_the_buckets_of_the_whole_stream(
        events in events(),
        cuts in proptest::collection::vec(1usize..20, 1..20),
    ) {
        let until = events
            .last()
            .map_or(at(0.0), |event| event.at)
            .plus_millis(BUCKET_MS as u64 + 7);
        let mut stored = Buckets::default();
        let mut saved = serde_json::to_string(&Projection::default()).unwrap();
        let mut rest = &events[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let take = (*cut.next().unwrap()).min(rest.len());
            let (step, later) = rest.split_at(take);
            // Loaded as stored, one step folded, stored again.
            let mut projection: Projection = serde_json::from_str(&saved).unwrap();
            let mut buckets = Buckets::default();
            for event in step {
                projection.apply(event, &RULES, &mut buckets);
            }
            // The bucket ends passed before the next event: ticked.
            let next = later.first().map_or(until.millis(), |event| event.at.millis());
            let end = bucket_of(next);
            if end > projection.ticked_to() {
                projection.tick(Timestamp(end), &mut buckets);
            }
            stored.add(&buckets);
            saved = serde_json::to_string(&projection).unwrap();
            rest = later;
        }
        let mut projection: Projection = serde_json::from_str(&saved).unwrap();
        let mut last = Buckets::default();
        projection.advance(until, &mut last);
        stored.add(&last);
        let mut expected = recompute(&events, &RULES, until);
        // The fold keeps a bucket an event touched even when it counted
        // nothing there; the recomputation only those with a figure.
        stored.queues.retain(|_, totals| *totals != Default::default());
        stored.agents.retain(|_, totals| *totals != Default::default());
        expected.queues.retain(|_, totals| *totals != Default::default());
        expected.agents.retain(|_, totals| *totals != Default::default());
        prop_assert_eq!(stored, expected);
    }
}
