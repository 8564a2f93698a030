//! Normal operation (steps 2, 3 and 8 of the module docs): sending entries downstream with the
//! consistency check, acknowledging them, committing, applying, compacting and state transfer.
//!
//! The same code serves both shapes of group. A primary-backup primary feeds every backup; a
//! chain node feeds its successor, forwarding only the prefix it has verified against its own
//! predecessor, so that whatever reaches the tail has passed, durably, through every node
//! before it.

use super::message::{Entry, Group, Message, Payload, PrepareResult, Record, Snapshot};
use super::{Bug, Prepare, Replica, Timer, Topology};
use quorate_core::quorum::majority;
use quorate_core::{Effects, NodeId, Reply, TimerRange};
use std::sync::Arc;
use std::time::Duration;

/// How far a downstream replica has got.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest op known to be held by the replica, matching ours.
    pub match_op: u64,
    /// Op of the next entry to send.
    pub next_op: u64,
    /// Prepares with entries sent and not yet acknowledged.
    pub inflight: usize,
    /// Whether the replica acknowledged anything since the last heartbeat tick.
    pub acked_since_tick: bool,
    /// A NewState is on its way; do not send another before a tick passes.
    pub snapshot_in_flight: bool,
}

impl Progress {
    pub fn new(next_op: u64) -> Progress {
        Progress {
            match_op: 0,
            next_op,
            inflight: 0,
            acked_since_tick: false,
            snapshot_in_flight: false,
        }
    }
}

impl Replica {
    // ---------------------------------------------------------------------------------------
    // The sending side (primary, or a chain node feeding its successor).

    /// Appends an entry of the current view to the primary's log, persists it, and sends it on.
    pub(super) fn append_to_own_log(&mut self, payload: Payload, out: &mut Effects<Self>) {
        assert!(self.is_primary(), "only the primary assigns op-numbers");
        let entry = Entry {
            op: self.log.last_op() + 1,
            view: self.view,
            payload,
        };
        self.log.append(entry.clone());
        self.verified = self.log.last_op();
        out.persist(Record::Entries(vec![entry]));
        self.note_durability(out);
        self.send_to_downstream(out);
        // A group of one (or a chain whose head is its tail) commits on its own.
        self.advance_commit(out);
    }

    fn send_to_downstream(&mut self, out: &mut Effects<Self>) {
        let peers: Vec<NodeId> = self.downstream.keys().copied().collect();
        for peer in peers {
            self.send_prepare(peer, false, out);
        }
    }

    /// Sends `peer` the verified entries it lacks, if its window allows; with `heartbeat`, sends
    /// a Prepare even when there is nothing new.
    pub(crate) fn send_prepare(&mut self, peer: NodeId, heartbeat: bool, out: &mut Effects<Self>) {
        let limit = self.verified;
        let Some(p) = self.downstream.get_mut(&peer) else {
            return;
        };
        if p.next_op < self.log.first_op() {
            if !p.snapshot_in_flight {
                p.snapshot_in_flight = true;
                let message = Message::NewState {
                    view: self.view,
                    group: self.group.clone(),
                    snapshot: self.log.snapshot().clone(),
                };
                out.send(peer, message);
            }
            return;
        }
        let room = p.inflight < self.config.inflight_max;
        let entries = if room {
            let count_max = self.config.entries_per_prepare_max;
            self.log.slice(p.next_op, limit, count_max)
        } else {
            Vec::new()
        };
        if entries.is_empty() && !heartbeat {
            return;
        }
        // Only the verified prefix is vouched for; a heartbeat sent while entries are in flight
        // anchors at the acknowledged prefix, so that it does not fail the check by overtaking.
        let prev_op = if entries.is_empty() && p.inflight > 0 {
            p.match_op.max(self.log.first_op() - 1)
        } else {
            (p.next_op - 1).min(limit)
        };
        let prev_view = self.log.view_at(prev_op).expect("prev entry is held");
        if let Some(last) = entries.last() {
            p.next_op = last.op + 1;
            p.inflight += 1;
        }
        let message = Message::Prepare {
            view: self.view,
            group: self.group.clone(),
            prev_op,
            prev_view,
            entries,
            commit: self.commit,
        };
        out.send(peer, message);
    }

    /// A heartbeat tick: retransmit to replicas that acknowledged nothing since the last tick,
    /// and send every downstream replica a Prepare.
    pub(super) fn heartbeat_downstream(&mut self, out: &mut Effects<Self>) {
        for p in self.downstream.values_mut() {
            if (p.inflight > 0 || p.snapshot_in_flight) && !p.acked_since_tick {
                p.next_op = p.match_op + 1;
                p.inflight = 0;
                p.snapshot_in_flight = false;
            }
            p.acked_since_tick = false;
        }
        let peers: Vec<NodeId> = self.downstream.keys().copied().collect();
        for peer in peers {
            self.send_prepare(peer, true, out);
        }
    }

    pub(super) fn on_prepare_ok(
        &mut self,
        from: NodeId,
        view: u64,
        result: PrepareResult,
        commit: u64,
        out: &mut Effects<Self>,
    ) {
        if view != self.view {
            return; // An answer from an older view of ours; a newer one deposed us already.
        }
        let limit = self.verified;
        let Some(p) = self.downstream.get_mut(&from) else {
            return;
        };
        p.acked_since_tick = true;
        match result {
            PrepareResult::Ok { op } => {
                if op > limit {
                    return; // Not ours: we never sent beyond the verified prefix.
                }
                p.match_op = p.match_op.max(op);
                p.next_op = p.next_op.max(p.match_op + 1);
                p.inflight = p.inflight.saturating_sub(1);
            }
            PrepareResult::Mismatch {
                prev_op,
                conflict_view,
                conflict_op,
            } => {
                if prev_op < p.match_op || prev_op >= p.next_op {
                    return; // A stale rejection: we already moved past it.
                }
                let hinted = conflict_view
                    .and_then(|v| self.log.last_op_of_view(v).map(|op| op + 1))
                    .unwrap_or(conflict_op);
                p.next_op = hinted.min(prev_op).max(p.match_op + 1);
                p.inflight = 0;
            }
            PrepareResult::StaleView => return,
        }
        self.after_downstream_ack(from, commit, out);
    }

    pub(super) fn on_new_state_ok(
        &mut self,
        from: NodeId,
        view: u64,
        op: u64,
        commit: u64,
        out: &mut Effects<Self>,
    ) {
        if view != self.view {
            return;
        }
        let limit = self.verified;
        let Some(p) = self.downstream.get_mut(&from) else {
            return;
        };
        p.snapshot_in_flight = false;
        p.acked_since_tick = true;
        p.match_op = p.match_op.max(op.min(limit));
        p.next_op = p.next_op.max(p.match_op + 1);
        self.after_downstream_ack(from, commit, out);
    }

    /// A downstream replica got further: commit what that allows, and keep it fed.
    fn after_downstream_ack(&mut self, from: NodeId, commit: u64, out: &mut Effects<Self>) {
        match self.config.topology {
            Topology::PrimaryBackup => self.advance_commit(out),
            // In a chain, commit numbers flow back from the tail, hop by hop.
            Topology::Chain { .. } => {
                if self.learn_commit(commit, out) {
                    self.report_upstream(out);
                }
            }
        }
        self.send_prepare(from, false, out);
    }

    /// Chain: tells the predecessor how far this node got and what it knows committed.
    pub(crate) fn report_upstream(&mut self, out: &mut Effects<Self>) {
        if let Some(upstream) = self.upstream {
            let message = Message::PrepareOk {
                view: self.view,
                result: PrepareResult::Ok { op: self.verified },
                commit: self.commit,
            };
            out.send(upstream, message);
        }
    }

    /// Commits what this replica can decide is committed on its own (step 3): the primary of a
    /// primary-backup group counts its backups; the tail of a chain holds what every node holds.
    ///
    /// A decision covers only copies known to be on disk, the decider's own included. (Its
    /// effects wait for its persist anyway, so an early decision could not be seen; but a
    /// decision that a crash can take back is no decision, and the safety checker holds
    /// replicas to that.) A primary with backups counts itself only together with a backup's
    /// acknowledgement, and that backup got the entry in a Prepare sent after the primary's
    /// persist. A tail, or a group of one, has no one to tell it: it waits for
    /// `Timer::Durable`.
    pub(crate) fn advance_commit(&mut self, out: &mut Effects<Self>) {
        let candidate = match self.config.topology {
            Topology::PrimaryBackup if self.is_primary() => self.majority_op(),
            Topology::PrimaryBackup => return,
            Topology::Chain { .. } if self.commits_as_tail() => self.verified.min(self.durable),
            Topology::Chain { .. } => return,
        };
        // Only an entry of the current view is committed by counting (Raft §5.4.2).
        if candidate > self.commit && self.log.view_at(candidate) == Some(self.view) {
            self.commit = candidate;
            self.apply_committed(out);
        }
    }

    /// The highest op a majority of the group (the primary included) holds.
    fn majority_op(&self) -> u64 {
        let mut held: Vec<u64> = self.downstream.values().map(|p| p.match_op).collect();
        // Alone, the primary can count only what it knows is on its disk.
        let own = if self.members.len() == 1 {
            self.durable
        } else {
            self.log.last_op()
        };
        held.push(own);
        held.sort_unstable_by(|a, b| b.cmp(a));
        let mut quorum = majority(self.members.len());
        if self.config.has_bug(Bug::AckBeforeReplicated) {
            quorum = (quorum - 1).max(1);
        }
        held[quorum - 1]
    }

    fn commits_as_tail(&self) -> bool {
        if self.is_tail() {
            return true;
        }
        let penultimate = self.group.len() >= 2 && self.group[self.group.len() - 2] == self.id;
        penultimate && self.config.has_bug(Bug::AckBeforeReplicated)
    }

    /// Adopts a commit number learned from another replica of the view, as far as this
    /// replica's log is verified to match. Returns whether it advanced.
    pub(crate) fn learn_commit(&mut self, commit: u64, out: &mut Effects<Self>) -> bool {
        let commit = commit.min(self.verified);
        if commit <= self.commit {
            return false;
        }
        self.commit = commit;
        self.apply_committed(out);
        true
    }

    // ---------------------------------------------------------------------------------------
    // The receiving side.

    pub(super) fn on_prepare(&mut self, from: NodeId, prepare: Prepare, out: &mut Effects<Self>) {
        if prepare.view < self.view {
            // Fencing (step 5): refuse, and tell the deposed sender the current view.
            self.stats.stale_refused += 1;
            let answer = Message::PrepareOk {
                view: self.view,
                result: PrepareResult::StaleView,
                commit: self.commit,
            };
            return out.send(from, answer);
        }
        if !self.accept_feeder(from, &prepare.group, out) {
            return;
        }
        let result = self.accept_entries(&prepare, out);
        if let PrepareResult::Ok { op } = result {
            self.verified = self.verified.max(op);
            self.advance_commit(out);
            self.learn_commit(prepare.commit, out);
        }
        let answer = Message::PrepareOk {
            view: self.view,
            result,
            commit: self.commit,
        };
        out.send(from, answer);
        // A chain node passes on what it verified (after persisting it: the barrier).
        self.send_to_downstream(out);
    }

    /// Whether `from` feeds this replica in the current view; learns the group on the way.
    fn accept_feeder(&mut self, from: NodeId, group: &Group, out: &mut Effects<Self>) -> bool {
        assert!(
            !self.is_primary(),
            "{} received entries in view {} where it is primary",
            self.id,
            self.view
        );
        self.learn_group(group, out);
        if self.upstream != Some(from) {
            return false; // Not our feeder (a standby, or a message from a reordered chain).
        }
        self.reset_view_change_timer(out);
        true
    }

    /// The consistency check, conflict truncation and append of one Prepare.
    fn accept_entries(&mut self, prepare: &Prepare, out: &mut Effects<Self>) -> PrepareResult {
        let through = prepare.prev_op + prepare.entries.len() as u64;
        let snapshot_op = self.log.first_op() - 1;
        // Entries at or below our snapshot are committed, hence equal to the sender's: skip them
        // and check against the snapshot's last entry instead.
        let (prev_op, prev_view, skip) = if prepare.prev_op < snapshot_op {
            let skip = (snapshot_op - prepare.prev_op) as usize;
            if skip >= prepare.entries.len() {
                return PrepareResult::Ok { op: through };
            }
            let prev_view = self.log.view_at(snapshot_op).expect("snapshot view");
            (snapshot_op, prev_view, skip)
        } else {
            (prepare.prev_op, prepare.prev_view, 0)
        };
        if self.log.view_at(prev_op) != Some(prev_view) {
            let (conflict_view, conflict_op) = if prev_op > self.log.last_op() {
                (None, self.log.last_op() + 1)
            } else {
                let view = self.log.view_at(prev_op);
                (view, self.log.first_op_of_view_at(prev_op))
            };
            return PrepareResult::Mismatch {
                prev_op: prepare.prev_op,
                conflict_view,
                conflict_op,
            };
        }
        if !self.append_entries(&prepare.entries[skip..], out) {
            return PrepareResult::StaleView;
        }
        PrepareResult::Ok { op: through }
    }

    /// Appends `entries` (which follow a matching entry), truncating a conflicting suffix.
    /// False, with nothing changed, when that suffix holds committed entries: possible only
    /// when this replica follows older views and a deposed primary's Prepare contradicts what
    /// its successor committed. Without fencing (the teaching variant) the replica refuses it
    /// as from a stale view, and the split brain stays visible to the checkers through the
    /// writes the deposed primary acknowledged alone. With fencing it cannot happen, and is a
    /// panic (as it is for `Bug::AcceptOlderViews`, which the simulator reports with its seed).
    fn append_entries(&mut self, entries: &[Entry], out: &mut Effects<Self>) -> bool {
        let mut appended: Vec<Entry> = Vec::new();
        for entry in entries {
            if appended.is_empty() {
                match self.log.view_at(entry.op) {
                    Some(view) if view == entry.view => continue,
                    Some(_) => {
                        if entry.op <= self.commit {
                            assert!(!self.config.fencing, "truncating a committed entry");
                            return false;
                        }
                        self.log.truncate_from(entry.op);
                        self.durable = self.durable.min(entry.op - 1);
                    }
                    None => {}
                }
            }
            self.log.append(entry.clone());
            appended.push(entry.clone());
        }
        if !appended.is_empty() {
            out.persist(Record::Entries(appended));
            self.note_durability(out);
        }
        true
    }

    /// Asks for a durability notification (`Timer::Durable`) if this replica decides commits
    /// alone and part of its log may not be on disk yet. One at a time: when it fires, the
    /// next one covers whatever was appended meanwhile.
    pub(crate) fn note_durability(&mut self, out: &mut Effects<Self>) {
        let alone = self.members.len() == 1 || self.commits_as_tail();
        if !alone || self.durability_pending || self.durable >= self.log.last_op() {
            return;
        }
        self.durability_pending = true;
        let (op, view) = (self.log.last_op(), self.log.last_view());
        out.set_timer(
            Timer::Durable { op, view },
            TimerRange::fixed(Duration::ZERO),
        );
    }

    /// The log through `op` reached the disk, unless it was replaced since (then its viewstamp
    /// at `op` differs: a replaced entry is never the same entry again).
    pub(super) fn on_durable(&mut self, op: u64, view: u64, out: &mut Effects<Self>) {
        self.durability_pending = false;
        if self.log.view_at(op) == Some(view) {
            self.durable = self.durable.max(op);
            let before = self.commit;
            self.advance_commit(out);
            if self.commit > before && self.is_chain() {
                self.report_upstream(out); // The commit number flows back from the tail.
            }
        }
        self.note_durability(out);
    }

    pub(super) fn on_new_state(
        &mut self,
        from: NodeId,
        view: u64,
        group: Group,
        snapshot: Arc<Snapshot>,
        out: &mut Effects<Self>,
    ) {
        if view < self.view {
            self.stats.stale_refused += 1;
            let answer = Message::NewStateOk {
                view: self.view,
                op: 0,
                commit: self.commit,
            };
            return out.send(from, answer);
        }
        if !self.accept_feeder(from, &group, out) {
            return;
        }
        let last_op = snapshot.last_op;
        if last_op > self.commit {
            self.log.install(snapshot.clone());
            self.kv = snapshot.state.clone();
            self.commit = last_op;
            self.applied = last_op;
            self.verified = self.verified.min(self.log.last_op()).max(last_op);
            self.durable = self.durable.min(self.log.last_op());
            self.stats.state_transfers += 1;
            self.persist_checkpoint(out);
            self.note_durability(out);
            self.advance_commit(out);
            self.serve_reads(out);
        }
        let answer = Message::NewStateOk {
            view: self.view,
            op: last_op,
            commit: self.commit,
        };
        out.send(from, answer);
        self.send_to_downstream(out);
    }

    // ---------------------------------------------------------------------------------------
    // Every replica.

    /// Applies committed entries in op order. The primary answers the clients waiting for them;
    /// a chain's tail answers every write it applies (chain replication's replies come from the
    /// tail).
    pub(crate) fn apply_committed(&mut self, out: &mut Effects<Self>) {
        let tail_replies = self.is_tail();
        while self.applied < self.commit {
            let op = self.applied + 1;
            let entry = self.log.entry(op).expect("committed entries are held");
            if let Payload::Command(command) = &entry.payload {
                // Reads bypass the log, so a session's first write may have any number.
                let applied = self.kv.apply_with_unlogged_reads(command);
                let waited = self.waiting.get(&command.client) == Some(&command.seq);
                if waited {
                    self.waiting.remove(&command.client);
                }
                if waited || tail_replies {
                    if let Some(result) = applied.reply() {
                        out.reply(Reply {
                            client: command.client,
                            seq: command.seq,
                            result,
                        });
                    }
                }
            }
            self.applied = op;
        }
        self.serve_reads(out);
    }

    /// Replaces the applied prefix of the log by a snapshot once it is long enough. Background
    /// work, done on heartbeat ticks rather than as entries apply, so that every entry is seen
    /// committed in the log (by the safety checker, too) before it disappears into a snapshot.
    pub(super) fn maybe_compact(&mut self, out: &mut Effects<Self>) {
        let snapshot_op = self.log.first_op() - 1;
        if self.applied - snapshot_op < self.config.snapshot_threshold {
            return;
        }
        let snapshot = Snapshot {
            last_op: self.applied,
            last_view: self
                .log
                .view_at(self.applied)
                .expect("applied entry is held"),
            state: self.kv.clone(),
        };
        self.log.install(Arc::new(snapshot));
        self.persist_checkpoint(out);
    }

    pub(super) fn persist_checkpoint(&self, out: &mut Effects<Self>) {
        out.persist(Record::Checkpoint {
            view: self.view,
            vote: self.vote,
            boot: self.boot,
            snapshot: self.log.snapshot().clone(),
            entries: self.log.entries().to_vec(),
        });
    }
}
