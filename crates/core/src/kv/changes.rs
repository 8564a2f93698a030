//! Watching the store: what each applied command changed, numbered by a revision that is the
//! same on every replica, and a bounded window of recent changes a watcher can resume from.
//!
//! ## Problem
//!
//! A client that coordinates through the store (a lock holder waiting for a key to go, a cache
//! invalidating on writes) should not poll. Redis answers with keyspace notifications over
//! pub/sub, which are at-most-once: a disconnected subscriber loses what happened meanwhile.
//! etcd answers with a watch that resumes from a revision: every change has a number that is
//! the same on every member, and a watcher that reconnects (to any member) asks for the
//! changes after the last one it saw; if they are no longer kept it is told so ("required
//! revision has been compacted") instead of silently missing them.
//!
//! ## The algorithm
//!
//! 1. The store counts the applied commands that changed something: [`KvStore::revision`]. It
//!    is replicated state (serialized with the store, carried in snapshot chunks), and it
//!    depends only on the sequence of applied commands, so every replica of a log protocol
//!    numbers the same change alike, however it got there (log replay, snapshot install).
//! 2. Each change of that command is a [`Change`] `(revision, n, key, event, value)`: `n`
//!    orders the changes of one command (`MSET` changes several keys, `SET k v EX 5` is a
//!    `set` then an `expire`, as in Redis). Events carry Redis's names ([`Event::name`]).
//! 3. The store keeps the most recent changes ([`RECENT_MAX`]) as derived state, neither
//!    serialized nor compared nor cloned: a copy of the store (a snapshot, a backup) starts
//!    with none, complete from its own revision on.
//! 4. A driver (the server's runtime; the simulator, for every node, in `quorate-sim`'s
//!    `feed.rs`, which checks the guarantees below under faults) owns a [`ChangeFeed`] with a
//!    window of its own size, and after every step calls [`ChangeFeed::catch_up`], which
//!    copies the changes the store recorded since. If the store no longer holds them all (a
//!    snapshot replaced the store, or one step applied more than `RECENT_MAX` changes), the
//!    feed is compacted to what the store still holds: readers from before are told so.
//! 5. [`ChangeFeed::read`] answers the changes after a revision, or [`Compacted`] with the
//!    oldest revision it can resume from.
//!
//! ## Guarantees
//!
//! A feed answers changes in apply order, which for a log protocol is commit order, with
//! revisions identical on every replica; a reader that resumes after revision `r` at any node
//! gets exactly the changes after `r` that node has applied, or a definite `Compacted`.
//! After a restart a node's feed begins where its replay begins: the store restored from the
//! latest snapshot, then the log entries replayed after it.
//!
//! Left out: protocols that apply in no single order (quorum, multi-primary) have no feed;
//! CRDT updates and reads are not changes.

use super::{Key, KvStore, Op, Output, Value};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

/// Changes a store keeps for drivers to copy, at most (see step 3 of the module docs).
pub const RECENT_MAX: usize = 8_192;
/// Bytes of keys and values those changes may hold, at most (they may keep overwritten values
/// alive).
pub const RECENT_BYTES_MAX: usize = 64 << 20;
/// What a change is taken to weigh beyond its key and value bytes.
const CHANGE_BYTES: usize = 64;

/// Changes in revision order, bounded in number and bytes, evicted oldest command first.
#[derive(Clone, Debug, Default)]
struct Window {
    changes: VecDeque<Change>,
    bytes: usize,
}

fn weight(change: &Change) -> usize {
    CHANGE_BYTES + change.key.len() + change.value.as_ref().map_or(0, |v| v.len())
}

impl Window {
    fn push(&mut self, change: Change) {
        self.bytes += weight(&change);
        self.changes.push_back(change);
    }

    fn pop(&mut self) -> Option<Change> {
        let change = self.changes.pop_front()?;
        self.bytes -= weight(&change);
        Some(change)
    }

    fn clear(&mut self) {
        self.changes.clear();
        self.bytes = 0;
    }

    /// Evicts the oldest commands, whole, until within both bounds; answers the new floor
    /// (every change after it is still here).
    fn trim(&mut self, count_max: usize, bytes_max: usize, mut floor: u64) -> u64 {
        while self.changes.len() > count_max || self.bytes > bytes_max {
            floor = self.pop().expect("over a bound").revision;
        }
        while self.changes.front().is_some_and(|c| c.revision <= floor) {
            self.pop();
        }
        floor
    }
}

/// What happened to a key, by Redis's keyspace event names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Event {
    Set,
    Del,
    Expire,
    Expired,
    Persist,
    Append,
    Incrby,
}

impl Event {
    /// Redis's name for the event (the `__keyevent@0__:<name>` channel).
    pub fn name(self) -> &'static str {
        match self {
            Event::Set => "set",
            Event::Del => "del",
            Event::Expire => "expire",
            Event::Expired => "expired",
            Event::Persist => "persist",
            Event::Append => "append",
            Event::Incrby => "incrby",
        }
    }

    /// Redis's class letter for `notify-keyspace-events`: `g` generic, `$` string, `x`
    /// expired.
    pub fn class(self) -> char {
        match self {
            Event::Del | Event::Expire | Event::Persist => 'g',
            Event::Set | Event::Append | Event::Incrby => '$',
            Event::Expired => 'x',
        }
    }
}

/// One change of one applied command.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Change {
    /// The store's revision after the command: the same on every replica.
    pub revision: u64,
    /// The change's place among the command's changes, from 0.
    pub n: u32,
    pub key: Key,
    pub event: Event,
    /// The key's value after the command (`None`: absent).
    pub value: Option<Value>,
}

/// The changes a store recorded recently: derived state, never serialized, compared, hashed
/// or cloned (a clone starts empty, complete from its own revision on).
#[derive(Default)]
pub(super) struct Recent {
    /// Every change after this revision is in `changes` (`None`: after the store's current
    /// revision, since nothing was recorded yet).
    floor: Option<u64>,
    changes: Window,
}

impl Clone for Recent {
    fn clone(&self) -> Recent {
        Recent::default()
    }
}

impl PartialEq for Recent {
    fn eq(&self, _: &Recent) -> bool {
        true
    }
}

impl Eq for Recent {}

impl Hash for Recent {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for Recent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recent({} changes)", self.changes.changes.len())
    }
}

/// A resume point older than what is kept.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Compacted {
    /// The oldest revision one can resume after.
    pub oldest: u64,
}

impl KvStore {
    /// Applied commands that changed something (see the module docs).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The changes after `revision` the store still holds, or `Compacted` if some are gone.
    pub fn changes_after(&self, revision: u64) -> Result<Vec<&Change>, Compacted> {
        let floor = self.recent.floor.unwrap_or(self.revision);
        if revision < floor {
            return Err(Compacted { oldest: floor });
        }
        let changes = &self.recent.changes.changes;
        let skip = changes.partition_point(|c| c.revision <= revision);
        Ok(changes.range(skip..).collect())
    }

    /// Applies `op` and records what it changed.
    pub(super) fn apply_recorded(&mut self, op: &Op) -> Output {
        let output = self.apply_op(op);
        let events = events(op, &output);
        if events.is_empty() {
            return output;
        }
        let floor = *self.recent.floor.get_or_insert(self.revision);
        self.revision += 1;
        for (n, (key, event)) in events.into_iter().enumerate() {
            let value = self.data.get(key).cloned();
            self.recent.changes.push(Change {
                revision: self.revision,
                n: n as u32,
                key: key.clone(),
                event,
                value,
            });
        }
        let floor = self
            .recent
            .changes
            .trim(RECENT_MAX, RECENT_BYTES_MAX, floor);
        self.recent.floor = Some(floor);
        output
    }
}

/// The keys `op` changed, given its output, with their events in order.
fn events<'a>(op: &'a Op, output: &'a Output) -> Vec<(&'a Key, Event)> {
    let happened = |output: &Output| matches!(output, Output::Existed(true));
    match (op, output) {
        (Op::Put { key, .. }, _) => vec![(key, Event::Set)],
        (Op::PutMany { pairs }, _) => pairs.iter().map(|(k, _)| (k, Event::Set)).collect(),
        (Op::PutExpiring { key, .. }, _) => vec![(key, Event::Set), (key, Event::Expire)],
        (
            Op::Set {
                key, when, expiry, ..
            },
            Output::Value(previous),
        ) => {
            if !when.allows(previous.as_ref()) {
                return Vec::new();
            }
            let mut events = vec![(key, Event::Set)];
            if expiry.is_some() {
                events.push((key, Event::Expire));
            }
            events
        }
        (Op::Cas { key, .. }, Output::Swapped(true)) => vec![(key, Event::Set)],
        (Op::Append { key, .. }, _) => vec![(key, Event::Append)],
        (Op::Incr { key, .. }, Output::Counter(Some(_))) => vec![(key, Event::Incrby)],
        (Op::Delete { key } | Op::DeleteIf { key, .. }, out) if happened(out) => {
            vec![(key, Event::Del)]
        }
        (Op::GetDelete { key }, Output::Value(Some(_))) => vec![(key, Event::Del)],
        (Op::Expire { key, .. }, out) if happened(out) => vec![(key, Event::Expire)],
        (Op::Persist { key }, out) if happened(out) => vec![(key, Event::Persist)],
        (Op::Expired { key, .. } | Op::ExpireDue { key, .. }, out) if happened(out) => {
            vec![(key, Event::Expired)]
        }
        // A lease that ends takes its keys with it (`ExpireDue` of a key attached to a lease
        // ends the lease).
        (Op::LeaseExpired { .. } | Op::ExpireDue { .. }, Output::Lease(Some(ended))) => {
            ended.keys.iter().map(|k| (k, Event::Expired)).collect()
        }
        (Op::LeaseRevoke { .. }, Output::Lease(Some(ended))) => {
            ended.keys.iter().map(|k| (k, Event::Del)).collect()
        }
        (Op::PutLeased { key, .. }, Output::Existed(true)) => {
            vec![(key, Event::Set), (key, Event::Expire)]
        }
        // A transaction's changes are its operations' changes, in order (keys it found
        // expired at the leader's `now` before its guards are not reported).
        (Op::Txn { ops, .. }, Output::Txn(Some(outputs))) => ops
            .iter()
            .zip(outputs)
            .flat_map(|(op, output)| events(op, output))
            .collect(),
        (Op::PutWithContext { key, value, .. }, _) => match value {
            Some(_) => vec![(key, Event::Set)],
            None => vec![(key, Event::Del)],
        },
        _ => Vec::new(),
    }
}

/// A driver's window of recent changes, filled from a store after every step.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    window: Window,
    window_max: usize,
    window_bytes_max: usize,
    /// Every change after this revision and up to `revision` is in `window`.
    floor: u64,
    /// The store revision the feed has caught up with.
    revision: u64,
}

impl ChangeFeed {
    /// An empty feed keeping at most `window_max` changes (at least one) holding at most
    /// `window_bytes_max` bytes of keys and values.
    pub fn new(window_max: usize, window_bytes_max: usize) -> ChangeFeed {
        assert!(window_max > 0, "window_max must be positive");
        ChangeFeed {
            window: Window::default(),
            window_max,
            window_bytes_max,
            floor: 0,
            revision: 0,
        }
    }

    /// The last revision the feed holds (0: none yet).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The oldest revision a reader can resume after.
    pub fn oldest(&self) -> u64 {
        self.floor
    }

    /// Copies what `store` changed since the last call and returns those changes. When the
    /// store no longer holds them all, the feed starts over from what it does hold (readers
    /// from before are told `Compacted`).
    pub fn catch_up(&mut self, store: &KvStore) -> Vec<Change> {
        if store.revision() == self.revision {
            return Vec::new();
        }
        let fresh: Vec<Change> = if self.continues(store) {
            let changes = store
                .changes_after(self.revision)
                .expect("held, as it continues");
            changes.into_iter().cloned().collect()
        } else {
            // Behind what the store holds, or a store from before (a restarted replay):
            // start over from the store.
            let floor = store.recent.floor.unwrap_or(store.revision());
            self.window.clear();
            self.floor = floor;
            store
                .changes_after(floor)
                .expect("complete after its floor")
                .into_iter()
                .cloned()
                .collect()
        };
        self.revision = store.revision();
        for change in &fresh {
            self.window.push(change.clone());
        }
        self.floor = self
            .window
            .trim(self.window_max, self.window_bytes_max, self.floor);
        fresh
    }

    /// Whether [`ChangeFeed::catch_up`] with `store` copies on from the feed's revision
    /// (false: it starts over from what `store` holds, and readers from before are told
    /// `Compacted`). A store at the feed's revision continues it: there is nothing to copy.
    pub fn continues(&self, store: &KvStore) -> bool {
        let floor = store.recent.floor.unwrap_or(store.revision());
        store.revision() >= self.revision && self.revision >= floor
    }

    /// At most `count` changes after `revision`, in order (whole commands: the last one's
    /// changes all come, even beyond `count`). `Compacted` if some are no longer kept.
    pub fn read(&self, revision: u64, count: usize) -> Result<Vec<Change>, Compacted> {
        if revision < self.floor {
            return Err(Compacted { oldest: self.floor });
        }
        let changes = &self.window.changes;
        let skip = changes.partition_point(|c| c.revision <= revision);
        let mut out: Vec<Change> = Vec::new();
        for change in changes.range(skip..) {
            if out.len() >= count && out.last().is_some_and(|l| l.revision != change.revision) {
                break;
            }
            out.push(change.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ClientId;
    use crate::kv::{Command, SetWhen};
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: b(k),
            value: b(v),
        }
    }

    fn apply(kv: &mut KvStore, seq: u64, op: Op) {
        kv.apply(&Command {
            client: ClientId(1),
            seq,
            op,
        });
    }

    /// Every kind of write, with the keyspace events it records (Redis's names), in order;
    /// writes that changed nothing record none.
    #[test]
    fn each_write_records_the_events_redis_names_for_it() {
        use crate::kv::{CausalContext, Expiry, Output};
        use crate::time::Time;
        let t = |ms: u64| Time::from_nanos(ms * 1_000_000);
        let mut kv = KvStore::default();
        let mut seq = 0;
        let mut step = |kv: &mut KvStore, op: Op| -> Vec<(String, &'static str)> {
            seq += 1;
            let before = kv.revision();
            apply(kv, seq, op.stamped(t(0)));
            kv.changes_after(before)
                .unwrap()
                .into_iter()
                .map(|c| (String::from_utf8_lossy(&c.key).into_owned(), c.event.name()))
                .collect()
        };
        let ev = |pairs: &[(&str, &'static str)]| -> Vec<(String, &'static str)> {
            pairs.iter().map(|(k, e)| (k.to_string(), *e)).collect()
        };
        let cas = |expected: Option<&str>, new: &str| Op::Cas {
            key: b("c"),
            expected: expected.map(b),
            new: b(new),
        };
        assert_eq!(step(&mut kv, cas(None, "1")), ev(&[("c", "set")]));
        assert_eq!(step(&mut kv, cas(Some("x"), "2")), ev(&[]));
        let append = Op::Append {
            key: b("c"),
            value: b("2"),
        };
        assert_eq!(step(&mut kv, append), ev(&[("c", "append")]));
        let expire = |key: &str| Op::Expire {
            key: b(key),
            expiry: Expiry::After { ttl_ms: 10 },
        };
        assert_eq!(step(&mut kv, expire("c")), ev(&[("c", "expire")]));
        assert_eq!(step(&mut kv, expire("none")), ev(&[]));
        assert_eq!(
            step(&mut kv, Op::Persist { key: b("c") }),
            ev(&[("c", "persist")])
        );
        assert_eq!(step(&mut kv, Op::Persist { key: b("c") }), ev(&[]));
        let put_ttl = Op::PutExpiring {
            key: b("e"),
            value: b("v"),
            expiry: Expiry::After { ttl_ms: 10 },
        };
        assert_eq!(step(&mut kv, put_ttl), ev(&[("e", "set"), ("e", "expire")]));
        let expired = |deadline| Op::Expired {
            key: b("e"),
            deadline,
        };
        assert_eq!(step(&mut kv, expired(t(9))), ev(&[]));
        assert_eq!(step(&mut kv, expired(t(10))), ev(&[("e", "expired")]));
        let delete_if = |expected: &str| Op::DeleteIf {
            key: b("c"),
            expected: b(expected),
        };
        assert_eq!(step(&mut kv, delete_if("nope")), ev(&[]));
        assert_eq!(step(&mut kv, delete_if("12")), ev(&[("c", "del")]));
        let with_context = |value: Option<&str>| Op::PutWithContext {
            key: b("w"),
            value: value.map(b),
            context: CausalContext::new(),
        };
        assert_eq!(step(&mut kv, with_context(Some("1"))), ev(&[("w", "set")]));
        assert_eq!(step(&mut kv, with_context(None)), ev(&[("w", "del")]));
        assert_eq!(step(&mut kv, Op::GetDelete { key: b("w") }), ev(&[]));
        // Leases: attached writes, revocations and expiries (also by `ExpireDue`).
        let grant = Op::LeaseGrant {
            ttl_ms: 10,
            now: None,
        };
        step(&mut kv, grant.clone());
        let leased = |key: &str, lease| Op::PutLeased {
            key: b(key),
            value: b("v"),
            lease,
            now: None,
        };
        assert_eq!(
            step(&mut kv, leased("p", 1)),
            ev(&[("p", "set"), ("p", "expire")])
        );
        assert_eq!(step(&mut kv, leased("p", 7)), ev(&[]), "no such lease");
        step(&mut kv, leased("q", 1));
        let revoke = Op::LeaseRevoke { lease: 1 };
        assert_eq!(
            step(&mut kv, revoke.clone()),
            ev(&[("p", "del"), ("q", "del")])
        );
        assert_eq!(step(&mut kv, revoke), ev(&[]));
        step(&mut kv, grant.clone());
        step(&mut kv, leased("r", 2));
        let lease_expired = Op::LeaseExpired {
            lease: 2,
            deadline: t(10),
        };
        assert_eq!(step(&mut kv, lease_expired), ev(&[("r", "expired")]));
        step(&mut kv, grant);
        step(&mut kv, leased("s", 3));
        let due = |now| Op::ExpireDue {
            key: b("s"),
            now: t(now),
        };
        assert_eq!(step(&mut kv, due(9)), ev(&[]));
        assert_eq!(step(&mut kv, due(10)), ev(&[("s", "expired")]));
        assert!(matches!(
            kv.read(&Op::LeaseRead { lease: 3 }),
            Output::Lease(None)
        ));
    }

    /// A feed's byte bound counts each change's key and value bytes plus a fixed overhead.
    #[test]
    fn a_feeds_byte_bound_weighs_keys_and_values() {
        let mut kv = KvStore::default();
        apply(&mut kv, 1, put("kk", "vvvv")); // 64 + 2 + 4 = 70 bytes
        apply(&mut kv, 2, put("kk", "vvvv"));
        let mut fits = ChangeFeed::new(100, 140);
        fits.catch_up(&kv);
        assert_eq!(fits.read(0, 10).map(|c| c.len()), Ok(2));
        let mut tight = ChangeFeed::new(100, 139);
        tight.catch_up(&kv);
        assert_eq!(tight.read(1, 10).map(|c| c.len()), Ok(1));
        assert!(tight.read(0, 10).is_err(), "the first no longer fits");
    }

    #[test]
    fn changes_are_numbered_by_command_and_reads_and_no_ops_are_not_changes() {
        let mut kv = KvStore::default();
        apply(&mut kv, 1, put("a", "1"));
        apply(&mut kv, 2, Op::Get { key: b("a") });
        apply(&mut kv, 3, Op::Delete { key: b("zz") });
        let pairs = vec![(b("b"), b("2")), (b("c"), b("3"))];
        apply(&mut kv, 4, Op::PutMany { pairs });
        apply(&mut kv, 4, put("x", "retry")); // A retry: cached, not applied.
        let nx = Op::Set {
            key: b("a"),
            value: b("9"),
            when: SetWhen::IfAbsent,
            expiry: None,
        };
        apply(&mut kv, 5, nx);
        apply(&mut kv, 6, Op::Incr { key: b("n"), by: 2 });
        assert_eq!(kv.revision(), 3);
        let seen: Vec<_> = kv
            .changes_after(0)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.revision,
                    c.n,
                    c.key.clone(),
                    c.event.name(),
                    c.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, 0, b("a"), "set", Some(b("1"))),
                (2, 0, b("b"), "set", Some(b("2"))),
                (2, 1, b("c"), "set", Some(b("3"))),
                (3, 0, b("n"), "incrby", Some(b("2"))),
            ]
        );
        assert_eq!(kv.changes_after(2).unwrap().len(), 1);
    }

    #[test]
    fn a_copy_of_the_store_keeps_the_revision_but_no_changes() {
        let mut kv = KvStore::default();
        apply(&mut kv, 1, put("a", "1"));
        let copy = kv.clone();
        assert_eq!(copy, kv);
        assert_eq!(copy.revision(), 1);
        assert_eq!(copy.changes_after(0), Err(Compacted { oldest: 1 }));
        assert!(copy.changes_after(1).unwrap().is_empty());
    }

    #[test]
    fn a_feed_keeps_its_window_and_answers_compacted_below_it() {
        let mut kv = KvStore::default();
        let mut feed = ChangeFeed::new(3, usize::MAX);
        for i in 1..=5u64 {
            apply(&mut kv, i, put(&format!("k{i}"), "v"));
            assert_eq!(feed.catch_up(&kv).len(), 1);
        }
        assert_eq!(feed.revision(), 5);
        assert_eq!(feed.oldest(), 2);
        assert_eq!(feed.read(1, 10), Err(Compacted { oldest: 2 }));
        let revisions: Vec<u64> = feed
            .read(2, 10)
            .unwrap()
            .iter()
            .map(|c| c.revision)
            .collect();
        assert_eq!(revisions, vec![3, 4, 5]);
        assert_eq!(feed.read(2, 1).unwrap().len(), 1);
        assert!(feed.read(5, 10).unwrap().is_empty());
        // A bound on bytes evicts as a bound on changes does.
        let mut small = ChangeFeed::new(100, 2 * (CHANGE_BYTES + 3));
        for i in 1..=5u64 {
            apply(&mut kv, 10 + i, put(&format!("k{i}"), "v"));
            small.catch_up(&kv);
        }
        assert_eq!(small.read(0, 10), Err(Compacted { oldest: 8 }));
        assert_eq!(small.read(8, 10).unwrap().len(), 2);
    }

    #[test]
    fn a_feed_starts_over_from_a_replaced_store() {
        let mut kv = KvStore::default();
        let mut feed = ChangeFeed::new(100, usize::MAX);
        apply(&mut kv, 1, put("a", "1"));
        feed.catch_up(&kv);
        let mut later = kv.clone();
        apply(&mut later, 2, put("b", "2"));
        apply(&mut later, 3, put("c", "3"));
        // A snapshot of revision 2 replaces the store: revision 2 itself is gone.
        let mut snapshot = later.clone();
        apply(&mut snapshot, 4, put("d", "4"));
        assert!(feed.continues(&kv) && !feed.continues(&snapshot));
        let fresh = feed.catch_up(&snapshot);
        assert_eq!(fresh.len(), 1);
        assert_eq!(feed.oldest(), 3);
        assert_eq!(feed.read(1, 10), Err(Compacted { oldest: 3 }));
    }

    #[test]
    fn a_feed_starts_over_from_a_replayed_store_behind_its_revision() {
        let mut kv = KvStore::default();
        let mut feed = ChangeFeed::new(100, usize::MAX);
        for (seq, key) in [(1, "a"), (2, "b"), (3, "c")] {
            apply(&mut kv, seq, put(key, "v"));
        }
        feed.catch_up(&kv);
        // A restart replays the log from the start: the store is back at revision 1.
        let mut replayed = KvStore::default();
        apply(&mut replayed, 1, put("a", "v"));
        assert!(!feed.continues(&replayed));
        assert_eq!(feed.catch_up(&replayed).len(), 1);
        assert_eq!((feed.revision(), feed.oldest()), (1, 0));
        // Only what the replayed store holds: nothing of the feed's window from before.
        let keys: Vec<Key> = feed
            .read(0, 10)
            .unwrap()
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(keys, vec![b("a")]);
    }

    #[test]
    fn the_store_bounds_what_it_keeps_by_whole_commands() {
        let mut kv = KvStore::default();
        for i in 0..(RECENT_MAX as u64 + 10) {
            apply(&mut kv, i + 1, put("k", "v"));
        }
        assert_eq!(kv.changes_after(5), Err(Compacted { oldest: 10 }));
        assert_eq!(kv.changes_after(10).unwrap().len(), RECENT_MAX);
    }
}
