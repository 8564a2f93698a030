//! # Multi-Paxos
//!
//! Single-decree Paxos (`paxos`) chooses one value. A replicated state machine needs a
//! *sequence* of values: the commands, in the order every replica applies them. Multi-Paxos
//! runs one Paxos instance per position ("slot") of that sequence, and makes it cheap by
//! letting one stable leader run phase 1 once for all slots, so that each command costs one
//! round trip of phase 2 (Lamport, "Paxos Made Simple" §3; van Renesse & Altinbuken, "Paxos
//! Made Moderately Complex", PMMC).
//!
//! ## Fault model
//!
//! Crash-recovery nodes with stable storage; an asynchronous network that may lose, duplicate,
//! delay and reorder messages and partition nodes. No Byzantine faults. Safety never depends
//! on timing; progress needs a majority that can talk to one leader for long enough.
//!
//! ## Roles
//!
//! Every node is an acceptor, a replica (learner and state machine) and a potential leader
//! (PMMC's leader with its scouts and commanders). A node sends every message, even to
//! itself, through the network, so that its own vote counts only once it is durable.
//!
//! ## The algorithm, in numbered steps
//!
//! 1. **Ballots and election.** A node that hears no leader for a randomized election timeout
//!    becomes a candidate: it persists a fresh round and takes the ballot `(round, id)`, higher
//!    than any it has seen. Randomized timeouts make one candidate usually run alone: this
//!    elected *distinguished proposer* is the cure for the duelling proposers of `paxos`.
//! 2. **Phase 1, once for all slots (PMMC's scout).** The candidate sends `Prepare(b, from)`,
//!    where every slot below `from` is decided and applied at the candidate. An acceptor that
//!    has promised nothing higher promises `b` *for every slot*, persists it, and answers with
//!    its votes (`(slot, ballot, batch)`) for slots `>= from` — plus its snapshot if it has
//!    already compacted some of them (those are decided; the candidate installs the state).
//! 3. **Taking over the log.** With promises from a majority the candidate leads ballot `b`.
//!    For each slot from `from` up to the highest slot anyone reported, it proposes the batch
//!    voted for in the *highest* ballot (exactly single-decree Paxos's rule, per slot) and a
//!    **no-op** where nobody reported a vote, so that the log has no gaps and later slots can
//!    be applied.
//! 4. **Phase 2, per slot (PMMC's commander).** The leader gathers client commands into
//!    **batches** — a batch per slot, up to `batch_max` commands, with at most `pipeline_max`
//!    slots undecided at once — and sends `Accept(b, slot, batch)`. An acceptor that has not
//!    promised a higher ballot accepts, persists, and answers `Accepted` to the leader; a
//!    majority of votes decides the slot. A higher promise answers `Nack`, which deposes the
//!    leader: it steps down and answers its waiting clients `Indeterminate`.
//! 5. **Learning and catch-up.** The leader applies decided slots in order and answers its
//!    clients. It tells the others which prefix is decided (`Commit(b, chosen)`, also its
//!    heartbeat, and piggybacked on every Accept). A replica applies a slot of that prefix at
//!    once if it accepted the leader's batch for it in ballot `b` — the leader proposes one
//!    batch per slot per ballot, and it is the decided one. A replica that lacks a slot asks
//!    for it (`CatchUp`) and gets the decided batches (`Decided`) or, if they were compacted,
//!    a snapshot.
//! 6. **Compaction.** Every `snapshot_threshold` applied slots, a node replaces the decided
//!    prefix (its decided batches and its votes in those slots) by a snapshot of the state
//!    machine, persisted as a checkpoint. Votes in compacted slots are not needed again: a
//!    candidate that asks for them gets the snapshot instead.
//! 7. **Clients.** Followers redirect clients to the leader (`NotLeader`). Commands carry a
//!    session and sequence number, so a command decided twice (retried after a leader change)
//!    is applied once. Reads go through the log like writes, so a deposed leader that has not
//!    noticed yet cannot serve a stale read: linearizable without any clock assumption.
//!    `ReadMode::Local` reads are served from the local state and may be stale.
//!
//! ## Guarantees (checked after every simulated step by [`MultiPaxosSafety`])
//!
//! - **Agreement per slot**: at most one batch is chosen (accepted by a majority in one
//!   ballot) for any slot; one ballot proposes one batch per slot.
//! - **Validity**: every command in a proposed batch was sent by a client.
//! - **Replicas learn only chosen batches**, so every replica applies the same sequence, and
//!   the client histories are linearizable (checked at the end of every run).
//!
//! ## Deliberately left out
//!
//! Leader leases (local reads at the leader need a clock bound; reads go through the log
//! instead), membership changes (PMMC's configuration commands: `Admin` requests are answered
//! `Rejected`), leadership transfer, pre-vote-style protection against a node that rejoins with
//! a high ballot, and chunked snapshot transfer.
//!
//! ## References
//!
//! Lamport, "Paxos Made Simple" (2001) §3; van Renesse & Altinbuken, "Paxos Made Moderately
//! Complex" (ACM Computing Surveys, 2015); Chandra, Griesemer & Redstone, "Paxos Made Live"
//! (2007) on snapshots and catch-up in practice.

mod leader;
mod message;
mod replica;
pub mod safety;

#[cfg(test)]
mod tests;

pub use crate::paxos::Ballot;
pub use message::{Batch, Message, PValue, Record, Slot, Snapshot};
pub use safety::MultiPaxosSafety;

use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use quorate_core::quorum::majority;
use quorate_core::{
    ClientError, ClientId, Command, Effects, Input, KvStore, NodeId, NodeStatus, Output, Protocol,
    Reply, Request, Role, Time, TimerRange,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Deliberately broken variants, switched on only with the `bugs` feature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// An acceptor forgets its promise when it restarts (it persisted its votes, but not what
    /// it promised): it then takes a deposed leader's Accepts, even below its own votes, and a
    /// second batch can be chosen in a slot.
    AcceptorForgetsPromise,
    /// A new leader ignores the votes reported in promises and fills every slot it takes over
    /// with a no-op, overwriting batches that may have been chosen.
    LeaderIgnoresAccepted,
}

/// Tunables. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct MultiPaxosConfig {
    /// A node starts an election after hearing no leader for a time drawn from this range.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How often the leader sends Commit heartbeats and retransmits undecided Accepts.
    pub heartbeat_interval: Duration,
    /// Client commands per slot, at most.
    pub batch_max: usize,
    /// Slots the leader has proposed and not yet seen decided, at most (beyond those it
    /// takes over when elected). Commands arriving while the pipeline is full wait and are
    /// batched together.
    pub pipeline_max: usize,
    /// Client commands waiting for a slot, at most; more are refused.
    pub pending_max: usize,
    /// Decided batches per `Decided` message, at most.
    pub catchup_max: usize,
    /// Applied slots beyond the last snapshot that trigger a new snapshot.
    pub snapshot_threshold: u64,
    /// Client sessions remembered by the state machine.
    pub sessions_max: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for MultiPaxosConfig {
    fn default() -> Self {
        MultiPaxosConfig {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            batch_max: 64,
            pipeline_max: 8,
            pending_max: 4096,
            catchup_max: 64,
            snapshot_threshold: 1024,
            sessions_max: SESSIONS_MAX_DEFAULT,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl MultiPaxosConfig {
    /// Checks that the tunables make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.election_timeout_min > self.election_timeout_max {
            return Err("election_timeout_min exceeds election_timeout_max".into());
        }
        if self.heartbeat_interval >= self.election_timeout_min {
            return Err("heartbeat_interval must be below election_timeout_min".into());
        }
        let counts = [
            self.batch_max,
            self.pipeline_max,
            self.pending_max,
            self.catchup_max,
            self.sessions_max,
        ];
        if counts.contains(&0) || self.snapshot_threshold == 0 {
            return Err(
                "batch, pipeline, pending, catch-up, snapshot and session bounds must \
                        be positive"
                    .into(),
            );
        }
        Ok(())
    }

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

/// Multi-Paxos's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// Followers and candidates: start an election.
    Election,
    /// The leader: heartbeat and retransmission.
    Heartbeat,
}

/// A slot the leader proposed and has not seen decided.
#[derive(Clone, Debug)]
struct Proposal {
    batch: Batch,
    digest: u64,
    /// Acceptors that voted for it in the leader's ballot.
    votes: BTreeSet<NodeId>,
}

/// What a leader keeps.
#[derive(Clone, Debug)]
struct Leadership {
    ballot: Ballot,
    /// The next slot to propose a new batch in.
    next_slot: Slot,
    proposals: BTreeMap<Slot, Proposal>,
    /// Client commands not yet in a slot.
    pending: VecDeque<Command>,
    /// Clients whose command this leader took and has not answered: `seq` per client.
    waiting: BTreeMap<ClientId, u64>,
}

#[derive(Clone, Debug)]
enum RoleState {
    Follower,
    Candidate {
        ballot: Ballot,
        promises: BTreeSet<NodeId>,
        /// The highest-ballot vote reported for each slot above the applied prefix.
        reported: BTreeMap<Slot, (Ballot, Batch)>,
    },
    Leader(Box<Leadership>),
}

/// One Multi-Paxos node.
#[derive(Clone, Debug)]
pub struct MultiPaxos {
    id: NodeId,
    /// Every member, this node included, in id order.
    members: Vec<NodeId>,
    config: MultiPaxosConfig,
    started: bool,

    // Durable (see `Record`).
    /// The highest round this node used for a ballot of its own.
    round: u64,
    promised: Ballot,
    /// This acceptor's votes in slots above the snapshot.
    accepted: BTreeMap<Slot, (Ballot, Batch)>,
    snapshot: Arc<Snapshot>,

    // Volatile.
    round_seen: u64,
    role: RoleState,
    /// The node this one believes leads (for redirects and catch-up).
    leader: Option<NodeId>,
    /// Decided batches above the snapshot: applied ones (kept for catch-up) and any decided
    /// beyond a gap.
    log: BTreeMap<Slot, Batch>,
    /// Every slot up to here is decided and applied.
    applied: Slot,
    kv: KvStore,
}

impl MultiPaxos {
    /// A node `id` of the cluster `members` (which must include `id`). It does nothing until
    /// it receives [`Input::Start`].
    pub fn new(id: NodeId, members: &[NodeId], config: MultiPaxosConfig) -> MultiPaxos {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        assert!(members.contains(&id), "a node must be one of the members");
        config.validate().expect("invalid MultiPaxosConfig");
        let snapshot = Arc::new(Snapshot::empty(config.sessions_max));
        MultiPaxos {
            id,
            members,
            kv: snapshot.state.clone(),
            snapshot,
            config,
            started: false,
            round: 0,
            promised: Ballot::ZERO,
            accepted: BTreeMap::new(),
            round_seen: 0,
            role: RoleState::Follower,
            leader: None,
            log: BTreeMap::new(),
            applied: 0,
        }
    }

    /// The key-value store as applied on this node: the state at the applied slot (`status().applied_index`): every slot up to it is chosen. What a backup
    /// (`quorate snapshot save`) copies.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    /// The ballot this node leads or campaigns with, if any.
    pub fn ballot(&self) -> Option<Ballot> {
        match &self.role {
            RoleState::Follower => None,
            RoleState::Candidate { ballot, .. } => Some(*ballot),
            RoleState::Leader(leadership) => Some(leadership.ballot),
        }
    }

    /// The highest ballot this node's acceptor promised.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// This acceptor's vote in `slot`, if it holds one.
    pub fn vote(&self, slot: Slot) -> Option<(Ballot, &Batch)> {
        self.accepted.get(&slot).map(|(b, batch)| (*b, batch))
    }

    /// The decided batch of `slot`, if this node holds it (not compacted).
    pub fn decided(&self, slot: Slot) -> Option<&Batch> {
        self.log.get(&slot)
    }

    /// Every slot up to this one is decided and applied here.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The last slot the snapshot covers.
    pub fn snapshot_slot(&self) -> Slot {
        self.snapshot.last_slot
    }

    /// The replicated state machine as this node applied it.
    pub fn state_machine(&self) -> &KvStore {
        &self.kv
    }

    fn quorum(&self) -> usize {
        majority(self.members.len())
    }

    fn observe(&mut self, ballot: Ballot) {
        self.round_seen = self.round_seen.max(ballot.round);
    }

    fn election_timeout(&self) -> TimerRange {
        TimerRange {
            min: self.config.election_timeout_min,
            max: self.config.election_timeout_max,
        }
    }

    fn send_all(&self, msg: Message, out: &mut Effects<Self>) {
        for member in &self.members {
            out.send(*member, msg.clone());
        }
    }

    // ---------------------------------------------------------------------------------------
    // Start-up and recovery.

    fn on_start(&mut self, recovered: Vec<Record>, out: &mut Effects<Self>) {
        assert!(!self.started, "Start delivered twice");
        self.started = true;
        let forget = self.config.has_bug(Bug::AcceptorForgetsPromise);
        for record in recovered {
            match record {
                Record::Round(round) => self.round = self.round.max(round),
                Record::Promise(ballot) if !forget => self.promised = self.promised.max(ballot),
                Record::Promise(_) => {}
                Record::Accept {
                    slot,
                    ballot,
                    batch,
                } => {
                    if !forget {
                        self.promised = self.promised.max(ballot);
                    }
                    self.accepted.insert(slot, (ballot, batch));
                }
                Record::Checkpoint {
                    round,
                    promised,
                    snapshot,
                    accepted,
                } => {
                    self.round = round;
                    self.promised = if forget { Ballot::ZERO } else { promised };
                    self.snapshot = snapshot;
                    self.accepted.clear();
                    for (slot, ballot, batch) in accepted {
                        if !forget {
                            self.promised = self.promised.max(ballot);
                        }
                        self.accepted.insert(slot, (ballot, batch));
                    }
                }
            }
        }
        let compacted = self.snapshot.last_slot;
        self.accepted.retain(|slot, _| *slot > compacted);
        self.kv = self.snapshot.state.clone();
        self.applied = compacted;
        self.round_seen = self.promised.round;
        out.set_timer(Timer::Election, self.election_timeout());
    }

    // ---------------------------------------------------------------------------------------
    // Roles (step 1).

    /// Becomes a follower of `leader` (if known); a deposed leader answers its waiting clients
    /// `Indeterminate`: their commands may still be decided, in this ballot or a later one.
    fn become_follower(&mut self, leader: Option<NodeId>, out: &mut Effects<Self>) {
        if let RoleState::Leader(leadership) = &self.role {
            for (client, seq) in &leadership.waiting {
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

    /// Steps down if this node leads or campaigns with a ballot below `ballot`.
    fn yield_to(&mut self, ballot: Ballot, out: &mut Effects<Self>) {
        if self.ballot().is_some_and(|mine| mine < ballot) {
            self.become_follower(Some(ballot.node), out);
        }
    }

    /// Step 1 and 2: a fresh ballot, persisted, then Prepare for every slot not yet applied.
    fn start_election(&mut self, out: &mut Effects<Self>) {
        self.become_follower(None, out);
        self.round = self.round.max(self.round_seen) + 1;
        out.persist(Record::Round(self.round));
        let ballot = Ballot::new(self.round, self.id);
        self.role = RoleState::Candidate {
            ballot,
            promises: BTreeSet::new(),
            reported: BTreeMap::new(),
        };
        let prepare = Message::Prepare {
            ballot,
            from_slot: self.applied + 1,
        };
        self.send_all(prepare, out);
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Effects<Self>) {
        match timer {
            Timer::Election if !self.is_leader() => self.start_election(out),
            Timer::Heartbeat if self.is_leader() => self.heartbeat(out),
            Timer::Election | Timer::Heartbeat => {}
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if !self.members.contains(&from) {
            return; // Not a member of this cluster.
        }
        if let Some(ballot) = msg.ballot() {
            self.observe(ballot);
        }
        match msg {
            Message::Prepare { ballot, from_slot } => self.on_prepare(from, ballot, from_slot, out),
            Message::Promise {
                ballot,
                accepted,
                snapshot,
            } => self.on_promise(from, ballot, accepted, snapshot, out),
            Message::Accept {
                ballot,
                slot,
                batch,
                chosen,
            } => self.on_accept(from, ballot, slot, batch, chosen, out),
            Message::Accepted {
                ballot,
                slot,
                digest,
            } => self.on_accepted(from, ballot, slot, digest, out),
            Message::Nack { ballot, promised } => {
                if self.ballot() == Some(ballot) && promised > ballot {
                    self.become_follower(Some(promised.node), out);
                }
            }
            Message::Commit { ballot, chosen } => self.on_commit(from, ballot, chosen, out),
            Message::CatchUp { from_slot } => self.on_catch_up(from, from_slot, out),
            Message::Decided { first, batches } => self.on_decided(first, batches, out),
            Message::Snapshot { snapshot } => self.on_snapshot(snapshot, out),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Clients (step 7).

    fn on_request(&mut self, request: Request, out: &mut Effects<Self>) {
        if request.op.needs_leader_clock() {
            return answer(
                &request,
                Err(quorate_core::kv::expiry::refusal("multipaxos")),
                out,
            );
        }
        if request.read == quorate_core::ReadMode::Local && request.op.is_read() {
            let output = self.kv.read(&request.op);
            return answer(&request, Ok(output), out);
        }
        let leader = self.leader;
        let RoleState::Leader(leadership) = &mut self.role else {
            return answer(&request, Err(ClientError::NotLeader { leader }), out);
        };
        if let Some(output) = self.kv.cached(request.client, request.seq) {
            return answer(&request, Ok(output.clone()), out);
        }
        if self.kv.already_applied(request.client, request.seq) {
            return; // A stale duplicate: its client has moved on.
        }
        if leadership.waiting.get(&request.client) == Some(&request.seq) {
            return; // Already taken; the answer comes when its slot is applied.
        }
        if leadership.pending.len() >= self.config.pending_max {
            let why = format!(
                "{} commands await a slot; retry later",
                self.config.pending_max
            );
            return answer(&request, Err(ClientError::Rejected(why)), out);
        }
        leadership.waiting.insert(request.client, request.seq);
        leadership.pending.push_back(request.command());
        self.propose_pending(out);
    }

    fn status_role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
}

fn answer(request: &Request, result: Result<Output, ClientError>, out: &mut Effects<MultiPaxos>) {
    out.reply(Reply {
        client: request.client,
        seq: request.seq,
        result,
    });
}

impl Protocol for MultiPaxos {
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
                let why = format!("{:?} is not supported by this Multi-Paxos", admin.command);
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
        let last_vote = self.accepted.last_key_value().map_or(0, |(slot, _)| *slot);
        NodeStatus {
            id: self.id,
            role: self.status_role(),
            // The highest round this node proposed in or promised: both durable, so it never
            // goes back, not even across a restart (the simulator checks that).
            term: self.round.max(self.promised.round),
            leader: self.leader,
            commit_index: self.applied,
            applied_index: self.applied,
            last_index: last_vote.max(self.applied),
        }
    }

    fn check_invariants(&self) {
        let compacted = self.snapshot.last_slot;
        assert!(
            self.applied >= compacted,
            "snapshot ahead of the state machine"
        );
        let first = |map: Option<Slot>| map.is_none_or(|slot| slot > compacted);
        assert!(
            first(self.accepted.keys().next().copied()),
            "a vote in a compacted slot"
        );
        assert!(
            first(self.log.keys().next().copied()),
            "a decision in a compacted slot"
        );
        assert!(
            self.round_seen >= self.promised.round,
            "promised an unseen round"
        );
        match &self.role {
            RoleState::Leader(leadership) => {
                assert_eq!(
                    leadership.ballot.node, self.id,
                    "a leader leads its own ballot"
                );
                assert_eq!(self.leader, Some(self.id), "a leader knows it leads");
                let lowest = leadership.proposals.keys().next().copied();
                assert!(
                    lowest.is_none_or(|s| s > self.applied),
                    "a proposal in a decided slot"
                );
                let highest = leadership.proposals.keys().next_back().copied();
                assert!(
                    highest.is_none_or(|s| s < leadership.next_slot),
                    "next_slot behind"
                );
                assert!(leadership.pending.len() <= self.config.pending_max);
            }
            RoleState::Candidate { ballot, .. } => {
                assert_eq!(
                    ballot.node, self.id,
                    "a candidate campaigns with its own ballot"
                );
                assert!(
                    ballot.round <= self.round,
                    "a ballot beyond the durable round"
                );
            }
            RoleState::Follower => {}
        }
    }
}
