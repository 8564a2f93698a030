//! Acceptor (steps 2 and 4), learner and catch-up (step 5), state machine and compaction
//! (step 6): what every node does, leader or not.

use super::message::{Batch, Message, Record, Slot, Snapshot};
use super::{MultiPaxos, RoleState, Timer};
use crate::paxos::Ballot;
use quorate_core::{Effects, NodeId, Reply};
use std::sync::Arc;

impl MultiPaxos {
    // ---------------------------------------------------------------------------------------
    // Acceptor.

    /// Phase 1b: promise `ballot` for every slot (persisting first) and report the votes from
    /// `from_slot` on, or refuse.
    pub(super) fn on_prepare(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        from_slot: Slot,
        out: &mut Effects<Self>,
    ) {
        if ballot < self.promised {
            let promised = self.promised;
            return out.send(from, Message::Nack { ballot, promised });
        }
        if ballot > self.promised {
            self.promised = ballot;
            out.persist(Record::Promise(ballot));
            self.yield_to(ballot, out);
            if !self.is_leader() && ballot.node != self.id {
                // Give the candidate time to finish before campaigning ourselves.
                self.leader = Some(ballot.node);
                out.set_timer(Timer::Election, self.election_timeout());
            }
        }
        let accepted = self
            .accepted
            .range(from_slot..)
            .map(|(slot, (voted_in, batch))| (*slot, *voted_in, batch.clone()))
            .collect();
        let snapshot = (self.snapshot.last_slot >= from_slot).then(|| self.snapshot.clone());
        let promise = Message::Promise {
            ballot,
            accepted,
            snapshot,
        };
        out.send(from, promise);
    }

    /// Phase 2b: vote for the batch (persisting first) unless a higher ballot was promised.
    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        batch: Batch,
        chosen: Slot,
        out: &mut Effects<Self>,
    ) {
        if ballot < self.promised {
            let promised = self.promised;
            return out.send(from, Message::Nack { ballot, promised });
        }
        self.follow(ballot, out);
        if slot <= self.snapshot.last_slot {
            // Decided and compacted here: the proposer is behind (and may be deposed).
            let snapshot = self.snapshot.clone();
            return out.send(from, Message::Snapshot { snapshot });
        }
        let digest = batch.digest();
        let vote = (ballot, batch);
        if self.promised != ballot || self.accepted.get(&slot) != Some(&vote) {
            self.promised = ballot;
            let (_, batch) = &vote;
            out.persist(Record::Accept {
                slot,
                ballot,
                batch: batch.clone(),
            });
            self.accepted.insert(slot, vote);
        }
        out.send(
            from,
            Message::Accepted {
                ballot,
                slot,
                digest,
            },
        );
        self.learn_prefix(ballot, chosen, false, out);
    }

    /// Leader traffic of `ballot` (at least our promise) arrived: follow its owner.
    fn follow(&mut self, ballot: Ballot, out: &mut Effects<Self>) {
        self.yield_to(ballot, out);
        if matches!(self.role, RoleState::Follower) {
            self.leader = Some(ballot.node);
            out.set_timer(Timer::Election, self.election_timeout());
        }
    }

    // ---------------------------------------------------------------------------------------
    // Learner.

    /// The leader's heartbeat: learn the decided prefix, or refuse a deposed leader.
    pub(super) fn on_commit(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        chosen: Slot,
        out: &mut Effects<Self>,
    ) {
        if ballot < self.promised {
            let promised = self.promised;
            return out.send(from, Message::Nack { ballot, promised });
        }
        self.follow(ballot, out);
        self.learn_prefix(ballot, chosen, true, out);
    }

    /// Slots up to `chosen` are decided in `ballot`'s view. Where this acceptor voted for
    /// `ballot`'s batch, that batch is the decision; at the first slot where it did not, ask
    /// the leader for the decisions (if `catch_up`).
    fn learn_prefix(
        &mut self,
        ballot: Ballot,
        chosen: Slot,
        catch_up: bool,
        out: &mut Effects<Self>,
    ) {
        if self.is_leader() {
            return; // The leader's own log is authoritative for its ballot.
        }
        let mut slot = self.applied + 1;
        while slot <= chosen {
            if !self.log.contains_key(&slot) {
                match self.accepted.get(&slot) {
                    Some((voted_in, batch)) if *voted_in == ballot => {
                        self.log.insert(slot, batch.clone());
                    }
                    _ => {
                        if catch_up {
                            out.send(ballot.node, Message::CatchUp { from_slot: slot });
                        }
                        break;
                    }
                }
            }
            slot += 1;
        }
        self.apply_decided(out);
    }

    /// Serves a lagging replica the decided batches it asks for, or a snapshot if they are
    /// compacted here.
    pub(super) fn on_catch_up(&mut self, from: NodeId, from_slot: Slot, out: &mut Effects<Self>) {
        if from_slot <= self.snapshot.last_slot {
            let snapshot = self.snapshot.clone();
            return out.send(from, Message::Snapshot { snapshot });
        }
        if from_slot > self.applied {
            return; // We do not know those decisions either.
        }
        let batches: Vec<Batch> = self
            .log
            .range(from_slot..=self.applied)
            .take(self.config.catchup_max)
            .map(|(_, batch)| batch.clone())
            .collect();
        if !batches.is_empty() {
            let first = from_slot;
            out.send(from, Message::Decided { first, batches });
        }
    }

    pub(super) fn on_decided(&mut self, first: Slot, batches: Vec<Batch>, out: &mut Effects<Self>) {
        if self.is_leader() {
            return; // A leader learns only from its own ballot's votes (see `on_snapshot`).
        }
        for (offset, batch) in batches.into_iter().enumerate() {
            let slot = first + offset as Slot;
            if slot > self.applied {
                self.log.entry(slot).or_insert(batch);
            }
        }
        self.apply_decided(out);
    }

    /// A snapshot beyond our applied prefix. A leader or candidate steps down first: slots it
    /// proposed may have been decided in a higher ballot with other batches, and its Commit
    /// would then let followers apply its own batches there.
    pub(super) fn on_snapshot(&mut self, snapshot: Arc<Snapshot>, out: &mut Effects<Self>) {
        if snapshot.last_slot <= self.applied {
            return;
        }
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower(None, out);
        }
        self.install_snapshot(snapshot, out);
    }

    pub(super) fn install_snapshot(&mut self, snapshot: Arc<Snapshot>, out: &mut Effects<Self>) {
        assert!(!self.is_leader(), "a leader does not install snapshots");
        assert!(snapshot.last_slot > self.applied, "snapshots move forward");
        let last = snapshot.last_slot;
        self.kv = snapshot.state.clone();
        self.applied = last;
        self.snapshot = snapshot;
        self.log = self.log.split_off(&(last + 1));
        self.accepted = self.accepted.split_off(&(last + 1));
        self.persist_checkpoint(out);
        self.apply_decided(out);
    }

    // ---------------------------------------------------------------------------------------
    // State machine.

    /// Applies decided slots in order; the leader answers the clients waiting for them.
    pub(super) fn apply_decided(&mut self, out: &mut Effects<Self>) {
        while let Some(batch) = self.log.get(&(self.applied + 1)).cloned() {
            self.applied += 1;
            for command in batch.commands() {
                let applied = self.kv.apply(command);
                let RoleState::Leader(leadership) = &mut self.role else {
                    continue;
                };
                if leadership.waiting.get(&command.client) != Some(&command.seq) {
                    continue;
                }
                leadership.waiting.remove(&command.client);
                if let Some(result) = applied.reply() {
                    out.reply(Reply {
                        client: command.client,
                        seq: command.seq,
                        result,
                    });
                }
            }
        }
        self.maybe_compact(out);
    }

    /// Step 6: replace the applied prefix by a snapshot once it is long enough.
    fn maybe_compact(&mut self, out: &mut Effects<Self>) {
        if self.applied - self.snapshot.last_slot < self.config.snapshot_threshold {
            return;
        }
        self.snapshot = Arc::new(Snapshot {
            last_slot: self.applied,
            state: self.kv.clone(),
        });
        self.log = self.log.split_off(&(self.applied + 1));
        self.accepted = self.accepted.split_off(&(self.applied + 1));
        self.persist_checkpoint(out);
    }

    fn persist_checkpoint(&self, out: &mut Effects<Self>) {
        let accepted = self
            .accepted
            .iter()
            .map(|(slot, (ballot, batch))| (*slot, *ballot, batch.clone()))
            .collect();
        out.persist(Record::Checkpoint {
            round: self.round,
            promised: self.promised,
            snapshot: self.snapshot.clone(),
            accepted,
        });
    }
}
