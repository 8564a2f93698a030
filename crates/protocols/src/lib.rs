//! # quorate-protocols: every protocol as a deterministic state machine
//!
//! Each module implements [`quorate_core::Protocol`]: it consumes one input at a time, with
//! `now` passed in, and emits effects. No module here performs I/O, reads a clock, draws a
//! random number, spawns a thread or uses `async`; the simulator and the server drive the very
//! same types.
//!
//! - [`raft`]: Raft (Ongaro & Ousterhout, 2014), with log compaction and InstallSnapshot.
//! - [`primary_backup`]: primary-backup replication with views decided by election and fenced
//!   failover (Alsberg & Day 1976; Viewstamped Replication, Oki & Liskov 1988, 2012).
//! - [`chain`]: chain replication (van Renesse & Schneider 2004) on the same replica, with
//!   CRAQ reads (Terrace & Freedman 2009) as an option.

pub mod chain;
pub mod primary_backup;
pub mod raft;
