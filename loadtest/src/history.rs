//! A history to measure against: `seed-history` fills a database with closed
//! conversations and their transcripts through the engine's own write path
//! (the group commit a node uses), and `search` measures
//! `GET /api/v1/conversations?q=` and a whole export against a node started
//! on that database.
//!
//! Message text draws its words from a fixed vocabulary with a skewed
//! (Zipf-like) choice, so a search meets words of every frequency: a few
//! in most conversations, most in a handful.

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_engine::storage::{Change, Database, DatabaseConfig};
use switchboard_proto::model::*;
use switchboard_proto::{ConversationId, CustomerId, MessageId, Timestamp};

use crate::cli::{SearchArgs, SeedArgs};

/// Words messages are made of; the first are the most frequent.
const VOCABULARY: &[&str] = &[
    "the",
    "order",
    "please",
    "thanks",
    "help",
    "account",
    "delivery",
    "refund",
    "parcel",
    "invoice",
    "password",
    "address",
    "payment",
    "card",
    "shipping",
    "return",
    "warranty",
    "discount",
    "subscription",
    "cancel",
    "upgrade",
    "login",
    "email",
    "phone",
    "broken",
    "missing",
    "late",
    "damaged",
    "exchange",
    "size",
    "colour",
    "receipt",
    "voucher",
    "bank",
    "transfer",
    "tracking",
    "courier",
    "weekend",
    "monday",
    "friday",
    "urgent",
    "manager",
    "complaint",
    "feedback",
    "question",
    "answer",
    "today",
    "tomorrow",
    "yesterday",
    "store",
    "online",
    "app",
    "website",
    "error",
    "screen",
    "battery",
    "charger",
    "cable",
    "screenshot",
    "photo",
    "document",
    "contract",
    "renewal",
    "price",
    "offer",
    "bundle",
    "gift",
    "loyalty",
    "points",
    "membership",
    "premium",
    "basic",
    "plan",
    "billing",
    "statement",
    "overcharge",
    "duplicate",
    "pending",
    "approved",
    "declined",
    "verification",
    "identity",
    "security",
];

/// A word of the vocabulary, low indexes far more often than high ones.
fn word(rng: &mut impl Rng) -> &'static str {
    let x: f64 = rng.random();
    let index = ((VOCABULARY.len() as f64).powf(x) - 1.0) as usize;
    VOCABULARY[index.min(VOCABULARY.len() - 1)]
}

fn sentence(rng: &mut impl Rng) -> String {
    let words = rng.random_range(4..14);
    (0..words).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
}

fn conversation(
    n: u64,
    messages: u64,
    agents: usize,
    start: Timestamp,
    rng: &mut impl Rng,
) -> (ConversationRecord, Vec<Message>) {
    let id = ConversationId::new(format!("c-seed-{n:09}"));
    let created = start.plus_millis(n * 1_000);
    let agent_n = 1 + (n as usize % agents.max(1));
    let agent = NamedRef::new(format!("lt{agent_n}"), format!("Agent {agent_n}"));
    let accepted = created.plus_millis(rng.random_range(1_000..60_000));
    let mut at = accepted;
    let mut thread = Vec::new();
    for seq in 1..=messages {
        at = at.plus_millis(rng.random_range(2_000..30_000));
        let (role, who, name) = if seq % 2 == 1 {
            (Role::Customer, None, format!("Customer {n}"))
        } else {
            (Role::Agent, Some(agent.id.clone()), agent.name.clone())
        };
        thread.push(Message {
            conversation_id: id.clone(),
            seq,
            id: MessageId::new(format!("m-{n}-{seq}")),
            from: Author {
                role,
                id: who,
                name,
            },
            text: sentence(rng),
            ts: at,
            client_msg_id: None,
        });
    }
    let ended = at.plus_millis(1_000);
    let closed = ended.plus_millis(rng.random_range(1_000..30_000));
    let record = ConversationRecord {
        conversation_id: id,
        state: ConversationState::Closed,
        customer: Customer {
            id: Some(CustomerId::new(format!("cu-seed-{n:09}"))),
            name: format!("Customer {n}"),
            ..Customer::default()
        },
        attributes: BTreeMap::new(),
        queue: NamedRef::new("lt", "Load test"),
        created_at: created,
        first_accepted_at: Some(accepted),
        ended_at: Some(ended),
        closed_at: Some(closed),
        participants: Vec::new(),
        owner: None,
        legs: vec![Leg {
            agent: agent.clone(),
            role: LegRole::Owner,
            joined_at: accepted,
            left_at: Some(ended),
            left_because: Some("ended".into()),
        }],
        offers: Vec::new(),
        wrap_ups: vec![WrapUpRecord {
            agent,
            reason: Reason {
                id: "resolved".into(),
                label: "Resolved".into(),
            },
            notes: None,
            at: closed,
            automatic: false,
        }],
        messages: Vec::new(),
        erased: false,
    };
    (record, thread)
}

/// `seed-history`: writes `conversations` closed conversations of
/// `messages` messages each, a write per conversation, many in flight so
/// the writer's batches fill as a busy node's would.
pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let database = Database::open(DatabaseConfig::new(args.database_url.clone()))
        .await
        .with_context(|| format!("open {}", args.database_url))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let start = Timestamp(Timestamp::now().millis() - (args.conversations as i64) * 1_000);
    let started = Instant::now();
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    for n in 0..args.conversations {
        let (record, thread) = conversation(n, args.messages, args.agents, start, &mut rng);
        let mut changes = vec![Change::Record(Box::new(
            switchboard_engine::storage::records::RecordRow::of(&record)?,
        ))];
        changes.extend(
            thread
                .into_iter()
                .map(|m| Change::Message(std::sync::Arc::new(m))),
        );
        in_flight.push(database.write(changes));
        if in_flight.len() >= 256 {
            use futures_util::StreamExt;
            if let Some(result) = in_flight.next().await {
                result?;
            }
        }
        if (n + 1) % 10_000 == 0 {
            eprintln!(
                "{} conversations, {:.1} s",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    use futures_util::StreamExt;
    while let Some(result) = in_flight.next().await {
        result?;
    }
    println!(
        "seeded {} conversations, {} messages, in {:.1} s into {}",
        args.conversations,
        args.conversations * args.messages,
        started.elapsed().as_secs_f64(),
        database.url()
    );
    Ok(())
}

/// `search`: logs in as `<prefix>1` (a supervisor in the generated config),
/// runs `queries` searches of one random word each (and of two, every
/// fourth), then one whole export; prints latency percentiles, the export's
/// rows and bytes, and the node's resident memory before and after it.
pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let login: serde_json::Value = http
        .post(format!("{}/api/v1/agent/login", args.url))
        .json(&serde_json::json!({"username": format!("{}1", args.agent_prefix), "password": format!("{}1-pw", args.agent_prefix)}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("login token")?.to_owned();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut found = 0u64;
    for n in 0..args.queries {
        let mut q = word(&mut rng).to_owned();
        if n % 4 == 3 {
            q.push(' ');
            q.push_str(word(&mut rng));
        }
        let started = Instant::now();
        let page: serde_json::Value = http
            .get(format!("{}/api/v1/conversations", args.url))
            .query(&[("q", q.as_str()), ("limit", "50")])
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        latency.record(started.elapsed().as_micros().max(1) as u64)?;
        found += page["items"].as_array().map_or(0, Vec::len) as u64;
    }
    let ms = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "search: {} queries, {} conversations listed; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.queries,
        found,
        ms(0.5),
        ms(0.95),
        ms(0.99),
        latency.max() as f64 / 1000.0
    );
    if args.export {
        let rss_before = rss(args.server_pid);
        let started = Instant::now();
        let mut response = http
            .get(format!("{}/api/v1/conversations/export", args.url))
            .query(&[("format", "csv")])
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        let (mut bytes, mut lines, mut peak) = (0u64, 0u64, rss_before.unwrap_or(0));
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            if let Some(rss) = rss(args.server_pid) {
                peak = peak.max(rss);
            }
        }
        println!(
            "export: {} rows, {:.1} MiB in {:.1} s; node RSS {} KiB before, {} KiB peak during",
            lines.saturating_sub(1),
            bytes as f64 / 1_048_576.0,
            started.elapsed().as_secs_f64(),
            rss_before.map_or("?".into(), |kib| kib.to_string()),
            peak
        );
    }
    Ok(())
}

fn rss(pid: Option<u32>) -> Option<u64> {
    crate::stats::proc_sample(pid?)
        .ok()
        .map(|sample| sample.rss_kib)
}
