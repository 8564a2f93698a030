//! Log replication (§5.3) with flow control, commitment (§5.4.2) and application.

use super::log::Log;
use super::message::{AppendResult, Entry, Message, Payload, Record};
use super::progress::{ReplicaState, SnapshotSend};
use super::{AppendEntries, Bug, Event, Raft, RoleState, Timer};
use quorate_core::{Effects, NodeId, Reply};

/// An AppendEntries of `entries` after `prev_log_index`.
fn append_entries(
    log: &Log,
    term: u64,
    leader_commit: u64,
    round: u64,
    prev_log_index: u64,
    entries: Vec<Entry>,
) -> Message {
    Message::AppendEntries {
        term,
        prev_log_index,
        prev_log_term: log.term_at(prev_log_index).expect("prev entry is held"),
        entries,
        leader_commit,
        round,
    }
}

impl Raft {
    // ---------------------------------------------------------------------------------------
    // Leader side.

    /// Appends an entry of the current term to the leader's own log, persists it, and sends it
    /// to every follower whose window allows.
    ///
    /// When the leader's own writes are all durable (its disk is idle), the sends come
    /// *before* the persist, so the leader's fsync runs in parallel with the followers'
    /// (thesis §10.2.1) instead of ahead of them: one fsync less on the write's latency. That
    /// is safe because nothing counts the leader's copy until it is durable — the leader
    /// learns that from its `Durable` message to itself, which waits behind the persist — and
    /// an entry a follower holds but a crashed leader lost is an ordinary uncommitted entry.
    /// While an earlier write is still syncing, the sends come after the persist: they would
    /// wait behind the earlier write anyway (rule 1 of the protocol contract), and holding
    /// them until this one is durable too lets the leader's group commit batch what the
    /// followers write, which measured faster under load (BENCHMARKS.md).
    pub(super) fn append_to_own_log(&mut self, payload: Payload, out: &mut Effects<Self>) {
        let disk_idle = match &self.role {
            RoleState::Leader(leader) => leader.durable_index >= self.log.last_index(),
            _ => false,
        };
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.term,
            payload,
        };
        self.log.append(entry.clone());
        if let Payload::Config(membership) = &entry.payload {
            self.on_membership_appended(entry.index, membership);
        }
        if disk_idle {
            self.send_to_followers(out);
        }
        out.persist(Record::Entries(vec![entry]));
        self.send_durable(out);
        if !disk_idle {
            self.send_to_followers(out);
        }
    }

    fn send_to_followers(&mut self, out: &mut Effects<Self>) {
        for peer in self.followers() {
            self.send_append(peer, false, out);
        }
    }

    /// The nodes this leader replicates to.
    pub(super) fn followers(&self) -> Vec<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.progress.keys().copied().collect(),
            _ => Vec::new(),
        }
    }

    /// Sends `peer` what its state and window allow; with `heartbeat`, sends an AppendEntries
    /// even when there is nothing new (it carries the commit index and the current round).
    pub(super) fn send_append(&mut self, peer: NodeId, heartbeat: bool, out: &mut Effects<Self>) {
        let first_index = self.log.first_index();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(p) = leader.progress.get_mut(&peer) else {
            return;
        };
        let compacted = p.next_index < first_index;
        if compacted && !matches!(p.state, ReplicaState::Snapshot(_)) {
            p.state = ReplicaState::Snapshot(SnapshotSend::new(self.log.snapshot().clone()));
            p.inflight.clear();
            p.inflight_bytes = 0;
        }
        match p.state {
            ReplicaState::Snapshot(_) => {
                self.send_snapshot_chunk(peer, out);
                if heartbeat {
                    self.send_empty_append(peer, first_index - 1, out);
                }
            }
            ReplicaState::Probe { sent } => {
                if !sent || heartbeat {
                    self.send_probe(peer, out);
                }
            }
            ReplicaState::Replicate => {
                let sent = self.send_window(peer, out);
                if heartbeat && !sent {
                    let p = &self.leader_state().progress[&peer];
                    // While entries are in flight, anchor at the acknowledged prefix, so that
                    // a heartbeat that overtakes them does not fail the consistency check.
                    let anchor = if p.inflight.is_empty() {
                        p.next_index - 1
                    } else {
                        p.match_index.max(first_index - 1)
                    };
                    if self.config.has_bug(Bug::HeartbeatCarriesLog) {
                        self.send_log_again(peer, anchor, out);
                    } else {
                        self.send_empty_append(peer, anchor, out);
                    }
                }
            }
        }
    }

    /// Probe: one AppendEntries from `next_index`, then wait.
    fn send_probe(&mut self, peer: NodeId, out: &mut Effects<Self>) {
        let (term, commit) = (self.term, self.commit_index);
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let round = leader.reads.round;
        let p = leader
            .progress
            .get_mut(&peer)
            .expect("checked by the caller");
        let entries = self.log.slice(
            p.next_index,
            self.config.entries_per_append_max,
            self.config.append_bytes_max,
        );
        p.state = ReplicaState::Probe { sent: true };
        let prev = p.next_index - 1;
        out.send(
            peer,
            append_entries(&self.log, term, commit, round, prev, entries),
        );
    }

    /// Replicate: stream entries until the window is full. Returns whether anything was sent.
    fn send_window(&mut self, peer: NodeId, out: &mut Effects<Self>) -> bool {
        let (term, commit) = (self.term, self.commit_index);
        let RoleState::Leader(leader) = &mut self.role else {
            return false;
        };
        let round = leader.reads.round;
        let p = leader
            .progress
            .get_mut(&peer)
            .expect("checked by the caller");
        let config = &self.config;
        let mut sent = false;
        while !p.window_full(config.inflight_max, config.inflight_bytes_max) {
            let room = config.inflight_bytes_max - p.inflight_bytes;
            let budget = room.min(config.append_bytes_max);
            let entries = self
                .log
                .slice(p.next_index, config.entries_per_append_max, budget);
            let Some(last) = entries.last().map(|e| e.index) else {
                break;
            };
            let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
            // Keep within the byte limit, except for one message alone in flight: an entry
            // larger than the limit must still go.
            if !p.inflight.is_empty() && p.inflight_bytes + bytes > config.inflight_bytes_max {
                break;
            }
            let prev = p.next_index - 1;
            p.sent(last, bytes);
            out.send(
                peer,
                append_entries(&self.log, term, commit, round, prev, entries),
            );
            sent = true;
        }
        sent
    }

    pub(super) fn send_empty_append(&mut self, peer: NodeId, prev: u64, out: &mut Effects<Self>) {
        let round = self.leader_state().reads.round;
        let message = append_entries(
            &self.log,
            self.term,
            self.commit_index,
            round,
            prev,
            Vec::new(),
        );
        out.send(peer, message);
    }

    /// `Bug::HeartbeatCarriesLog`: a heartbeat with every entry from the log's first through
    /// `anchor`, which `peer` holds already.
    fn send_log_again(&mut self, peer: NodeId, anchor: u64, out: &mut Effects<Self>) {
        let first = self.log.first_index();
        let count = (anchor + 1).saturating_sub(first) as usize;
        let entries = self.log.slice(first, count, u64::MAX);
        let round = self.leader_state().reads.round;
        let (term, commit) = (self.term, self.commit_index);
        let message = append_entries(&self.log, term, commit, round, first - 1, entries);
        out.send(peer, message);
    }

    /// A heartbeat tick: detect lost messages, start a new round, and send every follower an
    /// AppendEntries (or the chunk it waits for).
    pub(super) fn heartbeat(&mut self, out: &mut Effects<Self>) {
        let now = self.now;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        for p in leader.progress.values_mut() {
            p.tick();
        }
        leader.reads.start_round(now);
        for peer in self.followers() {
            self.send_append(peer, true, out);
        }
    }

    pub(super) fn on_append_entries_response(
        &mut self,
        from: NodeId,
        term: u64,
        round: u64,
        result: AppendResult,
        out: &mut Effects<Self>,
    ) {
        if term != self.term {
            return; // Stale: from an earlier term of ours.
        }
        let (now, last_index, first_index) =
            (self.now, self.log.last_index(), self.log.first_index());
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(p) = leader.progress.get_mut(&from) else {
            return;
        };
        p.active = true;
        p.last_heard = Some(now);
        p.acked_round = p.acked_round.max(round);
        match result {
            AppendResult::Success { match_index } => {
                if match_index > last_index {
                    return; // Cannot be ours: our log never reached it in this term.
                }
                if match_index > p.match_index {
                    p.match_index = match_index;
                    p.progressed = true;
                }
                p.acknowledge(match_index);
                let agreed = match &p.state {
                    ReplicaState::Probe { .. } => true,
                    ReplicaState::Snapshot(_) => p.match_index + 1 >= first_index,
                    ReplicaState::Replicate => false,
                };
                if agreed {
                    p.replicate();
                }
                p.next_index = p.next_index.max(p.match_index + 1);
                self.advance_commit_index(out);
                if self.transfer_target() == Some(from) {
                    self.maybe_send_timeout_now(out);
                }
            }
            AppendResult::Reject {
                prev_log_index,
                conflict_term,
                conflict_index,
            } => {
                let snapshotting = matches!(p.state, ReplicaState::Snapshot(_));
                if snapshotting || prev_log_index < p.match_index || prev_log_index >= p.next_index
                {
                    // Stale (we already moved past it), or moot while a snapshot is on its way.
                    self.confirm_reads(out);
                    return;
                }
                let hinted = conflict_term
                    .and_then(|t| self.log.last_index_of_term(t).map(|i| i + 1))
                    .unwrap_or(conflict_index);
                // Never past the rejected entry, never below what the follower acknowledged.
                p.probe_from(hinted.min(prev_log_index));
                p.progressed = true;
            }
        }
        self.confirm_reads(out);
        self.send_append(from, false, out);
    }

    /// Commits the highest index stored on a quorum, if it is of the current term (§5.4.2).
    pub(super) fn advance_commit_index(&mut self, out: &mut Effects<Self>) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let (me, durable) = (self.id, leader.durable_index.min(self.log.last_index()));
        let matched = |id: NodeId| {
            if id == me {
                durable
            } else {
                leader.progress.get(&id).map_or(0, |p| p.match_index)
            }
        };
        let new_only = self.config.has_bug(Bug::JointNewMajorityOnly);
        let candidate = self.membership.quorum_value(matched, new_only);
        if candidate <= self.commit_index {
            return;
        }
        let term = self.log.term_at(candidate);
        if term == Some(self.term) || self.config.has_bug(Bug::CommitPreviousTermByCounting) {
            self.commit_index = candidate;
            self.apply_committed(out);
            self.after_commit_membership(out);
            self.confirm_reads(out);
        } else if let (Some(term), RoleState::Leader(leader)) = (term, &mut self.role) {
            if candidate > leader.withheld_index {
                leader.withheld_index = candidate;
                let index = candidate;
                self.events
                    .push(Event::OldTermCommitWithheld { index, term });
            }
        }
    }

    /// Whether this node knows an entry of its current term to be committed: a new leader's
    /// commit index is only known to be up to date once that holds (thesis §6.4).
    pub(super) fn committed_in_term(&self) -> bool {
        self.log.term_at(self.commit_index) == Some(self.term)
    }

    // ---------------------------------------------------------------------------------------
    // Follower side.

    pub(super) fn on_append_entries(
        &mut self,
        leader: NodeId,
        append: AppendEntries,
        out: &mut Effects<Self>,
    ) {
        if append.term < self.term {
            // Refuse a stale leader, and tell it the current term so that it steps down.
            let result = AppendResult::Reject {
                prev_log_index: append.prev_log_index,
                conflict_term: None,
                conflict_index: 0,
            };
            let (term, round) = (self.term, append.round);
            out.send(
                leader,
                Message::AppendEntriesResponse {
                    term,
                    round,
                    result,
                },
            );
            return;
        }
        self.accept_leader(leader, append.term, out);
        let result = self.accept_entries(&append, out);
        if let AppendResult::Success { match_index } = result {
            if append.leader_commit > self.commit_index {
                // Only entries verified by this very message are known to match the leader's.
                let cap = if self.config.has_bug(Bug::CommitBeyondMatch) {
                    u64::MAX
                } else {
                    match_index
                };
                self.commit_index = self.commit_index.max(append.leader_commit.min(cap));
                self.apply_committed(out);
            }
        }
        let message = Message::AppendEntriesResponse {
            term: self.term,
            round: append.round,
            result,
        };
        out.send(leader, message);
    }

    /// `leader` leads our term: follow it, and note that we heard from it now.
    pub(super) fn accept_leader(&mut self, leader: NodeId, term: u64, out: &mut Effects<Self>) {
        assert!(
            !self.is_leader(),
            "two leaders in term {}: {} and {leader}",
            self.term,
            self.id
        );
        if !matches!(self.role, RoleState::Follower) || self.leader != Some(leader) {
            self.become_follower(term, Some(leader), out);
        } else {
            out.set_timer(Timer::Election, self.election_timeout());
        }
        self.heard_leader_at = Some(self.now);
        self.expire_forwarded_reads();
    }

    /// The consistency check, conflict truncation and append of one AppendEntries (§5.3).
    fn accept_entries(&mut self, append: &AppendEntries, out: &mut Effects<Self>) -> AppendResult {
        let match_index = append.prev_log_index + append.entries.len() as u64;
        let snapshot_index = self.log.first_index() - 1;
        // Entries at or below our snapshot are committed, hence equal to the leader's: skip
        // them and check against the snapshot's last entry instead.
        let (prev_index, prev_term, skip) = if append.prev_log_index < snapshot_index {
            let skip = (snapshot_index - append.prev_log_index) as usize;
            if skip >= append.entries.len() {
                return AppendResult::Success { match_index };
            }
            let prev_term = self.log.term_at(snapshot_index).expect("snapshot term");
            (snapshot_index, prev_term, skip)
        } else {
            (append.prev_log_index, append.prev_log_term, 0)
        };
        if self.log.term_at(prev_index) != Some(prev_term) {
            let (conflict_term, conflict_index) = if prev_index > self.log.last_index() {
                (None, self.log.last_index() + 1)
            } else {
                let term = self.log.term_at(prev_index);
                (term, self.log.first_index_of_term_at(prev_index))
            };
            return AppendResult::Reject {
                prev_log_index: append.prev_log_index,
                conflict_term,
                conflict_index,
            };
        }
        let mut appended: Vec<Entry> = Vec::new();
        let mut configuration_changed = false;
        for entry in &append.entries[skip..] {
            if appended.is_empty() {
                match self.log.term_at(entry.index) {
                    Some(term) if term == entry.term => continue,
                    Some(_) => {
                        assert!(
                            entry.index > self.commit_index,
                            "truncating a committed entry"
                        );
                        // A truncated configuration entry stops being in force.
                        configuration_changed |= entry.index <= self.membership_index;
                        self.log.truncate_from(entry.index);
                    }
                    None => {}
                }
            }
            configuration_changed |= matches!(entry.payload, Payload::Config(_));
            self.log.append(entry.clone());
            appended.push(entry.clone());
        }
        if configuration_changed {
            self.refresh_membership();
        }
        if !appended.is_empty() {
            out.persist(Record::Entries(appended));
        }
        AppendResult::Success { match_index }
    }

    // ---------------------------------------------------------------------------------------
    // Every node.

    /// Applies committed entries in index order; the leader answers waiting clients, and reads
    /// waiting for this index are served.
    pub(super) fn apply_committed(&mut self, out: &mut Effects<Self>) {
        while self.last_applied < self.commit_index {
            let index = self.last_applied + 1;
            let entry = self.log.entry(index).expect("committed entries are held");
            if let Payload::Command(command) = &entry.payload {
                let skip = self.config.has_bug(Bug::FollowerIgnoresExpiry)
                    && !self.is_leader()
                    && matches!(command.op, quorate_core::Op::Expired { .. });
                if skip {
                    self.last_applied = index;
                    continue;
                }
                let applied = self.kv.apply(command);
                if let RoleState::Leader(leader) = &mut self.role {
                    if leader.waiting.get(&command.client) == Some(&command.seq) {
                        leader.waiting.remove(&command.client);
                        if let Some(result) = self.kv.reply_at(&command.op, applied, self.now) {
                            out.reply(Reply {
                                client: command.client,
                                seq: command.seq,
                                result,
                            });
                        }
                    }
                }
            }
            self.last_applied = index;
        }
        self.serve_ready_reads(out);
        self.maybe_compact(out);
    }
}
