//! Log compaction and chunked InstallSnapshot (§7).
//!
//! When enough entries are applied beyond the last snapshot, a node replaces its log prefix by
//! a snapshot of the state machine (and the configuration in force). A follower that needs
//! entries the leader has compacted receives the snapshot in chunks:
//!
//! 1. The leader cuts the chunk at its cursor from the snapshot's store (shared, not copied)
//!    and sends it with its number (`offset`); `done` marks the last. One chunk is in flight
//!    per follower; nobody needs the total size.
//! 2. The follower starts a new rebuild on chunk 0, appends the chunk it expects next, and
//!    answers with the number of the chunk it wants (`Next`), or `Installed` after the last.
//!    Any other chunk is answered with what it expects. The leader resends a chunk asked for
//!    again, and starts over from chunk 0 when asked for an earlier one (the follower
//!    restarted, or a late duplicate of chunk 0 reset it): its cursors only move forward.
//! 3. On the last chunk, the follower installs the snapshot, persists a checkpoint, and only
//!    then answers `Installed`; the leader then probes from the snapshot's end.

use super::membership::Membership;
use super::message::{Message, Record, Snapshot, SnapshotAck, SnapshotChunk};
use super::progress::ReplicaState;
use super::{Event, Raft, RoleState};
use quorate_core::{Effects, KvBuilder, NodeId};
use std::sync::Arc;

/// A snapshot being received.
#[derive(Clone, Debug)]
pub(super) struct SnapshotReceive {
    last_index: u64,
    last_term: u64,
    membership: Membership,
    /// The number of the chunk expected next.
    next: u64,
    builder: KvBuilder,
}

impl Raft {
    /// Sends `peer` the chunk it waits for, unless that chunk is already in flight.
    pub(super) fn send_snapshot_chunk(&mut self, peer: NodeId, out: &mut Effects<Self>) {
        let term = self.term;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(p) = leader.progress.get_mut(&peer) else {
            return;
        };
        let ReplicaState::Snapshot(send) = &mut p.state else {
            return;
        };
        if send.sent {
            return;
        }
        let snapshot = &send.snapshot;
        let (data, next) = snapshot
            .state
            .chunk(&send.cursor, self.config.snapshot_chunk_bytes);
        let chunk = SnapshotChunk {
            last_index: snapshot.last_index,
            last_term: snapshot.last_term,
            membership: snapshot.membership.clone(),
            offset: send.offset,
            data,
            done: next.is_none(),
        };
        send.next_cursor = next;
        send.sent = true;
        out.send(
            peer,
            Message::InstallSnapshot {
                term,
                chunk: Box::new(chunk),
            },
        );
    }

    pub(super) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        ack: SnapshotAck,
        out: &mut Effects<Self>,
    ) {
        if term != self.term {
            return;
        }
        let now = self.now;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(p) = leader.progress.get_mut(&from) else {
            return;
        };
        p.active = true;
        p.last_heard = Some(now);
        match ack {
            SnapshotAck::Installed => {
                p.match_index = p.match_index.max(last_index);
                p.progressed = true;
                p.replicate();
                self.advance_commit_index(out);
                if self.transfer_target() == Some(from) {
                    self.maybe_send_timeout_now(out);
                }
            }
            SnapshotAck::Next(wanted) => {
                let ReplicaState::Snapshot(send) = &mut p.state else {
                    return;
                };
                if send.snapshot.last_index != last_index {
                    return; // About a snapshot we no longer send.
                }
                if wanted == send.offset + 1 {
                    let Some(next) = send.next_cursor.take() else {
                        return; // The last chunk was sent; only `Installed` can follow.
                    };
                    send.cursor = next;
                    send.offset = wanted;
                    send.sent = false;
                    p.progressed = true;
                } else if wanted == send.offset {
                    send.sent = false; // Our chunk was dropped: resend it.
                } else if wanted < send.offset {
                    // The follower lost what it had (it restarted, or a late duplicate of
                    // chunk 0 started it over). Cursors only go forward: start over too.
                    let snapshot = send.snapshot.clone();
                    *send = super::progress::SnapshotSend::new(snapshot);
                }
            }
        }
        self.send_append(from, false, out);
    }

    pub(super) fn on_install_snapshot(
        &mut self,
        leader: NodeId,
        term: u64,
        chunk: SnapshotChunk,
        out: &mut Effects<Self>,
    ) {
        let last_index = chunk.last_index;
        let respond = |raft: &Raft, ack: SnapshotAck, out: &mut Effects<Self>| {
            let term = raft.term;
            let message = Message::InstallSnapshotResponse {
                term,
                last_index,
                ack,
            };
            out.send(leader, message);
        };
        if term < self.term {
            return respond(self, SnapshotAck::Next(0), out); // Tells the stale leader our term.
        }
        self.accept_leader(leader, term, out);
        if last_index <= self.commit_index && !self.config.has_bug(super::Bug::StaleSnapshot) {
            self.receiving = None;
            return respond(self, SnapshotAck::Installed, out);
        }
        let same =
            |r: &SnapshotReceive| (r.last_index, r.last_term) == (last_index, chunk.last_term);
        if chunk.offset == 0 {
            self.receiving = Some(SnapshotReceive {
                last_index,
                last_term: chunk.last_term,
                membership: chunk.membership.clone(),
                next: 0,
                builder: KvBuilder::new(),
            });
        }
        let expected = self
            .receiving
            .as_ref()
            .filter(|r| same(r))
            .map_or(0, |r| r.next);
        if chunk.offset != expected {
            return respond(self, SnapshotAck::Next(expected), out);
        }
        let receiving = self
            .receiving
            .as_mut()
            .expect("expected chunk implies a receive");
        receiving.builder.push(chunk.data);
        receiving.next += 1;
        if !chunk.done {
            let next = receiving.next;
            return respond(self, SnapshotAck::Next(next), out);
        }
        let receiving = self.receiving.take().expect("checked above");
        self.install_snapshot(
            Snapshot {
                last_index,
                last_term: receiving.last_term,
                membership: receiving.membership,
                state: receiving.builder.finish(),
            },
            out,
        );
        respond(self, SnapshotAck::Installed, out);
    }

    /// Replaces the log prefix and the state machine by `snapshot`, durably.
    fn install_snapshot(&mut self, snapshot: Snapshot, out: &mut Effects<Self>) {
        let last_index = snapshot.last_index;
        self.kv = snapshot.state.clone();
        self.log.install(Arc::new(snapshot));
        self.commit_index = last_index;
        self.last_applied = last_index;
        self.refresh_membership();
        self.events.push(Event::SnapshotInstalled);
        self.persist_checkpoint(out);
        self.serve_ready_reads(out);
    }

    /// Replaces the applied prefix of the log by a snapshot once it is long enough (§7).
    pub(super) fn maybe_compact(&mut self, out: &mut Effects<Self>) {
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
            membership: self.log.membership_at(self.last_applied).1.clone(),
            state: self.kv.clone(),
        };
        self.log.install(Arc::new(snapshot));
        self.refresh_membership();
        self.persist_checkpoint(out);
    }

    pub(super) fn persist_checkpoint(&self, out: &mut Effects<Self>) {
        out.persist(Record::Checkpoint {
            term: self.term,
            vote: self.vote,
            snapshot: self.log.snapshot().clone(),
            entries: self.log.entries().to_vec(),
        });
    }
}
