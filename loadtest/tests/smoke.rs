//! The harness smoke run the test suite carries: a real node started in
//! this process (its own actix System, a free loopback port, a generated
//! load config), a few seconds of the `steady` scenario at a small rate with
//! RONA, transfers and conferences mixed in, in both subprotocols. Only the
//! correctness counters are checked: no wall-clock figure is asserted.

use clap::Parser;
use std::time::Duration;
use switchboard_gateway::app::{self, StartOptions};
use switchboard_gateway::settings::Settings;
use switchboard_loadtest::cli::{Cli, Command};
use switchboard_loadtest::config::LoadConfig;
use switchboard_loadtest::scenario::{self, SteadyReport};

/// Share of chats transferred in the smoke run.
const TRANSFER_SHARE: &str = "0.2";

fn run_harness(url: String, codec: &'static str) -> SteadyReport {
    let cli = Cli::try_parse_from([
        "switchboard-loadtest",
        "steady",
        "--url",
        &url,
        "--codec",
        codec,
        "--agents",
        "12",
        "--agent-max-chats",
        "3",
        "--rate",
        "6",
        "--duration",
        "3s",
        "--drain",
        "20s",
        "--messages",
        "3",
        "--message-interval",
        "50ms",
        "--think",
        "5ms",
        "--rona-share",
        "0.15",
        "--transfer-share",
        TRANSFER_SHARE,
        "--conference-share",
        "0.2",
        "--quiet",
    ])
    .expect("smoke arguments parse");
    let Command::Steady(args) = cli.command else {
        unreachable!("steady was asked for");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("harness runtime");
    runtime
        .block_on(scenario::steady(args))
        .expect("the smoke run completes")
}

fn smoke(codec: &'static str) {
    // The node keeps its record in a SQLite file of its own, as shipped.
    let data = std::env::temp_dir().join(format!("sb-smoke-{codec}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let config = LoadConfig {
        listen: "127.0.0.1:0".into(),
        agents: 12,
        max_chats: 3,
        rona_timeout_ms: 600,
        database_url: format!("sqlite://{}/switchboard.db", data.display()),
        ..LoadConfig::default()
    };
    let settings = Settings::from_toml_str(&config.toml(), Vec::<(String, String)>::new())
        .expect("the generated load config is valid");
    let system = actix_rt::System::new();
    let report = system.block_on(async move {
        let options = StartOptions {
            workers: 1,
            ..StartOptions::default()
        };
        let running = app::start(&settings, options).await.expect("node starts");
        let url = format!("http://{}", running.addr);
        let harness = std::thread::spawn(move || run_harness(url, codec));
        let report = loop {
            if harness.is_finished() {
                break harness.join().expect("harness thread");
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        };
        running.shutdown().await;
        report
    });
    let _ = std::fs::remove_dir_all(&data);
    let c = &report.result.counters;
    eprintln!("smoke ({codec}): {c:?}");
    assert!(c.chats_created > 0, "no chat was created: {c:?}");
    assert!(c.accepts > 0, "no offer was accepted: {c:?}");
    assert_eq!(c.lost, 0, "lost deliveries: {c:?}");
    assert_eq!(c.undelivered, 0, "acked messages never delivered: {c:?}");
    assert_eq!(c.duplicated, 0, "duplicated deliveries: {c:?}");
    assert_eq!(c.out_of_order, 0, "out-of-order deliveries: {c:?}");
    assert_eq!(c.double_offers, 0, "offers to two agents at once: {c:?}");
    assert_eq!(report.correctness_failures, 0);
}

#[test]
fn smoke_run_keeps_every_correctness_counter_at_zero_json() {
    smoke("json");
}

#[test]
fn smoke_run_keeps_every_correctness_counter_at_zero_msgpack() {
    smoke("msgpack");
}
