//! A simulated agent: logs in, goes available, accepts offers after a think
//! time (or lets a share of them expire, then sets itself available again),
//! replies to every customer message, transfers or conferences a share of
//! its chats, ends a chat after the customer's last message, and wraps up.

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::event::{Ack, Hello};
use switchboard_proto::model::{AgentState, ConversationState, Offer, OfferKind, Role};
use switchboard_proto::{ErrorCode, ServerFrame};
use tokio::sync::{broadcast, mpsc};

use crate::client::{self, Incoming, Outstanding, WsSink, WsSource};
use crate::shared::{Shared, Slot};
use crate::stats::Metrics;
use crate::tracker::Who;

/// Orders from the scenario to every agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Send one message into every conversation you own (reconnect storm).
    Storm,
    /// Finish what you hold, then log off.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Plain,
    Transfer,
    Conference,
}

struct Chat {
    kind: OfferKind,
    offer_max_seq: u64,
    accepted: bool,
    owner: bool,
    plan: Plan,
    replies: u32,
    /// Customer seqs already answered: a message seen twice (a resume replay
    /// overlapping live delivery) gets one reply.
    answered: std::collections::HashSet<u64>,
    /// No more replies: ended, ending, or transferred away.
    done_talking: bool,
}

enum Action {
    Accept(String),
    SetAvailable,
    WrapUp(String),
    Conference(String),
    End(String),
    /// Send an outstanding command again (it was answered `unavailable`).
    Retry(String),
    /// `failover`: ask for messages still missing after the chat ended.
    TailResume(String),
}

/// `failover`: after a chat ended, how long before an agent still missing
/// messages asks for them.
const TAIL_RESUME_AFTER: Duration = Duration::from_millis(300);

enum Request {
    SetState,
    Accept { conv: String, scheduled: Instant },
    Send { conv: String, client_msg_id: String },
    End(String),
    Transfer(String),
    Conference,
    WrapUp(String),
    Resume(String),
}

impl Request {
    fn name(&self) -> &'static str {
        match self {
            Request::SetState => "set_state",
            Request::Accept { .. } => "accept",
            Request::Send { .. } => "send",
            Request::End(_) => "end",
            Request::Transfer(_) => "transfer",
            Request::Conference => "conference",
            Request::WrapUp(_) => "wrap_up",
            Request::Resume(_) => "resume",
        }
    }
}

/// Credentials and placement of one simulated agent.
pub struct AgentSpec {
    pub index: usize,
    pub username: String,
    pub password: String,
    pub slot: Slot,
    pub max_chats: i32,
    /// Bounds concurrent logins.
    pub logins: Arc<tokio::sync::Semaphore>,
}

struct Agent {
    shared: Arc<Shared>,
    index: usize,
    id: String,
    sink: WsSink,
    /// Where the socket is, and the token to open another (`failover`).
    slot: Slot,
    token: String,
    next_request: u64,
    requests: HashMap<String, Outstanding<Request>>,
    /// Commands answered `unavailable`, until their retry fires.
    delayed: HashMap<String, Outstanding<Request>>,
    /// The socket failed: reconnect (`failover`) or stop.
    broken: bool,
    /// `failover`: when the socket was lost, until resumed on the new one.
    reconnecting: Option<Instant>,
    /// `failover`: requests the lost socket left unanswered.
    unanswered: Vec<String>,
    chats: HashMap<String, Chat>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    actions: HashMap<u64, Action>,
    next_timer: u64,
    available: bool,
    max_chats: i32,
    stopping: bool,
}

/// Logs the agent in and runs it until told to stop (and idle) or its
/// socket closes. Sends `()` on `ready` once it is available.
pub async fn run(
    shared: Arc<Shared>,
    spec: AgentSpec,
    mut control: broadcast::Receiver<Control>,
    ready: mpsc::Sender<anyhow::Result<()>>,
) {
    // Logins are paced: each runs argon2 on the node (about 19 MiB and tens
    // of milliseconds each), so a burst of them would dominate its memory.
    let permit = spec.logins.clone().acquire_owned().await;
    let node = shared.node_at(spec.slot);
    let login = node.login(&spec.username, &spec.password).await;
    drop(permit);
    let login = match login {
        Ok(login) => login,
        Err(error) => {
            let _ = ready.send(Err(error)).await;
            return;
        }
    };
    let connected = client::connect_ws(
        node,
        &login.token,
        shared.codec,
        shared.source_at(spec.slot),
    )
    .await;
    let (sink, mut source) = match connected {
        Ok(pair) => pair,
        Err(error) => {
            let _ = ready.send(Err(error)).await;
            return;
        }
    };
    let id = login.agent.id.to_string();
    shared.agent_ids.lock()[spec.index] = id.clone();
    let mut agent = Agent {
        shared: shared.clone(),
        index: spec.index,
        id,
        sink,
        slot: spec.slot,
        token: login.token,
        next_request: 0,
        requests: HashMap::new(),
        delayed: HashMap::new(),
        broken: false,
        reconnecting: None,
        unanswered: Vec::new(),
        chats: HashMap::new(),
        timers: BinaryHeap::new(),
        actions: HashMap::new(),
        next_timer: 0,
        available: false,
        max_chats: spec.max_chats,
        stopping: false,
    };
    let mut ready = Some(ready);
    let codec = shared.codec;
    loop {
        if agent.broken {
            match agent.reconnect().await {
                Some(new_source) => source = new_source,
                None => break,
            }
        }
        let next = agent.timers.peek().map(|Reverse((at, _))| *at);
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = source.next() => match client::decode(codec, message) {
                Incoming::Frame(frame) => {
                    if !agent.on_frame(*frame, &mut ready).await { break; }
                }
                Incoming::Control => {}
                Incoming::Undecodable => shared.metrics.error("undecodable_frame"),
                Incoming::Closed => {
                    if shared.failover.is_some() {
                        agent.broken = true;
                        continue;
                    }
                    if !agent.stopping { shared.metrics.error("agent_socket_closed"); }
                    break;
                }
            },
            () = sleep => {
                if !agent.fire_timers().await { break; }
            }
            order = control.recv() => match order {
                Ok(Control::Storm) => { if !agent.storm().await { break; } }
                Ok(Control::Stop) | Err(_) => {
                    agent.stopping = true;
                    if agent.chats.is_empty() { break; }
                    // Go idle so nothing new is offered while we finish.
                    if !agent.request(Request::SetState, json!({"type": "set_state", "state": "idle"})).await { break; }
                }
            },
        }
        if agent.stopping && agent.chats.is_empty() {
            break;
        }
    }
    if let Some(ready) = ready {
        let _ = ready
            .send(Err(anyhow::anyhow!(
                "agent {} closed before ready",
                agent.id
            )))
            .await;
    }
    shared.agent_free[agent.index].store(0, Ordering::Relaxed);
}

impl Agent {
    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn update_free(&self) {
        let free = if self.available && !self.stopping {
            (self.max_chats - self.chats.len() as i32).max(0)
        } else {
            0
        };
        self.shared.agent_free[self.index].store(free, Ordering::Relaxed);
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.next_timer += 1;
        self.timers.push(Reverse((at, self.next_timer)));
        self.actions.insert(self.next_timer, action);
    }

    /// Sends a command with a fresh request id; `false` if the socket is
    /// gone and the agent should stop. In `failover` the command stays
    /// outstanding, to be sent again after the reconnect, and this is `true`.
    async fn request(&mut self, request: Request, mut command: Value) -> bool {
        self.next_request += 1;
        let request_id = format!("r{}", self.next_request);
        command["request_id"] = Value::String(request_id.clone());
        let sent = client::send(&mut self.sink, self.shared.codec, &command).await;
        self.requests
            .insert(request_id, Outstanding::new(request, command));
        self.broken |= !sent;
        sent || self.shared.failover.is_some()
    }

    /// Sends an outstanding command again, under its own request id.
    async fn resend(&mut self, id: String, mut outstanding: Outstanding<Request>) -> bool {
        outstanding.last_sent = Instant::now();
        Metrics::bump(&self.metrics().counters.commands_retried);
        let sent = client::send(&mut self.sink, self.shared.codec, &outstanding.command).await;
        self.requests.insert(id, outstanding);
        self.broken |= !sent;
        sent || self.shared.failover.is_some()
    }

    fn resuming(&self, conv: &str) -> bool {
        self.requests
            .values()
            .chain(self.delayed.values())
            .any(|o| matches!(&o.request, Request::Resume(c) if c == conv))
    }

    async fn resume(&mut self, conv: &str, after_seq: u64) -> bool {
        self.shared
            .tracker
            .set_resume(conv, Who::Agent(&self.id), true);
        let command = json!({"type": "resume", "conversation_id": conv, "after_seq": after_seq});
        self.request(Request::Resume(conv.to_owned()), command)
            .await
    }

    /// `failover`: the socket is gone. Connects the same token to another
    /// node; `hello` there settles what was outstanding. `None`: give up.
    async fn reconnect(&mut self) -> Option<WsSource> {
        let lost_at = Instant::now();
        if self.reconnecting.is_none() {
            self.metrics().session_lost();
        }
        let shared = self.shared.clone();
        let Some((slot, sink, source)) = shared.reconnect(self.slot, &self.token, lost_at).await
        else {
            self.metrics().error("reconnect_failed/agent");
            return None;
        };
        self.slot = slot;
        self.sink = sink;
        self.broken = false;
        // Sent again once `hello` is in (not what the new socket carries).
        self.unanswered = self.requests.keys().cloned().collect();
        self.reconnecting.get_or_insert(lost_at);
        Some(source)
    }

    /// Counts the session resumed once nothing is left to resume.
    fn check_resumed(&mut self) {
        let resuming = self
            .requests
            .values()
            .chain(self.delayed.values())
            .any(|o| matches!(o.request, Request::Resume(_)));
        if resuming {
            return;
        }
        if let Some(lost_at) = self.reconnecting.take() {
            self.metrics().session_resumed(lost_at);
        }
    }

    /// `hello` on a socket opened after the old one was lost: settles the
    /// accepts that were in flight by what the node says, sends every other
    /// unanswered command again (same request id, same `client_msg_id`),
    /// resumes every accepted chat from the last contiguous `seq` held, and
    /// takes the offers that came meanwhile.
    async fn on_rehello(
        &mut self,
        hello: Hello,
        ready: &mut Option<mpsc::Sender<anyhow::Result<()>>>,
    ) -> bool {
        // What the lost socket left unanswered; its resumes died with it.
        let mut unanswered = Vec::new();
        for id in std::mem::take(&mut self.unanswered) {
            match self.requests.get(&id).map(|o| &o.request) {
                Some(Request::Resume(conv)) => {
                    let conv = conv.clone();
                    self.requests.remove(&id);
                    self.shared
                        .tracker
                        .set_resume(&conv, Who::Agent(&self.id), false);
                }
                Some(_) => unanswered.push(id),
                None => {}
            }
        }
        if crate::tracker::debug() {
            let held: Vec<String> = self
                .chats
                .iter()
                .map(|(conv, c)| {
                    format!(
                        "{conv}:{}{}",
                        if c.accepted { "A" } else { "o" },
                        if c.done_talking { "d" } else { "" }
                    )
                })
                .collect();
            let pending: Vec<String> = self
                .requests
                .values()
                .map(|o| o.request.name().to_owned())
                .collect();
            let listed: Vec<String> = hello
                .conversations
                .iter()
                .map(|s| {
                    format!(
                        "{}:{:?}:{}",
                        s.conversation_id.as_str(),
                        s.state,
                        s.last_seq
                    )
                })
                .collect();
            let offers: Vec<&str> = hello
                .offers
                .iter()
                .map(|o| o.conversation_id.as_str())
                .collect();
            eprintln!(
                "rehello {}: state {:?}; holds {held:?}; pending {pending:?}; hello lists {listed:?}, offers {offers:?}",
                self.id,
                hello.agent_state.as_ref().map(|s| s.state)
            );
        }
        for id in &unanswered {
            let conv = match self.requests.get(id).map(|o| &o.request) {
                Some(Request::Accept { conv, .. }) => conv.clone(),
                _ => continue,
            };
            let summary = hello
                .conversations
                .iter()
                .find(|s| s.conversation_id.as_str() == conv);
            if let Some(summary) = summary {
                // Accepted before the node went away; only the ack was lost.
                let ack = Ack {
                    request_id: id.clone(),
                    conversation: Some(summary.clone()),
                    ..Ack::default()
                };
                if !self.on_ack(ack, ready).await {
                    return false;
                }
            } else if !hello
                .offers
                .iter()
                .any(|o| o.conversation_id.as_str() == conv)
            {
                // The offer is gone (withdrawn or expired meanwhile).
                self.requests.remove(id);
                self.shared.tracker.offer_ended(&conv, &self.id, false);
                self.chats.remove(&conv);
                self.update_free();
            }
        }
        for id in unanswered {
            if let Some(outstanding) = self.requests.remove(&id) {
                if !self.resend(id, outstanding).await {
                    return false;
                }
            }
        }
        let unknown: Vec<String> = self
            .chats
            .iter()
            .filter(|(conv, chat)| {
                chat.accepted
                    && !chat.done_talking
                    && !hello
                        .conversations
                        .iter()
                        .any(|s| s.conversation_id.as_str() == conv.as_str())
            })
            .map(|(conv, _)| conv.clone())
            .collect();
        let keep = self
            .shared
            .failover
            .as_ref()
            .is_some_and(|f| f.resume_unlisted);
        for conv in &unknown {
            // `hello` leaves out a chat the agent accepted and holds.
            self.metrics().error("chat_missing_from_hello/agent");
            if hello
                .offers
                .iter()
                .any(|o| o.conversation_id.as_str() == conv.as_str())
            {
                // ...and offers it again.
                self.metrics().error("accepted_chat_offered_again/agent");
            }
            if keep {
                // `--resume-unlisted`: carry on with it regardless.
                if !self.resuming(conv) {
                    let have = self.shared.tracker.contiguous(conv, Who::Agent(&self.id));
                    if !self.resume(conv, have).await {
                        return false;
                    }
                }
            } else {
                // What a client that trusts `hello` does: the chat is gone.
                self.chats.remove(conv);
                self.update_free();
            }
        }
        for summary in &hello.conversations {
            let conv = summary.conversation_id.to_string();
            if !self.chats.get(&conv).is_some_and(|c| c.accepted) || self.resuming(&conv) {
                continue;
            }
            let have = self.shared.tracker.contiguous(&conv, Who::Agent(&self.id));
            if summary.last_seq > have && !self.resume(&conv, have).await {
                return false;
            }
        }
        // Offers held but not yet answered that `hello` no longer lists were
        // withdrawn while the socket was away (the event was missed).
        let vanished: Vec<String> = self
            .chats
            .iter()
            .filter(|(conv, chat)| {
                !chat.accepted
                    && !hello
                        .offers
                        .iter()
                        .any(|o| o.conversation_id.as_str() == conv.as_str())
                    && !hello
                        .conversations
                        .iter()
                        .any(|s| s.conversation_id.as_str() == conv.as_str())
                    && !self.requests.values().any(
                        |o| matches!(&o.request, Request::Accept { conv: c, .. } if c == *conv),
                    )
            })
            .map(|(conv, _)| conv.clone())
            .collect();
        for conv in vanished {
            self.shared.tracker.offer_ended(&conv, &self.id, false);
            self.chats.remove(&conv);
            self.update_free();
        }
        for offer in hello.offers {
            if !self.chats.contains_key(offer.conversation_id.as_str()) {
                self.on_offer(offer);
            }
        }
        let available = hello
            .agent_state
            .as_ref()
            .is_some_and(|s| s.state == AgentState::Available);
        if !available && !self.stopping {
            let command = json!({"type": "set_state", "state": "available"});
            if !self.request(Request::SetState, command).await {
                return false;
            }
        }
        self.check_resumed();
        true
    }

    async fn fire_timers(&mut self) -> bool {
        let now = Instant::now();
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(action) = self.actions.remove(&key) else {
                continue;
            };
            let sent = match action {
                // The offer went away meanwhile (withdrawn, or gone by a
                // reconnect's `hello`): nothing to accept.
                Action::Accept(conv) if !self.chats.contains_key(&conv) => true,
                Action::Accept(conv) => {
                    let command = json!({"type": "accept", "conversation_id": conv});
                    self.request(
                        Request::Accept {
                            conv,
                            scheduled: crate::stats::latency_origin(at, Instant::now()),
                        },
                        command,
                    )
                    .await
                }
                Action::SetAvailable => {
                    let command = json!({"type": "set_state", "state": "available"});
                    self.request(Request::SetState, command).await
                }
                Action::WrapUp(conv) => {
                    let command =
                        json!({"type": "wrap_up", "conversation_id": conv, "reason": "resolved"});
                    self.request(Request::WrapUp(conv), command).await
                }
                Action::Conference(conv) => match self.shared.conference_target(self.index) {
                    Some(target) => {
                        let command =
                            json!({"type": "conference", "conversation_id": conv, "agent": target});
                        self.request(Request::Conference, command).await
                    }
                    None => true,
                },
                Action::End(conv) => self.end(conv).await,
                Action::Retry(id) => match self.delayed.remove(&id) {
                    Some(outstanding) => self.resend(id, outstanding).await,
                    None => true,
                },
                Action::TailResume(conv) => {
                    match self.shared.tracker.tail_gap(&conv, Who::Agent(&self.id)) {
                        Some(have) if !self.resuming(&conv) => {
                            Metrics::bump(&self.metrics().counters.gap_resumes);
                            self.resume(&conv, have).await
                        }
                        _ => true,
                    }
                }
            };
            if !sent {
                return false;
            }
        }
        true
    }

    async fn end(&mut self, conv: String) -> bool {
        if let Some(chat) = self.chats.get_mut(&conv) {
            chat.done_talking = true;
        }
        let command = json!({"type": "end", "conversation_id": conv});
        self.request(Request::End(conv), command).await
    }

    async fn reply(&mut self, conv: &str, to_seq: u64, scheduled: Instant) -> bool {
        let client_msg_id = format!("a{}-{to_seq}", self.index);
        self.shared
            .tracker
            .register_send(conv, &client_msg_id, scheduled, false);
        Metrics::bump(&self.metrics().counters.sent_agent);
        let text = self.shared.text("reply");
        let command = json!({"type": "send", "conversation_id": conv, "text": text, "client_msg_id": client_msg_id});
        self.request(
            Request::Send {
                conv: conv.to_owned(),
                client_msg_id,
            },
            command,
        )
        .await
    }

    async fn storm(&mut self) -> bool {
        let owned: Vec<String> = self
            .chats
            .iter()
            .filter(|(_, chat)| chat.accepted && chat.owner && !chat.done_talking)
            .map(|(conv, _)| conv.clone())
            .collect();
        for conv in owned {
            let client_msg_id = format!("storm-{}", self.index);
            self.shared
                .tracker
                .register_send(&conv, &client_msg_id, Instant::now(), false);
            Metrics::bump(&self.metrics().counters.sent_agent);
            let command = json!({"type": "send", "conversation_id": conv, "text": "storm: while you were away", "client_msg_id": client_msg_id});
            if !self
                .request(
                    Request::Send {
                        conv,
                        client_msg_id,
                    },
                    command,
                )
                .await
            {
                return false;
            }
        }
        true
    }

    fn on_offer(&mut self, offer: Offer) {
        let now = Instant::now();
        let conv = offer.conversation_id.to_string();
        let customer_n = offer
            .customer
            .name
            .strip_prefix('c')
            .and_then(|n| n.parse().ok());
        let let_expire = offer.kind == OfferKind::New
            && self.shared.workload.rona_share > 0.0
            && rand::random::<f64>() < self.shared.workload.rona_share;
        self.shared
            .tracker
            .on_offer(&self.id, &offer, customer_n, let_expire);
        let offer_max_seq = offer.messages.iter().map(|m| m.seq).max().unwrap_or(0);
        self.chats.insert(
            conv.clone(),
            Chat {
                kind: offer.kind,
                offer_max_seq,
                accepted: false,
                owner: false,
                plan: Plan::Plain,
                replies: 0,
                answered: Default::default(),
                done_talking: false,
            },
        );
        self.update_free();
        if !let_expire {
            self.schedule(now + self.shared.workload.think, Action::Accept(conv));
        }
    }

    /// Handles one frame; `false` ends the agent.
    async fn on_frame(
        &mut self,
        frame: ServerFrame,
        ready: &mut Option<mpsc::Sender<anyhow::Result<()>>>,
    ) -> bool {
        let now = Instant::now();
        match frame {
            ServerFrame::Hello(hello) => {
                if self.reconnecting.is_some() {
                    return self.on_rehello(hello, ready).await;
                }
                let command = json!({"type": "set_state", "state": "available"});
                return self.request(Request::SetState, command).await;
            }
            ServerFrame::Ack(ack) => return self.on_ack(ack, ready).await,
            ServerFrame::Error(error) => {
                let retry_after = client::retry_delay(&error);
                let Some((id, outstanding)) = error
                    .request_id
                    .and_then(|id| self.requests.remove(&id).map(|o| (id, o)))
                else {
                    self.metrics()
                        .error(&format!("{}/unmatched", error.code.as_str()));
                    return true;
                };
                self.metrics().error(&format!(
                    "{}/{}",
                    error.code.as_str(),
                    outstanding.request.name()
                ));
                if error.code == ErrorCode::Unavailable
                    && matches!(outstanding.request, Request::Send { .. })
                {
                    self.metrics().answer(outstanding.last_sent, false);
                }
                if error.code == ErrorCode::Unavailable && outstanding.may_retry() {
                    // `unavailable` means retry: same command, same ids.
                    self.delayed.insert(id.clone(), outstanding);
                    self.schedule(now + retry_after, Action::Retry(id));
                    return true;
                }
                match outstanding.request {
                    Request::Accept { conv, .. } => {
                        self.shared.tracker.offer_ended(&conv, &self.id, false);
                        self.chats.remove(&conv);
                        self.update_free();
                    }
                    Request::Send {
                        conv,
                        client_msg_id,
                    } => self
                        .shared
                        .tracker
                        .send_result(&conv, &client_msg_id, false),
                    Request::Resume(conv) => {
                        self.shared
                            .tracker
                            .set_resume(&conv, Who::Agent(&self.id), false);
                        self.check_resumed();
                    }
                    Request::SetState => {
                        // e.g. rona -> idle refused while stopping: nothing to undo.
                    }
                    Request::WrapUp(conv) => {
                        // Nothing owed after all (an automatic wrap-up won).
                        self.chats.remove(&conv);
                        self.shared.tracker.wrapped_up(&conv, &self.id);
                        self.update_free();
                    }
                    Request::End(_) | Request::Transfer(_) | Request::Conference => {}
                }
            }
            ServerFrame::Offer(offer) => self.on_offer(offer),
            ServerFrame::OfferWithdrawn(withdrawn) => {
                let conv = withdrawn.conversation_id.to_string();
                self.shared.tracker.offer_ended(&conv, &self.id, false);
                if self.chats.get(&conv).is_some_and(|chat| !chat.accepted) {
                    self.chats.remove(&conv);
                }
                if withdrawn.reason == switchboard_proto::model::WithdrawReason::Rona {
                    Metrics::bump(&self.metrics().counters.ronas);
                }
                self.update_free();
            }
            ServerFrame::AgentState(state) => {
                self.available = state.state == AgentState::Available;
                if state.state == AgentState::Rona && !self.stopping {
                    self.schedule(now + self.shared.workload.think, Action::SetAvailable);
                }
                self.update_free();
            }
            ServerFrame::Message(message) => {
                self.shared
                    .tracker
                    .on_message(Who::Agent(&self.id), &message);
                let conv = message.conversation_id.to_string();
                // `failover`: a live event past a gap (events lost while the
                // conversation moved): fill it.
                if self.shared.failover.is_some()
                    && self.chats.get(&conv).is_some_and(|c| c.accepted)
                    && !self.resuming(&conv)
                {
                    let have = self.shared.tracker.contiguous(&conv, Who::Agent(&self.id));
                    if message.seq > have + 1 {
                        Metrics::bump(&self.metrics().counters.gap_resumes);
                        if !self.resume(&conv, have).await {
                            return false;
                        }
                    }
                }
                let answer = message.from.role == Role::Customer
                    && message.seq > 1
                    && self.chats.get_mut(&conv).is_some_and(|c| {
                        c.accepted && c.owner && !c.done_talking && c.answered.insert(message.seq)
                    });
                if answer {
                    if !self.reply(&conv, message.seq, now).await {
                        return false;
                    }
                    let last = message.text.starts_with("last");
                    let Some(chat) = self.chats.get_mut(&conv) else {
                        return true;
                    };
                    chat.replies += 1;
                    if last {
                        return self.end(conv).await;
                    }
                    if chat.plan == Plan::Transfer && chat.replies == 1 {
                        chat.done_talking = true;
                        let queue = self.shared.queue.clone();
                        let command = json!({"type": "transfer", "conversation_id": conv, "to": {"queue": queue}});
                        return self.request(Request::Transfer(conv), command).await;
                    }
                }
            }
            ServerFrame::Conversation(summary) => {
                let conv = summary.conversation_id.to_string();
                if matches!(
                    summary.state,
                    ConversationState::Ended | ConversationState::Closed
                ) && self.chats.contains_key(&conv)
                {
                    self.shared
                        .tracker
                        .set_expected(&conv, Who::Agent(&self.id), summary.last_seq);
                    if let Some(chat) = self.chats.get_mut(&conv) {
                        chat.done_talking = true;
                    }
                    if self.shared.failover.is_some() {
                        self.schedule(now + TAIL_RESUME_AFTER, Action::TailResume(conv));
                    }
                }
            }
            ServerFrame::WrapUpRequired(required) => {
                let conv = required.conversation_id.to_string();
                // Sent again after `hello` on a new socket: one wrap-up only.
                let owed_already = self
                    .requests
                    .values()
                    .chain(self.delayed.values())
                    .any(|o| matches!(&o.request, Request::WrapUp(c) if *c == conv))
                    || self
                        .actions
                        .values()
                        .any(|a| matches!(a, Action::WrapUp(c) if *c == conv));
                if owed_already {
                    return true;
                }
                self.chats.entry(conv.clone()).or_insert(Chat {
                    kind: OfferKind::New,
                    offer_max_seq: 0,
                    accepted: true,
                    owner: false,
                    plan: Plan::Plain,
                    replies: 0,
                    answered: Default::default(),
                    done_talking: true,
                });
                self.schedule(now, Action::WrapUp(conv));
            }
            ServerFrame::Typing(_) | ServerFrame::Notice(_) | ServerFrame::QueueStatus(_) => {}
            ServerFrame::Reconnect(_) => {
                if self.shared.failover.is_some() {
                    // A draining node: go to another one and resume.
                    self.broken = true;
                    return true;
                }
                self.metrics().error("reconnect_requested");
                return false;
            }
        }
        true
    }

    async fn on_ack(
        &mut self,
        ack: Ack,
        ready: &mut Option<mpsc::Sender<anyhow::Result<()>>>,
    ) -> bool {
        let Some(outstanding) = self.requests.remove(&ack.request_id) else {
            return true;
        };
        if matches!(outstanding.request, Request::Send { .. }) {
            self.metrics().answer(outstanding.last_sent, true);
        }
        match outstanding.request {
            Request::SetState => {
                self.available = ack.state == Some(AgentState::Available);
                self.update_free();
                if self.available {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(())).await;
                    }
                }
            }
            Request::Accept { conv, scheduled } => {
                self.metrics().accept_active.record(scheduled.elapsed());
                Metrics::bump(&self.metrics().counters.accepts);
                self.shared.tracker.offer_ended(&conv, &self.id, true);
                let Some(summary) = ack.conversation else {
                    return true;
                };
                let owner = summary
                    .owner
                    .as_ref()
                    .is_some_and(|o| o.as_str() == self.id);
                let workload = self.shared.workload.clone();
                let Some(chat) = self.chats.get_mut(&conv) else {
                    return true;
                };
                chat.accepted = true;
                chat.owner = owner;
                let resume_from = chat.offer_max_seq;
                if owner && chat.kind == OfferKind::New {
                    let draw = rand::random::<f64>();
                    chat.plan = if draw < workload.transfer_share {
                        Plan::Transfer
                    } else if draw < workload.transfer_share + workload.conference_share {
                        Plan::Conference
                    } else {
                        Plan::Plain
                    };
                }
                let plan = chat.plan;
                if summary.last_seq > resume_from {
                    self.shared
                        .tracker
                        .set_resume(&conv, Who::Agent(&self.id), true);
                    let command = json!({"type": "resume", "conversation_id": conv, "after_seq": resume_from});
                    if !self.request(Request::Resume(conv.clone()), command).await {
                        return false;
                    }
                }
                if owner {
                    if plan == Plan::Conference {
                        self.schedule(Instant::now(), Action::Conference(conv.clone()));
                    }
                    if workload.messages == 0 && workload.agents_end {
                        self.schedule(Instant::now(), Action::End(conv));
                    }
                }
            }
            Request::Send {
                conv,
                client_msg_id,
            } => self.shared.tracker.send_result(&conv, &client_msg_id, true),
            Request::End(conv) | Request::Transfer(conv) => {
                if let Some(summary) = &ack.conversation {
                    self.shared
                        .tracker
                        .set_expected(&conv, Who::Agent(&self.id), summary.last_seq);
                }
                if summary_is_transfer(&ack) {
                    Metrics::bump(&self.metrics().counters.transfers);
                }
            }
            Request::Conference => Metrics::bump(&self.metrics().counters.conferences),
            Request::WrapUp(conv) => {
                Metrics::bump(&self.metrics().counters.wrap_ups);
                self.chats.remove(&conv);
                self.shared.tracker.wrapped_up(&conv, &self.id);
                self.update_free();
            }
            Request::Resume(conv) => {
                self.shared
                    .tracker
                    .set_resume(&conv, Who::Agent(&self.id), false);
                self.check_resumed();
            }
        }
        true
    }
}

/// A transfer's ack shows the conversation offered or queued again.
fn summary_is_transfer(ack: &Ack) -> bool {
    ack.conversation.as_ref().is_some_and(|summary| {
        matches!(
            summary.state,
            ConversationState::Offered | ConversationState::Queued
        )
    })
}
