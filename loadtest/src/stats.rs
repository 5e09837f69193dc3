//! What a run measures: HDR latency histograms, throughput counters, the
//! correctness counters that must stay at zero, and errors grouped by code.
//!
//! Everything is shared by every simulated client of a run behind an `Arc`;
//! histograms sit behind a mutex each (a few tens of thousands of records a
//! second contend very little), counters are atomics.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The harness's timer granularity (tokio's timer wheel ticks in
/// milliseconds). A scheduled send that leaves within this of its schedule
/// counts from when it left; a later one counts from its schedule, so the
/// harness falling behind is charged, never hidden.
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Where latency counts from for a send scheduled at `scheduled` that left
/// at `sent`.
pub fn latency_origin(
    scheduled: std::time::Instant,
    sent: std::time::Instant,
) -> std::time::Instant {
    if sent.saturating_duration_since(scheduled) < TIMER_SLACK {
        sent
    } else {
        scheduled
    }
}

/// Highest latency a histogram holds: one minute, in microseconds.
const MAX_MICROS: u64 = 60_000_000;

/// One latency distribution, in microseconds, three significant figures.
pub struct Hist(Mutex<Histogram<u64>>);

impl Default for Hist {
    fn default() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        Self(Mutex::new(histogram))
    }
}

impl Hist {
    pub fn record(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        let _ = self.0.lock().record(micros);
    }

    pub fn summary(&self) -> Percentiles {
        Percentiles::of(&self.0.lock())
    }

    pub fn reset(&self) {
        self.0.lock().reset();
    }

    /// Adds another process's histogram (serialized counts) to this one.
    pub fn merge(&self, other: &Histogram<u64>) {
        let _ = self.0.lock().add(other);
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.0.lock().clone()
    }
}

/// A histogram as the report prints it, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }

    pub fn line(&self, name: &str) -> String {
        if self.count == 0 {
            return format!("  {name:<22} (no samples)");
        }
        format!(
            "  {name:<22} n={:<8} p50={:>8.3} p90={:>8.3} p99={:>8.3} p99.9={:>8.3} max={:>9.3} ms",
            self.count, self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Monotonic counters of one run (or one ramp step).
        #[derive(Default)]
        pub struct Counters { $(pub $name: AtomicU64,)* }

        /// The counters read at one instant.
        #[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
        pub struct CounterValues { $(pub $name: u64,)* }

        impl Counters {
            pub fn values(&self) -> CounterValues {
                CounterValues { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
            pub fn reset(&self) {
                $(self.$name.store(0, Ordering::Relaxed);)*
            }
        }
    };
}

counters!(
    chats_scheduled,
    chats_created,
    chats_create_failed,
    chats_completed,
    chats_abandoned,
    customer_timeouts,
    offers,
    accepts,
    ronas,
    transfers,
    conferences,
    wrap_ups,
    sent_customer,
    sent_agent,
    delivered_c2a,
    delivered_a2c,
    delivered_late,
    connect_failures,
    // failover: sockets lost and taken back, commands sent again
    sessions_lost,
    sessions_resumed,
    commands_retried,
    gap_resumes,
    // correctness: must stay zero
    lost,
    undelivered,
    duplicated,
    out_of_order,
    double_offers,
);

/// One `send` attempt's answer (`overload`).
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub sent: std::time::Instant,
    pub took: Duration,
    pub admitted: bool,
}

/// Everything a run measures.
#[derive(Default)]
pub struct Metrics {
    pub offer: Hist,
    pub msg_c2a: Hist,
    pub msg_a2c: Hist,
    pub accept_active: Hist,
    pub rona_redirect: Hist,
    /// `POST /api/v1/chats` round trip, from the scheduled arrival.
    pub create: Hist,
    /// How late the harness itself sent scheduled commands (arrivals and
    /// customer messages): its own timer granularity and load.
    pub send_lag: Hist,
    pub counters: Counters,
    /// `failover`: from a session's socket lost to it reconnected and resumed.
    pub reconnect: Hist,
    /// `failover`: when the last lost session was resumed.
    last_resumed: Mutex<Option<std::time::Instant>>,
    /// `failover`: every live delivery as (scheduled send time, latency), to
    /// cut into one-second windows around the kill afterwards.
    samples: Mutex<Option<Vec<(std::time::Instant, Duration)>>>,
    /// `overload`: every `send`'s answer, to cut into phases afterwards.
    answers: Mutex<Option<Vec<Answer>>>,
    /// Chats started and not yet finished by their customer.
    pub in_flight: AtomicI64,
    /// Error frames and failed requests, by protocol code (or a harness
    /// label such as `http_503` or `connect`).
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn error(&self, code: &str) {
        *self.errors.lock().entry(code.to_owned()).or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().clone()
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Keep every `send` answer from now on (`overload`).
    pub fn keep_answers(&self) {
        *self.answers.lock() = Some(Vec::new());
    }

    /// A `send` was answered: acked (`admitted`) or shed (`unavailable`).
    /// `sent` is when this attempt went out.
    pub fn answer(&self, sent: std::time::Instant, admitted: bool) {
        if let Some(answers) = self.answers.lock().as_mut() {
            answers.push(Answer {
                sent,
                took: sent.elapsed(),
                admitted,
            });
        }
    }

    pub fn take_answers(&self) -> Vec<Answer> {
        self.answers.lock().take().unwrap_or_default()
    }

    /// Keep every delivery's latency from now on (`failover`).
    pub fn keep_samples(&self) {
        *self.samples.lock() = Some(Vec::new());
    }

    /// A live delivery of a message scheduled at `scheduled`.
    pub fn sample(&self, scheduled: std::time::Instant, latency: Duration) {
        if let Some(samples) = self.samples.lock().as_mut() {
            samples.push((scheduled, latency));
        }
    }

    pub fn take_samples(&self) -> Vec<(std::time::Instant, Duration)> {
        self.samples.lock().take().unwrap_or_default()
    }

    /// A session lost its socket (it reconnects).
    pub fn session_lost(&self) {
        Self::bump(&self.counters.sessions_lost);
    }

    /// A session lost at `lost_at` reconnected and resumed.
    pub fn session_resumed(&self, lost_at: std::time::Instant) {
        let now = std::time::Instant::now();
        self.reconnect
            .record(now.saturating_duration_since(lost_at));
        Self::bump(&self.counters.sessions_resumed);
        let mut last = self.last_resumed.lock();
        *last = Some(last.map_or(now, |at| at.max(now)));
    }

    pub fn last_resumed(&self) -> Option<std::time::Instant> {
        *self.last_resumed.lock()
    }

    /// Clears histograms, counters and errors (between ramp steps).
    pub fn reset(&self) {
        for hist in self.hists() {
            hist.reset();
        }
        self.counters.reset();
        self.errors.lock().clear();
        *self.last_resumed.lock() = None;
        if let Some(samples) = self.samples.lock().as_mut() {
            samples.clear();
        }
    }

    fn hists(&self) -> [&Hist; 8] {
        [
            &self.reconnect,
            &self.create,
            &self.send_lag,
            &self.offer,
            &self.msg_c2a,
            &self.msg_a2c,
            &self.accept_active,
            &self.rona_redirect,
        ]
    }

    pub fn latencies(&self) -> Latencies {
        Latencies {
            offer: self.offer.summary(),
            message_customer_to_agent: self.msg_c2a.summary(),
            message_agent_to_customer: self.msg_a2c.summary(),
            message_both: {
                let mut both = self.msg_c2a.snapshot();
                let _ = both.add(self.msg_a2c.snapshot());
                Percentiles::of(&both)
            },
            accept_to_active: self.accept_active.summary(),
            rona_redirect: self.rona_redirect.summary(),
            chat_create: self.create.summary(),
            harness_send_lag: self.send_lag.summary(),
        }
    }

    pub fn correctness_failures(&self) -> u64 {
        let values = self.counters.values();
        values.lost
            + values.undelivered
            + values.duplicated
            + values.out_of_order
            + values.double_offers
    }
}

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Latencies {
    pub offer: Percentiles,
    pub message_customer_to_agent: Percentiles,
    pub message_agent_to_customer: Percentiles,
    pub message_both: Percentiles,
    pub accept_to_active: Percentiles,
    pub rona_redirect: Percentiles,
    pub chat_create: Percentiles,
    pub harness_send_lag: Percentiles,
}

impl Latencies {
    pub fn print(&self) {
        println!("latency (from the scheduled send time, coordinated omission corrected):");
        println!("{}", self.offer.line("offer (created->offer)"));
        println!(
            "{}",
            self.message_customer_to_agent
                .line("message customer->agent")
        );
        println!(
            "{}",
            self.message_agent_to_customer
                .line("message agent->customer")
        );
        println!("{}", self.message_both.line("message (both ways)"));
        println!("{}", self.accept_to_active.line("accept->active"));
        println!("{}", self.rona_redirect.line("rona redirect"));
        println!("{}", self.chat_create.line("POST /chats"));
        println!("{}", self.harness_send_lag.line("harness send lag"));
    }
}

/// The results of one measured window (a steady run, or one ramp step).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Window {
    /// Target chat arrival rate (chats per second).
    pub target_chat_rate: f64,
    pub seconds: f64,
    pub achieved_chat_rate: f64,
    /// Chat messages delivered end to end per second (customer->agent plus
    /// agent->customer, live deliveries).
    pub delivered_messages_per_s: f64,
    pub latency: Latencies,
    pub counters: CounterValues,
    pub errors: BTreeMap<String, u64>,
    /// Conversations still open when the drain deadline passed.
    pub unfinished: u64,
    /// CPU over the measured window, in % of one core (200 = both cores of
    /// a 2-core machine): the node (when its PID was given) and the harness.
    pub server_cpu_percent: Option<f64>,
    pub harness_cpu_percent: Option<f64>,
}

impl Window {
    pub fn capture(metrics: &Metrics, target: f64, seconds: f64, unfinished: u64) -> Self {
        let counters = metrics.counters.values();
        let seconds = seconds.max(1e-9);
        Self {
            target_chat_rate: target,
            seconds,
            achieved_chat_rate: counters.chats_created as f64 / seconds,
            delivered_messages_per_s: (counters.delivered_c2a + counters.delivered_a2c) as f64
                / seconds,
            latency: metrics.latencies(),
            counters,
            errors: metrics.errors(),
            unfinished,
            server_cpu_percent: None,
            harness_cpu_percent: None,
        }
    }

    pub fn correctness_failures(&self) -> u64 {
        let c = &self.counters;
        c.lost + c.undelivered + c.duplicated + c.out_of_order + c.double_offers
    }

    pub fn print(&self) {
        let c = &self.counters;
        println!(
            "chats: target {:.1}/s, created {} ({:.1}/s over {:.1}s), completed {}, abandoned {}, create failures {}, customer timeouts {}, unfinished {}",
            self.target_chat_rate,
            c.chats_created,
            self.achieved_chat_rate,
            self.seconds,
            c.chats_completed,
            c.chats_abandoned,
            c.chats_create_failed,
            c.customer_timeouts,
            self.unfinished,
        );
        println!(
            "routing: offers {}, accepts {}, rona {}, transfers {}, conferences {}, wrap-ups {}",
            c.offers, c.accepts, c.ronas, c.transfers, c.conferences, c.wrap_ups
        );
        println!(
            "messages: sent {} by customers, {} by agents; delivered live {} c->a + {} a->c = {:.0}/s; delivered by offer/resume {}",
            c.sent_customer,
            c.sent_agent,
            c.delivered_c2a,
            c.delivered_a2c,
            self.delivered_messages_per_s,
            c.delivered_late
        );
        self.latency.print();
        let cpu = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}%"));
        println!(
            "cpu over the window (% of one core): node {}, harness {}",
            cpu(self.server_cpu_percent),
            cpu(self.harness_cpu_percent)
        );
        println!(
            "correctness (must be 0): lost {} (missing seq in a participant's stream), undelivered {} (acked, never reached the other side), duplicated {}, out-of-order {}, double offers {}",
            c.lost, c.undelivered, c.duplicated, c.out_of_order, c.double_offers
        );
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(code, count)| format!("{code}={count}"))
                .collect();
            println!("errors by code: {}", list.join(", "));
        }
    }
}

/// Resident memory (KiB) and CPU time (clock ticks) of a process, from
/// `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub cpu_ticks: u64,
}

pub fn proc_sample(pid: u32) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(ProcSample {
        rss_kib,
        cpu_ticks: utime + stime,
    })
}

/// CPU used between two samples, in % of one core.
pub fn cpu_percent(start: ProcSample, end: ProcSample, seconds: f64) -> f64 {
    let ticks = end.cpu_ticks.saturating_sub(start.cpu_ticks) as f64;
    ticks / CLOCK_TICKS / seconds.max(1e-9) * 100.0
}

/// Clock ticks per second for `/proc/<pid>/stat` (USER_HZ; 100 on Linux).
pub const CLOCK_TICKS: f64 = 100.0;
