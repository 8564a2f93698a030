//! Log replication (§5.3), commitment (§5.4.2), application and compaction (§7).

use super::message::{AppendResult, Entry, Message, Payload, Record, Snapshot};
use super::{AppendEntries, Bug, Raft, RoleState};
use quorate_core::quorum::majority_floor;
use quorate_core::{Effects, NodeId, Reply};
use std::sync::Arc;

impl Raft {
    // ---------------------------------------------------------------------------------------
    // Leader side.

    /// Appends an entry of the current term to the leader's own log, persists it, and sends it
    /// to every follower that has room in its window.
    pub(super) fn append_to_own_log(&mut self, payload: Payload, out: &mut Effects<Self>) {
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.term,
            payload,
        };
        self.log.append(entry.clone());
        out.persist(Record::Entries(vec![entry]));
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send_append(peer, false, out);
        }
        // A single-node cluster commits on its own.
        self.advance_commit_index(out);
    }

    /// Sends `peer` the entries it lacks, if its window allows; with `heartbeat`, sends an
    /// AppendEntries even when there is nothing new.
    pub(super) fn send_append(&mut self, peer: NodeId, heartbeat: bool, out: &mut Effects<Self>) {
        let RoleState::Leader { progress, .. } = &mut self.role else {
            return;
        };
        let p = progress.get_mut(&peer).expect("progress for every peer");
        if p.next_index < self.log.first_index() {
            if !p.snapshot_in_flight {
                p.snapshot_in_flight = true;
                let snapshot = self.log.snapshot().clone();
                out.send(
                    peer,
                    Message::InstallSnapshot {
                        term: self.term,
                        snapshot,
                    },
                );
            }
            return;
        }
        let room = p.inflight < self.config.inflight_max;
        let entries = if room {
            self.log
                .slice(p.next_index, self.config.entries_per_append_max)
        } else {
            Vec::new()
        };
        if entries.is_empty() && !heartbeat {
            return;
        }
        // A heartbeat sent while entries are in flight anchors at the acknowledged prefix, so
        // that it does not fail the consistency check just because it overtook them.
        let prev_log_index = if entries.is_empty() && p.inflight > 0 {
            p.match_index.max(self.log.first_index() - 1)
        } else {
            p.next_index - 1
        };
        let prev_log_term = self
            .log
            .term_at(prev_log_index)
            .expect("prev entry is held");
        if let Some(last) = entries.last() {
            p.next_index = last.index + 1;
            p.inflight += 1;
        }
        let message = Message::AppendEntries {
            term: self.term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
        };
        out.send(peer, message);
    }

    /// A heartbeat tick: retransmit to followers that acknowledged nothing since the last tick,
    /// and send every follower an AppendEntries.
    pub(super) fn heartbeat(&mut self, out: &mut Effects<Self>) {
        let RoleState::Leader { progress, .. } = &mut self.role else {
            return;
        };
        for p in progress.values_mut() {
            if (p.inflight > 0 || p.snapshot_in_flight) && !p.acked_since_tick {
                p.next_index = p.match_index + 1;
                p.inflight = 0;
                p.snapshot_in_flight = false;
            }
            p.acked_since_tick = false;
        }
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send_append(peer, true, out);
        }
    }

    pub(super) fn on_append_entries_response(
        &mut self,
        from: NodeId,
        term: u64,
        result: AppendResult,
        out: &mut Effects<Self>,
    ) {
        if term != self.term {
            return; // Stale: from an earlier term of ours.
        }
        let last_index = self.log.last_index();
        let RoleState::Leader { progress, .. } = &mut self.role else {
            return;
        };
        let Some(p) = progress.get_mut(&from) else {
            return;
        };
        p.acked_since_tick = true;
        match result {
            AppendResult::Success { match_index } => {
                if match_index > last_index {
                    return; // Cannot be ours: our log never reached it in this term.
                }
                p.match_index = p.match_index.max(match_index);
                p.next_index = p.next_index.max(p.match_index + 1);
                p.inflight = p.inflight.saturating_sub(1);
                self.advance_commit_index(out);
            }
            AppendResult::Reject {
                prev_log_index,
                conflict_term,
                conflict_index,
            } => {
                if prev_log_index < p.match_index || prev_log_index >= p.next_index {
                    return; // A stale rejection: we already moved past it.
                }
                let hinted = conflict_term
                    .and_then(|t| self.log.last_index_of_term(t).map(|i| i + 1))
                    .unwrap_or(conflict_index);
                // Never past the rejected entry, never below what the follower acknowledged.
                p.next_index = hinted.min(prev_log_index).max(p.match_index + 1);
                p.inflight = 0;
            }
        }
        self.send_append(from, false, out);
    }

    pub(super) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        out: &mut Effects<Self>,
    ) {
        if term != self.term {
            return;
        }
        let RoleState::Leader { progress, .. } = &mut self.role else {
            return;
        };
        let Some(p) = progress.get_mut(&from) else {
            return;
        };
        p.snapshot_in_flight = false;
        p.acked_since_tick = true;
        p.match_index = p.match_index.max(last_index);
        p.next_index = p.next_index.max(p.match_index + 1);
        self.advance_commit_index(out);
        self.send_append(from, false, out);
    }

    /// Commits the highest index stored on a majority, if it is of the current term (§5.4.2).
    pub(super) fn advance_commit_index(&mut self, out: &mut Effects<Self>) {
        let RoleState::Leader { progress, .. } = &self.role else {
            return;
        };
        let mut matched: Vec<u64> = progress.values().map(|p| p.match_index).collect();
        matched.push(self.log.last_index());
        let candidate = majority_floor(&mut matched);
        if candidate <= self.commit_index {
            return;
        }
        let current_term = self.log.term_at(candidate) == Some(self.term);
        if current_term || self.config.has_bug(Bug::CommitPreviousTermByCounting) {
            self.commit_index = candidate;
            self.apply_committed(out);
        }
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
            out.send(
                leader,
                Message::AppendEntriesResponse {
                    term: self.term,
                    result,
                },
            );
            return;
        }
        assert!(
            !self.is_leader(),
            "two leaders in term {}: {} and {leader}",
            self.term,
            self.id
        );
        if !matches!(self.role, RoleState::Follower) || self.leader != Some(leader) {
            self.become_follower(append.term, Some(leader), out);
        } else {
            out.set_timer(super::Timer::Election, self.election_timeout());
        }
        let result = self.accept_entries(&append, out);
        if let AppendResult::Success { match_index } = result {
            if append.leader_commit > self.commit_index {
                // Only entries verified by this very message are known to match the leader's.
                self.commit_index = self.commit_index.max(append.leader_commit.min(match_index));
                self.apply_committed(out);
            }
        }
        out.send(
            leader,
            Message::AppendEntriesResponse {
                term: self.term,
                result,
            },
        );
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
        for entry in &append.entries[skip..] {
            if appended.is_empty() {
                match self.log.term_at(entry.index) {
                    Some(term) if term == entry.term => continue,
                    Some(_) => {
                        assert!(
                            entry.index > self.commit_index,
                            "truncating a committed entry"
                        );
                        self.log.truncate_from(entry.index);
                    }
                    None => {}
                }
            }
            self.log.append(entry.clone());
            appended.push(entry.clone());
        }
        if !appended.is_empty() {
            out.persist(Record::Entries(appended));
        }
        AppendResult::Success { match_index }
    }

    pub(super) fn on_install_snapshot(
        &mut self,
        leader: NodeId,
        term: u64,
        snapshot: Arc<Snapshot>,
        out: &mut Effects<Self>,
    ) {
        if term < self.term {
            let response = Message::InstallSnapshotResponse {
                term: self.term,
                last_index: 0,
            };
            out.send(leader, response);
            return;
        }
        if !matches!(self.role, RoleState::Follower) || self.leader != Some(leader) {
            self.become_follower(term, Some(leader), out);
        } else {
            out.set_timer(super::Timer::Election, self.election_timeout());
        }
        let last_index = snapshot.last_index;
        if last_index > self.commit_index {
            self.log.install(snapshot.clone());
            self.kv = snapshot.state.clone();
            self.commit_index = last_index;
            self.last_applied = last_index;
            self.persist_checkpoint(out);
        }
        let response = Message::InstallSnapshotResponse {
            term: self.term,
            last_index,
        };
        out.send(leader, response);
    }

    // ---------------------------------------------------------------------------------------
    // Every node.

    /// Applies committed entries in index order; the leader answers waiting clients.
    pub(super) fn apply_committed(&mut self, out: &mut Effects<Self>) {
        while self.last_applied < self.commit_index {
            let index = self.last_applied + 1;
            let entry = self.log.entry(index).expect("committed entries are held");
            if let Payload::Command(command) = &entry.payload {
                let applied = self.kv.apply(command);
                if let RoleState::Leader { waiting, .. } = &mut self.role {
                    if waiting.get(&command.client) == Some(&command.seq) {
                        waiting.remove(&command.client);
                        if let Some(result) = applied.reply() {
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
        self.maybe_compact(out);
    }

    /// Replaces the applied prefix of the log by a snapshot once it is long enough (§7).
    fn maybe_compact(&mut self, out: &mut Effects<Self>) {
        let snapshot_index = self.log.first_index() - 1;
        if self.last_applied - snapshot_index < self.config.snapshot_threshold {
            return;
        }
        let snapshot = Snapshot {
            last_index: self.last_applied,
            last_term: self
                .log
                .term_at(self.last_applied)
                .expect("applied entry is held"),
            state: self.kv.clone(),
        };
        self.log.install(Arc::new(snapshot));
        self.persist_checkpoint(out);
    }

    fn persist_checkpoint(&self, out: &mut Effects<Self>) {
        out.persist(Record::Checkpoint {
            term: self.term,
            vote: self.vote,
            snapshot: self.log.snapshot().clone(),
            entries: self.log.entries().to_vec(),
        });
    }
}
