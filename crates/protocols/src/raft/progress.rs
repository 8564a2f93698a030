//! The leader's state: one [`Progress`] per follower (flow control), plus the clients,
//! operator request, transfer and reads it is serving.
//!
//! ## Flow control, per follower (after etcd-io/raft's `Progress`)
//!
//! - **Probe**: the leader does not know where the follower's log agrees with its own. It sends
//!   one AppendEntries and waits for the answer (or a heartbeat tick) before sending another;
//!   rejections move `next_index` back by the follower's hint.
//! - **Replicate**: the logs agree through `match_index`. The leader streams entries and
//!   advances `next_index` optimistically, with at most `inflight_max` messages and
//!   `inflight_bytes_max` bytes unacknowledged. A rejection, or a heartbeat interval without
//!   progress while messages are in flight (they were lost), falls back to Probe.
//! - **Snapshot**: the follower needs entries the leader compacted. The leader sends its
//!   snapshot in chunks, one in flight at a time, then probes from the snapshot's end.

use super::membership::PendingAdmin;
use super::message::Snapshot;
use super::read::ReadState;
use super::transfer::Transfer;
use quorate_core::{ClientId, KvCursor, NodeId, Time};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Where the leader stands with one follower.
#[derive(Clone, Debug)]
pub(super) enum ReplicaState {
    /// Find where the logs agree: one AppendEntries at a time (`sent`: one is unanswered).
    Probe { sent: bool },
    /// The logs agree through `match_index`: stream entries within the window.
    Replicate,
    /// Send the snapshot, chunk by chunk.
    Snapshot(SnapshotSend),
}

/// A chunked InstallSnapshot in progress.
#[derive(Clone, Debug)]
pub(super) struct SnapshotSend {
    /// The snapshot being sent, shared with the log (not copied).
    pub snapshot: Arc<Snapshot>,
    /// The number of the chunk in flight (or about to be sent).
    pub offset: u64,
    /// Where that chunk starts in the store.
    pub cursor: KvCursor,
    /// Where the chunk after it starts, once it was cut (`None` then: it was the last).
    pub next_cursor: Option<KvCursor>,
    /// The chunk was sent and is not answered yet.
    pub sent: bool,
}

impl SnapshotSend {
    pub fn new(snapshot: Arc<Snapshot>) -> SnapshotSend {
        SnapshotSend {
            snapshot,
            offset: 0,
            cursor: KvCursor::Start,
            next_cursor: None,
            sent: false,
        }
    }
}

/// The leader's view of one follower's log.
#[derive(Clone, Debug)]
pub(super) struct Progress {
    /// Highest index known to be replicated on the follower.
    pub match_index: u64,
    /// Index of the next entry to send.
    pub next_index: u64,
    pub state: ReplicaState,
    /// Last index and size in bytes of each AppendEntries in flight (Replicate), oldest first.
    pub inflight: VecDeque<(u64, u64)>,
    pub inflight_bytes: u64,
    /// `match_index` advanced, a rejection arrived or a snapshot chunk was acknowledged since
    /// the last heartbeat tick.
    pub progressed: bool,
    /// Answered in this term since check-quorum last looked.
    pub active: bool,
    /// The leader's clock when the follower last answered in this term.
    pub last_heard: Option<Time>,
    /// The highest heartbeat round the follower echoed.
    pub acked_round: u64,
}

impl Progress {
    pub fn new(next_index: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index: next_index.max(1),
            state: ReplicaState::Probe { sent: false },
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            progressed: false,
            active: false,
            last_heard: None,
            acked_round: 0,
        }
    }

    /// Whether the window allows another AppendEntries with entries.
    pub fn window_full(&self, inflight_max: usize, inflight_bytes_max: u64) -> bool {
        self.inflight.len() >= inflight_max || self.inflight_bytes >= inflight_bytes_max
    }

    /// Records an AppendEntries with entries through `last_index`, of `bytes`, as in flight.
    pub fn sent(&mut self, last_index: u64, bytes: u64) {
        self.inflight.push_back((last_index, bytes));
        self.inflight_bytes += bytes;
        self.next_index = last_index + 1;
    }

    /// Frees the window of every message acknowledged by a match through `index`.
    pub fn acknowledge(&mut self, index: u64) {
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > index {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
    }

    /// Back to Probe from `next_index`, forgetting whatever was in flight.
    pub fn probe_from(&mut self, next_index: u64) {
        self.next_index = next_index.max(self.match_index + 1);
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.state = ReplicaState::Probe { sent: false };
    }

    /// The logs agree through `match_index`: stream from there.
    pub fn replicate(&mut self) {
        self.next_index = self.next_index.max(self.match_index + 1);
        if !matches!(self.state, ReplicaState::Replicate) {
            self.inflight.clear();
            self.inflight_bytes = 0;
            self.next_index = self.match_index + 1;
            self.state = ReplicaState::Replicate;
        }
    }

    /// A heartbeat tick: detect lost messages and allow a probe or chunk to be resent.
    pub fn tick(&mut self) {
        match &mut self.state {
            ReplicaState::Probe { sent } => *sent = false,
            ReplicaState::Replicate => {
                if !self.inflight.is_empty() && !self.progressed {
                    let next = self.match_index + 1;
                    self.probe_from(next);
                }
            }
            ReplicaState::Snapshot(send) => {
                if !self.progressed {
                    send.sent = false;
                }
            }
        }
        self.progressed = false;
    }
}

/// Everything only a leader holds.
#[derive(Clone, Debug)]
pub(super) struct LeaderState {
    /// One entry per member other than the leader, and per removed member until its removal
    /// is committed (so that it learns of it).
    pub progress: BTreeMap<NodeId, Progress>,
    /// Clients whose command this leader appended and has not answered: `seq` per client.
    pub waiting: BTreeMap<ClientId, u64>,
    /// The operator's membership change in progress.
    pub admin: Option<PendingAdmin>,
    /// The leadership transfer in progress.
    pub transfer: Option<Transfer>,
    /// ReadIndex rounds, the lease, and reads awaiting confirmation.
    pub reads: ReadState,
    /// The leader's clock when check-quorum last looked.
    pub quorum_checked_at: Time,
    /// The leader's own log is durable through this index (learned from `Message::Durable`):
    /// what the leader counts for itself toward a commit quorum.
    pub durable_index: u64,
    /// The highest index this leader found on a quorum and did not commit because its entry
    /// is of an earlier term (reported as [`Event::OldTermCommitWithheld`](super::Event)).
    pub withheld_index: u64,
}

impl LeaderState {
    pub fn new(now: Time) -> LeaderState {
        LeaderState {
            progress: BTreeMap::new(),
            waiting: BTreeMap::new(),
            admin: None,
            transfer: None,
            reads: ReadState::new(),
            quorum_checked_at: now,
            durable_index: 0,
            withheld_index: 0,
        }
    }

    /// Starts tracking `id`, if it is not tracked already.
    pub fn add_follower(&mut self, id: NodeId, next_index: u64) {
        self.progress
            .entry(id)
            .or_insert_with(|| Progress::new(next_index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_fills_by_messages_or_bytes_and_drains_on_acknowledgement() {
        let mut p = Progress::new(1);
        p.replicate();
        p.sent(3, 100);
        p.sent(5, 100);
        assert!(p.window_full(2, u64::MAX));
        assert!(p.window_full(8, 200));
        assert!(!p.window_full(8, 201));
        p.acknowledge(4);
        assert_eq!(p.inflight.len(), 1);
        assert_eq!(p.inflight_bytes, 100);
        p.acknowledge(5);
        assert!(p.inflight.is_empty());
        assert_eq!(p.next_index, 6);
    }

    #[test]
    fn a_silent_tick_with_messages_in_flight_falls_back_to_probe() {
        let mut p = Progress::new(1);
        p.match_index = 2;
        p.replicate();
        p.sent(7, 10);
        p.progressed = true;
        p.tick();
        assert!(
            matches!(p.state, ReplicaState::Replicate),
            "progress was made"
        );
        p.tick();
        assert!(matches!(p.state, ReplicaState::Probe { sent: false }));
        assert_eq!(p.next_index, 3);
        assert!(p.inflight.is_empty());
    }
}
