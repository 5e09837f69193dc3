//! REST for customers: a profile, their conversations (the desktop's
//! history panel), and erasure (admin). Who may see whom is the engine's
//! rule.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use switchboard_engine::records::Viewer;
use switchboard_proto::model::{ConversationPage, CustomerProfile};
use switchboard_proto::{CustomerId, ErrorBody};
use utoipa::IntoParams;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::identity::{AdminIdentity, AgentIdentity};

type Data = web::Data<AppState>;

fn viewer(who: AgentIdentity) -> Viewer {
    Viewer {
        agent: who.agent,
        supervisor: who.supervisor,
    }
}

/// A customer: a supervisor, or an agent who served them.
#[utoipa::path(get, path = "/api/v1/customers/{id}", security(("token" = [])),
    params(("id" = String, Path, description = "customer id (cu-...)")),
    responses((status = 200, body = CustomerProfile), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn profile(
    state: Data,
    who: AgentIdentity,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CustomerId::new(id.into_inner());
    Ok(HttpResponse::Ok().json(state.engine.customer(&id, &viewer(who)).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-200, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Every conversation of a customer, newest first, whoever handled it.
#[utoipa::path(get, path = "/api/v1/customers/{id}/conversations", security(("token" = [])),
    params(PageParams, ("id" = String, Path, description = "customer id (cu-...)")),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn conversations(
    state: Data,
    who: AgentIdentity,
    id: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let id = CustomerId::new(id.into_inner());
    let limit = crate::records::limit(params.limit.as_deref())?;
    let page = state
        .engine
        .customer_conversations(&id, limit, params.cursor.as_deref(), &viewer(who))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Erasure (admin): 409 while a conversation of theirs is live.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", security(("token" = [])),
    params(("id" = String, Path, description = "customer id (cu-...)")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn erase(
    state: Data,
    _who: AdminIdentity,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CustomerId::new(id.into_inner());
    state.engine.erase_customer(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}
