//! Events for other systems (part 2, section 3). Every transition that
//! matters yields a [`DomainEvent`] beside its other effects; the events
//! reach the database through one ordered path and are read from there, by
//! cursor (`GET /api/v1/events`) or by webhooks.
//!
//! Code map:
//! - this file: [`DomainEvent`], the stored form, and the bodies of the
//!   events no state machine yields (agents' logins, erasure).
//! - [`feed`]: the global order: cursors, reading a page, waiting for the
//!   next event (long-poll).
//! - [`outbox`]: a cluster's path into PostgreSQL: events are appended to a
//!   Redis stream in the same fenced write as the state that yielded them,
//!   and one node at a time (a lease, fenced in the database too) moves
//!   them into the `events` table, in stream order, exactly once.
//! - [`api_keys`]: keys for other systems, stored hashed, with scopes.
//! - [`webhooks`]: webhooks, their targets' rules, and delivery.

pub mod api_keys;
pub mod feed;
pub mod outbox;
pub mod webhooks;

use serde::{Deserialize, Serialize};
use switchboard_proto::feed::{Event, EventType};
use switchboard_proto::{AgentId, ConversationId, CustomerId, QueueId, Timestamp};

/// One event as it is stored. The cursor is the database's: it is given
/// when the event is committed, in commit order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// A UUID (v7: time-ordered), unique across the cluster.
    pub id: String,
    pub kind: EventType,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<QueueId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    pub data: serde_json::Value,
}

impl DomainEvent {
    pub fn new(kind: EventType, at: Timestamp, data: serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            at,
            conversation_id: None,
            agent_id: None,
            queue_id: None,
            customer_id: None,
            data,
        }
    }

    pub fn agent(mut self, agent: &AgentId) -> Self {
        self.agent_id = Some(agent.clone());
        self
    }

    /// As read, at `cursor`.
    pub fn to_wire(&self, cursor: String) -> Event {
        Event {
            cursor,
            id: self.id.clone(),
            kind: self.kind,
            at: self.at,
            conversation_id: self.conversation_id.clone(),
            agent_id: self.agent_id.clone(),
            queue_id: self.queue_id.clone(),
            customer_id: self.customer_id.clone(),
            data: self.data.clone(),
        }
    }

    /// `agent.logged_in`.
    pub fn agent_logged_in(agent: &AgentId, name: &str, at: Timestamp) -> Self {
        Self::new(
            EventType::AgentLoggedIn,
            at,
            serde_json::json!({ "agent": { "id": agent, "name": name } }),
        )
        .agent(agent)
    }

    /// `agent.state_changed`: the state it is in now.
    pub fn agent_state_changed(
        agent: &AgentId,
        state: &switchboard_proto::event::AgentStateEvent,
        at: Timestamp,
    ) -> Self {
        let data = serde_json::to_value(state).unwrap_or_default();
        Self::new(EventType::AgentStateChanged, at, data).agent(agent)
    }

    /// `agent.logged_out`.
    pub fn agent_logged_out(agent: &AgentId, at: Timestamp) -> Self {
        Self::new(EventType::AgentLoggedOut, at, serde_json::json!({})).agent(agent)
    }

    /// `customer.erased`: the id only.
    pub fn customer_erased(customer: &CustomerId, conversations: u64, at: Timestamp) -> Self {
        let mut event = Self::new(
            EventType::CustomerErased,
            at,
            serde_json::json!({ "conversations": conversations }),
        );
        event.customer_id = Some(customer.clone());
        event
    }
}
