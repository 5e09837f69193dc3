//! Nodes dying and pausing: the actors they owned come back on survivors
//! from Redis, clients move and resume, and a node that was paused past
//! its heartbeat writes nothing once it wakes.

use crate::client::{assert_clean, assert_same_thread, check_stream, start_chat, Party};
use crate::harness::{bounded, eventually, Cluster, HEARTBEAT_TTL_MS};
use serde_json::json;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(150);
const SEEN: Duration = Duration::from_secs(10);
/// Heartbeat TTL plus a few seconds: an owner key must have moved by then.
fn takeover() -> Duration {
    Duration::from_millis(HEARTBEAT_TTL_MS) + Duration::from_secs(4)
}

/// kill -9 the node owning a conversation mid-chat: the clients resume on
/// survivors, nothing acknowledged is lost, the chat goes on.
#[actix_rt::test]
async fn killing_the_conversation_owner_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        let (id, token) = start_chat(&nodes[2], "sales", "Ada", "Hello").await;
        let mut ada = Party::customer_with_token(&nodes, 0, id.clone(), token).await;
        bob.accept(&id).await;
        let mut last = 0;
        for round in 0..3 {
            last = bob.say(&id, &format!("before {round}")).await;
            last = last.max(ada.say(&id, &format!("customer before {round}")).await);
        }
        let (victim, old_owner) = cluster.wait_owner("conv", &id, SEEN).await;

        cluster.nodes[victim].kill9();
        let killed_at = Instant::now();
        // The chat goes on: sends are retried (same client_msg_id) until a
        // live node takes them.
        for round in 0..3 {
            last = last.max(ada.say(&id, &format!("customer after {round}")).await);
            last = last.max(bob.say(&id, &format!("after {round}")).await);
        }
        let (new_owner_index, new_owner) = cluster
            .wait_owner_moved("conv", &id, &old_owner, victim, takeover())
            .await;
        assert_ne!(new_owner_index, victim);
        assert!(
            killed_at.elapsed() < takeover() + Duration::from_secs(30),
            "slow takeover"
        );
        ada.wait_seq(&id, last, SEEN).await;
        bob.wait_seq(&id, last, SEEN).await;
        cluster.assert_chat_intact(&id, last, &[&ada, &bob]);
        assert_eq!(
            cluster.owner("conv", &id).as_deref(),
            Some(new_owner.as_str())
        );

        // The killed node comes back and serves the chat too.
        cluster.nodes[victim].restart().await;
        let mut ada_again =
            Party::customer_with_token(&nodes, victim, id.clone(), ada.token().to_owned()).await;
        ada_again.wait_seq(&id, last, SEEN).await;
        bob.ok(json!({"type": "end", "conversation_id": id})).await;
        bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
            .await;
        assert_clean(&[&ada, &bob, &ada_again]);
    })
    .await;
}

/// kill -9 the node owning a queue while chats wait in it: after the
/// takeover the waiting chats are still offered.
#[actix_rt::test]
async fn killing_the_queue_owner_keeps_waiting_chats() {
    let mut cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut customers = Vec::new();
        for (index, name) in ["Ada", "Grace", "Linus"].into_iter().enumerate() {
            customers.push(
                Party::customer(&nodes, index % 3, "sales", name, &format!("{name} waits")).await,
            );
        }
        let (victim, old_owner) = cluster.wait_owner("queue", "sales", SEEN).await;
        cluster.nodes[victim].kill9();
        let survivors: Vec<usize> = (0..3).filter(|index| *index != victim).collect();

        // Agents come in on the survivors; bob takes two, dave one.
        let mut bob = Party::available_agent(&nodes, survivors[0], "bob").await;
        let mut dave = Party::available_agent(&nodes, survivors[1], "dave").await;
        cluster
            .wait_owner_moved("queue", "sales", &old_owner, victim, takeover())
            .await;
        let ids: Vec<String> = customers
            .iter()
            .map(|c| c.conversation().to_owned())
            .collect();
        let mut offered = Vec::new();
        for _ in 0..2 {
            let offer = bob
                .wait_for("offer", Duration::from_secs(20), |f| f["type"] == "offer")
                .await;
            offered.push(
                offer["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        let offer = dave
            .wait_for("offer", Duration::from_secs(20), |f| f["type"] == "offer")
            .await;
        offered.push(
            offer["conversation_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        let mut sorted = offered.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            3,
            "each chat offered once: {offered:?} of {ids:?}"
        );
        for id in &offered[..2] {
            bob.ok(json!({"type": "accept", "conversation_id": id}))
                .await;
        }
        dave.ok(json!({"type": "accept", "conversation_id": offered[2]}))
            .await;
        // Each customer learns it was accepted: by the live event, or (one
        // whose node died) by the join message its resume brings.
        for customer in customers.iter_mut() {
            let id = customer.conversation().to_owned();
            let joined = customer
                .wait_until(Duration::from_secs(10), |party| {
                    party.transcripts.get(&id).is_some_and(|t| {
                        t.messages.values().any(|m| {
                            m["text"]
                                .as_str()
                                .is_some_and(|t| t.ends_with("joined the chat"))
                        })
                    })
                })
                .await;
            assert!(joined, "{id}: the customer never saw an agent join");
        }
        let mut all: Vec<&Party> = customers.iter().collect();
        all.push(&bob);
        all.push(&dave);
        assert_clean(&all);
    })
    .await;
}

/// SIGSTOP the owner of a conversation past its heartbeat; another node
/// takes over; SIGCONT: the old owner must write nothing more (fenced), keep
/// its hands off the owner key, and send its sessions elsewhere.
#[actix_rt::test]
async fn a_paused_owner_is_fenced_after_takeover() {
    let mut cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let (id, token) = start_chat(&nodes[0], "sales", "Ada", "Hello").await;
        let (paused, old_owner) = cluster.wait_owner("conv", &id, SEEN).await;
        let elsewhere = (paused + 1) % 3;
        let mut bob = Party::available_agent(&nodes, elsewhere, "bob").await;
        // The customer sits on the node that will be paused.
        let mut ada = Party::customer_with_token(&nodes, paused, id.clone(), token).await;
        bob.accept(&id).await;
        let mut last = bob.say(&id, "before the pause").await;
        last = last.max(ada.say(&id, "customer before the pause").await);
        ada.wait_seq(&id, last, SEEN).await;

        // A send in flight as the node freezes.
        ada.send_raw(json!({"type": "send", "text": "in flight", "client_msg_id": "in-flight"}));
        cluster.nodes[paused].stop();
        // Bob keeps talking: his node finds no live owner and takes over.
        for round in 0..3 {
            last = last.max(bob.say(&id, &format!("during the pause {round}")).await);
        }
        let (new_index, new_owner) = cluster
            .wait_owner_moved("conv", &id, &old_owner, paused, takeover())
            .await;
        assert_ne!(new_index, paused);

        cluster.nodes[paused].cont();
        // The woken node learns it lost its lease: its sessions are closed
        // (with a reconnect frame) rather than served stale.
        ada.wait_closed(Duration::from_secs(15)).await;
        // For a few heartbeats, the owner stays with the new owner.
        let watch = Instant::now();
        while watch.elapsed() < Duration::from_millis(3 * HEARTBEAT_TTL_MS) {
            assert_eq!(
                cluster.owner("conv", &id).as_deref(),
                Some(new_owner.as_str()),
                "the woken node took the conversation back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The customer resumes elsewhere and retries the in-flight send:
        // it is in the log once, whichever node wrote it.
        ada.reconnect_elsewhere().await;
        let retried = ada
            .ok(json!({"type": "send", "text": "in flight", "client_msg_id": "in-flight"}))
            .await;
        last = last.max(retried["seq"].as_u64().expect("seq"));
        last = last.max(bob.say(&id, "after the pause").await);
        ada.wait_seq(&id, last, SEEN).await;
        bob.wait_seq(&id, last, SEEN).await;
        assert_same_thread(&id, last, &[&ada, &bob]);
        let entries = cluster.redis.stream(&format!("sb:log:{id}"));
        assert_eq!(check_stream(&entries, &id), Ok(last));
        let in_flight = entries
            .iter()
            .filter(|(_, message)| message["text"] == "in flight")
            .count();
        assert!(in_flight <= 1, "in-flight send logged {in_flight} times");
        eventually(
            "the woken node ready again",
            Duration::from_secs(10),
            || cluster.nodes[paused].is_running(),
        )
        .await;
        assert_clean(&[&ada, &bob]);
    })
    .await;
}

/// SIGTERM the node owning a conversation: it tells its sessions to
/// reconnect, gives up its heartbeat (so the others adopt its actors at
/// once rather than after the TTL) and exits; the chat goes on elsewhere.
#[actix_rt::test]
async fn draining_a_node_hands_its_actors_over() {
    let mut cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        let (id, token) = start_chat(&nodes[0], "sales", "Ada", "Hello").await;
        let mut ada = Party::customer_with_token(&nodes, 0, id.clone(), token).await;
        bob.accept(&id).await;
        let mut last = bob.say(&id, "before the drain").await;
        let (victim, old_owner) = cluster.wait_owner("conv", &id, SEEN).await;

        let status = cluster.nodes[victim].sigterm();
        assert!(status.success(), "a drained node exits cleanly: {status}");
        // It resigned: its heartbeat is gone now, not at the end of its TTL.
        assert_eq!(cluster.redis.get(&format!("sb:node:{old_owner}")), None);

        for round in 0..3 {
            last = last.max(ada.say(&id, &format!("customer after {round}")).await);
            last = last.max(bob.say(&id, &format!("after {round}")).await);
        }
        let (new_owner_index, _) = cluster
            .wait_owner_moved("conv", &id, &old_owner, victim, takeover())
            .await;
        assert_ne!(new_owner_index, victim);
        ada.wait_seq(&id, last, SEEN).await;
        bob.wait_seq(&id, last, SEEN).await;
        cluster.assert_chat_intact(&id, last, &[&ada, &bob]);
        assert_clean(&[&ada, &bob]);
    })
    .await;
}

/// The conversation's timers live in its actor: when its node dies they
/// run on the node that adopts it. An offer nobody accepts still expires
/// (RONA), and a wrap-up nobody gives is still given automatically.
#[actix_rt::test]
async fn timers_fire_after_the_conversation_owner_dies() {
    let options = crate::harness::NodeOptions {
        rona_timeout_ms: 3000,
        auto_wrap_up_ms: 3000,
        ..crate::harness::NodeOptions::default()
    };
    let mut cluster = Cluster::start_with(3, options, &[]).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        let (id, _) = start_chat(&nodes[0], "sales", "Ada", "Hello").await;
        bob.event_where("offer", |offer| offer["conversation_id"] == id.as_str())
            .await;
        let (victim, _) = cluster.wait_owner("conv", &id, SEEN).await;
        assert_ne!(victim, 1, "the chat started on n1; bob is on n2");

        // Bob lets the offer run out while its conversation's node is dead.
        cluster.nodes[victim].kill9();
        let withdrawn = bob
            .event_where("offer_withdrawn", |event| {
                event["conversation_id"] == id.as_str()
            })
            .await;
        assert_eq!(withdrawn["reason"], "rona");
        bob.event_where("agent_state", |event| event["state"] == "rona")
            .await;
        cluster.nodes[victim].restart().await;

        // Back to available: offered again, accepted, ended; then the
        // owner dies again before bob wraps up.
        bob.set_available().await;
        bob.event_where("offer", |offer| offer["conversation_id"] == id.as_str())
            .await;
        bob.accept(&id).await;
        bob.ok(json!({"type": "end", "conversation_id": id})).await;
        let (victim, _) = cluster.wait_owner("conv", &id, takeover()).await;
        cluster.nodes[victim].kill9();
        let survivor = &nodes[(victim + 1) % nodes.len()];
        let start = Instant::now();
        let record = loop {
            let (status, record) = crate::client::record(survivor, &id).await;
            if status == 200 && record["state"] == "closed" {
                break record;
            }
            assert!(
                start.elapsed() < takeover() + Duration::from_secs(15),
                "not wrapped up automatically: {status} {record}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(record["wrap_ups"][0]["automatic"], true);
        assert_eq!(record["wrap_ups"][0]["agent"]["id"], "bob");
    })
    .await;
}
