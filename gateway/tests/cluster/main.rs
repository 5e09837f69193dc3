//! Cluster tests with real processes: a `redis-server` started by the test
//! on a free loopback port, a database of its own on the machine's
//! PostgreSQL (127.0.0.1:5432), three `switchboard` nodes sharing both, and
//! WebSocket clients that move between nodes. Nodes are killed, paused,
//! drained and cut off from Redis; clients reconnect and resume, and the
//! tests check that nothing acknowledged is lost or shown twice.
//!
//! Run with `cargo test -p switchboard-gateway --test cluster -- --test-threads 2`.
//! At most two clusters run at once whatever the thread count.

// The shared test config (queues, agents, reasons) of the in-process suite.
#[allow(dead_code)]
#[path = "../api/support.rs"]
mod api_support;

mod client;
mod harness;
// The webhook receiver of the in-process suite.
#[allow(dead_code)]
#[path = "../common/receiver.rs"]
mod receiver;

mod chat;
mod events;
mod failover;
mod hardening;
mod record;
mod redis_faults;
mod reports;
mod restart;
mod selfcheck;
mod soak;
mod storage;
mod storm;
mod tracing;
mod waiting;
