//! Final reads and what the multi-primary and quorum promises say about them: agreement of
//! the replicas, lost writes per resolver, stale reads, and the writes last-write-wins
//! discarded.
//!
//! [`crate::convergence`] judges convergence from any history (each node's last read after
//! the last write, justified by the per-key causal order). This module judges the histories
//! whose recorder read every key on every replica once the cluster settled (the simulator's
//! final reads, [`Mode::Final`]), by the rules of the resolver that produced them; the
//! [`crate::promise`]s `quorum`, `quorum-sloppy`, `lww`, `version-vectors` and `crdt` use it.
//!
//! ## Conventions the checks rely on
//!
//! - **Final reads** are events of [`Mode::Final`] whose `node` names the replica read, after
//!   the cluster settled; every other event is a client's.
//! - **Unique values**: every written value (and set element) is written once per run, so a
//!   read names the write it saw.
//! - **Contexts follow sessions** (causal workloads): a client's write carries the join of
//!   every context its session got for the key, so the writes it *supersedes* are exactly
//!   those its session had read or written before, and what those superseded (the per-key
//!   session order joined with reads-from, as [`crate::convergence`] defines it).

use crate::history::{Event as HistoryEvent, EventKind, Mode, OpValue, Operation};
use std::collections::{BTreeMap, BTreeSet};

/// One final read: a node's state of one key, as a sorted list of values (one value for a
/// register, none for absent, siblings or set elements otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalRead {
    pub node: u64,
    pub values: Vec<String>,
}

/// Splits a history into the clients' events and the final reads, by key.
pub fn split_final_reads(
    history: &[HistoryEvent],
) -> (Vec<HistoryEvent>, BTreeMap<String, Vec<FinalRead>>) {
    let mut clients = Vec::new();
    let mut finals: BTreeMap<String, Vec<FinalRead>> = BTreeMap::new();
    for event in history {
        if event.mode != Mode::Final {
            clients.push(event.clone());
            continue;
        }
        if event.kind != EventKind::Ok {
            continue;
        }
        let mut values = match &event.value {
            OpValue::Get(value) => value.iter().cloned().collect(),
            OpValue::Siblings(values) => values.clone(),
            _ => continue,
        };
        values.sort();
        let node = event.node.unwrap_or(event.process);
        let key = event.key.clone().unwrap_or_default();
        finals
            .entry(key)
            .or_default()
            .push(FinalRead { node, values });
    }
    (clients, finals)
}

/// Agreement: for every key, the final reads (one per replica of the key: the recorder reads
/// only the replicas that hold it) return the same values. Returns the agreed values per key
/// and the violations.
pub fn agreement(
    finals: &BTreeMap<String, Vec<FinalRead>>,
) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut agreed = BTreeMap::new();
    let mut violations = Vec::new();
    for (key, reads) in finals {
        let mut views = reads.iter();
        let Some(first) = views.next() else {
            continue;
        };
        if let Some(other) = views.find(|r| r.values != first.values) {
            violations.push(format!(
                "convergence: after the cluster settled, key {key:?} reads {:?} on n{} but \
                 {:?} on n{}",
                first.values, first.node, other.values, other.node
            ));
            continue;
        }
        agreed.insert(key.clone(), first.values.clone());
    }
    (agreed, violations)
}

/// The client operations on each key, each process's in invocation order.
fn by_key(ops: &[Operation]) -> BTreeMap<String, Vec<&Operation>> {
    let mut keys: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        keys.entry(op.key.clone().unwrap_or_default())
            .or_default()
            .push(op);
    }
    for ops in keys.values_mut() {
        ops.sort_by_key(|op| (op.process, op.call, op.id));
    }
    keys
}

fn read_values(value: &OpValue) -> Option<Vec<&str>> {
    match value {
        OpValue::Get(v) => Some(v.iter().map(String::as_str).collect()),
        OpValue::Siblings(values) => Some(values.iter().map(String::as_str).collect()),
        _ => None,
    }
}

/// Multi-value registers: every acknowledged write is in the final sibling set or was
/// superseded by a write that saw it; nothing superseded by a write that happened comes back;
/// nothing comes from thin air.
pub fn causal_no_lost_writes(
    ops: &[Operation],
    agreed: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (key, ops) in by_key(ops) {
        let Some(fin) = agreed.get(&key) else {
            continue;
        };
        let observed: BTreeSet<&str> = ops
            .iter()
            .filter_map(|op| read_values(&op.value))
            .flatten()
            .chain(fin.iter().map(String::as_str))
            .collect();
        // For every write: the puts its session had seen (read or written) before it.
        let mut saw: Vec<(&Operation, BTreeSet<&str>)> = Vec::new();
        let mut session: (u64, BTreeSet<&str>) = (u64::MAX, BTreeSet::new());
        for op in &ops {
            if op.process != session.0 {
                session = (op.process, BTreeSet::new());
            }
            match &op.value {
                OpValue::Put(value) => {
                    saw.push((op, session.1.clone()));
                    session.1.insert(value);
                }
                OpValue::Delete => saw.push((op, session.1.clone())),
                other => session.1.extend(read_values(other).unwrap_or_default()),
            }
        }
        let happened = |op: &Operation| {
            op.ret.is_some()
                || matches!(&op.value, OpValue::Put(v) if observed.contains(v.as_str()))
        };
        let superseded = |value: &str, certainly: bool| {
            saw.iter()
                .any(|(w, seen)| seen.contains(value) && (!certainly || happened(w)))
        };
        let written: BTreeSet<&str> = saw
            .iter()
            .filter_map(|(w, _)| match &w.value {
                OpValue::Put(v) => Some(v.as_str()),
                _ => None,
            })
            .collect();
        for value in fin {
            if !written.contains(value.as_str()) {
                violations.push(format!(
                    "convergence: {key:?} holds {value:?}, never written"
                ));
            } else if superseded(value, true) {
                violations.push(format!(
                    "convergence: {key:?} holds {value:?}, which a later write that saw it \
                     replaced"
                ));
            }
        }
        for (w, _) in &saw {
            let OpValue::Put(value) = &w.value else {
                continue;
            };
            let lost = w.ret.is_some() && !fin.contains(value) && !superseded(value, false);
            if lost {
                violations.push(format!(
                    "lost write: the acknowledged write of {value:?} to {key:?} is not among \
                     the final siblings {fin:?}, and no write that saw it replaced it"
                ));
            }
        }
    }
    violations
}

/// CRDTs: a counter's final value counts every acknowledged increment once (and any subset of
/// those with unknown outcome); a set holds every acknowledged add unless a remove of the
/// element was invoked after it, and nothing never added.
pub fn crdt_no_lost_updates(
    ops: &[Operation],
    agreed: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (key, ops) in by_key(ops) {
        let Some(fin) = agreed.get(&key) else {
            continue;
        };
        let is_counter = ops.iter().any(|op| matches!(op.value, OpValue::Incr(_)));
        let is_set =
            (ops.iter()).any(|op| matches!(op.value, OpValue::SetAdd(_) | OpValue::SetRemove(_)));
        if !is_counter && !is_set {
            // No update was ever sent, so nothing tells the kind: an untouched counter reads
            // 0 and an untouched set nothing.
            if fin.iter().any(|v| v != "0") {
                violations.push(format!(
                    "convergence: {key:?} holds {fin:?}, but no update of it was sent"
                ));
            }
            continue;
        }
        if is_counter {
            let (mut low, mut high) = (0i64, 0i64);
            for op in &ops {
                if let OpValue::Incr(delta) = op.value {
                    match op.ret {
                        Some(_) => (low, high) = (low + delta, high + delta),
                        None if delta < 0 => low += delta,
                        None => high += delta,
                    }
                }
            }
            let value: i64 = fin.first().and_then(|v| v.parse().ok()).unwrap_or(0);
            if !(low..=high).contains(&value) {
                violations.push(format!(
                    "lost update: counter {key:?} ends at {value}, outside the {low}..={high} \
                     the increments allow"
                ));
            }
            continue;
        }
        let adds: BTreeMap<&str, &Operation> = ops
            .iter()
            .filter_map(|op| match &op.value {
                OpValue::SetAdd(x) => Some((x.as_str(), *op)),
                _ => None,
            })
            .collect();
        for element in fin {
            if !adds.contains_key(element.as_str()) {
                violations.push(format!(
                    "convergence: set {key:?} holds {element:?}, never added"
                ));
            }
        }
        for (element, add) in &adds {
            let removed = ops.iter().any(|op| {
                matches!(&op.value, OpValue::SetRemove(x) if x == element) && op.call > add.call
            });
            if add.ret.is_some() && !removed && !fin.iter().any(|e| e == element) {
                violations.push(format!(
                    "lost update: set {key:?} lost the acknowledged add of {element:?}"
                ));
            }
        }
    }
    violations
}

/// Single-value registers: the final value was written by some write (or the key is absent).
pub fn registers_justified(
    ops: &[Operation],
    agreed: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (key, fin) in agreed {
        let Some(value) = fin.first() else {
            continue;
        };
        let written = ops.iter().any(|op| {
            op.key.as_deref() == Some(key.as_str()) && op.value == OpValue::Put(value.clone())
        });
        if !written {
            violations.push(format!(
                "convergence: {key:?} holds {value:?}, never written"
            ));
        }
    }
    violations
}

/// Reads that were certainly stale: every write that could have produced the value read was
/// overwritten by a write that completed before the read began. Returns (reads, stale).
pub fn stale_reads(ops: &[Operation]) -> (u64, u64) {
    let (mut reads, mut stale) = (0, 0);
    for ops in by_key(ops).values() {
        let writes: Vec<&&Operation> = ops
            .iter()
            .filter(|op| matches!(op.value, OpValue::Put(_) | OpValue::Delete))
            .collect();
        for read in ops.iter().filter(|op| op.ret.is_some()) {
            let OpValue::Get(value) = &read.value else {
                continue;
            };
            reads += 1;
            let wrote_it = |w: &Operation| match (&w.value, value) {
                (OpValue::Put(v), Some(read)) => v == read,
                (OpValue::Delete, None) => true,
                _ => false,
            };
            // (completion, or u64::MAX when unknown) of each candidate; the initial state of
            // an absent key "completed" at 0.
            let mut sources: Vec<u64> = writes
                .iter()
                .filter(|w| wrote_it(w))
                .map(|w| w.ret.unwrap_or(u64::MAX))
                .collect();
            if value.is_none() {
                sources.push(0);
            }
            let overwritten = |done: u64| {
                writes
                    .iter()
                    .any(|w| w.call > done && w.ret.is_some_and(|r| r < read.call))
            };
            if !sources.is_empty() && sources.into_iter().all(overwritten) {
                stale += 1;
            }
        }
    }
    (reads, stale)
}

/// One LWW write's stamps under the two clocks: `(hlc, node)` and `(wall, node)` orders.
#[derive(Clone, Copy, Debug)]
pub struct LwwStamps {
    pub hlc: (u64, u64, u64),
    pub wall: (u64, u64),
}

/// Acknowledged puts that last-write-wins discards in favour of a put that completed before
/// they were invoked: `(acknowledged puts, discarded under HLC, discarded under wall clocks)`.
/// `stamps` maps a written value to its stamps.
pub fn lww_discards(ops: &[Operation], stamps: &BTreeMap<String, LwwStamps>) -> (u64, u64, u64) {
    let (mut acked, mut by_hlc, mut by_wall) = (0, 0, 0);
    for ops in by_key(ops).values() {
        let mut puts: Vec<(u64, u64, LwwStamps)> = ops
            .iter()
            .filter_map(|op| match (&op.value, op.ret) {
                (OpValue::Put(v), Some(ret)) => stamps.get(v).map(|s| (op.call, ret, *s)),
                _ => None,
            })
            .collect();
        acked += puts.len() as u64;
        puts.sort_by_key(|(call, _, _)| *call);
        let mut done: Vec<(u64, LwwStamps)> = puts.iter().map(|(_, ret, s)| (*ret, *s)).collect();
        done.sort_by_key(|(ret, _)| *ret);
        let (mut next, mut max_hlc, mut max_wall) = (0, None, None);
        for (call, _, stamp) in &puts {
            while next < done.len() && done[next].0 < *call {
                max_hlc = max_hlc.max(Some(done[next].1.hlc));
                max_wall = max_wall.max(Some(done[next].1.wall));
                next += 1;
            }
            by_hlc += u64::from(max_hlc.is_some_and(|m| m > stamp.hlc));
            by_wall += u64::from(max_wall.is_some_and(|m| m > stamp.wall));
        }
    }
    (acked, by_hlc, by_wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: usize, process: u64, value: OpValue, call: u64, ret: Option<u64>) -> Operation {
        Operation {
            id,
            process,
            key: Some("k".into()),
            value,
            call,
            ret,
            line: id + 1,
            node: None,
        }
    }

    fn agreed(values: &[&str]) -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(
            "k".to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        )])
    }

    #[test]
    fn a_write_that_saw_a_sibling_replaces_it_and_an_unseen_one_must_survive() {
        let ops = vec![
            op(0, 1, OpValue::Put("a".into()), 0, Some(1)),
            op(1, 2, OpValue::Put("b".into()), 0, Some(1)),
            op(2, 1, OpValue::Siblings(vec!["a".into()]), 2, Some(3)),
            op(3, 1, OpValue::Put("c".into()), 4, Some(5)),
        ];
        assert!(causal_no_lost_writes(&ops, &agreed(&["b", "c"])).is_empty());
        let lost = causal_no_lost_writes(&ops, &agreed(&["c"]));
        assert!(lost[0].contains("\"b\""), "{lost:?}");
        let back = causal_no_lost_writes(&ops, &agreed(&["a", "b", "c"]));
        assert!(back[0].contains("replaced"), "{back:?}");
    }

    #[test]
    fn a_read_is_stale_only_when_its_value_was_certainly_overwritten_before_it_began() {
        let ops = vec![
            op(0, 1, OpValue::Put("a".into()), 0, Some(1)),
            op(1, 1, OpValue::Put("b".into()), 2, Some(3)),
            op(2, 2, OpValue::Get(Some("a".into())), 4, Some(5)),
            op(3, 3, OpValue::Get(Some("a".into())), 2, Some(5)),
            op(4, 4, OpValue::Get(None), 4, Some(5)),
        ];
        assert_eq!(stale_reads(&ops), (3, 2));
    }

    #[test]
    fn counters_and_sets_account_for_every_acknowledged_update() {
        let ops = vec![
            op(0, 1, OpValue::Incr(5), 0, Some(1)),
            op(1, 2, OpValue::Incr(-2), 0, None),
        ];
        assert!(crdt_no_lost_updates(&ops, &agreed(&["3"])).is_empty());
        assert!(crdt_no_lost_updates(&ops, &agreed(&["5"])).is_empty());
        assert_eq!(crdt_no_lost_updates(&ops, &agreed(&["10"])).len(), 1);
        let set = vec![
            op(0, 1, OpValue::SetAdd("x".into()), 0, Some(1)),
            op(1, 1, OpValue::SetAdd("y".into()), 2, Some(3)),
            op(2, 2, OpValue::SetRemove("x".into()), 4, Some(5)),
        ];
        assert!(crdt_no_lost_updates(&set, &agreed(&["y"])).is_empty());
        // No update sent: an untouched counter (0) or an empty set, nothing else.
        let reads = vec![op(0, 1, OpValue::Get(Some("0".into())), 0, Some(1))];
        assert!(crdt_no_lost_updates(&reads, &agreed(&["0"])).is_empty());
        assert!(crdt_no_lost_updates(&reads, &agreed(&[])).is_empty());
        assert_eq!(crdt_no_lost_updates(&reads, &agreed(&["x"])).len(), 1);
        assert_eq!(
            crdt_no_lost_updates(&set, &agreed(&["x"])).len(),
            1,
            "y was lost"
        );
    }

    #[test]
    fn lww_discards_count_puts_that_lose_to_an_earlier_put() {
        let ops = vec![
            op(0, 1, OpValue::Put("early".into()), 0, Some(1)),
            op(1, 2, OpValue::Put("late".into()), 2, Some(3)),
        ];
        let stamp = |hlc: u64, wall: u64| LwwStamps {
            hlc: (hlc, 0, 1),
            wall: (wall, 1),
        };
        // The late put's node has a slow wall clock but its HLC heard of the early put.
        let stamps = BTreeMap::from([
            ("early".to_string(), stamp(100, 100)),
            ("late".to_string(), stamp(101, 50)),
        ]);
        assert_eq!(lww_discards(&ops, &stamps), (2, 0, 1));
    }
}
