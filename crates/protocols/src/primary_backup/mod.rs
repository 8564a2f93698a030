//! # Primary-backup replication with fenced failover
//!
//! One replica, the **primary**, orders every write; the others, the **backups**, hold copies so
//! that the data survives the primary (Alsberg & Day, "A Principle for Resilient Sharing of
//! Distributed Resources", ICSE 1976). The hard part is not copying but *failing over*: when the
//! primary seems dead, a backup must take over without losing an acknowledged write, and without
//! two primaries accepting writes at once. The seed sketch gets both wrong: it answers after
//! `acks >= len(backups)//2` (two of four replicas: not a majority), and it promotes a backup by
//! updating DNS, so a primary that was only slow or partitioned keeps accepting writes next to
//! its successor (split brain). This module numbers every configuration with a **view**, decides
//! each view by a majority vote among the replicas, and fences every message with its view, as
//! Viewstamped Replication does (Oki & Liskov, PODC 1988; Liskov & Cowling, "Viewstamped
//! Replication Revisited", MIT-CSAIL-TR-2012-021).
//!
//! ## Fault model
//!
//! Crash-recovery replicas with stable storage (a crash loses what was not fsynced); an
//! asynchronous network that loses, duplicates, delays and reorders messages and partitions
//! replicas; clocks that drift. No Byzantine faults. Safety never depends on timing; progress
//! needs a majority of replicas that can talk to each other for long enough. A group of
//! `2f + 1` replicas survives `f` failures.
//!
//! ## The algorithm, in numbered steps
//!
//! 1. **Views.** Time is divided into views 1, 2, 3, ...; each view has at most one primary and
//!    a fixed *group* (the primary first). Every message carries its sender's view. A replica
//!    that sees a newer view adopts it (persisting the number) and stops acting in the old one;
//!    a message from an older view is refused and answered with the newer view, so a deposed
//!    primary learns of its deposition from the very backups it tries to use.
//! 2. **Normal operation.** The primary assigns each write the next *op-number*, appends it to
//!    its log, persists it and sends it to the backups in `Prepare` (with the view and op of the
//!    entry before, Raft's consistency check). A backup accepts only from the current view and
//!    only if its log holds that previous entry; it persists, then answers `PrepareOk`.
//! 3. **Commitment.** The primary commits op `k` once a majority of the group *including itself*
//!    holds it and `k` belongs to the current view (entries of earlier views are committed
//!    indirectly, by committing a later one: Raft §5.4.2, Figure 8). It then applies `k` to its
//!    `KvStore` and answers the client. Backups learn the commit number from later Prepares and
//!    apply in op order. With `2f + 1` replicas the primary waits for `f` backups, never all:
//!    one slow backup does not stall the group.
//! 4. **View change.** A backup that hears nothing from the primary for a randomized timeout
//!    starts view `v + 1`: it votes for itself, persists, and sends `StartViewChange` with the
//!    viewstamp (view, op) of its last entry. A replica grants (`DoViewChange`) at most one vote
//!    per view, persisted before it answers, and only to a candidate whose log is at least as
//!    up to date as its own. A candidate with a majority of votes becomes primary: **the backup
//!    holding the most writes is promoted** — at least as many as any replica of a majority,
//!    hence every committed write, since every committed write is on a majority and any two
//!    majorities intersect. The new primary appends a `ViewStart` entry of its view, which
//!    commits everything before it once a majority holds it.
//! 5. **Fencing.** Since every Prepare carries its view and replicas refuse older views, a
//!    deposed primary can no longer gather a majority of acknowledgements, so it can no longer
//!    get a write acknowledged: a majority has moved to the newer view.
//! 6. **Reads at the primary (linearizable).** A primary may have been deposed without knowing
//!    it, so it cannot answer from its state at once. It starts a *confirmation round*: it asks
//!    every replica whether view `v` is still current (`Confirm`), and answers the reads that
//!    arrived before the round once a majority confirmed and it has committed an entry of its
//!    own view. A majority still in view `v` after the read arrived proves no newer view existed
//!    when it arrived (it would need a majority of votes), so every write acknowledged before
//!    the read is in the primary's committed state (Raft thesis §6.4, "ReadIndex"). One round
//!    serves every read that arrived before it.
//! 7. **Reads at a backup (`ReadMode::Local`).** Answered at once from the backup's applied
//!    state: cheap, possibly stale. The simulator measures how stale (how often, and by how many
//!    acknowledged writes).
//! 8. **State transfer.** A replica compacts its applied prefix into a snapshot. A backup that
//!    needs entries the sender has compacted receives the snapshot (`NewState`).
//!
//! Chain replication (see [`crate::chain`]) is the same replica with another shape of group:
//! entries flow from the head down the chain and the tail commits.
//!
//! ## Guarantees
//!
//! - Writes and the primary's reads are linearizable.
//! - An acknowledged write survives the failure of any minority (`f` of `2f + 1` replicas,
//!   crashes losing unsynced data included), the primary among them.
//! - At most one primary per view; a deposed primary can neither get a write acknowledged nor
//!   answer a linearizable read.
//! - A backup's `ReadMode::Local` read returns the state after some committed prefix of the
//!   writes: never an uncommitted write, but possibly an old prefix (and, across replicas or a
//!   restart, an older one than a previous read saw).
//!
//! ## Implementation choices
//!
//! - **Agreement on views is embedded, not delegated.** The view change is an election among
//!   the replicas (a vote per view, persisted, granted only to an up-to-date candidate) rather
//!   than a separate configuration service such as a Raft group. A configuration service would
//!   need its own majority of replicas anyway and would then have to ask the replicas which of
//!   them holds the most writes; the vote answers both questions in one round trip, and the
//!   same log positions that order writes order candidates. This is VR's view change with
//!   Raft's candidate election in place of VR's round-robin primary plus log shipping: the new
//!   primary is chosen *because* it is the most up to date, instead of receiving the most
//!   up-to-date log from a majority, so view changes never ship whole logs.
//! - **Persistence.** View, vote and log are persisted before any message that depends on them
//!   (the driver's persist barrier). VR Revisited keeps them in memory and recovers from peers;
//!   the simulator crashes majorities, so quorate uses disks.
//! - **Deciding only what is on disk.** A primary counts its own copy of an entry only together
//!   with a backup's acknowledgement, which proves the copy durable (the backup got the entry
//!   in a Prepare sent after the primary's persist). A replica that decides alone (a group of
//!   one; a chain's tail) has no such witness, so it asks the driver for a durability
//!   notification: a zero-delay `Timer::Durable` set after the persist, which the barrier holds
//!   until the persist is done.
//! - **Confirmation rounds, not leases.** Reads use a round trip to a majority instead of a
//!   clock-based lease, so no read depends on a clock-drift bound. Rounds carry a number that
//!   grows across restarts (the replica persists a boot counter), so an answer to a round sent
//!   before a crash cannot confirm a read that arrived after it.
//! - **Exactly-once writes.** Client sessions (Raft thesis §6.3) in the `KvStore` make retried
//!   writes apply once, even when a retry is appended again by a new primary. Reads do not go
//!   through the log, so a session's first logged write may carry any sequence number
//!   (`KvStore::apply_with_unlogged_reads`).
//! - `Input::Admin` is rejected: membership is fixed at start and the primary is whoever wins
//!   a view; an operator forces a failover by stopping the primary.
//!
//! ## Deliberately left out
//!
//! Read leases (a round trip saved per read, paid for with a clock-drift assumption), changes of
//! the member set, read-your-writes for backup reads (it needs the op-number of a write in the
//! reply, which the shared `Reply` does not carry yet), and VR's recovery protocol for
//! disk-less replicas.
//!
//! ## References
//!
//! - P. Alsberg, J. Day, "A Principle for Resilient Sharing of Distributed Resources", ICSE 1976.
//! - B. Oki, B. Liskov, "Viewstamped Replication", PODC 1988; B. Liskov, J. Cowling, "Viewstamped
//!   Replication Revisited", MIT-CSAIL-TR-2012-021.
//! - D. Ongaro, J. Ousterhout, "In Search of an Understandable Consensus Algorithm", USENIX ATC
//!   2014 (the consistency check, §5.4.2), and Ongaro's thesis, 2014 (§6.3 sessions, §6.4 reads).
//! - R. van Renesse, F. Schneider, "Chain Replication for Supporting High Throughput and
//!   Availability", OSDI 2004; J. Terrace, M. Freedman, "Object Storage on CRAQ", USENIX ATC 2009.

mod config;
mod log;
mod message;
mod reads;
mod replication;
pub mod safety;
mod view_change;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use config::{Bug, ReplicaConfig, Topology};
pub use message::{Entry, Group, Message, Payload, PrepareResult, Record, Snapshot};
pub use safety::ViewSafety;

use log::Log;
use quorate_core::{
    ClientError, ClientId, Effects, Input, KvStore, NodeId, NodeStatus, Output, Protocol, Reply,
    Request, Role, Time, TimerRange,
};
use reads::Reads;
use replication::Progress;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The replicas' timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// Backups and candidates: start a view change when it fires.
    ViewChange,
    /// Every replica: heartbeats, retransmission, read rounds, chain health.
    Heartbeat,
    /// A chain candidate that won: stop waiting for more members and take the view.
    Gather,
    /// Set, with no delay, right after persisting the log through `op` (of `view`). The driver
    /// holds every effect behind an unfinished persist, timers included, so when it fires the
    /// log through `op` is on disk: a durability notification built from the persist barrier.
    /// Replicas that decide commits alone (a chain's tail, a group of one) need it.
    Durable { op: u64, view: u64 },
}

/// Where a replica stands in its view.
#[derive(Clone, Debug)]
pub(crate) enum Status {
    /// Following the primary of `view` (known once `group` is non-empty), or waiting for one.
    Backup,
    /// Asking for votes to become primary of `view`.
    Candidate {
        votes: BTreeSet<NodeId>,
        /// Every replica that answered in this view, with the viewstamp of its last entry.
        answers: BTreeMap<NodeId, (u64, u64)>,
    },
    /// The primary (chain: the head) of `view`.
    Primary,
}

/// Events worth counting, reported by [`ViewSafety`] in simulation summaries. Volatile: a
/// replica that crashes starts again from zero.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Messages of an older view refused.
    pub stale_refused: u64,
    /// Reads answered from local state without coordination (`ReadMode::Local`).
    pub local_reads: u64,
    /// Linearizable reads answered after a confirmation round.
    pub confirmed_reads: u64,
    /// CRAQ reads of a clean key, answered from the replica's own committed state.
    pub craq_clean_reads: u64,
    /// CRAQ reads of a dirty key, for which the tail was asked for the committed version.
    pub craq_dirty_reads: u64,
    /// Chain: views a head started to cut out a silent member or take back a standby.
    pub chain_repairs: u64,
    /// Snapshots installed from another replica.
    pub state_transfers: u64,
}

/// One replica of a primary-backup group or of a chain.
#[derive(Clone, Debug)]
pub struct Replica {
    pub(crate) id: NodeId,
    /// Every member, this replica included, in id order. Fixed.
    pub(crate) members: Vec<NodeId>,
    pub(crate) config: ReplicaConfig,
    started: bool,

    // Persistent state: durable before any message that depends on it.
    pub(crate) view: u64,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: Log,
    /// Incarnations of this replica so far; makes read-round numbers unique across restarts.
    pub(crate) boot: u64,

    // Volatile state.
    pub(crate) status: Status,
    /// The group of `view`, primary first; empty while unknown.
    pub(crate) group: Group,
    /// The replica that feeds this one in `view` (the primary, or the chain predecessor).
    pub(crate) upstream: Option<NodeId>,
    /// The replicas this one feeds in `view`, and how far each has got.
    pub(crate) downstream: BTreeMap<NodeId, Progress>,
    /// The highest op known to match the log of `view`'s primary.
    pub(crate) verified: u64,
    /// The log prefix known to be on disk (see `Timer::Durable`). A chain's tail (and a group
    /// of one) commits no further.
    pub(crate) durable: u64,
    /// A `Timer::Durable` is pending.
    pub(crate) durability_pending: bool,
    pub(crate) commit: u64,
    pub(crate) applied: u64,
    pub(crate) kv: KvStore,
    /// Primary: clients whose write is in the log and unanswered, with its sequence number.
    pub(crate) waiting: BTreeMap<ClientId, u64>,
    pub(crate) reads: Reads,
    /// Chain head: when each member last answered in this view.
    pub(crate) heard: BTreeMap<NodeId, Time>,
    /// When this replica took up its role in `view`.
    pub(crate) view_began: Time,
    /// The time of the input being handled.
    pub(crate) now: Time,
    pub(crate) stats: ReplicaStats,
}

impl Replica {
    /// Replica `id` of the group `members` (which must include `id`). It does nothing until it
    /// receives [`Input::Start`].
    pub fn new(id: NodeId, members: &[NodeId], config: ReplicaConfig) -> Replica {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        assert!(
            members.contains(&id),
            "a replica must be one of the members"
        );
        config.validate().expect("invalid ReplicaConfig");
        let snapshot = Arc::new(Snapshot::empty(config.sessions_max));
        Replica {
            id,
            members,
            kv: snapshot.state.clone(),
            log: Log::new(snapshot, Vec::new()),
            config,
            started: false,
            view: 0,
            vote: None,
            boot: 0,
            status: Status::Backup,
            group: Arc::new(Vec::new()),
            upstream: None,
            downstream: BTreeMap::new(),
            verified: 0,
            durable: 0,
            durability_pending: false,
            commit: 0,
            applied: 0,
            waiting: BTreeMap::new(),
            reads: Reads::default(),
            heard: BTreeMap::new(),
            view_began: Time::ZERO,
            now: Time::ZERO,
            stats: ReplicaStats::default(),
        }
    }

    /// The key-value store as applied on this node: the state at the applied op (`status().applied_index`), never beyond the commit point. What a backup
    /// (`quorate snapshot save`) copies.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn is_primary(&self) -> bool {
        matches!(self.status, Status::Primary)
    }

    /// The primary (chain: the head) of the current view, if known.
    pub fn primary(&self) -> Option<NodeId> {
        self.group.first().copied()
    }

    /// The group of the current view, primary first (empty while unknown).
    pub fn group(&self) -> &[NodeId] {
        &self.group
    }

    pub fn commit_number(&self) -> u64 {
        self.commit
    }

    pub fn last_op(&self) -> u64 {
        self.log.last_op()
    }

    /// The viewstamp (view, op) of the last entry in the log.
    pub fn last_viewstamp(&self) -> (u64, u64) {
        (self.log.last_view(), self.log.last_op())
    }

    /// The entry at `op`, if it is held (not compacted).
    pub fn entry(&self, op: u64) -> Option<&Entry> {
        self.log.entry(op)
    }

    /// The first op held as an entry; earlier ones are in the snapshot.
    pub fn first_op(&self) -> u64 {
        self.log.first_op()
    }

    /// The replicated state machine as this replica has applied it.
    pub fn state_machine(&self) -> &KvStore {
        &self.kv
    }

    pub fn stats(&self) -> ReplicaStats {
        self.stats
    }

    pub fn topology(&self) -> Topology {
        self.config.topology
    }

    pub(crate) fn is_chain(&self) -> bool {
        matches!(self.config.topology, Topology::Chain { .. })
    }

    pub(crate) fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.members.iter().copied().filter(move |id| *id != me)
    }

    /// Whether the log holds an entry of the current view within its verified prefix: then it
    /// holds every entry committed before the view began.
    pub(crate) fn caught_up(&self) -> bool {
        self.log.view_at(self.verified) == Some(self.view)
    }

    /// Whether an entry of the current view is committed, so that the committed state holds
    /// every write acknowledged before the view began.
    pub(crate) fn committed_in_view(&self) -> bool {
        self.log.view_at(self.commit) == Some(self.view)
    }

    fn view_change_timeout(&self) -> TimerRange {
        TimerRange {
            min: self.config.view_change_timeout_min,
            max: self.config.view_change_timeout_max,
        }
    }

    pub(crate) fn reset_view_change_timer(&self, out: &mut Effects<Self>) {
        out.set_timer(Timer::ViewChange, self.view_change_timeout());
    }

    pub(crate) fn persist_view_state(&self, out: &mut Effects<Self>) {
        out.persist(Record::ViewState {
            view: self.view,
            vote: self.vote,
            boot: self.boot,
        });
    }

    pub(crate) fn answer(
        request: &Request,
        result: Result<Output, ClientError>,
        out: &mut Effects<Self>,
    ) {
        out.reply(Reply {
            client: request.client,
            seq: request.seq,
            result,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Start-up and recovery.

    fn on_start(&mut self, recovered: Vec<Record>, out: &mut Effects<Self>) {
        assert!(!self.started, "Start delivered twice");
        self.started = true;
        for record in recovered {
            self.recover(record);
        }
        let snapshot = self.log.snapshot().clone();
        self.kv = snapshot.state.clone();
        self.commit = snapshot.last_op;
        self.applied = snapshot.last_op;
        self.verified = snapshot.last_op;
        if !self.config.has_bug(Bug::RestartForgetsAcknowledged) {
            // A replica takes entries of its view only through the consistency check, so its
            // log matches the primary's through the last of them, across a restart too. A
            // chain's tail needs that to commit again everything it acknowledged (issue 22).
            let last_of_view = self.log.last_op_of_view(self.view).unwrap_or(0);
            self.verified = self.verified.max(last_of_view);
        }
        self.durable = self.log.last_op(); // What a restart finds on disk is durable.
        self.boot += 1;
        self.reads = Reads::new(self.boot);
        // Persisted before anything this incarnation says: read rounds are numbered from it.
        self.persist_view_state(out);
        self.reset_view_change_timer(out);
        out.set_timer(
            Timer::Heartbeat,
            TimerRange::fixed(self.config.heartbeat_interval),
        );
    }

    fn recover(&mut self, record: Record) {
        match record {
            Record::ViewState { view, vote, boot } => {
                self.view = view;
                self.vote = vote;
                self.boot = boot;
            }
            Record::Entries(entries) => {
                let first = entries
                    .first()
                    .expect("an Entries record is never empty")
                    .op;
                assert!(first <= self.log.last_op() + 1, "recovered log has a gap");
                self.log.truncate_from(first);
                for entry in entries {
                    self.log.append(entry);
                }
            }
            Record::Checkpoint {
                view,
                vote,
                boot,
                snapshot,
                entries,
            } => {
                self.view = view;
                self.vote = vote;
                self.boot = boot;
                self.log = Log::new(snapshot, entries);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    fn on_timer(&mut self, timer: Timer, out: &mut Effects<Self>) {
        match timer {
            Timer::ViewChange => {
                if !self.is_primary() {
                    self.start_view_change(out);
                }
            }
            Timer::Heartbeat => {
                self.on_heartbeat_tick(out);
                out.set_timer(
                    Timer::Heartbeat,
                    TimerRange::fixed(self.config.heartbeat_interval),
                );
            }
            Timer::Gather => self.on_gather_timeout(out),
            Timer::Durable { op, view } => self.on_durable(op, view, out),
        }
    }

    fn on_heartbeat_tick(&mut self, out: &mut Effects<Self>) {
        if self.is_primary() && self.is_chain() {
            self.ping_members(out);
            if self.chain_needs_repair() {
                self.stats.chain_repairs += 1;
                return self.start_view_change(out);
            }
        }
        if !self.downstream.is_empty() {
            self.heartbeat_downstream(out);
        }
        self.retransmit_read_queries(out);
        self.maybe_compact(out);
    }

    fn on_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if !self.members.contains(&from) || from == self.id {
            return; // Not a member of this group: ignore.
        }
        if msg.view() > self.view {
            let from_election = matches!(
                msg,
                Message::StartViewChange { .. } | Message::DoViewChange { .. }
            );
            self.adopt_view(msg.view(), from_election, out);
        }
        let by_id = self.config.has_bug(Bug::FollowsPrimaryById)
            && matches!(msg, Message::Prepare { .. })
            && self.upstream == Some(from);
        if msg.view() < self.view && (by_id || self.follows_older_view(&msg)) {
            self.return_to_view(msg.view(), out);
        }
        if msg.view() == self.view && self.is_primary() {
            self.heard.insert(from, self.now);
        }
        match msg {
            Message::StartViewChange {
                view,
                last_op,
                last_view,
            } => self.on_start_view_change(from, view, (last_view, last_op), out),
            Message::DoViewChange {
                view,
                granted,
                last_op,
                last_view,
            } => self.on_do_view_change(from, view, granted, (last_view, last_op), out),
            Message::Prepare {
                view,
                group,
                prev_op,
                prev_view,
                entries,
                commit,
            } => {
                let prepare = Prepare {
                    view,
                    group,
                    prev_op,
                    prev_view,
                    entries,
                    commit,
                };
                self.on_prepare(from, prepare, out)
            }
            Message::PrepareOk {
                view,
                result,
                commit,
            } => self.on_prepare_ok(from, view, result, commit, out),
            Message::NewState {
                view,
                group,
                snapshot,
            } => self.on_new_state(from, view, group, snapshot, out),
            Message::NewStateOk { view, op, commit } => {
                self.on_new_state_ok(from, view, op, commit, out)
            }
            Message::Ping {
                view,
                group,
                commit,
            } => self.on_ping(from, view, group, commit, out),
            Message::PingOk { .. } => {} // Recorded in `heard` above.
            Message::Confirm { view, round } => self.on_confirm(from, view, round, out),
            Message::ConfirmOk { view, round } => self.on_confirm_ok(from, view, round, out),
            Message::VersionQuery { view, id } => self.on_version_query(from, view, id, out),
            Message::VersionReply { view, id, commit } => {
                self.on_version_reply(view, id, commit, out)
            }
        }
    }

    fn on_request(&mut self, request: Request, out: &mut Effects<Self>) {
        if request.op.needs_leader_clock() {
            let refusal = quorate_core::kv::expiry::refusal("primary-backup, chain and craq");
            return Self::answer(&request, Err(refusal), out);
        }
        if request.op.is_read() {
            return self.on_read(request, out);
        }
        if !self.is_primary() {
            let leader = self.primary();
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        }
        if let Some(output) = self.kv.cached(request.client, request.seq) {
            return Self::answer(&request, Ok(output.clone()), out);
        }
        if self.kv.already_applied(request.client, request.seq) {
            return; // A stale duplicate: its client has moved on.
        }
        if self
            .waiting
            .get(&request.client)
            .is_some_and(|seq| *seq > request.seq)
        {
            return; // An older request of a client that has moved on.
        }
        if self.waiting.get(&request.client) == Some(&request.seq) {
            return; // Already in the log; the answer comes when it commits.
        }
        let uncommitted = self.log.last_op() - self.commit;
        if uncommitted >= self.config.uncommitted_max {
            let why = format!("{uncommitted} writes await commitment; retry later");
            return Self::answer(&request, Err(ClientError::Rejected(why)), out);
        }
        self.waiting.insert(request.client, request.seq);
        self.append_to_own_log(Payload::Command(request.command()), out);
    }

    fn status_role(&self) -> Role {
        match self.status {
            Status::Backup => Role::Follower,
            Status::Candidate { .. } => Role::Candidate,
            Status::Primary => Role::Leader,
        }
    }
}

/// The fields of a Prepare message, unpacked.
pub(crate) struct Prepare {
    pub view: u64,
    pub group: Group,
    pub prev_op: u64,
    pub prev_view: u64,
    pub entries: Vec<Entry>,
    pub commit: u64,
}

impl Protocol for Replica {
    type Message = Message;
    type Record = Record;
    type Timer = Timer;

    fn step(&mut self, now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        self.now = now;
        if let Input::Start { recovered } = input {
            return self.on_start(recovered, out);
        }
        assert!(self.started, "input before Start");
        match input {
            Input::Start { .. } => unreachable!("handled above"),
            Input::Request(request) => self.on_request(request, out),
            Input::Admin(admin) => {
                let why = format!(
                    "{:?}: the members are fixed at start and views are decided by election",
                    admin.command
                );
                out.reply(Reply {
                    client: admin.client,
                    seq: admin.seq,
                    result: Err(ClientError::Rejected(why)),
                });
            }
            Input::Message { from, msg } => self.on_message(from, msg, out),
            Input::Timer(timer) => self.on_timer(timer, out),
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.id,
            role: self.status_role(),
            term: self.view,
            leader: self.primary(),
            commit_index: self.commit,
            applied_index: self.applied,
            last_index: self.log.last_op(),
        }
    }

    fn check_invariants(&self) {
        assert!(self.applied <= self.commit, "applied beyond commit");
        assert!(
            self.commit <= self.verified,
            "committed beyond the verified prefix"
        );
        assert!(self.durable <= self.log.last_op(), "durable beyond the log");
        assert!(
            self.verified <= self.log.last_op(),
            "verified beyond the log"
        );
        assert!(
            self.log.snapshot().last_op <= self.applied,
            "snapshot ahead of the state machine"
        );
        assert!(
            self.log.last_view() <= self.view,
            "an entry from a future view"
        );
        if let Some(primary) = self.primary() {
            if !self.is_chain() {
                assert_eq!(
                    self.group.len(),
                    self.members.len(),
                    "PB groups hold everyone"
                );
            }
            assert_eq!(
                self.is_primary(),
                primary == self.id,
                "the group names the primary"
            );
            let mut sorted = self.group.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                self.group.len(),
                "a group lists a replica twice"
            );
            assert!(
                self.group.len() >= quorate_core::quorum::majority(self.members.len()),
                "a group smaller than a majority"
            );
        }
        match &self.status {
            Status::Primary => {
                assert_eq!(self.vote, Some(self.id), "a primary voted for itself");
                assert_eq!(
                    self.verified,
                    self.log.last_op(),
                    "a primary's log is the view's"
                );
                for p in self.downstream.values() {
                    assert!(p.match_op < p.next_op, "next_op is past match_op");
                    assert!(
                        p.inflight <= self.config.inflight_max,
                        "inflight over its bound"
                    );
                }
            }
            Status::Candidate { votes, .. } => {
                assert_eq!(self.vote, Some(self.id), "a candidate voted for itself");
                assert!(votes.contains(&self.id), "a candidate counts its own vote");
                assert!(self.group.is_empty(), "a candidate has no group yet");
            }
            Status::Backup => assert!(self.waiting.is_empty(), "only a primary awaits writes"),
        }
        self.reads.check_invariants(self.config.reads_max);
    }
}
