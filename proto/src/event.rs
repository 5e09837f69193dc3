//! What the server sends over the WebSocket: the reply to each command
//! (`ack` or `error`) and the events.

use crate::error::ErrorCode;
use crate::ids::*;
use crate::model::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One server frame. Serialized with `type` beside the variant's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ack(Ack),
    Error(ErrorFrame),
    Hello(Hello),
    AgentState(AgentStateEvent),
    Offer(Offer),
    OfferWithdrawn(OfferWithdrawn),
    Conversation(ConversationSummary),
    Message(Message),
    Typing(Typing),
    WrapUpRequired(WrapUpRequired),
    /// Extension: something the agent should be told that is not a state
    /// change, e.g. a conference invitee that did not answer.
    Notice(Notice),
    /// Extension: the node is draining; reconnect (to any node) and resume.
    Reconnect(Reconnect),
    /// Extension (customer): the place in the queue and the estimated wait.
    QueueStatus(QueueStatus),
}

/// The successful reply to a command. Which optional fields are present
/// depends on the command (`send`: `seq`, `id`; `set_state`: `state`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<ClientMsgId>,
    /// `send_template`: the text as filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `set_state`: the agent's state now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// `accept`, `transfer`, `conference`, `end`...: the conversation now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationSummary>,
    /// `resume`: how many `message` events were replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<u64>,
    /// `refresh_token`: the new token (use it from now on, reconnects
    /// included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `refresh_token`: when the new token expires; the session closes
    /// then (close code 4001) unless refreshed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Timestamp>,
}

impl Ack {
    pub fn new(request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Absent only when the frame was too malformed to read one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
    /// `unavailable` from a node past its capacity: try again after this
    /// long (the command was not carried out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// The first frame of every session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub server_time: Timestamp,
    pub you: You,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_state: Option<AgentStateEvent>,
    pub conversations: Vec<ConversationSummary>,
    #[serde(default)]
    pub offers: Vec<Offer>,
    /// When the session's token expires: the session closes then (close
    /// code 4001, "token expired") unless the client sent `refresh_token`
    /// first. Set by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Timestamp>,
}

/// `hello.you`: the agent's profile, or the customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum You {
    Agent(AgentProfile),
    Customer(CustomerYou),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerYou {
    pub conversation_id: ConversationId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentStateEvent {
    pub state: AgentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<IdleReasonId>,
    pub since: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferWithdrawn {
    pub conversation_id: ConversationId,
    /// Extension: which offer, so a client with a newer offer keeps it.
    pub offer_id: OfferId,
    pub reason: WithdrawReason,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Typing {
    pub conversation_id: ConversationId,
    pub from: Author,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WrapUpRequired {
    pub conversation_id: ConversationId,
    pub reasons: Vec<Reason>,
    pub auto_wrap_up_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub conversation_id: ConversationId,
    /// A stable code: `conference_no_answer`.
    pub code: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reconnect {
    /// Milliseconds to wait (with jitter) before reconnecting.
    pub after_ms: u64,
}
