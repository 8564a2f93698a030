//! The leader: taking over the log after phase 1 (step 3), batching and phase 2 (step 4).

use super::message::{Batch, Message, PValue, Slot, Snapshot};
use super::{Bug, Leadership, MultiPaxos, Proposal, RoleState, Timer};
use crate::paxos::Ballot;
use quorate_core::{Effects, NodeId, TimerRange};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

impl MultiPaxos {
    /// Phase 1b arrives at a candidate: install a reported snapshot, merge the votes, and lead
    /// once a majority promised.
    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Vec<PValue>,
        snapshot: Option<Arc<Snapshot>>,
        out: &mut Effects<Self>,
    ) {
        if !matches!(&self.role, RoleState::Candidate { ballot: mine, .. } if *mine == ballot) {
            return; // Not campaigning with this ballot (any more).
        }
        if let Some(snapshot) = snapshot {
            if snapshot.last_slot > self.applied {
                self.install_snapshot(snapshot, out);
            }
        }
        let applied = self.applied;
        let quorum = self.quorum();
        let RoleState::Candidate {
            promises, reported, ..
        } = &mut self.role
        else {
            unreachable!("checked above")
        };
        reported.retain(|slot, _| *slot > applied);
        for (slot, voted_in, batch) in accepted {
            if slot <= applied {
                continue;
            }
            let entry = reported.entry(slot).or_insert((voted_in, batch.clone()));
            if voted_in > entry.0 {
                *entry = (voted_in, batch);
            }
        }
        promises.insert(from);
        if promises.len() >= quorum {
            self.become_leader(out);
        }
    }

    /// Step 3: re-propose, in our ballot, the highest-ballot batch reported for every slot
    /// above the applied prefix that we do not know decided, and a no-op in every slot nobody
    /// reported.
    fn become_leader(&mut self, out: &mut Effects<Self>) {
        let RoleState::Candidate {
            ballot, reported, ..
        } = std::mem::replace(&mut self.role, RoleState::Follower)
        else {
            unreachable!("a candidate becomes leader")
        };
        let ignore_reported = self.config.has_bug(Bug::LeaderIgnoresAccepted);
        let highest_reported = reported.keys().next_back().copied().unwrap_or(0);
        let highest_decided = self.log.keys().next_back().copied().unwrap_or(0);
        let last = highest_reported.max(highest_decided).max(self.applied);
        let mut takeover = Vec::new();
        for slot in self.applied + 1..=last {
            if self.log.contains_key(&slot) {
                continue; // Decided already (beyond a gap); followers can catch up on it.
            }
            let batch = match reported.get(&slot) {
                Some((_, voted)) if !ignore_reported => voted.clone(),
                _ => Batch::noop(),
            };
            takeover.push((slot, batch));
        }
        self.role = RoleState::Leader(Box::new(Leadership {
            ballot,
            next_slot: last + 1,
            proposals: BTreeMap::new(),
            pending: VecDeque::new(),
            waiting: BTreeMap::new(),
        }));
        self.leader = Some(self.id);
        out.cancel_timer(Timer::Election);
        out.set_timer(
            Timer::Heartbeat,
            TimerRange::fixed(self.config.heartbeat_interval),
        );
        for (slot, batch) in takeover {
            self.propose(slot, batch, out);
        }
        // Tell everyone at once who leads, so that followers stop campaigning.
        self.send_commit(out);
    }

    /// The decided prefix, to every other member (a heartbeat).
    fn send_commit(&self, out: &mut Effects<Self>) {
        let RoleState::Leader(leadership) = &self.role else {
            return;
        };
        let commit = Message::Commit {
            ballot: leadership.ballot,
            chosen: self.applied,
        };
        for member in &self.members {
            if *member != self.id {
                out.send(*member, commit.clone());
            }
        }
    }

    /// Fills free pipeline slots with batches of waiting commands.
    pub(super) fn propose_pending(&mut self, out: &mut Effects<Self>) {
        loop {
            let RoleState::Leader(leadership) = &mut self.role else {
                return;
            };
            if leadership.pending.is_empty()
                || leadership.proposals.len() >= self.config.pipeline_max
            {
                return;
            }
            let take = leadership.pending.len().min(self.config.batch_max);
            let commands = leadership.pending.drain(..take).collect();
            let slot = leadership.next_slot;
            leadership.next_slot += 1;
            self.propose(slot, Batch::new(commands), out);
        }
    }

    /// Phase 2a for one slot.
    fn propose(&mut self, slot: Slot, batch: Batch, out: &mut Effects<Self>) {
        let chosen = self.applied;
        let RoleState::Leader(leadership) = &mut self.role else {
            unreachable!("only a leader proposes")
        };
        let proposal = Proposal {
            digest: batch.digest(),
            batch: batch.clone(),
            votes: BTreeSet::new(),
        };
        assert!(slot > chosen, "proposing in a decided slot");
        let ballot = leadership.ballot;
        assert!(
            leadership.proposals.insert(slot, proposal).is_none(),
            "one batch per slot per ballot"
        );
        let accept = Message::Accept {
            ballot,
            slot,
            batch,
            chosen,
        };
        self.send_all(accept, out);
    }

    /// Phase 2b arrives at the leader: a majority of votes for the proposed batch decides it.
    pub(super) fn on_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        digest: u64,
        out: &mut Effects<Self>,
    ) {
        let quorum = self.quorum();
        let RoleState::Leader(leadership) = &mut self.role else {
            return;
        };
        if leadership.ballot != ballot {
            return; // A vote for an earlier ballot of ours.
        }
        let Some(proposal) = leadership.proposals.get_mut(&slot) else {
            return; // Decided already (a duplicate vote).
        };
        if proposal.digest != digest {
            return; // Not a vote for our batch: impossible unless a ballot was reused.
        }
        proposal.votes.insert(from);
        if proposal.votes.len() < quorum {
            return;
        }
        let decided = leadership.proposals.remove(&slot).expect("present");
        self.log.insert(slot, decided.batch);
        self.apply_decided(out);
        self.propose_pending(out);
    }

    /// A heartbeat tick: retransmit undecided Accepts to the acceptors that have not voted,
    /// and tell everyone the decided prefix.
    pub(super) fn heartbeat(&mut self, out: &mut Effects<Self>) {
        let chosen = self.applied;
        let RoleState::Leader(leadership) = &self.role else {
            return;
        };
        let ballot = leadership.ballot;
        for (slot, proposal) in &leadership.proposals {
            let accept = Message::Accept {
                ballot,
                slot: *slot,
                batch: proposal.batch.clone(),
                chosen,
            };
            for member in &self.members {
                if !proposal.votes.contains(member) {
                    out.send(*member, accept.clone());
                }
            }
        }
        self.send_commit(out);
        out.set_timer(
            Timer::Heartbeat,
            TimerRange::fixed(self.config.heartbeat_interval),
        );
    }
}
