//! Multi-Paxos's slots, batches, snapshots, wire messages and durable records.

use crate::paxos::Ballot;
use quorate_core::digest::digest;
use quorate_core::{Command, Durable, KvStore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A position in the sequence of decisions. Slots start at 1; slot 0 is the empty prefix.
pub type Slot = u64;

/// The value decided in one slot: a batch of client commands, applied in order. An empty batch
/// is a no-op, which a new leader decides in slots it found empty (gaps).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Batch(Arc<Vec<Command>>);

impl Batch {
    pub fn new(commands: Vec<Command>) -> Batch {
        Batch(Arc::new(commands))
    }

    pub fn noop() -> Batch {
        Batch::default()
    }

    pub fn is_noop(&self) -> bool {
        self.0.is_empty()
    }

    pub fn commands(&self) -> &[Command] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable digest: what an acceptor's vote names, so a leader counts only votes for the
    /// batch it proposed.
    pub fn digest(&self) -> u64 {
        digest(self)
    }
}

/// An acceptor's vote: it accepted `batch` for `slot` in `ballot` (PMMC's "pvalue").
pub type PValue = (Slot, Ballot, Batch);

/// The state machine after applying slots `1..=last_slot`, which replaces them.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_slot: Slot,
    pub state: KvStore,
}

impl Snapshot {
    pub fn empty(sessions_max: usize) -> Snapshot {
        Snapshot {
            last_slot: 0,
            state: KvStore::new(sessions_max),
        }
    }
}

/// Multi-Paxos messages. Phase 1 covers every slot from `from_slot` on at once; phase 2 runs
/// per slot. The sender is known from the envelope.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a, from a candidate: promise `ballot` for every slot, and report what you
    /// accepted in slots `from_slot` and above.
    Prepare { ballot: Ballot, from_slot: Slot },
    /// Phase 1b: the promise, the acceptor's votes in slots `>= from_slot`, and its snapshot
    /// when it already compacted some of those slots (they are decided).
    Promise {
        ballot: Ballot,
        accepted: Vec<PValue>,
        snapshot: Option<Arc<Snapshot>>,
    },
    /// Phase 2a for one slot, carrying the leader's decided prefix (`chosen`).
    Accept {
        ballot: Ballot,
        slot: Slot,
        batch: Batch,
        chosen: Slot,
    },
    /// Phase 2b, to the leader: the acceptor accepted the batch with `digest` in `slot`.
    Accepted {
        ballot: Ballot,
        slot: Slot,
        digest: u64,
    },
    /// The acceptor refused `ballot`: it promised the higher `promised`. Deposes the sender.
    Nack { ballot: Ballot, promised: Ballot },
    /// The leader's heartbeat: every slot up to `chosen` is decided, and where you accepted
    /// this ballot's batch for such a slot, that batch is the decision.
    Commit { ballot: Ballot, chosen: Slot },
    /// A learner that lags asks for the decisions from `from_slot` on.
    CatchUp { from_slot: Slot },
    /// Decided batches for slots `first, first + 1, ...`.
    Decided { first: Slot, batches: Vec<Batch> },
    /// The sender's snapshot, for a node that needs slots the sender compacted.
    Snapshot { snapshot: Arc<Snapshot> },
}

impl Message {
    /// The ballot a message speaks for, if any.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Message::Prepare { ballot, .. }
            | Message::Promise { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Accepted { ballot, .. }
            | Message::Nack { ballot, .. }
            | Message::Commit { ballot, .. } => Some(*ballot),
            Message::CatchUp { .. } | Message::Decided { .. } | Message::Snapshot { .. } => None,
        }
    }
}

/// Durable state, persisted before any message that depends on it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// The highest round this node used for a ballot of its own.
    Round(u64),
    /// The acceptor promised `ballot`.
    Promise(Ballot),
    /// The acceptor accepted `batch` for `slot` in `ballot` (which implies the promise).
    Accept {
        slot: Slot,
        ballot: Ballot,
        batch: Batch,
    },
    /// Everything: written on compaction and snapshot installation; earlier records are
    /// obsolete.
    Checkpoint {
        round: u64,
        promised: Ballot,
        snapshot: Arc<Snapshot>,
        accepted: Vec<PValue>,
    },
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        matches!(self, Record::Checkpoint { .. })
    }
}
