//! Event fan-out to client sessions. Actors publish frames to a topic (an
//! agent, or a conversation's customer); every session subscribed to that
//! topic on this node gets them, in publish order.
//!
//! In a cluster every topic is also a Redis channel: a publish reaches this
//! node's sessions at once and the other nodes' sessions through the bus.
//!
//! A session that cannot keep up (its buffer is full) is dropped from the
//! topic rather than slowing the actor: its channel closes, the session
//! closes its socket, and the client reconnects and resumes by `seq`.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use switchboard_proto::codec::Codec;
use switchboard_proto::event::Reconnect;
use switchboard_proto::{AgentId, ConversationId, ServerFrame};
use tokio::sync::{mpsc, oneshot};

use super::bus::Bus;

pub type Frame = Arc<Published>;

/// A frame on its way to sessions, with its encoding in each codec, made
/// by the first session that sends it and shared by the rest: a chat
/// message goes to the sender's sessions (the echo) and to the other
/// party's, so it is encoded once per codec rather than once per session.
#[derive(Debug)]
pub struct Published {
    frame: ServerFrame,
    /// Indexed by [`codec_slot`]; `None` inside: the frame did not encode.
    encoded: [OnceLock<Option<Bytes>>; 2],
}

impl Published {
    pub fn new(frame: ServerFrame) -> Frame {
        Arc::new(Self {
            frame,
            encoded: [OnceLock::new(), OnceLock::new()],
        })
    }

    pub fn frame(&self) -> &ServerFrame {
        &self.frame
    }

    /// The frame in `codec` (JSON text or MessagePack bytes); `None` when
    /// it cannot be encoded (logged once).
    pub fn encoded(&self, codec: Codec) -> Option<Bytes> {
        self.encoded[codec_slot(codec)]
            .get_or_init(|| match codec.encode(&self.frame) {
                Ok(encoded) => Some(Bytes::from(encoded.into_bytes())),
                Err(error) => {
                    tracing::error!(%error, "could not encode a frame");
                    None
                }
            })
            .clone()
    }
}

fn codec_slot(codec: Codec) -> usize {
    match codec {
        Codec::Json => 0,
        Codec::MsgPack => 1,
    }
}

/// Equal when the frames are: the encodings follow from them.
impl PartialEq for Published {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}

/// Whom a frame is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every session of one agent (one agent may have several tabs).
    Agent(AgentId),
    /// Every session of a conversation's customer.
    Customer(ConversationId),
}

/// Frames a session may have queued before it counts as too slow.
const SESSION_BUFFER: usize = 1024;

struct Subscriber {
    id: u64,
    sender: mpsc::Sender<Frame>,
}

#[derive(Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, Vec<Subscriber>>>,
    next_id: AtomicU64,
    bus: OnceLock<Arc<Bus>>,
}

/// A session's subscription; dropping it unsubscribes.
pub struct Subscription {
    pub frames: mpsc::Receiver<Frame>,
    topic: Topic,
    id: u64,
    hub: Arc<Hub>,
    /// Fires when the cluster channel of the topic is subscribed.
    ready: Option<oneshot::Receiver<()>>,
}

impl Subscription {
    /// Waits (bounded) until frames published anywhere in the cluster reach
    /// this subscription, so a snapshot taken after it misses nothing.
    pub async fn subscribed(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ready).await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.topic, self.id);
    }
}

impl Hub {
    /// Joins a cluster: topics become Redis channels too.
    pub fn connect(&self, bus: Arc<Bus>) {
        let _ = self.bus.set(bus);
    }

    pub fn subscribe(self: &Arc<Self>, topic: Topic) -> Subscription {
        let (sender, frames) = mpsc::channel(SESSION_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The channel is (un)subscribed under the lock, so the bus gets
        // subscribes and unsubscribes in the order the topic gained its
        // first session and lost its last.
        let ready = {
            let mut topics = self.topics.lock();
            let subscribers = topics.entry(topic.clone()).or_default();
            subscribers.push(Subscriber { id, sender });
            match self.bus.get() {
                Some(bus) if subscribers.len() == 1 => Some(bus.subscribe_topic(&topic)),
                _ => None,
            }
        };
        metrics::gauge!("switchboard_sessions").increment(1.0);
        Subscription {
            frames,
            topic,
            id,
            hub: self.clone(),
            ready,
        }
    }

    /// Tells every session to reconnect and resume, and ends it: events may
    /// have been missed (the cluster connection dropped, or this node lost
    /// its lease).
    pub fn reset_all(&self, after_ms: u64) {
        let frame = Published::new(ServerFrame::Reconnect(Reconnect { after_ms }));
        let mut ended = 0;
        // Unsubscribed under the lock, so a session subscribing right after
        // queues its subscribe after these (never before an unsubscribe).
        let mut topics = self.topics.lock();
        for (topic, subscribers) in topics.drain() {
            for subscriber in subscribers {
                let _ = subscriber.sender.try_send(frame.clone());
                ended += 1;
            }
            if let Some(bus) = self.bus.get() {
                bus.unsubscribe_topic(&topic);
            }
        }
        drop(topics);
        metrics::gauge!("switchboard_sessions").decrement(ended as f64);
        tracing::info!(sessions = ended, "sessions told to reconnect and resume");
    }

    fn unsubscribe(&self, topic: &Topic, id: u64) {
        let mut topics = self.topics.lock();
        if let Some(subscribers) = topics.get_mut(topic) {
            let before = subscribers.len();
            subscribers.retain(|subscriber| subscriber.id != id);
            if subscribers.len() < before {
                metrics::gauge!("switchboard_sessions").decrement(1.0);
            }
            if subscribers.is_empty() {
                topics.remove(topic);
                if let Some(bus) = self.bus.get() {
                    bus.unsubscribe_topic(topic);
                }
            }
        }
    }

    /// Ends every subscription of `topic` (an agent logged out): each
    /// session's channel closes, so the session ends.
    pub fn close(&self, topic: &Topic) {
        if let Some(bus) = self.bus.get() {
            bus.close_topic(topic);
        }
        self.close_local(topic);
    }

    /// Ends `topic`'s sessions on this node.
    pub fn close_local(&self, topic: &Topic) {
        let mut topics = self.topics.lock();
        if let Some(subscribers) = topics.remove(topic) {
            metrics::gauge!("switchboard_sessions").decrement(subscribers.len() as f64);
            if let Some(bus) = self.bus.get() {
                bus.unsubscribe_topic(topic);
            }
        }
    }

    /// Delivers to every subscriber of `topic` in the cluster.
    pub fn publish(&self, topic: &Topic, frame: Frame) {
        if let Some(bus) = self.bus.get() {
            bus.publish_topic(topic, &frame);
        }
        self.publish_local(topic, frame);
    }

    /// Delivers to every subscriber of `topic` on this node; drops those
    /// that are full or gone.
    pub fn publish_local(&self, topic: &Topic, frame: Frame) {
        let mut topics = self.topics.lock();
        let Some(subscribers) = topics.get_mut(topic) else {
            return;
        };
        let before = subscribers.len();
        subscribers.retain(
            |subscriber| match subscriber.sender.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(?topic, "session too slow; dropping it so it resumes");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        );
        let dropped = before - subscribers.len();
        if dropped > 0 {
            metrics::gauge!("switchboard_sessions").decrement(dropped as f64);
        }
        if subscribers.is_empty() {
            topics.remove(topic);
            if let Some(bus) = self.bus.get() {
                bus.unsubscribe_topic(topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::event::{Reconnect, ServerFrame};

    fn frame(n: u64) -> Frame {
        Published::new(ServerFrame::Reconnect(Reconnect { after_ms: n }))
    }

    #[test]
    fn a_published_frame_is_encoded_once_per_codec() {
        let published = frame(7);
        for codec in Codec::ALL {
            let first = published.encoded(codec).expect("encodes");
            let again = published.encoded(codec).expect("encodes");
            // The same buffer, shared: no second encoding.
            assert_eq!(first.as_ptr(), again.as_ptr());
            let expected = codec
                .encode(published.frame())
                .expect("encodes")
                .into_bytes();
            assert_eq!(first.as_ref(), expected.as_slice());
        }
    }

    #[test]
    fn every_session_of_a_topic_gets_frames_in_publish_order() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Agent(AgentId::new("alice"));
        let mut tab1 = hub.subscribe(topic.clone());
        let mut tab2 = hub.subscribe(topic.clone());
        hub.publish(&topic, frame(1));
        hub.publish(&topic, frame(2));
        for tab in [&mut tab1, &mut tab2] {
            assert_eq!(tab.frames.try_recv().unwrap(), frame(1));
            assert_eq!(tab.frames.try_recv().unwrap(), frame(2));
        }
    }

    #[test]
    fn slow_session_is_dropped_not_waited_for() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Customer(ConversationId::new("c"));
        let mut slow = hub.subscribe(topic.clone());
        for n in 0..(SESSION_BUFFER as u64 + 1) {
            hub.publish(&topic, frame(n));
        }
        let mut received = 0;
        while slow.frames.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, SESSION_BUFFER);
        assert!(matches!(
            slow.frames.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn closing_a_topic_ends_its_sessions() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Agent(AgentId::new("alice"));
        let mut tab1 = hub.subscribe(topic.clone());
        let mut tab2 = hub.subscribe(topic.clone());
        let mut other = hub.subscribe(Topic::Agent(AgentId::new("bob")));
        hub.close(&topic);
        for tab in [&mut tab1, &mut tab2] {
            assert!(matches!(
                tab.frames.try_recv(),
                Err(mpsc::error::TryRecvError::Disconnected)
            ));
        }
        assert!(matches!(
            other.frames.try_recv(),
            Err(mpsc::error::TryRecvError::Empty)
        ));
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Agent(AgentId::new("bob"));
        drop(hub.subscribe(topic.clone()));
        assert!(hub.topics.lock().is_empty());
    }
}
