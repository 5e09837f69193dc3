//! Logs and metrics. `tracing` for logs and spans; Prometheus text at
//! `/metrics` from the `metrics` facade the engine records into.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// The process-wide Prometheus recorder (installed once; every node started
/// in this process shares it).
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 120.0, 300.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency_buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests): then this
            // handle renders what this recorder saw, which is nothing.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("switchboard_offers_total", "Offers made by queues");
    describe_counter!(
        "switchboard_rona_total",
        "Agents sent to RONA after an offer expired"
    );
    describe_counter!(
        "switchboard_abandoned_total",
        "Conversations the customer left before an accept"
    );
    describe_counter!(
        "switchboard_messages_total",
        "Messages delivered (each once, whatever the fan-out)"
    );
    describe_counter!(
        "switchboard_commands_total",
        "WebSocket commands received, by type"
    );
    describe_counter!("switchboard_command_errors_total", "Error replies, by code");
    describe_histogram!(
        "switchboard_accept_latency_seconds",
        "From a conversation's start to an accept"
    );
    describe_histogram!(
        "switchboard_queue_wait_seconds",
        "Time in queue until accepted"
    );
    describe_gauge!("switchboard_queue_depth", "Conversations waiting, by queue");
    describe_gauge!(
        "switchboard_sessions",
        "Open WebSocket sessions on this node"
    );
    describe_gauge!(
        "switchboard_conversations_live",
        "Conversations with a live actor"
    );
}

/// Logs to stdout, text or JSON, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
