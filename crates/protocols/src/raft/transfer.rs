//! Leadership transfer (thesis §3.10).
//!
//! 1. The leader stops accepting new commands (clients are sent to the target) and refuses
//!    membership changes while the transfer runs.
//! 2. It brings the target's log up to date with ordinary replication.
//! 3. Once the target holds the leader's whole log, the leader sends it TimeoutNow. From then on
//!    the leader never trusts its read lease in this term: the target's election skips the
//!    followers' check-quorum test.
//! 4. The target starts an election at once, without pre-vote, marking its vote requests as a
//!    transfer. Its log is as up to date as any, so it normally wins.
//! 5. The leader steps down when it sees the target's higher term, and answers the operator.
//!    If that has not happened within an election timeout, it aborts the transfer, resumes
//!    accepting commands and answers `Unavailable` (a late TimeoutNow may still take effect).

use super::message::Message;
use super::{Event, Raft, RoleState};
use quorate_core::{AdminRequest, ClientError, ClientId, Effects, NodeId, Output, Time};

/// A leadership transfer in progress.
#[derive(Clone, Debug)]
pub(super) struct Transfer {
    pub target: NodeId,
    /// The leader's clock after which the transfer is abandoned.
    pub deadline: Time,
    /// The operator awaiting the outcome.
    pub admin: Option<(ClientId, u64)>,
}

impl Raft {
    pub(super) fn start_transfer(
        &mut self,
        admin: &AdminRequest,
        target: NodeId,
        out: &mut Effects<Self>,
    ) {
        let deadline = self.now + self.config.election_timeout_max;
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("checked by the caller")
        };
        if target == self.id {
            return Self::answer_admin(admin, Ok(Output::Done), out); // Already there.
        }
        let refusal = if !self.membership.voters.contains(&target) {
            Some(format!(
                "{target} is not a voter of the configuration ({})",
                self.membership
            ))
        } else {
            leader.transfer.as_ref().map(|transfer| {
                format!(
                    "a leadership transfer to {} is already in progress",
                    transfer.target
                )
            })
        };
        if let Some(why) = refusal {
            return Self::answer_admin(admin, Err(ClientError::Rejected(why)), out);
        }
        leader.transfer = Some(Transfer {
            target,
            deadline,
            admin: Some((admin.client, admin.seq)),
        });
        self.maybe_send_timeout_now(out);
        self.send_append(target, false, out);
    }

    /// Sends TimeoutNow if a transfer runs and its target holds the whole log.
    pub(super) fn maybe_send_timeout_now(&mut self, out: &mut Effects<Self>) {
        let (term, last_index) = (self.term, self.log.last_index());
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(transfer) = &leader.transfer else {
            return;
        };
        let target = transfer.target;
        let caught_up = leader
            .progress
            .get(&target)
            .is_some_and(|p| p.match_index == last_index);
        if caught_up {
            leader.reads.revoke_lease();
            out.send(target, Message::TimeoutNow { term });
        }
    }

    /// On every heartbeat tick: abandon a transfer past its deadline, else nudge it along.
    pub(super) fn transfer_tick(&mut self, out: &mut Effects<Self>) {
        let now = self.now;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(transfer) = &leader.transfer else {
            return;
        };
        if now < transfer.deadline {
            return self.maybe_send_timeout_now(out);
        }
        let transfer = leader.transfer.take().expect("checked above");
        self.events.push(Event::TransferAborted);
        if let Some((client, seq)) = transfer.admin {
            out.reply(quorate_core::Reply {
                client,
                seq,
                result: Err(ClientError::Unavailable),
            });
        }
    }

    /// A leader is about to step down for a higher term seen from `from`: if that is the
    /// transfer's target, the transfer did its job.
    pub(super) fn transfer_handed_over(&mut self, from: NodeId, out: &mut Effects<Self>) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(transfer) = leader.transfer.take_if(|t| t.target == from) else {
            return;
        };
        if let Some((client, seq)) = transfer.admin {
            out.reply(quorate_core::Reply {
                client,
                seq,
                result: Ok(Output::Done),
            });
        }
    }

    /// The target's side: campaign now, as a transfer, if the leader of our term asks.
    pub(super) fn on_timeout_now(&mut self, term: u64, out: &mut Effects<Self>) {
        if term != self.term || self.is_leader() || !self.membership.is_voter(self.id) {
            return; // Stale, or we cannot lead.
        }
        self.start_election(true, out);
    }

    /// The target of a transfer in progress, if any: commands are sent there meanwhile.
    pub(super) fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.transfer.as_ref().map(|t| t.target),
            _ => None,
        }
    }
}
