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

use crate::client::{self, Incoming};
use crate::shared::Shared;
use crate::stats::Metrics;
use crate::tracker::Who;

/// After the chat ended, how long the customer waits for messages it is
/// still missing before it leaves (and they count as lost).
const COMPLETION_GRACE: Duration = Duration::from_secs(3);
/// A `resume` answered `unavailable` is retried (the protocol says: retry).
const MAX_RESUME_RETRIES: u32 = 5;
const RESUME_RETRY_DELAY: Duration = Duration::from_millis(50);

enum Request {
    Send(String),
    Resume,
    End,
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
    let (node, source) = shared.customer_route(n);
    let first_text = shared.text("hello");
    let started = node
        .start_chat(&shared.queue, &format!("c{n}"), &first_text)
        .await;
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
    let outcome = converse(&shared, &conv, &node, source, &started.token, &mut abort).await;
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
    node: &client::Node,
    source: Option<std::net::IpAddr>,
    token: &str,
    abort: &mut watch::Receiver<bool>,
) -> Outcome {
    let metrics = &shared.metrics;
    let workload = &shared.workload;
    let codec = shared.codec;
    let (mut sink, mut stream) = match client::connect_ws(node, token, codec, source).await {
        Ok(pair) => pair,
        Err(_) => {
            Metrics::bump(&metrics.counters.connect_failures);
            metrics.error("connect/customer");
            return Outcome::Failed;
        }
    };
    let mut requests: HashMap<String, Request> = HashMap::new();
    let mut next_request = 0_u64;
    let mut active = false;
    let mut sent = 0_u32;
    let mut next_send: Option<Instant> = None;
    let mut ended_at: Option<Instant> = None;
    let mut abandoned = false;
    let mut ended_by_me = false;
    let mut resume_retries = 0;
    let mut retry_resume_at: Option<Instant> = None;
    let give_up_at = Instant::now()
        + workload.patience
        + workload.message_interval * (workload.messages + 1)
        + Duration::from_secs(10);
    let outcome = loop {
        if let Some(at) = ended_at {
            let complete = shared
                .tracker
                .expected(conv, Who::Customer)
                .is_some_and(|upto| shared.tracker.complete(conv, Who::Customer, upto));
            let pending_send = requests.values().any(|r| matches!(r, Request::Send(_)));
            if (complete && !pending_send) || at.elapsed() > COMPLETION_GRACE {
                break if abandoned {
                    Outcome::Abandoned
                } else if ended_by_me {
                    Outcome::TimedOut
                } else {
                    Outcome::Completed
                };
            }
        }
        if let Some(at) = retry_resume_at {
            if at <= Instant::now() {
                retry_resume_at = None;
                next_request += 1;
                let id = format!("w{next_request}");
                requests.insert(id.clone(), Request::Resume);
                let command = json!({"type": "resume", "request_id": id, "after_seq": 1});
                if !client::send(&mut sink, codec, &command).await {
                    metrics.error("send_failed/customer");
                    break Outcome::Failed;
                }
            }
        }
        let wake = match (ended_at, next_send) {
            (Some(at), _) => {
                (at + COMPLETION_GRACE).min(Instant::now() + Duration::from_millis(50))
            }
            (None, Some(at)) if active && sent < workload.messages => at.min(give_up_at),
            _ => give_up_at,
        };
        let wake = retry_resume_at.map_or(wake, |at| at.min(wake));
        tokio::select! {
            message = stream.next() => match client::decode(codec, message) {
                Incoming::Frame(frame) => match *frame {
                    ServerFrame::Hello(hello) => {
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
                            if summary.last_seq > 1 {
                                shared.tracker.set_resume(conv, Who::Customer, true);
                                next_request += 1;
                                let id = format!("w{next_request}");
                                requests.insert(id.clone(), Request::Resume);
                                let command = json!({"type": "resume", "request_id": id, "after_seq": 1});
                                if !client::send(&mut sink, codec, &command).await { metrics.error("send_failed/customer"); break Outcome::Failed; }
                            }
                        }
                    }
                    ServerFrame::Ack(ack) => match requests.remove(&ack.request_id) {
                        Some(Request::Send(client_msg_id)) => shared.tracker.send_result(conv, &client_msg_id, true),
                        Some(Request::Resume) => shared.tracker.set_resume(conv, Who::Customer, false),
                        Some(Request::End) => {
                            if let Some(summary) = &ack.conversation {
                                shared.tracker.set_expected(conv, Who::Customer, summary.last_seq);
                                abandoned = summary.state == ConversationState::Abandoned;
                            }
                            ended_at.get_or_insert_with(Instant::now);
                        }
                        None => {}
                    },
                    ServerFrame::Error(error) => {
                        let request = error.request_id.as_ref().and_then(|id| requests.remove(id));
                        let name = match &request {
                            Some(Request::Send(_)) => "send",
                            Some(Request::Resume) => "resume",
                            Some(Request::End) => "end",
                            None => "unmatched",
                        };
                        metrics.error(&format!("{}/{name}", error.code.as_str()));
                        match request {
                            Some(Request::Send(client_msg_id)) => shared.tracker.send_result(conv, &client_msg_id, false),
                            Some(Request::Resume) if error.code == ErrorCode::Unavailable && resume_retries < MAX_RESUME_RETRIES => {
                                // `unavailable` means retry: the resume stays outstanding.
                                resume_retries += 1;
                                retry_resume_at = Some(Instant::now() + RESUME_RETRY_DELAY);
                            }
                            Some(Request::Resume) => shared.tracker.set_resume(conv, Who::Customer, false),
                            Some(Request::End) => { ended_at.get_or_insert_with(Instant::now); }
                            None => {}
                        }
                    }
                    ServerFrame::Message(message) => shared.tracker.on_message(Who::Customer, &message),
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
                        next_request += 1;
                        let id = format!("w{next_request}");
                        requests.insert(id.clone(), Request::End);
                        if !client::send(&mut sink, codec, &json!({"type": "end", "request_id": id})).await { metrics.error("send_failed/customer"); break Outcome::Failed; }
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
                        next_request += 1;
                        let id = format!("w{next_request}");
                        requests.insert(id.clone(), Request::Send(client_msg_id.clone()));
                        let command = json!({"type": "send", "request_id": id, "text": text, "client_msg_id": client_msg_id});
                        if !client::send(&mut sink, codec, &command).await { metrics.error("send_failed/customer"); break Outcome::Failed; }
                        next_send = Some(at + workload.message_interval);
                    }
                }
            }
            _ = abort.changed() => { metrics.error("aborted_at_drain_deadline/customer"); break Outcome::Failed }
        }
    };
    let _ = sink.close().await;
    outcome
}

fn is_live(state: ConversationState) -> bool {
    matches!(
        state,
        ConversationState::Active
            | ConversationState::ConferenceRequested
            | ConversationState::Conference
    )
}
