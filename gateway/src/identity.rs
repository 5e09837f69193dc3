//! Who is calling: the token from `Authorization: Bearer` or `?token=`,
//! verified with the node's signer. Tokens validate on any node.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use switchboard_proto::{AgentId, ErrorCode};

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::auth::Subject;

/// The token a request carries, if any.
pub fn token_of(req: &HttpRequest) -> Option<String> {
    if let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        if let Some(token) = header.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
            return Some(token.trim().to_owned());
        }
    }
    web::Query::<TokenQuery>::from_query(req.query_string())
        .ok()
        .and_then(|query| query.into_inner().token)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The verified subject of the request's token. An agent's token must
/// still name a configured agent, and must not predate that agent's last
/// logout (a logout ends what the tokens handed out before it can do).
pub async fn subject_of(req: &HttpRequest) -> Result<Subject, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "application state missing"))?;
    let token = token_of(req).ok_or_else(ApiError::unauthorized)?;
    let claims = state.signer.verify(&token).map_err(|error| {
        ApiError::new(ErrorCode::Unauthorized, format!("invalid token: {error}"))
    })?;
    if let Subject::Agent(agent) = claims.subject() {
        // A token outlives config changes: the agent must still exist.
        if state.engine.catalog().agent(agent).is_none() {
            return Err(ApiError::new(ErrorCode::Unauthorized, "unknown agent"));
        }
        state
            .engine
            .check_agent_token(agent, claims.issued_at_ms())
            .await?;
    }
    Ok(claims.subject().clone())
}

/// An agent's request (customers get 403).
pub struct AgentIdentity {
    pub agent: AgentId,
    /// The `supervisor` or the `admin` role.
    pub supervisor: bool,
    pub admin: bool,
}

impl AgentIdentity {
    async fn of(req: HttpRequest) -> Result<Self, ApiError> {
        match subject_of(&req).await? {
            Subject::Agent(agent) => {
                let roles = req
                    .app_data::<web::Data<AppState>>()
                    .and_then(|state| state.engine.catalog().agent(&agent).cloned())
                    .map(|config| config.roles)
                    .unwrap_or_default();
                let has = |name: &str| roles.iter().any(|role| role == name);
                Ok(AgentIdentity {
                    supervisor: has("supervisor") || has("admin"),
                    admin: has("admin"),
                    agent,
                })
            }
            Subject::Customer(_) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "this needs an agent token",
            )),
        }
    }
}

impl FromRequest for AgentIdentity {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        Box::pin(Self::of(req.clone()))
    }
}

/// Answers `who` when `allowed` holds of it, else 403 naming the role.
fn with_role<T: 'static>(
    req: &HttpRequest,
    role: &'static str,
    allowed: fn(&AgentIdentity) -> bool,
    make: fn(AgentIdentity) -> T,
) -> LocalBoxFuture<'static, Result<T, ApiError>> {
    let identity = AgentIdentity::of(req.clone());
    Box::pin(async move {
        let identity = identity.await?;
        if allowed(&identity) {
            Ok(make(identity))
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this needs the {role} role"),
            ))
        }
    })
}

/// A supervisor's request (the `supervisor` or the `admin` role).
pub struct SupervisorIdentity(pub AgentId);

impl FromRequest for SupervisorIdentity {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        with_role(
            req,
            "supervisor",
            |who| who.supervisor,
            |who| SupervisorIdentity(who.agent),
        )
    }
}

/// An admin's request.
pub struct AdminIdentity(pub AgentId);

impl FromRequest for AdminIdentity {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        with_role(
            req,
            "admin",
            |who| who.admin,
            |who| AdminIdentity(who.agent),
        )
    }
}
