//! Transfer: owner only, after accept, not during a conference; to a queue
//! or to an agent; a target that does not answer sends the chat back to
//! the head of its queue.

use crate::both_codecs;
use crate::support::Node;
use serde_json::json;
use switchboard_proto::codec::Codec;

both_codecs!(
    transfer_is_refused_before_accept_and_for_non_owners,
    transfer_to_a_queue_reenters_it_and_the_owner_owes_a_wrap_up,
    transfer_to_an_agent_offers_it_as_a_transfer,
    transfer_to_an_unavailable_agent_is_refused,
    unanswered_transfer_goes_back_to_the_head_of_the_queue,
    transfer_is_refused_during_a_conference,
    agent_who_transferred_back_into_the_queue_still_gets_other_chats,
);

/// The agent who transferred a chat into a queue it serves still owes that
/// chat's wrap-up, so the chat must go to someone else; but the agent's
/// free slots still take every other chat at once.
async fn agent_who_transferred_back_into_the_queue_still_gets_other_chats(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut alice = node.available_agent("alice", codec).await;
    let (first, _ada) = node.customer("support", "Ada", "First", codec).await;
    alice.accept(&first).await;
    alice
        .ok(json!({"type": "transfer", "conversation_id": first, "to": {"queue": "support"}}))
        .await;
    alice
        .event_where("wrap_up_required", |w| {
            w["conversation_id"] == first.as_str()
        })
        .await;

    // Alice (2 slots, 1 held by the wrap-up) gets the next chat at once.
    let (second, _grace) = node.customer("support", "Grace", "Second", codec).await;
    alice.accept(&second).await;
    assert_eq!(
        node.queue("support").await["waiting"],
        1,
        "the first chat still waits"
    );

    // Once Alice wraps the first one up, she may take it again.
    alice
        .ok(json!({"type": "wrap_up", "conversation_id": first, "reason": "resolved"}))
        .await;
    let again = alice.event("offer").await;
    assert_eq!(again["conversation_id"], first.as_str());
}

async fn transfer_is_refused_before_accept_and_for_non_owners(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    let (id, _customer) = node.customer("sales", "Ada", "Hi", codec).await;
    bob.event("offer").await;

    // Only offered: nothing to transfer yet.
    bob.fails(
        json!({"type": "transfer", "conversation_id": id, "to": {"queue": "support"}}),
        "invalid_state",
    )
    .await;
    bob.ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    // Carol is not in it.
    for to in [json!({"queue": "support"}), json!({"agent": "carol"})] {
        carol
            .fails(
                json!({"type": "transfer", "conversation_id": id, "to": to}),
                "not_owner",
            )
            .await;
    }
    let record = node.record(&id).await;
    assert_eq!(record["state"], "active");
    assert_eq!(record["owner"], "bob");
    assert_eq!(record["queue"]["id"], "sales");
    carol.assert_no_event("offer").await;
    bob.assert_no_event("wrap_up_required").await;
}

async fn transfer_to_a_queue_reenters_it_and_the_owner_owes_a_wrap_up(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;

    let ack = bob
        .ok(json!({"type": "transfer", "conversation_id": id, "to": {"queue": "support"}}))
        .await;
    let summary = &ack["conversation"];
    assert_eq!(summary["state"], "queued");
    assert_eq!(
        summary["queue"],
        json!({"id": "support", "name": "Support"})
    );
    assert!(summary.get("owner").is_none(), "{summary}");
    assert_eq!(summary["participants"].as_array().map(Vec::len), Some(1));
    let required = bob.event("wrap_up_required").await;
    assert_eq!(required["conversation_id"], id.as_str());
    // Both sides see the transfer in the transcript, Bob as he leaves.
    for client in [&mut customer, &mut bob] {
        client
            .message("Bob Chen transferred the chat to Support")
            .await;
    }
    customer.conversation_state("queued").await;
    assert_eq!(node.queue("support").await["waiting"], 1);

    // Support's agent gets it as a new chat of that queue.
    let mut carol = node.available_agent("carol", codec).await;
    let offer = carol.event("offer").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(offer["kind"], "new");
    assert_eq!(offer["queue"]["id"], "support");
    carol
        .ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    customer.message("Carol Diaz joined the chat").await;
    // Bob is out: he can no longer write, only wrap up.
    bob.fails(
        json!({"type": "send", "conversation_id": id, "text": "still here?", "client_msg_id": "b9"}),
        "forbidden",
    )
    .await;
    let wrapped = bob
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "follow_up"}))
        .await;
    assert_eq!(wrapped["conversation"]["state"], "active");
    assert_eq!(wrapped["conversation"]["owner"], "carol");

    let record = node.record(&id).await;
    assert_eq!(record["queue"]["id"], "support");
    assert_eq!(record["legs"][0]["agent"]["id"], "bob");
    assert_eq!(record["legs"][0]["left_because"], "transferred");
    assert_eq!(record["legs"][1]["agent"]["id"], "carol");
    assert_eq!(record["wrap_ups"][0]["reason"]["id"], "follow_up");
}

async fn transfer_to_an_agent_offers_it_as_a_transfer(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    // Carol serves another queue: an agent transfer goes to her anyway.
    let mut carol = node.available_agent("carol", codec).await;

    let ack = bob
        .ok(json!({"type": "transfer", "conversation_id": id, "to": {"agent": "carol"}}))
        .await;
    assert_eq!(ack["conversation"]["state"], "offered");
    bob.event("wrap_up_required").await;
    let offer = carol.event("offer").await;
    assert_eq!(offer["kind"], "transfer");
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(
        offer["from_agent"],
        json!({"id": "bob", "name": "Bob Chen"})
    );
    assert_eq!(offer["agent"], json!({"id": "carol", "name": "Carol Diaz"}));
    assert_eq!(offer["queue"]["id"], "sales");
    let thread: Vec<&str> = offer["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        thread,
        [
            "Hello, this is Ada",
            "Bob Chen joined the chat",
            "Bob Chen transferred the chat to Carol Diaz"
        ]
    );
    customer.conversation_state("offered").await;

    let accepted = carol
        .ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    assert_eq!(accepted["conversation"]["state"], "active");
    assert_eq!(accepted["conversation"]["owner"], "carol");
    customer.message("Carol Diaz joined the chat").await;
    let record = node.record(&id).await;
    assert_eq!(record["offers"][1]["kind"], "transfer");
    assert_eq!(record["offers"][1]["from_agent"]["id"], "bob");
    assert_eq!(record["offers"][1]["outcome"], "accepted");
}

async fn transfer_to_an_unavailable_agent_is_refused(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.agent("carol", codec).await; // idle
    let mut dave = node.available_agent("dave", codec).await;
    let (_other, _grace) = node.accepted_chat("sales", "Grace", &mut dave, codec).await; // dave full

    for target in ["carol", "dave", "alice" /* not logged in */] {
        bob.fails(
            json!({"type": "transfer", "conversation_id": id, "to": {"agent": target}}),
            "agent_unavailable",
        )
        .await;
    }
    bob.fails(
        json!({"type": "transfer", "conversation_id": id, "to": {"agent": "nobody"}}),
        "not_found",
    )
    .await;
    bob.fails(
        json!({"type": "transfer", "conversation_id": id, "to": {"queue": "nowhere"}}),
        "not_found",
    )
    .await;

    // Nothing changed: Bob still owns it and can write.
    bob.say(&id, "Still with you", "b1").await;
    customer.message("Still with you").await;
    // No state change reached the customer before that message.
    assert!(
        customer
            .pending()
            .iter()
            .filter(|frame| frame["type"] == "conversation")
            .all(|frame| frame["state"] == "offered" || frame["state"] == "active"),
        "{:?}",
        customer.pending()
    );
    bob.assert_no_event("wrap_up_required").await;
    carol.assert_no_event("offer").await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "active");
    assert_eq!(record["owner"], "bob");
    assert_eq!(record["offers"].as_array().map(Vec::len), Some(1));
    assert_eq!(node.agent_ids("state=idle").await, ["carol"]);
    dave.assert_no_event("offer").await;
}

async fn unanswered_transfer_goes_back_to_the_head_of_the_queue(codec: Codec) {
    let node = Node::with_rona(600).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut dave = node.available_agent("dave", codec).await;
    bob.ok(json!({"type": "transfer", "conversation_id": id, "to": {"agent": "dave"}}))
        .await;
    bob.ok(json!({"type": "set_state", "state": "idle"})).await;
    let offer = dave.event("offer").await;
    assert_eq!(offer["kind"], "transfer");
    // Another chat comes in meanwhile and waits: nobody can take it.
    let (later, _grace) = node.customer("sales", "Grace", "Me too", codec).await;

    let withdrawn = dave.event("offer_withdrawn").await;
    assert_eq!(withdrawn["conversation_id"], id.as_str());
    assert_eq!(withdrawn["offer_id"], offer["offer_id"]);
    assert_eq!(withdrawn["reason"], "rona");
    dave.event_where("agent_state", |e| e["state"] == "rona")
        .await;
    customer.conversation_state("queued").await;
    // The customer's last line said it went to Dave: now it says where it is.
    let fell_back = customer
        .message("Your chat is back in the queue; the next available agent will answer.")
        .await;
    assert_eq!(fell_back["from"]["role"], "system");
    assert_eq!(node.queue("sales").await["waiting"], 2);

    // Never dropped: first in line when Dave (one slot) is back.
    dave.ok(json!({"type": "set_state", "state": "available"}))
        .await;
    let again = dave.event("offer").await;
    assert_eq!(again["conversation_id"], id.as_str());
    assert_eq!(again["kind"], "new");
    dave.ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    customer.message("Dave Okafor joined the chat").await;
    let record = node.record(&id).await;
    let outcomes: Vec<_> = record["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .map(|o| {
            (
                o["kind"].clone(),
                o["agent"]["id"].clone(),
                o["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!("new"), json!("bob"), json!("accepted")),
            (json!("transfer"), json!("dave"), json!("rona")),
            (json!("new"), json!("dave"), json!("accepted")),
        ]
    );
    assert_eq!(node.record(&later).await["state"], "queued");
}

async fn transfer_is_refused_during_a_conference(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, _customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    // Requested...
    bob.fails(
        json!({"type": "transfer", "conversation_id": id, "to": {"queue": "support"}}),
        "invalid_state",
    )
    .await;
    carol.accept(&id).await;
    // ...and running.
    for to in [json!({"queue": "support"}), json!({"agent": "dave"})] {
        bob.fails(
            json!({"type": "transfer", "conversation_id": id, "to": to}),
            "invalid_state",
        )
        .await;
    }
    let record = node.record(&id).await;
    assert_eq!(record["state"], "conference");
    assert_eq!(record["owner"], "bob");
    assert_eq!(record["queue"]["id"], "sales");
}
