//! Switchboard gateway (work in progress: being written now).
