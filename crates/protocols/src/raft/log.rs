//! The Raft log: a snapshot of the compacted prefix followed by the entries after it.
//!
//! Indices are 1-based, as in the paper. The snapshot covers `1..=snapshot.last_index`
//! (index 0 with term 0 when nothing is compacted), and `entries[k]` has index
//! `snapshot.last_index + 1 + k`. `term_at(i)` is known for the snapshot's last index and every
//! entry after it; the terms of compacted entries are gone.

use super::membership::Membership;
use super::message::{Entry, Payload, Snapshot};
use quorate_core::Key;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Log {
    snapshot: Arc<Snapshot>,
    entries: Vec<Entry>,
    /// Per key, the highest index of a held entry that gives the key a deadline (`SET EX`,
    /// `EXPIRE`, ...). Keys whose entry was compacted away may linger with an index at or
    /// below the snapshot's; no key with such an entry among `entries` is missing. This
    /// answers "does an entry after index i set a deadline on k?" without scanning the log
    /// (see [`Log::sets_deadline_after`]).
    deadline_at: BTreeMap<Key, u64>,
}

/// The keys an entry gives a deadline (several for a transaction).
fn deadline_keys(entry: &Entry) -> Vec<&Key> {
    match &entry.payload {
        Payload::Command(c) => c.op.deadline_keys(),
        _ => Vec::new(),
    }
}

impl Log {
    pub fn new(snapshot: Arc<Snapshot>, entries: Vec<Entry>) -> Log {
        let mut log = Log {
            snapshot,
            entries,
            deadline_at: BTreeMap::new(),
        };
        log.assert_contiguous();
        log.index_deadlines();
        log
    }

    /// Rebuilds `deadline_at` from the held entries.
    fn index_deadlines(&mut self) {
        self.deadline_at.clear();
        for entry in &self.entries {
            for key in deadline_keys(entry) {
                self.deadline_at.insert(key.clone(), entry.index);
            }
        }
    }

    /// Whether an entry after `index` (which must be at or after the snapshot's last index)
    /// sets a deadline on `key`: O(log keys), where scanning the entries was O(entries).
    pub fn sets_deadline_after(&self, key: &Key, index: u64) -> bool {
        debug_assert!(index >= self.snapshot.last_index);
        self.deadline_at.get(key).is_some_and(|at| *at > index)
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index of the first entry still held as an entry.
    pub fn first_index(&self) -> u64 {
        self.snapshot.last_index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot.last_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.last_term, |entry| entry.term)
    }

    /// The term of the entry at `index`, if it is known (not compacted, not beyond the end).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.last_index {
            return Some(self.snapshot.last_term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries starting at `from` (which must not be compacted): at most `count_max` of them
    /// and, beyond the first, at most `bytes_max` bytes in all.
    pub fn slice(&self, from: u64, count_max: usize, bytes_max: u64) -> Vec<Entry> {
        assert!(from >= self.first_index(), "slice of a compacted prefix");
        let start = ((from - self.first_index()) as usize).min(self.entries.len());
        let mut bytes = 0u64;
        let mut slice = Vec::new();
        for entry in self.entries[start..].iter().take(count_max) {
            bytes += entry.size_bytes();
            if !slice.is_empty() && bytes > bytes_max {
                break;
            }
            slice.push(entry.clone());
        }
        slice
    }

    pub fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log append out of order"
        );
        assert!(
            entry.term >= self.last_term(),
            "log terms must not decrease"
        );
        for key in deadline_keys(&entry) {
            self.deadline_at.insert(key.clone(), entry.index);
        }
        self.entries.push(entry);
    }

    /// Removes every entry at `index` and after.
    pub fn truncate_from(&mut self, index: u64) {
        assert!(
            index > self.snapshot.last_index,
            "truncating into the snapshot"
        );
        let keep = (index - self.first_index()) as usize;
        let dropped_deadline = self.entries[keep.min(self.entries.len())..]
            .iter()
            .any(|e| !deadline_keys(e).is_empty());
        self.entries.truncate(keep);
        if dropped_deadline {
            self.index_deadlines(); // Rare: a follower's conflicting suffix set deadlines.
        }
    }

    /// Replaces the prefix through `snapshot.last_index` with `snapshot`, keeping the entries
    /// after it if the log agrees with the snapshot at its last index, and discarding the whole
    /// log otherwise (Figure 13, steps 6 and 7).
    pub fn install(&mut self, snapshot: Arc<Snapshot>) {
        let agrees = self.term_at(snapshot.last_index) == Some(snapshot.last_term);
        if agrees && snapshot.last_index >= self.snapshot.last_index {
            let drop = (snapshot.last_index - self.snapshot.last_index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
            self.deadline_at.clear();
        }
        self.snapshot = snapshot;
        let last = self.snapshot.last_index;
        self.deadline_at.retain(|_, at| *at > last);
        self.assert_contiguous();
    }

    /// The last index holding an entry of `term`, if any entry of that term is held.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.term == term)
            .map(|entry| entry.index)
    }

    /// The first held index whose term equals the term at `index` (at least `first_index`).
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let term = self.term_at(index).expect("index within the log");
        let mut first = index.max(self.first_index());
        while first > self.first_index() && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The configuration in force at `index` (at or after the snapshot): the last
    /// configuration entry at or before it, else the snapshot's. Returns its index too.
    pub fn membership_at(&self, index: u64) -> (u64, &Membership) {
        let last = index.min(self.last_index());
        let held = last.saturating_sub(self.snapshot.last_index) as usize;
        self.entries[..held]
            .iter()
            .rev()
            .find_map(|entry| match &entry.payload {
                Payload::Config(membership) => Some((entry.index, membership)),
                _ => None,
            })
            .unwrap_or((self.snapshot.last_index, &self.snapshot.membership))
    }

    fn assert_contiguous(&self) {
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            assert_eq!(first.index, self.snapshot.last_index + 1, "log has a gap");
            assert_eq!(
                last.index,
                self.last_index(),
                "log entries are not contiguous"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_core::NodeId;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    fn bootstrap() -> Membership {
        Membership::new([NodeId(1)])
    }

    /// An empty-state snapshot through (`last_index`, `last_term`).
    fn snapshot(last_index: u64, last_term: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            last_index,
            last_term,
            membership: bootstrap(),
            state: Default::default(),
        })
    }

    fn log_with_terms(terms: &[u64]) -> Log {
        let mut log = Log::new(Arc::new(Snapshot::empty(bootstrap(), 8)), Vec::new());
        for (k, term) in terms.iter().enumerate() {
            log.append(entry(k as u64 + 1, *term));
        }
        log
    }

    #[test]
    fn the_empty_log_has_index_zero_of_term_zero() {
        let log = log_with_terms(&[]);
        assert_eq!(log.last_index(), 0);
        assert_eq!(log.last_term(), 0);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(1), None);
        assert!(log.slice(1, 10, u64::MAX).is_empty());
    }

    #[test]
    fn terms_and_slices_follow_indices() {
        let log = log_with_terms(&[1, 1, 2, 3, 3]);
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.last_term(), 3);
        let indices = |slice: Vec<Entry>| slice.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(indices(log.slice(2, 2, u64::MAX)), [2, 3]);
        assert_eq!(log.slice(5, 9, u64::MAX).len(), 1);
        assert_eq!(log.slice(6, 9, u64::MAX).len(), 0);
        // A byte budget below one entry still yields one entry; two entries need two sizes.
        assert_eq!(indices(log.slice(1, 9, 1)), [1]);
        let one = entry(1, 1).size_bytes();
        assert_eq!(indices(log.slice(1, 9, 2 * one)), [1, 2]);
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.last_index_of_term(4), None);
        assert_eq!(log.first_index_of_term_at(5), 4);
        assert_eq!(log.first_index_of_term_at(2), 1);
    }

    #[test]
    fn truncation_removes_the_suffix() {
        let mut log = log_with_terms(&[1, 1, 2, 3]);
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.last_term(), 1);
        log.append(entry(3, 4));
        assert_eq!(log.term_at(3), Some(4));
    }

    #[test]
    fn installing_a_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_log() {
        let mut log = log_with_terms(&[1, 1, 2, 3]);
        log.install(snapshot(2, 1));
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
        log.install(snapshot(3, 9));
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.last_term(), 9);
        assert_eq!(log.first_index_of_term_at(3), 4);
    }

    #[test]
    fn the_configuration_in_force_is_the_last_one_in_the_log() {
        let mut log = log_with_terms(&[1, 1]);
        let two = Membership::new([NodeId(1), NodeId(2)]);
        log.append(Entry {
            index: 3,
            term: 1,
            payload: Payload::Config(two.clone()),
        });
        log.append(entry(4, 1));
        assert_eq!(log.membership_at(2), (0, &bootstrap()));
        assert_eq!(log.membership_at(3), (3, &two));
        assert_eq!(log.membership_at(99), (3, &two));
        log.truncate_from(3);
        assert_eq!(log.membership_at(99), (0, &bootstrap()));
    }

    fn expire(index: u64, term: u64, key: &str) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Command(quorate_core::Command {
                client: quorate_core::ClientId(1),
                seq: index,
                op: quorate_core::Op::Expire {
                    key: key.to_string().into(),
                    expiry: quorate_core::kv::expiry::Expiry::After { ttl_ms: 10 },
                },
            }),
        }
    }

    /// `sets_deadline_after` answers what a scan of the entries after the index would.
    #[test]
    fn deadline_index_matches_a_scan_through_appends_truncations_and_snapshots() {
        let scan = |log: &Log, key: &str, after: u64| {
            log.entries().iter().any(|e| {
                e.index > after
                    && deadline_keys(e)
                        .iter()
                        .any(|k| k.as_ref() == key.as_bytes())
            })
        };
        let check = |log: &Log| {
            for key in ["a", "b", "c"] {
                for after in log.snapshot().last_index..=log.last_index() + 1 {
                    let k: Key = key.to_string().into();
                    assert_eq!(
                        log.sets_deadline_after(&k, after),
                        scan(log, key, after),
                        "key {key} after {after}"
                    );
                }
            }
        };
        let mut log = log_with_terms(&[1]);
        log.append(expire(2, 1, "a"));
        log.append(entry(3, 1));
        log.append(expire(4, 2, "b"));
        log.append(expire(5, 2, "a"));
        check(&log);
        log.truncate_from(5); // "a" now only at 2.
        check(&log);
        log.truncate_from(4);
        check(&log);
        log.append(expire(4, 3, "c"));
        check(&log);
        log.install(snapshot(2, 1)); // "a"'s entry compacted.
        check(&log);
        log.install(snapshot(6, 9)); // Disagrees: the whole log goes.
        check(&log);
        let recovered = Log::new(snapshot(0, 0), vec![expire(1, 1, "b"), entry(2, 1)]);
        check(&recovered);
    }
}
