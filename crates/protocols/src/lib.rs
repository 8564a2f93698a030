//! # quorate-protocols: every protocol as a deterministic state machine
//!
//! Each module implements [`quorate_core::Protocol`]: it consumes one input at a time, with
//! `now` passed in, and emits effects. No module here performs I/O, reads a clock, draws a
//! random number, spawns a thread or uses `async`; the simulator and the server drive the very
//! same types.
//!
//! - [`raft`]: Raft (Ongaro & Ousterhout, 2014), with log compaction and InstallSnapshot.
//! - [`zab`]: ZAB as ZooKeeper runs it (Zab 1.0): fast leader election, discovery,
//!   synchronization with DIFF/TRUNC/SNAP, broadcast over FIFO channels, ZooKeeper's reads.

pub mod raft;
pub mod zab;
