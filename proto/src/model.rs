//! The shapes shared by events, REST answers and records.

use crate::ids::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An agent's routing state. Offers go only to `available` agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Available,
    Idle,
    /// Redirection on no answer: the agent let an offer expire and gets no
    /// offer until it sets itself `available` by hand.
    Rona,
    /// Not logged in (only in directory listings and stats, never in events).
    Offline,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Available => "available",
            AgentState::Idle => "idle",
            AgentState::Rona => "rona",
            AgentState::Offline => "offline",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    Queued,
    Offered,
    Active,
    ConferenceRequested,
    Conference,
    Ended,
    Closed,
    Abandoned,
}

impl ConversationState {
    /// Closed and abandoned conversations change no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ConversationState::Closed | ConversationState::Abandoned
        )
    }

    /// The name on the wire (`conference_requested`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Queued => "queued",
            ConversationState::Offered => "offered",
            ConversationState::Active => "active",
            ConversationState::ConferenceRequested => "conference_requested",
            ConversationState::Conference => "conference",
            ConversationState::Ended => "ended",
            ConversationState::Closed => "closed",
            ConversationState::Abandoned => "abandoned",
        }
    }

    pub const ALL: [ConversationState; 8] = [
        ConversationState::Queued,
        ConversationState::Offered,
        ConversationState::Active,
        ConversationState::ConferenceRequested,
        ConversationState::Conference,
        ConversationState::Ended,
        ConversationState::Closed,
        ConversationState::Abandoned,
    ];

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    New,
    Transfer,
    Conference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    Rona,
    CustomerLeft,
    Cancelled,
    AcceptedElsewhere,
}

/// Who a participant or a message author is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Agent,
    System,
}

/// `{id, name}` of a queue or an agent, as the popover and dialogs show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

impl NamedRef {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// Who a conversation is with. A client sends `name` (and `email`); the
/// engine sets the rest, whatever the client sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    /// `cu-...`: the same for every chat of a customer whose web site
    /// signed their identity; a new one for each anonymous chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CustomerId>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Linked by a signed identity (`[widget] identity_secret`): a typed
    /// name or email never is.
    #[serde(default)]
    pub verified: bool,
    /// In an offer: how many earlier conversations this customer has.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    pub previous_conversations: Option<u64>,
}

/// A whole number written either way JSON allows (`3` or `3.0`): JSON
/// Schema's integer is both, and a client generated from the OpenAPI
/// document may send a customer it was given back with either.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Whole {
        Int(u64),
        Float(f64),
    }
    match Option::<Whole>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Whole::Int(n)) => Ok(Some(n)),
        Some(Whole::Float(f)) => crate::validation::whole_number(f)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{f} is not a whole number"))),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Participant {
    pub role: Role,
    /// The agent id, or the conversation id for the customer.
    pub id: String,
    pub name: String,
}

/// The author of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
}

impl Author {
    pub fn system() -> Self {
        Self {
            role: Role::System,
            id: None,
            name: "System".to_owned(),
        }
    }
}

/// One message of a conversation's log; also the `message` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub id: MessageId,
    pub from: Author,
    pub text: String,
    pub ts: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<ClientMsgId>,
}

/// The `conversation` event and each entry of `hello.conversations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversationSummary {
    pub conversation_id: ConversationId,
    pub state: ConversationState,
    pub queue: NamedRef,
    pub participants: Vec<Participant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<AgentId>,
    /// Extension: who the customer is, so a reloaded desktop can title the chat.
    pub customer: Customer,
    /// Extension: when the conversation was received.
    pub created_at: Timestamp,
    /// Extension: the last message's seq, so a client knows what to `resume`.
    pub last_seq: u64,
}

/// The `offer` event: everything the contact-request popover shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Offer {
    pub offer_id: OfferId,
    pub conversation_id: ConversationId,
    pub kind: OfferKind,
    pub customer: Customer,
    pub queue: NamedRef,
    /// The agent offered to.
    pub agent: NamedRef,
    /// Who transferred or invited (transfer and conference offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_agent: Option<NamedRef>,
    /// When the conversation was received: the popover timer counts from it.
    pub created_at: Timestamp,
    pub offered_at: Timestamp,
    pub expires_at: Timestamp,
    /// The thread so far.
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateInfo {
    pub id: TemplateId,
    pub name: String,
    pub text: String,
    /// The slots the text names, in order of first appearance.
    pub params: Vec<String>,
}

/// An agent's own profile (login answer, `hello.you`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentProfile {
    pub id: AgentId,
    pub name: String,
    pub max_chats: u32,
    pub queues: Vec<QueueId>,
    pub roles: Vec<String>,
}

/// One row of `GET /api/v1/queues`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueInfo {
    pub id: QueueId,
    pub name: String,
    pub waiting: u32,
    pub longest_wait_s: u64,
    pub available_agents: u32,
}

/// One row of `GET /api/v1/agents`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    pub id: AgentId,
    pub name: String,
    pub state: AgentState,
    pub active_chats: u32,
    pub max_chats: u32,
    /// Only with `?conversation_id=`: could this agent take that chat now
    /// (a transfer or a conference)? The dialogs mark who cannot, so a
    /// transfer is not refused after the click.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_take: Option<bool>,
    /// Why not, when `can_take` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<CannotTake>,
}

/// Why an agent cannot take a given chat now. The first that applies, the
/// conversation's own reasons first (they last longer than a state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CannotTake {
    /// Owner or guest of the conversation, or offered it right now.
    AlreadyInConversation,
    /// Left the conversation and has not wrapped it up yet.
    OwesWrapUp,
    /// `idle`, `rona` or logged out.
    NotAvailable,
    /// Every slot is taken (offers in flight and wrap-ups count).
    NoFreeSlot,
}

impl CannotTake {
    pub fn as_str(self) -> &'static str {
        match self {
            CannotTake::AlreadyInConversation => "already_in_conversation",
            CannotTake::OwesWrapUp => "owes_wrap_up",
            CannotTake::NotAvailable => "not_available",
            CannotTake::NoFreeSlot => "no_free_slot",
        }
    }
}

/// `queue_status` (customer): where a waiting customer stands in the queue.
/// Sent when it changes, at most once per `[routing]
/// queue_status_interval_ms` per customer, and once when the customer's
/// session opens while it waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueStatus {
    pub conversation_id: ConversationId,
    /// 1 is next in line.
    pub position: u32,
    /// Seconds, rounded up to half a minute; absent when no honest
    /// estimate can be made (then `no_estimate` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_estimate: Option<NoEstimate>,
}

/// Why a `queue_status` carries no estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoEstimate {
    /// No agent serving the queue is logged in.
    NoAgentsOnline,
    /// Agents are logged in, none is available (all idle or in RONA).
    NoAgentAvailable,
    /// Too few chats answered lately to measure a rate.
    TooLittleHistory,
}

/// Why an offer went to the agent it went to: every candidate the queue
/// weighed, in rank order, and the rule that ranked them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoutingDecision {
    pub queue: QueueId,
    pub rule: String,
    pub chosen: AgentId,
    /// How many agents were eligible.
    pub eligible: u32,
    /// The best eligible agents, best first (at most a few).
    pub candidates: Vec<RoutingCandidate>,
    /// How many agents serving the queue were not eligible.
    pub excluded_count: u32,
    /// Some of them (at most a few), and why.
    pub excluded: Vec<RoutingExclusion>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoutingCandidate {
    pub rank: u32,
    pub agent: AgentId,
    pub active_chats: u32,
    pub max_chats: u32,
    pub available_since: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoutingExclusion {
    pub agent: AgentId,
    /// `idle`, `rona` or `no_free_slot`.
    pub why: String,
}

/// How an offer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferOutcome {
    Pending,
    Accepted,
    Rona,
    CustomerLeft,
    Cancelled,
}

/// One offer in a conversation's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfferRecord {
    pub offer_id: OfferId,
    pub kind: OfferKind,
    pub agent: NamedRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_agent: Option<NamedRef>,
    pub offered_at: Timestamp,
    pub expires_at: Timestamp,
    pub outcome: OfferOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Present for offers the queue routed (`new`); transfers and conferences
    /// name their target explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingDecision>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegRole {
    Owner,
    Guest,
}

/// One agent's stretch of presence in a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Leg {
    pub agent: NamedRef,
    pub role: LegRole,
    pub joined_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<Timestamp>,
    /// `transferred`, `conference_ended` or `ended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_because: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WrapUpRecord {
    pub agent: NamedRef,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub at: Timestamp,
    /// True when the engine gave it after `auto_wrap_up_ms`.
    pub automatic: bool,
}

/// `GET /api/v1/conversations/{id}`: everything kept about a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationRecord {
    pub conversation_id: ConversationId,
    pub state: ConversationState,
    pub customer: Customer,
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub queue: NamedRef,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_accepted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// Present participants now.
    pub participants: Vec<Participant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<AgentId>,
    pub legs: Vec<Leg>,
    pub offers: Vec<OfferRecord>,
    pub wrap_ups: Vec<WrapUpRecord>,
    pub messages: Vec<Message>,
    /// The customer asked to be forgotten: no name, email, attributes or
    /// messages remain.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
}

/// `GET /api/v1/stats`, one row per queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueStats {
    pub id: QueueId,
    pub name: String,
    pub waiting: u32,
    pub longest_wait_s: u64,
    pub available_agents: u32,
    pub offered: u64,
    pub accepted: u64,
    pub abandoned: u64,
    pub rona: u64,
    /// Mean seconds from entering the queue to an agent's accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_speed_of_answer_s: Option<f64>,
    /// Percent of accepted conversations answered within `service_level_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level_pct: Option<f64>,
    /// Today (`[stats] time_zone`), as the daily report's row has it; absent
    /// before the queue's first event of the day. The counts above are
    /// since the queue first started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<crate::report::QueueReportRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentStateCounts {
    pub available: u32,
    pub idle: u32,
    pub rona: u32,
    pub offline: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub generated_at: Timestamp,
    pub service_level_s: u64,
    pub queues: Vec<QueueStats>,
    pub agents_by_state: AgentStateCounts,
    /// Every configured agent with its state and load.
    pub agents: Vec<AgentInfo>,
}

/// One conversation in a search (`GET /api/v1/conversations`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationListItem {
    pub conversation_id: ConversationId,
    pub state: ConversationState,
    pub queue: NamedRef,
    pub customer: CustomerRef,
    /// Every agent that had a leg, first joined first.
    pub agents: Vec<AgentId>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// Reason ids, in the order given.
    pub wrap_ups: Vec<String>,
    pub message_count: u64,
}

/// Who a listed conversation was with (no name once erased).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomerRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CustomerId>,
    pub name: String,
}

/// `GET /api/v1/customers/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomerProfile {
    pub id: CustomerId,
    /// The web site's own id for them (`sub`), when verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub verified: bool,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// How many conversations they had.
    pub conversations: u64,
}

/// A page of a search, newest first; `next_cursor` is absent on the last page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationListItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One row of `GET /api/v1/conversations/export` (NDJSON; CSV has the
/// same columns). Seconds with three decimals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationExportRow {
    pub conversation_id: ConversationId,
    pub state: ConversationState,
    pub queue_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    pub customer_name: String,
    /// Agent ids with a leg, space-separated.
    pub agents: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_accepted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// Received -> first accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_s: Option<f64>,
    /// First accepted -> ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_s: Option<f64>,
    /// Reason ids, space-separated.
    pub wrap_ups: String,
    pub message_count: u64,
}

/// `GET /api/v1/conversations/{id}/transcript?format=json`: the thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    pub conversation_id: ConversationId,
    pub messages: Vec<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customers_count_is_read_as_a_whole_number_written_either_way() {
        let read = |json: &str| serde_json::from_str::<Customer>(json);
        let count = |json| read(json).map(|customer| customer.previous_conversations);
        assert_eq!(
            count(r#"{"name": "Ada", "previous_conversations": 3}"#).unwrap(),
            Some(3)
        );
        assert_eq!(
            count(r#"{"name": "Ada", "previous_conversations": 3.0}"#).unwrap(),
            Some(3)
        );
        assert_eq!(
            count(r#"{"name": "Ada", "previous_conversations": null}"#).unwrap(),
            None
        );
        assert_eq!(count(r#"{"name": "Ada"}"#).unwrap(), None);
        for bad in ["3.5", "-1", "\"3\""] {
            let json = format!(r#"{{"name": "Ada", "previous_conversations": {bad}}}"#);
            assert!(read(&json).is_err(), "{bad}");
        }
        // MessagePack, as the cluster carries it, reads back the same.
        let customer = Customer {
            name: "Ada".into(),
            previous_conversations: Some(7),
            ..Customer::default()
        };
        let bytes = rmp_serde::to_vec_named(&customer).unwrap();
        assert_eq!(rmp_serde::from_slice::<Customer>(&bytes).unwrap(), customer);
    }
}
