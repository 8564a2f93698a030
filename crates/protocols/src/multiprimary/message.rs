//! Multi-primary's replicated entries, wire messages and durable records.

use quorate_core::clock::{DvvSet, HlcStamp};
use quorate_core::crdt::{Crdt, CrdtKind, LwwRegister};
use quorate_core::{ClientId, Durable, Key, NodeId, Output, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one replicated entry is: a key's register, or one of its CRDTs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Slot {
    Register(Key),
    Crdt(Key, CrdtKind),
}

impl Slot {
    pub fn key(&self) -> &Key {
        match self {
            Slot::Register(key) | Slot::Crdt(key, _) => key,
        }
    }

    /// The bytes a Merkle tree places the entry by.
    pub fn position_bytes(&self) -> Vec<u8> {
        let mut bytes = self.key().to_vec();
        if let Slot::Crdt(_, kind) = self {
            bytes.push(0);
            bytes.push(*kind as u8 + 1);
        }
        bytes
    }
}

/// An entry's state: a join semilattice, so that replicas merge in any order.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Entry {
    /// A last-write-wins register; `None` is a deletion.
    Lww(LwwRegister<Option<Value>>),
    /// Siblings under dotted version vectors; `None` values are deletions.
    Siblings(DvvSet<Option<Value>>),
    Crdt(Crdt),
}

impl Entry {
    /// Joins `other` into `self`; true if `self` changed. Entries of different kinds (a
    /// misconfigured peer) do not merge.
    pub fn merge(&mut self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Lww(a), Entry::Lww(b)) => {
                let before = a.clone();
                a.merge(b);
                *a != before
            }
            (Entry::Siblings(a), Entry::Siblings(b)) => a.merge(b),
            (Entry::Crdt(a), Entry::Crdt(b)) if a.kind() == b.kind() => a.merge(b),
            _ => false,
        }
    }

    /// The live (non-deleted) sibling values, for reads.
    pub fn live_siblings(set: &DvvSet<Option<Value>>) -> Vec<Value> {
        set.siblings().filter_map(|(_, v)| v.clone()).collect()
    }
}

/// The two clocks an LWW write was stamped with: the hybrid logical clock and the node's raw
/// wall clock. One of them orders the register (`lww_clock`); both are recorded, so that a
/// checker can count the writes each would have discarded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct LwwOrigin {
    pub hlc: HlcStamp,
    pub wall: u64,
    pub node: NodeId,
}

/// A client write, as its coordinator persists it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ClientWrite {
    pub client: ClientId,
    pub seq: u64,
    /// What the client is answered, now and on every retry.
    pub output: Output,
    /// For an LWW register write: the value and both of its stamps.
    pub lww: Option<(Option<Value>, LwwOrigin)>,
}

/// Messages between nodes. Each carries the sender's hybrid logical clock, which the receiver
/// observes (or refuses, when it is too far ahead).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Asynchronous replication of entries just changed by a client.
    Replicate {
        clock: HlcStamp,
        entries: Vec<(Slot, Entry)>,
    },
    /// Anti-entropy: the sender's Merkle hashes at `level`.
    MerkleNodes { level: u32, nodes: Vec<(u32, u64)> },
    /// Anti-entropy: the sender's entries in `leaves`; `reply` asks for the other side's.
    MerkleLeaves {
        clock: HlcStamp,
        leaves: Vec<u32>,
        entries: Vec<(Slot, Entry)>,
        reply: bool,
    },
}

/// Everything durable at once; earlier records are obsolete.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub entries: BTreeMap<Slot, Entry>,
    pub sessions: Vec<(ClientId, u64, Output)>,
    pub clock: HlcStamp,
}

/// Durable records.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// The entry's new state, after a client write (`write`) or a merge (`None`).
    Applied {
        slot: Slot,
        entry: Entry,
        write: Option<Box<ClientWrite>>,
    },
    Checkpoint(Snapshot),
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        matches!(self, Record::Checkpoint(_))
    }
}
