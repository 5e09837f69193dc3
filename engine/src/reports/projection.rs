//! The projection of the event stream into report buckets: a pure fold.
//! [`Projection::apply`] takes one event in feed order and adds what it
//! counts to [`Buckets`]; [`Projection::advance`] counts every logged-in
//! agent's state time up to a moment (an interval's end), so a bucket that
//! has ended is complete without waiting for the agent's next event.
//!
//! What the projection remembers between events is only what a duration
//! needs: each logged-in agent's state, idle reason, how many chats it
//! holds, and up to when its time has been counted. It is stored with the
//! feed position it has reached, in the same transaction as the buckets.

use super::totals::{AgentTotals, QueueTotals};
use crate::events::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_proto::feed::EventType;
use switchboard_proto::model::AgentState;
use switchboard_proto::{AgentId, QueueId, Timestamp};

/// The narrowest interval; hours and days are sums of these.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// The start of the bucket holding `ms`.
pub fn bucket_of(ms: i64) -> i64 {
    ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

/// The thresholds a count depends on (`[stats]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRules {
    /// Handled within this wait counts toward service level.
    pub service_level_ms: u64,
    /// Abandoned within this wait is a short abandon.
    pub short_abandon_ms: u64,
}

impl ReportRules {
    pub fn of(config: &crate::config::EngineConfig) -> Self {
        Self {
            service_level_ms: config.service_level.as_millis() as u64,
            short_abandon_ms: config.short_abandon.as_millis() as u64,
        }
    }
}

/// Idle time without a reason (as right after a login) is kept under this
/// key of `idle_by_reason`.
pub const NO_REASON: &str = "none";

/// Buckets touched by a run of events: queue and agent totals by
/// (bucket start, id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets {
    pub queues: BTreeMap<(i64, QueueId), QueueTotals>,
    pub agents: BTreeMap<(i64, AgentId), AgentTotals>,
}

impl Buckets {
    fn queue(&mut self, id: &QueueId, at: i64) -> &mut QueueTotals {
        self.queues.entry((bucket_of(at), id.clone())).or_default()
    }

    fn agent(&mut self, id: &AgentId, at: i64) -> &mut AgentTotals {
        self.agents.entry((bucket_of(at), id.clone())).or_default()
    }

    /// Adds `other`'s totals to these.
    pub fn add(&mut self, other: &Buckets) {
        for (key, totals) in &other.queues {
            self.queues.entry(key.clone()).or_default().add(totals);
        }
        for (key, totals) in &other.agents {
            self.agents.entry(key.clone()).or_default().add(totals);
        }
    }
}

/// A logged-in agent, as far as time is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AgentClock {
    state: AgentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Chats accepted whose wrap-up is not yet in.
    #[serde(default)]
    holding: u32,
    /// Its time is counted up to here (unix ms).
    counted_to: i64,
}

impl AgentClock {
    fn new(at: i64) -> Self {
        Self {
            state: AgentState::Idle,
            reason: None,
            holding: 0,
            counted_to: at,
        }
    }

    /// Counts `[counted_to, to)` into the buckets it spans. An event older
    /// than what is counted already (another node's, a little late) counts
    /// from `counted_to`: an ended bucket is not reopened.
    fn count_to(&mut self, agent: &AgentId, to: i64, buckets: &mut Buckets) {
        let mut from = self.counted_to;
        while from < to {
            let end = (bucket_of(from) + BUCKET_MS).min(to);
            let ms = (end - from) as u64;
            let totals = buckets.agent(agent, from);
            totals.logged_in_ms += ms;
            match self.state {
                AgentState::Available => totals.available_ms += ms,
                AgentState::Idle => {
                    totals.idle_ms += ms;
                    let reason = self.reason.as_deref().unwrap_or(NO_REASON);
                    *totals
                        .idle_by_reason_ms
                        .entry(reason.to_owned())
                        .or_default() += ms;
                }
                AgentState::Rona => totals.rona_ms += ms,
                AgentState::Offline => {}
            }
            if self.holding > 0 {
                totals.occupied_ms += ms;
            }
            from = end;
        }
        self.counted_to = self.counted_to.max(to);
    }
}

/// What the fold remembers between events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    #[serde(default)]
    agents: BTreeMap<AgentId, AgentClock>,
    /// Every agent's time is counted up to here at least (unix ms): the
    /// end of the newest bucket that is complete.
    #[serde(default)]
    ticked_to: i64,
    /// The newest event folded in happened then (unix ms).
    #[serde(default)]
    last_event_at: i64,
}

fn text<'a>(event: &'a DomainEvent, key: &str) -> Option<&'a str> {
    event.data.get(key).and_then(|value| value.as_str())
}

fn number(event: &DomainEvent, key: &str) -> Option<u64> {
    event.data.get(key).and_then(|value| value.as_u64())
}

/// Is this accept the queue's answer to the chat (its first accept since
/// it entered the queue)? Events from before `first_in_queue` was written
/// say so by their kind.
pub fn first_in_queue(event: &DomainEvent) -> bool {
    event.kind == EventType::ConversationAccepted
        && match event.data.get("first_in_queue") {
            Some(first) => first.as_bool() == Some(true),
            None => text(event, "kind") == Some("new"),
        }
}

impl Projection {
    pub fn ticked_to(&self) -> i64 {
        self.ticked_to
    }

    /// Reports count every event up to this moment at least.
    pub fn as_of(&self) -> Timestamp {
        Timestamp(self.last_event_at.max(self.ticked_to))
    }

    /// A bucket ended at `end`: every logged-in agent's time is counted up
    /// to it.
    pub fn tick(&mut self, end: Timestamp, buckets: &mut Buckets) {
        self.advance(end, buckets);
        self.ticked_to = self.ticked_to.max(end.millis());
    }

    /// Counts every logged-in agent's time up to `to`.
    pub fn advance(&mut self, to: Timestamp, buckets: &mut Buckets) {
        for (agent, clock) in &mut self.agents {
            clock.count_to(agent, to.millis(), buckets);
        }
    }

    /// The agent's clock, its time counted up to `at` first; one is started
    /// for an agent whose login came before what was projected.
    fn clock(&mut self, agent: &AgentId, at: i64, buckets: &mut Buckets) -> &mut AgentClock {
        let clock = self
            .agents
            .entry(agent.clone())
            .or_insert_with(|| AgentClock::new(at));
        clock.count_to(agent, at, buckets);
        clock
    }

    /// Folds one event in. An event older than the last tick (committed
    /// after its bucket was closed: a cluster's outbox held up past the
    /// grace) counts in the first open bucket, so a closed one never
    /// changes.
    pub fn apply(&mut self, event: &DomainEvent, rules: &ReportRules, buckets: &mut Buckets) {
        let at = event.at.millis().max(self.ticked_to);
        self.last_event_at = self.last_event_at.max(at);
        let kind = text(event, "kind");
        let agent = event.agent_id.as_ref();
        let queue = event.queue_id.as_ref();
        match event.kind {
            EventType::AgentLoggedIn => {
                if let Some(agent) = agent {
                    self.clock(agent, at, buckets);
                }
            }
            EventType::AgentStateChanged => {
                if let Some(agent) = agent {
                    let state = event
                        .data
                        .get("state")
                        .and_then(|state| serde_json::from_value(state.clone()).ok());
                    let reason = text(event, "reason").map(str::to_owned);
                    let clock = self.clock(agent, at, buckets);
                    if let Some(state) = state {
                        clock.state = state;
                        clock.reason = reason;
                    }
                }
            }
            EventType::AgentLoggedOut => {
                if let Some(agent) = agent {
                    self.clock(agent, at, buckets);
                    self.agents.remove(agent);
                }
            }
            EventType::ConversationQueued => {
                if let (Some(queue), Some(why)) = (queue, text(event, "reason")) {
                    if why != "rona" {
                        buckets.queue(queue, at).entered += 1;
                    }
                }
            }
            EventType::ConversationOffered | EventType::ConferenceRequested => {
                if let Some(agent) = agent {
                    buckets.agent(agent, at).offered += 1;
                }
            }
            EventType::ConversationAccepted | EventType::ConferenceStarted => {
                if let Some(agent) = agent {
                    self.clock(agent, at, buckets).holding += 1;
                    let totals = buckets.agent(agent, at);
                    totals.accepted += 1;
                    if event.kind == EventType::ConferenceStarted {
                        totals.conferences_joined += 1;
                    }
                }
                if let (Some(queue), true) = (queue, first_in_queue(event)) {
                    let totals = buckets.queue(queue, at);
                    totals.handled += 1;
                    // An event erased before its figures were kept has none.
                    if let Some(wait_ms) = number(event, "wait_ms") {
                        totals.answered += 1;
                        totals.wait_ms += wait_ms;
                        totals.waited(wait_ms);
                        if wait_ms <= rules.service_level_ms {
                            totals.handled_in_sl += 1;
                        }
                    }
                }
            }
            EventType::ConversationRona => {
                if let Some(agent) = agent {
                    buckets.agent(agent, at).rona += 1;
                }
                if let (Some(queue), Some("new")) = (queue, kind) {
                    buckets.queue(queue, at).rona += 1;
                }
            }
            EventType::ConversationTransferred => {
                if let Some(agent) = agent {
                    buckets.agent(agent, at).transferred_out += 1;
                }
                if let (Some(queue), true) = (queue, event.data.get("to_queue").is_some()) {
                    buckets.queue(queue, at).transferred_out += 1;
                }
            }
            EventType::ConversationOverflowed => {
                if let Some(queue) = queue {
                    buckets.queue(queue, at).overflowed_out += 1;
                }
            }
            EventType::ConversationAbandoned => {
                if let Some(queue) = queue {
                    let totals = buckets.queue(queue, at);
                    totals.abandoned += 1;
                    if let Some(wait_ms) = number(event, "wait_ms") {
                        totals.waited(wait_ms);
                        if wait_ms <= rules.short_abandon_ms {
                            totals.short_abandoned += 1;
                        }
                    }
                }
            }
            EventType::WrapUpSubmitted => {
                let owner_handle = match text(event, "role") {
                    Some("owner") => number(event, "handle_ms"),
                    _ => None,
                };
                let reason = event
                    .data
                    .get("reason")
                    .and_then(|reason| reason.get("id"))
                    .and_then(|id| id.as_str());
                if let Some(queue) = queue {
                    let totals = buckets.queue(queue, at);
                    if let Some(reason) = reason {
                        *totals.wrap_ups.entry(reason.to_owned()).or_default() += 1;
                    }
                    if let Some(handle_ms) = owner_handle {
                        totals.handles += 1;
                        totals.handle_ms += handle_ms;
                    }
                }
                if let Some(agent) = agent {
                    if self.agents.contains_key(agent) {
                        let clock = self.clock(agent, at, buckets);
                        clock.holding = clock.holding.saturating_sub(1);
                    }
                    if let Some(handle_ms) = owner_handle {
                        let totals = buckets.agent(agent, at);
                        totals.handled += 1;
                        totals.handle_ms += handle_ms;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The fields of an event's `data` that erasure keeps (with
/// `"erased": true`).
pub const KEPT_ON_ERASURE: [&str; 10] = [
    "kind",
    "reason",
    "wait_ms",
    "handle_ms",
    "role",
    "automatic",
    "to_queue",
    "from_queue",
    "to_agent",
    "from_agent",
];

/// What an erased customer's event keeps: the fields reports count, none
/// of which says who the customer was or what they wrote (no name, no
/// text, no wrap-up notes). A rebuild after an erasure gives the same
/// figures.
pub fn kept_on_erasure(data: &serde_json::Value) -> serde_json::Value {
    let mut kept = serde_json::Map::new();
    kept.insert("erased".into(), serde_json::Value::Bool(true));
    if let Some(fields) = data.as_object() {
        for key in KEPT_ON_ERASURE {
            if let Some(value) = fields.get(key) {
                kept.insert(key.into(), value.clone());
            }
        }
    }
    serde_json::Value::Object(kept)
}
