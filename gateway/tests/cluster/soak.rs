//! Soak: three nodes, random kill -9 and restarts, many conversations
//! driven by clients that retry and resume. At the end, a history check:
//! every acknowledged message is in the record and in the customer's
//! transcript once, under one seq, in one order (and in the Redis stream);
//! no conversation was offered to two agents at once; every conversation
//! ended `closed` or `abandoned`, once.

use crate::client::{check_stream, now_ms, post, record, OfferBook, Party, SharedOffers};
use crate::harness::{bounded, Cluster, NodeOptions};
use futures_util::future::{join, join3, join_all};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long nodes are killed and restarted.
const CHAOS: Duration = Duration::from_secs(45);
const CUSTOMER_WORKERS: usize = 6;
const AGENTS: [(&str, usize); 4] = [("bob", 0), ("dave", 1), ("alice", 2), ("carol", 0)];

/// A tiny deterministic generator (seeded from the clock, printed).
struct Dice(Cell<u64>);

impl Dice {
    fn below(&self, n: u64) -> u64 {
        let next = self
            .0
            .get()
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0.set(next);
        (next >> 33) % n
    }
}

/// Starts a chat on some live node (rotating past dead ones).
async fn start_somewhere(nodes: &[String], first: usize, name: &str) -> (String, String) {
    let body = json!({"queue": "sales", "customer": {"name": name}, "message": format!("{name} says hello")});
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let (status, reply) = post(
            &nodes[(first + attempt) % nodes.len()],
            "/api/v1/chats",
            &body,
        )
        .await;
        if status == 201 {
            return (
                reply["conversation_id"].as_str().expect("id").to_owned(),
                reply["token"].as_str().expect("token").to_owned(),
            );
        }
        assert!(
            matches!(status, 0 | 503) && start.elapsed() < Duration::from_secs(30),
            "start chat: {status} {reply}"
        );
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn joined(party: &Party, id: &str) -> bool {
    party.transcripts.get(id).is_some_and(|t| {
        t.messages.values().any(|m| {
            m["from"]["role"] == "system"
                && m["text"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("joined the chat"))
        })
    })
}

fn ended(party: &Party, id: &str) -> bool {
    party.transcripts.get(id).is_some_and(|t| {
        t.messages.values().any(|m| {
            m["from"]["role"] == "system"
                && m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("ended the chat"))
        })
    })
}

/// One customer after another, until `stop`: start, talk, wait for an
/// agent (or give up and leave), talk, wait for the end.
async fn customer_worker(
    worker: usize,
    nodes: &[String],
    stop: &Cell<bool>,
    dice: &Dice,
    done: &RefCell<Vec<Party>>,
) {
    let mut n = 0;
    while !stop.get() {
        n += 1;
        let name = format!("Customer {worker}-{n}");
        let (id, token) = start_somewhere(nodes, dice.below(3) as usize, &name).await;
        let mut customer =
            Party::customer_with_token(nodes, dice.below(3) as usize, id.clone(), token).await;
        customer.say(&id, &format!("{name}: first question")).await;
        let accepted = customer
            .wait_until(Duration::from_secs(25), |party| joined(party, &id))
            .await;
        if !accepted {
            // Gives up; an accept may cross this (then it ends the chat).
            let left = customer.request(json!({"type": "end"})).await;
            assert!(
                left["type"] == "ack" || left["code"] == "invalid_state",
                "{id}: customer end: {left}"
            );
            done.borrow_mut().push(customer);
            continue;
        }
        for line in 0..2 {
            // The agent may end the chat meanwhile (then `invalid_state`).
            let reply = customer
                .request(json!({"type": "send", "text": format!("{name}: line {line}"), "client_msg_id": format!("{id}-line-{line}")}))
                .await;
            if reply["type"] != "ack" {
                assert_eq!(reply["code"], "invalid_state", "{id}: {reply}");
                break;
            }
            customer.acked.push(crate::client::Acked {
                conversation: id.clone(),
                client_msg_id: format!("{id}-line-{line}"),
                seq: reply["seq"].as_u64().expect("ack seq"),
                text: format!("{name}: line {line}"),
            });
            customer
                .pump(Duration::from_millis(200 + dice.below(300)))
                .await;
        }
        let over = customer
            .wait_until(Duration::from_secs(40), |party| ended(party, &id))
            .await;
        assert!(
            over,
            "{id}: never ended; transcript {:?}",
            customer.transcript(&id).texts()
        );
        done.borrow_mut().push(customer);
    }
}

/// An agent taking one chat at a time until `stop` and no customer is
/// left: accept, talk, end, wrap up. Comes back from RONA at once.
async fn agent_worker(
    agent: &mut Party,
    customers_left: &Cell<usize>,
    handled: &RefCell<Vec<String>>,
) {
    while customers_left.get() > 0 {
        if !agent
            .take_buffered(|f| f["type"] == "agent_state" && f["state"] == "rona")
            .is_empty()
        {
            agent.set_available().await;
        }
        let offered = agent
            .wait_until(Duration::from_millis(500), |party| {
                party.pending().iter().any(|f| f["type"] == "offer")
            })
            .await;
        if !offered {
            continue;
        }
        // One at a time; later offers wait in the buffer (and may run
        // out meanwhile: RONA, which the loop recovers from).
        let Some(offer) = agent.take_first(|f| f["type"] == "offer") else {
            continue;
        };
        let id = offer["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let reply = agent
            .request(json!({"type": "accept", "conversation_id": id}))
            .await;
        if reply["type"] != "ack" {
            continue; // withdrawn meanwhile (RONA, customer left, or a retried accept)
        }
        handled.borrow_mut().push(id.clone());
        for line in 0..2 {
            let sent = agent
                .request(json!({"type": "send", "conversation_id": id, "text": format!("agent line {line}"), "client_msg_id": format!("{id}-agent-{line}")}))
                .await;
            if sent["type"] != "ack" {
                break; // the customer left
            }
            agent.pump(Duration::from_millis(300)).await;
        }
        let end = agent
            .request(json!({"type": "end", "conversation_id": id}))
            .await;
        assert!(
            end["type"] == "ack" || end["code"] == "invalid_state",
            "{}: end {id}: {end}",
            agent.name()
        );
        let wrap = agent
            .request(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
            .await;
        assert!(
            wrap["type"] == "ack"
                || matches!(
                    wrap["code"].as_str(),
                    Some("invalid_state") | Some("not_found")
                ),
            "{}: wrap_up {id}: {wrap}",
            agent.name()
        );
    }
}

#[actix_rt::test]
async fn soak_with_random_node_kills_keeps_every_history() {
    let options = NodeOptions {
        rona_timeout_ms: 4000,
        auto_wrap_up_ms: 3000,
        ..NodeOptions::default()
    };
    let mut cluster = Cluster::start_with(3, options, &[]).await;
    let seed = now_ms() as u64;
    eprintln!("soak seed {seed}");
    let dice = Dice(Cell::new(seed));
    bounded(Duration::from_secs(150), async {
        let nodes = cluster.urls();
        let book: SharedOffers = Rc::new(RefCell::new(OfferBook::default()));
        let mut agents = Vec::new();
        for (name, at) in AGENTS {
            let mut agent = Party::available_agent(&nodes, at, name).await;
            agent.track_offers(&book);
            agents.push(agent);
        }
        let stop = Cell::new(false);
        let customers_left = Cell::new(CUSTOMER_WORKERS);
        let done = RefCell::new(Vec::new());
        let handled = RefCell::new(Vec::new());
        let mut kills = Vec::new();

        let chaos = async {
            let start = Instant::now();
            while start.elapsed() < CHAOS {
                tokio::time::sleep(Duration::from_millis(5000 + dice.below(4000))).await;
                let victim = dice.below(3) as usize;
                cluster.nodes[victim].kill9();
                kills.push(victim);
                tokio::time::sleep(Duration::from_millis(500 + dice.below(2000))).await;
                cluster.nodes[victim].restart().await;
            }
            stop.set(true);
        };
        let customers = join_all((0..CUSTOMER_WORKERS).map(|worker| {
            let (nodes, stop, dice, done, left) = (&nodes, &stop, &dice, &done, &customers_left);
            async move {
                customer_worker(worker, nodes, stop, dice, done).await;
                left.set(left.get() - 1);
            }
        }));
        let agents_running = join_all(
            agents
                .iter_mut()
                .map(|agent| agent_worker(agent, &customers_left, &handled)),
        );
        join3(chaos, customers, join(agents_running, async {})).await;
        eprintln!(
            "soak: kills {kills:?}; {} conversations; {} offers",
            done.borrow().len(),
            book.borrow().offers_seen
        );

        // ---- the history check ----
        let done = done.into_inner();
        assert!(
            done.len() >= 10,
            "the soak ran only {} conversations",
            done.len()
        );
        let mut problems: Vec<String> = book.borrow().violations.clone();
        for party in done.iter().chain(agents.iter()) {
            problems.extend(party.violations());
        }
        // Every agent ack, by conversation.
        let mut agent_acks: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        for agent in &agents {
            for acked in &agent.acked {
                agent_acks
                    .entry(acked.conversation.clone())
                    .or_default()
                    .push((acked.seq, acked.text.clone()));
            }
        }
        for customer in &done {
            let id = customer.conversation().to_owned();
            // The final record, once the conversation is over.
            let mut body = Value::Null;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                let (status, reply) = record(
                    &nodes[(start.elapsed().as_millis() as usize / 100) % 3],
                    &id,
                )
                .await;
                body = reply;
                if status == 200
                    && matches!(body["state"].as_str(), Some("closed") | Some("abandoned"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let state = body["state"].as_str().unwrap_or_default().to_owned();
            if state != "closed" && state != "abandoned" {
                problems.push(format!("{id}: ended in state {state:?}: {body}"));
                continue;
            }
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            let seqs: Vec<u64> = messages.iter().filter_map(|m| m["seq"].as_u64()).collect();
            let expected: Vec<u64> = (1..=messages.len() as u64).collect();
            if seqs != expected {
                problems.push(format!("{id}: record seqs {seqs:?}"));
            }
            let by_seq: BTreeMap<u64, &Value> = messages
                .iter()
                .filter_map(|m| Some((m["seq"].as_u64()?, m)))
                .collect();
            let endings = messages
                .iter()
                .filter(|m| {
                    m["from"]["role"] == "system"
                        && m["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("ended the chat"))
                })
                .count();
            if endings > 1 {
                problems.push(format!("{id}: ended {endings} times"));
            }
            // Every acknowledged message, under its seq.
            let acks = customer
                .acked
                .iter()
                .map(|a| (a.seq, a.text.clone()))
                .chain(agent_acks.get(&id).cloned().unwrap_or_default());
            for (seq, text) in acks {
                if by_seq.get(&seq).map(|m| &m["text"]) != Some(&json!(text)) {
                    problems.push(format!(
                        "{id}: acked seq {seq} {text:?} is {:?} in the record",
                        by_seq.get(&seq)
                    ));
                }
            }
            // Every transcript that has a seq agrees with the record.
            for party in std::iter::once(customer).chain(agents.iter()) {
                let Some(transcript) = party.transcripts.get(&id) else {
                    continue;
                };
                for (seq, message) in &transcript.messages {
                    if by_seq.get(seq).map(|m| (&m["id"], &m["text"]))
                        != Some((&message["id"], &message["text"]))
                    {
                        problems.push(format!(
                            "{id}: {} has seq {seq} as {message}, the record {:?}",
                            party.name(),
                            by_seq.get(seq)
                        ));
                    }
                }
            }
            // The customer stayed to the end of a closed chat: it has it all
            // (up to the end message it waited for).
            if state == "closed" {
                let upto = customer.transcript(&id).max_seq();
                let missing = customer.transcript(&id).missing(upto);
                if !missing.is_empty() {
                    problems.push(format!("{id}: customer misses {missing:?}"));
                }
            }
            // The Redis log, while it is kept.
            let entries = cluster.redis.stream(&format!("sb:log:{id}"));
            if !entries.is_empty() {
                match check_stream(&entries, &id) {
                    Ok(count) if count == messages.len() as u64 => {}
                    Ok(count) => problems.push(format!(
                        "{id}: stream has {count} entries, record {}",
                        messages.len()
                    )),
                    Err(error) => problems.push(error),
                }
            }
        }
        assert!(
            problems.is_empty(),
            "soak (seed {seed}) found {} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    })
    .await;
}
