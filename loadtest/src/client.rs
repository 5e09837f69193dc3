//! The wire side of a simulated client: REST calls (agent login, chat
//! start), one WebSocket per client in either subprotocol, optionally bound
//! to a chosen 127.0.0.x source address, and frames through the protocol
//! crate's `Codec`.

use anyhow::{anyhow, bail, Context};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use switchboard_proto::codec::{Codec, Encoded};
use switchboard_proto::rest::{LoginResponse, StartChatResponse};
use switchboard_proto::ServerFrame;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type WsSink = SplitSink<WebSocketStream<TcpStream>, Message>;
pub type WsSource = SplitStream<WebSocketStream<TcpStream>>;

/// Bound on connecting, the handshake and each REST call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A command answered `unavailable` is sent again after this pause (or
/// after the node's `retry_after_ms` when it shed the command)...
pub const RETRY_DELAY: Duration = Duration::from_millis(100);

/// When to send a command again that `error` refused: the node's hint when
/// it gave one.
pub fn retry_delay(error: &switchboard_proto::event::ErrorFrame) -> Duration {
    error
        .retry_after_ms
        .map_or(RETRY_DELAY, Duration::from_millis)
}
/// ...for this long after it was first sent (then it counts as refused).
pub const RETRY_WITHIN: Duration = Duration::from_secs(30);

/// A command sent and not answered yet, kept whole so it can be sent again
/// (same `request_id`, same `client_msg_id`) on a new socket after a
/// reconnect, or after an `unavailable` error.
pub struct Outstanding<R> {
    pub request: R,
    pub command: Value,
    pub first_sent: Instant,
    /// When this attempt went out (a retry's own send).
    pub last_sent: Instant,
}

impl<R> Outstanding<R> {
    pub fn new(request: R, command: Value) -> Self {
        let now = Instant::now();
        Self {
            request,
            command,
            first_sent: now,
            last_sent: now,
        }
    }

    /// Whether an `unavailable` answer may still be retried.
    pub fn may_retry(&self) -> bool {
        self.first_sent.elapsed() < RETRY_WITHIN
    }
}

/// One node: its base URL and an HTTP client (optionally bound to a source
/// address, so REST calls spread over addresses like the sockets do).
#[derive(Clone)]
pub struct Node {
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
}

impl Node {
    pub fn new(base: &str, source: Option<IpAddr>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let host_port = base
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("node URL must start with http:// ({base})"))?;
        let addr: SocketAddr = host_port
            .parse()
            .with_context(|| format!("node URL must be http://<ip>:<port> ({base})"))?;
        if !addr.ip().is_loopback() {
            bail!("refusing to target {addr}: the harness only drives loopback addresses");
        }
        let mut builder = reqwest::Client::builder()
            .timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true);
        if let Some(source) = source {
            builder = builder.local_address(source);
        }
        Ok(Self {
            base,
            addr,
            http: builder.build()?,
        })
    }

    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<LoginResponse> {
        let response = self
            .http
            .post(format!("{}/api/v1/agent/login", self.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "login {username}: HTTP {status}: {}",
                response.text().await?
            );
        }
        Ok(response.json().await?)
    }

    /// `POST /api/v1/chats`. `Err(code)` carries the protocol error code (or
    /// `http_<status>` / `http` when there is none).
    pub async fn start_chat(
        &self,
        queue: &str,
        name: &str,
        text: &str,
    ) -> Result<StartChatResponse, String> {
        let response = self
            .http
            .post(format!("{}/api/v1/chats", self.base))
            .json(&json!({"queue": queue, "customer": {"name": name}, "message": text}))
            .send()
            .await
            .map_err(|error| {
                // Not connected: nothing reached the node, a retry is safe.
                if error.is_connect() {
                    "http_connect".to_owned()
                } else {
                    "http".to_owned()
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(|_| "http_body".to_owned());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(body["error"]["code"]
            .as_str()
            .map_or_else(|| format!("http_{}", status.as_u16()), str::to_owned))
    }
}

/// Client socket settings. tungstenite zero-fills its whole read buffer
/// before every read (128 KiB by default): with thousands of sockets that
/// was a sixth of the harness's CPU. Server frames are small; 4 KiB reads.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Opens the WebSocket for `token`, bound to `source` when given.
pub async fn connect_ws(
    node: &Node,
    token: &str,
    codec: Codec,
    source: Option<IpAddr>,
) -> anyhow::Result<(WsSink, WsSource)> {
    let connect = async {
        let socket = match node.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(source) = source {
            socket.bind(SocketAddr::new(source, 0))?;
        }
        let stream = socket.connect(node.addr).await?;
        stream.set_nodelay(true)?;
        let url = format!(
            "ws://{}/api/v1/ws?token={token}",
            node.base.trim_start_matches("http://")
        );
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(codec.subprotocol()),
        );
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await?;
        anyhow::Ok(ws.split())
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| anyhow!("websocket connect timed out"))?
}

/// A command as a frame of the session's subprotocol.
pub fn encode(codec: Codec, command: &Value) -> Message {
    match codec.encode(command) {
        Ok(Encoded::Text(text)) => Message::text(text),
        Ok(Encoded::Binary(bytes)) => Message::binary(bytes),
        // A `Value` always encodes; keep the session alive if it ever does not.
        Err(_) => Message::text("{}"),
    }
}

/// What one incoming WebSocket message means to a simulated client.
pub enum Incoming {
    Frame(Box<ServerFrame>),
    /// Ping, pong or a raw frame: nothing to do (tungstenite answers pings).
    Control,
    /// The server closed the session (or the socket failed).
    Closed,
    /// A frame the protocol crate could not read: counted as an error.
    Undecodable,
}

pub fn decode(codec: Codec, message: Option<Result<Message, impl std::fmt::Debug>>) -> Incoming {
    let bytes: &[u8] = match &message {
        None | Some(Err(_)) => return Incoming::Closed,
        Some(Ok(Message::Text(text))) => text.as_bytes(),
        Some(Ok(Message::Binary(bytes))) => bytes,
        Some(Ok(Message::Close(_))) => return Incoming::Closed,
        Some(Ok(_)) => return Incoming::Control,
    };
    match codec.decode::<ServerFrame>(bytes) {
        Ok(frame) => Incoming::Frame(Box::new(frame)),
        Err(_) => Incoming::Undecodable,
    }
}

/// Sends one command; `false` when the socket is gone.
pub async fn send(sink: &mut WsSink, codec: Codec, command: &Value) -> bool {
    sink.send(encode(codec, command)).await.is_ok()
}
