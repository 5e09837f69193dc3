//! Protocol error codes. Every failure a client can see is one of these, on
//! the WebSocket (`error` frame) and in REST bodies alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    /// The path exists, not with this method (REST only; `Allow` lists
    /// the methods it takes).
    MethodNotAllowed,
    InvalidState,
    NotOwner,
    ReservedCharacters,
    TooLong,
    MissingTemplateParams,
    /// A request's parameter is well formed but cannot be answered (a
    /// report's range, interval, time zone or subject); the message names
    /// the parameter.
    InvalidParameter,
    AgentUnavailable,
    NoOffer,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::ReservedCharacters => "reserved_characters",
            ErrorCode::TooLong => "too_long",
            ErrorCode::MissingTemplateParams => "missing_template_params",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::AgentUnavailable => "agent_unavailable",
            ErrorCode::NoOffer => "no_offer",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status a REST answer carries for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::NotOwner => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InvalidState | ErrorCode::AgentUnavailable | ErrorCode::NoOffer => 409,
            ErrorCode::TooLong => 413,
            ErrorCode::ReservedCharacters
            | ErrorCode::MissingTemplateParams
            | ErrorCode::InvalidParameter => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {"code": .., "message": ..}}`, every REST error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// `unavailable` from a node past its capacity: try again after this
    /// long (nothing was done). Also sent as `Retry-After`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                retry_after_ms: None,
            },
        }
    }

    pub fn retry_after_ms(mut self, retry_after_ms: Option<u64>) -> Self {
        self.error.retry_after_ms = retry_after_ms;
        self
    }
}
