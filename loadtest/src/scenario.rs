//! `steady`, `ramp` and `floor`: set up, measure, report (`failover` runs
//! `steady`'s traffic through [`steady_with`]).

use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{
    AgentArgs, BoundOn, FloorArgs, FloorOptions, RampArgs, SteadyArgs, Target, WorkloadArgs,
};
use crate::floor::{self, FloorReport};
use crate::run::{self, AgentPool, Agents, WindowPlan};
use crate::shared::Shared;
use crate::stats::Window;

const MAX_DURATION: Duration = Duration::from_secs(3600);

/// The machine a figure was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_mib: u64,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, name)| name.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            memory_mib,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "machine: {} CPUs ({}), {} MiB, Linux {}",
            self.cpus, self.cpu_model, self.memory_mib, self.kernel
        )
    }
}

/// How a figure compares with its floor.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ratios {
    pub message_p50_over_echo_p50: Option<f64>,
    pub message_p99_over_echo_p99: Option<f64>,
    pub message_p99_over_redis_p99: Option<f64>,
}

impl Ratios {
    fn of(window: &Window, floor: &FloorReport) -> Self {
        let message = &window.latency.message_both;
        let ratio = |a: f64, b: f64| (a > 0.0 && b > 0.0).then(|| a / b);
        Self {
            message_p50_over_echo_p50: ratio(message.p50_ms, floor.websocket_echo.p50_ms),
            message_p99_over_echo_p99: ratio(message.p99_ms, floor.websocket_echo.p99_ms),
            message_p99_over_redis_p99: floor
                .redis_publish
                .as_ref()
                .and_then(|redis| ratio(message.p99_ms, redis.p99_ms)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SteadyReport {
    pub scenario: &'static str,
    pub command: String,
    pub machine: Machine,
    pub codec: String,
    pub nodes: Vec<String>,
    pub agents: usize,
    pub floor: Option<FloorReport>,
    pub result: Window,
    pub ratios: Option<Ratios>,
    pub correctness_failures: u64,
}

pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

pub(crate) fn shared_for(
    target: &Target,
    agents: &AgentArgs,
    workload: &WorkloadArgs,
) -> anyhow::Result<Arc<Shared>> {
    Shared::new(
        &target.urls,
        &target.source_addrs,
        target.codec.into(),
        agents.queue.clone(),
        workload.workload(),
        agents.agents,
    )
}

fn pool(agents: &AgentArgs) -> AgentPool {
    AgentPool {
        count: agents.agents,
        prefix: agents.agent_prefix.clone(),
        max_chats: agents.agent_max_chats,
        login_concurrency: agents.login_concurrency,
    }
}

async fn maybe_floor(
    options: &FloorOptions,
    rate: f64,
    text_len: usize,
    quiet: bool,
) -> Option<FloorReport> {
    if !options.floor {
        return None;
    }
    if !quiet {
        eprintln!(
            "measuring floors at {rate:.0} msg/s for {:?}...",
            options.floor_duration
        );
    }
    match floor::measure(
        rate.max(1.0),
        options.floor_duration.min(MAX_DURATION),
        options.floor_connections,
        text_len,
        options.floor_workers,
    )
    .await
    {
        Ok(report) => Some(report),
        Err(error) => {
            eprintln!("floor not measured: {error:#}");
            None
        }
    }
}

fn print_floor(floor: &FloorReport) {
    println!(
        "floor at {:.0} msg/s for {:.0}s:",
        floor.rate_per_s, floor.seconds
    );
    println!("{}", floor.websocket_echo.line("websocket echo"));
    match (&floor.redis_publish, &floor.redis_note) {
        (Some(redis), _) => println!("{}", redis.line("redis publish")),
        (None, Some(note)) => println!("  {note}"),
        (None, None) => {}
    }
}

pub async fn steady(args: SteadyArgs) -> anyhow::Result<SteadyReport> {
    let shared = shared_for(&args.target, &args.agents, &args.workload)?;
    let (report, ()) = steady_with(args, shared, "steady", async {}).await?;
    Ok(report)
}

/// `steady`'s traffic model on `shared`. `alongside` is spawned when the
/// measured window starts (`failover` kills a node from it); its output is
/// returned with the report once both are done.
pub async fn steady_with<T: Send + 'static>(
    args: SteadyArgs,
    shared: Arc<Shared>,
    scenario: &'static str,
    alongside: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<(SteadyReport, T)> {
    let quiet = args.target.quiet;
    let floor = maybe_floor(
        &args.floor,
        args.workload.messages_per_second(args.rate),
        args.workload.text_len,
        quiet,
    )
    .await;
    let agents = Agents::start(&shared, &pool(&args.agents)).await?;
    if !quiet {
        eprintln!(
            "{} agents available; customers arrive at {}/s for {:?}",
            args.agents.agents, args.rate, args.duration
        );
    }
    let plan = WindowPlan {
        rate: args.rate,
        duration: args.duration.min(MAX_DURATION),
        drain: args.drain.min(MAX_DURATION),
        max_chats: args.max_total_chats,
        first_customer: 0,
        progress: !quiet,
        server_pid: args.target.server_pid,
        surge: args.surge,
    };
    let alongside = tokio::spawn(alongside);
    let (window, _) = run::window(&shared, plan).await;
    agents.stop(Duration::from_secs(10)).await;
    let alongside = alongside.await?;
    let ratios = floor.as_ref().map(|f| Ratios::of(&window, f));
    let report = SteadyReport {
        scenario,
        command: command_line(),
        machine: Machine::describe(),
        codec: format!("{:?}", args.target.codec).to_lowercase(),
        nodes: args.target.urls.clone(),
        agents: args.agents.agents,
        floor,
        correctness_failures: window.correctness_failures(),
        result: window,
        ratios,
    };
    Ok((report, alongside))
}

impl SteadyReport {
    pub fn print(&self) {
        println!("== switchboard-loadtest {} ==", self.scenario);
        println!("{}", self.machine.line());
        println!(
            "nodes: {} ({}), {} agents",
            self.nodes.join(", "),
            self.codec,
            self.agents
        );
        if let Some(floor) = &self.floor {
            print_floor(floor);
        }
        self.result.print();
        if let Some(ratios) = &self.ratios {
            println!(
                "ratio to floor: message p50 / echo p50 = {}, message p99 / echo p99 = {}, message p99 / redis p99 = {}",
                fmt_ratio(ratios.message_p50_over_echo_p50),
                fmt_ratio(ratios.message_p99_over_echo_p99),
                fmt_ratio(ratios.message_p99_over_redis_p99)
            );
        }
    }
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".into(), |r| format!("{r:.1}x"))
}

#[derive(Debug, Serialize)]
pub struct RampStep {
    pub passed: bool,
    pub why_not: Vec<String>,
    pub window: Window,
}

#[derive(Debug, Serialize)]
pub struct RampReport {
    pub scenario: &'static str,
    pub command: String,
    pub machine: Machine,
    pub codec: String,
    pub p99_bound_ms: f64,
    pub bound_on: String,
    pub floor: Option<FloorReport>,
    pub steps: Vec<RampStep>,
    /// Highest chat arrival rate that passed, and what it delivered.
    pub sustainable_chat_rate: Option<f64>,
    pub sustainable_messages_per_s: Option<f64>,
    pub correctness_failures: u64,
}

pub async fn ramp(args: RampArgs) -> anyhow::Result<RampReport> {
    let shared = shared_for(&args.target, &args.agents, &args.workload)?;
    let quiet = args.target.quiet;
    let floor = maybe_floor(
        &args.floor,
        args.workload.messages_per_second(args.start_rate),
        args.workload.text_len,
        quiet,
    )
    .await;
    let agents = Agents::start(&shared, &pool(&args.agents)).await?;
    let mut steps = Vec::new();
    let mut rate = args.start_rate;
    let mut next_customer = 0;
    let mut failures = 0;
    let mut retried = 0;
    let mut step = 0;
    while step < args.max_steps.min(30) {
        if !quiet {
            eprintln!(
                "ramp step {}: {rate:.1} chats/s for {:?}",
                step + 1,
                args.step_duration
            );
        }
        let plan = WindowPlan {
            rate,
            duration: args.step_duration.min(MAX_DURATION),
            drain: args.drain.min(MAX_DURATION),
            max_chats: u64::MAX,
            first_customer: next_customer,
            progress: !quiet,
            server_pid: args.target.server_pid,
            surge: None,
        };
        let (window, next) = run::window(&shared, plan).await;
        next_customer = next;
        failures += window.correctness_failures();
        let why_not = judge(
            &window,
            args.p99_bound_ms,
            args.bound_on,
            args.max_error_share,
        );
        let passed = why_not.is_empty();
        if !quiet {
            eprintln!(
                "  -> {} ({:.0} msg/s, message p99 {:.2} ms, offer p99 {:.2} ms){}",
                if passed { "pass" } else { "FAIL" },
                window.delivered_messages_per_s,
                window.latency.message_both.p99_ms,
                window.latency.offer.p99_ms,
                if passed {
                    String::new()
                } else {
                    format!(": {}", why_not.join("; "))
                }
            );
        }
        let correct = window.correctness_failures() == 0;
        steps.push(RampStep {
            passed,
            why_not,
            window,
        });
        if !passed {
            if correct && retried < args.retries {
                retried += 1;
                continue;
            }
            break;
        }
        retried = 0;
        step += 1;
        rate *= args.step_factor.max(1.01);
    }
    agents.stop(Duration::from_secs(10)).await;
    let best = steps.iter().rfind(|s| s.passed);
    Ok(RampReport {
        scenario: "ramp",
        command: command_line(),
        machine: Machine::describe(),
        codec: format!("{:?}", args.target.codec).to_lowercase(),
        p99_bound_ms: args.p99_bound_ms,
        bound_on: format!("{:?}", args.bound_on).to_lowercase(),
        floor,
        sustainable_chat_rate: best.map(|s| s.window.target_chat_rate),
        sustainable_messages_per_s: best.map(|s| s.window.delivered_messages_per_s),
        steps,
        correctness_failures: failures,
    })
}

/// Why a ramp step fails its bounds (empty: it passes).
fn judge(
    window: &Window,
    p99_bound_ms: f64,
    bound_on: BoundOn,
    max_error_share: f64,
) -> Vec<String> {
    let mut why = Vec::new();
    let latency = &window.latency;
    if bound_on != BoundOn::Offers
        && latency.message_both.count > 0
        && latency.message_both.p99_ms > p99_bound_ms
    {
        why.push(format!(
            "message p99 {:.2} ms > {p99_bound_ms} ms",
            latency.message_both.p99_ms
        ));
    }
    if bound_on != BoundOn::Messages
        && latency.offer.count > 0
        && latency.offer.p99_ms > p99_bound_ms
    {
        why.push(format!(
            "offer p99 {:.2} ms > {p99_bound_ms} ms",
            latency.offer.p99_ms
        ));
    }
    let c = &window.counters;
    let commands = (c.sent_customer + c.sent_agent + c.accepts + c.chats_scheduled).max(1);
    let errors: u64 = window.errors.values().sum();
    if errors as f64 / commands as f64 > max_error_share {
        why.push(format!("{errors} errors in {commands} commands"));
    }
    if window.achieved_chat_rate < window.target_chat_rate * 0.9 {
        why.push(format!(
            "achieved {:.1} chats/s of {:.1}",
            window.achieved_chat_rate, window.target_chat_rate
        ));
    }
    if window.unfinished > 0 {
        why.push(format!(
            "{} chats unfinished after the drain",
            window.unfinished
        ));
    }
    if window.correctness_failures() > 0 {
        why.push("correctness counters not zero".into());
    }
    why
}

impl RampReport {
    pub fn print(&self) {
        println!("== switchboard-loadtest ramp ==");
        println!("{}", self.machine.line());
        if let Some(floor) = &self.floor {
            print_floor(floor);
        }
        println!(
            "bound: p99 of {} <= {} ms, errors, correctness",
            self.bound_on, self.p99_bound_ms
        );
        for (index, step) in self.steps.iter().enumerate() {
            let w = &step.window;
            println!(
                "step {}: {:>8.1} chats/s -> {:>8.0} msg/s  msg p50 {:>7.3} p99 {:>7.3} p99.9 {:>7.3}  offer p99 {:>7.3} ms  {}",
                index + 1,
                w.target_chat_rate,
                w.delivered_messages_per_s,
                w.latency.message_both.p50_ms,
                w.latency.message_both.p99_ms,
                w.latency.message_both.p999_ms,
                w.latency.offer.p99_ms,
                if step.passed { "pass".to_owned() } else { format!("FAIL: {}", step.why_not.join("; ")) }
            );
        }
        match (self.sustainable_chat_rate, self.sustainable_messages_per_s) {
            (Some(rate), Some(messages)) => println!(
                "highest sustainable: {rate:.1} chats/s, {messages:.0} messages/s delivered"
            ),
            _ => println!("highest sustainable: none of the steps passed"),
        }
        println!(
            "correctness failures over all steps: {}",
            self.correctness_failures
        );
    }
}

pub async fn floor_only(args: FloorArgs) -> anyhow::Result<FloorReport> {
    floor::measure(
        args.rate,
        args.duration.min(MAX_DURATION),
        args.connections,
        args.text_len,
        args.workers,
    )
    .await
}

pub fn print_floor_report(report: &FloorReport) {
    println!("== switchboard-loadtest floor ==");
    println!("{}", Machine::describe().line());
    print_floor(report);
    println!(
        "  echo frames sent {}, echoed {}",
        report.websocket_echo_sent, report.websocket_echo_received
    );
}
