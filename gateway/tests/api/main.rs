//! Integration tests: each starts a real node on a free loopback port and
//! drives it over HTTP and real WebSocket connections, in both
//! subprotocols. One test binary, one module per area.

#[path = "../common/receiver.rs"]
mod receiver;
mod support;

mod bad_input;
mod conference;
mod contract;
mod cors;
mod customers;
mod directory;
mod drain;
mod events;
mod flow;
mod hardening;
mod messages;
mod overload;
mod records;
mod reports;
mod resume;
mod rona;
mod routing;
mod socket;
mod takers;
mod telemetry;
mod transfer;
mod waiting;
mod wrapup;
