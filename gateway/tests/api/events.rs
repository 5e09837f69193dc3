//! The event feed (`GET /api/v1/events`), API keys and webhooks, over a
//! real node, real WebSocket clients and real HTTP receivers on loopback.

use base64::Engine as _;
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

use crate::receiver::{Answer, Receiver};
use crate::support::{config_with_admin, Node};

const SECRET: &str = "whsec-0123456789abcdef";

/// Sam is also an admin here; webhooks may target loopback (the tests'
/// receivers), with quick retries and a short timeout.
async fn node() -> Node {
    node_with(&[
        ("SWITCHBOARD__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("SWITCHBOARD__WEBHOOKS__RETRY_INITIAL_MS", "50"),
        ("SWITCHBOARD__WEBHOOKS__RETRY_MAX_MS", "200"),
        ("SWITCHBOARD__WEBHOOKS__TIMEOUT_MS", "500"),
    ])
    .await
}

async fn node_with(env: &[(&str, &str)]) -> Node {
    Node::start_on(&config_with_admin(), env).await
}

/// Reads every event from the start, `limit` a page, until a page is empty.
async fn read_all(node: &Node, token: &str, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &after {
            None => format!("/api/v1/events?limit={limit}"),
            Some(cursor) => format!("/api/v1/events?limit={limit}&after={cursor}"),
        };
        let (status, page) = node.get(&path, Some(token)).await;
        assert_eq!(status, 200, "{path}: {page}");
        let got = page["events"].as_array().expect("events").clone();
        after = Some(
            page["next_cursor"]
                .as_str()
                .expect("next_cursor")
                .to_owned(),
        );
        if got.is_empty() {
            return events;
        }
        events.extend(got);
    }
    panic!("the feed never ended");
}

fn types_of<'a>(events: impl IntoIterator<Item = &'a Value>) -> Vec<&'a str> {
    events
        .into_iter()
        .map(|event| event["type"].as_str().expect("type"))
        .collect()
}

fn of_conversation<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["conversation_id"] == id)
        .collect()
}

/// Reads until `done` holds of everything read (events commit a moment
/// after the acknowledgement that caused them... never later than the
/// next long-poll wakes).
async fn read_until(node: &Node, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = String::new();
    for _ in 0..20 {
        let path = if after.is_empty() {
            "/api/v1/events?wait_s=5&limit=1000".to_owned()
        } else {
            format!("/api/v1/events?wait_s=5&limit=1000&after={after}")
        };
        let (status, page) = node.get(&path, Some(token)).await;
        assert_eq!(status, 200, "{page}");
        events.extend(page["events"].as_array().expect("events").iter().cloned());
        after = page["next_cursor"].as_str().expect("cursor").to_owned();
        if done(&events) {
            return events;
        }
    }
    panic!("events never came: {:?}", types_of(&events));
}

/// A whole chat, accepted, answered, transferred, conferenced, ended and
/// wrapped up.
async fn whole_chat(node: &Node, codec: Codec) -> String {
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    bob.say(&id, "How can I help?", "b1").await;
    customer
        .ok(json!({"type": "send", "text": "My order", "client_msg_id": "c1"}))
        .await;
    let mut dave = node.available_agent("dave", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "dave"}))
        .await;
    dave.accept(&id).await;
    bob.ok(json!({"type": "end_conference", "conversation_id": id}))
        .await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    dave.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "follow_up"}))
        .await;
    id
}

#[actix_rt::test]
async fn every_step_of_a_chat_is_an_event_in_the_order_it_happened() {
    let node = node().await;
    let id = whole_chat(&node, Codec::Json).await;
    let supervisor = node.token_for("sam");
    let events = read_until(&node, &supervisor, |events| {
        events
            .iter()
            .any(|e| e["type"] == "conversation.closed" && e["conversation_id"] == id.as_str())
    })
    .await;
    let mine = of_conversation(&events, &id);
    assert_eq!(
        types_of(mine.iter().copied()),
        [
            "conversation.created",
            "conversation.queued",
            "message.created",
            "conversation.offered",
            "conversation.accepted",
            "message.created", // Bob joined
            "message.created", // How can I help?
            "message.created", // My order
            "conference.requested",
            "conference.started",
            "message.created", // Dave joined
            "conference.ended",
            "message.created", // Dave left
            "conversation.ended",
            "message.created", // Bob ended the chat
            "wrap_up.submitted",
            "wrap_up.submitted",
            "conversation.closed",
        ]
    );
    let created = mine[0];
    assert_eq!(created["queue_id"], "sales");
    assert!(created["customer_id"]
        .as_str()
        .is_some_and(|c| c.starts_with("cu-")));
    assert_eq!(created["data"]["customer"]["name"], "Ada");
    let accepted = mine[4];
    assert_eq!(accepted["agent_id"], "bob");
    assert_eq!(mine[6]["data"]["message"]["text"], "How can I help?");
    assert_eq!(mine[15]["data"]["reason"]["id"], "resolved");
    assert_eq!(
        mine[17]["data"]["wrap_ups"],
        json!(["resolved", "follow_up"])
    );
    // Every event has a unique id, a cursor and a time.
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
    assert!(events
        .iter()
        .all(|e| e["cursor"].is_string() && e["at"].is_string()));
    // The agents' own events: logged in, then their state.
    let bobs: Vec<&Value> = events
        .iter()
        .filter(|e| e["agent_id"] == "bob" && e["type"].as_str().unwrap().starts_with("agent."))
        .collect();
    assert_eq!(
        types_of(bobs.iter().copied())[..2],
        ["agent.logged_in", "agent.state_changed"]
    );
    assert_eq!(bobs[1]["data"]["state"], "available");
}

#[actix_rt::test]
async fn paging_with_next_cursor_yields_every_event_exactly_once() {
    let node = node().await;
    whole_chat(&node, Codec::MsgPack).await;
    let supervisor = node.token_for("sam");
    let whole = read_until(&node, &supervisor, |events| {
        events.iter().any(|e| e["type"] == "conversation.closed")
    })
    .await;
    let paged = read_all(&node, &supervisor, 3).await;
    let ids = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(paged.len() >= whole.len());
    assert_eq!(ids(&paged)[..whole.len()], ids(&whole)[..]);
    // Filtered by type: the same order, only those types.
    let (status, page) = node
        .get(
            "/api/v1/events?types=conversation.created,conversation.closed&limit=1000",
            Some(&supervisor),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        types_of(page["events"].as_array().unwrap()),
        ["conversation.created", "conversation.closed"]
    );
    // Past the end: nothing, and the same cursor back.
    let end = page["next_cursor"].as_str().unwrap();
    let (_, empty) = node
        .get(
            &format!("/api/v1/events?types=conversation.created&after={end}"),
            Some(&supervisor),
        )
        .await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["next_cursor"], end);
}

#[actix_rt::test]
async fn a_long_poll_answers_as_soon_as_an_event_commits() {
    let node = node().await;
    let supervisor = node.token_for("sam");
    let (_, page) = node
        .get("/api/v1/events?limit=1000", Some(&supervisor))
        .await;
    let after = page["next_cursor"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/events?wait_s=8&after={after}");
    let waiting = node.get(&path, Some(&supervisor));
    let chat = async {
        // Starts once the poll is in: the poll must be woken, not time out.
        actix_rt::task::yield_now().await;
        node.start_chat("sales", "Ada", "Hello").await
    };
    let ((status, page), (id, _)) = futures_util::join!(waiting, chat);
    assert_eq!(status, 200);
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty(), "the poll answered with nothing");
    assert_eq!(events[0]["conversation_id"], id.as_str());
}

#[actix_rt::test]
async fn bad_event_queries_are_refused_and_change_nothing() {
    let node = node().await;
    let supervisor = node.token_for("sam");
    let other_cluster =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("e1.another-cluster.5");
    for (query, word) in [
        ("after=not-a-cursor", "after"),
        (&*format!("after={other_cluster}"), "another"),
        (
            "types=message.created,conversation.exploded",
            "conversation.exploded",
        ),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("wait_s=31", "wait_s"),
    ] {
        let (status, body) = node
            .get(&format!("/api/v1/events?{query}"), Some(&supervisor))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(word), "{query}: {message}");
    }
    // A whole number may come with a zero fraction (JSON Schema's integer).
    let (status, body) = node
        .get("/api/v1/events?limit=5.0", Some(&supervisor))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = node.get("/api/v1/events", None).await;
    assert_eq!(status, 401);
    let (status, body) = node
        .get("/api/v1/events", Some(&node.token_for("bob")))
        .await;
    assert_eq!(status, 403, "an agent reads no events: {body}");
}

#[actix_rt::test]
async fn api_keys_read_what_their_scopes_allow_until_revoked() {
    let node = node().await;
    let admin = node.token_for("sam");
    let (id, _) = node.start_chat("sales", "Ada", "Hello").await;

    let (status, created) = node
        .post_as(
            "/api/v1/admin/api-keys",
            &json!({"name": "warehouse", "scopes": ["events:read"]}),
            &admin,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    // Listed without its secret.
    let (status, listed) = node.get("/api/v1/admin/api-keys", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["id"], key_id.as_str());
    assert_eq!(listed[0]["scopes"], json!(["events:read"]));
    assert!(
        !listed.to_string().contains(&key[12..]),
        "the key is shown once"
    );

    let events = read_until(&node, &key, |events| {
        events.iter().any(|e| e["conversation_id"] == id.as_str())
    })
    .await;
    assert!(!events.is_empty());
    // Not the record: that scope is not its.
    let (status, body) = node
        .get(&format!("/api/v1/conversations/{id}"), Some(&key))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("records:read"));
    // Nor anything an agent's token does.
    let (status, _) = node.get("/api/v1/queues", Some(&key)).await;
    assert_eq!(status, 403);

    let (status, records_key) = node
        .post_as(
            "/api/v1/admin/api-keys",
            &json!({"name": "crm", "scopes": ["records:read"]}),
            &admin,
        )
        .await;
    assert_eq!(status, 201);
    let records_key = records_key["key"].as_str().unwrap();
    let (status, record) = node
        .get(&format!("/api/v1/conversations/{id}"), Some(records_key))
        .await;
    assert_eq!(status, 200, "{record}");
    let (status, page) = node.get("/api/v1/conversations", Some(records_key)).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["conversation_id"], id.as_str());

    let (status, _) = node
        .delete(&format!("/api/v1/admin/api-keys/{key_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, body) = node.get("/api/v1/events", Some(&key)).await;
    assert_eq!(status, 401, "a revoked key: {body}");
    // A forged secret for a real id is no key.
    let forged = format!("sbk_{key_id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let (status, _) = node.get("/api/v1/conversations", Some(&forged)).await;
    assert_eq!(status, 401);
}

#[actix_rt::test]
async fn only_an_admin_makes_keys_and_bad_ones_are_refused() {
    let node = node().await;
    let admin = node.token_for("sam");
    let (status, _) = node
        .post_as(
            "/api/v1/admin/api-keys",
            &json!({"name": "x", "scopes": ["events:read"]}),
            &node.token_for("bob"),
        )
        .await;
    assert_eq!(status, 403);
    for body in [
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["admin:all"]}),
        json!({"name": " ", "scopes": ["events:read"]}),
        json!({"name": "x".repeat(101), "scopes": ["events:read"]}),
        json!({"scopes": ["events:read"]}),
    ] {
        let (status, answer) = node.post_as("/api/v1/admin/api-keys", &body, &admin).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (_, listed) = node.get("/api/v1/admin/api-keys", Some(&admin)).await;
    assert_eq!(listed, json!([]), "nothing was stored");
    let (status, _) = node.delete("/api/v1/admin/api-keys/ak-nope", &admin).await;
    assert_eq!(status, 404);
}

async fn webhook(node: &Node, url: &str, types: &[&str]) -> Value {
    let (status, created) = node
        .post_as(
            "/api/v1/admin/webhooks",
            &json!({"url": url, "types": types, "secret": SECRET}),
            &node.token_for("sam"),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("secret").is_none());
    created
}

/// The events delivered to `receiver` until `count` of them came, each
/// delivery checked for its signature; `delivered` ones only.
async fn delivered(receiver: &mut Receiver, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < count {
        let delivery = receiver.next().await;
        assert!(
            delivery.signed_with(SECRET),
            "unsigned: {:?}",
            delivery.headers
        );
        assert!(delivery.headers.contains_key("switchboard-delivery"));
        if matches!(delivery.answer, Answer::Status(200)) {
            events.extend(delivery.events());
        }
    }
    events
}

#[actix_rt::test]
async fn a_webhook_gets_its_events_signed_and_in_order() {
    let node = node().await;
    let mut receiver = Receiver::start().await;
    let hook = webhook(
        &node,
        &receiver.url("/hook"),
        &[
            "conversation.created",
            "message.created",
            "conversation.closed",
        ],
    )
    .await;
    let id = whole_chat(&node, Codec::Json).await;
    // Seven messages: Ada's, Bob joined, two lines, Dave joined and left,
    // Bob ended it.
    let events = delivered(&mut receiver, 9).await;
    let types = types_of(&events);
    assert_eq!(events.len(), 9, "{types:?}");
    assert_eq!(types[0], "conversation.created");
    assert_eq!(types[8], "conversation.closed");
    assert!(
        types[1..8].iter().all(|t| *t == "message.created"),
        "{types:?}"
    );
    assert!(events.iter().all(|e| e["conversation_id"] == id.as_str()));
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["message"]["seq"].as_u64().unwrap_or(0))
        .filter(|seq| *seq > 0)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The log says so.
    let admin = node.token_for("sam");
    let hook_id = hook["id"].as_str().unwrap();
    let (status, log) = node
        .get(
            &format!("/api/v1/admin/webhooks/{hook_id}/deliveries"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    assert!(log["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["delivered"] == true));
    assert_eq!(log["items"][0]["status"], 200);
}

#[actix_rt::test]
async fn a_failing_receiver_is_retried_and_later_events_wait_behind() {
    let node = node().await;
    let mut receiver = Receiver::start().await;
    receiver.script([
        Answer::Status(500),
        Answer::Hang,
        Answer::Redirect,
        Answer::Close,
        Answer::Status(503),
    ]);
    let hook = webhook(&node, &receiver.url("/hook"), &["conversation.created"]).await;
    let mut ids = Vec::new();
    for name in ["Ada", "Ben", "Cy"] {
        ids.push(node.start_chat("sales", name, "Hello").await.0);
    }
    // Five failures, each retried with the same first event, then all.
    let mut firsts = Vec::new();
    let mut events = Vec::new();
    while events.len() < 3 {
        let delivery = receiver.next().await;
        assert!(delivery.signed_with(SECRET));
        let batch = delivery.events();
        firsts.push(batch[0]["conversation_id"].as_str().unwrap().to_owned());
        if matches!(delivery.answer, Answer::Status(200)) {
            events.extend(batch);
        }
    }
    assert!(firsts.iter().all(|first| *first == ids[0]), "{firsts:?}");
    let delivered: Vec<&str> = events
        .iter()
        .map(|e| e["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        delivered,
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let admin = node.token_for("sam");
    let hook_id = hook["id"].as_str().unwrap();
    // The receiver has the events before the node records the delivery
    // (with the reset of `failures`, in one transaction): wait for it.
    let hooks = node
        .supervised_until("/api/v1/admin/webhooks", |hooks| hooks[0]["failures"] == 0)
        .await;
    let (_, log) = node
        .get(
            &format!("/api/v1/admin/webhooks/{hook_id}/deliveries"),
            Some(&admin),
        )
        .await;
    let items = log["items"].as_array().unwrap();
    let errors: Vec<&str> = items
        .iter()
        .rev()
        .filter(|d| d["delivered"] == false)
        .map(|d| d["error"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(errors.len(), 5, "{log}");
    assert!(errors[0].contains("500"), "{errors:?}");
    assert!(errors[1].contains("no answer within"), "{errors:?}");
    assert!(errors[2].contains("redirect"), "{errors:?}");
    assert!(errors[4].contains("503"), "{errors:?}");
    assert_eq!(hooks[0]["failures"], 0, "healthy again: {hooks}");
}

#[actix_rt::test]
async fn a_receiver_down_for_a_while_gets_every_event_in_order_when_it_returns() {
    let node = node_with(&[
        ("SWITCHBOARD__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("SWITCHBOARD__WEBHOOKS__RETRY_INITIAL_MS", "20"),
        ("SWITCHBOARD__WEBHOOKS__RETRY_MAX_MS", "100"),
        ("SWITCHBOARD__WEBHOOKS__BATCH_MAX", "7"),
    ])
    .await;
    let receiver = Receiver::start().await;
    webhook(&node, &receiver.url("/hook"), &["conversation.created"]).await;
    let port = receiver.stop();
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(
            node.start_chat("sales", &format!("Customer {n}"), "Hello")
                .await
                .0,
        );
    }
    // Refused connections meanwhile; the events wait in the database.
    let mut receiver = Receiver::on_port(port).await;
    let events = delivered(&mut receiver, ids.len()).await;
    let delivered: Vec<&str> = events
        .iter()
        .map(|e| e["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        delivered,
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[actix_rt::test]
async fn bad_webhooks_are_refused_and_nothing_is_stored() {
    // The default: no private targets.
    let node = node_with(&[]).await;
    let admin = node.token_for("sam");
    for (url, word) in [
        ("ftp://example.com/hook", "http"),
        ("not a url", "URL"),
        ("http://127.0.0.1:9/hook", "private"),
        ("http://10.0.0.8/hook", "private"),
        ("http://[::1]:9/hook", "private"),
        ("http://localhost:9/hook", "private"),
    ] {
        let (status, body) = node
            .post_as(
                "/api/v1/admin/webhooks",
                &json!({"url": url, "types": [], "secret": SECRET}),
                &admin,
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(word), "{url}: {message}");
    }
    let receiver = Receiver::start().await;
    for body in [
        json!({"url": receiver.url("/"), "types": ["nope.nope"], "secret": SECRET}),
        json!({"url": receiver.url("/"), "types": [], "secret": "short"}),
        json!({"url": receiver.url("/"), "types": [], "secret": SECRET, "after": "bad"}),
    ] {
        let (status, answer) = node.post_as("/api/v1/admin/webhooks", &body, &admin).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (status, _) = node
        .post_as(
            "/api/v1/admin/webhooks",
            &json!({"url": receiver.url("/"), "types": [], "secret": SECRET}),
            &node.token_for("bob"),
        )
        .await;
    assert_eq!(status, 403);
    let (_, hooks) = node.get("/api/v1/admin/webhooks", Some(&admin)).await;
    assert_eq!(hooks, json!([]));
    let (status, _) = node.delete("/api/v1/admin/webhooks/wh-nope", &admin).await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn a_deleted_webhook_gets_nothing_more() {
    let node = node().await;
    let mut receiver = Receiver::start().await;
    let hook = webhook(&node, &receiver.url("/hook"), &["conversation.created"]).await;
    let (first, _) = node.start_chat("sales", "Ada", "Hello").await;
    let events = delivered(&mut receiver, 1).await;
    assert_eq!(events[0]["conversation_id"], first.as_str());
    let admin = node.token_for("sam");
    let hook_id = hook["id"].as_str().unwrap();
    let (status, _) = node
        .delete(&format!("/api/v1/admin/webhooks/{hook_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, _) = node
        .get(
            &format!("/api/v1/admin/webhooks/{hook_id}/deliveries"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 404);
    // A second webhook sees the next chat; the deleted one never does.
    let mut second = Receiver::start().await;
    webhook(&node, &second.url("/hook"), &["conversation.created"]).await;
    let (next, _) = node.start_chat("sales", "Ben", "Hello").await;
    let events = delivered(&mut second, 1).await;
    assert_eq!(events[0]["conversation_id"], next.as_str());
    assert!(receiver.deliveries.try_recv().is_err());
}

#[actix_rt::test]
async fn an_erased_customer_leaves_events_with_ids_only() {
    let node = node().await;
    let mut bob = node.available_agent("bob", Codec::Json).await;
    let (id, _customer) = node
        .accepted_chat("sales", "Ada", &mut bob, Codec::Json)
        .await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    let admin = node.token_for("sam");
    let events = read_until(&node, &admin, |events| {
        events
            .iter()
            .any(|e| e["type"] == "conversation.closed" && e["conversation_id"] == id.as_str())
    })
    .await;
    let customer = of_conversation(&events, &id)[0]["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = node
        .delete(&format!("/api/v1/customers/{customer}"), &admin)
        .await;
    assert_eq!(status, 204);
    let after = read_until(&node, &admin, |events| {
        events.iter().any(|e| e["type"] == "customer.erased")
    })
    .await;
    assert!(!after
        .to_vec()
        .iter()
        .any(|e| e.to_string().contains("Hello, this is Ada")));
    let erased = after
        .iter()
        .find(|e| e["type"] == "customer.erased")
        .unwrap();
    assert_eq!(erased["customer_id"], customer.as_str());
    // What reports count stays (waits, handle times, reason ids); nothing
    // that says who the customer was or what was written.
    for event in of_conversation(&after, &id) {
        let data = event["data"].as_object().unwrap();
        assert_eq!(data["erased"], true, "{event}");
        let kept = switchboard_engine::reports::projection::KEPT_ON_ERASURE;
        assert!(
            data.keys()
                .all(|key| key == "erased" || kept.contains(&key.as_str())),
            "{event}"
        );
        assert!(!event.to_string().contains("Ada"), "{event}");
    }
}

type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// The next line the documented receiver prints (bounded wait).
async fn next_line(lines: &mut Lines) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the receiver prints within 20 s")
        .expect("stdout readable")
        .expect("the receiver runs")
}

/// The receiver example in `docs/` (Python, standard library), run as an
/// integrator would run it: it verifies every delivery's signature and
/// prints each event once.
#[actix_rt::test]
async fn the_documented_receiver_verifies_and_prints_every_event() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/webhook-receiver.py");
    let mut child = tokio::process::Command::new("python3")
        .args([script, "--port", "0", "--secret", SECRET])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the documented receiver");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = next_line(&mut lines).await;
    let port = listening.strip_prefix("listening ").expect("its port");
    let node = node().await;
    webhook(
        &node,
        &format!("http://127.0.0.1:{port}/"),
        &["conversation.created"],
    )
    .await;
    let mut ids = Vec::new();
    for name in ["Ada", "Ben"] {
        ids.push(node.start_chat("sales", name, "Hello").await.0);
    }
    for id in &ids {
        let event: Value = serde_json::from_str(&next_line(&mut lines).await).expect("JSON");
        assert_eq!(event["type"], "conversation.created");
        assert_eq!(event["conversation_id"], id.as_str());
    }
    // A forged delivery is refused by it.
    let forged = awc::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .insert_header(("Switchboard-Signature", "t=1,v1=00"))
        .send_body(r#"{"webhook_id":"x","events":[]}"#)
        .await
        .expect("the receiver answers");
    assert_eq!(forged.status().as_u16(), 401);
}
