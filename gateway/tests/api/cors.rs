//! The widget embeds on other sites: its script, assets and the customer
//! API answer cross-origin requests.

use crate::support::{Node, WAIT};

#[actix_rt::test]
async fn widget_and_chat_start_answer_cross_origin_requests() {
    let node = Node::start(&[]).await;
    let http = awc::Client::builder().timeout(WAIT).finish();
    let origin = "https://shop.example.com";

    for path in ["/widget.js", "/assets/js/widget-app.js"] {
        let response = http
            .get(format!("{}{path}", node.base))
            .insert_header(("Origin", origin))
            .send()
            .await
            .expect("asset answers");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(origin),
            "{path}"
        );
    }

    let preflight = http
        .request(
            actix_web::http::Method::OPTIONS,
            format!("{}/api/v1/chats", node.base),
        )
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header(("Access-Control-Request-Headers", "content-type"))
        .send()
        .await
        .expect("preflight answers");
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(origin)
    );
}
