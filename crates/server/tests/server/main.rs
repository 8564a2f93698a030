//! server's integration tests, one binary with a module per file (one link instead of one
//! per file in CI's cold build).

mod common;
mod lease;
mod listing;
mod peer_limits;
mod protocols;
mod resp;
mod txn;
mod watch;
