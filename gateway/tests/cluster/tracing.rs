//! One trace follows a command across nodes: the command's span on the node
//! the client is connected to, and the delivery's span on the node that
//! owns the actor, share a trace id (the bus carries the trace context).

use actix_web::{web, App, HttpResponse, HttpServer};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::client::Party;
use crate::harness::{bounded, NodeOptions, NodeProcess, PgDatabase, RedisServer};

/// A tiny OTLP/HTTP collector: every export body, as received.
struct Collector {
    url: String,
    bodies: mpsc::UnboundedReceiver<Vec<u8>>,
    server: actix_web::dev::ServerHandle,
}

impl Collector {
    fn start() -> Collector {
        let (sender, bodies) = mpsc::unbounded_channel::<Vec<u8>>();
        let server = HttpServer::new(move || {
            let sender = sender.clone();
            App::new().route(
                "/v1/traces",
                web::post().to(move |body: web::Bytes| {
                    let _ = sender.send(body.to_vec());
                    async { HttpResponse::Ok().finish() }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("collector binds");
        let url = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Collector {
            url,
            bodies,
            server: handle,
        }
    }

    /// Every export body so far.
    fn received(&mut self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        while let Ok(body) = self.bodies.try_recv() {
            all.push(body);
        }
        all
    }
}

/// The length-delimited fields of one protobuf message: (field, bytes).
/// Enough protobuf to walk an OTLP export without a dependency.
fn fields(mut bytes: &[u8]) -> Vec<(u64, &[u8])> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut found = Vec::new();
    while let Some(key) = varint(&mut bytes) {
        let (field, wire) = (key >> 3, key & 7);
        let skip = match wire {
            0 => {
                varint(&mut bytes);
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let Some(len) = varint(&mut bytes) else { break };
                let len = (len as usize).min(bytes.len());
                found.push((field, &bytes[..len]));
                len
            }
            _ => break,
        };
        bytes = &bytes[skip.min(bytes.len())..];
    }
    found
}

/// Every span in an export body: (name, trace id).
/// ExportTraceServiceRequest.resource_spans(1) -> ResourceSpans.scope_spans(2)
/// -> ScopeSpans.spans(2) -> Span { trace_id(1), name(5) }.
fn spans(export: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut spans = Vec::new();
    for (field, resource_spans) in fields(export) {
        if field != 1 {
            continue;
        }
        for (field, scope_spans) in fields(resource_spans) {
            if field != 2 {
                continue;
            }
            for (field, span) in fields(scope_spans) {
                if field != 2 {
                    continue;
                }
                let span = fields(span);
                let get = |wanted| span.iter().find(|(field, _)| *field == wanted);
                if let (Some((_, trace)), Some((_, name))) = (get(1), get(5)) {
                    spans.push((String::from_utf8_lossy(name).into_owned(), trace.to_vec()));
                }
            }
        }
    }
    spans
}

/// Trace ids of the spans named `name` in the collected export bodies.
fn traces_of(bodies: &[Vec<u8>], name: &str) -> HashSet<Vec<u8>> {
    bodies
        .iter()
        .flat_map(|body| spans(body))
        .filter(|(span, _)| span == name)
        .map(|(_, trace)| trace)
        .collect()
}

#[actix_rt::test]
async fn a_trace_follows_a_command_across_nodes() {
    bounded(Duration::from_secs(60), async {
        let redis = RedisServer::start(&[]);
        let database = PgDatabase::create();
        let mut first = Collector::start();
        let mut second = Collector::start();
        let traced = |collector: &Collector| NodeOptions {
            otlp_endpoint: Some(collector.url.clone()),
            database_url: Some(database.url()),
            ..NodeOptions::default()
        };
        let mut n1 = NodeProcess::start("n1", Some(&redis.url()), traced(&first)).await;
        let mut n2 = NodeProcess::start("n2", Some(&redis.url()), traced(&second)).await;
        let nodes = vec![n1.url(), n2.url()];
        // Bob's actor starts on n2 (he logs in there); his session is on
        // n1, so his command crosses from n1 to n2.
        let mut bob = Party::agent_logged_in_on(&nodes, 1, 0, "bob").await;
        bob.set_available().await;
        // Draining flushes each node's spans to its collector.
        assert!(n1.sigterm().success());
        assert!(n2.sigterm().success());

        let commands = traces_of(&first.received(), "command");
        let deliveries = traces_of(&second.received(), "bus.deliver");
        assert!(!commands.is_empty(), "n1 exported its command spans");
        assert!(!deliveries.is_empty(), "n2 exported its delivery spans");
        assert!(
            deliveries.iter().any(|trace| commands.contains(trace)),
            "a delivery on n2 continues a command's trace from n1"
        );
        first.server.stop(false).await;
        second.server.stop(false).await;
    })
    .await;
}
