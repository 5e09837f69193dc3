//! The system of record in a cluster: a closed conversation's record and
//! transcript are in PostgreSQL, so neither Redis losing everything nor
//! every node dying loses them; and a cluster node with no database (or a
//! SQLite one) refuses to start, naming the key.

use crate::client::{record, Party};
use crate::harness::{
    bounded, eventually, Cluster, NodeOptions, NodeProcess, PgDatabase, RedisServer, Slot, TempDir,
};
use serde_json::{json, Value};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const SEEN: Duration = Duration::from_secs(10);
/// A node that lost its lease stays out for one heartbeat TTL, then
/// rejoins: well within this.
const REJOIN: Duration = Duration::from_secs(20);

/// Runs a chat to its close: the customer on the first node, Bob on the
/// last, lines both ways, Bob ends it and wraps up. Checks the record
/// against what the customer saw and against the database's rows, and
/// returns (conversation id, the record as a supervisor reads it).
async fn closed_chat(cluster: &Cluster) -> (String, Value) {
    let nodes = cluster.urls();
    let mut bob = Party::available_agent(&nodes, nodes.len() - 1, "bob").await;
    let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "Hello, my order is late").await;
    let id = ada.conversation().to_owned();
    bob.accept(&id).await;
    ada.wait_text(&id, "Bob Chen joined the chat", SEEN).await;
    let mut last = 0;
    for round in 0..3 {
        last = bob.say(&id, &format!("agent line {round}")).await;
        last = last.max(ada.say(&id, &format!("customer line {round}")).await);
    }
    ada.wait_seq(&id, last, SEEN).await;
    bob.wait_seq(&id, last, SEEN).await;
    bob.ok(json!({"type": "end", "conversation_id": id})).await;
    bob.event_where("wrap_up_required", |e| e["conversation_id"] == id.as_str())
        .await;
    bob.ok(json!({
        "type": "wrap_up", "conversation_id": id, "reason": "resolved",
        "notes": "new parcel sent"
    }))
    .await;
    ada.event_where("conversation", |e| e["state"] == "closed")
        .await;

    let (status, body) = record(&nodes[0], &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conversation_id"], id.as_str(), "{body}");
    assert_eq!(body["state"], "closed", "{body}");
    assert_eq!(body["customer"]["name"], "Ada", "{body}");
    let wrap_ups: Vec<(&Value, &Value, &Value)> = body["wrap_ups"]
        .as_array()
        .expect("wrap_ups")
        .iter()
        .map(|w| (&w["agent"]["id"], &w["reason"]["id"], &w["notes"]))
        .collect();
    assert_eq!(
        wrap_ups,
        [(&json!("bob"), &json!("resolved"), &json!("new parcel sent"))],
        "{body}"
    );
    // The whole transcript, numbered without a gap; up to the last line,
    // the very messages the customer received.
    let messages = body["messages"].as_array().expect("messages");
    let seqs: Vec<u64> = messages.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=messages.len() as u64).collect::<Vec<_>>(),
        "{body}"
    );
    assert!(messages.len() as u64 >= last, "{body}");
    let seen = &ada.transcript(&id).messages;
    for seq in 1..=last {
        // A live frame is the message with its `"type": "message"` tag.
        let mut received = seen.get(&seq).cloned().unwrap_or(Value::Null);
        if let Some(fields) = received.as_object_mut() {
            fields.remove("type");
        }
        assert_eq!(
            messages[seq as usize - 1],
            received,
            "message {seq}: the record and the customer's thread differ"
        );
    }
    for line in 0..3 {
        for text in [
            format!("agent line {line}"),
            format!("customer line {line}"),
        ] {
            assert!(
                messages.iter().any(|m| m["text"] == text),
                "no {text:?}: {body}"
            );
        }
    }
    // It is PostgreSQL's: the conversation's row and one row per message.
    assert_eq!(
        cluster.database.query(&format!(
            "SELECT state FROM conversations WHERE id = '{id}'"
        )),
        "closed"
    );
    assert_eq!(
        cluster.database.query(&format!(
            "SELECT count(*) FROM messages WHERE conversation_id = '{id}'"
        )),
        messages.len().to_string()
    );
    (id, body)
}

/// `GET /api/v1/conversations/{id}` on `node` answers `expected`, whole.
async fn assert_record(node: &str, id: &str, expected: &Value) {
    let (status, body) = record(node, id).await;
    assert_eq!(status, 200, "{node}: {body}");
    assert_eq!(&body, expected, "{node}: the record changed");
}

#[actix_rt::test]
async fn a_closed_record_survives_redis_losing_its_data() {
    let cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let (id, before) = closed_chat(&cluster).await;

        let flushed: String = cluster
            .redis
            .query(&mut redis::cmd("FLUSHALL"))
            .expect("FLUSHALL answers");
        assert_eq!(flushed, "OK");
        assert!(cluster.redis.keys(&format!("*{id}*")).is_empty());
        for node in cluster.urls() {
            assert_record(&node, &id, &before).await;
        }

        // The nodes find their leases gone, step down and rejoin the empty
        // Redis; the record reads the same from each of them after.
        eventually("every node rejoined the flushed Redis", REJOIN, || {
            cluster.redis.keys("sb:node:*").len() == cluster.nodes.len()
        })
        .await;
        for node in &cluster.nodes {
            node.wait_readyz(200, REJOIN).await;
        }
        for node in cluster.urls() {
            assert_record(&node, &id, &before).await;
        }
    })
    .await;
}

#[actix_rt::test]
async fn a_closed_record_survives_killing_every_node() {
    let mut cluster = Cluster::start(2).await;
    bounded(LIMIT, async {
        let (id, before) = closed_chat(&cluster).await;
        for node in &mut cluster.nodes {
            node.kill9();
        }
        // A node that never saw the chat, on the same Redis and database.
        let fresh = cluster.start_node().await;
        assert_record(&cluster.nodes[fresh].url(), &id, &before).await;
    })
    .await;
}

#[actix_rt::test]
async fn a_cluster_node_without_a_postgres_database_refuses_to_start_naming_the_key() {
    let _slot = Slot::acquire();
    bounded(LIMIT, async {
        let redis = RedisServer::start(&[]);
        let folder = TempDir::new("refused");
        let sqlite_file = folder.path.join("switchboard.db");
        let sqlite_url = format!("sqlite://{}", sqlite_file.display());
        let refusals = [
            ("no database", None),
            ("a SQLite database", Some(sqlite_url)),
        ];
        for (what, database_url) in refusals {
            let options = NodeOptions {
                database_url,
                ..NodeOptions::default()
            };
            let (status, stderr) = NodeProcess::refused("n1", Some(&redis.url()), options).await;
            assert!(!status.success(), "{what}: exit {status}");
            assert!(
                stderr.contains("storage.database_url"),
                "{what}: stderr does not name the key:\n{stderr}"
            );
        }
        assert!(
            !sqlite_file.exists(),
            "the refused node created its SQLite file"
        );

        // The key may come from the environment instead of the file.
        let database = PgDatabase::create();
        let options = NodeOptions {
            env: vec![(
                "SWITCHBOARD__STORAGE__DATABASE_URL".to_owned(),
                database.url(),
            )],
            ..NodeOptions::default()
        };
        let mut node = NodeProcess::start("n1", Some(&redis.url()), options).await;
        assert_eq!(
            database.query("SELECT count(*) FROM pg_tables WHERE tablename = 'conversations'"),
            "1",
            "the node ran its migrations in the database the environment named"
        );
        assert!(node.sigterm().success());
    })
    .await;
}

#[actix_rt::test]
async fn a_live_conversation_lost_with_redis_is_closed_with_a_word_to_its_people() {
    let cluster = Cluster::start(2).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "Hello, my order is late").await;
        let id = ada.conversation().to_owned();
        bob.accept(&id).await;
        let last = bob.say(&id, "Let me look").await;
        ada.wait_seq(&id, last, SEEN).await;

        let _: String = cluster
            .redis
            .query(&mut redis::cmd("FLUSHALL"))
            .expect("FLUSHALL answers");

        // Its live state is gone for good: the record closes it, saying so,
        // and keeps what was said before.
        let start = std::time::Instant::now();
        let body = loop {
            let (status, body) = record(&nodes[1], &id).await;
            if status == 200 && body["state"] == "closed" {
                break body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "still {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let texts: Vec<&str> = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|message| message["text"].as_str())
            .collect();
        assert_eq!(texts.first(), Some(&"Hello, my order is late"), "{body}");
        assert!(texts.contains(&"Let me look"), "{body}");
        let word = body["messages"].as_array().and_then(|m| m.last()).cloned();
        let word = word.unwrap_or_default();
        assert_eq!(word["from"]["role"], "system", "{body}");
        assert!(
            word["text"]
                .as_str()
                .is_some_and(|t| t.contains("interrupted")),
            "{body}"
        );
        assert!(body["closed_at"].is_string(), "{body}");

        // The customer, back, reads it too.
        ada.reconnect_to(0).await;
        let seq = word["seq"].as_u64().expect("seq");
        ada.wait_seq(&id, seq, SEEN).await;
    })
    .await;
}
