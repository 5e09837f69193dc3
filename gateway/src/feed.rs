//! REST for other systems: the event feed (`GET /api/v1/events`), and the
//! admin's API keys and webhooks. The rules (cursors, scopes, targets)
//! are the engine's; this turns HTTP into its calls.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use switchboard_engine::events::feed::EventsQuery;
use switchboard_proto::feed::{
    ApiKeyInfo, CreatedApiKey, EventPage, NewApiKey, NewWebhook, WebhookDeliveries, WebhookInfo,
};
use switchboard_proto::ErrorBody;
use utoipa::IntoParams;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::identity::{AdminIdentity, EventReader};
use crate::query::whole_number;

type Data = web::Data<AppState>;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// `next_cursor` (or an event's `cursor`) to read after; from the
    /// oldest kept event without it.
    after: Option<String>,
    /// Comma-separated event types (`message.created,conversation.closed`).
    types: Option<String>,
    /// 1-1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// 0-30: wait this many seconds for an event when none is newer.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 30)]
    wait_s: Option<String>,
}

/// Events after a cursor, in the one global order (supervisor, or an API
/// key with `events:read`).
#[utoipa::path(get, path = "/api/v1/events", params(EventParams), security(("token" = [])),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn events(
    state: Data,
    _who: EventReader,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let query = EventsQuery {
        limit: whole_number("limit", params.limit.as_deref())?,
        wait_s: whole_number("wait_s", params.wait_s.as_deref())?,
        after: params.after,
        types: params.types,
    };
    Ok(HttpResponse::Ok().json(state.engine.events(query).await?))
}

/// Creates an API key (admin); the key is in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/api-keys", request_body = NewApiKey,
    security(("token" = [])),
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create_api_key(
    state: Data,
    who: AdminIdentity,
    body: web::Json<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    let created = state
        .engine
        .create_api_key(&body.name, &body.scopes, &who.0)
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Every API key, revoked ones too, never their secret (admin).
#[utoipa::path(get, path = "/api/v1/admin/api-keys", security(("token" = [])),
    responses((status = 200, body = [ApiKeyInfo]), (status = 403, body = ErrorBody)))]
pub async fn api_keys(state: Data, _who: AdminIdentity) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.engine.api_keys().await?))
}

/// Revokes an API key at once, on every node (admin).
#[utoipa::path(delete, path = "/api/v1/admin/api-keys/{id}", security(("token" = [])),
    params(("id" = String, Path, description = "API key id (ak-...)")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    state: Data,
    who: AdminIdentity,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.engine.revoke_api_key(&id, &who.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Creates a webhook (admin): delivery starts with the next event.
#[utoipa::path(post, path = "/api/v1/admin/webhooks", request_body = NewWebhook,
    security(("token" = [])),
    responses((status = 201, body = WebhookInfo), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create_webhook(
    state: Data,
    who: AdminIdentity,
    body: web::Json<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    let created = state
        .engine
        .create_webhook(body.into_inner(), &who.0)
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Every webhook with where its delivery stands (admin).
#[utoipa::path(get, path = "/api/v1/admin/webhooks", security(("token" = [])),
    responses((status = 200, body = [WebhookInfo]), (status = 403, body = ErrorBody)))]
pub async fn webhooks(state: Data, _who: AdminIdentity) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.engine.webhooks().await?))
}

/// Deletes a webhook and its delivery log (admin).
#[utoipa::path(delete, path = "/api/v1/admin/webhooks/{id}", security(("token" = [])),
    params(("id" = String, Path, description = "webhook id (wh-...)")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    state: Data,
    who: AdminIdentity,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.engine.delete_webhook(&id, &who.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// 1-200, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// A webhook's latest delivery attempts, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/webhooks/{id}/deliveries", params(DeliveryParams,
        ("id" = String, Path, description = "webhook id (wh-...)")),
    security(("token" = [])),
    responses((status = 200, body = WebhookDeliveries), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    state: Data,
    _who: AdminIdentity,
    id: web::Path<String>,
    params: web::Query<DeliveryParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = whole_number("limit", params.limit.as_deref())?;
    Ok(HttpResponse::Ok().json(state.engine.webhook_deliveries(&id, limit).await?))
}
