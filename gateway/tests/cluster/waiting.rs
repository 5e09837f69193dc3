//! A waiting customer's `queue_status` in a cluster: the queue's owner
//! computes it and the bus carries it to the customer's node, as the queue
//! moves.

use crate::client::Party;
use crate::harness::{bounded, Cluster, NodeOptions};
use serde_json::{json, Value};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The next `queue_status` of `customer` at `position`.
async fn status_at(customer: &mut Party, position: u64) -> Value {
    customer
        .event_where("queue_status", |status| status["position"] == position)
        .await
}

/// Customers on both nodes, whichever node owns the queue: each hears its
/// place, and the ones behind move up when the first gives up.
#[actix_rt::test]
async fn waiting_customers_on_any_node_hear_their_place_from_the_queues_owner() {
    let options = NodeOptions {
        env: vec![(
            "SWITCHBOARD__ROUTING__QUEUE_STATUS_INTERVAL_MS".into(),
            "50".into(),
        )],
        ..NodeOptions::default()
    };
    let cluster = Cluster::start_with(2, options, &[]).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "One").await;
        status_at(&mut ada, 1).await;
        let mut grace = Party::customer(&nodes, 1, "sales", "Grace", "Two").await;
        let told = status_at(&mut grace, 2).await;
        assert_eq!(told["conversation_id"], grace.conversation(), "{told}");
        assert_eq!(told["no_estimate"], "no_agents_online", "{told}");
        let mut linus = Party::customer(&nodes, 0, "sales", "Linus", "Three").await;
        status_at(&mut linus, 3).await;

        // Ada gives up: Grace (the other node) and Linus move up.
        ada.ok(json!({"type": "end"})).await;
        status_at(&mut grace, 1).await;
        status_at(&mut linus, 2).await;
    })
    .await;
}
