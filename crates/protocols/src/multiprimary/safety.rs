//! Multi-primary's cluster-wide properties, checked after every step, and the ledger of LWW
//! writes from which the simulator counts what last-write-wins discarded.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | Dot uniqueness | one dot names one write, everywhere | a ledger `(key, dot) → digest(value)` fed from every persisted sibling set; a dot only the crashed node held is forgotten at its crash (it may not have been durable, and then never left the node) |
//! | HLC monotonicity | each node's LWW stamps strictly increase | the last stamp per node (reset by a crash: an unsynced stamp never left the node) |
//! | Sibling sets well formed | no sibling supersedes another | `DvvSet::check_invariants` on every persisted set |
//!
//! Convergence and "no acknowledged write lost" are properties of the client history and of
//! the replicas' final state; the simulator checks them at the end of a run.

use super::message::{Entry, LwwOrigin, Record, Slot};
use super::{MultiPrimary, MultiPrimaryStats};
use quorate_core::clock::{Dot, HlcStamp};
use quorate_core::digest::digest;
use quorate_core::{Effect, Invariants, Key, NodeId, Value, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// One acknowledged-or-not LWW write, as its coordinator persisted it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LwwWrite {
    pub key: Key,
    pub value: Option<Value>,
    pub origin: LwwOrigin,
}

/// The cluster-wide ledgers of a multi-primary run.
#[derive(Clone, Debug, Default)]
pub struct MultiPrimarySafety {
    /// Per key and dot: the digest of its value and the nodes that persisted it.
    dots: BTreeMap<Slot, BTreeMap<Dot, (u64, BTreeSet<NodeId>)>>,
    last_stamp: BTreeMap<NodeId, HlcStamp>,
    lww_writes: Vec<LwwWrite>,
    seen: BTreeMap<NodeId, MultiPrimaryStats>,
    totals: MultiPrimaryStats,
    /// Persisted sibling sets holding two or more live values: conflicts kept, not lost.
    concurrent_siblings: u64,
}

impl MultiPrimarySafety {
    pub fn new() -> MultiPrimarySafety {
        MultiPrimarySafety::default()
    }

    /// Every LWW register write persisted by a coordinator, in the order they happened.
    pub fn lww_writes(&self) -> &[LwwWrite] {
        &self.lww_writes
    }

    fn dot_uniqueness(&mut self, id: NodeId, slot: &Slot, entry: &Entry) -> Result<(), Violation> {
        let Entry::Siblings(set) = entry else {
            return Ok(());
        };
        set.check_invariants();
        if Entry::live_siblings(set).len() >= 2 {
            self.concurrent_siblings += 1;
        }
        if set.is_empty() {
            return Ok(());
        }
        if !self.dots.contains_key(slot) {
            self.dots.insert(slot.clone(), BTreeMap::new());
        }
        let dots = self.dots.get_mut(slot).expect("inserted above");
        for (dot, value) in set.siblings() {
            let value_digest = digest(value);
            let (known, holders) = dots
                .entry(dot)
                .or_insert_with(|| (value_digest, BTreeSet::new()));
            holders.insert(id);
            if *known != value_digest {
                return Err(Violation {
                    property: "dot uniqueness",
                    detail: format!(
                        "{id} holds {:?} at dot {} with another value than a replica before it",
                        slot, dot
                    ),
                });
            }
        }
        Ok(())
    }

    fn hlc_monotonic(&mut self, id: NodeId, origin: &LwwOrigin) -> Result<(), Violation> {
        let last = self.last_stamp.entry(id).or_default();
        if origin.hlc <= *last && *last != HlcStamp::default() {
            return Err(Violation {
                property: "HLC monotonicity",
                detail: format!("{id} stamped {} after {}", origin.hlc, last),
            });
        }
        *last = origin.hlc;
        Ok(())
    }

    fn count(&mut self, id: NodeId, now: MultiPrimaryStats) {
        let before = self.seen.insert(id, now).unwrap_or_default();
        let t = &mut self.totals;
        t.writes += now.writes - before.writes;
        t.replication_merges += now.replication_merges - before.replication_merges;
        t.anti_entropy_repairs += now.anti_entropy_repairs - before.anti_entropy_repairs;
        t.clock_refusals += now.clock_refusals - before.clock_refusals;
        t.lww_lost_on_arrival += now.lww_lost_on_arrival - before.lww_lost_on_arrival;
        t.siblings_max = t.siblings_max.max(now.siblings_max);
        t.sibling_limit_refusals += now.sibling_limit_refusals - before.sibling_limit_refusals;
        t.sibling_limit_exceeded += now.sibling_limit_exceeded - before.sibling_limit_exceeded;
    }
}

impl Invariants<MultiPrimary> for MultiPrimarySafety {
    fn after_step(
        &mut self,
        id: NodeId,
        node: &MultiPrimary,
        effects: &[Effect<MultiPrimary>],
    ) -> Result<(), Violation> {
        for effect in effects {
            let Effect::Persist(Record::Applied { slot, entry, write }) = effect else {
                continue;
            };
            self.dot_uniqueness(id, slot, entry)?;
            if let Some((value, origin)) = write.as_ref().and_then(|w| w.lww.as_ref()) {
                self.hlc_monotonic(id, origin)?;
                self.lww_writes.push(LwwWrite {
                    key: slot.key().clone(),
                    value: value.clone(),
                    origin: *origin,
                });
            }
        }
        self.count(id, node.stats());
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        let only_here = BTreeSet::from([id]);
        for dots in self.dots.values_mut() {
            dots.retain(|_, (_, holders)| *holders != only_here);
        }
        self.last_stamp.remove(&id);
        self.seen.remove(&id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let t = self.totals;
        vec![
            ("writes", t.writes),
            ("replication_merges", t.replication_merges),
            ("anti_entropy_repairs", t.anti_entropy_repairs),
            ("clock_refusals", t.clock_refusals),
            ("lww_lost_on_arrival", t.lww_lost_on_arrival),
            ("concurrent_siblings", self.concurrent_siblings),
            ("sibling_limit_refusals", t.sibling_limit_refusals),
            ("sibling_limit_exceeded", t.sibling_limit_exceeded),
        ]
    }
}
