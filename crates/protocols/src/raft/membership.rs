//! Membership changes: joint consensus (paper §6) and single-server changes (thesis §4.1),
//! with learners (thesis §4.2.1) and a removed leader stepping down (thesis §4.2.2).
//!
//! A configuration is an ordinary log entry ([`Payload::Config`]) and takes effect on a node
//! as soon as it is in that node's log, committed or not; a truncated configuration entry
//! reverts the node to the one before it. Safety rests on one rule: any two configurations
//! that may be in force at the same time must have intersecting quorums.
//!
//! 1. **Single-server changes** (`AddVoter`, `RemoveNode`, `AddLearner`, `AddLearnerAt`): a majority of `C` and a
//!    majority of `C ± one voter` always intersect, so the leader appends the new
//!    configuration directly, provided the previous change is committed (so at most two
//!    configurations can be in force) and the leader has committed an entry of its own term
//!    (Ongaro's 2015 correction: without it a new leader may append a change that conflicts
//!    with an uncommitted one from an earlier term).
//! 2. **Joint consensus** (`ChangeMembership`): `C_old,new` is appended; while it is in force,
//!    elections and commitment need a majority of `C_old` *and* a majority of `C_new`. Once
//!    `C_old,new` is committed, the leader appends `C_new`, which is the only configuration a
//!    later leader can hold.
//! 3. **Learners** receive the log but never vote and never count for quorums. A node becomes
//!    a voter only as a learner whose log is within `promotion_lag_max` entries of the leader's:
//!    adding an empty voter would leave the cluster unable to commit until it catches up.
//! 4. **A leader outside `C_new`** keeps leading without counting itself until `C_new` is
//!    committed, then steps down (it no longer campaigns: only voters do).
//! 5. **Addresses.** `AddLearnerAt` records, with the new learner, the address a driver dials
//!    it at ([`Membership::addresses`]): the configuration entry is how every node learns it,
//!    and the log or snapshot is where it survives restarts. Removing a member drops it.
//! 6. Overlapping or unsafe requests are refused with a `ClientError::Rejected` that says why;
//!    requests that change nothing succeed at once.

use super::message::Payload;
use super::{Event, Raft, RoleState};
use quorate_core::quorum::{majority, majority_floor};
use quorate_core::{AdminCommand, AdminRequest, ClientError, Effects, NodeId, Output, Reply};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A cluster configuration.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Membership {
    /// The voters; during joint consensus, those of the configuration being entered (`C_new`).
    pub voters: BTreeSet<NodeId>,
    /// During joint consensus, the voters of the configuration being left (`C_old`): every
    /// decision then needs a majority of both.
    pub old_voters: Option<BTreeSet<NodeId>>,
    /// Non-voting members: they receive the log but neither vote nor count for quorums.
    pub learners: BTreeSet<NodeId>,
    /// How drivers reach members added after bootstrap (`AdminCommand::AddLearnerAt`): an
    /// opaque string the protocol only carries, so that every node learns it from the log
    /// (or a snapshot) and keeps it across restarts. Bootstrap members' addresses are the
    /// driver's own configuration. A removed member's address goes with it.
    #[serde(default)]
    pub addresses: BTreeMap<NodeId, String>,
}

impl Membership {
    /// A plain configuration of `voters`, without learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            old_voters: None,
            learners: BTreeSet::new(),
            addresses: BTreeMap::new(),
        }
    }

    pub fn is_joint(&self) -> bool {
        self.old_voters.is_some()
    }

    /// Whether `id` votes in this configuration (in either half of a joint one).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
            || self
                .old_voters
                .as_ref()
                .is_some_and(|old| old.contains(&id))
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Every voter of either half.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        if let Some(old) = &self.old_voters {
            all.extend(old.iter().copied());
        }
        all
    }

    /// Voters and learners.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.all_voters();
        all.extend(self.learners.iter().copied());
        all
    }

    /// Whether the nodes for which `yes` holds form a quorum: a majority of the voters, and in
    /// joint consensus a majority of the old voters too.
    pub fn has_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        let majority_of = |set: &BTreeSet<NodeId>| {
            set.iter().filter(|id| yes(**id)).count() >= majority(set.len())
        };
        let old = match &self.old_voters {
            Some(old) => majority_of(old),
            None => true,
        };
        majority_of(&self.voters) && old
    }

    /// The highest value that a quorum reaches, given each voter's value: for match indices,
    /// the highest index stored on a quorum. With `new_only`, the old half of a joint
    /// configuration is ignored (the deliberately broken rule of `Bug::JointNewMajorityOnly`).
    pub fn quorum_value(&self, value: impl Fn(NodeId) -> u64, new_only: bool) -> u64 {
        // Computed for every commit and every read round: on the stack for the usual sizes.
        const ON_STACK: usize = 16;
        let floor = |set: &BTreeSet<NodeId>| {
            if set.len() <= ON_STACK {
                let mut values = [0u64; ON_STACK];
                for (slot, id) in values.iter_mut().zip(set) {
                    *slot = value(*id);
                }
                majority_floor(&mut values[..set.len()])
            } else {
                let mut values: Vec<u64> = set.iter().map(|id| value(*id)).collect();
                majority_floor(&mut values)
            }
        };
        let new = floor(&self.voters);
        match &self.old_voters {
            Some(old) if !new_only => new.min(floor(old)),
            _ => new,
        }
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |set: &BTreeSet<NodeId>| {
            let names: Vec<String> = set.iter().map(|id| id.to_string()).collect();
            format!("{{{}}}", names.join(","))
        };
        write!(f, "voters {}", names(&self.voters))?;
        if let Some(old) = &self.old_voters {
            write!(f, " joint with {}", names(old))?;
        }
        if !self.learners.is_empty() {
            write!(f, ", learners {}", names(&self.learners))?;
        }
        Ok(())
    }
}

/// An operator's change this leader appended and has not answered yet.
#[derive(Clone, Debug)]
pub(super) struct PendingAdmin {
    pub client: quorate_core::ClientId,
    pub seq: u64,
    /// The configuration entry whose commitment completes the change.
    pub index: u64,
}

impl Raft {
    /// An operator's request: membership changes here, leadership transfers in `transfer.rs`.
    pub(super) fn on_admin(&mut self, admin: AdminRequest, out: &mut Effects<Self>) {
        let RoleState::Leader(leader) = &self.role else {
            let leader = self.leader_hint();
            return Self::answer_admin(&admin, Err(ClientError::NotLeader { leader }), out);
        };
        if let Some(pending) = &leader.admin {
            if (pending.client, pending.seq) == (admin.client, admin.seq) {
                return; // A retry of the change in progress: the answer comes when it commits.
            }
        }
        if let AdminCommand::TransferLeadership(target) = admin.command {
            return self.start_transfer(&admin, target, out);
        }
        match self.next_membership(&admin.command) {
            Err(why) => {
                self.events.push(Event::MembershipChangeRefused);
                Self::answer_admin(&admin, Err(ClientError::Rejected(why)), out)
            }
            Ok(None) => Self::answer_admin(&admin, Ok(Output::Done), out),
            Ok(Some(next)) => {
                let index = self.log.last_index() + 1;
                let RoleState::Leader(leader) = &mut self.role else {
                    unreachable!("checked above")
                };
                leader.admin = Some(PendingAdmin {
                    client: admin.client,
                    seq: admin.seq,
                    index,
                });
                self.append_to_own_log(Payload::Config(next), out);
            }
        }
    }

    pub(super) fn answer_admin(
        admin: &AdminRequest,
        result: Result<Output, ClientError>,
        out: &mut Effects<Self>,
    ) {
        out.reply(Reply {
            client: admin.client,
            seq: admin.seq,
            result,
        });
    }

    /// The configuration `command` asks for, `None` if it changes nothing, or why it is refused.
    fn next_membership(&self, command: &AdminCommand) -> Result<Option<Membership>, String> {
        let current = &self.membership;
        self.change_allowed()?;
        let mut next = current.clone();
        match command {
            AdminCommand::AddLearner(id) => {
                if current.is_voter(*id) {
                    return Err(format!(
                        "{id} is a voter; remove it before adding it as a learner"
                    ));
                }
                if !next.learners.insert(*id) {
                    return Ok(None);
                }
            }
            AdminCommand::AddLearnerAt { id, address } => {
                let known = current.addresses.get(id);
                if current.members().contains(id) && known != Some(address) {
                    return Err(format!(
                        "{id} is already a member{}; remove it before adding it at {address}",
                        known.map(|a| format!(" (at {a})")).unwrap_or_default()
                    ));
                }
                if current.is_voter(*id) {
                    return Ok(None); // Added and promoted already: a retry.
                }
                let new_learner = next.learners.insert(*id);
                next.addresses.insert(*id, address.clone());
                if !new_learner {
                    return Ok(None);
                }
            }
            AdminCommand::AddVoter(id) => {
                if current.is_voter(*id) {
                    return Ok(None);
                }
                self.check_caught_up(*id)?;
                next.learners.remove(id);
                next.voters.insert(*id);
            }
            AdminCommand::RemoveNode(id) => {
                if !current.members().contains(id) {
                    return Ok(None);
                }
                if current.voters.len() == 1 && current.voters.contains(id) {
                    return Err(format!(
                        "{id} is the only voter; a cluster needs at least one"
                    ));
                }
                next.voters.remove(id);
                next.learners.remove(id);
                next.addresses.remove(id);
            }
            AdminCommand::ChangeMembership { voters } => {
                let voters: BTreeSet<NodeId> = voters.iter().copied().collect();
                if voters.is_empty() {
                    return Err("the new configuration has no voters".into());
                }
                if voters == current.voters {
                    return Ok(None);
                }
                for id in voters.difference(&current.voters) {
                    self.check_caught_up(*id)?;
                }
                next.learners.retain(|id| !voters.contains(id));
                next.old_voters = Some(std::mem::replace(&mut next.voters, voters));
            }
            AdminCommand::TransferLeadership(_) => unreachable!("handled by the caller"),
        }
        Ok(Some(next))
    }

    /// Refuses a change while another may still be in force somewhere (one at a time).
    fn change_allowed(&self) -> Result<(), String> {
        let RoleState::Leader(leader) = &self.role else {
            unreachable!("only leaders change membership")
        };
        if let Some(transfer) = &leader.transfer {
            return Err(format!(
                "a leadership transfer to {} is in progress",
                transfer.target
            ));
        }
        if let Some(pending) = &leader.admin {
            return Err(format!(
                "another membership change (configuration entry {}) is in progress",
                pending.index
            ));
        }
        if self.membership_index > self.commit_index {
            return Err(format!(
                "the configuration at index {} ({}) is not committed yet; one change at a time",
                self.membership_index, self.membership
            ));
        }
        if self.membership.is_joint() {
            return Err(format!(
                "joint consensus ({}) has not been left yet",
                self.membership
            ));
        }
        if !self.committed_in_term() {
            return Err(format!(
                "this leader has not committed an entry of term {} yet; retry shortly",
                self.term
            ));
        }
        Ok(())
    }

    /// A node may become a voter only as a learner that has (nearly) caught up.
    fn check_caught_up(&self, id: NodeId) -> Result<(), String> {
        if !self.membership.is_learner(id) {
            return Err(format!(
                "{id} is not a learner; add it with AddLearner first so that it catches up \
                 before it votes"
            ));
        }
        let RoleState::Leader(leader) = &self.role else {
            unreachable!("only leaders change membership")
        };
        let matched = leader.progress.get(&id).map_or(0, |p| p.match_index);
        let last = self.log.last_index();
        if matched + self.config.promotion_lag_max < last {
            return Err(format!(
                "learner {id} has not caught up: {} entries behind (it holds the log through \
                 index {matched} of {last}); retry once it is within {} entries",
                last - matched,
                self.config.promotion_lag_max
            ));
        }
        Ok(())
    }

    /// Re-reads the configuration in force from the log (after truncation, a snapshot or
    /// recovery). Leaders track new members; see [`Raft::on_membership_appended`].
    pub(super) fn refresh_membership(&mut self) {
        let (index, membership) = self.log.membership_at(self.log.last_index());
        self.membership_index = index;
        self.membership = membership.clone();
    }

    /// A configuration entry was appended to this leader's own log: it is in force now.
    pub(super) fn on_membership_appended(&mut self, index: u64, membership: &Membership) {
        self.membership_index = index;
        self.membership = membership.clone();
        let next_index = self.log.last_index();
        let id = self.id;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        for member in membership.members() {
            if member != id {
                leader.add_follower(member, next_index);
            }
        }
        // A lease earned under the previous configuration's quorums proves nothing about the
        // new one's: require acknowledgements of rounds sent from now on.
        leader.reads.restart_lease();
    }

    /// Membership work after the commit index advanced on a leader: leave joint consensus,
    /// answer the operator, forget removed followers, and step down if removed.
    pub(super) fn after_commit_membership(&mut self, out: &mut Effects<Self>) {
        if self.membership_index > self.commit_index || !self.is_leader() {
            return;
        }
        if self.membership.is_joint() {
            let mut leave = self.membership.clone();
            leave.old_voters = None;
            let members = leave.members();
            leave.addresses.retain(|id, _| members.contains(id));
            if self.config.has_bug(super::Bug::JointDropsAddresses) {
                leave.addresses.clear();
            }
            let leave_index = self.log.last_index() + 1;
            if let RoleState::Leader(leader) = &mut self.role {
                // The operator's change (one at a time) completes when C_new commits.
                if let Some(pending) = leader.admin.as_mut() {
                    pending.index = leave_index;
                }
            }
            // Appending may commit at once (a single voter), which re-enters this function.
            return self.append_to_own_log(Payload::Config(leave), out);
        }
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if let Some(pending) = leader.admin.take_if(|p| p.index <= self.commit_index) {
            out.reply(Reply {
                client: pending.client,
                seq: pending.seq,
                result: Ok(Output::Done),
            });
        }
        let members = self.membership.members();
        leader.progress.retain(|id, _| members.contains(id));
        if !self.membership.is_voter(self.id) {
            self.events.push(Event::RemovedLeaderSteppedDown);
            self.become_follower(self.term, None, out);
        }
    }
}
