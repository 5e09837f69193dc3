//! Reports in a cluster: the node holding the projector's lease folds the
//! events into the buckets of the shared database, each event once, and
//! every node answers the same rows; when that node dies, another takes
//! the projection over from where it stood.

use crate::client::{get, supervisor, Party};
use crate::harness::{bounded, incarnation_of, Cluster, POLL};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);
/// The lease lapses 6 s after its node died; a bucket's events are
/// counted well within this after.
const TAKEOVER: Duration = Duration::from_secs(30);

/// `chats` chats in Sales, each with its customer on node `n % 2` of the
/// live ones, accepted, ended and wrapped up by Bob.
async fn chats(nodes: &[String], bob: &mut Party, chats: usize) {
    for n in 0..chats {
        let mut customer = Party::customer(
            nodes,
            n % nodes.len(),
            "sales",
            &format!("Customer {n}"),
            "Hello",
        )
        .await;
        let id = customer.conversation().to_owned();
        bob.accept(&id).await;
        bob.ok(json!({"type": "end", "conversation_id": id})).await;
        bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
            .await;
        customer
            .event_where("conversation", |e| e["state"] == "closed")
            .await;
    }
}

/// Today's Sales row on `node` once it counts `chats` handled chats.
async fn counted(node: &str, chats: usize, limit: Duration) -> Value {
    let token = supervisor();
    let path = "/api/v1/reports/queues?interval=1d&queue=sales";
    let started = Instant::now();
    loop {
        let (status, body) = get(node, path, Some(&token)).await;
        let row = &body["rows"][0];
        if status == 200 && row["handled"] == chats && row["wrap_ups"]["resolved"] == chats {
            return body["rows"].clone();
        }
        assert!(
            started.elapsed() < limit,
            "{node}: never counted {chats} chats once: {status} {body}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[actix_rt::test]
async fn reports_count_each_event_once_and_read_the_same_on_every_node() {
    let mut cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        chats(&nodes, &mut bob, 6).await;
        let mut answers = Vec::new();
        for node in &nodes {
            answers.push(counted(node, 6, Duration::from_secs(20)).await);
        }
        assert!(
            answers.iter().all(|rows| rows == &answers[0]),
            "{answers:?}"
        );
        assert_eq!(answers[0][0]["entered"], 6, "{answers:?}");

        // The projecting node dies: another takes over where it stood.
        let holder = cluster
            .redis
            .get("sb:reports:lease")
            .expect("a node projects");
        let holder = holder.split('|').next().unwrap_or_default().to_owned();
        let victim = cluster
            .nodes
            .iter()
            .position(|node| incarnation_of(&holder, &node.node_id))
            .expect("the holder is a node");
        cluster.nodes[victim].kill9();
        let survivors: Vec<String> = nodes
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != victim)
            .map(|(_, url)| url.clone())
            .collect();
        let mut bob = Party::available_agent(&survivors, 0, "bob").await;
        chats(&survivors, &mut bob, 2).await;
        let after = counted(&survivors[0], 8, TAKEOVER).await;
        assert_eq!(after[0]["entered"], 8, "{after}");
        assert_eq!(counted(&survivors[1], 8, TAKEOVER).await, after);
    })
    .await;
}
