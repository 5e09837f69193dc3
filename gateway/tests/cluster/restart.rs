//! An embedded node killed with SIGKILL and started again on its SQLite file
//! resumes every conversation where it was: queued chats still wait, active
//! ones keep their thread, owed wrap-ups are still owed, and the RONA and
//! auto-wrap-up timers fire as they would have. Clients reconnect and
//! resume; no acknowledged message is lost.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::client::{assert_clean, assert_same_thread, get, record, supervisor, Party};
use crate::harness::{bounded, NodeOptions, NodeProcess, Slot, POLL};

const WAIT: Duration = Duration::from_secs(10);

/// Polls a record until `done` holds (bounded).
async fn record_until(base: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = record(base, id).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(start.elapsed() < WAIT, "{id}: still {status} {body}");
        tokio::time::sleep(POLL).await;
    }
}

fn texts(record: &Value) -> Vec<String> {
    record["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|message| message["text"].as_str().map(str::to_owned))
        .collect()
}

#[actix_rt::test]
async fn an_embedded_node_killed_and_restarted_resumes_every_conversation() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(120), async {
        let options = NodeOptions {
            rona_timeout_ms: 4_000,
            auto_wrap_up_ms: 5_000,
            ..NodeOptions::default()
        };
        let mut node = NodeProcess::start("solo", None, options).await;
        let nodes = vec![node.url()];
        let base = node.url();

        // Active, with a thread.
        let mut bob = Party::available_agent(&nodes, 0, "bob").await;
        let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "Hello from Ada").await;
        let active = ada.conversation().to_owned();
        bob.accept(&active).await;
        let seq = bob.say(&active, "Hi Ada").await;
        ada.wait_seq(&active, seq, WAIT).await;
        let seq = ada.say(&active, "Where is my parcel?").await;
        bob.wait_seq(&active, seq, WAIT).await;

        // Ended: Bob owes its wrap-up (and so has no free slot left).
        let lin = Party::customer(&nodes, 0, "sales", "Lin", "Quick question").await;
        let ended = lin.conversation().to_owned();
        bob.accept(&ended).await;
        bob.ok(json!({"type": "end", "conversation_id": ended}))
            .await;

        // Queued: nobody who serves support is logged in.
        let kim = Party::customer(&nodes, 0, "support", "Kim", "Anyone there?").await;
        let queued = kim.conversation().to_owned();

        // Offered to Dave, who will not answer.
        let mut dave = Party::available_agent(&nodes, 0, "dave").await;
        let max = Party::customer(&nodes, 0, "sales", "Max", "Hello?").await;
        let offered = max.conversation().to_owned();
        dave.event_where("offer", |offer| {
            offer["conversation_id"] == offered.as_str()
        })
        .await;

        node.kill9();
        node.restart().await;

        // The record says where each one was.
        let body = record_until(&base, &active, |r| r["state"] == "active").await;
        assert!(
            texts(&body).contains(&"Where is my parcel?".to_owned()),
            "{body}"
        );
        record_until(&base, &ended, |r| r["state"] == "ended").await;
        record_until(&base, &queued, |r| r["state"] == "queued").await;

        // Clients reconnect and resume: the thread goes on, the wrap-up is
        // still owed.
        bob.reconnect_to(0).await;
        ada.reconnect_to(0).await;
        let listed: Vec<&str> = bob.hello["conversations"]
            .as_array()
            .expect("conversations")
            .iter()
            .filter_map(|summary| summary["conversation_id"].as_str())
            .collect();
        assert!(listed.contains(&active.as_str()), "{}", bob.hello);
        bob.event_where("wrap_up_required", |frame| {
            frame["conversation_id"] == ended.as_str()
        })
        .await;
        let seq = ada.say(&active, "Still there?").await;
        bob.wait_seq(&active, seq, WAIT).await;
        let seq = bob.say(&active, "Yes, it ships today").await;
        ada.wait_seq(&active, seq, WAIT).await;
        bob.wait_seq(&active, seq, WAIT).await;
        assert_same_thread(&active, seq, &[&ada, &bob]);

        // Timers fire as they would have: Dave's offer runs out (RONA)...
        let body = record_until(&base, &offered, |r| r["offers"][0]["outcome"] == "rona").await;
        assert_eq!(body["state"], "queued", "{body}");
        let (_, rona) = get(&base, "/api/v1/agents?state=rona", Some(&supervisor())).await;
        assert!(
            rona.as_array()
                .is_some_and(|agents| agents.iter().any(|agent| agent["id"] == "dave")),
            "{rona}"
        );
        // ...and the wrap-up Bob owes is given for him.
        let body = record_until(&base, &ended, |r| r["state"] == "closed").await;
        assert_eq!(body["wrap_ups"][0]["automatic"], true, "{body}");

        // The chat that waited is offered once someone serves its queue.
        let mut carol = Party::available_agent(&nodes, 0, "carol").await;
        carol.accept(&queued).await;
        record_until(&base, &queued, |r| r["state"] == "active").await;
        assert_clean(&[&ada, &bob]);
    })
    .await;
}
