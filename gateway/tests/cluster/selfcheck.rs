//! The harness itself: Redis starts on its own port, keeps its data over a
//! restart and dies with its holder; a test database is created empty and
//! dropped with its holder; a node process becomes ready, drains on SIGTERM
//! and restarts on its port; a chat runs on an embedded node through the
//! participants the cluster tests use.

use crate::client::{assert_clean, assert_same_thread, record, Party};
use crate::harness::{
    bounded, psql, readyz, NodeOptions, NodeProcess, PgDatabase, RedisServer, Slot, POLL,
};
use std::time::{Duration, Instant};

#[actix_rt::test]
async fn redis_server_restarts_on_its_port_with_its_data() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(60), async {
        let mut redis = RedisServer::start(&[]);
        assert_ne!(redis.port, 6379);
        let _: () = redis
            .query(redis::cmd("SET").arg("sb:probe").arg("kept"))
            .expect("SET");
        redis.kill();
        assert!(!redis.ping(), "killed redis still answers");
        redis.restart();
        assert_eq!(redis.get("sb:probe").as_deref(), Some("kept"));
        assert_eq!(redis.keys("sb:*"), ["sb:probe"]);
        let entries = redis.stream("sb:log:nothing");
        assert!(entries.is_empty());
        redis.debug_sleep(0.2).join().expect("DEBUG SLEEP ran");
        assert!(redis.ping());
    })
    .await;
}

#[test]
fn postgres_database_is_created_empty_and_dropped_with_its_holder() {
    let count = |sql: String| psql("postgres", &sql).expect("psql answers");
    let database = PgDatabase::create();
    let name = database.name.clone();
    assert!(name.starts_with("sb_test_"), "{name}");
    assert!(database.url().ends_with(&format!("@127.0.0.1:5432/{name}")));
    assert_eq!(
        database.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
    // A connection still open does not keep it (a killed node's would not
    // have closed either).
    let mut holder = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &name, "-X", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql runs");
    let connected = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'");
    let start = Instant::now();
    while count(connected.clone()) == "0" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "psql never connected"
        );
        std::thread::sleep(POLL);
    }
    drop(database);
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    assert_eq!(count(exists), "0", "{name} still exists after its drop");
    let _ = holder.kill();
    let _ = holder.wait();
}

#[actix_rt::test]
async fn embedded_node_process_chats_drains_and_restarts() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(90), async {
        let mut node = NodeProcess::start("solo", None, NodeOptions::default()).await;
        let nodes = vec![node.url()];
        assert_eq!(readyz(node.port).await, Some(200));

        let mut bob = Party::available_agent(&nodes, 0, "bob").await;
        let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "Hello from Ada").await;
        let id = ada.conversation().to_owned();
        bob.accept(&id).await;
        let seq = bob.say(&id, "Hi Ada").await;
        ada.wait_seq(&id, seq, Duration::from_secs(10)).await;
        let seq = ada.say(&id, "My order is late").await;
        bob.wait_seq(&id, seq, Duration::from_secs(10)).await;
        ada.wait_seq(&id, seq, Duration::from_secs(10)).await;
        assert_same_thread(&id, seq, &[&ada, &bob]);

        // SIGTERM drains: both sessions are told to reconnect.
        let status = node.sigterm();
        assert!(status.success(), "drained node exit: {status}");
        for party in [&mut ada, &mut bob] {
            let frames = party.wait_closed(Duration::from_secs(10)).await;
            assert!(
                frames.iter().any(|frame| frame["type"] == "reconnect"),
                "{}: no reconnect frame: {frames:?}",
                party.name()
            );
        }
        assert!(node.log().contains("draining"), "{}", node.log_tail(10));

        // Same port after a restart; the chat is back from the node's
        // SQLite file (in its directory), still active.
        node.restart().await;
        assert_eq!(readyz(node.port).await, Some(200));
        let (status, body) = record(&node.url(), &id).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "active", "{body}");
        let texts: Vec<&str> = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|message| message["text"].as_str())
            .collect();
        assert!(texts.contains(&"My order is late"), "{body}");
        assert_clean(&[&ada, &bob]);
    })
    .await;
}
