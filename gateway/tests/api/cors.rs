//! What browsers are told (`browser_policy`): the widget embeds on the sites
//! in `[widget] allowed_origins` (its script, assets, chat start and
//! WebSocket answer them); nothing else answers another origin; the HTML
//! pages carry their security headers.

use awc::http::Method;

use crate::support::{Node, CONFIG, WAIT};

const SHOP: &str = "https://shop.example.com";
const ELSEWHERE: &str = "https://elsewhere.example.net";

/// The test node, with `SHOP` allowed to embed the widget.
async fn node_for_shop() -> Node {
    let config = format!("{CONFIG}\n[widget]\nallowed_origins = [\"{SHOP}\"]\n");
    Node::start_on(&config, &[]).await
}

fn allow_origin(response: &awc::ClientResponse<impl Sized>) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[actix_rt::test]
async fn widget_and_chat_start_answer_cross_origin_requests() {
    let node = node_for_shop().await;
    let http = awc::Client::builder().timeout(WAIT).finish();

    for path in ["/widget.js", "/assets/js/widget-app.js"] {
        let response = http
            .get(format!("{}{path}", node.base))
            .insert_header(("Origin", SHOP))
            .send()
            .await
            .expect("asset answers");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(allow_origin(&response).as_deref(), Some(SHOP), "{path}");
    }

    let preflight = http
        .request(Method::OPTIONS, format!("{}/api/v1/chats", node.base))
        .insert_header(("Origin", SHOP))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header(("Access-Control-Request-Headers", "content-type"))
        .send()
        .await
        .expect("preflight answers");
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(allow_origin(&preflight).as_deref(), Some(SHOP));

    let chat = serde_json::json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi"});
    let started = http
        .post(format!("{}/api/v1/chats", node.base))
        .insert_header(("Origin", SHOP))
        .send_json(&chat)
        .await
        .expect("chat start answers");
    assert_eq!(started.status().as_u16(), 201);
    assert_eq!(allow_origin(&started).as_deref(), Some(SHOP));
}

/// A site not in the list, or any site on a path the widget does not use,
/// is refused before the handler runs: nothing changes, nothing is read.
#[actix_rt::test]
async fn other_origins_and_other_paths_answer_no_cross_origin_request() {
    let node = node_for_shop().await;
    let http = awc::Client::builder().timeout(WAIT).finish();
    let token = node.login("sam").await;

    let chat = serde_json::json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi"});
    let refused = http
        .post(format!("{}/api/v1/chats", node.base))
        .insert_header(("Origin", ELSEWHERE))
        .send_json(&chat)
        .await
        .expect("node answers");
    assert_eq!(refused.status().as_u16(), 400);
    assert_eq!(allow_origin(&refused), None);
    assert_eq!(
        node.queue("sales").await["waiting"],
        0,
        "no chat was started"
    );

    for origin in [SHOP, ELSEWHERE] {
        for path in ["/api/v1/stats", "/api/v1/conversations", "/metrics", "/"] {
            let response = http
                .get(format!("{}{path}", node.base))
                .insert_header(("Origin", origin))
                .bearer_auth(&token)
                .send()
                .await
                .expect("node answers");
            assert_eq!(allow_origin(&response), None, "{origin} {path}");
            assert_eq!(response.status().as_u16(), 400, "{origin} {path}");
        }
        let preflight = http
            .request(Method::OPTIONS, format!("{}/api/v1/stats", node.base))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "GET"))
            .insert_header(("Access-Control-Request-Headers", "authorization"))
            .send()
            .await
            .expect("preflight answers");
        assert_eq!(allow_origin(&preflight), None, "{origin} preflight");
    }

    // The node's own pages call it with their own Origin: allowed.
    let own = http
        .get(format!("{}/api/v1/stats", node.base))
        .insert_header(("Origin", node.base.as_str()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("node answers");
    assert_eq!(own.status().as_u16(), 200);
}

/// Browsers do not apply CORS to WebSockets: the node checks the `Origin`
/// of the upgrade like any other request's.
#[actix_rt::test]
async fn a_websocket_from_a_site_not_allowed_is_refused() {
    let node = node_for_shop().await;
    let (_, customer_token) = node.start_chat("sales", "Ada", "Hi").await;
    let url = format!(
        "{}/api/v1/ws?token={customer_token}",
        node.base.replacen("http", "ws", 1)
    );
    let connect = |origin: &str| {
        awc::Client::builder()
            .timeout(WAIT)
            .finish()
            .ws(url.as_str())
            .origin(origin)
            .connect()
    };
    match connect(ELSEWHERE).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
            assert_eq!(status.as_u16(), 400)
        }
        Err(other) => panic!("expected 400, got {other}"),
        Ok(_) => panic!("a site not allowed opened a session"),
    }
    assert!(connect(SHOP).await.is_ok(), "the shop's widget connects");
    assert!(
        connect(node.base.as_str()).await.is_ok(),
        "the node's own page connects"
    );

    // An agent's session is for the node's own pages: not even an allowed
    // widget site opens one.
    let agent_url = format!(
        "{}/api/v1/ws?token={}",
        node.base.replacen("http", "ws", 1),
        node.login("bob").await
    );
    let agent = |origin: &str| {
        awc::Client::builder()
            .timeout(WAIT)
            .finish()
            .ws(agent_url.as_str())
            .origin(origin)
            .connect()
    };
    match agent(SHOP).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
            assert_eq!(status.as_u16(), 403)
        }
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a widget site opened an agent's session"),
    }
    assert!(
        agent(node.base.as_str()).await.is_ok(),
        "the desktop connects"
    );
}

#[actix_rt::test]
async fn html_pages_carry_a_strict_policy_and_every_answer_says_nosniff() {
    let node = Node::start(&[]).await;
    let http = awc::Client::builder().timeout(WAIT).finish();
    for path in ["/", "/supervisor", "/demo"] {
        let response = http
            .get(format!("{}{path}", node.base))
            .send()
            .await
            .expect("page answers");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    // Nothing inline in the pages the CSP would have to allow.
    for path in ["/", "/supervisor", "/demo"] {
        let (_, body) = node.get_text(path).await;
        assert!(!body.contains("<style"), "{path} has inline style");
        assert!(!body.contains("style=\""), "{path} has a style attribute");
        assert!(
            !body.contains("<script>") && !body.contains(" onclick="),
            "{path} has inline script"
        );
    }
    let api = http
        .get(format!("{}/api/v1/queues", node.base))
        .send()
        .await
        .expect("api answers");
    assert_eq!(
        api.headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
}
