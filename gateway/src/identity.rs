//! Who is calling: the token from `Authorization: Bearer` or `?token=`,
//! verified with the node's signer (tokens validate on any node), or an
//! API key (`sbk_...`) checked against the database with its scopes.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use switchboard_engine::events::api_keys::{is_api_key, ApiKeyGrant};
use switchboard_engine::records::Viewer;
use switchboard_proto::feed::Scope;
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
    Ok(token_of_request(req).await?.subject)
}

/// What a session keeps of the token it opened with.
pub struct SessionToken {
    pub subject: Subject,
    /// Unix seconds: the session ends then unless refreshed.
    pub expires_at: u64,
    /// Unix ms: a refresh is refused once the agent logged out after it.
    pub issued_at_ms: u64,
}

/// [`subject_of`], with the token's expiry and issue time.
pub async fn token_of_request(req: &HttpRequest) -> Result<SessionToken, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "application state missing"))?;
    let token = token_of(req).ok_or_else(ApiError::unauthorized)?;
    if is_api_key(&token) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "API keys read events, records and reports only; this needs an agent's token",
        ));
    }
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
    Ok(SessionToken {
        subject: claims.subject().clone(),
        expires_at: claims.expires_at(),
        issued_at_ms: claims.issued_at_ms(),
    })
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

/// An API key's request, checked: known, not revoked, holding `scope`.
/// `None` when the request carries no API key (it may carry a token).
async fn api_key_of(req: &HttpRequest, scope: Scope) -> Result<Option<ApiKeyGrant>, ApiError> {
    let Some(key) = token_of(req).filter(|token| is_api_key(token)) else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "application state missing"))?;
    let grant = state.engine.check_api_key(&key).await?;
    if !grant.allows(scope) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this API key lacks the {} scope", scope.as_str()),
        ));
    }
    Ok(Some(grant))
}

/// Whom the record shows a caller holding an API key: every conversation,
/// as to a supervisor.
fn key_viewer(grant: &ApiKeyGrant) -> Viewer {
    Viewer {
        agent: AgentId::new(format!("api-key:{}", grant.id)),
        supervisor: true,
    }
}

/// Reads the record: an agent (what it may see: every conversation for a
/// supervisor, else those it had a leg in), or an API key with
/// `records:read` (every conversation).
pub struct RecordReader(pub Viewer);

impl FromRequest for RecordReader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(grant) = api_key_of(&req, Scope::RecordsRead).await? {
                return Ok(RecordReader(key_viewer(&grant)));
            }
            let who = AgentIdentity::of(req).await?;
            Ok(RecordReader(Viewer {
                agent: who.agent,
                supervisor: who.supervisor,
            }))
        })
    }
}

/// Exports the record: a supervisor, or an API key with `records:read`.
pub struct RecordExporter(pub Viewer);

impl FromRequest for RecordExporter {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(grant) = api_key_of(&req, Scope::RecordsRead).await? {
                return Ok(RecordExporter(key_viewer(&grant)));
            }
            let SupervisorIdentity(agent) =
                SupervisorIdentity::from_request(&req, &mut Payload::None).await?;
            Ok(RecordExporter(Viewer {
                agent,
                supervisor: true,
            }))
        })
    }
}

/// Reads events: a supervisor, or an API key with `events:read`.
pub struct EventReader;

/// A supervisor, or an API key with `scope`.
async fn supervisor_or_key(req: HttpRequest, scope: Scope) -> Result<(), ApiError> {
    if api_key_of(&req, scope).await?.is_some() {
        return Ok(());
    }
    SupervisorIdentity::from_request(&req, &mut Payload::None).await?;
    Ok(())
}

impl FromRequest for EventReader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            supervisor_or_key(req, Scope::EventsRead).await?;
            Ok(EventReader)
        })
    }
}

/// Reads reports: a supervisor, or an API key with `reports:read`.
pub struct ReportReader;

impl FromRequest for ReportReader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            supervisor_or_key(req, Scope::ReportsRead).await?;
            Ok(ReportReader)
        })
    }
}
