//! `webhooks`: webhook delivery under load. A receiver on a loopback port
//! (plain HTTP/1.1, answers 204) is registered as a webhook for every
//! event type; `steady`'s traffic runs; the receiver measures each event's
//! lag (its `at` to its arrival) and the events per second it got. With
//! `--outage`, the receiver then goes away while the same traffic runs for
//! that long (the events wait in the node's database), comes back on the
//! same port, and the catch-up rate is measured: the backlog's events over
//! the time from the first to the last of them arriving.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::WebhooksArgs;
use crate::scenario::{command_line, shared_for, steady_with, Machine, SteadyReport};

/// How long the receiver must hear nothing before a phase counts as done.
const QUIET: Duration = Duration::from_secs(2);
/// The longest wait for delivery to finish after the load stopped.
const SETTLE: Duration = Duration::from_secs(120);

#[derive(Serialize)]
pub struct LagReport {
    pub events: u64,
    pub events_per_s: f64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

#[derive(Serialize)]
pub struct CatchUpReport {
    pub outage_s: f64,
    pub backlog_events: u64,
    pub seconds: f64,
    pub events_per_s: f64,
}

#[derive(Serialize)]
pub struct WebhooksReport {
    pub scenario: &'static str,
    pub command: String,
    pub machine: Machine,
    pub load: SteadyReport,
    pub lag: LagReport,
    pub catch_up: Option<CatchUpReport>,
}

impl WebhooksReport {
    pub fn print(&self) {
        self.load.print();
        println!(
            "webhook: {} events delivered, {:.0}/s; lag p50 {} ms, p99 {} ms, max {} ms",
            self.lag.events,
            self.lag.events_per_s,
            self.lag.p50_ms,
            self.lag.p99_ms,
            self.lag.max_ms
        );
        if let Some(catch_up) = &self.catch_up {
            println!(
                "catch-up after a {:.0} s outage: {} events in {:.2} s = {:.0} events/s",
                catch_up.outage_s, catch_up.backlog_events, catch_up.seconds, catch_up.events_per_s
            );
        }
    }
}

/// What the receiver saw.
struct Heard {
    lag_ms: Mutex<Histogram<u64>>,
    events: AtomicU64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
}

impl Heard {
    fn new() -> Arc<Heard> {
        Arc::new(Heard {
            lag_ms: Mutex::new(Histogram::new_with_bounds(1, 3_600_000, 3).expect("bounds")),
            events: AtomicU64::new(0),
            first: Mutex::new(None),
            last: Mutex::new(None),
        })
    }

    fn took(&self, batch: &Value) {
        let now = Instant::now();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let events = batch["events"].as_array().map_or(&[][..], Vec::as_slice);
        let mut lag = self.lag_ms.lock();
        for event in events {
            let at = event["at"]
                .as_str()
                .and_then(|at| humantime::parse_rfc3339_weak(at).ok())
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map_or(now_ms, |at| at.as_millis() as u64);
            let _ = lag.record(now_ms.saturating_sub(at).max(1));
        }
        self.events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.first.lock().get_or_insert(now);
        *self.last.lock() = Some(now);
    }

    /// Waits until nothing arrived for [`QUIET`] (at most [`SETTLE`]).
    async fn settle(&self) {
        let start = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let idle = self
                .last
                .lock()
                .map_or(start.elapsed(), |last| last.elapsed());
            if idle >= QUIET || start.elapsed() >= SETTLE {
                return;
            }
        }
    }
}

/// Serves deliveries on `listener` until aborted: each answered 204.
/// Aborting it also ends its open connections (they live in its `JoinSet`),
/// so an outage is one: the node's pooled connections break too.
async fn receive(listener: TcpListener, heard: Arc<Heard>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(socket, heard.clone()));
    }
}

async fn serve(mut socket: TcpStream, heard: Arc<Heard>) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
        if let Ok(batch) = serde_json::from_slice::<Value>(&buffer[head_end..head_end + length]) {
            heard.took(&batch);
        }
        buffer.drain(..head_end + length);
        let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        if socket.write_all(answer).await.is_err() {
            return;
        }
    }
}

async fn listen(port: u16) -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind(("127.0.0.1", port)).await?)
}

/// Logs agent 1 (an admin in `gen-config`'s config) in and registers the
/// receiver as a webhook for every event type.
async fn register(args: &WebhooksArgs, port: u16) -> anyhow::Result<()> {
    let base = args
        .steady
        .target
        .urls
        .first()
        .ok_or_else(|| anyhow::anyhow!("no --url"))?;
    let http = reqwest::Client::new();
    let user = format!("{}1", args.steady.agents.agent_prefix);
    let login: Value = http
        .post(format!("{base}/api/v1/agent/login"))
        .json(&json!({"username": user, "password": format!("{user}-pw")}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login answered no token: {login}"))?;
    let created = http
        .post(format!("{base}/api/v1/admin/webhooks"))
        .bearer_auth(token)
        .json(&json!({
            "url": format!("http://127.0.0.1:{port}/hook"),
            "types": [],
            "secret": "loadtest-webhook-secret",
        }))
        .send()
        .await?;
    if !created.status().is_success() {
        let status = created.status();
        let body = created.text().await.unwrap_or_default();
        anyhow::bail!("the webhook was not created ({status}): {body}");
    }
    Ok(())
}

pub async fn webhooks(args: WebhooksArgs) -> anyhow::Result<WebhooksReport> {
    let listener = listen(0).await?;
    let port = listener.local_addr()?.port();
    register(&args, port).await?;
    let quiet = args.steady.target.quiet;

    let heard = Heard::new();
    let receiver = tokio::spawn(receive(listener, heard.clone()));
    let shared = shared_for(
        &args.steady.target,
        &args.steady.agents,
        &args.steady.workload,
    )?;
    let (load, ()) = steady_with(args.steady.clone(), shared.clone(), "webhooks", async {}).await?;
    heard.settle().await;
    let lag = {
        let histogram = heard.lag_ms.lock();
        let events = heard.events.load(Ordering::Relaxed);
        let span = match (*heard.first.lock(), *heard.last.lock()) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        LagReport {
            events,
            events_per_s: if span > 0.0 {
                events as f64 / span
            } else {
                0.0
            },
            p50_ms: histogram.value_at_quantile(0.5),
            p99_ms: histogram.value_at_quantile(0.99),
            max_ms: histogram.max(),
        }
    };

    let catch_up = if args.outage.is_zero() {
        receiver.abort();
        None
    } else {
        receiver.abort();
        let _ = receiver.await;
        if !quiet {
            eprintln!("receiver down for {:?} while the load runs", args.outage);
        }
        let mut outage = args.steady.clone();
        outage.duration = args.outage;
        let (_, ()) = steady_with(outage, shared, "webhooks", async {}).await?;
        let back = Heard::new();
        let listener = listen(port).await?;
        let receiver = tokio::spawn(receive(listener, back.clone()));
        back.settle().await;
        receiver.abort();
        let events = back.events.load(Ordering::Relaxed);
        let seconds = match (*back.first.lock(), *back.last.lock()) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        Some(CatchUpReport {
            outage_s: args.outage.as_secs_f64(),
            backlog_events: events,
            seconds,
            events_per_s: if seconds > 0.0 {
                events as f64 / seconds
            } else {
                0.0
            },
        })
    };
    Ok(WebhooksReport {
        scenario: "webhooks",
        command: command_line(),
        machine: Machine::describe(),
        load,
        lag,
        catch_up,
    })
}
