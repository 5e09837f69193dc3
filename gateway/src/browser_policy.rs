//! What browsers are told about this node: which other sites may call it
//! (CORS, and the `Origin` of a WebSocket), and what the HTML pages may do
//! (Content-Security-Policy, framing, sniffing).
//!
//! The chat widget runs on customers' own sites, so its script, modules and
//! the calls it makes (starting a chat, its WebSocket) answer the sites in
//! `[widget] allowed_origins`. Everything else (the agent desktop, the
//! supervisor and admin APIs, `/metrics`) answers its own origin only: a
//! page elsewhere that got hold of a token still cannot read an agent API
//! from a browser.

use actix_web::dev::RequestHead;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use std::sync::Arc;

/// `[widget] allowed_origins`: `https://shop.example.com`, or `*` for any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Only the node's own origin.
    #[default]
    None,
    /// These origins (lowercase `scheme://host[:port]`).
    List(Vec<String>),
    /// Any site (`"*"`).
    Any,
}

impl AllowedOrigins {
    fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::None => false,
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// Paths the widget loads or calls from the customer's site.
fn is_widget_path(method: &Method, path: &str) -> bool {
    match path {
        "/widget.js" => true,
        // The widget's modules and styles (the desktop's too: the files are
        // public and carry nothing but code).
        _ if path.starts_with("/assets/") => *method == Method::GET || *method == Method::OPTIONS,
        "/api/v1/chats" => *method == Method::POST || *method == Method::OPTIONS,
        // The customer's WebSocket (browsers send `Origin` on the upgrade
        // but apply no CORS to it: this check is the node's).
        "/api/v1/ws" => *method == Method::GET,
        _ => false,
    }
}

/// True when `origin` is the origin the request was made to: its authority
/// (`host[:port]`) equals the `Host` the client connected to. The scheme is
/// not compared: behind a TLS-terminating proxy the node sees plain HTTP.
pub(crate) fn is_same_origin(origin: &str, head: &RequestHead) -> bool {
    let Some(authority) = origin.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let host = head
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| head.uri.authority().map(|a| a.as_str()));
    host.is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

/// Whether a request carrying `origin` may be answered to that origin.
fn origin_allowed(allowed: &AllowedOrigins, origin: &str, head: &RequestHead) -> bool {
    is_same_origin(origin, head)
        || (is_widget_path(&head.method, head.uri.path()) && allowed.allows(origin))
}

/// CORS for every route. A cross-origin request to a path the widget does
/// not use, or from a site not allowed, is refused (400) before any handler
/// runs, so it changes nothing.
pub fn cors(allowed: Arc<AllowedOrigins>) -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin: &HeaderValue, head: &RequestHead| {
            origin
                .to_str()
                .is_ok_and(|origin| origin_allowed(&allowed, origin, head))
        })
        .block_on_origin_mismatch(true)
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .max_age(3600)
}

/// The HTML pages' policy: scripts, styles and connections from this node
/// only, nothing inline, no plugins, and no framing by any site (the widget
/// is a script in the host page, not a frame, so nothing needs to frame a
/// page of this node).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers every HTML page carries.
pub fn page_headers() -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn head(method: Method, path: &str, host: &str) -> RequestHead {
        TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header((header::HOST, host))
            .to_http_request()
            .head()
            .clone()
    }

    #[test]
    fn cross_origin_calls_are_allowed_only_where_the_widget_needs_them() {
        let shop = AllowedOrigins::List(vec!["https://shop.example.com".to_owned()]);
        let origin = "https://shop.example.com";
        let host = "chat.example.com";
        assert!(origin_allowed(
            &shop,
            origin,
            &head(Method::POST, "/api/v1/chats", host)
        ));
        assert!(origin_allowed(
            &shop,
            origin,
            &head(Method::GET, "/widget.js", host)
        ));
        assert!(origin_allowed(
            &shop,
            origin,
            &head(Method::GET, "/assets/js/widget-app.js", host)
        ));
        for (method, path) in [
            (Method::GET, "/api/v1/stats"),
            (Method::GET, "/api/v1/conversations"),
            (Method::POST, "/api/v1/agent/login"),
            (Method::GET, "/metrics"),
            (Method::GET, "/"),
            (Method::GET, "/api/v1/events"),
        ] {
            assert!(
                !origin_allowed(&shop, origin, &head(method, path, host)),
                "{path}"
            );
        }
        // A site not in the list gets nothing, even on the widget's paths.
        let other = "https://evil.example.net";
        assert!(!origin_allowed(
            &shop,
            other,
            &head(Method::POST, "/api/v1/chats", host)
        ));
        // `*` opens the widget's paths to any site, and only those.
        assert!(origin_allowed(
            &AllowedOrigins::Any,
            other,
            &head(Method::POST, "/api/v1/chats", host)
        ));
        assert!(!origin_allowed(
            &AllowedOrigins::Any,
            other,
            &head(Method::GET, "/api/v1/stats", host)
        ));
    }

    #[test]
    fn the_nodes_own_origin_is_always_allowed() {
        let none = AllowedOrigins::None;
        let head = head(Method::GET, "/api/v1/stats", "chat.example.com:8080");
        assert!(origin_allowed(&none, "http://chat.example.com:8080", &head));
        assert!(origin_allowed(
            &none,
            "https://CHAT.example.com:8080",
            &head
        ));
        assert!(!origin_allowed(
            &none,
            "http://chat.example.com:9090",
            &head
        ));
        assert!(!origin_allowed(&none, "null", &head));
    }
}
