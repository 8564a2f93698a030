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
//! A **causal context** ([`CausalContext`]) is any set of dots: a version vector plus dots
//! seen beyond a gap. A client that read `{n1:2}` and then wrote through `n1`, which had
//! meanwhile coordinated writes `(n1,3)..(n1,6)` the client never saw, has seen
//! `{n1:2} + (n1,7)`; the plain vector `{n1:7}` would claim it saw, and let its next write
//! replace, `(n1,3)..(n1,6)`. It is stored as ranges of counters per node, so its size is its
//! number of gaps, not of dots.
//!
//! Dots give each write its own identity: the DVV paper's point is that a per-replica vector
//! alone cannot tell two concurrent writes coordinated by the same replica apart (they would
//! get one entry and one would be lost); a dot per write can. A [`DvvSet`] keeps every write
//! not yet superseded (the *siblings*, each a dot and a value) and the causal context of every
//! dot its replica has seen for the object: the dot-kernel multi-value register of delta-state
//! CRDTs (Almeida et al., "Delta State Replicated Data Types", 2018).
//!
//! 1. A **write** of `v` coordinated by node `r` with the client's context `C` (what the
//!    client read) drops every sibling whose dot `C` covers, adds `C` to the replica's
//!    context, and gets the dot `(r, n)`, `n` one above anything the context holds of `r`.
//! 2. A **merge** of two replicas' sets keeps a sibling if both hold it or the other side has
//!    not seen its dot: a dot that the other side has seen but does not hold was superseded.
//!    The contexts are joined. A write's *delta* (its sibling, and `C` plus its dot) merges
//!    like the whole set would for that write, so replication ships one sibling, not the
//!    object's history.
//! 3. A **read** returns the siblings' values and the replica's context: the context the
//!    client hands back with its next write.
//!
//! The state is bounded by the siblings plus the gaps of the context; once every replica has
//! seen every dot the context is a version vector, one entry per node that ever coordinated
//! a write of the object. Deletions keep no tombstone: the context remembers them.

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

/// A set of dots, kept per node as sorted, disjoint, non-adjacent ranges of counters: the
/// downward-closed part (a version vector) is the range that starts at 1, a dot seen beyond a
/// gap is a range of its own, and a dot missing from an otherwise contiguous run is the gap
/// between two ranges. Its size is the number of gaps, not of dots: a context that saw
/// everything but the few siblings it has not read is as small as those siblings are few.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct CausalContext {
    /// `(node, lo, hi)`: the counters `lo..=hi` of `node`. Sorted by node, then counter; one
    /// flat vector, because contexts are cloned, hashed and joined on every write and merge.
    ranges: Vec<(NodeId, u64, u64)>,
}

impl CausalContext {
    pub fn new() -> CausalContext {
        CausalContext::default()
    }

    /// Where `node`'s ranges are.
    fn span(&self, node: NodeId) -> std::ops::Range<usize> {
        let start = self.ranges.partition_point(|(n, _, _)| *n < node);
        let end = start + self.ranges[start..].partition_point(|(n, _, _)| *n == node);
        start..end
    }

    /// The index of the range of `node` that holds `counter`, if any.
    fn find(&self, node: NodeId, counter: u64) -> Option<usize> {
        let span = self.span(node);
        let mine = &self.ranges[span.clone()];
        let at = mine.partition_point(|(_, _, hi)| *hi < counter);
        (at < mine.len() && mine[at].1 <= counter).then_some(span.start + at)
    }

    /// True when `dot` is in the set.
    pub fn covers(&self, dot: Dot) -> bool {
        self.find(dot.node, dot.counter).is_some()
    }

    /// Adds one dot (and nothing before it).
    pub fn add(&mut self, dot: Dot) {
        self.insert(dot.node, dot.counter, dot.counter);
    }

    /// Takes one dot out of the set (splitting its range).
    pub fn remove(&mut self, dot: Dot) {
        let Some(at) = self.find(dot.node, dot.counter) else {
            return;
        };
        let (node, lo, hi) = self.ranges[at];
        let parts = [(node, lo, dot.counter - 1), (node, dot.counter + 1, hi)];
        let parts = parts.into_iter().filter(|(_, lo, hi)| lo <= hi);
        self.ranges.splice(at..=at, parts);
    }

    /// Adds the counters `lo..=hi` of `node`, merging the ranges they touch.
    fn insert(&mut self, node: NodeId, lo: u64, hi: u64) {
        if lo == 0 || lo > hi {
            return; // Counters start at 1.
        }
        let span = self.span(node);
        let mine = &self.ranges[span.clone()];
        let start = mine.partition_point(|(_, _, h)| h.saturating_add(1) < lo);
        let end = mine.partition_point(|(_, l, _)| *l <= hi.saturating_add(1));
        let (mut lo, mut hi) = (lo, hi);
        if start < end {
            if start + 1 == end && mine[start].1 <= lo && hi <= mine[start].2 {
                return; // Already covered.
            }
            lo = lo.min(mine[start].1);
            hi = hi.max(mine[end - 1].2);
        }
        let (start, end) = (span.start + start, span.start + end);
        self.ranges.splice(start..end, [(node, lo, hi)]);
    }

    /// The union of two sets of dots.
    pub fn join(&mut self, other: &CausalContext) {
        if self.ranges.is_empty() {
            self.ranges.clone_from(&other.ranges);
            return;
        }
        for (node, lo, hi) in &other.ranges {
            self.insert(*node, *lo, *hi);
        }
    }

    /// The next dot of `node`: above every dot of `node` in the set.
    pub fn next_dot(&self, node: NodeId) -> Dot {
        let span = self.span(node);
        let last = self.ranges[span].last().map_or(0, |(_, _, hi)| *hi);
        Dot {
            node,
            counter: last + 1,
        }
    }

    /// True when every dot of `other` is in this set.
    pub fn contains_all(&self, other: &CausalContext) -> bool {
        // Ranges are non-adjacent, so a covered run lies within one of them.
        other.ranges.iter().all(|(node, lo, hi)| {
            self.find(*node, *lo)
                .is_some_and(|at| *hi <= self.ranges[at].2)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The downward-closed part: per node, the run of counters from 1.
    pub fn vector(&self) -> VersionVector {
        self.ranges
            .iter()
            .filter(|(_, lo, _)| *lo == 1)
            .map(|(node, _, hi)| (*node, *hi))
            .collect()
    }

    /// How many ranges the set is made of: its size, whatever the number of dots.
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Asserts the representation's invariant: ranges of counters from 1, sorted by node and
    /// counter, and per node disjoint and not adjacent.
    pub fn check_invariants(&self) {
        for (node, lo, hi) in &self.ranges {
            assert!(1 <= *lo && lo <= hi, "{node}: bad range {lo}..={hi}");
        }
        for pair in self.ranges.windows(2) {
            let ((a, _, a_hi), (b, b_lo, _)) = (pair[0], pair[1]);
            assert!(
                a < b || (a == b && a_hi + 1 < b_lo),
                "ranges {:?} and {:?} out of order, overlapping or touching",
                pair[0],
                pair[1]
            );
        }
    }
}

impl From<VersionVector> for CausalContext {
    fn from(vv: VersionVector) -> CausalContext {
        let mut context = CausalContext::new();
        for (node, counter) in vv.iter() {
            context.insert(node, 1, counter);
        }
        context
    }
}

impl fmt::Display for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.vector())?;
        for (node, lo, hi) in self.ranges.iter().filter(|(_, lo, _)| *lo != 1) {
            if lo == hi {
                write!(f, "+({node}, {lo})")?;
            } else {
                write!(f, "+({node}, {lo}..={hi})")?;
            }
        }
        Ok(())
    }
}

// -------------------------------------------------------------------------------------------
// Dotted version vectors.

/// The versions of one object (a multi-value register) as a delta-state CRDT (Almeida et
/// al. 2018, "Delta state replicated data types", the dot-kernel MV-register): the live
/// siblings, each a dot and a value, and the causal context of every dot the replica has
/// seen for the object, live or not. A dot the context covers that is not a sibling was
/// superseded (or was a deletion); nothing else needs remembering, so the state is bounded by
/// the siblings and the context's gaps, however many writes the object has had.
///
/// `T` is the value type.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct DvvSet<T> {
    /// Live siblings ordered by dot; each dot is in `seen`.
    siblings: Vec<(Dot, T)>,
    /// Every dot this replica has seen for the object.
    seen: CausalContext,
}

impl<T> Default for DvvSet<T> {
    fn default() -> Self {
        DvvSet {
            siblings: Vec::new(),
            seen: CausalContext::new(),
        }
    }
}

impl<T: Clone + PartialEq> DvvSet<T> {
    pub fn new() -> DvvSet<T> {
        DvvSet::default()
    }

    /// The siblings, in dot order.
    pub fn siblings(&self) -> impl Iterator<Item = (Dot, &T)> {
        self.siblings.iter().map(|(dot, value)| (*dot, value))
    }

    pub fn len(&self) -> usize {
        self.siblings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// Everything this set has seen. A client that read every sibling and writes with this
    /// context supersedes every current sibling.
    pub fn context(&self) -> CausalContext {
        self.seen.clone()
    }

    /// How many siblings would remain after a write with `context` (itself included).
    pub fn siblings_after_write(&self, context: &CausalContext) -> usize {
        let kept = self.siblings.iter().filter(|(d, _)| !context.covers(*d));
        kept.count() + 1
    }

    /// Step 1: a write of `value` coordinated by `node`, superseding what `context` covers.
    /// Returns the new write's dot.
    pub fn write(&mut self, node: NodeId, context: &CausalContext, value: T) -> Dot {
        let dot = self.supersede(node, context);
        let at = self.siblings.partition_point(|(mine, _)| *mine < dot);
        self.siblings.insert(at, (dot, value));
        dot
    }

    /// A deletion coordinated by `node`: supersedes what `context` covers and keeps no value
    /// (no tombstone: the context remembers the deletion). Returns its dot.
    pub fn remove(&mut self, node: NodeId, context: &CausalContext) -> Dot {
        self.supersede(node, context)
    }

    /// Drops the siblings `context` covers, remembers `context`, and issues the next dot of
    /// `node`: above both what this replica and what the client has seen, so that the new
    /// write never counts as part of its own past (a client may hand in any context).
    fn supersede(&mut self, node: NodeId, context: &CausalContext) -> Dot {
        self.siblings.retain(|(dot, _)| !context.covers(*dot));
        self.seen.join(context);
        let dot = self.seen.next_dot(node);
        self.seen.add(dot);
        dot
    }

    /// The delta of the write `dot` made with `context`: the write's sibling (if it holds a
    /// value) and the dots it superseded. Merging it does what merging the whole set would
    /// do for this write, at the cost of one sibling and one context.
    pub fn delta(&self, dot: Dot, context: &CausalContext) -> DvvSet<T> {
        let mut seen = context.clone();
        seen.add(dot);
        DvvSet {
            siblings: self
                .siblings
                .iter()
                .filter(|(d, _)| *d == dot)
                .cloned()
                .collect(),
            seen,
        }
    }

    /// The context to answer the write `dot` made with `context`: everything this replica
    /// has seen except the siblings the writer has not (those must survive its next write).
    /// Covering superseded dots the writer never saw is harmless (they are dead everywhere
    /// once the write that superseded them spreads) and keeps the answer a few ranges long,
    /// where `context + dot` would gain a range per write once another writer left a gap.
    pub fn written_context(&self, context: &CausalContext, dot: Dot) -> CausalContext {
        let mut answer = self.seen.clone();
        for (sibling, _) in &self.siblings {
            if *sibling != dot && !context.covers(*sibling) {
                answer.remove(*sibling);
            }
        }
        answer
    }

    /// Step 2: merges another replica's set (or a delta) into this one: a sibling survives
    /// if both sides hold it or the other side has not seen it (had it seen it, it would
    /// hold it unless it was superseded). Returns true if this set changed.
    pub fn merge(&mut self, other: &DvvSet<T>) -> bool {
        let held =
            |set: &[(Dot, T)], dot: Dot| set.binary_search_by(|(mine, _)| mine.cmp(&dot)).is_ok();
        let mut changed = false;
        self.siblings.retain(|(dot, _)| {
            let keep = held(&other.siblings, *dot) || !other.seen.covers(*dot);
            changed |= !keep;
            keep
        });
        // A dot this side holds, it has seen: only the unseen ones are new.
        for (dot, value) in &other.siblings {
            if !self.seen.covers(*dot) {
                let at = self.siblings.partition_point(|(mine, _)| mine < dot);
                self.siblings.insert(at, (*dot, value.clone()));
                changed = true;
            }
        }
        if !self.seen.contains_all(&other.seen) {
            self.seen.join(&other.seen);
            changed = true;
        }
        changed
    }

    /// Asserts the set's invariant: siblings ordered by dot (so dots unique), every sibling's
    /// dot in the context, the context well formed.
    pub fn check_invariants(&self) {
        assert!(
            self.siblings.windows(2).all(|w| w[0].0 < w[1].0),
            "siblings are ordered by dot, each dot once"
        );
        for (dot, _) in &self.siblings {
            assert!(
                self.seen.covers(*dot),
                "sibling {dot} is not in the context"
            );
        }
        self.seen.check_invariants();
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

    #[test]
    fn a_context_keeps_ranges_and_splits_them_when_a_dot_is_taken_out() {
        let dot = |counter| Dot {
            node: n(1),
            counter,
        };
        let mut seen: CausalContext = VersionVector::from_iter([(n(1), 9)]).into();
        seen.remove(dot(4));
        seen.remove(dot(9));
        assert_eq!(seen.to_string(), "[n1:3]+(n1, 5..=8)");
        assert!(!seen.covers(dot(4)) && seen.covers(dot(5)) && !seen.covers(dot(9)));
        assert_eq!(seen.next_dot(n(1)).counter, 9);
        seen.add(dot(4));
        assert_eq!(seen.to_string(), "[n1:8]");
        assert_eq!(seen.ranges(), 1);
        seen.check_invariants();
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
        fn a_context_is_the_set_of_dots_it_was_given(
            steps in proptest::collection::vec((0u8..3, 1u64..12, 1u64..4, 0u8..3), 0..40)
        ) {
            let mut sets = vec![CausalContext::new(); 2];
            let mut models = vec![std::collections::BTreeSet::new(); 2];
            for (op, counter, width, node) in steps {
                let which = (counter % 2) as usize;
                let node = n(node as u64);
                match op {
                    0 => {
                        for c in counter..counter + width {
                            sets[which].add(Dot { node, counter: c });
                            models[which].insert(Dot { node, counter: c });
                        }
                    }
                    1 => {
                        sets[which].remove(Dot { node, counter });
                        models[which].remove(&Dot { node, counter });
                    }
                    _ => {
                        let other = sets[1 - which].clone();
                        sets[which].join(&other);
                        let other = models[1 - which].clone();
                        models[which].extend(other);
                    }
                }
                for (set, model) in sets.iter().zip(&models) {
                    set.check_invariants();
                    for node in 0..3 {
                        for counter in 1..16 {
                            let dot = Dot { node: n(node), counter };
                            prop_assert_eq!(set.covers(dot), model.contains(&dot));
                        }
                    }
                }
                let subset = models[0].iter().all(|d| models[1].contains(d));
                prop_assert_eq!(sets[1].contains_all(&sets[0]), subset);
            }
        }

        /// Siblings exactly for concurrent writes: once every replica's set is merged, the
        /// siblings are the writes whose dot no write's context covered, whatever the order
        /// of writes (with the local context, none, or another replica's, as a client that
        /// moved would bring), deletions and merges.
        #[test]
        fn the_merged_siblings_are_the_writes_no_write_saw(
            steps in proptest::collection::vec((0u8..3, 0u8..3, 0u8..4), 0..40)
        ) {
            let mut sets: Vec<DvvSet<u32>> = vec![DvvSet::new(); 3];
            let mut writes: Vec<(Dot, CausalContext, bool)> = Vec::new();
            for (i, (at, other, how)) in steps.into_iter().enumerate() {
                let (at, other) = (at as usize, other as usize);
                let node = NodeId(at as u64 + 1);
                if i % 3 == 2 {
                    let theirs = sets[other].clone();
                    sets[at].merge(&theirs);
                    continue;
                }
                let context = match how {
                    0 => CausalContext::new(),
                    1 | 3 => sets[at].context(),
                    _ => sets[other].context(),
                };
                let before = sets[at].clone();
                let (dot, live) = if how == 3 {
                    (sets[at].remove(node, &context), false)
                } else {
                    (sets[at].write(node, &context, i as u32), true)
                };
                // The delta merged into the state before the write is the state after it.
                let mut via_delta = before;
                via_delta.merge(&sets[at].delta(dot, &context));
                prop_assert_eq!(&via_delta, &sets[at]);
                writes.push((dot, context, live));
            }
            let mut all = DvvSet::new();
            for set in &sets {
                all.merge(set);
                all.check_invariants();
            }
            let expected: Vec<Dot> = writes
                .iter()
                .filter(|(dot, _, live)| {
                    *live && !writes.iter().any(|(_, context, _)| context.covers(*dot))
                })
                .map(|(dot, _, _)| *dot)
                .collect();
            let mut expected = expected;
            expected.sort();
            let actual: Vec<Dot> = all.siblings().map(|(dot, _)| dot).collect();
            prop_assert_eq!(actual, expected);
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
