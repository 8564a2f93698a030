//! The binary's integration tests, one test binary with a module per file (one link instead of
//! one per file in CI's cold build). `commands` holds what was `tests/cli.rs`.

mod cluster;
mod commands;
mod compare;
mod compare_real;
mod fuzz_corpus;
mod handover;
mod lease;
mod lease_reads;
mod member;
mod metrics;
mod scenarios;
mod snapshot;
mod storage;
mod support;
mod tls;
mod torture;
mod view_browser;
