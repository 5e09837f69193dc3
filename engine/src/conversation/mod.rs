//! One conversation: its state machine ([`state`]) and the actor that hosts
//! it, keeps its timers and fans its events out ([`actor`]).
pub mod actor;
pub mod state;
#[cfg(test)]
mod state_tests;
