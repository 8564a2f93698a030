//! Raft's safety properties (Figure 3 of the paper), checked across the cluster after every
//! step of every node.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | Election Safety | at most one leader per term | a ledger `term -> leader` |
//! | Vote Safety | each voter votes for at most one candidate per term (§5.2), across crashes | a ledger `(voter, term) -> candidate`, fed from every granted RequestVoteResponse and every RequestVote (a candidate's vote for itself) as it leaves, that is once the vote is durable |
//! | Log Matching | same (index, term) ⇒ same entry and same log before it | a ledger `(index, term) -> (entry digest, previous term)`, fed from every `Persist` |
//! | Leader Completeness | a leader's log holds every entry committed in an earlier term | each new leader's log is compared with the committed ledger |
//! | State Machine Safety | no two nodes commit (hence apply) different entries at one index | a ledger `index -> (term, digest)`, fed as commit indices advance |
//! | Configuration Safety | a leader appends a configuration only after the previous one is committed, and only one step away from it: one voter more or fewer, entering joint consensus from a plain configuration, or leaving it for its new half | each configuration a leader appends is compared with the one before it in the leader's log |
//!
//! Vote Safety is what Election Safety rests on; checking it directly catches a vote forgotten
//! in a crash even when the second vote elects nobody.
//!
//! The first four hold under membership changes unchanged: election safety is per term
//! whatever the configurations, and a committed entry is never lost whichever quorums commit
//! it. Configuration Safety is what makes that so (thesis §4.1, paper §6).
//!
//! Log Matching is checked by induction rather than by comparing whole logs: if every node
//! that holds `(i, t)` holds the same entry there and the same term at `i - 1`, and the same
//! holds at `i - 1`, then the logs agree up to `i`. Each step checks only what it persisted, so
//! the cost per step is proportional to the step's own work.

use super::membership::Membership;
use super::message::{Entry, Message, Payload, Record};
use super::{Event, Raft, RoleState};
use quorate_core::digest::digest;
use quorate_core::{Effect, Invariants, NodeId, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// The cluster-wide ledgers behind Raft's safety properties.
#[derive(Clone, Default, Debug)]
pub struct RaftSafety {
    leaders: BTreeMap<u64, NodeId>,
    /// `(voter, term) -> candidate` of every vote that left its voter.
    votes: BTreeMap<(NodeId, u64), NodeId>,
    /// `(index, term) -> (digest of the entry, term of the entry before it)`.
    entries: BTreeMap<(u64, u64), (u64, u64)>,
    /// `index -> (term, digest)` of every entry some node has committed.
    committed: BTreeMap<u64, (u64, u64)>,
    /// `index -> the lowest term in which a node observed the entry committed`: Leader
    /// Completeness promises the entry only to leaders of later terms.
    committed_in: BTreeMap<u64, u64>,
    /// The commit index of each node when last observed.
    observed_commit: BTreeMap<NodeId, u64>,
    /// Leaders whose log was already checked for completeness.
    checked_leaders: BTreeSet<(NodeId, u64)>,
    /// Indices of committed configuration entries, and how many were joint.
    configurations: BTreeSet<u64>,
    joint_configurations: u64,
    /// Node events, counted by kind.
    events: BTreeMap<&'static str, u64>,
}

impl RaftSafety {
    pub fn new() -> RaftSafety {
        RaftSafety::default()
    }

    /// Entries some node has committed, so far.
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    fn election_safety(&mut self, id: NodeId, node: &Raft) -> Result<(), Violation> {
        if !node.is_leader() {
            return Ok(());
        }
        let leader = *self.leaders.entry(node.term).or_insert(id);
        if leader != id {
            return Err(Violation {
                property: "election safety",
                detail: format!("{leader} and {id} are both leaders of term {}", node.term),
            });
        }
        Ok(())
    }

    /// `voter` cast a vote for `candidate` in `term` (and it left the node, so it was
    /// durable): it must be the only candidate `voter` voted for in `term`.
    fn vote_safety(
        &mut self,
        voter: NodeId,
        term: u64,
        candidate: NodeId,
    ) -> Result<(), Violation> {
        let vote = self.votes.entry((voter, term)).or_insert(candidate);
        let first = std::mem::replace(vote, candidate); // Reported once, not once per copy.
        if first != candidate {
            return Err(Violation {
                property: "vote safety",
                detail: format!(
                    "{voter} voted for {first} and then for {candidate} in term {term}: a vote \
                     was forgotten (one vote per voter per term, §5.2)"
                ),
            });
        }
        Ok(())
    }

    fn log_matching(
        &mut self,
        id: NodeId,
        node: &Raft,
        entries: &[Entry],
    ) -> Result<(), Violation> {
        for entry in entries {
            let Some(prev_term) = node.log.term_at(entry.index - 1) else {
                continue; // The entry before is compacted, hence committed and checked.
            };
            let entry_digest = digest(&entry.payload);
            let known = *self
                .entries
                .entry((entry.index, entry.term))
                .or_insert((entry_digest, prev_term));
            if known != (entry_digest, prev_term) {
                return Err(Violation {
                    property: "log matching",
                    detail: format!(
                        "{id} holds entry ({}, term {}) with previous term {prev_term} and \
                         digest {entry_digest:016x}; another node holds (term {}, digest {:016x})",
                        entry.index, entry.term, known.1, known.0
                    ),
                });
            }
        }
        Ok(())
    }

    fn leader_completeness(&mut self, id: NodeId, node: &Raft) -> Result<(), Violation> {
        if !node.is_leader() || !self.checked_leaders.insert((id, node.term)) {
            return Ok(());
        }
        let compacted = node.log.first_index() - 1;
        for (&index, &(term, entry_digest)) in self.committed.range(compacted + 1..) {
            if self.committed_in[&index] >= node.term {
                continue; // Committed in this term or later: not promised to this leader.
            }
            let held = node.log.entry(index);
            let matches =
                held.is_some_and(|e| e.term == term && digest(&e.payload) == entry_digest);
            if !matches {
                return Err(Violation {
                    property: "leader completeness",
                    detail: format!(
                        "{id} became leader of term {} without committed entry ({index}, term \
                         {term}); it holds {:?}",
                        node.term,
                        held.map(|e| e.term)
                    ),
                });
            }
        }
        Ok(())
    }

    fn state_machine_safety(&mut self, id: NodeId, node: &Raft) -> Result<(), Violation> {
        let compacted = node.log.first_index() - 1;
        let observed = self.observed_commit.entry(id).or_insert(compacted);
        let from = (*observed).max(compacted) + 1;
        *observed = node.commit_index;
        for index in from..=node.commit_index {
            let entry = node.log.entry(index).expect("committed entries are held");
            if let Payload::Config(membership) = &entry.payload {
                if self.configurations.insert(index) && membership.is_joint() {
                    self.joint_configurations += 1;
                }
            }
            let mine = (entry.term, digest(&entry.payload));
            let first = *self.committed.entry(index).or_insert(mine);
            let committed_in = self.committed_in.entry(index).or_insert(node.term);
            *committed_in = (*committed_in).min(node.term);
            if first != mine {
                return Err(Violation {
                    property: "state machine safety",
                    detail: format!(
                        "{id} committed ({index}, term {}) but ({index}, term {}) was committed \
                         before",
                        mine.0, first.0
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Whether `next` is one safe step from `previous` (see the module docs).
fn one_step(previous: &Membership, next: &Membership) -> bool {
    match (&previous.old_voters, &next.old_voters) {
        (None, Some(old)) => *old == previous.voters,
        (Some(_), None) => next.voters == previous.voters,
        (None, None) => previous.voters.symmetric_difference(&next.voters).count() <= 1,
        (Some(_), Some(_)) => false,
    }
}

/// What is wrong with the addresses of `next`, one step after `previous`: an address of a
/// node that is no member, or a member's address that changed or went missing (an address
/// is given once, with `AddLearnerAt`, and leaves only with its member).
fn address_problem(previous: &Membership, next: &Membership) -> Option<String> {
    let members = next.members();
    if let Some(id) = next.addresses.keys().find(|id| !members.contains(id)) {
        return Some(format!("with an address for {id}, which is no member"));
    }
    let was_member = previous.members();
    previous
        .addresses
        .iter()
        .filter(|(id, _)| members.contains(id) && was_member.contains(id))
        .find(|(id, old)| next.addresses.get(id) != Some(old))
        .map(|(id, old)| {
            let now = next.addresses.get(id).map_or("none", String::as_str);
            format!("changing the address of member {id} from {old} to {now}")
        })
}

impl RaftSafety {
    fn configuration_safety(
        &mut self,
        id: NodeId,
        node: &Raft,
        entries: &[Entry],
    ) -> Result<(), Violation> {
        for entry in entries {
            let Payload::Config(next) = &entry.payload else {
                continue;
            };
            if entry.index < node.log.first_index() {
                continue; // Compacted in the same step: committed, and checked on the way.
            }
            let (previous_index, previous) = node.log.membership_at(entry.index - 1);
            let problem = if previous_index > node.commit_index {
                Some(format!(
                    "while the configuration at index {previous_index} was uncommitted"
                ))
            } else if !one_step(previous, next) {
                Some(format!("more than one step from ({previous})"))
            } else {
                address_problem(previous, next)
            };
            if let Some(problem) = problem {
                return Err(Violation {
                    property: "configuration safety",
                    detail: format!(
                        "leader {id} of term {} appended ({next}) at index {} {problem}",
                        node.term, entry.index
                    ),
                });
            }
        }
        Ok(())
    }

    fn count_events(&mut self, node: &Raft) {
        for event in node.events() {
            let name = match event {
                Event::LeaderDisrupted => "leader_disruptions",
                Event::CheckQuorumStepDown => "check_quorum_step_downs",
                Event::ReadIndexRead => "read_index_reads",
                Event::LeaseRead => "lease_reads",
                Event::FollowerRead => "follower_reads",
                Event::TransferElected => "transfers",
                Event::TransferAborted => "transfers_aborted",
                Event::RemovedLeaderSteppedDown => "removed_leader_step_downs",
                Event::MembershipChangeRefused => "membership_changes_refused",
                Event::SnapshotInstalled => "snapshots_installed",
                Event::OldTermCommitWithheld { .. } => "old_term_commits_withheld",
            };
            *self.events.entry(name).or_default() += 1;
        }
    }

    /// How many times nodes reported `name` (see [`Invariants::counters`]).
    pub fn count(&self, name: &str) -> u64 {
        self.counters()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| v)
    }
}

impl Invariants<Raft> for RaftSafety {
    fn after_step(
        &mut self,
        id: NodeId,
        node: &Raft,
        effects: &[Effect<Raft>],
    ) -> Result<(), Violation> {
        self.count_events(node);
        self.election_safety(id, node)?;
        for effect in effects {
            match effect {
                Effect::Persist(Record::Entries(entries))
                | Effect::Persist(Record::Checkpoint { entries, .. }) => {
                    self.log_matching(id, node, entries)?
                }
                _ => {}
            }
        }
        self.state_machine_safety(id, node)?;
        self.leader_completeness(id, node)?;
        if let RoleState::Leader(_) = node.role {
            debug_assert_eq!(node.leader, Some(id));
            for effect in effects {
                if let Effect::Persist(Record::Entries(entries)) = effect {
                    let own: Vec<Entry> = entries
                        .iter()
                        .filter(|e| e.term == node.term)
                        .cloned()
                        .collect();
                    self.configuration_safety(id, node, &own)?;
                }
            }
        }
        Ok(())
    }

    fn on_send(
        &mut self,
        _now: quorate_core::Time,
        from: NodeId,
        to: NodeId,
        msg: &Message,
    ) -> Result<(), Violation> {
        match msg {
            Message::RequestVote { term, .. } => self.vote_safety(from, *term, from),
            Message::RequestVoteResponse {
                term,
                granted: true,
            } => self.vote_safety(from, *term, to),
            _ => Ok(()),
        }
    }

    fn on_crash(&mut self, id: NodeId) {
        self.observed_commit.remove(&id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut counters = vec![
            ("leaders_elected", self.leaders.len() as u64),
            ("entries_committed", self.committed.len() as u64),
            ("membership_changes", self.configurations.len() as u64),
            ("joint_changes", self.joint_configurations),
        ];
        counters.extend(self.events.iter().map(|(name, count)| (*name, *count)));
        counters
    }
}
