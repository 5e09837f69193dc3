//! The whole Livechat flow, one step at a time.

use crate::both_codecs;
use crate::support::Node;
use serde_json::json;
use switchboard_proto::codec::Codec;

both_codecs!(
    customer_chat_is_offered_accepted_answered_ended_and_wrapped_up,
    offer_carries_every_popover_field,
);

async fn customer_chat_is_offered_accepted_answered_ended_and_wrapped_up(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer) = node
        .customer("sales", "Ada", "Hello, I need help", codec)
        .await;
    assert_eq!(customer.hello["conversations"][0]["state"], "queued");
    let mut bob = node.available_agent("bob", codec).await;
    let offer = bob.event("offer").await;
    assert_eq!(offer["conversation_id"], id.as_str());

    let accepted = bob
        .ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    assert_eq!(accepted["conversation"]["state"], "active");
    assert_eq!(accepted["conversation"]["owner"], "bob");
    customer.conversation_state("active").await;
    customer.message("Bob Chen joined the chat").await;
    // A retried accept (its answer lost) answers the same, and adds nothing.
    let again = bob
        .ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    assert_eq!(again["conversation"], accepted["conversation"]);

    let ack = bob
        .ok(json!({"type": "send", "conversation_id": id, "text": "Hi Ada, how can I help?", "client_msg_id": "b1"}))
        .await;
    assert_eq!(ack["seq"], 3);
    let seen = customer.message("Hi Ada, how can I help?").await;
    assert_eq!(seen["seq"], 3);
    assert_eq!(seen["from"]["role"], "agent");
    let ack = customer
        .ok(json!({"type": "send", "text": "My order is late", "client_msg_id": "c1"}))
        .await;
    assert_eq!(ack["seq"], 4);
    assert_eq!(bob.message("My order is late").await["seq"], 4);

    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    customer.conversation_state("ended").await;
    customer.message("Bob Chen ended the chat").await;
    let required = bob.event("wrap_up_required").await;
    assert_eq!(required["conversation_id"], id.as_str());
    assert!(required["reasons"].as_array().is_some_and(|r| r.len() == 3));
    assert!(required["auto_wrap_up_at"].is_string());

    bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved", "notes": "refund issued"}))
        .await;
    customer.conversation_state("closed").await;

    let record = node.record(&id).await;
    assert_eq!(record["state"], "closed");
    assert_eq!(record["wrap_ups"][0]["reason"]["id"], "resolved");
    assert_eq!(record["wrap_ups"][0]["automatic"], false);
    let texts: Vec<&str> = record["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        texts,
        [
            "Hello, I need help",
            "Bob Chen joined the chat",
            "Hi Ada, how can I help?",
            "My order is late",
            "Bob Chen ended the chat"
        ]
    );
    let seqs: Vec<u64> = record["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

async fn offer_carries_every_popover_field(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, _customer) = node
        .customer("support", "Grace Hopper", "Printer is on fire", codec)
        .await;
    let mut carol = node.available_agent("carol", codec).await;
    let offer = carol.event("offer").await;
    assert_eq!(offer["kind"], "new");
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(offer["customer"]["name"], "Grace Hopper");
    assert_eq!(offer["queue"], json!({"id": "support", "name": "Support"}));
    assert_eq!(offer["agent"], json!({"id": "carol", "name": "Carol Diaz"}));
    assert_eq!(offer["messages"][0]["text"], "Printer is on fire");
    for field in ["created_at", "offered_at", "expires_at", "offer_id"] {
        assert!(offer[field].is_string(), "{field} missing: {offer}");
    }
    assert!(offer["created_at"].as_str() <= offer["offered_at"].as_str());
    assert!(offer["offered_at"].as_str() < offer["expires_at"].as_str());
}
