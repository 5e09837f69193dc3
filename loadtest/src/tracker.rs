//! Correctness, measured rather than assumed. Every conversation is tracked
//! from both ends: which `seq`s each participant's session received (and
//! how), which offers are outstanding, and which sent messages have not yet
//! reached the other side.
//!
//! Definitions (the counters that must stay zero):
//! - **duplicated**: one session received the same `seq` twice *live*.
//!   A live event for a seq the client already had from an offer's thread,
//!   a `resume` replay or its own `POST /chats` is not a duplicate: those
//!   routes overlap by design and clients de-duplicate by `seq`. Also one
//!   `client_msg_id` delivered at two different `seq`s (a retried send the
//!   server stored twice);
//! - **out-of-order**: a live `seq` lower than one already received live;
//! - **lost**: when a participant leaves (its `end`/`transfer` ack, or the
//!   `ended` conversation event), a `seq` in `1..=last_seq` it never got by
//!   any route (offer thread, live, resume);
//! - **undelivered**: a message the server acked that never reached the other
//!   side (customer -> any agent, agent -> customer);
//! - **double offers**: an offer for a conversation reached an agent while
//!   another agent's offer for it was still outstanding (neither accepted,
//!   withdrawn nor past its `expires_at`).
//!
//! Latency: the sender registers each message's `client_msg_id` with its
//! scheduled send time before sending; the first live receipt on the other
//! side records `now - scheduled`.

use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_proto::model::{Message, Offer, Role};

use crate::stats::Metrics;

const SHARDS: usize = 64;
/// How long a finished conversation's track waits for stragglers.
const DONE_GRACE: Duration = Duration::from_secs(1);
/// Server timestamps have millisecond resolution; an offer made at the
/// previous offer's `expires_at` minus this is still "after expiry".
const EXPIRY_SLACK_MS: i64 = 2;

/// Whose session received something.
#[derive(Clone, Copy, Debug)]
pub enum Who<'a> {
    Customer,
    Agent(&'a str),
}

#[derive(Default)]
struct Stream {
    seen: BTreeSet<u64>,
    /// Seqs received live (outside offers and resume replays).
    live: BTreeSet<u64>,
    max_live: u64,
    expected_upto: Option<u64>,
    resume_outstanding: bool,
}

impl Stream {
    fn missing(&self, upto: u64) -> u64 {
        let have = self.seen.range(1..=upto).count() as u64;
        upto.saturating_sub(have)
    }
}

struct Holder {
    agent: String,
    expires_at_ms: i64,
}

struct Pending {
    scheduled: Instant,
    from_customer: bool,
    acked: bool,
}

#[derive(Default)]
struct ConvTrack {
    customer: Stream,
    agents: HashMap<String, Stream>,
    holder: Option<Holder>,
    /// `expires_at` of an offer the harness let expire, until the next offer.
    rona_expiry_ms: Option<i64>,
    offered_once: bool,
    pending: HashMap<String, Pending>,
    /// `client_msg_id` -> the `seq` it was first delivered at (to the other
    /// side): a retried send must never come back at a second `seq`.
    delivered_ids: HashMap<String, u64>,
    owing: HashSet<String>,
    customer_done: bool,
    /// When every party was done. The track stays a moment longer: events
    /// may still be on their way (a `message` event can follow the ack of
    /// a later command), and they must land here, not in a new track.
    done_at: Option<Instant>,
}

pub struct Tracker {
    metrics: Arc<Metrics>,
    conversations: Vec<Mutex<HashMap<String, ConvTrack>>>,
    created: Vec<Mutex<HashMap<u64, Instant>>>,
}

fn shard_of(key: &str) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % SHARDS as u64) as usize
}

/// `LOADTEST_DEBUG=1` prints every correctness failure as it is counted.
pub(crate) fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("LOADTEST_DEBUG").is_some())
}

fn wall_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

impl Tracker {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            conversations: (0..SHARDS).map(|_| Mutex::default()).collect(),
            created: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn with<R>(&self, conv: &str, f: impl FnOnce(&mut ConvTrack, &Metrics) -> R) -> R {
        let mut shard = self.conversations[shard_of(conv)].lock();
        let track = shard.entry(conv.to_owned()).or_default();
        f(track, &self.metrics)
    }

    /// The customer numbered `n` is scheduled to start its chat at `at`.
    pub fn schedule_chat(&self, n: u64, at: Instant) {
        self.created[(n % SHARDS as u64) as usize]
            .lock()
            .insert(n, at);
    }

    fn take_schedule(&self, n: u64) -> Option<Instant> {
        self.created[(n % SHARDS as u64) as usize].lock().remove(&n)
    }

    /// Forgets a chat that was never created.
    pub fn unschedule_chat(&self, n: u64) {
        let _ = self.take_schedule(n);
    }

    /// An offer reached `agent`. `customer_n` is the harness's customer
    /// number (from the customer's name) for the offer latency.
    pub fn on_offer(&self, agent: &str, offer: &Offer, customer_n: Option<u64>, let_expire: bool) {
        let now = Instant::now();
        let first_schedule = customer_n.and_then(|n| self.take_schedule(n));
        let conv = offer.conversation_id.as_str();
        self.with(conv, |track, metrics| {
            Metrics::bump(&metrics.counters.offers);
            if !track.offered_once {
                track.offered_once = true;
                if let Some(at) = first_schedule {
                    metrics.offer.record(now.saturating_duration_since(at));
                }
            }
            let offered_at = offer.offered_at.millis();
            if let Some(holder) = &track.holder {
                if holder.agent != agent && offered_at < holder.expires_at_ms - EXPIRY_SLACK_MS {
                    Metrics::bump(&metrics.counters.double_offers);
                    if debug() {
                        eprintln!(
                            "double offer: {conv} to {agent} ({:?}) while {} holds one until {}",
                            offer.kind, holder.agent, holder.expires_at_ms
                        );
                    }
                }
            }
            if let Some(expiry_ms) = track.rona_expiry_ms.take() {
                if offered_at + EXPIRY_SLACK_MS >= expiry_ms {
                    let micros = (wall_micros() - expiry_ms * 1000).max(1) as u64;
                    metrics.rona_redirect.record(Duration::from_micros(micros));
                }
            }
            track.holder = Some(Holder {
                agent: agent.to_owned(),
                expires_at_ms: offer.expires_at.millis(),
            });
            if let_expire {
                track.rona_expiry_ms = Some(offer.expires_at.millis());
            }
            let stream = track.agents.entry(agent.to_owned()).or_default();
            for message in &offer.messages {
                stream.seen.insert(message.seq);
            }
            for message in &offer.messages {
                deliver(track, metrics, Who::Agent(agent), message, false);
            }
        });
    }

    /// `agent`'s offer ended: accepted (by it) or withdrawn.
    pub fn offer_ended(&self, conv: &str, agent: &str, accepted: bool) {
        self.with(conv, |track, _| {
            if track.holder.as_ref().is_some_and(|h| h.agent == agent) {
                track.holder = None;
            }
            if accepted {
                track.owing.insert(agent.to_owned());
            }
        });
        self.maybe_finalize(conv);
    }

    /// A `message` event reached `who`'s session.
    pub fn on_message(&self, who: Who<'_>, message: &Message) {
        self.with(message.conversation_id.as_str(), |track, metrics| {
            let stream = match who {
                Who::Customer => &mut track.customer,
                Who::Agent(agent) => track.agents.entry(agent.to_owned()).or_default(),
            };
            let live = !stream.resume_outstanding;
            if live {
                if stream.live.contains(&message.seq) {
                    Metrics::bump(&metrics.counters.duplicated);
                    if debug() {
                        eprintln!(
                            "duplicate: {} seq {} to {who:?} from {:?} text {:?}",
                            message.conversation_id, message.seq, message.from.role, message.text
                        );
                    }
                } else if message.seq < stream.max_live {
                    Metrics::bump(&metrics.counters.out_of_order);
                    if debug() {
                        eprintln!(
                            "out of order: {} seq {} to {who:?} after {}",
                            message.conversation_id, message.seq, stream.max_live
                        );
                    }
                }
                stream.live.insert(message.seq);
                stream.max_live = stream.max_live.max(message.seq);
            }
            stream.seen.insert(message.seq);
            deliver(track, metrics, who, message, live);
        });
    }

    /// Seeds a stream with a seq the participant knows without an event
    /// (the customer's first message, sent with `POST /chats`).
    pub fn seed(&self, conv: &str, who: Who<'_>, seq: u64) {
        self.with(conv, |track, _| {
            let stream = match who {
                Who::Customer => &mut track.customer,
                Who::Agent(agent) => track.agents.entry(agent.to_owned()).or_default(),
            };
            stream.seen.insert(seq);
        });
    }

    pub fn set_resume(&self, conv: &str, who: Who<'_>, outstanding: bool) {
        self.with(conv, |track, _| {
            let stream = match who {
                Who::Customer => &mut track.customer,
                Who::Agent(agent) => track.agents.entry(agent.to_owned()).or_default(),
            };
            stream.resume_outstanding = outstanding;
        });
    }

    /// The participant left at `last_seq`: it must have seen `1..=last_seq`.
    /// Only the first call counts (a later `ended` event does not extend
    /// what an agent who transferred away had to see).
    pub fn set_expected(&self, conv: &str, who: Who<'_>, last_seq: u64) {
        self.with(conv, |track, _| {
            let stream = match who {
                Who::Customer => &mut track.customer,
                Who::Agent(agent) => track.agents.entry(agent.to_owned()).or_default(),
            };
            stream.expected_upto.get_or_insert(last_seq);
        });
    }

    /// The highest `seq` up to which `who` holds every message (what a
    /// `resume` after a reconnect asks to start after).
    /// Does not create a track for a conversation already accounted for.
    pub fn contiguous(&self, conv: &str, who: Who<'_>) -> u64 {
        let shard = self.conversations[shard_of(conv)].lock();
        let Some(track) = shard.get(conv) else {
            return 0;
        };
        let stream = match who {
            Who::Customer => Some(&track.customer),
            Who::Agent(agent) => track.agents.get(agent),
        };
        stream.map_or(0, |s| contiguous(&s.seen))
    }

    /// Whether `who` still misses a `seq` below the one it is known to
    /// need (`expected`): `Some(contiguous)` to resume after. `None` for a
    /// conversation already accounted for.
    pub fn tail_gap(&self, conv: &str, who: Who<'_>) -> Option<u64> {
        let shard = self.conversations[shard_of(conv)].lock();
        let track = shard.get(conv)?;
        let stream = match who {
            Who::Customer => Some(&track.customer),
            Who::Agent(agent) => track.agents.get(agent),
        }?;
        let have = contiguous(&stream.seen);
        (stream.expected_upto? > have).then_some(have)
    }

    pub fn expected(&self, conv: &str, who: Who<'_>) -> Option<u64> {
        self.with(conv, |track, _| match who {
            Who::Customer => track.customer.expected_upto,
            Who::Agent(agent) => track.agents.get(agent).and_then(|s| s.expected_upto),
        })
    }

    /// Whether `who` has every seq up to `upto`.
    pub fn complete(&self, conv: &str, who: Who<'_>, upto: u64) -> bool {
        self.with(conv, |track, _| {
            let stream = match who {
                Who::Customer => Some(&track.customer),
                Who::Agent(agent) => track.agents.get(agent),
            };
            stream.is_some_and(|s| s.missing(upto) == 0)
        })
    }

    /// A message about to be sent; latency counts from `scheduled`.
    pub fn register_send(
        &self,
        conv: &str,
        client_msg_id: &str,
        scheduled: Instant,
        from_customer: bool,
    ) {
        self.with(conv, |track, _| {
            track.pending.insert(
                client_msg_id.to_owned(),
                Pending {
                    scheduled,
                    from_customer,
                    acked: false,
                },
            );
        });
    }

    /// The send was acked (`true`) or refused (`false`: forget it).
    pub fn send_result(&self, conv: &str, client_msg_id: &str, acked: bool) {
        self.with(conv, |track, _| {
            if acked {
                if let Some(pending) = track.pending.get_mut(client_msg_id) {
                    pending.acked = true;
                }
            } else {
                track.pending.remove(client_msg_id);
            }
        });
    }

    /// The agent's wrap-up for `conv` is in.
    pub fn wrapped_up(&self, conv: &str, agent: &str) {
        self.with(conv, |track, _| {
            track.owing.remove(agent);
        });
        self.maybe_finalize(conv);
    }

    pub fn customer_done(&self, conv: &str) {
        self.with(conv, |track, _| track.customer_done = true);
        self.maybe_finalize(conv);
    }

    fn maybe_finalize(&self, conv: &str) {
        let mut shard = self.conversations[shard_of(conv)].lock();
        if let Some(track) = shard.get_mut(conv) {
            if track.customer_done && track.owing.is_empty() && track.holder.is_none() {
                track.done_at.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Accounts for conversations done for longer than [`DONE_GRACE`].
    /// Called a few times a second while a run is on.
    pub fn sweep(&self) {
        for shard in &self.conversations {
            let finished: Vec<ConvTrack> = {
                let mut shard = shard.lock();
                let expired: Vec<String> = shard
                    .iter()
                    .filter(|(_, t)| t.done_at.is_some_and(|at| at.elapsed() >= DONE_GRACE))
                    .map(|(conv, _)| conv.clone())
                    .collect();
                expired
                    .iter()
                    .filter_map(|conv| shard.remove(conv))
                    .collect()
            };
            for track in &finished {
                self.account(track);
            }
        }
    }

    /// Counts what a finished (or abandoned-by-deadline) conversation lost.
    fn account(&self, track: &ConvTrack) {
        let counters = &self.metrics.counters;
        let streams = std::iter::once(("customer", &track.customer))
            .chain(track.agents.iter().map(|(id, s)| (id.as_str(), s)));
        let mut lost = 0;
        for (who, stream) in streams {
            let upto = stream
                .expected_upto
                .unwrap_or_else(|| stream.seen.last().copied().unwrap_or(0));
            let missing = stream.missing(upto);
            if missing > 0 && debug() {
                eprintln!(
                    "lost: {missing} of 1..={upto} for {who} (seen {:?})",
                    stream.seen
                );
            }
            lost += missing;
        }
        counters
            .lost
            .fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
        let undelivered = track.pending.values().filter(|p| p.acked).count() as u64;
        if undelivered > 0 && debug() {
            let ids: Vec<&String> = track.pending.keys().collect();
            eprintln!("undelivered: {undelivered} ({ids:?})");
        }
        counters
            .undelivered
            .fetch_add(undelivered, std::sync::atomic::Ordering::Relaxed);
    }

    /// End of run: accounts for every conversation still tracked and
    /// returns how many there were (unfinished by the drain deadline).
    pub fn finalize_all(&self) -> u64 {
        let mut unfinished = 0;
        for shard in &self.conversations {
            let drained: Vec<ConvTrack> = shard.lock().drain().map(|(_, t)| t).collect();
            for track in drained {
                if !(track.customer_done && track.owing.is_empty()) {
                    unfinished += 1;
                }
                self.account(&track);
            }
        }
        unfinished
    }

    /// Conversations currently tracked.
    pub fn open(&self) -> usize {
        self.conversations.iter().map(|s| s.lock().len()).sum()
    }
}

/// The highest `n` with every seq of `1..=n` in `seen`.
fn contiguous(seen: &BTreeSet<u64>) -> u64 {
    let mut upto = 0;
    for &seq in seen.range(1..) {
        if seq != upto + 1 {
            break;
        }
        upto = seq;
    }
    upto
}

/// Marks `message` delivered to the other side if `who` is that side.
fn deliver(track: &mut ConvTrack, metrics: &Metrics, who: Who<'_>, message: &Message, live: bool) {
    let Some(client_msg_id) = &message.client_msg_id else {
        return;
    };
    let to_customer = matches!(who, Who::Customer);
    let other_side = match message.from.role {
        Role::Customer => !to_customer,
        Role::Agent => to_customer,
        Role::System => false,
    };
    if !other_side {
        return;
    }
    match track.delivered_ids.get(client_msg_id.as_str()) {
        Some(&seq) if seq != message.seq => {
            Metrics::bump(&metrics.counters.duplicated);
            if debug() {
                eprintln!(
                    "duplicate: {} client_msg_id {} at seq {} and {seq}",
                    message.conversation_id,
                    client_msg_id.as_str(),
                    message.seq
                );
            }
        }
        Some(_) => {}
        None => {
            track
                .delivered_ids
                .insert(client_msg_id.as_str().to_owned(), message.seq);
        }
    }
    let Some(pending) = track.pending.remove(client_msg_id.as_str()) else {
        return;
    };
    let counters = &metrics.counters;
    if !live {
        Metrics::bump(&counters.delivered_late);
        return;
    }
    let latency = pending.scheduled.elapsed();
    metrics.sample(pending.scheduled, latency);
    if pending.from_customer {
        metrics.msg_c2a.record(latency);
        Metrics::bump(&counters.delivered_c2a);
    } else {
        metrics.msg_a2c.record(latency);
        Metrics::bump(&counters.delivered_a2c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::model::{Author, Customer, NamedRef, OfferKind};
    use switchboard_proto::{ConversationId, MessageId, OfferId, Timestamp};

    const CONV: &str = "c-1";

    fn tracker() -> (Arc<Metrics>, Tracker) {
        let metrics = Arc::new(Metrics::default());
        let tracker = Tracker::new(metrics.clone());
        (metrics, tracker)
    }

    fn message(seq: u64, role: Role, client_msg_id: Option<&str>) -> Message {
        let conversation_id = ConversationId::new(CONV);
        Message {
            id: MessageId::for_seq(&conversation_id, seq),
            conversation_id,
            seq,
            from: Author {
                role,
                id: None,
                name: "someone".into(),
            },
            text: "hi".into(),
            ts: Timestamp(0),
            client_msg_id: client_msg_id.map(Into::into),
        }
    }

    fn offer(agent: &str, offered_at: i64, expires_at: i64) -> Offer {
        Offer {
            offer_id: OfferId::new(format!("o-{agent}")),
            conversation_id: ConversationId::new(CONV),
            kind: OfferKind::New,
            customer: Customer {
                name: "c1".into(),
                email: None,
                ..Default::default()
            },
            queue: NamedRef::new("q", "Q"),
            agent: NamedRef::new(agent, agent),
            from_agent: None,
            created_at: Timestamp(offered_at),
            offered_at: Timestamp(offered_at),
            expires_at: Timestamp(expires_at),
            messages: vec![message(1, Role::Customer, None)],
        }
    }

    #[test]
    fn the_same_seq_twice_live_is_a_duplicate_but_a_replay_overlap_is_not() {
        let (metrics, tracker) = tracker();
        tracker.on_message(Who::Customer, &message(2, Role::System, None));
        tracker.set_resume(CONV, Who::Customer, true);
        tracker.on_message(Who::Customer, &message(2, Role::System, None));
        tracker.set_resume(CONV, Who::Customer, false);
        assert_eq!(metrics.counters.values().duplicated, 0);
        tracker.on_message(Who::Customer, &message(2, Role::System, None));
        assert_eq!(metrics.counters.values().duplicated, 1);
    }

    #[test]
    fn a_lower_live_seq_after_a_higher_one_is_out_of_order() {
        let (metrics, tracker) = tracker();
        tracker.on_message(Who::Agent("a1"), &message(3, Role::Customer, None));
        tracker.on_message(Who::Agent("a1"), &message(2, Role::Customer, None));
        assert_eq!(metrics.counters.values().out_of_order, 1);
    }

    #[test]
    fn a_seq_missing_below_what_the_participant_had_to_see_is_lost() {
        let (metrics, tracker) = tracker();
        tracker.seed(CONV, Who::Customer, 1);
        tracker.on_message(Who::Customer, &message(3, Role::System, None));
        tracker.set_expected(CONV, Who::Customer, 3);
        tracker.customer_done(CONV);
        assert_eq!(tracker.finalize_all(), 0);
        assert_eq!(metrics.counters.values().lost, 1);
    }

    #[test]
    fn a_retried_message_delivered_at_a_second_seq_is_a_duplicate() {
        let (metrics, tracker) = tracker();
        tracker.register_send(CONV, "m1", Instant::now(), true);
        tracker.send_result(CONV, "m1", true);
        tracker.on_message(Who::Agent("a1"), &message(2, Role::Customer, Some("m1")));
        // The retry after a reconnect is answered with the same seq: fine.
        tracker.on_message(Who::Agent("a1"), &message(2, Role::Customer, Some("m1")));
        assert_eq!(
            metrics.counters.values().duplicated,
            1,
            "same seq twice live"
        );
        tracker.set_resume(CONV, Who::Agent("a1"), true);
        tracker.on_message(Who::Agent("a1"), &message(2, Role::Customer, Some("m1")));
        tracker.set_resume(CONV, Who::Agent("a1"), false);
        assert_eq!(metrics.counters.values().duplicated, 1, "a replay is not");
        // Stored twice by the server: the same client_msg_id at seq 3.
        tracker.set_resume(CONV, Who::Agent("a1"), true);
        tracker.on_message(Who::Agent("a1"), &message(3, Role::Customer, Some("m1")));
        assert_eq!(metrics.counters.values().duplicated, 2);
        assert_eq!(metrics.counters.values().delivered_c2a, 1);
    }

    #[test]
    fn contiguous_and_tail_gap_say_where_to_resume_from() {
        let (_, tracker) = tracker();
        assert_eq!(tracker.contiguous(CONV, Who::Customer), 0);
        tracker.seed(CONV, Who::Customer, 1);
        tracker.on_message(Who::Customer, &message(2, Role::Agent, None));
        tracker.on_message(Who::Customer, &message(4, Role::Agent, None));
        assert_eq!(tracker.contiguous(CONV, Who::Customer), 2);
        assert_eq!(
            tracker.tail_gap(CONV, Who::Customer),
            None,
            "nothing expected yet"
        );
        tracker.set_expected(CONV, Who::Customer, 5);
        assert_eq!(tracker.tail_gap(CONV, Who::Customer), Some(2));
        tracker.on_message(Who::Customer, &message(3, Role::Agent, None));
        tracker.on_message(Who::Customer, &message(5, Role::System, None));
        assert_eq!(tracker.contiguous(CONV, Who::Customer), 5);
        assert_eq!(tracker.tail_gap(CONV, Who::Customer), None);
        assert_eq!(tracker.contiguous(CONV, Who::Agent("a1")), 0);
        // Asking does not bring back a conversation already accounted for.
        tracker.finalize_all();
        assert_eq!(tracker.contiguous(CONV, Who::Customer), 0);
        assert_eq!(tracker.open(), 0);
    }

    #[test]
    fn an_acked_message_that_never_arrives_is_undelivered() {
        let (metrics, tracker) = tracker();
        let sent = Instant::now();
        tracker.register_send(CONV, "m1", sent, true);
        tracker.send_result(CONV, "m1", true);
        tracker.register_send(CONV, "m2", sent, true);
        tracker.send_result(CONV, "m2", true);
        tracker.on_message(Who::Agent("a1"), &message(2, Role::Customer, Some("m1")));
        tracker.finalize_all();
        let values = metrics.counters.values();
        assert_eq!(values.delivered_c2a, 1);
        assert_eq!(values.undelivered, 1);
    }

    #[test]
    fn a_second_agent_offered_before_the_first_offer_ended_is_a_double_offer() {
        let (metrics, tracker) = tracker();
        tracker.on_offer("a1", &offer("a1", 1_000, 31_000), Some(1), false);
        tracker.on_offer("a2", &offer("a2", 2_000, 32_000), None, false);
        assert_eq!(metrics.counters.values().double_offers, 1);
    }

    #[test]
    fn offers_after_expiry_or_after_the_first_ended_are_not_double() {
        let (metrics, tracker) = tracker();
        tracker.on_offer("a1", &offer("a1", 1_000, 4_000), Some(1), true);
        // RONA: the next offer is made when the first expired.
        tracker.on_offer("a2", &offer("a2", 4_000, 7_000), None, false);
        tracker.offer_ended(CONV, "a2", true);
        // A transfer after the accept.
        tracker.on_offer("a3", &offer("a3", 9_000, 12_000), None, false);
        let values = metrics.counters.values();
        assert_eq!(values.double_offers, 0);
        assert_eq!(values.offers, 3);
        assert_eq!(metrics.rona_redirect.summary().count, 1);
    }
}
