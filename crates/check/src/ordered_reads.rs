//! A check of reads that promise less than linearizability: ZooKeeper-style reads served
//! from a replica's own state (sequentially consistent). The `zab` promise
//! ([`crate::promise`]) holds every operation to it.
//!
//! **Why not [`crate::sequential`].** The library's general checker decides sequential
//! consistency exactly, but the problem is NP-complete and its search is exponential in the
//! worst case. Run over every operation of ZAB's 500-seed batch (5 nodes, every fault, the
//! default read mix; 2026-11-26), it found no violation, but 11 of the 500 runs outgrew the
//! simulator's memo bound (verdict "unknown") and the batch took 25 s instead of 3 s. This
//! check uses what the promise states and a general checker cannot assume — one write order
//! exists (the log), writes are linearizable, values are unique — to stay polynomial and
//! decide every run. `quorate check --model sequential` remains the tool for histories from
//! elsewhere.
//!
//! ## What it checks
//!
//! Sequential consistency asks for one total order of all operations that respects each
//! process's own order. For a replicated log whose replicas apply one order of writes, that
//! means: every read returns the state after some prefix of *the* write order, and the
//! prefixes one process observes never shrink. This check, key by key, looks for a single
//! write order consistent with everything observed:
//!
//! 1. Each read value names the write that produced it (values are unique per write in the
//!    simulator: a put's or CAS's new value, an append's suffix; an absent key names the
//!    initial state or a delete). A read whose value no write produced is a thin-air read.
//!    A value that several writes could have produced is skipped (the check stays sound).
//! 2. It draws precedence edges between writes: the initial state precedes every write; a
//!    write that completed before another was invoked precedes it (writes are linearizable);
//!    a successful CAS follows the write that produced the value it expected; and each
//!    process's successive observations of a key (its completed writes, and the writes its
//!    reads name) never go backwards.
//! 3. A cycle means no single write order explains what was observed: a violation, reported
//!    with the writes on the cycle.
//!
//! It is sound (a cycle is a real violation, given unique values) but not complete: it does
//! not check that the state a read returns agrees with reads of *other* keys.

use crate::history::{OpValue, Operation};
use std::collections::BTreeMap;

/// Node 0 of each key's graph: the initial state.
const INITIAL: usize = 0;

/// Checks that the reads of `operations` (all of them, whatever their read mode) can be
/// explained by one order of the writes; returns the violations found.
pub fn check(operations: &[Operation]) -> Vec<String> {
    let mut by_key: BTreeMap<Option<&str>, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut violations = Vec::new();
    for (key, ops) in by_key {
        if let Err(detail) = check_key(&ops) {
            let key = key.unwrap_or("-");
            violations.push(format!(
                "sequential consistency (ordered reads): key {key}: {detail}"
            ));
        }
    }
    violations
}

/// The writes of one key and the precedence edges between them (`writes[i - 1]` is node i).
struct Graph<'a> {
    writes: Vec<&'a Operation>,
    edges: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    fn new(ops: &[&'a Operation]) -> Graph<'a> {
        let writes: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|op| !matches!(op.value, OpValue::Get(_)))
            .collect();
        let mut edges = vec![Vec::new(); writes.len() + 1];
        edges[INITIAL] = (1..=writes.len()).collect();
        Graph { writes, edges }
    }

    fn node_of(&self, op: &Operation) -> usize {
        1 + self
            .writes
            .iter()
            .position(|w| w.id == op.id)
            .expect("a write of this key")
    }

    /// The write whose effect is exactly `value`: `Ok(Some(node))`, `Ok(None)` if several
    /// could be, `Err` if none is.
    fn producer(&self, value: &Option<String>) -> Result<Option<usize>, ()> {
        let produced = |w: &Operation| match (&w.value, value) {
            (OpValue::Delete, None) => true,
            (OpValue::Put(v), Some(read)) => v == read,
            (OpValue::Cas { new, .. }, Some(read)) => new == read,
            (OpValue::Append(suffix), Some(read)) => read.ends_with(suffix.as_str()),
            _ => false,
        };
        let mut candidates: Vec<usize> = (1..=self.writes.len())
            .filter(|node| produced(self.writes[node - 1]))
            .collect();
        if value.is_none() {
            candidates.push(INITIAL);
        }
        match candidates.as_slice() {
            [] => Err(()),
            [one] => Ok(Some(*one)),
            _ => Ok(None),
        }
    }

    fn add_edge(&mut self, from: usize, to: usize) {
        if from != to {
            self.edges[from].push(to);
        }
    }

    fn describe(&self, node: usize) -> String {
        match node {
            INITIAL => "the initial state".to_string(),
            _ => {
                let w = self.writes[node - 1];
                format!(
                    "{} {:?} (process {}, line {})",
                    w.value.f(),
                    w.value,
                    w.process,
                    w.line
                )
            }
        }
    }
}

fn check_key(ops: &[&Operation]) -> Result<(), String> {
    let mut graph = Graph::new(ops);
    // Writes are linearizable: real-time order between them holds in the write order.
    for a in 0..graph.writes.len() {
        for b in 0..graph.writes.len() {
            if graph.writes[a]
                .ret
                .is_some_and(|ret| ret < graph.writes[b].call)
            {
                graph.add_edge(a + 1, b + 1);
            }
        }
    }
    // A CAS that swapped follows the write that produced what it expected.
    for node in 1..=graph.writes.len() {
        let w = graph.writes[node - 1];
        if let (OpValue::Cas { expected, .. }, Some(_)) = (&w.value, w.ret) {
            if let Ok(Some(before)) = graph.producer(expected) {
                graph.add_edge(before, node);
            }
        }
    }
    // Each process's observations never go back.
    let mut by_process: BTreeMap<u64, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        by_process.entry(op.process).or_default().push(op);
    }
    for (process, mut mine) in by_process {
        mine.sort_by_key(|op| op.call);
        let mut last: Option<usize> = None;
        for op in mine {
            let Some(observed) = observation(&graph, op).map_err(|()| {
                format!(
                    "process {process} read {:?}, which no write produced (line {})",
                    op.value, op.line
                )
            })?
            else {
                continue;
            };
            if let Some(previous) = last {
                graph.add_edge(previous, observed);
            }
            last = Some(observed);
        }
    }
    match find_cycle(&graph.edges) {
        None => Ok(()),
        Some(cycle) => {
            let names: Vec<String> = cycle.iter().map(|node| graph.describe(*node)).collect();
            Err(format!(
                "no single order of the writes explains what was read: {}",
                names.join(" -> ")
            ))
        }
    }
}

/// What a completed operation shows its process: the write it names, if known.
fn observation(graph: &Graph, op: &Operation) -> Result<Option<usize>, ()> {
    if op.ret.is_none() {
        return Ok(None); // Outcome unknown: it shows nothing.
    }
    match &op.value {
        OpValue::Get(value) => graph.producer(value),
        _ => Ok(Some(graph.node_of(op))),
    }
}

/// A cycle in the graph, if there is one (iterative depth-first search).
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Grey,
        Black,
    }
    let mut color = vec![Color::White; edges.len()];
    let mut parent = vec![usize::MAX; edges.len()];
    for root in 0..edges.len() {
        if color[root] != Color::White {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        color[root] = Color::Grey;
        while let Some((node, next)) = stack.pop() {
            if next == edges[node].len() {
                color[node] = Color::Black;
                continue;
            }
            stack.push((node, next + 1));
            let child = edges[node][next];
            match color[child] {
                Color::White => {
                    color[child] = Color::Grey;
                    parent[child] = node;
                    stack.push((child, 0));
                }
                Color::Grey => {
                    // A back edge: `child` is an ancestor of `node` on the current path.
                    let mut cycle = vec![node];
                    let mut at = node;
                    while at != child {
                        at = parent[at];
                        cycle.push(at);
                    }
                    cycle.reverse();
                    cycle.push(child);
                    return Some(cycle);
                }
                Color::Black => {}
            }
        }
    }
    None
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

    fn get(v: Option<&str>) -> OpValue {
        OpValue::Get(v.map(str::to_string))
    }

    fn put(v: &str) -> OpValue {
        OpValue::Put(v.to_string())
    }

    #[test]
    fn stale_but_monotonic_reads_are_sequentially_consistent() {
        // p0 writes 1 then 2; p1 reads 1 long after 2 completed: stale, but fine.
        let history = [
            op(0, 0, put("1"), 0, Some(1)),
            op(1, 0, put("2"), 2, Some(3)),
            op(2, 1, get(Some("1")), 10, Some(11)),
            op(3, 1, get(Some("2")), 12, Some(13)),
        ];
        assert!(check(&history).is_empty());
    }

    #[test]
    fn a_process_that_reads_backwards_is_caught() {
        let history = [
            op(0, 0, put("1"), 0, Some(1)),
            op(1, 0, put("2"), 2, Some(3)),
            op(2, 1, get(Some("2")), 10, Some(11)),
            op(3, 1, get(Some("1")), 12, Some(13)),
        ];
        let violations = check(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("no single order"), "{violations:?}");
    }

    #[test]
    fn not_reading_ones_own_write_is_caught() {
        let history = [
            op(0, 0, put("1"), 0, Some(1)),
            op(1, 0, get(None), 2, Some(3)),
        ];
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn two_processes_that_disagree_on_the_order_of_concurrent_writes_are_caught() {
        // Two concurrent writes; p2 sees a then b, p3 sees b then a.
        let history = [
            op(0, 0, put("a"), 0, Some(10)),
            op(1, 1, put("b"), 0, Some(10)),
            op(2, 2, get(Some("a")), 20, Some(21)),
            op(3, 2, get(Some("b")), 22, Some(23)),
            op(4, 3, get(Some("b")), 20, Some(21)),
            op(5, 3, get(Some("a")), 22, Some(23)),
        ];
        assert_eq!(check(&history).len(), 1);
        // Either order alone is fine.
        assert!(check(&history[..4]).is_empty());
    }

    #[test]
    fn thin_air_reads_are_caught_and_unknown_writes_may_have_happened() {
        let history = [
            op(0, 0, put("1"), 0, None),
            op(1, 1, get(Some("1")), 5, Some(6)),
            op(2, 1, get(Some("7")), 7, Some(8)),
        ];
        let violations = check(&history);
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0].contains("no write produced"),
            "{violations:?}"
        );
    }

    #[test]
    fn appends_are_named_by_their_suffix_and_cas_follows_what_it_expected() {
        let cas = OpValue::Cas {
            expected: Some("1,2,".into()),
            new: "9".into(),
        };
        let history = [
            op(0, 0, OpValue::Append("1,".into()), 0, Some(1)),
            op(1, 0, OpValue::Append("2,".into()), 2, Some(3)),
            op(2, 1, cas, 4, Some(5)),
            op(3, 2, get(Some("9")), 10, Some(11)),
            op(4, 2, get(Some("1,2,")), 12, Some(13)),
        ];
        // p2 saw the CAS's value, then the value the CAS replaced: backwards.
        assert_eq!(check(&history).len(), 1);
        assert!(check(&history[..4]).is_empty());
    }
}
