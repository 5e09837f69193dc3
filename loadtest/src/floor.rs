//! Floors, measured on the same machine in the same run, so the figures
//! read as ratios:
//! - a plain WebSocket echo through the same server and WebSocket layer
//!   (`echo-server`, a child process like the node): client -> server ->
//!   client, the same two hops a chat message takes from sender to receiver;
//! - a Redis PUBLISH round trip (publisher -> redis-server -> subscriber) on
//!   a redis-server the harness starts itself on a free loopback port.
//!
//! Both are driven open-loop at a target rate, latency from the scheduled
//! send time.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{latency_origin, Hist, Percentiles};

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct FloorReport {
    pub rate_per_s: f64,
    pub seconds: f64,
    pub websocket_echo: Percentiles,
    pub websocket_echo_sent: u64,
    pub websocket_echo_received: u64,
    pub redis_publish: Option<Percentiles>,
    pub redis_note: Option<String>,
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_for_port(addr: SocketAddr, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("child exited before listening on {addr}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listening on {addr} after 10 s")
}

/// Runs both floors for `duration` at `rate` messages per second over
/// `connections` sockets; the echo server gets `workers` workers.
pub async fn measure(
    rate: f64,
    duration: Duration,
    connections: usize,
    payload_len: usize,
    workers: usize,
) -> anyhow::Result<FloorReport> {
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let exe = std::env::current_exe()?;
    let mut echo = Command::new(exe)
        .args([
            "echo-server",
            "--listen",
            &addr.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the echo server")?;
    wait_for_port(addr, &mut echo).await?;
    let (echo_latency, sent, received) =
        echo_floor(addr, rate, duration, connections, payload_len).await?;
    let _ = echo.kill().await;
    let (redis_publish, redis_note) = match redis_floor(rate, duration, payload_len).await {
        Ok(p) => (Some(p), None),
        Err(error) => (None, Some(format!("redis floor not measured: {error:#}"))),
    };
    Ok(FloorReport {
        rate_per_s: rate,
        seconds: duration.as_secs_f64(),
        websocket_echo: echo_latency,
        websocket_echo_sent: sent,
        websocket_echo_received: received,
        redis_publish,
        redis_note,
    })
}

async fn echo_floor(
    addr: SocketAddr,
    rate: f64,
    duration: Duration,
    connections: usize,
    payload_len: usize,
) -> anyhow::Result<(Percentiles, u64, u64)> {
    let hist = Arc::new(Hist::default());
    let per_connection = rate / connections.max(1) as f64;
    let interval = Duration::from_secs_f64(1.0 / per_connection.max(1e-6));
    let payload = format!(
        "{{\"type\":\"message\",\"text\":\"{}\"}}",
        "x".repeat(payload_len)
    );
    // Every connection is open before the schedule starts: the clock counts
    // from the scheduled send, so a socket still connecting would show as
    // latency that no message had.
    let mut sockets = Vec::with_capacity(connections.max(1));
    for _ in 0..connections.max(1) {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}/ws"),
            stream,
            Some(crate::client::ws_config()),
        )
        .await?;
        sockets.push(ws);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(200);
    for (index, ws) in sockets.into_iter().enumerate() {
        let (mut sink, mut source) = ws.split();
        let hist = hist.clone();
        let payload = payload.clone();
        // Spread the connections' schedules over one interval.
        let first = start + interval.mul_f64(index as f64 / connections.max(1) as f64);
        tasks.spawn(async move {
            let end = start + duration;
            let mut scheduled: VecDeque<Instant> = VecDeque::new();
            let mut next = first;
            let mut sent = 0_u64;
            let mut received = 0_u64;
            loop {
                let sending = next < end;
                tokio::select! {
                    () = tokio::time::sleep_until(next.into()), if sending => {
                        scheduled.push_back(latency_origin(next, Instant::now()));
                        if sink.send(Message::text(payload.clone())).await.is_err() { break; }
                        sent += 1;
                        next += interval;
                    }
                    message = source.next() => match message {
                        Some(Ok(Message::Text(_))) => {
                            if let Some(at) = scheduled.pop_front() { hist.record(at.elapsed()); }
                            received += 1;
                            if !sending && scheduled.is_empty() { break; }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    () = tokio::time::sleep_until((end + Duration::from_secs(5)).into()), if !sending => break,
                }
            }
            let _ = sink.close().await;
            (sent, received)
        });
    }
    let mut sent = 0;
    let mut received = 0;
    while let Some(result) = tasks.join_next().await {
        let (s, r) = result?;
        sent += s;
        received += r;
    }
    Ok((hist.summary(), sent, received))
}

async fn redis_floor(
    rate: f64,
    duration: Duration,
    payload_len: usize,
) -> anyhow::Result<Percentiles> {
    let port = free_port()?;
    let mut server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting redis-server (is it installed?)")?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    wait_for_port(addr, &mut server).await?;
    let result = async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe("floor").await?;
        let mut messages = pubsub.into_on_message();
        let publisher = client.get_multiplexed_async_connection().await?;
        let hist = Arc::new(Hist::default());
        let start = Instant::now() + Duration::from_millis(100);
        let end = start + duration;
        let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        let payload = "x".repeat(payload_len);
        let mut expected = 0_u64;
        let mut at = start;
        while at < end {
            expected += 1;
            at += interval;
        }
        let receiver = {
            let hist = hist.clone();
            tokio::spawn(async move {
                let deadline = end + Duration::from_secs(5);
                let mut received = 0;
                while received < expected {
                    let Ok(Some(message)) =
                        tokio::time::timeout_at(deadline.into(), messages.next()).await
                    else {
                        break;
                    };
                    received += 1;
                    let body: String = message.get_payload().unwrap_or_default();
                    let Some((micros, _)) = body.split_once(' ') else {
                        continue;
                    };
                    let Ok(micros) = micros.parse::<u64>() else {
                        continue;
                    };
                    hist.record((start + Duration::from_micros(micros)).elapsed());
                }
            })
        };
        let mut next = start;
        let mut inflight = tokio::task::JoinSet::new();
        while next < end {
            tokio::time::sleep_until(next.into()).await;
            let origin = latency_origin(next, Instant::now());
            let body = format!("{} {payload}", (origin - start).as_micros());
            let mut connection = publisher.clone();
            inflight.spawn(async move {
                let _: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg("floor")
                    .arg(body)
                    .query_async(&mut connection)
                    .await;
            });
            while inflight.try_join_next().is_some() {}
            next += interval;
        }
        while inflight.join_next().await.is_some() {}
        let _ = receiver.await;
        anyhow::Ok(hist.summary())
    }
    .await;
    let _ = server.kill().await;
    result
}
