//! The replicated key-value state machine and the client-facing request/reply types.
//!
//! Every protocol in quorate replicates the same thing: a map from byte-string keys to
//! byte-string values, changed by five operations (GET, PUT, DELETE, APPEND, CAS). Protocols
//! that order commands in a log (Raft, Multi-Paxos, ZAB, primary-backup) apply each committed
//! [`Command`] to a [`KvStore`] in log order; every replica that applies the same sequence ends
//! in the same state, which is the whole point of state-machine replication.
//!
//! ## Exactly-once client sessions
//!
//! A client that times out cannot know whether its write took effect, so it retries, and the
//! retry must not apply the write twice (an APPEND applied twice is visibly wrong). Following
//! the Raft thesis §6.3, each client has a session ([`ClientId`]) and numbers its requests
//! `1, 2, 3, ...`; a client has at most one request outstanding. The store remembers, per
//! session, the last sequence number it applied and that request's output:
//!
//! 1. `seq == last_seq + 1` (or the first request of a new session): apply, remember the output.
//! 2. `seq == last_seq`: a retry of the request just applied: answer the remembered output
//!    without applying again.
//! 3. `seq < last_seq`: a stale duplicate; the client has moved on and awaits no answer.
//! 4. no session and `seq > 1`: the session was evicted; the outcome of that request cannot be
//!    known any more, so the client is told [`ClientError::SessionExpired`].
//!
//! Sessions are bounded: beyond `sessions_max`, the least recently used session is evicted.
//! Eviction is deterministic (it depends only on the applied command sequence), so all replicas
//! evict the same sessions. The guarantee is therefore: a retried request is applied exactly
//! once as long as its session is among the `sessions_max` most recently used. (A session's very
//! first request is indistinguishable from a new session, so a retry of request 1 after eviction
//! would be applied again; with the default of 65,536 sessions that needs 65,536 other clients
//! to act between the attempt and its retry.)
//!
//! Sequence number 0 means "no session": the command is applied every time it is seen. Drivers
//! use it only for reads that need no deduplication.

use crate::clock::{CausalContext, HlcStamp};
use crate::crdt::{Crdt, CrdtKind, CrdtOp, CrdtValue, LwwStamp};
use crate::ids::{ClientId, NodeId};
use crate::time::Time;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

mod changes;
mod chunk;
pub mod expiry;
pub mod lease;
pub mod listing;
pub mod txn;
pub use changes::{Change, ChangeFeed, Compacted, Event, RECENT_BYTES_MAX, RECENT_MAX};
pub use chunk::{KvBuilder, KvChunk, KvCursor};
pub use expiry::{Expiry, Lifetime, EXPIRIES_PER_TICK_MAX, EXPIRY_CLIENT};
pub use lease::LeaseView;
use std::collections::BTreeSet;
pub use txn::Guard;

/// Keys are arbitrary byte strings.
pub type Key = Bytes;
/// Values are arbitrary byte strings.
pub type Value = Bytes;

/// A key-value operation, as a client asks for it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Op {
    /// Read the value of `key` (absent keys read as `None`).
    Get { key: Key },
    /// Set `key` to `value`.
    Put { key: Key, value: Value },
    /// Remove `key`.
    Delete { key: Key },
    /// Append `value` to the value of `key` (an absent key counts as empty).
    Append { key: Key, value: Value },
    /// Compare-and-set: if the value of `key` equals `expected` (`None`: the key is absent),
    /// set it to `new`.
    Cas {
        key: Key,
        expected: Option<Value>,
        new: Value,
    },
    /// Read every concurrent version (sibling) of `key` and the causal context that covers
    /// them. Stores with one version per key answer with at most one sibling.
    GetSiblings { key: Key },
    /// Write `value` (`None`: delete) to `key`, superseding exactly the versions `context`
    /// covers: the context of an earlier `GetSiblings` (or `PutWithContext`) answer. An empty
    /// context supersedes nothing, so the write becomes a sibling of what is there.
    PutWithContext {
        key: Key,
        value: Option<Value>,
        context: CausalContext,
    },
    /// Update the CRDT of kind `op.kind()` stored under `key` (see [`crate::crdt`]).
    CrdtUpdate { key: Key, op: CrdtOp },
    /// Read the CRDT of `kind` stored under `key` (never written: its empty value).
    CrdtRead { key: Key, kind: CrdtKind },
    /// Add `by` to the integer stored under `key` (absent counts as 0): Redis's INCRBY, one
    /// atomic step of the state machine, so a retry is deduplicated like any write.
    Incr { key: Key, by: i64 },
    /// Set `key` to `value`, to be removed at `expiry` (Redis's `SET k v PX ms`).
    PutExpiring {
        key: Key,
        value: Value,
        expiry: Expiry,
    },
    /// Give a present key a deadline (Redis's `EXPIRE`/`PEXPIRE`); answers whether it exists.
    Expire { key: Key, expiry: Expiry },
    /// Remove the deadline of `key` (Redis's `PERSIST`); answers whether it had one.
    Persist { key: Key },
    /// Read the deadline of `key` (Redis's `TTL`/`PTTL`).
    Ttl { key: Key },
    /// Remove `key` if its deadline is still `deadline`: proposed by the leader once its clock
    /// passed the deadline, never by clients (see [`expiry`]).
    Expired { key: Key, deadline: Time },
    /// Remove `key` if its deadline is at or before `now`, the proposing leader's clock:
    /// proposed by the leader right before a command that reads the key's current value, so
    /// that the command never sees a value whose deadline has passed (see [`expiry`]).
    ExpireDue { key: Key, now: Time },
    /// Set `key` to `value` if `when` allows it, with a deadline if `expiry` is given: Redis's
    /// `SET` with `NX`/`XX`, `GET` and `EX`/`PX` in any combination, and `GETSET`, as one
    /// step. Answers the previous value ([`Output::Value`]), from which whether the value was
    /// set follows ([`SetWhen::allows`]).
    Set {
        key: Key,
        value: Value,
        when: SetWhen,
        expiry: Option<Expiry>,
    },
    /// Create a lease that lives `ttl_ms` after the proposing leader's `now` (stamped by
    /// [`Op::stamped`]); answers [`Output::Lease`] with its id (see [`lease`]).
    LeaseGrant { ttl_ms: u64, now: Option<Time> },
    /// Renew a lease to `now + ttl`; answers the lease, or `None` if it is gone or past due.
    LeaseKeepAlive { lease: u64, now: Option<Time> },
    /// End a lease and remove every key attached to it; answers what it removed.
    LeaseRevoke { lease: u64 },
    /// End a lease if its deadline is still `deadline`: proposed by the leader once its clock
    /// passed the deadline, never by clients (see [`lease`]).
    LeaseExpired { lease: u64, deadline: Time },
    /// Set `key` to `value` attached to a lease alive at `now` (`SET k v LEASE id`); answers
    /// [`Output::Existed`]: whether the lease was alive and the value written.
    PutLeased {
        key: Key,
        value: Value,
        lease: u64,
        now: Option<Time>,
    },
    /// Read a lease: its time to live, deadline and keys ([`Output::Lease`]).
    LeaseRead { lease: u64 },
    /// Compare-and-delete: remove `key` if its value is `expected` (Valkey's `DELIFEQ`);
    /// answers whether it did. How a lock holder releases only its own lock.
    DeleteIf { key: Key, expected: Value },
    /// Remove `key`, answering the value it had (Redis's `GETDEL`).
    GetDelete { key: Key },
    /// Set every pair in one step (Redis's `MSET`): no state has some of them and not the
    /// others. Keys are distinct and there is at least one (see [`Op::put_many`]).
    PutMany { pairs: Vec<(Key, Value)> },
    /// Read several keys from one state (Redis's `MGET`), answering [`Output::Values`] in
    /// the order asked. At least one key.
    GetMany { keys: Vec<Key> },
    /// One page of a walk over every key (Redis's `SCAN cursor MATCH pattern COUNT count`):
    /// the keys at and after position `cursor` in the fixed scan order, examining about
    /// `count` of them, those matching `pattern` answered ([`Output::Scan`]). `count:
    /// u64::MAX` reads every key at once (`KEYS`). See [`listing`].
    Scan {
        cursor: u64,
        pattern: Option<Bytes>,
        count: u64,
    },
    /// How many keys there are (Redis's `DBSIZE`), answering [`Output::Length`].
    Count,
    /// A transaction (Redis's `MULTI`/`EXEC`, and `MSETNX`): if every guard holds, apply
    /// `ops` in order as one step of the state machine (one log entry), answering
    /// [`Output::Txn`] with their outputs; otherwise change nothing and answer
    /// `Output::Txn(None)`. `now` is the proposing leader's clock, stamped with the ops'
    /// deadlines ([`Op::stamped`]): keys past their deadline at `now` are removed first, as
    /// [`Op::ExpireDue`] would (see [`txn`]).
    Txn {
        guards: Vec<Guard>,
        ops: Vec<Op>,
        now: Option<Time>,
    },
    /// Read the modification revision of each key (what `WATCH` remembers), answering
    /// [`Output::Revisions`] in the order asked. At least one key. See [`txn`].
    Revisions { keys: Vec<Key> },
}

/// What [`Op::key`] answers for operations on no particular key.
static NO_KEY: Key = Bytes::from_static(b"");

/// When a [`Op::Set`] sets: always, or only if the key is absent (`NX`) or present (`XX`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum SetWhen {
    Always,
    IfAbsent,
    IfPresent,
}

impl SetWhen {
    /// Whether a set conditioned on `self` happens when the key holds `previous`.
    pub fn allows(self, previous: Option<&Value>) -> bool {
        match self {
            SetWhen::Always => true,
            SetWhen::IfAbsent => previous.is_none(),
            SetWhen::IfPresent => previous.is_some(),
        }
    }
}

impl Op {
    pub fn key(&self) -> &Key {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Delete { key }
            | Op::Append { key, .. }
            | Op::Cas { key, .. }
            | Op::GetSiblings { key }
            | Op::PutWithContext { key, .. }
            | Op::CrdtUpdate { key, .. }
            | Op::CrdtRead { key, .. }
            | Op::Incr { key, .. }
            | Op::PutExpiring { key, .. }
            | Op::Expire { key, .. }
            | Op::Persist { key }
            | Op::Ttl { key }
            | Op::Expired { key, .. }
            | Op::ExpireDue { key, .. }
            | Op::Set { key, .. }
            | Op::DeleteIf { key, .. }
            | Op::PutLeased { key, .. }
            | Op::GetDelete { key } => key,
            Op::PutMany { pairs } => &pairs[0].0,
            Op::GetMany { keys } | Op::Revisions { keys } => &keys[0],
            Op::Txn { guards, ops, .. } => guards
                .first()
                .map(Guard::key)
                .or_else(|| ops.first().map(Op::key))
                .unwrap_or(&NO_KEY),
            Op::Scan { .. } | Op::Count => &NO_KEY,
            Op::LeaseGrant { .. }
            | Op::LeaseKeepAlive { .. }
            | Op::LeaseRevoke { .. }
            | Op::LeaseExpired { .. }
            | Op::LeaseRead { .. } => &NO_KEY,
        }
    }

    /// Every key the operation reads or writes, in the order given: one, except for
    /// [`Op::PutMany`] and [`Op::GetMany`]. [`Op::key`] is the first of them.
    pub fn keys(&self) -> Vec<&Key> {
        match self {
            Op::PutMany { pairs } => pairs.iter().map(|(key, _)| key).collect(),
            Op::GetMany { keys } | Op::Revisions { keys } => keys.iter().collect(),
            Op::Txn { guards, ops, .. } => txn::keys(guards, ops),
            Op::Scan { .. } | Op::Count => Vec::new(),
            op if op.is_lease_op() => Vec::new(),
            op => vec![op.key()],
        }
    }

    /// True for operations that involve more than one key and so need one order of all
    /// writes (a log) to be atomic: protocols that replicate each key on its own refuse them.
    pub fn is_multi_key(&self) -> bool {
        matches!(
            self,
            Op::PutMany { .. } | Op::GetMany { .. } | Op::Txn { .. } | Op::Revisions { .. }
        ) || self.reads_every_key()
    }

    /// True for reads of the whole keyspace ([`Op::Scan`], [`Op::Count`]), which name no key:
    /// [`Op::keys`] is empty, and whatever a protocol checks per key it must check for all.
    pub fn reads_every_key(&self) -> bool {
        matches!(self, Op::Scan { .. } | Op::Count)
    }

    /// How a protocol that replicates each key on its own refuses an operation that
    /// [`Op::is_multi_key`]: a definite error naming the protocols that can serve it.
    pub fn multi_key_refusal(&self, protocol: &str) -> ClientError {
        if self.reads_every_key() {
            return ClientError::Rejected(format!(
                "{}: listing keys (SCAN, KEYS, DBSIZE) needs one state that holds every key; \
                 {protocol} replicates each key on its own, on the replicas its key picks; \
                 serve with --protocol raft, multipaxos, zab, primary-backup, chain or craq",
                self.name()
            ));
        }
        if matches!(self, Op::Txn { .. } | Op::Revisions { .. }) {
            return ClientError::Rejected(format!(
                "{}: transactions (MULTI/EXEC, WATCH, MSETNX) need one order of all writes, \
                 a log; {protocol} replicates each key on its own; serve with --protocol \
                 raft, multipaxos, zab, primary-backup, chain or craq",
                self.name()
            ));
        }
        ClientError::Rejected(format!(
            "{}: an atomic operation on several keys (MSET, MGET) needs one order of all \
             writes, a log; {protocol} replicates each key on its own; serve with --protocol \
             raft, multipaxos, zab, primary-backup or chain, or use one key per command",
            self.name()
        ))
    }

    /// `MSET`: every pair in one step, a key given twice taking its last value (as Redis
    /// does); `None` without pairs.
    pub fn put_many(pairs: Vec<(Key, Value)>) -> Option<Op> {
        let mut last: BTreeMap<Key, usize> = BTreeMap::new();
        for (i, (key, _)) in pairs.iter().enumerate() {
            last.insert(key.clone(), i);
        }
        let pairs: Vec<(Key, Value)> = pairs
            .into_iter()
            .enumerate()
            .filter(|(i, (key, _))| last[key] == *i)
            .map(|(_, pair)| pair)
            .collect();
        (!pairs.is_empty()).then_some(Op::PutMany { pairs })
    }

    /// True for operations that never change the state.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::Get { .. }
                | Op::GetSiblings { .. }
                | Op::CrdtRead { .. }
                | Op::Ttl { .. }
                | Op::GetMany { .. }
                | Op::Revisions { .. }
                | Op::Scan { .. }
                | Op::Count
                | Op::LeaseRead { .. }
        )
    }

    /// The operation's name as it appears in histories (`get`, `put`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Delete { .. } => "delete",
            Op::Append { .. } => "append",
            Op::Cas { .. } => "cas",
            Op::GetSiblings { .. } => "get_siblings",
            Op::PutWithContext { .. } => "put_with_context",
            Op::CrdtUpdate { .. } => "crdt_update",
            Op::CrdtRead { .. } => "crdt_read",
            Op::Incr { .. } => "incr",
            Op::PutExpiring { .. } => "put_ttl",
            Op::Expire { .. } => "expire",
            Op::Persist { .. } => "persist",
            Op::Ttl { .. } => "ttl",
            Op::Expired { .. } => "expired",
            Op::ExpireDue { .. } => "expire_due",
            Op::Set { .. } => "set",
            Op::DeleteIf { .. } => "delete_if",
            Op::GetDelete { .. } => "get_delete",
            Op::PutMany { .. } => "put_many",
            Op::GetMany { .. } => "get_many",
            Op::Scan { .. } => "scan",
            Op::Count => "count",
            Op::Txn { .. } => "txn",
            Op::Revisions { .. } => "revisions",
            Op::LeaseGrant { .. } => "lease_grant",
            Op::LeaseKeepAlive { .. } => "lease_keepalive",
            Op::LeaseRevoke { .. } => "lease_revoke",
            Op::LeaseExpired { .. } => "lease_expired",
            Op::PutLeased { .. } => "put_leased",
            Op::LeaseRead { .. } => "lease_read",
        }
    }
}

/// What an applied operation returns.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Output {
    /// PUT succeeded.
    Done,
    /// The value a GET read (`None`: the key is absent).
    Value(Option<Value>),
    /// DELETE: whether the key existed.
    Existed(bool),
    /// APPEND: the length of the value after appending.
    Length(u64),
    /// CAS: whether the comparison held and the value was swapped.
    Swapped(bool),
    /// GET_SIBLINGS (and GET on a key that keeps siblings): the values of the concurrent
    /// versions, deletions left out (none: the key is absent), and the context that covers
    /// them all, to be handed back with the next write.
    Siblings {
        values: Vec<Value>,
        context: CausalContext,
    },
    /// PUT_WITH_CONTEXT: the context covering the write just made (the caller's context plus
    /// the new version), so that the caller's next write supersedes it.
    Written { context: CausalContext },
    /// CRDT_READ: the CRDT's value.
    Crdt(CrdtValue),
    /// INCR: the value after adding; `None` when the stored value is not a decimal integer or
    /// the sum would overflow (nothing changed).
    Counter(Option<i64>),
    /// TTL: whether the key exists and until when.
    Lifetime(Lifetime),
    /// GET_MANY: each key's value (`None`: absent), in the order asked.
    Values(Vec<Option<Value>>),
    /// SCAN: the keys of one page that match, and the cursor of the next page (0: the walk
    /// is over).
    Scan { cursor: u64, keys: Vec<Key> },
    /// TXN: the outputs of its operations in order, or `None` when a guard failed and
    /// nothing was applied (`EXEC` then answers a nil array).
    Txn(Option<Vec<Output>>),
    /// REVISIONS: each key's modification revision, in the order asked.
    Revisions(Vec<u64>),
    /// LEASE_GRANT, LEASE_KEEPALIVE, LEASE_READ: the lease (`None`: there is no such lease,
    /// or it is past due); LEASE_REVOKE and LEASE_EXPIRED: the lease ended, with the keys it
    /// removed.
    Lease(Option<LeaseView>),
}

/// The integer a value spells in decimal, as Redis reads it: optional `-`, digits, no
/// spaces, no leading `+`, no leading zeros, within `i64`.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

/// How a read wants to be served. Protocols that cannot honour a mode serve it with a stronger
/// one (every protocol can serve `Linearizable`).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub enum ReadMode {
    /// The read sees every write that completed before it was invoked.
    #[default]
    Linearizable,
    /// The read is answered from the contacted replica's own state, without coordination; it
    /// may be stale. What ordering it still guarantees depends on the protocol.
    Local,
    /// The contacted replica first catches up with the leader (ZooKeeper's `sync`), then answers
    /// from its own state: the read sees every write the leader had committed or proposed when
    /// the sync reached it. Not linearizable: a leader deposed without knowing it can answer
    /// the sync. Protocols without a leader-driven catch-up serve it as `Linearizable`.
    Sync,
}

/// A client's request to one node.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Request {
    pub client: ClientId,
    /// Position of this request in the client's session (see the module docs); 0 = no session.
    pub seq: u64,
    pub op: Op,
    pub read: ReadMode,
    /// Read and write quorum sizes for this request only (Dynamo's per-request R and W).
    /// Protocols without tunable quorums ignore it; `None` uses the cluster's.
    #[serde(default)]
    pub quorum: Option<QuorumSizes>,
}

/// A request's own quorum sizes: `r` replicas must answer a read (and the read phase of a
/// write), `w` must acknowledge a write (and a read's write-back).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct QuorumSizes {
    pub r: usize,
    pub w: usize,
}

impl Request {
    pub fn command(&self) -> Command {
        Command {
            client: self.client,
            seq: self.seq,
            op: self.op.clone(),
        }
    }
}

/// A node's answer to one request.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub client: ClientId,
    pub seq: u64,
    pub result: Result<Output, ClientError>,
}

/// Why a request was not answered with an output.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ClientError {
    /// This node is not the one that serves the request and did not accept it; `leader` is its
    /// best guess of the node that does. The request did not take effect through this node.
    NotLeader { leader: Option<NodeId> },
    /// The node accepted the request but lost the authority to finish it (for example a leader
    /// that was deposed). The request may or may not take effect; retrying it with the same
    /// sequence number is safe.
    Indeterminate { leader: Option<NodeId> },
    /// The client's session was evicted; the request's outcome cannot be known.
    SessionExpired,
    /// Not enough replicas answered to complete the request; it may or may not take effect.
    Unavailable,
    /// The request was refused and did not take effect (for example a value over the limit).
    Rejected(String),
}

impl ClientError {
    /// True when the request certainly did not take effect through the node that answered.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            ClientError::NotLeader { .. } | ClientError::Rejected(_)
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = |leader: &Option<NodeId>| match leader {
            Some(id) => format!(" (leader is {id})"),
            None => String::from(" (leader unknown)"),
        };
        match self {
            ClientError::NotLeader { leader } => write!(f, "not the leader{}", hint(leader)),
            ClientError::Indeterminate { leader } => {
                write!(f, "outcome unknown: leadership lost{}", hint(leader))
            }
            ClientError::SessionExpired => write!(f, "client session expired"),
            ClientError::Unavailable => write!(f, "not enough replicas answered"),
            ClientError::Rejected(why) => write!(f, "rejected: {why}"),
        }
    }
}

/// An operator's request to change the cluster itself rather than the data: membership and
/// leadership. Protocols that do not support a command answer `ClientError::Rejected`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct AdminRequest {
    pub client: ClientId,
    pub seq: u64,
    pub command: AdminCommand,
}

/// A change to the cluster.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum AdminCommand {
    /// Add a non-voting member that receives the log and can later be promoted.
    AddLearner(NodeId),
    /// Add a non-voting member, recording the address drivers reach it at (an opaque string
    /// that travels with the configuration, so every node learns it from the log).
    AddLearnerAt { id: NodeId, address: String },
    /// Add a voting member (or promote a learner).
    AddVoter(NodeId),
    /// Remove a member.
    RemoveNode(NodeId),
    /// Replace the voting membership as a whole.
    ChangeMembership { voters: Vec<NodeId> },
    /// Hand leadership to another member.
    TransferLeadership(NodeId),
}

/// A client operation as it is ordered and applied by a replicated log.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Command {
    pub client: ClientId,
    pub seq: u64,
    pub op: Op,
}

/// The outcome of applying one command to a [`KvStore`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Applied {
    /// The command was applied now.
    Fresh(Output),
    /// The command had already been applied; this is its remembered output.
    Cached(Output),
    /// An older request of a session that has moved on; nobody waits for an answer.
    Stale,
    /// The session is unknown and the request is not its first: outcome unknown.
    Expired,
}

impl Applied {
    /// The reply a waiting client should get, if any.
    pub fn reply(self) -> Option<Result<Output, ClientError>> {
        match self {
            Applied::Fresh(output) | Applied::Cached(output) => Some(Ok(output)),
            Applied::Stale => None,
            Applied::Expired => Some(Err(ClientError::SessionExpired)),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
struct Session {
    last_seq: u64,
    last_output: Output,
    /// The store's `tick` when this session was last used; the key of `lru`.
    used: u64,
}

/// The default bound on remembered client sessions.
pub const SESSIONS_MAX_DEFAULT: usize = 65_536;

/// Where a request stands against its client's session ([`KvStore::standing`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Standing<'a> {
    /// The session's last applied request: its remembered output.
    Cached(&'a Output),
    /// An earlier request of the session, applied or superseded: a stale duplicate.
    Superseded,
    /// Not applied yet. `known`: the store holds the session (or the request uses none,
    /// sequence number 0).
    New { known: bool },
}

/// The key-value state machine with exactly-once client sessions.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<Key, Value>,
    /// Deadlines of the keys that expire, on the clock of the leader that proposed them.
    #[serde(default)]
    deadlines: BTreeMap<Key, Time>,
    /// The same deadlines, earliest first: what [`KvStore::due`] walks.
    #[serde(default)]
    by_deadline: BTreeSet<(Time, Key)>,
    /// CRDTs, addressed by key and kind. Applied in log order on one logical copy, a CRDT
    /// behaves as its sequential data type (a counter, a set, a register).
    #[serde(default)]
    crdts: BTreeMap<(Key, CrdtKind), Crdt>,
    /// CRDT updates applied: the stamps of LWW-Register writes, so the later write wins.
    #[serde(default)]
    crdt_updates: u64,
    /// Every key in scan order (see [`listing`]): derived, never serialized.
    #[serde(skip)]
    by_hash: listing::HashOrder,
    sessions: BTreeMap<ClientId, Session>,
    /// Sessions by last use, oldest first: the eviction order.
    lru: BTreeMap<u64, ClientId>,
    /// Counts applied session commands; a logical clock for `lru`.
    tick: u64,
    sessions_max: usize,
    /// Counts changes to keys (values and deadlines), for `WATCH`: the count at the latest change.
    /// Depends only on the applied sequence, so every replica agrees (see [`txn`]).
    change_count: u64,
    /// Per present key, the revision of its latest change.
    last_changed: BTreeMap<Key, u64>,
    /// The revision of the latest removal of any key: what an absent key's revision reads.
    last_removed: u64,
    /// Applied commands that changed something: the same on every replica (see [`changes`]).
    #[serde(default)]
    revision: u64,
    /// What recent commands changed, for watchers: derived, never serialized (see [`changes`]).
    #[serde(skip)]
    recent: changes::Recent,
    /// Leases by id (see [`lease`]).
    #[serde(default)]
    leases: BTreeMap<u64, lease::Lease>,
    /// The same leases' deadlines, earliest first: what [`KvStore::due`] walks.
    #[serde(default)]
    leases_by_deadline: BTreeSet<(Time, u64)>,
    /// The lease each attached key belongs to.
    #[serde(default)]
    lease_of: BTreeMap<Key, u64>,
    /// Leases granted so far: the last id handed out.
    #[serde(default)]
    leases_granted: u64,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(SESSIONS_MAX_DEFAULT)
    }
}

impl KvStore {
    pub fn new(sessions_max: usize) -> KvStore {
        assert!(sessions_max > 0, "sessions_max must be positive");
        KvStore {
            data: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
            crdts: BTreeMap::new(),
            crdt_updates: 0,
            by_hash: listing::HashOrder::default(),
            sessions: BTreeMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            sessions_max,
            revision: 0,
            change_count: 0,
            last_changed: BTreeMap::new(),
            last_removed: 0,
            recent: changes::Recent::default(),
            leases: BTreeMap::new(),
            leases_by_deadline: BTreeSet::new(),
            lease_of: BTreeMap::new(),
            leases_granted: 0,
        }
    }

    /// Applies `command` with session deduplication (see the module docs).
    pub fn apply(&mut self, command: &Command) -> Applied {
        if command.seq == 0 {
            return Applied::Fresh(self.apply_recorded(&command.op));
        }
        match self.sessions.get(&command.client) {
            Some(session) if command.seq < session.last_seq => return Applied::Stale,
            Some(session) if command.seq == session.last_seq => {
                return Applied::Cached(session.last_output.clone())
            }
            Some(_) => {}
            None if command.seq > 1 => return Applied::Expired,
            None => {}
        }
        let output = self.apply_recorded(&command.op);
        self.remember(command.client, command.seq, output.clone());
        Applied::Fresh(output)
    }

    /// Applies `command` like [`KvStore::apply`], except that a command of an unknown session is
    /// applied as the session's first, whatever its sequence number.
    ///
    /// For protocols that serve reads without logging them (primary-backup, chain replication):
    /// there a session's reads use up sequence numbers the log never sees, so its first logged
    /// command may be number 5, and an evicted session cannot be told from a new one. The price
    /// is the case rule 4 above guards against: a retry of a command whose session was evicted
    /// in between is applied again (which takes `sessions_max` other sessions acting between
    /// the attempt and its retry).
    pub fn apply_with_unlogged_reads(&mut self, command: &Command) -> Applied {
        if command.seq != 0 && !self.sessions.contains_key(&command.client) {
            let output = self.apply_recorded(&command.op);
            self.remember(command.client, command.seq, output.clone());
            return Applied::Fresh(output);
        }
        self.apply(command)
    }

    /// Where `client`'s request `seq` stands against its session, in one lookup: the three
    /// questions a leader asks of every request (answered before? superseded? session known?)
    /// cost three walks of a map of up to `sessions_max` sessions before (BENCHMARKS.md, "What
    /// a request costs the leader").
    pub fn standing(&self, client: ClientId, seq: u64) -> Standing<'_> {
        let Some(session) = self.sessions.get(&client) else {
            return Standing::New { known: seq == 0 };
        };
        match seq {
            0 => Standing::New { known: true },
            seq if seq == session.last_seq => Standing::Cached(&session.last_output),
            seq if seq < session.last_seq => Standing::Superseded,
            _ => Standing::New { known: true },
        }
    }

    /// The remembered output of `client`'s request `seq`, if that is the last one applied.
    pub fn cached(&self, client: ClientId, seq: u64) -> Option<&Output> {
        match self.standing(client, seq) {
            Standing::Cached(output) => Some(output),
            _ => None,
        }
    }

    /// True when `client`'s request `seq` was already applied (or superseded).
    pub fn already_applied(&self, client: ClientId, seq: u64) -> bool {
        matches!(
            self.standing(client, seq),
            Standing::Cached(_) | Standing::Superseded
        )
    }

    fn remember(&mut self, client: ClientId, seq: u64, output: Output) {
        self.tick += 1;
        let used = self.tick;
        if let Some(old) = self.sessions.insert(
            client,
            Session {
                last_seq: seq,
                last_output: output,
                used,
            },
        ) {
            self.lru.remove(&old.used);
        }
        self.lru.insert(used, client);
        while self.sessions.len() > self.sessions_max {
            let (_, oldest) = self.lru.pop_first().expect("lru tracks every session");
            self.sessions.remove(&oldest);
        }
        debug_assert_eq!(self.sessions.len(), self.lru.len());
    }

    /// Applies `op` without any session bookkeeping.
    pub fn apply_op(&mut self, op: &Op) -> Output {
        match op {
            Op::Get { key } => Output::Value(self.data.get(key).cloned()),
            Op::Put { key, value } => {
                self.put(key, value.clone(), None);
                Output::Done
            }
            Op::Delete { key } => Output::Existed(self.remove(key)),
            Op::Append { key, value } => {
                let mut joined = BytesMut::new();
                if let Some(old) = self.data.get(key) {
                    joined.extend_from_slice(old);
                }
                joined.extend_from_slice(value);
                let length = joined.len() as u64;
                self.insert_data(key, joined.freeze());
                Output::Length(length)
            }
            Op::Cas { key, expected, new } => {
                let holds = self.data.get(key) == expected.as_ref();
                if holds {
                    self.put(key, new.clone(), None);
                }
                Output::Swapped(holds)
            }
            // One copy, applied in one order: there is never more than one version, so a
            // context supersedes everything and the answer's context is empty.
            Op::GetSiblings { .. }
            | Op::CrdtRead { .. }
            | Op::Ttl { .. }
            | Op::GetMany { .. }
            | Op::Revisions { .. }
            | Op::Scan { .. }
            | Op::LeaseRead { .. }
            | Op::Count => self.read(op),
            Op::Txn { guards, ops, now } => self.apply_txn(guards, ops, *now),
            Op::Set {
                key,
                value,
                when,
                expiry,
            } => {
                let previous = self.data.get(key).cloned();
                if when.allows(previous.as_ref()) {
                    self.put(key, value.clone(), expiry.map(expiry::stamped_deadline));
                }
                Output::Value(previous)
            }
            Op::DeleteIf { key, expected } => {
                let holds = self.data.get(key) == Some(expected);
                if holds {
                    self.remove(key);
                }
                Output::Existed(holds)
            }
            Op::GetDelete { key } => {
                let previous = self.data.get(key).cloned();
                self.remove(key);
                Output::Value(previous)
            }
            Op::PutMany { pairs } => {
                for (key, value) in pairs {
                    self.put(key, value.clone(), None);
                }
                Output::Done
            }
            Op::PutExpiring { key, value, expiry } => {
                let deadline = expiry::stamped_deadline(*expiry);
                self.put(key, value.clone(), Some(deadline));
                Output::Done
            }
            Op::Expire { key, expiry } => Output::Existed(self.apply_expire(key, *expiry)),
            Op::Persist { key } => Output::Existed(self.apply_persist(key)),
            Op::Expired { key, deadline } => Output::Existed(self.apply_expired(key, *deadline)),
            Op::ExpireDue { key, now } => self.expire_due(key, *now),
            Op::LeaseGrant { ttl_ms, now } => {
                self.apply_lease_grant(*ttl_ms, lease::stamped_now(*now))
            }
            Op::LeaseKeepAlive { lease, now } => {
                self.apply_lease_keep_alive(*lease, lease::stamped_now(*now))
            }
            Op::LeaseRevoke { lease } => Output::Lease(self.end_lease(*lease)),
            Op::LeaseExpired { lease, deadline } => self.apply_lease_expired(*lease, *deadline),
            Op::PutLeased {
                key,
                value,
                lease,
                now,
            } => {
                Output::Existed(self.apply_put_leased(key, value, *lease, lease::stamped_now(*now)))
            }
            Op::PutWithContext { key, value, .. } => {
                match value {
                    Some(value) => self.put(key, value.clone(), None),
                    None => {
                        self.remove(key);
                    }
                }
                Output::Written {
                    context: CausalContext::new(),
                }
            }
            Op::Incr { key, by } => {
                let current = match self.data.get(key) {
                    None => Some(0),
                    Some(bytes) => parse_i64(bytes),
                };
                let sum = current.and_then(|n| n.checked_add(*by));
                if let Some(sum) = sum {
                    self.insert_data(key, Bytes::from(sum.to_string()));
                }
                Output::Counter(sum)
            }
            Op::CrdtUpdate { key, op } => {
                // The one copy is "node 0"; its LWW stamps are the apply order.
                self.crdt_updates += 1;
                let stamp = LwwStamp {
                    time: HlcStamp {
                        physical: self.crdt_updates,
                        logical: 0,
                    },
                    node: NodeId(0),
                };
                self.crdts
                    .entry((key.clone(), op.kind()))
                    .or_insert_with(|| Crdt::new(op.kind()))
                    .apply(op, NodeId(0), stamp);
                Output::Done
            }
        }
    }

    /// Sets `key` to `value` with `deadline` (`None`: it never expires; Redis's SET clears a
    /// time to live). APPEND and INCR keep the deadline, as in Redis, by not calling this.
    fn put(&mut self, key: &Key, value: Value, deadline: Option<Time>) {
        self.insert_data(key, value);
        self.set_deadline(key, deadline);
    }

    /// Sets the value of `key`, keeping the scan order in step (every insert goes through here).
    fn insert_data(&mut self, key: &Key, value: Value) {
        if self.data.insert(key.clone(), value).is_none() {
            self.by_hash.inserted(key);
        }
        self.touch(key);
    }

    /// Removes the value of `key`, keeping the scan order in step (every removal goes through
    /// here); true when it existed.
    fn remove_data(&mut self, key: &Key) -> bool {
        let existed = self.data.remove(key).is_some();
        if existed {
            self.by_hash.removed(key);
            self.touch(key);
        }
        existed
    }

    /// Removes `key` and its deadline; true when it existed.
    fn remove(&mut self, key: &Key) -> bool {
        self.set_deadline(key, None);
        self.remove_data(key)
    }

    /// Serves a read from the current state without changing it.
    ///
    /// # Panics
    /// If `op` is not a read.
    pub fn read(&self, op: &Op) -> Output {
        match op {
            Op::Get { key } => Output::Value(self.data.get(key).cloned()),
            Op::GetSiblings { key } => Output::Siblings {
                values: self.data.get(key).cloned().into_iter().collect(),
                context: CausalContext::new(),
            },
            Op::CrdtRead { key, kind } => Output::Crdt(
                self.crdts
                    .get(&(key.clone(), *kind))
                    .map_or_else(|| Crdt::new(*kind).value(), Crdt::value),
            ),
            Op::Ttl { key } => Output::Lifetime(self.lifetime(key)),
            Op::GetMany { keys } => {
                Output::Values(keys.iter().map(|key| self.data.get(key).cloned()).collect())
            }
            Op::Revisions { keys } => {
                Output::Revisions(keys.iter().map(|key| self.revision_of(key)).collect())
            }
            Op::Scan { .. } | Op::Count => self.read_listing(op),
            Op::LeaseRead { lease } => self.read_lease(*lease),
            _ => panic!("KvStore::read called with a write: {op:?}"),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.data.get(key)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    /// All key-value pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.data.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn cmd(client: u64, seq: u64, op: Op) -> Command {
        Command {
            client: ClientId(client),
            seq,
            op,
        }
    }

    #[test]
    fn each_operation_has_its_documented_effect() {
        let mut kv = KvStore::default();
        let k = b("k");
        assert_eq!(
            kv.apply_op(&Op::Get { key: k.clone() }),
            Output::Value(None)
        );
        assert_eq!(
            kv.apply_op(&Op::Append {
                key: k.clone(),
                value: b("ab")
            }),
            Output::Length(2)
        );
        assert_eq!(
            kv.apply_op(&Op::Append {
                key: k.clone(),
                value: b("cd")
            }),
            Output::Length(4)
        );
        assert_eq!(kv.get(b"k"), Some(&b("abcd")));
        let cas = |expected: Option<&str>, new: &str| Op::Cas {
            key: b("k"),
            expected: expected.map(b),
            new: b(new),
        };
        assert_eq!(kv.apply_op(&cas(Some("zz"), "x")), Output::Swapped(false));
        assert_eq!(kv.get(b"k"), Some(&b("abcd")));
        assert_eq!(kv.apply_op(&cas(Some("abcd"), "x")), Output::Swapped(true));
        assert_eq!(kv.get(b"k"), Some(&b("x")));
        assert_eq!(
            kv.apply_op(&Op::Delete { key: k.clone() }),
            Output::Existed(true)
        );
        assert_eq!(
            kv.apply_op(&Op::Delete { key: k.clone() }),
            Output::Existed(false)
        );
        assert_eq!(kv.apply_op(&cas(None, "fresh")), Output::Swapped(true));
        assert_eq!(
            kv.apply_op(&Op::Put {
                key: k,
                value: b("p")
            }),
            Output::Done
        );
        assert_eq!(kv.get(b"k"), Some(&b("p")));
    }

    #[test]
    fn one_copy_serves_siblings_and_crdts_as_sequential_types() {
        let mut kv = KvStore::default();
        let k = b("k");
        let written = kv.apply_op(&Op::PutWithContext {
            key: k.clone(),
            value: Some(b("a")),
            context: CausalContext::new(),
        });
        assert_eq!(
            written,
            Output::Written {
                context: CausalContext::new()
            }
        );
        assert_eq!(
            kv.apply_op(&Op::GetSiblings { key: k.clone() }),
            Output::Siblings {
                values: vec![b("a")],
                context: CausalContext::new()
            }
        );
        let set = |value: &str| Op::CrdtUpdate {
            key: k.clone(),
            op: CrdtOp::LwwSet(b(value)),
        };
        // The later write wins even when its value sorts lower.
        kv.apply_op(&set("z"));
        kv.apply_op(&set("a"));
        let read = Op::CrdtRead {
            key: k.clone(),
            kind: CrdtKind::LwwRegister,
        };
        assert_eq!(
            kv.apply_op(&read),
            Output::Crdt(CrdtValue::Register(Some(b("a"))))
        );
        // CRDTs live beside the register of the same name, addressed by kind.
        assert_eq!(kv.get(b"k"), Some(&b("a")));
        let counter = Op::CrdtRead {
            key: k,
            kind: CrdtKind::PnCounter,
        };
        assert_eq!(kv.read(&counter), Output::Crdt(CrdtValue::Counter(0)));
    }

    #[test]
    fn a_retried_append_is_applied_exactly_once() {
        let mut kv = KvStore::default();
        let append = cmd(
            7,
            1,
            Op::Append {
                key: b("k"),
                value: b("x"),
            },
        );
        assert_eq!(kv.apply(&append), Applied::Fresh(Output::Length(1)));
        assert_eq!(kv.apply(&append), Applied::Cached(Output::Length(1)));
        assert_eq!(kv.get(b"k"), Some(&b("x")));
        let next = cmd(
            7,
            2,
            Op::Append {
                key: b("k"),
                value: b("y"),
            },
        );
        assert_eq!(kv.apply(&next), Applied::Fresh(Output::Length(2)));
        assert_eq!(kv.apply(&append), Applied::Stale);
        assert_eq!(kv.get(b"k"), Some(&b("xy")));
    }

    #[test]
    fn an_evicted_session_reports_expiry_instead_of_reapplying() {
        let mut kv = KvStore::new(2);
        let op = || Op::Append {
            key: b("k"),
            value: b("x"),
        };
        assert!(matches!(kv.apply(&cmd(1, 1, op())), Applied::Fresh(_)));
        assert!(matches!(kv.apply(&cmd(1, 2, op())), Applied::Fresh(_)));
        assert!(matches!(kv.apply(&cmd(2, 1, op())), Applied::Fresh(_)));
        assert!(matches!(kv.apply(&cmd(3, 1, op())), Applied::Fresh(_)));
        assert_eq!(kv.sessions_len(), 2);
        // Client 1 was least recently used and is gone: its retry cannot be deduplicated.
        assert_eq!(kv.apply(&cmd(1, 2, op())), Applied::Expired);
        assert_eq!(kv.get(b"k").map(|v| v.len()), Some(4));
        assert_eq!(
            Applied::Expired.reply(),
            Some(Err(ClientError::SessionExpired))
        );
    }

    #[test]
    fn with_unlogged_reads_a_session_may_start_at_any_number() {
        let mut kv = KvStore::default();
        let op = || Op::Append {
            key: b("k"),
            value: b("x"),
        };
        assert_eq!(kv.apply(&cmd(1, 3, op())), Applied::Expired);
        assert_eq!(
            kv.apply_with_unlogged_reads(&cmd(1, 3, op())),
            Applied::Fresh(Output::Length(1))
        );
        assert_eq!(
            kv.apply_with_unlogged_reads(&cmd(1, 3, op())),
            Applied::Cached(Output::Length(1))
        );
        assert_eq!(
            kv.apply_with_unlogged_reads(&cmd(1, 2, op())),
            Applied::Stale
        );
        assert_eq!(kv.get(b"k"), Some(&b("x")));
    }

    #[test]
    fn incr_is_one_deduplicated_step() {
        let mut kv = KvStore::default();
        let incr = |by| Op::Incr { key: b("n"), by };
        assert_eq!(
            kv.apply(&cmd(1, 1, incr(1))),
            Applied::Fresh(Output::Counter(Some(1)))
        );
        // The retry of request 1 answers what request 1 answered, and adds nothing.
        assert_eq!(
            kv.apply(&cmd(1, 1, incr(1))),
            Applied::Cached(Output::Counter(Some(1)))
        );
        assert_eq!(
            kv.apply(&cmd(1, 2, incr(-10))),
            Applied::Fresh(Output::Counter(Some(-9)))
        );
        assert_eq!(kv.get(b"n"), Some(&b("-9")));
        kv.apply_op(&Op::Put {
            key: b("n"),
            value: b("x1"),
        });
        assert_eq!(kv.apply_op(&incr(1)), Output::Counter(None));
        assert_eq!(
            kv.get(b"n"),
            Some(&b("x1")),
            "a refused increment changes nothing"
        );
        kv.apply_op(&Op::Put {
            key: b("n"),
            value: b(&i64::MAX.to_string()),
        });
        assert_eq!(kv.apply_op(&incr(1)), Output::Counter(None));
        for bad in [
            "",
            "-",
            "+1",
            "01",
            "-0",
            " 1",
            "1.0",
            "99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"0"), Some(0));
    }

    fn set(value: &str, when: SetWhen) -> Op {
        Op::Set {
            key: b("k"),
            value: b(value),
            when,
            expiry: None,
        }
    }

    #[test]
    fn a_conditional_set_answers_the_previous_value_and_sets_only_when_allowed() {
        let mut kv = KvStore::default();
        // XX on an absent key: nothing set.
        assert_eq!(
            kv.apply_op(&set("x", SetWhen::IfPresent)),
            Output::Value(None)
        );
        assert_eq!(kv.get(b"k"), None);
        // NX on an absent key: the lock is taken.
        assert_eq!(
            kv.apply_op(&set("a", SetWhen::IfAbsent)),
            Output::Value(None)
        );
        assert_eq!(kv.get(b"k"), Some(&b("a")));
        // NX again: refused, and the holder's value is what it answers.
        assert_eq!(
            kv.apply_op(&set("b", SetWhen::IfAbsent)),
            Output::Value(Some(b("a")))
        );
        assert_eq!(kv.get(b"k"), Some(&b("a")));
        assert_eq!(
            kv.apply_op(&set("c", SetWhen::IfPresent)),
            Output::Value(Some(b("a")))
        );
        // GETSET: always sets, answers what was there.
        assert_eq!(
            kv.apply_op(&set("d", SetWhen::Always)),
            Output::Value(Some(b("c")))
        );
        assert_eq!(kv.get(b"k"), Some(&b("d")));
        assert!(SetWhen::Always.allows(None));
        assert!(!SetWhen::IfPresent.allows(None));
    }

    #[test]
    fn a_conditional_set_with_a_time_to_live_is_stamped_and_clears_on_plain_set() {
        let mut kv = KvStore::default();
        let lock = |value: &str| Op::Set {
            key: b("k"),
            value: b(value),
            when: SetWhen::IfAbsent,
            expiry: Some(Expiry::After { ttl_ms: 100 }),
        };
        assert!(lock("a").needs_leader_clock());
        assert!(!set("a", SetWhen::IfAbsent).needs_leader_clock());
        let now = Time::from_nanos(1_000_000_000);
        assert_eq!(kv.apply_op(&lock("a").stamped(now)), Output::Value(None));
        let deadline = now + std::time::Duration::from_millis(100);
        assert_eq!(kv.deadline(b"k"), Some(deadline));
        // A refused NX leaves the holder's deadline alone.
        kv.apply_op(&lock("b").stamped(now + std::time::Duration::from_millis(50)));
        assert_eq!(kv.deadline(b"k"), Some(deadline));
        // A set without a time to live clears it, as Redis's SET does.
        kv.apply_op(&set("c", SetWhen::IfPresent));
        assert_eq!(kv.deadline(b"k"), None);
    }

    #[test]
    fn compare_and_delete_removes_only_the_expected_value() {
        let mut kv = KvStore::default();
        let release = |expected: &str| Op::DeleteIf {
            key: b("k"),
            expected: b(expected),
        };
        assert_eq!(kv.apply_op(&release("a")), Output::Existed(false));
        kv.apply_op(&Op::Put {
            key: b("k"),
            value: b("token-2"),
        });
        // A holder whose lock expired and was taken again cannot release the new holder's.
        assert_eq!(kv.apply_op(&release("token-1")), Output::Existed(false));
        assert_eq!(kv.get(b"k"), Some(&b("token-2")));
        assert_eq!(kv.apply_op(&release("token-2")), Output::Existed(true));
        assert_eq!(kv.get(b"k"), None);
        assert!(!release("x").is_read());
    }

    #[test]
    fn get_delete_answers_the_value_it_removed() {
        let mut kv = KvStore::default();
        let getdel = Op::GetDelete { key: b("k") };
        assert_eq!(kv.apply_op(&getdel), Output::Value(None));
        kv.apply_op(&Op::PutExpiring {
            key: b("k"),
            value: b("v"),
            expiry: Expiry::At {
                deadline: Time::from_nanos(5),
            },
        });
        assert_eq!(kv.apply_op(&getdel), Output::Value(Some(b("v"))));
        assert_eq!(kv.get(b"k"), None);
        assert_eq!(kv.expiring_len(), 0, "the deadline goes with the key");
    }

    #[test]
    fn put_many_sets_all_keys_in_one_step_and_get_many_reads_one_state() {
        let mut kv = KvStore::default();
        let pairs = vec![(b("a"), b("1")), (b("b"), b("2")), (b("a"), b("3"))];
        let mset = Op::put_many(pairs).expect("pairs");
        // A key given twice takes its last value, as in Redis, and is kept once.
        assert_eq!(mset.keys(), [&b("b"), &b("a")]);
        assert!(mset.is_multi_key() && !mset.is_read());
        assert_eq!(Op::put_many(Vec::new()), None);
        assert_eq!(
            kv.apply(&cmd(1, 1, mset.clone())),
            Applied::Fresh(Output::Done)
        );
        assert_eq!(kv.apply(&cmd(1, 1, mset)), Applied::Cached(Output::Done));
        let mget = Op::GetMany {
            keys: vec![b("a"), b("x"), b("b"), b("a")],
        };
        assert!(mget.is_read() && mget.is_multi_key());
        assert_eq!(mget.key(), &b("a"));
        assert_eq!(
            kv.read(&mget),
            Output::Values(vec![Some(b("3")), None, Some(b("2")), Some(b("3"))])
        );
        // A read is refused while any of its keys is past its deadline but not yet expired.
        kv.apply_op(&Op::PutExpiring {
            key: b("x"),
            value: b("v"),
            expiry: Expiry::At {
                deadline: Time::from_nanos(10),
            },
        });
        assert_eq!(
            kv.read_at(&mget, Time::from_nanos(10)),
            Err(ClientError::Unavailable)
        );
        assert!(kv.read_at(&mget, Time::from_nanos(9)).is_ok());
    }

    #[test]
    fn sequence_zero_bypasses_sessions() {
        let mut kv = KvStore::default();
        let op = Op::Append {
            key: b("k"),
            value: b("x"),
        };
        kv.apply(&cmd(1, 0, op.clone()));
        kv.apply(&cmd(1, 0, op));
        assert_eq!(kv.get(b"k"), Some(&b("xx")));
        assert_eq!(kv.sessions_len(), 0);
    }

    #[test]
    fn an_operation_tells_histories_its_key_name_and_kind() {
        let k = b("k");
        let ops = [
            (Op::Get { key: k.clone() }, "get", true),
            (
                Op::Put {
                    key: k.clone(),
                    value: b("v"),
                },
                "put",
                false,
            ),
            (Op::Delete { key: k.clone() }, "delete", false),
            (
                Op::Append {
                    key: k.clone(),
                    value: b("v"),
                },
                "append",
                false,
            ),
            (
                Op::Incr {
                    key: k.clone(),
                    by: 1,
                },
                "incr",
                false,
            ),
            (Op::GetSiblings { key: k.clone() }, "get_siblings", true),
        ];
        for (op, name, read) in ops {
            assert_eq!(op.key(), &k, "{op:?}");
            assert_eq!(op.name(), name, "{op:?}");
            assert_eq!(op.is_read(), read, "{op:?}");
        }
    }

    #[test]
    fn only_an_operation_on_several_keys_or_on_every_key_is_multi_key() {
        let k = b("k");
        let single = [
            Op::Get { key: k.clone() },
            Op::Put {
                key: k.clone(),
                value: b("v"),
            },
            Op::Delete { key: k.clone() },
            Op::Incr {
                key: k.clone(),
                by: 1,
            },
        ];
        for op in single {
            assert!(!op.is_multi_key(), "{op:?}");
        }
        // By kind, not by how many keys it names: one key read with MGET is still multi-key.
        let multi = [
            Op::GetMany {
                keys: vec![k.clone()],
            },
            Op::Revisions { keys: vec![k] },
            Op::Count,
        ];
        for op in multi {
            assert!(op.is_multi_key(), "{op:?}");
        }
    }

    #[test]
    fn a_lease_operation_names_no_key_and_a_leased_put_names_its_own() {
        let lease_ops = [
            Op::LeaseGrant {
                ttl_ms: 1_000,
                now: None,
            },
            Op::LeaseKeepAlive {
                lease: 1,
                now: None,
            },
            Op::LeaseRevoke { lease: 1 },
            Op::LeaseExpired {
                lease: 1,
                deadline: Time::ZERO,
            },
            Op::LeaseRead { lease: 1 },
        ];
        for op in lease_ops {
            assert!(op.keys().is_empty(), "{op:?}");
        }
        let k = b("k");
        let leased = Op::PutLeased {
            key: k.clone(),
            value: b("v"),
            lease: 1,
            now: None,
        };
        assert_eq!(leased.keys(), vec![&k]);
    }

    #[test]
    fn only_a_refusal_is_a_definite_error_and_each_error_says_what_happened() {
        let leader = Some(NodeId(2));
        assert!(ClientError::NotLeader { leader }.is_definite());
        assert!(ClientError::Rejected(String::from("too big")).is_definite());
        assert!(!ClientError::Indeterminate { leader }.is_definite());
        assert!(!ClientError::SessionExpired.is_definite());
        assert!(!ClientError::Unavailable.is_definite());
        assert_eq!(
            ClientError::NotLeader { leader }.to_string(),
            "not the leader (leader is n2)"
        );
        assert_eq!(
            ClientError::NotLeader { leader: None }.to_string(),
            "not the leader (leader unknown)"
        );
        assert_eq!(
            ClientError::Rejected(String::from("too big")).to_string(),
            "rejected: too big"
        );
    }

    #[test]
    fn a_session_remembers_only_its_last_request() {
        let mut kv = KvStore::default();
        let op = || Op::Append {
            key: b("k"),
            value: b("x"),
        };
        assert_eq!(kv.cached(ClientId(1), 1), None);
        assert!(!kv.already_applied(ClientId(1), 1));
        kv.apply(&cmd(1, 1, op()));
        kv.apply(&cmd(1, 2, op()));
        assert_eq!(kv.cached(ClientId(1), 2), Some(&Output::Length(2)));
        // Request 1 was applied, but only the last output is remembered.
        assert_eq!(kv.cached(ClientId(1), 1), None);
        assert!(kv.already_applied(ClientId(1), 1));
        assert!(kv.already_applied(ClientId(1), 2));
        assert!(!kv.already_applied(ClientId(1), 3));
        assert!(!kv.already_applied(ClientId(2), 1));
        // Sequence number 0 bypasses sessions: never cached, never a duplicate.
        assert_eq!(kv.cached(ClientId(1), 0), None);
        assert!(!kv.already_applied(ClientId(1), 0));
        // The same answers in one lookup.
        let output = Output::Length(2);
        assert_eq!(kv.standing(ClientId(1), 2), Standing::Cached(&output));
        assert_eq!(kv.standing(ClientId(1), 1), Standing::Superseded);
        assert_eq!(kv.standing(ClientId(1), 3), Standing::New { known: true });
        assert_eq!(kv.standing(ClientId(1), 0), Standing::New { known: true });
        assert_eq!(kv.standing(ClientId(2), 1), Standing::New { known: false });
        assert_eq!(kv.standing(ClientId(2), 0), Standing::New { known: true });
    }

    #[test]
    fn a_store_counts_and_lists_its_pairs() {
        let mut kv = KvStore::default();
        assert!(kv.is_empty());
        assert_eq!(kv.len(), 0);
        for key in ["a", "b"] {
            kv.apply_op(&Op::Put {
                key: b(key),
                value: b("v"),
            });
        }
        assert!(!kv.is_empty());
        assert_eq!(kv.len(), 2);
        let keys: Vec<&Key> = kv.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [&b("a"), &b("b")]);
    }
}
