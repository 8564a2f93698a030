//! The replica's log: a snapshot of the compacted prefix followed by the entries after it.
//!
//! Op-numbers are 1-based. The snapshot covers `1..=snapshot.last_op` (op 0 of view 0 when
//! nothing is compacted), and `entries[k]` has op `snapshot.last_op + 1 + k`. `view_at(op)` is
//! known for the snapshot's last op and every entry after it.

use super::message::{Entry, Payload, Snapshot};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Log {
    snapshot: Arc<Snapshot>,
    entries: Vec<Entry>,
}

impl Log {
    pub fn new(snapshot: Arc<Snapshot>, entries: Vec<Entry>) -> Log {
        let log = Log { snapshot, entries };
        log.assert_contiguous();
        log
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The op of the first entry still held as an entry.
    pub fn first_op(&self) -> u64 {
        self.snapshot.last_op + 1
    }

    pub fn last_op(&self) -> u64 {
        self.snapshot.last_op + self.entries.len() as u64
    }

    pub fn last_view(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.last_view, |entry| entry.view)
    }

    /// The view of the entry at `op`, if it is known (not compacted, not beyond the end).
    pub fn view_at(&self, op: u64) -> Option<u64> {
        if op == self.snapshot.last_op {
            return Some(self.snapshot.last_view);
        }
        self.entry(op).map(|entry| entry.view)
    }

    pub fn entry(&self, op: u64) -> Option<&Entry> {
        let offset = op.checked_sub(self.first_op())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `count_max` entries from `from` through `through` (`from` must not be compacted).
    pub fn slice(&self, from: u64, through: u64, count_max: usize) -> Vec<Entry> {
        assert!(from >= self.first_op(), "slice of a compacted prefix");
        let through = through.min(self.last_op());
        if from > through {
            return Vec::new();
        }
        let start = (from - self.first_op()) as usize;
        let end = ((through - self.first_op()) as usize + 1).min(start.saturating_add(count_max));
        self.entries[start..end].to_vec()
    }

    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.op, self.last_op() + 1, "log append out of order");
        assert!(
            entry.view >= self.last_view(),
            "log views must not decrease"
        );
        self.entries.push(entry);
    }

    /// Removes every entry at `op` and after.
    pub fn truncate_from(&mut self, op: u64) {
        assert!(op > self.snapshot.last_op, "truncating into the snapshot");
        let keep = (op - self.first_op()) as usize;
        self.entries.truncate(keep);
    }

    /// Replaces the prefix through `snapshot.last_op` with `snapshot`, keeping the entries after
    /// it if the log agrees with the snapshot at its last op, and discarding the log otherwise.
    pub fn install(&mut self, snapshot: Arc<Snapshot>) {
        let agrees = self.view_at(snapshot.last_op) == Some(snapshot.last_view);
        if agrees && snapshot.last_op >= self.snapshot.last_op {
            let drop = (snapshot.last_op - self.snapshot.last_op) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = snapshot;
        self.assert_contiguous();
    }

    /// The last op holding an entry of `view`, if any entry of that view is held.
    pub fn last_op_of_view(&self, view: u64) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.view == view)
            .map(|entry| entry.op)
    }

    /// The first held op whose view equals the view at `op` (at least `first_op`).
    pub fn first_op_of_view_at(&self, op: u64) -> u64 {
        let view = self.view_at(op).expect("op within the log");
        let mut first = op.max(self.first_op());
        while first > self.first_op() && self.view_at(first - 1) == Some(view) {
            first -= 1;
        }
        first
    }

    /// Whether an entry after `after` writes `key`: CRAQ calls such a key dirty.
    pub fn writes_key_after(&self, after: u64, key: &[u8]) -> bool {
        let from = after.saturating_add(1).max(self.first_op());
        let start = (from - self.first_op()) as usize;
        self.entries
            .iter()
            .skip(start)
            .any(|entry| match &entry.payload {
                Payload::Command(command) => command.op.keys().iter().any(|k| k.as_ref() == key),
                Payload::ViewStart => false,
            })
    }

    fn assert_contiguous(&self) {
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            assert_eq!(first.op, self.snapshot.last_op + 1, "log has a gap");
            assert_eq!(last.op, self.last_op(), "log entries are not contiguous");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_core::{ClientId, Command, Op};

    fn entry(op: u64, view: u64) -> Entry {
        Entry {
            op,
            view,
            payload: Payload::ViewStart,
        }
    }

    fn log_with_views(views: &[u64]) -> Log {
        let mut log = Log::new(Arc::new(Snapshot::empty(8)), Vec::new());
        for (k, view) in views.iter().enumerate() {
            log.append(entry(k as u64 + 1, *view));
        }
        log
    }

    #[test]
    fn the_empty_log_has_op_zero_of_view_zero() {
        let log = log_with_views(&[]);
        assert_eq!(log.last_op(), 0);
        assert_eq!(log.last_view(), 0);
        assert_eq!(log.view_at(0), Some(0));
        assert_eq!(log.view_at(1), None);
        assert!(log.slice(1, 10, 10).is_empty());
    }

    #[test]
    fn views_and_slices_follow_ops() {
        let log = log_with_views(&[1, 1, 2, 3, 3]);
        assert_eq!(log.view_at(3), Some(2));
        assert_eq!(log.last_view(), 3);
        let ops = |entries: Vec<Entry>| entries.iter().map(|e| e.op).collect::<Vec<_>>();
        assert_eq!(ops(log.slice(2, 9, 2)), [2, 3]);
        assert_eq!(ops(log.slice(2, 2, 9)), [2]);
        assert_eq!(ops(log.slice(5, 9, 9)), [5]);
        assert!(log.slice(6, 9, 9).is_empty());
        assert!(log.slice(3, 2, 9).is_empty());
        assert_eq!(log.last_op_of_view(1), Some(2));
        assert_eq!(log.last_op_of_view(4), None);
        assert_eq!(log.first_op_of_view_at(5), 4);
        assert_eq!(log.first_op_of_view_at(2), 1);
    }

    #[test]
    fn truncation_removes_the_suffix() {
        let mut log = log_with_views(&[1, 1, 2, 3]);
        log.truncate_from(3);
        assert_eq!(log.last_op(), 2);
        assert_eq!(log.last_view(), 1);
        log.append(entry(3, 4));
        assert_eq!(log.view_at(3), Some(4));
    }

    #[test]
    fn installing_a_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_log() {
        let mut log = log_with_views(&[1, 1, 2, 3]);
        let snapshot = |last_op, last_view| {
            Arc::new(Snapshot {
                last_op,
                last_view,
                state: Default::default(),
            })
        };
        log.install(snapshot(2, 1));
        assert_eq!(log.first_op(), 3);
        assert_eq!(log.last_op(), 4);
        assert_eq!(log.view_at(2), Some(1));
        assert_eq!(log.view_at(1), None);
        log.install(snapshot(3, 9));
        assert_eq!(log.last_op(), 3);
        assert_eq!(log.last_view(), 9);
    }

    #[test]
    fn a_key_is_dirty_while_an_unapplied_entry_writes_it() {
        let mut log = log_with_views(&[1]);
        let put = |key: &str| {
            Payload::Command(Command {
                client: ClientId(1),
                seq: 1,
                op: Op::Put {
                    key: key.as_bytes().to_vec().into(),
                    value: "v".into(),
                },
            })
        };
        log.append(Entry {
            op: 2,
            view: 1,
            payload: put("a"),
        });
        log.append(Entry {
            op: 3,
            view: 1,
            payload: put("b"),
        });
        assert!(log.writes_key_after(1, b"a"));
        assert!(!log.writes_key_after(2, b"a"));
        assert!(log.writes_key_after(2, b"b"));
        assert!(!log.writes_key_after(3, b"b"));
        assert!(!log.writes_key_after(0, b"c"));
    }
}
