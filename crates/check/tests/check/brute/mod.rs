//! Brute-force checkers: each model's definition, evaluated by trying every ordering (and
//! every choice of which `info` operations happened). Exponential, so only for the small
//! histories of the differential tests; deliberately written without the efficient
//! checkers' shortcuts (no memo, no eager reads, no bad patterns, no least fixpoints).

// Relations are boolean matrices indexed by operation; index loops read as the definitions do.
#![allow(clippy::needless_range_loop)]

use quorate_check::history::{OpValue, Operation};
use quorate_check::model::{apply, Step, Values, ABSENT};
use std::collections::{BTreeMap, BTreeSet};

/// Calls `visit` with every permutation of `items`; stops early when it returns true.
pub fn any_permutation<T: Clone>(items: &[T], visit: &mut impl FnMut(&[T]) -> bool) -> bool {
    fn go<T: Clone>(
        rest: &mut Vec<T>,
        order: &mut Vec<T>,
        visit: &mut impl FnMut(&[T]) -> bool,
    ) -> bool {
        if rest.is_empty() {
            return visit(order);
        }
        for i in 0..rest.len() {
            let item = rest.remove(i);
            order.push(item);
            let found = go(rest, order, visit);
            let item = order.pop().unwrap();
            rest.insert(i, item);
            if found {
                return true;
            }
        }
        false
    }
    go(&mut items.to_vec(), &mut Vec::new(), visit)
}

/// Every subset of `items`.
pub fn subsets<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    (0..1u32 << items.len())
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, x)| x.clone())
                .collect()
        })
        .collect()
}

/// Is `order` (indices into `ops`) legal for the KV register model, key by key?
fn legal(ops: &[Operation], order: &[usize]) -> bool {
    let mut values: BTreeMap<Option<String>, (Values, u32)> = BTreeMap::new();
    for &i in order {
        let (table, state) = values
            .entry(ops[i].key.clone())
            .or_insert_with(|| (Values::default(), ABSENT));
        let step = Step::compile(&ops[i].value, table).expect("single-valued");
        match apply(*state, step, table) {
            Some(next) => *state = next,
            None => return false,
        }
    }
    true
}

/// Orders where every `ok` operation and some `info` operations appear, satisfying `before`.
fn exists_order(ops: &[Operation], before: impl Fn(&Operation, &Operation) -> bool) -> bool {
    let ok: Vec<usize> = (0..ops.len()).filter(|i| ops[*i].ret.is_some()).collect();
    let info: Vec<usize> = (0..ops.len()).filter(|i| ops[*i].ret.is_none()).collect();
    subsets(&info).into_iter().any(|chosen| {
        let mut included = ok.clone();
        included.extend(chosen);
        any_permutation(&included, &mut |order: &[usize]| {
            let respects = (0..order.len())
                .all(|a| (a + 1..order.len()).all(|b| !before(&ops[order[b]], &ops[order[a]])));
            respects && legal(ops, order)
        })
    })
}

/// Linearizable: an order respecting real time (`a` returned before `b` was invoked).
pub fn linearizable(ops: &[Operation]) -> bool {
    exists_order(ops, |a, b| a.ret.is_some_and(|r| r < b.call))
}

/// Sequentially consistent: an order respecting each process's order.
pub fn sequential(ops: &[Operation]) -> bool {
    exists_order(ops, |a, b| a.process == b.process && a.call < b.call)
}

/// Reads-from for unique-write register histories: `Some(None)` initial, `None` thin air.
fn source(ops: &[Operation], r: usize) -> Option<Option<usize>> {
    match &ops[r].value {
        OpValue::Get(None) => Some(None),
        OpValue::Get(Some(v)) => (0..ops.len())
            .find(|w| ops[*w].key == ops[r].key && ops[*w].value == OpValue::Put(v.clone()))
            .map(Some),
        _ => unreachable!("a read"),
    }
}

fn is_read(op: &Operation) -> bool {
    matches!(op.value, OpValue::Get(_))
}

/// Session order: same process, invoked earlier.
fn so(ops: &[Operation], a: usize, b: usize) -> bool {
    ops[a].process == ops[b].process && ops[a].call < ops[b].call
}

/// Causally consistent (CC of Bouajjani et al.): with `co = (so ∪ wr)+` acyclic, every read is
/// the last write to its key in some serialization of its causal past that respects `co`.
pub fn causal(ops: &[Operation]) -> bool {
    let n = ops.len();
    let mut co = vec![vec![false; n]; n];
    for a in 0..n {
        for b in 0..n {
            co[a][b] = so(ops, a, b);
        }
    }
    for r in (0..n).filter(|r| is_read(&ops[*r])) {
        match source(ops, r) {
            None => return false,
            Some(Some(w)) => co[w][r] = true,
            Some(None) => {}
        }
    }
    for k in 0..n {
        for a in 0..n {
            for b in 0..n {
                co[a][b] |= co[a][k] && co[k][b];
            }
        }
    }
    if (0..n).any(|a| co[a][a]) {
        return false;
    }
    (0..n).filter(|r| is_read(&ops[*r])).all(|r| {
        let past: Vec<usize> = (0..n).filter(|o| co[*o][r] && !is_read(&ops[*o])).collect();
        any_permutation(&past, &mut |order: &[usize]| {
            let respects =
                (0..order.len()).all(|a| (a + 1..order.len()).all(|b| !co[order[b]][order[a]]));
            let last = order
                .iter()
                .rev()
                .find(|w| ops[**w].key == ops[r].key)
                .copied();
            respects && last == source(ops, r).unwrap()
        })
    })
}

/// Terry's session guarantees (as `quorate_check::session` defines them): views `V(r)` and
/// per-read orders exist. Guarantee bits: 1 RYW, 2 MR, 4 MW, 8 WFR.
pub fn session(ops: &[Operation], guarantees: u8) -> bool {
    let n = ops.len();
    let writes: Vec<usize> = (0..n).filter(|w| !is_read(&ops[*w])).collect();
    let reads: Vec<usize> = (0..n).filter(|r| is_read(&ops[*r])).collect();
    if reads.iter().any(|r| source(ops, *r).is_none()) {
        return false;
    }
    let (ryw, mr, mw, wfr) = (
        guarantees & 1 != 0,
        guarantees & 2 != 0,
        guarantees & 4 != 0,
        guarantees & 8 != 0,
    );
    let w_count = writes.len();
    let total_bits = w_count * reads.len();
    assert!(total_bits <= 16, "too big for brute force");
    (0..1u32 << total_bits).any(|mask| {
        let view = |r_index: usize| -> BTreeSet<usize> {
            (0..w_count)
                .filter(|w| mask & (1 << (r_index * w_count + w)) != 0)
                .map(|w| writes[w])
                .collect()
        };
        let views: BTreeMap<usize, BTreeSet<usize>> = reads
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, view(i)))
            .collect();
        // The rules.
        for (&r, v) in &views {
            if let Some(Some(w)) = source(ops, r) {
                if !v.contains(&w) {
                    return false;
                }
            }
            for &w in &writes {
                if ryw && so(ops, w, r) && !v.contains(&w) {
                    return false;
                }
            }
            for (&r0, v0) in &views {
                if mr && so(ops, r0, r) && !v0.is_subset(v) {
                    return false;
                }
            }
            for &w2 in v {
                for &w1 in &writes {
                    if mw && so(ops, w1, w2) && !v.contains(&w1) {
                        return false;
                    }
                }
                for (&r1, v1) in &views {
                    if wfr && so(ops, r1, w2) && !v1.is_subset(v) {
                        return false;
                    }
                }
            }
        }
        // Precedence: MW and WFR edges.
        let precedes = |a: usize, b: usize| {
            (mw && so(ops, a, b))
                || (wfr
                    && views
                        .iter()
                        .any(|(r1, v1)| v1.contains(&a) && so(ops, *r1, b)))
        };
        let respects = |order: &[usize]| {
            (0..order.len()).all(|a| (a + 1..order.len()).all(|b| !precedes(order[b], order[a])))
        };
        if !any_permutation(&writes, &mut |order: &[usize]| respects(order)) {
            return false;
        }
        views.iter().all(|(&r, v)| {
            let visible: Vec<usize> = v.iter().copied().collect();
            any_permutation(&visible, &mut |order: &[usize]| {
                let last = order
                    .iter()
                    .rev()
                    .find(|w| ops[**w].key == ops[r].key)
                    .copied();
                respects(order) && last == source(ops, r).unwrap()
            })
        })
    })
}

/// Convergence by its definition, trying every set of `info` writes that may have happened.
/// `None`: no key has final reads (unknown).
pub fn convergence(ops: &[Operation]) -> Option<bool> {
    let keys: BTreeSet<Option<String>> = ops.iter().map(|o| o.key.clone()).collect();
    let mut checked = 0;
    let mut unchecked = 0;
    let mut ok = true;
    for key in keys {
        let idx: Vec<usize> = (0..ops.len()).filter(|i| ops[*i].key == key).collect();
        match converged_key(ops, &idx) {
            None => unchecked += 1,
            Some(v) => {
                checked += 1;
                ok &= v;
            }
        }
    }
    if checked == 0 && unchecked > 0 {
        None
    } else {
        Some(ok)
    }
}

fn read_values(op: &Operation) -> Option<(BTreeSet<String>, bool)> {
    match &op.value {
        OpValue::Get(v) => Some((v.iter().cloned().collect(), false)),
        OpValue::Siblings(vs) => Some((vs.iter().cloned().collect(), true)),
        _ => None,
    }
}

fn converged_key(ops: &[Operation], idx: &[usize]) -> Option<bool> {
    let writes: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|i| read_values(&ops[*i]).is_none())
        .collect();
    let last = writes
        .iter()
        .map(|w| ops[*w].ret.unwrap_or(ops[*w].call))
        .max();
    let finals: Vec<usize> = quorate_check::convergence::final_reads(
        idx.len(),
        |i| read_values(&ops[idx[i]]).is_some(),
        |i| &ops[idx[i]],
        last,
    )
    .into_iter()
    .map(|i| idx[i])
    .collect();
    if finals.is_empty() {
        return if last.is_some() { None } else { Some(true) };
    }
    let got = read_values(&ops[finals[0]]).unwrap();
    if finals
        .iter()
        .any(|f| read_values(&ops[*f]).unwrap().0 != got.0)
    {
        return Some(false);
    }
    let multi = idx
        .iter()
        .any(|i| read_values(&ops[*i]).is_some_and(|(_, m)| m));
    let value_of = |w: usize| match &ops[w].value {
        OpValue::Put(v) => Some(v.clone()),
        _ => None,
    };
    let reads_of = |w: usize| -> Vec<usize> {
        idx.iter()
            .copied()
            .filter(|r| {
                value_of(w)
                    .is_some_and(|v| read_values(&ops[*r]).is_some_and(|(vs, _)| vs.contains(&v)))
            })
            .collect()
    };
    let observed: Vec<usize> = writes
        .iter()
        .copied()
        .filter(|w| !reads_of(*w).is_empty())
        .collect();
    let optional: Vec<usize> = writes
        .iter()
        .copied()
        .filter(|w| ops[*w].ret.is_none() && !observed.contains(w))
        .collect();
    // co_k = (so_k ∪ wr_k)+ over this key's operations.
    let n = ops.len();
    let mut co = vec![vec![false; n]; n];
    for &a in idx {
        for &b in idx {
            co[a][b] = so(ops, a, b);
        }
        for r in reads_of(a) {
            co[a][r] = true;
        }
    }
    for &k in idx {
        for &a in idx {
            for &b in idx {
                co[a][b] |= co[a][k] && co[k][b];
            }
        }
    }
    Some(subsets(&optional).into_iter().any(|chosen| {
        let happened: Vec<usize> = writes
            .iter()
            .copied()
            .filter(|w| ops[*w].ret.is_some() || observed.contains(w) || chosen.contains(w))
            .collect();
        let maximal: Vec<usize> = happened
            .iter()
            .copied()
            .filter(|w| !happened.iter().any(|w2| w2 != w && co[*w][*w2]))
            .collect();
        if multi {
            let expected: BTreeSet<String> = maximal.iter().filter_map(|w| value_of(*w)).collect();
            expected == got.0
        } else {
            match got.0.iter().next() {
                None => happened.is_empty() || maximal.iter().any(|w| value_of(*w).is_none()),
                Some(v) => maximal.iter().any(|w| value_of(*w).as_ref() == Some(v)),
            }
        }
    }))
}
