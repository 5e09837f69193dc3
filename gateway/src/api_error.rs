//! REST errors: every failure becomes `{"error": {"code", "message"}}` with
//! the status its protocol code carries. Engine errors map here, once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use switchboard_engine::EngineError;
use switchboard_proto::{ErrorBody, ErrorCode};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Shed under overload: when to try again (`Retry-After`).
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "a valid token is required (Authorization: Bearer <token> or ?token=)",
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        Self {
            retry_after_ms: error.retry_after_ms(),
            ..Self::new(error.code(), error.to_string())
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(ms) = self.retry_after_ms {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                ms.div_ceil(1000).to_string(),
            ));
        }
        response.json(ErrorBody::new(self.code, &self.message).retry_after_ms(self.retry_after_ms))
    }
}

/// Bad JSON bodies, query strings and paths answer `bad_request` (or
/// `too_long` for an oversize body) in the protocol's error shape.
pub fn json_error(
    error: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let api_error = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(ErrorCode::TooLong, error.to_string())
        }
        _ => ApiError::new(ErrorCode::BadRequest, error.to_string()),
    };
    api_error.into()
}

pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::new(ErrorCode::BadRequest, error.to_string()).into()
}

pub fn path_error(
    error: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::new(ErrorCode::BadRequest, error.to_string()).into()
}
