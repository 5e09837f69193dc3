//! switchboard-loadtest: the bundled load harness.
//!
//! Code map:
//! - [`cli`]: the subcommands and their flags.
//! - [`scenario`]: `steady`, `ramp` and `floor`, and their reports;
//!   [`connections`]: `connections` and `reconnect-storm` (customers in
//!   child processes, the node measured from `/proc`).
//! - [`failover`]: `steady` over several nodes while one is killed (by
//!   PID) and restarted; recovery time, nothing lost or doubled.
//! - [`run`]: agents for a run, one measured window of Poisson arrivals,
//!   the progress line.
//! - [`agent`] and [`customer`]: the simulated people.
//! - [`tracker`]: correctness (lost, duplicated, out-of-order, undelivered,
//!   double offers) and message latency by `client_msg_id`.
//! - [`stats`]: HDR histograms, counters, errors by code, `/proc` samples.
//! - [`client`]: REST and WebSocket plumbing over the protocol crate's codec.
//! - [`floor`] and [`echo`]: the floors (WebSocket echo on the gateway's own
//!   server and WebSocket layer, Redis PUBLISH round trip).
//! - [`config`]: `gen-config`, a node config with the load-test agents.
//! - [`history`]: `seed-history` (a database of closed conversations) and
//!   `search` (search latency and a whole export against it).
//! - [`reports`]: `seed-events` (a month of conversations' and agents'
//!   events, for reports) and `report-timing` (report latency against it).
//! - [`webhooks`]: webhook delivery lag under load, and the catch-up after
//!   the receiver was down.
//!
//! Invariants: the harness only targets loopback addresses; every loop is
//! bounded in time or count; latency always counts from the scheduled send
//! time (coordinated omission corrected), never from when a late client got
//! round to sending.

pub mod agent;
pub mod cli;
pub mod client;
pub mod config;
pub mod connections;
pub mod customer;
pub mod echo;
pub mod failover;
pub mod floor;
pub mod history;
pub mod overload;
pub mod reports;
pub mod run;
pub mod scenario;
pub mod shared;
pub mod stats;
pub mod tracker;
pub mod webhooks;

use cli::{Cli, Command};

/// Exit status: 0 fine, 1 the run could not be carried out, 2 a correctness
/// counter is not zero.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Command::EchoServer(args) => match echo::serve(args.listen, args.workers) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("echo server: {error}");
                1
            }
        },
        Command::GenConfig(args) => {
            let text = config::LoadConfig {
                listen: args.listen,
                agents: args.agents,
                prefix: args.agent_prefix,
                queue: args.queue,
                queues: args.queues,
                max_chats: args.max_chats,
                rona_timeout_ms: args.rona_timeout_ms,
                auto_wrap_up_ms: args.auto_wrap_up_ms,
                commands_per_second: args.commands_per_second,
                command_burst: args.command_burst,
                database_url: args.database_url,
                overload_target_ms: args.overload_target_ms,
            }
            .toml();
            match args.out {
                Some(path) => match std::fs::write(&path, text) {
                    Ok(()) => 0,
                    Err(error) => {
                        eprintln!("cannot write {}: {error}", path.display());
                        1
                    }
                },
                None => {
                    print!("{text}");
                    0
                }
            }
        }
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("cannot start the runtime: {error}");
                    return 1;
                }
            };
            match runtime.block_on(run_async(command)) {
                Ok(failures) if failures > 0 => 2,
                Ok(_) => 0,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    1
                }
            }
        }
    }
}

/// Runs a scenario; returns its correctness failures.
async fn run_async(command: Command) -> anyhow::Result<u64> {
    match command {
        Command::Steady(args) => {
            let json = args.target.json;
            let report = scenario::steady(args).await?;
            emit(json, &report, || report.print())?;
            Ok(report.correctness_failures)
        }
        Command::Ramp(args) => {
            let json = args.target.json;
            let report = scenario::ramp(args).await?;
            emit(json, &report, || report.print())?;
            Ok(report.correctness_failures)
        }
        Command::Failover(args) => {
            let json = args.steady.target.json;
            let report = failover::failover(args).await?;
            emit(json, &report, || report.print())?;
            if let Some(error) = &report.failover.kill_error {
                anyhow::bail!("the node was not killed: {error}");
            }
            Ok(report.correctness_failures())
        }
        Command::Connections(args) => {
            let json = args.target.json;
            connections::check_shard_binary()?;
            let report = connections::connections(args, false).await?;
            emit(json, &report, || report.print())?;
            Ok(report.correctness_failures)
        }
        Command::ReconnectStorm(args) => {
            let json = args.target.json;
            connections::check_shard_binary()?;
            let report = connections::connections(args, true).await?;
            emit(json, &report, || report.print())?;
            Ok(report.correctness_failures)
        }
        Command::Floor(args) => {
            let json = args.json;
            let report = scenario::floor_only(args).await?;
            emit(json, &report, || scenario::print_floor_report(&report))?;
            Ok(0)
        }
        Command::CustomerShard(args) => {
            connections::customer_shard(args).await?;
            Ok(0)
        }
        Command::SeedHistory(args) => {
            history::seed(args).await?;
            Ok(0)
        }
        Command::Search(args) => {
            history::search(args).await?;
            Ok(0)
        }
        Command::SeedEvents(args) => {
            reports::seed_events(args).await?;
            Ok(0)
        }
        Command::ReportTiming(args) => {
            reports::report_timing(args).await?;
            Ok(0)
        }
        Command::Webhooks(args) => {
            let json = args.steady.target.json;
            let report = webhooks::webhooks(args).await?;
            emit(json, &report, || report.print())?;
            Ok(report.load.correctness_failures)
        }
        Command::Overload(args) => {
            let json = args.steady.target.json;
            let report = overload::overload(args).await?;
            emit(json, &report, || report.print())?;
            Ok(report.load.correctness_failures)
        }
        Command::EchoServer(_) | Command::GenConfig(_) => Ok(0),
    }
}

fn emit<T: serde::Serialize>(json: bool, report: &T, print: impl FnOnce()) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print();
    }
    Ok(())
}
