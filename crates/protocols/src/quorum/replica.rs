//! The replica: answering queries, keeping newer versions (step 4 of the module docs), holding
//! and handing off hints, and anti-entropy with Merkle trees.

use super::message::{Message, OpId, Record, Version, Versioned};
use super::{Bug, Quorum};
use crate::merkle::{MerkleStep, MerkleTree};
use quorate_core::digest::digest;
use quorate_core::{Effects, Key, NodeId};
use std::collections::BTreeSet;

impl Quorum {
    pub(super) fn on_query(&mut self, from: NodeId, op: OpId, key: Key, out: &mut Effects<Self>) {
        let mut stored = self.stored(&key);
        // A stand-in answers with what it holds for the key's home replicas, too.
        for held in self.hints.values() {
            if let Some(hinted) = held.get(&key) {
                stored = stored.max(hinted.clone());
            }
        }
        out.send(from, Message::QueryReply { op, key, stored });
    }

    pub(super) fn on_store(
        &mut self,
        from: NodeId,
        op: Option<OpId>,
        key: Key,
        stored: Versioned,
        hint: Option<NodeId>,
        out: &mut Effects<Self>,
    ) {
        let version = stored.version;
        match hint {
            Some(home) if home != self.id => {
                if !self.hold_hint(home, key.clone(), stored, out) {
                    return; // Full: no acknowledgement, the coordinator looks elsewhere.
                }
            }
            _ => {
                if !self.is_home(&key) {
                    return; // Misdirected: this node does not replicate the key.
                }
                if let (Some(op), true) = (op, self.config.has_bug(Bug::AckBeforePersist)) {
                    out.send(
                        from,
                        Message::StoreAck {
                            op,
                            key: key.clone(),
                            version,
                        },
                    );
                    if self.keep(key.clone(), stored.clone()) {
                        self.persist(Record::Stored { key, stored }, out);
                    }
                    return;
                }
                if self.keep(key.clone(), stored.clone()) {
                    self.persist(
                        Record::Stored {
                            key: key.clone(),
                            stored,
                        },
                        out,
                    );
                }
            }
        }
        // Sent after the persist above: the driver holds it until the version is durable.
        if let Some(op) = op {
            out.send(from, Message::StoreAck { op, key, version });
        }
    }

    /// A stand-in keeps a write for `home`; false if it cannot take more hints.
    fn hold_hint(
        &mut self,
        home: NodeId,
        key: Key,
        stored: Versioned,
        out: &mut Effects<Self>,
    ) -> bool {
        let held = self.hints.get(&home).and_then(|h| h.get(&key));
        if held.is_some_and(|h| h.version >= stored.version) {
            return true; // Already held.
        }
        if held.is_none() && self.hints_held() >= self.config.hints_max {
            return false;
        }
        self.hints
            .entry(home)
            .or_default()
            .insert(key.clone(), stored.clone());
        self.stats.hints_stored += 1;
        self.persist(Record::Hinted { home, key, stored }, out);
        true
    }

    // ---------------------------------------------------------------------------------------
    // Hinted handoff.

    /// Offers every home replica (a batch of) the writes held for it.
    pub(super) fn hand_off(&mut self, out: &mut Effects<Self>) {
        for (home, held) in &self.hints {
            let entries: Vec<(Key, Versioned)> = held
                .iter()
                .take(self.config.handoff_batch_max)
                .map(|(key, stored)| (key.clone(), stored.clone()))
                .collect();
            out.send(*home, Message::Handoff { entries });
        }
    }

    pub(super) fn on_handoff(
        &mut self,
        from: NodeId,
        entries: Vec<(Key, Versioned)>,
        out: &mut Effects<Self>,
    ) {
        let mut held = Vec::new();
        for (key, stored) in entries {
            if !self.is_home(&key) {
                continue;
            }
            held.push((key.clone(), stored.version));
            if self.keep(key.clone(), stored.clone()) {
                self.stats.hints_handed_off += 1;
                self.persist(Record::Stored { key, stored }, out);
            }
        }
        if !held.is_empty() {
            out.send(from, Message::HandoffAck { entries: held });
        }
    }

    pub(super) fn on_handoff_ack(
        &mut self,
        from: NodeId,
        entries: Vec<(Key, Version)>,
        out: &mut Effects<Self>,
    ) {
        for (key, version) in entries {
            let held = self.hints.get(&from).and_then(|h| h.get(&key));
            if held.is_some_and(|h| h.version <= version) {
                self.forget_hint(from, &key, version);
                let home = from;
                self.persist(Record::HandedOff { home, key, version }, out);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Anti-entropy.

    /// The Merkle tree of the keys this node and `peer` both replicate.
    fn shared_tree(&self, peer: NodeId) -> MerkleTree {
        let entries = self
            .store
            .iter()
            .filter(|(key, _)| self.preference_list(key).contains(&peer))
            .map(|(key, stored)| (key.as_ref(), digest(&(key, stored.version))));
        MerkleTree::build(self.config.merkle_depth, entries)
    }

    /// This node's entries in `leaves` that `peer` also replicates.
    fn shared_entries(&self, peer: NodeId, leaves: &[u32]) -> Vec<(Key, Versioned)> {
        let leaves: BTreeSet<u32> = leaves.iter().copied().collect();
        let depth = self.config.merkle_depth;
        self.store
            .iter()
            .filter(|(key, _)| leaves.contains(&MerkleTree::leaf_of(depth, key)))
            .filter(|(key, _)| self.preference_list(key).contains(&peer))
            .map(|(key, stored)| (key.clone(), stored.clone()))
            .collect()
    }

    /// Step 1 of the exchange with the next peer, round-robin.
    pub(super) fn start_anti_entropy(&mut self, out: &mut Effects<Self>) {
        let peers: Vec<NodeId> = self
            .members
            .iter()
            .copied()
            .filter(|n| *n != self.id)
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.anti_entropy_peer % peers.len()];
        self.anti_entropy_peer += 1;
        let root = self.shared_tree(peer).root();
        out.send(
            peer,
            Message::MerkleNodes {
                level: 0,
                nodes: vec![(0, root)],
            },
        );
    }

    pub(super) fn on_merkle_nodes(
        &mut self,
        from: NodeId,
        level: u32,
        nodes: Vec<(u32, u64)>,
        out: &mut Effects<Self>,
    ) {
        if level > self.config.merkle_depth {
            return; // Malformed, or from a node with another depth.
        }
        match self.shared_tree(from).compare(level, &nodes) {
            MerkleStep::InSync => {}
            MerkleStep::Descend { level, nodes } => {
                out.send(from, Message::MerkleNodes { level, nodes })
            }
            MerkleStep::Leaves(leaves) => {
                let entries = self.shared_entries(from, &leaves);
                let reply = true;
                out.send(
                    from,
                    Message::MerkleLeaves {
                        leaves,
                        entries,
                        reply,
                    },
                );
            }
        }
    }

    pub(super) fn on_merkle_leaves(
        &mut self,
        from: NodeId,
        leaves: Vec<u32>,
        entries: Vec<(Key, Versioned)>,
        reply: bool,
        out: &mut Effects<Self>,
    ) {
        for (key, stored) in entries {
            let shared = self.preference_list(&key);
            if !shared.contains(&self.id) || !shared.contains(&from) {
                continue;
            }
            if self.keep(key.clone(), stored.clone()) {
                self.stats.anti_entropy_repairs += 1;
                self.persist(Record::Stored { key, stored }, out);
            }
        }
        if reply {
            let entries = self.shared_entries(from, &leaves);
            let reply = false;
            out.send(
                from,
                Message::MerkleLeaves {
                    leaves,
                    entries,
                    reply,
                },
            );
        }
    }
}
