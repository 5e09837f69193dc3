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

/// Keeps the trace exporter alive; flushes it when dropped (at exit).
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("trace export did not flush: {error}");
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.otlp_endpoint: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Logs to stdout, text or JSON, filtered by `RUST_LOG` (default `info`);
/// with an OTLP endpoint, spans are also exported (OTLP over HTTP, batched
/// on the exporter's own thread) as service `switchboard`.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    node_id: &str,
) -> Result<Telemetry, TelemetryError> {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::WithExportConfig;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
    };
    let (traces, provider) = match otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("switchboard")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.instance.id",
                    node_id.to_owned(),
                ))
                .build();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("switchboard"));
            // W3C trace context, so a span follows a command across nodes
            // (the cluster bus carries it in each envelope).
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            (Some(layer), Some(provider))
        }
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    Ok(Telemetry { provider })
}
