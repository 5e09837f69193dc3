//! How actors find each other and where state lives.
//!
//! - [`directory`]: the actors running on this node, and [`ActorRef`]
//!   handles that reach an actor here or, in a cluster, through the bus.
//! - [`hub`]: session events, fanned out to this node's sessions (and, in a
//!   cluster, to the other nodes' through their topic channels).
//! - [`store`]: the [`Store`] trait and the embedded [`MemoryStore`].
//! - Cluster only: [`placement`] (owners and heartbeats, Lua
//!   compare-and-set), [`bus`] (pub/sub envelopes), [`redis_store`]
//!   (fenced writes, logs as Streams), [`node`] (heartbeat, adoption of a
//!   dead node's actors), [`routed`] + [`routes`] (messages that cross nodes),
//!   [`recovery`] (conversations whose Redis state was lost, closed in the
//!   record with a word to their people), [`lease`] (one node at a time
//!   for a job: the event outbox, each webhook).
//!
//! [`ActorRef`]: directory::ActorRef
//! [`Store`]: store::Store
//! [`MemoryStore`]: store::MemoryStore

pub mod bus;
pub mod directory;
pub mod hub;
pub mod key;
pub mod keys;
pub mod lease;
pub mod node;
pub mod placement;
pub mod recovery;
pub mod redis_store;
pub mod routed;
pub mod routes;
pub mod store;
