//! The OpenAPI 3 document, generated from the handlers' annotations and the
//! protocol types, served at `GET /api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Live Chat engine for contact centers: REST API v1. \
        Real-time traffic uses the WebSocket at /api/v1/ws (see docs/protocol.md)."),
    paths(
        crate::rest::login,
        crate::rest::start_chat,
        crate::rest::queues,
        crate::rest::agents,
        crate::rest::wrap_up_reasons,
        crate::rest::idle_reasons,
        crate::rest::templates,
        crate::rest::conversation,
        crate::records::search,
        crate::records::export,
        crate::records::transcript,
        crate::customers::profile,
        crate::customers::conversations,
        crate::customers::erase,
        crate::rest::stats,
        crate::feed::events,
        crate::reports::queues,
        crate::reports::agents,
        crate::feed::create_api_key,
        crate::feed::api_keys,
        crate::feed::revoke_api_key,
        crate::feed::create_webhook,
        crate::feed::webhooks,
        crate::feed::delete_webhook,
        crate::feed::deliveries,
    ),
    modifiers(&TokenAuth, &CommonErrors)
)]
struct ApiDoc;

struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What any operation may answer besides its own statuses (docs/protocol.md,
/// "General errors"): `400` (a query, path or body that does not parse),
/// `401` where a token is needed, `503` (the database or the cluster out of
/// reach, or the node draining). Added here once rather than on each path.
struct CommonErrors;

/// Operations that take no token.
const OPEN: [&str; 2] = ["/api/v1/agent/login", "/api/v1/chats"];

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                add(
                    "400",
                    "bad_request: a query, path or body that does not parse",
                );
                if !OPEN.contains(&path.as_str()) {
                    add(
                        "401",
                        "unauthorized: no token, or one that is invalid, expired or revoked",
                    );
                }
                add(
                    "503",
                    "unavailable: the database or the cluster is out of reach, or the node drains",
                );
            }
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
