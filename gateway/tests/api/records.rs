//! The system of record over REST: search, export and transcripts, on the
//! node's real SQLite database; who may see what; bad input refused.

use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

use crate::support::{Client, Node};

const CODEC: Codec = Codec::Json;

/// A chat `agent` accepts, answers with `reply`, ends and wraps up.
async fn closed_chat(
    node: &Node,
    agent: &mut Client,
    queue: &str,
    customer: &str,
    reply: &str,
    reason: &str,
) -> String {
    let (id, _customer) = node.accepted_chat(queue, customer, agent, CODEC).await;
    agent.say(&id, reply, &format!("m-{id}")).await;
    agent
        .ok(json!({"type": "end", "conversation_id": id}))
        .await;
    agent
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": reason}))
        .await;
    id
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {page}"))
        .iter()
        .map(|item| item["conversation_id"].as_str().expect("id").to_owned())
        .collect()
}

#[actix_rt::test]
async fn search_finds_a_conversation_by_words_of_its_transcript_in_any_case() {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let parcel = closed_chat(
        &node,
        &mut bob,
        "sales",
        "Ada",
        "Your PARCEL left today",
        "resolved",
    )
    .await;
    let refund = closed_chat(
        &node,
        &mut bob,
        "sales",
        "Grace",
        "The refund is on its way",
        "resolved",
    )
    .await;

    let page = node.supervised("/api/v1/conversations?q=parcel").await;
    assert_eq!(ids(&page), vec![parcel.clone()]);
    let item = &page["items"][0];
    assert_eq!(item["state"], "closed");
    assert_eq!(item["queue"], json!({"id": "sales", "name": "Sales"}));
    assert_eq!(item["customer"]["name"], "Ada");
    assert_eq!(item["agents"], json!(["bob"]));
    assert_eq!(item["wrap_ups"], json!(["resolved"]));
    assert!(item["closed_at"].is_string());
    // The customer's first message, "Bob Chen joined the chat", the reply, "ended".
    assert_eq!(item["message_count"], 4, "{item}");
    assert!(page.get("next_cursor").is_none());

    // Customer text counts too; every word is required.
    let page = node
        .supervised("/api/v1/conversations?q=THIS+is+Grace")
        .await;
    assert_eq!(ids(&page), vec![refund.clone()]);
    let page = node
        .supervised("/api/v1/conversations?q=refund+parcel")
        .await;
    assert_eq!(ids(&page), Vec::<String>::new());
    let page = node.supervised("/api/v1/conversations").await;
    assert_eq!(ids(&page), [refund, parcel], "newest first");
}

#[actix_rt::test]
async fn search_filters_by_queue_agent_state_wrap_up_and_time() {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let mut carol = node.available_agent("carol", CODEC).await;
    let sales = closed_chat(&node, &mut bob, "sales", "Ada", "Sold", "resolved").await;
    let support = closed_chat(&node, &mut carol, "support", "Lin", "Fixed", "follow_up").await;
    let (live, _customer) = node.accepted_chat("sales", "Kim", &mut bob, CODEC).await;

    let search = |query: &str| format!("/api/v1/conversations?{query}");
    assert_eq!(
        ids(&node.supervised(&search("queue=support")).await),
        vec![support.clone()]
    );
    assert_eq!(
        ids(&node.supervised(&search("agent=carol")).await),
        vec![support.clone()]
    );
    assert_eq!(
        ids(&node.supervised(&search("state=active")).await),
        vec![live.clone()]
    );
    assert_eq!(
        ids(&node.supervised(&search("wrap_up=follow_up")).await),
        vec![support.clone()]
    );
    assert_eq!(
        ids(&node.supervised(&search("queue=sales&state=closed")).await),
        vec![sales.clone()]
    );
    let record = node.record(&support).await;
    let created = record["created_at"].as_str().expect("created_at");
    assert_eq!(
        ids(&node.supervised(&search(&format!("from={created}"))).await),
        [live.clone(), support.clone()]
    );
    assert_eq!(
        ids(&node.supervised(&search(&format!("to={created}"))).await),
        [sales]
    );
}

#[actix_rt::test]
async fn search_pages_newest_first_with_a_cursor_and_yields_each_once() {
    let node = Node::start(&[]).await;
    let mut started = Vec::new();
    for n in 0..5 {
        let (id, _token) = node
            .start_chat("sales", &format!("Customer {n}"), "Hello")
            .await;
        started.push(id);
    }
    started.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/v1/conversations?limit=2".to_owned();
    for _ in 0..5 {
        let page = node.supervised(&path).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/conversations?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, started);
    let first = node.supervised("/api/v1/conversations?limit=5").await;
    assert_eq!(first["items"][0]["state"], "queued");
    assert!(first.get("next_cursor").is_none(), "{first}");
}

#[actix_rt::test]
async fn an_agent_finds_only_conversations_it_had_a_leg_in() {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let mut carol = node.available_agent("carol", CODEC).await;
    let bobs = closed_chat(
        &node,
        &mut bob,
        "sales",
        "Ada",
        "Hello from Bob",
        "resolved",
    )
    .await;
    let carols = closed_chat(
        &node,
        &mut carol,
        "support",
        "Lin",
        "Hello from Carol",
        "resolved",
    )
    .await;

    let (status, page) = node
        .get(
            "/api/v1/conversations?q=hello",
            Some(&node.token_for("bob")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), vec![bobs.clone()]);
    // Naming another agent does not widen what an agent sees.
    let (_, page) = node
        .get(
            "/api/v1/conversations?agent=carol",
            Some(&node.token_for("bob")),
        )
        .await;
    assert_eq!(ids(&page), Vec::<String>::new());
    let (status, body) = node
        .get(
            &format!("/api/v1/conversations/{carols}/transcript"),
            Some(&node.token_for("bob")),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = node
        .get("/api/v1/conversations/export", Some(&node.token_for("bob")))
        .await;
    assert_eq!(status, 403, "export is for supervisors: {body}");
    assert_eq!(
        ids(&node.supervised("/api/v1/conversations").await),
        [carols, bobs]
    );
}

#[actix_rt::test]
async fn export_streams_csv_with_a_header_and_ndjson_one_line_each() {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let first = closed_chat(
        &node,
        &mut bob,
        "sales",
        "Ada, \"the\" customer",
        "Done",
        "resolved",
    )
    .await;
    let second = closed_chat(&node, &mut bob, "sales", "Grace", "Done too", "follow_up").await;

    let token = node.token_for("sam");
    let (status, csv) = node
        .get_text_as("/api/v1/conversations/export?format=csv", &token)
        .await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "conversation_id,state,queue_id,customer_id,customer_name,agents,created_at,\
         first_accepted_at,ended_at,closed_at,wait_s,handle_s,wrap_ups,message_count"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with(&format!("{second},closed,sales,cu-")),
        "{csv}"
    );
    assert!(lines[1].contains(",Grace,bob,"), "{csv}");
    assert!(lines[1].ends_with(",follow_up,4"), "{csv}");
    // A comma or a quote in a name is quoted, not a new column.
    assert!(
        lines[2].starts_with(&format!("{first},closed,sales,cu-")),
        "{csv}"
    );
    assert!(
        lines[2].contains(",\"Ada, \"\"the\"\" customer\",bob,"),
        "{csv}"
    );

    let (status, ndjson) = node
        .get_text_as(
            "/api/v1/conversations/export?format=ndjson&wrap_up=resolved",
            &token,
        )
        .await;
    assert_eq!(status, 200);
    let rows: Vec<Value> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(rows.len(), 1, "{ndjson}");
    assert_eq!(rows[0]["conversation_id"], first.as_str());
    assert_eq!(rows[0]["wrap_ups"], "resolved");
    assert!(rows[0]["wait_s"].as_f64().is_some_and(|s| s >= 0.0));
    assert!(rows[0]["handle_s"].as_f64().is_some_and(|s| s >= 0.0));

    // A name a spreadsheet would run as a formula is written as text.
    let (formula, _token) = node
        .start_chat("support", "=HYPERLINK(\"http://x\")", "Hi")
        .await;
    let (_, csv) = node
        .get_text_as("/api/v1/conversations/export?queue=support", &token)
        .await;
    assert!(
        csv.contains(&format!("{formula},queued,support,cu-")) && csv.contains(",\"'=HYPERLINK("),
        "{csv}"
    );

    // Nothing selected: the header alone.
    let (_, empty) = node
        .get_text_as(
            "/api/v1/conversations/export?queue=support&state=closed",
            &token,
        )
        .await;
    assert_eq!(empty.lines().count(), 1, "{empty}");
}

#[actix_rt::test]
async fn a_transcript_reads_as_text_and_as_json() {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let id = closed_chat(&node, &mut bob, "sales", "Ada", "We are on it", "resolved").await;

    let (status, text) = node
        .get_text_as(
            &format!("/api/v1/conversations/{id}/transcript?format=txt"),
            &node.token_for("bob"),
        )
        .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with('[') && lines[0].ends_with("] Ada: Hello, this is Ada"),
        "{text}"
    );
    assert!(
        lines[1].ends_with("] System: Bob Chen joined the chat"),
        "{text}"
    );
    assert!(lines[2].ends_with("] Bob Chen: We are on it"), "{text}");
    assert!(
        lines[3].ends_with("] System: Bob Chen ended the chat"),
        "{text}"
    );

    let body = node
        .supervised(&format!(
            "/api/v1/conversations/{id}/transcript?format=json"
        ))
        .await;
    assert_eq!(body["conversation_id"], id.as_str());
    let seqs: Vec<u64> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[actix_rt::test]
async fn search_refuses_bad_input_and_changes_nothing() {
    let node = Node::start(&[]).await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let id = closed_chat(
        &node,
        &mut bob,
        "sales",
        "Ada",
        "Drop the table please",
        "resolved",
    )
    .await;
    let token = node.token_for("sam");
    let before = node.supervised("/api/v1/conversations").await;

    for (path, names) in [
        ("/api/v1/conversations?limit=0", "limit"),
        ("/api/v1/conversations?limit=100000", "limit"),
        ("/api/v1/conversations?limit=many", "limit"),
        ("/api/v1/conversations?cursor=not-a-cursor", "cursor"),
        ("/api/v1/conversations?state=lost", "state"),
        ("/api/v1/conversations?from=yesterday", "from"),
        ("/api/v1/conversations?q=%27%3B+--", "q"),
        ("/api/v1/conversations/export?format=xml", "format"),
        (
            &format!("/api/v1/conversations/{id}/transcript?format=pdf"),
            "format",
        ),
    ] {
        let (status, body) = node.get(path, Some(&token)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{path}: the error names {names}: {body}"
        );
    }

    // Text that looks like SQL is only words to look for.
    let (status, page) = node
        .get(
            "/api/v1/conversations?q=table%27%3B+DROP+TABLE+conversations%3B+--",
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), Vec::<String>::new(), "every word is required");
    let (_, page) = node
        .get("/api/v1/conversations?q=%22drop%22+table*", Some(&token))
        .await;
    assert_eq!(ids(&page), vec![id.clone()]);
    assert_eq!(node.supervised("/api/v1/conversations").await, before);
    assert_eq!(node.record(&id).await["state"], "closed");
}
