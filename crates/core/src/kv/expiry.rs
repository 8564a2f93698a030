//! Keys that expire, decided by the leader and applied at one log position everywhere.
//!
//! Redis's `SET k v EX s`, `EXPIRE`, `TTL` and `PERSIST` need a clock, and the state machine
//! has none: every replica must reach the same state from the same log, and replicas' clocks
//! disagree. So time enters the log only through the leader (primary), in two places:
//!
//! 1. **Stamping.** A client asks for a relative time to live ([`Expiry::After`]). The leader,
//!    when it proposes the command, replaces it with an absolute deadline on its own clock
//!    ([`Op::stamped`]: its `now` plus the time to live). Replicas apply the deadline as data;
//!    a retried command is answered from its session and never stamped twice into the state.
//! 2. **Expiring.** The leader looks for keys whose deadline its clock has passed
//!    ([`KvStore::due`]) on its periodic timer and proposes [`Op::Expired`] for each, a
//!    conditional delete: it removes the key only if the key still carries that deadline (a
//!    later `SET`, `EXPIRE` or `PERSIST` makes it a no-op). Every replica therefore removes the
//!    key at the same log position, whatever its own clock says. A duplicate proposal (the
//!    leader asks again while the first is in flight, or a new leader asks again) is harmless.
//!
//! **Reads compare deadlines, but never answer from the comparison alone.** A read served
//! between the deadline and the commit of its `Expired` entry must not return the value
//! (that is the promise: no read returns an expired value), but answering "absent" from the
//! serving node's clock alone would let a later leader whose clock lags show the value again.
//! So a read of a key whose deadline the serving node's clock has passed, still present in
//! the state, is refused with [`ClientError::Unavailable`] ([`KvStore::visible`]); the client
//! retries, and by then the `Expired` entry has committed and the key is absent. What a read
//! returns is therefore always state of the log (linearizability does not depend on clocks),
//! and whether a value is still shown depends on the serving node's clock: **with every clock
//! within ε of true time, no read invoked more than ε after a key's deadline (in true time,
//! `proposal + ttl`) returns its value.** That part rests on the clock bound the simulator
//! enforces (`Harness::clock_drift_bound_ppm`); on servers it rests on NTP.
//!
//! 3. **Writes that read the current value** (`CAS`, `INCR`, `APPEND`, `DEL`, `EXPIRE`,
//!    `PERSIST`, `SET` with `NX`/`XX`/`GET`, `GETSET`, `GETDEL`, `DELIFEQ`:
//!    [`Op::reads_current_value`]) apply in log order, where the `Expired` entry
//!    may not have arrived yet: a new leader proposes it only on its timer, after it has
//!    applied the old leader's entries, and a `CAS` proposed before then would swap a value
//!    that expired long ago (found by `quorate torture --ttl` on real processes: a `CAS`
//!    succeeded against a value a second past its deadline after a leader change). So the
//!    leader proposes [`Op::ExpireDue`] with its clock reading right before such a command
//!    when the key may carry a deadline at that point of the log: every replica removes the
//!    key there if the deadline has passed by that reading, and the command sees what a
//!    client reading at the same moment would see.

use super::{ClientError, Key, KvStore, Op};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When a key written with a time to live expires.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Expiry {
    /// This long after the leader proposes the command: what the client asks for.
    After { ttl_ms: u64 },
    /// At this reading of the proposing leader's clock: what the log carries.
    At { deadline: Time },
}

/// What `TTL` reads: Redis's -2 (absent), -1 (no deadline) or the deadline itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Lifetime {
    Absent,
    Forever,
    Until(Time),
}

impl Lifetime {
    /// Redis's `PTTL` answer at `now`: -2, -1, or the milliseconds left (at least 0).
    pub fn pttl_ms(self, now: Time) -> i64 {
        match self {
            Lifetime::Absent => -2,
            Lifetime::Forever => -1,
            Lifetime::Until(deadline) => deadline.saturating_since(now).as_millis() as i64,
        }
    }
}

impl Expiry {
    /// The absolute deadline, stamping a relative one with `now`.
    pub fn at(self, now: Time) -> Time {
        match self {
            Expiry::After { ttl_ms } => now + Duration::from_millis(ttl_ms),
            Expiry::At { deadline } => deadline,
        }
    }
}

impl Op {
    /// The operation as the leader proposes it at `now`: a relative time to live becomes an
    /// absolute deadline on the leader's clock (see the module docs). Other operations are
    /// returned unchanged.
    pub fn stamped(self, now: Time) -> Op {
        let at = |expiry: Expiry| Expiry::At {
            deadline: expiry.at(now),
        };
        match self {
            Op::PutExpiring { key, value, expiry } => Op::PutExpiring {
                key,
                value,
                expiry: at(expiry),
            },
            Op::Expire { key, expiry } => Op::Expire {
                key,
                expiry: at(expiry),
            },
            Op::Set {
                key,
                value,
                when,
                expiry: Some(expiry),
            } => Op::Set {
                key,
                value,
                when,
                expiry: Some(at(expiry)),
            },
            Op::Txn { guards, ops, .. } => Op::Txn {
                guards,
                ops: ops.into_iter().map(|op| op.stamped(now)).collect(),
                now: Some(now),
            },
            Op::LeaseGrant { ttl_ms, .. } => Op::LeaseGrant {
                ttl_ms,
                now: Some(now),
            },
            Op::LeaseKeepAlive { lease, .. } => Op::LeaseKeepAlive {
                lease,
                now: Some(now),
            },
            Op::PutLeased {
                key, value, lease, ..
            } => Op::PutLeased {
                key,
                value,
                lease,
                now: Some(now),
            },
            op => op,
        }
    }

    /// True for writes whose effect or answer depends on the key's current value, which must
    /// therefore not see a value past its deadline (item 3 of the module docs).
    pub fn reads_current_value(&self) -> bool {
        matches!(
            self,
            Op::Cas { .. }
                | Op::Incr { .. }
                | Op::Append { .. }
                | Op::Delete { .. }
                | Op::Expire { .. }
                | Op::Persist { .. }
                | Op::Set { .. }
                | Op::DeleteIf { .. }
                | Op::GetDelete { .. }
        )
    }

    /// The keys the operation gives a deadline: its key if [`Op::sets_deadline`], and for a
    /// transaction those of its operations that do.
    pub fn deadline_keys(&self) -> Vec<&Key> {
        match self {
            Op::Txn { ops, .. } => ops.iter().flat_map(Op::deadline_keys).collect(),
            op if op.sets_deadline() => vec![op.key()],
            _ => Vec::new(),
        }
    }

    /// True for operations that give their key (a transaction: any key) a deadline.
    pub fn sets_deadline(&self) -> bool {
        if let Op::Txn { ops, .. } = self {
            return ops.iter().any(Op::sets_deadline);
        }
        matches!(
            self,
            Op::PutExpiring { .. }
                | Op::Expire { .. }
                | Op::PutLeased { .. }
                | Op::Set {
                    expiry: Some(_),
                    ..
                }
        )
    }

    /// True for operations that need a leader's clock (a time to live): protocols without a
    /// leader that orders every write refuse them.
    pub fn needs_leader_clock(&self) -> bool {
        if let Op::Txn { ops, .. } = self {
            return ops.iter().any(Op::needs_leader_clock);
        }
        self.uses_lease()
            || matches!(
                self,
                Op::PutExpiring { .. }
                    | Op::Expire { .. }
                    | Op::Persist { .. }
                    | Op::Ttl { .. }
                    | Op::Set {
                        expiry: Some(_),
                        ..
                    }
            )
    }
}

/// The protocols whose leader stamps deadlines and proposes expiries.
pub const EXPIRY_PROTOCOLS: &str = "raft";

/// How a protocol that cannot order expiry refuses an operation that
/// [`Op::needs_leader_clock`]: a definite error naming the protocols that can.
pub fn refusal(protocol: &str) -> ClientError {
    ClientError::Rejected(format!(
        "keys that expire (SET EX/PX, SETEX, EXPIRE, PEXPIRE, TTL, PTTL, PERSIST) and \
         leases (LEASE, SET LEASE, EPHEMERAL) need a leader that orders every write and \
         stamps deadlines; {protocol} does not do this yet; serve with --protocol \
         {EXPIRY_PROTOCOLS} for expiring keys and leases"
    ))
}

/// Bound on the `Expired` entries a leader proposes per tick, so that a mass expiry is spread
/// over ticks instead of flooding the log at once.
pub const EXPIRIES_PER_TICK_MAX: usize = 64;

/// The session that `Expired` entries are proposed under. It uses sequence number 0 (no
/// session bookkeeping), and nobody waits for its answers.
pub const EXPIRY_CLIENT: crate::ids::ClientId = crate::ids::ClientId(u64::MAX);

impl KvStore {
    /// The deadline of `key`, if it has one: its own, or that of the lease it is attached to
    /// (see [`super::lease`]).
    pub fn deadline(&self, key: &[u8]) -> Option<Time> {
        self.own_deadline(key)
            .or_else(|| self.lease_deadline(self.lease_of(key)?))
    }

    /// The deadline `key` was given itself (`SET PX`, `EXPIRE`), not through a lease.
    pub fn own_deadline(&self, key: &[u8]) -> Option<Time> {
        self.deadlines.get(key).copied()
    }

    /// What `TTL` reads for `key`.
    pub fn lifetime(&self, key: &[u8]) -> Lifetime {
        match (self.data.contains_key(key), self.deadline(key)) {
            (false, _) => Lifetime::Absent,
            (true, None) => Lifetime::Forever,
            (true, Some(deadline)) => Lifetime::Until(deadline),
        }
    }

    /// Keys with a deadline.
    pub fn expiring_len(&self) -> usize {
        self.deadlines.len()
    }

    /// The `Expired` and `LeaseExpired` operations a leader whose clock reads `now` should
    /// propose: keys and leases whose deadline has passed, earliest first, at most `max`.
    pub fn due(&self, now: Time, max: usize) -> Vec<Op> {
        let keys = self
            .by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(max)
            .map(|(deadline, key)| {
                let op = Op::Expired {
                    key: key.clone(),
                    deadline: *deadline,
                };
                (*deadline, op)
            });
        let leases = self
            .leases_due(now, max)
            .map(|(deadline, lease)| (deadline, Op::LeaseExpired { lease, deadline }));
        let mut due: Vec<(Time, Op)> = keys.chain(leases).collect();
        due.sort_by_key(|(deadline, _)| *deadline);
        due.into_iter().take(max).map(|(_, op)| op).collect()
    }

    /// Whether a read of `op` may be answered from this state by a node whose clock reads
    /// `now`: not when the key's deadline has passed but its `Expired` entry has not been
    /// applied yet (see the module docs). Writes are always answered.
    pub fn visible(&self, op: &Op, now: Time) -> Result<(), ClientError> {
        if op.reads_every_key() {
            return self.listing_visible(op, now);
        }
        if let Op::LeaseRead { lease } = op {
            return self.lease_visible(*lease, now);
        }
        let due = |key: &&Key| self.deadline(key).is_some_and(|d| d <= now);
        if op.is_read() && op.keys().iter().any(due) {
            return Err(ClientError::Unavailable);
        }
        Ok(())
    }

    /// Serves a read at `now`: [`KvStore::visible`], then [`KvStore::read`].
    pub fn read_at(&self, op: &Op, now: Time) -> Result<super::Output, ClientError> {
        self.visible(op, now)?;
        Ok(self.read(op))
    }

    /// The answer a leader whose clock reads `now` gives for a command it just applied: a
    /// read is answered from the state after it (re-read, so that a retried read answered
    /// from its session is not the value of a key that has since expired) if
    /// [`KvStore::visible`]; a write as [`super::Applied::reply`] says.
    pub fn reply_at(
        &self,
        op: &Op,
        applied: super::Applied,
        now: Time,
    ) -> Option<Result<super::Output, ClientError>> {
        let reply = applied.reply()?;
        if op.is_read() && reply.is_ok() {
            return Some(self.read_at(op, now));
        }
        Some(reply)
    }

    /// Sets (or with `None` clears) the deadline of `key`, keeping the index in step, and
    /// detaches the key from its lease: a key has one lifetime.
    pub(super) fn set_deadline(&mut self, key: &Key, deadline: Option<Time>) {
        if self.detach(key) {
            self.touch(key);
        }
        let old = self.deadlines.remove(key);
        if let Some(old) = old {
            self.by_deadline.remove(&(old, key.clone()));
        }
        if let Some(deadline) = deadline {
            self.deadlines.insert(key.clone(), deadline);
            self.by_deadline.insert((deadline, key.clone()));
        }
        if old != deadline {
            self.touch(key);
        }
    }

    /// Applies `EXPIRE`: a deadline for a present key (false: the key is absent).
    pub(super) fn apply_expire(&mut self, key: &Key, expiry: Expiry) -> bool {
        let present = self.data.contains_key(key);
        if present {
            self.set_deadline(key, Some(stamped_deadline(expiry)));
        }
        present
    }

    /// Applies `PERSIST`: true when a deadline was removed.
    pub(super) fn apply_persist(&mut self, key: &Key) -> bool {
        let had = self.deadlines.contains_key(key) || self.lease_of(key).is_some();
        self.set_deadline(key, None);
        had
    }

    /// Applies `Expired`: removes `key` if it still carries `deadline`.
    pub(super) fn apply_expired(&mut self, key: &Key, deadline: Time) -> bool {
        let current = self.own_deadline(key) == Some(deadline);
        if current {
            self.remove_data(key);
            self.set_deadline(key, None);
        }
        current
    }

    /// Applies [`Op::ExpireDue`]: removes `key` if its deadline is at or before `now`; if
    /// the deadline is its lease's, the lease ends with every key attached to it.
    pub(super) fn expire_due(&mut self, key: &Key, now: Time) -> super::Output {
        if let Some(lease) = self.lease_of(key) {
            return match self.lease_deadline(lease) {
                Some(deadline) if deadline <= now => super::Output::Lease(self.end_lease(lease)),
                _ => super::Output::Existed(false),
            };
        }
        super::Output::Existed(match self.own_deadline(key) {
            Some(deadline) if deadline <= now => self.apply_expired(key, deadline),
            _ => false,
        })
    }

    /// [`KvStore::expire_due`], answering whether anything was removed.
    pub(super) fn apply_expire_due(&mut self, key: &Key, now: Time) -> bool {
        matches!(
            self.expire_due(key, now),
            super::Output::Existed(true) | super::Output::Lease(Some(_))
        )
    }
}

/// The deadline of an expiry as the log carries it.
///
/// # Panics
/// If it was not stamped: a protocol proposed a relative time to live without
/// [`Op::stamped`], and replicas would disagree about the deadline.
pub(super) fn stamped_deadline(expiry: Expiry) -> Time {
    match expiry {
        Expiry::At { deadline } => deadline,
        Expiry::After { .. } => panic!("a time to live reached the state machine unstamped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Applied, Output};
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn t(ms: u64) -> Time {
        Time::from_nanos(ms * 1_000_000)
    }

    fn put_ttl(key: &str, ttl_ms: u64) -> Op {
        Op::PutExpiring {
            key: b(key),
            value: b("v"),
            expiry: Expiry::After { ttl_ms },
        }
    }

    fn get(key: &str) -> Op {
        Op::Get { key: b(key) }
    }

    #[test]
    fn the_leader_stamps_a_deadline_and_expiry_removes_the_key_at_its_log_position() {
        let mut kv = KvStore::default();
        kv.apply_op(&put_ttl("k", 100).stamped(t(1_000)));
        assert_eq!(kv.deadline(b"k"), Some(t(1_100)));
        assert_eq!(kv.due(t(1_099), 10), Vec::new());
        let due = kv.due(t(1_100), 10);
        let expected = Op::Expired {
            key: b("k"),
            deadline: t(1_100),
        };
        assert_eq!(due, vec![expected.clone()]);
        // Until the entry applies, the key is there for writes, refused to reads past it.
        assert_eq!(
            kv.read_at(&get("k"), t(1_099)),
            Ok(Output::Value(Some(b("v"))))
        );
        assert_eq!(
            kv.read_at(&get("k"), t(1_100)),
            Err(ClientError::Unavailable)
        );
        assert_eq!(kv.apply_op(&expected), Output::Existed(true));
        assert_eq!(kv.read_at(&get("k"), t(5_000)), Ok(Output::Value(None)));
        assert_eq!(kv.expiring_len(), 0);
        assert_eq!(kv.due(t(5_000), 10), Vec::new());
        // A duplicate proposal of the same expiry changes nothing.
        assert_eq!(kv.apply_op(&expected), Output::Existed(false));
    }

    #[test]
    fn expiring_len_counts_the_keys_with_a_deadline_of_their_own() {
        // The other tests read `expiring_len` only once it is back to 0, which a count stuck
        // at 0 passes too.
        let mut kv = KvStore::default();
        assert_eq!(kv.expiring_len(), 0);
        kv.apply_op(&put_ttl("a", 100).stamped(t(0)));
        kv.apply_op(&put_ttl("b", 200).stamped(t(0)));
        kv.apply_op(&Op::Put {
            key: b("c"),
            value: b("v"),
        });
        assert_eq!(kv.expiring_len(), 2, "c has no deadline");
        assert_eq!(
            kv.apply_op(&Op::Persist { key: b("a") }),
            Output::Existed(true)
        );
        assert_eq!(kv.expiring_len(), 1);
        let expired = Op::Expired {
            key: b("b"),
            deadline: t(200),
        };
        assert_eq!(kv.apply_op(&expired), Output::Existed(true));
        assert_eq!(kv.expiring_len(), 0);
    }

    #[test]
    fn expire_due_removes_a_key_only_at_or_past_its_deadline_so_a_cas_then_misses_it() {
        let mut kv = KvStore::default();
        kv.apply_op(&put_ttl("k", 100).stamped(t(1_000)));
        let due = |now| Op::ExpireDue {
            key: b("k"),
            now: t(now),
        };
        let cas = Op::Cas {
            key: b("k"),
            expected: Some(b("v")),
            new: b("w"),
        };
        assert!(cas.reads_current_value() && !get("k").reads_current_value());
        // Before the deadline the key stays, and the CAS swaps it (clearing the deadline).
        assert_eq!(kv.apply_op(&due(1_099)), Output::Existed(false));
        assert_eq!(kv.clone().apply_op(&cas), Output::Swapped(true));
        // At the deadline the key goes, and the CAS that follows in the log misses it.
        assert_eq!(kv.apply_op(&due(1_100)), Output::Existed(true));
        assert_eq!(kv.apply_op(&cas), Output::Swapped(false));
        assert_eq!(kv.expiring_len(), 0);
        // A key without a deadline is never removed.
        kv.apply_op(&Op::Put {
            key: b("k"),
            value: b("x"),
        });
        assert_eq!(kv.apply_op(&due(1_000_000_000)), Output::Existed(false));
        assert_eq!(kv.read(&get("k")), Output::Value(Some(b("x"))));
    }

    #[test]
    fn a_later_write_or_persist_makes_an_old_expiry_a_no_op() {
        let mut kv = KvStore::default();
        let expired = |deadline| Op::Expired {
            key: b("k"),
            deadline,
        };
        kv.apply_op(&put_ttl("k", 100).stamped(t(0)));
        kv.apply_op(&Op::Put {
            key: b("k"),
            value: b("w"),
        });
        assert_eq!(kv.lifetime(b"k"), Lifetime::Forever, "SET clears the TTL");
        assert_eq!(kv.apply_op(&expired(t(100))), Output::Existed(false));
        assert_eq!(kv.get(b"k"), Some(&b("w")));

        let expire = Op::Expire {
            key: b("k"),
            expiry: Expiry::After { ttl_ms: 50 },
        };
        assert_eq!(kv.apply_op(&expire.stamped(t(10))), Output::Existed(true));
        assert_eq!(kv.lifetime(b"k"), Lifetime::Until(t(60)));
        kv.apply_op(&Op::Append {
            key: b("k"),
            value: b("x"),
        });
        assert_eq!(kv.deadline(b"k"), Some(t(60)), "APPEND keeps the TTL");
        assert_eq!(
            kv.apply_op(&Op::Persist { key: b("k") }),
            Output::Existed(true)
        );
        assert_eq!(
            kv.apply_op(&Op::Persist { key: b("k") }),
            Output::Existed(false)
        );
        assert_eq!(kv.apply_op(&expired(t(60))), Output::Existed(false));
        assert_eq!(kv.get(b"k"), Some(&b("wx")));

        let absent = Op::Expire {
            key: b("none"),
            expiry: Expiry::At { deadline: t(1) },
        };
        assert_eq!(kv.apply_op(&absent), Output::Existed(false));
        assert_eq!(kv.lifetime(b"none"), Lifetime::Absent);
        assert_eq!(kv.expiring_len(), 0, "nothing expires that is not there");
    }

    #[test]
    fn delete_clears_the_deadline_and_due_keys_come_earliest_first_and_bounded() {
        let mut kv = KvStore::default();
        for (key, ttl) in [("c", 30), ("a", 10), ("b", 20)] {
            kv.apply_op(&put_ttl(key, ttl).stamped(t(0)));
        }
        kv.apply_op(&Op::Delete { key: b("b") });
        assert_eq!(kv.lifetime(b"b"), Lifetime::Absent);
        let keys: Vec<Key> = kv
            .due(t(100), 10)
            .iter()
            .map(|op| op.key().clone())
            .collect();
        assert_eq!(keys, [b("a"), b("c")]);
        assert_eq!(kv.due(t(100), 1).len(), 1);
    }

    #[test]
    fn ttl_reads_answer_like_redis() {
        let mut kv = KvStore::default();
        kv.apply_op(&put_ttl("k", 1_500).stamped(t(0)));
        kv.apply_op(&Op::Put {
            key: b("p"),
            value: b("v"),
        });
        let ttl = |key| kv.read(&Op::Ttl { key: b(key) });
        assert_eq!(ttl("k"), Output::Lifetime(Lifetime::Until(t(1_500))));
        assert_eq!(Lifetime::Until(t(1_500)).pttl_ms(t(400)), 1_100);
        assert_eq!(Lifetime::Until(t(1_500)).pttl_ms(t(2_000)), 0);
        assert_eq!(Lifetime::Forever.pttl_ms(t(0)), -1);
        assert_eq!(Lifetime::Absent.pttl_ms(t(0)), -2);
        assert_eq!(ttl("p"), Output::Lifetime(Lifetime::Forever));
        assert_eq!(ttl("x"), Output::Lifetime(Lifetime::Absent));
        assert!(Op::Ttl { key: b("k") }.is_read());
        assert!(put_ttl("k", 1).needs_leader_clock());
        assert!(!get("k").needs_leader_clock());
    }

    /// What a leader answers for a command it just applied (Raft's apply path): a write its
    /// own reply, whatever the state of its key; a read that succeeded read again at the
    /// leader's clock (a retried read answered from its session sees the current value, or
    /// `Unavailable` once its key is due); a refusal as it is, for a read as for a write;
    /// nothing for a stale request.
    #[test]
    fn a_leader_answers_a_write_as_applied_and_reads_a_read_that_succeeded_again() {
        let mut kv = KvStore::default();
        kv.apply_op(&put_ttl("k", 100).stamped(t(1_000)));
        let put = Op::Put {
            key: b("j"),
            value: b("w"),
        };
        kv.apply_op(&put);
        let done = || Applied::Fresh(Output::Done);
        assert_eq!(kv.reply_at(&put, done(), t(1_000)), Some(Ok(Output::Done)));
        let put_due = Op::Put {
            key: b("k"),
            value: b("x"),
        };
        assert_eq!(
            kv.reply_at(&put_due, done(), t(1_100)),
            Some(Ok(Output::Done))
        );
        let cached = Applied::Cached(Output::Value(None));
        let now = Some(Ok(Output::Value(Some(b("w")))));
        assert_eq!(kv.reply_at(&get("j"), cached, t(1_000)), now);
        let fresh = Applied::Fresh(Output::Value(Some(b("v"))));
        let due = Some(Err(ClientError::Unavailable));
        assert_eq!(kv.reply_at(&get("k"), fresh, t(1_100)), due);
        let expired = Some(Err(ClientError::SessionExpired));
        assert_eq!(kv.reply_at(&get("j"), Applied::Expired, t(1_000)), expired);
        assert_eq!(kv.reply_at(&put, Applied::Expired, t(1_000)), expired);
        assert_eq!(kv.reply_at(&get("j"), Applied::Stale, t(1_000)), None);
    }

    #[test]
    #[should_panic(expected = "unstamped")]
    fn an_unstamped_time_to_live_never_reaches_the_state() {
        KvStore::default().apply_op(&put_ttl("k", 100));
    }
}
