//! End and wrap-up: who ends, who owes a wrap-up, slots, the automatic
//! wrap-up, closing, the kept record, and customers who leave early.

use crate::both_codecs;
use crate::support::Node;
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

both_codecs!(
    owner_ends_and_every_agent_present_owes_a_wrap_up,
    customer_ends_and_the_owner_owes_a_wrap_up,
    wrap_up_frees_the_slot,
    wrap_up_is_refused_when_none_is_owed_or_the_reason_is_unknown,
    missing_wrap_up_is_given_automatically_with_the_default_reason,
    conversation_closes_when_every_wrap_up_is_in,
    record_is_for_agents_who_took_part_and_supervisors,
    customer_leaving_while_queued_abandons,
    customer_leaving_while_offered_abandons_and_withdraws_the_offer,
);

fn reason_ids(reasons: &Value) -> Vec<&str> {
    reasons
        .as_array()
        .expect("reasons")
        .iter()
        .map(|reason| reason["id"].as_str().expect("id"))
        .collect()
}

async fn owner_ends_and_every_agent_present_owes_a_wrap_up(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    carol.accept(&id).await;

    let ack = bob.ok(json!({"type": "end", "conversation_id": id})).await;
    assert_eq!(ack["conversation"]["state"], "ended");
    for client in [&mut customer, &mut bob, &mut carol] {
        let ended = client.message("Bob Chen ended the chat").await;
        assert_eq!(ended["from"]["role"], "system");
        client.conversation_state("ended").await;
    }
    for agent in [&mut bob, &mut carol] {
        let required = agent.event("wrap_up_required").await;
        assert_eq!(required["conversation_id"], id.as_str());
        assert_eq!(
            reason_ids(&required["reasons"]),
            ["resolved", "follow_up", "no_response"]
        );
        assert!(required["auto_wrap_up_at"].is_string());
    }
    // Ended is ended: nobody writes or ends again.
    customer
        .fails(
            json!({"type": "send", "text": "hello?", "client_msg_id": "c9"}),
            "invalid_state",
        )
        .await;
    bob.fails(
        json!({"type": "end", "conversation_id": id}),
        "invalid_state",
    )
    .await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "ended");
    assert!(record["ended_at"].is_string());
    let left: Vec<&Value> = record["legs"]
        .as_array()
        .expect("legs")
        .iter()
        .map(|leg| &leg["left_because"])
        .collect();
    assert_eq!(left, [&json!("ended"), &json!("ended")]);
}

async fn customer_ends_and_the_owner_owes_a_wrap_up(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;

    let ack = customer.ok(json!({"type": "end"})).await;
    assert_eq!(ack["conversation"]["state"], "ended");
    let system = bob
        .event_where("message", |m| {
            m["from"]["role"] == "system" && m["seq"] == 3
        })
        .await;
    assert!(
        system["text"].as_str().is_some_and(|t| t.contains("Ada")),
        "{system}"
    );
    bob.conversation_state("ended").await;
    assert_eq!(
        bob.event("wrap_up_required").await["conversation_id"],
        id.as_str()
    );
    customer
        .fails(json!({"type": "end"}), "invalid_state")
        .await;
    bob.fails(
        json!({"type": "send", "conversation_id": id, "text": "bye", "client_msg_id": "b9"}),
        "invalid_state",
    )
    .await;
    assert_eq!(node.record(&id).await["state"], "ended");
}

async fn wrap_up_frees_the_slot(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut dave = node.available_agent("dave", codec).await; // one slot
    let (first, _ada) = node.accepted_chat("sales", "Ada", &mut dave, codec).await;
    let (second, _grace) = node.customer("sales", "Grace", "Me next", codec).await;
    dave.ok(json!({"type": "end", "conversation_id": first}))
        .await;
    dave.event("wrap_up_required").await;
    // Owing a wrap-up still holds the slot.
    dave.assert_no_event("offer").await;
    assert_eq!(node.queue("sales").await["waiting"], 1);
    let rows = node.supervised("/api/v1/agents?q=dave").await;
    assert_eq!(rows[0]["active_chats"], 1, "{rows}");

    let ack = dave
        .ok(json!({"type": "wrap_up", "conversation_id": first, "reason": "resolved", "notes": "sent the invoice"}))
        .await;
    assert_eq!(ack["conversation"]["state"], "closed");
    assert_eq!(
        dave.event("offer").await["conversation_id"],
        second.as_str()
    );
}

async fn wrap_up_is_refused_when_none_is_owed_or_the_reason_is_unknown(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, _customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    // Still talking: nothing owed yet.
    bob.fails(
        json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}),
        "invalid_state",
    )
    .await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    bob.fails(
        json!({"type": "wrap_up", "conversation_id": id, "reason": "no_such_reason"}),
        "not_found",
    )
    .await;
    bob.fails(
        json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved", "notes": "n".repeat(201)}),
        "too_long",
    )
    .await;
    // Never took part.
    carol
        .fails(
            json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}),
            "invalid_state",
        )
        .await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "ended");
    assert_eq!(record["wrap_ups"], json!([]));
    bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    // Once given, it is not owed any more.
    bob.fails(
        json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}),
        "invalid_state",
    )
    .await;
}

async fn missing_wrap_up_is_given_automatically_with_the_default_reason(codec: Codec) {
    let node = Node::start(&[("SWITCHBOARD__ROUTING__AUTO_WRAP_UP_MS", "400")]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    let required = bob.event("wrap_up_required").await;

    // Bob never wraps up; the engine does, and the conversation closes.
    customer.conversation_state("closed").await;
    bob.conversation_state("closed").await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "closed");
    let wrap_up = &record["wrap_ups"][0];
    assert_eq!(wrap_up["automatic"], true);
    assert_eq!(
        wrap_up["reason"],
        json!({"id": "no_response", "label": "No response from customer"})
    );
    assert_eq!(wrap_up["agent"]["id"], "bob");
    assert!(wrap_up["at"].as_str() >= required["auto_wrap_up_at"].as_str());
    bob.fails(
        json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}),
        "invalid_state",
    )
    .await;
    // The slot is free again.
    let rows = node
        .supervised_until("/api/v1/agents?q=bob", |rows| rows[0]["active_chats"] == 0)
        .await;
    assert_eq!(rows[0]["active_chats"], 0, "{rows}");
}

async fn conversation_closes_when_every_wrap_up_is_in(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    let mut carol = node.available_agent("carol", codec).await;
    bob.ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
        .await;
    carol.accept(&id).await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;

    let ack = bob
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    assert_eq!(
        ack["conversation"]["state"], "ended",
        "Carol still owes one"
    );
    assert_eq!(node.record(&id).await["state"], "ended");
    let ack = carol
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "follow_up", "notes": "call back Monday"}))
        .await;
    assert_eq!(ack["conversation"]["state"], "closed");
    customer.conversation_state("closed").await;

    let record = node.record(&id).await;
    assert_eq!(record["state"], "closed");
    assert!(record["closed_at"].is_string());
    let wrap_ups: Vec<(&Value, &Value, &Value)> = record["wrap_ups"]
        .as_array()
        .expect("wrap_ups")
        .iter()
        .map(|w| (&w["agent"]["id"], &w["reason"]["id"], &w["automatic"]))
        .collect();
    assert_eq!(
        wrap_ups,
        [
            (&json!("bob"), &json!("resolved"), &json!(false)),
            (&json!("carol"), &json!("follow_up"), &json!(false))
        ]
    );
    assert_eq!(record["wrap_ups"][1]["notes"], "call back Monday");
}

async fn record_is_for_agents_who_took_part_and_supervisors(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", codec).await;
    let (id, mut customer) = node.accepted_chat("sales", "Ada", &mut bob, codec).await;
    customer
        .ok(json!({"type": "send", "text": "My order is late", "client_msg_id": "c1"}))
        .await;
    let path = format!("/api/v1/conversations/{id}");

    let check = |status: u16, body: &Value, code: &str| {
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        status
    };
    // While it runs, and after it closed.
    for closed in [false, true] {
        if closed {
            bob.ok(json!({"type": "end", "conversation_id": id})).await;
            bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
                .await;
            customer.conversation_state("closed").await;
        }
        for viewer in ["bob", "sam"] {
            let (status, record) = node.get(&path, Some(&node.token_for(viewer))).await;
            assert_eq!(status, 200, "{viewer}: {record}");
            assert_eq!(record["conversation_id"], id.as_str());
            assert_eq!(record["customer"]["name"], "Ada");
            assert_eq!(record["queue"]["id"], "sales");
            assert_eq!(record["messages"][2]["text"], "My order is late");
            assert_eq!(record["state"], if closed { "closed" } else { "active" });
        }
        let (status, body) = node.get(&path, Some(&node.token_for("carol"))).await;
        assert_eq!(check(status, &body, "forbidden"), 403);
        let customer_token = node.start_chat("sales", "Eve", "Let me see").await.1;
        let (status, body) = node.get(&path, Some(&customer_token)).await;
        assert_eq!(check(status, &body, "forbidden"), 403);
        let (status, body) = node.get(&path, None).await;
        assert_eq!(check(status, &body, "unauthorized"), 401);
    }
    let (status, body) = node
        .get(
            "/api/v1/conversations/c-00000000000000000000000000000000",
            Some(&node.token_for("sam")),
        )
        .await;
    assert_eq!(check(status, &body, "not_found"), 404);
}

async fn customer_leaving_while_queued_abandons(codec: Codec) {
    let node = Node::start(&[]).await;
    let (id, mut customer) = node.customer("support", "Ada", "Hello?", codec).await;
    assert_eq!(node.queue("support").await["waiting"], 1);
    let ack = customer.ok(json!({"type": "end"})).await;
    assert_eq!(ack["conversation"]["state"], "abandoned");
    customer.conversation_state("abandoned").await;
    assert_eq!(node.queue("support").await["waiting"], 0);
    // Nobody is offered it afterwards.
    let mut carol = node.available_agent("carol", codec).await;
    carol.assert_no_event("offer").await;
    customer
        .fails(
            json!({"type": "send", "text": "wait", "client_msg_id": "c2"}),
            "invalid_state",
        )
        .await;
    let record = node.record(&id).await;
    assert_eq!(record["state"], "abandoned");
    assert!(record["ended_at"].is_string());
    assert_eq!(node.queue_stats("support").await["abandoned"], 1);
}

async fn customer_leaving_while_offered_abandons_and_withdraws_the_offer(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut carol = node.available_agent("carol", codec).await;
    let (id, mut customer) = node.customer("support", "Ada", "Hello?", codec).await;
    let offer = carol.event("offer").await;
    customer.ok(json!({"type": "end"})).await;
    customer.conversation_state("abandoned").await;

    let withdrawn = carol.event("offer_withdrawn").await;
    assert_eq!(withdrawn["conversation_id"], id.as_str());
    assert_eq!(withdrawn["offer_id"], offer["offer_id"]);
    assert_eq!(withdrawn["reason"], "customer_left");
    carol
        .fails(json!({"type": "accept", "conversation_id": id}), "no_offer")
        .await;
    // No rona for Carol, and her slot is free: the next chat is hers.
    let (next, _grace) = node.customer("support", "Grace", "Hi", codec).await;
    assert_eq!(carol.event("offer").await["conversation_id"], next.as_str());
    assert!(!carol
        .pending()
        .iter()
        .any(|frame| frame["type"] == "agent_state" && frame["state"] == "rona"));
    let record = node.record(&id).await;
    assert_eq!(record["state"], "abandoned");
    assert_eq!(record["offers"][0]["outcome"], "customer_left");
    assert_eq!(node.queue_stats("support").await["abandoned"], 1);
}

#[actix_rt::test]
async fn wrap_up_reasons_are_searched_case_insensitively() {
    let node = Node::start(&[]).await;
    let token = node.token_for("bob");
    let search = |q: &'static str| {
        let node = &node;
        let token = token.clone();
        async move {
            let (status, body) = node
                .get(&format!("/api/v1/wrapup-reasons{q}"), Some(&token))
                .await;
            assert_eq!(status, 200, "{body}");
            reason_ids(&body)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("").await, ["resolved", "follow_up", "no_response"]);
    assert_eq!(search("?q=RES").await, ["resolved", "no_response"]);
    assert_eq!(search("?q=Follow").await, ["follow_up"]);
    assert_eq!(search("?q=customer").await, ["no_response"]);
    assert_eq!(search("?q=zzz").await, Vec::<String>::new());
    let (status, body) = node.get("/api/v1/wrapup-reasons", None).await;
    assert_eq!(status, 401, "{body}");
}
