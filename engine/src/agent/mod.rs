//! One agent: routing state and slots ([`state`]), hosted by [`actor`].
pub mod actor;
pub mod state;
