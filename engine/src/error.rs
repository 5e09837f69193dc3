//! Engine errors, each mapped once to a protocol error code.

use serde::{Deserialize, Serialize};
use switchboard_proto::validation::TextError;
use switchboard_proto::{ConversationId, ErrorCode};

/// Crosses between nodes as its protocol code and text ([`WireError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    InvalidState(String),
    #[error("only the conversation's owner may {0}")]
    NotOwner(&'static str),
    #[error("{0}")]
    Forbidden(String),
    /// Not who it says: a credential that no longer counts.
    #[error("{0}")]
    Unauthorized(String),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("template slots could not be filled: {}", .0.join(", "))]
    MissingTemplateParams(Vec<String>),
    /// A parameter that cannot be answered (422); the text names it.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    AgentUnavailable(String),
    #[error("no pending offer for conversation {0}")]
    NoOffer(ConversationId),
    #[error("{0}")]
    Unavailable(String),
    /// Shed: the node is past its capacity (`crate::admission`).
    #[error("node overloaded: retry in {retry_after_ms} ms")]
    Overloaded { retry_after_ms: u64 },
    /// The actor stopped between being found and being asked (it finished,
    /// or moved to another node). Answered `unavailable` unless the caller
    /// can tell it finished.
    #[error("the actor is gone; retry")]
    ActorGone,
    #[error("{0}")]
    Internal(String),
    /// An error raised on another node of a cluster.
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },
}

/// An [`EngineError`] as it travels in a cluster envelope.
#[derive(Serialize, Deserialize)]
pub struct WireError {
    code: ErrorCode,
    message: String,
}

impl From<EngineError> for WireError {
    fn from(error: EngineError) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

impl serde::Serialize for EngineError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireError::from(self.clone()).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for EngineError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireError::deserialize(deserializer).map(EngineError::from)
    }
}

impl From<WireError> for EngineError {
    fn from(wire: WireError) -> Self {
        EngineError::Remote {
            code: wire.code,
            message: wire.message,
        }
    }
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::BadRequest(_) => ErrorCode::BadRequest,
            EngineError::NotFound { .. } => ErrorCode::NotFound,
            EngineError::InvalidState(_) => ErrorCode::InvalidState,
            EngineError::NotOwner(_) => ErrorCode::NotOwner,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
            EngineError::Unauthorized(_) => ErrorCode::Unauthorized,
            EngineError::Text(error) => error.code(),
            EngineError::MissingTemplateParams(_) => ErrorCode::MissingTemplateParams,
            EngineError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            EngineError::AgentUnavailable(_) => ErrorCode::AgentUnavailable,
            EngineError::NoOffer(_) => ErrorCode::NoOffer,
            EngineError::Unavailable(_)
            | EngineError::ActorGone
            | EngineError::Overloaded { .. } => ErrorCode::Unavailable,
            EngineError::Internal(_) => ErrorCode::Internal,
            EngineError::Remote { code, .. } => *code,
        }
    }

    /// When to try again, for a command refused under overload.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            EngineError::Overloaded { retry_after_ms } => Some(*retry_after_ms),
            _ => None,
        }
    }

    pub fn not_found(what: &'static str, id: impl std::fmt::Display) -> Self {
        EngineError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        EngineError::InvalidState(message.into())
    }
}

impl From<crate::cluster::store::StoreError> for EngineError {
    fn from(error: crate::cluster::store::StoreError) -> Self {
        EngineError::Unavailable(error.to_string())
    }
}

impl From<actix::MailboxError> for EngineError {
    fn from(error: actix::MailboxError) -> Self {
        match error {
            actix::MailboxError::Timeout => {
                EngineError::Unavailable("the engine did not answer in time; retry".into())
            }
            actix::MailboxError::Closed => EngineError::ActorGone,
        }
    }
}

impl From<crate::storage::StorageError> for EngineError {
    fn from(error: crate::storage::StorageError) -> Self {
        match error {
            crate::storage::StorageError::Corrupt(what) => EngineError::Internal(what),
            other => EngineError::Unavailable(other.to_string()),
        }
    }
}
