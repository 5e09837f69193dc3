//! Switchboard gateway (work in progress: being written now).
pub mod auth;
pub mod settings;
