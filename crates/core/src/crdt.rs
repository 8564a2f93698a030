//! Conflict-free replicated data types (Shapiro, Preguiça, Baquero, Zawirski, "Conflict-free
//! Replicated Data Types", SSS 2011).
//!
//! A state-based CRDT is a data type whose states form a join semilattice: `merge` is
//! **commutative**, **associative** and **idempotent**, and every update moves the state up the
//! lattice. Replicas that apply updates locally and merge each other's states in any order, any
//! number of times, end in the same state once they have seen the same updates: strong eventual
//! consistency, with no coordination and no lost update. The tests below check the three laws
//! with property tests over random update histories.
//!
//! | type | state | update | merge | value |
//! |---|---|---|---|---|
//! | [`GCounter`] | node → count | a node adds to its own entry | pointwise max | sum |
//! | [`PnCounter`] | two G-Counters | increments to P, decrements to N | merge both | P − N |
//! | [`OrSet`] | element → dots, plus a version vector | add: a fresh dot replaces the element's dots; remove: drop the element's dots | keep a dot both sides have, or one side has and the other has not seen | elements with a dot |
//! | [`LwwRegister`] | (stamp, value) | a higher stamp replaces | the higher (stamp, value) | value |
//! | [`MvRegister`] | a [`DvvSet`] | a write supersedes what the replica has seen | the DVV set merge | all concurrent values |
//!
//! The OR-Set is the optimized add-wins observed-remove set (Bieniusa et al., "An Optimized
//! Conflict-free Replicated Set", 2012): a remove only removes the adds it has *observed*, so a
//! concurrent add survives (add wins), and tombstones are replaced by the version vector.
//!
//! [`Crdt`] wraps one of the five, addressed by [`CrdtKind`]; [`CrdtOp`] and [`CrdtValue`] are
//! how clients update and read them through the KV interface.

use crate::clock::{Dot, DvvSet, HlcStamp, VersionVector};
use crate::ids::NodeId;
use crate::kv::Value;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A grow-only counter: each node increments its own entry; the value is the sum.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct GCounter(BTreeMap<NodeId, u64>);

impl GCounter {
    pub fn increment(&mut self, node: NodeId, by: u64) {
        let entry = self.0.entry(node).or_insert(0);
        *entry = entry.saturating_add(by);
    }

    pub fn value(&self) -> u64 {
        self.0.values().fold(0u64, |sum, v| sum.saturating_add(*v))
    }

    pub fn merge(&mut self, other: &GCounter) {
        for (node, count) in &other.0 {
            let entry = self.0.entry(*node).or_insert(0);
            *entry = (*entry).max(*count);
        }
    }
}

/// A counter that goes both ways: increments and decrements kept in two G-Counters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct PnCounter {
    increments: GCounter,
    decrements: GCounter,
}

impl PnCounter {
    pub fn add(&mut self, node: NodeId, delta: i64) {
        if delta >= 0 {
            self.increments.increment(node, delta.unsigned_abs());
        } else {
            self.decrements.increment(node, delta.unsigned_abs());
        }
    }

    pub fn value(&self) -> i64 {
        let up = i128::from(self.increments.value());
        let down = i128::from(self.decrements.value());
        (up - down).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    pub fn merge(&mut self, other: &PnCounter) {
        self.increments.merge(&other.increments);
        self.decrements.merge(&other.decrements);
    }
}

/// An add-wins observed-remove set (see the module docs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct OrSet<T: Ord> {
    /// Each present element with the dots of the adds that put it there (never empty).
    entries: BTreeMap<T, BTreeSet<Dot>>,
    /// Every add this replica has seen, present or removed.
    context: VersionVector,
}

impl<T: Ord> Default for OrSet<T> {
    fn default() -> Self {
        OrSet {
            entries: BTreeMap::new(),
            context: VersionVector::new(),
        }
    }
}

impl<T: Ord + Clone> OrSet<T> {
    /// Adds `element` at `node`: a fresh dot replaces the dots this replica has observed.
    pub fn add(&mut self, node: NodeId, element: T) {
        let dot = self.context.next_dot(node);
        self.context.add(dot);
        self.entries.insert(element, BTreeSet::from([dot]));
    }

    /// Removes the adds of `element` this replica has observed; concurrent adds survive.
    pub fn remove(&mut self, element: &T) {
        self.entries.remove(element);
    }

    pub fn contains(&self, element: &T) -> bool {
        self.entries.contains_key(element)
    }

    pub fn elements(&self) -> impl Iterator<Item = &T> {
        self.entries.keys()
    }

    pub fn merge(&mut self, other: &OrSet<T>) {
        let mut merged = BTreeMap::new();
        let elements: BTreeSet<&T> = self.entries.keys().chain(other.entries.keys()).collect();
        for element in elements {
            let empty = BTreeSet::new();
            let mine = self.entries.get(element).unwrap_or(&empty);
            let theirs = other.entries.get(element).unwrap_or(&empty);
            // A dot survives if both sides have it, or one side has it and the other has not
            // seen it yet; a dot one side has seen and dropped was removed.
            let dots: BTreeSet<Dot> = mine
                .iter()
                .filter(|dot| theirs.contains(dot) || !other.context.covers(**dot))
                .chain(theirs.iter().filter(|dot| !self.context.covers(**dot)))
                .copied()
                .collect();
            if !dots.is_empty() {
                merged.insert(element.clone(), dots);
            }
        }
        self.entries = merged;
        self.context.join(&other.context);
    }
}

/// The stamp that orders writes of a last-write-wins register: a hybrid logical clock reading,
/// ties broken by the writing node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct LwwStamp {
    pub time: HlcStamp,
    pub node: NodeId,
}

/// A last-write-wins register: the write with the highest stamp holds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    current: Option<(LwwStamp, T)>,
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        LwwRegister { current: None }
    }
}

impl<T: Ord + Clone> LwwRegister<T> {
    /// Writes `value` at `stamp`; returns false (and changes nothing) if a write with a higher
    /// stamp is already held — the caller's write is discarded.
    pub fn set(&mut self, stamp: LwwStamp, value: T) -> bool {
        let candidate = (stamp, value);
        let wins = match &self.current {
            None => true,
            // Ties of stamps (impossible for one node's HLC) are broken by value, so that merge
            // stays commutative whatever the stamps.
            Some(current) => candidate > *current,
        };
        if wins {
            self.current = Some(candidate);
        }
        wins
    }

    pub fn get(&self) -> Option<&T> {
        self.current.as_ref().map(|(_, value)| value)
    }

    pub fn stamp(&self) -> Option<LwwStamp> {
        self.current.as_ref().map(|(stamp, _)| *stamp)
    }

    pub fn merge(&mut self, other: &LwwRegister<T>) {
        if let Some((stamp, value)) = &other.current {
            self.set(*stamp, value.clone());
        }
    }
}

/// A multi-value register: a write supersedes every value its replica has seen; concurrent
/// writes are all kept.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct MvRegister<T> {
    versions: DvvSet<T>,
}

impl<T> Default for MvRegister<T> {
    fn default() -> Self {
        MvRegister {
            versions: DvvSet::default(),
        }
    }
}

impl<T: Clone + PartialEq> MvRegister<T> {
    pub fn set(&mut self, node: NodeId, value: T) {
        let seen = self.versions.context();
        self.versions.write(node, &seen, value);
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.versions.siblings().map(|(_, value)| value)
    }

    pub fn merge(&mut self, other: &MvRegister<T>) {
        self.versions.merge(&other.versions);
    }
}

// -------------------------------------------------------------------------------------------
// The CRDTs as the KV interface exposes them.

/// Which CRDT a key holds. CRDTs are addressed by `(key, kind)`, as Riak's bucket types do, so
/// a counter and a set may share a key name without ever meeting.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum CrdtKind {
    GCounter,
    PnCounter,
    OrSet,
    LwwRegister,
    MvRegister,
}

/// An update to a CRDT.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum CrdtOp {
    /// G-Counter: add a non-negative amount.
    Increment(u64),
    /// PN-Counter: add a signed amount.
    Add(i64),
    /// OR-Set: add an element.
    SetAdd(Value),
    /// OR-Set: remove the adds of an element that the replica has observed.
    SetRemove(Value),
    /// LWW-Register: write a value, stamped by the replica's hybrid logical clock.
    LwwSet(Value),
    /// MV-Register: write a value, superseding what the replica has seen.
    MvSet(Value),
}

impl CrdtOp {
    pub fn kind(&self) -> CrdtKind {
        match self {
            CrdtOp::Increment(_) => CrdtKind::GCounter,
            CrdtOp::Add(_) => CrdtKind::PnCounter,
            CrdtOp::SetAdd(_) | CrdtOp::SetRemove(_) => CrdtKind::OrSet,
            CrdtOp::LwwSet(_) => CrdtKind::LwwRegister,
            CrdtOp::MvSet(_) => CrdtKind::MvRegister,
        }
    }
}

/// What reading a CRDT returns.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum CrdtValue {
    /// G-Counter and PN-Counter.
    Counter(i64),
    /// OR-Set: the elements, in order.
    Set(Vec<Value>),
    /// LWW-Register (`None`: never written).
    Register(Option<Value>),
    /// MV-Register: the concurrent values, in dot order.
    MultiValue(Vec<Value>),
}

/// One CRDT of any kind.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Crdt {
    GCounter(GCounter),
    PnCounter(PnCounter),
    OrSet(OrSet<Value>),
    LwwRegister(LwwRegister<Value>),
    MvRegister(MvRegister<Value>),
}

impl Crdt {
    /// The empty CRDT of `kind` (its lattice bottom).
    pub fn new(kind: CrdtKind) -> Crdt {
        match kind {
            CrdtKind::GCounter => Crdt::GCounter(GCounter::default()),
            CrdtKind::PnCounter => Crdt::PnCounter(PnCounter::default()),
            CrdtKind::OrSet => Crdt::OrSet(OrSet::default()),
            CrdtKind::LwwRegister => Crdt::LwwRegister(LwwRegister::default()),
            CrdtKind::MvRegister => Crdt::MvRegister(MvRegister::default()),
        }
    }

    pub fn kind(&self) -> CrdtKind {
        match self {
            Crdt::GCounter(_) => CrdtKind::GCounter,
            Crdt::PnCounter(_) => CrdtKind::PnCounter,
            Crdt::OrSet(_) => CrdtKind::OrSet,
            Crdt::LwwRegister(_) => CrdtKind::LwwRegister,
            Crdt::MvRegister(_) => CrdtKind::MvRegister,
        }
    }

    /// Applies `op` at replica `node`; `stamp` orders an LWW write.
    ///
    /// # Panics
    /// If `op` is for another kind of CRDT: callers address CRDTs by `(key, op.kind())`.
    pub fn apply(&mut self, op: &CrdtOp, node: NodeId, stamp: LwwStamp) {
        match (self, op) {
            (Crdt::GCounter(c), CrdtOp::Increment(by)) => c.increment(node, *by),
            (Crdt::PnCounter(c), CrdtOp::Add(delta)) => c.add(node, *delta),
            (Crdt::OrSet(s), CrdtOp::SetAdd(element)) => s.add(node, element.clone()),
            (Crdt::OrSet(s), CrdtOp::SetRemove(element)) => s.remove(element),
            (Crdt::LwwRegister(r), CrdtOp::LwwSet(value)) => {
                r.set(stamp, value.clone());
            }
            (Crdt::MvRegister(r), CrdtOp::MvSet(value)) => r.set(node, value.clone()),
            (crdt, op) => panic!("{op:?} applied to a {:?}", crdt.kind()),
        }
    }

    pub fn value(&self) -> CrdtValue {
        match self {
            Crdt::GCounter(c) => CrdtValue::Counter(i64::try_from(c.value()).unwrap_or(i64::MAX)),
            Crdt::PnCounter(c) => CrdtValue::Counter(c.value()),
            Crdt::OrSet(s) => CrdtValue::Set(s.elements().cloned().collect()),
            Crdt::LwwRegister(r) => CrdtValue::Register(r.get().cloned()),
            Crdt::MvRegister(r) => CrdtValue::MultiValue(r.values().cloned().collect()),
        }
    }

    /// Joins `other` into `self`; returns true if `self` changed.
    ///
    /// # Panics
    /// If the kinds differ.
    pub fn merge(&mut self, other: &Crdt) -> bool {
        let before = self.clone();
        match (&mut *self, other) {
            (Crdt::GCounter(a), Crdt::GCounter(b)) => a.merge(b),
            (Crdt::PnCounter(a), Crdt::PnCounter(b)) => a.merge(b),
            (Crdt::OrSet(a), Crdt::OrSet(b)) => a.merge(b),
            (Crdt::LwwRegister(a), Crdt::LwwRegister(b)) => a.merge(b),
            (Crdt::MvRegister(a), Crdt::MvRegister(b)) => a.merge(b),
            (a, b) => panic!("merging a {:?} into a {:?}", b.kind(), a.kind()),
        }
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn n(id: u64) -> NodeId {
        NodeId(id)
    }

    fn v(text: &str) -> Value {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn stamp(physical: u64, node: u64) -> LwwStamp {
        LwwStamp {
            time: HlcStamp {
                physical,
                logical: 0,
            },
            node: n(node),
        }
    }

    #[test]
    fn counters_count_every_replicas_updates_once() {
        let mut a = PnCounter::default();
        let mut b = PnCounter::default();
        a.add(n(1), 5);
        b.add(n(2), 3);
        b.add(n(2), -4);
        a.merge(&b);
        a.merge(&b); // Idempotent: merging twice counts nothing twice.
        b.merge(&a);
        assert_eq!(a.value(), 4);
        assert_eq!(a, b);
    }

    #[test]
    fn or_set_add_wins_over_a_concurrent_remove() {
        let mut a = OrSet::default();
        a.add(n(1), "x");
        let mut b = a.clone();
        b.remove(&"x"); // b removes the add it observed...
        a.add(n(1), "x"); // ...while a adds x again, concurrently.
        a.merge(&b);
        b.merge(&a);
        assert!(
            a.contains(&"x") && b.contains(&"x"),
            "the unobserved add survives"
        );
        // A remove that has observed every add removes the element everywhere.
        b.remove(&"x");
        a.merge(&b);
        assert!(!a.contains(&"x"));
    }

    #[test]
    fn lww_register_keeps_the_highest_stamp_and_reports_discards() {
        let mut r = LwwRegister::default();
        assert!(r.set(stamp(10, 1), "a"));
        assert!(!r.set(stamp(5, 2), "b"), "an older write is discarded");
        assert_eq!(r.get(), Some(&"a"));
        assert!(
            r.set(stamp(10, 2), "c"),
            "equal times: the node breaks the tie"
        );
        assert_eq!(r.get(), Some(&"c"));
    }

    #[test]
    fn mv_register_keeps_concurrent_values_until_a_write_sees_them() {
        let mut a = MvRegister::default();
        let mut b = MvRegister::default();
        a.set(n(1), "x");
        b.set(n(2), "y");
        a.merge(&b);
        assert_eq!(a.values().copied().collect::<Vec<_>>(), vec!["x", "y"]);
        a.set(n(1), "z");
        b.merge(&a);
        assert_eq!(b.values().copied().collect::<Vec<_>>(), vec!["z"]);
    }

    #[test]
    fn crdt_values_through_the_kv_types() {
        let mut set = Crdt::new(CrdtKind::OrSet);
        set.apply(&CrdtOp::SetAdd(v("b")), n(1), stamp(0, 1));
        set.apply(&CrdtOp::SetAdd(v("a")), n(1), stamp(0, 1));
        assert_eq!(set.value(), CrdtValue::Set(vec![v("a"), v("b")]));
        let mut counter = Crdt::new(CrdtKind::GCounter);
        counter.apply(&CrdtOp::Increment(7), n(3), stamp(0, 1));
        assert_eq!(counter.value(), CrdtValue::Counter(7));
        assert!(!counter.clone().merge(&counter));
    }

    // ---------------------------------------------------------------------------------------
    // The merge laws, over random histories of updates and merges at three replicas.

    /// One step of a random history: at replica `at`, either apply an update derived from
    /// `arg`, or merge in replica `other`'s state.
    type Step = (u8, u8, bool, u8);

    fn op_for(kind: CrdtKind, arg: u8) -> CrdtOp {
        let element = v(&format!("e{}", arg % 4));
        match kind {
            CrdtKind::GCounter => CrdtOp::Increment(u64::from(arg % 5)),
            CrdtKind::PnCounter => CrdtOp::Add(i64::from(arg % 9) - 4),
            CrdtKind::OrSet if matches!(arg % 3, 0) => CrdtOp::SetRemove(element),
            CrdtKind::OrSet => CrdtOp::SetAdd(element),
            CrdtKind::LwwRegister => CrdtOp::LwwSet(element),
            CrdtKind::MvRegister => CrdtOp::MvSet(element),
        }
    }

    fn history(kind: CrdtKind, steps: Vec<Step>) -> Vec<Crdt> {
        let mut replicas = vec![Crdt::new(kind), Crdt::new(kind), Crdt::new(kind)];
        for (i, (at, other, merge, arg)) in steps.into_iter().enumerate() {
            let (at, other) = (at as usize % 3, other as usize % 3);
            if merge {
                let theirs = replicas[other].clone();
                replicas[at].merge(&theirs);
            } else {
                let node = n(at as u64 + 1);
                // Stamps as an HLC would issue them: distinct per node, loosely increasing.
                let lww = stamp(i as u64 / 2, at as u64 + 1);
                replicas[at].apply(&op_for(kind, arg), node, lww);
            }
        }
        replicas
    }

    fn merged(a: &Crdt, b: &Crdt) -> Crdt {
        let mut c = a.clone();
        c.merge(b);
        c
    }

    fn kinds() -> impl Strategy<Value = CrdtKind> {
        prop_oneof![
            Just(CrdtKind::GCounter),
            Just(CrdtKind::PnCounter),
            Just(CrdtKind::OrSet),
            Just(CrdtKind::LwwRegister),
            Just(CrdtKind::MvRegister),
        ]
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec((0u8..3, 0u8..3, any::<bool>(), any::<u8>()), 0..30)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn merge_is_commutative(kind in kinds(), steps in steps()) {
            let r = history(kind, steps);
            prop_assert_eq!(merged(&r[0], &r[1]), merged(&r[1], &r[0]));
        }

        #[test]
        fn merge_is_associative(kind in kinds(), steps in steps()) {
            let r = history(kind, steps);
            prop_assert_eq!(
                merged(&merged(&r[0], &r[1]), &r[2]),
                merged(&r[0], &merged(&r[1], &r[2]))
            );
        }

        #[test]
        fn merge_is_idempotent(kind in kinds(), steps in steps()) {
            let r = history(kind, steps);
            prop_assert_eq!(merged(&r[0], &r[0]), r[0].clone());
            let ab = merged(&r[0], &r[1]);
            prop_assert_eq!(merged(&ab, &r[1]), ab.clone());
        }

        #[test]
        fn merge_only_moves_up_the_lattice(kind in kinds(), steps in steps()) {
            // a ⊔ b is an upper bound of a: merging a into it changes nothing.
            let r = history(kind, steps);
            let ab = merged(&r[0], &r[1]);
            prop_assert!(!ab.clone().merge(&r[0]));
            prop_assert!(!ab.clone().merge(&r[1]));
        }

        #[test]
        fn a_counter_counts_each_update_exactly_once(
            steps in proptest::collection::vec((0u8..3, 0u8..3, any::<bool>(), any::<u8>()), 0..30)
        ) {
            let expected: i64 = steps
                .iter()
                .filter(|(_, _, merge, _)| !merge)
                .map(|(_, _, _, arg)| i64::from(arg % 9) - 4)
                .sum();
            let r = history(CrdtKind::PnCounter, steps);
            let all = merged(&merged(&r[0], &r[1]), &r[2]);
            prop_assert_eq!(all.value(), CrdtValue::Counter(expected));
        }
    }
}
