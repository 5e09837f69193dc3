//! RONA (redirect on no answer): an offer not accepted in time goes back to
//! the head of its queue and on to the next agent; the agent who let it go
//! waits in `rona` until it sets itself available. Short configured
//! timeouts; every wait is for the event the timer causes.

use crate::both_codecs;
use crate::support::Node;
use serde_json::json;
use switchboard_proto::codec::Codec;

/// Long enough for an accept to arrive first on a loaded machine, short
/// enough to keep the suite quick.
const RONA_MS: u64 = 600;

both_codecs!(
    unanswered_offer_is_withdrawn_and_offered_to_the_next_agent,
    rona_returns_the_conversation_to_the_head_of_its_queue,
    rona_agent_gets_nothing_until_it_sets_itself_available,
    agent_without_sessions_keeps_its_chats_and_its_offers_still_expire,
    stats_count_rona,
);

async fn unanswered_offer_is_withdrawn_and_offered_to_the_next_agent(codec: Codec) {
    let node = Node::with_rona(RONA_MS).await;
    let mut bob = node.available_agent("bob", codec).await; // longest available
    let mut dave = node.available_agent("dave", codec).await;
    let (id, mut customer) = node.customer("sales", "Ada", "Hello?", codec).await;

    let offer = bob.event("offer").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    let withdrawn = bob.event("offer_withdrawn").await;
    assert_eq!(withdrawn["conversation_id"], id.as_str());
    assert_eq!(withdrawn["offer_id"], offer["offer_id"]);
    assert_eq!(withdrawn["reason"], "rona");
    bob.event_where("agent_state", |e| e["state"] == "rona")
        .await;
    customer.conversation_state("queued").await;

    let second = dave.event("offer").await;
    assert_eq!(second["conversation_id"], id.as_str());
    assert_ne!(second["offer_id"], offer["offer_id"]);
    // Nothing was lost: the thread travels with the new offer.
    assert_eq!(second["messages"][0]["text"], "Hello?");
    assert_eq!(second["created_at"], offer["created_at"]);
    dave.ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    customer.conversation_state("active").await;
    // Too late for Bob.
    bob.fails(json!({"type": "accept", "conversation_id": id}), "no_offer")
        .await;

    let record = node.record(&id).await;
    let outcomes: Vec<_> = record["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .map(|offer| (offer["agent"]["id"].clone(), offer["outcome"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!("bob"), json!("rona")),
            (json!("dave"), json!("accepted"))
        ]
    );
    assert_eq!(record["owner"], "dave");
}

async fn rona_returns_the_conversation_to_the_head_of_its_queue(codec: Codec) {
    let node = Node::with_rona(RONA_MS).await;
    let mut dave = node.available_agent("dave", codec).await; // one slot
    let (first, mut ada) = node.customer("sales", "Ada", "First", codec).await;
    assert_eq!(dave.event("offer").await["conversation_id"], first.as_str());
    let (second, _grace) = node.customer("sales", "Grace", "Second", codec).await;

    let withdrawn = dave.event("offer_withdrawn").await;
    assert_eq!(withdrawn["conversation_id"], first.as_str());
    dave.event_where("agent_state", |e| e["state"] == "rona")
        .await;
    // The conversation announces `queued` once its queue has it back.
    ada.conversation_state("queued").await;
    assert_eq!(node.queue("sales").await["waiting"], 2);

    // The first chat waited longer and came back to the head: it goes
    // first, ahead of the one that was waiting behind it.
    dave.ok(json!({"type": "set_state", "state": "available"}))
        .await;
    assert_eq!(dave.event("offer").await["conversation_id"], first.as_str());
    assert_eq!(node.queue("sales").await["waiting"], 1);
    assert_ne!(first, second);
}

async fn rona_agent_gets_nothing_until_it_sets_itself_available(codec: Codec) {
    let node = Node::with_rona(RONA_MS).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.customer("sales", "Ada", "Hello?", codec).await;
    bob.event("offer").await;
    bob.event("offer_withdrawn").await;
    bob.event_where("agent_state", |e| e["state"] == "rona")
        .await;
    customer.conversation_state("queued").await;

    // Back in the queue, and Bob, with free slots, is not offered it.
    assert_eq!(node.queue("sales").await["waiting"], 1);
    bob.assert_no_event("offer").await;
    assert_eq!(node.agent_ids("state=rona").await, ["bob"]);

    // Only `available` leaves rona.
    bob.fails(
        json!({"type": "set_state", "state": "idle"}),
        "invalid_state",
    )
    .await;
    bob.fails(
        json!({"type": "set_state", "state": "idle", "reason": "lunch"}),
        "invalid_state",
    )
    .await;
    assert_eq!(node.agent_ids("state=rona").await, ["bob"]);
    bob.assert_no_event("offer").await;

    let ack = bob
        .ok(json!({"type": "set_state", "state": "available"}))
        .await;
    assert_eq!(ack["state"], "available");
    bob.event_where("agent_state", |e| e["state"] == "available")
        .await;
    assert_eq!(bob.event("offer").await["conversation_id"], id.as_str());
}

async fn agent_without_sessions_keeps_its_chats_and_its_offers_still_expire(codec: Codec) {
    let node = Node::with_rona(RONA_MS).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (kept, mut ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let (redirected, mut grace) = node.customer("sales", "Grace", "Hi", codec).await;
    bob.event_where("offer", |offer| {
        offer["conversation_id"] == redirected.as_str()
    })
    .await;

    // Bob's last (only) tab goes away with an offer pending.
    bob.close().await;
    let mut dave = node.available_agent("dave", codec).await;

    // The offer still runs out, and the chat moves on to Dave.
    grace.conversation_state("queued").await;
    let offer = dave.event("offer").await;
    assert_eq!(offer["conversation_id"], redirected.as_str());
    dave.ok(json!({"type": "accept", "conversation_id": redirected}))
        .await;
    grace.message("Dave Okafor joined the chat").await;

    // Bob's accepted chat is still his and still live.
    ada.ok(json!({"type": "send", "text": "Are you still there?", "client_msg_id": "a1"}))
        .await;
    let record = node.record(&kept).await;
    assert_eq!(record["state"], "active");
    assert_eq!(record["owner"], "bob");
    let record = node.record(&redirected).await;
    assert_eq!(record["offers"][0]["agent"]["id"], "bob");
    assert_eq!(record["offers"][0]["outcome"], "rona");

    // Back at his desk: in rona, still holding the chat, the message there.
    let mut bob = node.agent("bob", codec).await;
    assert_eq!(bob.hello["agent_state"]["state"], "rona");
    assert_eq!(bob.hello["offers"], json!([]));
    let conversations = bob.hello["conversations"].as_array().expect("list");
    assert_eq!(conversations.len(), 1, "{}", bob.hello);
    assert_eq!(conversations[0]["conversation_id"], kept.as_str());
    assert_eq!(conversations[0]["state"], "active");
    let last_seq = conversations[0]["last_seq"].as_u64().expect("last_seq");
    let ack = bob
        .ok(json!({"type": "resume", "conversation_id": kept, "after_seq": last_seq - 1}))
        .await;
    assert_eq!(ack["replayed"], 1);
    assert_eq!(bob.message("Are you still there?").await["seq"], last_seq);
    bob.say(&kept, "Yes, sorry!", "b1").await;
    ada.message("Yes, sorry!").await;
}

async fn stats_count_rona(codec: Codec) {
    let node = Node::with_rona(RONA_MS).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (_id, mut customer) = node.customer("sales", "Ada", "Hello?", codec).await;
    bob.event("offer").await;
    bob.event("offer_withdrawn").await;
    bob.event_where("agent_state", |e| e["state"] == "rona")
        .await;
    customer.conversation_state("queued").await;

    let sales = node.queue_stats("sales").await;
    assert_eq!(sales["rona"], 1, "{sales}");
    assert_eq!(sales["offered"], 1, "{sales}");
    assert_eq!(sales["accepted"], 0, "{sales}");
    assert_eq!(sales["waiting"], 1, "{sales}");
    let stats = node.supervised("/api/v1/stats").await;
    assert_eq!(stats["agents_by_state"]["rona"], 1, "{stats}");
    assert_eq!(node.queue_stats("support").await["rona"], 0);
}
