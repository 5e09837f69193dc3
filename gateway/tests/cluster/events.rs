//! The event feed in a cluster: every node writes events, one node at a
//! time copies the outbox into PostgreSQL, readers page with a cursor
//! while that goes on, and nodes die with kill -9. Nothing is skipped,
//! repeated or reordered; a webhook's delivery moves to a survivor.

use crate::client::{get, start_chat, supervisor, token_for};
use crate::harness::{bounded, eventually, Cluster, NodeOptions};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::receiver::Receiver;

const LIMIT: Duration = Duration::from_secs(180);
const SECRET: &str = "whsec-0123456789abcdef";

fn options() -> NodeOptions {
    NodeOptions {
        env: vec![
            (
                "SWITCHBOARD__WEBHOOKS__ALLOW_PRIVATE_TARGETS".into(),
                "true".into(),
            ),
            (
                "SWITCHBOARD__WEBHOOKS__RETRY_INITIAL_MS".into(),
                "50".into(),
            ),
            ("SWITCHBOARD__WEBHOOKS__RETRY_MAX_MS".into(), "500".into()),
        ],
        config_edits: vec![(
            "roles = [\"agent\", \"supervisor\"]".into(),
            "roles = [\"agent\", \"supervisor\", \"admin\"]".into(),
        )],
        ..NodeOptions::default()
    }
}

/// One page after `after` from `node`, waiting up to a second.
async fn page(node: &str, after: &str, limit: usize) -> Option<(Vec<Value>, String)> {
    let path = if after.is_empty() {
        format!("/api/v1/events?limit={limit}&wait_s=1")
    } else {
        format!("/api/v1/events?limit={limit}&wait_s=1&after={after}")
    };
    let (status, body) = get(node, &path, Some(&supervisor())).await;
    if status != 200 {
        // A node being killed, or not ready: the reader tries another.
        return None;
    }
    let events = body["events"].as_array()?.clone();
    Some((events, body["next_cursor"].as_str()?.to_owned()))
}

/// Reads on from `after` across `nodes` until `enough` holds of all read.
async fn read_on(
    nodes: &[String],
    mut after: String,
    read: &mut Vec<Value>,
    enough: impl Fn(&[Value]) -> bool,
) -> String {
    let mut turn = 0;
    while !enough(read) {
        turn += 1;
        let node = &nodes[turn % nodes.len()];
        if let Some((events, next)) = page(node, &after, 7).await {
            read.extend(events);
            after = next;
        }
    }
    after
}

/// No event twice; each conversation's events in the order they happened.
fn assert_once_and_in_order(events: &[Value]) {
    let mut ids = HashSet::new();
    for event in events {
        assert!(
            ids.insert(event["id"].as_str().unwrap().to_owned()),
            "twice: {event}"
        );
    }
    let mut per_conversation: HashMap<&str, Vec<&str>> = HashMap::new();
    for event in events {
        if let Some(id) = event["conversation_id"].as_str() {
            per_conversation
                .entry(id)
                .or_default()
                .push(event["type"].as_str().unwrap());
        }
    }
    for (id, types) in per_conversation {
        assert!(types.len() >= 3, "{id}: {types:?}");
        assert_eq!(
            types[..3],
            [
                "conversation.created",
                "conversation.queued",
                "message.created"
            ],
            "{id}"
        );
    }
}

#[actix_rt::test]
async fn a_reader_gets_every_event_once_while_every_node_writes_and_the_copier_dies() {
    bounded(LIMIT, async {
        let mut cluster = Cluster::start_with(3, options(), &[]).await;
        let mut nodes = cluster.urls();
        // Writers on every node at once, a reader paging beside them.
        let mut started: Vec<String> = Vec::new();
        let mut read = Vec::new();
        let mut after = String::new();
        for round in 0..3 {
            let writers = nodes.iter().enumerate().map(|(n, node)| async move {
                let mut ids = Vec::new();
                for k in 0..8 {
                    let name = format!("Customer {round}-{n}-{k}");
                    ids.push(start_chat(node, "sales", &name, "Hello").await.0);
                }
                ids
            });
            let reading = async {
                let mut after = after.clone();
                let mut got = Vec::new();
                for turn in 0..6 {
                    if let Some((events, next)) = page(&nodes[turn % nodes.len()], &after, 5).await
                    {
                        got.extend(events);
                        after = next;
                    }
                }
                (got, after)
            };
            let (ids, (got, next)) =
                futures_util::join!(futures_util::future::join_all(writers), reading);
            started.extend(ids.into_iter().flatten());
            read.extend(got);
            after = next;
            if round == 1 {
                // kill -9 the node that copies the outbox, while it copies.
                let holder = cluster.redis.get("sb:outbox:lease").expect("a copier");
                let node = holder.split('.').next().expect("node id").to_owned();
                let index = cluster
                    .nodes
                    .iter()
                    .position(|n| n.node_id == node)
                    .expect("the copier is a node");
                cluster.nodes[index].kill9();
                nodes.remove(index);
            }
        }
        let alive: Vec<String> = cluster
            .nodes
            .iter_mut()
            .filter_map(|node| node.is_running().then(|| node.url()))
            .collect();
        let wanted: HashSet<String> = started.iter().cloned().collect();
        // Until every chat's first three events (created, queued, its first
        // message) are read: a chat's events are copied in order, so its
        // `created` can be read a page before the rest.
        read_on(&alive, after, &mut read, |read| {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for event in read {
                if let Some(id) = event["conversation_id"].as_str() {
                    *seen.entry(id).or_default() += 1;
                }
            }
            wanted
                .iter()
                .all(|id| seen.get(id.as_str()).is_some_and(|n| *n >= 3))
        })
        .await;
        assert_once_and_in_order(&read);
        // A second reader from the start reads the very same sequence.
        let mut again = Vec::new();
        read_on(&alive, String::new(), &mut again, |again| {
            again.len() >= read.len()
        })
        .await;
        let ids = |events: &[Value]| -> Vec<String> {
            events
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(&again[..read.len()]), ids(&read));
        // And the database holds each once.
        let count: usize = cluster
            .database
            .query("SELECT count(*) FROM events WHERE type = 'conversation.created'")
            .parse()
            .expect("a count");
        assert_eq!(count, started.len());
    })
    .await;
}

#[actix_rt::test]
async fn a_webhook_moves_to_a_survivor_when_its_node_dies() {
    bounded(LIMIT, async {
        let mut cluster = Cluster::start_with(3, options(), &[]).await;
        let nodes = cluster.urls();
        let mut receiver = Receiver::start().await;
        let (status, hook) = crate::client::post_as(
            &nodes[0],
            "/api/v1/admin/webhooks",
            &json!({"url": receiver.url("/hook"), "types": ["conversation.created"], "secret": SECRET}),
            &token_for("sam"),
        )
        .await;
        assert_eq!(status, 201, "{hook}");
        let lease = format!("sb:webhook:{}:lease", hook["id"].as_str().unwrap());
        let mut ids = Vec::new();
        ids.push(start_chat(&nodes[1], "sales", "Ada", "Hello").await.0);
        let mut delivered: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        while delivered.is_empty() {
            let delivery = receiver.next().await;
            assert!(delivery.signed_with(SECRET));
            for event in delivery.events() {
                if seen.insert(event["id"].as_str().unwrap().to_owned()) {
                    delivered.push(event["conversation_id"].as_str().unwrap().to_owned());
                }
            }
        }
        let holder = cluster.redis.get(&lease).expect("a node delivers it");
        let node = holder.split('.').next().unwrap().to_owned();
        let index = cluster.nodes.iter().position(|n| n.node_id == node).unwrap();
        cluster.nodes[index].kill9();
        let survivor = &nodes[(index + 1) % nodes.len()];
        for name in ["Ben", "Cy", "Di"] {
            ids.push(start_chat(survivor, "sales", name, "Hello").await.0);
        }
        while delivered.len() < ids.len() {
            let delivery = receiver.next().await;
            assert!(delivery.signed_with(SECRET));
            for event in delivery.events() {
                // At least once: a repeat is recognised by its id.
                if seen.insert(event["id"].as_str().unwrap().to_owned()) {
                    delivered.push(event["conversation_id"].as_str().unwrap().to_owned());
                }
            }
        }
        assert_eq!(delivered, ids, "every event, in order, once each");
        eventually("another node holds the lease", Duration::from_secs(30), || {
            cluster
                .redis
                .get(&lease)
                .is_some_and(|holder| !holder.starts_with(&format!("{node}.")))
        })
        .await;
    })
    .await;
}
