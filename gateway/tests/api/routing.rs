//! Routing: who gets an offer, and why (the record explains every choice).

use crate::both_codecs;
use crate::support::Node;
use serde_json::{json, Value};
use std::collections::HashSet;
use switchboard_proto::codec::Codec;

both_codecs!(
    agents_start_idle_after_login,
    only_available_agent_with_free_slot_gets_offers,
    best_agent_is_longest_available_among_equally_loaded,
    best_agent_has_fewest_active_chats_before_longest_available,
    max_chats_slots_are_respected,
    one_offer_never_goes_to_two_agents,
);

/// The routing decision of the record's offer number `index`.
async fn routing(node: &Node, id: &str, index: usize) -> Value {
    let record = node.record(id).await;
    record["offers"][index]["routing"].clone()
}

fn agents_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|row| row["agent"].as_str().expect("agent id"))
        .collect()
}

async fn agents_start_idle_after_login(codec: Codec) {
    let node = Node::start(&[]).await;
    let bob = node.agent("bob", codec).await;
    assert_eq!(bob.hello["agent_state"]["state"], "idle");
    assert!(
        bob.hello["agent_state"].get("reason").is_none(),
        "a fresh login has no idle reason: {}",
        bob.hello
    );
    assert_eq!(bob.hello["you"]["id"], "bob");
    assert_eq!(bob.hello["offers"], json!([]));
    assert_eq!(node.agent_ids("state=idle").await, ["bob"]);
    assert_eq!(
        node.agent_ids("state=available").await,
        Vec::<String>::new()
    );
}

async fn only_available_agent_with_free_slot_gets_offers(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.agent("bob", codec).await;
    let (id, _customer) = node.customer("sales", "Ada", "Anyone there?", codec).await;
    // The queue has seen the chat and kept it: nobody is available.
    assert_eq!(node.queue("sales").await["waiting"], 1);
    bob.assert_no_event("offer").await;

    let ack = bob
        .ok(json!({"type": "set_state", "state": "available"}))
        .await;
    assert_eq!(ack["state"], "available");
    let offer = bob.event("offer").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(node.queue("sales").await["waiting"], 0);
}

async fn best_agent_is_longest_available_among_equally_loaded(codec: Codec) {
    let node = Node::start(&[]).await;
    // Dave becomes available first; an id tie-break would pick Bob.
    let mut dave = node.available_agent("dave", codec).await;
    let mut bob = node.available_agent("bob", codec).await;
    let alice = node.agent("alice", codec).await; // idle: excluded
    let (id, _customer) = node.customer("sales", "Ada", "Hi", codec).await;

    assert_eq!(dave.event("offer").await["conversation_id"], id.as_str());
    bob.assert_no_event("offer").await;

    let decision = routing(&node, &id, 0).await;
    assert_eq!(decision["chosen"], "dave");
    assert_eq!(decision["queue"], "sales");
    assert!(decision["rule"]
        .as_str()
        .is_some_and(|rule| !rule.is_empty()));
    assert_eq!(decision["eligible"], 2);
    assert_eq!(agents_of(&decision["candidates"]), ["dave", "bob"]);
    assert_eq!(decision["candidates"][0]["rank"], 1);
    assert_eq!(decision["candidates"][1]["rank"], 2);
    assert!(
        decision["candidates"][0]["available_since"].as_str()
            < decision["candidates"][1]["available_since"].as_str(),
        "{decision}"
    );
    assert_eq!(decision["excluded_count"], 1);
    assert_eq!(
        decision["excluded"],
        json!([{"agent": "alice", "why": "idle"}])
    );
    drop(alice);
}

async fn best_agent_has_fewest_active_chats_before_longest_available(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (first, _ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    // Dave arrives later, but has nothing to do.
    let mut dave = node.available_agent("dave", codec).await;
    let (second, _grace) = node.customer("sales", "Grace", "Hi", codec).await;

    assert_eq!(
        dave.event("offer").await["conversation_id"],
        second.as_str()
    );
    bob.assert_no_event("offer").await;

    let decision = routing(&node, &second, 0).await;
    assert_eq!(decision["chosen"], "dave");
    assert_eq!(agents_of(&decision["candidates"]), ["dave", "bob"]);
    assert_eq!(decision["candidates"][0]["active_chats"], 0);
    assert_eq!(decision["candidates"][1]["active_chats"], 1);
    assert_eq!(decision["candidates"][1]["max_chats"], 2);
    // Alice serves sales too, but is not logged in: not weighed at all.
    assert_eq!(decision["excluded"], json!([]));
    assert_ne!(first, second);
}

async fn max_chats_slots_are_respected(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut dave = node.available_agent("dave", codec).await; // one slot
    let (first, _ada) = node.customer("sales", "Ada", "First", codec).await;
    let (second, _grace) = node.customer("sales", "Grace", "Second", codec).await;

    assert_eq!(dave.event("offer").await["conversation_id"], first.as_str());
    assert_eq!(node.queue("sales").await["waiting"], 1);
    dave.assert_no_event("offer").await;

    dave.ok(json!({"type": "accept", "conversation_id": first}))
        .await;
    assert_eq!(node.queue("sales").await["waiting"], 1);
    dave.assert_no_event("offer").await;

    dave.ok(json!({"type": "end", "conversation_id": first}))
        .await;
    dave.event("wrap_up_required").await;
    dave.assert_no_event("offer").await;
    dave.ok(json!({"type": "wrap_up", "conversation_id": first, "reason": "resolved"}))
        .await;
    assert_eq!(
        dave.event("offer").await["conversation_id"],
        second.as_str()
    );
}

async fn one_offer_never_goes_to_two_agents(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await; // two slots
    let mut dave = node.available_agent("dave", codec).await; // one slot
    let mut chats = Vec::new();
    for name in ["Ada", "Grace", "Linus", "Barbara"] {
        chats.push(node.customer("sales", name, "Hello", codec).await);
    }
    // Three slots, four chats: three offers, each to one agent, and one
    // chat waits.
    let mut offered = Vec::new();
    for _ in 0..2 {
        offered.push(bob.event("offer").await["conversation_id"].clone());
    }
    offered.push(dave.event("offer").await["conversation_id"].clone());
    assert_eq!(node.queue("sales").await["waiting"], 1);
    bob.assert_no_event("offer").await;
    dave.assert_no_event("offer").await;
    let distinct: HashSet<String> = offered
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(distinct.len(), 3, "{offered:?}");

    for (id, _customer) in &chats {
        let record = node.record(id).await;
        let offers = record["offers"].as_array().expect("offers").len();
        let expected = usize::from(distinct.contains(id));
        assert_eq!(offers, expected, "{record}");
    }
}
