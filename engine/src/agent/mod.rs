//! One agent: routing state and slots ([`state`]), hosted by [`actor`];
//! who can take a given chat now ([`availability`]).
pub mod actor;
pub mod availability;
pub mod state;
