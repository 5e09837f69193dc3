//! REST handlers under `/api/v1`: login, chat start, the directory used by
//! the transfer and conference dialogs, records and stats. Each translates
//! HTTP to one engine call; no domain rule lives here.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use switchboard_proto::model::*;
use switchboard_proto::rest::*;
use switchboard_proto::{ConversationId, ErrorBody, ErrorCode};
use utoipa::IntoParams;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::identity::{AgentIdentity, RecordReader, SupervisorIdentity};
use actix_web::ResponseError;
use switchboard_engine::{EngineError, TakersOf};

type Data = web::Data<AppState>;

/// Agent login. Same answer for an unknown user and a wrong password.
#[utoipa::path(post, path = "/api/v1/agent/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    state: Data,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .login_throttle
        .check(state.trusted_proxies.client_address(&req))?;
    let LoginRequest {
        username,
        password,
        take_chats,
    } = body.into_inner();
    state
        .account_throttle
        .check(Some(username.to_lowercase()))?;
    let credentials = state.credentials.clone();
    let _checking = state
        .password_checks
        .acquire()
        .await
        .map_err(|error| ApiError::new(ErrorCode::Internal, error.to_string()))?;
    // argon2 is CPU-heavy: keep it off the I/O threads.
    let verified = web::block(move || credentials.verify(&username, &password))
        .await
        .map_err(|error| ApiError::new(ErrorCode::Internal, error.to_string()))?;
    let agent_id = verified
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "wrong username or password"))?;
    let agent =
        if take_chats.unwrap_or(true) {
            state.engine.login_agent(&agent_id).await?
        } else {
            state.engine.catalog().profile(&agent_id).ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthorized, "wrong username or password")
            })?
        };
    let token = state.signer.issue_agent(&agent_id);
    Ok(HttpResponse::Ok().json(LoginResponse { token, agent }))
}

/// A customer starts a chat; the token opens this one conversation only.
#[utoipa::path(post, path = "/api/v1/chats", request_body = StartChatRequest,
    responses((status = 201, body = StartChatResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn start_chat(
    state: Data,
    req: HttpRequest,
    body: web::Json<StartChatRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat_throttle
        .check(state.trusted_proxies.client_address(&req))?;
    let request = body.into_inner();
    let identity = match &request.identity {
        None => None,
        Some(token) => Some(crate::customer_identity::verify(
            token,
            state.identity_secret.as_ref(),
        )?),
    };
    let started = state
        .engine
        .start_chat(
            &request.queue,
            request.customer,
            identity,
            request.message,
            request.attributes,
        )
        .await?;
    let token = state.signer.issue_customer(&started.conversation_id);
    Ok(HttpResponse::Created().json(StartChatResponse {
        conversation_id: started.conversation_id,
        token,
        created_at: started.created_at,
    }))
}

/// Queues with live waiting counts (the transfer dialog).
#[utoipa::path(get, path = "/api/v1/queues", security(("token" = [])),
    responses((status = 200, body = [QueueInfo]), (status = 401, body = ErrorBody)))]
pub async fn queues(state: Data, _who: AgentIdentity) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.engine.queues().await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// `available`, `idle`, `rona` or `offline`; default: every logged-in agent.
    state: Option<AgentState>,
    /// Case-insensitive part of the name.
    q: Option<String>,
    /// A live conversation the caller took part in (or any, for a
    /// supervisor): each row then says whether that agent could take it
    /// now (`can_take`) and why not (`why_not`).
    conversation_id: Option<String>,
}

/// Agents with state and load (the transfer and conference dialogs).
#[utoipa::path(get, path = "/api/v1/agents", params(AgentQuery), security(("token" = [])),
    responses((status = 200, body = [AgentInfo]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn agents(
    state: Data,
    who: AgentIdentity,
    query: web::Query<AgentQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let conversation_id = query.conversation_id.map(ConversationId::new);
    let taking = conversation_id.as_ref().map(|conversation_id| TakersOf {
        conversation_id,
        viewer: &who.agent,
        supervisor: who.supervisor,
    });
    let rows = state
        .engine
        .agents(query.state, query.q.as_deref(), taking)
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Case-insensitive part of the label or id.
    q: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/wrapup-reasons", params(SearchQuery), security(("token" = [])),
    responses((status = 200, body = [Reason]), (status = 401, body = ErrorBody)))]
pub async fn wrap_up_reasons(
    state: Data,
    _who: AgentIdentity,
    query: web::Query<SearchQuery>,
) -> HttpResponse {
    HttpResponse::Ok().json(
        state
            .engine
            .catalog()
            .search_wrap_up_reasons(query.q.as_deref()),
    )
}

#[utoipa::path(get, path = "/api/v1/idle-reasons", security(("token" = [])),
    responses((status = 200, body = [Reason]), (status = 401, body = ErrorBody)))]
pub async fn idle_reasons(state: Data, _who: AgentIdentity) -> HttpResponse {
    HttpResponse::Ok().json(state.engine.catalog().idle_reasons())
}

#[utoipa::path(get, path = "/api/v1/templates", security(("token" = [])),
    responses((status = 200, body = [TemplateInfo]), (status = 401, body = ErrorBody)))]
pub async fn templates(state: Data, _who: AgentIdentity) -> HttpResponse {
    HttpResponse::Ok().json(state.engine.catalog().templates())
}

/// The record: for an agent who took part, or a supervisor.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", security(("token" = [])),
    params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = ConversationRecord), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn conversation(
    state: Data,
    RecordReader(viewer): RecordReader,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ConversationId::new(id.into_inner());
    let record = state
        .engine
        .conversation_record(&id, &viewer.agent, viewer.supervisor)
        .await?;
    Ok(HttpResponse::Ok().json(record))
}

/// Per-queue and per-state figures (supervisor role).
#[utoipa::path(get, path = "/api/v1/stats", security(("token" = [])),
    responses((status = 200, body = Stats), (status = 403, body = ErrorBody)))]
pub async fn stats(state: Data, _who: SupervisorIdentity) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.engine.stats().await?))
}

/// Process up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready for traffic: not draining, the database answers (in a cluster:
/// Redis reachable and the lease held too).
pub async fn readyz(state: Data) -> HttpResponse {
    if state.is_draining() {
        return HttpResponse::ServiceUnavailable().json(ErrorBody::new(
            ErrorCode::Unavailable,
            "draining: connect to another node",
        ));
    }
    if let Some(why) = state.engine.not_ready_because() {
        return HttpResponse::ServiceUnavailable()
            .json(ErrorBody::new(ErrorCode::Unavailable, why));
    }
    // Past capacity: a load balancer sends new sessions elsewhere until
    // the node has worked off its queue.
    if state.engine.admission().overloaded() {
        let overloaded = EngineError::Overloaded {
            retry_after_ms: 1000,
        };
        return ApiError::from(overloaded).error_response();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "warnings": state.engine.warnings(),
    }))
}

pub async fn metrics(state: Data) -> HttpResponse {
    state.observe_gauges();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

/// A known path, an unknown method: `405` with the methods it takes.
pub async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .json(ErrorBody::new(
            ErrorCode::MethodNotAllowed,
            format!("this path takes {allow} only"),
        ))
}

/// Unknown `/api/v1` paths answer in the protocol's error shape.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}
