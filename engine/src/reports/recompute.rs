//! Report buckets recomputed from a whole list of events at once, with no
//! state carried between steps: each agent's time as a list of segments
//! cut by bucket arithmetic, each count as one contribution per event. It
//! is the reference the projection is checked against (the property test
//! and the API tests); it is not what serves reports.

use super::projection::{bucket_of, first_in_queue, Buckets, ReportRules, BUCKET_MS, NO_REASON};
use crate::events::DomainEvent;
use std::collections::BTreeMap;
use switchboard_proto::feed::EventType;
use switchboard_proto::model::AgentState;
use switchboard_proto::{AgentId, Timestamp};

/// A stretch of an agent's logged-in time in one state.
#[derive(Clone, Debug)]
struct Segment {
    from: i64,
    to: i64,
    state: AgentState,
    reason: Option<String>,
    holding: bool,
}

/// Every agent's logged-in segments up to `until`.
fn segments(events: &[DomainEvent], until: i64) -> BTreeMap<AgentId, Vec<Segment>> {
    #[derive(Clone)]
    struct Now {
        since: i64,
        state: AgentState,
        reason: Option<String>,
        holding: u32,
    }
    let mut open: BTreeMap<AgentId, Now> = BTreeMap::new();
    let mut done: BTreeMap<AgentId, Vec<Segment>> = BTreeMap::new();
    let close =
        |done: &mut BTreeMap<AgentId, Vec<Segment>>, agent: &AgentId, now: &Now, at: i64| {
            if at > now.since {
                done.entry(agent.clone()).or_default().push(Segment {
                    from: now.since,
                    to: at,
                    state: now.state,
                    reason: now.reason.clone(),
                    holding: now.holding > 0,
                });
            }
        };
    for event in events {
        let Some(agent) = &event.agent_id else {
            continue;
        };
        let at = event.at.millis();
        let fresh = Now {
            since: at,
            state: AgentState::Idle,
            reason: None,
            holding: 0,
        };
        let changed = match event.kind {
            EventType::AgentLoggedIn => Some(open.get(agent).cloned().unwrap_or(fresh)),
            EventType::AgentStateChanged => {
                let mut next = open.get(agent).cloned().unwrap_or(fresh);
                if let Some(state) = event
                    .data
                    .get("state")
                    .and_then(|state| serde_json::from_value(state.clone()).ok())
                {
                    next.state = state;
                    next.reason = event.data["reason"].as_str().map(str::to_owned);
                }
                Some(next)
            }
            EventType::ConversationAccepted | EventType::ConferenceStarted => {
                let mut next = open.get(agent).cloned().unwrap_or(fresh);
                next.holding += 1;
                Some(next)
            }
            EventType::WrapUpSubmitted => open.get(agent).cloned().map(|mut next| {
                next.holding = next.holding.saturating_sub(1);
                next
            }),
            EventType::AgentLoggedOut => {
                if let Some(now) = open.remove(agent) {
                    close(&mut done, agent, &now, at);
                }
                None
            }
            _ => None,
        };
        if let Some(mut next) = changed {
            if let Some(now) = open.get(agent) {
                close(&mut done, agent, now, at);
            }
            next.since = at;
            open.insert(agent.clone(), next);
        }
    }
    for (agent, now) in &open {
        close(&mut done, agent, now, until);
    }
    done
}

/// The buckets the events make, agents' time counted up to `until`.
pub fn recompute(events: &[DomainEvent], rules: &ReportRules, until: Timestamp) -> Buckets {
    let mut buckets = Buckets::default();
    for (agent, segments) in segments(events, until.millis()) {
        for segment in segments {
            let first = bucket_of(segment.from);
            let last = bucket_of(segment.to - 1);
            let mut bucket = first;
            while bucket <= last {
                let overlap =
                    (segment.to.min(bucket + BUCKET_MS) - segment.from.max(bucket)) as u64;
                let totals = buckets.agents.entry((bucket, agent.clone())).or_default();
                totals.logged_in_ms += overlap;
                match segment.state {
                    AgentState::Available => totals.available_ms += overlap,
                    AgentState::Idle => {
                        totals.idle_ms += overlap;
                        let reason = segment.reason.clone().unwrap_or_else(|| NO_REASON.into());
                        *totals.idle_by_reason_ms.entry(reason).or_default() += overlap;
                    }
                    AgentState::Rona => totals.rona_ms += overlap,
                    AgentState::Offline => {}
                }
                if segment.holding {
                    totals.occupied_ms += overlap;
                }
                bucket += BUCKET_MS;
            }
        }
    }
    for event in events {
        let bucket = bucket_of(event.at.millis());
        let data = &event.data;
        let kind = data["kind"].as_str();
        let wait = data["wait_ms"].as_u64();
        if let Some(queue) = &event.queue_id {
            let totals = buckets.queues.entry((bucket, queue.clone()));
            match event.kind {
                EventType::ConversationQueued if data["reason"].as_str() != Some("rona") => {
                    totals.or_default().entered += 1
                }
                EventType::ConversationAccepted if first_in_queue(event) => {
                    let totals = totals.or_default();
                    totals.handled += 1;
                    if let Some(wait) = wait {
                        totals.answered += 1;
                        totals.wait_ms += wait;
                        totals.max_wait_ms = totals.max_wait_ms.max(Some(wait));
                        totals.handled_in_sl += u64::from(wait <= rules.service_level_ms);
                    }
                }
                EventType::ConversationAbandoned => {
                    let totals = totals.or_default();
                    totals.abandoned += 1;
                    if let Some(wait) = wait {
                        totals.max_wait_ms = totals.max_wait_ms.max(Some(wait));
                        totals.short_abandoned += u64::from(wait <= rules.short_abandon_ms);
                    }
                }
                EventType::ConversationRona if kind == Some("new") => totals.or_default().rona += 1,
                EventType::ConversationTransferred if data.get("to_queue").is_some() => {
                    totals.or_default().transferred_out += 1
                }
                EventType::ConversationOverflowed => totals.or_default().overflowed_out += 1,
                EventType::WrapUpSubmitted => {
                    let totals = totals.or_default();
                    if let Some(reason) = data["reason"]["id"].as_str() {
                        *totals.wrap_ups.entry(reason.into()).or_default() += 1;
                    }
                    if let (Some("owner"), Some(handle)) =
                        (data["role"].as_str(), data["handle_ms"].as_u64())
                    {
                        totals.handles += 1;
                        totals.handle_ms += handle;
                    }
                }
                _ => {}
            }
        }
        if let Some(agent) = &event.agent_id {
            let totals = buckets.agents.entry((bucket, agent.clone()));
            match event.kind {
                EventType::ConversationOffered | EventType::ConferenceRequested => {
                    totals.or_default().offered += 1
                }
                EventType::ConversationAccepted => totals.or_default().accepted += 1,
                EventType::ConferenceStarted => {
                    let totals = totals.or_default();
                    totals.accepted += 1;
                    totals.conferences_joined += 1;
                }
                EventType::ConversationRona => totals.or_default().rona += 1,
                EventType::ConversationTransferred => totals.or_default().transferred_out += 1,
                EventType::WrapUpSubmitted => {
                    if let (Some("owner"), Some(handle)) =
                        (data["role"].as_str(), data["handle_ms"].as_u64())
                    {
                        let totals = totals.or_default();
                        totals.handled += 1;
                        totals.handle_ms += handle;
                    }
                }
                _ => {}
            }
        }
    }
    buckets
}
