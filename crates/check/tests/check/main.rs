//! check's integration tests, one binary with a module per file (one link instead of one
//! per file in CI's cold build).

mod anomalies;
mod brute;
mod differential;
mod jepsen_input;
mod list_append;
mod verdict_first;
