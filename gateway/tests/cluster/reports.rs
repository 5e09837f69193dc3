//! Reports in a cluster: every node folds the events into the same
//! buckets in the shared database, taking turns, so each event is counted
//! once, and every node answers the same rows.

use crate::client::{get, supervisor, Party};
use crate::harness::{bounded, Cluster};
use serde_json::{json, Value};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

#[actix_rt::test]
async fn reports_count_each_event_once_and_read_the_same_on_every_node() {
    let cluster = Cluster::start(2).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        let chats = 6;
        for n in 0..chats {
            let mut customer =
                Party::customer(&nodes, n % 2, "sales", &format!("Customer {n}"), "Hello").await;
            let id = customer.conversation().to_owned();
            bob.accept(&id).await;
            bob.ok(json!({"type": "end", "conversation_id": id})).await;
            bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
                .await;
            customer
                .event_where("conversation", |e| e["state"] == "closed")
                .await;
        }
        let token = supervisor();
        let path = "/api/v1/reports/queues?interval=1d&queue=sales";
        let counted = |rows: &Value| {
            rows["rows"][0]["wrap_ups"]["resolved"] == chats && rows["rows"][0]["handled"] == chats
        };
        let mut answers = Vec::new();
        for node in &nodes {
            let started = std::time::Instant::now();
            loop {
                let (status, body) = get(node, path, Some(&token)).await;
                assert_eq!(status, 200, "{node}: {body}");
                if counted(&body) {
                    answers.push(body["rows"].clone());
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{node}: never counted {chats} chats once: {body}"
                );
                tokio::time::sleep(crate::harness::POLL).await;
            }
        }
        assert_eq!(answers[0], answers[1], "both nodes answer the same rows");
        let row = &answers[0][0];
        assert_eq!(row["entered"], chats, "{row}");
        assert_eq!(row["abandoned"], 0, "{row}");
    })
    .await;
}
