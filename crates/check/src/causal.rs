//! Causal consistency for histories whose writes are unique per key (Bouajjani, Enea,
//! Guerraoui & Hamza, *On Verifying Causal Consistency*, POPL 2017).
//!
//! ## The model
//!
//! Each process is a session; its operations are ordered by invocation (*session order*,
//! `so`). With unique written values every read names the write it read from (*reads-from*,
//! `wr`). The *causal order* is `co = (so ∪ wr)+`. A history is causally consistent (CC) when
//! every read can be explained by some serialization of its own causal past that respects
//! `co` — different reads may order concurrent writes differently (that is what separates
//! causal from sequential consistency, and from convergence).
//!
//! For such *differentiated* histories, Bouajjani et al. show CC is decided by looking for
//! four bad patterns, in polynomial time:
//!
//! 1. **ThinAirRead**: a read returns a value no write (that may have happened) wrote.
//! 2. **CyclicCO**: `so ∪ wr` has a cycle (a write depends on a read of itself).
//! 3. **WriteCOInitRead**: a read returns the initial value (absent) although a write to its
//!    key is in its causal past.
//! 4. **WriteCORead**: a read returns `w1`'s value although another write `w2` to the key
//!    satisfies `w1 co w2 co read` (the read sees an overwritten value).
//!
//! ## The algorithm
//!
//! Sort `so ∪ wr` topologically (or report the cycle), then give every operation a vector
//! clock over processes: its causal past is downward closed in every session, so one number
//! per process describes it. Pattern 3 asks, per process, whether that process's first write
//! to the key lies within the read's past; pattern 4 asks whether the *latest* write to the key
//! within the read's past in some process has `w1` in its own past (clocks grow along a
//! session, so the latest one suffices). Time `O(n · P · log n)`, memory `O(n · P)` for `n`
//! operations and `P` processes.
//!
//! `info` writes are writes that may have happened: one that somebody read did; one nobody
//! read has no successor in `co` (its process never issues again), so it cannot take part in a
//! pattern. `fail`ed writes did not happen, so a read of their value is a thin-air read.
//!
//! Only `get` and `put` (`read`/`write`) are supported: `delete`, `append` and `cas` make
//! values ambiguous or reads-from unknowable. The initial value of every key is absent.

use crate::history::{HistoryError, Operation};
use crate::linearizability::{Limits, Verdict};
use crate::model::{Compiled, Step, ValueId, ABSENT};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// A register history prepared for the causal and session checkers.
pub struct Register {
    /// Operations in process order, grouped by process.
    pub processes: Vec<Vec<u32>>,
    /// Per operation: its process (index into `processes`) and position there (0-based).
    pub process_of: Vec<(u32, u32)>,
    pub ops: Vec<RegisterOp>,
    /// Per key, per value: the write that wrote it.
    pub writer: Vec<HashMap<ValueId, u32>>,
}

/// One operation of a [`Register`] history.
#[derive(Clone, Copy, Debug)]
pub struct RegisterOp {
    pub key: u32,
    /// A write (`put`), or else a read.
    pub write: bool,
    /// The value written or read ([`ABSENT`]: a read of the initial value).
    pub value: ValueId,
    /// Index of the operation in the caller's slice.
    pub source: u32,
}

impl Register {
    /// Prepares `operations`, rejecting what the checkers cannot judge (with the line).
    pub fn new(operations: &[Operation]) -> Result<Register, HistoryError> {
        let compiled = Compiled::new(operations)?;
        let mut writer: Vec<HashMap<ValueId, u32>> = vec![HashMap::new(); compiled.keys.len()];
        let mut ops = Vec::with_capacity(compiled.ops.len());
        for (index, op) in compiled.ops.iter().enumerate() {
            let line = operations[op.source as usize].line;
            let (write, value) = match op.step {
                Step::Read(v) => (false, v),
                Step::Write(v) if v != ABSENT => (true, v),
                _ => {
                    return Err(HistoryError {
                        line,
                        message: "the causal and session checkers support get and put only \
                                  (delete, append and cas make reads-from ambiguous)"
                            .into(),
                    })
                }
            };
            if write {
                if let Some(other) = writer[op.key as usize].insert(value, index as u32) {
                    let first = operations[compiled.ops[other as usize].source as usize].line;
                    return Err(HistoryError {
                        line,
                        message: format!(
                            "the value is written twice on this key (also on line {first}); \
                             the causal and session checkers need unique written values"
                        ),
                    });
                }
            }
            ops.push(RegisterOp {
                key: op.key,
                write,
                value,
                source: op.source,
            });
        }
        let mut by_process: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (index, op) in compiled.ops.iter().enumerate() {
            by_process.entry(op.process).or_default().push(index as u32);
        }
        let mut processes: Vec<Vec<u32>> = by_process.into_values().collect();
        let mut process_of = vec![(0, 0); ops.len()];
        for (p, list) in processes.iter_mut().enumerate() {
            list.sort_by_key(|op| compiled.ops[*op as usize].call);
            for (position, op) in list.iter().enumerate() {
                process_of[*op as usize] = (p as u32, position as u32);
            }
        }
        Ok(Register {
            processes,
            process_of,
            ops,
            writer,
        })
    }

    /// The write a read read from.
    pub fn read_from(&self, read: u32) -> ReadsFrom {
        let op = self.ops[read as usize];
        if op.value == ABSENT {
            return ReadsFrom::Initial;
        }
        match self.writer[op.key as usize].get(&op.value) {
            Some(w) => ReadsFrom::Write(*w),
            None => ReadsFrom::ThinAir,
        }
    }

    /// Direct predecessors in `so ∪ wr` (thin-air reads have no `wr` edge).
    pub fn predecessors(&self, op: u32) -> impl Iterator<Item = u32> + '_ {
        let (p, position) = self.process_of[op as usize];
        let so = (position > 0).then(|| self.processes[p as usize][position as usize - 1]);
        let wr = if self.ops[op as usize].write {
            None
        } else {
            self.read_from(op).write()
        };
        so.into_iter().chain(wr)
    }
}

/// Where a read's value came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadsFrom {
    /// The initial value (absent).
    Initial,
    /// This write (a register-operation index).
    Write(u32),
    /// No write wrote the value.
    ThinAir,
}

impl ReadsFrom {
    pub fn write(self) -> Option<u32> {
        match self {
            ReadsFrom::Write(w) => Some(w),
            ReadsFrom::Initial | ReadsFrom::ThinAir => None,
        }
    }
}

/// Which bad pattern was found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pattern {
    ThinAirRead,
    CyclicCausalOrder,
    WriteCausallyBeforeInitialRead,
    WriteCausallyOverwritten,
}

impl Pattern {
    pub fn describe(&self) -> &'static str {
        match self {
            Pattern::ThinAirRead => "thin-air read: a read returned a value no write wrote",
            Pattern::CyclicCausalOrder => {
                "cyclic causal order: these operations each causally precede the next, and the last the first"
            }
            Pattern::WriteCausallyBeforeInitialRead => {
                "a read returned the initial (absent) value although a write to its key is in its causal past"
            }
            Pattern::WriteCausallyOverwritten => {
                "a read returned a value that a causally later write had overwritten before the read (w1 → w2 → read)"
            }
        }
    }
}

/// The answer; for a violation, the pattern and the operations (ids) that form it, in causal
/// order (a causal path from the first to the last).
#[derive(Clone, Debug)]
pub struct CausalReport {
    /// `Linearizable` stands for "causally consistent" here.
    pub verdict: Verdict,
    pub pattern: Option<Pattern>,
    pub witness: Vec<usize>,
    pub reason: Option<String>,
}

/// Checks causal consistency; `Err` when the history is outside what the checker supports.
pub fn check_causal(
    operations: &[Operation],
    limits: &Limits,
) -> Result<CausalReport, HistoryError> {
    let register = Register::new(operations)?;
    let ids = |ops: Vec<u32>| -> Vec<usize> {
        ops.iter()
            .map(|op| operations[register.ops[*op as usize].source as usize].id)
            .collect()
    };
    let violation = |pattern, witness| CausalReport {
        verdict: Verdict::NotLinearizable,
        pattern: Some(pattern),
        witness,
        reason: None,
    };
    for read in 0..register.ops.len() as u32 {
        if !register.ops[read as usize].write && register.read_from(read) == ReadsFrom::ThinAir {
            return Ok(violation(Pattern::ThinAirRead, ids(vec![read])));
        }
    }
    let order = match topological_order(&register) {
        Ok(order) => order,
        Err(cycle) => return Ok(violation(Pattern::CyclicCausalOrder, ids(cycle))),
    };
    let width = register.processes.len();
    if register.ops.len().saturating_mul(width).saturating_mul(4) > limits.memo_bytes_max {
        return Ok(CausalReport {
            verdict: Verdict::Unknown,
            pattern: None,
            witness: Vec::new(),
            reason: Some(format!(
                "{} operations × {width} processes of vector clocks exceed the memory bound",
                register.ops.len()
            )),
        });
    }
    let Some(clocks) = vector_clocks(&register, &order, limits) else {
        return Ok(CausalReport {
            verdict: Verdict::Unknown,
            pattern: None,
            witness: Vec::new(),
            reason: Some("cancelled (time limit)".into()),
        });
    };
    if let Some((pattern, path)) = find_pattern(&register, &clocks) {
        return Ok(violation(pattern, ids(path)));
    }
    Ok(CausalReport {
        verdict: Verdict::Linearizable,
        pattern: None,
        witness: Vec::new(),
        reason: None,
    })
}

/// A topological order of `so ∪ wr`, or one cycle of it.
fn topological_order(register: &Register) -> Result<Vec<u32>, Vec<u32>> {
    let n = register.ops.len();
    let mut successors: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut indegree = vec![0u32; n];
    for op in 0..n as u32 {
        for pred in register.predecessors(op) {
            successors[pred as usize].push(op);
            indegree[op as usize] += 1;
        }
    }
    let mut ready: VecDeque<u32> = (0..n as u32)
        .filter(|op| indegree[*op as usize] == 0)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(op) = ready.pop_front() {
        order.push(op);
        for next in &successors[op as usize] {
            indegree[*next as usize] -= 1;
            if indegree[*next as usize] == 0 {
                ready.push_back(*next);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every operation left has a predecessor left: walk predecessors until one repeats.
    let mut seen = vec![usize::MAX; n];
    let mut walk = Vec::new();
    let mut op = (0..n as u32)
        .find(|op| indegree[*op as usize] > 0)
        .expect("a cycle");
    loop {
        if seen[op as usize] != usize::MAX {
            let mut cycle = walk[seen[op as usize]..].to_vec();
            cycle.reverse(); // predecessors were walked backwards
            return Err(cycle);
        }
        seen[op as usize] = walk.len();
        walk.push(op);
        op = register
            .predecessors(op)
            .find(|p| indegree[*p as usize] > 0)
            .expect("a remaining operation has a remaining predecessor");
    }
}

/// Per operation, per process: how many of that process's operations are in its causal past
/// (itself included).
fn vector_clocks(register: &Register, order: &[u32], limits: &Limits) -> Option<Vec<u32>> {
    let width = register.processes.len();
    let mut clocks = vec![0u32; register.ops.len() * width];
    for (done, &op) in order.iter().enumerate() {
        if done % 1024 == 0 && (limits.cancelled)() {
            return None;
        }
        let (p, position) = register.process_of[op as usize];
        let base = op as usize * width;
        for pred in register.predecessors(op) {
            let from = pred as usize * width;
            for s in 0..width {
                clocks[base + s] = clocks[base + s].max(clocks[from + s]);
            }
        }
        clocks[base + p as usize] = position + 1;
    }
    Some(clocks)
}

/// Looks for patterns 3 and 4; returns the pattern and a causal path through it.
fn find_pattern(register: &Register, clocks: &[u32]) -> Option<(Pattern, Vec<u32>)> {
    let width = register.processes.len();
    // Per process, per key: positions of its writes to the key, increasing.
    let mut writes: Vec<HashMap<u32, Vec<u32>>> = vec![HashMap::new(); width];
    for (op, o) in register.ops.iter().enumerate() {
        if o.write {
            let (p, position) = register.process_of[op];
            writes[p as usize].entry(o.key).or_default().push(position);
        }
    }
    let clock = |op: u32, s: usize| clocks[op as usize * width + s];
    for read in 0..register.ops.len() as u32 {
        let r = register.ops[read as usize];
        if r.write {
            continue;
        }
        let source = register.read_from(read).write();
        for (s, per_key) in writes.iter().enumerate() {
            let Some(positions) = per_key.get(&r.key) else {
                continue;
            };
            // Writes of process s to the key within the read's causal past.
            let within = positions.partition_point(|pos| *pos < clock(read, s));
            if within == 0 {
                continue;
            }
            let latest = register.processes[s][positions[within - 1] as usize];
            match source {
                None => {
                    let path = causal_path(register, latest, read);
                    return Some((Pattern::WriteCausallyBeforeInitialRead, path));
                }
                Some(w1) if latest != w1 => {
                    let (p1, pos1) = register.process_of[w1 as usize];
                    if clock(latest, p1 as usize) > pos1 {
                        let mut path = causal_path(register, w1, latest);
                        path.pop();
                        path.extend(causal_path(register, latest, read));
                        return Some((Pattern::WriteCausallyOverwritten, path));
                    }
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// A shortest path from `from` to `to` in `so ∪ wr` (which must exist), both included.
fn causal_path(register: &Register, from: u32, to: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut queue = VecDeque::from([to]);
    while let Some(op) = queue.pop_front() {
        if op == from {
            break;
        }
        for pred in register.predecessors(op) {
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(pred) {
                e.insert(op);
                queue.push_back(pred);
            }
        }
    }
    let mut path = vec![from];
    let mut op = from;
    while op != to {
        op = parent[&op];
        path.push(op);
    }
    path
}
