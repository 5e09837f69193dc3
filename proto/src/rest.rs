//! REST request and response bodies under `/api/v1`.

use crate::ids::*;
use crate::model::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// `false`: sign in without logging in as an agent taking chats (the
    /// supervisor page): no presence, not counted among idle agents until
    /// a desktop connects. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_chats: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub agent: AgentProfile,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StartChatRequest {
    pub queue: QueueId,
    pub customer: Customer,
    pub message: String,
    /// The customer's identity, signed by the web site (HS256 JWT with
    /// `[widget] identity_secret`): links this chat to their earlier ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StartChatResponse {
    pub conversation_id: ConversationId,
    pub token: String,
    pub created_at: Timestamp,
}
