//! Switchboard protocol v1: the wire contract between the engine and every
//! client (agent desktop, chat widget, load harness, third-party clients).
//!
//! This crate is pure data: no I/O, no actix, no Redis. It is the one place
//! that derives serde, so the shape of every frame is decided here and
//! nowhere else.
//!
//! Code map:
//! - [`ids`]: newtype identifiers (`AgentId`, `ConversationId`, ...).
//! - [`time`]: [`Timestamp`], milliseconds since the epoch on the wire as
//!   RFC 3339 UTC with milliseconds.
//! - [`model`]: the shared shapes: states, messages, offers, summaries,
//!   records, directory entries and stats.
//! - [`command`]: what clients send (agent and customer commands).
//! - [`event`]: what the server sends ([`ServerFrame`]: acks, errors, events).
//! - [`report`]: report rows of queues and agents per interval.
//! - [`rest`]: REST request and response bodies.
//! - [`feed`]: events for other systems ([`feed::Event`]), API keys and
//!   webhooks.
//! - [`error`]: [`ErrorCode`], the protocol error codes and their HTTP status.
//! - [`validation`]: text rules (reserved characters, length).
//! - [`template`]: `<slot>` parsing and filling.
//! - [`codec`]: JSON and MessagePack framing, for both ends of a WebSocket.

pub mod codec;
pub mod command;
pub mod error;
pub mod event;
pub mod feed;
pub mod ids;
pub mod model;
pub mod report;
pub mod rest;
pub mod template;
pub mod time;
pub mod validation;

pub use codec::{Codec, DecodeError, Encoded};
pub use command::{AgentCommand, CustomerCommand, RequestedState, TransferTarget};
pub use error::{ErrorBody, ErrorCode};
pub use event::ServerFrame;
pub use ids::*;
pub use time::Timestamp;
