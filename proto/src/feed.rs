//! What Switchboard tells other systems (part 2, section 3): the domain
//! events everything that happens yields, read in order with a cursor
//! (`GET /api/v1/events`) or pushed to webhooks, and the API keys and
//! webhooks that administer it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AgentId, ConversationId, CustomerId, QueueId, Timestamp};

macro_rules! event_types {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// Every event type, as the `type` field names it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

/// By hand: the derive names the variants, not their wire names.
impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|kind| kind.as_str())))
            .description(Some("An event type, as the `type` field names it."))
            .into()
    }
}

impl ToSchema for EventType {}

event_types! {
    ConversationCreated => "conversation.created", "A customer started a chat (`POST /chats`).";
    ConversationQueued => "conversation.queued", "It waits in a queue: on creation, after a transfer to a queue, after a RONA.";
    ConversationOffered => "conversation.offered", "Offered to an agent (routed, or a transfer to that agent).";
    ConversationRona => "conversation.rona", "The offered agent did not accept in time.";
    ConversationAccepted => "conversation.accepted", "An agent accepted and owns the chat.";
    ConversationTransferred => "conversation.transferred", "The owner handed the chat to a queue or an agent.";
    ConversationOverflowed => "conversation.overflowed", "Moved to its queue's overflow queue.";
    ConferenceRequested => "conference.requested", "The owner invited another agent.";
    ConferenceStarted => "conference.started", "The invited agent joined.";
    ConferenceEnded => "conference.ended", "The guest left, or the invitation was withdrawn or not answered.";
    MessageCreated => "message.created", "A message in the thread (customer, agent or system).";
    ConversationEnded => "conversation.ended", "The owner or the customer ended the chat.";
    ConversationAbandoned => "conversation.abandoned", "The customer left before any agent accepted.";
    WrapUpSubmitted => "wrap_up.submitted", "An agent's wrap-up is in (or the automatic one).";
    ConversationClosed => "conversation.closed", "Every wrap-up is in: nothing more happens.";
    AgentLoggedIn => "agent.logged_in", "An agent logged in.";
    AgentStateChanged => "agent.state_changed", "An agent's state changed (available, idle with a reason, rona).";
    AgentLoggedOut => "agent.logged_out", "An agent logged out.";
    OfflineMessageCreated => "offline_message.created", "A customer left a message while the queue was closed.";
    CustomerErased => "customer.erased", "A customer's personal data was erased (the id only).";
    AdminChanged => "admin.changed", "The directory was changed at runtime.";
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event as it is read and delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Where this event is in the one global order: read on with
    /// `after=<cursor>`. Opaque.
    pub cursor: String,
    /// Unique; a receiver de-duplicates by it.
    pub id: String,
    #[serde(rename = "type")]
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
    /// The type's own fields (`docs/protocol.md` lists them).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `GET /api/v1/events`: the events after the cursor, oldest first.
/// `next_cursor` is where to read on (the same cursor when none was newer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next_cursor: String,
}

/// What an API key may do. Checked on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// `GET /api/v1/events`.
    #[serde(rename = "events:read")]
    EventsRead,
    /// The record: search, export, a conversation, its transcript.
    #[serde(rename = "records:read")]
    RecordsRead,
    /// Reports.
    #[serde(rename = "reports:read")]
    ReportsRead,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::EventsRead, Scope::RecordsRead, Scope::ReportsRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsRead => "events:read",
            Scope::RecordsRead => "records:read",
            Scope::ReportsRead => "reports:read",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == name)
    }
}

/// `POST /api/v1/admin/api-keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewApiKey {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// An API key as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub created_by: AgentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// The answer to a create: the key itself, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    /// Send as `Authorization: Bearer <key>`. Stored only as a hash.
    pub key: String,
    pub name: String,
    pub scopes: Vec<Scope>,
}

/// `POST /api/v1/admin/webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewWebhook {
    #[schema(pattern = "^https?://")]
    pub url: String,
    /// Event types to deliver; empty: every type.
    #[serde(default)]
    pub types: Vec<String>,
    /// Signs each delivery (`Switchboard-Signature`); at least 16 characters.
    #[schema(min_length = 16)]
    pub secret: String,
    /// Deliver from after this cursor; default: events from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// A webhook as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookInfo {
    pub id: String,
    pub url: String,
    pub types: Vec<EventType>,
    pub created_at: Timestamp,
    pub created_by: AgentId,
    /// The last event it acknowledged (delivery goes on after it).
    pub cursor: String,
    /// Failed attempts since its last delivery (0: healthy).
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
}

/// One attempt to deliver a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    /// `Switchboard-Delivery` of the attempt (a retry gets a new one).
    pub delivery_id: String,
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub delivered: bool,
    pub events: u32,
    pub first_cursor: String,
    pub last_cursor: String,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/v1/admin/webhooks/{id}/deliveries`: newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveries {
    pub items: Vec<WebhookDelivery>,
}

/// The body of a delivery: `POST <url>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookBatch {
    pub webhook_id: String,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_reads_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(EventType::ALL.len(), 21);
        assert_eq!(EventType::parse("conversation.nope"), None);
    }

    #[test]
    fn every_scope_reads_back_from_its_name() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(*scope));
        }
        assert_eq!(Scope::parse("admin"), None);
    }
}
