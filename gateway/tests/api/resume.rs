//! Reconnects: `resume` fills the gap by `seq`; `hello` brings back an
//! agent's offers, conversations and owed wrap-ups; logout only when the
//! agent holds nothing, and the tokens handed out before it stop working.

use crate::both_codecs;
use crate::support::{Client, Node};
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

both_codecs!(
    resume_replays_exactly_what_the_customer_missed,
    resume_replays_what_an_agent_missed_and_closed_transcripts,
    hello_restores_an_agents_offers_and_conversations,
    wrap_up_required_is_sent_again_after_hello,
    logout_is_refused_while_holding_anything,
);

/// Sends `resume` and returns the ack and the `message` events that came
/// before it, in order.
async fn resume(client: &mut Client, command: Value) -> (Value, Vec<u64>) {
    let before = client.pending().len();
    let ack = client.ok(command).await;
    let replayed = client
        .pending()
        .iter()
        .skip(before)
        .filter(|frame| frame["type"] == "message")
        .map(|frame| frame["seq"].as_u64().expect("seq"))
        .collect();
    (ack, replayed)
}

async fn resume_replays_exactly_what_the_customer_missed(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, token) = node.start_chat("sales", "Ada", "Hello").await;
    let mut customer = Client::connect(&node, &token, codec).await;
    bob.accept(&id).await;
    bob.say(&id, "one", "b1").await;
    assert_eq!(customer.message("one").await["seq"], 3);

    // The customer's phone drops; two messages go by.
    customer.close().await;
    bob.say(&id, "two", "b2").await;
    bob.say(&id, "three", "b3").await;

    let mut customer = Client::connect(&node, &token, codec).await;
    let summary = &customer.hello["conversations"][0];
    assert_eq!(summary["conversation_id"], id.as_str());
    assert_eq!(summary["last_seq"], 5);
    assert_eq!(summary["state"], "active");
    let (ack, replayed) = resume(&mut customer, json!({"type": "resume", "after_seq": 3})).await;
    assert_eq!(ack["replayed"], 2);
    assert_eq!(replayed, [4, 5]);
    assert_eq!(customer.message("two").await["from"]["id"], "bob");
    customer.message("three").await;

    // At or past the end: nothing; from 0: the whole transcript.
    let (ack, replayed) = resume(&mut customer, json!({"type": "resume", "after_seq": 5})).await;
    assert_eq!((ack["replayed"].clone(), replayed.len()), (json!(0), 0));
    let (ack, replayed) = resume(&mut customer, json!({"type": "resume", "after_seq": 99})).await;
    assert_eq!((ack["replayed"].clone(), replayed.len()), (json!(0), 0));
    let (ack, replayed) = resume(&mut customer, json!({"type": "resume", "after_seq": 0})).await;
    assert_eq!(ack["replayed"], 5);
    assert_eq!(replayed, [1, 2, 3, 4, 5]);

    // Live again after the resume.
    bob.say(&id, "four", "b4").await;
    assert_eq!(customer.message("four").await["seq"], 6);
}

async fn resume_replays_what_an_agent_missed_and_closed_transcripts(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    bob.close().await;
    customer
        .ok(json!({"type": "send", "text": "hello?", "client_msg_id": "c1"}))
        .await;

    let mut bob = node.agent("bob", codec).await;
    assert_eq!(bob.hello["conversations"][0]["last_seq"], 3);
    let (ack, replayed) = resume(
        &mut bob,
        json!({"type": "resume", "conversation_id": id, "after_seq": 2}),
    )
    .await;
    assert_eq!(ack["replayed"], 1);
    assert_eq!(replayed, [3]);
    assert_eq!(bob.message("hello?").await["from"]["role"], "customer");

    // Closed conversations replay from the kept record, for those who
    // took part only.
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    customer.conversation_state("closed").await;
    bob.message("Bob Chen ended the chat").await;
    let (ack, replayed) = resume(
        &mut bob,
        json!({"type": "resume", "conversation_id": id, "after_seq": 3}),
    )
    .await;
    assert_eq!(ack["replayed"], 1);
    assert_eq!(replayed, [4]);
    let mut carol = node.agent("carol", codec).await;
    carol
        .fails(
            json!({"type": "resume", "conversation_id": id, "after_seq": 0}),
            "forbidden",
        )
        .await;
}

async fn hello_restores_an_agents_offers_and_conversations(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (active, _ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let (offered, _grace) = node.customer("sales", "Grace", "Hi", codec).await;
    let offer = bob
        .event_where("offer", |o| o["conversation_id"] == offered.as_str())
        .await;

    // Page reload.
    bob.close().await;
    let mut bob = node.agent("bob", codec).await;
    let hello = &bob.hello;
    assert_eq!(hello["agent_state"]["state"], "available");
    assert_eq!(hello["you"]["id"], "bob");
    let conversations = hello["conversations"].as_array().expect("conversations");
    assert_eq!(conversations.len(), 1, "{hello}");
    assert_eq!(conversations[0]["conversation_id"], active.as_str());
    assert_eq!(conversations[0]["state"], "active");
    assert_eq!(conversations[0]["owner"], "bob");
    let offers = hello["offers"].as_array().expect("offers");
    assert_eq!(offers.len(), 1, "{hello}");
    let mut restored = offers[0].clone();
    let mut shown = offer.clone();
    restored.as_object_mut().map(|o| o.remove("type"));
    shown.as_object_mut().map(|o| o.remove("type"));
    assert_eq!(restored, shown, "the same popover as before the reload");

    // The restored offer can be accepted from the new page.
    let ack = bob
        .ok(json!({"type": "accept", "conversation_id": offered}))
        .await;
    assert_eq!(ack["conversation"]["state"], "active");
}

async fn wrap_up_required_is_sent_again_after_hello(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, _ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    let required = bob.event("wrap_up_required").await;
    bob.close().await;

    let mut bob = node.agent("bob", codec).await;
    assert_eq!(
        bob.hello["conversations"][0]["conversation_id"],
        id.as_str()
    );
    assert_eq!(bob.hello["conversations"][0]["state"], "ended");
    // Right after hello, with the original deadline.
    let again = bob.event("wrap_up_required").await;
    assert!(bob.pending().is_empty(), "{:?}", bob.pending());
    assert_eq!(again, required);
    let ack = bob
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    assert_eq!(ack["conversation"]["state"], "closed");

    // Nothing owed any more: a new page gets no wrap-up form.
    let mut bob = node.agent("bob", codec).await;
    assert_eq!(bob.hello["conversations"], json!([]));
    bob.assert_no_event("wrap_up_required").await;
}

async fn logout_is_refused_while_holding_anything(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, _ada) = node.customer("sales", "Ada", "Hi", codec).await;
    bob.event("offer").await;
    // An offer, a conversation, a wrap-up owed: each holds the agent.
    bob.fails(json!({"type": "logout"}), "invalid_state").await;
    bob.ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    bob.fails(json!({"type": "logout"}), "invalid_state").await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    bob.fails(json!({"type": "logout"}), "invalid_state").await;
    assert_eq!(node.agent_ids("state=available").await, ["bob"]);
    bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;

    // Holding nothing: logged out, every tab closed.
    let mut other_tab = node.agent("bob", codec).await;
    let ack = bob.ok(json!({"type": "logout"})).await;
    assert!(ack.get("conversation").is_none());
    bob.closed().await;
    other_tab.closed().await;
    assert_eq!(
        node.agent_ids("state=offline").await,
        ["alice", "bob", "carol", "dave", "sam"]
    );
    // No offers while logged out.
    let (_waiting, _grace) = node.customer("sales", "Grace", "Hi", codec).await;
    assert_eq!(node.queue("sales").await["waiting"], 1);
    // Logging in again starts idle.
    let bob = node.agent("bob", codec).await;
    assert_eq!(bob.hello["agent_state"]["state"], "idle");
}

/// A logout revokes the agent's tokens issued before it: an old token opens
/// no WebSocket (which would log the agent back in) and reads nothing over
/// REST, while the token of a new login works.
#[actix_rt::test]
async fn a_logout_revokes_the_tokens_issued_before_it() {
    let node = Node::start(&[]).await;
    let old = node.login("bob").await;
    let mut bob = Client::connect(&node, &old, Codec::Json).await;
    // Another device's login, also before the logout.
    let other_device = node.login("bob").await;
    bob.ok(json!({"type": "logout"})).await;
    bob.closed().await;

    for token in [&old, &other_device] {
        let refused = Client::try_connect(&node, token, Codec::Json).await;
        assert!(
            refused.is_err(),
            "a token from before the logout opened a WebSocket"
        );
        let (status, body) = node.get("/api/v1/queues", Some(token)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("logged out")),
            "{body}"
        );
    }
    // The refused tokens logged no one in.
    assert!(node
        .agent_ids("state=offline")
        .await
        .contains(&"bob".to_owned()));

    // A new login's token works, the old one stays refused.
    let new = node.login("bob").await;
    let bob = Client::connect(&node, &new, Codec::Json).await;
    assert_eq!(bob.hello["agent_state"]["state"], "idle");
    let (status, _) = node.get("/api/v1/queues", Some(&new)).await;
    assert_eq!(status, 200);
    let (status, _) = node.get("/api/v1/queues", Some(&old)).await;
    assert_eq!(status, 401);
}
