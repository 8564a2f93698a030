//! # quorate-protocols: every protocol as a deterministic state machine
//!
//! Each module implements [`quorate_core::Protocol`]: it consumes one input at a time, with
//! `now` passed in, and emits effects. No module here performs I/O, reads a clock, draws a
//! random number, spawns a thread or uses `async`; the simulator and the server drive the very
//! same types.
//!
//! - [`raft`]: Raft (Ongaro & Ousterhout, 2014), with log compaction and InstallSnapshot.
//! - [`quorum`]: Dynamo-style quorum replication with tunable N/R/W, and ABD's write-back for
//!   linearizable reads; read repair, hinted handoff, Merkle-tree anti-entropy.
//! - [`multiprimary`]: every replica accepts writes and replicates them asynchronously;
//!   conflicts resolved by last-write-wins on hybrid logical clocks, by dotted version vectors
//!   (siblings), or by CRDTs.
//!
//! Shared by the leaderless protocols: [`ring`] (consistent hashing with virtual nodes) and
//! [`merkle`] (Merkle trees for anti-entropy).

pub mod merkle;
pub mod multiprimary;
pub mod quorum;
pub mod raft;
pub mod ring;
pub mod session;
