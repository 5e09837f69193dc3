//! One WebSocket session: frames in, engine commands out, engine events
//! back as frames. Holds no domain state. A session ends when the client
//! closes, stops answering pings, stops reading (a write waits past the
//! client timeout), falls too far behind (it then reconnects and resumes by
//! `seq`), logs out, or the node drains.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::FutureExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_engine::cluster::hub::{Frame, Published};
use switchboard_engine::conversation::actor::Party;
use switchboard_engine::{EngineError, Outcome};
use switchboard_proto::codec::{Codec, DecodeError, Encoded};
use switchboard_proto::event::{Ack, ErrorFrame, Reconnect, ServerFrame};
use switchboard_proto::model::Message;
use switchboard_proto::{AgentCommand, ConversationId, CustomerCommand, ErrorCode};
use tracing::Instrument;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::auth::{unix_now_ms, Subject};
use crate::identity::{token_of_request, SessionToken};
use crate::websocket;

/// Live events sent in one write when several are already waiting.
const MAX_EVENTS_PER_WRITE: usize = 64;

/// How a session is paced. Defaults suit people; the load harness and tests
/// may raise them.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Sustained commands per second before `rate_limited`.
    pub commands_per_second: NonZeroU32,
    /// Commands allowed in a burst above the sustained rate.
    pub command_burst: NonZeroU32,
    pub ping_interval: Duration,
    /// No frame (pong included) for this long closes the session.
    pub client_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            commands_per_second: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            command_burst: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
            ping_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(45),
        }
    }
}

/// The subprotocol: the first one the client asks for that we speak;
/// `None` when it asks for none (the session then speaks JSON, and the
/// answer names no subprotocol).
fn negotiate(req: &HttpRequest) -> Result<Option<Codec>, ApiError> {
    let requested: Vec<String> = req
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(',').map(|name| name.trim().to_owned()))
        .filter(|name| !name.is_empty())
        .collect();
    if requested.is_empty() {
        return Ok(None);
    }
    requested
        .iter()
        .find_map(|name| Codec::from_subprotocol(name))
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "unsupported subprotocol: use switchboard.v1.json or switchboard.v1.msgpack",
            )
        })
}

/// `GET /api/v1/ws`: authenticates, checks the handshake, opens the engine
/// session (so `hello` is ready), then answers `101`; the session runs
/// once the server hands it the socket. If the client is gone by then, the
/// engine session is dropped unused.
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "draining: connect to another node",
        ));
    }
    let SessionToken {
        subject,
        expires_at: token_expires_at,
        issued_at_ms: token_issued_at_ms,
    } = token_of_request(&req).await?;
    if let (Subject::Agent(_), Some(origin)) = (&subject, req.headers().get("origin")) {
        // The widget's sites may open customers' sessions; an agent's is
        // only for the node's own pages.
        let origin = origin.to_str().unwrap_or_default();
        if !crate::browser_policy::is_same_origin(origin, req.head()) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "an agent's session opens from this node's own pages only",
            ));
        }
    }
    let requested = negotiate(&req)?;
    let codec = requested.unwrap_or(Codec::Json);
    let mut answer = websocket::handshake(&req, requested.map(Codec::subprotocol))
        .map_err(|error| ApiError::new(ErrorCode::BadRequest, error.to_string()))?;
    let opened = match &subject {
        Subject::Agent(agent) => state.engine.open_agent_session(agent).await?,
        Subject::Customer(conversation) => state.engine.open_customer_session(conversation).await?,
    };
    let state = state.into_inner();
    websocket::hand_over(&mut answer, move |ws| {
        let limits = &state.limits;
        let quota = Quota::per_second(limits.commands_per_second).allow_burst(limits.command_burst);
        let session = Session {
            limiter: RateLimiter::direct(quota),
            state,
            subject,
            token_expires_at,
            token_issued_at_ms,
            codec,
            ws,
            seen: HashMap::new(),
        };
        session.run(Box::new(opened))
    });
    Ok(answer)
}

/// Pings leave on a grid shared by every session of the process: sessions
/// whose turn falls in the same slot are pinged in one wake-up of their
/// worker instead of one wake-up each. On an idle node with 18,000 sessions
/// those wake-ups were most of its CPU.
const PING_GRID: Duration = Duration::from_millis(250);

/// The session's ping timer: first tick one period from now, on the grid.
fn heartbeat(period: Duration) -> tokio::time::Interval {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let due = tokio::time::Instant::now() + period;
    let grid = PING_GRID.as_nanos().max(1);
    let slots = due
        .saturating_duration_since(epoch)
        .as_nanos()
        .div_ceil(grid);
    let start = epoch + Duration::from_nanos(u64::try_from(slots * grid).unwrap_or(u64::MAX));
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// The close code of a session whose token expired (private use range):
/// the client should not reconnect with that token.
pub const TOKEN_EXPIRED: u16 = 4001;

fn expiry_timestamp(unix_s: u64) -> switchboard_proto::Timestamp {
    switchboard_proto::Timestamp(i64::try_from(unix_s.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// How long a closing session waits for the client's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

struct Session {
    state: Arc<AppState>,
    subject: Subject,
    /// When the session's token expires (unix seconds): checked on each
    /// heartbeat, moved by `refresh_token`.
    token_expires_at: u64,
    /// When that token was issued (unix ms): an agent who logged out since
    /// gets no new one.
    token_issued_at_ms: u64,
    codec: Codec,
    ws: websocket::Socket,
    limiter: DefaultDirectRateLimiter,
    /// The last `seq` sent to this client, per conversation: a message seen
    /// twice is dropped, and a gap (an event lost between nodes) is filled
    /// from the log before the message that revealed it.
    seen: HashMap<ConversationId, u64>,
}

/// What woke a session's loop.
enum Wake {
    Incoming(Option<Result<WsMessage, WsError>>),
    Event(Option<Frame>),
    Heartbeat,
    Drain,
}

/// The client is gone (or stopped reading): nothing more can be sent.
#[derive(Debug)]
struct Gone;

/// Why the loop ended: send this close, or nothing if the socket is gone.
type Ending = Option<CloseFrame>;

fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }
}

impl Session {
    /// `opened` comes boxed: a future keeps its arguments for its whole
    /// life, and `hello` is only needed at the start.
    async fn run(mut self, opened: Box<switchboard_engine::Session>) {
        // Unboxed inside a block, so the box is freed now: an argument
        // otherwise lives as long as the future.
        let switchboard_engine::Session {
            hello,
            followups,
            mut events,
        } = {
            let opened = opened;
            *opened
        };
        if self.greet(hello, followups).is_err() || self.flush().await.is_err() {
            return;
        }
        let mut drain = self.state.drain_signal();
        let mut heartbeat = heartbeat(self.state.limits.ping_interval);
        let mut last_heard = Instant::now();
        let ending: Ending = loop {
            // What woke the session is taken out of the `select!` and
            // handled after it, so the waits and the handling never share
            // the future's memory (docs/benchmarks.md, memory).
            let wake = tokio::select! {
                incoming = self.ws.receive() => Wake::Incoming(incoming),
                frame = events.frames.recv() => Wake::Event(frame),
                _ = heartbeat.tick() => Wake::Heartbeat,
                _ = drain.changed() => Wake::Drain,
            };
            let step: Option<Ending> = match wake {
                Wake::Incoming(incoming) => {
                    last_heard = Instant::now();
                    match incoming {
                        None => Some(None),
                        Some(Err(error)) => Some(Self::read_failed(error)),
                        // Boxed: an idle session then keeps no command's state.
                        Some(Ok(WsMessage::Text(text))) => {
                            Box::pin(self.command(text.as_bytes(), Codec::Json)).await
                        }
                        Some(Ok(WsMessage::Binary(bytes))) => {
                            Box::pin(self.command(&bytes, Codec::MsgPack)).await
                        }
                        // The WebSocket answers it (sent by the flush below).
                        Some(Ok(WsMessage::Close(_))) => {
                            let _ = self.flush().await;
                            Some(None)
                        }
                        // Pings are answered by the WebSocket on the flush.
                        Some(Ok(_)) => None,
                    }
                }
                Wake::Event(Some(frame)) => self.forward_live(&frame).await,
                Wake::Event(None) => Some(Some(Box::pin(self.events_ended()).await)),
                Wake::Heartbeat => {
                    if last_heard.elapsed() > self.state.limits.client_timeout {
                        Some(Some(close_frame(CloseCode::Policy, "no answer to pings")))
                    } else if unix_now_ms() / 1000 >= self.token_expires_at {
                        Some(Some(close_frame(
                            CloseCode::from(TOKEN_EXPIRED),
                            "token expired: log in again (refresh_token before it expires)",
                        )))
                    } else if self.buffer(WsMessage::Ping(Bytes::new())).is_err() {
                        Some(None)
                    } else {
                        None
                    }
                }
                Wake::Drain => {
                    let after_ms = 250 + rand::random::<u64>() % 1750;
                    let _ = self.send(&ServerFrame::Reconnect(Reconnect { after_ms }));
                    Some(Some(close_frame(
                        CloseCode::Restart,
                        "node draining: reconnect to another node",
                    )))
                }
            };
            if let Some(ending) = step {
                break ending;
            }
            // Events already waiting go out in the same write.
            if let Some(ending) = self.forward_waiting(&mut events.frames).await {
                break ending;
            }
            if self.flush().await.is_err() {
                break None;
            }
        };
        drop(events);
        tracing::debug!(?ending, "session ends");
        if let Some(reason) = ending {
            Box::pin(Self::close(self.ws, reason)).await;
        }
    }

    /// What to tell a client whose frame could not be read.
    fn read_failed(error: WsError) -> Ending {
        match error {
            // The client went away (without a close): nothing to tell it.
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Io(_)
            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
            WsError::Capacity(error) => Some(close_frame(CloseCode::Size, &error.to_string())),
            error => Some(close_frame(CloseCode::Protocol, &error.to_string())),
        }
    }

    /// Sends one live event. `Some(ending)` ends the session.
    async fn forward_live(&mut self, frame: &Frame) -> Option<Ending> {
        match self.forward(frame).await {
            Err(Gone) => Some(None),
            Ok(true) => Some(Some(close_frame(
                CloseCode::Restart,
                "reconnect and resume",
            ))),
            Ok(false) => None,
        }
    }

    /// Queues the live events already waiting (a bounded batch).
    async fn forward_waiting(
        &mut self,
        frames: &mut tokio::sync::mpsc::Receiver<Frame>,
    ) -> Option<Ending> {
        for _ in 0..MAX_EVENTS_PER_WRITE {
            let Ok(frame) = frames.try_recv() else {
                return None;
            };
            if let Some(ending) = self.forward_live(&frame).await {
                return Some(ending);
            }
        }
        None
    }

    /// `hello`, then what the engine had queued behind it; notes the last
    /// `seq` the client holds of each conversation.
    fn greet(
        &mut self,
        mut hello: switchboard_proto::event::Hello,
        followups: Vec<ServerFrame>,
    ) -> Result<(), Gone> {
        hello.token_expires_at = Some(expiry_timestamp(self.token_expires_at));
        for conversation in &hello.conversations {
            self.seen
                .insert(conversation.conversation_id.clone(), conversation.last_seq);
        }
        for offer in &hello.offers {
            if let Some(last) = offer.messages.last() {
                self.seen.insert(offer.conversation_id.clone(), last.seq);
            }
        }
        self.send(&ServerFrame::Hello(hello))?;
        for frame in &followups {
            self.send(frame)?;
        }
        Ok(())
    }

    /// Sends the close, then finishes the handshake (bounded): reading on
    /// until the client answers the close lets the connection end now,
    /// rather than linger while the client keeps sending into it.
    async fn close(mut ws: websocket::Socket, reason: CloseFrame) {
        let handshake = async {
            if ws.close(Some(reason)).await.is_ok() {
                while let Some(Ok(_)) = ws.receive().await {}
            }
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, handshake).await;
    }

    /// Why the engine stopped this session's events: the agent logged out
    /// (in another tab), or the session fell too far behind.
    async fn events_ended(&self) -> CloseFrame {
        let logged_out = match &self.subject {
            Subject::Agent(agent) => !self.state.engine.is_logged_in(agent).await,
            Subject::Customer(_) => false,
        };
        match &self.subject {
            Subject::Agent(_) if logged_out => close_frame(CloseCode::Normal, "logged out"),
            _ => close_frame(CloseCode::Again, "too far behind: reconnect and resume"),
        }
    }

    /// Sends a live event. `Ok(true)`: it told the client to reconnect, so
    /// the session ends.
    async fn forward(&mut self, frame: &Frame) -> Result<bool, Gone> {
        match frame.frame() {
            ServerFrame::Reconnect(_) => {
                self.send_published(frame)?;
                return Ok(true);
            }
            ServerFrame::Message(message) => {
                if let Some(last) = self.seen.get(&message.conversation_id).copied() {
                    if message.seq <= last {
                        return Ok(false);
                    }
                    // A gap that stays ends the session: the client
                    // reconnects and resumes from what it holds.
                    // Boxed: rare, and its log read would otherwise size
                    // every idle session's future.
                    if message.seq > last + 1 && !Box::pin(self.fill_gap(message, last)).await? {
                        return Ok(true);
                    }
                }
                // Updated in place: the key is cloned only the first time.
                match self.seen.get_mut(&message.conversation_id) {
                    Some(seen) => *seen = message.seq,
                    None => {
                        self.seen
                            .insert(message.conversation_id.clone(), message.seq);
                    }
                }
            }
            // The offer carries the thread so far: live messages go on
            // from its last one (those sent before the accept are filled in).
            ServerFrame::Offer(offer) => {
                if let Some(last) = offer.messages.last() {
                    let seen = self.seen.entry(offer.conversation_id.clone()).or_default();
                    *seen = (*seen).max(last.seq);
                }
            }
            _ => {}
        }
        self.send_published(frame).map(|()| false)
    }

    /// Sends the messages between `last` and `message` from the log;
    /// `Ok(false)` when the log could not be read.
    async fn fill_gap(&mut self, message: &Message, last: u64) -> Result<bool, Gone> {
        let party = match &self.subject {
            Subject::Agent(agent) => Party::Agent(agent.clone()),
            Subject::Customer(_) => Party::Customer,
        };
        let engine = self.state.engine.clone();
        match engine
            .messages_after(party, &message.conversation_id, last)
            .await
        {
            Ok(missed) => {
                metrics::counter!("switchboard_session_gaps_filled_total").increment(1);
                for missed in missed.iter().filter(|missed| missed.seq < message.seq) {
                    self.send(&ServerFrame::Message((**missed).clone()))?;
                }
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(conversation_id = %message.conversation_id, %error, "could not fill a gap");
                Ok(false)
            }
        }
    }

    /// Queues a frame for the next flush (written before it when the
    /// queue is long).
    fn send(&mut self, frame: &ServerFrame) -> Result<(), Gone> {
        match self.codec.encode(frame) {
            Ok(Encoded::Text(text)) => self.buffer(WsMessage::Text(text.into())),
            Ok(Encoded::Binary(bytes)) => self.buffer(WsMessage::Binary(bytes.into())),
            Err(error) => {
                tracing::error!(%error, "could not encode a frame");
                Ok(())
            }
        }
    }

    /// Queues a live event in the encoding its other sessions share.
    fn send_published(&mut self, frame: &Published) -> Result<(), Gone> {
        let Some(bytes) = frame.encoded(self.codec) else {
            return Ok(());
        };
        match self.codec {
            // JSON from the encoder is UTF-8; the check only reads it.
            Codec::Json => match Utf8Bytes::try_from(bytes) {
                Ok(text) => self.buffer(WsMessage::Text(text)),
                Err(error) => {
                    tracing::error!(%error, "an encoded frame is not UTF-8");
                    Ok(())
                }
            },
            Codec::MsgPack => self.buffer(WsMessage::Binary(bytes)),
        }
    }

    fn buffer(&mut self, message: WsMessage) -> Result<(), Gone> {
        self.ws.buffer(message).map_err(|_| Gone)
    }

    /// Writes what is queued, in one write when the socket takes it. A
    /// client that does not read gets the client timeout to start again.
    async fn flush(&mut self) -> Result<(), Gone> {
        let mut flush = std::pin::pin!(self.ws.flush());
        let flushed = match flush.as_mut().now_or_never() {
            Some(flushed) => flushed,
            // Boxed: the timer would otherwise size every session's future.
            None => Box::pin(tokio::time::timeout(
                self.state.limits.client_timeout,
                flush,
            ))
            .await
            .map_err(|_| Gone)?,
        };
        flushed.map_err(|_| Gone)
    }

    fn send_error(
        &mut self,
        request_id: Option<String>,
        code: ErrorCode,
        message: String,
    ) -> Result<(), Gone> {
        self.send_error_frame(ErrorFrame {
            request_id,
            code,
            message,
            retry_after_ms: None,
        })
    }

    /// An engine's refusal: its code, its text, and its retry hint if shed.
    fn send_engine_error(&mut self, request_id: String, error: &EngineError) -> Result<(), Gone> {
        self.send_error_frame(ErrorFrame {
            request_id: Some(request_id),
            code: error.code(),
            message: error.to_string(),
            retry_after_ms: error.retry_after_ms(),
        })
    }

    fn send_error_frame(&mut self, frame: ErrorFrame) -> Result<(), Gone> {
        metrics::counter!("switchboard_command_errors_total", "code" => frame.code.as_str())
            .increment(1);
        self.send(&ServerFrame::Error(frame))
    }

    /// Handles one client frame. `Some(ending)` ends the session.
    /// `framing` is the codec whose kind of frame this came in (text for
    /// JSON, binary for MessagePack): a frame of the other kind is refused.
    async fn command(&mut self, bytes: &[u8], framing: Codec) -> Option<Ending> {
        // Every frame counts against the rate, malformed ones too.
        let limited = self.limiter.check().is_err();
        let decoded = match &self.subject {
            _ if framing != self.codec => Err(DecodeError {
                // Refused, but answered with its request id when readable.
                request_id: Codec::ALL.into_iter().find_map(|codec| {
                    let value = codec.decode_value(bytes).ok()?;
                    value.get("request_id")?.as_str().map(str::to_owned)
                }),
                message: match self.codec {
                    Codec::Json => "a switchboard.v1.json session takes text frames".into(),
                    Codec::MsgPack => "a switchboard.v1.msgpack session takes binary frames".into(),
                },
            }),
            Subject::Agent(_) => self
                .codec
                .decode_command::<AgentCommand>(bytes)
                .map(|(id, command)| (id, Command::Agent(command))),
            Subject::Customer(_) => self
                .codec
                .decode_command::<CustomerCommand>(bytes)
                .map(|(id, command)| (id, Command::Customer(command))),
        };
        if limited {
            let request_id = match &decoded {
                Ok((request_id, _)) => Some(request_id.clone()),
                Err(error) => error.request_id.clone(),
            };
            let sent = self.send_error(
                request_id,
                ErrorCode::RateLimited,
                "too many commands: slow down".into(),
            );
            return sent.is_err().then_some(None);
        }
        let (request_id, command) = match decoded {
            Ok(decoded) => decoded,
            Err(DecodeError {
                request_id,
                message,
            }) => {
                let sent = self.send_error(request_id, ErrorCode::BadRequest, message);
                return sent.is_err().then_some(None);
            }
        };
        metrics::counter!("switchboard_commands_total", "type" => command.name()).increment(1);
        // Every command has a span. Exported (info) when an OTLP endpoint
        // is set; otherwise at debug, which the default filter turns off at
        // the callsite, so its fields are not formatted on every command.
        let span = if self.state.trace_commands {
            tracing::info_span!("command", kind = command.name(), %request_id)
        } else {
            tracing::debug_span!("command", kind = command.name(), %request_id)
        };
        if matches!(
            command,
            Command::Agent(AgentCommand::RefreshToken)
                | Command::Customer(CustomerCommand::RefreshToken)
        ) {
            return match self.refresh_token(request_id.clone()).await {
                Ok(ack) => self.send(&ServerFrame::Ack(ack)).is_err().then_some(None),
                // Logged out since: no new token, and the session ends.
                Err(error @ EngineError::Unauthorized(_)) => {
                    let _ = self.send_engine_error(request_id, &error);
                    Some(Some(close_frame(CloseCode::Normal, "logged out")))
                }
                // The check could not be made (the database): try again.
                Err(error) => self
                    .send_engine_error(request_id, &error)
                    .is_err()
                    .then_some(None),
            };
        }
        let engine = &self.state.engine;
        let result: Result<Outcome, EngineError> = async {
            match (&self.subject, command) {
                (Subject::Agent(agent), Command::Agent(command)) => {
                    engine
                        .agent_command(agent, request_id.clone(), command)
                        .await
                }
                (Subject::Customer(conversation), Command::Customer(command)) => {
                    engine
                        .customer_command(conversation, request_id.clone(), command)
                        .await
                }
                _ => Err(EngineError::Internal(
                    "command does not match the token".into(),
                )),
            }
        }
        .instrument(span)
        .await;
        let sent = match result {
            Ok(outcome) => self.reply(outcome),
            Err(error) => self.send_engine_error(request_id, &error).map(|()| false),
        };
        match sent {
            Err(_) => Some(None),
            Ok(true) => Some(Some(close_frame(CloseCode::Normal, "logged out"))),
            Ok(false) => None,
        }
    }

    /// `refresh_token`: a new token for the same subject, and the session
    /// now ends when that one expires.
    async fn refresh_token(&mut self, request_id: String) -> Result<Ack, EngineError> {
        if let Subject::Agent(agent) = &self.subject {
            self.state
                .engine
                .check_agent_token(agent, self.token_issued_at_ms)
                .await?;
        }
        let signer = &self.state.signer;
        let issued_at_ms = unix_now_ms();
        let token = signer.issue_at_ms(&self.subject, issued_at_ms);
        self.token_issued_at_ms = issued_at_ms;
        self.token_expires_at = signer.expires_at(issued_at_ms);
        let mut ack = Ack::new(request_id);
        ack.token = Some(token);
        ack.token_expires_at = Some(expiry_timestamp(self.token_expires_at));
        Ok(ack)
    }

    /// Sends a command's replay (resume), then its ack. `Ok(true)` when the
    /// session should end.
    fn reply(&mut self, outcome: Outcome) -> Result<bool, Gone> {
        for message in outcome.replay {
            let seen = self
                .seen
                .entry(message.conversation_id.clone())
                .or_default();
            *seen = (*seen).max(message.seq);
            self.send(&ServerFrame::Message((*message).clone()))?;
        }
        self.send(&ServerFrame::Ack(outcome.ack))?;
        Ok(outcome.close_session)
    }
}

enum Command {
    Agent(AgentCommand),
    Customer(CustomerCommand),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Agent(command) => command.name(),
            Command::Customer(command) => command.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_of_sessions_opened_together_leave_together() {
        let period = Duration::from_secs(15);
        let opened = tokio::time::Instant::now();
        let mut timers = Vec::new();
        for _ in 0..10 {
            timers.push(heartbeat(period));
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        let mut first_pings = std::collections::BTreeSet::new();
        for timer in &mut timers {
            first_pings.insert(timer.tick().await);
        }
        // Ten sessions opened within 200 ms: at most two slots of the grid.
        assert!(first_pings.len() <= 2, "{first_pings:?}");
        for ping in &first_pings {
            assert!(*ping >= opened + period);
            assert!(*ping <= opened + period + Duration::from_millis(200) + PING_GRID);
        }
        // Later pings keep the period.
        let next = timers[0].tick().await;
        assert_eq!(next - *first_pings.first().unwrap_or(&next), period);
    }
}
