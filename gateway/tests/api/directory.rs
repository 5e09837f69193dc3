//! The REST directory and operations endpoints: live queue and agent
//! listings (the transfer and conference dialogs), reasons, templates,
//! supervisor stats, health, metrics and the OpenAPI document.

use crate::both_codecs;
use crate::support::Node;
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

both_codecs!(
    queues_list_live_waiting_and_available_counts,
    agents_are_filtered_by_state_and_name,
    stats_show_queue_figures_and_agents_by_state,
);

fn ids(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|row| row["id"].as_str().expect("id"))
        .collect()
}

async fn queues_list_live_waiting_and_available_counts(codec: Codec) {
    let node = Node::start(&[]).await;
    let token = node.token_for("bob");
    let (status, queues) = node.get("/api/v1/queues", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        queues,
        json!([
            {"id": "sales", "name": "Sales", "waiting": 0, "longest_wait_s": 0, "available_agents": 0},
            {"id": "support", "name": "Support", "waiting": 0, "longest_wait_s": 0, "available_agents": 0}
        ])
    );

    let (_waiting, _ada) = node.customer("support", "Ada", "Hello?", codec).await;
    let support = node.queue("support").await;
    assert_eq!(support["waiting"], 1);
    assert!(support["longest_wait_s"].is_u64());

    let mut dave = node.available_agent("dave", codec).await; // one slot
    assert_eq!(node.queue("sales").await["available_agents"], 1);
    // The dialog's refresh sees the change: Dave's only slot is taken.
    let (id, _grace) = node.customer("sales", "Grace", "Hi", codec).await;
    dave.accept(&id).await;
    let sales = node.queue("sales").await;
    assert_eq!(sales["available_agents"], 0, "{sales}");
    assert_eq!(sales["waiting"], 0);

    let mut carol = node.available_agent("carol", codec).await;
    // Carol is offered the waiting support chat at once.
    carol.event("offer").await;
    let support = node.queue("support").await;
    assert_eq!(support["waiting"], 0, "{support}");
    assert_eq!(support["available_agents"], 1, "{support}");
}

async fn agents_are_filtered_by_state_and_name(codec: Codec) {
    let node = Node::start(&[]).await;
    let _alice = node.available_agent("alice", codec).await;
    let _bob = node.available_agent("bob", codec).await;
    let _carol = node.agent("carol", codec).await;

    assert_eq!(node.agent_ids("state=available").await, ["alice", "bob"]);
    assert_eq!(node.agent_ids("state=available&q=BO").await, ["bob"]);
    assert_eq!(node.agent_ids("state=available&q=martin").await, ["alice"]);
    assert_eq!(
        node.agent_ids("state=available&q=carol").await,
        Vec::<String>::new()
    );
    assert_eq!(node.agent_ids("q=a").await, ["alice", "carol"]);
    assert_eq!(node.agent_ids("").await, ["alice", "bob", "carol"]);
    assert_eq!(node.agent_ids("state=idle").await, ["carol"]);
    assert_eq!(node.agent_ids("state=offline").await, ["dave", "sam"]);

    let rows = node.supervised("/api/v1/agents?q=bob").await;
    assert_eq!(
        rows,
        json!([{"id": "bob", "name": "Bob Chen", "state": "available", "active_chats": 0, "max_chats": 2}])
    );
    // A REST login alone lists the agent, idle, at once.
    node.login("dave").await;
    assert_eq!(node.agent_ids("state=idle").await, ["carol", "dave"]);

    let (status, body) = node
        .get("/api/v1/agents?state=busy", Some(&node.token_for("bob")))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
}

async fn stats_show_queue_figures_and_agents_by_state(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (_answered, _ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let (left, mut grace) = node.customer("sales", "Grace", "Hi", codec).await;
    bob.event_where("offer", |o| o["conversation_id"] == left.as_str())
        .await;
    grace.ok(json!({"type": "end"})).await;
    bob.event("offer_withdrawn").await;
    let (_waiting, _linus) = node.customer("support", "Linus", "Hello?", codec).await;
    let _carol = node.agent("carol", codec).await;

    // Supervisors only.
    let (status, body) = node
        .get("/api/v1/stats", Some(&node.token_for("bob")))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = node.get("/api/v1/stats", None).await;
    assert_eq!(status, 401);

    let stats = node.supervised("/api/v1/stats").await;
    assert_eq!(stats["service_level_s"], 20);
    assert!(stats["generated_at"].is_string());
    let sales = &stats["queues"][0];
    assert_eq!(sales["id"], "sales");
    assert_eq!(sales["waiting"], 0);
    assert_eq!(sales["offered"], 2, "{sales}");
    assert_eq!(sales["accepted"], 1, "{sales}");
    assert_eq!(sales["abandoned"], 1, "{sales}");
    assert_eq!(sales["rona"], 0, "{sales}");
    let speed = sales["average_speed_of_answer_s"].as_f64().expect("speed");
    assert!((0.0..20.0).contains(&speed), "{sales}");
    assert_eq!(sales["service_level_pct"], 100.0, "{sales}");
    let support = &stats["queues"][1];
    assert_eq!(support["id"], "support");
    assert_eq!(support["waiting"], 1, "{support}");
    assert!(support["longest_wait_s"].is_u64(), "{support}");
    assert_eq!(support["offered"], 0);
    // Nothing answered yet: no speed of answer, no service level.
    assert!(
        support.get("average_speed_of_answer_s").is_none(),
        "{support}"
    );
    assert!(support.get("service_level_pct").is_none(), "{support}");

    assert_eq!(
        stats["agents_by_state"],
        json!({"available": 1, "idle": 1, "rona": 0, "offline": 3})
    );
    let agents = &stats["agents"];
    assert_eq!(ids(agents), ["alice", "bob", "carol", "dave", "sam"]);
    assert_eq!(agents[1]["active_chats"], 1, "{agents}");
}

#[actix_rt::test]
async fn idle_reasons_are_listed() {
    let node = Node::start(&[]).await;
    let (status, body) = node
        .get("/api/v1/idle-reasons", Some(&node.token_for("bob")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"id": "break", "label": "Break"}, {"id": "lunch", "label": "Lunch"}])
    );
}

#[actix_rt::test]
async fn templates_are_listed_with_their_params() {
    let node = Node::start(&[]).await;
    let (status, body) = node
        .get("/api/v1/templates", Some(&node.token_for("bob")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {
                "id": "greeting",
                "name": "Greeting",
                "text": "Hello <customerName>, I'm <agentName> from <queueName>.",
                "params": ["customerName", "agentName", "queueName"]
            },
            {
                "id": "order",
                "name": "Order status",
                "text": "Order <orderId> for <customerName> is on its way.",
                "params": ["orderId", "customerName"]
            }
        ])
    );
}

#[actix_rt::test]
async fn directory_needs_an_agent_token() {
    let node = Node::start(&[]).await;
    let (_, customer_token) = node.start_chat("sales", "Ada", "Hi").await;
    for path in [
        "/api/v1/queues",
        "/api/v1/agents",
        "/api/v1/wrapup-reasons",
        "/api/v1/idle-reasons",
        "/api/v1/templates",
        "/api/v1/stats",
    ] {
        let (status, body) = node.get(path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}");
        let (status, body) = node.get(path, Some(&customer_token)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{path}");
    }
}

#[actix_rt::test]
async fn health_readiness_and_metrics_answer() {
    let node = Node::start(&[]).await;
    let (status, _) = node.get("/healthz", None).await;
    assert_eq!(status, 200);
    let (status, _) = node.get("/readyz", None).await;
    assert_eq!(status, 200);

    // Something to count first: a chat waits in a queue.
    node.start_chat("sales", "Ada", "Hi").await;
    // Not on the clients' listener: on the metrics listener only.
    let (status, _) = node.get_text("/metrics").await;
    assert_eq!(status, 404);
    let text = node.metrics().await;
    assert!(text.contains("# TYPE switchboard_"), "{text}");
    for name in ["switchboard_conversations_live", "switchboard_queue_depth"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    // Prometheus text: every sample line is `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
}

#[actix_rt::test]
async fn openapi_document_describes_the_rest_api() {
    let node = Node::start(&[]).await;
    let (status, doc) = node.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{doc}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/agent/login",
        "/api/v1/chats",
        "/api/v1/queues",
        "/api/v1/agents",
        "/api/v1/wrapup-reasons",
        "/api/v1/idle-reasons",
        "/api/v1/templates",
        "/api/v1/conversations/{id}",
        "/api/v1/stats",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    // Unknown paths answer in the protocol's error shape.
    let (status, body) = node.get("/api/v1/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}
