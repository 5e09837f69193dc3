//! The harness itself: Redis starts on its own port, keeps its data over a
//! restart and dies with its holder; a node process becomes ready, drains
//! on SIGTERM and restarts on its port; a chat runs on an embedded node
//! through the participants the cluster tests use.

use crate::client::{assert_clean, assert_same_thread, Party};
use crate::harness::{bounded, readyz, NodeOptions, NodeProcess, RedisServer, Slot};
use std::time::Duration;

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

        // Same port after a restart (an embedded node forgets its chats).
        node.restart().await;
        assert_eq!(readyz(node.port).await, Some(200));
        assert_clean(&[&ada, &bob]);
    })
    .await;
}
