//! Safety properties of view-stamped replication (primary-backup and chain alike), checked
//! across the cluster after every step of every replica.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | one primary per view | at most one primary (chain: head) per view | a ledger `view -> primary` |
//! | log matching | same (op, view) ⇒ same entry and same view before it | a ledger `(op, view) -> (digest, previous view)`, fed from every `Persist` |
//! | committed prefix agreement | no two replicas commit different entries at one op | a ledger `op -> (view, digest)`, fed as commit numbers advance |
//! | primary completeness | a new primary holds every entry committed in an earlier view | each new primary's log against the committed ledger |
//! | no unreplicated acknowledgement | a write is acknowledged only once some replica committed it | every write `Reply` against the committed commands |
//!
//! The last property is what "no acknowledged write lost" rests on, together with the second to
//! fourth: an acknowledged write is committed, and committed entries are never replaced.
//!
//! The checker also counts what happened (views, commits, refused stale messages, reads of each
//! kind, chain repairs), so that a run that passes without exercising failover is visible.

use super::message::{Payload, Record};
use super::{Replica, ReplicaStats};
use quorate_core::digest::digest;
use quorate_core::{ClientId, Effect, Input, Invariants, NodeId, Output, Time, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// The cluster-wide ledgers behind the safety properties.
#[derive(Clone, Default, Debug)]
pub struct ViewSafety {
    primaries: BTreeMap<u64, NodeId>,
    /// `(op, view) -> (digest of the entry, view of the entry before it)`.
    entries: BTreeMap<(u64, u64), (u64, u64)>,
    /// `op -> (view, digest)` of every entry some replica has committed.
    committed: BTreeMap<u64, (u64, u64)>,
    /// `op -> the lowest view in which a replica observed the entry committed`.
    committed_in: BTreeMap<u64, u64>,
    /// The client commands of committed entries.
    committed_commands: BTreeSet<(ClientId, u64)>,
    /// The commit number of each replica when last observed.
    observed_commit: BTreeMap<NodeId, u64>,
    /// Primaries whose log was already checked for completeness.
    checked_primaries: BTreeSet<(NodeId, u64)>,
    /// Each replica's counters when last observed, and the sums of their increases.
    stats_seen: BTreeMap<NodeId, ReplicaStats>,
    totals: ReplicaStats,
    /// Successful write replies sent (a chain's tail and head both answer a write).
    write_replies: u64,
    /// Requests whose operation is a read (`GET`, `MGET`, `WATCH`'s revisions, ...): their
    /// answers are not acknowledgements of writes.
    reads: BTreeSet<(ClientId, u64)>,
}

impl ViewSafety {
    pub fn new() -> ViewSafety {
        ViewSafety::default()
    }

    /// Entries some replica has committed, so far.
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    fn one_primary_per_view(&mut self, id: NodeId, node: &Replica) -> Result<(), Violation> {
        if !node.is_primary() {
            return Ok(());
        }
        let primary = *self.primaries.entry(node.view).or_insert(id);
        if primary != id {
            return Err(Violation {
                property: "one primary per view",
                detail: format!("{primary} and {id} are both primary of view {}", node.view),
            });
        }
        Ok(())
    }

    fn log_matching(
        &mut self,
        id: NodeId,
        node: &Replica,
        entries: &[super::Entry],
    ) -> Result<(), Violation> {
        for entry in entries {
            let Some(prev_view) = node.log.view_at(entry.op - 1) else {
                continue; // The entry before is compacted, hence committed and checked.
            };
            let entry_digest = digest(&entry.payload);
            let known = *self
                .entries
                .entry((entry.op, entry.view))
                .or_insert((entry_digest, prev_view));
            if known != (entry_digest, prev_view) {
                return Err(Violation {
                    property: "log matching",
                    detail: format!(
                        "{id} holds op {} of view {} after view {prev_view} with digest \
                         {entry_digest:016x}; another replica holds it after view {} with digest \
                         {:016x}",
                        entry.op, entry.view, known.1, known.0
                    ),
                });
            }
        }
        Ok(())
    }

    fn committed_prefix_agreement(&mut self, id: NodeId, node: &Replica) -> Result<(), Violation> {
        let compacted = node.log.first_op() - 1;
        let observed = self.observed_commit.entry(id).or_insert(compacted);
        let from = (*observed).max(compacted) + 1;
        *observed = node.commit;
        for op in from..=node.commit {
            let entry = node.log.entry(op).expect("committed entries are held");
            let mine = (entry.view, digest(&entry.payload));
            let first = *self.committed.entry(op).or_insert(mine);
            let committed_in = self.committed_in.entry(op).or_insert(node.view);
            *committed_in = (*committed_in).min(node.view);
            if first != mine {
                return Err(Violation {
                    property: "committed prefix agreement",
                    detail: format!(
                        "{id} committed op {op} of view {} but op {op} of view {} was committed \
                         before: an acknowledged write was lost",
                        mine.0, first.0
                    ),
                });
            }
            if let Payload::Command(command) = &entry.payload {
                self.committed_commands
                    .insert((command.client, command.seq));
            }
        }
        Ok(())
    }

    fn primary_completeness(&mut self, id: NodeId, node: &Replica) -> Result<(), Violation> {
        if !node.is_primary() || !self.checked_primaries.insert((id, node.view)) {
            return Ok(());
        }
        let compacted = node.log.first_op() - 1;
        for (&op, &(view, entry_digest)) in self.committed.range(compacted + 1..) {
            if self.committed_in[&op] >= node.view {
                continue; // Committed in this view or later: not promised to this primary.
            }
            let held = node.log.entry(op);
            let matches =
                held.is_some_and(|e| e.view == view && digest(&e.payload) == entry_digest);
            if !matches {
                return Err(Violation {
                    property: "primary completeness",
                    detail: format!(
                        "{id} became primary of view {} without committed op {op} of view \
                         {view}; it holds {:?}",
                        node.view,
                        held.map(|e| e.view)
                    ),
                });
            }
        }
        Ok(())
    }

    fn acknowledgements_follow_commitment(
        &mut self,
        id: NodeId,
        effects: &[Effect<Replica>],
    ) -> Result<(), Violation> {
        for effect in effects {
            let Effect::Reply(reply) = effect else {
                continue;
            };
            let Ok(output) = &reply.result else {
                continue;
            };
            let read = self.reads.contains(&(reply.client, reply.seq));
            if read || matches!(output, Output::Value(_)) {
                continue;
            }
            self.write_replies += 1;
            if !self.committed_commands.contains(&(reply.client, reply.seq)) {
                return Err(Violation {
                    property: "no unreplicated acknowledgement",
                    detail: format!(
                        "{id} acknowledged write {} of {} that no replica committed",
                        reply.seq, reply.client
                    ),
                });
            }
        }
        Ok(())
    }

    fn count(&mut self, id: NodeId, node: &Replica) {
        let now = node.stats();
        let before = self.stats_seen.insert(id, now).unwrap_or_default();
        let totals = &mut self.totals;
        totals.stale_refused += now.stale_refused - before.stale_refused;
        totals.local_reads += now.local_reads - before.local_reads;
        totals.confirmed_reads += now.confirmed_reads - before.confirmed_reads;
        totals.craq_clean_reads += now.craq_clean_reads - before.craq_clean_reads;
        totals.craq_dirty_reads += now.craq_dirty_reads - before.craq_dirty_reads;
        totals.chain_repairs += now.chain_repairs - before.chain_repairs;
        totals.state_transfers += now.state_transfers - before.state_transfers;
    }
}

impl Invariants<Replica> for ViewSafety {
    fn before_step(&mut self, _now: Time, _id: NodeId, input: &Input<Replica>) {
        if let Input::Request(request) = input {
            if request.op.is_read() {
                self.reads.insert((request.client, request.seq));
            }
        }
    }

    fn after_step(
        &mut self,
        id: NodeId,
        node: &Replica,
        effects: &[Effect<Replica>],
    ) -> Result<(), Violation> {
        self.count(id, node);
        self.one_primary_per_view(id, node)?;
        for effect in effects {
            match effect {
                Effect::Persist(Record::Entries(entries))
                | Effect::Persist(Record::Checkpoint { entries, .. }) => {
                    self.log_matching(id, node, entries)?
                }
                _ => {}
            }
        }
        self.committed_prefix_agreement(id, node)?;
        self.primary_completeness(id, node)?;
        self.acknowledgements_follow_commitment(id, effects)
    }

    fn on_crash(&mut self, id: NodeId) {
        self.observed_commit.remove(&id);
        self.stats_seen.remove(&id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let t = &self.totals;
        vec![
            ("views_with_primary", self.primaries.len() as u64),
            ("entries_committed", self.committed.len() as u64),
            ("write_replies", self.write_replies),
            ("stale_view_messages_refused", t.stale_refused),
            ("confirmed_reads", t.confirmed_reads),
            ("local_reads_served", t.local_reads),
            ("craq_clean_reads", t.craq_clean_reads),
            ("craq_dirty_reads", t.craq_dirty_reads),
            ("chain_repairs", t.chain_repairs),
            ("state_transfers", t.state_transfers),
        ]
    }
}
