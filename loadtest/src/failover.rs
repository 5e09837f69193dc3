//! `failover`: `steady`'s traffic spread over several nodes; at `--kill-at`
//! the node whose PID was given is signalled (SIGKILL by default), and
//! optionally started again with `--restart-cmd`.
//!
//! Clients whose socket was on that node reconnect to the other nodes
//! (round-robin, same token) and resume from the last contiguous `seq` they
//! hold; commands left unanswered by the kill, or answered `unavailable`,
//! are sent again with the same `request_id` and `client_msg_id`, so an
//! acknowledged message is never lost and a retried one never doubles (the
//! tracker counts both, see [`crate::tracker`]).
//!
//! **Recovery time**, from the kill until both:
//! - every session that lost its socket has reconnected and resumed (its
//!   `resume` acked, or nothing to resume), and
//! - message latency is back: the first one-second window, cut at the kill
//!   and keyed by the messages' *scheduled* send time, holding at least
//!   [`MIN_WINDOW_MESSAGES`] deliveries whose p99 is at or under the bound
//!   (`--recovery-p99-ms`, default the larger of 15 ms and twice the p99
//!   before the kill). Keying by send time matters: a message stuck behind
//!   the dead node is delivered late, and its latency lands in the window it
//!   was sent in, not in a later one. The window's start is the figure, so
//!   it has one-second resolution.
//!
//! The node's URL is found from `/proc/<pid>` (the target whose port it
//! listens on) before the kill, and checked after it by which URLs stop
//! answering `/healthz`.

use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{FailoverArgs, KillSignal};
use crate::client::Node;
use crate::scenario::{self, SteadyReport};
use crate::shared::{Failover, Shared};
use crate::stats::Percentiles;

/// A one-second window with fewer deliveries than this says nothing about
/// recovery.
pub const MIN_WINDOW_MESSAGES: u64 = 10;
/// The recovery bound is at least this (the cluster's message p99 target).
const MIN_BOUND_MS: f64 = 15.0;
/// How long the killed process may take to disappear.
const GONE_WITHIN: Duration = Duration::from_secs(30);
/// How long the restarted node may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How many windows before the kill the report lists.
const WINDOWS_BEFORE: i64 = 3;

#[derive(Debug, Serialize)]
pub struct FailoverReport {
    #[serde(flatten)]
    pub run: SteadyReport,
    pub failover: FailoverSection,
}

#[derive(Debug, Default, Serialize)]
pub struct FailoverSection {
    pub killed_pid: u32,
    pub signal: String,
    /// From the start of arrivals.
    pub kill_at_s: f64,
    /// The target the PID listened on (from `/proc`), if it could be read.
    pub killed_url: Option<String>,
    /// Targets not answering `/healthz` once the process was gone.
    pub stopped_answering: Vec<String>,
    /// Why the kill did not happen (the run is then not a failover).
    pub kill_error: Option<String>,
    pub process_gone_after_ms: Option<f64>,
    pub restart_cmd: Option<String>,
    /// The restart command's exit status, if it ended during the run.
    pub restart_exit_status: Option<String>,
    /// From the kill until the node's `/readyz` answered 200.
    pub node_ready_again_after_s: Option<f64>,
    /// Sessions (customers and agents) that lost their socket and
    /// reconnected, and how many of them resumed.
    pub sessions_lost: u64,
    pub sessions_resumed: u64,
    /// Per session: socket lost -> reconnected and resumed.
    pub reconnect: Percentiles,
    /// From the kill until the last lost session resumed (0: none lost).
    pub sessions_resumed_after_s: Option<f64>,
    /// Message p99 over everything sent before the kill.
    pub baseline_p99_ms: Option<f64>,
    pub p99_bound_ms: f64,
    /// From the kill to the start of the first window back under the bound.
    pub latency_back_after_s: Option<f64>,
    /// The larger of the two above; `null`: not recovered within the run.
    pub recovery_s: Option<f64>,
    /// Commands sent again (after a reconnect, or after `unavailable`).
    pub commands_retried: u64,
    /// `resume`s sent to fill a gap in live delivery.
    pub gap_resumes: u64,
    /// Error frames and failed requests by code (`unavailable` is expected
    /// while the node's conversations move).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Message latency in one-second windows from the kill, by send time.
    pub windows: Vec<LatencyWindow>,
}

impl FailoverReport {
    /// Correctness counters, plus sessions that never got back in.
    pub fn correctness_failures(&self) -> u64 {
        let f = &self.failover;
        self.run.correctness_failures + f.sessions_lost.saturating_sub(f.sessions_resumed)
    }

    pub fn print(&self) {
        self.run.print();
        let f = &self.failover;
        let secs = |v: Option<f64>| v.map_or_else(|| "never".to_owned(), |v| format!("{v:.2}s"));
        println!(
            "failover: SIG{} to PID {} at {:.1}s ({}); stopped answering: {}",
            f.signal,
            f.killed_pid,
            f.kill_at_s,
            f.killed_url.as_deref().unwrap_or("URL not read from /proc"),
            if f.stopped_answering.is_empty() {
                "none".to_owned()
            } else {
                f.stopped_answering.join(", ")
            }
        );
        if let Some(error) = &f.kill_error {
            println!("  NOT KILLED: {error}");
        }
        if let Some(ms) = f.process_gone_after_ms {
            println!("  process gone {ms:.0} ms after the signal");
        }
        if let Some(cmd) = &f.restart_cmd {
            println!(
                "  restart `{cmd}`: ready again after {} (exit status {})",
                secs(f.node_ready_again_after_s),
                f.restart_exit_status
                    .as_deref()
                    .unwrap_or("n/a: still running")
            );
        }
        println!(
            "  sessions lost {}, reconnected and resumed {} (all resumed after {})",
            f.sessions_lost,
            f.sessions_resumed,
            secs(f.sessions_resumed_after_s)
        );
        println!("{}", f.reconnect.line("lost -> resumed"));
        println!(
            "  message p99 before the kill {}, bound {:.1} ms: back under it after {}",
            f.baseline_p99_ms
                .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} ms")),
            f.p99_bound_ms,
            secs(f.latency_back_after_s)
        );
        println!(
            "  RECOVERY: {} (sessions resumed and latency back; 1 s resolution)",
            secs(f.recovery_s)
        );
        println!(
            "  commands retried {}, gap resumes {}",
            f.commands_retried, f.gap_resumes
        );
        let errors: Vec<String> = f
            .errors_by_code
            .iter()
            .map(|(code, n)| format!("{code}={n}"))
            .collect();
        println!(
            "  errors by code: {}",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        );
        println!("  windows from the kill (by send time): from_s messages p99_ms max_ms");
        for w in &f.windows {
            println!(
                "    {:>4} {:>8} {:>9.2} {:>9.2}",
                w.from_s, w.messages, w.p99_ms, w.max_ms
            );
        }
        println!(
            "correctness failures (lost, undelivered, duplicated, out-of-order, double offers, sessions not resumed): {}",
            self.correctness_failures()
        );
    }
}

/// Message latency of the messages scheduled in `[from_s, from_s + 1)`
/// seconds after the kill.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencyWindow {
    pub from_s: i64,
    pub messages: u64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank p99 (sorts `values`).
pub fn p99(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Cuts `(send time from the kill in s, latency in ms)` samples into
/// one-second windows `first..=last` (window `k` holds `[k, k + 1)`).
pub fn latency_windows(samples: &[(f64, f64)], first: i64, last: i64) -> Vec<LatencyWindow> {
    let mut buckets: BTreeMap<i64, Vec<f64>> = (first..=last).map(|k| (k, Vec::new())).collect();
    for &(at, latency) in samples {
        let k = at.floor() as i64;
        if let Some(bucket) = buckets.get_mut(&k) {
            bucket.push(latency);
        }
    }
    buckets
        .into_iter()
        .map(|(from_s, mut values)| LatencyWindow {
            from_s,
            messages: values.len() as u64,
            max_ms: values.iter().copied().fold(0.0, f64::max),
            p99_ms: p99(&mut values).unwrap_or(0.0),
        })
        .collect()
}

/// The recovery bound: the one given, or the larger of 15 ms and twice the
/// p99 before the kill.
pub fn recovery_bound(given: Option<f64>, baseline_p99_ms: Option<f64>) -> f64 {
    given.unwrap_or_else(|| baseline_p99_ms.map_or(MIN_BOUND_MS, |b| (2.0 * b).max(MIN_BOUND_MS)))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recovery {
    pub latency_back_after_s: Option<f64>,
    pub recovery_s: Option<f64>,
}

/// Recovery from the kill: the first window from the kill on with at least
/// `min_messages` deliveries and p99 at or under `bound_ms`, and every lost
/// session resumed (`sessions_resumed_after_s`, `None`: some never did).
pub fn recovery(
    windows: &[LatencyWindow],
    bound_ms: f64,
    min_messages: u64,
    sessions_resumed_after_s: Option<f64>,
) -> Recovery {
    let latency_back_after_s = windows
        .iter()
        .filter(|w| w.from_s >= 0 && w.messages >= min_messages)
        .find(|w| w.p99_ms <= bound_ms)
        .map(|w| w.from_s as f64);
    let recovery_s = match (latency_back_after_s, sessions_resumed_after_s) {
        (Some(latency), Some(sessions)) => Some(latency.max(sessions)),
        _ => None,
    };
    Recovery {
        latency_back_after_s,
        recovery_s,
    }
}

/// When every lost session was back, from the kill: 0 when none was lost,
/// `None` when some never resumed.
pub fn sessions_resumed_after(
    lost: u64,
    resumed: u64,
    killed_at: Instant,
    last_resumed: Option<Instant>,
) -> Option<f64> {
    if lost == 0 {
        return Some(0.0);
    }
    if resumed < lost {
        return None;
    }
    last_resumed.map(|at| at.saturating_duration_since(killed_at).as_secs_f64())
}

/// Ports in LISTEN state among `inodes`, from a `/proc/net/tcp` (or
/// `tcp6`) table.
pub fn listening_ports(table: &str, inodes: &HashSet<u64>) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            if *state != "0A" || !inodes.contains(&inode) {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

/// The sockets `pid` holds (inodes of its `socket:[n]` descriptors).
fn socket_inodes(pid: u32) -> std::io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// Which target `pid` serves: `Ok(None)` if `/proc` cannot tell, an error
/// if it listens on none of them.
fn node_of_pid(pid: u32, nodes: &[Node]) -> anyhow::Result<Option<usize>> {
    let Ok(inodes) = socket_inodes(pid) else {
        return Ok(None);
    };
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            ports.extend(listening_ports(&text, &inodes));
        }
    }
    if ports.is_empty() {
        return Ok(None);
    }
    match nodes.iter().position(|n| ports.contains(&n.addr.port())) {
        Some(index) => Ok(Some(index)),
        None => bail!(
            "PID {pid} listens on port(s) {ports:?}, none of the --url targets: it is not one of the nodes"
        ),
    }
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

async fn answers(node: &Node, path: &str) -> bool {
    node.http
        .get(format!("{}{path}", node.base))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

struct KillPlan {
    pid: u32,
    signal: KillSignal,
    kill_at: Duration,
    restart_cmd: Option<String>,
    restart_delay: Duration,
    /// The target the PID listens on, when `/proc` told.
    node: Option<usize>,
    quiet: bool,
}

#[derive(Default)]
struct KillOutcome {
    killed_at: Option<Instant>,
    error: Option<String>,
    gone_after: Option<Duration>,
    stopped_answering: Vec<usize>,
    ready_after: Option<Duration>,
    restart_exit_status: Option<String>,
}

/// Kills the node at `kill_at` from now, watches it go, and restarts it.
async fn kill_and_restart(shared: Arc<Shared>, plan: KillPlan) -> KillOutcome {
    let mut outcome = KillOutcome::default();
    tokio::time::sleep(plan.kill_at).await;
    if !plan.quiet {
        eprintln!("failover: SIG{} to PID {}", plan.signal.name(), plan.pid);
    }
    let killed_at = Instant::now();
    let status = tokio::process::Command::new("kill")
        .args(["-s", plan.signal.name(), &plan.pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .await;
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            outcome.error = Some(format!(
                "kill -s {} {}: {status}",
                plan.signal.name(),
                plan.pid
            ));
            return outcome;
        }
        Err(error) => {
            outcome.error = Some(format!("cannot run kill: {error}"));
            return outcome;
        }
    }
    outcome.killed_at = Some(killed_at);
    if let Some(node) = plan.node {
        shared.mark_down(node, true);
    }
    while !is_gone(plan.pid) && killed_at.elapsed() < GONE_WITHIN {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if is_gone(plan.pid) {
        outcome.gone_after = Some(killed_at.elapsed());
    }
    for (index, node) in shared.nodes.iter().enumerate() {
        if !answers(node, "/healthz").await {
            outcome.stopped_answering.push(index);
        }
    }
    let node = plan
        .node
        .or_else(|| outcome.stopped_answering.first().copied());
    if plan.node.is_none() {
        for &index in &outcome.stopped_answering {
            shared.mark_down(index, true);
        }
    }
    let Some(cmd) = plan.restart_cmd else {
        return outcome;
    };
    tokio::time::sleep(plan.restart_delay).await;
    if !plan.quiet {
        eprintln!("failover: restarting with `{cmd}`");
    }
    let child = tokio::process::Command::new("sh")
        .args(["-c", &cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            outcome.restart_exit_status = Some(format!("not started: {error}"));
            return outcome;
        }
    };
    let Some(node) = node else {
        return outcome;
    };
    let ready_by = Instant::now() + READY_WITHIN;
    while Instant::now() < ready_by {
        if outcome.restart_exit_status.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                outcome.restart_exit_status = Some(status.to_string());
            }
        }
        if answers(&shared.nodes[node], "/readyz").await {
            outcome.ready_after = Some(killed_at.elapsed());
            shared.mark_down(node, false);
            if !plan.quiet {
                eprintln!(
                    "failover: {} ready again {:.2}s after the kill",
                    shared.nodes[node].base,
                    killed_at.elapsed().as_secs_f64()
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Ok(Some(status)) = child.try_wait() {
        outcome.restart_exit_status = Some(status.to_string());
    }
    outcome
}

pub async fn failover(args: FailoverArgs) -> anyhow::Result<FailoverReport> {
    let steady = &args.steady;
    if steady.target.urls.len() < 2 {
        bail!(
            "failover needs at least two --url nodes: clients of the killed one move to the others"
        );
    }
    if args.kill_at >= steady.duration {
        bail!(
            "--kill-at ({:?}) must fall inside --duration ({:?})",
            args.kill_at,
            steady.duration
        );
    }
    if is_gone(args.kill_pid) {
        bail!("no process with PID {} (--kill-pid)", args.kill_pid);
    }
    let workload = steady.workload.workload();
    let shared = Shared::new_resilient(
        &steady.target.urls,
        &steady.target.source_addrs,
        steady.target.codec.into(),
        steady.agents.queue.clone(),
        workload,
        steady.agents.agents,
        Failover::new(
            steady.target.urls.len(),
            args.reconnect_timeout,
            args.resume_unlisted,
        ),
    )?;
    let node = node_of_pid(args.kill_pid, &shared.nodes).context("--kill-pid")?;
    shared.metrics.keep_samples();
    let plan = KillPlan {
        pid: args.kill_pid,
        signal: args.kill_signal,
        kill_at: args.kill_at,
        restart_cmd: args.restart_cmd.clone(),
        restart_delay: args.restart_delay,
        node,
        quiet: steady.target.quiet,
    };
    let (run, outcome) = scenario::steady_with(
        args.steady.clone(),
        shared.clone(),
        "failover",
        kill_and_restart(shared.clone(), plan),
    )
    .await?;
    let metrics = &shared.metrics;
    let counters = &run.result.counters;
    let mut section = FailoverSection {
        killed_pid: args.kill_pid,
        signal: args.kill_signal.name().to_owned(),
        kill_at_s: args.kill_at.as_secs_f64(),
        killed_url: node.map(|n| shared.nodes[n].base.clone()),
        stopped_answering: outcome
            .stopped_answering
            .iter()
            .map(|&n| shared.nodes[n].base.clone())
            .collect(),
        kill_error: outcome.error.clone(),
        process_gone_after_ms: outcome.gone_after.map(|d| d.as_secs_f64() * 1000.0),
        restart_cmd: args.restart_cmd.clone(),
        restart_exit_status: outcome.restart_exit_status.clone(),
        node_ready_again_after_s: outcome.ready_after.map(|d| d.as_secs_f64()),
        sessions_lost: counters.sessions_lost,
        sessions_resumed: counters.sessions_resumed,
        reconnect: metrics.reconnect.summary(),
        commands_retried: counters.commands_retried,
        gap_resumes: counters.gap_resumes,
        errors_by_code: by_code(&run.result.errors),
        ..FailoverSection::default()
    };
    let samples = metrics.take_samples();
    let Some(killed_at) = outcome.killed_at else {
        section.p99_bound_ms = recovery_bound(args.recovery_p99_ms, None);
        return Ok(FailoverReport {
            run,
            failover: section,
        });
    };
    let offset = |at: Instant| {
        if at >= killed_at {
            at.duration_since(killed_at).as_secs_f64()
        } else {
            -killed_at.duration_since(at).as_secs_f64()
        }
    };
    let samples: Vec<(f64, f64)> = samples
        .iter()
        .map(|(scheduled, latency)| (offset(*scheduled), latency.as_secs_f64() * 1000.0))
        .collect();
    let mut before: Vec<f64> = samples
        .iter()
        .filter(|(at, _)| *at < 0.0)
        .map(|(_, latency)| *latency)
        .collect();
    section.baseline_p99_ms = p99(&mut before);
    section.p99_bound_ms = recovery_bound(args.recovery_p99_ms, section.baseline_p99_ms);
    let last = samples
        .iter()
        .map(|(at, _)| at.floor() as i64)
        .max()
        .unwrap_or(0);
    section.windows = latency_windows(&samples, -WINDOWS_BEFORE, last.max(0));
    section.sessions_resumed_after_s = sessions_resumed_after(
        counters.sessions_lost,
        counters.sessions_resumed,
        killed_at,
        metrics.last_resumed(),
    );
    let recovered = recovery(
        &section.windows,
        section.p99_bound_ms,
        MIN_WINDOW_MESSAGES,
        section.sessions_resumed_after_s,
    );
    section.latency_back_after_s = recovered.latency_back_after_s;
    section.recovery_s = recovered.recovery_s;
    Ok(FailoverReport {
        run,
        failover: section,
    })
}

/// `code/command` error keys summed by code.
fn by_code(errors: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut by_code = BTreeMap::new();
    for (key, count) in errors {
        let code = key.split('/').next().unwrap_or(key);
        *by_code.entry(code.to_owned()).or_default() += count;
    }
    by_code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from_s: i64, messages: u64, p99_ms: f64) -> LatencyWindow {
        LatencyWindow {
            from_s,
            messages,
            p99_ms,
            max_ms: p99_ms,
        }
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        values.reverse();
        assert_eq!(p99(&mut values), Some(99.0));
        assert_eq!(p99(&mut [7.0]), Some(7.0));
        assert_eq!(p99(&mut []), None);
    }

    #[test]
    fn samples_fall_in_the_window_of_their_send_time() {
        let samples = [
            (-0.5, 1.0),
            (0.0, 2.0),
            (0.99, 3.0),
            (1.0, 400.0),
            (9.0, 1.0),
        ];
        let windows = latency_windows(&samples, -1, 2);
        assert_eq!(
            windows,
            vec![
                window(-1, 1, 1.0),
                LatencyWindow {
                    from_s: 0,
                    messages: 2,
                    p99_ms: 3.0,
                    max_ms: 3.0
                },
                window(1, 1, 400.0),
                LatencyWindow {
                    from_s: 2,
                    messages: 0,
                    p99_ms: 0.0,
                    max_ms: 0.0
                },
            ]
        );
    }

    #[test]
    fn recovery_waits_for_latency_and_sessions_both() {
        let windows = [
            window(-1, 50, 3.0),
            window(0, 50, 900.0),
            window(1, 50, 400.0),
            window(2, 3, 2.0), // too few messages to count
            window(3, 50, 4.0),
            window(4, 50, 80.0), // a later blip does not undo it
        ];
        let r = recovery(&windows, 15.0, 10, Some(1.4));
        assert_eq!(r.latency_back_after_s, Some(3.0));
        assert_eq!(r.recovery_s, Some(3.0));
        // Sessions slower than latency: they decide.
        assert_eq!(
            recovery(&windows, 15.0, 10, Some(4.2)).recovery_s,
            Some(4.2)
        );
        // A session never resumed: not recovered.
        let r = recovery(&windows, 15.0, 10, None);
        assert_eq!(r.latency_back_after_s, Some(3.0));
        assert_eq!(r.recovery_s, None);
        // Latency never back under the bound: not recovered.
        assert_eq!(recovery(&windows, 1.0, 10, Some(0.5)).recovery_s, None);
    }

    #[test]
    fn the_window_before_the_kill_does_not_count() {
        let windows = [
            window(-2, 50, 3.0),
            window(-1, 50, 3.0),
            window(0, 50, 50.0),
        ];
        assert_eq!(recovery(&windows, 15.0, 10, Some(0.0)).recovery_s, None);
    }

    #[test]
    fn sessions_resumed_needs_every_lost_session() {
        let kill = Instant::now();
        let later = kill + Duration::from_millis(2_500);
        assert_eq!(sessions_resumed_after(0, 0, kill, None), Some(0.0));
        assert_eq!(sessions_resumed_after(4, 3, kill, Some(later)), None);
        assert_eq!(sessions_resumed_after(4, 4, kill, Some(later)), Some(2.5));
    }

    #[test]
    fn the_bound_defaults_to_twice_the_baseline_but_at_least_15_ms() {
        assert_eq!(recovery_bound(None, None), 15.0);
        assert_eq!(recovery_bound(None, Some(3.0)), 15.0);
        assert_eq!(recovery_bound(None, Some(12.0)), 24.0);
        assert_eq!(recovery_bound(Some(5.0), Some(12.0)), 5.0);
    }

    #[test]
    fn listening_ports_come_from_the_pids_own_sockets() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 20 4 30 10 -1\n";
        let mine: HashSet<u64> = [111, 333].into_iter().collect();
        // 222 listens but is another process's; 333 is a connection.
        assert_eq!(listening_ports(table, &mine), vec![8080]);
    }

    #[test]
    fn errors_are_summed_by_code() {
        let errors: BTreeMap<String, u64> = [
            ("unavailable/send".to_owned(), 3),
            ("unavailable/accept".to_owned(), 2),
            ("http_connect/start_chat".to_owned(), 1),
        ]
        .into_iter()
        .collect();
        let by = by_code(&errors);
        assert_eq!(by.get("unavailable"), Some(&5));
        assert_eq!(by.get("http_connect"), Some(&1));
    }
}
