//! Bad input gets its documented error, the connection stays open (the next
//! command works) and nothing changes (the record, listings and agent
//! states read the same afterwards).

use crate::both_codecs;
use crate::support::{Client, Node, CONFIG};
use awc::ws;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_gateway::auth::{Subject, TokenSigner};
use switchboard_gateway::settings::Settings;
use switchboard_proto::codec::Codec;
use switchboard_proto::{AgentId, ConversationId};

both_codecs!(
    malformed_frames_are_bad_requests_and_change_nothing,
    unknown_types_and_missing_fields_are_bad_requests_naming_the_request,
    frame_of_the_other_kind_is_a_bad_request,
    unknown_ids_are_not_found_and_change_nothing,
    wrong_state_and_non_owner_are_refused_and_change_nothing,
    oversize_text_is_too_long_and_changes_nothing,
    customer_token_opens_its_one_conversation_only,
    flood_is_rate_limited_and_the_connection_stays_open,
);

const UNKNOWN: &str = "c-00000000000000000000000000000000";

/// Bob owns an active sales chat with Ada (messages 1 and 2).
struct Scene {
    node: Node,
    id: String,
    customer: Client,
    bob: Client,
}

async fn scene(codec: Codec) -> Scene {
    scene_with(codec, &[]).await
}

async fn scene_with(codec: Codec, env: &[(&str, &str)]) -> Scene {
    let node = Node::start(env).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    Scene {
        node,
        id,
        customer,
        bob,
    }
}

impl Scene {
    /// The connections still work and nothing changed: the record reads as
    /// `before`, then one more message goes through both ways.
    async fn still_works_and_unchanged(&mut self, before: &Value) {
        assert_eq!(&self.node.record(&self.id).await, before);
        let seq = before["messages"].as_array().map_or(0, Vec::len) as u64 + 1;
        let ack = self.bob.say(&self.id, "still here", "fence-b").await;
        assert_eq!(ack["seq"], seq);
        let ack = self
            .customer
            .ok(json!({"type": "send", "text": "me too", "client_msg_id": "fence-c"}))
            .await;
        assert_eq!(ack["seq"], seq + 1);
        self.customer.message("still here").await;
        self.bob.message("me too").await;
    }
}

/// The next error frame that answers no request.
async fn unanswered_error(client: &mut Client) -> Value {
    let error = client
        .event_where("error", |frame| frame.get("request_id").is_none())
        .await;
    assert_eq!(error["code"], "bad_request", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    error
}

async fn malformed_frames_are_bad_requests_and_change_nothing(codec: Codec) {
    let mut scene = scene(codec).await;
    let before = scene.node.record(&scene.id).await;
    let garbage: Vec<Vec<u8>> = match codec {
        Codec::Json => vec![
            b"{not json".to_vec(),
            b"".to_vec(),
            b"{\"type\": \"send\", \"request_id\": \"x\"".to_vec(),
        ],
        // 0xc1 is never valid; 0x82 announces a map of two entries and
        // ends; 0xa5 announces a five-byte string and ends.
        Codec::MsgPack => vec![vec![0xc1], vec![0x82, 0xa4], vec![0xa5, b'h']],
    };
    for client in [&mut scene.bob, &mut scene.customer] {
        for bytes in &garbage {
            client.send_bytes(bytes.clone()).await;
            let error = unanswered_error(client).await;
            let kind = match codec {
                Codec::Json => "JSON",
                Codec::MsgPack => "MessagePack",
            };
            assert!(
                error["message"].as_str().is_some_and(|m| m.contains(kind)),
                "{error}"
            );
        }
        // Well-formed, but not a command object, or no usable request id.
        for value in [
            json!([1, 2, 3]),
            json!("send"),
            json!(null),
            json!({"type": "typing"}),
            json!({"type": "typing", "request_id": ""}),
            json!({"type": "typing", "request_id": 7}),
        ] {
            client.send_value(&value).await;
            unanswered_error(client).await;
        }
    }
    scene.still_works_and_unchanged(&before).await;
}

async fn unknown_types_and_missing_fields_are_bad_requests_naming_the_request(codec: Codec) {
    let mut scene = scene(codec).await;
    let id = scene.id.clone();
    let before = scene.node.record(&id).await;
    let bob = &mut scene.bob;
    for (command, names) in [
        (json!({"type": "fly"}), "fly"),
        (json!({"conversation_id": id}), "type"),
        (
            json!({"type": "send", "conversation_id": id, "text": "hi"}),
            "client_msg_id",
        ),
        (
            json!({"type": "send", "text": "hi", "client_msg_id": "m"}),
            "conversation_id",
        ),
        (
            json!({"type": "send", "conversation_id": id, "text": 42, "client_msg_id": "m"}),
            "",
        ),
        (json!({"type": "set_state", "state": "rona"}), "rona"),
        (json!({"type": "set_state"}), "state"),
        (
            json!({"type": "resume", "conversation_id": id, "after_seq": -1}),
            "",
        ),
        (
            json!({"type": "transfer", "conversation_id": id, "to": {"planet": "mars"}}),
            "",
        ),
        (
            json!({"type": "conference", "conversation_id": id}),
            "agent",
        ),
    ] {
        let error = bob.fails(command.clone(), "bad_request").await;
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(names)),
            "{command} -> {error}"
        );
    }
    // Blank text is refused too.
    bob.fails(
        json!({"type": "send", "conversation_id": id, "text": "   ", "client_msg_id": "blank"}),
        "bad_request",
    )
    .await;
    let customer = &mut scene.customer;
    for command in [
        // Agent-only commands do not exist for a customer.
        json!({"type": "accept", "conversation_id": id}),
        json!({"type": "transfer", "conversation_id": id, "to": {"queue": "support"}}),
        json!({"type": "send", "client_msg_id": "m"}),
        json!({"type": "send", "text": "", "client_msg_id": "m"}),
        json!({"type": "resume"}),
    ] {
        customer.fails(command, "bad_request").await;
    }
    assert_eq!(scene.node.agent_ids("state=available").await, ["bob"]);
    scene.still_works_and_unchanged(&before).await;
}

async fn frame_of_the_other_kind_is_a_bad_request(codec: Codec) {
    let mut scene = scene(codec).await;
    let before = scene.node.record(&scene.id).await;
    let command = json!({"type": "send", "request_id": "k1", "conversation_id": scene.id, "text": "wrong kind", "client_msg_id": "k1"});
    let other = match codec {
        // A JSON session reads text frames; MessagePack ones binary frames.
        Codec::Json => ws::Message::Binary(serde_json::to_vec(&command).expect("json").into()),
        Codec::MsgPack => ws::Message::Text(command.to_string().into()),
    };
    scene.bob.send_message(other).await;
    let error = scene
        .bob
        .event_where("error", |frame| frame["code"] == "bad_request")
        .await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("frame")),
        "{error}"
    );
    assert_eq!(
        error["request_id"], "k1",
        "the request id is echoed when readable"
    );
    scene.still_works_and_unchanged(&before).await;
}

async fn unknown_ids_are_not_found_and_change_nothing(codec: Codec) {
    let mut scene = scene(codec).await;
    let before = scene.node.record(&scene.id).await;
    let bob = &mut scene.bob;
    for unknown in [UNKNOWN, "nonsense"] {
        for command in [
            json!({"type": "send", "conversation_id": unknown, "text": "hi", "client_msg_id": "u"}),
            json!({"type": "send_template", "conversation_id": unknown, "template_id": "greeting", "client_msg_id": "u"}),
            json!({"type": "typing", "conversation_id": unknown}),
            json!({"type": "transfer", "conversation_id": unknown, "to": {"queue": "support"}}),
            json!({"type": "conference", "conversation_id": unknown, "agent": "carol"}),
            json!({"type": "end_conference", "conversation_id": unknown}),
            json!({"type": "end", "conversation_id": unknown}),
            json!({"type": "wrap_up", "conversation_id": unknown, "reason": "resolved"}),
            json!({"type": "resume", "conversation_id": unknown, "after_seq": 0}),
        ] {
            bob.fails(command, "not_found").await;
        }
        bob.fails(
            json!({"type": "accept", "conversation_id": unknown}),
            "no_offer",
        )
        .await;
    }
    bob.fails(
        json!({"type": "set_state", "state": "idle", "reason": "nap"}),
        "not_found",
    )
    .await;
    assert_eq!(scene.node.agent_ids("state=available").await, ["bob"]);
    scene.still_works_and_unchanged(&before).await;
}

async fn wrong_state_and_non_owner_are_refused_and_change_nothing(codec: Codec) {
    let mut scene = scene(codec).await;
    let id = scene.id.clone();
    // A second chat Bob is only offered.
    let (offered, _grace) = scene.node.customer("sales", "Grace", "Hi", codec).await;
    scene
        .bob
        .event_where("offer", |o| o["conversation_id"] == offered.as_str())
        .await;
    let before = scene.node.record(&id).await;
    let offered_before = scene.node.record(&offered).await;

    let bob = &mut scene.bob;
    for (command, code) in [
        (
            json!({"type": "end", "conversation_id": offered}),
            "invalid_state",
        ),
        (
            json!({"type": "transfer", "conversation_id": offered, "to": {"queue": "support"}}),
            "invalid_state",
        ),
        (
            json!({"type": "conference", "conversation_id": offered, "agent": "carol"}),
            "invalid_state",
        ),
        (
            json!({"type": "send", "conversation_id": offered, "text": "hi", "client_msg_id": "w"}),
            "forbidden",
        ),
        (
            json!({"type": "wrap_up", "conversation_id": offered, "reason": "resolved"}),
            "invalid_state",
        ),
        (
            json!({"type": "end_conference", "conversation_id": id}),
            "invalid_state",
        ),
        (
            json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}),
            "invalid_state",
        ),
    ] {
        bob.fails(command, code).await;
    }

    let mut carol = scene.node.available_agent("carol", codec).await;
    for (command, code) in [
        (json!({"type": "end", "conversation_id": id}), "not_owner"),
        (
            json!({"type": "transfer", "conversation_id": id, "to": {"agent": "carol"}}),
            "not_owner",
        ),
        (
            json!({"type": "conference", "conversation_id": id, "agent": "dave"}),
            "not_owner",
        ),
        (
            json!({"type": "send", "conversation_id": id, "text": "hi", "client_msg_id": "w"}),
            "forbidden",
        ),
        (
            json!({"type": "typing", "conversation_id": id}),
            "forbidden",
        ),
        (
            json!({"type": "resume", "conversation_id": id, "after_seq": 0}),
            "forbidden",
        ),
        (json!({"type": "accept", "conversation_id": id}), "no_offer"),
        (
            json!({"type": "accept", "conversation_id": offered}),
            "no_offer",
        ),
    ] {
        carol.fails(command, code).await;
    }
    carol.assert_no_event("message").await;
    assert_eq!(scene.node.record(&offered).await, offered_before);
    scene.still_works_and_unchanged(&before).await;
    // The offer still stands.
    scene
        .bob
        .ok(json!({"type": "accept", "conversation_id": offered}))
        .await;
}

async fn oversize_text_is_too_long_and_changes_nothing(codec: Codec) {
    let mut scene = scene(codec).await;
    let id = scene.id.clone();
    let before = scene.node.record(&id).await;
    for size in [201, 5_000] {
        let text = "x".repeat(size);
        scene
            .bob
            .fails(
                json!({"type": "send", "conversation_id": id, "text": text, "client_msg_id": "big"}),
                "too_long",
            )
            .await;
        scene
            .customer
            .fails(
                json!({"type": "send", "text": text, "client_msg_id": "big"}),
                "too_long",
            )
            .await;
    }
    // A template whose filled text is too long.
    scene
        .bob
        .fails(
            json!({"type": "send_template", "conversation_id": id, "template_id": "order", "params": {"orderId": "9".repeat(200)}, "client_msg_id": "big-t"}),
            "too_long",
        )
        .await;
    scene.still_works_and_unchanged(&before).await;
}

async fn customer_token_opens_its_one_conversation_only(codec: Codec) {
    let node = Node::start(&[]).await;
    let (mine, token) = node.start_chat("support", "Ada", "Mine").await;
    let (theirs, _) = node.start_chat("support", "Grace", "Theirs").await;
    let theirs_before = node.record(&theirs).await;

    let mut ada = Client::connect(&node, &token, codec).await;
    let conversations = ada.hello["conversations"].as_array().expect("list");
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0]["conversation_id"], mine.as_str());
    assert_eq!(ada.hello["you"]["conversation_id"], mine.as_str());
    // Naming another conversation does not reach it: a customer's commands
    // always act on the token's conversation.
    let ack = ada
        .ok(json!({"type": "send", "conversation_id": theirs, "text": "psst", "client_msg_id": "p"}))
        .await;
    assert_eq!(ack["id"], format!("{mine}-2"));
    let ack = ada
        .ok(json!({"type": "resume", "conversation_id": theirs, "after_seq": 0}))
        .await;
    assert_eq!(ack["replayed"], 2);
    assert!(ada
        .pending()
        .iter()
        .filter(|frame| frame["type"] == "message")
        .all(|frame| frame["conversation_id"] == mine.as_str()));
    ada.ok(json!({"type": "end", "conversation_id": theirs}))
        .await;
    assert_eq!(node.record(&mine).await["state"], "abandoned");
    assert_eq!(node.record(&theirs).await, theirs_before);

    // Over REST, a customer token reads no record and no agent route.
    for path in [
        format!("/api/v1/conversations/{theirs}"),
        format!("/api/v1/conversations/{mine}"),
        "/api/v1/agents".to_owned(),
        "/api/v1/stats".to_owned(),
    ] {
        let (status, body) = node.get(&path, Some(&token)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{path}");
        assert!(body["error"]["message"].is_string());
    }
}

async fn flood_is_rate_limited_and_the_connection_stays_open(codec: Codec) {
    let mut scene = scene_with(
        codec,
        &[
            ("SWITCHBOARD__LIMITS__COMMANDS_PER_SECOND", "1"),
            ("SWITCHBOARD__LIMITS__COMMAND_BURST", "3"),
        ],
    )
    .await;
    let before = scene.node.record(&scene.id).await["messages"]
        .as_array()
        .map_or(0, Vec::len);

    // Ten sends at once from the customer's fresh session.
    for n in 0..10 {
        let id = format!("flood-{n}");
        scene
            .customer
            .send_value(&json!({"type": "send", "request_id": id, "text": format!("spam {n}"), "client_msg_id": id}))
            .await;
    }
    let mut acked = 0;
    let mut limited = 0;
    for n in 0..10 {
        let reply = scene.customer.reply_to(&format!("flood-{n}")).await;
        match (reply["type"].as_str(), reply["code"].as_str()) {
            (Some("ack"), _) => acked += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("unexpected reply {reply}"),
        }
    }
    assert_eq!(acked + limited, 10, "exactly one reply per command");
    assert!((3..=4).contains(&acked), "the burst goes through: {acked}");
    assert!(limited >= 6, "{limited}");
    // Refused commands were not carried out.
    let stored = scene.node.record(&scene.id).await["messages"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(stored, before + acked);

    // Another session is paced on its own.
    scene.bob.say(&scene.id, "unaffected", "b-1").await;

    // The flooding socket stays open: once the rate allows, it works.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = scene
            .customer
            .request(json!({"type": "send", "text": "calm now", "client_msg_id": "calm"}))
            .await;
        if reply["type"] == "ack" {
            break;
        }
        assert_eq!(reply["code"], "rate_limited", "{reply}");
        assert!(tokio::time::Instant::now() < deadline, "still limited");
        // The limiter refills one command per second: that wait is the
        // subject here.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    scene.bob.message("calm now").await;
}

/// The node's token secret, from the test config.
fn signer() -> TokenSigner {
    let settings =
        Settings::from_toml_str(CONFIG, Vec::<(String, String)>::new()).expect("test config");
    TokenSigner::from_settings(&settings)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[actix_rt::test]
async fn expired_forged_and_malformed_tokens_are_unauthorized() {
    let node = Node::start(&[]).await;
    let (conversation, _) = node.start_chat("sales", "Ada", "Hi").await;
    let bob = Subject::Agent(AgentId::new("bob"));
    let signer = signer();
    let day_ago = unix_now() - 24 * 3600;
    let valid = signer.issue_agent(&AgentId::new("bob"));
    let (payload, signature) = valid.split_once('.').expect("payload.signature");
    let forged_secret = TokenSigner::new(
        b"not-the-secret-not-the-secret-not-the-secret",
        Duration::from_secs(3600),
    );
    let other_payload = signer
        .issue_agent(&AgentId::new("sam"))
        .split_once('.')
        .map(|(payload, _)| payload.to_owned())
        .expect("payload");
    let tokens = [
        ("expired agent", signer.issue_at(&bob, day_ago)),
        (
            "expired customer",
            signer.issue_at(
                &Subject::Customer(ConversationId::new(conversation.as_str())),
                day_ago,
            ),
        ),
        (
            "other secret",
            forged_secret.issue_agent(&AgentId::new("bob")),
        ),
        ("altered payload", format!("{other_payload}.{signature}")),
        ("altered signature", format!("{payload}.{}", "A".repeat(43))),
        ("no signature", payload.to_owned()),
        ("garbage", "not-a-token".to_owned()),
        (
            "unknown agent",
            signer.issue_agent(&AgentId::new("mallory")),
        ),
    ];
    for (what, token) in &tokens {
        for path in [
            format!("/api/v1/ws?token={token}"),
            "/api/v1/ws".to_owned(),
            "/api/v1/queues".to_owned(),
            format!("/api/v1/conversations/{conversation}"),
        ] {
            let bearer = (!path.contains("?token=")).then_some(token.as_str());
            let (status, body) = node.get(&path, bearer).await;
            assert_eq!(status, 401, "{what} at {path}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
            assert!(body["error"]["message"].is_string(), "{what}: {body}");
        }
        let refused = Client::try_connect(&node, token, Codec::Json).await;
        assert!(refused.is_err(), "{what} opened a WebSocket");
    }
    // No token at all.
    let (status, body) = node.get("/api/v1/ws", None).await;
    assert_eq!(status, 401, "{body}");
    // Nothing logged anyone in.
    assert_eq!(
        node.agent_ids("state=offline").await,
        ["alice", "bob", "carol", "dave", "sam"]
    );
    // The same secret's fresh token works.
    let bob = Client::connect(&node, &valid, Codec::Json).await;
    assert_eq!(bob.hello["you"]["id"], "bob");
}

#[actix_rt::test]
async fn bad_rest_bodies_are_bad_requests_and_change_nothing() {
    let node = Node::start(&[]).await;
    let error = |status: u16, body: &Value, want_status: u16, code: &str| {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    for raw in [
        "{not json",
        "",
        "[]",
        r#"{"queue": "sales"}"#,
        r#"{"queue": "sales", "message": "hi"}"#,
        r#"{"queue": "sales", "customer": {"email": "a@b.c"}, "message": "hi"}"#,
        r#"{"queue": "sales", "customer": {"name": "Ada"}}"#,
        r#"{"queue": 7, "customer": {"name": "Ada"}, "message": "hi"}"#,
    ] {
        let (status, body) = node.post_raw("/api/v1/chats", raw).await;
        error(status, &body, 400, "bad_request");
    }
    for body in [
        json!({"queue": "sales", "customer": {"name": "  "}, "message": "hi"}),
        json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "  "}),
    ] {
        let (status, body) = node.post("/api/v1/chats", &body).await;
        error(status, &body, 400, "bad_request");
    }
    let (status, body) = node
        .post(
            "/api/v1/chats",
            &json!({"queue": "nowhere", "customer": {"name": "Ada"}, "message": "hi"}),
        )
        .await;
    error(status, &body, 404, "not_found");
    let (status, body) = node
        .post(
            "/api/v1/chats",
            &json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "x".repeat(201)}),
        )
        .await;
    error(status, &body, 413, "too_long");

    for raw in [
        "{not json",
        r#"{"username": "bob"}"#,
        r#"{"password": "pw-bob"}"#,
    ] {
        let (status, body) = node.post_raw("/api/v1/agent/login", raw).await;
        error(status, &body, 400, "bad_request");
    }
    for (username, password) in [("bob", "wrong"), ("mallory", "pw-mallory"), ("bob", "")] {
        let (status, body) = node
            .post(
                "/api/v1/agent/login",
                &json!({"username": username, "password": password}),
            )
            .await;
        error(status, &body, 401, "unauthorized");
    }
    let (status, body) = node
        .get("/api/v1/agents?state=busy", Some(&node.token_for("bob")))
        .await;
    error(status, &body, 400, "bad_request");

    // Nothing was started and nobody logged in.
    for queue in ["sales", "support"] {
        assert_eq!(node.queue(queue).await["waiting"], 0, "{queue}");
    }
    assert_eq!(
        node.agent_ids("state=offline").await,
        ["alice", "bob", "carol", "dave", "sam"]
    );
    // And the API still answers.
    let (status, _) = node
        .post(
            "/api/v1/chats",
            &json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "hi"}),
        )
        .await;
    assert_eq!(status, 201);
}

/// Starting chats and trying logins are open to anyone: one address that
/// floods them is refused with `rate_limited` (429) and changes nothing.
#[actix_rt::test]
async fn floods_of_chat_starts_and_logins_from_one_address_are_rate_limited() {
    let node = Node::start(&[
        ("SWITCHBOARD__LIMITS__CHATS_PER_MINUTE_PER_ADDRESS", "2"),
        ("SWITCHBOARD__LIMITS__LOGINS_PER_MINUTE_PER_ADDRESS", "2"),
    ])
    .await;
    let chat = json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi"});
    for _ in 0..2 {
        assert_eq!(node.post("/api/v1/chats", &chat).await.0, 201);
    }
    let (status, body) = node.post("/api/v1/chats", &chat).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        node.queue("sales").await["waiting"],
        2,
        "the refused chat was not queued"
    );

    let wrong = json!({"username": "bob", "password": "wrong"});
    for _ in 0..2 {
        assert_eq!(node.post("/api/v1/agent/login", &wrong).await.0, 401);
    }
    let (status, body) = node.post("/api/v1/agent/login", &wrong).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
}
