//! Linearizability checking: the Wing–Gong search with Lowe's just-in-time linearization and
//! memoization, one key at a time.
//!
//! ## The algorithm
//!
//! 1. Split the operations by key; keys are independent registers, so the history is
//!    linearizable iff every key's sub-history is (P-compositionality).
//! 2. For one key, make a list of *call* and *return* entries sorted by time (an operation with
//!    an unknown outcome returns at +∞). Ties put calls first, which treats operations that
//!    touch at one instant as concurrent.
//! 3. Walk the list. At a call entry, try to linearize its operation *now*: if it is legal in
//!    the current state and the pair (set of linearized operations, new state) was never seen
//!    before, remove its call and return from the list, push it on a stack and restart from
//!    the head. Otherwise move on to the next entry.
//! 4. At a return entry, the operation it closes was not linearized before it returned, so
//!    the current prefix cannot be extended: pop the last linearized operation, put it back
//!    into the list, restore the state, and continue after its call entry (backtracking).
//!    If the stack is empty, the history is not linearizable.
//! 5. Reaching the return entry of an operation with unknown outcome means every operation
//!    that did complete is linearized; the rest may never have happened: linearizable.
//!
//! The memo of (linearized set, state) pairs is what makes this practical (Lowe 2017); the set
//! is a bitset whose hash is maintained incrementally (Zobrist hashing). The search stops with
//! [`Verdict::Unknown`] when the memo outgrows its memory bound or the caller cancels.

use crate::history::Operation;
use crate::model::{step, RegisterState};
use std::collections::{BTreeMap, HashMap};

/// The checker's answer for a whole history.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The search was stopped (time limit or memory bound) before it could decide.
    Unknown,
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
    /// Why the verdict is unknown.
    pub reason: Option<String>,
}

/// Limits on one check.
pub struct Limits<'a> {
    /// Bytes the memo may use, across keys (approximately).
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

/// Checks that `operations` (from [`crate::history::pair`]) are linearizable, key by key.
pub fn check_linearizable(operations: &[Operation], limits: &Limits) -> LinearizabilityReport {
    let mut by_key: BTreeMap<Option<&str>, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut unknown = None;
    for (key, ops) in by_key {
        let report = check_key(&ops, limits);
        match report.verdict {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable => {
                return LinearizabilityReport {
                    key: key.map(str::to_string),
                    ..report
                }
            }
            Verdict::Unknown => unknown = Some(report),
        }
    }
    unknown.unwrap_or(LinearizabilityReport {
        verdict: Verdict::Linearizable,
        key: None,
        linearized: Vec::new(),
        stuck: None,
        reason: None,
    })
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Index into the key's operation list.
    op: usize,
    is_call: bool,
    time: u64,
    prev: usize,
    next: usize,
    /// For a call: the index of its return entry.
    partner: usize,
}

/// A doubly linked list of entries with a sentinel at index 0.
struct EntryList {
    entries: Vec<Entry>,
}

const NIL: usize = usize::MAX;

impl EntryList {
    fn new(ops: &[&Operation]) -> EntryList {
        let mut raw: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            raw.push((op.call, true, i));
            raw.push((op.ret.unwrap_or(u64::MAX), false, i));
        }
        // Calls before returns at equal times (concurrent), then by operation.
        raw.sort_by_key(|(time, is_call, op)| (*time, !*is_call, *op));
        let mut entries = Vec::with_capacity(raw.len() + 1);
        let sentinel = Entry {
            op: NIL,
            is_call: false,
            time: 0,
            prev: NIL,
            next: 1,
            partner: NIL,
        };
        entries.push(sentinel);
        let mut return_of = vec![NIL; ops.len()];
        for (k, (time, is_call, op)) in raw.iter().enumerate() {
            let index = k + 1;
            entries.push(Entry {
                op: *op,
                is_call: *is_call,
                time: *time,
                prev: index - 1,
                next: if index == raw.len() { NIL } else { index + 1 },
                partner: NIL,
            });
            if !is_call {
                return_of[*op] = index;
            }
        }
        if raw.is_empty() {
            entries[0].next = NIL;
        }
        for entry in entries.iter_mut().skip(1) {
            if entry.is_call {
                entry.partner = return_of[entry.op];
            }
        }
        EntryList { entries }
    }

    fn unlink(&mut self, index: usize) {
        let Entry { prev, next, .. } = self.entries[index];
        self.entries[prev].next = next;
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, index: usize) {
        let Entry { prev, next, .. } = self.entries[index];
        self.entries[prev].next = index;
        if next != NIL {
            self.entries[next].prev = index;
        }
    }

    /// Removes a call and its return; they are re-inserted in reverse order by `unlift`.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.entries[call].partner);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.entries[call].partner);
        self.relink(call);
    }
}

/// Fixed pseudo-random 64-bit keys for Zobrist hashing of the linearized set.
fn zobrist_key(op: usize) -> u64 {
    // SplitMix64 of the operation index: fixed, well mixed.
    let mut z = (op as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Memo {
    seen: HashMap<(u64, u32), Vec<Box<[u64]>>>,
    bytes: usize,
}

impl Memo {
    /// Records (bitset, state); false if it was already present.
    fn insert(&mut self, hash: u64, state: u32, bits: &[u64]) -> bool {
        let bucket = self.seen.entry((hash, state)).or_default();
        if bucket.iter().any(|b| **b == *bits) {
            return false;
        }
        bucket.push(bits.into());
        self.bytes += bits.len() * 8 + 48;
        true
    }
}

/// Interns register states so the search juggles small integers.
#[derive(Default)]
struct States {
    values: Vec<RegisterState>,
    ids: HashMap<RegisterState, u32>,
}

impl States {
    fn intern(&mut self, state: RegisterState) -> u32 {
        if let Some(id) = self.ids.get(&state) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.values.push(state.clone());
        self.ids.insert(state, id);
        id
    }
}

fn check_key(ops: &[&Operation], limits: &Limits) -> LinearizabilityReport {
    let mut list = EntryList::new(ops);
    let mut states = States::default();
    let mut state = states.intern(None);
    let mut bits = vec![0u64; ops.len().div_ceil(64).max(1)];
    let mut hash = 0u64;
    let mut memo = Memo {
        seen: HashMap::new(),
        bytes: 0,
    };
    // The stack of linearized calls: (call entry, state before it).
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut best: (Vec<usize>, Option<usize>) = (Vec::new(), None);
    let mut cursor = list.entries[0].next;
    let mut iterations: u64 = 0;
    let unknown = |reason: &str| LinearizabilityReport {
        verdict: Verdict::Unknown,
        key: None,
        linearized: Vec::new(),
        stuck: None,
        reason: Some(reason.to_string()),
    };
    while cursor != NIL {
        iterations += 1;
        if iterations.is_multiple_of(4096) && (limits.cancelled)() {
            return unknown("cancelled (time limit)");
        }
        let entry = list.entries[cursor];
        if entry.is_call {
            let op = &ops[entry.op];
            let next_state = step(&states.values[state as usize], &op.value);
            if let Some(next_state) = next_state {
                let next_id = states.intern(next_state);
                bits[entry.op / 64] |= 1 << (entry.op % 64);
                let next_hash = hash ^ zobrist_key(entry.op);
                if memo.insert(next_hash, next_id, &bits) {
                    if memo.bytes > limits.memo_bytes_max {
                        return unknown("memo outgrew its memory bound");
                    }
                    stack.push((cursor, state));
                    state = next_id;
                    hash = next_hash;
                    list.lift(cursor);
                    cursor = list.entries[0].next;
                    continue;
                }
                bits[entry.op / 64] &= !(1 << (entry.op % 64));
            }
            cursor = entry.next;
            continue;
        }
        if entry.time == u64::MAX {
            break; // Only operations with unknown outcome remain; they need not have happened.
        }
        if stack.len() >= best.0.len() {
            best = (
                stack
                    .iter()
                    .map(|(c, _)| ops[list.entries[*c].op].id)
                    .collect(),
                Some(ops[entry.op].id),
            );
        }
        let Some((call, previous)) = stack.pop() else {
            return LinearizabilityReport {
                verdict: Verdict::NotLinearizable,
                key: None,
                linearized: best.0,
                stuck: best.1,
                reason: None,
            };
        };
        let op = list.entries[call].op;
        bits[op / 64] &= !(1 << (op % 64));
        hash ^= zobrist_key(op);
        state = previous;
        list.unlift(call);
        cursor = list.entries[call].next;
    }
    LinearizabilityReport {
        verdict: Verdict::Linearizable,
        key: None,
        linearized: Vec::new(),
        stuck: None,
        reason: None,
    }
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
        let report = check_linearizable(&ops, &Limits::default());
        assert_eq!(report.verdict, Verdict::NotLinearizable);
        assert_eq!(report.key.as_deref(), Some("y"));
        assert_eq!(report.linearized, vec![1]);
        assert_eq!(report.stuck, Some(2));
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
        assert_eq!(check_linearizable(&ops, &limits).verdict, Verdict::Unknown);
    }
}
