//! Raft's wire messages, log entries, snapshots and durable records.

use super::membership::Membership;
use quorate_core::{Command, Durable, KvChunk, KvStore, NodeId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a log entry carries.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader so that it commits an entry of its own term promptly
    /// (Raft §8): only then are the earlier entries in its log known to be committed.
    Noop,
    /// A client command for the state machine.
    Command(Command),
    /// A cluster configuration (§6). It takes effect on every node as soon as it is in the
    /// node's log, committed or not.
    Config(Membership),
}

/// One log entry. Indices start at 1; index 0 is the empty prefix, of term 0.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub payload: Payload,
}

/// Approximate size of an operation on the wire: its key and the bytes it carries (a
/// transaction: the sum over its operations).
fn op_bytes(op: &quorate_core::Op) -> u64 {
    use quorate_core::Op;
    let value = match op {
        Op::Put { value, .. }
        | Op::Append { value, .. }
        | Op::Set { value, .. }
        | Op::DeleteIf {
            expected: value, ..
        } => value.len(),
        Op::PutMany { pairs } => pairs.iter().map(|(k, v)| 16 + k.len() + v.len()).sum(),
        Op::Cas { expected, new, .. } => expected.as_ref().map_or(0, |e| e.len()) + new.len(),
        Op::Txn { guards, ops, .. } => {
            let guards: usize = guards.iter().map(|g| 16 + g.key().len()).sum();
            return guards as u64 + ops.iter().map(op_bytes).sum::<u64>();
        }
        _ => 0,
    };
    16 + op.key().len() as u64 + value as u64
}

/// Per-entry overhead counted by flow control (index, term, framing).
const ENTRY_OVERHEAD_BYTES: u64 = 24;

impl Entry {
    /// Approximate size on the wire, in bytes: what the per-follower byte limits count.
    pub fn size_bytes(&self) -> u64 {
        let payload = match &self.payload {
            Payload::Noop => 0,
            Payload::Command(command) => op_bytes(&command.op),
            Payload::Config(membership) => 8 * membership.members().len() as u64,
        };
        ENTRY_OVERHEAD_BYTES + payload
    }
}

/// The state machine as of `last_index`, which replaces the log prefix `1..=last_index`,
/// together with the configuration in force at that index.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_index: u64,
    pub last_term: u64,
    pub membership: Membership,
    pub state: KvStore,
}

impl Snapshot {
    /// The snapshot of the empty log: the bootstrap configuration and an empty store.
    pub fn empty(membership: Membership, sessions_max: usize) -> Snapshot {
        Snapshot {
            last_index: 0,
            last_term: 0,
            membership,
            state: KvStore::new(sessions_max),
        }
    }
}

/// One piece of an InstallSnapshot transfer (§7, chunked). Chunks are numbered from 0 by
/// `offset`; the one with `done` completes the snapshot. The total size is never sent: the
/// leader cuts the store as it goes (see `quorate_core::KvChunk`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub last_index: u64,
    pub last_term: u64,
    pub membership: Membership,
    pub offset: u64,
    pub data: KvChunk,
    pub done: bool,
}

/// Raft's RPCs (Figure 2, plus pre-vote, TimeoutNow and ReadIndex from the thesis) and their
/// responses. The sender is known from the envelope, so `candidateId` and `leaderId` are not
/// repeated here.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Thesis §9.6: "would you vote for me in `term`?", asked before bumping any term.
    PreVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    /// `term` is the term asked about when granted, the responder's own term when refused.
    PreVoteResponse {
        term: u64,
        granted: bool,
    },
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        /// The candidate campaigns because the leader handed over (thesis §3.10): voters grant
        /// even though they heard from that leader recently.
        transfer: bool,
    },
    RequestVoteResponse {
        term: u64,
        granted: bool,
    },
    AppendEntries {
        term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Entry>,
        leader_commit: u64,
        /// The leader's heartbeat round when sent, echoed in the response: a quorum of echoes
        /// of round `r` proves leadership after `r` was sent (ReadIndex and leases, §6.4).
        round: u64,
    },
    AppendEntriesResponse {
        term: u64,
        round: u64,
        result: AppendResult,
    },
    InstallSnapshot {
        term: u64,
        /// Boxed: a chunk carries a store's counters and a configuration, several times the
        /// size of every other message.
        chunk: Box<SnapshotChunk>,
    },
    InstallSnapshotResponse {
        term: u64,
        last_index: u64,
        ack: SnapshotAck,
    },
    /// Thesis §3.10: the leader tells a caught-up follower to start an election at once.
    TimeoutNow {
        term: u64,
    },
    /// A follower asks the leader for a read index on behalf of its client (thesis §6.4).
    ReadIndex {
        term: u64,
        id: u64,
    },
    /// The leader confirmed its leadership after the request arrived: reads at or after
    /// `read_index` are linearizable.
    ReadIndexResponse {
        term: u64,
        id: u64,
        read_index: u64,
    },
    /// Sent by a node to itself after a persist (rule 6 of the protocol contract): its vote
    /// in `term` and its log through `index` are durable. Only then does a candidate count its
    /// own vote and a leader count its own log toward a quorum; counting them earlier lets a
    /// crash take back a vote or a "committed" entry.
    Durable {
        term: u64,
        index: u64,
    },
}

impl Message {
    pub fn term(&self) -> u64 {
        match self {
            Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. }
            | Message::TimeoutNow { term }
            | Message::ReadIndex { term, .. }
            | Message::ReadIndexResponse { term, .. }
            | Message::Durable { term, .. } => *term,
        }
    }
}

/// A follower's answer to AppendEntries.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's through `match_index`.
    Success { match_index: u64 },
    /// The consistency check failed at `prev_log_index`. The hint lets the leader skip a whole
    /// conflicting term in one round trip instead of one entry per round trip (§5.3): the
    /// follower's term at `prev_log_index` (`None` if its log is shorter) and the first index
    /// it holds of that term (or its last index + 1).
    Reject {
        prev_log_index: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
    },
}

/// A follower's answer to one InstallSnapshot chunk.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum SnapshotAck {
    /// Chunks `0..next` of the snapshot ending at `last_index` are in hand; send chunk `next`.
    /// `next == 0` asks the leader to start over.
    Next(u64),
    /// The follower holds the state through `last_index` (installed now or earlier).
    Installed,
}

/// Durable state, persisted before the node says anything that depends on it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// `currentTerm` and `votedFor`.
    HardState { term: u64, vote: Option<NodeId> },
    /// Entries appended at `entries[0].index`, replacing any entries from there on.
    Entries(Vec<Entry>),
    /// Everything: hard state, a snapshot and the log after it. Written on compaction and when
    /// a snapshot is installed; earlier records are obsolete.
    Checkpoint {
        term: u64,
        vote: Option<NodeId>,
        snapshot: Arc<Snapshot>,
        entries: Vec<Entry>,
    },
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        matches!(self, Record::Checkpoint { .. })
    }
}
