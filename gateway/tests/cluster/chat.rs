//! Chats across nodes: the customer, the agents and the conversation's
//! actor each on a different node, talking over the Redis bus.

use crate::client::{assert_clean, assert_same_thread, record, start_chat, Party};
use crate::harness::{bounded, Cluster, NodeOptions};
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const SEEN: Duration = Duration::from_secs(10);

/// Customer on n1, agent on n2, the chat started through n3.
#[actix_rt::test]
async fn customer_and_agent_on_different_nodes_see_one_gapless_thread() {
    let cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await;
        let (id, token) = start_chat(&nodes[2], "sales", "Ada", "Hello from n1").await;
        let mut ada = Party::customer_with_token(&nodes, 0, id.clone(), token).await;
        let (owner, incarnation) = cluster.wait_owner("conv", &id, SEEN).await;
        assert!(incarnation.starts_with(&cluster.nodes[owner].node_id));

        let accepted = bob.accept(&id).await;
        assert_eq!(accepted["conversation"]["owner"], "bob");
        ada.wait_text(&id, "Bob Chen joined the chat", SEEN).await;
        let mut last = 0;
        for round in 0..5 {
            last = bob.say(&id, &format!("agent line {round}")).await;
            last = last.max(ada.say(&id, &format!("customer line {round}")).await);
        }
        ada.wait_seq(&id, last, SEEN).await;
        bob.wait_seq(&id, last, SEEN).await;
        cluster.assert_chat_intact(&id, last, &[&ada, &bob]);

        bob.ok(json!({"type": "end", "conversation_id": id})).await;
        ada.event_where("conversation", |e| e["state"] == "ended")
            .await;
        bob.event_where("wrap_up_required", |e| e["conversation_id"] == id.as_str())
            .await;
        bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
            .await;
        ada.event_where("conversation", |e| e["state"] == "closed")
            .await;
        // The record reads the same from every node.
        for node in &nodes {
            let (status, body) = record(node, &id).await;
            assert_eq!(status, 200, "{node}: {body}");
            assert_eq!(body["state"], "closed", "{node}: {body}");
            assert_eq!(
                body["messages"].as_array().map(Vec::len),
                Some(last as usize + 1)
            );
        }
        assert_clean(&[&ada, &bob]);
    })
    .await;
}

/// The offer goes to an agent on another node, runs out, and the chat goes
/// on to the next agent (on a third node).
#[actix_rt::test]
async fn rona_with_the_agent_on_another_node_offers_the_next_agent() {
    let options = NodeOptions {
        rona_timeout_ms: 1500,
        ..NodeOptions::default()
    };
    let cluster = Cluster::start_with(3, options, &[]).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 1, "bob").await; // longest available
        let mut dave = Party::available_agent(&nodes, 2, "dave").await;
        let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "Anyone there?").await;
        let id = ada.conversation().to_owned();

        let offer = bob
            .event_where("offer", |o| o["conversation_id"] == id.as_str())
            .await;
        let withdrawn = bob
            .event_where("offer_withdrawn", |w| w["conversation_id"] == id.as_str())
            .await;
        assert_eq!(withdrawn["reason"], "rona");
        assert_eq!(withdrawn["offer_id"], offer["offer_id"]);
        bob.event_where("agent_state", |e| e["state"] == "rona")
            .await;

        let second = dave
            .event_where("offer", |o| o["conversation_id"] == id.as_str())
            .await;
        assert_ne!(second["offer_id"], offer["offer_id"]);
        assert_eq!(second["messages"][0]["text"], "Anyone there?");
        dave.ok(json!({"type": "accept", "conversation_id": id}))
            .await;
        ada.wait_text(&id, "Dave Okafor joined the chat", SEEN)
            .await;
        bob.fails(json!({"type": "accept", "conversation_id": id}), "no_offer")
            .await;

        let (status, body) = record(&nodes[0], &id).await;
        assert_eq!(status, 200, "{body}");
        let outcomes: Vec<(String, String)> = body["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .map(|o| {
                (
                    o["agent"]["id"].as_str().unwrap_or_default().to_owned(),
                    o["outcome"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("bob".into(), "rona".into()),
                ("dave".into(), "accepted".into())
            ]
        );
        assert_clean(&[&ada, &bob, &dave]);
    })
    .await;
}

/// Bob (n1) transfers to Alice (n2); the customer is on n3.
#[actix_rt::test]
async fn transfer_to_an_agent_on_another_node() {
    let cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 0, "bob").await;
        let mut ada = Party::customer(&nodes, 2, "sales", "Ada", "Please transfer me").await;
        let id = ada.conversation().to_owned();
        bob.accept(&id).await;
        bob.say(&id, "Let me find a colleague").await;
        // Alice becomes available only now, so the first offer was Bob's.
        let mut alice = Party::available_agent(&nodes, 1, "alice").await;

        bob.ok(json!({"type": "transfer", "conversation_id": id, "to": {"agent": "alice"}}))
            .await;
        bob.event_where("wrap_up_required", |e| e["conversation_id"] == id.as_str())
            .await;
        let offer = alice
            .event_where("offer", |o| o["conversation_id"] == id.as_str())
            .await;
        assert_eq!(offer["kind"], "transfer");
        assert_eq!(offer["from_agent"]["id"], "bob");
        let accepted = alice
            .ok(json!({"type": "accept", "conversation_id": id}))
            .await;
        assert_eq!(accepted["conversation"]["owner"], "alice");
        ada.wait_text(&id, "Alice Martin joined the chat", SEEN)
            .await;
        let seq = alice.say(&id, "Hi, Alice here").await;
        let seq = seq.max(ada.say(&id, "Thanks Alice").await);
        ada.wait_seq(&id, seq, SEEN).await;
        alice.wait_seq(&id, seq, SEEN).await;
        assert_same_thread(&id, seq, &[&ada, &alice]);
        bob.ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "follow_up"}))
            .await;
        assert_clean(&[&ada, &bob, &alice]);
    })
    .await;
}

/// Bob (n1) invites Carol (n2); the customer (n3) sees her join.
#[actix_rt::test]
async fn conference_across_nodes() {
    let cluster = Cluster::start(3).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut bob = Party::available_agent(&nodes, 0, "bob").await;
        let mut ada = Party::customer(&nodes, 2, "sales", "Ada", "Need two of you").await;
        let id = ada.conversation().to_owned();
        bob.accept(&id).await;
        let mut carol = Party::available_agent(&nodes, 1, "carol").await;

        let ack = bob
            .ok(json!({"type": "conference", "conversation_id": id, "agent": "carol"}))
            .await;
        assert_eq!(ack["conversation"]["state"], "conference_requested");
        let offer = carol
            .event_where("offer", |o| o["conversation_id"] == id.as_str())
            .await;
        assert_eq!(offer["kind"], "conference");
        carol
            .ok(json!({"type": "accept", "conversation_id": id}))
            .await;
        for party in [&mut ada, &mut bob, &mut carol] {
            let joined = party
                .wait_text(&id, "Carol Diaz joined the chat", SEEN)
                .await;
            assert_eq!(joined["from"]["role"], "system");
        }
        let seq = carol.say(&id, "Carol from support here").await;
        for party in [&mut ada, &mut bob, &mut carol] {
            party.wait_seq(&id, seq, SEEN).await;
        }
        assert_same_thread(&id, seq, &[&ada, &bob, &carol]);
        bob.ok(json!({"type": "end_conference", "conversation_id": id}))
            .await;
        for party in [&mut ada, &mut bob, &mut carol] {
            party.wait_text(&id, "Carol Diaz left the chat", SEEN).await;
        }
        assert_clean(&[&ada, &bob, &carol]);
    })
    .await;
}

/// An agent with tabs on two nodes logs out in one: the tab on the other
/// node ends too, the agent is offline in the directory of every node, and
/// its tokens from before the logout are refused on every node.
#[actix_rt::test]
async fn logout_ends_the_agents_tabs_on_every_node() {
    let cluster = Cluster::start(2).await;
    bounded(LIMIT, async {
        let nodes = cluster.urls();
        let mut here = Party::agent(&nodes, 0, "carol").await;
        let mut there = Party::agent(&nodes, 1, "carol").await;
        here.ok(json!({"type": "logout"})).await;
        there.wait_closed(SEEN).await;
        for node in &nodes {
            let (status, agents) = crate::client::get(
                node,
                "/api/v1/agents?state=offline",
                Some(&crate::client::supervisor()),
            )
            .await;
            assert_eq!(status, 200);
            assert!(
                agents
                    .as_array()
                    .is_some_and(|rows| rows.iter().any(|row| row["id"] == "carol")),
                "carol offline on {node}: {agents}"
            );
            for token in [&here.token, &there.token] {
                let (status, body) = crate::client::get(node, "/api/v1/queues", Some(token)).await;
                assert_eq!(status, 401, "old token on {node}: {body}");
                assert!(
                    crate::client::Ws::connect(node, token).await.is_err(),
                    "old token opened a WebSocket on {node}"
                );
            }
        }
        // A new login's token works on another node than the logout's.
        let token = crate::client::login(&nodes[1], "carol").await;
        assert!(crate::client::Ws::connect(&nodes[0], &token).await.is_ok());
    })
    .await;
}
