//! Sequential consistency (Lamport 1979): is there one total order of all operations, on all
//! keys together, that respects each process's order and in which every operation is legal?
//!
//! Unlike linearizability there is no real-time constraint, and unlike linearizability the
//! property is **not compositional**: every key can be sequentially consistent on its own while
//! the whole history is not (two processes that each see the other's write to one key only
//! after their own write to another). So the search runs over all keys at once.
//!
//! ## The algorithm
//!
//! First the linearizability checker runs: a linearizable history is sequentially consistent.
//! Then, on `get`/`put` histories with unique values, the causal checker: a history that is not
//! causally consistent is not sequentially consistent either. Otherwise a depth-first search over configurations (how far each process has got, the
//! state of each key), the classic formulation of Gibbons & Korach (1997), who showed the
//! problem NP-complete even with unique written values. What keeps it practical:
//!
//! 1. **Harmless moves are taken eagerly.** A read that is legal now changes nothing, and a put
//!    whose value nobody will read, over a value nobody will read, changes nothing anyone can
//!    see; taking either now only lets its process move on sooner. Every configuration is
//!    first closed under such moves, with no branching.
//! 2. **Dead configurations are cut.** On keys without appends the search counts, per value,
//!    the remaining operations that observe it and that install it; overwriting (or skipping
//!    the only installer of) a value that is still to be observed and can never come back
//!    ends the branch at once.
//! 3. **Memoization.** Configurations already explored (hashed incrementally, Zobrist-style,
//!    compared in full, values nobody will observe folded into one) are not explored again.
//! 4. **Real-time order first.** Among the writes that could go next, the one invoked first is
//!    tried first.
//!
//! The search is still exponential in the worst case: a wrong early choice on one key can be
//! discovered only after other keys have progressed independently. A time limit turns that
//! into [`Verdict::Unknown`].
//!
//! Operations with unknown outcome (`info`) may have happened or not: the search tries both.
//! Like the linearizability checker it first drops an `info` write whose value nobody observes
//! (on keys without appends). Operations of one process are ordered by invocation time.
//!
//! The search stops with [`Verdict::Unknown`] when its memo outgrows the memory bound or the
//! caller cancels.

use crate::causal::check_causal;
use crate::history::Operation;
use crate::linearizability::{check_linearizable, mix64, Limits, PassThroughMap, Verdict};
use crate::model::{apply, Compiled, CompiledOp, Step, ValueId, ABSENT};
use std::collections::BTreeMap;

/// The answer, with the deepest point the search reached when it failed.
#[derive(Clone, Debug)]
pub struct SequentialReport {
    /// `Linearizable` stands for "sequentially consistent" here.
    pub verdict: Verdict,
    /// For a violation: the longest sequence of operations (ids) found that could be ordered.
    pub ordered: Vec<usize>,
    /// For a violation: the operations (ids) each process was stuck at after that sequence
    /// (or, when causal consistency already fails, the causal pattern that refutes it).
    pub blocked: Vec<usize>,
    /// The violation is a causal one (see `blocked`); no search ran.
    pub not_causal: bool,
    pub reason: Option<String>,
}

/// Checks that `operations` are sequentially consistent. A linearizable history is
/// sequentially consistent (a linearization respects each process's order), so the much
/// cheaper linearizability check runs first; the search runs only when it fails.
pub fn check_sequential(operations: &[Operation], limits: &Limits) -> SequentialReport {
    if check_linearizable(operations, limits).verdict == Verdict::Linearizable {
        return SequentialReport {
            verdict: Verdict::Linearizable,
            ordered: Vec::new(),
            blocked: Vec::new(),
            not_causal: false,
            reason: None,
        };
    }
    // A sequentially consistent history is causally consistent; on the histories the causal
    // checker supports, its polynomial bad-pattern search refutes most violations at once.
    if let Ok(causal) = check_causal(operations, limits) {
        if causal.verdict == Verdict::NotLinearizable {
            return SequentialReport {
                verdict: Verdict::NotLinearizable,
                ordered: Vec::new(),
                blocked: causal.witness,
                not_causal: true,
                reason: None,
            };
        }
    }
    check_sequential_search(operations, limits)
}

/// The search alone, without trying linearizability first.
pub fn check_sequential_search(operations: &[Operation], limits: &Limits) -> SequentialReport {
    let compiled = match Compiled::new(operations) {
        Ok(compiled) => compiled,
        Err(e) => return stopped(format!("cannot be checked: {e}")),
    };
    let mut search = Search::new(compiled);
    let outcome = search.run(limits);
    let id = |op: u32| operations[search.compiled.ops[op as usize].source as usize].id;
    match outcome {
        Ok(true) => SequentialReport {
            verdict: Verdict::Linearizable,
            ordered: Vec::new(),
            blocked: Vec::new(),
            not_causal: false,
            reason: None,
        },
        Ok(false) => SequentialReport {
            verdict: Verdict::NotLinearizable,
            ordered: search.best.iter().map(|op| id(*op)).collect(),
            blocked: search.best_blocked.iter().map(|op| id(*op)).collect(),
            not_causal: false,
            reason: None,
        },
        Err(reason) => stopped(reason.to_string()),
    }
}

fn stopped(reason: String) -> SequentialReport {
    SequentialReport {
        verdict: Verdict::Unknown,
        ordered: Vec::new(),
        blocked: Vec::new(),
        not_causal: false,
        reason: Some(reason),
    }
}

/// Drops `info` writes whose value no operation observes, on keys without appends (see the
/// linearizability checker for why this preserves the verdict; the argument does not use
/// real time).
fn drop_unobserved_info(compiled: &mut Compiled) {
    let keys = compiled.keys.len();
    let mut appends = vec![false; keys];
    let mut observed: Vec<std::collections::HashSet<ValueId>> = vec![Default::default(); keys];
    for op in &compiled.ops {
        appends[op.key as usize] |= matches!(op.step, Step::Append(_));
        if let Some(v) = op.step.observes() {
            observed[op.key as usize].insert(v);
        }
    }
    compiled.ops.retain(|op| {
        let Some(v) = op.step.installs().filter(|_| op.ret == u64::MAX) else {
            return true;
        };
        appends[op.key as usize] || observed[op.key as usize].contains(&v)
    });
}

/// One change to the configuration, recorded so it can be undone.
#[derive(Clone, Copy)]
struct Undo {
    process: u32,
    key: u32,
    previous: ValueId,
}

/// A choice point: the moves possible there and the next one to try.
struct Frame {
    /// Length of the undo log before this configuration's eager reads.
    log_start: usize,
    /// Length of the undo log at this configuration (after its eager reads).
    base: usize,
    /// (process, take effect?) moves, best first.
    moves: Vec<(u32, bool)>,
    next: usize,
}

struct Search {
    compiled: Compiled,
    /// Operation indices of each process, in process order.
    processes: Vec<Vec<u32>>,
    position: Vec<u32>,
    state: Vec<ValueId>,
    hash: u64,
    log: Vec<Undo>,
    done: usize,
    memo: PassThroughMap<u32>,
    /// Memo entries: (next entry with the same hash, offset into `arena`).
    entries: Vec<(u32, u32)>,
    arena: Vec<u32>,
    best: Vec<u32>,
    best_blocked: Vec<u32>,
    /// Per key without appends, per value: operations not yet taken that observe it and that
    /// install it. A value some remaining operation observes, that nothing remaining installs
    /// and that the key no longer holds, can never be seen again: the configuration is dead.
    pending: Vec<Option<Vec<[u32; 2]>>>,
    /// Log length at which the current path became dead.
    dead_at: Option<usize>,
    /// Scratch: the canonical states of the configuration being remembered.
    canonical: Vec<ValueId>,
}

/// The memo's stand-in for a value nobody will observe again.
const DONT_CARE: ValueId = ValueId::MAX;

impl Search {
    fn new(mut compiled: Compiled) -> Search {
        drop_unobserved_info(&mut compiled);
        let mut by_process: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (index, op) in compiled.ops.iter().enumerate() {
            by_process.entry(op.process).or_default().push(index as u32);
        }
        let mut processes: Vec<Vec<u32>> = by_process.into_values().collect();
        for ops in &mut processes {
            ops.sort_by_key(|op| compiled.ops[*op as usize].call);
        }
        let keys = compiled.keys.len();
        let mut search = Search {
            position: vec![0; processes.len()],
            state: vec![ABSENT; keys],
            hash: 0,
            log: Vec::new(),
            done: 0,
            memo: PassThroughMap::default(),
            entries: Vec::new(),
            arena: Vec::new(),
            best: Vec::new(),
            best_blocked: Vec::new(),
            pending: Vec::new(),
            dead_at: None,
            canonical: Vec::new(),
            processes,
            compiled,
        };
        search.pending = pending_counts(&search.compiled);
        for p in 0..search.processes.len() {
            search.hash ^= position_key(p, 0);
        }
        for k in 0..keys {
            search.hash ^= state_key(k, ABSENT);
        }
        search
    }

    fn head(&self, process: usize) -> Option<CompiledOp> {
        let ops = &self.processes[process];
        ops.get(self.position[process] as usize)
            .map(|op| self.compiled.ops[*op as usize])
    }

    /// Adds `delta` to the pending counts of what `op` observes and installs.
    fn count(&mut self, op: CompiledOp, delta: i32) {
        if let Some(counts) = &mut self.pending[op.key as usize] {
            if let Some(v) = op.step.observes() {
                counts[v as usize][0] = counts[v as usize][0].wrapping_add_signed(delta);
            }
            if let Some(v) = op.step.installs() {
                counts[v as usize][1] = counts[v as usize][1].wrapping_add_signed(delta);
            }
        }
    }

    /// Whether `value` of `key` is still needed but can no longer appear.
    fn lost(&self, key: usize, value: ValueId) -> bool {
        self.pending[key].as_ref().is_some_and(|counts| {
            let [readers, installers] = counts[value as usize];
            readers > 0 && installers == 0 && self.state[key] != value
        })
    }

    /// Advances `process`, applying its operation when `effect` (it must be legal).
    fn advance(&mut self, process: usize, effect: bool) {
        let op = self
            .head(process)
            .expect("a process with an operation left");
        let key = op.key as usize;
        let previous = self.state[key];
        self.count(op, -1);
        if effect {
            let values = &mut self.compiled.keys[key].values;
            let next = apply(previous, op.step, values).expect("only legal moves are made");
            self.hash ^= state_key(key, previous) ^ state_key(key, next);
            self.state[key] = next;
        }
        let position = self.position[process];
        self.hash ^= position_key(process, position) ^ position_key(process, position + 1);
        self.position[process] += 1;
        self.done += 1;
        self.log.push(Undo {
            process: process as u32,
            key: op.key,
            previous,
        });
        let skipped = (!effect).then(|| op.step.installs()).flatten();
        if self.dead_at.is_none()
            && (self.lost(key, previous) || skipped.is_some_and(|v| self.lost(key, v)))
        {
            self.dead_at = Some(self.log.len());
        }
    }

    fn undo_to(&mut self, length: usize) {
        while self.log.len() > length {
            let undo = self.log.pop().expect("log longer than length");
            let (p, k) = (undo.process as usize, undo.key as usize);
            if self.dead_at.is_some_and(|at| at > self.log.len()) {
                self.dead_at = None;
            }
            let position = self.position[p];
            self.hash ^= position_key(p, position) ^ position_key(p, position - 1);
            self.position[p] -= 1;
            self.hash ^= state_key(k, self.state[k]) ^ state_key(k, undo.previous);
            self.state[k] = undo.previous;
            self.done -= 1;
            let op = self.head(p).expect("the operation just undone");
            self.count(op, 1);
        }
    }

    fn legal(&mut self, op: CompiledOp) -> bool {
        let values = &mut self.compiled.keys[op.key as usize].values;
        apply(self.state[op.key as usize], op.step, values).is_some()
    }

    /// Applies every legal read at the head of a process, repeatedly.
    /// Whether nothing left to do observes `key`'s current value (so which value it is does
    /// not matter any more). Always false on keys with appends.
    fn dont_care(&self, key: usize, value: ValueId) -> bool {
        self.pending[key]
            .as_ref()
            .is_some_and(|counts| counts[value as usize][0] == 0)
    }

    /// Takes the moves that cannot hurt, repeatedly: a legal read (it changes nothing), and a
    /// put whose value nobody will observe over a value nobody will observe (it changes
    /// nothing anyone can see). Either only lets its process move on sooner.
    fn eager_moves(&mut self) {
        let mut progress = true;
        while progress {
            progress = false;
            for p in 0..self.processes.len() {
                while let Some(op) = self.head(p) {
                    let key = op.key as usize;
                    let harmless = match op.step {
                        Step::Read(_) => self.legal(op),
                        Step::Write(v) => {
                            op.ret != u64::MAX
                                && self.dont_care(key, v)
                                && self.dont_care(key, self.state[key])
                        }
                        _ => false,
                    };
                    if !harmless {
                        break;
                    }
                    self.advance(p, true);
                    progress = true;
                }
            }
        }
    }

    /// The moves possible now, the earliest-invoked operation first; an operation with
    /// unknown outcome may also be skipped (it never happened).
    fn moves(&mut self) -> Vec<(u32, bool)> {
        let mut moves = Vec::new();
        for p in 0..self.processes.len() {
            let Some(op) = self.head(p) else { continue };
            if self.legal(op) {
                moves.push((op.call, p as u32, true));
            }
            if op.ret == u64::MAX {
                moves.push((op.call, p as u32, false));
            }
        }
        moves.sort_by_key(|(call, p, effect)| (*call, *p, !*effect));
        moves.into_iter().map(|(_, p, e)| (p, e)).collect()
    }

    /// Records the configuration; false if it was explored before. States nobody will
    /// observe again are recorded as one "don't care" state, so configurations that differ
    /// only in values nobody reads are explored once.
    fn remember(&mut self) -> bool {
        self.canonical.clear();
        let mut hash = self.hash;
        for key in 0..self.state.len() {
            let state = self.state[key];
            let canonical = if self.dont_care(key, state) {
                DONT_CARE
            } else {
                state
            };
            hash ^= state_key(key, state) ^ state_key(key, canonical);
            self.canonical.push(canonical);
        }
        let head = self.memo.get(&hash).copied().unwrap_or(u32::MAX);
        let width = self.position.len() + self.state.len();
        let mut cursor = head;
        while cursor != u32::MAX {
            let (next, start) = self.entries[cursor as usize];
            let stored = &self.arena[start as usize..start as usize + width];
            if stored[..self.position.len()] == self.position[..]
                && stored[self.position.len()..] == self.canonical[..]
            {
                return false;
            }
            cursor = next;
        }
        self.entries.push((head, self.arena.len() as u32));
        self.arena.extend_from_slice(&self.position);
        self.arena.extend_from_slice(&self.canonical);
        self.memo.insert(hash, self.entries.len() as u32 - 1);
        true
    }

    fn bytes(&self) -> usize {
        self.memo.capacity() * 12 + self.entries.capacity() * 8 + self.arena.capacity() * 4
    }

    /// Remembers the deepest dead end: the operations ordered so far and each process's next.
    fn record_best(&mut self) {
        if !self.best_blocked.is_empty() && self.done <= self.best.len() {
            return;
        }
        let mut position = vec![0usize; self.processes.len()];
        self.best = self
            .log
            .iter()
            .map(|undo| {
                let p = undo.process as usize;
                position[p] += 1;
                self.processes[p][position[p] - 1]
            })
            .collect();
        self.best_blocked = (0..self.processes.len())
            .filter_map(|p| self.processes[p].get(self.position[p] as usize).copied())
            .collect();
    }

    /// Runs the search: `Ok(true)` if an order exists, `Ok(false)` if none, `Err` if stopped.
    fn run(&mut self, limits: &Limits) -> Result<bool, &'static str> {
        let total = self.compiled.ops.len();
        if (0..self.state.len()).any(|k| {
            self.pending[k].as_ref().is_some_and(|c| {
                c.iter()
                    .enumerate()
                    .any(|(v, _)| self.lost(k, v as ValueId))
            })
        }) {
            return Ok(false); // a value is read that nothing writes
        }
        let mut stack: Vec<Frame> = Vec::new();
        let mut iterations: u64 = 0;
        loop {
            iterations += 1;
            if iterations.is_multiple_of(1 << 12) {
                if (limits.cancelled)() {
                    return Err("cancelled (time limit)");
                }
                if self.bytes() > limits.memo_bytes_max {
                    return Err("the memo outgrew its memory bound");
                }
            }
            // A new configuration: close it under reads, then branch.
            let log_start = self.log.len();
            self.eager_moves();
            if self.done == total {
                return Ok(true);
            }
            if self.dead_at.is_none() && self.remember() {
                let moves = self.moves();
                if moves.is_empty() {
                    self.record_best();
                }
                stack.push(Frame {
                    log_start,
                    base: self.log.len(),
                    moves,
                    next: 0,
                });
            }
            // Take the next untried move, backtracking through exhausted frames. A frame's
            // own eager reads are undone when it is popped; the move that led to it, when its
            // parent tries the next move.
            loop {
                let Some(frame) = stack.last_mut() else {
                    return Ok(false);
                };
                if frame.next < frame.moves.len() {
                    let (p, effect) = frame.moves[frame.next];
                    frame.next += 1;
                    let base = frame.base;
                    self.undo_to(base);
                    self.advance(p as usize, effect);
                    break;
                }
                let log_start = frame.log_start;
                stack.pop();
                self.undo_to(log_start);
            }
        }
    }
}

/// The initial pending counts (see `Search::pending`); `None` for keys with appends, whose
/// values are built during the search.
fn pending_counts(compiled: &Compiled) -> Vec<Option<Vec<[u32; 2]>>> {
    let mut pending: Vec<Option<Vec<[u32; 2]>>> = compiled
        .keys
        .iter()
        .map(|k| Some(vec![[0, 0]; k.values.len()]))
        .collect();
    for op in &compiled.ops {
        if matches!(op.step, Step::Append(_)) {
            pending[op.key as usize] = None;
        }
    }
    for op in &compiled.ops {
        if let Some(counts) = &mut pending[op.key as usize] {
            if let Some(v) = op.step.observes() {
                counts[v as usize][0] += 1;
            }
            if let Some(v) = op.step.installs() {
                counts[v as usize][1] += 1;
            }
        }
    }
    pending
}

fn position_key(process: usize, position: u32) -> u64 {
    mix64(((process as u64) << 32) ^ u64::from(position) ^ 0x1357_9bdf_0000_0000)
}

fn state_key(key: usize, state: ValueId) -> u64 {
    mix64(((key as u64) << 32) ^ u64::from(state) ^ 0x2468_ace0_1111_1111)
}
