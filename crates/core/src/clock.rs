//! Logical clocks: hybrid logical clocks, version vectors and dotted version vectors.
//!
//! Replicas that accept writes independently need a way to order (or refuse to order) those
//! writes without a leader. This module holds the three clocks quorate uses; protocols and CRDTs
//! reuse them.
//!
//! ## Hybrid logical clocks (Kulkarni et al., "Logical Physical Clocks", OPODIS 2014)
//!
//! Last-write-wins needs a total order of writes that respects causality: a write made after a
//! node *saw* another write must win over it. Raw wall-clock time does not: a node whose clock
//! runs 5 s behind stamps its writes 5 s in the past, and every write it makes in those 5 s
//! silently loses to older writes from faster nodes. A hybrid logical clock (HLC) is a pair
//! `(l, c)`: `l` is the largest physical time the node has heard of, `c` a counter that orders
//! events sharing one `l`.
//!
//! 1. **Local event or send** at physical time `pt`: `l' = max(l, pt)`; `c = c + 1` if `l'`
//!    equals the old `l`, else `0`.
//! 2. **Receive** a stamp `(lm, cm)`: `l' = max(l, lm, pt)`; `c` becomes `max(c, cm) + 1`,
//!    `c + 1`, `cm + 1` or `0` depending on which of the three `l'` came from.
//! 3. Stamps compare lexicographically. Every stamp a node issues is greater than every stamp it
//!    issued or received before (causality), and `l` stays within the largest clock offset in
//!    the cluster of the physical time, so stamps remain close to wall time.
//! 4. **Bounded drift.** A received stamp whose `l` is more than `ahead_max` beyond the local
//!    physical time is refused ([`HlcError::TooFarAhead`]): accepting it would drag this node's
//!    clock (and every later write) into the future of a node with a broken clock.
//!
//! ## Version vectors and dots (Parker et al. 1983; Preguiça et al., "Dotted Version Vectors",
//! 2012)
//!
//! A [`Dot`] `(node, n)` names the `n`-th event a node generated for one object. A
//! [`VersionVector`] maps each node to the highest counter seen from it and so summarises a
//! downward-closed set of dots: it *covers* a dot when its entry for that node is at least the
//! dot's counter. Two vectors are concurrent when neither is pointwise below the other.
//!
//! A **causal context** ([`CausalContext`]) is a version vector plus a *dot cloud*: dots seen
//! beyond a gap. A client that read `{n1:2}` and then wrote through `n1`, which had meanwhile
//! coordinated writes `(n1,3)..(n1,6)` the client never saw, has seen `{n1:2} + (n1,7)`; the
//! plain vector `{n1:7}` would claim it saw, and let its next write replace, `(n1,3)..(n1,6)`.
//!
//! A **dotted version vector** ([`Dvv`]) is one dot plus the causal context of what its writer
//! had seen: the write's own event and its causal past. The DVV paper's point is that a
//! per-replica vector alone cannot tell two concurrent writes coordinated by the same replica
//! apart (they would get one entry and one would be lost); a dot per write can. A [`DvvSet`]
//! keeps every write not yet superseded (the *siblings*):
//!
//! 1. A **write** of `v` coordinated by node `r` with the client's context `C` (the vector the
//!    client read) gets the dot `(r, n)`, `n` one above anything `r` has issued for the object;
//!    it drops every sibling whose dot `C` covers and becomes a sibling itself.
//! 2. A **merge** of two replicas' sets keeps the union of their siblings, minus every sibling
//!    whose dot another sibling's context covers.
//! 3. A **read** returns the siblings' values and the join of all dots and contexts seen: the
//!    context the client hands back with its next write.
//!
//! Vectors are never pruned: an entry per node that ever coordinated a write of the object.

use crate::ids::NodeId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

// -------------------------------------------------------------------------------------------
// Hybrid logical clocks.

/// A hybrid logical clock reading: `physical` nanoseconds (the largest physical time heard of)
/// and a `logical` counter. Ordered lexicographically.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct HlcStamp {
    pub physical: u64,
    pub logical: u64,
}

impl fmt::Display for HlcStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical, self.logical)
    }
}

/// Why a received stamp was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HlcError {
    /// The stamp's physical part is this far (nanoseconds) beyond the local physical clock,
    /// more than the configured bound.
    TooFarAhead { ahead: u64 },
}

impl fmt::Display for HlcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HlcError::TooFarAhead { ahead } => {
                write!(f, "timestamp {ahead} ns ahead of the local clock")
            }
        }
    }
}

/// A hybrid logical clock (see the module docs). Protocol code feeds it `now`; it reads no
/// clock itself.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Hlc {
    last: HlcStamp,
    /// Received stamps further ahead of the physical clock than this are refused.
    ahead_max: u64,
}

impl Hlc {
    /// A clock that refuses stamps more than `ahead_max` nanoseconds ahead of local time.
    pub fn new(ahead_max: u64) -> Hlc {
        Hlc {
            last: HlcStamp::default(),
            ahead_max,
        }
    }

    /// The last stamp issued or received.
    pub fn last(&self) -> HlcStamp {
        self.last
    }

    /// Rule 1: a stamp for a local event at physical time `now`, greater than every stamp seen.
    pub fn tick(&mut self, now: u64) -> HlcStamp {
        let physical = self.last.physical.max(now);
        let logical = if physical == self.last.physical {
            self.last.logical + 1
        } else {
            0
        };
        self.last = HlcStamp { physical, logical };
        self.last
    }

    /// Rule 2: merges a received stamp at physical time `now`, refusing one too far ahead. On
    /// success the clock is greater than `remote`.
    pub fn observe(&mut self, now: u64, remote: HlcStamp) -> Result<HlcStamp, HlcError> {
        let ahead = remote.physical.saturating_sub(now);
        if ahead > self.ahead_max {
            return Err(HlcError::TooFarAhead { ahead });
        }
        let physical = self.last.physical.max(remote.physical).max(now);
        let mine = physical == self.last.physical;
        let theirs = physical == remote.physical;
        let logical = match (mine, theirs) {
            (true, true) => self.last.logical.max(remote.logical) + 1,
            (true, false) => self.last.logical + 1,
            (false, true) => remote.logical + 1,
            (false, false) => 0,
        };
        self.last = HlcStamp { physical, logical };
        Ok(self.last)
    }

    /// Restores the clock after a restart: it must never issue a stamp at or below one issued
    /// before the crash.
    pub fn recover(&mut self, seen: HlcStamp) {
        self.last = self.last.max(seen);
    }
}

// -------------------------------------------------------------------------------------------
// Dots and version vectors.

/// The `counter`-th event `node` generated for one object.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Dot {
    pub node: NodeId,
    pub counter: u64,
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.node, self.counter)
    }
}

/// A version vector: for each node, the highest event counter seen from it. Absent entries
/// are zero. It stands for the downward-closed set of dots it covers.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<NodeId, u64>);

impl VersionVector {
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    /// The entry for `node` (zero when absent).
    pub fn get(&self, node: NodeId) -> u64 {
        self.0.get(&node).copied().unwrap_or(0)
    }

    /// True when the vector covers `dot`, i.e. the event is in the summarised past.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.node) >= dot.counter
    }

    /// Adds `dot` (and, the vector being downward closed, every earlier event of its node).
    pub fn add(&mut self, dot: Dot) {
        if dot.counter > self.get(dot.node) {
            self.0.insert(dot.node, dot.counter);
        }
    }

    /// The next dot of `node`: one above everything this vector has seen from it.
    pub fn next_dot(&self, node: NodeId) -> Dot {
        Dot {
            node,
            counter: self.get(node) + 1,
        }
    }

    /// Pointwise maximum: the vector of everything either side has seen.
    pub fn join(&mut self, other: &VersionVector) {
        for (node, counter) in &other.0 {
            let entry = self.0.entry(*node).or_insert(0);
            *entry = (*entry).max(*counter);
        }
    }

    /// True when every entry of `self` is at most the matching entry of `other`.
    pub fn descends_from(&self, other: &VersionVector) -> bool {
        other
            .0
            .iter()
            .all(|(node, counter)| self.get(*node) >= *counter)
    }

    /// The causal order of two vectors: `Less` when `self` happened before `other`, `None`
    /// when they are concurrent.
    pub fn causal_cmp(&self, other: &VersionVector) -> Option<Ordering> {
        match (self.descends_from(other), other.descends_from(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            (false, false) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|counter| *counter == 0)
    }

    /// The entries, in node order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().map(|(node, counter)| (*node, *counter))
    }
}

impl FromIterator<(NodeId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> Self {
        let mut vv = VersionVector::new();
        for (node, counter) in iter {
            vv.add(Dot { node, counter });
        }
        vv
    }
}

impl fmt::Display for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.iter().map(|(n, c)| format!("{n}:{c}")).collect();
        write!(f, "[{}]", entries.join(" "))
    }
}

// -------------------------------------------------------------------------------------------
// Causal contexts.

/// A set of dots: a version vector (the downward-closed part) plus the dots seen beyond a gap.
/// Kept compact: no cloud dot is covered by the vector or extends it without a gap.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct CausalContext {
    vv: VersionVector,
    cloud: std::collections::BTreeSet<Dot>,
}

impl CausalContext {
    pub fn new() -> CausalContext {
        CausalContext::default()
    }

    /// True when `dot` is in the set.
    pub fn covers(&self, dot: Dot) -> bool {
        self.vv.covers(dot) || self.cloud.contains(&dot)
    }

    /// Adds one dot (and nothing before it).
    pub fn add(&mut self, dot: Dot) {
        if !self.vv.covers(dot) {
            self.cloud.insert(dot);
            self.compact();
        }
    }

    /// The union of two sets of dots.
    pub fn join(&mut self, other: &CausalContext) {
        self.vv.join(&other.vv);
        self.cloud.extend(other.cloud.iter().copied());
        self.compact();
    }

    /// The next dot of `node`: above every dot of `node` in the set.
    pub fn next_dot(&self, node: NodeId) -> Dot {
        let in_cloud = self
            .cloud
            .iter()
            .filter(|d| d.node == node)
            .map(|d| d.counter)
            .max()
            .unwrap_or(0);
        Dot {
            node,
            counter: self.vv.get(node).max(in_cloud) + 1,
        }
    }

    /// True when every dot of `other` is in this set.
    pub fn contains_all(&self, other: &CausalContext) -> bool {
        let vv_in = other
            .vv
            .iter()
            .all(|(node, n)| (1..=n).all(|counter| self.covers(Dot { node, counter })));
        vv_in && other.cloud.iter().all(|dot| self.covers(*dot))
    }

    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.cloud.is_empty()
    }

    /// The downward-closed part.
    pub fn vector(&self) -> &VersionVector {
        &self.vv
    }

    /// The dots beyond a gap.
    pub fn cloud(&self) -> impl Iterator<Item = Dot> + '_ {
        self.cloud.iter().copied()
    }

    /// Moves cloud dots that extend the vector into it; drops those it covers. The cloud is
    /// in (node, counter) order, so one pass moves every contiguous run.
    fn compact(&mut self) {
        let cloud = std::mem::take(&mut self.cloud);
        for dot in cloud {
            if dot.counter == self.vv.get(dot.node) + 1 {
                self.vv.add(dot);
            } else if !self.vv.covers(dot) {
                self.cloud.insert(dot);
            }
        }
    }
}

impl From<VersionVector> for CausalContext {
    fn from(vv: VersionVector) -> CausalContext {
        CausalContext {
            vv,
            cloud: Default::default(),
        }
    }
}

impl fmt::Display for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.vv)?;
        for dot in &self.cloud {
            write!(f, "+{dot}")?;
        }
        Ok(())
    }
}

// -------------------------------------------------------------------------------------------
// Dotted version vectors.

/// A dotted version vector: the write's own event `dot` and the `context` its writer had seen.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Dvv {
    pub dot: Dot,
    pub context: CausalContext,
}

impl Dvv {
    /// True when this write knew of (and therefore supersedes) the write `other`.
    pub fn supersedes(&self, other: &Dvv) -> bool {
        self.context.covers(other.dot)
    }
}

/// The siblings of one object: every write not superseded by a write that saw it (see the
/// module docs). `T` is the value type; a tombstone is just a value (`Option<Value>`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct DvvSet<T> {
    /// Siblings ordered by dot; no sibling's dot is covered by another sibling's context.
    siblings: Vec<(Dvv, T)>,
}

impl<T> Default for DvvSet<T> {
    fn default() -> Self {
        DvvSet {
            siblings: Vec::new(),
        }
    }
}

impl<T: Clone + PartialEq> DvvSet<T> {
    pub fn new() -> DvvSet<T> {
        DvvSet::default()
    }

    /// The siblings, in dot order.
    pub fn siblings(&self) -> impl Iterator<Item = (&Dvv, &T)> {
        self.siblings.iter().map(|(dvv, value)| (dvv, value))
    }

    pub fn len(&self) -> usize {
        self.siblings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// Everything this set has seen: the join of every sibling's dot and context. A client
    /// that writes with this context supersedes every current sibling.
    pub fn context(&self) -> CausalContext {
        let mut context = CausalContext::new();
        for (dvv, _) in &self.siblings {
            context.join(&dvv.context);
            context.add(dvv.dot);
        }
        context
    }

    /// Step 1: a write of `value` coordinated by `node`, superseding what `context` covers.
    /// Returns the new write's dot.
    pub fn write(&mut self, node: NodeId, context: &CausalContext, value: T) -> Dot {
        // Above both what this replica and what the client has seen, so that the new write
        // never counts as part of its own past (a client may hand in any context).
        let mut seen = self.context();
        seen.join(context);
        let dot = seen.next_dot(node);
        self.siblings.retain(|(dvv, _)| !context.covers(dvv.dot));
        let dvv = Dvv {
            dot,
            context: context.clone(),
        };
        self.insert(dvv, value);
        dot
    }

    /// Step 2: merges another replica's set into this one. Returns true if this set changed.
    pub fn merge(&mut self, other: &DvvSet<T>) -> bool {
        let mut union = self.siblings.clone();
        for (dvv, value) in &other.siblings {
            if !union.iter().any(|(mine, _)| mine.dot == dvv.dot) {
                union.push((dvv.clone(), value.clone()));
            }
        }
        let mut merged: Vec<(Dvv, T)> = union
            .iter()
            .filter(|(dvv, _)| !union.iter().any(|(other, _)| other.supersedes(dvv)))
            .cloned()
            .collect();
        merged.sort_by_key(|(dvv, _)| dvv.dot);
        let changed = merged != self.siblings;
        self.siblings = merged;
        changed
    }

    /// Adds a sibling, dropping every sibling it supersedes.
    fn insert(&mut self, dvv: Dvv, value: T) {
        self.siblings.retain(|(mine, _)| !dvv.supersedes(mine));
        let at = self
            .siblings
            .partition_point(|(mine, _)| mine.dot < dvv.dot);
        self.siblings.insert(at, (dvv, value));
    }

    /// Asserts the set's invariant: dots unique, no sibling superseded by another.
    pub fn check_invariants(&self) {
        for (i, (a, _)) in self.siblings.iter().enumerate() {
            for (j, (b, _)) in self.siblings.iter().enumerate() {
                if i != j {
                    assert_ne!(a.dot, b.dot, "two siblings share dot {}", a.dot);
                    assert!(
                        !a.supersedes(b),
                        "sibling {} supersedes sibling {}",
                        a.dot,
                        b.dot
                    );
                }
            }
        }
        assert!(
            self.siblings.windows(2).all(|w| w[0].0.dot < w[1].0.dot),
            "siblings are ordered by dot"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(id: u64) -> NodeId {
        NodeId(id)
    }

    #[test]
    fn hlc_stamps_increase_and_follow_received_ones() {
        let mut a = Hlc::new(1_000);
        let s1 = a.tick(100);
        assert_eq!(
            s1,
            HlcStamp {
                physical: 100,
                logical: 0
            }
        );
        // The physical clock stalls (or goes back): the counter orders the events.
        let s2 = a.tick(90);
        assert_eq!(
            s2,
            HlcStamp {
                physical: 100,
                logical: 1
            }
        );
        // A message from a node whose clock is ahead drags the clock forward.
        let s3 = a
            .observe(
                120,
                HlcStamp {
                    physical: 500,
                    logical: 7,
                },
            )
            .unwrap();
        assert_eq!(
            s3,
            HlcStamp {
                physical: 500,
                logical: 8
            }
        );
        let s4 = a.tick(130);
        assert!(s4 > s3);
        assert_eq!(
            s4,
            HlcStamp {
                physical: 500,
                logical: 9
            }
        );
        // Once physical time passes l, the counter resets.
        assert_eq!(
            a.tick(600),
            HlcStamp {
                physical: 600,
                logical: 0
            }
        );
    }

    #[test]
    fn hlc_refuses_stamps_too_far_ahead_and_stays_unchanged() {
        let mut a = Hlc::new(1_000);
        a.tick(100);
        let far = HlcStamp {
            physical: 2_000,
            logical: 0,
        };
        assert_eq!(
            a.observe(100, far),
            Err(HlcError::TooFarAhead { ahead: 1_900 })
        );
        assert_eq!(
            a.last(),
            HlcStamp {
                physical: 100,
                logical: 0
            }
        );
        assert!(
            a.observe(1_000, far).is_ok(),
            "within the bound once time passed"
        );
    }

    #[test]
    fn version_vectors_order_causally() {
        let a: VersionVector = [(n(1), 2), (n(2), 1)].into_iter().collect();
        let b: VersionVector = [(n(1), 2), (n(2), 3)].into_iter().collect();
        let c: VersionVector = [(n(1), 3)].into_iter().collect();
        assert_eq!(a.causal_cmp(&b), Some(Ordering::Less));
        assert_eq!(b.causal_cmp(&a), Some(Ordering::Greater));
        assert_eq!(b.causal_cmp(&c), None);
        assert!(b.covers(Dot {
            node: n(2),
            counter: 3
        }));
        assert!(!b.covers(Dot {
            node: n(3),
            counter: 1
        }));
        let mut joined = b.clone();
        joined.join(&c);
        assert_eq!(joined.to_string(), "[n1:3 n2:3]");
    }

    #[test]
    fn a_context_remembers_a_dot_beyond_a_gap_without_covering_the_gap() {
        let mut seen: CausalContext = VersionVector::from_iter([(n(1), 2)]).into();
        seen.add(Dot {
            node: n(1),
            counter: 7,
        });
        assert!(seen.covers(Dot {
            node: n(1),
            counter: 7
        }));
        assert!(!seen.covers(Dot {
            node: n(1),
            counter: 6
        }));
        assert_eq!(seen.next_dot(n(1)).counter, 8);
        assert_eq!(seen.to_string(), "[n1:2]+(n1, 7)");
        // Filling the gap makes the vector contiguous again.
        for counter in 3..=6 {
            seen.add(Dot {
                node: n(1),
                counter,
            });
        }
        assert_eq!(seen.to_string(), "[n1:7]");
        assert!(seen.contains_all(&VersionVector::from_iter([(n(1), 5)]).into()));
    }

    #[test]
    fn a_client_that_writes_twice_through_a_busy_coordinator_replaces_only_its_own_write() {
        let mut replica: DvvSet<&str> = DvvSet::new();
        // The client read an empty key, then others wrote through node 1.
        let mut client = replica.context();
        replica.write(n(1), &CausalContext::new(), "other");
        let dot = replica.write(n(1), &client, "mine");
        client.add(dot);
        replica.write(n(1), &client, "mine again");
        let values: Vec<_> = replica.siblings().map(|(_, v)| *v).collect();
        assert_eq!(values, vec!["other", "mine again"]);
    }

    #[test]
    fn concurrent_writes_become_siblings_and_a_write_with_their_context_resolves_them() {
        let mut replica: DvvSet<&str> = DvvSet::new();
        let empty = CausalContext::new();
        // Two clients write without having read anything: concurrent, both kept.
        replica.write(n(1), &empty, "a");
        replica.write(n(1), &empty, "b");
        let values: Vec<_> = replica.siblings().map(|(_, v)| *v).collect();
        assert_eq!(
            values,
            vec!["a", "b"],
            "same coordinator, two dots, no loss"
        );
        // A client reads both and writes with that context: one value remains.
        let context = replica.context();
        replica.write(n(2), &context, "c");
        let values: Vec<_> = replica.siblings().map(|(_, v)| *v).collect();
        assert_eq!(values, vec!["c"]);
        replica.check_invariants();
    }

    #[test]
    fn a_superseded_write_arriving_late_stays_dead() {
        let mut a: DvvSet<&str> = DvvSet::new();
        let mut b: DvvSet<&str> = DvvSet::new();
        a.write(n(1), &CausalContext::new(), "old");
        let mut c = a.clone();
        // c saw "old" and overwrote it; b hears of the overwrite before the original.
        let context = c.context();
        c.write(n(3), &context, "new");
        assert!(b.merge(&c));
        assert!(!b.merge(&a), "the overwritten write must not come back");
        assert_eq!(
            b.siblings().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec!["new"]
        );
    }

    /// Random histories of writes at three replicas with merges in between.
    fn replicas(steps: Vec<(u8, u8, bool)>) -> Vec<DvvSet<u32>> {
        let mut sets = vec![DvvSet::new(), DvvSet::new(), DvvSet::new()];
        for (i, (at, other, read_first)) in steps.into_iter().enumerate() {
            let (at, other) = (at as usize % 3, other as usize % 3);
            if i % 3 == 2 {
                let theirs = sets[other].clone();
                sets[at].merge(&theirs);
            } else {
                let context = if read_first {
                    sets[at].context()
                } else {
                    CausalContext::new()
                };
                sets[at].write(NodeId(at as u64 + 1), &context, i as u32);
            }
        }
        sets
    }

    proptest! {
        #[test]
        fn dvv_merge_is_commutative_associative_and_idempotent(
            steps in proptest::collection::vec((0u8..3, 0u8..3, any::<bool>()), 0..24)
        ) {
            let sets = replicas(steps);
            let merged = |x: &DvvSet<u32>, y: &DvvSet<u32>| {
                let mut z = x.clone();
                z.merge(y);
                z.check_invariants();
                z
            };
            let (a, b, c) = (&sets[0], &sets[1], &sets[2]);
            prop_assert_eq!(merged(a, b), merged(b, a));
            prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
            prop_assert_eq!(merged(a, a), a.clone());
        }

        #[test]
        fn hlc_issues_increasing_stamps_whatever_the_physical_clock_does(
            events in proptest::collection::vec((0u64..1_000, any::<bool>(), 0u64..1_000, 0u64..4), 1..40)
        ) {
            let mut clock = Hlc::new(u64::MAX);
            let mut last = clock.last();
            for (now, receive, remote_physical, remote_logical) in events {
                let stamp = if receive {
                    let remote = HlcStamp { physical: remote_physical, logical: remote_logical };
                    let stamp = clock.observe(now, remote).unwrap();
                    prop_assert!(stamp > remote);
                    stamp
                } else {
                    clock.tick(now)
                };
                prop_assert!(stamp > last);
                prop_assert!(stamp.physical >= now);
                last = stamp;
            }
        }
    }
}
