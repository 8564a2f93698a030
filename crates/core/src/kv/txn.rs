//! Transactions: several operations applied as one step, optionally guarded by `WATCH`.
//!
//! Redis's `MULTI ... EXEC` queues commands on the connection and runs them with nothing
//! interleaved; `WATCH k` makes the next `EXEC` do nothing (answer nil) if `k` was changed
//! after the `WATCH`. In a replicated store "nothing interleaved" has to hold on every replica,
//! so the queued commands travel as one [`Op::Txn`], one log entry, applied by
//! [`KvStore::apply`] like any command (so a retried `EXEC` is deduplicated by its session
//! like any write, and applied at most once).
//!
//! ## Revisions, not values
//!
//! "Was `k` changed?" cannot be answered by comparing values: `SET k 1; SET k 0` leaves the
//! value a watcher saw, but Redis aborts the transaction (the ABA problem). So the store
//! counts changes (a value set or removed, a deadline set or cleared): `change_count` is the
//! number of changes applied so far, and every present key remembers the count at its latest
//! change (its revision for `WATCH`; not the change feed's revision, which counts commands,
//! see [`super::changes`]). An absent key reads the revision of the latest removal of *any* key (remembering
//! each removed key's revision would grow without bound): a watcher of an absent key is
//! therefore also aborted by the removal of another key, never missed. All of it depends only
//! on the applied sequence, so every replica computes the same revisions, and they travel in
//! snapshots and chunked transfers.
//!
//! 1. `WATCH k`: the server reads [`Op::Revisions`] through the protocol's linearizable read
//!    path and remembers the answer.
//! 2. `EXEC`: the server sends one [`Op::Txn`] whose guards are
//!    [`Guard::Unchanged`]`{k, revision}`.
//! 3. Applying it, every replica first removes keys of the transaction whose deadline has
//!    passed at the leader's `now` (as [`Op::ExpireDue`] does; an expiry is a change), then
//!    checks every guard against its state, then applies the operations in order or none.
//!
//! `MSETNX` is a transaction too: guards [`Guard::Absent`] and one [`Op::PutMany`].

use super::{Key, KvStore, Op, Output};
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// A condition on the state under which a transaction applies.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Guard {
    /// `key` has not changed since [`Op::Revisions`] answered `revision` for it (`WATCH`).
    Unchanged { key: Key, revision: u64 },
    /// `key` is absent (`MSETNX`).
    Absent { key: Key },
}

impl Guard {
    pub fn key(&self) -> &Key {
        match self {
            Guard::Unchanged { key, .. } | Guard::Absent { key } => key,
        }
    }
}

/// Every key of a transaction's guards and operations, each once, in first-mention order.
pub(super) fn keys<'a>(guards: &'a [Guard], ops: &'a [Op]) -> Vec<&'a Key> {
    let mut keys: Vec<&Key> = Vec::new();
    let all = guards
        .iter()
        .map(Guard::key)
        .chain(ops.iter().flat_map(Op::keys));
    for key in all {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

impl Op {
    /// A transaction of `ops` under `guards`; `None` when both are empty (nothing to apply),
    /// or when an operation cannot be part of one: another transaction, a leader's expiry, a
    /// listing or a multi-version operation.
    pub fn txn(guards: Vec<Guard>, ops: Vec<Op>) -> Option<Op> {
        let allowed = |op: &Op| {
            !matches!(
                op,
                Op::Txn { .. }
                    | Op::Expired { .. }
                    | Op::ExpireDue { .. }
                    | Op::Scan { .. }
                    | Op::Count
                    | Op::GetSiblings { .. }
                    | Op::PutWithContext { .. }
                    | Op::CrdtUpdate { .. }
                    | Op::CrdtRead { .. }
            )
        };
        let empty = guards.is_empty() && ops.is_empty();
        (!empty && ops.iter().all(allowed)).then_some(Op::Txn {
            guards,
            ops,
            now: None,
        })
    }
}

impl KvStore {
    /// The revision of the latest change to `key` (absent: of the latest removal).
    pub fn revision_of(&self, key: &[u8]) -> u64 {
        self.last_changed
            .get(key)
            .copied()
            .unwrap_or(self.last_removed)
    }

    /// Records a change to `key` (every change of a value or deadline goes through here).
    pub(super) fn touch(&mut self, key: &Key) {
        self.change_count += 1;
        if self.data.contains_key(key) {
            self.last_changed.insert(key.clone(), self.change_count);
        } else {
            self.last_changed.remove(key);
            self.last_removed = self.change_count;
        }
    }

    /// Whether `guard` holds in this state.
    fn holds(&self, guard: &Guard) -> bool {
        match guard {
            Guard::Unchanged { key, revision } => self.revision_of(key) == *revision,
            Guard::Absent { key } => !self.data.contains_key(key),
        }
    }

    /// Applies [`Op::Txn`] (see the module docs).
    pub(super) fn apply_txn(&mut self, guards: &[Guard], ops: &[Op], now: Option<Time>) -> Output {
        if let Some(now) = now {
            for key in keys(guards, ops) {
                self.apply_expire_due(&key.clone(), now);
            }
        }
        if !guards.iter().all(|guard| self.holds(guard)) {
            return Output::Txn(None);
        }
        Output::Txn(Some(ops.iter().map(|op| self.apply_op(op)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ClientId;
    use crate::kv::{Applied, Command, Expiry};
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: b(key),
            value: b(value),
        }
    }

    fn watch(kv: &KvStore, key: &str) -> Guard {
        let Output::Revisions(revisions) = kv.read(&Op::Revisions { keys: vec![b(key)] }) else {
            panic!("revisions answer revisions");
        };
        Guard::Unchanged {
            key: b(key),
            revision: revisions[0],
        }
    }

    #[test]
    fn a_transaction_applies_every_operation_in_one_step_and_answers_each_output() {
        let mut kv = KvStore::default();
        let ops = vec![
            put("a", "1"),
            Op::Incr { key: b("a"), by: 2 },
            Op::Append {
                key: b("b"),
                value: b("x"),
            },
            Op::Get { key: b("a") },
            Op::Incr { key: b("b"), by: 1 },
        ];
        let txn = Op::txn(Vec::new(), ops).expect("a transaction");
        assert!(!txn.is_read() && txn.is_multi_key());
        assert_eq!(txn.keys(), [&b("a"), &b("b")]);
        let command = Command {
            client: ClientId(1),
            seq: 1,
            op: txn,
        };
        let expected = Output::Txn(Some(vec![
            Output::Done,
            Output::Counter(Some(3)),
            Output::Length(1),
            Output::Value(Some(b("3"))),
            // An operation that fails changes nothing but does not undo the others (Redis).
            Output::Counter(None),
        ]));
        assert_eq!(kv.apply(&command), Applied::Fresh(expected.clone()));
        // A retried EXEC answers what it answered, and applies nothing again.
        assert_eq!(kv.apply(&command), Applied::Cached(expected));
        assert_eq!(kv.get(b"b"), Some(&b("x")));
        assert_eq!(Op::txn(Vec::new(), Vec::new()), None);
        assert_eq!(Op::txn(Vec::new(), vec![Op::Count]), None);
    }

    #[test]
    fn a_watched_key_changed_and_set_back_aborts_the_transaction() {
        let mut kv = KvStore::default();
        kv.apply_op(&put("k", "0"));
        let guard = watch(&kv, "k");
        kv.apply_op(&put("k", "1"));
        kv.apply_op(&put("k", "0"));
        let txn = Op::txn(vec![guard], vec![put("x", "1")]).expect("a transaction");
        assert_eq!(kv.apply_op(&txn), Output::Txn(None));
        assert_eq!(kv.get(b"x"), None, "an aborted transaction changes nothing");
        let guard = watch(&kv, "k");
        // Another key's change does not abort it.
        kv.apply_op(&put("other", "1"));
        let txn = Op::txn(vec![guard], vec![put("x", "1")]).expect("a transaction");
        assert_eq!(kv.apply_op(&txn), Output::Txn(Some(vec![Output::Done])));
        // A transaction's own writes are changes: watching again sees a new revision.
        assert!(kv.revision_of(b"x") > kv.revision_of(b"k"));
    }

    #[test]
    fn a_watched_absent_key_aborts_on_creation_and_on_any_removal() {
        let mut kv = KvStore::default();
        kv.apply_op(&put("gone", "1"));
        let guard = watch(&kv, "k");
        kv.apply_op(&put("k", "1"));
        kv.apply_op(&Op::Delete { key: b("k") });
        let txn = |guard| Op::txn(vec![guard], vec![put("x", "1")]).expect("a transaction");
        assert_eq!(kv.apply_op(&txn(guard)), Output::Txn(None));
        let guard = watch(&kv, "k");
        kv.apply_op(&Op::Delete { key: b("gone") });
        assert_eq!(kv.apply_op(&txn(guard)), Output::Txn(None), "conservative");
        // A deadline set or cleared is a change too (Redis's EXPIRE touches the key).
        kv.apply_op(&put("x", "0"));
        let guard = watch(&kv, "x");
        kv.apply_op(&Op::Expire {
            key: b("x"),
            expiry: Expiry::At {
                deadline: Time::from_nanos(100),
            },
        });
        assert_eq!(kv.apply_op(&txn(guard)), Output::Txn(None));
    }

    #[test]
    fn msetnx_is_a_transaction_guarded_by_absence() {
        let mut kv = KvStore::default();
        let msetnx = |pairs: Vec<(Bytes, Bytes)>| {
            let guards = pairs
                .iter()
                .map(|(key, _)| Guard::Absent { key: key.clone() });
            let guards = guards.collect();
            Op::txn(guards, vec![Op::put_many(pairs).expect("pairs")]).expect("a transaction")
        };
        let first = msetnx(vec![(b("a"), b("1")), (b("b"), b("2"))]);
        assert_eq!(kv.apply_op(&first), Output::Txn(Some(vec![Output::Done])));
        let second = msetnx(vec![(b("c"), b("3")), (b("b"), b("4"))]);
        assert_eq!(kv.apply_op(&second), Output::Txn(None));
        assert_eq!(kv.get(b"c"), None);
        assert_eq!(kv.get(b"b"), Some(&b("2")));
    }

    #[test]
    fn a_stamped_transaction_expires_its_due_keys_before_its_guards_and_operations() {
        let mut kv = KvStore::default();
        let lease = Op::Txn {
            guards: Vec::new(),
            ops: vec![Op::PutExpiring {
                key: b("k"),
                value: b("v"),
                expiry: Expiry::After { ttl_ms: 10 },
            }],
            now: None,
        };
        assert!(lease.needs_leader_clock() && lease.sets_deadline());
        assert_eq!(lease.deadline_keys(), [&b("k")]);
        // Only the operations that give a deadline name their keys, wherever they stand.
        let mixed = Op::Txn {
            guards: Vec::new(),
            ops: vec![
                Op::Put {
                    key: b("plain"),
                    value: b("v"),
                },
                Op::PutLeased {
                    key: b("leased"),
                    value: b("v"),
                    lease: 1,
                    now: None,
                },
            ],
            now: None,
        };
        assert_eq!(mixed.deadline_keys(), [&b("leased")]);
        let now = Time::from_nanos(1_000_000_000);
        kv.apply_op(&lease.stamped(now));
        let guard = watch(&kv, "k");
        let read = Op::txn(vec![guard], vec![Op::Get { key: b("k") }]).expect("a transaction");
        assert!(!read.needs_leader_clock());
        let before = read
            .clone()
            .stamped(now + std::time::Duration::from_millis(5));
        assert_eq!(
            kv.apply_op(&before),
            Output::Txn(Some(vec![Output::Value(Some(b("v")))]))
        );
        // Past the deadline the key expires first, which is a change: the watch fails.
        let after = read.stamped(now + std::time::Duration::from_millis(10));
        assert_eq!(kv.apply_op(&after), Output::Txn(None));
        assert_eq!(kv.get(b"k"), None);
    }
}
