//! Traces leave the process: the real binary, configured with an OTLP
//! endpoint, exports the span of a WebSocket command to a collector (a tiny
//! HTTP server here) by the time it has drained on SIGTERM.

use actix_web::{web, App, HttpResponse, HttpServer};
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use tokio::sync::mpsc;

use crate::support::{CONFIG, WAIT};

#[actix_rt::test]
async fn command_spans_are_exported_over_otlp() {
    let (bodies, mut received) = mpsc::unbounded_channel::<Vec<u8>>();
    let collector = HttpServer::new(move || {
        let bodies = bodies.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let _ = bodies.send(body.to_vec());
                async { HttpResponse::Ok().finish() }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("collector binds");
    let collector_addr = collector.addrs()[0];
    let collector = collector.run();
    let collector_handle = collector.handle();
    actix_rt::spawn(collector);

    let dir = std::env::temp_dir().join(format!("sb-otlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("switchboard.toml");
    std::fs::File::create(&config)
        .and_then(|mut file| file.write_all(CONFIG.as_bytes()))
        .expect("config written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&config)
        .env(
            "SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .env("SWITCHBOARD__TELEMETRY__LOG_FORMAT", "json")
        .env(
            "SWITCHBOARD__STORAGE__DATABASE_URL",
            format!("sqlite://{}/switchboard.db", dir.display()),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("switchboard starts");

    // The node logs its address once it listens.
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.recv().await {
            let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if log["fields"]["message"] == "listening" {
                return log["fields"]["addr"].as_str().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("node listens in time")
    .expect("listening line has the address");

    let http = awc::Client::builder().timeout(WAIT).finish();
    let mut login = http
        .post(format!("http://{addr}/api/v1/agent/login"))
        .send_json(&serde_json::json!({"username": "bob", "password": "pw-bob"}))
        .await
        .expect("login answers");
    let body: serde_json::Value = login.json().await.expect("login body");
    let token = body["token"].as_str().expect("token").to_owned();
    let (_, mut socket) = http
        .ws(format!("ws://{addr}/api/v1/ws?token={token}"))
        .connect()
        .await
        .expect("websocket connects");
    socket
        .send(ws::Message::Text(
            r#"{"type":"set_state","request_id":"t1","state":"available"}"#.into(),
        ))
        .await
        .expect("command sent");
    // hello, agent_state, ack: wait for the ack.
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("frame in time")
            .expect("socket open")
            .expect("frame");
        if let ws::Frame::Text(text) = frame {
            if String::from_utf8_lossy(&text).contains(r#""type":"ack""#) {
                break;
            }
        }
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exported = tokio::time::timeout(WAIT, async {
        let mut all = Vec::new();
        while let Some(body) = received.recv().await {
            all.extend(body);
            if contains(&all, b"command") {
                return all;
            }
        }
        all
    })
    .await
    .expect("spans exported before the node exits");
    assert!(contains(&exported, b"switchboard"), "service name exported");
    let exit = child.wait().expect("node exits");
    assert!(exit.success(), "node drains and exits cleanly: {exit:?}");
    collector_handle.stop(false).await;
    let _ = std::fs::remove_dir_all(dir);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
