//! Engine errors, each mapped once to a protocol error code.

use switchboard_proto::validation::TextError;
use switchboard_proto::{ConversationId, ErrorCode};

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
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("template slots could not be filled: {}", .0.join(", "))]
    MissingTemplateParams(Vec<String>),
    #[error("{0}")]
    AgentUnavailable(String),
    #[error("no pending offer for conversation {0}")]
    NoOffer(ConversationId),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::BadRequest(_) => ErrorCode::BadRequest,
            EngineError::NotFound { .. } => ErrorCode::NotFound,
            EngineError::InvalidState(_) => ErrorCode::InvalidState,
            EngineError::NotOwner(_) => ErrorCode::NotOwner,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
            EngineError::Text(error) => error.code(),
            EngineError::MissingTemplateParams(_) => ErrorCode::MissingTemplateParams,
            EngineError::AgentUnavailable(_) => ErrorCode::AgentUnavailable,
            EngineError::NoOffer(_) => ErrorCode::NoOffer,
            EngineError::Unavailable(_) => ErrorCode::Unavailable,
            EngineError::Internal(_) => ErrorCode::Internal,
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

impl From<actix::MailboxError> for EngineError {
    fn from(error: actix::MailboxError) -> Self {
        match error {
            actix::MailboxError::Timeout => {
                EngineError::Unavailable("the engine did not answer in time; retry".into())
            }
            actix::MailboxError::Closed => {
                EngineError::Unavailable("the actor is gone; retry".into())
            }
        }
    }
}
