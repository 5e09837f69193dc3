//! The cluster bus: how a message reaches an actor on another node, and a
//! session event reaches sessions on other nodes, over Redis pub/sub.
//!
//! - Each node subscribes to its inbox channel. A message for an actor
//!   owned elsewhere is published there as a MessagePack [`Envelope`] with
//!   the trace context; an ask waits for the reply envelope in its own
//!   inbox, bounded by the request timeout (`unavailable` after it).
//! - One outbound task sends everything in order, in pipelined batches. A
//!   publish that reached no subscriber (the owner died) forgets the cached
//!   owner and retries until the request timeout: the next claim finds the
//!   new owner, or takes the actor over once the dead node's lease is gone.
//! - Pub/sub is at most once. Commands carry request ids and handlers are
//!   idempotent (a `send` retried with its `client_msg_id` adds nothing);
//!   sessions heal message gaps by `seq` from the log; and when the pub/sub
//!   connection drops, every session is told to reconnect and resume.

use opentelemetry::trace::TraceContextExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::hub::{Frame, Published, Topic};
use super::key::ActorKey;
use super::placement::Placement;
use super::routed::{self, Routed};
use crate::context::EngineContext;
use crate::error::EngineError;

/// What travels in a node's inbox.
#[derive(Serialize, Deserialize)]
enum Envelope {
    Request(Request),
    Reply {
        id: u64,
        result: Result<serde_bytes::ByteBuf, EngineError>,
    },
}

#[derive(Clone, Serialize, Deserialize)]
struct Request {
    key: ActorKey,
    /// [`Routed::NAME`] of the message.
    name: String,
    body: serde_bytes::ByteBuf,
    /// Set for asks: where the reply goes.
    reply_to: Option<ReplyTo>,
    /// W3C trace context of the sender's span.
    trace: HashMap<String, String>,
    /// Not sent: how often and since when this request was tried.
    #[serde(skip)]
    attempts: u32,
    #[serde(skip, default = "Instant::now")]
    first_sent: Instant,
}

#[derive(Clone, Serialize, Deserialize)]
struct ReplyTo {
    node: String,
    id: u64,
}

/// A session event on a topic channel; no frame: the topic ends (its
/// sessions close, as when an agent logs out).
#[derive(Deserialize)]
struct TopicFrame {
    origin: String,
    frame: Option<switchboard_proto::ServerFrame>,
}

/// [`TopicFrame`] as sent: borrowed, so publishing copies nothing.
#[derive(Serialize)]
struct TopicFrameRef<'a> {
    origin: &'a str,
    frame: Option<&'a switchboard_proto::ServerFrame>,
}

enum Outbound {
    Request(Request),
    Publish {
        channel: String,
        payload: Vec<u8>,
    },
    /// Sends again, in their order, the requests held for an actor.
    Release(ActorKey),
}

/// Requests waiting to be sent again, per actor, oldest first: while an
/// actor's requests wait, newer ones for it wait behind them, so an actor
/// gets its messages in the order they were sent even across a failover.
type Held = HashMap<ActorKey, std::collections::VecDeque<Request>>;

enum Subscribing {
    Subscribe(String, Option<oneshot::Sender<()>>),
    Unsubscribe(String),
}

type ReplySender = oneshot::Sender<Result<Vec<u8>, EngineError>>;

pub struct Bus {
    placement: Arc<Placement>,
    client: redis::Client,
    engine: OnceLock<Arc<EngineContext>>,
    outbound: mpsc::UnboundedSender<Outbound>,
    subscribing: mpsc::UnboundedSender<Subscribing>,
    pending: Mutex<HashMap<u64, ReplySender>>,
    next_id: AtomicU64,
    request_timeout: Duration,
    /// The pub/sub connection is up and subscribed.
    listening: AtomicBool,
}

/// An ask's entry in the pending replies, removed when the ask ends.
struct Pending<'a> {
    bus: &'a Bus,
    id: u64,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.bus.pending.lock().remove(&self.id);
    }
}

/// Outbound publishes sent in one pipeline at most.
const BATCH: usize = 512;

impl Bus {
    /// Creates the bus and starts its tasks (outbound, pub/sub). Must run
    /// inside the actix system; [`attach`](Self::attach) the engine next.
    pub fn start(
        placement: Arc<Placement>,
        client: redis::Client,
        request_timeout: Duration,
    ) -> Arc<Self> {
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let (subscribing, subscribing_rx) = mpsc::unbounded_channel();
        let bus = Arc::new(Self {
            placement,
            client,
            engine: OnceLock::new(),
            outbound,
            subscribing,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            request_timeout,
            listening: AtomicBool::new(false),
        });
        actix::spawn(bus.clone().send_loop(outbound_rx));
        actix::spawn(bus.clone().listen_loop(subscribing_rx));
        bus
    }

    pub fn attach(&self, engine: Arc<EngineContext>) {
        let _ = self.engine.set(engine);
    }

    pub fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    fn request<M: Routed>(
        &self,
        key: ActorKey,
        message: &M,
        reply_to: Option<ReplyTo>,
    ) -> Result<Request, EngineError> {
        Ok(Request {
            key,
            name: M::NAME.to_owned(),
            body: serde_bytes::ByteBuf::from(routed::encode(message)?),
            reply_to,
            trace: current_trace_context(),
            attempts: 0,
            first_sent: Instant::now(),
        })
    }

    /// Sends without waiting for an answer.
    pub fn tell<M: Routed>(&self, key: ActorKey, message: &M) {
        match self.request(key, message, None) {
            Ok(request) => {
                let _ = self.outbound.send(Outbound::Request(request));
            }
            Err(error) => tracing::error!(%error, message = M::NAME, "message not sent"),
        }
    }

    /// Sends and waits for the answer, at most the request timeout.
    pub async fn ask<M: Routed>(
        &self,
        key: ActorKey,
        message: &M,
    ) -> Result<M::Reply, EngineError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let reply_to = ReplyTo {
            node: self.placement.me().to_owned(),
            id,
        };
        let request = self.request(key, message, Some(reply_to))?;
        let (sender, receiver) = oneshot::channel();
        self.pending.lock().insert(id, sender);
        // Forgets the pending reply however this ends, even if the asker
        // stops waiting (its future dropped).
        let _pending = Pending { bus: self, id };
        let started = Instant::now();
        let _ = self.outbound.send(Outbound::Request(request));
        let answer = tokio::time::timeout(self.request_timeout, receiver).await;
        metrics::histogram!("switchboard_bus_request_seconds", "message" => M::NAME)
            .record(started.elapsed().as_secs_f64());
        match answer {
            Ok(Ok(Ok(bytes))) => routed::decode(&bytes),
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) | Err(_) => {
                metrics::counter!("switchboard_bus_timeouts_total", "message" => M::NAME)
                    .increment(1);
                tracing::debug!(id, message = M::NAME, "no answer in time");
                Err(EngineError::Unavailable(format!(
                    "no answer from the cluster in time ({}); retry",
                    M::NAME
                )))
            }
        }
    }

    /// Sends a session event to the other nodes' sessions on `topic`.
    pub fn publish_topic(&self, topic: &Topic, frame: &Frame) {
        self.send_topic(topic, Some(frame.frame()));
    }

    /// Ends `topic`'s sessions on the other nodes.
    pub fn close_topic(&self, topic: &Topic) {
        self.send_topic(topic, None);
    }

    fn send_topic(&self, topic: &Topic, frame: Option<&switchboard_proto::ServerFrame>) {
        let envelope = TopicFrameRef {
            origin: self.placement.me(),
            frame,
        };
        match rmp_serde::to_vec_named(&envelope) {
            Ok(payload) => {
                let _ = self.outbound.send(Outbound::Publish {
                    channel: self.placement.keys().topic(topic),
                    payload,
                });
            }
            Err(error) => tracing::error!(%error, "event not encoded"),
        }
    }

    /// Subscribes this node to `topic`'s channel; the receiver fires once
    /// Redis confirmed it.
    pub fn subscribe_topic(&self, topic: &Topic) -> oneshot::Receiver<()> {
        let (ready, receiver) = oneshot::channel();
        let channel = self.placement.keys().topic(topic);
        let _ = self
            .subscribing
            .send(Subscribing::Subscribe(channel, Some(ready)));
        receiver
    }

    pub fn unsubscribe_topic(&self, topic: &Topic) {
        let channel = self.placement.keys().topic(topic);
        let _ = self.subscribing.send(Subscribing::Unsubscribe(channel));
    }

    /// Answers an ask, here or on the asking node.
    fn reply(&self, to: ReplyTo, result: Result<Vec<u8>, EngineError>) {
        if to.node == self.placement.me() {
            if let Some(sender) = self.pending.lock().remove(&to.id) {
                let _ = sender.send(result);
            }
            return;
        }
        let envelope = Envelope::Reply {
            id: to.id,
            result: result.map(serde_bytes::ByteBuf::from),
        };
        match rmp_serde::to_vec_named(&envelope) {
            Ok(payload) => {
                let _ = self.outbound.send(Outbound::Publish {
                    channel: self.placement.keys().inbox(&to.node),
                    payload,
                });
            }
            Err(error) => tracing::error!(%error, "reply not encoded"),
        }
    }

    fn fail(&self, request: Request, error: EngineError) {
        match request.reply_to {
            Some(to) => self.reply(to, Err(error)),
            None => {
                metrics::counter!("switchboard_bus_dropped_total").increment(1);
                tracing::warn!(actor = %request.key.name(), message = %request.name, %error, "message dropped");
            }
        }
    }

    /// Counts a failed attempt: `Some(delay)` to try again after, `None`
    /// when the request timeout has passed (plus one lease, for tells: a
    /// dead owner's actors need that long to be adopted) and it failed.
    fn next_attempt(&self, request: &mut Request) -> Option<Duration> {
        request.attempts += 1;
        let budget = match request.reply_to {
            Some(_) => self.request_timeout,
            None => self.request_timeout + self.placement.ttl(),
        };
        (request.first_sent.elapsed() < budget)
            .then(|| Duration::from_millis(50 * u64::from(request.attempts.min(10))))
    }

    /// Tries `request` again shortly (see [`next_attempt`](Self::next_attempt)).
    fn retry(self: &Arc<Self>, mut request: Request, error: EngineError) {
        let Some(delay) = self.next_attempt(&mut request) else {
            return self.fail(request, error);
        };
        let bus = self.clone();
        actix::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = bus.outbound.send(Outbound::Request(request));
        });
    }

    /// Holds `request` to send again after its actor's earlier held ones.
    fn hold(self: &Arc<Self>, held: &mut Held, mut request: Request, error: EngineError) {
        let Some(delay) = self.next_attempt(&mut request) else {
            return self.fail(request, error);
        };
        let key = request.key.clone();
        let waiting = held.entry(key.clone()).or_default();
        waiting.push_back(request);
        if waiting.len() == 1 {
            let bus = self.clone();
            actix::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = bus.outbound.send(Outbound::Release(key));
            });
        }
    }

    /// Sends everything queued, in order, in pipelined batches.
    async fn send_loop(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<Outbound>) {
        let mut conn = self.placement.connection();
        let mut held = Held::new();
        while let Some(first) = queue.recv().await {
            let mut batch = std::collections::VecDeque::from([first]);
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push_back(next),
                    Err(_) => break,
                }
            }
            tracing::trace!(batch = batch.len(), "sending");
            let mut pipe = redis::pipe();
            let mut sent: Vec<Option<Request>> = Vec::new();
            while let Some(item) = batch.pop_front() {
                match item {
                    Outbound::Publish { channel, payload } => {
                        pipe.cmd("PUBLISH").arg(channel).arg(payload);
                        sent.push(None);
                    }
                    Outbound::Release(key) => {
                        // The held requests go first, in their order.
                        for request in held.remove(&key).into_iter().flatten().rev() {
                            batch.push_front(Outbound::Request(request));
                        }
                    }
                    Outbound::Request(request) if held.contains_key(&request.key) => {
                        if let Some(waiting) = held.get_mut(&request.key) {
                            waiting.push_back(request);
                        }
                    }
                    Outbound::Request(request) => {
                        let owner = match self.placement.cached_owner(&request.key) {
                            Some(owner) => owner,
                            None => match self.placement.claim(&request.key).await {
                                Ok(Some(owner)) => owner,
                                Ok(None) => {
                                    let error = missing(&request.key);
                                    self.fail(request, error);
                                    continue;
                                }
                                Err(error) => {
                                    let error = EngineError::Unavailable(error.to_string());
                                    self.hold(&mut held, request, error);
                                    continue;
                                }
                            },
                        };
                        if owner == self.placement.me() {
                            self.clone().deliver_here(request).await;
                            continue;
                        }
                        match rmp_serde::to_vec_named(&Envelope::Request(request.clone())) {
                            Ok(payload) => {
                                pipe.cmd("PUBLISH")
                                    .arg(self.placement.keys().inbox(&owner))
                                    .arg(payload);
                                sent.push(Some(request));
                            }
                            Err(error) => {
                                self.fail(request, EngineError::Internal(error.to_string()))
                            }
                        }
                    }
                }
            }
            if sent.is_empty() {
                continue;
            }
            match pipe.query_async::<Vec<i64>>(&mut conn).await {
                Ok(receivers) => {
                    for (request, receivers) in sent.into_iter().zip(receivers) {
                        if let (Some(request), 0) = (request, receivers) {
                            // Nobody listens on that inbox: the owner died.
                            self.placement.forget_owner(&request.key);
                            let error =
                                EngineError::Unavailable("the actor's node is gone; retry".into());
                            self.hold(&mut held, request, error);
                        }
                    }
                }
                Err(error) => {
                    metrics::counter!("switchboard_redis_errors_total").increment(1);
                    tracing::warn!(%error, "bus publish failed");
                    for request in sent.into_iter().flatten() {
                        let error = EngineError::Unavailable(error.to_string());
                        self.hold(&mut held, request, error);
                    }
                }
            }
        }
    }

    /// Delivers a request to its actor on this node, activating it if this
    /// node owns it; forwards it if another node does. Returns once the
    /// message is in the actor's mailbox, so requests keep their order.
    async fn deliver_here(self: Arc<Self>, request: Request) {
        let Some(engine) = self.engine.get().cloned() else {
            return self.fail(request, EngineError::Unavailable("node starting".into()));
        };
        if !self.placement.lease_valid() {
            // Not an owner now: find the owner afresh on the retry.
            self.placement.forget_owner(&request.key);
            return self.retry(
                request,
                EngineError::Unavailable("this node is rejoining the cluster".into()),
            );
        }
        if !engine.directory.runs(&request.key) {
            match self.placement.claim(&request.key).await {
                Ok(Some(owner)) if owner == self.placement.me() => {}
                Ok(None) => {
                    let error = missing(&request.key);
                    return self.fail(request, error);
                }
                Ok(Some(_)) => {
                    // Another node owns it now: send it on.
                    let _ = self.outbound.send(Outbound::Request(request));
                    return;
                }
                Err(error) => {
                    return self.retry(request, EngineError::Unavailable(error.to_string()));
                }
            }
        }
        // A span per delivery when the sender traces (its context came
        // along): the command's trace goes on here, on this node.
        let span = if request.trace.is_empty() {
            tracing::Span::none()
        } else {
            let span = tracing::info_span!("bus.deliver", actor = %request.key.name(), message = %request.name);
            let _ = span.set_parent(parent_context(&request.trace));
            span
        };
        let wants_reply = request.reply_to.is_some();
        let delivered = super::routes::route(
            engine,
            request.key.clone(),
            &request.name,
            request.body.clone().into_vec(),
            wants_reply,
        )
        .instrument(span.clone())
        .await;
        match (delivered, request.reply_to) {
            (Ok(Some(answer)), Some(to)) => {
                let bus = self.clone();
                actix::spawn(
                    async move {
                        let result = answer.await;
                        bus.reply(to, result);
                    }
                    .instrument(span),
                );
            }
            (Ok(_), _) => {}
            (Err(error), Some(to)) => self.reply(to, Err(error)),
            (Err(error), None) => {
                tracing::debug!(actor = %request.key.name(), message = %request.name, %error, "message refused")
            }
        }
    }

    /// Keeps the pub/sub connection: the inbox and every topic a session
    /// here follows. After a lost connection, subscribes again and tells
    /// every session to reconnect and resume (events may have been missed).
    async fn listen_loop(self: Arc<Self>, mut subscribing: mpsc::UnboundedReceiver<Subscribing>) {
        let mut connected_before = false;
        loop {
            let pubsub = match self.client.get_async_pubsub().await {
                Ok(pubsub) => pubsub,
                Err(error) => {
                    metrics::counter!("switchboard_redis_errors_total").increment(1);
                    tracing::warn!(%error, "pub/sub connect failed; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            let (mut sink, mut stream) = pubsub.split();
            let inbox = self.placement.keys().inbox(self.placement.me());
            if let Err(error) = sink.subscribe(&inbox).await {
                tracing::warn!(%error, "inbox subscribe failed; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            // Topics are not subscribed again here: after a lost connection
            // every session is told to reconnect (events may have been
            // missed), and each subscribes anew.
            if connected_before {
                if let Some(engine) = self.engine.get() {
                    tracing::warn!("pub/sub reconnected; sessions will resume");
                    engine.hub.reset_all(200);
                }
            }
            connected_before = true;
            self.listening.store(true, Ordering::Release);
            tracing::info!(channel = %inbox, "listening on the cluster bus");
            loop {
                tokio::select! {
                    command = subscribing.recv() => {
                        let Some(command) = command else { return };
                        let result = match command {
                            Subscribing::Subscribe(channel, ready) => {
                                let result = sink.subscribe(&channel).await;
                                if let Some(ready) = ready {
                                    let _ = ready.send(());
                                }
                                result
                            }
                            Subscribing::Unsubscribe(channel) => sink.unsubscribe(&channel).await,
                        };
                        if let Err(error) = result {
                            tracing::warn!(%error, "pub/sub command failed");
                            break;
                        }
                    }
                    message = futures_util::StreamExt::next(&mut stream) => {
                        let Some(message) = message else { break };
                        self.clone().received(message.get_channel_name(), message.get_payload_bytes()).await;
                    }
                }
            }
            self.listening.store(false, Ordering::Release);
            metrics::counter!("switchboard_bus_disconnects_total").increment(1);
            tracing::warn!("pub/sub connection lost; reconnecting");
        }
    }

    async fn received(self: Arc<Self>, channel: &str, payload: &[u8]) {
        tracing::trace!(channel, bytes = payload.len(), "bus message");
        let keys = self.placement.keys();
        if let Some(topic) = keys.topic_of(channel) {
            match rmp_serde::from_slice::<TopicFrame>(payload) {
                Ok(event) if event.origin != self.placement.me() => {
                    if let Some(engine) = self.engine.get() {
                        match event.frame {
                            Some(frame) => engine.hub.publish_local(&topic, Published::new(frame)),
                            None => engine.hub.close_local(&topic),
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, channel, "undecodable event"),
            }
            return;
        }
        match rmp_serde::from_slice::<Envelope>(payload) {
            Ok(Envelope::Request(mut request)) => {
                request.first_sent = Instant::now();
                self.deliver_here(request).await;
            }
            Ok(Envelope::Reply { id, result }) => {
                if let Some(sender) = self.pending.lock().remove(&id) {
                    let _ = sender.send(result.map(serde_bytes::ByteBuf::into_vec));
                }
            }
            Err(error) => tracing::warn!(%error, channel, "undecodable envelope"),
        }
    }
}

/// The answer for an actor that exists nowhere.
fn missing(key: &ActorKey) -> EngineError {
    match key {
        ActorKey::Agent(_) => EngineError::invalid_state("the agent is not logged in"),
        ActorKey::Queue(id) => EngineError::not_found("queue", id),
        ActorKey::Conversation(id) => EngineError::not_found("conversation", id),
    }
}

/// The current span's trace context, as the configured propagator writes
/// it (W3C `traceparent` once telemetry export is on; nothing otherwise).
fn current_trace_context() -> HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut carrier)
        });
    }
    carrier
}

fn parent_context(carrier: &HashMap<String, String>) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier))
}
