//! Running simulated people against nodes: agents once per run, customers
//! per measured window (an open-model Poisson arrival process), a progress
//! line every second, and a bounded drain at the end of every window.

use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::agent::{self, AgentSpec, Control};
use crate::shared::Shared;
use crate::stats::{Metrics, Window};

/// How the harness finds its agents in the node's config (see `gen-config`).
#[derive(Clone, Debug)]
pub struct AgentPool {
    pub count: usize,
    pub prefix: String,
    pub max_chats: i32,
    /// Logins in flight at once (each costs the node an argon2 run).
    pub login_concurrency: usize,
}

impl AgentPool {
    pub fn username(&self, index: usize) -> String {
        format!("{}{}", self.prefix, index + 1)
    }

    pub fn password(&self, index: usize) -> String {
        format!("{}{}-pw", self.prefix, index + 1)
    }
}

/// The agents of a run, logged in and available.
pub struct Agents {
    control: broadcast::Sender<Control>,
    tasks: JoinSet<()>,
}

impl Agents {
    /// Logs every agent in (spread over nodes and source addresses) and
    /// waits until all are available.
    pub async fn start(shared: &Arc<Shared>, pool: &AgentPool) -> anyhow::Result<Agents> {
        let (control, _) = broadcast::channel(16);
        let (ready_tx, mut ready_rx) = mpsc::channel(pool.count.max(1));
        let mut tasks = JoinSet::new();
        let logins = Arc::new(tokio::sync::Semaphore::new(pool.login_concurrency.max(1)));
        for index in 0..pool.count {
            let source = index % shared.sources.len();
            let node = (index / shared.sources.len()) % shared.nodes.len();
            let spec = AgentSpec {
                index,
                username: pool.username(index),
                password: pool.password(index),
                slot: crate::shared::Slot { node, source },
                max_chats: pool.max_chats,
                logins: logins.clone(),
            };
            tasks.spawn(agent::run(
                shared.clone(),
                spec,
                control.subscribe(),
                ready_tx.clone(),
            ));
            // Pace logins a little: each is a REST call plus a handshake.
            if index % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        drop(ready_tx);
        let deadline = Instant::now() + Duration::from_secs(60);
        for _ in 0..pool.count {
            match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
                Ok(Some(Ok(()))) => {}
                Ok(Some(Err(error))) => anyhow::bail!("agent setup failed: {error:#}"),
                Ok(None) => anyhow::bail!("agents stopped before they were ready"),
                Err(_) => anyhow::bail!("agents not ready within 60 s"),
            }
        }
        Ok(Agents { control, tasks })
    }

    pub fn storm(&self) {
        let _ = self.control.send(Control::Storm);
    }

    /// Tells every agent to finish and waits (bounded) for them.
    pub async fn stop(mut self, within: Duration) {
        let _ = self.control.send(Control::Stop);
        let deadline = Instant::now() + within;
        while let Ok(Some(_)) =
            tokio::time::timeout_at(deadline.into(), self.tasks.join_next()).await
        {}
        self.tasks.abort_all();
    }
}

/// What one measured window does.
#[derive(Clone, Debug)]
pub struct WindowPlan {
    /// Chat arrivals per second (Poisson).
    pub rate: f64,
    /// How long customers arrive.
    pub duration: Duration,
    /// After arrivals stop, how long chats may take to finish.
    pub drain: Duration,
    /// At most this many chats.
    pub max_chats: u64,
    /// Number of the first customer (unique over a run's windows).
    pub first_customer: u64,
    pub progress: bool,
    pub server_pid: Option<u32>,
    /// `overload`: a spell of arrivals at a multiple of `rate`.
    pub surge: Option<Surge>,
}

/// Arrivals at `factor` times the rate from `at` for `lasts` (from the
/// window's start).
#[derive(Clone, Copy, Debug)]
pub struct Surge {
    pub at: Duration,
    pub lasts: Duration,
    pub factor: f64,
}

impl Surge {
    fn rate_at(surge: Option<Surge>, rate: f64, since_start: Duration) -> f64 {
        match surge {
            Some(surge) if since_start >= surge.at && since_start < surge.at + surge.lasts => {
                rate * surge.factor
            }
            _ => rate,
        }
    }
}

/// One measured window: customers arrive at `plan.rate` per second for
/// `plan.duration`, then the run drains for at most `plan.drain`. Returns
/// the window and the next free customer number.
pub async fn window(shared: &Arc<Shared>, plan: WindowPlan) -> (Window, u64) {
    let WindowPlan {
        rate,
        duration,
        drain,
        max_chats,
        first_customer,
        progress,
        server_pid,
        surge,
    } = plan;
    let metrics = shared.metrics.clone();
    metrics.reset();
    let (abort_tx, abort_rx) = watch::channel(false);
    let reporter = progress.then(|| tokio::spawn(progress_lines(metrics.clone(), shared.clone())));
    let sweeper = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                interval.tick().await;
                shared.tracker.sweep();
            }
        })
    };
    let started = Instant::now();
    let end = started + duration;
    let sample = |pid: Option<u32>| pid.and_then(|pid| crate::stats::proc_sample(pid).ok());
    let server_start = sample(server_pid);
    let harness_start = sample(Some(std::process::id()));
    let mut customers = JoinSet::new();
    let mut next = started;
    let mut n = first_customer;
    let mut rng = rand::rng();
    while n - first_customer < max_chats {
        // Poisson arrivals: exponential gaps with mean 1/rate.
        let rate = Surge::rate_at(surge, rate, next - started);
        let gap: f64 = -(1.0 - rng.random::<f64>()).ln() / rate.max(1e-9);
        next += Duration::from_secs_f64(gap);
        if next >= end {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        customers.spawn(crate::customer::run(
            shared.clone(),
            n,
            next,
            abort_rx.clone(),
        ));
        n += 1;
        // Reap finished customers now and then so the set stays small.
        while customers.try_join_next().is_some() {}
    }
    tokio::time::sleep_until(end.into()).await;
    let measured = started.elapsed();
    let cpu = |start: Option<crate::stats::ProcSample>, pid: Option<u32>| {
        let end = sample(pid)?;
        Some(crate::stats::cpu_percent(
            start?,
            end,
            measured.as_secs_f64(),
        ))
    };
    let server_cpu = cpu(server_start, server_pid);
    let harness_cpu = cpu(harness_start, Some(std::process::id()));
    let drain_deadline = Instant::now() + drain;
    while let Ok(Some(_)) =
        tokio::time::timeout_at(drain_deadline.into(), customers.join_next()).await
    {}
    let _ = abort_tx.send(true);
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_secs(5), customers.join_next()).await
    {}
    customers.abort_all();
    // Wrap-ups still in flight: give agents a moment to finish them.
    let settle = Instant::now() + Duration::from_secs(5);
    while shared.tracker.open() > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sweeper.abort();
    let unfinished = shared.tracker.finalize_all();
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    let mut window = Window::capture(&metrics, rate, measured.as_secs_f64(), unfinished);
    window.server_cpu_percent = server_cpu;
    window.harness_cpu_percent = harness_cpu;
    (window, n)
}

/// One line a second on stderr: arrival rate, deliveries, in-flight chats,
/// errors by code.
async fn progress_lines(metrics: Arc<Metrics>, shared: Arc<Shared>) {
    let started = Instant::now();
    let mut last = metrics.counters.values();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    loop {
        interval.tick().await;
        let now = metrics.counters.values();
        let errors = metrics.errors();
        let error_text = if errors.is_empty() {
            "none".to_owned()
        } else {
            let mut by_code: std::collections::BTreeMap<&str, u64> = Default::default();
            for (key, count) in &errors {
                let code = key.split('/').next().unwrap_or(key);
                *by_code.entry(code).or_default() += count;
            }
            by_code
                .iter()
                .map(|(code, count)| format!("{code}={count}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let sessions = if shared.failover.is_some() {
            format!(
                "  sessions resumed {}/{} lost",
                now.sessions_resumed, now.sessions_lost
            )
        } else {
            String::new()
        };
        eprintln!(
            "[{:>4}s] chats {:>6}/s  delivered {:>7} msg/s  offers {:>6}/s  in-flight {:>6}  tracked {:>6}  bad {}{sessions}  errors: {}",
            started.elapsed().as_secs(),
            now.chats_created - last.chats_created,
            (now.delivered_c2a + now.delivered_a2c) - (last.delivered_c2a + last.delivered_a2c),
            now.offers - last.offers,
            metrics.in_flight.load(Ordering::Relaxed),
            shared.tracker.open(),
            metrics.correctness_failures(),
            error_text
        );
        last = now;
    }
}
