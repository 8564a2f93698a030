//! Multi-Paxos's safety properties, checked across the cluster after every step.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | Agreement (per slot) | at most one batch is chosen for a slot | a ledger `(slot, ballot) -> (batch digest, voters)` fed by every `Accepted` that leaves an acceptor (`on_send`: a vote still behind the persist barrier when its node crashes never happened); a majority in one ballot chooses, and a second batch chosen for the slot is a violation |
//! | One batch per ballot | a ballot proposes one batch per slot | every `Accept` a leader sends is compared with the batch its ballot proposed before in that slot |
//! | Votes name proposals | an acceptor votes only for a batch its ballot proposed | each `Accepted` digest is compared with the proposal ledger |
//! | Validity | only commands clients sent are proposed | every command of every proposed batch must be a request seen in `before_step` |
//! | Learners learn chosen batches | a replica applies, in every slot, the chosen batch | as a replica's applied prefix grows, each newly applied slot it still holds is compared with the chosen ledger |
//! | Leaders own their ballots | a node leads only a ballot of its own | each leader's ballot names it |
//!
//! Counters (reported in simulation summaries) show the interesting paths ran: elections,
//! no-op gap fills, batches of several commands, catch-up and snapshot transfers.

use super::message::{Message, Slot};
use super::MultiPaxos;
use crate::paxos::Ballot;
use quorate_core::digest::digest;
use quorate_core::quorum::majority;
use quorate_core::{ClientId, Effect, Input, Invariants, NodeId, Time, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// What one ballot proposed in one slot.
#[derive(Clone, Copy, Debug)]
struct Proposed {
    digest: u64,
    commands: usize,
}

/// The cluster-wide ledgers behind Multi-Paxos's safety properties.
#[derive(Clone, Default, Debug)]
pub struct MultiPaxosSafety {
    /// Cluster size, learned from the nodes.
    members: usize,
    /// Requests clients sent: (session, sequence number, digest of the operation).
    requested: BTreeSet<(ClientId, u64, u64)>,
    proposed: BTreeMap<(Slot, Ballot), Proposed>,
    votes: BTreeMap<(Slot, Ballot), BTreeSet<NodeId>>,
    /// Slot -> digest of the chosen batch.
    chosen: BTreeMap<Slot, u64>,
    /// The applied prefix of each node when last observed.
    observed_applied: BTreeMap<NodeId, Slot>,
    leaders: BTreeSet<Ballot>,
    noop_fills: u64,
    commands_chosen: u64,
    slots_batched: u64,
    catch_ups: u64,
    snapshots_sent: u64,
}

impl MultiPaxosSafety {
    pub fn new() -> MultiPaxosSafety {
        MultiPaxosSafety::default()
    }

    /// Slots chosen so far.
    pub fn chosen_len(&self) -> usize {
        self.chosen.len()
    }

    /// The digest of the batch chosen for `slot`, if one was.
    pub fn chosen(&self, slot: Slot) -> Option<u64> {
        self.chosen.get(&slot).copied()
    }

    fn on_propose(
        &mut self,
        id: NodeId,
        ballot: Ballot,
        slot: Slot,
        batch: &super::Batch,
    ) -> Result<(), Violation> {
        let batch_digest = batch.digest();
        if let Some(before) = self.proposed.get(&(slot, ballot)) {
            if before.digest == batch_digest {
                return Ok(()); // A retransmission, or the same Accept to another acceptor.
            }
            return Err(Violation {
                property: "one batch per ballot",
                detail: format!("{id} proposed two batches for slot {slot} in ballot {ballot}"),
            });
        }
        for command in batch.commands() {
            let request = (command.client, command.seq, digest(&command.op));
            if !self.requested.contains(&request) {
                return Err(Violation {
                    property: "validity",
                    detail: format!(
                        "{id} proposed {command:?} for slot {slot}, which no client sent"
                    ),
                });
            }
        }
        self.noop_fills += u64::from(batch.is_noop());
        let proposed = Proposed {
            digest: batch_digest,
            commands: batch.len(),
        };
        self.proposed.insert((slot, ballot), proposed);
        Ok(())
    }

    fn on_vote(
        &mut self,
        id: NodeId,
        ballot: Ballot,
        slot: Slot,
        voted: u64,
    ) -> Result<(), Violation> {
        let Some(proposed) = self.proposed.get(&(slot, ballot)).copied() else {
            return Err(Violation {
                property: "votes name proposals",
                detail: format!(
                    "{id} voted in slot {slot}, ballot {ballot}, which proposed nothing"
                ),
            });
        };
        if proposed.digest != voted {
            return Err(Violation {
                property: "votes name proposals",
                detail: format!(
                    "{id} voted for another batch than ballot {ballot} proposed in slot {slot}"
                ),
            });
        }
        let voters = self.votes.entry((slot, ballot)).or_default();
        if !voters.insert(id) {
            return Ok(()); // A retransmitted vote.
        }
        if voters.len() < majority(self.members) {
            return Ok(());
        }
        match self.chosen.get(&slot) {
            Some(first) if *first != voted => Err(Violation {
                property: "agreement",
                detail: format!(
                    "slot {slot}: a majority voted for batch {voted:016x} in ballot {ballot}, \
                     but batch {first:016x} had been chosen"
                ),
            }),
            Some(_) => Ok(()),
            None => {
                self.chosen.insert(slot, voted);
                self.commands_chosen += proposed.commands as u64;
                self.slots_batched += u64::from(proposed.commands > 1);
                Ok(())
            }
        }
    }

    fn learned(&mut self, id: NodeId, node: &MultiPaxos) -> Result<(), Violation> {
        let before = self
            .observed_applied
            .insert(id, node.applied())
            .unwrap_or(0);
        let from = before.max(node.snapshot_slot()) + 1;
        for slot in from..=node.applied() {
            let held = node.decided(slot).map(|batch| batch.digest());
            let chosen = self.chosen.get(&slot).copied();
            if held.is_none() || held != chosen {
                return Err(Violation {
                    property: "learners learn chosen batches",
                    detail: format!(
                        "{id} applied slot {slot} with batch {held:016x?}, but {chosen:016x?} \
                         is what was chosen"
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Invariants<MultiPaxos> for MultiPaxosSafety {
    fn before_step(&mut self, _now: Time, _node: NodeId, input: &Input<MultiPaxos>) {
        if let Input::Request(request) = input {
            let op = digest(&request.op);
            self.requested.insert((request.client, request.seq, op));
        }
    }

    fn after_step(
        &mut self,
        id: NodeId,
        node: &MultiPaxos,
        effects: &[Effect<MultiPaxos>],
    ) -> Result<(), Violation> {
        if let Some(ballot) = node.ballot().filter(|_| node.is_leader()) {
            if ballot.node != id {
                return Err(Violation {
                    property: "leaders own their ballots",
                    detail: format!("{id} leads ballot {ballot}"),
                });
            }
            self.leaders.insert(ballot);
        }
        self.members = node.members().len();
        for effect in effects {
            if let Effect::Send {
                msg:
                    Message::Accept {
                        ballot,
                        slot,
                        batch,
                        ..
                    },
                ..
            } = effect
            {
                self.on_propose(id, *ballot, *slot, batch)?;
            }
        }
        self.learned(id, node)
    }

    fn on_send(
        &mut self,
        _now: Time,
        from: NodeId,
        _to: NodeId,
        msg: &Message,
    ) -> Result<(), Violation> {
        match msg {
            Message::Accepted {
                ballot,
                slot,
                digest,
            } => self.on_vote(from, *ballot, *slot, *digest)?,
            Message::Decided { .. } => self.catch_ups += 1,
            Message::Snapshot { .. } => self.snapshots_sent += 1,
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.observed_applied.remove(&id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("leaders_elected", self.leaders.len() as u64),
            ("slots_chosen", self.chosen.len() as u64),
            ("commands_chosen", self.commands_chosen),
            ("slots_batched", self.slots_batched),
            ("noop_fills", self.noop_fills),
            ("catch_ups", self.catch_ups),
            ("snapshots_sent", self.snapshots_sent),
        ]
    }
}
