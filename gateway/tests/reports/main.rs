//! Reports over a real node, in a test binary of their own: the scripted
//! day moves this process's clock forward (as if the hours passed), which
//! no other test may share.

#[allow(dead_code)]
#[path = "../api/support.rs"]
mod support;

mod day;
