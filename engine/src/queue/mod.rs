//! One queue: its waiting list ([`waiting`]), who gets the next offer
//! ([`routing`]), what a waiting customer is told of its place and wait
//! ([`estimate`]), and the actor that runs them ([`actor`]).
pub mod actor;
pub mod estimate;
pub mod routing;
pub mod waiting;
