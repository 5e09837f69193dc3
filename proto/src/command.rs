//! What clients send over the WebSocket. The `type` field selects the
//! command; `request_id` travels beside it and is read by the codec.

use crate::ids::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The states an agent may ask for. `rona` is entered only by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedState {
    Available,
    Idle,
}

/// Where a transfer goes: `{"queue": id}` or `{"agent": id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    Queue(QueueId),
    Agent(AgentId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentCommand {
    SetState {
        state: RequestedState,
        #[serde(default)]
        reason: Option<IdleReasonId>,
    },
    Accept {
        conversation_id: ConversationId,
    },
    Send {
        conversation_id: ConversationId,
        text: String,
        client_msg_id: ClientMsgId,
    },
    SendTemplate {
        conversation_id: ConversationId,
        template_id: TemplateId,
        #[serde(default)]
        params: BTreeMap<String, String>,
        client_msg_id: ClientMsgId,
    },
    Typing {
        conversation_id: ConversationId,
    },
    Transfer {
        conversation_id: ConversationId,
        to: TransferTarget,
    },
    Conference {
        conversation_id: ConversationId,
        agent: AgentId,
    },
    EndConference {
        conversation_id: ConversationId,
    },
    End {
        conversation_id: ConversationId,
    },
    WrapUp {
        conversation_id: ConversationId,
        reason: WrapUpReasonId,
        #[serde(default)]
        notes: Option<String>,
    },
    Resume {
        conversation_id: ConversationId,
        after_seq: u64,
    },
    Logout,
    /// A new token for this session, before the current one expires (the
    /// session closes when its token expires): answered by the gateway.
    RefreshToken,
}

impl AgentCommand {
    /// The command's `type`, for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            AgentCommand::SetState { .. } => "set_state",
            AgentCommand::Accept { .. } => "accept",
            AgentCommand::Send { .. } => "send",
            AgentCommand::SendTemplate { .. } => "send_template",
            AgentCommand::Typing { .. } => "typing",
            AgentCommand::Transfer { .. } => "transfer",
            AgentCommand::Conference { .. } => "conference",
            AgentCommand::EndConference { .. } => "end_conference",
            AgentCommand::End { .. } => "end",
            AgentCommand::WrapUp { .. } => "wrap_up",
            AgentCommand::Resume { .. } => "resume",
            AgentCommand::Logout => "logout",
            AgentCommand::RefreshToken => "refresh_token",
        }
    }
}

/// Customer commands; the conversation is implied by the customer's token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomerCommand {
    Send {
        text: String,
        client_msg_id: ClientMsgId,
    },
    Typing,
    End,
    Resume {
        after_seq: u64,
    },
    /// As the agent's: a new token for this chat before this one expires.
    RefreshToken,
}

impl CustomerCommand {
    pub fn name(&self) -> &'static str {
        match self {
            CustomerCommand::Send { .. } => "send",
            CustomerCommand::Typing => "typing",
            CustomerCommand::End => "end",
            CustomerCommand::Resume { .. } => "resume",
            CustomerCommand::RefreshToken => "refresh_token",
        }
    }
}
