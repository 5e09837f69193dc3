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
        crate::feed::create_api_key,
        crate::feed::api_keys,
        crate::feed::revoke_api_key,
        crate::feed::create_webhook,
        crate::feed::webhooks,
        crate::feed::delete_webhook,
        crate::feed::deliveries,
    ),
    modifiers(&TokenAuth)
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

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
