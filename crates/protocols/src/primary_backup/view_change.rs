//! View changes (step 4 of the module docs): a replica asks to become primary of the next view,
//! the others vote, and the winner starts the view with a `ViewStart` entry.

use super::message::{Message, Payload};
use super::replication::Progress;
use super::{Replica, Status, Timer};
use quorate_core::quorum::majority;
use quorate_core::{ClientError, Effects, NodeId, Reply, TimerRange};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

impl Replica {
    /// Leaves whatever role this replica had in its view: a primary's unanswered writes become
    /// indeterminate (they may still commit in a later view), waiting reads are refused (a read
    /// that was not answered did not happen), and everything learned about the view is dropped.
    fn leave_role(&mut self, out: &mut Effects<Self>) {
        for (client, seq) in std::mem::take(&mut self.waiting) {
            out.reply(Reply {
                client,
                seq,
                result: Err(ClientError::Indeterminate { leader: None }),
            });
        }
        self.fail_reads(out);
        if let Status::Candidate { .. } = self.status {
            out.cancel_timer(Timer::Gather);
        }
        self.status = Status::Backup;
        self.group = Arc::new(Vec::new());
        self.upstream = None;
        self.downstream.clear();
        self.heard.clear();
        // Committed entries are in every later primary's log; nothing beyond them is known to
        // match the next view's.
        self.verified = self.commit;
    }

    /// A message showed that `view` exists: join it, with no primary known yet.
    ///
    /// `from_election` says the message was a vote request or answer, not word from a primary.
    /// Those leave a running view-change timer alone, as Raft's election timer ignores a
    /// higher term (§5.2: only a leader's messages or a granted vote reset it): otherwise a
    /// candidate too far behind to win would put off, at each of its attempts, the candidacy
    /// of the up-to-date replica that refuses it. A primary stepping down has no timer running,
    /// so it starts one.
    pub(super) fn adopt_view(&mut self, view: u64, from_election: bool, out: &mut Effects<Self>) {
        assert!(view > self.view, "views never decrease");
        let was_primary = self.is_primary();
        self.leave_role(out);
        self.view = view;
        self.vote = None;
        self.persist_view_state(out);
        if !from_election || was_primary {
            self.reset_view_change_timer(out);
        }
    }

    /// `Bug::AcceptOlderViews`, or fencing off: whether to go back to the view of `msg`, a
    /// message of an older view. Only the broken and the unfenced variants ever do.
    pub(super) fn follows_older_view(&self, msg: &Message) -> bool {
        let from_primary_side = matches!(
            msg,
            Message::Prepare { .. } | Message::NewState { .. } | Message::Ping { .. }
        );
        // Even the broken variant keeps what it knows committed.
        let committed_view = self.log.view_at(self.commit).unwrap_or(0);
        from_primary_side
            && committed_view <= msg.view()
            && (!self.config.fencing || self.config.has_bug(super::Bug::AcceptOlderViews))
    }

    /// `Bug::AcceptOlderViews`, or fencing off: goes back to an older view, as if the newer one never began,
    /// dropping the uncommitted entries of the newer views.
    pub(super) fn return_to_view(&mut self, view: u64, out: &mut Effects<Self>) {
        assert!(view < self.view);
        self.leave_role(out);
        self.view = view;
        self.vote = None;
        let newer = (self.commit + 1..=self.log.last_op())
            .find(|op| self.log.view_at(*op).is_some_and(|v| v > view));
        if let Some(op) = newer {
            self.log.truncate_from(op);
            self.verified = self.verified.min(op - 1);
            self.durable = self.durable.min(op - 1);
            self.persist_checkpoint(out);
            self.note_durability(out);
        }
        self.persist_view_state(out);
        self.reset_view_change_timer(out);
    }

    /// Step 4: ask to become primary of the next view.
    pub(crate) fn start_view_change(&mut self, out: &mut Effects<Self>) {
        self.leave_role(out);
        self.view += 1;
        self.vote = Some(self.id);
        let mine = self.last_viewstamp();
        self.status = Status::Candidate {
            votes: BTreeSet::from([self.id]),
            answers: BTreeMap::from([(self.id, mine)]),
        };
        self.persist_view_state(out);
        self.reset_view_change_timer(out);
        if majority(self.members.len()) == 1 {
            // No one else votes, so nothing would wait for this replica's own vote to reach the
            // disk; the zero-delay timer does (it is held behind the persist), so that a crash
            // cannot make it primary of the same view twice.
            out.set_timer(Timer::Gather, TimerRange::fixed(std::time::Duration::ZERO));
            return;
        }
        let request = Message::StartViewChange {
            view: self.view,
            last_op: mine.1,
            last_view: mine.0,
        };
        let others: Vec<NodeId> = self.others().collect();
        for peer in others {
            out.send(peer, request.clone());
        }
    }

    /// A vote request: grant at most one per view, persisted first, and only to a candidate at
    /// least as up to date as this replica (so the winner holds every committed write).
    pub(super) fn on_start_view_change(
        &mut self,
        candidate: NodeId,
        view: u64,
        last: (u64, u64),
        out: &mut Effects<Self>,
    ) {
        let mine = self.last_viewstamp();
        if view < self.view {
            self.stats.stale_refused += 1;
        }
        let free = self.vote.is_none() || self.vote == Some(candidate);
        let granted = view == self.view && free && last >= mine;
        if granted && self.vote.is_none() {
            self.vote = Some(candidate);
            self.persist_view_state(out);
        }
        if granted {
            self.reset_view_change_timer(out);
        }
        let answer = Message::DoViewChange {
            view: self.view,
            granted,
            last_op: mine.1,
            last_view: mine.0,
        };
        out.send(candidate, answer);
    }

    pub(super) fn on_do_view_change(
        &mut self,
        voter: NodeId,
        view: u64,
        granted: bool,
        last: (u64, u64),
        out: &mut Effects<Self>,
    ) {
        if view != self.view {
            return;
        }
        let everyone = self.members.len();
        let quorum = majority(everyone);
        let chain = self.is_chain();
        let Status::Candidate { votes, answers } = &mut self.status else {
            return;
        };
        answers.insert(voter, last);
        let new_vote = granted && votes.insert(voter);
        if votes.len() < quorum {
            return;
        }
        if !chain || answers.len() == everyone {
            return self.become_primary(out);
        }
        if new_vote && votes.len() == quorum {
            // A chain is formed from the replicas that answered: give the rest a moment.
            out.set_timer(Timer::Gather, TimerRange::fixed(self.config.gather_timeout));
        }
    }

    pub(super) fn on_gather_timeout(&mut self, out: &mut Effects<Self>) {
        let quorum = majority(self.members.len());
        if let Status::Candidate { votes, .. } = &self.status {
            if votes.len() >= quorum {
                self.become_primary(out);
            }
        }
    }

    /// Won the view: form the group, take over the downstream replicas, and append the
    /// `ViewStart` entry that commits everything before it.
    fn become_primary(&mut self, out: &mut Effects<Self>) {
        let Status::Candidate { answers, .. } =
            std::mem::replace(&mut self.status, Status::Primary)
        else {
            unreachable!("only a candidate wins a view")
        };
        let group = if self.is_chain() {
            crate::chain::order_chain(self.id, &answers)
        } else {
            let mut group = vec![self.id];
            group.extend(self.others());
            group
        };
        assert!(group.len() >= majority(self.members.len()));
        self.group = Arc::new(group);
        self.upstream = None;
        self.verified = self.log.last_op();
        let next_op = self.log.last_op() + 1;
        self.downstream = self
            .feeds()
            .into_iter()
            .map(|peer| (peer, Progress::new(next_op)))
            .collect();
        self.heard = self.group.iter().map(|id| (*id, self.now)).collect();
        self.view_began = self.now;
        out.cancel_timer(Timer::ViewChange);
        out.cancel_timer(Timer::Gather);
        self.append_to_own_log(Payload::ViewStart, out);
        if self.is_chain() {
            self.ping_members(out);
        }
    }

    /// The replicas this one sends entries to in the current view.
    pub(super) fn feeds(&self) -> Vec<NodeId> {
        if self.is_chain() {
            return self.successor().into_iter().collect();
        }
        if self.is_primary() {
            return self.others().collect();
        }
        Vec::new()
    }

    /// The replica that sends entries to this one in the current view.
    fn fed_by(&self) -> Option<NodeId> {
        if self.is_chain() {
            self.predecessor()
        } else {
            self.primary().filter(|primary| *primary != self.id)
        }
    }

    /// Learns the group of the current view from a message of its primary's side (Prepare,
    /// NewState, Ping). A candidate that learns it lost the election becomes a backup.
    pub(crate) fn learn_group(&mut self, group: &super::Group, out: &mut Effects<Self>) {
        if !self.group.is_empty() {
            assert_eq!(
                self.group, *group,
                "two groups in view {} (seen by {})",
                self.view, self.id
            );
            return;
        }
        assert!(!self.is_primary(), "a primary always knows its group");
        assert!(
            group.len() >= majority(self.members.len()),
            "a group below a majority"
        );
        assert!(
            !group.contains(&self.id) || group[0] != self.id,
            "two primaries in a view"
        );
        if matches!(self.status, Status::Candidate { .. }) {
            self.status = Status::Backup;
            out.cancel_timer(Timer::Gather);
        }
        self.group = group.clone();
        self.view_began = self.now;
        self.upstream = self.fed_by();
        let next_op = self.verified + 1;
        self.downstream = self
            .feeds()
            .into_iter()
            .map(|peer| (peer, Progress::new(next_op)))
            .collect();
        self.note_durability(out);
        // A tail that restarted in its view commits again what it holds before it serves a
        // read: its commit number went back to its snapshot, but before the crash it may have
        // acknowledged writes up to its last durable entry of the view (issue 22).
        if !self.config.has_bug(super::Bug::RestartForgetsAcknowledged) {
            self.advance_commit(out);
        }
    }
}
