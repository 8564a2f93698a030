//! Leases: one deadline shared by several keys and kept alive by a client (etcd's leases, and
//! under them ZooKeeper's ephemeral nodes).
//!
//! ## Problem
//!
//! A service that registers itself (`/services/db/node-3 = 10.0.0.3:5432`), a lock holder or
//! an elected leader writes keys that must disappear when it dies, and only then. A time to
//! live per key ([`super::expiry`]) makes the holder renew every key on its own; etcd instead
//! grants a *lease* with a time to live, attaches any number of keys to it, and the holder
//! renews the lease alone ("keep-alive"). When the lease runs out, or is revoked, every key
//! attached to it goes at once. ZooKeeper's ephemeral nodes are the same thing with the lease
//! held by the client's session: the server keeps it alive while the session lives.
//!
//! ## The algorithm
//!
//! Leases are replicated state, changed only through the log, with time entering the log
//! only through the leader, exactly as for keys that expire ([`super::expiry`]):
//!
//! 1. **Grant** ([`Op::LeaseGrant`]): the leader stamps its clock reading `now` into the
//!    command ([`Op::stamped`]); applying it creates lease `id` (the count of leases granted
//!    so far plus one: the same on every replica) with deadline `now + ttl`.
//! 2. **Attach** ([`Op::PutLeased`], `SET k v LEASE id`): writes the value and attaches the
//!    key to the lease, detaching it from any other lease or deadline. It fails, changing
//!    nothing, if the lease does not exist or its deadline is at or before the stamped `now`
//!    (a lease is never given keys after its time). A later write without a lease, `DEL`,
//!    `EXPIRE` or `PERSIST` detaches the key (etcd's put without a lease does the same).
//! 3. **Keep-alive** ([`Op::LeaseKeepAlive`]): moves the deadline to the stamped `now + ttl`;
//!    fails if the lease's deadline has already passed at `now`, so a lease that readers may
//!    already have seen as gone never comes back.
//! 4. **Expiry and revocation**: the leader's periodic timer proposes [`Op::LeaseExpired`]
//!    for a lease its clock finds past the deadline ([`KvStore::due`]), conditional on the
//!    deadline being unchanged; [`Op::LeaseRevoke`] is the client's explicit end. Either
//!    removes the lease and every key attached to it in one step, at one log position on
//!    every replica.
//! 5. **Reads** treat an attached key's deadline as the lease's ([`KvStore::deadline`]), so
//!    everything [`super::expiry`] promises holds: a read of a key whose lease the serving
//!    node's clock finds past due is refused until the `LeaseExpired` entry applies, and a
//!    write that reads the current value is preceded by `ExpireDue`, which expires the whole
//!    lease when it is due.
//!
//! With every clock within ε of true time: a key attached to a lease is not removed before
//! the lease's deadline minus ε, unless revoked; no read invoked more than ε after the
//! deadline (the last successful keep-alive's proposal plus the time to live) returns it.
//!
//! Left out: etcd's lease checkpoints (a new leader keeps the stamped deadline, it does not
//! extend it to a full time to live) and leases on protocols without a leader's clock, which
//! refuse them as they refuse expiring keys.

use super::{Key, KvStore, Op, Output, Value};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// A lease as the store holds it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub(super) struct Lease {
    ttl_ms: u64,
    deadline: Time,
    keys: BTreeSet<Key>,
}

/// A lease as commands answer it: [`Output::Lease`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct LeaseView {
    pub id: u64,
    pub ttl_ms: u64,
    /// On the clock of the leader that granted or last renewed it.
    pub deadline: Time,
    /// The keys attached (for a revocation or expiry: the keys it removed), in key order.
    pub keys: Vec<Key>,
}

impl Op {
    /// True for the commands on leases themselves (not [`Op::PutLeased`], which names a key).
    pub fn is_lease_op(&self) -> bool {
        matches!(
            self,
            Op::LeaseGrant { .. }
                | Op::LeaseKeepAlive { .. }
                | Op::LeaseRevoke { .. }
                | Op::LeaseExpired { .. }
                | Op::LeaseRead { .. }
        )
    }

    /// True for every command that involves a lease.
    pub fn uses_lease(&self) -> bool {
        self.is_lease_op() || matches!(self, Op::PutLeased { .. })
    }
}

/// The clock reading a lease command carries once the leader stamped it.
///
/// # Panics
/// If it was not stamped: replicas would disagree about the deadline.
pub(super) fn stamped_now(now: Option<Time>) -> Time {
    now.expect("a lease command reached the state machine unstamped")
}

impl KvStore {
    fn lease_view(&self, id: u64) -> Option<LeaseView> {
        let lease = self.leases.get(&id)?;
        Some(LeaseView {
            id,
            ttl_ms: lease.ttl_ms,
            deadline: lease.deadline,
            keys: lease.keys.iter().cloned().collect(),
        })
    }

    /// The lease `key` is attached to, if any.
    pub fn lease_of(&self, key: &[u8]) -> Option<u64> {
        self.lease_of.get(key).copied()
    }

    /// The deadline of lease `id`, if it exists.
    pub fn lease_deadline(&self, id: u64) -> Option<Time> {
        self.leases.get(&id).map(|lease| lease.deadline)
    }

    /// Leases held.
    pub fn leases_len(&self) -> usize {
        self.leases.len()
    }

    /// Whether lease `id` exists and its deadline is after `now`.
    fn lease_alive(&self, id: u64, now: Time) -> bool {
        self.lease_deadline(id)
            .is_some_and(|deadline| deadline > now)
    }

    fn set_lease_deadline(&mut self, id: u64, deadline: Time) {
        let lease = self.leases.get_mut(&id).expect("lease exists");
        self.leases_by_deadline.remove(&(lease.deadline, id));
        lease.deadline = deadline;
        self.leases_by_deadline.insert((deadline, id));
    }

    /// Applies [`super::Op::LeaseGrant`]: a new lease, answered.
    pub(super) fn apply_lease_grant(&mut self, ttl_ms: u64, now: Time) -> Output {
        self.leases_granted += 1;
        let id = self.leases_granted;
        let deadline = now + Duration::from_millis(ttl_ms);
        let lease = Lease {
            ttl_ms,
            deadline,
            keys: BTreeSet::new(),
        };
        self.leases.insert(id, lease);
        self.leases_by_deadline.insert((deadline, id));
        Output::Lease(self.lease_view(id))
    }

    /// Applies [`super::Op::LeaseKeepAlive`]: the renewed lease, or `None` (nothing changed)
    /// when it is gone or already past its deadline at `now`.
    pub(super) fn apply_lease_keep_alive(&mut self, id: u64, now: Time) -> Output {
        if !self.lease_alive(id, now) {
            return Output::Lease(None);
        }
        let ttl = Duration::from_millis(self.leases[&id].ttl_ms);
        self.set_lease_deadline(id, now + ttl);
        Output::Lease(self.lease_view(id))
    }

    /// Applies [`super::Op::PutLeased`]: true when the lease was alive at `now` and the key
    /// now holds `value` attached to it.
    pub(super) fn apply_put_leased(
        &mut self,
        key: &Key,
        value: &Value,
        id: u64,
        now: Time,
    ) -> bool {
        if !self.lease_alive(id, now) {
            return false;
        }
        self.insert_data(key, value.clone());
        self.set_deadline(key, None);
        self.lease_of.insert(key.clone(), id);
        self.leases
            .get_mut(&id)
            .expect("alive")
            .keys
            .insert(key.clone());
        true
    }

    /// Detaches `key` from its lease, if it has one; true when it had.
    pub(super) fn detach(&mut self, key: &Key) -> bool {
        let Some(id) = self.lease_of.remove(key) else {
            return false;
        };
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
        true
    }

    /// Removes lease `id` and every key attached to it: the lease as it was, with the keys
    /// removed (`None`: there was no such lease).
    pub(super) fn end_lease(&mut self, id: u64) -> Option<LeaseView> {
        let lease = self.leases.remove(&id)?;
        self.leases_by_deadline.remove(&(lease.deadline, id));
        for key in &lease.keys {
            self.lease_of.remove(key);
            self.remove_data(key);
        }
        Some(LeaseView {
            id,
            ttl_ms: lease.ttl_ms,
            deadline: lease.deadline,
            keys: lease.keys.into_iter().collect(),
        })
    }

    /// Puts back a lease carried by a snapshot chunk (its keys arrive as pairs).
    pub(super) fn restore_lease(&mut self, id: u64, lease: Lease) {
        for key in &lease.keys {
            self.lease_of.insert(key.clone(), id);
        }
        self.leases_by_deadline.insert((lease.deadline, id));
        self.leases.insert(id, lease);
    }

    /// Applies [`super::Op::LeaseExpired`]: ends the lease if it still has `deadline`.
    pub(super) fn apply_lease_expired(&mut self, id: u64, deadline: Time) -> Output {
        if self.lease_deadline(id) != Some(deadline) {
            return Output::Lease(None);
        }
        Output::Lease(self.end_lease(id))
    }

    /// The `LeaseExpired` operations due at `now`, earliest first, at most `max`.
    pub(super) fn leases_due(
        &self,
        now: Time,
        max: usize,
    ) -> impl Iterator<Item = (Time, u64)> + '_ {
        self.leases_by_deadline
            .iter()
            .take_while(move |(deadline, _)| *deadline <= now)
            .take(max)
            .copied()
    }

    /// Lease `id` as a read answers it, refused while it is past its deadline at `now` but
    /// not yet ended (as a key past its deadline is; see [`super::expiry`]).
    pub(super) fn lease_visible(&self, id: u64, now: Time) -> Result<(), super::ClientError> {
        match self.lease_deadline(id) {
            Some(deadline) if deadline <= now => Err(super::ClientError::Unavailable),
            _ => Ok(()),
        }
    }

    /// Answers [`super::Op::LeaseRead`].
    pub(super) fn read_lease(&self, id: u64) -> Output {
        Output::Lease(self.lease_view(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{ClientError, KvBuilder, KvCursor};
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn t(ms: u64) -> Time {
        Time::from_nanos(ms * 1_000_000)
    }

    fn grant(kv: &mut KvStore, ttl_ms: u64, now: u64) -> u64 {
        let op = Op::LeaseGrant { ttl_ms, now: None }.stamped(t(now));
        match kv.apply_op(&op) {
            Output::Lease(Some(view)) => view.id,
            other => panic!("grant answered {other:?}"),
        }
    }

    fn put(kv: &mut KvStore, key: &str, lease: u64, now: u64) -> Output {
        let op = Op::PutLeased {
            key: b(key),
            value: b("v"),
            lease,
            now: None,
        };
        kv.apply_op(&op.stamped(t(now)))
    }

    fn get(key: &str) -> Op {
        Op::Get { key: b(key) }
    }

    #[test]
    fn keys_attached_to_a_lease_go_together_when_it_expires_and_not_before() {
        let mut kv = KvStore::default();
        let id = grant(&mut kv, 100, 1_000);
        assert_eq!(id, 1, "ids count the leases granted");
        assert_eq!(put(&mut kv, "a", id, 1_010), Output::Existed(true));
        assert_eq!(put(&mut kv, "b", id, 1_020), Output::Existed(true));
        assert_eq!(
            kv.deadline(b"a"),
            Some(t(1_100)),
            "a key reads its lease's deadline"
        );
        assert_eq!(kv.own_deadline(b"a"), None);
        assert_eq!(kv.due(t(1_099), 10), Vec::new());
        let due = kv.due(t(1_100), 10);
        let expired = Op::LeaseExpired {
            lease: id,
            deadline: t(1_100),
        };
        assert_eq!(due, vec![expired.clone()]);
        // Past the deadline, before the entry applies: reads of its keys and of the lease
        // itself wait.
        assert_eq!(
            kv.read_at(&get("a"), t(1_100)),
            Err(ClientError::Unavailable)
        );
        let read_lease = Op::LeaseRead { lease: id };
        assert!(matches!(
            kv.read_at(&read_lease, t(1_099)),
            Ok(Output::Lease(Some(_)))
        ));
        assert_eq!(
            kv.read_at(&read_lease, t(1_100)),
            Err(ClientError::Unavailable)
        );
        let Output::Lease(Some(ended)) = kv.apply_op(&expired) else {
            panic!("the lease ends")
        };
        assert_eq!(ended.keys, vec![b("a"), b("b")]);
        assert_eq!(kv.get(b"a"), None);
        assert_eq!(kv.get(b"b"), None);
        assert_eq!(kv.leases_len(), 0);
        assert_eq!(
            kv.apply_op(&expired),
            Output::Lease(None),
            "a duplicate is a no-op"
        );
    }

    #[test]
    fn a_keep_alive_moves_the_deadline_and_the_stale_expiry_is_a_no_op() {
        let mut kv = KvStore::default();
        let id = grant(&mut kv, 100, 1_000);
        put(&mut kv, "a", id, 1_000);
        let stale = kv.due(t(1_100), 10);
        let keep = Op::LeaseKeepAlive {
            lease: id,
            now: None,
        };
        let Output::Lease(Some(view)) = kv.apply_op(&keep.clone().stamped(t(1_050))) else {
            panic!("alive")
        };
        assert_eq!(view.deadline, t(1_150));
        assert_eq!(kv.apply_op(&stale[0]), Output::Lease(None));
        assert_eq!(kv.get(b"a"), Some(&b("v")));
        // Past its deadline a lease is not renewed, and gets no keys.
        assert_eq!(kv.apply_op(&keep.stamped(t(1_150))), Output::Lease(None));
        assert_eq!(put(&mut kv, "c", id, 1_150), Output::Existed(false));
        assert_eq!(kv.get(b"c"), None);
        assert_eq!(
            put(&mut kv, "c", 99, 1_000),
            Output::Existed(false),
            "no such lease"
        );
    }

    #[test]
    fn a_plain_write_detaches_a_key_and_revoke_removes_only_attached_keys() {
        let mut kv = KvStore::default();
        let id = grant(&mut kv, 100, 0);
        put(&mut kv, "a", id, 0);
        put(&mut kv, "b", id, 0);
        kv.apply_op(&Op::Put {
            key: b("a"),
            value: b("mine"),
        });
        assert_eq!(kv.lease_of(b"a"), None);
        assert_eq!(kv.deadline(b"a"), None);
        let Output::Lease(Some(ended)) = kv.apply_op(&Op::LeaseRevoke { lease: id }) else {
            panic!("revoked")
        };
        assert_eq!(ended.keys, vec![b("b")]);
        assert_eq!(kv.get(b"a"), Some(&b("mine")));
        assert_eq!(kv.get(b"b"), None);
        assert_eq!(
            kv.apply_op(&Op::LeaseRevoke { lease: id }),
            Output::Lease(None)
        );
    }

    #[test]
    fn expire_due_on_an_attached_key_ends_the_whole_lease() {
        let mut kv = KvStore::default();
        let id = grant(&mut kv, 100, 0);
        put(&mut kv, "a", id, 0);
        put(&mut kv, "b", id, 0);
        let due = |now| Op::ExpireDue {
            key: b("a"),
            now: t(now),
        };
        assert_eq!(kv.apply_op(&due(99)), Output::Existed(false));
        assert!(matches!(kv.apply_op(&due(100)), Output::Lease(Some(_))));
        assert_eq!((kv.get(b"a"), kv.get(b"b")), (None, None));
    }

    #[test]
    fn leases_travel_in_snapshot_chunks_and_ttl_reads_them() {
        let mut kv = KvStore::default();
        let id = grant(&mut kv, 100, 0);
        put(&mut kv, "a", id, 0);
        kv.apply_op(&Op::LeaseGrant {
            ttl_ms: 5,
            now: Some(t(0)),
        });
        let mut builder = KvBuilder::new();
        let mut cursor = KvCursor::Start;
        loop {
            let (chunk, next) = kv.chunk(&cursor, 1);
            builder.push(chunk);
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let copy = builder.finish();
        assert_eq!(copy, kv);
        assert_eq!(
            copy.read(&Op::Ttl { key: b("a") }),
            Output::Lifetime(crate::kv::Lifetime::Until(t(100)))
        );
        let mut copy = copy;
        assert_eq!(grant(&mut copy, 1, 0), 3, "ids go on after a restore");
    }
}
