//! What every simulated client of one run shares: the targets, the
//! workload, the metrics and the correctness tracker.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::codec::Codec;

use crate::client::{self, Node, WsSink, WsSource};
use crate::stats::Metrics;
use crate::tracker::Tracker;

/// How simulated people behave.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Customer messages after the first one (sent with `POST /chats`).
    pub messages: u32,
    pub message_interval: Duration,
    /// Characters of text per message.
    pub text_len: usize,
    /// Agent think time before accepting an offer.
    pub think: Duration,
    /// Share of new offers an agent lets expire (RONA), then sets itself
    /// available again after its think time.
    pub rona_share: f64,
    /// Share of accepted chats the owner transfers (to the queue) after its
    /// first reply.
    pub transfer_share: f64,
    /// Share of accepted chats the owner conferences another agent into.
    pub conference_share: f64,
    /// How long a customer waits for an agent before leaving.
    pub patience: Duration,
    /// Agents end a chat after answering its last message (false: they hold
    /// every chat until the customer leaves, for `connections`).
    pub agents_end: bool,
}

/// Between two reconnect attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

pub struct Shared {
    pub nodes: Vec<Node>,
    /// Nodes per source address, so customer REST calls use the address
    /// their socket uses: `nodes_by_source[source][node]`.
    pub nodes_by_source: Vec<Vec<Node>>,
    pub sources: Vec<Option<IpAddr>>,
    pub codec: Codec,
    pub queue: String,
    pub workload: Workload,
    pub metrics: Arc<Metrics>,
    pub tracker: Tracker,
    /// Per agent (by index): free slots while available, else 0. Read to
    /// pick a conference target that is likely to accept.
    pub agent_free: Vec<AtomicI32>,
    pub agent_ids: parking_lot::Mutex<Vec<String>>,
    /// Set for `failover`: clients that lose their node reconnect to another
    /// one and resume instead of giving up.
    pub failover: Option<Failover>,
}

/// What clients need to know to survive a node going away.
pub struct Failover {
    /// Nodes the scenario knows are down (killed and not ready again).
    down: Vec<AtomicBool>,
    /// Round-robin cursor over the nodes that are up.
    cursor: AtomicUsize,
    /// How long a client keeps trying to reconnect.
    pub reconnect_within: Duration,
    /// Agents keep (and resume) chats they hold that a reconnect's `hello`
    /// leaves out, instead of dropping them.
    pub resume_unlisted: bool,
}

impl Failover {
    pub fn new(nodes: usize, reconnect_within: Duration, resume_unlisted: bool) -> Self {
        Self {
            down: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
            cursor: AtomicUsize::new(0),
            reconnect_within,
            resume_unlisted,
        }
    }
}

/// Where one client connects: node and source address, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub node: usize,
    pub source: usize,
}

impl Shared {
    pub fn new(
        urls: &[String],
        sources: &[IpAddr],
        codec: Codec,
        queue: String,
        workload: Workload,
        agents: usize,
    ) -> anyhow::Result<Arc<Self>> {
        Self::build(urls, sources, codec, queue, workload, agents, None).map(Arc::new)
    }

    /// Like [`Shared::new`], for `failover`: clients reconnect to another
    /// node when theirs goes away.
    pub fn new_resilient(
        urls: &[String],
        sources: &[IpAddr],
        codec: Codec,
        queue: String,
        workload: Workload,
        agents: usize,
        failover: Failover,
    ) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            failover.down.len() == urls.len(),
            "failover state for {} nodes, {} given",
            failover.down.len(),
            urls.len()
        );
        Self::build(
            urls,
            sources,
            codec,
            queue,
            workload,
            agents,
            Some(failover),
        )
        .map(Arc::new)
    }

    fn build(
        urls: &[String],
        sources: &[IpAddr],
        codec: Codec,
        queue: String,
        workload: Workload,
        agents: usize,
        failover: Option<Failover>,
    ) -> anyhow::Result<Self> {
        let sources: Vec<Option<IpAddr>> = if sources.is_empty() {
            vec![None]
        } else {
            sources.iter().copied().map(Some).collect()
        };
        let nodes = urls
            .iter()
            .map(|url| Node::new(url, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let nodes_by_source = sources
            .iter()
            .map(|source| {
                urls.iter()
                    .map(|url| Node::new(url, *source))
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let metrics = Arc::new(Metrics::default());
        Ok(Self {
            nodes,
            nodes_by_source,
            sources,
            codec,
            queue,
            workload,
            tracker: Tracker::new(metrics.clone()),
            metrics,
            agent_free: (0..agents).map(|_| AtomicI32::new(0)).collect(),
            agent_ids: parking_lot::Mutex::new(vec![String::new(); agents]),
            failover,
        })
    }

    /// A random available agent with a free slot other than `me`.
    pub fn conference_target(&self, me: usize) -> Option<String> {
        let count = self.agent_free.len();
        if count < 2 {
            return None;
        }
        let start = rand::random_range(0..count);
        let ids = self.agent_ids.lock();
        (0..count)
            .map(|offset| (start + offset) % count)
            .find(|&index| index != me && self.agent_free[index].load(Ordering::Relaxed) > 0)
            .and_then(|index| ids.get(index).cloned())
    }

    /// Customer `n`'s node and source address. In `failover`, a node known
    /// to be down is skipped (round-robin over the others).
    pub fn customer_slot(&self, n: u64) -> Slot {
        let source = (n as usize) % self.sources.len();
        let node = (n as usize / self.sources.len()) % self.nodes.len();
        let node = if self.is_down(node) {
            self.next_node(node)
        } else {
            node
        };
        Slot { node, source }
    }

    pub fn node_at(&self, slot: Slot) -> &Node {
        &self.nodes_by_source[slot.source][slot.node]
    }

    pub fn source_at(&self, slot: Slot) -> Option<IpAddr> {
        self.sources[slot.source]
    }

    pub fn is_down(&self, node: usize) -> bool {
        self.failover
            .as_ref()
            .is_some_and(|f| f.down[node].load(Ordering::Relaxed))
    }

    /// The scenario learned that `node` went down (or is back).
    pub fn mark_down(&self, node: usize, down: bool) {
        if let Some(failover) = &self.failover {
            failover.down[node].store(down, Ordering::Relaxed);
        }
    }

    /// The next node to use instead of `not`: round-robin over the nodes not
    /// known to be down, never `not` itself unless it is the only node.
    pub fn next_node(&self, not: usize) -> usize {
        let count = self.nodes.len();
        if count < 2 {
            return 0;
        }
        let start = self
            .failover
            .as_ref()
            .map_or(0, |f| f.cursor.fetch_add(1, Ordering::Relaxed));
        let candidates = (0..count).map(|offset| (start + offset) % count);
        let mut fallback = None;
        for node in candidates.filter(|&node| node != not) {
            if !self.is_down(node) {
                return node;
            }
            fallback.get_or_insert(node);
        }
        fallback.unwrap_or(not)
    }

    /// `failover`: a client lost its socket to `slot.node`; connects `token`
    /// to the other nodes in turn until one takes it or the reconnect window
    /// (from `lost_at`) has passed. Returns the new slot and socket.
    pub async fn reconnect(
        &self,
        slot: Slot,
        token: &str,
        lost_at: Instant,
    ) -> Option<(Slot, WsSink, WsSource)> {
        let within = self.failover.as_ref()?.reconnect_within;
        let deadline = lost_at + within;
        let mut from = slot.node;
        loop {
            let next = Slot {
                node: self.next_node(from),
                source: slot.source,
            };
            let attempt = tokio::time::timeout_at(
                deadline.into(),
                client::connect_ws(self.node_at(next), token, self.codec, self.source_at(next)),
            )
            .await;
            match attempt {
                Ok(Ok((sink, stream))) => return Some((next, sink, stream)),
                Ok(Err(_)) => {}
                Err(_) => return None,
            }
            if Instant::now() + RECONNECT_PAUSE >= deadline {
                return None;
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
            from = next.node;
        }
    }

    pub fn text(&self, prefix: &str) -> String {
        let mut text = String::with_capacity(self.workload.text_len.max(prefix.len()));
        text.push_str(prefix);
        while text.len() < self.workload.text_len {
            text.push_str(" lorem");
        }
        text
    }
}
