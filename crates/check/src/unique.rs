//! Linearizability of a register whose written values are unique, in O(n log n): the fast
//! path the search ([`crate::linearizability`]) tries first on every key.
//!
//! ## Why unique values make it easy
//!
//! Deciding linearizability is NP-complete in general (Gibbons & Korach 1997), because the
//! checker must guess which write each read saw. When every value is written once, the read
//! tells: its *reads-from* relation is known, and what is left is polynomial (Gibbons & Korach's
//! "read-mapping" case; Jepsen's constraint-graph checkers build on the same observation).
//!
//! In any linearization the register holds each value `v` over one contiguous stretch: from
//! the operation that installed `v` to the next install. Every operation that observed `v` (a
//! read of `v`, or a compare-and-set expecting `v`) sits inside that stretch. Call the
//! installer of `v` with the reads of `v` the *segment* of `v`. A successful `cas(v → w)` both
//! closes the segment of `v` (nothing can observe `v` after it) and opens that of `w`, so
//! segments joined by CAS form a *chain* that must appear in the linearization as one
//! contiguous *block*, segment after segment; a block starts at a plain write (put, delete) or
//! at the initial absent state. A linearization is then an order of blocks, and within each
//! block the forced order of segments, with reads anywhere in their segment. So the history
//! is linearizable iff
//!
//! 1. every observed value has an installer ("a read of a value no write wrote" otherwise),
//!    and at most one CAS consumes each value;
//! 2. inside each block, real time agrees with the forced order: no read returns before its
//!    writer was invoked, and no operation of a later segment returns before an operation of
//!    an earlier segment is invoked;
//! 3. the blocks can be ordered: block `A` must precede block `B` when some operation of `A`
//!    returned before some operation of `B` was invoked, i.e. when `f(A) < s(B)` with `f` the
//!    earliest return and `s` the latest invocation in a block. That relation must be acyclic.
//!
//! The relation of 3 is a *Ferrers relation* (`f(A) < s(B)` and `f(C) < s(D)` imply
//! `f(A) < s(D)` or `f(C) < s(B)`), so it has a cycle iff it has a cycle of two blocks, each of
//! which must come before the other: a stale read, in the textbook case. Both the topological
//! sort and the search for the two-cycle take O(b log b) for b blocks.
//!
//! ## Unknown outcomes and repeated values
//!
//! An operation with unknown outcome (`info`) may or may not have happened. With unique values
//! that is decided too: an `info` write is *needed* when an operation that happened observed
//! its value (it is the only one that could have installed it), and every operation that is
//! not needed can be dropped without changing the verdict (no remaining operation looks at
//! what it installed). Needed `info` operations happened, at some instant after their
//! invocation; their return is +∞.
//!
//! Values written more than once are fine as long as nobody observes them (each such write is
//! its own block of one operation). The fast path gives up (and the search decides) only when
//! an observed value has several possible installers (a read of absent on a key with deletes,
//! a put of a value written before), or appends cannot be read off the values.
//!
//! ## Appends
//!
//! An append with a unique suffix is a CAS in disguise: when every observed value parses in
//! exactly one way as a written value followed by appended suffixes (`"a" + "b," + "c,"`),
//! the observation says which state each of those appends extended and which it made, so each
//! becomes `cas(before → after)`; an append nobody observed behaves exactly as a write of a
//! value nobody reads (`appends_as_cas`). Porcupine's KV histories and Jepsen-style
//! string-append workloads are of this kind.

use crate::linearizability::KeyOp;
use crate::model::{Step, Values, ABSENT};

/// What the fast path found on one key. Operation indices are into the slice it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// With one linearization: the operations that took effect (every completed one, and the
    /// needed ones with unknown outcome), by index, in an order that respects real time and
    /// the register's semantics (see [`order_blocks`]).
    Linearizable { order: Vec<u32> },
    NotLinearizable {
        /// The operations that show the violation, closed under "installer of a value an
        /// operation here observes", so they violate linearizability on their own.
        witness: Vec<u32>,
        /// Why, naming operations by index as `#{i}` placeholders (see [`Outcome`] users).
        why: Vec<Part>,
    },
    /// Values repeat where it matters, or the key has appends: the search decides.
    Undecided(&'static str),
}

/// A piece of an explanation: text, or an operation the caller names by its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Op(u32),
}

const VIRTUAL: u32 = u32::MAX;
const NONE: u32 = u32::MAX - 1;

fn call_of(ops: &[KeyOp], i: u32) -> i128 {
    if i == VIRTUAL {
        i128::MIN
    } else {
        i128::from(ops[i as usize].call)
    }
}

fn ret_of(ops: &[KeyOp], i: u32) -> i128 {
    if i == VIRTUAL {
        i128::MIN
    } else if ops[i as usize].ret == u64::MAX {
        i128::MAX
    } else {
        i128::from(ops[i as usize].ret)
    }
}

/// One block: its segments in order, each an installer and the reads of its value.
struct Block {
    /// Indices into `segments`.
    segments: std::ops::Range<usize>,
    /// The earliest return and the operation with it.
    f: (i128, u32),
    /// The latest invocation and the operation with it.
    s: (i128, u32),
}

struct Segment {
    /// The installer (`VIRTUAL` for the initial absent state).
    writer: u32,
    reads: Vec<u32>,
}

/// Decides linearizability of one key's operations when values identify their writers.
pub(crate) fn check(ops: &[KeyOp], values: &Values) -> Outcome {
    if ops.iter().any(|op| matches!(op.step, Step::ExpireIf(_))) {
        return Outcome::Undecided("a key with expiries is left to the search");
    }
    if ops
        .iter()
        .any(|op| matches!(op.step, Step::Cas { new, .. } if new == ABSENT))
    {
        return Outcome::Undecided("a key with compare-and-deletes is left to the search");
    }
    if ops.iter().any(|op| matches!(op.step, Step::Append(_))) {
        let mut values = values.clone();
        return match appends_as_cas(ops, &mut values) {
            Ok((rewritten, pinned_by)) => check_registers(&rewritten, &values, &pinned_by),
            Err(why) => Outcome::Undecided(why),
        };
    }
    check_registers(ops, values, &[])
}

/// Rewrites appends with unique suffixes so that [`check_registers`] can judge them: an append
/// whose effect some operation observed (a read or CAS whose value contains its suffix) is a
/// CAS from the state it extended to the state it made, both read off that observation; an
/// append nobody observed is a write of a value nobody reads (it can only have been followed
/// by an overwrite before anyone looked, exactly like such a write). Every observed value must
/// parse in exactly one way as a put or CAS value (or nothing) followed by appended suffixes;
/// otherwise the search decides.
/// Also returns, per append turned into a CAS, the operation whose observation showed its
/// effect (the witness must keep it).
fn appends_as_cas(
    ops: &[KeyOp],
    values: &mut Values,
) -> Result<(Vec<KeyOp>, Vec<u32>), &'static str> {
    use std::collections::{HashMap, HashSet};
    let mut suffixes: HashMap<String, u32> = HashMap::new();
    let mut bases: HashSet<String> = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        match op.step {
            Step::Append(u) => {
                let text = values.text(u).unwrap_or_default().to_string();
                if text.is_empty() || suffixes.insert(text, i as u32).is_some() {
                    return Err("an appended value is empty or appended twice");
                }
            }
            Step::Write(v) | Step::Cas { new: v, .. } if v != ABSENT => {
                let text = values.text(v).unwrap_or_default();
                if text.is_empty() {
                    return Err("an empty value is written");
                }
                bases.insert(text.to_string());
            }
            _ => {}
        }
    }
    let longest_suffix = suffixes.keys().map(String::len).max().unwrap_or(0);
    let longest_base = bases.iter().map(String::len).max().unwrap_or(0);
    // Per append: the (state before, state after) an observation shows.
    let mut effect: Vec<Option<(crate::model::ValueId, crate::model::ValueId)>> =
        vec![None; ops.len()];
    let mut parsed: HashSet<crate::model::ValueId> = HashSet::new();
    // Observations by completed operations first: they happened. One by an operation with
    // unknown outcome (a CAS) tells only what we know already, or the search decides.
    let mut pinned_by = vec![NONE; ops.len()];
    let by_completed_first = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.ret != u64::MAX)
        .chain(ops.iter().enumerate().filter(|(_, op)| op.ret == u64::MAX));
    for (observer, op) in by_completed_first {
        let completed = op.ret != u64::MAX;
        let Some(observed) = op.step.observes().filter(|v| *v != ABSENT) else {
            continue;
        };
        if !parsed.insert(observed) {
            continue;
        }
        let text = values.text(observed).unwrap_or_default().to_string();
        let bytes = text.as_bytes();
        // ways[i]: parses of text[..i] (capped at 2); via[i]: the append ending at i, if any.
        let n = bytes.len();
        let mut ways = vec![0u8; n + 1];
        let mut via: Vec<Option<(usize, u32)>> = vec![None; n + 1];
        ways[0] = 1;
        for i in 1..=n {
            let mut count = 0u8;
            if i <= longest_base && text.is_char_boundary(i) && bases.contains(&text[..i]) {
                count += 1;
            }
            for len in 1..=longest_suffix.min(i) {
                let start = i - len;
                if ways[start] == 0 || !text.is_char_boundary(start) || !text.is_char_boundary(i) {
                    continue;
                }
                if let Some(&append) = suffixes.get(&text[start..i]) {
                    count = count.saturating_add(ways[start]);
                    via[i] = Some((start, append));
                }
            }
            ways[i] = count.min(2);
        }
        match ways[n] {
            0 => continue, // nothing produces it: the register check calls it a value no write wrote
            1 => {}
            _ => return Err("an observed value parses in more than one way into appends"),
        }
        // Walk the one parse back: every append in it, with the states around it.
        let mut end = n;
        while let Some((start, append)) = via[end] {
            if ways[end] != 1 {
                break;
            }
            let before = if start == 0 {
                ABSENT
            } else {
                values.intern(&text[..start])
            };
            let after = values.intern(&text[..end]);
            match effect[append as usize] {
                None if !completed => return Err("an unfinished CAS alone saw an append"),
                None => {
                    effect[append as usize] = Some((before, after));
                    pinned_by[append as usize] = observer as u32;
                }
                Some(known) if known == (before, after) => {}
                Some(_) => return Err("two observations disagree on what an append extended"),
            }
            end = start;
        }
    }
    let mut rewritten = ops.to_vec();
    for (i, op) in rewritten.iter_mut().enumerate() {
        if !matches!(op.step, Step::Append(_)) {
            continue;
        }
        op.step = match effect[i] {
            Some((expected, new)) => Step::Cas { expected, new },
            None => {
                let before = values.len();
                let fresh = values.intern(&format!("\u{0}unobserved append {i}"));
                if values.len() == before {
                    return Err("a value collides with a placeholder");
                }
                Step::Write(fresh)
            }
        };
    }
    Ok((rewritten, pinned_by))
}

/// [`check`] for keys without appends; `pinned_by` as [`appends_as_cas`] returns it (or empty).
fn check_registers(ops: &[KeyOp], values: &Values, pinned_by: &[u32]) -> Outcome {
    let n_values = values.len();
    // Installers per value (the initial state installs absent) and whether anyone observes it.
    let mut installer_count = vec![0u32; n_values];
    let mut installer = vec![NONE; n_values];
    let mut observed = vec![false; n_values];
    installer_count[ABSENT as usize] = 1;
    installer[ABSENT as usize] = VIRTUAL;
    for (i, op) in ops.iter().enumerate() {
        if let Some(v) = op.step.installs() {
            installer_count[v as usize] += 1;
            installer[v as usize] = i as u32;
        }
        if let Some(v) = op.step.observes() {
            observed[v as usize] = true;
        }
    }
    if (0..n_values).any(|v| observed[v] && installer_count[v] > 1) {
        return Outcome::Undecided("a value that is read has more than one possible writer");
    }
    // Needed: every operation that completed, and the installers of what needed ones observe.
    let mut needed = vec![false; ops.len()];
    // For an `info` operation: the needed operation that observed its value.
    let mut needed_by = vec![NONE; ops.len()];
    let mut stack: Vec<u32> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.ret != u64::MAX {
            needed[i] = true;
            stack.push(i as u32);
        }
    }
    while let Some(i) = stack.pop() {
        let Some(v) = ops[i as usize].step.observes() else {
            continue;
        };
        let w = installer[v as usize];
        if w == NONE {
            let mut witness = vec![i];
            let links = Links {
                installer: &installer,
                needed_by: &needed_by,
                pinned_by,
            };
            close(ops, &links, &mut witness);
            let what = if matches!(ops[i as usize].step, Step::Read(_)) {
                " read a value no write wrote"
            } else {
                " expected a value no write wrote"
            };
            return Outcome::NotLinearizable {
                witness,
                why: vec![Part::Op(i), Part::Text(what.into())],
            };
        }
        if w != VIRTUAL && !needed[w as usize] {
            needed[w as usize] = true;
            needed_by[w as usize] = i;
            stack.push(w);
        }
    }
    // The CAS that consumes each value, and the reads of each value.
    let mut consumer = vec![NONE; n_values];
    let mut reads: Vec<Vec<u32>> = vec![Vec::new(); n_values];
    for (i, op) in ops.iter().enumerate() {
        if !needed[i] {
            continue;
        }
        match op.step {
            Step::Read(v) => reads[v as usize].push(i as u32),
            Step::Cas { expected, .. } => {
                let other = consumer[expected as usize];
                if other != NONE {
                    let mut witness = vec![other, i as u32];
                    close(
                        ops,
                        &Links {
                            installer: &installer,
                            needed_by: &needed_by,
                            pinned_by,
                        },
                        &mut witness,
                    );
                    return Outcome::NotLinearizable {
                        witness,
                        why: vec![
                            Part::Op(other),
                            Part::Text(" and ".into()),
                            Part::Op(i as u32),
                            Part::Text(
                                " both replaced the same value by compare-and-set; only one can"
                                    .into(),
                            ),
                        ],
                    };
                }
                consumer[expected as usize] = i as u32;
            }
            Step::Write(_) | Step::Append(_) | Step::ExpireIf(_) => {}
        }
    }
    // Chains from every plain write (and the initial state) along the consuming CASes.
    let mut segments: Vec<Segment> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut chained = vec![false; ops.len()];
    let heads =
        std::iter::once(VIRTUAL)
            .chain((0..ops.len() as u32).filter(|i| {
                needed[*i as usize] && matches!(ops[*i as usize].step, Step::Write(_))
            }));
    for head in heads {
        let start = segments.len();
        let mut writer = head;
        loop {
            let value = if writer == VIRTUAL {
                ABSENT
            } else {
                ops[writer as usize].step.installs().expect("an installer")
            };
            // A plain write of a value written twice is its own block with no readers.
            let unique = installer[value as usize] == writer;
            segments.push(Segment {
                writer,
                reads: if unique {
                    std::mem::take(&mut reads[value as usize])
                } else {
                    Vec::new()
                },
            });
            if writer != VIRTUAL {
                chained[writer as usize] = true;
            }
            let next = if unique {
                consumer[value as usize]
            } else {
                NONE
            };
            if next == NONE {
                break;
            }
            writer = next;
        }
        let range = start..segments.len();
        let mut f = (i128::MAX, NONE);
        let mut s = (i128::MIN, NONE);
        for segment in &segments[range.clone()] {
            for &i in std::iter::once(&segment.writer).chain(&segment.reads) {
                f = f.min((ret_of(ops, i), i));
                s = s.max((call_of(ops, i), i));
            }
        }
        blocks.push(Block {
            segments: range,
            f,
            s,
        });
    }
    // A needed CAS no chain reached consumes a value installed by a CAS that needs it first.
    if let Some(lost) = (0..ops.len())
        .find(|i| needed[*i] && !chained[*i] && matches!(ops[*i].step, Step::Cas { .. }))
    {
        let mut witness = vec![lost as u32];
        close(
            ops,
            &Links {
                installer: &installer,
                needed_by: &needed_by,
                pinned_by,
            },
            &mut witness,
        );
        return Outcome::NotLinearizable {
            witness,
            why: vec![
                Part::Op(lost as u32),
                Part::Text(
                    " is part of a cycle of compare-and-sets, each expecting the value the one before it wrote"
                        .into(),
                ),
            ],
        };
    }
    for block in &blocks {
        let links = Links {
            installer: &installer,
            needed_by: &needed_by,
            pinned_by,
        };
        if let Some(outcome) = check_block(ops, &links, &segments[block.segments.clone()]) {
            return outcome;
        }
    }
    let links = Links {
        installer: &installer,
        needed_by: &needed_by,
        pinned_by,
    };
    order_blocks(ops, &links, &segments, &blocks)
}

/// Condition 2: real time inside one block agrees with its forced order of segments.
fn check_block(ops: &[KeyOp], links: &Links, segments: &[Segment]) -> Option<Outcome> {
    for segment in segments {
        let writer_call = call_of(ops, segment.writer);
        if let Some(&read) = segment
            .reads
            .iter()
            .find(|r| ret_of(ops, **r) < writer_call)
        {
            let mut witness = vec![read];
            close(ops, links, &mut witness);
            return Some(Outcome::NotLinearizable {
                witness,
                why: vec![
                    Part::Op(read),
                    Part::Text(" returned before ".into()),
                    Part::Op(segment.writer),
                    Part::Text(", whose value it read, was invoked".into()),
                ],
            });
        }
    }
    // Suffix minima of returns: the earliest-returning operation of segments k.. .
    let mut suffix: Vec<(i128, u32)> = vec![(i128::MAX, NONE); segments.len() + 1];
    for k in (0..segments.len()).rev() {
        let segment = &segments[k];
        let mut best = suffix[k + 1];
        for &i in std::iter::once(&segment.writer).chain(&segment.reads) {
            best = best.min((ret_of(ops, i), i));
        }
        suffix[k] = best;
    }
    let mut latest: (i128, u32, usize) = (i128::MIN, NONE, 0);
    for k in 0..segments.len().saturating_sub(1) {
        let segment = &segments[k];
        for &i in std::iter::once(&segment.writer).chain(&segment.reads) {
            latest = latest.max((call_of(ops, i), i, k));
        }
        let (ret, early) = suffix[k + 1];
        if ret < latest.0 {
            let late = latest.1;
            // The CAS that closed the segment of `late`.
            let closer = segments[latest.2 + 1].writer;
            let mut witness = vec![late, early, closer];
            witness.retain(|i| *i != VIRTUAL);
            close(ops, links, &mut witness);
            let what = if ops[late as usize].step.installs().is_some() {
                " wrote"
            } else {
                " read"
            };
            let mut why = vec![
                Part::Op(late),
                Part::Text(format!("{what} the value that ")),
                Part::Op(closer),
                Part::Text(
                    " replaced (by compare-and-set or append), so it must take effect before it"
                        .into(),
                ),
            ];
            if closer != early {
                why.push(Part::Text(", and ".into()));
                why.push(Part::Op(closer));
                why.push(Part::Text(" before ".into()));
                why.push(Part::Op(early));
                why.push(Part::Text(
                    " (one chain of compare-and-sets and appends)".into(),
                ));
            }
            why.push(Part::Text("; but ".into()));
            why.push(Part::Op(early));
            why.push(Part::Text(" returned before ".into()));
            why.push(Part::Op(late));
            why.push(Part::Text(" was invoked".into()));
            return Some(Outcome::NotLinearizable { witness, why });
        }
    }
    None
}

/// Condition 3: a topological order of the blocks, or a pair that must precede each other.
fn order_blocks(ops: &[KeyOp], links: &Links, segments: &[Segment], blocks: &[Block]) -> Outcome {
    let n = blocks.len();
    // Doubly linked lists of the remaining blocks by latest invocation and by earliest return.
    let mut by_s: Vec<usize> = (0..n).collect();
    by_s.sort_unstable_by_key(|b| blocks[*b].s);
    let mut by_f: Vec<usize> = (0..n).collect();
    by_f.sort_unstable_by_key(|b| blocks[*b].f);
    let mut s_list = Linked::new(&by_s);
    let mut f_list = Linked::new(&by_f);
    let mut remaining = n;
    let mut placed: Vec<usize> = Vec::with_capacity(n);
    while remaining > 0 {
        let first_f = f_list.first().expect("blocks remain");
        let min_f_other = |x: usize| {
            let other = if x == first_f {
                f_list.after(first_f)
            } else {
                Some(first_f)
            };
            other.map_or(i128::MAX, |o| blocks[o].f.0)
        };
        let candidates = [s_list.first().expect("blocks remain"), first_f];
        let Some(&next) = candidates
            .iter()
            .find(|x| blocks[**x].s.0 <= min_f_other(**x))
        else {
            break;
        };
        s_list.remove(next);
        f_list.remove(next);
        remaining -= 1;
        placed.push(next);
    }
    if remaining == 0 {
        return Outcome::Linearizable {
            order: linearization(ops, segments, blocks, &placed),
        };
    }
    let left: Vec<usize> = s_list.iter().collect();
    match two_cycle(blocks, &left) {
        Some((a, b)) => {
            // f(a) < s(b) and f(b) < s(a); the initial state's block, if any, is `b`.
            let head = |block: usize| segments[blocks[block].segments.start].writer;
            let (a, b) = if head(a) == VIRTUAL { (b, a) } else { (a, b) };
            let (pa, qb) = precedes(ops, segments, &blocks[a], &blocks[b]);
            let (pb, qa) = precedes(ops, segments, &blocks[b], &blocks[a]);
            let mut witness = vec![pa, qb, pb, qa];
            witness.retain(|i| *i != VIRTUAL);
            close(ops, links, &mut witness);
            let name = |why: &mut Vec<Part>, block: usize| {
                let h = head(block);
                if h == VIRTUAL {
                    why.push(Part::Text("the initial state".into()));
                } else {
                    why.push(Part::Text("the value of ".into()));
                    why.push(Part::Op(h));
                    if blocks[block].segments.len() > 1 {
                        why.push(Part::Text(
                            " (with the compare-and-sets and appends after it)".into(),
                        ));
                    }
                }
            };
            let mut why = Vec::new();
            name(&mut why, a);
            why.push(Part::Text(" and ".into()));
            name(&mut why, b);
            why.push(Part::Text(
                ", each with the operations that observed it, cannot be ordered: ".into(),
            ));
            let first = |why: &mut Vec<Part>, x: usize, p: u32, q: u32| {
                name(why, x);
                if p == VIRTUAL {
                    why.push(Part::Text(" comes first".into()));
                } else {
                    why.push(Part::Text(" must come first since ".into()));
                    why.push(Part::Op(p));
                    why.push(Part::Text(" returned before ".into()));
                    why.push(Part::Op(q));
                    why.push(Part::Text(" was invoked".into()));
                }
            };
            first(&mut why, b, pb, qa);
            why.push(Part::Text(", and ".into()));
            first(&mut why, a, pa, qb);
            Outcome::NotLinearizable { witness, why }
        }
        // Cannot happen for a Ferrers relation; the search decides rather than guessing.
        None => Outcome::Undecided("no pair of blocks explains the cycle"),
    }
}

/// One linearization, from the blocks in the topological order `placed`: each block's
/// segments in their forced order, each segment its installer then its reads by invocation.
///
/// It respects real time: inside a block by condition 2 (no read returns before its installer
/// is invoked, no operation of a later segment returns before one of an earlier segment is
/// invoked; reads of one segment ordered by invocation cannot contradict each other); across
/// blocks because `a` of block `A` returning before `b` of block `B` is invoked means
/// `f(A) < s(B)`, so `A` was placed first. And the register's semantics: every block starts
/// with a plain write (or the initial state), and every operation in a segment observes the
/// value its installer installed.
fn linearization(
    ops: &[KeyOp],
    segments: &[Segment],
    blocks: &[Block],
    placed: &[usize],
) -> Vec<u32> {
    let mut order = Vec::with_capacity(ops.len());
    for &block in placed {
        for segment in &segments[blocks[block].segments.clone()] {
            if segment.writer != VIRTUAL {
                order.push(segment.writer);
            }
            let start = order.len();
            order.extend_from_slice(&segment.reads);
            order[start..].sort_unstable_by_key(|r| (ops[*r as usize].call, *r));
        }
    }
    order
}

/// An operation `p` of `x` that returned before an operation `q` of `y` was invoked (given that
/// `f(x) < s(y)`), preferring the blocks' writers so that the witness stays small.
fn precedes(ops: &[KeyOp], segments: &[Segment], x: &Block, y: &Block) -> (u32, u32) {
    let members = |block: &Block| -> Vec<u32> {
        let mut writers: Vec<u32> = segments[block.segments.clone()]
            .iter()
            .map(|s| s.writer)
            .collect();
        let reads = segments[block.segments.clone()]
            .iter()
            .flat_map(|s| s.reads.iter().copied());
        writers.extend(reads);
        writers // writers first, the head first of all
    };
    let p0 = x.f.1;
    let q = members(y)
        .into_iter()
        .find(|q| call_of(ops, *q) > ret_of(ops, p0))
        .unwrap_or(y.s.1);
    let p = members(x)
        .into_iter()
        .find(|p| ret_of(ops, *p) < call_of(ops, q))
        .unwrap_or(p0);
    (p, q)
}

/// Two blocks among `left` with f(a) < s(b) and f(b) < s(a), in O(m log m).
fn two_cycle(blocks: &[Block], left: &[usize]) -> Option<(usize, usize)> {
    // Sorted by latest invocation, descending; prefix minima of earliest return (two smallest,
    // so that a block can be excluded from its own prefix).
    let mut by_s: Vec<usize> = left.to_vec();
    by_s.sort_unstable_by_key(|b| std::cmp::Reverse(blocks[*b].s.0));
    let mut best: Vec<[(i128, usize); 2]> = Vec::with_capacity(by_s.len());
    let mut top = [(i128::MAX, usize::MAX); 2];
    for &b in &by_s {
        let entry = (blocks[b].f.0, b);
        if entry < top[0] {
            top = [entry, top[0]];
        } else if entry < top[1] {
            top[1] = entry;
        }
        best.push(top);
    }
    for &a in left {
        // The blocks b with s(b) > f(a) form a prefix of `by_s`.
        let len = by_s.partition_point(|b| blocks[*b].s.0 > blocks[a].f.0);
        if len == 0 {
            continue;
        }
        let [first, second] = best[len - 1];
        let (f_b, b) = if first.1 == a { second } else { first };
        if b != usize::MAX && f_b < blocks[a].s.0 {
            return Some((a, b));
        }
    }
    None
}

/// What [`close`] follows.
struct Links<'a> {
    /// Per value: its installer (`VIRTUAL`, `NONE`, or the last of several).
    installer: &'a [u32],
    /// Per operation with unknown outcome: the operation whose observation made it needed.
    needed_by: &'a [u32],
    /// Per append read as a CAS: the operation whose observation showed what it extended.
    pinned_by: &'a [u32],
}

/// Closes a witness so that it violates linearizability on its own: adds the installer of
/// every value an operation in it observes, and for every operation with unknown outcome the
/// operation that observed its value (without which it need not have happened); sorts it.
fn close(ops: &[KeyOp], links: &Links, witness: &mut Vec<u32>) {
    let mut k = 0;
    while k < witness.len() {
        let op = witness[k];
        let mut add = |w: u32| {
            if w != VIRTUAL && w != NONE && !witness.contains(&w) {
                witness.push(w);
            }
        };
        if let Some(v) = ops[op as usize].step.observes() {
            add(links.installer[v as usize]);
        }
        if ops[op as usize].ret == u64::MAX {
            add(links.needed_by[op as usize]);
        }
        add(links.pinned_by.get(op as usize).copied().unwrap_or(NONE));
        k += 1;
    }
    witness.sort_unstable();
    witness.dedup();
}

/// A doubly linked list over a fixed order of `0..n`, with O(1) removal.
struct Linked {
    head: Option<usize>,
    next: Vec<Option<usize>>,
    prev: Vec<Option<usize>>,
}

impl Linked {
    fn new(order: &[usize]) -> Linked {
        let n = order.len();
        let mut next = vec![None; n];
        let mut prev = vec![None; n];
        for w in order.windows(2) {
            next[w[0]] = Some(w[1]);
            prev[w[1]] = Some(w[0]);
        }
        Linked {
            head: order.first().copied(),
            next,
            prev,
        }
    }

    fn first(&self) -> Option<usize> {
        self.head
    }

    fn after(&self, x: usize) -> Option<usize> {
        self.next[x]
    }

    fn remove(&mut self, x: usize) {
        match self.prev[x] {
            Some(p) => self.next[p] = self.next[x],
            None => self.head = self.next[x],
        }
        if let Some(n) = self.next[x] {
            self.prev[n] = self.prev[x];
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.head, |x| self.next[*x])
    }
}

#[cfg(test)]
mod tests {
    use crate::history::{pair, parse_jsonl};
    use crate::linearizability::{check_linearizable, Limits, Verdict};

    fn report(text: &str) -> crate::LinearizabilityReport {
        let ops = pair(&parse_jsonl(text).unwrap()).unwrap();
        check_linearizable(&ops, &Limits::default())
    }

    /// One line per operation: `process f value call ret` (`-` for an unknown return).
    fn history(lines: &str) -> String {
        let mut out = String::new();
        for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (p, f, value, call, ret) = (w[0], w[1], w[2], w[3], w[4]);
            let invoke = if f == "get" { "null" } else { value };
            out += &format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"{f}\",\"key\":\"x\",\"value\":{invoke},\"time\":{call}}}\n");
            if ret != "-" {
                out += &format!("{{\"process\":{p},\"type\":\"ok\",\"f\":\"{f}\",\"key\":\"x\",\"value\":{value},\"time\":{ret}}}\n");
            }
        }
        // Completions must follow invocations in time for pairing: sort by time, stably.
        let mut lines: Vec<&str> = out.lines().collect();
        let time = |l: &str| -> u64 {
            l.rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches('}')
                .parse()
                .unwrap()
        };
        lines.sort_by_key(|l| time(l));
        lines.join("\n")
    }

    #[test]
    fn reads_concurrent_with_their_write_are_fine() {
        let h = history(
            "2 put \"1\" 1 4
             1 get \"1\" 1 2
             0 get \"1\" 1 3
             2 put \"6\" 9 9",
        );
        assert_eq!(report(&h).verdict, Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_is_explained_by_the_three_operations_that_show_it() {
        let h = history(
            "0 put \"1\" 1 2
             0 put \"2\" 3 4
             1 get \"2\" 3 5
             1 get \"1\" 6 7
             2 get \"2\" 3 8",
        );
        let r = report(&h);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert_eq!(r.witness, vec![0, 1, 3], "{r:?}");
        let why = r.explanation.unwrap();
        assert!(
            why.contains("#0 (put x 1)") && why.contains("#3 (get x → 1)"),
            "{why}"
        );
    }

    #[test]
    fn a_value_nobody_wrote_is_named_as_such() {
        let h = history(
            "0 put \"1\" 1 2
             1 get \"7\" 3 4",
        );
        let r = report(&h);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert_eq!(r.witness, vec![1]);
        assert_eq!(
            r.explanation.as_deref(),
            Some("#1 (get x → 7) read a value no write wrote")
        );
    }

    #[test]
    fn cas_chains_order_their_values() {
        // put 1, cas 1→2, cas 2→3 in a chain; a read of 1 after the read of 3 began late.
        let ok = history(
            "0 put \"1\" 1 2
             0 cas [\"1\",\"2\"] 3 4
             1 cas [\"2\",\"3\"] 3 6
             2 get \"1\" 1 3
             2 get \"3\" 7 8",
        );
        assert_eq!(report(&ok).verdict, Verdict::Linearizable);
        let stale = ok.replace(r#""value":"1","time":3"#, r#""value":"1","time":9"#);
        let bad = stale + "\n" + &history("3 get \"2\" 10 11");
        let r = report(&bad);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        // Two CASes consuming one value cannot both succeed.
        let twice = history(
            "0 put \"1\" 1 2
             0 cas [\"1\",\"2\"] 3 4
             1 cas [\"1\",\"3\"] 3 6",
        );
        let r = report(&twice);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert_eq!(r.witness, vec![0, 1, 2]);
        assert!(r.explanation.unwrap().contains("only one can"));
    }

    #[test]
    fn an_unknown_write_happened_exactly_when_someone_saw_it() {
        let seen = history(
            "0 put \"1\" 1 -
             1 get \"1\" 5 6
             1 get null 7 8",
        );
        let r = report(&seen);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert_eq!(r.witness, vec![0, 1, 2], "{r:?}");
        let unseen = history(
            "0 put \"1\" 1 -
             1 get null 7 8",
        );
        assert_eq!(report(&unseen).verdict, Verdict::Linearizable);
    }

    #[test]
    fn repeated_values_go_to_the_search() {
        // Absent is read, and a delete writes it again: the fast path cannot tell which.
        let ops = pair(
            &parse_jsonl(&history(
                "0 put \"1\" 1 2\n0 delete null 3 4\n1 get null 5 6",
            ))
            .unwrap(),
        )
        .unwrap();
        let compiled = crate::model::Compiled::new(&ops).unwrap();
        let key_ops: Vec<_> = compiled
            .ops
            .iter()
            .map(|o| crate::linearizability::KeyOp {
                source: o.source,
                step: o.step,
                call: o.call,
                ret: o.ret,
            })
            .collect();
        assert!(matches!(
            super::check(&key_ops, &compiled.keys[0].values),
            super::Outcome::Undecided(_)
        ));
        assert_eq!(
            check_linearizable(&ops, &Limits::default()).verdict,
            Verdict::Linearizable
        );
    }

    #[test]
    fn appends_with_unique_suffixes_are_chains_too() {
        let ok = history(
            "0 put \"a\" 1 2
             0 append \"b,\" 3 4
             1 append \"c,\" 3 6
             2 get \"ab,\" 1 5
             2 get \"ab,c,\" 7 8",
        );
        let r = report(&ok);
        assert_eq!(r.verdict, Verdict::Linearizable, "{r:?}");
        // Reading "a" again after "ab,c," was read: the appends had extended it.
        let stale = ok.clone() + "\n" + &history("3 get \"a\" 9 10");
        let r = report(&stale);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert!(!r.witness.is_empty(), "decided by the fast path: {r:?}");
        // Two reads disagree on what "c," extended: the search decides.
        let r = report(&(ok.clone() + "\n" + &history("3 get \"ac,\" 9 10")));
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert!(r.explanation.is_none(), "{r:?}");
        // A value no sequence of writes and appends makes.
        let r = report(&(ok + "\n" + &history("3 get \"ca,\" 9 10")));
        assert_eq!(
            r.explanation.as_deref(),
            Some("#5 (get x → ca,) read a value no write wrote")
        );
    }
}
