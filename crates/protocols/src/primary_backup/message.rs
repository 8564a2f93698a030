//! Wire messages, log entries, snapshots and durable records of the view-stamped replicas
//! (primary-backup and chain replication share them).

use quorate_core::{Command, Durable, KvStore, NodeId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a log entry carries.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Payload {
    /// The first entry of every view, appended by its new primary. Committing it commits every
    /// entry before it (entries of earlier views are only committed indirectly, Raft §5.4.2),
    /// and a replica whose log holds it holds everything committed before the view began.
    ViewStart,
    /// A client command for the state machine.
    Command(Command),
}

/// One log entry: the `op`-th operation, assigned by the primary of `view`. The pair
/// (`view`, `op`) is VR's viewstamp. Op-numbers start at 1; op 0 is the empty prefix.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub op: u64,
    pub view: u64,
    pub payload: Payload,
}

/// The state machine as of op `last_op`, replacing the log prefix `1..=last_op`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_op: u64,
    pub last_view: u64,
    pub state: KvStore,
}

impl Snapshot {
    /// The snapshot of the empty log.
    pub fn empty(sessions_max: usize) -> Snapshot {
        Snapshot {
            last_op: 0,
            last_view: 0,
            state: KvStore::new(sessions_max),
        }
    }
}

/// The replicas of a view, in order: the primary (chain: the head) first. In primary-backup
/// every member belongs to the group; in chain replication the group is the chain, from head to
/// tail, and members outside it are standbys until a later view takes them back in.
pub type Group = Arc<Vec<NodeId>>;

/// Messages between replicas. Every message carries the sender's view: a replica refuses
/// messages of views older than its own (answering with its view, so the sender learns it was
/// deposed) and adopts newer ones.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// A replica asks to become primary of `view`; its log ends at (`last_view`, `last_op`).
    StartViewChange {
        view: u64,
        last_op: u64,
        last_view: u64,
    },
    /// The answer to StartViewChange: whether the sender joins `view` under the candidate. It
    /// also reports the sender's log end, which chain replication uses to order the new chain.
    DoViewChange {
        view: u64,
        granted: bool,
        last_op: u64,
        last_view: u64,
    },
    /// Log entries after (`prev_view`, `prev_op`), from the primary to a backup, or from a chain
    /// node to its successor. Empty, it is a heartbeat. `commit` is the sender's commit number.
    Prepare {
        view: u64,
        group: Group,
        prev_op: u64,
        prev_view: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// The answer to Prepare. `commit` is the sender's commit number: in a chain it flows from
    /// the tail back towards the head.
    PrepareOk {
        view: u64,
        result: PrepareResult,
        commit: u64,
    },
    /// State transfer: the sender's snapshot, for a replica that needs entries it compacted.
    NewState {
        view: u64,
        group: Group,
        snapshot: Arc<Snapshot>,
    },
    /// The answer to NewState: the replica now holds everything through `op`.
    NewStateOk {
        view: u64,
        op: u64,
        commit: u64,
    },
    /// Chain replication: the head's heartbeat to every member, so that standbys and nodes far
    /// down the chain know the view is alive (and the head knows they are).
    Ping {
        view: u64,
        group: Group,
        commit: u64,
    },
    PingOk {
        view: u64,
    },
    /// A read-confirmation round: "is `view` still the current view?" A majority answering in
    /// `view` after a read arrived proves no newer view existed when it arrived.
    Confirm {
        view: u64,
        round: u64,
    },
    ConfirmOk {
        view: u64,
        round: u64,
    },
    /// CRAQ: a node holding an uncommitted (dirty) write of a key asks the tail for the commit
    /// number, which names the newest committed version.
    VersionQuery {
        view: u64,
        id: u64,
    },
    VersionReply {
        view: u64,
        id: u64,
        commit: u64,
    },
}

impl Message {
    pub fn view(&self) -> u64 {
        match self {
            Message::StartViewChange { view, .. }
            | Message::DoViewChange { view, .. }
            | Message::Prepare { view, .. }
            | Message::PrepareOk { view, .. }
            | Message::NewState { view, .. }
            | Message::NewStateOk { view, .. }
            | Message::Ping { view, .. }
            | Message::PingOk { view }
            | Message::Confirm { view, .. }
            | Message::ConfirmOk { view, .. }
            | Message::VersionQuery { view, .. }
            | Message::VersionReply { view, .. } => *view,
        }
    }
}

/// A replica's answer to Prepare.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum PrepareResult {
    /// The replica's log matches the sender's through `op`.
    Ok { op: u64 },
    /// The consistency check failed at `prev_op`. The hint lets the sender skip back a whole
    /// view's worth of entries at once: the replica's view at `prev_op` (`None` if its log is
    /// shorter) and the first op it holds of that view (or its last op + 1).
    Mismatch {
        prev_op: u64,
        conflict_view: Option<u64>,
        conflict_op: u64,
    },
    /// The Prepare came from an older view than the replica's, which is in the message.
    StaleView,
}

/// Durable state, persisted before the replica says anything that depends on it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// The view number, the vote cast in it, and the replica's boot counter.
    ViewState {
        view: u64,
        vote: Option<NodeId>,
        boot: u64,
    },
    /// Entries appended at `entries[0].op`, replacing any entries from there on.
    Entries(Vec<Entry>),
    /// Everything: view state, a snapshot and the log after it. Earlier records are obsolete.
    Checkpoint {
        view: u64,
        vote: Option<NodeId>,
        boot: u64,
        snapshot: Arc<Snapshot>,
        entries: Vec<Entry>,
    },
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        matches!(self, Record::Checkpoint { .. })
    }
}
