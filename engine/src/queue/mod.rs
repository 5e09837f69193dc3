//! One queue: its waiting list ([`waiting`]), who gets the next offer
//! ([`routing`]), and the actor that runs both ([`actor`]).
pub mod actor;
pub mod routing;
pub mod waiting;
