//! Hardening in a cluster: a logout outlives Redis losing its data, and a
//! Redis that keeps nothing on disk is reported.

use crate::client::{get, Party};
use crate::harness::{bounded, eventually, Cluster, NodeOptions};
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
/// A node that lost its lease stays out for one heartbeat TTL, then
/// rejoins: well within this.
const REJOIN: Duration = Duration::from_secs(20);

#[actix_rt::test]
async fn a_logout_survives_redis_losing_its_data() {
    let cluster = Cluster::start(2).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::agent(&nodes, 0, "bob").await;
        let old = bob.token().to_owned();
        let reply = bob
            .request_once(json!({"type": "logout"}), Duration::from_secs(10))
            .await
            .expect("logout answers");
        assert_eq!(reply["type"], "ack", "{reply}");
        let (status, _) = get(&nodes[1], "/api/v1/queues", Some(&old)).await;
        assert_eq!(status, 401, "refused before Redis loses anything");

        let flushed: String = cluster
            .redis
            .query(&mut redis::cmd("FLUSHALL"))
            .expect("FLUSHALL answers");
        assert_eq!(flushed, "OK");
        eventually("every node rejoined the flushed Redis", REJOIN, || {
            cluster.redis.keys("sb:node:*").len() == cluster.nodes.len()
        })
        .await;
        for node in &cluster.nodes {
            node.wait_readyz(200, REJOIN).await;
        }
        for node in &nodes {
            let (status, body) = get(node, "/api/v1/queues", Some(&old)).await;
            assert_eq!(status, 401, "{node}: a revoked token works again: {body}");
        }
    })
    .await;
}

#[actix_rt::test]
async fn a_redis_without_persistence_is_reported_on_readyz() {
    let plain = Cluster::start(1).await;
    let volatile = Cluster::start_with(1, NodeOptions::default(), &["--appendonly", "no"]).await;
    bounded(LIMIT, async {
        let (status, body) = get(&plain.urls()[0], "/readyz", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["warnings"], json!([]), "AOF is on: {body}");

        let (status, body) = get(&volatile.urls()[0], "/readyz", None).await;
        assert_eq!(status, 200, "a warning, not a refusal: {body}");
        let warnings = body["warnings"].as_array().cloned().unwrap_or_default();
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap_or("").contains("no persistence")),
            "{body}"
        );
        assert!(volatile.nodes[0].log().contains("no persistence"));
    })
    .await;
}
