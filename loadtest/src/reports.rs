//! Reports to measure against: `seed-events` writes the event histories of
//! a month of conversations and of the agents' shifts straight into a
//! database, through the engine's own write path, and `report-timing`
//! times `GET /api/v1/reports/queues|agents` against a node started on it
//! (after `switchboard rebuild-reports` projected the events into buckets).
//!
//! Each event is shaped as the engine emits it (`engine/src/conversation/
//! state.rs`, `engine/src/events/mod.rs`): its type, `data`, and the
//! conversation, queue, agent and customer it names. Message events are
//! left out: reports never read them, and a real history would hold about
//! twenty per conversation besides these.
//!
//! The events are written in time order (their `seq` order is their time
//! order), as a node writes them: conversations arrive over the days by a
//! daily curve (none at night, half on weekends), and each one's later
//! events wait in a heap until every arrival before them has been
//! generated. Agents work shifts of eight hours, five days a week, with
//! breaks and a lunch; a conversation is offered to an agent of its queue
//! who is available at that moment.

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_engine::events::DomainEvent;
use switchboard_engine::storage::{Change, Database, DatabaseConfig};
use switchboard_proto::feed::EventType;
use switchboard_proto::{AgentId, ConversationId, CustomerId, QueueId, Timestamp};

use crate::cli::{ReportTimingArgs, SeedEventsArgs};
use crate::config::{queue_ids, queue_of_agent};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const SLOT: i64 = 15 * MINUTE;

/// Arrivals by hour of the day (UTC), relative: closed at night.
const HOURLY: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 6.0, 9.0, 10.0, 10.0, 8.0, 9.0, 10.0, 10.0, 9.0, 8.0,
    7.0, 6.0, 5.0, 4.0, 0.0, 0.0,
];
/// Saturdays and Sundays get this share of a weekday's arrivals.
const WEEKEND: f64 = 0.5;
/// Shifts (start, end) from midnight: early, middle, late.
const SHIFTS: [(i64, i64); 3] = [
    (7 * HOUR, 15 * HOUR),
    (10 * HOUR + 30 * MINUTE, 18 * HOUR + 30 * MINUTE),
    (14 * HOUR, 22 * HOUR),
];
/// Share of conversations the customer leaves before an agent answers.
const ABANDON: f64 = 0.08;
/// Share of offers that time out (RONA) and go to another agent.
const RONA: f64 = 0.04;
/// Share of answered conversations the owner transfers.
const TRANSFER: f64 = 0.03;
/// Share of wrap-ups the node submits on its own (after `AUTO_WRAP_UP`).
const AUTOMATIC: f64 = 0.06;
const RONA_TIMEOUT: i64 = 30_000;
const AUTO_WRAP_UP: i64 = 120_000;
/// Wrap-up reasons (id, label, share).
const REASONS: [(&str, &str, f64); 4] = [
    ("resolved", "Resolved", 0.60),
    ("info", "Information given", 0.20),
    ("sale", "Sale", 0.12),
    ("callback", "Callback promised", 0.08),
];

/// 0 = Monday.
fn weekday(ms: i64) -> i64 {
    (ms.div_euclid(DAY) + 3).rem_euclid(7)
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A log-normal duration in ms: `median` ms, spread `sigma`, within
/// `[low, high]`.
fn lognormal(rng: &mut impl Rng, median: f64, sigma: f64, low: i64, high: i64) -> i64 {
    ((median * (sigma * normal(rng)).exp()) as i64).clamp(low, high)
}

fn exponential(rng: &mut impl Rng, mean: f64) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    -mean * u.ln()
}

/// An event waiting for its time; the heap's least is the oldest, ties in
/// the order they were made.
struct Pending {
    at: i64,
    order: u64,
    event: DomainEvent,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

struct Agent {
    id: AgentId,
    name: String,
    queue: usize,
    /// Today's spans in which it is available and takes offers.
    available: Vec<(i64, i64)>,
}

impl Agent {
    fn named(&self) -> serde_json::Value {
        json!({ "id": self.id, "name": self.name })
    }

    /// The end of its available span holding `at`, if it is in one.
    fn available_until(&self, at: i64) -> Option<i64> {
        self.available
            .iter()
            .find(|(from, to)| *from <= at && at < *to)
            .map(|(_, to)| *to)
    }
}

/// The conversation being generated.
struct Conversation {
    id: ConversationId,
    customer: CustomerId,
    customer_name: String,
    created: i64,
}

/// An offer: of which queue, to whom, `new` or `transfer`, from whom, and
/// whether its accept is the queue's answer (the first since the
/// conversation entered the queue: not a transfer to an agent).
struct Offer {
    queue: usize,
    agent: usize,
    kind: &'static str,
    from: Option<usize>,
    first_in_queue: bool,
}

/// What was written, by event type.
#[derive(Default)]
struct Tally {
    by_type: BTreeMap<&'static str, u64>,
    conversations: u64,
    abandoned: u64,
    ronas: u64,
    transfers: u64,
    shifts: u64,
}

/// Makes the events and hands them on in time order, in batches.
struct Generator {
    rng: StdRng,
    start: i64,
    end: i64,
    queues: Vec<(QueueId, String)>,
    agents: Vec<Agent>,
    heap: BinaryHeap<Reverse<Pending>>,
    order: u64,
    offers: u64,
    customers: u64,
    tally: Tally,
    batch: Vec<Change>,
    batch_size: usize,
    out: tokio::sync::mpsc::Sender<Vec<Change>>,
}

impl Generator {
    /// Keeps `event` for later: it is written once every arrival before it
    /// has been generated. Events past the end (a conversation still going
    /// on now) are left out, as they have not happened yet.
    fn push(&mut self, event: DomainEvent) {
        let at = event.at.millis();
        if at < self.start || at > self.end {
            return;
        }
        self.order += 1;
        self.heap.push(Reverse(Pending {
            at,
            order: self.order,
            event,
        }));
    }

    /// Writes every kept event older than `before`.
    fn flush_before(&mut self, before: i64) -> anyhow::Result<()> {
        while self.heap.peek().is_some_and(|next| next.0.at < before) {
            let Some(Reverse(next)) = self.heap.pop() else {
                break;
            };
            *self
                .tally
                .by_type
                .entry(next.event.kind.as_str())
                .or_default() += 1;
            self.batch.push(Change::Event(Arc::new(next.event)));
            if self.batch.len() >= self.batch_size {
                let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
                self.out
                    .blocking_send(full)
                    .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.flush_before(i64::MAX)?;
        let rest = std::mem::take(&mut self.batch);
        if !rest.is_empty() {
            self.out
                .blocking_send(rest)
                .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
        }
        Ok(())
    }

    fn agent_event(&mut self, agent: usize, kind: EventType, at: i64, data: serde_json::Value) {
        let mut event = DomainEvent::new(kind, Timestamp(at), data);
        event.agent_id = Some(self.agents[agent].id.clone());
        self.push(event);
    }

    fn state(&mut self, agent: usize, at: i64, state: &str, reason: Option<&str>) {
        let mut data = json!({ "state": state, "since": Timestamp(at) });
        if let Some(reason) = reason {
            data["reason"] = json!(reason);
        }
        self.agent_event(agent, EventType::AgentStateChanged, at, data);
    }

    /// The shifts of `day` (its midnight): log in, available, breaks, a
    /// lunch, sometimes training, idle before logging out.
    fn shifts(&mut self, day: i64) {
        let week_day = weekday(day);
        for index in 0..self.agents.len() {
            self.agents[index].available.clear();
            let n = index as i64 + 1;
            // Two days off in a row, a different pair by agent.
            if (week_day - n).rem_euclid(7) >= 5 {
                continue;
            }
            let (from, to) = SHIFTS[index % SHIFTS.len()];
            let login = day + from + self.rng.random_range(-10 * MINUTE..5 * MINUTE);
            let logout = day + to + self.rng.random_range(-5 * MINUTE..10 * MINUTE);
            let ready = login + self.rng.random_range(5_000..60_000);
            let mut away: Vec<(i64, i64, &str)> = vec![
                (
                    login + 2 * HOUR + self.rng.random_range(-15 * MINUTE..15 * MINUTE),
                    15 * MINUTE,
                    "break",
                ),
                (
                    login + 4 * HOUR + self.rng.random_range(-20 * MINUTE..20 * MINUTE),
                    30 * MINUTE,
                    "lunch",
                ),
                (
                    login + 6 * HOUR + self.rng.random_range(-15 * MINUTE..15 * MINUTE),
                    15 * MINUTE,
                    "break",
                ),
            ];
            if self.rng.random_bool(0.08) {
                away.push((login + 2 * HOUR + 45 * MINUTE, 45 * MINUTE, "training"));
            }
            away.sort_by_key(|(at, _, _)| *at);
            let last = logout - self.rng.random_range(5 * MINUTE..20 * MINUTE);
            let name = self.agents[index].name.clone();
            let id = self.agents[index].id.clone();
            self.agent_event(
                index,
                EventType::AgentLoggedIn,
                login,
                json!({ "agent": { "id": id, "name": name } }),
            );
            self.state(index, ready, "available", None);
            let mut span_from = ready;
            for (at, length, reason) in away {
                self.agents[index].available.push((span_from, at));
                self.state(index, at, "idle", Some(reason));
                span_from = at + length + self.rng.random_range(0..3 * MINUTE);
                self.state(index, span_from, "available", None);
            }
            self.agents[index].available.push((span_from, last));
            self.state(index, last, "idle", None);
            self.agent_event(index, EventType::AgentLoggedOut, logout, json!({}));
            self.tally.shifts += 1;
        }
    }

    /// An agent of `queue` available at `at`, if any.
    fn pick(&mut self, queue: usize, at: i64, not: Option<usize>) -> Option<usize> {
        let free: Vec<usize> = (0..self.agents.len())
            .filter(|&a| {
                self.agents[a].queue == queue
                    && Some(a) != not
                    && self.agents[a].available_until(at).is_some()
            })
            .collect();
        match free.len() {
            0 => None,
            n => Some(free[self.rng.random_range(0..n)]),
        }
    }

    fn reason(&mut self) -> (&'static str, &'static str) {
        let mut x: f64 = self.rng.random();
        for (id, label, share) in REASONS {
            if x < share {
                return (id, label);
            }
            x -= share;
        }
        (REASONS[0].0, REASONS[0].1)
    }

    /// An event of conversation `c`, in `queue`, naming `agent`.
    fn emit(
        &mut self,
        c: &Conversation,
        kind: EventType,
        at: i64,
        (queue, agent): (usize, Option<usize>),
        data: serde_json::Value,
    ) {
        let mut event = DomainEvent::new(kind, Timestamp(at), data);
        event.conversation_id = Some(c.id.clone());
        event.queue_id = Some(self.queues[queue].0.clone());
        event.customer_id = Some(c.customer.clone());
        event.agent_id = agent.map(|a| self.agents[a].id.clone());
        self.push(event);
    }

    fn named_queue(&self, queue: usize) -> serde_json::Value {
        json!({ "id": self.queues[queue].0, "name": self.queues[queue].1 })
    }

    /// `conversation.queued` in `queue`.
    fn queued(&mut self, c: &Conversation, at: i64, queue: usize, why: &str, since: i64) {
        let data = json!({
            "queue": self.named_queue(queue),
            "reason": why,
            "queued_since": Timestamp(since),
        });
        self.emit(c, EventType::ConversationQueued, at, (queue, None), data);
    }

    /// `conversation.abandoned`: the customer left at `at`, waiting since
    /// `since`.
    fn abandoned(&mut self, c: &Conversation, at: i64, queue: usize, since: i64) {
        self.tally.abandoned += 1;
        let data = json!({ "wait_ms": at - since, "created_at": Timestamp(c.created) });
        self.emit(c, EventType::ConversationAbandoned, at, (queue, None), data);
    }

    /// `conversation.offered`; returns the offer's id.
    fn offered(&mut self, c: &Conversation, at: i64, offer: &Offer) -> String {
        self.offers += 1;
        let offer_id = format!("o-ev-{}", self.offers);
        let data = json!({
            "offer_id": offer_id,
            "kind": offer.kind,
            "agent": self.agents[offer.agent].named(),
            "from_agent": offer.from.map(|a| self.agents[a].named()),
            "expires_at": Timestamp(at + RONA_TIMEOUT),
        });
        let whom = (offer.queue, Some(offer.agent));
        self.emit(c, EventType::ConversationOffered, at, whom, data);
        offer_id
    }

    /// `conversation.accepted` of `offer` (`offer_id`), after `wait_ms`.
    fn accepted(&mut self, c: &Conversation, at: i64, offer: &Offer, offer_id: &str, wait_ms: i64) {
        let data = json!({
            "offer_id": offer_id,
            "kind": offer.kind,
            "agent": self.agents[offer.agent].named(),
            "wait_ms": wait_ms,
            "first_in_queue": offer.first_in_queue,
        });
        let whom = (offer.queue, Some(offer.agent));
        self.emit(c, EventType::ConversationAccepted, at, whom, data);
    }

    /// The owner's `wrap_up.submitted` after its leg ended at `ended`
    /// (joined at `joined`); returns when and which reason.
    fn wrapped_up(
        &mut self,
        c: &Conversation,
        (ended, joined): (i64, i64),
        queue: usize,
        agent: usize,
    ) -> (i64, &'static str) {
        let automatic = self.rng.random_bool(AUTOMATIC);
        let (at, (id, label)) = if automatic {
            (ended + AUTO_WRAP_UP, (REASONS[0].0, REASONS[0].1))
        } else {
            (ended + self.rng.random_range(5_000..90_000), self.reason())
        };
        let data = json!({
            "agent": self.agents[agent].named(),
            "reason": { "id": id, "label": label },
            "notes": null,
            "automatic": automatic,
            "role": "owner",
            "handle_ms": at - joined,
        });
        self.emit(
            c,
            EventType::WrapUpSubmitted,
            at,
            (queue, Some(agent)),
            data,
        );
        (at, id)
    }

    /// A wait in a queue (ms) and the part of it the agent took to accept.
    fn wait(&mut self, median: f64) -> (i64, i64) {
        let wait = lognormal(&mut self.rng, median, 0.9, 1_000, 10 * MINUTE);
        let answer = self.rng.random_range(1_000..8_000).min(wait - 200);
        (wait, answer)
    }

    /// One conversation arriving at `at` in `queue`: all its events.
    fn conversation(&mut self, n: u64, at: i64, queue: usize) {
        self.tally.conversations += 1;
        let customer_n = self.rng.random_range(0..self.customers);
        let c = Conversation {
            id: ConversationId::new(format!("c-ev-{n:07}")),
            customer: CustomerId::new(format!("cu-ev-{customer_n:07}")),
            customer_name: format!("Customer {customer_n}"),
            created: at,
        };
        let data = json!({
            "customer": { "id": c.customer, "name": c.customer_name, "verified": true },
            "queue": self.named_queue(queue),
            "attributes": {},
        });
        self.emit(&c, EventType::ConversationCreated, at, (queue, None), data);
        self.queued(&c, at, queue, "created", at);
        if self.rng.random_bool(ABANDON) {
            // A third leave within seconds (short abandons).
            let wait = if self.rng.random_bool(0.3) {
                self.rng.random_range(500..5_000)
            } else {
                (exponential(&mut self.rng, 90_000.0) as i64).clamp(5_000, 15 * MINUTE)
            };
            self.abandoned(&c, at + wait, queue, at);
            return;
        }
        let (wait, answer) = self.wait(15_000.0);
        let mut offered_at = at + wait - answer;
        let Some(agent) = self.pick(queue, offered_at, None) else {
            // Nobody free in this queue: the customer gives up.
            self.abandoned(&c, at + wait, queue, at);
            return;
        };
        let mut offer = Offer {
            queue,
            agent,
            kind: "new",
            from: None,
            first_in_queue: true,
        };
        let mut offer_id = self.offered(&c, offered_at, &offer);
        if self.rng.random_bool(RONA) {
            self.tally.ronas += 1;
            let rona_at = offered_at + RONA_TIMEOUT;
            let data = json!({
                "offer_id": offer_id,
                "kind": "new",
                "agent": self.agents[agent].named(),
            });
            self.emit(
                &c,
                EventType::ConversationRona,
                rona_at,
                (queue, Some(agent)),
                data,
            );
            // The agent is in `rona` until it makes itself available again
            // (unless its next break comes first).
            self.state(agent, rona_at, "rona", None);
            let back = rona_at + self.rng.random_range(10_000..90_000);
            if self.agents[agent]
                .available_until(rona_at)
                .is_some_and(|end| back < end)
            {
                self.state(agent, back, "available", None);
            }
            self.queued(&c, rona_at, queue, "rona", at);
            offered_at = rona_at + self.rng.random_range(200..5_000);
            let Some(next) = self.pick(queue, offered_at, Some(agent)) else {
                self.abandoned(&c, offered_at + 30_000, queue, at);
                return;
            };
            offer.agent = next;
            offer_id = self.offered(&c, offered_at, &offer);
        }
        let mut accepted_at = offered_at + answer;
        self.accepted(&c, accepted_at, &offer, &offer_id, accepted_at - at);
        let first_accepted = accepted_at;
        let mut owner = offer.agent;
        let mut queue_now = queue;
        let mut wrap_ups: Vec<&'static str> = Vec::new();
        let mut last_wrap_up = 0;
        if self.rng.random_bool(TRANSFER) {
            let transferred_at = accepted_at + self.rng.random_range(MINUTE..6 * MINUTE);
            let to_queue = self.queues.len() > 1 && self.rng.random_bool(2.0 / 3.0);
            if to_queue {
                let shift = self.rng.random_range(1..self.queues.len());
                let target = (queue + shift) % self.queues.len();
                let (wait, answer) = self.wait(20_000.0);
                let offered_at = transferred_at + wait - answer;
                // Only to a queue with someone free then.
                if let Some(next) = self.pick(target, offered_at, Some(owner)) {
                    self.tally.transfers += 1;
                    let data = json!({
                        "from_agent": self.agents[owner].named(),
                        "from_queue": self.named_queue(queue),
                        "to_queue": self.named_queue(target),
                    });
                    let whom = (queue, Some(owner));
                    self.emit(
                        &c,
                        EventType::ConversationTransferred,
                        transferred_at,
                        whom,
                        data,
                    );
                    self.queued(&c, transferred_at, target, "transferred", transferred_at);
                    // The leaving owner's wrap-up counts in the queue its
                    // leg was in.
                    let (wrapped, reason) =
                        self.wrapped_up(&c, (transferred_at, accepted_at), queue, owner);
                    wrap_ups.push(reason);
                    last_wrap_up = wrapped;
                    let offer = Offer {
                        queue: target,
                        agent: next,
                        kind: "new",
                        from: None,
                        first_in_queue: true,
                    };
                    let offer_id = self.offered(&c, offered_at, &offer);
                    accepted_at = offered_at + answer;
                    self.accepted(
                        &c,
                        accepted_at,
                        &offer,
                        &offer_id,
                        accepted_at - transferred_at,
                    );
                    owner = next;
                    queue_now = target;
                }
            } else if let Some(next) = self.pick(queue, transferred_at, Some(owner)) {
                self.tally.transfers += 1;
                let data = json!({
                    "from_agent": self.agents[owner].named(),
                    "to_agent": self.agents[next].named(),
                });
                let whom = (queue, Some(owner));
                self.emit(
                    &c,
                    EventType::ConversationTransferred,
                    transferred_at,
                    whom,
                    data,
                );
                let offer = Offer {
                    queue,
                    agent: next,
                    kind: "transfer",
                    from: Some(owner),
                    first_in_queue: false,
                };
                let offer_id = self.offered(&c, transferred_at, &offer);
                let (wrapped, reason) =
                    self.wrapped_up(&c, (transferred_at, accepted_at), queue, owner);
                wrap_ups.push(reason);
                last_wrap_up = wrapped;
                accepted_at = transferred_at + self.rng.random_range(2_000..20_000);
                // A transfer's wait counts from when it was first queued.
                self.accepted(&c, accepted_at, &offer, &offer_id, accepted_at - at);
                owner = next;
            }
        }
        let handle = lognormal(&mut self.rng, 7.0 * MINUTE as f64, 0.6, 30_000, HOUR);
        let ended_at = accepted_at + handle;
        let by_customer = self.rng.random_bool(0.75);
        let (by, ender) = if by_customer {
            let by = json!({ "role": "customer", "id": null, "name": c.customer_name });
            (by, None)
        } else {
            let by = json!({
                "role": "agent",
                "id": self.agents[owner].id,
                "name": self.agents[owner].name,
            });
            (by, Some(owner))
        };
        let data = json!({ "by": by });
        self.emit(
            &c,
            EventType::ConversationEnded,
            ended_at,
            (queue_now, ender),
            data,
        );
        let (wrapped, reason) = self.wrapped_up(&c, (ended_at, accepted_at), queue_now, owner);
        wrap_ups.push(reason);
        let closed_at = wrapped.max(last_wrap_up);
        let data = json!({
            "created_at": Timestamp(c.created),
            "first_accepted_at": Timestamp(first_accepted),
            "ended_at": Timestamp(ended_at),
            "wrap_ups": wrap_ups,
            "message_count": self.rng.random_range(4..40),
        });
        self.emit(
            &c,
            EventType::ConversationClosed,
            closed_at,
            (queue_now, None),
            data,
        );
    }

    /// Every conversation, slot by slot; returns the tally.
    fn run(mut self, conversations: u64) -> anyhow::Result<Tally> {
        // Each 15-minute slot's share of the arrivals.
        let first = self.start.div_euclid(SLOT) * SLOT;
        let mut slots = Vec::new();
        let mut slot = first;
        while slot < self.end {
            let from = slot.max(self.start);
            let to = (slot + SLOT).min(self.end);
            let hour = (slot.rem_euclid(DAY) / HOUR) as usize;
            let day_share = if weekday(slot) >= 5 { WEEKEND } else { 1.0 };
            slots.push((from, to, HOURLY[hour] * day_share * (to - from) as f64));
            slot += SLOT;
        }
        let total: f64 = slots.iter().map(|(_, _, weight)| weight).sum();
        let queue_weights: Vec<f64> = (0..self.queues.len())
            .map(|n| (self.queues.len() - n) as f64)
            .collect();
        let queue_total: f64 = queue_weights.iter().sum();
        let (mut cumulative, mut made, mut n) = (0.0, 0u64, 0u64);
        let mut day = i64::MIN;
        let started = Instant::now();
        for (from, to, weight) in slots {
            let today = from.div_euclid(DAY) * DAY;
            if today != day {
                day = today;
                if n > 0 {
                    eprintln!(
                        "{} conversations generated, {:.1} s",
                        n,
                        started.elapsed().as_secs_f64()
                    );
                }
                self.shifts(day);
            }
            cumulative += weight;
            let upto = ((conversations as f64) * cumulative / total).round() as u64;
            let count = upto.saturating_sub(made);
            made = upto;
            let mut arrivals: Vec<i64> = (0..count)
                .map(|_| self.rng.random_range(from..to))
                .collect();
            arrivals.sort_unstable();
            for arrival in arrivals {
                self.flush_before(arrival)?;
                let mut x = self.rng.random::<f64>() * queue_total;
                let mut queue = 0;
                while queue + 1 < queue_weights.len() && x >= queue_weights[queue] {
                    x -= queue_weights[queue];
                    queue += 1;
                }
                self.conversation(n, arrival, queue);
                n += 1;
            }
        }
        self.finish()?;
        Ok(self.tally)
    }
}

/// `seed-events`: generates on a thread of its own and writes batch after
/// batch (one write in flight, so `seq` follows time).
pub async fn seed_events(args: SeedEventsArgs) -> anyhow::Result<()> {
    let database = Database::open(DatabaseConfig::new(args.database_url.clone()))
        .await
        .with_context(|| format!("open {}", args.database_url))?;
    let end = Timestamp::now().millis();
    let started = Instant::now();
    let (tally, written) = seed_into(&database, &args, end).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "seeded {} conversations ({} abandoned, {} RONAs, {} transfers) and {} agent shifts \
         over {} days ending {}: {} events in {:.1} s ({:.0} events/s) into {}",
        tally.conversations,
        tally.abandoned,
        tally.ronas,
        tally.transfers,
        tally.shifts,
        args.days,
        Timestamp(end).to_rfc3339(),
        written,
        seconds,
        written as f64 / seconds.max(1e-9),
        database.url()
    );
    for (kind, count) in &tally.by_type {
        println!("  {kind}: {count}");
    }
    Ok(())
}

/// The days of `args` ending at `end` (unix ms) into `database`; returns
/// what was made and how many events were written.
async fn seed_into(
    database: &Database,
    args: &SeedEventsArgs,
    end: i64,
) -> anyhow::Result<(Tally, u64)> {
    let start = end - i64::from(args.days) * DAY;
    let queues: Vec<(QueueId, String)> = queue_ids(&args.queue, args.queues)
        .into_iter()
        .enumerate()
        .map(|(n, id)| {
            let name = match n {
                0 => "Load test".to_owned(),
                n => format!("Load test {}", n + 1),
            };
            (QueueId::new(id), name)
        })
        .collect();
    let agents = (1..=args.agents)
        .map(|n| Agent {
            id: AgentId::new(format!("{}{n}", args.agent_prefix)),
            name: format!("Agent {n}"),
            queue: queue_of_agent(n, queues.len()),
            available: Vec::new(),
        })
        .collect();
    let (out, mut batches) = tokio::sync::mpsc::channel::<Vec<Change>>(8);
    let generator = Generator {
        rng: StdRng::seed_from_u64(args.seed),
        start,
        end,
        queues,
        agents,
        heap: BinaryHeap::new(),
        order: 0,
        offers: 0,
        customers: (args.conversations * 3 / 5).max(1),
        tally: Tally::default(),
        batch: Vec::with_capacity(args.batch.max(1)),
        batch_size: args.batch.max(1),
        out,
    };
    let conversations = args.conversations;
    let started = Instant::now();
    let making = std::thread::spawn(move || generator.run(conversations));
    let mut written = 0u64;
    let mut next_report = 500_000u64;
    while let Some(batch) = batches.recv().await {
        let len = batch.len() as u64;
        database.write(batch).await?;
        written += len;
        if written >= next_report {
            next_report += 500_000;
            eprintln!(
                "{written} events written, {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let tally = making
        .join()
        .map_err(|_| anyhow::anyhow!("the generator panicked"))??;
    Ok((tally, written))
}

/// A report to time: its label, `queues` or `agents`, and its parameters
/// besides the range.
type Case<'a> = (String, &'a str, Vec<(&'a str, String)>);

/// `report-timing`: logs in as a supervisor, then asks each report
/// `requests` times one after the other (after one request not counted)
/// and prints its rows, its size and the latency percentiles; the time is
/// to the whole body read.
pub async fn report_timing(args: ReportTimingArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let login: serde_json::Value = http
        .post(format!("{}/api/v1/agent/login", args.url))
        .json(&json!({
            "username": format!("{}1", args.agent_prefix),
            "password": format!("{}1-pw", args.agent_prefix),
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("login token")?.to_owned();
    let now = Timestamp::now().millis();
    let from = Timestamp(now - i64::from(args.days) * DAY).to_rfc3339();
    let to = Timestamp(now).to_rfc3339();
    let cases: Vec<Case> = vec![
        (
            "queues 15m, all queues".into(),
            "queues",
            vec![("interval", "15m".into())],
        ),
        (
            format!("queues 15m, queue {}", args.queue),
            "queues",
            vec![("interval", "15m".into()), ("queue", args.queue.clone())],
        ),
        (
            "queues 1h, all queues, Europe/Rome".into(),
            "queues",
            vec![("interval", "1h".into()), ("tz", "Europe/Rome".into())],
        ),
        (
            "queues 1d, all queues".into(),
            "queues",
            vec![("interval", "1d".into())],
        ),
        (
            "agents 15m, all agents".into(),
            "agents",
            vec![("interval", "15m".into())],
        ),
        (
            format!("agents 15m, agent {}", args.agent),
            "agents",
            vec![("interval", "15m".into()), ("agent", args.agent.clone())],
        ),
        (
            "agents 1d, all agents".into(),
            "agents",
            vec![("interval", "1d".into())],
        ),
    ];
    println!(
        "reports from {from} to {to}, {} requests each (after one not counted)",
        args.requests
    );
    for (label, report, extra) in cases {
        if args
            .only
            .as_ref()
            .is_some_and(|only| !label.contains(only.as_str()))
        {
            continue;
        }
        let mut query: Vec<(&str, String)> = vec![("from", from.clone()), ("to", to.clone())];
        query.extend(extra);
        let url = format!("{}/api/v1/reports/{report}", args.url);
        let ask = || async {
            let started = Instant::now();
            let body = http
                .get(&url)
                .query(&query)
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            anyhow::Ok((started.elapsed(), body))
        };
        let (first, body) = ask().await.with_context(|| label.clone())?;
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        let rows = answer["rows"].as_array().map_or(0, Vec::len);
        let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        for _ in 0..args.requests {
            let (took, _) = ask().await.with_context(|| label.clone())?;
            latency.record(took.as_micros().max(1) as u64)?;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        println!(
            "{label}: {rows} rows, {:.1} KiB; first {:.1} ms; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            body.len() as f64 / 1024.0,
            first.as_secs_f64() * 1000.0,
            ms(latency.value_at_quantile(0.5)),
            ms(latency.value_at_quantile(0.99)),
            ms(latency.max()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_engine::reports::projection::ReportRules;
    use switchboard_engine::reports::projector;

    #[test]
    fn seeded_events_are_in_time_order_and_the_reports_count_them() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let database = Database::open(DatabaseConfig::new("memory:"))
                .await
                .unwrap();
            let args = SeedEventsArgs {
                database_url: "memory:".into(),
                conversations: 3_000,
                days: 3,
                queues: 3,
                agents: 30,
                agent_prefix: "lt".into(),
                queue: "lt".into(),
                seed: 7,
                batch: 500,
            };
            let end = Timestamp::now().millis();
            let (tally, written) = seed_into(&database, &args, end).await.unwrap();
            assert_eq!(tally.conversations, 3_000);
            assert_eq!(tally.by_type.values().sum::<u64>(), written);
            // `seq` order is time order, and nothing is in the future.
            let (mut seq, mut last, mut read, mut answers) = (0, i64::MIN, 0u64, 0u64);
            loop {
                let page = database.events_after(seq, &[], 1_000).await.unwrap();
                if page.events.is_empty() {
                    break;
                }
                for (_, event) in &page.events {
                    let at = event.at.millis();
                    assert!(at >= last && at <= end, "{event:?}");
                    last = at;
                    read += 1;
                    if event.kind == EventType::ConversationAccepted
                        && event.data["first_in_queue"] == json!(true)
                    {
                        answers += 1;
                    }
                    if event.kind.as_str().starts_with("conversation.") {
                        assert!(event.queue_id.is_some() && event.conversation_id.is_some());
                    }
                }
                seq = page.scanned_to;
            }
            assert_eq!(read, written);
            // What the projection makes of them.
            let rules = ReportRules {
                service_level_ms: 30_000,
                short_abandon_ms: 5_000,
            };
            projector::catch_up(&database, &rules).await.unwrap();
            let (_, buckets) = database
                .queue_buckets(i64::MIN, i64::MAX, Vec::new())
                .await
                .unwrap();
            let sum = |count: fn(&switchboard_engine::reports::totals::QueueTotals) -> u64| {
                buckets
                    .iter()
                    .map(|(_, _, totals)| count(totals))
                    .sum::<u64>()
            };
            let typed = |kind: &str| tally.by_type.get(kind).copied().unwrap_or(0);
            assert_eq!(sum(|t| t.abandoned), typed("conversation.abandoned"));
            assert_eq!(sum(|t| t.rona), typed("conversation.rona"));
            assert!(answers > 0);
            assert_eq!(sum(|t| t.handled), answers);
            assert_eq!(
                sum(|t| t.entered),
                typed("conversation.created") + sum(|t| t.transferred_out)
            );
            let (_, agents) = database
                .agent_buckets(i64::MIN, i64::MAX, Vec::new())
                .await
                .unwrap();
            assert!(!agents.is_empty());
        });
    }
}
