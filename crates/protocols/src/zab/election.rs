//! Fast leader election (ZooKeeper's `FastLeaderElection.lookForLeader`).
//!
//! Votes are ordered by (current epoch, last zxid, server id), so the decided leader holds
//! the most recent history of the quorum that agreed on it, which is what lets ZAB skip
//! Raft-style repair: every committed transaction is in it. Notifications may be lost; a
//! LOOKING server resends them with exponential back-off until it decides.

use super::message::{LearnerMessage, Message, Notification, PeerState, Vote};
use super::{Bug, State, Timer, Zab};
use quorate_core::{Effects, NodeId, Time, TimerRange};
use std::collections::BTreeMap;
use std::time::Duration;

/// A LOOKING server's tally.
#[derive(Clone, Debug)]
pub(super) struct Election {
    /// The vote this server currently proposes.
    proposal: Vote,
    /// Votes of this round, by voter (ZooKeeper's `recvset`); includes our own.
    votes: BTreeMap<NodeId, Vote>,
    /// What FOLLOWING and LEADING servers reported, any round (`outofelection`).
    out_of_election: BTreeMap<NodeId, Notification>,
    /// A quorum agreed on `proposal`; the finalize wait is running.
    finalizing: bool,
    /// The current resend interval.
    notify_after: Duration,
    /// FOLLOWERINFOs that reached this server while it was still LOOKING and proposing
    /// itself, by follower: `(connection, acceptedEpoch)`. A follower that finishes its
    /// finalize wait first connects before its leader decided. ZooKeeper's follower retries
    /// a refused connection until `initLimit`; here the connection waits in this backlog
    /// (as in a listening socket's) and is answered once the server decides: taken up if it
    /// leads, closed if it follows. Refusing it at once made the follower look again, vote
    /// again and connect early again, over and over, with every node up.
    early_learners: BTreeMap<NodeId, (u64, u64)>,
}

impl Election {
    pub(super) fn new(proposal: Vote, notify_after: Duration) -> Election {
        Election {
            proposal,
            votes: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalizing: false,
            notify_after,
            early_learners: BTreeMap::new(),
        }
    }

    /// Voters whose vote in `votes` equals `vote` (ZooKeeper's `termPredicate`).
    fn agreeing(votes: &BTreeMap<NodeId, Vote>, vote: &Vote) -> usize {
        votes.values().filter(|v| *v == vote).count()
    }

    pub(super) fn check_invariants(&self, node: &Zab) {
        assert_eq!(
            self.votes.get(&node.id),
            Some(&self.proposal),
            "a LOOKING server counts its own proposal"
        );
        assert!(
            self.notify_after <= node.config.notify_timeout_max,
            "notification back-off over its bound"
        );
    }
}

impl Zab {
    /// This server's own vote: its current epoch and last zxid.
    pub(super) fn own_vote(&self) -> Vote {
        Vote {
            leader: self.id,
            zxid: self.history.last_zxid(),
            epoch: self.current_epoch,
        }
    }

    /// Becomes LOOKING in a new round, voting for itself.
    pub(super) fn start_election(&mut self, now: Time, out: &mut Effects<Self>) {
        self.round += 1;
        let own = self.own_vote();
        let mut election = Election::new(own, self.config.notify_timeout_min);
        election.votes.insert(self.id, own);
        self.state = State::Looking(election);
        self.send_notifications(out);
        out.set_timer(
            Timer::Notify,
            TimerRange::fixed(self.config.notify_timeout_min),
        );
        self.check_quorum_for_proposal(now, out);
    }

    fn send_notifications(&self, out: &mut Effects<Self>) {
        let State::Looking(election) = &self.state else {
            return;
        };
        let notification = Notification {
            vote: election.proposal,
            round: self.round,
            state: PeerState::Looking,
        };
        for peer in self.peers() {
            out.send(peer, Message::Notification(notification));
        }
    }

    pub(super) fn on_notify_timeout(&mut self, out: &mut Effects<Self>) {
        let max = self.config.notify_timeout_max;
        let State::Looking(election) = &mut self.state else {
            return;
        };
        election.notify_after = (election.notify_after * 2).min(max);
        let after = election.notify_after;
        self.send_notifications(out);
        out.set_timer(Timer::Notify, TimerRange::fixed(after));
    }

    pub(super) fn on_notification(
        &mut self,
        now: Time,
        from: NodeId,
        n: Notification,
        out: &mut Effects<Self>,
    ) {
        if !matches!(self.state, State::Looking(_)) {
            // Tell a LOOKING server whom we follow or lead, so that it can join us.
            if n.state == PeerState::Looking {
                let (vote, round) = self.decided;
                let state = self.peer_state();
                out.send(
                    from,
                    Message::Notification(Notification { vote, round, state }),
                );
            }
            return;
        }
        match n.state {
            PeerState::Looking => self.on_looking_vote(now, from, n, out),
            PeerState::Following | PeerState::Leading => self.on_decided_vote(now, from, n, out),
        }
    }

    /// A vote of another LOOKING server.
    fn on_looking_vote(
        &mut self,
        now: Time,
        from: NodeId,
        n: Notification,
        out: &mut Effects<Self>,
    ) {
        let own = self.own_vote();
        let id = self.id;
        let round = self.round;
        let State::Looking(election) = &mut self.state else {
            unreachable!("checked by the caller")
        };
        if n.round < round {
            // The sender lags behind: tell it our round.
            let ours = Notification {
                vote: election.proposal,
                round,
                state: PeerState::Looking,
            };
            out.send(from, Message::Notification(ours));
            return;
        }
        let changed = if n.round > round {
            election.votes.clear();
            election.proposal = if n.vote.beats(&own) { n.vote } else { own };
            true
        } else if n.vote.beats(&election.proposal) {
            election.proposal = n.vote;
            true
        } else {
            false
        };
        if changed {
            election.votes.insert(id, election.proposal);
            if election.finalizing {
                election.finalizing = false;
                out.cancel_timer(Timer::Finalize);
            }
        }
        election.votes.insert(from, n.vote);
        if n.round > round {
            self.round = n.round;
        }
        if changed {
            self.send_notifications(out);
        }
        self.check_quorum_for_proposal(now, out);
    }

    /// Starts the finalize wait once a quorum agrees with our proposal; decides at once when
    /// every voter agrees.
    fn check_quorum_for_proposal(&mut self, now: Time, out: &mut Effects<Self>) {
        let quorum = self.quorum();
        let voters = self.voters.len();
        let round = self.round;
        let (min, max) = (self.config.finalize_wait_min, self.config.finalize_wait_max);
        let State::Looking(election) = &mut self.state else {
            return;
        };
        let agreeing = Election::agreeing(&election.votes, &election.proposal);
        if agreeing == voters {
            let proposal = election.proposal;
            return self.decide(now, proposal, round, out);
        }
        if agreeing >= quorum && !election.finalizing {
            election.finalizing = true;
            out.set_timer(Timer::Finalize, TimerRange::between(min..max));
        }
    }

    pub(super) fn on_finalize(&mut self, now: Time, out: &mut Effects<Self>) {
        let quorum = self.quorum();
        let round = self.round;
        let State::Looking(election) = &mut self.state else {
            return;
        };
        if !election.finalizing {
            return;
        }
        election.finalizing = false;
        if Election::agreeing(&election.votes, &election.proposal) >= quorum {
            let proposal = election.proposal;
            self.decide(now, proposal, round, out);
        }
    }

    /// A vote of a server that is FOLLOWING or LEADING: join it if a quorum agrees and the
    /// leader itself says it leads (`checkLeader`).
    fn on_decided_vote(
        &mut self,
        now: Time,
        from: NodeId,
        n: Notification,
        out: &mut Effects<Self>,
    ) {
        let quorum = self.quorum();
        let round = self.round;
        let id = self.id;
        let State::Looking(election) = &mut self.state else {
            unreachable!("checked by the caller")
        };
        election.out_of_election.insert(from, n);
        let leads = |reports: &BTreeMap<NodeId, Notification>| {
            if n.vote.leader == id {
                round == n.round
            } else {
                reports
                    .get(&n.vote.leader)
                    .is_some_and(|r| r.state == PeerState::Leading)
            }
        };
        if n.round == round {
            election.votes.insert(from, n.vote);
            let agreeing = Election::agreeing(&election.votes, &n.vote);
            if agreeing >= quorum && leads(&election.out_of_election) {
                return self.decide(now, n.vote, n.round, out);
            }
        }
        let State::Looking(election) = &mut self.state else {
            unreachable!("still looking")
        };
        let same = election
            .out_of_election
            .values()
            .filter(|r| r.vote == n.vote && r.round == n.round)
            .count();
        if same >= quorum && leads(&election.out_of_election) {
            self.round = n.round;
            self.decide(now, n.vote, n.round, out);
        }
    }

    /// A FOLLOWERINFO reached this LOOKING server. If it proposes itself, the connection
    /// waits for the decision (`Election::early_learners`); otherwise it is refused at once,
    /// so the follower looks again.
    pub(super) fn on_early_follower_info(
        &mut self,
        from: NodeId,
        conn: u64,
        accepted_epoch: u64,
        out: &mut Effects<Self>,
    ) {
        let (id, wait) = (self.id, !self.config.has_bug(Bug::RefuseEarlyFollowers));
        if let State::Looking(election) = &mut self.state {
            if election.proposal.leader == id && wait {
                if let Some((old, _)) = election.early_learners.insert(from, (conn, accepted_epoch))
                {
                    Self::refuse_connection(from, old, out); // Its earlier one, replaced.
                }
                return;
            }
        }
        Self::refuse_connection(from, conn, out);
    }

    /// A follower closed a connection that was waiting in the backlog: it gave up on us.
    pub(super) fn forget_early_follower(&mut self, from: NodeId, conn: u64) {
        if let State::Looking(election) = &mut self.state {
            if election
                .early_learners
                .get(&from)
                .is_some_and(|(c, _)| *c == conn)
            {
                election.early_learners.remove(&from);
            }
        }
    }

    /// Ends the election: lead, or follow the elected leader. Connections that waited in the
    /// backlog are taken up by the new leader, or closed by a follower.
    fn decide(&mut self, now: Time, vote: Vote, round: u64, out: &mut Effects<Self>) {
        out.cancel_timer(Timer::Notify);
        out.cancel_timer(Timer::Finalize);
        self.decided = (vote, round);
        self.counters.elections_decided += 1;
        let early = match &mut self.state {
            State::Looking(election) => std::mem::take(&mut election.early_learners),
            _ => BTreeMap::new(),
        };
        if vote.leader == self.id {
            self.lead(now, out);
            for (from, (conn, accepted_epoch)) in early {
                let msg = LearnerMessage::FollowerInfo { accepted_epoch };
                self.on_learner_message(now, from, conn, 1, msg, out);
            }
        } else {
            for (from, (conn, _)) in early {
                Self::refuse_connection(from, conn, out);
            }
            self.follow(now, vote.leader, out);
        }
    }
}
