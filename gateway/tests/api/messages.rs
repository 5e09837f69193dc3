//! Messages: one gapless order for everyone, idempotent sends, the agent
//! text rules, templates, typing.

use crate::both_codecs;
use crate::support::{Client, Node};
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

both_codecs!(
    every_participant_sees_one_gapless_order,
    send_is_idempotent_on_client_msg_id,
    agent_text_with_angle_brackets_is_refused_and_not_stored_or_relayed,
    customer_text_is_stored_and_relayed_as_is,
    oversize_text_is_refused_as_too_long,
    send_template_fills_slots_and_params,
    unfillable_template_slot_is_refused_naming_it,
    typing_is_relayed_to_the_other_side_only,
);

/// The next message event with a `seq` above `after`.
async fn next_after(client: &mut Client, after: u64) -> Value {
    client
        .event_where("message", |m| m["seq"].as_u64() > Some(after))
        .await
}

/// `(seq, text)` of the next `count` message events above `after`, in the
/// order the client received them.
async fn next_messages(client: &mut Client, after: u64, count: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let message = next_after(client, after).await;
        seen.push((
            message["seq"].as_u64().expect("seq"),
            message["text"].as_str().expect("text").to_owned(),
        ));
    }
    seen
}

fn texts(record: &Value) -> Vec<String> {
    record["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect()
}

/// A customer chatting with Carol (support), accepted.
async fn chat_with_carol(node: &Node, codec: Codec) -> (String, Client, Client) {
    let mut carol = node.available_agent("carol", codec).await;
    let (id, customer) = node
        .accepted_chat("support", "Ada", &mut carol, codec)
        .await;
    (id, customer, carol)
}

async fn every_participant_sees_one_gapless_order(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;
    // Carol's second tab, and Bob as a conference guest.
    let mut carol_tab = node.agent("carol", codec).await;
    let mut bob = node.available_agent("bob", codec).await;
    carol
        .ok(json!({"type": "conference", "conversation_id": id, "agent": "bob"}))
        .await;
    bob.accept(&id).await;
    for client in [&mut customer, &mut carol, &mut carol_tab, &mut bob] {
        client.message("Bob Chen joined the chat").await;
    }
    let joined_seq = 3;

    // Everyone writes at once, without waiting for each other's acks.
    let mut requests = Vec::new();
    for round in 0..3 {
        for (who, client) in [
            ("customer", &mut customer),
            ("carol", &mut carol),
            ("carol-tab", &mut carol_tab),
            ("bob", &mut bob),
        ] {
            let request_id = format!("{who}-{round}");
            let text = format!("{who} says {round}");
            let mut command = json!({"type": "send", "request_id": request_id, "text": text, "client_msg_id": request_id});
            if who != "customer" {
                command["conversation_id"] = json!(id);
            }
            client.send_value(&command).await;
            requests.push((who, request_id));
        }
    }
    let mut acked = Vec::new();
    for (who, request_id) in &requests {
        let client = match *who {
            "customer" => &mut customer,
            "carol" => &mut carol,
            "carol-tab" => &mut carol_tab,
            _ => &mut bob,
        };
        let reply = client.reply_to(request_id).await;
        assert_eq!(reply["type"], "ack", "{reply}");
        acked.push(reply["seq"].as_u64().expect("seq"));
    }
    acked.sort_unstable();
    let expected: Vec<u64> = (joined_seq + 1..=joined_seq + 12).collect();
    assert_eq!(acked, expected, "each send got its own seq, no gap");

    let order = next_messages(&mut customer, joined_seq, 12).await;
    let seqs: Vec<u64> = order.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, expected);
    for client in [&mut carol, &mut carol_tab, &mut bob] {
        assert_eq!(next_messages(client, joined_seq, 12).await, order);
    }
    let record = node.record(&id).await;
    let stored: Vec<String> = texts(&record)[joined_seq as usize..].to_vec();
    let seen: Vec<String> = order.into_iter().map(|(_, text)| text).collect();
    assert_eq!(stored, seen);
}

async fn send_is_idempotent_on_client_msg_id(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;

    let first = carol.say(&id, "Your refund is on its way", "m-1").await;
    assert_eq!(first["client_msg_id"], "m-1");
    // A retry (even with other text) gets the same message back.
    let retry = carol.say(&id, "Your refund is on its way!!", "m-1").await;
    assert_eq!(retry["seq"], first["seq"]);
    assert_eq!(retry["id"], first["id"]);
    // The customer's own ids are its own: the same id from the customer is
    // another message.
    let customer_ack = customer
        .ok(json!({"type": "send", "text": "Thanks", "client_msg_id": "m-1"}))
        .await;
    assert_eq!(customer_ack["seq"], first["seq"].as_u64().expect("seq") + 1);
    let again = customer
        .ok(json!({"type": "send", "text": "Thanks", "client_msg_id": "m-1"}))
        .await;
    assert_eq!(again["seq"], customer_ack["seq"]);

    // Delivered once each.
    assert_eq!(
        next_messages(&mut customer, 2, 2).await[..],
        [
            (3, "Your refund is on its way".to_owned()),
            (4, "Thanks".to_owned())
        ]
    );
    carol.say(&id, "fence", "m-2").await;
    assert_eq!(next_after(&mut customer, 4).await["text"], "fence");
    let record = node.record(&id).await;
    assert_eq!(
        texts(&record),
        [
            "Hello, this is Ada",
            "Carol Diaz joined the chat",
            "Your refund is on its way",
            "Thanks",
            "fence"
        ]
    );
}

async fn agent_text_with_angle_brackets_is_refused_and_not_stored_or_relayed(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;
    for text in ["a <b> tag", "1 < 2", "2 > 1", "<customerName>"] {
        let error = carol
            .fails(
                json!({"type": "send", "conversation_id": id, "text": text, "client_msg_id": text}),
                "reserved_characters",
            )
            .await;
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The connection is fine, nothing was relayed before this, and the
    // refused ids were not used up.
    let ack = carol.say(&id, "Sorry, typo", "a <b> tag").await;
    assert_eq!(ack["seq"], 3);
    let next = next_after(&mut customer, 2).await;
    assert_eq!(next["text"], "Sorry, typo");
    assert_eq!(next["seq"], 3);
    let record = node.record(&id).await;
    assert_eq!(
        texts(&record),
        [
            "Hello, this is Ada",
            "Carol Diaz joined the chat",
            "Sorry, typo"
        ]
    );
}

async fn customer_text_is_stored_and_relayed_as_is(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;
    let text = "<img src=x onerror=alert(1)> & <script>alert('hi')</script>";
    let ack = customer
        .ok(json!({"type": "send", "text": text, "client_msg_id": "c-1"}))
        .await;
    let seen = carol.message(text).await;
    assert_eq!(seen["seq"], ack["seq"]);
    assert_eq!(seen["from"]["role"], "customer");
    assert_eq!(seen["client_msg_id"], "c-1");
    assert_eq!(customer.message(text).await["seq"], ack["seq"]);
    let record = node.record(&id).await;
    assert_eq!(texts(&record).last().map(String::as_str), Some(text));
}

async fn oversize_text_is_refused_as_too_long(codec: Codec) {
    // The test config allows 200 characters.
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;
    let too_long = "x".repeat(201);
    carol
        .fails(
            json!({"type": "send", "conversation_id": id, "text": too_long, "client_msg_id": "long"}),
            "too_long",
        )
        .await;
    customer
        .fails(
            json!({"type": "send", "text": too_long, "client_msg_id": "long"}),
            "too_long",
        )
        .await;
    // Characters, not bytes: 200 two-byte characters fit.
    let at_limit = "é".repeat(200);
    let ack = customer
        .ok(json!({"type": "send", "text": at_limit, "client_msg_id": "limit"}))
        .await;
    assert_eq!(ack["seq"], 3);
    assert_eq!(next_after(&mut carol, 2).await["seq"], 3);
    assert_eq!(
        node.record(&id).await["messages"].as_array().map(Vec::len),
        Some(3)
    );
}

async fn send_template_fills_slots_and_params(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;

    let ack = carol
        .ok(json!({"type": "send_template", "conversation_id": id, "template_id": "greeting", "client_msg_id": "t-1"}))
        .await;
    let greeting = "Hello Ada, I'm Carol Diaz from Support.";
    assert_eq!(ack["text"], greeting);
    assert_eq!(ack["seq"], 3);
    let seen = customer.message(greeting).await;
    assert_eq!(seen["from"]["id"], "carol");

    let ack = carol
        .ok(json!({"type": "send_template", "conversation_id": id, "template_id": "order", "params": {"orderId": "A-1182"}, "client_msg_id": "t-2"}))
        .await;
    let order = "Order A-1182 for Ada is on its way.";
    assert_eq!(ack["text"], order);
    customer.message(order).await;
    // Idempotent like `send`.
    let retry = carol
        .ok(json!({"type": "send_template", "conversation_id": id, "template_id": "order", "params": {"orderId": "A-1182"}, "client_msg_id": "t-2"}))
        .await;
    assert_eq!(retry["seq"], ack["seq"]);
    assert_eq!(
        texts(&node.record(&id).await)[2..],
        [greeting.to_owned(), order.to_owned()]
    );
}

async fn unfillable_template_slot_is_refused_naming_it(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;
    let error = carol
        .fails(
            json!({"type": "send_template", "conversation_id": id, "template_id": "order", "client_msg_id": "t-1"}),
            "missing_template_params",
        )
        .await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("orderId")),
        "{error}"
    );
    // Other params do not fill it.
    carol
        .fails(
            json!({"type": "send_template", "conversation_id": id, "template_id": "order", "params": {"order_id": "1"}, "client_msg_id": "t-2"}),
            "missing_template_params",
        )
        .await;
    carol
        .fails(
            json!({"type": "send_template", "conversation_id": id, "template_id": "nope", "client_msg_id": "t-3"}),
            "not_found",
        )
        .await;
    // Nothing stored or relayed.
    carol.say(&id, "fence", "f").await;
    assert_eq!(next_after(&mut customer, 2).await["text"], "fence");
    assert_eq!(
        node.record(&id).await["messages"].as_array().map(Vec::len),
        Some(3)
    );
}

async fn typing_is_relayed_to_the_other_side_only(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer, mut carol) = chat_with_carol(&node, codec).await;
    let mut carol_tab = node.agent("carol", codec).await;

    let ack = carol
        .ok(json!({"type": "typing", "conversation_id": id}))
        .await;
    assert!(ack.get("seq").is_none());
    let typing = customer.event("typing").await;
    assert_eq!(typing["conversation_id"], id.as_str());
    assert_eq!(typing["from"]["role"], "agent");
    assert_eq!(typing["from"]["id"], "carol");

    customer.ok(json!({"type": "typing"})).await;
    let typing = carol.event("typing").await;
    assert_eq!(typing["from"]["role"], "customer");
    assert_eq!(typing["from"]["name"], "Ada");

    // A message sent after both typings is a fence: whatever typing a side
    // was sent arrived before it.
    carol.say(&id, "fence", "f").await;
    for client in [&mut customer, &mut carol, &mut carol_tab] {
        client.message("fence").await;
    }
    let own = |client: &Client, role: &str| {
        client
            .pending()
            .iter()
            .any(|frame| frame["type"] == "typing" && frame["from"]["role"] == role)
    };
    assert!(!own(&customer, "customer"), "{:?}", customer.pending());
    assert!(!own(&carol, "agent"), "{:?}", carol.pending());
    assert!(!own(&carol_tab, "agent"), "{:?}", carol_tab.pending());
    // Carol's other tab is on the agent side too: it sees the customer type.
    assert!(own(&carol_tab, "customer"), "{:?}", carol_tab.pending());
}
