//! The session guarantees of Terry et al. (*Session Guarantees for Weakly Consistent
//! Replicated Data*, PDIS 1994), for histories whose writes are unique per key.
//!
//! ## The model
//!
//! Each process is a session. A read is served by a replica that has applied some set of
//! writes, its *view* `V(read)`, and returns the last write to its key in the view under an
//! order of the view's writes (absent if the view has none). Replicas may order concurrent
//! writes differently, so each read may use its own order, as causal consistency allows; the
//! guarantees constrain views and orders:
//!
//! - **read your writes (RYW)**: a read's view contains every earlier write of its session.
//! - **monotonic reads (MR)**: a read's view contains the view of every earlier read of its
//!   session.
//! - **monotonic writes (MW)**: a view that contains a write contains every earlier write of
//!   the same session, ordered before it.
//! - **writes follow reads (WFR)**: a view that contains a write contains the views of the
//!   reads its session made before that write, ordered before it.
//!
//! "Ordered before" is a *precedence* relation on writes that every view's order must respect,
//! so it must be acyclic. A history satisfies a set of guarantees when views and orders exist
//! that satisfy all of them.
//!
//! ## The algorithm
//!
//! Views only add constraints, so the smallest views that the rules force are the best
//! choice: a read's view is its own write's *context* `C(w)` (the writes that must be visible
//! wherever `w` is, by MW and WFR, `w` included) plus, by RYW, the contexts of its session's
//! earlier writes and, by MR, the views of its session's earlier reads. These least sets are a
//! fixpoint, computed as bitsets by sweeping the operations until nothing changes (one sweep
//! when `so ∪ wr` is acyclic). Then `C(w) \ {w}` is exactly the set of writes that must
//! precede `w`, and the history violates the guarantees iff
//!
//! 1. a read returns a value no write wrote (thin air), or
//! 2. a write must precede itself (the precedence has a cycle), or
//! 3. a read returns absent although its view contains a write to its key, or
//! 4. a read returns `w`'s value although its view contains another write `w'` to its key
//!    that `w` must precede (`w ∈ C(w')`).
//!
//! Memory is `(reads + writes) × writes` bits. [`check_session`] checks all four guarantees
//! together and then names the smallest sets of guarantees that are already violated on their
//! own (a stale read of one's own last write violates RYW and MW together, neither alone).

use crate::causal::{ReadsFrom, Register};
use crate::history::{HistoryError, Operation};
use crate::linearizability::{Limits, Verdict};

/// One session guarantee.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Guarantee {
    ReadYourWrites,
    MonotonicReads,
    MonotonicWrites,
    WritesFollowReads,
}

impl Guarantee {
    pub const ALL: [Guarantee; 4] = [
        Guarantee::ReadYourWrites,
        Guarantee::MonotonicReads,
        Guarantee::MonotonicWrites,
        Guarantee::WritesFollowReads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Guarantee::ReadYourWrites => "read-your-writes",
            Guarantee::MonotonicReads => "monotonic-reads",
            Guarantee::MonotonicWrites => "monotonic-writes",
            Guarantee::WritesFollowReads => "writes-follow-reads",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of guarantees, as a bit mask.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Guarantees(pub u8);

impl Guarantees {
    pub const ALL: Guarantees = Guarantees(0b1111);

    pub fn has(self, g: Guarantee) -> bool {
        self.0 & g.bit() != 0
    }

    pub fn list(self) -> Vec<Guarantee> {
        Guarantee::ALL
            .into_iter()
            .filter(|g| self.has(*g))
            .collect()
    }
}

/// What makes a history violate a set of guarantees.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SessionViolation {
    /// The read (op id) returned a value nobody wrote.
    ThinAir { read: usize },
    /// The write (op id) would have to precede itself.
    CyclicPrecedence { write: usize },
    /// The read returned absent although its view holds `write` (same key).
    MissedWrite { read: usize, write: usize },
    /// The read returned `returned`'s value although its view holds `newer`, which
    /// `returned` must precede.
    StaleRead {
        read: usize,
        returned: usize,
        newer: usize,
    },
}

impl SessionViolation {
    /// The operations (ids) involved.
    pub fn operations(&self) -> Vec<usize> {
        match self {
            SessionViolation::ThinAir { read } => vec![*read],
            SessionViolation::CyclicPrecedence { write } => vec![*write],
            SessionViolation::MissedWrite { read, write } => vec![*write, *read],
            SessionViolation::StaleRead {
                read,
                returned,
                newer,
            } => vec![*returned, *newer, *read],
        }
    }
}

/// The answer for the four guarantees together, and which smallest sets of them fail.
#[derive(Clone, Debug)]
pub struct SessionReport {
    /// `Linearizable` stands for "all checked guarantees hold".
    pub verdict: Verdict,
    pub violation: Option<SessionViolation>,
    /// The minimal sets of guarantees that are violated (each a list).
    pub culprits: Vec<Vec<Guarantee>>,
    pub reason: Option<String>,
}

/// Checks the guarantees in `wanted` (all four: [`Guarantees::ALL`]).
pub fn check_session(
    operations: &[Operation],
    wanted: Guarantees,
    limits: &Limits,
) -> Result<SessionReport, HistoryError> {
    let register = Register::new(operations)?;
    let writes = register.ops.iter().filter(|o| o.write).count();
    if register.ops.len().saturating_mul(writes) / 8 > limits.memo_bytes_max {
        return Ok(SessionReport {
            verdict: Verdict::Unknown,
            violation: None,
            culprits: Vec::new(),
            reason: Some(format!(
                "views of {} operations over {writes} writes exceed the memory bound",
                register.ops.len()
            )),
        });
    }
    let id = |op: u32| operations[register.ops[op as usize].source as usize].id;
    let Some(violation) = violation(&register, wanted) else {
        return Ok(SessionReport {
            verdict: Verdict::Linearizable,
            violation: None,
            culprits: Vec::new(),
            reason: None,
        });
    };
    // Minimal violated subsets of the wanted guarantees (at most 15 checks).
    let mut culprits: Vec<u8> = Vec::new();
    let mut subsets: Vec<u8> = (0u8..16).filter(|s| s & !wanted.0 == 0).collect();
    subsets.sort_by_key(|s| (s.count_ones(), *s));
    for subset in subsets {
        if culprits.iter().any(|c| c & subset == *c) {
            continue; // contains a smaller violated set
        }
        if (limits.cancelled)() {
            break;
        }
        if self::violation(&register, Guarantees(subset)).is_some() {
            culprits.push(subset);
        }
    }
    let named = |v: Violation| match v {
        Violation::ThinAir(r) => SessionViolation::ThinAir { read: id(r) },
        Violation::Cycle(w) => SessionViolation::CyclicPrecedence { write: id(w) },
        Violation::Missed(r, w) => SessionViolation::MissedWrite {
            read: id(r),
            write: id(w),
        },
        Violation::Stale(r, w, newer) => SessionViolation::StaleRead {
            read: id(r),
            returned: id(w),
            newer: id(newer),
        },
    };
    Ok(SessionReport {
        verdict: Verdict::NotLinearizable,
        violation: Some(named(violation)),
        culprits: culprits.into_iter().map(|c| Guarantees(c).list()).collect(),
        reason: None,
    })
}

/// A violation, in register-operation indices.
#[derive(Clone, Copy, Debug)]
enum Violation {
    ThinAir(u32),
    Cycle(u32),
    Missed(u32, u32),
    Stale(u32, u32, u32),
}

/// Bitsets over writes, one row per operation.
struct Rows {
    words: usize,
    bits: Vec<u64>,
}

impl Rows {
    fn row(&self, op: u32) -> &[u64] {
        &self.bits[op as usize * self.words..(op as usize + 1) * self.words]
    }

    /// `row(into) |= row(from)`; true if it changed.
    fn union(&mut self, into: u32, from: u32) -> bool {
        let (i, f) = (into as usize * self.words, from as usize * self.words);
        let mut changed = false;
        for k in 0..self.words {
            let merged = self.bits[i + k] | self.bits[f + k];
            changed |= merged != self.bits[i + k];
            self.bits[i + k] = merged;
        }
        changed
    }

    /// `row(into) |= bits`; true if it changed.
    fn union_slice(&mut self, into: u32, bits: &[u64]) -> bool {
        let i = into as usize * self.words;
        let mut changed = false;
        for (k, b) in bits.iter().enumerate() {
            let merged = self.bits[i + k] | b;
            changed |= merged != self.bits[i + k];
            self.bits[i + k] = merged;
        }
        changed
    }

    fn set(&mut self, op: u32, bit: u32) -> bool {
        let word = &mut self.bits[op as usize * self.words + bit as usize / 64];
        let before = *word;
        *word |= 1 << (bit % 64);
        before != *word
    }

    fn contains(&self, op: u32, bit: u32) -> bool {
        self.row(op)[bit as usize / 64] & (1 << (bit % 64)) != 0
    }
}

/// The first violation of `wanted`, if any (see the module documentation).
fn violation(register: &Register, wanted: Guarantees) -> Option<Violation> {
    let n = register.ops.len();
    for op in 0..n as u32 {
        if !register.ops[op as usize].write && register.read_from(op) == ReadsFrom::ThinAir {
            return Some(Violation::ThinAir(op));
        }
    }
    // Number the writes; a row per operation: C(w) for a write, V(r) for a read.
    let mut write_index = vec![u32::MAX; n];
    let mut writes = Vec::new();
    for (op, o) in register.ops.iter().enumerate() {
        if o.write {
            write_index[op] = writes.len() as u32;
            writes.push(op as u32);
        }
    }
    let words = writes.len().div_ceil(64).max(1);
    let mut rows = Rows {
        words,
        bits: vec![0; n * words],
    };
    // Precedence inputs of each write, for the cycle test: D(w) = the union of what MW and
    // WFR put in C(w) besides w itself.
    let mut incoming = Rows {
        words,
        bits: vec![0; n * words],
    };
    while sweep(register, wanted, &write_index, &mut rows, &mut incoming) {}
    for &w in &writes {
        if incoming.contains(w, write_index[w as usize]) {
            return Some(Violation::Cycle(w));
        }
    }
    for op in 0..n as u32 {
        let r = register.ops[op as usize];
        if r.write {
            continue;
        }
        let source = register.read_from(op).write();
        for (word_index, word) in rows.row(op).iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let w = writes[word_index * 64 + bits.trailing_zeros() as usize];
                bits &= bits - 1;
                if register.ops[w as usize].key != r.key || Some(w) == source {
                    continue;
                }
                match source {
                    None => return Some(Violation::Missed(op, w)),
                    Some(s) if rows.contains(w, write_index[s as usize]) => {
                        return Some(Violation::Stale(op, s, w))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    None
}

/// One pass over every session in order, growing rows by the rules; true if anything grew.
fn sweep(
    register: &Register,
    wanted: Guarantees,
    write_index: &[u32],
    rows: &mut Rows,
    incoming: &mut Rows,
) -> bool {
    let mut changed = false;
    // Unions of the rows of the session's earlier writes and earlier reads.
    let mut writes_so_far = vec![0u64; rows.words];
    let mut reads_so_far = vec![0u64; rows.words];
    for session in &register.processes {
        writes_so_far.fill(0);
        reads_so_far.fill(0);
        let mut last_write: Option<u32> = None;
        let mut last_read: Option<u32> = None;
        for &op in session {
            if register.ops[op as usize].write {
                changed |= rows.set(op, write_index[op as usize]);
                if let Some(prev) = last_write.filter(|_| wanted.has(Guarantee::MonotonicWrites)) {
                    changed |= rows.union(op, prev);
                    incoming.union(op, prev);
                }
                if wanted.has(Guarantee::WritesFollowReads) {
                    changed |= rows.union_slice(op, &reads_so_far);
                    incoming.union_slice(op, &reads_so_far);
                }
                last_write = Some(op);
                or_into(&mut writes_so_far, rows.row(op));
            } else {
                if let ReadsFrom::Write(source) = register.read_from(op) {
                    changed |= rows.union(op, source);
                }
                if wanted.has(Guarantee::ReadYourWrites) {
                    changed |= rows.union_slice(op, &writes_so_far);
                }
                if let Some(prev) = last_read.filter(|_| wanted.has(Guarantee::MonotonicReads)) {
                    changed |= rows.union(op, prev);
                }
                last_read = Some(op);
                or_into(&mut reads_so_far, rows.row(op));
            }
        }
    }
    changed
}

fn or_into(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a |= *b;
    }
}
