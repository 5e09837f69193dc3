//! What every simulated client of one run shares: the targets, the
//! workload, the metrics and the correctness tracker.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_proto::codec::Codec;

use crate::client::Node;
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
        Ok(Arc::new(Self {
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
        }))
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

    /// Customer `n`'s node and source address.
    pub fn customer_route(&self, n: u64) -> (Node, Option<IpAddr>) {
        let source_index = (n as usize) % self.sources.len();
        let node_index = (n as usize / self.sources.len()) % self.nodes.len();
        (
            self.nodes_by_source[source_index][node_index].clone(),
            self.sources[source_index],
        )
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
