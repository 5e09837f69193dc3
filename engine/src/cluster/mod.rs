//! How actors find each other and where state lives. Today: one process
//! (in-memory directory, hub and store). The Redis cluster replaces the
//! implementations behind these types; the actors only use the handles.

pub mod directory;
pub mod hub;
pub mod store;
