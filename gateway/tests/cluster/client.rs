//! Clients for cluster tests: REST calls to any node, and WebSocket
//! participants that survive their node: when the socket closes (a kill, a
//! drain's `reconnect`, a lost pub/sub connection) or a node stops
//! answering, they reconnect to another node and `resume` with `after_seq`.
//!
//! Every participant keeps a transcript per conversation (seq -> message)
//! and records what breaks the protocol's promises: a seq received twice
//! live on one session, a live seq out of order, a live seq that skips
//! ahead of what the client has (the session must fill gaps itself), two
//! different messages under one seq.

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_gateway::auth::TokenSigner;
use switchboard_proto::AgentId;
use tokio::sync::mpsc;

use crate::harness::TOKEN_SECRET;

/// One wait for one frame or reply on a healthy connection.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a participant keeps trying to get back in after losing its node.
pub const RECONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// A reply not received within this is treated as a lost node (a paused
/// process answers nothing): the participant reconnects elsewhere.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(4);

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// REST.

fn http() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish()
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// `GET` (optionally with a bearer token): (status, body); status 0 when the
/// node did not answer.
pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = http().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(mut response) => {
            let body = response
                .body()
                .limit(16 * 1024 * 1024)
                .await
                .unwrap_or_default();
            (response.status().as_u16(), parse(&body))
        }
        Err(error) => (0, json!({"transport": error.to_string()})),
    }
}

/// `POST` JSON: (status, body); status 0 when the node did not answer.
pub async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    match http().post(format!("{base}{path}")).send_json(body).await {
        Ok(mut response) => {
            let body = response.body().await.unwrap_or_default();
            (response.status().as_u16(), parse(&body))
        }
        Err(error) => (0, json!({"transport": error.to_string()})),
    }
}

/// `POST` JSON with a bearer token: (status, body).
pub async fn post_as(base: &str, path: &str, body: &Value, token: &str) -> (u16, Value) {
    match http()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .send_json(body)
        .await
    {
        Ok(mut response) => {
            let body = response.body().await.unwrap_or_default();
            (response.status().as_u16(), parse(&body))
        }
        Err(error) => (0, json!({"transport": error.to_string()})),
    }
}

/// A token for an agent, signed with the shared secret (no login: looking
/// things up changes no agent's state).
pub fn token_for(agent: &str) -> String {
    TokenSigner::new(TOKEN_SECRET.as_bytes(), Duration::from_secs(3600))
        .issue_agent(&AgentId::new(agent))
}

/// A supervisor's token (sam).
pub fn supervisor() -> String {
    token_for("sam")
}

/// Logs an agent in on `base` (password `pw-<username>`), retrying while the
/// node answers `unavailable`.
pub async fn login(base: &str, username: &str) -> String {
    let body = json!({"username": username, "password": format!("pw-{username}")});
    let start = Instant::now();
    loop {
        let (status, reply) = post(base, "/api/v1/agent/login", &body).await;
        if status == 200 {
            return reply["token"].as_str().expect("token").to_owned();
        }
        assert!(
            (status == 503 || status == 0) && start.elapsed() < RECONNECT_DEADLINE,
            "login {username} on {base}: {status} {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts a chat on `base`: (conversation id, customer token). Retries
/// `unavailable` (a new chat is not idempotent, but a 503 created nothing).
pub async fn start_chat(base: &str, queue: &str, name: &str, text: &str) -> (String, String) {
    let body = json!({"queue": queue, "customer": {"name": name, "email": "c@example.com"}, "message": text});
    let start = Instant::now();
    loop {
        let (status, reply) = post(base, "/api/v1/chats", &body).await;
        if status == 201 {
            return (
                reply["conversation_id"].as_str().expect("id").to_owned(),
                reply["token"].as_str().expect("token").to_owned(),
            );
        }
        assert!(
            status == 503 && start.elapsed() < RECONNECT_DEADLINE,
            "start chat on {base}: {status} {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A conversation's record as a supervisor sees it, from `base`.
pub async fn record(base: &str, conversation: &str) -> (u16, Value) {
    get(
        base,
        &format!("/api/v1/conversations/{conversation}"),
        Some(&supervisor()),
    )
    .await
}

// ---------------------------------------------------------------------------
// One WebSocket connection.

#[derive(Debug, Clone, PartialEq)]
pub enum WsError {
    /// The server closed the socket, or the connection broke.
    Closed(String),
    /// Nothing arrived in time.
    Timeout,
}

/// One WebSocket connection. A task of its own reads frames (answering
/// pings, so an idle participant stays connected) and writes what the test
/// sends; the test reads frames from a channel.
pub struct Ws {
    out: mpsc::UnboundedSender<ws::Message>,
    frames: mpsc::UnboundedReceiver<Result<Value, String>>,
    closed: Option<String>,
}

impl Ws {
    /// Connects and returns the connection and its `hello`.
    pub async fn connect(base: &str, token: &str) -> Result<(Ws, Value), String> {
        let url = format!("{}/api/v1/ws?token={token}", base.replacen("http", "ws", 1));
        let connecting = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish()
            .ws(url)
            .protocols(["switchboard.v1.json"])
            .max_frame_size(16 * 1024 * 1024)
            .connect();
        let (_response, mut socket) =
            match tokio::time::timeout(Duration::from_secs(5), connecting).await {
                Ok(Ok(connected)) => connected,
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err("connect timed out".into()),
            };
        let (out, mut out_rx) = mpsc::unbounded_channel::<ws::Message>();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        actix_rt::spawn(async move {
            loop {
                tokio::select! {
                    outgoing = out_rx.recv() => match outgoing {
                        Some(message) => {
                            if let Err(error) = socket.send(message).await {
                                let _ = frames_tx.send(Err(format!("send failed: {error}")));
                                break;
                            }
                        }
                        None => {
                            let _ = socket.send(ws::Message::Close(None)).await;
                            break;
                        }
                    },
                    incoming = socket.next() => match incoming {
                        Some(Ok(ws::Frame::Text(bytes))) | Some(Ok(ws::Frame::Binary(bytes))) => {
                            let frame = serde_json::from_slice::<Value>(&bytes)
                                .map_err(|error| format!("undecodable frame: {error}"));
                            if frames_tx.send(frame).is_err() {
                                break;
                            }
                        }
                        Some(Ok(ws::Frame::Ping(payload))) => {
                            let _ = socket.send(ws::Message::Pong(payload)).await;
                        }
                        Some(Ok(ws::Frame::Close(reason))) => {
                            let _ = frames_tx.send(Err(format!("closed by server: {reason:?}")));
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) => {
                            let _ = frames_tx.send(Err(format!("websocket error: {error}")));
                            break;
                        }
                        None => {
                            let _ = frames_tx.send(Err("connection ended".into()));
                            break;
                        }
                    }
                }
            }
        });
        let mut connection = Ws {
            out,
            frames,
            closed: None,
        };
        match connection.recv(WAIT).await {
            Ok(hello) if hello["type"] == "hello" => Ok((connection, hello)),
            Ok(other) => Err(format!("first frame is not hello: {other}")),
            Err(error) => Err(format!("no hello: {error:?}")),
        }
    }

    /// The next frame, within `limit`.
    pub async fn recv(&mut self, limit: Duration) -> Result<Value, WsError> {
        if let Some(reason) = &self.closed {
            return Err(WsError::Closed(reason.clone()));
        }
        match tokio::time::timeout(limit, self.frames.recv()).await {
            Err(_) => Err(WsError::Timeout),
            Ok(Some(Ok(frame))) => Ok(frame),
            Ok(Some(Err(reason))) => {
                self.closed = Some(reason.clone());
                Err(WsError::Closed(reason))
            }
            Ok(None) => {
                self.closed = Some("reader ended".into());
                Err(WsError::Closed("reader ended".into()))
            }
        }
    }

    pub fn send(&mut self, value: &Value) -> Result<(), WsError> {
        if let Some(reason) = &self.closed {
            return Err(WsError::Closed(reason.clone()));
        }
        self.out
            .send(ws::Message::Text(value.to_string().into()))
            .map_err(|_| WsError::Closed("writer ended".into()))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }
}

// ---------------------------------------------------------------------------
// Transcripts.

/// How a message reached a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Live,
    /// A `resume` replay (or a live event during one: indistinguishable).
    Replay,
    /// An offer's thread.
    Offer,
}

/// One participant's view of one conversation.
#[derive(Default, Debug)]
pub struct Transcript {
    /// seq -> the message as first received.
    pub messages: BTreeMap<u64, Value>,
    /// Seqs received live on the current session.
    live_seen: BTreeSet<u64>,
    live_max: u64,
    /// What the client is known to have a right to skip to on this session
    /// (hello's `last_seq`): a live message right after it is no skip.
    baseline: u64,
    /// An offer's thread came in and no live message since: the thread may
    /// be older than the first live message (messages sent between the
    /// offer and the accept reach the agent by `resume`), so that first
    /// live message may skip.
    after_offer: bool,
    pub violations: Vec<String>,
}

impl Transcript {
    /// Highest n such that seqs 1..=n are all here.
    pub fn contiguous(&self) -> u64 {
        let mut n = 0;
        while self.messages.contains_key(&(n + 1)) {
            n += 1;
        }
        n
    }

    pub fn max_seq(&self) -> u64 {
        self.messages.keys().next_back().copied().unwrap_or(0)
    }

    pub fn missing(&self, upto: u64) -> Vec<u64> {
        (1..=upto)
            .filter(|seq| !self.messages.contains_key(seq))
            .collect()
    }

    pub fn texts(&self) -> Vec<String> {
        self.messages
            .values()
            .map(|message| message["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn new_session(&mut self, hello_last_seq: u64) {
        self.live_seen.clear();
        self.live_max = 0;
        self.baseline = hello_last_seq;
    }

    fn observe(&mut self, conversation: &str, message: &Value, route: Route) {
        let Some(seq) = message["seq"].as_u64() else {
            self.violations
                .push(format!("message without seq: {message}"));
            return;
        };
        let expected_id = format!("{conversation}-{seq}");
        if message["id"] != expected_id.as_str() {
            self.violations.push(format!(
                "seq {seq}: id {} (expected {expected_id})",
                message["id"]
            ));
        }
        let have_before = self.contiguous().max(self.baseline);
        match self.messages.get(&seq) {
            Some(previous) => {
                if previous["id"] != message["id"]
                    || previous["text"] != message["text"]
                    || previous["from"] != message["from"]
                {
                    self.violations.push(format!(
                        "seq {seq} twice with different content: {previous} vs {message}"
                    ));
                }
            }
            None => {
                self.messages.insert(seq, message.clone());
            }
        }
        if route == Route::Offer {
            self.after_offer = true;
        }
        if route != Route::Live {
            return;
        }
        let after_offer = std::mem::take(&mut self.after_offer);
        if !self.live_seen.insert(seq) {
            self.violations
                .push(format!("seq {seq} received twice live on one session"));
        } else if seq < self.live_max {
            self.violations.push(format!(
                "seq {seq} received live after seq {} (out of order)",
                self.live_max
            ));
        } else if seq > have_before + 1 && !after_offer {
            // The session fills gaps itself: a live message never skips
            // past what the client has or what hello said it could resume.
            self.violations.push(format!(
                "live seq {seq} skipped ahead (client had up to {have_before})"
            ));
        }
        self.live_max = self.live_max.max(seq);
    }
}

// ---------------------------------------------------------------------------
// Offers seen by every agent of a test (double-offer detection).

#[derive(Debug, Clone)]
struct HeldOffer {
    agent: String,
    offer_id: String,
    expires_at_ms: i64,
}

/// Offers outstanding per conversation, shared by every agent of a test.
#[derive(Default, Debug)]
pub struct OfferBook {
    held: HashMap<String, Vec<HeldOffer>>,
    pub offers_seen: u64,
    pub violations: Vec<String>,
}

pub type SharedOffers = Rc<RefCell<OfferBook>>;

fn parse_ms(timestamp: &Value) -> i64 {
    // RFC 3339 with milliseconds, UTC: "2026-11-23T20:31:05.123Z".
    let Some(text) = timestamp.as_str() else {
        return i64::MAX;
    };
    let parse = || -> Option<i64> {
        let (date, time) = text.trim_end_matches('Z').split_once('T')?;
        let mut date_parts = date.split('-').map(|part| part.parse::<i64>().ok());
        let (year, month, day) = (
            date_parts.next()??,
            date_parts.next()??,
            date_parts.next()??,
        );
        let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
        let mut time_parts = hms.split(':').map(|part| part.parse::<i64>().ok());
        let (hour, minute, second) = (
            time_parts.next()??,
            time_parts.next()??,
            time_parts.next()??,
        );
        let millis: i64 = millis.parse().ok()?;
        // Days from civil (Howard Hinnant's algorithm).
        let year_adjusted = if month <= 2 { year - 1 } else { year };
        let era = year_adjusted.div_euclid(400);
        let year_of_era = year_adjusted - era * 400;
        let month_index = (month + 9) % 12;
        let day_of_year = (153 * month_index + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
    };
    parse().unwrap_or(i64::MAX)
}

impl OfferBook {
    fn offered(&mut self, agent: &str, offer: &Value) {
        let conversation = offer["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let offer_id = offer["offer_id"].as_str().unwrap_or_default().to_owned();
        let now = now_ms();
        let held = self.held.entry(conversation.clone()).or_default();
        if held.iter().any(|h| h.offer_id == offer_id) {
            return; // the same offer again (hello after a reconnect)
        }
        self.offers_seen += 1;
        // Outstanding elsewhere: not ended and not past its expiry (a
        // little slack: timers fire at, not before, expires_at).
        held.retain(|h| h.expires_at_ms + 50 > now);
        if let Some(other) = held.iter().find(|h| h.agent != agent) {
            self.violations.push(format!(
                "{conversation} offered to {agent} ({offer_id}) while {} held {}",
                other.agent, other.offer_id
            ));
        }
        held.push(HeldOffer {
            agent: agent.to_owned(),
            offer_id,
            expires_at_ms: parse_ms(&offer["expires_at"]),
        });
    }

    /// The agent's offer for the conversation ended (accepted, withdrawn).
    fn ended(&mut self, agent: &str, conversation: &str) {
        if let Some(held) = self.held.get_mut(conversation) {
            held.retain(|h| h.agent != agent);
        }
    }

    /// After a reconnect, the agent holds exactly the offers in its hello.
    fn held_now(&mut self, agent: &str, offers: &[Value]) {
        let keep: BTreeSet<&str> = offers
            .iter()
            .filter_map(|offer| offer["offer_id"].as_str())
            .collect();
        for held in self.held.values_mut() {
            held.retain(|h| h.agent != agent || keep.contains(h.offer_id.as_str()));
        }
    }
}

// ---------------------------------------------------------------------------
// Participants.

/// Who a participant is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Customer { conversation: String },
    Agent { id: String },
}

/// An acknowledged `send`.
#[derive(Clone, Debug)]
pub struct Acked {
    pub conversation: String,
    pub client_msg_id: String,
    pub seq: u64,
    pub text: String,
}

/// A customer or agent that reconnects to another node when its own goes
/// away and resumes its conversations.
pub struct Party {
    pub role: Role,
    pub token: String,
    /// Every node's base URL; `current` is the one connected to.
    nodes: Vec<String>,
    pub current: usize,
    ws: Option<Ws>,
    buffered: VecDeque<Value>,
    pub transcripts: BTreeMap<String, Transcript>,
    /// Conversations with a `resume` in flight.
    resuming: BTreeSet<String>,
    pub acked: Vec<Acked>,
    pub hello: Value,
    /// Sessions opened (1 = never reconnected).
    pub sessions: u64,
    /// `reconnect` frames received.
    pub reconnect_frames: u64,
    /// Why sessions ended (for failure messages).
    pub session_ends: Vec<String>,
    next_request: u64,
    next_message: u64,
    offers: Option<SharedOffers>,
    /// `reconnect` asked us to wait this long before connecting again.
    reconnect_after: Option<Duration>,
}

impl Party {
    fn new(role: Role, token: String, nodes: Vec<String>, current: usize) -> Party {
        Party {
            role,
            token,
            nodes,
            current,
            ws: None,
            buffered: VecDeque::new(),
            transcripts: BTreeMap::new(),
            resuming: BTreeSet::new(),
            acked: Vec::new(),
            hello: Value::Null,
            sessions: 0,
            reconnect_frames: 0,
            session_ends: Vec::new(),
            next_request: 0,
            next_message: 0,
            offers: None,
            reconnect_after: None,
        }
    }

    /// Starts a chat on node `at` and connects the customer there.
    pub async fn customer(
        nodes: &[String],
        at: usize,
        queue: &str,
        name: &str,
        text: &str,
    ) -> Party {
        let (conversation, token) = start_chat(&nodes[at], queue, name, text).await;
        Party::customer_with_token(nodes, at, conversation, token).await
    }

    /// Connects the customer of an existing chat on node `at`.
    pub async fn customer_with_token(
        nodes: &[String],
        at: usize,
        conversation: String,
        token: String,
    ) -> Party {
        let mut party = Party::new(
            Role::Customer {
                conversation: conversation.clone(),
            },
            token,
            nodes.to_vec(),
            at,
        );
        party.transcripts.entry(conversation).or_default();
        party.connect_somewhere().await;
        party
    }

    /// Logs an agent in on node `at` and connects it there (idle).
    pub async fn agent(nodes: &[String], at: usize, username: &str) -> Party {
        Party::agent_logged_in_on(nodes, at, at, username).await
    }

    /// Logs an agent in on node `login_at` (its actor starts there) and
    /// connects it on node `at`.
    pub async fn agent_logged_in_on(
        nodes: &[String],
        login_at: usize,
        at: usize,
        username: &str,
    ) -> Party {
        let token = login(&nodes[login_at], username).await;
        let mut party = Party::new(
            Role::Agent {
                id: username.to_owned(),
            },
            token,
            nodes.to_vec(),
            at,
        );
        party.connect_somewhere().await;
        party
    }

    /// Logs in, connects on node `at` and sets the agent available.
    pub async fn available_agent(nodes: &[String], at: usize, username: &str) -> Party {
        let mut party = Party::agent(nodes, at, username).await;
        party.set_available().await;
        party
    }

    pub async fn set_available(&mut self) -> Value {
        self.ok(json!({"type": "set_state", "state": "available"}))
            .await
    }

    /// Shares an offer book (double-offer detection) with other agents.
    pub fn track_offers(&mut self, book: &SharedOffers) {
        self.offers = Some(book.clone());
    }

    /// The token this participant connects with.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn conversation(&self) -> &str {
        match &self.role {
            Role::Customer { conversation } => conversation,
            Role::Agent { id } => panic!("agent {id} has no single conversation"),
        }
    }

    pub fn name(&self) -> String {
        match &self.role {
            Role::Customer { conversation } => format!("customer of {conversation}"),
            Role::Agent { id } => format!("agent {id}"),
        }
    }

    pub fn transcript(&self, conversation: &str) -> &Transcript {
        self.transcripts
            .get(conversation)
            .unwrap_or_else(|| panic!("{} has no transcript of {conversation}", self.name()))
    }

    /// Every violation this participant recorded, named.
    pub fn violations(&self) -> Vec<String> {
        let mut all = Vec::new();
        for (conversation, transcript) in &self.transcripts {
            for violation in &transcript.violations {
                all.push(format!("{} / {conversation}: {violation}", self.name()));
            }
        }
        all
    }

    pub fn is_connected(&self) -> bool {
        self.ws.as_ref().is_some_and(|ws| !ws.is_closed())
    }

    // -- connecting ---------------------------------------------------------

    /// Connects to `current`, or the next nodes in turn, until one takes the
    /// session; then resumes every conversation. Bounded.
    pub async fn connect_somewhere(&mut self) {
        let start = Instant::now();
        if let Some(wait) = self.reconnect_after.take() {
            tokio::time::sleep(wait).await;
        }
        let mut attempt = 0usize;
        let mut errors = Vec::new();
        loop {
            let index = (self.current + attempt) % self.nodes.len();
            match Ws::connect(&self.nodes[index], &self.token).await {
                Ok((ws, hello)) => {
                    self.current = index;
                    self.ws = Some(ws);
                    self.sessions += 1;
                    self.on_hello(hello);
                    match self.resume_all().await {
                        Ok(()) => return,
                        Err(error) => {
                            errors.push(format!("{}: resume: {error:?}", self.nodes[index]))
                        }
                    }
                }
                Err(error) => errors.push(format!("{}: {error}", self.nodes[index])),
            }
            attempt += 1;
            assert!(
                start.elapsed() < RECONNECT_DEADLINE,
                "{} could not reconnect within {RECONNECT_DEADLINE:?}: {:?}",
                self.name(),
                &errors[errors.len().saturating_sub(6)..]
            );
            // A short pause per failed attempt: a full round over the
            // nodes costs a few hundred milliseconds.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reconnects to a node other than the current one (its node is gone or
    /// paused).
    pub async fn reconnect_elsewhere(&mut self) {
        self.ws = None;
        self.current = (self.current + 1) % self.nodes.len();
        self.connect_somewhere().await;
    }

    /// Reconnects to node `at` on purpose (the "restart storm").
    pub async fn reconnect_to(&mut self, at: usize) {
        self.ws = None;
        self.current = at;
        self.connect_somewhere().await;
    }

    fn on_hello(&mut self, hello: Value) {
        for summary in hello["conversations"].as_array().into_iter().flatten() {
            let Some(id) = summary["conversation_id"].as_str() else {
                continue;
            };
            let last_seq = summary["last_seq"].as_u64().unwrap_or(0);
            self.transcripts
                .entry(id.to_owned())
                .or_default()
                .new_session(last_seq);
        }
        // Conversations not in hello (closed ones) get a fresh session too.
        let listed: BTreeSet<String> = hello["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|summary| summary["conversation_id"].as_str().map(str::to_owned))
            .collect();
        for (id, transcript) in self.transcripts.iter_mut() {
            if !listed.contains(id) {
                let have = transcript.contiguous();
                transcript.new_session(have);
            }
        }
        if let Role::Agent { id } = &self.role {
            let offers: Vec<Value> = hello["offers"].as_array().cloned().unwrap_or_default();
            if let Some(book) = &self.offers {
                book.borrow_mut().held_now(id, &offers);
            }
            for offer in offers {
                let mut frame = offer.clone();
                frame["type"] = json!("offer");
                self.observe(&frame);
                self.buffered.push_back(frame);
            }
        }
        self.hello = hello;
    }

    /// Resumes every conversation the hello lists (and every one this
    /// participant has a transcript of and that is still running), from
    /// what it has.
    async fn resume_all(&mut self) -> Result<(), WsError> {
        let mut targets: BTreeSet<String> = self.hello["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|summary| summary["conversation_id"].as_str().map(str::to_owned))
            .collect();
        if let Role::Customer { conversation } = &self.role {
            targets.insert(conversation.clone());
        }
        for conversation in targets {
            self.resume(&conversation).await?;
        }
        Ok(())
    }

    /// `resume` from the highest seq held without a gap, retrying while the
    /// cluster answers `unavailable`.
    pub async fn resume(&mut self, conversation: &str) -> Result<Value, WsError> {
        let start = Instant::now();
        loop {
            let after_seq = self
                .transcripts
                .entry(conversation.to_owned())
                .or_default()
                .contiguous();
            let command = match &self.role {
                Role::Customer { .. } => json!({"type": "resume", "after_seq": after_seq}),
                Role::Agent { .. } => {
                    json!({"type": "resume", "conversation_id": conversation, "after_seq": after_seq})
                }
            };
            self.resuming.insert(conversation.to_owned());
            let reply = self.request_once(command, REPLY_TIMEOUT).await;
            self.resuming.remove(conversation);
            let reply = reply?;
            if reply["type"] == "ack" {
                return Ok(reply);
            }
            if reply["code"] == "unavailable" && start.elapsed() < RECONNECT_DEADLINE {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            // forbidden / not_found: nothing to resume for this participant.
            return Ok(reply);
        }
    }

    // -- frames -------------------------------------------------------------

    /// Records what a frame tells the transcripts and the offer book.
    fn observe(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("message") => {
                let conversation = frame["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let route = if self.resuming.contains(&conversation) {
                    Route::Replay
                } else {
                    Route::Live
                };
                self.transcripts
                    .entry(conversation.clone())
                    .or_default()
                    .observe(&conversation, frame, route);
            }
            Some("offer") => {
                let conversation = frame["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let transcript = self.transcripts.entry(conversation.clone()).or_default();
                for message in frame["messages"].as_array().into_iter().flatten() {
                    transcript.observe(&conversation, message, Route::Offer);
                }
                if let (Some(book), Role::Agent { id }) = (&self.offers, &self.role) {
                    book.borrow_mut().offered(id, frame);
                }
            }
            Some("offer_withdrawn") => {
                if let (Some(book), Role::Agent { id }) = (&self.offers, &self.role) {
                    book.borrow_mut()
                        .ended(id, frame["conversation_id"].as_str().unwrap_or_default());
                }
            }
            Some("reconnect") => {
                self.reconnect_frames += 1;
                let after_ms = frame["after_ms"].as_u64().unwrap_or(500).min(5000);
                self.reconnect_after = Some(Duration::from_millis(after_ms));
            }
            _ => {}
        }
    }

    /// The next frame from the socket, observed; errors when the socket is
    /// closed or nothing came within `limit`.
    async fn next_frame(&mut self, limit: Duration) -> Result<Value, WsError> {
        let Some(ws) = self.ws.as_mut() else {
            return Err(WsError::Closed("not connected".into()));
        };
        match ws.recv(limit).await {
            Ok(frame) => {
                self.observe(&frame);
                Ok(frame)
            }
            Err(WsError::Closed(reason)) => {
                self.session_ends.push(reason.clone());
                self.ws = None;
                Err(WsError::Closed(reason))
            }
            Err(WsError::Timeout) => Err(WsError::Timeout),
        }
    }

    /// Sends a command and waits for its reply on this session only.
    pub async fn request_once(
        &mut self,
        mut command: Value,
        limit: Duration,
    ) -> Result<Value, WsError> {
        self.next_request += 1;
        let request_id = format!("r{}", self.next_request);
        command["request_id"] = json!(request_id);
        let Some(ws) = self.ws.as_mut() else {
            return Err(WsError::Closed("not connected".into()));
        };
        if let Err(WsError::Closed(reason)) = ws.send(&command) {
            // The server closed the socket (its close frame is not read yet):
            // this session is over.
            self.session_ends.push(reason.clone());
            self.ws = None;
            return Err(WsError::Closed(reason));
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.next_frame(left).await?;
            if matches!(frame["type"].as_str(), Some("ack") | Some("error"))
                && frame["request_id"] == request_id.as_str()
            {
                return Ok(frame);
            }
            self.buffered.push_back(frame);
        }
    }

    /// Sends a command and returns its reply, reconnecting (to another node
    /// when the reply does not come) and retrying while the socket closes,
    /// the node does not answer, or the cluster answers `unavailable`.
    /// Only for idempotent commands (`send` with its `client_msg_id`, state
    /// changes, accept of an offer the agent holds).
    pub async fn request(&mut self, command: Value) -> Value {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < RECONNECT_DEADLINE,
                "{}: {command} got no reply within {RECONNECT_DEADLINE:?}; ends: {:?}",
                self.name(),
                self.session_ends
            );
            if !self.is_connected() {
                self.connect_somewhere().await;
            }
            match self.request_once(command.clone(), REPLY_TIMEOUT).await {
                Ok(reply) if reply["code"] == "unavailable" => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(reply) => {
                    self.after_reply(&command, &reply);
                    return reply;
                }
                Err(WsError::Closed(_)) => {}
                Err(WsError::Timeout) => self.reconnect_elsewhere().await,
            }
        }
    }

    fn after_reply(&mut self, command: &Value, reply: &Value) {
        if reply["type"] != "ack" {
            return;
        }
        if command["type"] == "accept" {
            if let (Some(book), Role::Agent { id }) = (&self.offers, &self.role) {
                book.borrow_mut()
                    .ended(id, command["conversation_id"].as_str().unwrap_or_default());
            }
        }
    }

    /// A command that must succeed; returns the ack.
    pub async fn ok(&mut self, command: Value) -> Value {
        let reply = self.request(command.clone()).await;
        assert_eq!(
            reply["type"],
            "ack",
            "{}: {command} -> {reply}",
            self.name()
        );
        reply
    }

    /// A command that must fail with `code`.
    pub async fn fails(&mut self, command: Value, code: &str) -> Value {
        let reply = self.request(command.clone()).await;
        assert_eq!(
            reply["type"],
            "error",
            "{}: {command} -> {reply}",
            self.name()
        );
        assert_eq!(reply["code"], code, "{}: {command} -> {reply}", self.name());
        reply
    }

    /// Sends `text` to a conversation (customers: their own); retried until
    /// acknowledged (idempotent on its client_msg_id). Returns its seq.
    pub async fn say(&mut self, conversation: &str, text: &str) -> u64 {
        self.next_message += 1;
        let client_msg_id = format!("{}-{}", self.name().replace(' ', "_"), self.next_message);
        let command = match &self.role {
            Role::Customer { .. } => {
                json!({"type": "send", "text": text, "client_msg_id": client_msg_id})
            }
            Role::Agent { .. } => json!({
                "type": "send", "conversation_id": conversation, "text": text,
                "client_msg_id": client_msg_id
            }),
        };
        let ack = self.ok(command).await;
        let seq = ack["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("send ack without seq: {ack}"));
        self.acked.push(Acked {
            conversation: conversation.to_owned(),
            client_msg_id,
            seq,
            text: text.to_owned(),
        });
        seq
    }

    /// Sends several messages at once (a burst: every command goes out
    /// before any reply is read), then collects the acks; messages whose
    /// reply did not come (a closed session, `unavailable`) are sent again
    /// one by one with the same `client_msg_id`. Returns the seqs in order
    /// of the texts.
    pub async fn say_many(&mut self, conversation: &str, texts: &[String]) -> Vec<u64> {
        let mut pending: Vec<(String, String, Value)> = Vec::new();
        for text in texts {
            self.next_message += 1;
            let client_msg_id = format!("{}-{}", self.name().replace(' ', "_"), self.next_message);
            self.next_request += 1;
            let request_id = format!("r{}", self.next_request);
            let mut command = match &self.role {
                Role::Customer { .. } => {
                    json!({"type": "send", "text": text, "client_msg_id": client_msg_id})
                }
                Role::Agent { .. } => json!({
                    "type": "send", "conversation_id": conversation, "text": text,
                    "client_msg_id": client_msg_id
                }),
            };
            command["request_id"] = json!(request_id);
            if let Some(ws) = self.ws.as_mut() {
                let _ = ws.send(&command);
            }
            pending.push((request_id, client_msg_id, command));
        }
        let mut acks: HashMap<String, u64> = HashMap::new();
        let deadline = Instant::now() + WAIT;
        while acks.len() < pending.len() && Instant::now() < deadline && self.is_connected() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(frame) = self.next_frame(left).await else {
                break;
            };
            let answered = pending
                .iter()
                .find(|(request_id, _, _)| frame["request_id"] == request_id.as_str());
            match answered {
                Some((request_id, _, _)) if frame["type"] == "ack" => {
                    let seq = frame["seq"].as_u64().expect("ack seq");
                    acks.insert(request_id.clone(), seq);
                }
                Some(_) => {} // an error (rate_limited, unavailable): sent again below
                None => self.buffered.push_back(frame),
            }
        }
        let mut seqs = Vec::new();
        for ((request_id, client_msg_id, command), text) in pending.into_iter().zip(texts) {
            let seq = match acks.get(&request_id) {
                Some(seq) => *seq,
                None => {
                    let mut again = command.clone();
                    if let Some(object) = again.as_object_mut() {
                        object.remove("request_id");
                    }
                    let ack = self.ok(again).await;
                    ack["seq"].as_u64().expect("ack seq")
                }
            };
            self.acked.push(Acked {
                conversation: conversation.to_owned(),
                client_msg_id,
                seq,
                text: text.clone(),
            });
            seqs.push(seq);
        }
        seqs
    }

    /// Sends a command without waiting for its reply (the reply, if any,
    /// is buffered like an event); returns its request id.
    pub fn send_raw(&mut self, mut command: Value) -> String {
        self.next_request += 1;
        let request_id = format!("r{}", self.next_request);
        command["request_id"] = json!(request_id);
        if let Some(ws) = self.ws.as_mut() {
            let _ = ws.send(&command);
        }
        request_id
    }

    /// Waits for the next frame matching `wanted` (buffered ones first),
    /// reconnecting whenever the session closes (or, with `timeouts_move`,
    /// when nothing arrives for a while: the node may be paused). Bounded by
    /// `limit` overall.
    pub async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            if let Some(index) = self.buffered.iter().position(&wanted) {
                return self.buffered.remove(index).expect("index exists");
            }
            let left = limit.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "{}: no {what} within {limit:?}; buffered: {:?}; session ends: {:?}",
                self.name(),
                self.buffered,
                self.session_ends
            );
            if !self.is_connected() {
                self.connect_somewhere().await;
                continue;
            }
            match self.next_frame(left.min(Duration::from_secs(1))).await {
                Ok(frame) if wanted(&frame) => return frame,
                Ok(frame) => self.buffered.push_back(frame),
                Err(_) => {}
            }
        }
    }

    /// The next event of `kind` matching `wanted`.
    pub async fn event_where(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(kind, WAIT, |frame| frame["type"] == kind && wanted(frame))
            .await
    }

    /// Waits for the offer of a conversation and accepts it.
    pub async fn accept(&mut self, conversation: &str) -> Value {
        self.event_where("offer", |offer| offer["conversation_id"] == conversation)
            .await;
        self.ok(json!({"type": "accept", "conversation_id": conversation}))
            .await
    }

    /// Waits until this participant's transcript of `conversation` holds a
    /// message with `text` (received by any route), reconnecting as needed.
    pub async fn wait_text(&mut self, conversation: &str, text: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            if let Some(message) = self
                .transcripts
                .get(conversation)
                .and_then(|t| t.messages.values().find(|m| m["text"] == text))
            {
                return message.clone();
            }
            let left = limit.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "{}: message {text:?} of {conversation} not seen within {limit:?}; have {:?}; ends: {:?}",
                self.name(),
                self.transcripts.get(conversation).map(Transcript::texts),
                self.session_ends
            );
            if !self.is_connected() {
                self.connect_somewhere().await;
                continue;
            }
            if let Ok(frame) = self.next_frame(left.min(Duration::from_secs(1))).await {
                self.buffered.push_back(frame);
            }
        }
    }

    /// Waits until the transcript has every seq up to `seq`.
    pub async fn wait_seq(&mut self, conversation: &str, seq: u64, limit: Duration) {
        let start = Instant::now();
        loop {
            let have = self
                .transcripts
                .get(conversation)
                .map(Transcript::contiguous)
                .unwrap_or(0);
            if have >= seq {
                return;
            }
            let left = limit.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "{}: {conversation} has seqs up to {have}, not {seq}, after {limit:?}; missing {:?}; ends: {:?}",
                self.name(),
                self.transcripts.get(conversation).map(|t| t.missing(seq)),
                self.session_ends
            );
            if !self.is_connected() {
                self.connect_somewhere().await;
                continue;
            }
            match self.next_frame(left.min(Duration::from_secs(1))).await {
                Ok(frame) => self.buffered.push_back(frame),
                Err(WsError::Timeout) => {
                    // Nothing new for a second: ask for what is missing (a
                    // message published while our node lost its bus).
                    let _ = self.resume(conversation).await;
                }
                Err(WsError::Closed(_)) => {}
            }
        }
    }

    /// Reads whatever has arrived for up to `limit` without waiting for
    /// anything in particular (keeps the transcript current), reconnecting
    /// if the session closed.
    pub async fn pump(&mut self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if !self.is_connected() {
                self.connect_somewhere().await;
                continue;
            }
            let left = limit.saturating_sub(start.elapsed());
            match self.next_frame(left).await {
                Ok(frame) => self.buffered.push_back(frame),
                Err(_) => {
                    if !self.is_connected() {
                        continue;
                    }
                    return;
                }
            }
        }
    }

    /// Waits until the server closes this session (a `reconnect`, a drain),
    /// without reconnecting; returns the frames seen on the way.
    pub async fn wait_closed(&mut self, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "{}: session on {} not closed within {limit:?}; saw {seen:?}",
                self.name(),
                self.nodes[self.current]
            );
            match self.next_frame(left).await {
                Ok(frame) => {
                    seen.push(frame.clone());
                    self.buffered.push_back(frame);
                }
                Err(WsError::Closed(_)) => return seen,
                Err(WsError::Timeout) => {}
            }
        }
    }

    /// Pumps frames (reconnecting as needed) until `condition` holds or
    /// `limit` passes; returns whether it held. Never panics on time.
    pub async fn wait_until(
        &mut self,
        limit: Duration,
        condition: impl Fn(&Party) -> bool,
    ) -> bool {
        let start = Instant::now();
        loop {
            if condition(self) {
                return true;
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            if !self.is_connected() {
                self.connect_somewhere().await;
                continue;
            }
            if let Ok(frame) = self.next_frame(left.min(Duration::from_millis(500))).await {
                self.buffered.push_back(frame);
            }
        }
    }

    /// Takes the first buffered frame matching `wanted`.
    pub fn take_first(&mut self, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
        let index = self.buffered.iter().position(wanted)?;
        self.buffered.remove(index)
    }

    /// Takes every buffered frame matching `wanted`.
    pub fn take_buffered(&mut self, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let (taken, kept): (Vec<Value>, Vec<Value>) =
            self.buffered.drain(..).partition(|f| wanted(f));
        self.buffered = kept.into();
        taken
    }

    /// Frames received and not yet taken.
    pub fn pending(&self) -> &VecDeque<Value> {
        &self.buffered
    }
}

/// Asserts no participant recorded a protocol violation.
pub fn assert_clean(parties: &[&Party]) {
    let violations: Vec<String> = parties
        .iter()
        .flat_map(|party| party.violations())
        .collect();
    assert!(
        violations.is_empty(),
        "protocol violations:\n{}",
        violations.join("\n")
    );
}

/// Asserts two participants agree on a conversation's thread up to `upto`
/// (every seq present once in each, same messages).
pub fn assert_same_thread(conversation: &str, upto: u64, parties: &[&Party]) {
    let first = parties[0].transcript(conversation);
    for party in parties {
        let transcript = party.transcript(conversation);
        assert!(
            transcript.missing(upto).is_empty(),
            "{} misses seqs {:?} of {conversation}: has {:?}",
            party.name(),
            transcript.missing(upto),
            transcript.texts()
        );
        for seq in 1..=upto {
            let mine = &transcript.messages[&seq];
            let theirs = &first.messages[&seq];
            assert_eq!(
                (&mine["id"], &mine["text"]),
                (&theirs["id"], &theirs["text"]),
                "{} and {} disagree on seq {seq} of {conversation}",
                party.name(),
                parties[0].name()
            );
        }
    }
}

/// Asserts every acknowledged message of `conversation` (sent by any of
/// `senders`) is in each of `readers`' transcripts under its acked seq.
pub fn assert_acked_delivered(conversation: &str, senders: &[&Party], readers: &[&Party]) {
    for sender in senders {
        for acked in sender
            .acked
            .iter()
            .filter(|a| a.conversation == conversation)
        {
            for reader in readers {
                let message = reader.transcript(conversation).messages.get(&acked.seq);
                assert!(
                    message.is_some_and(|m| m["text"] == acked.text.as_str()),
                    "{}: acked seq {} ({:?}, {}) from {} is {:?}",
                    reader.name(),
                    acked.seq,
                    acked.text,
                    acked.client_msg_id,
                    sender.name(),
                    message
                );
            }
        }
    }
}

/// Checks a conversation's Redis stream: entry ids `1-1`, `2-1`, ... in
/// order without gaps or repeats, each entry's message matching its seq.
/// Returns the number of entries.
pub fn check_stream(entries: &[(String, Value)], conversation: &str) -> Result<u64, String> {
    for (index, (id, message)) in entries.iter().enumerate() {
        let seq = index as u64 + 1;
        if id != &format!("{seq}-1") {
            return Err(format!(
                "{conversation}: stream entry {index} has id {id}, expected {seq}-1; ids {:?}",
                entries
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
            ));
        }
        if let Some(found) = message.get("seq").and_then(Value::as_u64) {
            if found != seq {
                return Err(format!("{conversation}: entry {id} holds seq {found}"));
            }
        }
    }
    Ok(entries.len() as u64)
}
