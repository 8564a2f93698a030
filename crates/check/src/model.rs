//! Sequential specifications: what each operation does to the state of one key.
//!
//! Every key of the KV store is an independent register whose state is a value or *absent*.
//! The same step function serves the three objects the checkers know:
//!
//! - a **register**: `get` and `put` (Jepsen's `read`/`write`) on one key;
//! - a **CAS register**: a register with `cas [expected new]`, which takes effect only when the
//!   current value equals `expected` (a failed comparison is recorded as `fail`);
//! - the **KV store**: every key a register, plus `delete` (value becomes absent) and `append`
//!   (concatenation, absent reading as the empty string).
//!
//! Checkers compile operations once into [`Step`]s over interned value ids, so a search moves
//! `u32`s around instead of cloning strings: `get`, `put`, `delete` and `cas` never touch a
//! string during a search; only `append` builds (and interns) new values.

use crate::history::{HistoryError, OpValue, Operation};
use crate::linearizability::{mix64, PassThroughMap};

/// An interned value; [`ABSENT`] is the state of a key that holds nothing.
pub type ValueId = u32;

/// The id of "absent" (a key never written, or deleted).
pub const ABSENT: ValueId = 0;

/// Interns value strings as small integers. Each text is stored once; the index maps a 64-bit
/// FNV-1a hash of the text to the first id with that hash, and `next` chains the rare
/// collisions, so interning allocates once per new value and hashes a few bytes.
#[derive(Clone, Debug)]
pub struct Values {
    texts: Vec<Box<str>>,
    next: Vec<ValueId>,
    index: PassThroughMap<ValueId>,
}

impl Default for Values {
    fn default() -> Self {
        Values {
            texts: vec!["".into()], // index 0 stands for ABSENT and is never looked up
            next: vec![ValueId::MAX],
            index: PassThroughMap::default(),
        }
    }
}

fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(hash)
}

impl Values {
    pub fn intern(&mut self, text: &str) -> ValueId {
        let hash = fnv1a(text);
        let head = self.index.get(&hash).copied().unwrap_or(ValueId::MAX);
        let mut cursor = head;
        while cursor != ValueId::MAX {
            if &*self.texts[cursor as usize] == text {
                return cursor;
            }
            cursor = self.next[cursor as usize];
        }
        let id = ValueId::try_from(self.texts.len()).expect("fewer than 2^32 distinct values");
        self.texts.push(text.into());
        self.next.push(head);
        self.index.insert(hash, id);
        id
    }

    /// How many distinct values (absent included) were interned.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        false // absent is always there
    }

    pub fn intern_optional(&mut self, text: Option<&str>) -> ValueId {
        text.map_or(ABSENT, |t| self.intern(t))
    }

    /// The text of a value, `None` for absent.
    pub fn text(&self, id: ValueId) -> Option<&str> {
        (id != ABSENT).then(|| &*self.texts[id as usize])
    }

    /// Interns `state ++ suffix` (absent reads as the empty string).
    fn concat(&mut self, state: ValueId, suffix: ValueId) -> ValueId {
        let mut joined = self.text(state).unwrap_or_default().to_string();
        joined.push_str(self.text(suffix).unwrap_or_default());
        self.intern(&joined)
    }
}

/// One operation, compiled against a [`Values`] table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Step {
    /// A read that returned this value (or absent).
    Read(ValueId),
    /// `put` (and `delete`, which writes [`ABSENT`]).
    Write(ValueId),
    Append(ValueId),
    Cas {
        expected: ValueId,
        new: ValueId,
    },
    /// An expiry: the key becomes absent if it holds this value, else nothing changes.
    ExpireIf(ValueId),
}

impl Step {
    /// Compiles an operation; `Err` for a multi-value read with two or more siblings, which
    /// no single-value register can return.
    pub fn compile(op: &OpValue, values: &mut Values) -> Result<Step, String> {
        Ok(match op {
            OpValue::Get(value) => Step::Read(values.intern_optional(value.as_deref())),
            OpValue::Siblings(siblings) => match siblings.as_slice() {
                [] => Step::Read(ABSENT),
                [one] => Step::Read(values.intern(one)),
                _ => {
                    return Err(format!(
                        "a read returned {} siblings; only --model convergence checks multi-value registers",
                        siblings.len()
                    ))
                }
            },
            OpValue::Put(value) | OpValue::PutTtl { value, .. } | OpValue::PutLease { value, .. } => {
                Step::Write(values.intern(value))
            }
            OpValue::ExpireIf(value) => Step::ExpireIf(values.intern(value)),
            OpValue::PutTtlIfAbsent { value, .. } => Step::Cas {
                expected: ABSENT,
                new: values.intern(value),
            },
            OpValue::DeleteIf(value) => Step::Cas {
                expected: values.intern(value),
                new: ABSENT,
            },
            OpValue::Delete => Step::Write(ABSENT),
            OpValue::Incr(_) | OpValue::SetAdd(_) | OpValue::SetRemove(_) => {
                return Err(format!(
                    "{} is a CRDT update; only --model convergence checks CRDT histories",
                    op.f()
                ))
            }
            OpValue::Txn(_) => {
                return Err(
                    "a transaction of several keys; only --model list-append checks transactions"
                        .into(),
                )
            }
            OpValue::Lease(lease) => {
                return Err(format!(
                    "{} names no key: lease events bound the values attached to the lease \
                     and are read before any model runs",
                    lease.f()
                ))
            }
            OpValue::Append(suffix) => Step::Append(values.intern(suffix)),
            OpValue::Cas { expected, new } => Step::Cas {
                expected: values.intern_optional(expected.as_deref()),
                new: values.intern(new),
            },
        })
    }

    /// The value this operation requires the state to hold, if any.
    pub fn observes(self) -> Option<ValueId> {
        match self {
            Step::Read(v) | Step::Cas { expected: v, .. } => Some(v),
            Step::Write(_) | Step::Append(_) | Step::ExpireIf(_) => None,
        }
    }

    /// The value this operation installs regardless of what it replaces, if any.
    pub fn installs(self) -> Option<ValueId> {
        match self {
            Step::Write(v) | Step::Cas { new: v, .. } => Some(v),
            Step::Read(_) | Step::Append(_) | Step::ExpireIf(_) => None,
        }
    }
}

/// Applies `op` in `state`; `None` when `op` cannot have happened there (a read that sees
/// another value, a successful CAS whose comparison does not hold).
#[inline]
pub fn apply(state: ValueId, op: Step, values: &mut Values) -> Option<ValueId> {
    match op {
        Step::Read(v) => (v == state).then_some(state),
        Step::Write(v) => Some(v),
        Step::Cas { expected, new } => (expected == state).then_some(new),
        Step::Append(suffix) => Some(values.concat(state, suffix)),
        Step::ExpireIf(v) => Some(if state == v { ABSENT } else { state }),
    }
}

/// One operation of a [`Compiled`] history.
#[derive(Clone, Copy, Debug)]
pub struct CompiledOp {
    /// Index into [`Compiled::keys`].
    pub key: u32,
    pub step: Step,
    pub process: u64,
    pub call: u64,
    /// `u64::MAX` when the outcome is unknown.
    pub ret: u64,
    /// Index of the operation in the slice it was compiled from.
    pub source: u32,
}

/// A key and the values seen on it.
#[derive(Clone, Debug)]
pub struct KeyTable {
    pub name: Option<String>,
    pub values: Values,
}

/// A paired history compiled for the checkers: keys numbered (in order of first appearance),
/// values interned per key, in one sequential pass over the operations.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub keys: Vec<KeyTable>,
    pub ops: Vec<CompiledOp>,
}

impl Compiled {
    /// Compiles paired operations; `Err` names the line of an operation no single-value
    /// register can perform (a read that returned several siblings).
    pub fn new(operations: &[Operation]) -> Result<Compiled, HistoryError> {
        let mut index: std::collections::HashMap<Option<&str>, u32> = Default::default();
        let mut keys: Vec<KeyTable> = Vec::new();
        let mut ops = Vec::with_capacity(operations.len());
        for (source, op) in operations.iter().enumerate() {
            let key = *index.entry(op.key.as_deref()).or_insert_with(|| {
                keys.push(KeyTable {
                    name: op.key.clone(),
                    values: Values::default(),
                });
                keys.len() as u32 - 1
            });
            let step =
                Step::compile(&op.value, &mut keys[key as usize].values).map_err(|message| {
                    HistoryError {
                        line: op.line,
                        message,
                    }
                })?;
            ops.push(CompiledOp {
                key,
                step,
                process: op.process,
                call: op.call,
                ret: op.ret.unwrap_or(u64::MAX),
                source: source as u32,
            });
        }
        Ok(Compiled { keys, ops })
    }

    /// Key indices in the order of their names (absent key first).
    pub fn keys_by_name(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_by(|a, b| {
            self.keys[*a as usize]
                .name
                .cmp(&self.keys[*b as usize].name)
        });
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(op: OpValue, values: &mut Values) -> Step {
        Step::compile(&op, values).unwrap()
    }

    #[test]
    fn register_steps() {
        let mut v = Values::default();
        let a = v.intern("a");
        let b = v.intern("b");
        let read_absent = compile(OpValue::Get(None), &mut v);
        assert_eq!(apply(ABSENT, read_absent, &mut v), Some(ABSENT));
        assert_eq!(apply(a, read_absent, &mut v), None);
        let append_b = compile(OpValue::Append("b".into()), &mut v);
        let ab = apply(a, append_b, &mut v).unwrap();
        assert_eq!(v.text(ab), Some("ab"));
        assert_eq!(apply(ABSENT, append_b, &mut v), Some(b));
        let cas = compile(
            OpValue::Cas {
                expected: Some("a".into()),
                new: "c".into(),
            },
            &mut v,
        );
        let c = v.intern("c");
        assert_eq!(apply(a, cas, &mut v), Some(c));
        assert_eq!(apply(b, cas, &mut v), None);
        assert_eq!(
            apply(b, compile(OpValue::Delete, &mut v), &mut v),
            Some(ABSENT)
        );
    }

    #[test]
    fn multi_value_reads_compile_only_with_at_most_one_sibling() {
        let mut v = Values::default();
        assert_eq!(
            compile(OpValue::Siblings(vec![]), &mut v),
            Step::Read(ABSENT)
        );
        let x = v.intern("x");
        assert_eq!(
            compile(OpValue::Siblings(vec!["x".into()]), &mut v),
            Step::Read(x)
        );
        assert!(Step::compile(&OpValue::Siblings(vec!["x".into(), "y".into()]), &mut v).is_err());
    }
}
