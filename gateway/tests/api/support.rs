//! Test harness: a real node on a free loopback port (in this process, its
//! own actix System), and WebSocket clients that speak either subprotocol.
//! Every wait is bounded; nothing sleeps to wait for what can be awaited.

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use switchboard_gateway::app::{self, Running, StartOptions};
use switchboard_gateway::settings::Settings;
use switchboard_proto::codec::Codec;
use switchboard_proto::AgentId;

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
[routing]
rona_timeout_ms = 30000
auto_wrap_up_ms = 60000
default_max_chats = 2
[limits]
max_message_chars = 200
commands_per_second = 1000
command_burst = 1000
# No shedding: a busy test machine is not an overloaded node (the
# overload tests turn it on).
overload_target_ms = 0
[stats]
service_level_s = 20
[auth]
token_secret = "test-secret-test-secret-test-secret-0123"
token_ttl_s = 3600

[[queues]]
id = "sales"
name = "Sales"
[[queues]]
id = "support"
name = "Support"

# Alice's password ("pw-alice") is an argon2id hash with the cheapest
# parameters: the first hash sets the cost of the node's dummy hash, which
# every login (plain passwords too) runs once, so nodes start and agents log
# in quickly, and the argon2 path is exercised.
[[agents]]
id = "alice"
name = "Alice Martin"
username = "alice"
password_hash = '$argon2id$v=19$m=8,t=1,p=1$c3dpdGNoYm9hcmQtdGVzdA$ZMTCLDHTXzekZyTLp23QKVEfKKqPpE/IsBgwiK72XIc'
queues = ["sales", "support"]
[[agents]]
id = "bob"
name = "Bob Chen"
username = "bob"
password = "pw-bob"
queues = ["sales"]
[[agents]]
id = "carol"
name = "Carol Diaz"
username = "carol"
password = "pw-carol"
queues = ["support"]
[[agents]]
id = "dave"
name = "Dave Okafor"
username = "dave"
password = "pw-dave"
queues = ["sales"]
max_chats = 1
[[agents]]
id = "sam"
name = "Sam Rivera"
username = "sam"
password = "pw-sam"
queues = ["support"]
roles = ["agent", "supervisor"]

[[wrap_up_reasons]]
id = "resolved"
label = "Resolved"
[[wrap_up_reasons]]
id = "follow_up"
label = "Needs follow-up"
[[wrap_up_reasons]]
id = "no_response"
label = "No response from customer"
[wrap_up]
default_reason = "no_response"

[[idle_reasons]]
id = "break"
label = "Break"
[[idle_reasons]]
id = "lunch"
label = "Lunch"

[[templates]]
id = "greeting"
name = "Greeting"
text = "Hello <customerName>, I'm <agentName> from <queueName>."
[[templates]]
id = "order"
name = "Order status"
text = "Order <orderId> for <customerName> is on its way."
"#;

pub const DATABASE_URL: &str = "SWITCHBOARD__STORAGE__DATABASE_URL";

/// A running node and an HTTP client for it.
pub struct Node {
    pub base: String,
    pub running: Running,
    pub http: awc::Client,
    /// The node's SQLite file lives here (unless the test chose a database):
    /// held so the folder goes only with the node.
    _data: DataDir,
    /// Read by the reports tests (another test binary).
    #[allow(dead_code)]
    database_url: String,
}

/// A temporary folder, removed when dropped.
pub struct DataDir(pub std::path::PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        let dir = std::env::temp_dir().join(format!("sb-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        DataDir(dir)
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}/switchboard.db", self.0.display())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The options of a test node: one HTTP worker.
pub fn one_worker() -> StartOptions {
    StartOptions {
        workers: 1,
        ..StartOptions::default()
    }
}

/// The test config with Sam an admin too (API keys, webhooks, erasure).
pub fn config_with_admin() -> String {
    CONFIG.replace(
        "roles = [\"agent\", \"supervisor\"]",
        "roles = [\"agent\", \"supervisor\", \"admin\"]",
    )
}

impl Node {
    /// A node with the test config; `env` overrides keys the way
    /// `SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS` does.
    pub async fn start(env: &[(&str, &str)]) -> Node {
        Node::start_with(env, one_worker()).await
    }

    /// A node with one worker on another config (the test config with a
    /// change) and `env` overrides.
    pub async fn start_on(config: &str, env: &[(&str, &str)]) -> Node {
        Node::start_config(config, DataDir::new(), env, one_worker()).await
    }

    /// A node with the test config and these start options (a short
    /// heartbeat, say).
    pub async fn start_with(env: &[(&str, &str)], options: StartOptions) -> Node {
        Node::start_in(DataDir::new(), env, options).await
    }

    /// A node whose SQLite file is in `data` (a restart passes the same).
    pub async fn start_in(data: DataDir, env: &[(&str, &str)], options: StartOptions) -> Node {
        Node::start_config(CONFIG, data, env, options).await
    }

    /// A node on another config (the test config with a change).
    pub async fn start_config(
        config: &str,
        data: DataDir,
        env: &[(&str, &str)],
        options: StartOptions,
    ) -> Node {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        if !env.iter().any(|(key, _)| key == DATABASE_URL) {
            env.push((DATABASE_URL.to_owned(), data.sqlite_url()));
        }
        let database_url = env
            .iter()
            .find(|(key, _)| key == DATABASE_URL)
            .map(|(_, url)| url.clone())
            .unwrap_or_default();
        let settings = Settings::from_toml_str(config, env).expect("test config is valid");
        let running = app::start(&settings, options).await.expect("node starts");
        Node {
            base: format!("http://{}", running.addr),
            running,
            http: awc::Client::builder().timeout(WAIT).finish(),
            _data: data,
            database_url,
        }
    }

    /// The URL of the node's database (its SQLite file unless the test
    /// chose one).
    #[allow(dead_code)]
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// A node whose offers expire after `rona_ms` (RONA tests).
    pub async fn with_rona(rona_ms: u64) -> Node {
        let rona = rona_ms.to_string();
        Node::start(&[("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", rona.as_str())]).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.expect("GET answers");
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body");
        (response.status().as_u16(), parse(&body))
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let mut response = self
            .http
            .delete(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE answers");
        let body = response.body().await.expect("body");
        (response.status().as_u16(), parse(&body))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut response = self
            .http
            .post(format!("{}{}", self.base, path))
            .send_json(body)
            .await
            .expect("POST answers");
        let body = response.body().await.expect("body");
        (response.status().as_u16(), parse(&body))
    }

    /// `POST` a JSON body with a bearer token (an agent's or an API key).
    pub async fn post_as(&self, path: &str, body: &Value, token: &str) -> (u16, Value) {
        let mut response = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .send_json(body)
            .await
            .expect("POST answers");
        let body = response.body().await.expect("body");
        (response.status().as_u16(), parse(&body))
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        let mut response = self
            .http
            .post(format!("{}{}", self.base, path))
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("POST answers");
        let body = response.body().await.expect("body");
        (response.status().as_u16(), parse(&body))
    }

    /// Logs in `username` (password `pw-<username>`); returns the token.
    pub async fn login(&self, username: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/agent/login",
                &json!({"username": username, "password": format!("pw-{username}")}),
            )
            .await;
        assert_eq!(status, 200, "login {username}: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Logs in and connects an agent.
    pub async fn agent(&self, username: &str, codec: Codec) -> Client {
        let token = self.login(username).await;
        Client::connect(self, &token, codec).await
    }

    /// Logs in, connects and sets the agent available.
    pub async fn available_agent(&self, username: &str, codec: Codec) -> Client {
        let mut agent = self.agent(username, codec).await;
        agent
            .ok(json!({"type": "set_state", "state": "available"}))
            .await;
        agent
    }

    /// Starts a chat; returns (conversation id, customer token).
    pub async fn start_chat(&self, queue: &str, name: &str, text: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/chats",
                &json!({"queue": queue, "customer": {"name": name, "email": "c@example.com"}, "message": text}),
            )
            .await;
        assert_eq!(status, 201, "start chat: {body}");
        (
            body["conversation_id"].as_str().expect("id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }

    /// Starts a chat and connects its customer.
    pub async fn customer(
        &self,
        queue: &str,
        name: &str,
        text: &str,
        codec: Codec,
    ) -> (String, Client) {
        let (id, token) = self.start_chat(queue, name, text).await;
        (id, Client::connect(self, &token, codec).await)
    }

    /// Starts a chat that `agent` is offered and accepts; returns the
    /// conversation id and its connected customer.
    pub async fn accepted_chat(
        &self,
        queue: &str,
        name: &str,
        agent: &mut Client,
        codec: Codec,
    ) -> (String, Client) {
        let (id, customer) = self
            .customer(queue, name, &format!("Hello, this is {name}"), codec)
            .await;
        agent.accept(&id).await;
        (id, customer)
    }

    /// A token for `agent` signed by the node, without logging it in (so
    /// looking things up changes no agent's state).
    pub fn token_for(&self, agent: &str) -> String {
        self.running.state.signer.issue_agent(&AgentId::new(agent))
    }

    /// `GET` with a supervisor's token, status 200 asserted.
    pub async fn supervised(&self, path: &str) -> Value {
        let token = self.token_for("sam");
        let (status, body) = self.get(path, Some(&token)).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `GET path` as the supervisor, until `done` holds (bounded). The
    /// supervisor's views follow the actors: an agent lists its freed slot
    /// a moment after the conversation that freed it has told its sessions.
    pub async fn supervised_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let limit = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let body = self.supervised(path).await;
            if done(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < limit,
                "GET {path}: still {body} after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One queue's row of `GET /api/v1/queues`.
    pub async fn queue(&self, id: &str) -> Value {
        let rows = self.supervised("/api/v1/queues").await;
        rows.as_array()
            .and_then(|rows| rows.iter().find(|row| row["id"] == id).cloned())
            .unwrap_or_else(|| panic!("queue {id} listed: {rows}"))
    }

    /// One queue's row of `GET /api/v1/stats`.
    pub async fn queue_stats(&self, id: &str) -> Value {
        let stats = self.supervised("/api/v1/stats").await;
        stats["queues"]
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["id"] == id).cloned())
            .unwrap_or_else(|| panic!("queue {id} in stats: {stats}"))
    }

    /// The ids `GET /api/v1/agents?{query}` lists.
    pub async fn agent_ids(&self, query: &str) -> Vec<String> {
        let rows = self.supervised(&format!("/api/v1/agents?{query}")).await;
        rows.as_array()
            .expect("agent rows")
            .iter()
            .map(|row| row["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// `GET` answering text (`/metrics`): status and body.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let mut response = self
            .http
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("GET answers");
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body");
        (
            response.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// `/metrics` from the node's metrics listener (`metrics_listen`).
    pub async fn metrics(&self) -> String {
        let addr = self
            .running
            .metrics_addr
            .expect("the test config serves metrics");
        let mut response = self
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("GET /metrics answers");
        assert_eq!(response.status().as_u16(), 200);
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// `GET` answering text, with a token: status and body.
    pub async fn get_text_as(&self, path: &str, token: &str) -> (u16, String) {
        let mut response = self
            .http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET answers");
        let body = response.body().limit(64 * 1024 * 1024).await.expect("body");
        (
            response.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// Waits (long-polling the event feed) until `conversation`'s
    /// `conversation.closed` event has committed, and with it its closed
    /// record. On one node a command is answered before its record is
    /// written; this is how a test awaits that write.
    pub async fn recorded_closed(&self, conversation: &str) {
        let token = self.token_for("sam");
        let mut after = String::new();
        for _ in 0..20 {
            let mut path =
                "/api/v1/events?types=conversation.closed&wait_s=5&limit=1000".to_owned();
            if !after.is_empty() {
                path = format!("{path}&after={after}");
            }
            let (status, page) = self.get(&path, Some(&token)).await;
            assert_eq!(status, 200, "{page}");
            let events = page["events"].as_array().expect("events");
            if events
                .iter()
                .any(|event| event["conversation_id"] == conversation)
            {
                return;
            }
            after = page["next_cursor"].as_str().expect("cursor").to_owned();
        }
        panic!("{conversation} never recorded closed");
    }

    /// A conversation's record as a supervisor sees it.
    pub async fn record(&self, conversation: &str) -> Value {
        let token = self.token_for("sam");
        let (status, body) = self
            .get(
                &format!("/api/v1/conversations/{conversation}"),
                Some(&token),
            )
            .await;
        assert_eq!(status, 200, "record: {body}");
        body
    }
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

type Socket = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// One WebSocket client. Frames that a wait did not ask for are kept, in
/// order, for later waits.
pub struct Client {
    socket: Socket,
    codec: Codec,
    buffered: VecDeque<Value>,
    next_request: u64,
    pub hello: Value,
    /// The server's close (code, reason), once it closed the socket.
    pub close: Option<(u16, String)>,
}

impl Client {
    pub async fn connect(node: &Node, token: &str, codec: Codec) -> Client {
        Self::try_connect(node, token, codec)
            .await
            .expect("websocket connects")
    }

    pub async fn try_connect(node: &Node, token: &str, codec: Codec) -> Result<Client, String> {
        let url = format!(
            "{}/api/v1/ws?token={token}",
            node.base.replacen("http", "ws", 1)
        );
        let connecting = awc::Client::builder()
            .timeout(WAIT)
            .finish()
            .ws(url)
            .protocols([codec.subprotocol()])
            .max_frame_size(4 * 1024 * 1024)
            .connect();
        let (response, socket) = connecting.await.map_err(|error| error.to_string())?;
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        assert_eq!(chosen.as_deref(), Some(codec.subprotocol()));
        let mut client = Client {
            socket,
            codec,
            buffered: VecDeque::new(),
            next_request: 0,
            hello: Value::Null,
            close: None,
        };
        client.hello = client.event("hello").await;
        Ok(client)
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        let frame = match self.codec {
            Codec::Json => ws::Message::Text(String::from_utf8_lossy(&bytes).into_owned().into()),
            Codec::MsgPack => ws::Message::Binary(bytes.into()),
        };
        self.socket.send(frame).await.expect("send frame");
    }

    /// Sends one WebSocket message as is (a frame of the other kind, say).
    pub async fn send_message(&mut self, message: ws::Message) {
        self.socket.send(message).await.expect("send frame");
    }

    pub async fn send_value(&mut self, value: &Value) {
        let bytes = self.codec.encode(value).expect("encode").into_bytes();
        self.send_bytes(bytes).await;
    }

    /// The next frame from the socket (answering pings), or `None` when the
    /// server closed it.
    async fn next_frame(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("no frame within {WAIT:?}; buffered: {:?}", self.buffered)
                });
            match frame? {
                Ok(ws::Frame::Text(bytes)) | Ok(ws::Frame::Binary(bytes)) => {
                    return Some(
                        self.codec
                            .decode_value(&bytes)
                            .expect("server frame decodes"),
                    );
                }
                Ok(ws::Frame::Ping(payload)) => {
                    let _ = self.socket.send(ws::Message::Pong(payload)).await;
                }
                Ok(ws::Frame::Close(reason)) => {
                    self.close = reason.map(|reason| {
                        (
                            u16::from(reason.code),
                            reason.description.unwrap_or_default(),
                        )
                    });
                    return None;
                }
                Ok(_) => {}
                Err(error) => panic!("websocket error: {error}"),
            }
        }
    }

    /// Sends a command (adding a request id) and returns its one reply,
    /// `ack` or `error`.
    pub async fn request(&mut self, mut command: Value) -> Value {
        self.next_request += 1;
        let request_id = format!("r{}", self.next_request);
        command["request_id"] = json!(request_id);
        self.send_value(&command).await;
        self.reply_to(&request_id).await
    }

    pub async fn reply_to(&mut self, request_id: &str) -> Value {
        self.take_where(|frame| {
            matches!(frame["type"].as_str(), Some("ack") | Some("error"))
                && frame["request_id"] == request_id
        })
        .await
    }

    /// Waits for the offer of conversation `id` and accepts it; returns the
    /// ack.
    pub async fn accept(&mut self, id: &str) -> Value {
        self.event_where("offer", |offer| offer["conversation_id"] == id)
            .await;
        self.ok(json!({"type": "accept", "conversation_id": id}))
            .await
    }

    /// An agent's `send`; returns the ack.
    pub async fn say(&mut self, id: &str, text: &str, client_msg_id: &str) -> Value {
        self.ok(json!({"type": "send", "conversation_id": id, "text": text, "client_msg_id": client_msg_id}))
            .await
    }

    /// Sends a command that must succeed; returns the ack.
    pub async fn ok(&mut self, command: Value) -> Value {
        let reply = self.request(command.clone()).await;
        assert_eq!(reply["type"], "ack", "{command} -> {reply}");
        reply
    }

    /// Sends a command that must fail with `code`; returns the error.
    pub async fn fails(&mut self, command: Value, code: &str) -> Value {
        let reply = self.request(command.clone()).await;
        assert_eq!(reply["type"], "error", "{command} -> {reply}");
        assert_eq!(reply["code"], code, "{command} -> {reply}");
        reply
    }

    /// The next event of type `kind`.
    pub async fn event(&mut self, kind: &str) -> Value {
        self.take_where(|frame| frame["type"] == kind).await
    }

    /// The next event of type `kind` matching `wanted`.
    pub async fn event_where(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.take_where(|frame| frame["type"] == kind && wanted(frame))
            .await
    }

    /// The next `message` event with this text.
    pub async fn message(&mut self, text: &str) -> Value {
        self.event_where("message", |frame| frame["text"] == text)
            .await
    }

    /// The next `conversation` event in `state`.
    pub async fn conversation_state(&mut self, state: &str) -> Value {
        self.event_where("conversation", |frame| frame["state"] == state)
            .await
    }

    async fn take_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.buffered.iter().position(&wanted) {
            return self.buffered.remove(index).expect("index exists");
        }
        loop {
            match self.next_frame().await {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) => self.buffered.push_back(frame),
                None => panic!("socket closed; buffered: {:?}", self.buffered),
            }
        }
    }

    /// Asserts that no event of `kind` arrived before a round trip to the
    /// server completes (the server answers commands in order, and events
    /// published before are already in the socket). The round trip is an
    /// unknown command: its `bad_request` changes nothing.
    pub async fn assert_no_event(&mut self, kind: &str) {
        self.fails(json!({"type": "round_trip_probe"}), "bad_request")
            .await;
        assert!(
            !self.buffered.iter().any(|frame| frame["type"] == kind),
            "unexpected {kind}: {:?}",
            self.buffered
        );
    }

    /// Frames received but not yet taken.
    /// Forgets the frames no wait asked for (a flood's own messages).
    pub fn drain_buffered(&mut self) {
        self.buffered.clear();
    }

    pub fn pending(&self) -> &VecDeque<Value> {
        &self.buffered
    }

    /// Waits until the server closes the socket; returns frames seen.
    pub async fn closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(frame) = self.next_frame().await {
            seen.push(frame);
        }
        seen
    }

    pub async fn close(mut self) {
        let _ = self.socket.send(ws::Message::Close(None)).await;
    }
}

/// Runs one scenario once per subprotocol, so JSON and MessagePack are held
/// to the same behaviour.
#[macro_export]
macro_rules! both_codecs {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use switchboard_proto::codec::Codec;
                #[actix_rt::test]
                async fn json() {
                    super::$name(Codec::Json).await;
                }
                #[actix_rt::test]
                async fn msgpack() {
                    super::$name(Codec::MsgPack).await;
                }
            }
        )*
    };
}
