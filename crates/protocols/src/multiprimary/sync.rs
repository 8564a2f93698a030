//! Replication and anti-entropy (steps 2–4 of the module docs).

use super::message::{Entry, Message, Slot};
use super::{MultiPrimary, Resolution};
use crate::merkle::{MerkleStep, MerkleTree};
use quorate_core::clock::HlcStamp;
use quorate_core::digest::digest;
use quorate_core::{Effects, NodeId, Time};
use std::collections::BTreeSet;

impl MultiPrimary {
    /// Step 2: sends `slot`'s change to every peer: a version-vector write's delta, or the
    /// entry's new state (an LWW register, a CRDT).
    pub(super) fn replicate(&mut self, slot: Slot, change: Entry, out: &mut Effects<Self>) {
        let entries = vec![(slot, change)];
        let clock = self.hlc.last();
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            let entries = entries.clone();
            out.send(peer, Message::Replicate { clock, entries });
        }
    }

    /// Whether `entry` is what this node keeps in `slot` (a misconfigured peer's is not).
    fn fits(&self, slot: &Slot, entry: &Entry) -> bool {
        match (slot, entry) {
            (Slot::Register(key), Entry::Lww(_)) => {
                self.config.resolution_of(key) == Resolution::Lww
            }
            (Slot::Register(key), Entry::Siblings(_)) => {
                self.config.resolution_of(key) == Resolution::VersionVectors
            }
            (Slot::Crdt(_, kind), Entry::Crdt(crdt)) => crdt.kind() == *kind,
            _ => false,
        }
    }

    /// Step 3: observes the sender's clock and merges its entries. False if the clock was
    /// refused (too far ahead), in which case nothing was merged.
    pub(super) fn on_entries(
        &mut self,
        now: Time,
        clock: HlcStamp,
        entries: Vec<(Slot, Entry)>,
        anti_entropy: bool,
        out: &mut Effects<Self>,
    ) -> bool {
        if self.hlc.observe(now.as_nanos(), clock).is_err() {
            self.stats.clock_refusals += 1;
            return false;
        }
        for (slot, entry) in entries {
            if !self.fits(&slot, &entry) {
                continue;
            }
            let changed = match self.entries.get_mut(&slot) {
                Some(mine) => mine.merge(&entry),
                None => {
                    self.entries.insert(slot.clone(), entry);
                    true
                }
            };
            if changed {
                if anti_entropy {
                    self.stats.anti_entropy_repairs += 1;
                } else {
                    self.stats.replication_merges += 1;
                }
                self.note_merged_siblings(&slot);
                self.persist(slot, None, out);
            }
        }
        true
    }

    /// The Merkle tree of this node's entries (rebuilt only after an entry changed).
    fn tree(&mut self) -> &MerkleTree {
        if self.tree.is_none() {
            let placed: Vec<(Vec<u8>, u64)> = self
                .entries
                .iter()
                .map(|(slot, entry)| {
                    let leaf = match self.digests.get(slot) {
                        Some(known) => *known,
                        None => digest(&(slot, entry)),
                    };
                    (slot.position_bytes(), leaf)
                })
                .collect();
            self.tree = Some(MerkleTree::build(
                self.config.merkle_depth,
                placed.iter().map(|(bytes, d)| (bytes.as_slice(), *d)),
            ));
        }
        self.tree.as_ref().expect("built above")
    }

    /// Step 4: starts an exchange with the next peer, round-robin.
    pub(super) fn start_anti_entropy(&mut self, out: &mut Effects<Self>) {
        let peers: Vec<NodeId> = self.peers().collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.anti_entropy_peer % peers.len()];
        self.anti_entropy_peer += 1;
        let nodes = vec![(0, self.tree().root())];
        out.send(peer, Message::MerkleNodes { level: 0, nodes });
    }

    pub(super) fn on_merkle_nodes(
        &mut self,
        from: NodeId,
        level: u32,
        nodes: Vec<(u32, u64)>,
        out: &mut Effects<Self>,
    ) {
        if level > self.config.merkle_depth {
            return; // Malformed, or a peer with another depth.
        }
        match self.tree().compare(level, &nodes) {
            MerkleStep::InSync => {}
            MerkleStep::Descend { level, nodes } => {
                out.send(from, Message::MerkleNodes { level, nodes })
            }
            MerkleStep::Leaves(leaves) => self.send_leaves(from, leaves, true, out),
        }
    }

    /// Sends this node's entries in `leaves` (at most `entries_per_message_max`; the next
    /// exchange finds the rest).
    pub(super) fn send_leaves(
        &self,
        to: NodeId,
        leaves: Vec<u32>,
        reply: bool,
        out: &mut Effects<Self>,
    ) {
        let wanted: BTreeSet<u32> = leaves.iter().copied().collect();
        let depth = self.config.merkle_depth;
        let entries = self
            .entries
            .iter()
            .filter(|(slot, _)| {
                wanted.contains(&MerkleTree::leaf_of(depth, &slot.position_bytes()))
            })
            .take(self.config.entries_per_message_max)
            .map(|(slot, entry)| (slot.clone(), entry.clone()))
            .collect();
        let clock = self.hlc.last();
        out.send(
            to,
            Message::MerkleLeaves {
                clock,
                leaves,
                entries,
                reply,
            },
        );
    }
}
