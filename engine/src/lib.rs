//! Switchboard engine: the actors that run a contact center's live chat.
//!
//! Each agent, queue and conversation is an actix actor; its rules live in
//! a pure state machine beside it, so every rule is testable without a
//! runtime and the actors stay thin shells that carry out effects.
//!
//! Code map:
//! - [`engine`]: [`Engine`], the one entry point the gateway calls.
//! - [`agent`]: agent state and slots (`agent/state.rs`), its actor.
//! - [`queue`]: waiting list, routing (`queue/routing.rs`), the queue actor:
//!   the only place routing decisions are made.
//! - [`conversation`]: the conversation state machine (offers, RONA,
//!   transfer, conference, end, wrap-up) and its actor (timers, fan-out).
//! - [`cluster`]: how actors reach each other (directory), how events reach
//!   sessions (hub), where state is kept (store). In memory for one node.
//! - [`customers`]: who a chat is with (signed identities link chats),
//!   a customer's history, erasure.
//! - [`records`]: search, export and transcripts, and who may see them.
//! - [`events`]: events for other systems (the ordered feed, the cluster's
//!   outbox), API keys and webhooks.
//! - [`reports`]: reports by interval, projected from the events into
//!   15-minute buckets kept in the database.
//! - [`storage`]: the system of record (SQLite or PostgreSQL): records,
//!   search, export; on an embedded node, the live state too.
//! - [`catalog`], [`config`]: the configuration, validated by the gateway.
//! - [`error`]: [`EngineError`], mapped once to protocol error codes.
//!
//! Invariants: the state machines know nothing of actix or I/O; only queue
//! actors pick agents; an agent's slots change only in its own mailbox.

pub mod admission;
pub mod agent;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod context;
pub mod conversation;
pub mod customers;
pub mod engine;
pub mod error;
pub mod events;
pub mod queue;
pub mod records;
pub mod reports;
pub mod storage;

pub use engine::{Engine, Outcome, Session, StartedChat, TakersOf};
pub use error::EngineError;
