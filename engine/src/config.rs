//! What the engine needs to know, already validated. The gateway reads the
//! TOML file and environment and builds this; the engine never parses
//! configuration itself.

use std::time::Duration;
use switchboard_proto::model::Reason;
use switchboard_proto::{AgentId, NodeId, QueueId, TemplateId, WrapUpReasonId};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This node's id (in a cluster, unique per node).
    pub node_id: NodeId,
    pub routing: RoutingConfig,
    /// Longest message text, in characters.
    pub max_message_chars: usize,
    /// Conversations accepted within this time count toward service level.
    pub service_level: Duration,
    /// `[stats] short_abandon_s`: abandoned within this wait is a short
    /// abandon (left out of service level).
    pub short_abandon: Duration,
    /// `[stats] time_zone`: whose "today" `/api/v1/stats` reports.
    pub time_zone: chrono_tz::Tz,
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentConfig>,
    pub wrap_up_reasons: Vec<Reason>,
    /// The reason an automatic wrap-up records; one of `wrap_up_reasons`.
    pub default_wrap_up_reason: WrapUpReasonId,
    pub idle_reasons: Vec<Reason>,
    pub templates: Vec<TemplateConfig>,
    /// `[webhooks]`: delivery and its targets.
    pub webhooks: crate::events::webhooks::WebhookConfig,
    /// `[limits] overload_target_ms`: when the node sheds work.
    pub overload: crate::admission::OverloadConfig,
}

#[derive(Clone, Debug)]
pub struct RoutingConfig {
    /// How long an agent has to accept an offer before RONA.
    pub rona_timeout: Duration,
    /// How long an agent has to wrap up before the default reason is recorded.
    pub auto_wrap_up: Duration,
    pub default_max_chats: u32,
    /// A waiting customer hears of a new place in the queue (or a new
    /// estimate) at most this often: the queue sends changed statuses at
    /// most once per interval.
    pub queue_status_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub id: QueueId,
    pub name: String,
}

/// An agent as the engine sees it. Credentials stay in the gateway.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub id: AgentId,
    pub name: String,
    pub queues: Vec<QueueId>,
    pub max_chats: u32,
    /// `agent`, and `supervisor` for the stats and supervisor view.
    pub roles: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct TemplateConfig {
    pub id: TemplateId,
    pub name: String,
    pub text: String,
}

/// How a node joins a cluster (`[cluster]` with a `redis_url`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// Prefix of every Redis key and channel.
    pub key_prefix: String,
    /// A node whose heartbeat is older than this is dead: its actors move.
    pub heartbeat_ttl: Duration,
    /// How long a command to an actor on another node waits for its answer.
    pub request_timeout: Duration,
}
