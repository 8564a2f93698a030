//! # Merkle trees for anti-entropy
//!
//! Read repair only fixes keys somebody reads, and hinted handoff only writes that were handed
//! off; a replica that missed a write nobody reads stays stale forever unless replicas compare
//! what they hold. Comparing key by key costs a message per key. Dynamo (§4.7) and Cassandra
//! compare **Merkle trees** instead (Merkle 1987): a tree whose leaves hash disjoint ranges of
//! keys and whose inner nodes hash their children, so that two replicas holding the same data
//! have the same root, and a difference is found by descending only into subtrees whose hashes
//! differ.
//!
//! ## The tree
//!
//! A key goes to leaf `position(key) >> (64 - 4·depth)`: the tree has fan-out 16 and
//! `16^depth` leaves over the ring's hash space. A leaf's hash is the digest of its entries'
//! digests in key order; an inner node's hash is the digest of its non-empty children's
//! `(index, hash)` pairs; an empty subtree hashes to 0. Protocols decide what an entry's digest
//! covers (a key and its version; a key and its CRDT state).
//!
//! ## The exchange
//!
//! 1. The initiator sends its root: level 0, `[(0, hash)]`.
//! 2. The receiver [compares](MerkleTree::compare) the hashes with its own at that level. Equal
//!    everywhere: in sync, done. Above the leaves: it answers with *all sixteen* children of
//!    every differing node (the other side then checks children it holds and this side does
//!    not). At the leaves: it sends its entries of the differing leaves.
//! 3. The two sides alternate until the leaves, so a difference in one key costs `depth + 1`
//!    round trips and `O(16 · depth)` hashes, whatever the number of keys.
//! 4. Whoever receives entries merges them (keeping the newer version) and sends back its own
//!    entries of those leaves, so both sides end with the union.
//!
//! The trees are rebuilt from the store for every exchange. That is O(keys) per exchange, which
//! is fine for a teaching store and for the simulator; Dynamo keeps one tree per key range and
//! updates it incrementally.

use crate::ring::position;
use quorate_core::digest::digest;
use std::collections::BTreeMap;

/// Children per inner node.
pub const FANOUT: u32 = 16;
/// The deepest tree supported: 16^4 = 65,536 leaves.
pub const DEPTH_MAX: u32 = 4;

/// A Merkle tree over a set of `(key, digest)` entries.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    depth: u32,
    /// `levels[l]`: the non-empty nodes at depth `l` (0 = root, `depth` = leaves).
    levels: Vec<BTreeMap<u32, u64>>,
}

/// What the comparison of one level found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MerkleStep {
    /// Every compared node matched.
    InSync,
    /// Some inner nodes differ: these are this side's hashes of all their children, one level
    /// down, to send to the other side.
    Descend { level: u32, nodes: Vec<(u32, u64)> },
    /// These leaves differ: exchange their entries.
    Leaves(Vec<u32>),
}

impl MerkleTree {
    /// The leaf `key` belongs to in a tree of `depth`.
    pub fn leaf_of(depth: u32, key: &[u8]) -> u32 {
        assert!(
            (1..=DEPTH_MAX).contains(&depth),
            "Merkle depth out of range"
        );
        (position(key) >> (64 - 4 * depth)) as u32
    }

    /// Builds the tree of `entries`, which must come in key order (both sides of an exchange
    /// then hash each leaf's entries in the same order).
    pub fn build<'a>(depth: u32, entries: impl IntoIterator<Item = (&'a [u8], u64)>) -> MerkleTree {
        let mut leaves: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for (key, entry_digest) in entries {
            leaves
                .entry(Self::leaf_of(depth, key))
                .or_default()
                .push(entry_digest);
        }
        let mut levels = vec![BTreeMap::new(); depth as usize + 1];
        levels[depth as usize] = leaves
            .into_iter()
            .map(|(leaf, digests)| (leaf, digest(&digests) | 1))
            .collect();
        for level in (0..depth as usize).rev() {
            let mut children: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
            for (index, hash) in &levels[level + 1] {
                children
                    .entry(index / FANOUT)
                    .or_default()
                    .push((*index, *hash));
            }
            // `| 1` keeps a non-empty subtree from ever hashing to the empty subtree's 0.
            levels[level] = children
                .into_iter()
                .map(|(parent, kids)| (parent, digest(&kids) | 1))
                .collect();
        }
        MerkleTree { depth, levels }
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The root hash (0 for an empty tree).
    pub fn root(&self) -> u64 {
        self.hash(0, 0)
    }

    /// The hash of node `index` at `level` (0 when that subtree is empty).
    pub fn hash(&self, level: u32, index: u32) -> u64 {
        self.levels[level as usize]
            .get(&index)
            .copied()
            .unwrap_or(0)
    }

    /// Step 2 of the exchange: compares the other side's hashes at `level` with this tree's.
    pub fn compare(&self, level: u32, theirs: &[(u32, u64)]) -> MerkleStep {
        assert!(level <= self.depth, "level below the leaves");
        let differing: Vec<u32> = theirs
            .iter()
            .filter(|(index, hash)| self.hash(level, *index) != *hash)
            .map(|(index, _)| *index)
            .collect();
        if differing.is_empty() {
            return MerkleStep::InSync;
        }
        if level == self.depth {
            return MerkleStep::Leaves(differing);
        }
        let nodes = differing
            .iter()
            .flat_map(|parent| parent * FANOUT..(parent + 1) * FANOUT)
            .map(|child| (child, self.hash(level + 1, child)))
            .collect();
        MerkleStep::Descend {
            level: level + 1,
            nodes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &BTreeMap<Vec<u8>, u64>) -> MerkleTree {
        MerkleTree::build(3, entries.iter().map(|(k, v)| (k.as_slice(), *v)))
    }

    /// Runs the exchange between two trees; returns the leaves found to differ and the number
    /// of messages it took.
    fn exchange(a: &MerkleTree, b: &MerkleTree) -> (Vec<u32>, usize) {
        let mut level = 0;
        let mut nodes = vec![(0, a.root())];
        let mut sides = [b, a];
        let mut messages = 1;
        loop {
            match sides[0].compare(level, &nodes) {
                MerkleStep::InSync => return (Vec::new(), messages),
                MerkleStep::Leaves(leaves) => return (leaves, messages),
                MerkleStep::Descend {
                    level: next,
                    nodes: children,
                } => {
                    level = next;
                    nodes = children;
                    messages += 1;
                    sides.swap(0, 1);
                }
            }
        }
    }

    fn entries(n: u64) -> BTreeMap<Vec<u8>, u64> {
        (0..n).map(|i| (format!("k{i}").into_bytes(), i)).collect()
    }

    #[test]
    fn keys_spread_over_every_leaf_by_their_ring_position() {
        let depth = 1; // FANOUT leaves.
        let mut per_leaf = [0usize; FANOUT as usize];
        for key in entries(1_600).keys() {
            let leaf = MerkleTree::leaf_of(depth, key);
            assert_eq!(
                u64::from(leaf),
                position(key) >> 60,
                "the position's top 4 bits"
            );
            per_leaf[leaf as usize] += 1;
        }
        // An even share is 100 keys per leaf.
        assert!(
            per_leaf.iter().all(|n| (50..=150).contains(n)),
            "{per_leaf:?}"
        );
    }

    #[test]
    fn equal_stores_are_in_sync_after_one_comparison() {
        let a = tree(&entries(500));
        let b = tree(&entries(500));
        assert_eq!(a.root(), b.root());
        assert_eq!(exchange(&a, &b), (Vec::new(), 1));
    }

    #[test]
    fn a_tree_reports_the_depth_it_was_built_with() {
        for depth in 1..=DEPTH_MAX {
            let built =
                MerkleTree::build(depth, entries(50).iter().map(|(k, v)| (k.as_slice(), *v)));
            assert_eq!(built.depth(), depth);
            assert_eq!(MerkleTree::build(depth, []).depth(), depth, "empty");
        }
    }

    #[test]
    fn one_changed_key_is_found_in_its_leaf_after_depth_round_trips() {
        let mut changed = entries(500);
        *changed.get_mut(b"k42".as_slice()).unwrap() = 1_000;
        let (leaves, messages) = exchange(&tree(&entries(500)), &tree(&changed));
        assert_eq!(leaves, vec![MerkleTree::leaf_of(3, b"k42")]);
        assert_eq!(messages, 4, "root, then levels 1, 2 and 3");
    }

    #[test]
    fn a_key_only_one_side_holds_is_found_from_either_side() {
        let mut more = entries(50);
        more.insert(b"extra".to_vec(), 7);
        let leaf = MerkleTree::leaf_of(3, b"extra");
        assert_eq!(exchange(&tree(&entries(50)), &tree(&more)).0, vec![leaf]);
        assert_eq!(exchange(&tree(&more), &tree(&entries(50))).0, vec![leaf]);
        let mut all: Vec<u32> = more.keys().map(|k| MerkleTree::leaf_of(3, k)).collect();
        all.sort();
        all.dedup();
        assert_eq!(exchange(&tree(&BTreeMap::new()), &tree(&more)).0, all);
    }
}
