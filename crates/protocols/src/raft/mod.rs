//! # Raft
//!
//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", USENIX ATC
//! 2014, and Ongaro's thesis, "Consensus: Bridging Theory and Practice", 2014) keeps a
//! replicated log identical on a majority of nodes, so that a state machine fed from that log
//! behaves like one reliable machine.
//!
//! ## Fault model
//!
//! Crash-recovery nodes with stable storage; an asynchronous network that may lose, duplicate,
//! delay and reorder messages and partition nodes. No Byzantine faults. Safety never depends on
//! timing, except for lease reads, which assume every clock runs within
//! `RaftConfig::clock_drift_bound_ppm` of true time. Liveness needs a quorum that can talk to
//! each other for long enough.
//!
//! ## The algorithm, in numbered steps
//!
//! 1. **Terms.** Time is divided into terms numbered 1, 2, 3, ... Each term has at most one
//!    leader. Every message carries the sender's term; a node that sees a higher term adopts it
//!    and becomes a follower; a message from a lower term is stale and is refused (the seed's
//!    sketch accepted those: a deposed leader could overwrite a new leader's entries).
//! 2. **Election** (`election.rs`). A voter that hears nothing from a leader for a randomized
//!    election timeout first asks for *pre-votes* (thesis §9.6): would a quorum vote for it in
//!    the next term? Only then does it become a candidate: it increments its term, votes for
//!    itself, persists both, and asks every voter for a vote (RequestVote). A node grants at
//!    most one vote per term, and only to a candidate whose log is at least as up to date as
//!    its own (§5.4.1). With *check-quorum*, a node that heard from a leader within the minimum
//!    election timeout ignores vote requests, and a leader that has not heard from a quorum
//!    for that long steps down. A candidate with votes from a quorum becomes leader.
//! 3. **Replication** (`replication.rs`, `progress.rs`). The leader appends each client command
//!    to its log and sends it in AppendEntries, together with the index and term of the entry
//!    just before it. A follower accepts only if its log holds that previous entry (the
//!    consistency check), deletes any conflicting suffix, appends, persists, and only then
//!    answers. Induction on this check gives the Log Matching property. Per follower, the
//!    leader probes for the point where the logs agree (moving back a whole conflicting term
//!    per round trip), then streams entries with a bounded window of messages and bytes.
//! 4. **Commitment.** An entry is committed once the leader has stored it on a quorum, *and*
//!    it is of the leader's current term (§5.4.2, Figure 8). A new leader appends a no-op
//!    entry so that this happens promptly.
//! 5. **Application.** Every node applies committed entries to its state machine in index
//!    order. The leader answers a client once the client's entry is applied.
//! 6. **Heartbeats.** An idle leader sends empty AppendEntries every heartbeat interval, which
//!    keeps followers from starting elections and carries the commit index. Each heartbeat
//!    round is numbered, and responses echo the number.
//! 7. **Reads** (`read.rs`). Linearizable reads do not touch the log: the leader confirms its
//!    leadership with a heartbeat round after the read arrived (ReadIndex, thesis §6.4), or
//!    relies on a lease earned by an earlier round (§6.4.1). Followers ask the leader for a read
//!    index and serve the read themselves once they have applied that far.
//! 8. **Membership** (`membership.rs`). Configurations are log entries, in force as soon as
//!    they are in a node's log: single-server changes (thesis §4.1) one at a time, arbitrary
//!    changes through a joint configuration whose decisions need both majorities (§6), and
//!    learners that catch up before they may vote.
//! 9. **Leadership transfer** (`transfer.rs`, thesis §3.10). The leader pauses new commands,
//!    catches the target up, and sends it TimeoutNow; the target campaigns at once.
//! 10. **Compaction** (`snapshot.rs`, §7). When enough entries are applied beyond the last
//!     snapshot, a node replaces its log prefix by a snapshot of the state machine. A follower
//!     that needs entries the leader has compacted receives the snapshot in chunks.
//!
//! ## Guarantees
//!
//! Election Safety, Log Matching, Leader Completeness and State Machine Safety (Figure 3),
//! under any membership changes; linearizable client operations (writes through the log with
//! exactly-once sessions, thesis §6.3; reads by ReadIndex, or by lease within the drift bound).
//! `safety.rs` checks the properties across the cluster after every simulated step.
//!
//! ## Implementation choices
//!
//! - Persistence: term, vote and log changes are emitted as `Persist` effects *before* the
//!   messages that depend on them; the driver holds later effects until they are durable.
//! - Log indices are 1-based; index 0 is the empty prefix of term 0.
//! - Every node is built with the same bootstrap configuration (the snapshot at index 0);
//!   nodes outside it wait, inert, until a leader adds them.
//! - Client sessions (thesis §6.3) make retried commands apply once; a leader that is deposed
//!   with requests outstanding answers them `Indeterminate`, and clients retry elsewhere.
//!   `ReadMode::Local` reads are answered from the local state of any node and may be stale.
//! - Nodes report notable events of each step (`Raft::events`) so that the cluster checker
//!   can count them: elections by transfer, lease reads, disruptions, and so on.
//!
//! ## Deliberately left out
//!
//! Snapshots that keep a tail of entries for slow followers (a follower that falls behind a
//! compaction always gets the whole snapshot), batching of concurrent ReadIndex requests into
//! one round, and witnesses.

mod config;
mod election;
mod log;
mod membership;
mod message;
mod progress;
mod read;
mod replication;
pub mod safety;
mod snapshot;
mod transfer;

#[cfg(test)]
mod tests;

pub use config::{Bug, RaftConfig};
pub use membership::Membership;
pub use message::{
    AppendResult, Entry, Message, Payload, Record, Snapshot, SnapshotAck, SnapshotChunk,
};
pub use safety::RaftSafety;

use log::Log;
use progress::LeaderState;
use quorate_core::kv::{Command, EXPIRIES_PER_TICK_MAX, EXPIRY_CLIENT};
use quorate_core::{
    ClientError, Effect, Effects, Input, KvStore, NodeId, NodeStatus, Protocol, ReadMode, Request,
    Role, Standing, Time, TimerRange,
};
use read::FollowerReads;
use snapshot::SnapshotReceive;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Raft's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// Followers and candidates: start an election when it fires.
    Election,
    /// Leaders: send heartbeats, retransmit, check the quorum and transfers when it fires.
    Heartbeat,
}

/// Notable things a node did in one step, for the cluster checker's counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A leader that had heard from a quorum within the minimum election timeout was deposed
    /// by a higher term (not by a transfer it started): what pre-vote prevents.
    LeaderDisrupted,
    /// A leader that had not heard from a quorum stepped down.
    CheckQuorumStepDown,
    /// A read served after a heartbeat round confirmed leadership.
    ReadIndexRead,
    /// A read served under the leader's lease, without a round.
    LeaseRead,
    /// A read served by a follower or learner with a read index from the leader.
    FollowerRead,
    /// A candidate started by TimeoutNow won its election.
    TransferElected,
    /// A leadership transfer timed out.
    TransferAborted,
    /// A leader outside the committed configuration stepped down.
    RemovedLeaderSteppedDown,
    /// A membership change was refused (overlapping, or unsafe).
    MembershipChangeRefused,
    /// A snapshot arrived in full and was installed.
    SnapshotInstalled,
    /// A quorum stores `index`, but its entry is of the earlier term `term`: the leader does not
    /// commit it by counting replicas (§5.4.2, Figure 8); it commits when an entry of its own
    /// term after it reaches a quorum. Reported once per index a leader withholds.
    OldTermCommitWithheld { index: u64, term: u64 },
}

#[derive(Clone, Debug)]
enum RoleState {
    Follower,
    /// Asking for pre-votes (thesis §9.6); the term is unchanged.
    PreCandidate {
        votes: BTreeSet<NodeId>,
    },
    Candidate {
        votes: BTreeSet<NodeId>,
        /// Campaigning because the leader sent TimeoutNow.
        transfer: bool,
    },
    Leader(Box<LeaderState>),
}

/// One Raft node.
#[derive(Clone, Debug)]
pub struct Raft {
    id: NodeId,
    config: RaftConfig,
    started: bool,

    // Persistent state (Figure 2): durable before any message that depends on it. The
    // configuration is part of the log.
    term: u64,
    vote: Option<NodeId>,
    log: Log,

    // Volatile state.
    role: RoleState,
    leader: Option<NodeId>,
    commit_index: u64,
    last_applied: u64,
    kv: KvStore,
    /// The configuration in force: the last one in the log, committed or not.
    membership: Membership,
    /// The index of that configuration's entry (the snapshot's index if it came from there).
    membership_index: u64,
    /// This node's clock at the current step.
    now: Time,
    /// When this node last heard from a leader of its term (or restarted): check-quorum's
    /// reason to ignore vote requests.
    heard_leader_at: Option<Time>,
    follower_reads: FollowerReads,
    receiving: Option<SnapshotReceive>,
    /// What the current step did that the cluster checker counts.
    events: Vec<Event>,
}

impl Raft {
    /// A node `id` of a cluster whose bootstrap configuration is `voters`. Every node of the
    /// cluster, including ones added later, must be built with the same `voters`. It does
    /// nothing until it receives [`Input::Start`].
    pub fn new(id: NodeId, voters: &[NodeId], config: RaftConfig) -> Raft {
        assert!(
            !voters.is_empty(),
            "the bootstrap configuration needs a voter"
        );
        config.validate().expect("invalid RaftConfig");
        let membership = Membership::new(voters.iter().copied());
        let snapshot = Arc::new(Snapshot::empty(membership.clone(), config.sessions_max));
        Raft {
            id,
            kv: snapshot.state.clone(),
            log: Log::new(snapshot, Vec::new()),
            config,
            started: false,
            term: 0,
            vote: None,
            role: RoleState::Follower,
            leader: None,
            commit_index: 0,
            last_applied: 0,
            membership,
            membership_index: 0,
            now: Time::ZERO,
            heard_leader_at: None,
            follower_reads: FollowerReads::default(),
            receiving: None,
            events: Vec::new(),
        }
    }

    /// The key-value store as applied on this node: the state at the applied index (`status().applied_index`), a prefix of the committed log. What a backup
    /// (`quorate snapshot save`) copies.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// The replicated state machine as this node has applied it.
    pub fn state_machine(&self) -> &KvStore {
        &self.kv
    }

    /// The configuration in force on this node (the last one in its log).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// On a leader, the highest log index known to be stored on member `id` (what
    /// `quorate member list` shows as its lag); `None` elsewhere or for unknown members.
    pub fn match_index(&self, id: NodeId) -> Option<u64> {
        match &self.role {
            RoleState::Leader(_) if id == self.id => Some(self.log.last_index()),
            RoleState::Leader(leader) => leader.progress.get(&id).map(|p| p.match_index),
            _ => None,
        }
    }

    /// What the last step did that a cluster checker may count.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The leader to send clients to: this node's leader, if it heard from it within an
    /// election timeout. A node that was cut off, or removed without knowing it, would
    /// otherwise keep naming a leader of long ago, and clients could bounce between such
    /// nodes forever.
    fn leader_hint(&self) -> Option<NodeId> {
        if self.is_leader() {
            return Some(self.id);
        }
        let fresh = self
            .heard_leader_at
            .is_some_and(|at| self.now.saturating_since(at) < self.config.election_timeout_max);
        self.leader.filter(|_| fresh)
    }

    fn leader_state(&self) -> &LeaderState {
        match &self.role {
            RoleState::Leader(leader) => leader,
            _ => panic!("{} is not the leader", self.id),
        }
    }

    fn election_timeout(&self) -> TimerRange {
        TimerRange {
            min: self.config.election_timeout_min,
            max: self.config.election_timeout_max,
        }
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
        self.commit_index = snapshot.last_index;
        self.last_applied = snapshot.last_index;
        self.refresh_membership();
        if self.config.check_quorum {
            // We may have acknowledged a leader's round just before crashing: keep the promise
            // not to vote for a while, on which that leader's lease relies.
            self.heard_leader_at = Some(self.now);
        }
        out.set_timer(Timer::Election, self.election_timeout());
    }

    fn recover(&mut self, record: Record) {
        match record {
            Record::HardState { term, vote } => {
                self.term = term;
                self.vote = vote;
            }
            Record::Entries(entries) => {
                let first = entries
                    .first()
                    .expect("an Entries record is never empty")
                    .index;
                assert!(
                    first <= self.log.last_index() + 1,
                    "recovered log has a gap"
                );
                self.log.truncate_from(first);
                for entry in entries {
                    self.log.append(entry);
                }
            }
            Record::Checkpoint {
                term,
                vote,
                snapshot,
                entries,
            } => {
                self.term = term;
                self.vote = vote;
                self.log = Log::new(snapshot, entries);
            }
        }
    }

    fn persist_hard_state(&self, out: &mut Effects<Self>) {
        out.persist(Record::HardState {
            term: self.term,
            vote: self.vote,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    fn on_timer(&mut self, timer: Timer, out: &mut Effects<Self>) {
        match timer {
            Timer::Election => self.on_election_timeout(out),
            Timer::Heartbeat => {
                if !self.is_leader() || self.check_quorum(out) {
                    return;
                }
                self.transfer_tick(out);
                self.propose_expiries(out);
                self.heartbeat(out);
                out.set_timer(
                    Timer::Heartbeat,
                    TimerRange::fixed(self.config.heartbeat_interval),
                );
            }
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if from == self.id {
            if let Message::Durable { term, index } = msg {
                if self.config.has_bug(Bug::DurableLoop) {
                    out.send(self.id, Message::Durable { term, index });
                }
                self.on_durable(term, index, out);
            }
            return;
        }
        // Nodes answer whoever asks, member or not (thesis §4.1): a new node must accept its
        // first entries from a leader it has no configuration for yet.
        if self.ignores(&msg) {
            return;
        }
        if matches!(msg, Message::RequestVote { .. }) && self.config.has_bug(Bug::VoteBeforePersist)
        {
            return self.answer_vote_before_persist(from, msg, out);
        }
        self.on_peer_message(from, msg, out);
    }

    /// The broken variant `Bug::VoteBeforePersist`: the vote request is handled as usual, but
    /// its answer leaves first, ahead of the hard-state write it must wait for.
    fn answer_vote_before_persist(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        let mut effects = Effects::new();
        self.on_peer_message(from, msg, &mut effects);
        let (sends, rest): (Vec<_>, Vec<_>) = effects
            .drain()
            .partition(|effect| matches!(effect, Effect::Send { .. }));
        for effect in sends.into_iter().chain(rest) {
            match effect {
                Effect::Send { to, msg } => out.send(to, msg),
                Effect::Reply(reply) => out.reply(reply),
                Effect::Persist(record) => out.persist(record),
                Effect::SetTimer { timer, after } => out.set_timer(timer, after),
                Effect::CancelTimer(timer) => out.cancel_timer(timer),
            }
        }
    }

    /// A message from another node (past the check-quorum filter).
    fn on_peer_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if msg.term() > self.term && Self::adopts_term(&msg) {
            self.on_higher_term(from, &msg, out);
        }
        match msg {
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_pre_vote(from, term, last_log_index, last_log_term, out),
            Message::PreVoteResponse { term, granted } => {
                self.on_pre_vote_response(from, term, granted, out)
            }
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                transfer: _,
            } => self.on_request_vote(from, term, last_log_index, last_log_term, out),
            Message::RequestVoteResponse { term, granted } => {
                self.on_request_vote_response(from, term, granted, out)
            }
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
            } => {
                let append = AppendEntries {
                    term,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    round,
                };
                self.on_append_entries(from, append, out)
            }
            Message::AppendEntriesResponse {
                term,
                round,
                result,
            } => self.on_append_entries_response(from, term, round, result, out),
            Message::InstallSnapshot { term, chunk } => {
                self.on_install_snapshot(from, term, *chunk, out)
            }
            Message::InstallSnapshotResponse {
                term,
                last_index,
                ack,
            } => self.on_install_snapshot_response(from, term, last_index, ack, out),
            Message::TimeoutNow { term } => self.on_timeout_now(term, out),
            Message::ReadIndex { term, id } => self.on_read_index(from, term, id, out),
            Message::ReadIndexResponse { id, read_index, .. } => {
                self.on_read_index_response(id, read_index, out)
            }
            Message::Durable { .. } => {} // Only meaningful from ourselves (handled above).
        }
    }

    /// Check-quorum (thesis §4.2.3): a node that heard from a live leader recently ignores
    /// requests to vote in a higher term, unless the leader itself asked for the election.
    fn ignores(&self, msg: &Message) -> bool {
        match msg {
            Message::RequestVote { term, transfer, .. } => {
                self.config.check_quorum
                    && !transfer
                    && *term > self.term
                    && self.heard_from_leader_recently()
            }
            _ => false,
        }
    }

    /// Pre-votes and granted pre-vote answers carry a term nobody is in yet; every other
    /// message's higher term is adopted (Figure 2, rules for all servers).
    fn adopts_term(msg: &Message) -> bool {
        !matches!(
            msg,
            Message::PreVote { .. } | Message::PreVoteResponse { granted: true, .. }
        )
    }

    fn on_higher_term(&mut self, from: NodeId, msg: &Message, out: &mut Effects<Self>) {
        let was_leader = self.is_leader();
        if was_leader {
            let by_transfer = matches!(msg, Message::RequestVote { transfer: true, .. });
            if !by_transfer && self.leader_is_healthy() {
                self.events.push(Event::LeaderDisrupted);
            }
            self.transfer_handed_over(from, out);
        }
        let leader = match msg {
            Message::AppendEntries { .. } | Message::InstallSnapshot { .. } => Some(from),
            _ => None,
        };
        if was_leader || leader.is_some() {
            self.become_follower(msg.term(), leader, out);
        } else {
            // The election timer keeps running (see `follow_term`).
            self.follow_term(msg.term(), None, out);
        }
    }

    fn on_request(&mut self, request: Request, out: &mut Effects<Self>) {
        if request.op.is_read() && request.read == ReadMode::Local {
            let result = Self::read_state(&self.kv, &self.config, self.now, &request.op);
            return Self::answer(&request, result, out);
        }
        // A retried read is served afresh (see `KvStore::reply_at`), a retried write from
        // its session.
        let session_known = match self.kv.standing(request.client, request.seq) {
            Standing::Cached(output) if !request.op.is_read() => {
                return Self::answer(&request, Ok(output.clone()), out);
            }
            Standing::Cached(_) => true,
            Standing::Superseded => return, // A stale duplicate: its client has moved on.
            Standing::New { known } => known,
        };
        if request.op.is_read() && self.config.read_index && session_known {
            return self.on_linearizable_read(request, out);
        }
        self.propose(request, out);
    }

    /// A command for the log (writes, and reads that must open a session).
    fn propose(&mut self, request: Request, out: &mut Effects<Self>) {
        if !self.is_leader() {
            let leader = self.leader_hint();
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        }
        if let Some(target) = self.transfer_target() {
            // Proposals pause during a transfer; the client will find the target leading.
            let leader = Some(target);
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        }
        let uncommitted = self.log.last_index() - self.commit_index;
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("checked above")
        };
        if leader.waiting.get(&request.client) == Some(&request.seq) {
            return; // Already in the log; the answer comes when it is applied.
        }
        if uncommitted >= self.config.uncommitted_max {
            let why = format!("{uncommitted} commands await commitment; retry later");
            return Self::answer(&request, Err(ClientError::Rejected(why)), out);
        }
        leader.waiting.insert(request.client, request.seq);
        let mut command = Command {
            op: request.op.clone().stamped(self.now),
            ..request.command()
        };
        if let quorate_core::Op::Txn { guards, .. } = &mut command.op {
            if self.config.has_bug(Bug::TxnDropsGuards) {
                guards.clear();
            }
        }
        if command.op.reads_current_value() && self.may_carry_deadline(command.op.key()) {
            let expire_due = Command {
                client: EXPIRY_CLIENT,
                seq: 0,
                op: quorate_core::Op::ExpireDue {
                    key: command.op.key().clone(),
                    now: self.now,
                },
            };
            self.append_to_own_log(Payload::Command(expire_due), out);
        }
        self.append_to_own_log(Payload::Command(command), out);
    }

    /// Whether `key` may carry a deadline at the end of this leader's log: it has one in the
    /// applied state, or an entry not yet applied gives it one. Then a write that reads the
    /// key's value is preceded by `ExpireDue` (see `quorate_core::kv::expiry`, item 3).
    fn may_carry_deadline(&self, key: &quorate_core::Key) -> bool {
        if self.config.has_bug(Bug::RmwSeesExpired) {
            return false;
        }
        if self.kv.deadline(key).is_some() {
            return true;
        }
        self.log.sets_deadline_after(key, self.last_applied)
    }

    /// Proposes the removal of keys whose deadline this leader's clock has passed (see
    /// `quorate_core::kv::expiry`); a key whose entry is still in flight is proposed again,
    /// which applies as a no-op.
    fn propose_expiries(&mut self, out: &mut Effects<Self>) {
        if self.transfer_target().is_some() {
            return; // Proposals pause during a transfer.
        }
        let uncommitted = self.log.last_index() - self.commit_index;
        let room = self.config.uncommitted_max.saturating_sub(uncommitted) as usize;
        let mut now = self.now;
        if self.config.has_bug(Bug::ExpiresEarly) {
            now = now + std::time::Duration::from_millis(50);
        }
        for op in self.kv.due(now, EXPIRIES_PER_TICK_MAX.min(room)) {
            let command = Command {
                client: EXPIRY_CLIENT,
                seq: 0,
                op,
            };
            self.append_to_own_log(Payload::Command(command), out);
        }
    }

    /// Serves a read from the state machine at this node's clock (`KvStore::read_at`: a key
    /// past its deadline is not answered until its `Expired` entry applies).
    /// (Takes the fields it reads, so that callers may hold the leader state.)
    fn read_state(
        kv: &KvStore,
        config: &RaftConfig,
        now: Time,
        op: &quorate_core::Op,
    ) -> Result<quorate_core::Output, ClientError> {
        if config.has_bug(Bug::ReadSkipsDeadline) {
            return Ok(kv.read(op));
        }
        kv.read_at(op, now)
    }

    fn status_role(&self) -> Role {
        match self.role {
            RoleState::Follower if self.membership.is_learner(self.id) => Role::Learner,
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    fn check_leader_invariants(&self, leader: &LeaderState) {
        assert_eq!(self.vote, Some(self.id), "a leader voted for itself");
        assert_eq!(self.leader, Some(self.id), "a leader knows it leads");
        let m = &self.membership;
        let old = m.old_voters.iter().flatten();
        for member in m.voters.iter().chain(old).chain(&m.learners) {
            assert!(
                *member == self.id || leader.progress.contains_key(member),
                "the leader tracks every member"
            );
        }
        for p in leader.progress.values() {
            assert!(
                p.match_index < p.next_index,
                "next_index is past match_index"
            );
            assert!(
                p.inflight.len() <= self.config.inflight_max,
                "inflight over its bound"
            );
            let bytes: u64 = p.inflight.iter().map(|(_, b)| b).sum();
            assert_eq!(bytes, p.inflight_bytes, "inflight bytes add up");
        }
    }
}

/// The fields of an AppendEntries message, unpacked.
struct AppendEntries {
    term: u64,
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry>,
    leader_commit: u64,
    round: u64,
}

impl Protocol for Raft {
    type Message = Message;
    type Record = Record;
    type Timer = Timer;

    fn step(&mut self, now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        self.now = now;
        self.events.clear();
        if let Input::Start { recovered } = input {
            return self.on_start(recovered, out);
        }
        assert!(self.started, "input before Start");
        match input {
            Input::Start { .. } => unreachable!("handled above"),
            Input::Request(request) => self.on_request(request, out),
            Input::Admin(admin) => self.on_admin(admin, out),
            Input::Message { from, msg } => self.on_message(from, msg, out),
            Input::Timer(timer) => self.on_timer(timer, out),
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.id,
            role: self.status_role(),
            term: self.term,
            leader: self.leader,
            commit_index: self.commit_index,
            applied_index: self.last_applied,
            last_index: self.log.last_index(),
        }
    }

    fn check_invariants(&self) {
        assert!(
            self.last_applied <= self.commit_index,
            "applied beyond commit"
        );
        assert!(
            self.commit_index <= self.log.last_index(),
            "committed beyond the log"
        );
        assert!(
            self.log.snapshot().last_index <= self.last_applied,
            "snapshot ahead of the state machine"
        );
        // The configuration in force is in the log (checking that none follows it would cost
        // a scan of the log per step; `log.rs` tests `membership_at` instead).
        if let Some(entry) = self.log.entry(self.membership_index) {
            let in_log = matches!(&entry.payload, Payload::Config(m) if *m == self.membership);
            assert!(in_log, "the configuration in force is in the log");
        }
        match &self.role {
            RoleState::Leader(leader) => self.check_leader_invariants(leader),
            RoleState::Candidate { votes, .. } => {
                assert_eq!(self.vote, Some(self.id), "a candidate voted for itself");
                // Its own vote is counted only once durable (see `Message::Durable`).
                let _ = votes;
            }
            RoleState::PreCandidate { votes } => {
                assert!(votes.contains(&self.id), "a pre-candidate counts itself");
            }
            RoleState::Follower => {}
        }
    }
}
