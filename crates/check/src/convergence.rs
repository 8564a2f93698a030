//! Convergence (eventual consistency): once the writes stop, every replica returns the same
//! state, and that state is one the writes justify.
//!
//! ## What is checked, per key
//!
//! 1. **Final reads**: the last `ok` read of the key on each replica (the `node` that answered;
//!    the process when the history records no node), provided it was invoked after the key's
//!    last write: after every `ok` write returned and every write with unknown outcome was
//!    invoked. The history is assumed to have been recorded so that these reads ran after the
//!    system quiesced (faults healed, replication given time), ideally on every replica. A key
//!    without final reads is not checked and is counted as such.
//! 2. **Agreement**: all final reads of the key return the same value (for a multi-value
//!    register, the same set of siblings).
//! 3. **Justification.** A write *supersedes* another when its session had observed the other
//!    on this key before writing: the per-key causal order `(so_k ∪ wr_k)+`, where `so_k` is
//!    session order among the session's operations *on this key* and `wr_k` links a write to
//!    every read that returned its value (one sibling or the only value). This is what a client
//!    that passes back the context of its last read and write of the key (a version vector,
//!    a dotted version vector, an HLC timestamp) tells the store. The writes that *happened*
//!    are the `ok` ones and the `info` ones somebody read.
//!    - **Single-value registers** (LWW and friends): the converged value must come from a
//!      happened write that no happened write supersedes (or be absent, when no write happened,
//!      or a delete is among the writes nothing supersedes, or a delete's outcome is unknown).
//!      Converging to a superseded value means acknowledged writes were silently lost, as
//!      last-writer-wins on skewed clocks does.
//!    - **Multi-value registers**: the sibling set must be exactly the values of the happened
//!      puts that nothing supersedes, i.e. the concurrent writes: no fewer (a concurrent write
//!      was lost), no more (a superseded write came back). Deletes leave no sibling.
//!
//! ## How a history records siblings
//!
//! A multi-value read is a `get` whose completion carries a JSON array (EDN: a set) of the
//! sibling values, in any order: `{"process":4,"type":"ok","f":"get","key":"x","value":["a","b"]}`.
//! `[]` is absent, `["a"]` the same as `"a"`. A key is a multi-value register when any of its
//! reads returns an array. Writes are `put` (and `delete`); written values must be unique per
//! key so that a read names the writes it saw.

use crate::history::{HistoryError, OpValue, Operation};
use crate::linearizability::Verdict;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// What went wrong on one key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ConvergenceViolation {
    /// Final reads (op ids) returned different values.
    Disagree { reads: Vec<usize> },
    /// The final value comes from `write`, which `by` superseded.
    Superseded {
        read: usize,
        write: usize,
        by: usize,
    },
    /// The final reads return a value no write wrote.
    ThinAir { read: usize },
    /// The final reads return absent although `write` happened and nothing superseded it.
    LostWrite { read: usize, write: usize },
    /// A final read's siblings are not exactly the concurrent writes.
    WrongSiblings {
        read: usize,
        expected: Vec<String>,
        got: Vec<String>,
        /// Writes that should be siblings but are missing, or are present but superseded.
        writes: Vec<usize>,
    },
}

/// The answer over all keys.
#[derive(Clone, Debug)]
pub struct ConvergenceReport {
    /// `Linearizable` stands for "converged".
    pub verdict: Verdict,
    pub keys_checked: usize,
    /// Keys with writes but no final reads.
    pub keys_unchecked: usize,
    pub key: Option<String>,
    pub violation: Option<ConvergenceViolation>,
    pub reason: Option<String>,
}

impl ConvergenceViolation {
    /// The operations (ids) involved.
    pub fn operations(&self) -> Vec<usize> {
        match self {
            ConvergenceViolation::Disagree { reads } => reads.clone(),
            ConvergenceViolation::Superseded { read, write, by } => vec![*write, *by, *read],
            ConvergenceViolation::LostWrite { read, write } => vec![*write, *read],
            ConvergenceViolation::ThinAir { read } => vec![*read],
            ConvergenceViolation::WrongSiblings { read, writes, .. } => {
                let mut ops = writes.clone();
                ops.push(*read);
                ops
            }
        }
    }
}

/// One key's operations, in the terms of this checker.
#[derive(Clone, Debug)]
enum KeyOp {
    /// A put (`Some(value)`) or a delete (`None`).
    Write(Option<String>),
    /// A read; `multi` when it returned an array of siblings.
    Read {
        values: BTreeSet<String>,
        multi: bool,
    },
}

/// Checks convergence; `Err` when the history is outside what the checker supports.
pub fn check_convergence(operations: &[Operation]) -> Result<ConvergenceReport, HistoryError> {
    let mut by_key: BTreeMap<Option<&str>, Vec<(usize, KeyOp)>> = BTreeMap::new();
    for (index, op) in operations.iter().enumerate() {
        let key_op = match &op.value {
            OpValue::Put(v) | OpValue::PutTtl { value: v, .. } => KeyOp::Write(Some(v.clone())),
            OpValue::Delete => KeyOp::Write(None),
            OpValue::Get(v) => KeyOp::Read {
                values: v.iter().cloned().collect(),
                multi: false,
            },
            OpValue::Siblings(vs) => KeyOp::Read {
                values: vs.iter().cloned().collect(),
                multi: true,
            },
            OpValue::Append(_)
            | OpValue::ExpireIf(_)
            | OpValue::Cas { .. }
            | OpValue::PutTtlIfAbsent { .. }
            | OpValue::DeleteIf(_)
            | OpValue::Incr(_)
            | OpValue::SetAdd(_)
            | OpValue::SetRemove(_)
            | OpValue::Txn(_)
            | OpValue::PutLease { .. }
            | OpValue::Lease(_) => {
                return Err(HistoryError {
                    line: op.line,
                    message: "the convergence checker supports get, put and delete only".into(),
                })
            }
        };
        by_key
            .entry(op.key.as_deref())
            .or_default()
            .push((index, key_op));
    }
    let mut report = ConvergenceReport {
        verdict: Verdict::Linearizable,
        keys_checked: 0,
        keys_unchecked: 0,
        key: None,
        violation: None,
        reason: None,
    };
    for (key, ops) in by_key {
        match check_key(operations, &ops)? {
            KeyVerdict::Unchecked => report.keys_unchecked += 1,
            KeyVerdict::Converged => report.keys_checked += 1,
            KeyVerdict::Violated(violation) => {
                report.keys_checked += 1;
                if report.violation.is_none() {
                    report.verdict = Verdict::NotLinearizable;
                    report.key = key.map(str::to_string);
                    report.violation = Some(violation);
                }
            }
        }
    }
    if report.keys_checked == 0 && report.keys_unchecked > 0 {
        report.verdict = Verdict::Unknown;
        report.reason = Some("no key has final reads (reads invoked after its last write)".into());
    }
    Ok(report)
}

enum KeyVerdict {
    Unchecked,
    Converged,
    Violated(ConvergenceViolation),
}

fn check_key(all: &[Operation], ops: &[(usize, KeyOp)]) -> Result<KeyVerdict, HistoryError> {
    let op = |i: usize| &all[ops[i].0];
    let id = |i: usize| all[ops[i].0].id;
    // Writers of each value, and whether any read is multi-valued.
    let mut writer: HashMap<&str, usize> = HashMap::new();
    let mut multi = false;
    for (i, (_, key_op)) in ops.iter().enumerate() {
        match key_op {
            KeyOp::Write(Some(v)) => {
                if let Some(first) = writer.insert(v, i) {
                    return Err(HistoryError {
                        line: op(i).line,
                        message: format!(
                            "value {v:?} is written twice on this key (also on line {}); \
                             the convergence checker needs unique written values",
                            op(first).line
                        ),
                    });
                }
            }
            KeyOp::Write(None) => {}
            KeyOp::Read { multi: m, .. } => multi |= m,
        }
    }
    let is_write = |i: usize| matches!(ops[i].1, KeyOp::Write(_));
    let last_write = (0..ops.len())
        .filter(|i| is_write(*i))
        .map(|i| op(i).ret.unwrap_or(op(i).call))
        .max();
    let finals = final_reads(ops.len(), |i| !is_write(i), |i| op(i), last_write);
    if finals.is_empty() {
        return Ok(if last_write.is_some() {
            KeyVerdict::Unchecked
        } else {
            KeyVerdict::Converged
        });
    }
    let values = |i: usize| match &ops[i].1 {
        KeyOp::Read { values, .. } => values.clone(),
        KeyOp::Write(_) => unreachable!("finals are reads"),
    };
    if finals.iter().any(|i| values(*i) != values(finals[0])) {
        return Ok(KeyVerdict::Violated(ConvergenceViolation::Disagree {
            reads: finals.iter().map(|i| id(*i)).collect(),
        }));
    }
    let observed = observed_writes(ops, &writer);
    let happened: Vec<usize> = (0..ops.len())
        .filter(|i| is_write(*i) && (op(*i).ret.is_some() || observed[*i]))
        .collect();
    let superseded = superseded_by(ops, &writer, &happened, |i| op(i).process, |i| op(i).call);
    let last = finals[0];
    let final_values = values(last);
    if multi {
        let maximal: Vec<usize> = happened
            .iter()
            .copied()
            .filter(|w| superseded[*w].is_none() && matches!(ops[*w].1, KeyOp::Write(Some(_))))
            .collect();
        let maximal = without_deleted(ops, maximal, &final_values, &writer, |i| op(i));
        let expected: BTreeSet<String> = maximal.iter().map(|w| written(ops, *w)).collect();
        if expected != final_values {
            let mut writes: Vec<usize> = maximal
                .iter()
                .filter(|w| !final_values.contains(&written(ops, **w)))
                .map(|w| id(*w))
                .collect();
            for v in final_values.difference(&expected) {
                if let Some(w) = writer.get(v.as_str()) {
                    writes.push(id(*w));
                    writes.extend(superseded[*w].map(id));
                }
            }
            return Ok(KeyVerdict::Violated(ConvergenceViolation::WrongSiblings {
                read: id(last),
                expected: expected.into_iter().collect(),
                got: final_values.into_iter().collect(),
                writes,
            }));
        }
        return Ok(KeyVerdict::Converged);
    }
    let Some(value) = final_values.first() else {
        // Absent: justified by no write, a delete nothing supersedes, or a delete that may
        // have happened.
        let delete = |w: usize| matches!(ops[w].1, KeyOp::Write(None));
        let unknown_delete = (0..ops.len()).any(|w| delete(w) && op(w).ret.is_none());
        let live_delete = happened
            .iter()
            .any(|w| delete(*w) && superseded[*w].is_none());
        let live_put = happened
            .iter()
            .find(|w| !delete(**w) && superseded[**w].is_none());
        return Ok(match live_put {
            Some(w) if !unknown_delete && !live_delete => {
                KeyVerdict::Violated(ConvergenceViolation::LostWrite {
                    read: id(last),
                    write: id(*w),
                })
            }
            _ => KeyVerdict::Converged,
        });
    };
    let Some(&w) = writer.get(value.as_str()) else {
        return Ok(KeyVerdict::Violated(ConvergenceViolation::ThinAir {
            read: id(last),
        }));
    };
    match superseded[w] {
        Some(by) => Ok(KeyVerdict::Violated(ConvergenceViolation::Superseded {
            read: id(last),
            write: id(w),
            by: id(by),
        })),
        None => Ok(KeyVerdict::Converged),
    }
}

/// A delete with unknown outcome may have happened and superseded the puts its session had
/// observed; the expected siblings are `maximal` minus what the deletes that would not remove
/// a returned sibling supersede (including more deletes only removes more).
fn without_deleted<'a>(
    ops: &[(usize, KeyOp)],
    maximal: Vec<usize>,
    returned: &BTreeSet<String>,
    writer: &HashMap<&str, usize>,
    op: impl Fn(usize) -> &'a Operation,
) -> Vec<usize> {
    let deletes: Vec<usize> = (0..ops.len())
        .filter(|d| matches!(ops[*d].1, KeyOp::Write(None)) && op(*d).ret.is_none())
        .collect();
    if deletes.is_empty() {
        return maximal;
    }
    let mut removed: BTreeSet<usize> = BTreeSet::new();
    for d in deletes {
        let before = superseded_by(ops, writer, &[d], |i| op(i).process, |i| op(i).call);
        let covers: Vec<usize> = maximal
            .iter()
            .copied()
            .filter(|w| before[*w].is_some())
            .collect();
        if covers.iter().all(|w| !returned.contains(&written(ops, *w))) {
            removed.extend(covers);
        }
    }
    maximal
        .into_iter()
        .filter(|w| !removed.contains(w))
        .collect()
}

/// The final reads among `n` operations: the last read of each replica (the `node` that
/// answered, or else the process), when it was invoked after `last_write`.
pub fn final_reads<'a>(
    n: usize,
    is_read: impl Fn(usize) -> bool,
    op: impl Fn(usize) -> &'a Operation,
    last_write: Option<u64>,
) -> Vec<usize> {
    let mut last: BTreeMap<(bool, u64), usize> = BTreeMap::new();
    for i in (0..n).filter(|i| is_read(*i)) {
        let replica = op(i)
            .node
            .map_or((false, op(i).process), |node| (true, node));
        let entry = last.entry(replica).or_insert(i);
        if (op(i).call, op(i).id) > (op(*entry).call, op(*entry).id) {
            *entry = i;
        }
    }
    last.into_values()
        .filter(|i| last_write.is_none_or(|t| op(*i).call > t))
        .collect()
}

fn written(ops: &[(usize, KeyOp)], w: usize) -> String {
    match &ops[w].1 {
        KeyOp::Write(Some(v)) => v.clone(),
        _ => unreachable!("a put"),
    }
}

/// Per operation: a write that some read returned (as its value or a sibling).
fn observed_writes(ops: &[(usize, KeyOp)], writer: &HashMap<&str, usize>) -> Vec<bool> {
    let mut observed = vec![false; ops.len()];
    for (_, key_op) in ops {
        if let KeyOp::Read { values, .. } = key_op {
            for v in values {
                if let Some(w) = writer.get(v.as_str()) {
                    observed[*w] = true;
                }
            }
        }
    }
    observed
}

/// For every write, a happened write that supersedes it (follows it in `(so_k ∪ wr_k)+`), if
/// any: a backward search from each happened write's predecessors.
fn superseded_by(
    ops: &[(usize, KeyOp)],
    writer: &HashMap<&str, usize>,
    happened: &[usize],
    process: impl Fn(usize) -> u64,
    call: impl Fn(usize) -> u64,
) -> Vec<Option<usize>> {
    // Predecessors: the previous operation of the session on this key, and for a read the
    // writes it returned.
    let mut sessions: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for i in 0..ops.len() {
        sessions.entry(process(i)).or_default().push(i);
    }
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for list in sessions.values_mut() {
        list.sort_by_key(|i| call(*i));
        for pair in list.windows(2) {
            predecessors[pair[1]].push(pair[0]);
        }
    }
    for (i, (_, key_op)) in ops.iter().enumerate() {
        if let KeyOp::Read { values, .. } = key_op {
            predecessors[i].extend(values.iter().filter_map(|v| writer.get(v.as_str())));
        }
    }
    let mut superseded: Vec<Option<usize>> = vec![None; ops.len()];
    let mut seen = vec![false; ops.len()];
    for &w in happened {
        let mut queue: VecDeque<usize> = predecessors[w].iter().copied().collect();
        while let Some(i) = queue.pop_front() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if matches!(ops[i].1, KeyOp::Write(_)) && superseded[i].is_none() {
                superseded[i] = Some(w);
            }
            queue.extend(predecessors[i].iter().copied());
        }
    }
    superseded
}
