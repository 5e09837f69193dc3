//! Switchboard engine (work in progress: being written now).
pub mod config;
