//! A waiting customer's `queue_status`: its place in line and, when one can
//! be made honestly, the estimated wait; sent when it changes, at most once
//! per `[routing] queue_status_interval_ms`, over a real WebSocket.

use crate::both_codecs;
use crate::support::{Client, Node};
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

both_codecs!(
    a_waiting_customer_hears_its_place_as_the_queue_moves,
    statuses_go_out_at_most_once_per_interval_and_only_on_change,
    with_enough_answers_lately_the_status_carries_an_estimate,
);

const INTERVAL: &str = "SWITCHBOARD__ROUTING__QUEUE_STATUS_INTERVAL_MS";

/// The next `queue_status` at `position`.
async fn status_at(customer: &mut Client, position: u64) -> Value {
    customer
        .event_where("queue_status", |status| status["position"] == position)
        .await
}

async fn a_waiting_customer_hears_its_place_as_the_queue_moves(codec: Codec) {
    let node = Node::start(&[(INTERVAL, "20")]).await;
    let (first, mut ada) = node.customer("sales", "Ada", "One", codec).await;
    let (_second, mut grace) = node.customer("sales", "Grace", "Two", codec).await;
    let (third, mut linus) = node.customer("sales", "Linus", "Three", codec).await;

    // Each hears its place right after its hello; nobody is logged in, so
    // there is no estimate, and it says why.
    let told = status_at(&mut linus, 3).await;
    assert_eq!(told["conversation_id"], third.as_str());
    assert_eq!(told["no_estimate"], "no_agents_online");
    assert!(told.get("estimated_wait_s").is_none(), "{told}");
    status_at(&mut grace, 2).await;
    status_at(&mut ada, 1).await;

    // Dave logs in (idle): still no estimate, for another reason.
    let mut dave = node.agent("dave", codec).await;
    let told = linus
        .event_where("queue_status", |status| {
            status["no_estimate"] == "no_agent_available"
        })
        .await;
    assert_eq!(told["position"], 3);

    // Ada gives up: everyone behind her moves up.
    ada.ok(json!({"type": "end"})).await;
    status_at(&mut linus, 2).await;
    status_at(&mut grace, 1).await;

    // Dave (one slot) is offered Grace's chat: Linus is next.
    dave.ok(json!({"type": "set_state", "state": "available"}))
        .await;
    status_at(&mut linus, 1).await;
    let offer = dave.event("offer").await;
    assert_ne!(offer["conversation_id"], first.as_str());
}

async fn statuses_go_out_at_most_once_per_interval_and_only_on_change(codec: Codec) {
    // A long interval: the first round goes out at once, the next waits.
    let node = Node::start(&[(INTERVAL, "600000")]).await;
    let (_first, mut ada) = node.customer("sales", "Ada", "One", codec).await;
    status_at(&mut ada, 1).await;
    let (_second, grace_token) = node.start_chat("sales", "Grace", "Two").await;
    let mut grace = Client::connect(&node, &grace_token, codec).await;
    // Grace is told on connecting, whatever the interval.
    status_at(&mut grace, 2).await;
    // Ada's place did not change: nothing more for her.
    ada.assert_no_event("queue_status").await;

    // Ada leaves: Grace is now first, but she heard from the queue less
    // than an interval ago, so she is not told yet.
    ada.ok(json!({"type": "end"})).await;
    node.supervised_until("/api/v1/queues", |rows| {
        rows.as_array().is_some_and(|rows| {
            rows.iter()
                .any(|queue| queue["id"] == "sales" && queue["waiting"] == 1)
        })
    })
    .await;
    grace.assert_no_event("queue_status").await;
    // Connecting again, she hears where she stands now.
    let mut again = Client::connect(&node, &grace_token, codec).await;
    status_at(&mut again, 1).await;
}

async fn with_enough_answers_lately_the_status_carries_an_estimate(codec: Codec) {
    let node = Node::start(&[(INTERVAL, "20")]).await;
    let mut bob = node.available_agent("bob", codec).await;
    // Three chats answered (Bob has two slots): a rate to go by.
    let (one, _ada) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let (_two, _grace) = node.accepted_chat("sales", "Grace", &mut bob, codec).await;
    bob.ok(json!({"type": "end", "conversation_id": one})).await;
    bob.ok(json!({"type": "wrap_up", "conversation_id": one, "reason": "resolved"}))
        .await;
    let (_three, _linus) = node.accepted_chat("sales", "Linus", &mut bob, codec).await;

    // Bob is full: the next customer waits, first in line, with an estimate.
    let (_four, mut joan) = node.customer("sales", "Joan", "Four", codec).await;
    let told = status_at(&mut joan, 1).await;
    let wait = told["estimated_wait_s"].as_u64().expect("an estimate");
    assert!(
        wait > 0 && wait % 30 == 0,
        "rounded to half minutes: {told}"
    );
    assert!(told.get("no_estimate").is_none(), "{told}");
}
