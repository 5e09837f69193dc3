//! Redis misbehaving: restarted, its pub/sub connections killed, its
//! pub/sub output buffers overflowing, stalled by DEBUG SLEEP. Nodes must
//! say they are unavailable meanwhile, recover without a restart, and
//! clients must end up with every acknowledged message exactly once.

use crate::client::{assert_clean, get, start_chat, Party};
use crate::harness::{bounded, eventually, Cluster, NodeOptions};
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(150);
const SEEN: Duration = Duration::from_secs(15);

/// A chat across nodes: customer on n1 (started through n3), Bob on n2.
async fn cross_node_chat(cluster: &Cluster) -> (String, Party, Party) {
    let nodes = cluster.urls();
    let mut bob = Party::available_agent(&nodes, 1, "bob").await;
    let (id, token) = start_chat(&nodes[2], "sales", "Ada", "Hello").await;
    let mut ada = Party::customer_with_token(&nodes, 0, id.clone(), token).await;
    bob.accept(&id).await;
    let seq = bob.say(&id, "Hi Ada").await;
    ada.wait_seq(&id, seq, SEEN).await;
    (id, ada, bob)
}

/// Both sides talk `rounds` times; returns the last seq, after both have
/// every message.
async fn talk(id: &str, ada: &mut Party, bob: &mut Party, label: &str, rounds: usize) -> u64 {
    let mut last = 0;
    for round in 0..rounds {
        last = last.max(ada.say(id, &format!("{label}: customer {round}")).await);
        last = last.max(bob.say(id, &format!("{label}: agent {round}")).await);
    }
    ada.wait_seq(id, last, SEEN).await;
    bob.wait_seq(id, last, SEEN).await;
    last
}

fn final_checks(cluster: &Cluster, id: &str, last: u64, ada: &Party, bob: &Party) {
    cluster.assert_chat_intact(id, last, &[ada, bob]);
    assert_clean(&[ada, bob]);
}

/// Subscriber connections Redis has now.
fn pubsub_connections(cluster: &Cluster) -> usize {
    cluster
        .redis
        .query::<String>(redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub"))
        .map(|list| list.lines().filter(|line| !line.trim().is_empty()).count())
        .unwrap_or(0)
}

#[actix_rt::test]
async fn redis_restart_makes_nodes_unavailable_then_they_recover() {
    let mut cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let (id, mut ada, mut bob) = cross_node_chat(&cluster).await;
        talk(&id, &mut ada, &mut bob, "before", 2).await;

        cluster.redis.kill();
        for node in &cluster.nodes {
            node.wait_readyz(503, Duration::from_secs(10)).await;
        }
        let nodes = cluster.urls();
        let (status, body) = crate::client::post(
            &nodes[0],
            "/api/v1/chats",
            &json!({"queue": "sales", "customer": {"name": "Grace"}, "message": "Redis is down"}),
        )
        .await;
        assert_eq!(status, 503, "chat start while Redis is down: {body}");
        assert_eq!(body["error"]["code"], "unavailable");
        let (status, _) = get(&nodes[1], "/healthz", None).await;
        assert_eq!(status, 200, "/healthz while Redis is down");

        cluster.redis.restart();
        for node in &cluster.nodes {
            node.wait_readyz(200, Duration::from_secs(20)).await;
        }
        let last = talk(&id, &mut ada, &mut bob, "after", 3).await;
        final_checks(&cluster, &id, last, &ada, &bob);
    })
    .await;
}

#[actix_rt::test]
async fn killed_pubsub_connections_are_resubscribed_and_nothing_is_lost() {
    let cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let (id, mut ada, mut bob) = cross_node_chat(&cluster).await;
        talk(&id, &mut ada, &mut bob, "before", 2).await;
        let killed = cluster.redis.kill_pubsub_clients();
        assert!(killed >= 3, "one subscriber per node, killed {killed}");
        let last = talk(&id, &mut ada, &mut bob, "after", 5).await;
        // The nodes subscribed again (the chat crossing nodes works) and
        // say they are ready.
        for node in &cluster.nodes {
            node.wait_readyz(200, Duration::from_secs(10)).await;
        }
        eventually(
            "every node subscribed again",
            Duration::from_secs(10),
            || pubsub_connections(&cluster) >= 3,
        )
        .await;
        final_checks(&cluster, &id, last, &ada, &bob);
    })
    .await;
}

#[actix_rt::test]
async fn pubsub_output_buffer_overflow_is_survived() {
    let cluster = Cluster::start_with(
        3,
        NodeOptions::default(),
        &["--client-output-buffer-limit", "pubsub 1kb 1kb 0"],
    )
    .await;
    bounded(LIMIT, async {
        let (id, mut ada, mut bob) = cross_node_chat(&cluster).await;
        // A burst far past 1 kB of pending pub/sub output: Redis drops the
        // subscribers; the nodes resubscribe and the sessions resume.
        let padding = "x".repeat(150);
        let burst: Vec<String> = (0..60).map(|n| format!("burst {n} {padding}")).collect();
        let seqs = ada.say_many(&id, &burst).await;
        let mut last = seqs.iter().copied().max().unwrap_or(0);
        let agent_burst: Vec<String> = (0..30)
            .map(|n| format!("agent burst {n} {padding}"))
            .collect();
        last = last.max(
            bob.say_many(&id, &agent_burst)
                .await
                .into_iter()
                .max()
                .unwrap_or(0),
        );
        ada.wait_seq(&id, last, Duration::from_secs(30)).await;
        bob.wait_seq(&id, last, Duration::from_secs(30)).await;
        let last = last.max(talk(&id, &mut ada, &mut bob, "after", 2).await);
        for node in &cluster.nodes {
            node.wait_readyz(200, Duration::from_secs(10)).await;
        }
        final_checks(&cluster, &id, last, &ada, &bob);
    })
    .await;
}

#[actix_rt::test]
async fn debug_sleep_mid_chat_delays_but_loses_nothing() {
    let cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let (id, mut ada, mut bob) = cross_node_chat(&cluster).await;
        talk(&id, &mut ada, &mut bob, "before", 2).await;
        let sleeping = cluster.redis.debug_sleep(2.0);
        let last = talk(&id, &mut ada, &mut bob, "during", 3).await;
        sleeping.join().expect("DEBUG SLEEP thread");
        let last = last.max(talk(&id, &mut ada, &mut bob, "after", 2).await);
        for node in &cluster.nodes {
            node.wait_readyz(200, Duration::from_secs(10)).await;
        }
        final_checks(&cluster, &id, last, &ada, &bob);
    })
    .await;
}
