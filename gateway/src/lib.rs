//! Switchboard gateway: the thin layer between clients and the engine.
//! HTTP and WebSocket in, engine calls out, events back as frames; auth,
//! configuration, metrics and the embedded web UI. No domain rule lives
//! here: the gateway translates, the engine decides.
//!
//! Code map:
//! - [`app`]: builds a node (engine + HTTP server + routes) and drains it.
//! - [`settings`]: the TOML file / demo config + `SWITCHBOARD__` env, validated.
//! - [`auth`]: agent credentials (argon2) and HMAC-signed tokens.
//! - [`identity`]: who a request is, from its token;
//!   [`customer_identity`]: a customer's identity as their web site signed it.
//! - [`customers`]: customer profiles, their history, erasure.
//! - [`rest`]: the REST handlers; [`records`]: search, export and
//!   transcripts from the system of record; [`feed`]: the event feed, API
//!   keys and webhooks; [`reports`]: reports by interval, JSON or CSV;
//!   [`openapi`]: their OpenAPI document.
//! - [`server`]: the HTTP server; a WebSocket's socket leaves the HTTP/1
//!   dispatcher after its `101` ([`server::Takeover`]).
//! - [`websocket`]: the WebSocket on that socket (handshake, framing, limits).
//! - [`session`]: one WebSocket session (frames <-> engine).
//! - [`api_error`]: protocol error codes as HTTP answers.
//! - [`observability`]: logs and Prometheus metrics.
//! - [`throttle`]: per-address limits on chat starts and logins.
//! - [`web`]: the agent desktop, widget, demo and supervisor pages.

pub mod api_error;
pub mod app;
pub mod auth;
pub mod browser_policy;
pub mod customer_identity;
pub mod customers;
pub mod feed;
pub mod identity;
pub mod observability;
pub mod openapi;
pub mod query;
pub mod records;
pub mod reports;
pub mod rest;
pub mod server;
pub mod session;
pub mod settings;
pub mod throttle;
pub mod web;
pub mod websocket;
