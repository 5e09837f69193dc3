//! Overload: a node past its capacity sheds new chats and a share of
//! messages with a retry hint, says so on `/readyz`, loses nothing it
//! acknowledged, and takes everything again once the load is gone. The
//! overload is real: 60 customers send as fast as their acks come back, on
//! a node with one HTTP worker whose tolerated standing queue is 5 ms.

use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard_proto::codec::Codec;

use crate::support::{Client, Node};

const FLOODERS: usize = 60;
/// Sends per customer at most: the flood ends by itself.
const MAX_SENDS: usize = 400;

/// What one flooding customer saw.
struct Flood {
    conversation: String,
    acked: BTreeSet<String>,
    /// Shed sends: (client_msg_id, retry_after_ms).
    shed: Vec<(String, u64)>,
}

/// Sends until `stop` (or `MAX_SENDS`): each send waits for its answer.
/// Every fifth command is a `typing`, which must never fail.
async fn flood(
    mut customer: Client,
    conversation: String,
    n: usize,
    stop: Rc<Cell<bool>>,
    shed_sends: Rc<Cell<usize>>,
) -> Flood {
    let mut seen = Flood {
        conversation,
        acked: BTreeSet::new(),
        shed: Vec::new(),
    };
    for i in 0..MAX_SENDS {
        if stop.get() {
            break;
        }
        if i % 5 == 0 {
            let reply = customer.request(json!({"type": "typing"})).await;
            assert_eq!(
                reply["type"], "ack",
                "typing is dropped, never refused: {reply}"
            );
        }
        let id = format!("f{n}-{i}");
        let reply = customer
            .request(json!({"type": "send", "text": format!("load {n} {i}"), "client_msg_id": id}))
            .await;
        match reply["type"].as_str() {
            Some("ack") => {
                seen.acked.insert(id);
            }
            _ => {
                assert_eq!(reply["code"], "unavailable", "{reply}");
                let hint = reply["retry_after_ms"].as_u64().expect("a retry hint");
                seen.shed.push((id, hint));
                shed_sends.set(shed_sends.get() + 1);
            }
        }
        // Frames of its own messages pile up unread otherwise.
        customer.drain_buffered();
    }
    customer.close().await;
    seen
}

fn client_ids(record: &Value) -> Vec<String> {
    record["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|message| message["client_msg_id"].as_str().map(str::to_owned))
        .collect()
}

#[actix_rt::test]
async fn past_capacity_a_node_sheds_with_a_retry_hint_loses_nothing_acked_and_recovers() {
    let node = Node::start(&[
        ("SWITCHBOARD__LIMITS__OVERLOAD_TARGET_MS", "5"),
        ("SWITCHBOARD__LIMITS__CHATS_PER_MINUTE_PER_ADDRESS", "0"),
    ])
    .await;
    let (status, _) = node.get("/readyz", None).await;
    assert_eq!(status, 200);

    let stop = Rc::new(Cell::new(false));
    let shed_sends = Rc::new(Cell::new(0));
    let mut customers = Vec::new();
    let mut tokens = Vec::new();
    for n in 0..FLOODERS {
        let (id, token) = node
            .start_chat("sales", &format!("Load {n}"), "hello")
            .await;
        customers.push((id, Client::connect(&node, &token, Codec::Json).await));
        tokens.push(token);
    }
    // At ease first: what a command usually takes here is known before
    // the flood (the node compares its commands' times with that).
    let (_, warm) = &mut customers[0];
    let started = Instant::now();
    for i in 0..2000 {
        if started.elapsed() > Duration::from_millis(300) {
            break;
        }
        warm.ok(json!({"type": "send", "text": "warm", "client_msg_id": format!("warm-{i}")}))
            .await;
        warm.drain_buffered();
    }
    let flooders: Vec<_> = customers
        .into_iter()
        .enumerate()
        .map(|(n, (id, customer))| {
            actix_rt::spawn(flood(customer, id, n, stop.clone(), shed_sends.clone()))
        })
        .collect();

    // While the flood runs: sends are shed, /readyz says overloaded, and a
    // new chat is refused with a retry hint in the body and in Retry-After.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut ready_said, mut chat_refused) = (false, false);
    while !(ready_said && chat_refused && shed_sends.get() > 0) {
        assert!(
            Instant::now() < deadline,
            "no overload seen in 30 s (readyz {ready_said}, chat {chat_refused})"
        );
        if !ready_said {
            let (status, body) = node.get("/readyz", None).await;
            if status == 503 {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                assert!(body["error"]["retry_after_ms"].as_u64().is_some(), "{body}");
                ready_said = true;
            }
        }
        if !chat_refused {
            let mut response = node
                .http
                .post(format!("{}/api/v1/chats", node.base))
                .send_json(
                    &json!({"queue": "sales", "customer": {"name": "Late"}, "message": "hi"}),
                )
                .await
                .expect("POST answers");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if response.status().as_u16() == 503 {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                let hint = body["error"]["retry_after_ms"].as_u64().expect("hint");
                assert!((500..1500).contains(&hint), "{hint}");
                let header = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok());
                assert_eq!(header, Some(hint.div_ceil(1000)));
                chat_refused = true;
            } else {
                assert_eq!(response.status().as_u16(), 201, "{body}");
            }
        }
        actix_rt::task::yield_now().await;
    }
    stop.set(true);
    let mut floods = Vec::new();
    for flooder in flooders {
        floods.push(flooder.await.expect("flooder ends"));
    }
    let shed: usize = floods.iter().map(|flood| flood.shed.len()).sum();
    let acked: usize = floods.iter().map(|flood| flood.acked.len()).sum();
    assert!(shed > 0, "no send was shed ({acked} acked)");
    assert!(acked > 0, "every send was shed");
    for (_, hint) in floods.iter().flat_map(|flood| &flood.shed) {
        assert!((500..1500).contains(hint), "{hint}");
    }

    // The load is gone: the node is ready again, and takes new chats.
    let (status, body) = node_ready_again(&node).await;
    assert_eq!(status, 200, "{body}");
    started_after_the_load(&node).await;

    // Every acked message is stored once; no shed one was stored.
    for flood in &floods {
        let stored = client_ids(&node.record(&flood.conversation).await);
        let unique: BTreeSet<&String> = stored.iter().collect();
        assert_eq!(unique.len(), stored.len(), "a message stored twice");
        for id in &flood.acked {
            assert!(stored.contains(id), "acked {id} lost");
        }
        for (id, _) in &flood.shed {
            assert!(!stored.contains(id), "shed {id} was stored");
        }
    }
    // A shed send, sent again with its id, is taken now, once.
    let (index, flood) = floods
        .iter()
        .enumerate()
        .find(|(_, flood)| !flood.shed.is_empty())
        .expect("a flood with a shed send");
    let (shed_id, _) = &flood.shed[0];
    let mut customer = Client::connect(&node, &tokens[index], Codec::Json).await;
    customer
        .ok(json!({"type": "send", "text": "again", "client_msg_id": shed_id}))
        .await;
    let stored = client_ids(&node.record(&flood.conversation).await);
    assert_eq!(stored.iter().filter(|id| *id == shed_id).count(), 1);
}

/// A new chat once the load is gone: taken, or (on a test machine busy
/// with other tests) refused with a hint and taken when tried again then.
async fn started_after_the_load(node: &Node) {
    for _ in 0..10 {
        let (status, body) = node
            .post(
                "/api/v1/chats",
                &json!({"queue": "sales", "customer": {"name": "After"}, "message": "back to normal"}),
            )
            .await;
        match status {
            201 => return,
            503 => {
                let hint = body["error"]["retry_after_ms"].as_u64().expect("a hint");
                tokio::time::sleep(Duration::from_millis(hint)).await;
            }
            _ => panic!("{status}: {body}"),
        }
    }
    panic!("no chat taken after the load");
}

/// `/readyz` until it answers 200 (bounded): a node recovers on its own
/// once the load drops.
async fn node_ready_again(node: &Node) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = node.get("/readyz", None).await;
        if status == 200 || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
