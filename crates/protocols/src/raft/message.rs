//! Raft's wire messages, log entries, snapshots and durable records.

use quorate_core::{Command, Durable, KvStore, NodeId};
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
}

/// One log entry. Indices start at 1; index 0 is the empty prefix, of term 0.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub payload: Payload,
}

/// The state machine as of `last_index`, which replaces the log prefix `1..=last_index`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_index: u64,
    pub last_term: u64,
    pub state: KvStore,
}

impl Snapshot {
    /// The snapshot of the empty log.
    pub fn empty(sessions_max: usize) -> Snapshot {
        Snapshot {
            last_index: 0,
            last_term: 0,
            state: KvStore::new(sessions_max),
        }
    }
}

/// Raft's RPCs (Figure 2) and their responses. The sender is known from the envelope, so
/// `candidateId` and `leaderId` are not repeated here.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
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
    },
    AppendEntriesResponse {
        term: u64,
        result: AppendResult,
    },
    InstallSnapshot {
        term: u64,
        snapshot: Arc<Snapshot>,
    },
    InstallSnapshotResponse {
        term: u64,
        last_index: u64,
    },
}

impl Message {
    pub fn term(&self) -> u64 {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. } => *term,
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
