//! A simulated customer: starts a chat at its scheduled arrival time (open
//! model: arrivals do not wait for earlier customers), opens its
//! WebSocket, and once an agent has accepted sends its messages at a fixed
//! interval from a schedule (latency counts from the scheduled time, so a
//! late send is not hidden). After the agent ends the chat (answering the
//! last message) it checks it has every message and leaves.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::model::ConversationState;
use switchboard_proto::{ErrorCode, ServerFrame};
use tokio::sync::watch;

use crate::client::{self, Incoming, Outstanding, WsSink, RETRY_DELAY};
use crate::shared::{Shared, Slot};
use crate::stats::Metrics;
use crate::tracker::Who;

/// After the chat ended, how long the customer waits for messages it is
/// still missing before it leaves (and they count as lost).
const COMPLETION_GRACE: Duration = Duration::from_secs(3);
/// `failover`: after the chat ended, how long before a customer still
/// missing messages asks for them with one `resume`.
const TAIL_RESUME_AFTER: Duration = Duration::from_millis(500);

enum Request {
    Send(String),
    Resume,
    End,
}

impl Request {
    fn name(&self) -> &'static str {
        match self {
            Request::Send(_) => "send",
            Request::Resume => "resume",
            Request::End => "end",
        }
    }
}

/// The customer's socket and its unanswered commands.
struct Session {
    sink: WsSink,
    codec: switchboard_proto::codec::Codec,
    requests: HashMap<String, Outstanding<Request>>,
    next_request: u64,
    /// The socket failed while sending: reconnect (`failover`) or give up.
    broken: bool,
}

impl Session {
    /// Sends a command under a fresh request id; `false` if the socket is
    /// gone (the command stays outstanding, to be sent again after a
    /// reconnect).
    async fn request(&mut self, request: Request, mut command: serde_json::Value) -> bool {
        self.next_request += 1;
        let id = format!("w{}", self.next_request);
        command["request_id"] = serde_json::Value::String(id.clone());
        let sent = client::send(&mut self.sink, self.codec, &command).await;
        self.requests.insert(id, Outstanding::new(request, command));
        self.broken |= !sent;
        sent
    }

    /// Sends an outstanding command again, under its own request id.
    async fn resend(&mut self, id: String, mut outstanding: Outstanding<Request>) -> bool {
        outstanding.last_sent = Instant::now();
        let sent = client::send(&mut self.sink, self.codec, &outstanding.command).await;
        self.requests.insert(id, outstanding);
        self.broken |= !sent;
        sent
    }

    fn resume_outstanding(&self) -> bool {
        self.requests
            .values()
            .any(|o| matches!(o.request, Request::Resume))
    }
}

/// Runs customer `n`, scheduled to arrive at `scheduled`. `abort` flips when
/// the run's drain deadline passes.
pub async fn run(
    shared: Arc<Shared>,
    n: u64,
    scheduled: Instant,
    mut abort: watch::Receiver<bool>,
) {
    let metrics = &shared.metrics;
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    Metrics::bump(&metrics.counters.chats_scheduled);
    let sent_at = Instant::now();
    metrics
        .send_lag
        .record(sent_at.saturating_duration_since(scheduled));
    let origin = crate::stats::latency_origin(scheduled, sent_at);
    shared.tracker.schedule_chat(n, origin);
    let mut slot = shared.customer_slot(n);
    let first_text = shared.text("hello");
    let started = loop {
        let started = shared
            .node_at(slot)
            .start_chat(&shared.queue, &format!("c{n}"), &first_text)
            .await;
        match (started, &shared.failover) {
            // `failover`: a node that refused the connection, or answered
            // `unavailable`, created nothing: try the next one.
            (Err(code), Some(failover))
                if (code == "http_connect" || code == "unavailable")
                    && sent_at.elapsed() < failover.reconnect_within =>
            {
                metrics.error(&format!("{code}/start_chat"));
                slot.node = shared.next_node(slot.node);
                tokio::time::sleep(RETRY_DELAY).await;
            }
            (started, _) => break started,
        }
    };
    let started = match started {
        Ok(started) => started,
        Err(code) => {
            Metrics::bump(&metrics.counters.chats_create_failed);
            metrics.error(&format!("{code}/start_chat"));
            shared.tracker.unschedule_chat(n);
            metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    Metrics::bump(&metrics.counters.chats_created);
    metrics.create.record(origin.elapsed());
    let conv = started.conversation_id.to_string();
    shared.tracker.seed(&conv, Who::Customer, 1);
    let outcome = converse(&shared, &conv, slot, &started.token, &mut abort).await;
    if crate::tracker::debug() && !matches!(outcome, Outcome::Completed) {
        let what = match outcome {
            Outcome::Abandoned => "abandoned",
            Outcome::TimedOut => "timed out",
            _ => "failed",
        };
        eprintln!("customer c{n} ({conv}) {what}");
    }
    match outcome {
        Outcome::Completed => Metrics::bump(&metrics.counters.chats_completed),
        Outcome::Abandoned => Metrics::bump(&metrics.counters.chats_abandoned),
        Outcome::TimedOut => Metrics::bump(&metrics.counters.customer_timeouts),
        Outcome::Failed => {}
    }
    shared.tracker.customer_done(&conv);
    metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
}

enum Outcome {
    Completed,
    Abandoned,
    TimedOut,
    Failed,
}

async fn converse(
    shared: &Shared,
    conv: &str,
    mut slot: Slot,
    token: &str,
    abort: &mut watch::Receiver<bool>,
) -> Outcome {
    let metrics = &shared.metrics;
    let workload = &shared.workload;
    let codec = shared.codec;
    let connected = match client::connect_ws(
        shared.node_at(slot),
        token,
        codec,
        shared.source_at(slot),
    )
    .await
    {
        Ok(pair) => Some(pair),
        // `failover`: the node went away between `POST /chats` and here.
        Err(_) if shared.failover.is_some() => shared
            .reconnect(slot, token, Instant::now())
            .await
            .map(|(new_slot, sink, stream)| {
                slot = new_slot;
                (sink, stream)
            }),
        Err(_) => None,
    };
    let Some((sink, mut stream)) = connected else {
        Metrics::bump(&metrics.counters.connect_failures);
        metrics.error("connect/customer");
        return Outcome::Failed;
    };
    let mut session = Session {
        sink,
        codec,
        requests: HashMap::new(),
        next_request: 0,
        broken: false,
    };
    // `unavailable` answers waiting to be sent again.
    let mut delayed: Vec<(Instant, String, Outstanding<Request>)> = Vec::new();
    let mut active = false;
    let mut sent = 0_u32;
    let mut next_send: Option<Instant> = None;
    let mut ended_at: Option<Instant> = None;
    let mut abandoned = false;
    let mut ended_by_me = false;
    // `failover`: when the socket was lost, until resumed on the new one.
    let mut reconnecting: Option<Instant> = None;
    let mut unanswered: Vec<String> = Vec::new();
    let mut tail_resumed = false;
    let give_up_at = Instant::now()
        + workload.patience
        + workload.message_interval * (workload.messages + 1)
        + Duration::from_secs(10);
    let outcome = loop {
        if session.broken {
            if shared.failover.is_none() {
                metrics.error("send_failed/customer");
                break Outcome::Failed;
            }
            let lost_at = Instant::now();
            metrics.session_lost();
            let Some((new_slot, sink, new_stream)) = shared.reconnect(slot, token, lost_at).await
            else {
                metrics.error("reconnect_failed/customer");
                break Outcome::Failed;
            };
            slot = new_slot;
            session.sink = sink;
            stream = new_stream;
            session.broken = false;
            // The old socket's resume died with it; hello decides anew.
            session
                .requests
                .retain(|_, o| !matches!(o.request, Request::Resume));
            shared.tracker.set_resume(conv, Who::Customer, false);
            // Sent again once `hello` is in (not what the new socket carries).
            unanswered = session.requests.keys().cloned().collect();
            reconnecting = Some(lost_at);
            continue;
        }
        if let Some(at) = ended_at {
            let complete = shared
                .tracker
                .expected(conv, Who::Customer)
                .is_some_and(|upto| shared.tracker.complete(conv, Who::Customer, upto));
            let pending_send = session
                .requests
                .values()
                .chain(delayed.iter().map(|(_, _, o)| o))
                .any(|o| matches!(o.request, Request::Send(_)));
            if (complete && !pending_send) || at.elapsed() > COMPLETION_GRACE {
                break if abandoned {
                    Outcome::Abandoned
                } else if ended_by_me {
                    Outcome::TimedOut
                } else {
                    Outcome::Completed
                };
            }
            // `failover`: messages that never came live are asked for once.
            if shared.failover.is_some()
                && !complete
                && !tail_resumed
                && at.elapsed() > TAIL_RESUME_AFTER
                && !session.resume_outstanding()
            {
                tail_resumed = true;
                Metrics::bump(&metrics.counters.gap_resumes);
                if !resume(shared, conv, &mut session).await {
                    continue;
                }
            }
        }
        let now = Instant::now();
        let mut index = 0;
        while index < delayed.len() {
            if delayed[index].0 <= now {
                let (_, id, outstanding) = delayed.swap_remove(index);
                Metrics::bump(&metrics.counters.commands_retried);
                session.resend(id, outstanding).await;
            } else {
                index += 1;
            }
        }
        if session.broken {
            continue;
        }
        let wake = match (ended_at, next_send) {
            (Some(at), _) => {
                (at + COMPLETION_GRACE).min(Instant::now() + Duration::from_millis(50))
            }
            (None, Some(at)) if active && sent < workload.messages => at.min(give_up_at),
            _ => give_up_at,
        };
        let wake = delayed
            .iter()
            .map(|(at, _, _)| *at)
            .fold(wake, Instant::min);
        tokio::select! {
            message = stream.next() => match client::decode(codec, message) {
                Incoming::Frame(frame) => match *frame {
                    ServerFrame::Hello(hello) => {
                        if reconnecting.is_some() && hello.conversations.is_empty() {
                            // The new node does not know the conversation.
                            metrics.error("conversation_unknown_after_reconnect/customer");
                            break Outcome::Failed;
                        }
                        if let Some(summary) = hello.conversations.first() {
                            active = is_live(summary.state);
                            if active && next_send.is_none() {
                                next_send = Some(Instant::now() + workload.message_interval);
                            }
                            // The chat may be over before the socket opened
                            // (an agent that accepts and ends at once).
                            if matches!(summary.state, ConversationState::Ended | ConversationState::Closed | ConversationState::Abandoned) {
                                shared.tracker.set_expected(conv, Who::Customer, summary.last_seq);
                                abandoned = summary.state == ConversationState::Abandoned;
                                ended_at.get_or_insert_with(Instant::now);
                            }
                            if summary.last_seq > shared.tracker.contiguous(conv, Who::Customer)
                                && !resume(shared, conv, &mut session).await
                            {
                                continue;
                            }
                        }
                        if let Some(lost_at) = reconnecting {
                            // What the old socket left unanswered goes again,
                            // same request ids and `client_msg_id`s.
                            for id in std::mem::take(&mut unanswered) {
                                if let Some(outstanding) = session.requests.remove(&id) {
                                    Metrics::bump(&metrics.counters.commands_retried);
                                    session.resend(id, outstanding).await;
                                }
                            }
                            if !session.resume_outstanding() {
                                reconnecting = None;
                                metrics.session_resumed(lost_at);
                            }
                        }
                    }
                    ServerFrame::Ack(ack) => match session.requests.remove(&ack.request_id).map(|o| (o.request, o.last_sent)) {
                        Some((Request::Send(client_msg_id), sent)) => {
                            metrics.answer(sent, true);
                            shared.tracker.send_result(conv, &client_msg_id, true)
                        }
                        Some((Request::Resume, _)) => {
                            shared.tracker.set_resume(conv, Who::Customer, false);
                            if let Some(lost_at) = reconnecting.take() {
                                metrics.session_resumed(lost_at);
                            }
                        }
                        Some((Request::End, _)) => {
                            if let Some(summary) = &ack.conversation {
                                shared.tracker.set_expected(conv, Who::Customer, summary.last_seq);
                                abandoned = summary.state == ConversationState::Abandoned;
                            }
                            ended_at.get_or_insert_with(Instant::now);
                        }
                        None => {}
                    },
                    ServerFrame::Error(error) => {
                        let outstanding = error.request_id.as_ref().and_then(|id| session.requests.remove(id).map(|o| (id.clone(), o)));
                        let name = outstanding.as_ref().map_or("unmatched", |(_, o)| o.request.name());
                        metrics.error(&format!("{}/{name}", error.code.as_str()));
                        let Some((id, outstanding)) = outstanding else { continue };
                        if error.code == ErrorCode::Unavailable && matches!(outstanding.request, Request::Send(_)) {
                            metrics.answer(outstanding.last_sent, false);
                        }
                        if error.code == ErrorCode::Unavailable && outstanding.may_retry() {
                            // `unavailable` means retry: the command stays
                            // outstanding (a resume keeps replaying).
                            delayed.push((Instant::now() + client::retry_delay(&error), id, outstanding));
                            continue;
                        }
                        match outstanding.request {
                            Request::Send(client_msg_id) => shared.tracker.send_result(conv, &client_msg_id, false),
                            Request::Resume => shared.tracker.set_resume(conv, Who::Customer, false),
                            Request::End => { ended_at.get_or_insert_with(Instant::now); }
                        }
                    }
                    ServerFrame::Message(message) => {
                        shared.tracker.on_message(Who::Customer, &message);
                        // `failover`: a live event past a gap (events lost
                        // while the conversation moved): fill it.
                        if shared.failover.is_some()
                            && !session.resume_outstanding()
                            && !delayed.iter().any(|(_, _, o)| matches!(o.request, Request::Resume))
                            && message.seq > shared.tracker.contiguous(conv, Who::Customer) + 1
                        {
                            Metrics::bump(&metrics.counters.gap_resumes);
                            if !resume(shared, conv, &mut session).await {
                                continue;
                            }
                        }
                    }
                    ServerFrame::Conversation(summary) => {
                        let live = is_live(summary.state);
                        if live && !active {
                            let now = Instant::now();
                            next_send = Some(match next_send {
                                Some(at) => at.max(now),
                                None => now + workload.message_interval,
                            });
                        }
                        active = live;
                        if matches!(summary.state, ConversationState::Ended | ConversationState::Closed | ConversationState::Abandoned) {
                            shared.tracker.set_expected(conv, Who::Customer, summary.last_seq);
                            abandoned = summary.state == ConversationState::Abandoned;
                            ended_at.get_or_insert_with(Instant::now);
                        }
                    }
                    _ => {}
                },
                Incoming::Control => {}
                Incoming::Undecodable => metrics.error("undecodable_frame"),
                Incoming::Closed => {
                    if shared.failover.is_some() {
                        session.broken = true;
                        continue;
                    }
                    metrics.error("customer_socket_closed");
                    break Outcome::Failed;
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if ended_at.is_some() {
                    continue;
                }
                if now >= give_up_at {
                    // Nobody ended the chat in time: the customer leaves.
                    if !ended_by_me {
                        ended_by_me = true;
                        session.request(Request::End, json!({"type": "end"})).await;
                    }
                    continue;
                }
                if let Some(at) = next_send {
                    if active && sent < workload.messages && at <= now {
                        sent += 1;
                        let client_msg_id = format!("m{sent}");
                        let prefix = if sent == workload.messages { format!("last {sent}") } else { format!("m {sent}") };
                        let text = shared.text(&prefix);
                        metrics.send_lag.record(now.saturating_duration_since(at));
                        let origin = crate::stats::latency_origin(at, now);
                        shared.tracker.register_send(conv, &client_msg_id, origin, true);
                        Metrics::bump(&metrics.counters.sent_customer);
                        next_send = Some(at + workload.message_interval);
                        let command = json!({"type": "send", "text": text, "client_msg_id": client_msg_id});
                        session.request(Request::Send(client_msg_id), command).await;
                    }
                }
            }
            _ = abort.changed() => { metrics.error("aborted_at_drain_deadline/customer"); break Outcome::Failed }
        }
    };
    let _ = session.sink.close().await;
    outcome
}

/// Asks for every message after the last contiguous one held; `false` if
/// the socket is gone.
async fn resume(shared: &Shared, conv: &str, session: &mut Session) -> bool {
    shared.tracker.set_resume(conv, Who::Customer, true);
    let after_seq = shared.tracker.contiguous(conv, Who::Customer);
    session
        .request(
            Request::Resume,
            json!({"type": "resume", "after_seq": after_seq}),
        )
        .await
}

fn is_live(state: ConversationState) -> bool {
    matches!(
        state,
        ConversationState::Active
            | ConversationState::ConferenceRequested
            | ConversationState::Conference
    )
}
