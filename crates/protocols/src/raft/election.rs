//! Leader election (§5.2, §5.4.1) with pre-vote (thesis §9.6) and check-quorum (thesis §6.2,
//! §4.2.3).
//!
//! - **Pre-vote.** A node whose election timer fires first asks the voters whether they
//!   *would* vote for it in the next term, without changing any term. A voter says yes only if
//!   the candidate's log is at least as up to date as its own and it has not heard from a
//!   leader within the minimum election timeout. Only with a quorum of yeses does the node
//!   bump its term and run a real election. A node that was cut off therefore comes back with
//!   the term it left with, and cannot depose a healthy leader.
//! - **Check-quorum.** A leader that has not heard from a quorum within an election timeout
//!   steps down (it is probably on the minority side of a partition). Conversely, a node that
//!   heard from a leader within the minimum election timeout ignores vote requests of higher
//!   terms: the leader is alive. Leadership transfer bypasses this (the leader asked for it).

use super::message::Message;
use super::progress::LeaderState;
use super::{Event, Raft, RoleState, Timer};
use quorate_core::{ClientError, Effects, NodeId, Reply, TimerRange};
use std::collections::BTreeSet;

impl Raft {
    pub(super) fn on_election_timeout(&mut self, out: &mut Effects<Self>) {
        if self.is_leader() {
            return;
        }
        if !self.membership.is_voter(self.id) {
            // Learners, removed and not-yet-added nodes never campaign; a later configuration
            // may make this node a voter, so keep the timer running.
            return out.set_timer(Timer::Election, self.election_timeout());
        }
        if self.config.pre_vote {
            self.start_pre_vote(out);
        } else {
            self.start_election(false, out);
        }
    }

    fn start_pre_vote(&mut self, out: &mut Effects<Self>) {
        self.leader = None;
        self.role = RoleState::PreCandidate {
            votes: BTreeSet::from([self.id]),
        };
        out.set_timer(Timer::Election, self.election_timeout());
        let me = self.id;
        if self.membership.has_quorum(|id| id == me) {
            return self.start_election(false, out);
        }
        let request = Message::PreVote {
            term: self.term + 1,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        self.send_to_voters(&request, out);
    }

    /// Bumps the term, votes for itself, persists both, and asks every voter (§5.2). With
    /// `transfer`, the leader handed over and voters skip the check-quorum test.
    pub(super) fn start_election(&mut self, transfer: bool, out: &mut Effects<Self>) {
        self.term += 1;
        self.vote = Some(self.id);
        self.leader = None;
        // Our own vote counts once it is durable, like anyone else's (see `Message::Durable`).
        self.role = RoleState::Candidate {
            votes: BTreeSet::new(),
            transfer,
        };
        self.persist_hard_state(out);
        self.send_durable(out);
        out.set_timer(Timer::Election, self.election_timeout());
        let request = Message::RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        };
        self.send_to_voters(&request, out);
    }

    fn send_to_voters(&self, message: &Message, out: &mut Effects<Self>) {
        for voter in self.membership.all_voters() {
            if voter != self.id {
                out.send(voter, message.clone());
            }
        }
    }

    /// Adopts `term` (if higher) and becomes a follower of `leader` (if known). A leader hands
    /// back what it was serving: clients learn their outcome is unknown.
    pub(super) fn become_follower(
        &mut self,
        term: u64,
        leader: Option<NodeId>,
        out: &mut Effects<Self>,
    ) {
        self.follow_term(term, leader, out);
        out.set_timer(Timer::Election, self.election_timeout());
    }

    /// `become_follower` without restarting the election timer: what a follower or candidate
    /// does on a higher term from a node that is not its leader (a candidate's RequestVote,
    /// or an answer). Raft restarts the timer only for the current leader's AppendEntries or a
    /// granted vote (Figure 2). Restarting it for every higher term let candidates with stale
    /// logs, which can never win, hold back the one node that could, election after election
    /// (session 43: five nodes, two left down, neither pre-vote nor check-quorum; a write
    /// invoked after the heal timed out).
    pub(super) fn follow_term(
        &mut self,
        term: u64,
        leader: Option<NodeId>,
        out: &mut Effects<Self>,
    ) {
        assert!(term >= self.term, "terms never decrease");
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state(out);
        }
        let previous = std::mem::replace(&mut self.role, RoleState::Follower);
        if let RoleState::Leader(state) = previous {
            Self::hand_back(*state, leader, out);
            out.cancel_timer(Timer::Heartbeat);
        }
        if self.leader != leader {
            self.drain_forwarded_reads(leader, out);
        }
        self.leader = leader;
    }

    /// A deposed leader answers everyone it was serving.
    fn hand_back(state: LeaderState, leader: Option<NodeId>, out: &mut Effects<Self>) {
        for (client, seq) in state.waiting {
            let result = Err(ClientError::Indeterminate { leader });
            out.reply(Reply {
                client,
                seq,
                result,
            });
        }
        let unknown = [state.admin.map(|a| (a.client, a.seq))]
            .into_iter()
            .chain([state.transfer.and_then(|t| t.admin)])
            .flatten();
        for (client, seq) in unknown {
            let result = Err(ClientError::Indeterminate { leader });
            out.reply(Reply {
                client,
                seq,
                result,
            });
        }
        state.reads.fail_pending(leader, out);
    }

    pub(super) fn become_leader(&mut self, out: &mut Effects<Self>) {
        if let RoleState::Candidate { transfer: true, .. } = self.role {
            self.events.push(Event::TransferElected);
        }
        let mut state = LeaderState::new(self.now);
        let next_index = self.log.last_index() + 1;
        for member in self.membership.members() {
            if member != self.id {
                state.add_follower(member, next_index);
            }
        }
        self.role = RoleState::Leader(Box::new(state));
        self.leader = Some(self.id);
        // Entries appended as a follower may still be on their way to disk.
        self.send_durable(out);
        out.cancel_timer(Timer::Election);
        out.set_timer(
            Timer::Heartbeat,
            TimerRange::fixed(self.config.heartbeat_interval),
        );
        if self
            .config
            .has_bug(super::Bug::CommitPreviousTermByCounting)
        {
            self.heartbeat(out);
            return;
        }
        self.append_to_own_log(super::Payload::Noop, out);
    }

    // ---------------------------------------------------------------------------------------
    // Durability of our own vote and log.

    /// Tells ourselves, through the persist barrier, that what we persisted so far is durable.
    pub(super) fn send_durable(&self, out: &mut Effects<Self>) {
        let durable = Message::Durable {
            term: self.term,
            index: self.log.last_index(),
        };
        out.send(self.id, durable);
    }

    /// Our vote of `term` and our log through `index` reached the disk.
    pub(super) fn on_durable(&mut self, term: u64, index: u64, out: &mut Effects<Self>) {
        if term != self.term {
            return;
        }
        match &mut self.role {
            RoleState::Candidate { votes, .. } if self.vote == Some(self.id) => {
                votes.insert(self.id);
                let votes = votes.clone();
                if self.membership.has_quorum(|id| votes.contains(&id)) {
                    self.become_leader(out);
                }
            }
            RoleState::Leader(leader) => {
                leader.durable_index = leader.durable_index.max(index);
                self.advance_commit_index(out);
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // Voting.

    /// Whether the candidate's log is at least as up to date as ours (§5.4.1).
    fn up_to_date(&self, last_log_index: u64, last_log_term: u64) -> bool {
        (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index())
            || self.config.has_bug(super::Bug::VoteWithoutLogCheck)
    }

    /// Whether this node leads, or heard from a leader within the minimum election timeout.
    pub(super) fn heard_from_leader_recently(&self) -> bool {
        self.is_leader()
            || self
                .heard_leader_at
                .is_some_and(|at| self.now.saturating_since(at) < self.config.election_timeout_min)
    }

    pub(super) fn on_pre_vote(
        &mut self,
        candidate: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        out: &mut Effects<Self>,
    ) {
        let granted = term > self.term
            && self.up_to_date(last_log_index, last_log_term)
            && !self.heard_from_leader_recently();
        let term = if granted { term } else { self.term };
        out.send(candidate, Message::PreVoteResponse { term, granted });
    }

    pub(super) fn on_pre_vote_response(
        &mut self,
        voter: NodeId,
        term: u64,
        granted: bool,
        out: &mut Effects<Self>,
    ) {
        let next_term = self.term + 1;
        let RoleState::PreCandidate { votes } = &mut self.role else {
            return;
        };
        if !granted || term != next_term {
            return;
        }
        votes.insert(voter);
        let votes = votes.clone();
        if self.membership.has_quorum(|id| votes.contains(&id)) {
            self.start_election(false, out);
        }
    }

    pub(super) fn on_request_vote(
        &mut self,
        candidate: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        out: &mut Effects<Self>,
    ) {
        let free = self.vote.is_none() || self.vote == Some(candidate);
        let granted = term == self.term && free && self.up_to_date(last_log_index, last_log_term);
        if granted && self.vote.is_none() {
            self.vote = Some(candidate);
            self.persist_hard_state(out);
        }
        if granted {
            out.set_timer(Timer::Election, self.election_timeout());
        }
        let response = Message::RequestVoteResponse {
            term: self.term,
            granted,
        };
        out.send(candidate, response);
    }

    pub(super) fn on_request_vote_response(
        &mut self,
        voter: NodeId,
        term: u64,
        granted: bool,
        out: &mut Effects<Self>,
    ) {
        if term != self.term || !granted {
            return;
        }
        let RoleState::Candidate { votes, .. } = &mut self.role else {
            return;
        };
        votes.insert(voter);
        let votes = votes.clone();
        if self.membership.has_quorum(|id| votes.contains(&id)) {
            self.become_leader(out);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Check-quorum.

    /// Called on every heartbeat tick: once per minimum election timeout, a leader that did
    /// not hear from a quorum steps down. Returns whether it did.
    pub(super) fn check_quorum(&mut self, out: &mut Effects<Self>) -> bool {
        let (now, me) = (self.now, self.id);
        let timeout = self.config.election_timeout_min;
        let RoleState::Leader(leader) = &mut self.role else {
            return false;
        };
        if !self.config.check_quorum || now.saturating_since(leader.quorum_checked_at) < timeout {
            return false;
        }
        leader.quorum_checked_at = now;
        let progress = &leader.progress;
        let alive = self
            .membership
            .has_quorum(|id| id == me || progress.get(&id).is_some_and(|p| p.active));
        for p in leader.progress.values_mut() {
            p.active = false;
        }
        if alive {
            return false;
        }
        self.events.push(Event::CheckQuorumStepDown);
        self.become_follower(self.term, None, out);
        true
    }

    /// Whether a quorum answered this leader within the minimum election timeout: deposing
    /// such a leader is a disruption, not a recovery.
    pub(super) fn leader_is_healthy(&self) -> bool {
        let RoleState::Leader(leader) = &self.role else {
            return false;
        };
        let (now, me) = (self.now, self.id);
        let timeout = self.config.election_timeout_min;
        self.membership.has_quorum(|id| {
            id == me
                || leader.progress.get(&id).is_some_and(|p| {
                    p.last_heard
                        .is_some_and(|at| now.saturating_since(at) < timeout)
                })
        })
    }
}
