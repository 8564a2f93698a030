//! The safety properties of single-decree Paxos (Paxos Made Simple §2.1), checked across the
//! cluster after every step of every node, per register.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | Agreement | at most one value is chosen | a ledger `(key, ballot) -> (value, acceptors)` fed by every `Accepted` that leaves an acceptor (`on_send`: only once its acceptance is durable); a majority in one ballot chooses, and a second value chosen is a violation |
//! | One value per ballot | a ballot proposes one value | the same ledger: two values accepted in one ballot |
//! | Validity | only a proposed value is chosen | every accepted value must be the value of a client's CAS-from-absent seen in `before_step` |
//! | Integrity | a learner learns only a chosen value, at most once, and never another | every `Persist(Chosen)` is compared with the chosen ledger and with what that node learned before |
//!
//! "Chosen" is judged from what acceptors *said* (an `Accepted` leaves only after the acceptance
//! is durable), not from what learners concluded, so a broken learner cannot hide a broken
//! acceptor. The checker also measures, per register, the rounds (distinct ballots prepared)
//! and the simulated time from the first proposal to the decision: the numbers that show the
//! duelling-proposers livelock and its cure.

use super::message::{Ballot, Message, Record};
use super::Paxos;
use quorate_core::quorum::majority;
use quorate_core::{Effect, Input, Invariants, Key, NodeId, Op, Time, Value, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// The cluster-wide ledgers behind Paxos's safety properties, and its measurements.
#[derive(Clone, Default, Debug)]
pub struct PaxosSafety {
    /// True time of the step or send being checked.
    now: Time,
    /// Cluster size, learned from the nodes.
    members: usize,
    /// Values clients proposed, per register.
    proposed: BTreeMap<Key, BTreeSet<Value>>,
    /// Who accepted what, per register and ballot.
    accepted: BTreeMap<(Key, Ballot), (Value, BTreeSet<NodeId>)>,
    chosen: BTreeMap<Key, Value>,
    /// What each learner decided (it survives a crash when its record did).
    learned: BTreeMap<(NodeId, Key), Value>,
    /// Decisions made in each node's current incarnation.
    learned_now: BTreeSet<(NodeId, Key)>,
    /// When the first proposal for each register arrived anywhere.
    first_proposal: BTreeMap<Key, Time>,
    /// Ballots prepared, per register.
    ballots: BTreeMap<Key, BTreeSet<Ballot>>,
    /// Rounds refused by at least one acceptor (pre-empted or stale).
    nacked: BTreeSet<(Key, Ballot)>,
    rounds_to_decide: u64,
    decide_time_ns: u64,
}

impl PaxosSafety {
    pub fn new() -> PaxosSafety {
        PaxosSafety::default()
    }

    /// The value chosen for `key`, if one was.
    pub fn chosen(&self, key: &[u8]) -> Option<&Value> {
        self.chosen.get(key)
    }

    /// Registers decided so far.
    pub fn decided(&self) -> usize {
        self.chosen.len()
    }

    fn on_accepted(
        &mut self,
        id: NodeId,
        key: &Key,
        ballot: Ballot,
        value: &Value,
    ) -> Result<(), Violation> {
        let proposed = self.proposed.get(key).is_some_and(|v| v.contains(value));
        if !proposed {
            return Err(Violation {
                property: "validity",
                detail: format!("{id} accepted {value:?} for {key:?}, which no client proposed"),
            });
        }
        let (voted, voters) = self
            .accepted
            .entry((key.clone(), ballot))
            .or_insert_with(|| (value.clone(), BTreeSet::new()));
        if voted != value {
            return Err(Violation {
                property: "one value per ballot",
                detail: format!(
                    "{id} accepted {value:?} for {key:?} in ballot {ballot}, in which {voted:?} \
                     was accepted too"
                ),
            });
        }
        if !voters.insert(id) {
            return Ok(()); // The same vote, sent to another learner or again.
        }
        if voters.len() < majority(self.members) {
            return Ok(());
        }
        match self.chosen.get(key) {
            Some(first) if first != value => Err(Violation {
                property: "agreement",
                detail: format!(
                    "{value:?} was chosen for {key:?} in ballot {ballot} after {first:?} had been \
                     chosen"
                ),
            }),
            Some(_) => Ok(()),
            None => {
                self.chosen.insert(key.clone(), value.clone());
                let rounds = self.ballots.get(key).map_or(0, |b| b.len() as u64);
                self.rounds_to_decide += rounds;
                if let Some(first) = self.first_proposal.get(key) {
                    let elapsed = self.now.saturating_since(*first);
                    self.decide_time_ns += elapsed.as_nanos() as u64;
                }
                Ok(())
            }
        }
    }

    fn on_learned(&mut self, id: NodeId, key: &Key, value: &Value) -> Result<(), Violation> {
        if self.chosen.get(key) != Some(value) {
            return Err(Violation {
                property: "integrity",
                detail: format!(
                    "{id} learned {value:?} for {key:?}, but {:?} is what was chosen",
                    self.chosen.get(key)
                ),
            });
        }
        if !self.learned_now.insert((id, key.clone())) {
            return Err(Violation {
                property: "integrity",
                detail: format!("{id} decided {key:?} twice"),
            });
        }
        let before = self
            .learned
            .entry((id, key.clone()))
            .or_insert(value.clone());
        if before != value {
            return Err(Violation {
                property: "integrity",
                detail: format!("{id} decided {key:?} as {before:?}, then as {value:?}"),
            });
        }
        Ok(())
    }
}

impl Invariants<Paxos> for PaxosSafety {
    fn before_step(&mut self, now: Time, _node: NodeId, input: &Input<Paxos>) {
        self.now = now;
        if let Input::Request(request) = input {
            if let Op::Cas {
                key,
                expected: None,
                new,
            } = &request.op
            {
                self.proposed
                    .entry(key.clone())
                    .or_default()
                    .insert(new.clone());
                self.first_proposal.entry(key.clone()).or_insert(now);
            }
        }
    }

    fn after_step(
        &mut self,
        id: NodeId,
        node: &Paxos,
        effects: &[Effect<Paxos>],
    ) -> Result<(), Violation> {
        self.members = node.members().len();
        for effect in effects {
            if let Effect::Persist(Record::Chosen { key, value }) = effect {
                self.on_learned(id, key, value)?
            }
        }
        Ok(())
    }

    fn on_send(
        &mut self,
        now: Time,
        from: NodeId,
        _to: NodeId,
        msg: &Message,
    ) -> Result<(), Violation> {
        self.now = now;
        match msg {
            Message::Prepare { key, ballot } => {
                self.ballots.entry(key.clone()).or_default().insert(*ballot);
            }
            Message::Accepted { key, ballot, value } => {
                self.on_accepted(from, key, *ballot, value)?
            }
            Message::Nack { key, ballot, .. } => {
                self.nacked.insert((key.clone(), *ballot));
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.learned_now.retain(|(node, _)| *node != id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let proposed = self.proposed.len() as u64;
        let decided = self.chosen.len() as u64;
        let rounds: u64 = self.ballots.values().map(|b| b.len() as u64).sum();
        vec![
            ("registers_decided", decided),
            ("registers_undecided", proposed.saturating_sub(decided)),
            ("rounds", rounds),
            ("rounds_preempted", self.nacked.len() as u64),
            ("rounds_to_decide", self.rounds_to_decide),
            ("decide_time_us", self.decide_time_ns / 1_000),
        ]
    }
}
