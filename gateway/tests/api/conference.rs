//! Conference: the owner invites an available agent; the customer sees it
//! join and leave; an invitation nobody answers falls back to `active`.

use crate::both_codecs;
use crate::support::Node;
use serde_json::json;
use switchboard_proto::codec::Codec;

both_codecs!(
    conference_is_refused_before_accept_and_for_non_owners,
    accepted_invitation_makes_a_conference_the_customer_sees_joined,
    unanswered_invitation_falls_back_to_active_and_the_owner_is_told,
    end_conference_releases_the_guest_who_owes_a_wrap_up,
    conference_target_must_be_available_with_a_free_slot,
);

async fn conference_is_refused_before_accept_and_for_non_owners(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    let (id, _customer) = node.customer("sales", "Ada", "Hi", codec).await;
    bob.event("offer").await;
    bob.fails(
        json!({"type": "conference", "conversation_id": id, "agent": "carol"}),
        "invalid_state",
    )
    .await;
    bob.ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    // Carol is not the owner, and cannot invite herself in.
    carol
        .fails(
            json!({"type": "conference", "conversation_id": id, "agent": "carol"}),
            "not_owner",
        )
        .await;
    // No conference to end.
    bob.fails(
        json!({"type": "end_conference", "conversation_id": id}),
        "invalid_state",
    )
    .await;
    carol.assert_no_event("offer").await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "active");
    assert_eq!(record["legs"].as_array().map(Vec::len), Some(1));
}

async fn accepted_invitation_makes_a_conference_the_customer_sees_joined(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;

    let ack = bob
        .ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    assert_eq!(ack["conversation"]["state"], "conference_requested");
    assert_eq!(ack["conversation"]["owner"], "bob");
    customer.conversation_state("conference_requested").await;
    let offer = carol.event("offer").await;
    assert_eq!(offer["kind"], "conference");
    assert_eq!(
        offer["from_agent"],
        json!({"id": "bob", "name": "Bob Chen"})
    );
    // The customer keeps chatting with the owner meanwhile.
    customer
        .ok(json!({"type": "send", "text": "Still there?", "client_msg_id": "c1"}))
        .await;
    bob.message("Still there?").await;

    let accepted = carol
        .ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    assert_eq!(accepted["conversation"]["state"], "conference");
    assert_eq!(accepted["conversation"]["owner"], "bob");
    let conference = customer.conversation_state("conference").await;
    let present: Vec<&str> = conference["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(present, [id.as_str(), "bob", "carol"]);
    for client in [&mut customer, &mut bob, &mut carol] {
        let joined = client.message("Carol Diaz joined the chat").await;
        assert_eq!(joined["from"]["role"], "system");
    }
    // Everyone hears the guest; the guest may not run the conversation.
    carol
        .say(&id, "Hi Ada, Carol from support here", "g1")
        .await;
    customer.message("Hi Ada, Carol from support here").await;
    bob.message("Hi Ada, Carol from support here").await;
    carol
        .fails(json!({"type": "end", "conversation_id": id}), "not_owner")
        .await;
    let record = node.record(&id).await;
    assert_eq!(record["legs"][1]["agent"]["id"], "carol");
    assert_eq!(record["legs"][1]["role"], "guest");
    assert_eq!(record["offers"][1]["kind"], "conference");
    assert_eq!(record["offers"][1]["outcome"], "accepted");
}

async fn unanswered_invitation_falls_back_to_active_and_the_owner_is_told(codec: Codec) {
    let node = Node::with_rona(600).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    let offer = carol.event("offer").await;

    let withdrawn = carol.event("offer_withdrawn").await;
    assert_eq!(withdrawn["offer_id"], offer["offer_id"]);
    assert_eq!(withdrawn["reason"], "rona");
    carol
        .event_where("agent_state", |e| e["state"] == "rona")
        .await;
    let notice = bob.event("notice").await;
    assert_eq!(notice["conversation_id"], id.as_str());
    assert_eq!(notice["code"], "conference_no_answer");
    assert!(notice["text"]
        .as_str()
        .is_some_and(|t| t.contains("Carol Diaz")));
    customer.conversation_state("conference_requested").await;
    let back = customer.conversation_state("active").await;
    assert_eq!(back["owner"], "bob");

    // Bob still runs it: he can invite again (Carol is in rona now).
    bob.fails(
        json!({"type": "conference", "conversation_id": id, "agent": "carol"}),
        "agent_unavailable",
    )
    .await;
    bob.say(&id, "Let me help you myself", "b1").await;
    customer.message("Let me help you myself").await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "active");
    assert_eq!(record["offers"][1]["outcome"], "rona");
    assert_eq!(record["legs"].as_array().map(Vec::len), Some(1));
}

async fn end_conference_releases_the_guest_who_owes_a_wrap_up(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    carol.accept(&id).await;

    let ack = bob
        .ok(json!({"type": "end_conference", "conversation_id": id}))
        .await;
    assert_eq!(ack["conversation"]["state"], "active");
    for client in [&mut customer, &mut bob, &mut carol] {
        client.message("Carol Diaz left the chat").await;
    }
    customer.conversation_state("active").await;
    let required = carol.event("wrap_up_required").await;
    assert_eq!(required["conversation_id"], id.as_str());
    // The guest is out: it cannot write any more, and owes its wrap-up.
    carol
        .fails(
            json!({"type": "send", "conversation_id": id, "text": "bye", "client_msg_id": "g9"}),
            "forbidden",
        )
        .await;
    let wrapped = carol
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    assert_eq!(wrapped["conversation"]["state"], "active");
    bob.assert_no_event("wrap_up_required").await;

    let record = node.record(&id).await;
    assert_eq!(record["legs"][1]["left_because"], "conference_ended");
    assert_eq!(record["wrap_ups"][0]["agent"]["id"], "carol");
    assert_eq!(record["owner"], "bob");
}

async fn conference_target_must_be_available_with_a_free_slot(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, _customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let _carol = node.agent("carol", codec).await; // idle
    for target in ["carol", "alice"] {
        bob.fails(
            json!({"type": "conference", "conversation_id": id, "agent": target}),
            "agent_unavailable",
        )
        .await;
    }
    bob.fails(
        json!({"type": "conference", "conversation_id": id, "agent": "nobody"}),
        "not_found",
    )
    .await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "active");
    assert_eq!(record["offers"].as_array().map(Vec::len), Some(1));
}
