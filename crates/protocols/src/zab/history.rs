//! A server's history: a snapshot of the delivered prefix followed by transactions in zxid
//! order.
//!
//! The snapshot covers every transaction up to `snapshot.last_zxid` (the empty history when
//! that is zero); `txns` hold the transactions after it, strictly increasing in zxid. Zxids
//! are not dense (a new epoch starts its counter at 1), so positions are found by binary
//! search, never by arithmetic.

use super::message::{Snapshot, Txn, Zxid};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct History {
    snapshot: Arc<Snapshot>,
    txns: Vec<Txn>,
}

impl History {
    pub fn new(snapshot: Arc<Snapshot>, txns: Vec<Txn>) -> History {
        let history = History { snapshot, txns };
        history.assert_ordered();
        history
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    pub fn txns(&self) -> &[Txn] {
        &self.txns
    }

    pub fn last_zxid(&self) -> Zxid {
        self.txns
            .last()
            .map_or(self.snapshot.last_zxid, |txn| txn.zxid)
    }

    /// True when `zxid` ends a prefix of this history: the snapshot's last zxid or a held
    /// transaction's.
    pub fn holds(&self, zxid: Zxid) -> bool {
        zxid == self.snapshot.last_zxid || self.position(zxid).is_ok()
    }

    /// The transactions after `zxid` (which must not be inside the snapshot).
    pub fn after(&self, zxid: Zxid) -> &[Txn] {
        assert!(
            zxid >= self.snapshot.last_zxid,
            "asked for transactions inside the snapshot"
        );
        let start = match self.position(zxid) {
            Ok(index) => index + 1,
            Err(index) => index,
        };
        &self.txns[start..]
    }

    /// The highest zxid below `zxid` that ends a prefix of this history: where a follower
    /// whose last zxid is `zxid`, which this history does not hold, must truncate to. `None`
    /// when no such prefix end is known (`zxid` is not after the snapshot).
    pub fn last_before(&self, zxid: Zxid) -> Option<Zxid> {
        if zxid <= self.snapshot.last_zxid {
            return None;
        }
        let index = match self.position(zxid) {
            Ok(index) | Err(index) => index,
        };
        Some(match index {
            0 => self.snapshot.last_zxid,
            _ => self.txns[index - 1].zxid,
        })
    }

    /// Transactions up to `zxid` that are not in the snapshot.
    pub fn count_through(&self, zxid: Zxid) -> usize {
        match self.position(zxid) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    pub fn append(&mut self, txn: Txn) {
        assert!(
            txn.zxid > self.last_zxid(),
            "history append out of order: {} after {}",
            txn.zxid,
            self.last_zxid()
        );
        self.txns.push(txn);
    }

    /// Removes every transaction after `zxid`, which must end a prefix of this history.
    pub fn truncate_after(&mut self, zxid: Zxid) {
        assert!(self.holds(zxid), "truncating to {zxid}, which is not held");
        let keep = self.count_through(zxid);
        self.txns.truncate(keep);
    }

    /// Replaces the prefix through `snapshot.last_zxid` (which must be held) by the snapshot.
    pub fn compact(&mut self, snapshot: Arc<Snapshot>) {
        assert!(
            self.holds(snapshot.last_zxid),
            "compacting past the history"
        );
        let drop = self.count_through(snapshot.last_zxid);
        self.txns.drain(..drop);
        self.snapshot = snapshot;
        self.assert_ordered();
    }

    fn position(&self, zxid: Zxid) -> Result<usize, usize> {
        self.txns.binary_search_by(|txn| txn.zxid.cmp(&zxid))
    }

    fn assert_ordered(&self) {
        let mut last = self.snapshot.last_zxid;
        for txn in &self.txns {
            assert!(txn.zxid > last, "history out of zxid order");
            last = txn.zxid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_core::{ClientId, Command, KvStore, Op};

    fn txn(epoch: u64, counter: u64) -> Txn {
        Txn {
            zxid: Zxid::new(epoch, counter),
            command: Command {
                client: ClientId(1),
                seq: 0,
                op: Op::Get { key: "k".into() },
            },
        }
    }

    fn history(zxids: &[(u64, u64)]) -> History {
        let snapshot = Arc::new(Snapshot::empty(8));
        History::new(snapshot, zxids.iter().map(|&(e, c)| txn(e, c)).collect())
    }

    #[test]
    fn positions_are_found_by_zxid() {
        let h = history(&[(1, 1), (1, 2), (3, 1)]);
        assert_eq!(h.last_zxid(), Zxid::new(3, 1));
        assert!(h.holds(Zxid::ZERO) && h.holds(Zxid::new(1, 2)));
        assert!(!h.holds(Zxid::new(2, 1)));
        assert_eq!(h.after(Zxid::new(1, 1)).len(), 2);
        assert_eq!(h.after(Zxid::new(2, 7)).len(), 1);
        assert_eq!(h.after(Zxid::ZERO).len(), 3);
        assert_eq!(h.last_before(Zxid::new(2, 5)), Some(Zxid::new(1, 2)));
        assert_eq!(h.last_before(Zxid::new(1, 1)), Some(Zxid::ZERO));
        assert_eq!(h.last_before(Zxid::new(9, 9)), Some(Zxid::new(3, 1)));
        assert_eq!(h.last_before(Zxid::ZERO), None);
    }

    #[test]
    fn truncation_and_compaction_keep_the_order() {
        let mut h = history(&[(1, 1), (1, 2), (1, 3)]);
        h.truncate_after(Zxid::new(1, 1));
        assert_eq!(h.last_zxid(), Zxid::new(1, 1));
        h.append(txn(2, 1));
        let snapshot = Arc::new(Snapshot {
            last_zxid: Zxid::new(1, 1),
            state: KvStore::new(8),
        });
        h.compact(snapshot);
        assert_eq!(h.txns().len(), 1);
        assert!(h.holds(Zxid::new(1, 1)) && !h.holds(Zxid::ZERO));
        assert_eq!(h.last_before(Zxid::new(1, 5)), Some(Zxid::new(1, 1)));
        assert_eq!(h.last_before(Zxid::new(1, 1)), None);
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn appending_an_older_zxid_is_a_programmer_error() {
        let mut h = history(&[(2, 1)]);
        h.append(txn(1, 9));
    }
}
