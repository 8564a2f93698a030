//! The quorum store's versions, wire messages and durable records.

use quorate_core::{ClientId, Durable, Key, NodeId, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A write's version: a counter, ties broken by the node that coordinated the write.
///
/// The seed's `version = latest + 1` gives two concurrent writers the same version for
/// different values, and replicas then disagree forever about which value that version names.
/// Here the coordinator's id makes versions of different coordinators distinct, and each
/// coordinator never reuses a counter (it takes one above both the highest version its read
/// phase saw and the highest counter it ever assigned, which it persists).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Version {
    pub counter: u64,
    pub writer: NodeId,
}

impl Version {
    /// The version of a key nobody has written.
    pub const ZERO: Version = Version {
        counter: 0,
        writer: NodeId(0),
    };
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.counter, self.writer.0)
    }
}

/// A replica's copy of one key: its version and value (`None`: deleted, a tombstone).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Versioned {
    pub version: Version,
    pub value: Option<Value>,
}

impl Versioned {
    /// The state of a key nobody has written.
    pub fn absent() -> Versioned {
        Versioned {
            version: Version::ZERO,
            value: None,
        }
    }
}

/// Names one client operation at its coordinator. The incarnation (bumped and persisted at
/// every start) keeps answers to an operation from before a crash from being taken for answers
/// to a new one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct OpId {
    pub incarnation: u64,
    pub seq: u64,
}

/// Messages between nodes.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1 of a read or a write: "what version of `key` do you hold?"
    Query { op: OpId, key: Key },
    QueryReply {
        op: OpId,
        key: Key,
        stored: Versioned,
    },
    /// Phase 2: "hold this version if it is newer than yours". `op` is `None` for read repair,
    /// which wants no answer. `hint` names the home replica a stand-in holds the write for
    /// (sloppy quorum).
    Store {
        op: Option<OpId>,
        key: Key,
        stored: Versioned,
        hint: Option<NodeId>,
    },
    /// "I hold `version` of `key`, or a newer one, durably."
    StoreAck {
        op: OpId,
        key: Key,
        version: Version,
    },
    /// Hinted handoff: a stand-in hands the writes it held back to their home replica.
    Handoff { entries: Vec<(Key, Versioned)> },
    /// The home replica holds these versions durably; the stand-in may forget them.
    HandoffAck { entries: Vec<(Key, Version)> },
    /// Anti-entropy: this side's Merkle hashes at `level` (see [`crate::merkle`]).
    MerkleNodes { level: u32, nodes: Vec<(u32, u64)> },
    /// Anti-entropy: this side's entries in `leaves`; `reply` asks for the other side's.
    MerkleLeaves {
        leaves: Vec<u32>,
        entries: Vec<(Key, Versioned)>,
        reply: bool,
    },
}

/// What a coordinator remembers about a client's latest write: the version it assigned, so
/// that a retry stores the same version instead of writing the value a second time.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Assigned {
    pub seq: u64,
    pub key: Key,
    pub stored: Versioned,
    /// For a delete: whether the read phase found the key present.
    pub existed: bool,
}

/// Everything durable, at once: written every `checkpoint_every` records so that a disk (the
/// simulator's, or a write-ahead log) can drop what came before.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub incarnation: u64,
    pub store: BTreeMap<Key, Versioned>,
    pub hints: BTreeMap<NodeId, BTreeMap<Key, Versioned>>,
    pub sessions: BTreeMap<ClientId, Assigned>,
    pub last_counter: u64,
}

/// Durable records.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// The node started for the `n`-th time.
    Incarnation(u64),
    /// The replica holds this version of `key`.
    Stored { key: Key, stored: Versioned },
    /// A stand-in holds this write for `home` (sloppy quorum).
    Hinted {
        home: NodeId,
        key: Key,
        stored: Versioned,
    },
    /// `home` acknowledged the hinted write up to `version`; the hint is gone.
    HandedOff {
        home: NodeId,
        key: Key,
        version: Version,
    },
    /// A coordinator assigned a version to `client`'s write, before sending it anywhere.
    Assigned {
        client: ClientId,
        assigned: Assigned,
    },
    /// Everything; earlier records are obsolete.
    Checkpoint(Box<Snapshot>),
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        matches!(self, Record::Checkpoint(_))
    }
}
