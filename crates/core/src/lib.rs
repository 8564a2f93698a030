//! # quorate-core: the vocabulary every protocol, driver and checker shares
//!
//! This crate holds what must mean the same thing everywhere:
//!
//! - [`ids`]: node and client identities.
//! - [`time`]: a node's notion of *now* ([`Time`]) and timer ranges. Protocol code never reads a
//!   clock; the driver passes `now` in, so the simulator can skew it per node.
//! - [`kv`]: the replicated key-value state machine (GET, PUT, DELETE, APPEND, CAS) with
//!   exactly-once client sessions, and the request/reply types every protocol serves.
//! - [`protocol`]: the one interface every protocol implements — a deterministic state machine
//!   that consumes one [`Input`](protocol::Input) at a time and emits
//!   [`Effect`](protocol::Effect)s, with `Persist` as a barrier.
//! - [`client`]: the client side of a request (session identity, retries, redirects), one
//!   sans-IO state machine driven by the simulator's clients and the server's RESP sessions.
//! - [`shell`]: what sits between clients and a protocol node on one machine (waiters, routing
//!   of answers by request identity, forwarding to the leader), driven by the server's runtime
//!   and by the simulator.
//! - [`quorum`]: majority arithmetic shared by the quorum-based protocols.
//! - [`clock`]: hybrid logical clocks, version vectors and dotted version vectors, for
//!   protocols that order or detect concurrent writes without a leader.
//! - [`crdt`]: state-based CRDTs (G-Counter, PN-Counter, OR-Set, LWW-Register, MV-Register)
//!   whose merge laws are property-tested.
//! - [`digest`]: a small, stable 64-bit hash (FNV-1a) for trace hashes and entry digests.
//!
//! Nothing here performs I/O, reads a clock, spawns a thread or draws a random number.

pub mod client;
pub mod clock;
pub mod crdt;
pub mod digest;
pub mod ids;
pub mod kv;
pub mod protocol;
pub mod quorum;
pub mod shell;
pub mod time;

pub use ids::{ClientId, NodeId};
pub use kv::{
    AdminCommand, AdminRequest, ClientError, Command, Expiry, Guard, Key, KvBuilder, KvChunk,
    KvCursor, KvStore, Lifetime, Op, Output, QuorumSizes, ReadMode, Reply, Request, SetWhen,
    Standing, Value,
};
pub use protocol::{
    Durable, Effect, Effects, Input, Invariants, NodeStatus, Protocol, Role, Violation,
};
pub use time::{Time, TimerRange};
