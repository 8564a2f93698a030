//! One simulated machine: the protocol node, its clock, its disk and its pending effects.

use quorate_core::shell::Shell;
use quorate_core::{Durable, Effect, NodeId, NodeStatus, Protocol, Time};
use quorate_storage::{MemDisk, Store};
use std::collections::VecDeque;

/// A node's clock: offset from true time and running fast or slow by `drift_ppm`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    pub offset: u64,
    /// Parts per million; +100_000 runs 10% fast.
    pub drift_ppm: i64,
}

impl Clock {
    /// The node's reading at true time `now`.
    pub fn local(self, now: u64) -> Time {
        let drift = i128::from(now) * i128::from(self.drift_ppm) / 1_000_000;
        let local = i128::from(self.offset) + i128::from(now) + drift;
        Time::from_nanos(local.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// True time that passes while this clock advances by `local` nanoseconds.
    pub fn to_true(self, local: u64) -> u64 {
        let rate = 1_000_000 + i128::from(self.drift_ppm);
        (i128::from(local) * 1_000_000 / rate.max(1)) as u64
    }
}

/// A node slot: the node while it is up, and what survives it when it is down.
pub(crate) struct Slot<P: Protocol> {
    /// `None` while the node is crashed.
    pub node: Option<P>,
    /// Bumped at every crash, so that timers and fsyncs of an earlier life are ignored.
    pub incarnation: u64,
    pub clock: Clock,
    /// Records that reached the disk and were fsynced.
    pub durable: Vec<P::Record>,
    /// Records written but not yet fsynced: lost (or partly kept) by a crash.
    pub unsynced: Vec<P::Record>,
    /// An fsync is in progress; effects wait in `backlog` until it completes.
    pub syncing: bool,
    /// Effects held behind a persist barrier, in order.
    pub backlog: VecDeque<Effect<P>>,
    /// Pending timers: name and the generation of the pending instance.
    pub timers: Vec<(P::Timer, u64)>,
    /// The node's role after its last step (to notice when it becomes leader).
    pub was_leader: bool,
    /// Between the clients and the node, as on a server: waiters (client slots) and
    /// forwarding. Volatile: a crash empties it.
    pub shell: Shell<usize>,
    /// With a harness that puts records on a disk ([`crate::Harness::disk`]): the storage
    /// while the node is up, which holds the disk ...
    pub store: Option<Store<MemDisk>>,
    /// ... and the disk while it is down.
    pub disk: MemDisk,
    /// Records recovery must return (every one written before the last completed fsync),
    /// and the last fsynced batch as (file, start, end), where a disk fault hurts most.
    pub synced_records: u64,
    pub synced_batch: Option<(String, u64, u64)>,
    /// A disk fault damaged fsynced data on this node's disk.
    pub damaged: bool,
    /// Recovery refused to start the node: it stays down for the rest of the run.
    pub refused: bool,
    /// The node's (term, commit index, applied index) after its last step in this
    /// incarnation: none of them may go back until it crashes.
    pub progress: Option<(u64, u64, u64)>,
    /// The highest term the node held at a moment when every record it had asked to persist
    /// was durable: a restart must recover at least this term.
    pub durable_term: u64,
}

impl<P: Protocol> Slot<P> {
    pub fn new(clock: Clock, me: NodeId, peers: Vec<NodeId>) -> Slot<P> {
        Slot {
            node: None,
            incarnation: 0,
            clock,
            durable: Vec::new(),
            unsynced: Vec::new(),
            syncing: false,
            backlog: VecDeque::new(),
            timers: Vec::new(),
            was_leader: false,
            shell: Shell::new(me, peers),
            store: None,
            disk: MemDisk::new(),
            synced_records: 0,
            synced_batch: None,
            damaged: false,
            refused: false,
            progress: None,
            durable_term: 0,
        }
    }

    /// The fsync finished: unsynced records are durable. A checkpoint makes every earlier
    /// record obsolete, which is how compaction frees the simulated disk.
    pub fn synced(&mut self) {
        if let Some(store) = self.store.as_mut() {
            // The records are on the simulated disk; this fsync makes them durable there.
            store.sync().expect("the in-memory disk syncs");
            self.synced_records = store.records();
            let wal = store.wal().to_string();
            self.synced_batch = store.last_batch().map(|(a, b)| (wal, a, b));
            self.unsynced.clear();
            self.syncing = false;
            return;
        }
        for record in self.unsynced.drain(..) {
            if record.is_checkpoint() {
                self.durable.clear();
            }
            self.durable.push(record);
        }
        self.syncing = false;
    }

    /// The machine lost power: volatile state is gone, and of the unsynced records (bytes, on a
    /// simulated disk) only the first `kept` reached the platter.
    pub fn crash(&mut self, kept: u64) {
        self.node = None;
        self.incarnation += 1;
        if let Some(store) = self.store.take() {
            // Of the unsynced bytes on the simulated disk, the first `kept` reached it.
            let mut disk = store.into_disk();
            disk.crash(kept);
            self.disk = disk;
            self.unsynced.clear();
        } else {
            self.unsynced.truncate(kept as usize);
        }
        self.synced();
        self.backlog.clear();
        self.timers.clear();
        self.was_leader = false;
        self.progress = None;
        self.shell.clear();
    }

    /// Checks that the node's progress did not go back, and records it: its term, commit
    /// index and applied index never decrease within one incarnation, and a node that just
    /// recovered from its disk (`starting`) holds at least the term it held durably before.
    /// Commit and applied indices may restart lower (they are rebuilt from a snapshot); the
    /// global ledgers of the protocol's checker judge what is committed again.
    pub fn monotonic(&mut self, status: &NodeStatus, starting: bool) -> Result<(), String> {
        let now = (status.term, status.commit_index, status.applied_index);
        if starting && now.0 < self.durable_term {
            return Err(format!(
                "recovered term {} below term {} it held durably before its crash",
                now.0, self.durable_term
            ));
        }
        if let Some(before) = self.progress {
            let fields = [
                ("term", before.0, now.0),
                ("commit index", before.1, now.1),
                ("applied index", before.2, now.2),
            ];
            for (name, was, is) in fields {
                if is < was {
                    return Err(format!(
                        "{name} went back from {was} to {is} without a restart"
                    ));
                }
            }
        }
        self.progress = Some(now);
        Ok(())
    }

    /// What a crash may keep part of: unsynced bytes on a simulated disk, else records.
    pub fn unsynced_len(&self) -> u64 {
        match &self.store {
            Some(store) => store.disk().unsynced_bytes(),
            None => self.unsynced.len() as u64,
        }
    }

    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_skew_and_convert_back() {
        let fast = Clock {
            offset: 1_000,
            drift_ppm: 100_000,
        };
        assert_eq!(fast.local(1_000_000).as_nanos(), 1_000 + 1_100_000);
        assert_eq!(fast.to_true(1_100_000), 1_000_000);
        let exact = Clock::default();
        assert_eq!(exact.local(5).as_nanos(), 5);
        assert_eq!(exact.to_true(5), 5);
    }
}
