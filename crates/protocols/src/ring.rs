//! # Placement: a consistent-hashing ring with virtual nodes
//!
//! A leaderless store with many nodes keeps each key on only `N` of them. Which `N` must be a
//! function every node computes alike, that spreads keys evenly, and that moves few keys when
//! the membership changes. Consistent hashing (Karger et al. 1997), as Dynamo uses it
//! (DeCandia et al. 2007, §4.2):
//!
//! 1. Every node is placed on a ring of 2^64 positions at `vnodes` pseudo-random points (its
//!    *virtual nodes*): the hash of `(node, i)` for `i` in `0..vnodes`.
//! 2. A key is placed at the hash of its bytes.
//! 3. Walking clockwise from the key's position, the first `N` *distinct* nodes met form the
//!    key's **preference list**; the first is its coordinator in Dynamo's terms (quorate lets
//!    any node coordinate). Walking further gives the stand-ins a sloppy quorum uses when some
//!    of the `N` are unreachable.
//!
//! Virtual nodes even out the load (one point per node would leave arcs of very different
//! lengths) and spread a departing node's keys over many successors instead of one. Adding a
//! node only takes keys onto it: no key moves between two old nodes.
//!
//! Positions are the FNV-1a digest of the bytes, finished with SplitMix64's mixer so that
//! similar inputs (`k1`, `k2`) land far apart. Both are fixed forever, so every node, and every
//! version of quorate, computes the same placement.

use quorate_core::digest::digest;
use quorate_core::NodeId;

/// The ring: every node's virtual points, sorted by position.
#[derive(Clone, Debug)]
pub struct Ring {
    points: Vec<(u64, NodeId)>,
    nodes: usize,
}

/// SplitMix64's finalizer: a bijection on u64 that mixes every input bit into every output bit.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A key's position on the ring.
pub fn position(key: &[u8]) -> u64 {
    mix(digest(key))
}

impl Ring {
    /// A ring of `nodes`, each at `vnodes` points.
    ///
    /// # Panics
    /// If there are no nodes or `vnodes` is zero.
    pub fn new(nodes: &[NodeId], vnodes: usize) -> Ring {
        assert!(!nodes.is_empty(), "a ring needs a node");
        assert!(vnodes > 0, "each node needs a point on the ring");
        let mut unique = nodes.to_vec();
        unique.sort();
        unique.dedup();
        let mut points: Vec<(u64, NodeId)> = unique
            .iter()
            .flat_map(|node| (0..vnodes as u64).map(move |i| (mix(digest(&(node.0, i))), *node)))
            .collect();
        points.sort();
        Ring {
            points,
            nodes: unique.len(),
        }
    }

    /// Every node, in the order a clockwise walk from `key` meets them: the preference list
    /// first, then the stand-ins.
    pub fn walk(&self, key: &[u8]) -> Vec<NodeId> {
        let start = self.points.partition_point(|(at, _)| *at < position(key));
        let mut order = Vec::with_capacity(self.nodes);
        for k in 0..self.points.len() {
            let (_, node) = self.points[(start + k) % self.points.len()];
            if !order.contains(&node) {
                order.push(node);
                if order.len() == self.nodes {
                    break;
                }
            }
        }
        order
    }

    /// The first `n` distinct nodes clockwise from `key`.
    ///
    /// # Panics
    /// If `n` exceeds the number of nodes.
    pub fn preference_list(&self, key: &[u8], n: usize) -> Vec<NodeId> {
        assert!(n <= self.nodes, "N = {n} exceeds the {} nodes", self.nodes);
        let mut walk = self.walk(key);
        walk.truncate(n);
        walk
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ids(n: u64) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    fn keys() -> impl Iterator<Item = Vec<u8>> {
        (0..10_000).map(|i| format!("key-{i}").into_bytes())
    }

    #[test]
    fn mix_is_splitmix64s_finalizer() {
        // SplitMix64's first outputs from seed 0: the finalizer of 1 and 2 times its
        // increment. Nodes of one version must agree on every key's position.
        let gamma = 0x9e37_79b9_7f4a_7c15_u64;
        assert_eq!(mix(gamma), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(gamma.wrapping_mul(2)), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(mix(0), 0);
    }

    #[test]
    fn preference_lists_hold_n_distinct_nodes() {
        let ring = Ring::new(&ids(7), 32);
        for key in keys().take(500) {
            let list = ring.preference_list(&key, 3);
            assert_eq!(list.len(), 3);
            assert!(list[0] != list[1] && list[1] != list[2] && list[0] != list[2]);
            assert_eq!(
                &ring.walk(&key)[..3],
                &list[..],
                "the list is the walk's prefix"
            );
        }
    }

    #[test]
    fn virtual_nodes_spread_keys_evenly() {
        let ring = Ring::new(&ids(5), 64);
        let mut primaries: BTreeMap<NodeId, usize> = BTreeMap::new();
        for key in keys() {
            *primaries
                .entry(ring.preference_list(&key, 1)[0])
                .or_default() += 1;
        }
        for (node, count) in primaries {
            // An even share is 2,000 of 10,000.
            assert!((1_400..=2_600).contains(&count), "{node} owns {count} keys");
        }
    }

    #[test]
    fn adding_a_node_only_moves_keys_onto_it() {
        let before = Ring::new(&ids(5), 64);
        let after = Ring::new(&ids(6), 64);
        let mut moved = 0;
        for key in keys() {
            let old = before.preference_list(&key, 1)[0];
            let new = after.preference_list(&key, 1)[0];
            if old != new {
                assert_eq!(new, NodeId(6), "a key moved between two old nodes");
                moved += 1;
            }
        }
        // About a sixth of the keys move to the new node.
        assert!((1_000..=2_400).contains(&moved), "{moved} keys moved");
    }
}
