//! Reports over a real node: who may read them, bad parameters refused by
//! name, and a customer's erasure leaving every figure as it was (stored,
//! and rebuilt from the events). The scripted day with every column is in
//! `tests/reports/`.

use crate::customers::{close, identified_chat, node_with_identities, signed};
use crate::support::Node;
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

#[actix_rt::test]
async fn bad_report_parameters_get_422_naming_the_parameter() {
    let node = Node::start(&[]).await;
    let token = node.token_for("sam");
    let refused = [
        ("queues?from=2026-12-08&to=2026-12-07", "from:"),
        (
            "queues?from=2026-12-08T10:00:00Z&to=2026-12-08T10:00:00Z",
            "from:",
        ),
        ("queues?from=2025-01-01&to=2026-02-05&interval=15m", "to:"),
        ("queues?interval=2h", "interval:"),
        ("agents?tz=Mars/Olympus", "tz:"),
        ("queues?queue=sales,nope", "queue:"),
        ("agents?agent=ghost", "agent:"),
        ("queues?from=yesterday", "from:"),
        ("agents?format=xml", "format:"),
    ];
    for (query, name) in refused {
        let (status, body) = node
            .get(&format!("/api/v1/reports/{query}"), Some(&token))
            .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(name), "{query}: {message}");
    }
    // 400 days is fine by the day.
    let (status, body) = node
        .get(
            "/api/v1/reports/queues?from=2025-11-01&to=2026-12-05&interval=1d",
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[actix_rt::test]
async fn reports_are_for_supervisors_and_keys_with_reports_read() {
    let node = Node::start_on(&crate::support::config_with_admin(), &[]).await;
    let admin = node.token_for("sam");
    let path = "/api/v1/reports/agents";
    let (status, _) = node.get(path, None).await;
    assert_eq!(status, 401);
    let (status, body) = node.get(path, Some(&node.token_for("bob"))).await;
    assert_eq!(status, 403, "an agent: {body}");
    let mut keys = Vec::new();
    for scope in ["reports:read", "events:read"] {
        let (status, created) = node
            .post_as(
                "/api/v1/admin/api-keys",
                &json!({"name": scope, "scopes": [scope]}),
                &admin,
            )
            .await;
        assert_eq!(status, 201, "{created}");
        keys.push(created["key"].as_str().unwrap().to_owned());
    }
    let (status, body) = node.get(path, Some(&keys[0])).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.get(path, Some(&keys[1])).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("reports:read"));
}

/// Today's 15-minute rows of both reports, once every event up to `since`
/// is counted.
async fn today(node: &Node, since: switchboard_proto::Timestamp) -> (Value, Value) {
    let counted = |body: &Value| {
        switchboard_proto::Timestamp::parse_rfc3339(body["as_of"].as_str().unwrap_or(""))
            .is_ok_and(|as_of| as_of >= since)
    };
    let queues = node
        .supervised_until("/api/v1/reports/queues", counted)
        .await;
    let agents = node
        .supervised_until("/api/v1/reports/agents", counted)
        .await;
    (queues["rows"].clone(), agents["rows"].clone())
}

#[actix_rt::test]
async fn an_erasure_leaves_every_report_as_it_was_stored_and_rebuilt() {
    let node = node_with_identities().await;
    let mut bob = node.available_agent("bob", Codec::Json).await;
    let (id, _offer) = identified_chat(&node, &mut bob, &signed("shop-7"), "A parcel").await;
    let customer = node.record(&id).await["customer"]["id"]
        .as_str()
        .expect("a verified customer")
        .to_owned();
    close(&node, &mut bob, &id).await;
    let last = switchboard_proto::Timestamp::now();
    bob.ok(json!({"type": "logout"})).await;
    let (queues, agents) = today(&node, last).await;
    assert_eq!(queues[0]["handled"], 1, "{queues}");
    assert_eq!(queues[0]["wrap_ups"], json!({"resolved": 1}));
    assert!(queues[0]["aht_s"].as_f64().is_some(), "{queues}");

    let (status, body) = node
        .delete(
            &format!("/api/v1/customers/{customer}"),
            &node.token_for("sam"),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(today(&node, last).await, (queues.clone(), agents.clone()));

    // Rebuilt from the erased events: the same figures.
    let database = node.running.state.engine.database().clone();
    database.reset_reports().await.expect("reset");
    let rules = switchboard_engine::reports::projection::ReportRules {
        service_level_ms: 20_000,
        short_abandon_ms: 5_000,
    };
    switchboard_engine::reports::projector::catch_up(&database, &rules)
        .await
        .expect("rebuilt");
    assert_eq!(today(&node, last).await, (queues, agents));
}
