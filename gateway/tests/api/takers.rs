//! `GET /api/v1/agents?conversation_id=`: who could take that chat now
//! (`can_take`) and why not (`why_not`), the same rule a transfer applies,
//! so the dialog marks exactly whom a transfer would refuse.

use crate::both_codecs;
use crate::support::Node;
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

both_codecs!(each_agent_says_whether_it_can_take_the_chat_and_why_not,);

/// `id -> (can_take, why_not)` of the rows.
fn verdicts(rows: &Value) -> Vec<(String, Value, Value)> {
    rows.as_array()
        .expect("agent rows")
        .iter()
        .map(|row| {
            (
                row["id"].as_str().expect("id").to_owned(),
                row["can_take"].clone(),
                row["why_not"].clone(),
            )
        })
        .collect()
}

async fn each_agent_says_whether_it_can_take_the_chat_and_why_not(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, _ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;

    // Carol joins as a conference guest, then is released: she owes the
    // chat's wrap-up and cannot take it again until she gives it.
    let mut carol = node.available_agent("carol", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    carol.accept(&id).await;
    bob.ok(json!({"type": "end_conference", "conversation_id": id}))
        .await;
    carol.event("wrap_up_required").await;
    // Dave (one slot) is busy with another chat; Alice is idle; Sam is free.
    let mut dave = node.available_agent("dave", codec).await;
    node.accepted_chat("sales", "Grace", &mut dave, codec).await;
    let _alice = node.agent("alice", codec).await;
    let _sam = node.available_agent("sam", codec).await;

    let bob_token = node.login("bob").await;
    let path = format!("/api/v1/agents?conversation_id={id}");
    let (status, rows) = node.get(&path, Some(&bob_token)).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        verdicts(&rows),
        [
            ("alice".into(), json!(false), json!("not_available")),
            ("bob".into(), json!(false), json!("already_in_conversation")),
            ("carol".into(), json!(false), json!("owes_wrap_up")),
            ("dave".into(), json!(false), json!("no_free_slot")),
            ("sam".into(), json!(true), Value::Null),
        ]
    );

    // The transfer says the same, in words, with its code.
    let refused = bob
        .fails(
            json!({"type": "transfer", "conversation_id": id, "to": {"agent": "carol"}}),
            "agent_unavailable",
        )
        .await;
    assert_eq!(
        refused["message"],
        "Carol Diaz cannot take this chat now: owes a wrap-up from this chat"
    );

    // Without a conversation the rows say nothing of it.
    let (status, plain) = node.get("/api/v1/agents", Some(&bob_token)).await;
    assert_eq!(status, 200);
    assert!(plain[0].get("can_take").is_none(), "{plain}");

    // Only those in the chat (or supervisors) may ask; an unknown one is 404.
    let (status, body) = node.get(&path, Some(&node.token_for("alice"))).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = node.get(&path, Some(&node.token_for("sam"))).await;
    assert_eq!(status, 200);
    let (status, body) = node
        .get("/api/v1/agents?conversation_id=nope", Some(&bob_token))
        .await;
    assert_eq!(status, 404, "{body}");

    // Once Carol wraps up, she can take it.
    carol
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    node.supervised_until(&path, |rows| {
        rows.as_array().is_some_and(|rows| {
            rows.iter()
                .any(|row| row["id"] == "carol" && row["can_take"] == true)
        })
    })
    .await;
}
