//! # quorate-server: a real node
//!
//! The simulator runs protocol nodes against simulated networks and disks. This crate runs the
//! very same node types against real ones: TCP between nodes, a write-ahead log on disk, and
//! the Redis protocol (RESP) for clients, so `redis-cli`, `redis-benchmark` and every Redis
//! client library work unchanged. It is the only crate in quorate that performs I/O, reads the
//! wall clock, draws real random numbers or runs `async` code.
//!
//! ## The problem
//!
//! A protocol node is a deterministic state machine: inputs in, effects out (see
//! [`quorate_core::protocol`]). Something must turn sockets, disks and clocks into inputs and
//! carry the effects out, *without weakening the contract the protocol was proven under*:
//! a message that depends on a persisted record must not leave before the record is on disk,
//! and only what was fsynced may be handed back after a crash.
//!
//! ## Fault model
//!
//! Processes crash (kill -9, power loss) and restart; the network loses, delays and reorders
//! messages between connections and drops connections; disks tear the last write of a crash
//! and, rarely, corrupt bytes in the middle of a file. Clients send anything at all. No
//! Byzantine peers: a peer that passed the handshake is trusted to run the same protocol.
//!
//! ## How a node runs, in numbered steps
//!
//! 1. **Recovery** ([`storage`]). The node opens its data directory, reads the snapshot (the
//!    last record for which `Durable::is_checkpoint()` was true) and the write-ahead log after
//!    it, checking a CRC32C per record. A torn tail (the unsynced end of the last write) is
//!    truncated; corruption with valid records after it refuses to start, naming the file,
//!    the offset and what to do. The records go to the node in `Input::Start`.
//! 2. **One event loop owns the node** ([`runtime`]). Peer messages, client requests and timer
//!    expirations are fed to `Protocol::step` one at a time, with `now` read from a monotonic
//!    clock; `TimerRange`s are resolved with a real RNG.
//! 3. **Persist is a barrier, fsync is shared** ([`storage::Persister`]). A `Persist` effect
//!    goes straight to a dedicated storage thread; every later effect waits in a queue, tagged
//!    with the persist it follows, until the storage thread reports that record durable. The
//!    storage thread writes whatever accumulated while the previous fsync ran and covers it
//!    with one fsync (group commit), so the event loop never blocks on the disk and many
//!    client writes share one fsync.
//! 4. **Peers speak framed TCP** ([`transport`]). Every frame carries its length and a CRC32C;
//!    a versioned handshake carries the cluster id, the protocol and both node ids, and
//!    foreign clusters and unknown nodes are refused with a log line saying so. Each peer has
//!    one outbound connection (FIFO), a bounded send queue that drops on overflow (protocols
//!    tolerate loss), and reconnects with jittered exponential back-off.
//! 5. **Clients speak RESP** ([`resp`]). Each connection is a client session with request
//!    numbers, so a retried write applies once. A follower redirects (`MOVED`) or forwards the
//!    request to the leader over the peer connection, as configured. Malformed input gets a
//!    RESP error and never crashes the node.
//! 6. **TLS is optional** ([`tls`]). With a `[tls]` section, the client port speaks TLS only
//!    and peers speak mutual TLS: each must present a certificate from the cluster CA that
//!    names the member it claims to be.
//! 7. **Operators** grow and shrink a running Raft cluster with `MEMBER` ([`membership`]),
//!    read `INFO` over RESP and Prometheus metrics over HTTP ([`metrics`]);
//!    logs go through `tracing`; `SNAPSHOT` copies the store at a linearizable point into a
//!    checksummed file that seeds a new cluster ([`backup`]).
//!
//! ## Guarantees
//!
//! - Nothing a node says depends on state that is not yet fsynced (rule 1 of the protocol
//!   contract, enforced here by construction).
//! - A restart hands the node exactly the records that were durable, in order; a checkpoint
//!   replaces everything before it.
//! - A write acknowledged to a client was applied through the protocol, so it survives
//!   whatever the protocol tolerates (for Raft: the crash of any minority).
//!
//! ## Deliberately left out
//!
//! Online membership changes for protocols other than Raft ([`membership`]), Redis data types other
//! than strings, key expiry outside Raft, and transactions (MULTI/EXEC).
//!
//! ## Adding a protocol
//!
//! Implement [`ServedProtocol`] for the node type (its names, a config section, a
//! constructor) and add one arm to [`serve_by_name`] and [`check_tuning`]. Every protocol the
//! simulator runs is served except single-decree Paxos (see [`PROTOCOLS`]).

pub mod auth;
pub mod backup;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod inherited;
pub mod membership;
pub mod metrics;
pub mod ports;
pub mod resp;
pub mod runtime;
pub mod served;
pub mod storage;
pub mod tls;
pub mod transport;
pub mod watch;

mod node;

pub use config::{ConfigError, FollowerMode, ServerConfig};
pub use node::{check_tuning, serve, serve_by_name, ServeError, PROTOCOLS};
pub use served::ServedProtocol;
