//! # Raft
//!
//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", USENIX ATC
//! 2014, and Ongaro's thesis, 2014) keeps a replicated log identical on a majority of nodes, so
//! that a state machine fed from that log behaves like one reliable machine.
//!
//! ## Fault model
//!
//! Crash-recovery nodes with stable storage; an asynchronous network that may lose, duplicate,
//! delay and reorder messages and partition nodes. No Byzantine faults. Safety never depends on
//! timing; liveness needs a majority that can talk to each other for long enough.
//!
//! ## The algorithm, in numbered steps
//!
//! 1. **Terms.** Time is divided into terms numbered 1, 2, 3, ... Each term has at most one
//!    leader. Every message carries the sender's term; a node that sees a higher term adopts it
//!    and becomes a follower; a message from a lower term is stale and is refused (the seed's
//!    sketch accepted those: a deposed leader could overwrite a new leader's entries).
//! 2. **Election.** A follower that hears nothing from a leader for a randomized election
//!    timeout becomes a candidate: it increments its term, votes for itself, persists both, and
//!    asks every node for a vote (RequestVote). A node grants at most one vote per term, and
//!    only to a candidate whose log is at least as up to date as its own: a higher last term,
//!    or the same last term and at least as long (§5.4.1). A candidate with votes from a
//!    majority becomes leader. Randomized timeouts make split votes rare.
//! 3. **Replication.** The leader appends each client command to its log and sends it in
//!    AppendEntries, together with the index and term of the entry just before it. A follower
//!    accepts only if its log holds that previous entry (the consistency check), deletes any
//!    conflicting suffix, appends, persists, and only then answers. Induction on this check
//!    gives the Log Matching property: two logs that hold an entry with the same index and
//!    term are identical up to it.
//! 4. **Back-off.** A follower that fails the check answers with a hint (its term at that index
//!    and the first index of that term), and the leader moves `next_index` back past the whole
//!    conflicting term at once rather than one entry per round trip.
//! 5. **Commitment.** An entry is committed once the leader has stored it on a majority, *and*
//!    it is of the leader's current term (§5.4.2, Figure 8): entries of earlier terms are
//!    committed only indirectly, by committing a later entry of the current term. A new leader
//!    appends a no-op entry so that this happens promptly.
//! 6. **Application.** Every node applies committed entries to its state machine in index
//!    order. The leader answers a client once the client's entry is applied.
//! 7. **Heartbeats.** An idle leader sends empty AppendEntries every heartbeat interval, which
//!    keeps followers from starting elections and carries the commit index.
//! 8. **Compaction** (§7). When enough entries are applied beyond the last snapshot, a node
//!    replaces its log prefix by a snapshot of the state machine. A follower that needs entries
//!    the leader has compacted receives the snapshot with InstallSnapshot.
//!
//! ## Implementation choices
//!
//! - Persistence: term, vote and log changes are emitted as `Persist` effects *before* the
//!   messages that depend on them; the driver holds later effects until they are durable.
//! - Log indices are 1-based; index 0 is the empty prefix of term 0 (the seed's sketch mixed a
//!   0-based commit index with an empty log).
//! - Flow control: each follower has a `next_index` that advances optimistically as entries
//!   are sent, at most `inflight_max` messages with entries in flight; if a heartbeat interval
//!   passes without an acknowledgement, the leader resends from `match_index + 1`.
//! - Reads go through the log like writes, so they are linearizable without clocks. (A leader
//!   answering reads from its own state could already be deposed.) `ReadMode::Local` reads are
//!   answered from the local state of any node and may be stale.
//! - Client sessions (thesis §6.3) make retried commands apply once; a leader that is deposed
//!   with requests outstanding answers them `Indeterminate`, and clients retry elsewhere.
//!
//! ## Deliberately left out (for now)
//!
//! Pre-vote, check-quorum, ReadIndex and lease reads, membership changes, leadership transfer
//! and chunked snapshots are the subject of their own issue.

mod log;
mod message;
pub mod safety;

#[cfg(test)]
mod tests;

pub use message::{AppendResult, Entry, Message, Payload, Record, Snapshot};
pub use safety::RaftSafety;

use log::Log;
use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use quorate_core::quorum::majority;
use quorate_core::{
    ClientError, ClientId, Effects, Input, KvStore, NodeId, NodeStatus, Protocol, Reply, Request,
    Role, Time, TimerRange,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Deliberately broken variants. They can only be switched on with the `bugs` feature, which
/// the tests use to show that the simulator's checks catch real mistakes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// Commit any entry stored on a majority, even one from an earlier term (Figure 8). New
    /// leaders also skip their no-op entry, which would otherwise mask the mistake most of the
    /// time (Figure 8 has no no-ops).
    CommitPreviousTermByCounting,
    /// Grant votes without the §5.4.1 up-to-date check.
    VoteWithoutLogCheck,
}

/// Tunables. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// A follower starts an election after hearing nothing for a time drawn from
    /// `election_timeout_min..=election_timeout_max`.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How often an idle leader sends heartbeats; well below the election timeout.
    pub heartbeat_interval: Duration,
    /// Entries per AppendEntries message, at most.
    pub entries_per_append_max: usize,
    /// AppendEntries messages carrying entries in flight to one follower, at most.
    pub inflight_max: usize,
    /// Applied entries beyond the last snapshot that trigger a new snapshot.
    pub snapshot_threshold: u64,
    /// Uncommitted entries the leader accepts before refusing new commands.
    pub uncommitted_max: u64,
    /// Client sessions remembered by the state machine.
    pub sessions_max: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            entries_per_append_max: 64,
            inflight_max: 8,
            snapshot_threshold: 1024,
            uncommitted_max: 4096,
            sessions_max: SESSIONS_MAX_DEFAULT,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl RaftConfig {
    /// Checks that the tunables make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.election_timeout_min > self.election_timeout_max {
            return Err("election_timeout_min exceeds election_timeout_max".into());
        }
        if self.heartbeat_interval >= self.election_timeout_min {
            return Err("heartbeat_interval must be below election_timeout_min".into());
        }
        if self.entries_per_append_max == 0 || self.inflight_max == 0 {
            return Err("entries_per_append_max and inflight_max must be positive".into());
        }
        if self.snapshot_threshold == 0 || self.uncommitted_max == 0 || self.sessions_max == 0 {
            return Err(
                "snapshot_threshold, uncommitted_max and sessions_max must be positive".into(),
            );
        }
        Ok(())
    }

    /// Whether the deliberately broken behaviour `bug` is switched on.
    fn has_bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "bugs")]
        return self.bug == Some(bug);
        #[cfg(not(feature = "bugs"))]
        {
            let _ = bug;
            false
        }
    }
}

/// Raft's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// Followers and candidates: start an election when it fires.
    Election,
    /// Leaders: send heartbeats (and retransmit) when it fires.
    Heartbeat,
}

/// The leader's view of one follower's log.
#[derive(Clone, Debug)]
struct Progress {
    /// Highest index known to be replicated on the follower.
    match_index: u64,
    /// Index of the next entry to send.
    next_index: u64,
    /// AppendEntries with entries sent and not yet acknowledged.
    inflight: usize,
    /// Whether the follower acknowledged anything since the last heartbeat tick.
    acked_since_tick: bool,
    /// An InstallSnapshot is on its way; do not send another before a tick passes.
    snapshot_in_flight: bool,
}

#[derive(Clone, Debug)]
enum RoleState {
    Follower,
    Candidate {
        votes: BTreeSet<NodeId>,
    },
    Leader {
        progress: BTreeMap<NodeId, Progress>,
        /// Clients whose request this leader appended and has not answered: `seq` per client.
        waiting: BTreeMap<ClientId, u64>,
    },
}

/// One Raft node.
#[derive(Clone, Debug)]
pub struct Raft {
    id: NodeId,
    /// Every voting member, this node included, in id order.
    voters: Vec<NodeId>,
    config: RaftConfig,
    started: bool,

    // Persistent state (Figure 2): durable before any message that depends on it.
    term: u64,
    vote: Option<NodeId>,
    log: Log,

    // Volatile state.
    role: RoleState,
    leader: Option<NodeId>,
    commit_index: u64,
    last_applied: u64,
    kv: KvStore,
}

impl Raft {
    /// A node `id` of the cluster `voters` (which must include `id`). It does nothing until it
    /// receives [`Input::Start`].
    pub fn new(id: NodeId, voters: &[NodeId], config: RaftConfig) -> Raft {
        let mut voters = voters.to_vec();
        voters.sort();
        voters.dedup();
        assert!(voters.contains(&id), "a node must be one of the voters");
        config.validate().expect("invalid RaftConfig");
        let snapshot = Arc::new(Snapshot::empty(config.sessions_max));
        Raft {
            id,
            voters,
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
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader { .. })
    }

    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// The replicated state machine as this node has applied it.
    pub fn state_machine(&self) -> &KvStore {
        &self.kv
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.voters.iter().copied().filter(move |id| *id != me)
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
    // Role changes.

    /// Adopts `term` (if higher) and becomes a follower of `leader` (if known).
    fn become_follower(&mut self, term: u64, leader: Option<NodeId>, out: &mut Effects<Self>) {
        assert!(term >= self.term, "terms never decrease");
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state(out);
        }
        if let RoleState::Leader { waiting, .. } = &self.role {
            for (client, seq) in waiting {
                out.reply(Reply {
                    client: *client,
                    seq: *seq,
                    result: Err(ClientError::Indeterminate { leader }),
                });
            }
            out.cancel_timer(Timer::Heartbeat);
        }
        self.role = RoleState::Follower;
        self.leader = leader;
        out.set_timer(Timer::Election, self.election_timeout());
    }

    fn start_election(&mut self, out: &mut Effects<Self>) {
        self.term += 1;
        self.vote = Some(self.id);
        self.leader = None;
        self.role = RoleState::Candidate {
            votes: BTreeSet::from([self.id]),
        };
        self.persist_hard_state(out);
        out.set_timer(Timer::Election, self.election_timeout());
        if majority(self.voters.len()) == 1 {
            self.become_leader(out);
            return;
        }
        let request = Message::RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in self.peers() {
            out.send(peer, request.clone());
        }
    }

    fn become_leader(&mut self, out: &mut Effects<Self>) {
        let next_index = self.log.last_index() + 1;
        let progress = self
            .peers()
            .map(|peer| {
                let progress = Progress {
                    match_index: 0,
                    next_index,
                    inflight: 0,
                    acked_since_tick: false,
                    snapshot_in_flight: false,
                };
                (peer, progress)
            })
            .collect();
        self.role = RoleState::Leader {
            progress,
            waiting: BTreeMap::new(),
        };
        self.leader = Some(self.id);
        out.cancel_timer(Timer::Election);
        out.set_timer(
            Timer::Heartbeat,
            TimerRange::fixed(self.config.heartbeat_interval),
        );
        if self.config.has_bug(Bug::CommitPreviousTermByCounting) {
            self.heartbeat(out);
            return;
        }
        self.append_to_own_log(Payload::Noop, out);
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    fn on_timer(&mut self, timer: Timer, out: &mut Effects<Self>) {
        match timer {
            Timer::Election => {
                if !self.is_leader() {
                    self.start_election(out);
                }
            }
            Timer::Heartbeat => {
                if self.is_leader() {
                    self.heartbeat(out);
                    out.set_timer(
                        Timer::Heartbeat,
                        TimerRange::fixed(self.config.heartbeat_interval),
                    );
                }
            }
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if !self.voters.contains(&from) || from == self.id {
            return; // Not a member of this cluster: ignore.
        }
        // Figure 2, rules for all servers: a higher term deposes us.
        if msg.term() > self.term {
            let leader = match msg {
                Message::AppendEntries { .. } | Message::InstallSnapshot { .. } => Some(from),
                _ => None,
            };
            self.become_follower(msg.term(), leader, out);
        }
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
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
            } => {
                let append = AppendEntries {
                    term,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                };
                self.on_append_entries(from, append, out)
            }
            Message::AppendEntriesResponse { term, result } => {
                self.on_append_entries_response(from, term, result, out)
            }
            Message::InstallSnapshot { term, snapshot } => {
                self.on_install_snapshot(from, term, snapshot, out)
            }
            Message::InstallSnapshotResponse { term, last_index } => {
                self.on_install_snapshot_response(from, term, last_index, out)
            }
        }
    }

    fn on_request(&mut self, request: Request, out: &mut Effects<Self>) {
        if request.read == quorate_core::ReadMode::Local && request.op.is_read() {
            let output = self.kv.read(&request.op);
            return Self::answer(&request, Ok(output), out);
        }
        if !self.is_leader() {
            let leader = self.leader;
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        }
        if let Some(output) = self.kv.cached(request.client, request.seq) {
            return Self::answer(&request, Ok(output.clone()), out);
        }
        if self.kv.already_applied(request.client, request.seq) {
            return; // A stale duplicate: its client has moved on.
        }
        let uncommitted = self.log.last_index() - self.commit_index;
        let RoleState::Leader { waiting, .. } = &mut self.role else {
            unreachable!("checked above")
        };
        if waiting.get(&request.client) == Some(&request.seq) {
            return; // Already in the log; the answer comes when it is applied.
        }
        if uncommitted >= self.config.uncommitted_max {
            let why = format!("{uncommitted} commands await commitment; retry later");
            return Self::answer(&request, Err(ClientError::Rejected(why)), out);
        }
        waiting.insert(request.client, request.seq);
        self.append_to_own_log(Payload::Command(request.command()), out);
    }

    fn answer(
        request: &Request,
        result: Result<quorate_core::Output, ClientError>,
        out: &mut Effects<Self>,
    ) {
        out.reply(Reply {
            client: request.client,
            seq: request.seq,
            result,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Election (§5.2, §5.4.1).

    fn on_request_vote(
        &mut self,
        candidate: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        out: &mut Effects<Self>,
    ) {
        let up_to_date = (last_log_term, last_log_index)
            >= (self.log.last_term(), self.log.last_index())
            || self.config.has_bug(Bug::VoteWithoutLogCheck);
        let free = self.vote.is_none() || self.vote == Some(candidate);
        let granted = term == self.term && free && up_to_date;
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

    fn on_request_vote_response(
        &mut self,
        voter: NodeId,
        term: u64,
        granted: bool,
        out: &mut Effects<Self>,
    ) {
        if term != self.term || !granted {
            return;
        }
        let RoleState::Candidate { votes } = &mut self.role else {
            return;
        };
        votes.insert(voter);
        if votes.len() >= majority(self.voters.len()) {
            self.become_leader(out);
        }
    }

    fn status_role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader { .. } => Role::Leader,
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
}

mod replication;

impl Protocol for Raft {
    type Message = Message;
    type Record = Record;
    type Timer = Timer;

    fn step(&mut self, _now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        if let Input::Start { recovered } = input {
            return self.on_start(recovered, out);
        }
        assert!(self.started, "input before Start");
        match input {
            Input::Start { .. } => unreachable!("handled above"),
            Input::Request(request) => self.on_request(request, out),
            Input::Admin(admin) => {
                let why = format!("{:?} is not supported by this Raft yet", admin.command);
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
        match &self.role {
            RoleState::Leader { progress, .. } => {
                assert_eq!(self.vote, Some(self.id), "a leader voted for itself");
                assert_eq!(self.leader, Some(self.id), "a leader knows it leads");
                for p in progress.values() {
                    assert!(
                        p.match_index < p.next_index,
                        "next_index is past match_index"
                    );
                    assert!(
                        p.inflight <= self.config.inflight_max,
                        "inflight over its bound"
                    );
                }
            }
            RoleState::Candidate { votes } => {
                assert_eq!(self.vote, Some(self.id), "a candidate voted for itself");
                assert!(votes.contains(&self.id), "a candidate counts its own vote");
            }
            RoleState::Follower => {}
        }
    }
}
