//! `connections` and `reconnect-storm`: many idle conversations on one node.
//!
//! The parent process runs the agents (they accept every offer and hold the
//! chats) and measures the node from `/proc/<pid>`. The customers live in
//! child processes (`customer-shard`), each under the per-process open-file
//! limit and each on its own 127.0.0.x source address. Parent and children
//! talk in lines over stdin/stdout:
//!
//! ```text
//! child  -> READY {"active": n, "failed": n}      every conversation active
//! parent -> DROP                                   close every customer socket
//! child  -> DROPPED
//! parent -> GO                                     (agents wrote into every chat meanwhile)
//! child  -> RECOVERED {...}                        reconnected, resumed, nothing missing
//! parent -> END                                    customers leave
//! child  -> DONE
//! ```

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::codec::Codec;
use switchboard_proto::model::ConversationState;
use switchboard_proto::ServerFrame;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::{broadcast, mpsc};

use crate::cli::{ConnectionsArgs, ShardArgs};
use crate::client::{self, Incoming, Node, WsSink, WsSource};
use crate::run::{AgentPool, Agents};
use crate::scenario::{command_line, Machine};
use crate::shared::{Shared, Workload};
use crate::stats::{cpu_percent, proc_sample, Hist, Percentiles};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShardReady {
    pub active: u64,
    pub failed: u64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShardRecovered {
    pub reconnected: u64,
    pub failed: u64,
    /// Customers that ended without every message (gap or no storm message).
    pub lost: u64,
    /// From GO to the last customer complete, in this shard.
    pub seconds_to_full_recovery: f64,
    pub recovery: Percentiles,
}

#[derive(Debug, Default, Serialize)]
pub struct StormReport {
    pub customers: u64,
    pub reconnected: u64,
    pub failed: u64,
    pub lost: u64,
    pub seconds_to_full_recovery: f64,
    /// Per-customer time from GO to resumed-and-complete (worst shard's
    /// percentiles; shards run in parallel).
    pub recovery_worst_shard: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct ConnectionsReport {
    pub scenario: &'static str,
    pub command: String,
    pub machine: Machine,
    pub agents: usize,
    pub processes: usize,
    pub conversations_requested: u64,
    pub conversations_active: u64,
    pub build_up_seconds: f64,
    pub server_pid: Option<u32>,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub server_kib_per_conversation: Option<f64>,
    pub idle_window_seconds: f64,
    pub server_idle_cpu_percent_of_core: Option<f64>,
    pub storm: Option<StormReport>,
    pub correctness_failures: u64,
}

impl ConnectionsReport {
    pub fn print(&self) {
        println!("== switchboard-loadtest {} ==", self.scenario);
        println!("{}", self.machine.line());
        println!(
            "conversations: {} of {} active (one customer socket each, {} child processes, {} agents), built up in {:.1}s",
            self.conversations_active,
            self.conversations_requested,
            self.processes,
            self.agents,
            self.build_up_seconds
        );
        match (
            self.server_rss_before_kib,
            self.server_rss_after_kib,
            self.server_kib_per_conversation,
        ) {
            (Some(before), Some(after), Some(per)) => println!(
                "server memory: RSS {before} KiB -> {after} KiB = {per:.2} KiB per conversation"
            ),
            _ => println!("server memory: not measured (give --server-pid)"),
        }
        if let Some(cpu) = self.server_idle_cpu_percent_of_core {
            println!(
                "server CPU while idle: {cpu:.2}% of one core over {:.0}s",
                self.idle_window_seconds
            );
        }
        if let Some(storm) = &self.storm {
            println!(
                "reconnect storm: {} customers dropped at once; {} reconnected and resumed, {} failed, {} lost; full recovery in {:.2}s",
                storm.customers, storm.reconnected, storm.failed, storm.lost, storm.seconds_to_full_recovery
            );
            println!(
                "{}",
                storm.recovery_worst_shard.line("per-customer recovery")
            );
        }
        println!("correctness failures: {}", self.correctness_failures);
    }
}

struct ShardProcess {
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    child: tokio::process::Child,
}

impl ShardProcess {
    async fn expect(&mut self, word: &str, deadline: Instant) -> anyhow::Result<String> {
        loop {
            let line = tokio::time::timeout_at(deadline.into(), self.lines.next_line())
                .await
                .with_context(|| format!("no {word} from a customer shard in time"))??
                .with_context(|| format!("customer shard exited before {word}"))?;
            if let Some(rest) = line.strip_prefix(word) {
                return Ok(rest.trim().to_owned());
            }
        }
    }

    async fn say(&mut self, word: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{word}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }
}

pub async fn connections(args: ConnectionsArgs, storm: bool) -> anyhow::Result<ConnectionsReport> {
    let quiet = args.target.quiet;
    let workload = Workload {
        messages: 0,
        message_interval: Duration::from_secs(1),
        text_len: 20,
        think: Duration::ZERO,
        rona_share: 0.0,
        transfer_share: 0.0,
        conference_share: 0.0,
        patience: Duration::from_secs(600),
        agents_end: false,
    };
    let shared = Shared::new(
        &args.target.urls,
        &[],
        args.target.codec.into(),
        args.agents.queue.clone(),
        workload,
        args.agents.agents,
    )?;
    let agents = Agents::start(
        &shared,
        &AgentPool {
            count: args.agents.agents,
            prefix: args.agents.agent_prefix.clone(),
            max_chats: args.agents.agent_max_chats,
            login_concurrency: 1,
        },
    )
    .await?;
    let sample = |pid: Option<u32>| pid.and_then(|pid| proc_sample(pid).ok());
    let before = sample(args.target.server_pid);
    let processes = args.processes.max(1);
    let sources: Vec<IpAddr> = if args.target.source_addrs.is_empty() {
        (0..processes)
            .map(|i| IpAddr::from([127, 0, 0, (2 + i) as u8]))
            .collect()
    } else {
        args.target.source_addrs.clone()
    };
    let per_shard = args.conversations.div_ceil(processes as u64);
    let exe = std::env::current_exe()?;
    let mut shards = Vec::new();
    let started = Instant::now();
    for index in 0..processes {
        let first = per_shard * index as u64;
        let count = per_shard.min(args.conversations.saturating_sub(first));
        if count == 0 {
            break;
        }
        let source = sources[index % sources.len()];
        let mut child = Command::new(&exe)
            .arg("customer-shard")
            .arg("--url")
            .arg(args.target.urls.join(","))
            .arg("--codec")
            .arg(format!("{:?}", args.target.codec).to_lowercase())
            .arg("--source-addrs")
            .arg(source.to_string())
            .arg("--queue")
            .arg(&args.agents.queue)
            .arg("--count")
            .arg(count.to_string())
            .arg("--first")
            .arg(first.to_string())
            .arg("--rate")
            .arg((args.rate / processes as f64).to_string())
            .arg("--storm-timeout")
            .arg(format!("{}s", args.storm_timeout.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("shard stdin")?;
        let stdout = child.stdout.take().context("shard stdout")?;
        shards.push(ShardProcess {
            stdin,
            lines: BufReader::new(stdout).lines(),
            child,
        });
    }
    let build_deadline = Instant::now()
        + Duration::from_secs_f64(args.conversations as f64 / args.rate.max(1.0))
        + Duration::from_secs(120);
    let mut active = 0;
    for shard in &mut shards {
        let ready: ShardReady =
            serde_json::from_str(&shard.expect("READY", build_deadline).await?)?;
        active += ready.active;
    }
    let build_up_seconds = started.elapsed().as_secs_f64();
    if !quiet {
        eprintln!("{active} conversations active after {build_up_seconds:.1}s; settling, then measuring idle");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = sample(args.target.server_pid);
    let idle_start = sample(args.target.server_pid);
    let idle_started = Instant::now();
    tokio::time::sleep(args.idle.min(Duration::from_secs(600))).await;
    let idle_end = sample(args.target.server_pid);
    let idle_seconds = idle_started.elapsed().as_secs_f64();
    let idle_cpu = match (idle_start, idle_end) {
        (Some(a), Some(b)) => Some(cpu_percent(a, b, idle_seconds)),
        _ => None,
    };
    let mut storm_report = None;
    let mut failures = 0;
    if storm || args.storm {
        let deadline = Instant::now() + Duration::from_secs(30);
        for shard in &mut shards {
            shard.say("DROP").await?;
        }
        for shard in &mut shards {
            shard.expect("DROPPED", deadline).await?;
        }
        if !quiet {
            eprintln!("all customers dropped; agents write into every conversation, then customers reconnect");
        }
        agents.storm();
        tokio::time::sleep(Duration::from_millis(500)).await;
        for shard in &mut shards {
            shard.say("GO").await?;
        }
        let deadline = Instant::now() + args.storm_timeout + Duration::from_secs(30);
        let mut report = StormReport {
            customers: active,
            ..StormReport::default()
        };
        for shard in &mut shards {
            let recovered: ShardRecovered =
                serde_json::from_str(&shard.expect("RECOVERED", deadline).await?)?;
            report.reconnected += recovered.reconnected;
            report.failed += recovered.failed;
            report.lost += recovered.lost;
            report.seconds_to_full_recovery = report
                .seconds_to_full_recovery
                .max(recovered.seconds_to_full_recovery);
            if recovered.recovery.p99_ms >= report.recovery_worst_shard.p99_ms {
                report.recovery_worst_shard = recovered.recovery;
            }
        }
        failures += report.lost;
        storm_report = Some(report);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for shard in &mut shards {
        shard.say("END").await?;
    }
    for shard in &mut shards {
        let _ = shard.expect("DONE", deadline).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), shard.child.wait()).await;
    }
    agents.stop(Duration::from_secs(30)).await;
    let per_conversation = match (before, after) {
        (Some(b), Some(a)) if active > 0 => {
            Some((a.rss_kib as f64 - b.rss_kib as f64) / active as f64)
        }
        _ => None,
    };
    Ok(ConnectionsReport {
        scenario: if storm {
            "reconnect-storm"
        } else {
            "connections"
        },
        command: command_line(),
        machine: Machine::describe(),
        agents: args.agents.agents,
        processes: shards.len(),
        conversations_requested: args.conversations,
        conversations_active: active,
        build_up_seconds,
        server_pid: args.target.server_pid,
        server_rss_before_kib: before.map(|s| s.rss_kib),
        server_rss_after_kib: after.map(|s| s.rss_kib),
        server_kib_per_conversation: per_conversation,
        idle_window_seconds: idle_seconds,
        server_idle_cpu_percent_of_core: idle_cpu,
        storm: storm_report,
        correctness_failures: failures + shared.metrics.correctness_failures(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Drop,
    Go,
    End,
}

enum Report {
    Ready(bool),
    Dropped,
    Recovered(Option<Duration>),
    Done,
}

/// The hidden `customer-shard` subcommand: one child's customers.
pub async fn customer_shard(args: ShardArgs) -> anyhow::Result<()> {
    let codec: Codec = args.codec.into();
    let source = args.source_addrs.first().copied();
    let nodes: Vec<Node> = args
        .urls
        .iter()
        .map(|url| Node::new(url, source))
        .collect::<anyhow::Result<_>>()?;
    let (orders, _) = broadcast::channel::<Order>(8);
    let (reports_tx, mut reports) = mpsc::unbounded_channel::<Report>();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1.0));
    let mut tasks = tokio::task::JoinSet::new();
    let queue = Arc::new(args.queue.clone());
    let storm_timeout = args.storm_timeout;
    let spawner = {
        let orders = orders.clone();
        let reports_tx = reports_tx.clone();
        let nodes = nodes.clone();
        async move {
            let mut next = Instant::now();
            for offset in 0..args.count {
                tokio::time::sleep_until(next.into()).await;
                next += interval;
                let n = args.first + offset;
                let node = nodes[(n as usize) % nodes.len()].clone();
                tasks.spawn(idle_customer(
                    node,
                    codec,
                    source,
                    queue.clone(),
                    n,
                    orders.subscribe(),
                    reports_tx.clone(),
                    storm_timeout,
                ));
            }
            tasks
        }
    };
    let mut tasks = spawner.await;
    drop(reports_tx);
    let count = args.count;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let ready = collect_reports(
        &mut reports,
        count,
        Instant::now() + Duration::from_secs(120),
    )
    .await;
    let active = ready
        .iter()
        .filter(|r| matches!(r, Report::Ready(true)))
        .count() as u64;
    let line = serde_json::to_string(&ShardReady {
        active,
        failed: count - active,
        seconds: started.elapsed().as_secs_f64(),
    })?;
    stdout
        .write_all(format!("READY {line}\n").as_bytes())
        .await?;
    stdout.flush().await?;
    while let Some(line) = stdin.next_line().await? {
        match line.trim() {
            "DROP" => {
                let _ = orders.send(Order::Drop);
                let _ = collect_reports(
                    &mut reports,
                    active,
                    Instant::now() + Duration::from_secs(30),
                )
                .await;
                stdout.write_all(b"DROPPED\n").await?;
                stdout.flush().await?;
            }
            "GO" => {
                let go = Instant::now();
                let _ = orders.send(Order::Go);
                let got = collect_reports(
                    &mut reports,
                    active,
                    go + storm_timeout + Duration::from_secs(5),
                )
                .await;
                let hist = Hist::default();
                let mut recovered = 0;
                let mut last = Duration::ZERO;
                for report in &got {
                    if let Report::Recovered(Some(took)) = report {
                        recovered += 1;
                        hist.record(*took);
                        last = last.max(*took);
                    }
                }
                let line = serde_json::to_string(&ShardRecovered {
                    reconnected: recovered,
                    failed: active - recovered,
                    // A customer that reconnected but never had every message
                    // cannot be told apart from one that failed here: both
                    // count as lost.
                    lost: active - recovered,
                    seconds_to_full_recovery: last.as_secs_f64(),
                    recovery: hist.summary(),
                })?;
                stdout
                    .write_all(format!("RECOVERED {line}\n").as_bytes())
                    .await?;
                stdout.flush().await?;
            }
            "END" => {
                let _ = orders.send(Order::End);
                let _ = collect_reports(
                    &mut reports,
                    active,
                    Instant::now() + Duration::from_secs(60),
                )
                .await;
                stdout.write_all(b"DONE\n").await?;
                stdout.flush().await?;
                break;
            }
            _ => {}
        }
    }
    tasks.abort_all();
    Ok(())
}

async fn collect_reports(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    want: u64,
    until: Instant,
) -> Vec<Report> {
    let mut got = Vec::new();
    while (got.len() as u64) < want {
        match tokio::time::timeout_at(until.into(), reports.recv()).await {
            Ok(Some(report)) => got.push(report),
            _ => break,
        }
    }
    got
}

/// One customer's view of its conversation.
struct Seen {
    seqs: BTreeSet<u64>,
    storm_seq: Option<u64>,
    last_seq: u64,
}

impl Seen {
    fn complete(&self) -> bool {
        match self.storm_seq {
            Some(upto) => self.seqs.range(1..=upto).count() as u64 == upto,
            None => false,
        }
    }

    fn contiguous(&self) -> u64 {
        let mut expected = 1;
        for seq in &self.seqs {
            if *seq != expected {
                break;
            }
            expected += 1;
        }
        expected - 1
    }
}

#[allow(clippy::too_many_arguments)]
async fn idle_customer(
    node: Node,
    codec: Codec,
    source: Option<IpAddr>,
    queue: Arc<String>,
    n: u64,
    mut orders: broadcast::Receiver<Order>,
    reports: mpsc::UnboundedSender<Report>,
    storm_timeout: Duration,
) {
    let mut seen = Seen {
        seqs: BTreeSet::from([1]),
        storm_seq: None,
        last_seq: 1,
    };
    let setup = async {
        let started = node
            .start_chat(&queue, &format!("c{n}"), "hello, anyone there?")
            .await
            .map_err(|code| anyhow::anyhow!("start chat: {code}"))?;
        let (sink, source_stream) =
            client::connect_ws(&node, &started.token, codec, source).await?;
        anyhow::Ok((started.token, sink, source_stream))
    };
    let Ok((token, mut sink, mut stream)) = setup.await else {
        let _ = reports.send(Report::Ready(false));
        return;
    };
    let active = wait_active(
        &mut sink,
        &mut stream,
        codec,
        &mut seen,
        Duration::from_secs(90),
    )
    .await;
    let _ = reports.send(Report::Ready(active));
    if !active {
        return;
    }
    // Idle: keep reading (pings are answered while reading) until told.
    let order = loop {
        tokio::select! {
            message = stream.next() => match client::decode(codec, message) {
                Incoming::Frame(frame) => note(&mut seen, &frame),
                Incoming::Closed => return,
                _ => {}
            },
            order = orders.recv() => match order { Ok(order) => break order, Err(_) => return },
        }
    };
    if order == Order::Drop {
        drop(sink);
        drop(stream);
        let _ = reports.send(Report::Dropped);
        if orders.recv().await != Ok(Order::Go) {
            return;
        }
        let go = Instant::now();
        let recovered = tokio::time::timeout(storm_timeout, async {
            let (mut sink, mut stream) = loop {
                match client::connect_ws(&node, &token, codec, source).await {
                    Ok(pair) => break pair,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            let after_seq = seen.contiguous();
            let command =
                json!({"type": "resume", "request_id": "storm-resume", "after_seq": after_seq});
            if !client::send(&mut sink, codec, &command).await {
                return None;
            }
            while !seen.complete() {
                match client::decode(codec, stream.next().await) {
                    Incoming::Frame(frame) => note(&mut seen, &frame),
                    Incoming::Closed => return None,
                    _ => {}
                }
            }
            Some((sink, stream))
        })
        .await;
        match recovered {
            Ok(Some((new_sink, new_stream))) => {
                let _ = reports.send(Report::Recovered(Some(go.elapsed())));
                sink = new_sink;
                stream = new_stream;
            }
            _ => {
                let _ = reports.send(Report::Recovered(None));
                return;
            }
        }
        loop {
            tokio::select! {
                message = stream.next() => match client::decode(codec, message) {
                    Incoming::Frame(frame) => note(&mut seen, &frame),
                    Incoming::Closed => return,
                    _ => {}
                },
                order = orders.recv() => match order {
                    Ok(Order::End) => break,
                    Ok(_) => {}
                    Err(_) => return,
                },
            }
        }
    }
    // Leave: end the chat, wait (bounded) for the ack.
    let _ = client::send(
        &mut sink,
        codec,
        &json!({"type": "end", "request_id": "bye"}),
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match client::decode(codec, stream.next().await) {
                Incoming::Frame(frame) => {
                    let answered = match &*frame {
                        ServerFrame::Ack(ack) => ack.request_id == "bye",
                        ServerFrame::Error(error) => error.request_id.as_deref() == Some("bye"),
                        _ => false,
                    };
                    if answered {
                        break;
                    }
                }
                Incoming::Closed => break,
                _ => {}
            }
        }
    })
    .await;
    let _ = reports.send(Report::Done);
}

fn note(seen: &mut Seen, frame: &ServerFrame) {
    match frame {
        ServerFrame::Message(message) => {
            seen.seqs.insert(message.seq);
            seen.last_seq = seen.last_seq.max(message.seq);
            if message
                .client_msg_id
                .as_ref()
                .is_some_and(|id| id.as_str().starts_with("storm-"))
            {
                seen.storm_seq = Some(message.seq);
            }
        }
        ServerFrame::Conversation(summary) => seen.last_seq = seen.last_seq.max(summary.last_seq),
        _ => {}
    }
}

/// Waits for `hello`, fills any gap with `resume`, then waits until an agent
/// has accepted (the conversation is live).
async fn wait_active(
    sink: &mut WsSink,
    stream: &mut WsSource,
    codec: Codec,
    seen: &mut Seen,
    within: Duration,
) -> bool {
    let wait = async {
        loop {
            let frame = match client::decode(codec, stream.next().await) {
                Incoming::Frame(frame) => frame,
                Incoming::Closed => return false,
                _ => continue,
            };
            note(seen, &frame);
            let state = match &*frame {
                ServerFrame::Hello(hello) => {
                    let Some(summary) = hello.conversations.first() else {
                        continue;
                    };
                    if summary.last_seq > 1 {
                        let command =
                            json!({"type": "resume", "request_id": "hello-resume", "after_seq": 1});
                        if !client::send(sink, codec, &command).await {
                            return false;
                        }
                    }
                    summary.state
                }
                ServerFrame::Conversation(summary) => summary.state,
                _ => continue,
            };
            match state {
                ConversationState::Active
                | ConversationState::Conference
                | ConversationState::ConferenceRequested => return true,
                ConversationState::Queued | ConversationState::Offered => {}
                _ => return false,
            }
        }
    };
    tokio::time::timeout(within, wait).await.unwrap_or(false)
}

/// Bails unless the shard binary can be found (it is this executable).
pub fn check_shard_binary() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    if !exe.exists() {
        bail!(
            "cannot find this executable ({}) to start customer shards",
            exe.display()
        );
    }
    Ok(())
}
