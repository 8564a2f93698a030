//! Linearizability checking: the Wing–Gong search with Lowe's just-in-time linearization and
//! memoization, one key at a time.
//!
//! ## The algorithm
//!
//! 1. Split the operations by key; keys are independent registers, so the history is
//!    linearizable iff every key's sub-history is (P-compositionality, Horn & Kroening 2015).
//! 2. Simplify operations with unknown outcome (`info`), which would otherwise stay pending
//!    forever and multiply the search (see `prepare_key`): one whose written value nobody
//!    observes is dropped (it may never have happened, and happening would help no one); one
//!    whose unique written value an `ok` operation observes must have taken effect before
//!    that observer returned, so it gets that return time. On keys with appends a value is
//!    also seen as the *base* of the states built on it (see `simplify_with_appends`).
//! 3. For one key, make a list of *call* and *return* entries sorted by time (an operation with
//!    unknown outcome returns at +∞). Ties put calls first, which treats operations that
//!    touch at one instant as concurrent.
//! 4. Walk the list. At a call entry, try to linearize its operation *now*: if it is legal in
//!    the current state and the pair (set of linearized operations, new state) was never seen
//!    before, remove its call and return from the list, push it on a stack and restart from
//!    the head. Otherwise move on to the next entry.
//! 5. At a return entry, the operation it closes was not linearized before it returned, so
//!    the current prefix cannot be extended: pop the last linearized operation, put it back
//!    into the list, restore the state, and continue after its call entry (backtracking).
//!    If the stack is empty, the history is not linearizable.
//! 6. Reaching the return entry of an operation with unknown outcome means every operation
//!    that did complete is linearized; the rest may never have happened: linearizable.
//!
//! The memo of (linearized set, state) pairs is what makes this practical (Lowe 2017). A set is
//! stored as a fingerprint: two independent 64-bit Zobrist hashes of its operations with a
//! known return, kept incrementally (one picks the memo chain, the other is compared in it;
//! a false merge needs both to collide, about 2^-128 per pair, the trade TLC's fingerprints
//! make). States are interned values ([`crate::model`]), so a step compares integers. Operations with unknown outcome are kept apart, as a bitset compared by
//! *inclusion*: a configuration that linearized fewer of them, with everything else equal,
//! can do whatever one that linearized more can (they need never happen), so the latter is
//! not explored again (see `Memo`). The search stops with [`Verdict::Unknown`] when the memo
//! outgrows its memory bound or the caller cancels.
//!
//! References: Wing & Gong, *Testing and verifying concurrent objects* (1993); Lowe, *Testing
//! for linearizability* (2017); Porcupine (Athalye) and Knossos (Kingsbury).

use crate::history::Operation;
use crate::model::{apply, Compiled, Step, ValueId, Values, ABSENT};
use crate::unique;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The checker's answer for a whole history.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The search was stopped (time limit or memory bound) before it could decide.
    Unknown,
}

impl Verdict {
    /// Valid / invalid / unknown as one word each, for reports of any model.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Linearizable => "valid",
            Verdict::NotLinearizable => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A verdict with its explanation.
#[derive(Clone, Debug)]
pub struct LinearizabilityReport {
    pub verdict: Verdict,
    /// For a violation: the key whose sub-history has no linearization.
    pub key: Option<String>,
    /// For a violation: the longest prefix of operations (ids) that could be linearized.
    pub linearized: Vec<usize>,
    /// For a violation: the operation (id) that returned before it could be linearized after
    /// that prefix.
    pub stuck: Option<usize>,
    /// Why the verdict is unknown, or why the input cannot be checked.
    pub reason: Option<String>,
    /// For a violation decided by the unique-value fast path ([`crate::unique`]): the
    /// operations (ids) that show it, which violate linearizability on their own.
    pub witness: Vec<usize>,
    /// For such a violation: why, naming operations of `witness` as `#id (what it did)`.
    pub explanation: Option<String>,
    /// For every key found linearizable (all of them, for a valid history): one
    /// linearization, as the search or the fast path found it.
    pub linearization: Vec<KeyOrder>,
}

/// One linearization of a key's operations: the operations (ids) that took effect, in an
/// order that respects real time (an operation that returned before another was invoked comes
/// first) and the register's semantics (each operation's result is what the register gives
/// in that order, from absent). Operations with unknown outcome that need not have happened
/// are left out, and so are the expiries the checker adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOrder {
    pub key: Option<String>,
    pub ops: Vec<usize>,
}

impl KeyOrder {
    /// A linearization point for each operation of the order, within its interval: `(id,
    /// time)`, times non-decreasing along the order. Each point is the latest invocation so
    /// far, which is within every interval because the order respects real time (an operation
    /// invoked after `o` returned would have to come after `o`). Ids not among `operations`
    /// are skipped.
    pub fn points(&self, operations: &[Operation]) -> Vec<(usize, u64)> {
        let by_id: HashMap<usize, &Operation> = operations.iter().map(|o| (o.id, o)).collect();
        let mut at = 0u64;
        let mut points = Vec::with_capacity(self.ops.len());
        for id in &self.ops {
            let Some(op) = by_id.get(id) else {
                continue;
            };
            at = at.max(op.call);
            points.push((*id, at));
        }
        points
    }
}

impl LinearizabilityReport {
    fn valid() -> Self {
        LinearizabilityReport {
            verdict: Verdict::Linearizable,
            key: None,
            linearized: Vec::new(),
            stuck: None,
            reason: None,
            witness: Vec::new(),
            explanation: None,
            linearization: Vec::new(),
        }
    }

    /// A single key's valid report with its linearization (operations by source index; the
    /// caller names the key and maps them to ids).
    fn with_order(order: impl Iterator<Item = usize>) -> Self {
        LinearizabilityReport {
            linearization: vec![KeyOrder {
                key: None,
                ops: order.collect(),
            }],
            ..LinearizabilityReport::valid()
        }
    }

    fn unknown(reason: String) -> Self {
        LinearizabilityReport {
            verdict: Verdict::Unknown,
            reason: Some(reason),
            ..LinearizabilityReport::valid()
        }
    }
}

/// Limits on one check.
pub struct Limits<'a> {
    /// Bytes the memo of one key may use (approximately).
    pub memo_bytes_max: usize,
    /// Polled during the search; returning true stops it with [`Verdict::Unknown`].
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Default for Limits<'_> {
    fn default() -> Self {
        Limits {
            memo_bytes_max: 512 << 20,
            cancelled: &|| false,
        }
    }
}

/// Checks that `operations` (from [`crate::history::pair`]) are linearizable, key by key:
/// in O(n log n) on keys whose values identify their writes ([`crate::unique`]), by the search
/// on the others.
pub fn check_linearizable(operations: &[Operation], limits: &Limits) -> LinearizabilityReport {
    check_keys(operations, limits, true, true)
}

/// [`check_linearizable`] with the search on every key (no fast path): the baseline the fast
/// path is measured and cross-checked against.
pub fn check_linearizable_search(
    operations: &[Operation],
    limits: &Limits,
) -> LinearizabilityReport {
    check_keys(operations, limits, false, true)
}

/// The plain search: the memo compares configurations by equality (no subsumption of
/// operations with unknown outcome; see [`Memo`]) and operations with unknown outcome are
/// searched as recorded (no simplification; see `prepare_key`). The baseline the subsuming
/// memo and the simplifications are cross-checked against.
#[doc(hidden)]
pub fn check_linearizable_plain_memo(
    operations: &[Operation],
    limits: &Limits,
) -> LinearizabilityReport {
    check_keys(operations, limits, false, false)
}

fn check_keys(
    operations: &[Operation],
    limits: &Limits,
    fast: bool,
    subsume: bool,
) -> LinearizabilityReport {
    // Expiries the checker adds (see `crate::expiry`) follow the recorded operations; reports
    // name recorded operations only.
    // Lease operations name no key: they give the values attached to their lease the
    // windows those values' ends must fall in (see `crate::lease`), and leave.
    let operations = &crate::lease::resolve(operations);
    let recorded = operations.len();
    let operations = &crate::expiry::with_expiries(operations);
    let compiled = match Compiled::new(operations) {
        Ok(compiled) => compiled,
        Err(e) => return LinearizabilityReport::unknown(format!("cannot be checked: {e}")),
    };
    let mut by_key: Vec<Vec<KeyOp>> = vec![Vec::new(); compiled.keys.len()];
    for op in &compiled.ops {
        by_key[op.key as usize].push(KeyOp {
            source: op.source,
            step: op.step,
            call: op.call,
            ret: op.ret,
        });
    }
    let order = compiled.keys_by_name();
    let mut keys = compiled.keys;
    let mut unknown = None;
    let mut linearization = Vec::new();
    for key in order {
        let ops = std::mem::take(&mut by_key[key as usize]);
        let table = &mut keys[key as usize];
        let report = check_key(ops, &mut table.values, limits, fast, subsume);
        match report.verdict {
            Verdict::Linearizable => {
                let sources = report.linearization.into_iter().flat_map(|o| o.ops);
                linearization.push(KeyOrder {
                    key: table.name.clone(),
                    ops: sources
                        .filter(|s| *s < recorded)
                        .map(|s| operations[s].id)
                        .collect(),
                });
            }
            Verdict::NotLinearizable => {
                let id = |source: usize| (source < recorded).then(|| operations[source].id);
                return LinearizabilityReport {
                    key: table.name.clone(),
                    linearized: report.linearized.iter().filter_map(|s| id(*s)).collect(),
                    stuck: report.stuck.and_then(id),
                    witness: report.witness.iter().filter_map(|s| id(*s)).collect(),
                    explanation: report.explanation.as_ref().map(|text| {
                        // Placeholders `#<source>#` become `#id (what it did)`.
                        let mut out = String::new();
                        let mut parts = text.split('\u{1}');
                        out.push_str(parts.next().unwrap_or_default());
                        for (k, part) in parts.enumerate() {
                            if k % 2 == 0 {
                                let op = &operations[part.parse::<usize>().expect("a source")];
                                out += &format!("#{} ({})", op.id, crate::explain::describe(op));
                            } else {
                                out.push_str(part);
                            }
                        }
                        out
                    }),
                    linearization: Vec::new(),
                    ..report
                };
            }
            Verdict::Unknown => unknown = Some(report),
        }
    }
    let report = unknown.unwrap_or_else(LinearizabilityReport::valid);
    LinearizabilityReport {
        linearization,
        ..report
    }
}

/// One key's operation, compiled for the search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyOp {
    /// Index in the caller's slice.
    pub(crate) source: u32,
    pub(crate) step: Step,
    pub(crate) call: u64,
    /// `u64::MAX` when the outcome is unknown.
    pub(crate) ret: u64,
}

/// Compiles one key's operations and simplifies those with unknown outcome (step 2 of the
/// algorithm). Both simplifications preserve the verdict:
///
/// - An `info` operation that installs a value (put, delete, CAS) which no operation of the
///   key observes (reads or expects), and which does not expire, can be dropped, when the key has no appends: in any
///   linearization, removing it leaves every other operation legal, because until the next
///   installing operation nobody looks at the state it installed.
/// - An `info` operation that installs a value no other operation installs (and not absent),
///   observed by some `ok` operation, took effect, and before every observer: it gets the
///   earliest return time among its `ok` observers.
fn prepare_key(mut compiled: Vec<KeyOp>, values: &Values) -> Vec<KeyOp> {
    if compiled.iter().any(|op| matches!(op.step, Step::Append(_))) {
        simplify_with_appends(&mut compiled, values);
        return compiled;
    }
    // Per value id: the earliest return of an operation observing it (u64::MAX: observed
    // only by operations with unknown outcome), and how many operations install it.
    let mut observed: Vec<Option<u64>> = vec![None; values.len()];
    let mut installers: Vec<u32> = vec![0; values.len()];
    // A value with an expiry is observed by whoever later reads the key absent.
    let mut expiring = vec![false; values.len()];
    for op in &compiled {
        if let Step::ExpireIf(v) = op.step {
            expiring[v as usize] = true;
        }
    }
    for op in &compiled {
        if let Some(v) = op.step.observes() {
            let earliest = observed[v as usize].get_or_insert(u64::MAX);
            *earliest = (*earliest).min(op.ret);
        }
        if let Some(v) = op.step.installs() {
            installers[v as usize] += 1;
        }
    }
    compiled.retain_mut(|op| {
        let Some(v) = op.step.installs().filter(|_| op.ret == u64::MAX) else {
            return true;
        };
        let Some(earliest) = observed[v as usize] else {
            // Nobody observes it, unless it expires: its expiry makes the key absent.
            return expiring[v as usize];
        };
        if v != ABSENT && installers[v as usize] == 1 && earliest != u64::MAX && earliest >= op.call
        {
            op.ret = earliest;
        }
        true
    });
    compiled
}

/// The simplifications of [`prepare_key`] on a key with appends, where a value is seen not
/// only as itself but at the start of every state built on it: after an install of `v`, the
/// states until the next install are `v` followed by appended elements, and after an append of
/// `a` they all contain `a`. Keys with expiries (an expiry observes the state it compares) are
/// left as they are.
///
/// - **Unseen, dropped.** An `info` put or CAS of a non-empty `v` that no observed value starts
///   with, or an `info` append of a non-empty `a` that no observed value contains, had no
///   operation observing the state between it and the next install in any linearization, and
///   can be dropped (the states in that window shift, but only appends see them). Deletes are
///   kept (appends after them build states that do not show them). Byte matching may see a
///   value where it is not (a prefix of a longer number), which only keeps an operation.
/// - **Seen, placed.** An `info` install of a value `v` nothing else installs took effect
///   before an `ok` operation that observed a state built on `v`, and it gets the earliest
///   return of such an observer, as on keys without appends. Every state is its base (the
///   last installed value, or nothing after the key was absent) followed by appended
///   elements; a state is built on `v` when `v` is the only base that fits: the only installed
///   value it starts with such that the rest splits into appended elements, and the whole of
///   it does not split into elements. (Values are numbers, so `1` is a prefix of `12`: the
///   split is what tells `12,` built on `1` from `12` alone.)
///
/// On one hot key with appends in the mix, most writes of unknown outcome either never took
/// effect or were read soon after, and every one of them left in doubt doubled the
/// configurations the search could visit.
fn simplify_with_appends(compiled: &mut Vec<KeyOp>, values: &Values) {
    if compiled
        .iter()
        .any(|op| matches!(op.step, Step::ExpireIf(_)))
    {
        return;
    }
    let text = |v: ValueId| values.text(v).filter(|_| v != ABSENT);
    let mut seen: Vec<ValueId> = compiled
        .iter()
        .filter_map(|op| op.step.observes())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let seen_texts: Vec<&str> = seen.iter().filter_map(|v| text(*v)).collect();
    let earliest = earliest_observer_by_base(compiled, values);
    let mut installers: HashMap<ValueId, u32> = HashMap::new();
    for op in compiled.iter() {
        if let Some(v) = op.step.installs() {
            *installers.entry(v).or_default() += 1;
        }
    }
    compiled.retain_mut(|op| {
        if op.ret != u64::MAX {
            return true;
        }
        let unseen = |t: Option<&str>, within: fn(&str, &str) -> bool| {
            t.is_some_and(|t| !t.is_empty() && !seen_texts.iter().any(|s| within(s, t)))
        };
        match op.step {
            Step::Write(v) | Step::Cas { new: v, .. } if v != ABSENT => {
                if unseen(text(v), |s, t| s.starts_with(t)) {
                    return false;
                }
                if let Some(&at) = earliest.get(&v) {
                    if installers[&v] == 1 && at >= op.call {
                        op.ret = at;
                    }
                }
                true
            }
            Step::Append(a) => !unseen(text(a), |s, t| s.contains(t)),
            _ => true,
        }
    });
}

/// Per installed value `v`: the earliest return of an `ok` operation that observed a state
/// whose base can only be `v` (see [`simplify_with_appends`]).
fn earliest_observer_by_base(ops: &[KeyOp], values: &Values) -> HashMap<ValueId, u64> {
    let text = |v: ValueId| values.text(v).filter(|_| v != ABSENT);
    let mut installs: HashMap<&str, ValueId> = HashMap::new();
    let mut elements: HashMap<&str, ()> = HashMap::new();
    for op in ops {
        if let Step::Append(a) = op.step {
            elements.extend(text(a).map(|t| (t, ())));
        } else if let Some((v, t)) = op.step.installs().and_then(|v| text(v).map(|t| (v, t))) {
            installs.insert(t, v);
        }
    }
    if installs.contains_key("") || elements.contains_key("") {
        return HashMap::new(); // an empty base or element fits anywhere
    }
    let lengths = |texts: Vec<&str>| {
        let mut lengths: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        lengths
    };
    let install_lengths = lengths(installs.keys().copied().collect());
    let element_lengths = lengths(elements.keys().copied().collect());
    let mut base_of: HashMap<ValueId, Option<ValueId>> = HashMap::new();
    let mut earliest: HashMap<ValueId, u64> = HashMap::new();
    for op in ops.iter().filter(|op| op.ret != u64::MAX) {
        let Some(observed) = op.step.observes().filter(|v| *v != ABSENT) else {
            continue;
        };
        let base = *base_of.entry(observed).or_insert_with(|| {
            let s = text(observed)?;
            // tail[i]: s[i..] is a sequence of appended elements.
            let mut tail = vec![false; s.len() + 1];
            tail[s.len()] = true;
            for i in (0..s.len()).rev() {
                tail[i] = element_lengths.iter().any(|len| {
                    s.get(i..i + len)
                        .is_some_and(|e| elements.contains_key(e) && tail[i + len])
                });
            }
            let mut fitting = install_lengths
                .iter()
                .filter(|len| tail.get(**len).copied().unwrap_or(false))
                .filter_map(|len| s.get(..*len).and_then(|b| installs.get(b)));
            // The only base that fits, and not "absent, then only elements".
            match (fitting.next(), fitting.next()) {
                (Some(v), None) if !tail[0] => Some(*v),
                _ => None,
            }
        });
        if let Some(v) = base {
            let at = earliest.entry(v).or_insert(u64::MAX);
            *at = (*at).min(op.ret);
        }
    }
    earliest
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Index into the key's operation list.
    op: u32,
    is_call: bool,
    prev: u32,
    next: u32,
    /// For a call: the index of its return entry.
    partner: u32,
}

/// A doubly linked list of entries with a sentinel at index 0.
struct EntryList {
    entries: Vec<Entry>,
}

const NIL: u32 = u32::MAX;

impl EntryList {
    fn new(ops: &[KeyOp]) -> EntryList {
        let mut raw: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            raw.push((op.call, true, i as u32));
            raw.push((op.ret, false, i as u32));
        }
        // Calls before returns at equal times (concurrent), then by operation.
        raw.sort_unstable_by_key(|(time, is_call, op)| (*time, !*is_call, *op));
        // Expiries' calls go last among the calls between two returns: the real-time order
        // is the same, and the search tries the other operations first (an expiry that takes
        // effect is rarely what the next reads need).
        let is_expiry = |op: u32| matches!(ops[op as usize].step, Step::ExpireIf(_));
        let mut ordered = Vec::with_capacity(raw.len());
        let mut held = Vec::new();
        for item in raw {
            match item {
                (_, true, op) if is_expiry(op) => held.push(item),
                (_, false, _) => {
                    ordered.append(&mut held);
                    ordered.push(item);
                }
                _ => ordered.push(item),
            }
        }
        ordered.append(&mut held);
        let raw = ordered;
        let mut entries = Vec::with_capacity(raw.len() + 1);
        entries.push(Entry {
            op: NIL,
            is_call: false,
            prev: NIL,
            next: if raw.is_empty() { NIL } else { 1 },
            partner: NIL,
        });
        let mut return_of = vec![NIL; ops.len()];
        for (k, (_, is_call, op)) in raw.iter().enumerate() {
            let index = k as u32 + 1;
            entries.push(Entry {
                op: *op,
                is_call: *is_call,
                prev: index - 1,
                next: if k + 1 == raw.len() { NIL } else { index + 1 },
                partner: NIL,
            });
            if !is_call {
                return_of[*op as usize] = index;
            }
        }
        for entry in entries.iter_mut().skip(1) {
            if entry.is_call {
                entry.partner = return_of[entry.op as usize];
            }
        }
        EntryList { entries }
    }

    fn get(&self, index: u32) -> Entry {
        self.entries[index as usize]
    }

    fn unlink(&mut self, index: u32) {
        let Entry { prev, next, .. } = self.get(index);
        self.entries[prev as usize].next = next;
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    fn relink(&mut self, index: u32) {
        let Entry { prev, next, .. } = self.get(index);
        self.entries[prev as usize].next = index;
        if next != NIL {
            self.entries[next as usize].prev = index;
        }
    }

    /// Removes a call and its return; they are re-inserted in reverse order by `unlift`.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        self.unlink(self.get(call).partner);
    }

    fn unlift(&mut self, call: u32) {
        self.relink(self.get(call).partner);
        self.relink(call);
    }
}

/// Fixed pseudo-random 64-bit keys for Zobrist hashing (SplitMix64 of the input).
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hasher for keys that are already uniformly distributed 64-bit hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type PassThroughMap<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// The set of linearized operations, as the memo needs it: two independent Zobrist hashes of
/// the linearized operations with a known return (operations `0..finite`, sorted by call
/// time), and a bitset of those with unknown outcome (the rest), which the memo compares by
/// inclusion.
struct LinearizedSet {
    /// Operations `0..finite` have a known return; the rest may never have happened.
    finite: u32,
    /// The linearized operations with unknown outcome, as a bitset over `op - finite`.
    unknown: Vec<u64>,
    /// Zobrist hash of the linearized operations with a known return only: configurations
    /// that differ only in operations with unknown outcome share a memo chain, where
    /// [`Memo::insert`] compares them by inclusion.
    hash: u64,
    /// A second Zobrist hash of the same operations, from independent keys: the
    /// configuration's fingerprint in the memo (see [`Memo`]).
    fingerprint: u64,
}

/// The key of operation `op` in [`LinearizedSet::fingerprint`].
fn fingerprint_key(op: u32) -> u64 {
    mix64(u64::from(op) ^ 0xd6e8_feb8_6659_fd93)
}

impl LinearizedSet {
    fn new(len: usize, finite: usize) -> Self {
        LinearizedSet {
            finite: finite as u32,
            unknown: vec![0; (len - finite).div_ceil(64)],
            hash: 0,
            fingerprint: 0,
        }
    }

    /// Adds `op`, or removes it if present: both hashes are exclusive-ors.
    fn toggle(&mut self, op: u32) {
        if op < self.finite {
            self.hash ^= mix64(u64::from(op));
            self.fingerprint ^= fingerprint_key(op);
        } else {
            let u = op - self.finite;
            self.unknown[u as usize / 64] ^= 1 << (u % 64);
        }
    }

    fn insert(&mut self, op: u32) {
        self.toggle(op);
    }

    fn remove(&mut self, op: u32) {
        self.toggle(op);
    }
}

/// One memoized configuration: its state, the fingerprint of its linearized operations with
/// a known return, and the bitset of its linearized operations with unknown outcome in
/// `unknown_arena` at `start_unknown` (the key's fixed number of words).
struct MemoEntry {
    next: u32,
    state: ValueId,
    fingerprint: u64,
    start_unknown: u32,
}

/// The memo of (linearized set, state) configurations already explored.
///
/// **Subsumption.** An operation with unknown outcome never has to take effect (its return
/// is at +∞, nothing waits for it). So a configuration *A* with the same state and the same
/// linearized operations of known return as a configuration *B*, but only a subset of *B*'s
/// operations of unknown outcome, can do everything *B* can: any continuation of *B* is one
/// of *A* that simply never linearizes the extra operations. Once *A* is explored, *B* need
/// not be. Without this, every subset of pending `info` writes a search happened to
/// linearize was a configuration of its own, and one hot key with a dozen indeterminate
/// writes outgrew the memo's memory bound (the sim's hot-key shape ended "unknown").
struct Memo {
    heads: PassThroughMap<u32>,
    entries: Vec<MemoEntry>,
    unknown_arena: Vec<u64>,
    /// Compare operations with unknown outcome by inclusion (true) or by equality (false,
    /// the plain memo; kept for cross-checking the two).
    subsume: bool,
}

impl Memo {
    fn new(subsume: bool) -> Self {
        Memo {
            heads: PassThroughMap::default(),
            entries: Vec::new(),
            unknown_arena: Vec::new(),
            subsume,
        }
    }

    fn bytes(&self) -> usize {
        self.heads.capacity() * 16
            + self.entries.capacity() * std::mem::size_of::<MemoEntry>()
            + self.unknown_arena.capacity() * 8
    }

    /// Records (set, state); false if it, or a configuration that subsumes it, was already
    /// present.
    fn insert(&mut self, set: &LinearizedSet, state: ValueId) -> bool {
        let words = set.unknown.len();
        let key = set.hash ^ mix64(u64::from(state) ^ 0x5bd1_e995);
        let head = self.heads.get(&key).copied().unwrap_or(NIL);
        let mut cursor = head;
        while cursor != NIL {
            let e = &self.entries[cursor as usize];
            if e.state == state && e.fingerprint == set.fingerprint {
                let stored = &self.unknown_arena[e.start_unknown as usize..][..words];
                let covered = if self.subsume {
                    stored.iter().zip(&set.unknown).all(|(a, b)| a & !b == 0)
                } else {
                    stored == &set.unknown[..]
                };
                if covered {
                    return false;
                }
            }
            cursor = e.next;
        }
        let index = self.entries.len() as u32;
        self.entries.push(MemoEntry {
            next: head,
            state,
            fingerprint: set.fingerprint,
            start_unknown: self.unknown_arena.len() as u32,
        });
        self.unknown_arena.extend_from_slice(&set.unknown);
        self.heads.insert(key, index);
        true
    }
}

/// Checks one key; operations are reported by their `source` index.
fn check_key(
    ops: Vec<KeyOp>,
    values: &mut Values,
    limits: &Limits,
    fast: bool,
    subsume: bool,
) -> LinearizabilityReport {
    if fast {
        match crate::unique::check(&ops, values) {
            unique::Outcome::Linearizable { order } => {
                return LinearizabilityReport::with_order(
                    order.iter().map(|i| ops[*i as usize].source as usize),
                )
            }
            unique::Outcome::NotLinearizable { witness, why } => {
                // Operations in the explanation travel as `\u{1}<source>\u{1}` until
                // `check_keys` can name them by id.
                let mut text = String::new();
                for part in why {
                    match part {
                        unique::Part::Text(t) => text.push_str(&t),
                        unique::Part::Op(i) => {
                            text += &format!("\u{1}{}\u{1}", ops[i as usize].source)
                        }
                    }
                }
                return LinearizabilityReport {
                    verdict: Verdict::NotLinearizable,
                    witness: witness
                        .iter()
                        .map(|i| ops[*i as usize].source as usize)
                        .collect(),
                    explanation: Some(text),
                    ..LinearizabilityReport::valid()
                };
            }
            unique::Outcome::Undecided(_) => {}
        }
    }
    // The plain baseline searches the history as recorded, so that the differential test
    // checks the simplifications of operations with unknown outcome too.
    let mut ops = if subsume {
        prepare_key(ops, values)
    } else {
        ops
    };
    // Index operations by call time so that the frontier of a linearized set advances.
    ops.sort_unstable_by_key(|op| (op.ret == u64::MAX, op.call, op.source));
    match search(&ops, values, limits, subsume) {
        Outcome::Linearizable(order) => LinearizabilityReport::with_order(
            order.iter().map(|i| ops[*i as usize].source as usize),
        ),
        Outcome::Stuck { prefix, stuck } => LinearizabilityReport {
            verdict: Verdict::NotLinearizable,
            key: None,
            linearized: prefix
                .iter()
                .map(|i| ops[*i as usize].source as usize)
                .collect(),
            stuck: Some(ops[stuck as usize].source as usize),
            reason: None,
            witness: Vec::new(),
            explanation: None,
            linearization: Vec::new(),
        },
        Outcome::Stopped(reason) => LinearizabilityReport::unknown(reason.to_string()),
    }
}

enum Outcome {
    /// With the linearized operations in order (indices into the key's operations).
    Linearizable(Vec<u32>),
    /// The longest linearizable prefix found and the operation that returned after it.
    Stuck {
        prefix: Vec<u32>,
        stuck: u32,
    },
    Stopped(&'static str),
}

/// Which expiries may be linearized at once, without trying the alternatives (see
/// [`search`]): `ExpireIf(v)` once the only operation that installs `v` has taken effect and
/// the key holds something else, so that the expiry is a no-op now and forever after.
struct DeadExpiries {
    /// Per value: how many operations install it (only values installed once qualify).
    installers: Vec<u32>,
    /// Per value: whether its (single) installer is linearized on the current path.
    installed: Vec<bool>,
    /// Off for keys without expiries (so that their search pays nothing for it, not even the
    /// scan in [`DeadExpiries::first_callable`]) and for keys with appends, whose values are
    /// built during the search.
    enabled: bool,
}

impl DeadExpiries {
    fn new(ops: &[KeyOp], values: &Values) -> Self {
        let mut installers = vec![0u32; values.len()];
        for op in ops {
            if let Some(v) = op.step.installs() {
                installers[v as usize] += 1;
            }
        }
        DeadExpiries {
            installed: vec![false; values.len()],
            installers,
            enabled: ops.iter().any(|op| matches!(op.step, Step::ExpireIf(_)))
                && !ops.iter().any(|op| matches!(op.step, Step::Append(_))),
        }
    }

    fn is_dead(&self, op: &KeyOp, state: ValueId) -> bool {
        match op.step {
            Step::ExpireIf(v) if self.enabled && v != ABSENT && v != state => {
                self.installers[v as usize] == 1 && self.installed[v as usize]
            }
            _ => false,
        }
    }

    /// An expiry of a value whose only installer has not taken effect yet: it expires that
    /// write's value, so it cannot come before the write.
    fn is_early(&self, step: Step) -> bool {
        match step {
            Step::ExpireIf(v) if self.enabled && v != ABSENT => {
                self.installers[v as usize] == 1 && !self.installed[v as usize]
            }
            _ => false,
        }
    }

    /// Where a new level of the search starts: at a dead expiry among the calls before the
    /// first return, which is forced (no alternatives), or else at the head of the list.
    fn first_callable(&self, list: &EntryList, ops: &[KeyOp], state: ValueId) -> u32 {
        let head = list.get(0).next;
        if !self.enabled {
            return head;
        }
        let mut cursor = head;
        while cursor != NIL {
            let entry = list.get(cursor);
            if !entry.is_call {
                break;
            }
            if self.is_dead(&ops[entry.op as usize], state) {
                return cursor;
            }
            cursor = entry.next;
        }
        head
    }

    fn mark(&mut self, step: Step, installed: bool) {
        if let Some(v) = step.installs().filter(|_| self.enabled) {
            self.installed[v as usize] = installed;
        }
    }
}

/// The search of Wing and Gong as improved by Lowe: walk the history's calls and returns in
/// time order, linearize a call whose operation is legal in the current state (lifting it out
/// of the list), backtrack at a return whose call is not yet linearized, and memoize the
/// (linearized set, state) configurations already explored.
///
/// One refinement keeps histories with expiring keys tractable: an expiry of a value that was
/// installed once and has since been replaced is a no-op wherever it goes, so putting it at
/// the first point its call allows loses no linearization (moving a no-op earlier only frees
/// the operations that must follow it), and an expiry of a value installed once waits for
/// that install (it expires that write's value). Such a *forced* step is taken without trying the
/// alternatives beside it, and when the search backtracks over it, it backtracks over the
/// choice before it too. Without it, every combination of pending no-op expiries is a
/// configuration of its own, and one hot key with a time to live on its writes did not finish.
fn search(ops: &[KeyOp], values: &mut Values, limits: &Limits, subsume: bool) -> Outcome {
    let mut list = EntryList::new(ops);
    let finite = ops.iter().take_while(|op| op.ret != u64::MAX).count();
    let mut set = LinearizedSet::new(ops.len(), finite);
    let mut memo = Memo::new(subsume);
    let mut dead = DeadExpiries::new(ops, values);
    let mut state = ABSENT;
    // The stack of linearized calls: (call entry, state before it, forced, the pass of the
    // level it was taken at).
    let mut stack: Vec<(u32, ValueId, bool, bool)> = Vec::new();
    // On keys with expiries, each level tries the operations of known return first and those
    // of unknown outcome in a second pass: configurations reached without an `info` write
    // then cover (in the memo) those reached with it and its expiry, which need not be
    // explored again. (Elsewhere the one pass in time order decides sooner.)
    let two_passes = dead.enabled;
    let mut second_pass = false;
    // The longest prefix seen stuck, kept incrementally: `best[..common]` equals the bottom
    // of the current stack, so recording a new best copies only what changed since.
    let mut best: Vec<u32> = Vec::new();
    let mut best_stuck: Option<u32> = None;
    let mut common = 0usize;
    let mut cursor = list.get(0).next;
    let mut iterations: u64 = 0;
    while cursor != NIL {
        iterations += 1;
        if iterations.is_multiple_of(1 << 14) {
            if (limits.cancelled)() {
                return Outcome::Stopped("cancelled (time limit)");
            }
            if memo.bytes() > limits.memo_bytes_max {
                return Outcome::Stopped("the memo outgrew its memory bound");
            }
        }
        let entry = list.get(cursor);
        let mut backtrack = false;
        if entry.is_call {
            let step = ops[entry.op as usize].step;
            let unknown = ops[entry.op as usize].ret == u64::MAX;
            let forced = dead.is_dead(&ops[entry.op as usize], state);
            if forced && unknown {
                // A dead expiry of unknown outcome (an `info` write's) need not happen and
                // would change nothing: it leaves the list for this subtree but stays out of
                // the linearized set, so the configuration is the one it was taken in (which
                // the memo holds and this level goes on exploring). Counting it as linearized
                // made the memo find that configuration covering itself, and backtracking
                // over a forced step then dropped alternatives not yet tried: a hot key with
                // expiring puts was declared not linearizable.
                stack.push((cursor, state, true, second_pass));
                list.lift(cursor);
                cursor = dead.first_callable(&list, ops, state);
                second_pass = false;
                continue;
            }
            if two_passes && !forced && unknown != second_pass {
                cursor = entry.next;
                continue;
            }
            let legal = if dead.is_early(step) {
                None
            } else {
                apply(state, step, values)
            };
            if let Some(next) = legal {
                set.insert(entry.op);
                if memo.insert(&set, next) {
                    stack.push((cursor, state, forced, second_pass));
                    second_pass = false;
                    dead.mark(step, true);
                    state = next;
                    list.lift(cursor);
                    cursor = dead.first_callable(&list, ops, state);
                    continue;
                }
                set.remove(entry.op);
            }
            if !forced {
                cursor = entry.next;
                continue;
            }
            // An explored forced step: every alternative at this level fails too.
            backtrack = true;
        }
        if !backtrack {
            if ops[entry.op as usize].ret == u64::MAX {
                // Only operations with unknown outcome remain; they need not have happened.
                return Outcome::Linearizable(linearized(&stack, &list));
            }
            if two_passes && !second_pass {
                second_pass = true;
                cursor = list.get(0).next;
                continue;
            }
            if best_stuck.is_none() || stack.len() > best.len() {
                best.truncate(common);
                best.extend(stack[common..].iter().map(|(c, ..)| list.get(*c).op));
                common = stack.len();
                best_stuck = Some(entry.op);
            }
        }
        // Undo linearized calls until one whose alternatives are still to try.
        loop {
            let Some((call, previous, forced, pass)) = stack.pop() else {
                let stuck = best_stuck.unwrap_or(entry.op);
                return Outcome::Stuck {
                    prefix: best,
                    stuck,
                };
            };
            common = common.min(stack.len());
            let op = list.get(call).op;
            if !(forced && ops[op as usize].ret == u64::MAX) {
                set.remove(op); // Dead expiries of unknown outcome were never added.
            }
            dead.mark(ops[op as usize].step, false);
            state = previous;
            second_pass = pass;
            list.unlift(call);
            cursor = list.get(call).next;
            if !forced {
                break;
            }
        }
    }
    Outcome::Linearizable(linearized(&stack, &list))
}

/// The operations linearized on the search's stack, bottom first: the linearization found.
fn linearized(stack: &[(u32, ValueId, bool, bool)], list: &EntryList) -> Vec<u32> {
    stack.iter().map(|(call, ..)| list.get(*call).op).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair, parse_jsonl};

    fn verdict(text: &str) -> Verdict {
        let ops = pair(&parse_jsonl(text).unwrap()).unwrap();
        check_linearizable(&ops, &Limits::default()).verdict
    }

    #[test]
    fn a_read_of_the_latest_write_is_linearizable() {
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"ok","f":"put","key":"x","value":"1"}
{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"1"}"#;
        assert_eq!(verdict(h), Verdict::Linearizable);
    }

    /// From `quorate sim --protocol raft --workload txn --ttl 100ms` seed 100084 (3 nodes, one
    /// hot key, classic faults), shrunk: the expiry of the `info` write of 133 was forced as
    /// a dead no-op, the memo found the configuration covered by the one it was taken in (still
    /// being explored), and the search backtracked over that configuration's alternatives. Linearizable: 133 takes effect at 8.99 s,
    /// the CAS right after.
    #[test]
    fn the_expiry_of_a_write_with_unknown_outcome_is_never_forced() {
        let h = r#"{"process":2,"type":"invoke","f":"cas","key":"k0","value":[null,"8"],"time":8650126}
{"process":7,"type":"invoke","f":"put_ttl","key":"k0","value":["17",100,7564],"time":910966698}
{"process":7,"type":"ok","f":"put_ttl","key":"k0","value":["17",100,7564],"time":929338993}
{"process":7,"type":"invoke","f":"put_ttl","key":"k0","value":["20",100,7568],"time":944103943}
{"process":7,"type":"ok","f":"put_ttl","key":"k0","value":["20",100,7568],"time":968901815}
{"process":2,"type":"ok","f":"cas","key":"k0","value":[null,"8"],"time":1277842336}
{"process":8,"type":"invoke","f":"put_ttl","key":"k0","value":["34",100,7607],"time":1334270968}
{"process":11,"type":"invoke","f":"put_ttl","key":"k0","value":["36",100,7609],"time":1356511844}
{"process":8,"type":"ok","f":"put_ttl","key":"k0","value":["34",100,7607],"time":1385316380}
{"process":1,"type":"invoke","f":"cas","key":"k0","value":[null,"64"],"time":3487696368}
{"process":1,"type":"ok","f":"cas","key":"k0","value":[null,"64"],"time":3506659818}
{"process":11,"type":"ok","f":"put_ttl","key":"k0","value":["36",100,7609],"time":3778871344}
{"process":1,"type":"invoke","f":"put_ttl","key":"k0","value":["121",100,8119],"time":6452849123}
{"process":1,"type":"ok","f":"put_ttl","key":"k0","value":["121",100,8119],"time":6488365858}
{"process":13,"type":"invoke","f":"put_ttl","key":"k0","value":["133",100,8156],"time":6826750547}
{"process":16,"type":"invoke","f":"cas","key":"k0","value":["133","151"],"time":8991294855}
{"process":5,"type":"invoke","f":"put_ttl","key":"k0","value":["153",100,8377],"time":9033196699}
{"process":15,"type":"invoke","f":"put_ttl","key":"k0","value":["157",100,8425],"time":9519290552}
{"process":15,"type":"ok","f":"put_ttl","key":"k0","value":["157",100,8425],"time":9540546585}
{"process":11,"type":"invoke","f":"put_ttl","key":"k0","value":["161",100,8430],"time":9571753531}
{"process":11,"type":"ok","f":"put_ttl","key":"k0","value":["161",100,8430],"time":9585344481}
{"process":6,"type":"invoke","f":"cas","key":"k0","value":["161","165"],"time":9611069762}
{"process":17,"type":"invoke","f":"put_ttl","key":"k0","value":["166",100,8435],"time":9615427925}
{"process":6,"type":"ok","f":"cas","key":"k0","value":["161","165"],"time":9714638656}
{"process":5,"type":"ok","f":"put_ttl","key":"k0","value":["153",100,8377],"time":9935217506}
{"process":17,"type":"ok","f":"put_ttl","key":"k0","value":["166",100,8435],"time":10043236548}
{"process":14,"type":"invoke","f":"put_ttl","key":"k0","value":["180",100,8486],"time":10127636985}
{"process":14,"type":"ok","f":"put_ttl","key":"k0","value":["180",100,8486],"time":10148062751}
{"process":16,"type":"ok","f":"cas","key":"k0","value":["133","151"],"time":10198590968}"#;
        assert_eq!(verdict(h), Verdict::Linearizable);
        let ops = pair(&parse_jsonl(h).unwrap()).unwrap();
        let plain = check_linearizable_plain_memo(&ops, &Limits::default());
        assert_eq!(plain.verdict, Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_is_not() {
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"ok","f":"put","key":"x","value":"1"}
{"process":0,"type":"invoke","f":"put","key":"x","value":"2"}
{"process":0,"type":"ok","f":"put","key":"x","value":"2"}
{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"1"}"#;
        assert_eq!(verdict(h), Verdict::NotLinearizable);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"1"}
{"process":0,"type":"ok","f":"put","key":"x","value":"1"}"#;
        assert_eq!(verdict(h), Verdict::Linearizable);
    }

    #[test]
    fn new_old_inversion_is_caught() {
        // Two sequential reads during one write: the first sees the new value, the second
        // the old one. Each alone is fine; together they are not.
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"ok","f":"put","key":"x","value":"1"}
{"process":0,"type":"invoke","f":"put","key":"x","value":"2"}
{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"2"}
{"process":2,"type":"invoke","f":"get","key":"x"}
{"process":2,"type":"ok","f":"get","key":"x","value":"1"}
{"process":0,"type":"ok","f":"put","key":"x","value":"2"}"#;
        assert_eq!(verdict(h), Verdict::NotLinearizable);
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let happened = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"info","f":"put","key":"x","value":"1"}
{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"1"}"#;
        assert_eq!(verdict(happened), Verdict::Linearizable);
        let never = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"info","f":"put","key":"x","value":"1"}
{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":null}"#;
        assert_eq!(verdict(never), Verdict::Linearizable);
        // But it cannot take effect before it was invoked.
        let early = r#"{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"1"}
{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"info","f":"put","key":"x","value":"1"}"#;
        assert_eq!(verdict(early), Verdict::NotLinearizable);
    }

    #[test]
    fn an_unknown_write_that_was_read_took_effect_before_its_reader_returned() {
        // The info put of 2 was read, so it happened before t=4; the ok put of 3 completed
        // after it was read, and the last read at t=8 must not see 2 again.
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"2","time":1}
{"process":1,"type":"invoke","f":"get","key":"x","time":2}
{"process":1,"type":"ok","f":"get","key":"x","value":"2","time":4}
{"process":2,"type":"invoke","f":"put","key":"x","value":"3","time":5}
{"process":2,"type":"ok","f":"put","key":"x","value":"3","time":6}
{"process":3,"type":"invoke","f":"get","key":"x","time":7}
{"process":3,"type":"ok","f":"get","key":"x","value":"2","time":8}
{"process":0,"type":"info","f":"put","key":"x","value":"2","time":9}"#;
        assert_eq!(verdict(h), Verdict::NotLinearizable);
        let fine = h.replace(r#""value":"2","time":8"#, r#""value":"3","time":8"#);
        assert_eq!(verdict(&fine), Verdict::Linearizable);
    }

    #[test]
    fn appends_and_cas_follow_the_register_model() {
        let h = r#"{"process":0,"type":"invoke","f":"append","key":"x","value":"a"}
{"process":1,"type":"invoke","f":"append","key":"x","value":"b"}
{"process":0,"type":"ok","f":"append","key":"x","value":"a"}
{"process":1,"type":"ok","f":"append","key":"x","value":"b"}
{"process":2,"type":"invoke","f":"cas","key":"x","value":["ba","c"]}
{"process":2,"type":"ok","f":"cas","key":"x","value":["ba","c"]}
{"process":2,"type":"invoke","f":"get","key":"x"}
{"process":2,"type":"ok","f":"get","key":"x","value":"c"}"#;
        assert_eq!(verdict(h), Verdict::Linearizable);
        let lost_append = h.replace("[\"ba\",\"c\"]", "[\"a\",\"c\"]");
        assert_eq!(verdict(&lost_append), Verdict::NotLinearizable);
    }

    #[test]
    fn keys_are_checked_independently_and_the_violation_is_explained() {
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":0,"type":"ok","f":"put","key":"x","value":"1"}
{"process":0,"type":"invoke","f":"put","key":"y","value":"1"}
{"process":0,"type":"ok","f":"put","key":"y","value":"1"}
{"process":1,"type":"invoke","f":"get","key":"y"}
{"process":1,"type":"ok","f":"get","key":"y","value":null}"#;
        let ops = pair(&parse_jsonl(h).unwrap()).unwrap();
        let report = check_linearizable_search(&ops, &Limits::default());
        assert_eq!(report.verdict, Verdict::NotLinearizable);
        assert_eq!(report.key.as_deref(), Some("y"));
        assert_eq!(report.linearized, vec![1]);
        assert_eq!(report.stuck, Some(2));
        // The fast path (unique values) names the same key and the two operations.
        let report = check_linearizable(&ops, &Limits::default());
        assert_eq!(report.key.as_deref(), Some("y"));
        assert_eq!(report.witness, vec![1, 2]);
    }

    #[test]
    fn cancellation_gives_unknown() {
        let mut text = String::new();
        for p in 0..40 {
            text += &format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"append\",\"key\":\"x\",\"value\":\"{p}\"}}\n");
        }
        for p in 0..40 {
            text += &format!("{{\"process\":{p},\"type\":\"ok\",\"f\":\"append\",\"key\":\"x\",\"value\":\"{p}\"}}\n");
        }
        text += "{\"process\":99,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\"}\n{\"process\":99,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":\"nope\"}\n";
        let ops = pair(&parse_jsonl(&text).unwrap()).unwrap();
        let limits = Limits {
            memo_bytes_max: usize::MAX,
            cancelled: &|| true,
        };
        assert_eq!(
            check_linearizable_search(&ops, &limits).verdict,
            Verdict::Unknown
        );
        // No sequence of appends makes "nope": the fast path needs no search to say so.
        assert_eq!(
            check_linearizable(&ops, &limits).verdict,
            Verdict::NotLinearizable
        );
    }

    /// A random execution of one register by a few processes: each operation takes effect
    /// at a random instant inside its interval (or, with unknown outcome, maybe never), its
    /// result is what the register held then; half the cases then get one read's value
    /// changed, which usually makes them non-linearizable. Values repeat, so every case goes
    /// to the search.
    /// A random small history of one key, from a real register; some with one read made
    /// wrong. `unique`: every write a fresh number (appends `N,` as the simulator writes
    /// them, or `N`), else values 1 to 3, repeated.
    fn random_register_history(rng: &mut u64, unique: bool) -> String {
        let mut next = || {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng
        };
        struct Planned {
            process: u64,
            call: u64,
            ret: u64,
            effect: Option<u64>,
            f: &'static str,
            arg: String,
            info: bool,
            result: String,
        }
        let mut planned = Vec::new();
        let mut counter = 0;
        // Undelimited appends make states that several bases fit (`1` then `2`, or `12`).
        let delimiter = if next() % 2 == 0 { "," } else { "" };
        for lane in 0..3 + next() % 2 {
            // A process never issues again after an unknown outcome: it continues as another.
            let mut process = lane;
            let mut time = next() % 5;
            for _ in 0..1 + next() % 4 {
                let call = time;
                let ret = call + 1 + next() % 12;
                let info = next() % 4 == 0;
                let effect = (!info || next() % 2 == 0).then(|| call + next() % (ret - call + 1));
                let v = if unique {
                    counter += 1;
                    counter
                } else {
                    1 + next() % 3
                };
                let (f, arg) = match next() % 5 {
                    0 => ("get", "null".to_string()),
                    1 => ("put", format!("\"{v}\"")),
                    2 if unique => ("append", format!("\"{v}{delimiter}\"")),
                    2 => ("append", format!("\"{v}\"")),
                    3 => ("delete", "null".to_string()),
                    _ => {
                        let expected = if next() % 3 == 0 {
                            "null".to_string()
                        } else if unique {
                            format!("\"{}\"", 1 + next() % counter)
                        } else {
                            format!("\"{}\"", 1 + next() % 3)
                        };
                        ("cas", format!("[{expected},\"{v}\"]"))
                    }
                };
                planned.push(Planned {
                    process,
                    call: call * 2,
                    ret: ret * 2 + 1,
                    effect: effect.map(|e| e * 2 + 1),
                    f,
                    arg,
                    info,
                    result: String::new(),
                });
                time = ret + 1 + next() % 3;
                if info {
                    process += 10;
                }
            }
        }
        // Apply the effects in time order to a real register.
        let mut order: Vec<usize> = (0..planned.len())
            .filter(|i| planned[*i].effect.is_some())
            .collect();
        order.sort_by_key(|i| (planned[*i].effect, *i));
        let mut state: Option<String> = None;
        for i in order {
            let op = &mut planned[i];
            let value = |s: &str| s.trim_matches('"').to_string();
            op.result = match op.f {
                "get" => state
                    .as_ref()
                    .map_or("null".to_string(), |s| format!("\"{s}\"")),
                "put" => {
                    state = Some(value(&op.arg));
                    "ok".to_string()
                }
                "append" => {
                    state = Some(state.take().unwrap_or_default() + &value(&op.arg));
                    "ok".to_string()
                }
                "delete" => {
                    state = None;
                    "ok".to_string()
                }
                _ => {
                    let inner = &op.arg[1..op.arg.len() - 1];
                    let (expected, new) = inner.split_once(',').unwrap();
                    let expected = (expected != "null").then(|| value(expected));
                    if state == expected {
                        state = Some(value(new));
                        "ok".to_string()
                    } else {
                        "fail".to_string()
                    }
                }
            };
        }
        if next() % 2 == 0 {
            // With unique values, a read returns what another read returned (a stale or
            // future read), which only the order can refute.
            let reads: Vec<usize> = (0..planned.len())
                .filter(|i| {
                    let op = &planned[*i];
                    op.f == "get" && !op.info && op.effect.is_some()
                })
                .collect();
            let other = reads
                .iter()
                .map(|i| planned[*i].result.clone())
                .filter(|r| reads.first().is_some_and(|f| planned[*f].result != *r))
                .nth((next() % 2) as usize);
            if let Some(read) = reads.first().map(|i| &mut planned[*i]) {
                read.result = match other {
                    Some(other) if unique => other,
                    _ => format!("\"{}\"", 1 + next() % 4),
                };
            }
        }
        let mut events: Vec<(u64, String)> = Vec::new();
        for op in &planned {
            let head = format!(r#""process":{},"f":"{}","key":"k""#, op.process, op.f);
            let arg = if op.f == "get" { "null" } else { &op.arg };
            events.push((
                op.call,
                format!(
                    r#"{{{head},"type":"invoke","value":{arg},"time":{}}}"#,
                    op.call
                ),
            ));
            let (kind, value) = if op.info {
                ("info", arg.to_string())
            } else if op.f == "get" {
                ("ok", op.result.clone())
            } else if op.result == "fail" {
                ("fail", arg.to_string())
            } else {
                ("ok", arg.to_string())
            };
            events.push((
                op.ret,
                format!(
                    r#"{{{head},"type":"{kind}","value":{value},"time":{}}}"#,
                    op.ret
                ),
            ));
        }
        events.sort_by_key(|(time, _)| *time);
        events
            .into_iter()
            .map(|(_, line)| line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Subsumption (see `Memo`) and the simplifications of operations with unknown outcome
    /// (see `prepare_key`) must never change a verdict: on random small histories with
    /// repeated values, appends, deletes, CAS and operations of unknown outcome, the search
    /// and the plain search agree, on valid and invalid cases alike.
    #[test]
    fn subsuming_memo_agrees_with_the_plain_memo_on_random_histories() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let (mut valid, mut invalid) = (0, 0);
        for case in 0..4000 {
            let text = random_register_history(&mut rng, false);
            let ops = pair(&parse_jsonl(&text).unwrap()).unwrap();
            let subsuming = check_linearizable_search(&ops, &Limits::default()).verdict;
            let plain = check_linearizable_plain_memo(&ops, &Limits::default()).verdict;
            assert_eq!(subsuming, plain, "case {case}:\n{text}");
            match plain {
                Verdict::Linearizable => valid += 1,
                Verdict::NotLinearizable => invalid += 1,
                Verdict::Unknown => panic!("case {case} unknown"),
            }
        }
        assert!(
            valid > 1000 && invalid > 500,
            "{valid} valid, {invalid} invalid"
        );
    }

    /// The same with unique values and delimited appends, the shape of the simulator's
    /// histories, where the simplifications on keys with appends apply (see
    /// `simplify_with_appends`): some put values are prefixes of others and of states, so a
    /// base that is not unique is met too. Placing a write by any base that fits, or by a
    /// state made of elements alone, fails this at case 7,003 (it takes 20,000 cases).
    #[test]
    fn simplifications_with_appends_agree_with_the_plain_search() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let (mut valid, mut invalid) = (0, 0);
        for case in 0..20_000 {
            let text = random_register_history(&mut rng, true);
            let ops = pair(&parse_jsonl(&text).unwrap()).unwrap();
            let simplified = check_linearizable_search(&ops, &Limits::default()).verdict;
            let plain = check_linearizable_plain_memo(&ops, &Limits::default()).verdict;
            assert_eq!(simplified, plain, "case {case}:\n{text}");
            match plain {
                Verdict::Linearizable => valid += 1,
                Verdict::NotLinearizable => invalid += 1,
                Verdict::Unknown => panic!("case {case} unknown"),
            }
        }
        assert!(
            valid > 5000 && invalid > 1500,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn generated_histories_are_linearizable_until_a_stale_read_is_injected() {
        use crate::generate::{generate, inject_stale_read, GenConfig};
        for seed in 0..20 {
            let config = GenConfig {
                operations: 2000,
                keys: 3,
                processes: 8,
                seed,
                ..GenConfig::default()
            };
            let mut events = generate(&config);
            let ops = pair(&events).unwrap();
            let report = check_linearizable(&ops, &Limits::default());
            assert_eq!(report.verdict, Verdict::Linearizable, "seed {seed}");
            inject_stale_read(&mut events).expect("a read to make stale");
            let ops = pair(&events).unwrap();
            let report = check_linearizable(&ops, &Limits::default());
            assert_eq!(report.verdict, Verdict::NotLinearizable, "seed {seed}");
        }
    }

    /// Asserts that `report` carries, for every key of `ops`, a linearization: every completed
    /// operation exactly once, an order that respects real time, results that the register
    /// gives in that order from absent, and points within the intervals, in order.
    fn assert_witness(ops: &[Operation], report: &LinearizabilityReport, what: &str) {
        use crate::model::{apply, Step, Values, ABSENT};
        use std::collections::BTreeSet;
        assert_eq!(report.verdict, Verdict::Linearizable, "{what}");
        let keys: BTreeSet<Option<&str>> = ops.iter().map(|o| o.key.as_deref()).collect();
        let ordered: BTreeSet<Option<&str>> = report
            .linearization
            .iter()
            .map(|k| k.key.as_deref())
            .collect();
        assert_eq!(keys, ordered, "{what}: one order per key");
        for order in &report.linearization {
            let of_key: Vec<&Operation> = ops.iter().filter(|o| o.key == order.key).collect();
            let position: HashMap<usize, usize> = order
                .ops
                .iter()
                .enumerate()
                .map(|(k, id)| (*id, k))
                .collect();
            assert_eq!(
                position.len(),
                order.ops.len(),
                "{what}: no operation twice"
            );
            for op in &of_key {
                if op.ret.is_some() {
                    assert!(
                        position.contains_key(&op.id),
                        "{what}: completed {op} is missing"
                    );
                }
            }
            let op = |id: usize| {
                ops.iter()
                    .find(|o| o.id == id)
                    .expect("an operation of the history")
            };
            for (k, a) in order.ops.iter().enumerate() {
                assert_eq!(op(*a).key, order.key, "{what}: #{a} is of another key");
                for b in &order.ops[k + 1..] {
                    let (a, b) = (op(*a), op(*b));
                    assert!(
                        b.ret.is_none_or(|ret| ret >= a.call),
                        "{what}: {b} returned before {a} was invoked, yet comes after it"
                    );
                }
            }
            let mut values = Values::default();
            let mut state = ABSENT;
            for id in &order.ops {
                let step = Step::compile(&op(*id).value, &mut values).expect("compiles");
                state = apply(state, step, &mut values)
                    .unwrap_or_else(|| panic!("{what}: {} cannot happen here", op(*id)));
            }
            let points = order.points(ops);
            assert_eq!(points.len(), order.ops.len());
            let mut last = 0;
            for (id, at) in points {
                let o = op(id);
                assert!(
                    o.call <= at && o.ret.is_none_or(|ret| at <= ret),
                    "{what}: point of {o}"
                );
                assert!(at >= last, "{what}: points go forward");
                last = at;
            }
        }
    }

    #[test]
    fn valid_histories_come_with_one_linearization_per_key() {
        use crate::generate::{generate, GenConfig};
        for seed in 0..10 {
            let config = GenConfig {
                operations: 400,
                keys: 3,
                processes: 6,
                info_ppm: 50_000,
                seed,
                ..GenConfig::default()
            };
            let ops = pair(&generate(&config)).unwrap();
            // Unique values: the fast path decides, and orders.
            let fast = check_linearizable(&ops, &Limits::default());
            assert_witness(&ops, &fast, &format!("fast path, seed {seed}"));
            // The search finds its own.
            let search = check_linearizable_search(&ops, &Limits::default());
            assert_witness(&ops, &search, &format!("search, seed {seed}"));
        }
        // Repeated values and appends: the search decides (the fast path gives up), and the
        // appends' results must come out of the order.
        let h = r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1","time":1}
{"process":1,"type":"invoke","f":"append","key":"x","value":"b","time":2}
{"process":0,"type":"ok","f":"put","key":"x","value":"1","time":3}
{"process":0,"type":"invoke","f":"put","key":"x","value":"1","time":4}
{"process":1,"type":"ok","f":"append","key":"x","value":"b","time":5}
{"process":2,"type":"invoke","f":"get","key":"x","time":6}
{"process":0,"type":"ok","f":"put","key":"x","value":"1","time":7}
{"process":2,"type":"ok","f":"get","key":"x","value":"1b","time":8}
{"process":2,"type":"invoke","f":"get","key":"y","time":9}
{"process":2,"type":"ok","f":"get","key":"y","value":null,"time":10}"#;
        let ops = pair(&parse_jsonl(h).unwrap()).unwrap();
        let report = check_linearizable(&ops, &Limits::default());
        assert_witness(&ops, &report, "repeated values");
        let x = &report.linearization[0];
        assert_eq!(x.ops.len(), 4, "{x:?}");
        // An invalid history has no linearization to show.
        let stale = h.replace(r#""value":"1b","time":8"#, r#""value":"b","time":8"#);
        let ops = pair(&parse_jsonl(&stale).unwrap()).unwrap();
        let report = check_linearizable(&ops, &Limits::default());
        assert_eq!(report.verdict, Verdict::NotLinearizable);
        assert!(report.linearization.is_empty());
    }
}
