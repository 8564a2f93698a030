//! # quorate-protocols: every protocol as a deterministic state machine
//!
//! Each module implements [`quorate_core::Protocol`]: it consumes one input at a time, with
//! `now` passed in, and emits effects. No module here performs I/O, reads a clock, draws a
//! random number, spawns a thread or uses `async`; the simulator and the server drive the very
//! same types.
//!
//! - [`raft`]: Raft (Ongaro & Ousterhout, 2014), with log compaction and InstallSnapshot.
//! - [`paxos`]: single-decree Paxos (Lamport, 1998/2001), one write-once register per key.
//! - [`multipaxos`]: Multi-Paxos (Lamport 2001 §3; van Renesse & Altinbuken 2015) replicating
//!   the KV store: a stable leader, batching, no-op gap fill, catch-up and snapshots.
//! - [`zab`]: ZAB as ZooKeeper runs it (Zab 1.0): fast leader election, discovery,
//!   synchronization with DIFF/TRUNC/SNAP, broadcast over FIFO channels, ZooKeeper's reads.
//! - [`primary_backup`]: primary-backup replication with views decided by election and fenced
//!   failover (Alsberg & Day 1976; Viewstamped Replication, Oki & Liskov 1988, 2012).
//! - [`chain`]: chain replication (van Renesse & Schneider 2004) on the same replica, with
//!   CRAQ reads (Terrace & Freedman 2009) as an option.
//! - [`quorum`]: Dynamo-style quorum replication with tunable N/R/W, and ABD's write-back for
//!   linearizable reads; read repair, hinted handoff, Merkle-tree anti-entropy.
//! - [`multiprimary`]: every replica accepts writes and replicates them asynchronously;
//!   conflicts resolved by last-write-wins on hybrid logical clocks, by dotted version vectors
//!   (siblings), or by CRDTs.
//!
//! Shared by the leaderless protocols: [`ring`] (consistent hashing with virtual nodes) and
//! [`merkle`] (Merkle trees for anti-entropy).

pub mod chain;
pub mod merkle;
pub mod multipaxos;
pub mod multiprimary;
pub mod paxos;
pub mod primary_backup;
pub mod quorum;
pub mod raft;
pub mod ring;
pub mod session;
pub mod zab;

#[cfg(test)]
mod effects;
#[cfg(test)]
mod script;
