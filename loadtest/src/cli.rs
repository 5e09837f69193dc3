//! Command-line interface: one subcommand per scenario, plus the helpers
//! (`gen-config`, `echo-server`, and the hidden `customer-shard` the
//! `connections` scenario starts in child processes).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::time::Duration;
use switchboard_proto::codec::Codec;

use crate::shared::Workload;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-loadtest",
    version,
    about = "The bundled load harness for Switchboard: open-model load, HDR latency, correctness counters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// A fixed chat arrival rate and message rate for a duration.
    Steady(SteadyArgs),
    /// Step the arrival rate up until p99 or errors break a bound; reports the
    /// highest sustainable rate.
    Ramp(RampArgs),
    /// Hold many idle conversations open (customers in child processes, over
    /// several 127.0.0.x source addresses); server memory per conversation
    /// and idle CPU.
    Connections(ConnectionsArgs),
    /// `connections`, then drop every customer at once, reconnect and resume
    /// with `after_seq`; time to full recovery, nothing lost.
    ReconnectStorm(ConnectionsArgs),
    /// `steady` over several nodes; mid-run, kill the node with `--kill-pid`
    /// (and optionally start it again): clients reconnect elsewhere and
    /// resume; time to recovery, nothing lost or doubled.
    Failover(FailoverArgs),
    /// The floors alone: WebSocket echo through the node's server stack, and a
    /// Redis PUBLISH round trip.
    Floor(FloorArgs),
    /// Serve a plain WebSocket echo at /ws (the floor's server).
    EchoServer(EchoArgs),
    /// Print a node config (TOML) with the load-test queue and agents.
    GenConfig(GenConfigArgs),
    /// Fill a database with closed conversations and transcripts (for
    /// `search`), through the engine's own write path.
    SeedHistory(SeedArgs),
    /// Measure `GET /api/v1/conversations?q=` and a whole export against a
    /// node on a seeded database.
    Search(SearchArgs),
    /// Fill a database with the event histories of closed conversations and
    /// agents' shifts over the last days (for reports), through the
    /// engine's own write path, in time order.
    SeedEvents(SeedEventsArgs),
    /// Time `GET /api/v1/reports/queues|agents` over the seeded days
    /// against a node on a database filled by `seed-events`.
    ReportTiming(ReportTimingArgs),
    /// `steady` with a webhook for every event on a loopback receiver:
    /// delivery lag and rate; with `--outage`, the catch-up rate after the
    /// receiver was down that long.
    Webhooks(WebhooksArgs),
    /// `steady` at the sustainable `--rate`, then at `--factor` times it
    /// for `--overload`, then at `--rate` again: admitted sends' latency,
    /// how fast shed ones are answered, the time back to normal, and
    /// acknowledged messages lost.
    Overload(OverloadArgs),
    /// Internal: the customers of one `connections` child process.
    #[command(hide = true)]
    CustomerShard(ShardArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CodecArg {
    Json,
    Msgpack,
}

impl From<CodecArg> for Codec {
    fn from(value: CodecArg) -> Codec {
        match value {
            CodecArg::Json => Codec::Json,
            CodecArg::Msgpack => Codec::MsgPack,
        }
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| error.to_string())
}

#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Node base URL(s), e.g. http://127.0.0.1:8080 (repeat or comma-separate
    /// for a cluster: customers and agents are spread over them). Loopback only.
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    /// WebSocket subprotocol.
    #[arg(long, value_enum, default_value = "json")]
    pub codec: CodecArg,
    /// Source addresses for client sockets and REST calls (bind before
    /// connect), e.g. 127.0.0.2,127.0.0.3.
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// Machine-readable report on stdout instead of the readable summary.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// PID of the node: its CPU over each measured window is reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// Simulated agents (usernames <prefix>1..<prefix>N, see gen-config).
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    #[arg(long, default_value = "lt")]
    pub agent_prefix: String,
    /// The agents' max_chats in the node config.
    #[arg(long, default_value_t = 10)]
    pub agent_max_chats: i32,
    /// Queue the customers start chats in.
    #[arg(long, default_value = "lt")]
    pub queue: String,
    /// Agent logins in flight at once. Each runs argon2 on the node (about
    /// 19 MiB for tens of milliseconds, and glibc keeps that memory per
    /// thread), so `connections` uses 1 to keep the memory baseline clean.
    #[arg(long, default_value_t = 4)]
    pub login_concurrency: usize,
}

#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Customer messages per chat after the first (each gets an agent reply).
    #[arg(long, default_value_t = 5)]
    pub messages: u32,
    /// Interval between a customer's messages (from a fixed schedule).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub message_interval: Duration,
    /// Characters per message text.
    #[arg(long, default_value_t = 40)]
    pub text_len: usize,
    /// Agent think time before accepting an offer.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub think: Duration,
    /// Share of new offers agents let expire (RONA).
    #[arg(long, default_value_t = 0.0)]
    pub rona_share: f64,
    /// Share of accepted chats transferred (to the queue) after the first reply.
    #[arg(long, default_value_t = 0.0)]
    pub transfer_share: f64,
    /// Share of accepted chats the owner conferences another agent into.
    #[arg(long, default_value_t = 0.0)]
    pub conference_share: f64,
    /// How long a customer waits for an agent before leaving.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub patience: Duration,
}

impl WorkloadArgs {
    pub fn workload(&self) -> Workload {
        Workload {
            messages: self.messages,
            message_interval: self.message_interval,
            text_len: self.text_len,
            think: self.think,
            rona_share: self.rona_share.clamp(0.0, 1.0),
            transfer_share: self.transfer_share.clamp(0.0, 1.0),
            conference_share: self.conference_share.clamp(0.0, 1.0),
            patience: self.patience,
            agents_end: true,
        }
    }

    /// Messages per second a chat rate produces (customer + agent replies).
    pub fn messages_per_second(&self, chat_rate: f64) -> f64 {
        chat_rate * f64::from(self.messages) * 2.0
    }
}

#[derive(Args, Debug, Clone)]
pub struct FloorOptions {
    /// Also measure the floors first, at the run's expected message rate.
    #[arg(long)]
    pub floor: bool,
    /// How long each floor runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub floor_duration: Duration,
    /// Echo connections (the message rate is spread over them).
    #[arg(long, default_value_t = 100)]
    pub floor_connections: usize,
    /// HTTP workers of the echo server (the node uses one per core).
    #[arg(long, default_value_t = 2)]
    pub floor_workers: usize,
}

#[derive(Args, Debug, Clone)]
pub struct WebhooksArgs {
    #[command(flatten)]
    pub steady: SteadyArgs,
    /// After the measured run, the receiver is down this long while the
    /// load goes on, then comes back: the catch-up is measured. 0: no
    /// outage.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub outage: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct OverloadArgs {
    /// Everything `steady` takes; `--rate` is the sustainable rate and
    /// `--duration` is set from the phases.
    #[command(flatten)]
    pub steady: SteadyArgs,
    /// The calm phase first (its second half is the baseline).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub before: Duration,
    /// How long arrivals run at `--factor` times `--rate`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub overload: Duration,
    /// The calm phase after: how fast the node is back to normal.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub after: Duration,
    #[arg(long, default_value_t = 2.0)]
    pub factor: f64,
}

#[derive(Args, Debug, Clone)]
pub struct SteadyArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub agents: AgentArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub floor: FloorOptions,
    /// Chat arrival rate (chats per second, Poisson).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// How long customers arrive (at most 1 h).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After arrivals stop, how long chats may take to finish.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Upper bound on chats started.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_total_chats: u64,
    /// Set by `overload`, not on the command line.
    #[arg(skip)]
    pub surge: Option<crate::run::Surge>,
}

#[derive(Args, Debug, Clone)]
pub struct FailoverArgs {
    /// Everything `steady` takes (give several `--url`s; run longer than
    /// `--kill-at`).
    #[command(flatten)]
    pub steady: SteadyArgs,
    /// PID of the node to kill: one of the `--url` targets. The harness
    /// signals this PID and no other process.
    #[arg(long)]
    pub kill_pid: u32,
    /// When to kill it, from the start of arrivals.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub kill_at: Duration,
    /// `kill`: SIGKILL, a crash; `term`: SIGTERM, the node drains.
    #[arg(long, value_enum, default_value = "kill")]
    pub kill_signal: KillSignal,
    /// Shell command (`sh -c`) run after the kill to start the node again,
    /// e.g. a script; its output is discarded (redirect it yourself). The
    /// node counts as back when its URL's /readyz answers 200.
    #[arg(long)]
    pub restart_cmd: Option<String>,
    /// Pause between the kill and the restart command.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub restart_delay: Duration,
    /// Recovery needs the message p99 of a one-second window under this.
    /// Default: the larger of 15 ms and twice the p99 before the kill.
    #[arg(long)]
    pub recovery_p99_ms: Option<f64>,
    /// How long a client that lost its node keeps trying the others.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub reconnect_timeout: Duration,
    /// Diagnostic: an agent keeps (and resumes) a chat it holds that the
    /// `hello` after a reconnect leaves out, instead of dropping it as a
    /// client trusting `hello` would (the omission still counts as an error).
    #[arg(long)]
    pub resume_unlisted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KillSignal {
    Kill,
    Term,
}

impl KillSignal {
    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            KillSignal::Kill => "KILL",
            KillSignal::Term => "TERM",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct RampArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub agents: AgentArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub floor: FloorOptions,
    /// First step's chat arrival rate.
    #[arg(long, default_value_t = 10.0)]
    pub start_rate: f64,
    /// Each step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    pub step_factor: f64,
    /// At most this many steps (at most 30).
    #[arg(long, default_value_t = 8)]
    pub max_steps: u32,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub step_duration: Duration,
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub drain: Duration,
    /// A step passes while message and offer p99 stay at or under this.
    #[arg(long, default_value_t = 5.0)]
    pub p99_bound_ms: f64,
    /// Which p99 the bound applies to.
    #[arg(long, value_enum, default_value = "both")]
    pub bound_on: BoundOn,
    /// A step passes while errors stay at or under this share of commands.
    #[arg(long, default_value_t = 0.001)]
    pub max_error_share: f64,
    /// A step that fails its bounds (not its correctness counters) runs
    /// again at the same rate, up to this many times, before the ramp
    /// ends: on a shared machine a neighbour's burst can fail one window.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BoundOn {
    /// Message p99 (customer->agent and agent->customer together).
    Messages,
    /// Offer p99 (chat created -> offer received).
    Offers,
    Both,
}

#[derive(Args, Debug, Clone)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub agents: AgentArgs,
    /// Idle conversations to hold open (one customer socket each).
    #[arg(long, default_value_t = 1000)]
    pub conversations: u64,
    /// Child processes holding the customers (each stays under the
    /// per-process open-file limit).
    #[arg(long, default_value_t = 3)]
    pub processes: usize,
    /// Conversations started per second while building up.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Measure server CPU over this idle window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle: Duration,
    /// Also run the reconnect storm (implied by `reconnect-storm`).
    #[arg(long)]
    pub storm: bool,
    /// Bound on the storm's recovery wait.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub storm_timeout: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct FloorArgs {
    /// Messages per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    #[arg(long, default_value_t = 40)]
    pub text_len: usize,
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct EchoArgs {
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

#[derive(Args, Debug, Clone)]
pub struct GenConfigArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    #[arg(long, default_value = "lt")]
    pub agent_prefix: String,
    #[arg(long, default_value = "lt")]
    pub queue: String,
    /// Queues: `--queue`, then `<queue>-2`..`<queue>-N`; agent n serves
    /// the ((n - 1) mod N)th (as `seed-events` spreads them).
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    #[arg(long, default_value_t = 10)]
    pub max_chats: u32,
    #[arg(long, default_value_t = 3000)]
    pub rona_timeout_ms: u64,
    #[arg(long, default_value_t = 120_000)]
    pub auto_wrap_up_ms: u64,
    #[arg(long, default_value_t = 100_000)]
    pub commands_per_second: u32,
    #[arg(long, default_value_t = 100_000)]
    pub command_burst: u32,
    /// The node's `[storage] database_url`: `memory:`, `sqlite://PATH` or
    /// `postgres://...`.
    #[arg(long, default_value = "memory:")]
    pub database_url: String,
    /// `[limits] overload_target_ms` (0: the node never sheds); the node's
    /// default when absent.
    #[arg(long)]
    pub overload_target_ms: Option<u64>,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ShardArgs {
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub codec: CodecArg,
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    #[arg(long, default_value = "lt")]
    pub queue: String,
    #[arg(long)]
    pub count: u64,
    /// Customer numbers start here (unique across shards).
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub storm_timeout: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct SeedArgs {
    /// `sqlite://PATH` or `postgres://...` (migrated if new).
    #[arg(long)]
    pub database_url: String,
    #[arg(long, default_value_t = 100_000)]
    pub conversations: u64,
    /// Messages per conversation.
    #[arg(long, default_value_t = 10)]
    pub messages: u64,
    /// Agents the conversations are spread over (`lt1`..`ltN`).
    #[arg(long, default_value_t = 200)]
    pub agents: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, default_value = "lt")]
    pub agent_prefix: String,
    #[arg(long, default_value_t = 200)]
    pub queries: u64,
    /// Also export every conversation as CSV.
    #[arg(long)]
    pub export: bool,
    /// The node's PID, for its resident memory during the export.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

#[derive(Args, Debug, Clone)]
pub struct SeedEventsArgs {
    /// `sqlite://PATH` or `postgres://...` (migrated if new).
    #[arg(long)]
    pub database_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub conversations: u64,
    /// The conversations arrive over these last days, ending now.
    #[arg(long, default_value_t = 31)]
    pub days: u32,
    /// Queues (`lt`, `lt-2`..; as `gen-config --queues`).
    #[arg(long, default_value_t = 4)]
    pub queues: usize,
    /// Agents (`lt1`..`ltN`), agent n in the ((n - 1) mod queues)th queue.
    #[arg(long, default_value_t = 200)]
    pub agents: usize,
    #[arg(long, default_value = "lt")]
    pub agent_prefix: String,
    #[arg(long, default_value = "lt")]
    pub queue: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events per write (one transaction, or a few in one).
    #[arg(long, default_value_t = 2_000)]
    pub batch: usize,
}

#[derive(Args, Debug, Clone)]
pub struct ReportTimingArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Logs in as `<prefix>1` (a supervisor in the generated config).
    #[arg(long, default_value = "lt")]
    pub agent_prefix: String,
    /// Requests per report, one at a time, after one not counted.
    #[arg(long, default_value_t = 50)]
    pub requests: u64,
    /// The range: these last days, ending now.
    #[arg(long, default_value_t = 31)]
    pub days: u32,
    /// The queue of the one-queue report.
    #[arg(long, default_value = "lt")]
    pub queue: String,
    /// The agent of the one-agent report.
    #[arg(long, default_value = "lt2")]
    pub agent: String,
    /// Only the reports whose label contains this (e.g. `queues 15m`).
    #[arg(long)]
    pub only: Option<String>,
}
