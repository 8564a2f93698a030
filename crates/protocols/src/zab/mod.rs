//! # ZAB: ZooKeeper Atomic Broadcast, as ZooKeeper runs it (Zab 1.0)
//!
//! ZAB (Junqueira, Reed & Serafini, "Zab: High-performance broadcast for primary-backup
//! systems", DSN 2011; Medeiros, "ZooKeeper's atomic broadcast protocol: Theory and
//! practice", 2012) delivers a stream of state changes, *transactions*, from one primary to
//! every replica in the same order, and keeps that order across changes of primary. A
//! replicated key-value store fed from that stream is what ZooKeeper is.
//!
//! ## Fault model
//!
//! Crash-recovery servers with stable storage; no Byzantine faults. Servers talk over
//! **FIFO channels** (TCP): on one connection, messages arrive in the order they were sent,
//! and the only loss is everything after some point when the connection breaks. Messages of
//! an earlier connection never arrive on a later one. Safety never depends on timing;
//! liveness needs a quorum (a majority) that can talk for long enough.
//!
//! ## The algorithm, in numbered steps
//!
//! Every transaction carries a **zxid** `(epoch, counter)`: the epoch of the leader that
//! proposed it and a counter that leader increments. Each server persists its history, its
//! `acceptedEpoch` (the last epoch it promised to) and its `currentEpoch` (the epoch of the
//! last leader whose history it adopted). A server is LOOKING, FOLLOWING or LEADING.
//!
//! 0. **Fast leader election** (`election.rs`). A LOOKING server votes for itself and sends
//!    its vote `(currentEpoch, lastZxid, id)` to everyone, in election round `round`.
//!    Receiving a better vote of the same round, it adopts it and tells everyone; a higher
//!    round resets its tally. When a quorum votes like it and no better vote arrives within
//!    `finalize_wait`, it decides: LEADING if the vote names itself, FOLLOWING otherwise.
//!    A server that finds the others already FOLLOWING/LEADING joins them only if a quorum
//!    reports the same vote *and* the named leader itself reports LEADING (`checkLeader`).
//!    Either way a node only follows a leader that is actually leading: a FOLLOWING server
//!    answers FOLLOWERINFO by closing the connection; a LOOKING one that votes for itself
//!    keeps the connection waiting until it decides, then takes it up if it leads and
//!    closes it otherwise (a follower that decided first must not be turned away by the
//!    leader it elected); and a leader that does not answer within `init_limit` ticks is
//!    abandoned.
//! 1. **Discovery** (`leader.rs`, `follower.rs`). Each follower opens a connection with
//!    FOLLOWERINFO carrying its `acceptedEpoch`. Once a quorum (itself included) has
//!    connected, the prospective leader proposes `newEpoch = max(acceptedEpoch) + 1` in
//!    LEADERINFO. A follower refuses an epoch lower than its `acceptedEpoch` (and goes back
//!    to election); otherwise it persists `acceptedEpoch = newEpoch` and answers ACKEPOCH with
//!    its `currentEpoch` and last zxid. An ACKEPOCH counts towards the quorum only if it
//!    accepted the epoch just now, so no follower helps two leaders to the same epoch, and
//!    at most one leader establishes each epoch. Before that quorum is complete, the leader
//!    refuses a follower whose `(currentEpoch, lastZxid)` is ahead of its own: election
//!    should have picked that follower, and its extra transactions cannot be committed.
//! 2. **Synchronization.** With a quorum of ACKEPOCHs the leader adopts `currentEpoch =
//!    newEpoch`; its whole history is the epoch's *initial history*. It brings each follower
//!    to that history with one of
//!    - **DIFF**: the follower's last zxid is in the leader's history: send what follows it;
//!    - **TRUNC**: the follower has transactions the leader never had (uncommitted proposals
//!      of an old epoch): drop them back to the last zxid both hold, then DIFF;
//!    - **SNAP**: the follower is behind the leader's snapshot (or diverged before it): send
//!      the snapshot and the transactions after it;
//!
//!    followed by NEWLEADER. The follower persists what it received and `currentEpoch`, and
//!    only then acknowledges NEWLEADER. When a quorum (the leader included) has acknowledged,
//!    the initial history is committed, the leader starts serving and sends UPTODATE, after
//!    which each follower serves too. Followers that connect later are synchronized the same
//!    way, with whatever the leader has proposed since.
//! 3. **Broadcast.** The leader gives each new transaction the next zxid of its epoch,
//!    persists it and sends PROPOSAL; a follower appends it, persists it and only then ACKs.
//!    A proposal acknowledged by a quorum is committed, and COMMIT tells the followers; every
//!    step happens in zxid order, which FIFO channels preserve. When the counter would reach
//!    its all-ones value the leader steps down, forcing a new epoch (ZooKeeper's
//!    `XidRolloverException`).
//! 4. **Failure detection.** The leader pings every tick; a follower silent for `sync_limit`
//!    ticks is dropped, and a leader that no longer hears from a quorum steps down. A
//!    follower that hears nothing from its leader for `sync_limit` ticks, or does not finish
//!    synchronizing within `init_limit`, goes back to election.
//!
//! ## Reads, as ZooKeeper serves them (`serve.rs`)
//!
//! Writes may be sent to any serving server: a follower forwards them to the leader and
//! answers its client once *it* has applied the transaction, so its later reads see it.
//! - `ReadMode::Local`: answered from the contacted server's own state. Sequentially
//!   consistent: all servers apply one order, each server only moves forward, and a client
//!   that stays with one server sees its own order (ZooKeeper's per-client FIFO).
//! - `ReadMode::Sync`: ZooKeeper's `sync` then read. The server asks the leader, which
//!   answers once everything it had proposed is committed; FIFO channels deliver those
//!   COMMITs first. Not linearizable: a deposed leader that has not noticed can answer.
//! - `ReadMode::Linearizable`: goes through the log like a write (through the leader and a
//!   quorum), and is answered when applied. Stronger than ZooKeeper's `sync` + read.
//!
//! ## Channels, connections, and knowing that one broke
//!
//! The simulator delivers each link's messages in order and, when a link breaks (a partition
//! or a crash), drops what was in flight. It does not tell the endpoints, and neither would a
//! runtime that reconnects underneath. So each leader–follower connection numbers its
//! messages: a gap is a broken connection, which ends the follower's FOLLOWING (back to
//! election) and the leader's handling of that follower. Silence is caught by the ticks.
//!
//! ## How this differs from Raft
//!
//! Raft's leader may hold any log that passes the election check and repairs followers entry
//! by entry, committing old entries only through a new one of its own term (Figure 8). ZAB
//! elects the most up-to-date server outright, establishes a new epoch with an explicit
//! discovery round, and installs its *whole* history on a quorum before proposing anything:
//! the initial history is committed as one block, so no entry of an earlier epoch is ever
//! committed "by counting". Raft's log index has no ZAB equivalent: zxids are ordered but not
//! dense.
//!
//! ## How this differs from the seed's sketch
//!
//! The sketch lets the elected node increment its own epoch (two leaders could pick the same
//! one; here the epoch is agreed by a quorum in discovery), collapses synchronization into
//! "send the missing transactions" (no TRUNC for a follower with uncommitted proposals of an
//! old epoch, no SNAP, no NEWLEADER acknowledgement), counts acknowledgements that nothing
//! made durable, and never says when a follower may serve reads.
//!
//! ## Deliberately left out
//!
//! Observers, dynamic reconfiguration, ZooKeeper sessions with ephemeral nodes and watches,
//! and the `lastZxidSeen` check a ZooKeeper client makes when it moves to another server
//! (requests here carry no zxid; the simulator starts a new client process instead).

mod election;
mod follower;
mod history;
mod leader;
mod message;
pub mod safety;
mod serve;

#[cfg(test)]
mod tests;

pub use message::{
    LeaderMessage, LearnerMessage, Message, Notification, PeerState, Record, Snapshot, Txn, Vote,
    Zxid,
};
pub use safety::ZabSafety;

use election::Election;
use follower::Follower;
use history::History;
use leader::Leader;
use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use quorate_core::{
    ClientError, ClientId, Effects, Input, KvStore, NodeId, NodeStatus, Op, Protocol, Reply, Role,
    Time, TimerRange,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Deliberately broken variants, compiled only with the `bugs` feature; the simulator must
/// catch each of them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// A follower acknowledges on receipt and logs asynchronously (a batch at a time, or every
    /// tick): proposals, and the synchronized history behind its NEWLEADER acknowledgement, so
    /// a crash can lose transactions the leader counted as stored.
    AckBeforePersist,
    /// The leader skips synchronization: it sends NEWLEADER without DIFF, TRUNC or SNAP and
    /// assumes every follower already holds its history.
    SkipSynchronization,
    /// A follower answers a forwarded write as soon as the proposal arrives, before it is
    /// committed and applied there: the client's next plain read at that follower may not
    /// see its own write (ZooKeeper replies only after applying, which is what makes its
    /// plain reads sequentially consistent).
    ReplyBeforeApply,
    /// A LOOKING server refuses every FOLLOWERINFO at once, even while it votes for itself
    /// (the behaviour before session 43): a follower that finished its finalize wait first is
    /// turned away by the leader it elected, looks again, and may do so round after round
    /// with every node up. Liveness only.
    RefuseEarlyFollowers,
}

/// Tunables, named after ZooKeeper's where it has them. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct ZabConfig {
    /// ZooKeeper's `tickTime`: leaders ping and everyone checks liveness every tick.
    pub tick: Duration,
    /// ZooKeeper's `initLimit`, in ticks: discovery and synchronization must finish within it.
    pub init_limit: u32,
    /// ZooKeeper's `syncLimit`, in ticks: a peer silent this long is considered gone.
    pub sync_limit: u32,
    /// Election: resend notifications after this long without a decision, doubling up to
    /// `notify_timeout_max`.
    pub notify_timeout_min: Duration,
    pub notify_timeout_max: Duration,
    /// Election's `finalizeWait`: a quorum for a vote must stand this long before deciding.
    pub finalize_wait_min: Duration,
    pub finalize_wait_max: Duration,
    /// Delivered transactions beyond the snapshot that trigger a new snapshot (ZooKeeper's
    /// `snapCount`).
    pub snapshot_threshold: u64,
    /// Uncommitted proposals the leader accepts before refusing new requests.
    pub uncommitted_max: u64,
    /// Width of the zxid counter. ZooKeeper's is 32 bits; tests shrink it to force rollovers.
    pub zxid_counter_bits: u32,
    /// Client sessions remembered by the state machine.
    pub sessions_max: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for ZabConfig {
    fn default() -> Self {
        ZabConfig {
            tick: Duration::from_millis(50),
            init_limit: 10,
            sync_limit: 5,
            notify_timeout_min: Duration::from_millis(50),
            notify_timeout_max: Duration::from_millis(400),
            finalize_wait_min: Duration::from_millis(20),
            finalize_wait_max: Duration::from_millis(40),
            snapshot_threshold: 1024,
            uncommitted_max: 4096,
            zxid_counter_bits: 32,
            sessions_max: SESSIONS_MAX_DEFAULT,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl ZabConfig {
    /// Checks that the tunables make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.tick.is_zero() || self.init_limit == 0 || self.sync_limit == 0 {
            return Err("tick, init_limit and sync_limit must be positive".into());
        }
        if self.notify_timeout_min.is_zero()
            || self.notify_timeout_min > self.notify_timeout_max
            || self.finalize_wait_min > self.finalize_wait_max
        {
            return Err("election timeouts must be positive ranges".into());
        }
        if !(2..=32).contains(&self.zxid_counter_bits) {
            return Err("zxid_counter_bits must be between 2 and 32".into());
        }
        if self.snapshot_threshold == 0 || self.uncommitted_max == 0 || self.sessions_max == 0 {
            return Err(
                "snapshot_threshold, uncommitted_max and sessions_max must be positive".into(),
            );
        }
        Ok(())
    }

    /// The first counter a leader may not use: all ones (ZooKeeper's rollover point).
    fn counter_limit(&self) -> u64 {
        (1u64 << self.zxid_counter_bits) - 1
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

/// ZAB's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// Election: resend notifications.
    Notify,
    /// Election: a quorum stood for `finalize_wait`; decide.
    Finalize,
    /// Leading and following: ping, and check that the others are alive.
    Tick,
}

/// Counts of interesting events in this incarnation of a node, for the safety checker's
/// counters and for tests.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct ZabCounters {
    pub elections_decided: u64,
    pub epochs_established: u64,
    pub sync_diff: u64,
    pub sync_trunc: u64,
    pub sync_snap: u64,
    /// Followers refused because they were ahead of the prospective leader.
    pub followers_refused: u64,
    /// LEADERINFOs refused because they proposed an epoch below the accepted one.
    pub epochs_refused: u64,
    pub zxid_rollovers: u64,
    /// Connections found broken by a gap in their sequence numbers.
    pub connections_broken: u64,
    /// Connections given up because the other side fell silent.
    pub timeouts: u64,
    pub proposals: u64,
    pub reads_local: u64,
    pub reads_sync: u64,
}

impl ZabCounters {
    pub fn named(&self) -> [(&'static str, u64); 13] {
        [
            ("elections_decided", self.elections_decided),
            ("epochs_established", self.epochs_established),
            ("sync_diff", self.sync_diff),
            ("sync_trunc", self.sync_trunc),
            ("sync_snap", self.sync_snap),
            ("followers_refused", self.followers_refused),
            ("epochs_refused", self.epochs_refused),
            ("zxid_rollovers", self.zxid_rollovers),
            ("connections_broken", self.connections_broken),
            ("peer_timeouts", self.timeouts),
            ("proposals", self.proposals),
            ("reads_local", self.reads_local),
            ("reads_sync", self.reads_sync),
        ]
    }
}

/// What a server is doing.
#[derive(Clone, Debug)]
enum State {
    Looking(Election),
    Following(Follower),
    Leading(Box<Leader>),
}

/// A client request this server accepted and has not answered yet.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Waiting {
    /// Goes through the log: answered when this server applies the client's transaction.
    Log { seq: u64 },
    /// A `sync` then read: answered when the sync completes.
    Sync { seq: u64, op: Op },
}

/// One ZAB server.
#[derive(Clone, Debug)]
pub struct Zab {
    id: NodeId,
    /// Every voting member, this server included, in id order.
    voters: Vec<NodeId>,
    config: ZabConfig,
    started: bool,

    // Durable state: persisted before anything that depends on it is said.
    accepted_epoch: u64,
    current_epoch: u64,
    history: History,

    // Volatile state.
    /// The last delivered (committed and applied) zxid.
    committed: Zxid,
    kv: KvStore,
    state: State,
    /// Election round (ZooKeeper's `logicalclock`); kept across elections of one incarnation.
    round: u64,
    /// The vote this server decided on and the round it was decided in: what it tells
    /// LOOKING servers while following or leading.
    decided: (Vote, u64),
    /// Numbers this server's connections to leaders.
    next_conn: u64,
    /// Requests of the clients connected to this server.
    clients: BTreeMap<ClientId, Waiting>,
    counters: ZabCounters,
}

impl Zab {
    /// A server `id` of the ensemble `voters` (which must include `id`). It does nothing until
    /// it receives [`Input::Start`].
    pub fn new(id: NodeId, voters: &[NodeId], config: ZabConfig) -> Zab {
        let mut voters = voters.to_vec();
        voters.sort();
        voters.dedup();
        assert!(voters.contains(&id), "a server must be one of the voters");
        config.validate().expect("invalid ZabConfig");
        let snapshot = Arc::new(Snapshot::empty(config.sessions_max));
        let own = Vote {
            leader: id,
            zxid: Zxid::ZERO,
            epoch: 0,
        };
        Zab {
            id,
            voters,
            kv: snapshot.state.clone(),
            history: History::new(snapshot, Vec::new()),
            config,
            started: false,
            accepted_epoch: 0,
            current_epoch: 0,
            committed: Zxid::ZERO,
            state: State::Looking(Election::new(own, Duration::ZERO)),
            round: 0,
            decided: (own, 0),
            next_conn: 0,
            clients: BTreeMap::new(),
            counters: ZabCounters::default(),
        }
    }

    /// The key-value store as applied on this node: the state at the committed zxid (`status().applied_index`). What a backup
    /// (`quorate snapshot save`) copies.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn accepted_epoch(&self) -> u64 {
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> u64 {
        self.current_epoch
    }

    /// The last delivered zxid.
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    pub fn last_zxid(&self) -> Zxid {
        self.history.last_zxid()
    }

    /// The snapshot the history starts from.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        self.history.snapshot()
    }

    /// The transactions after the snapshot, in zxid order.
    pub fn txns(&self) -> &[Txn] {
        self.history.txns()
    }

    /// The replicated state machine as this server has applied it.
    pub fn state_machine(&self) -> &KvStore {
        &self.kv
    }

    pub fn counters(&self) -> &ZabCounters {
        &self.counters
    }

    pub fn peer_state(&self) -> PeerState {
        match self.state {
            State::Looking(_) => PeerState::Looking,
            State::Following(_) => PeerState::Following,
            State::Leading(_) => PeerState::Leading,
        }
    }

    /// The epoch this server leads, once a quorum acknowledged it (synchronization or
    /// broadcast phase), and the last zxid of the epoch's initial history.
    pub fn established(&self) -> Option<(u64, Zxid)> {
        match &self.state {
            State::Leading(leader) => leader.established(),
            _ => None,
        }
    }

    /// The epoch this server leads as primary (broadcast phase: its initial history is
    /// delivered and it may propose), and the last zxid of that initial history.
    pub fn primary(&self) -> Option<(u64, Zxid)> {
        match &self.state {
            State::Leading(leader) if leader.is_broadcasting() => leader.established(),
            _ => None,
        }
    }

    /// True while this server answers clients: a leader or follower in the broadcast phase.
    pub fn is_serving(&self) -> bool {
        match &self.state {
            State::Leading(leader) => leader.is_broadcasting(),
            State::Following(follower) => follower.is_broadcasting(),
            State::Looking(_) => false,
        }
    }

    /// The leader this server follows or is, once it knows one.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.state {
            State::Leading(_) => Some(self.id),
            State::Following(follower) if follower.is_broadcasting() => Some(follower.leader),
            _ => None,
        }
    }

    fn quorum(&self) -> usize {
        quorate_core::quorum::majority(self.voters.len())
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.voters.iter().copied().filter(move |id| *id != me)
    }

    fn tick(&self) -> TimerRange {
        TimerRange::fixed(self.config.tick)
    }

    fn sync_timeout(&self) -> Duration {
        self.config.tick * self.config.sync_limit
    }

    fn init_timeout(&self) -> Duration {
        self.config.tick * self.config.init_limit
    }

    // ---------------------------------------------------------------------------------------
    // Start-up and recovery.

    fn on_start(&mut self, now: Time, recovered: Vec<Record>, out: &mut Effects<Self>) {
        assert!(!self.started, "Start delivered twice");
        self.started = true;
        for record in recovered {
            self.recover(record);
        }
        // Only the snapshot is known to be delivered; the transactions after it may be
        // uncommitted proposals, and wait for a leader to say which are committed.
        let snapshot = self.history.snapshot().clone();
        self.kv = snapshot.state.clone();
        self.committed = snapshot.last_zxid;
        self.start_election(now, out);
    }

    fn recover(&mut self, record: Record) {
        match record {
            Record::AcceptedEpoch(epoch) => self.accepted_epoch = epoch,
            Record::CurrentEpoch(epoch) => self.current_epoch = epoch,
            Record::Txns(txns) => {
                for txn in txns {
                    self.history.append(txn);
                }
            }
            Record::Truncate { after } => self.history.truncate_after(after),
            Record::Checkpoint {
                accepted_epoch,
                current_epoch,
                snapshot,
                txns,
            } => {
                self.accepted_epoch = accepted_epoch;
                self.current_epoch = current_epoch;
                self.history = History::new(snapshot, txns);
            }
        }
    }

    fn persist_checkpoint(&mut self, out: &mut Effects<Self>) {
        if let State::Following(follower) = &mut self.state {
            follower.unpersisted.clear(); // `Bug::AckBeforePersist`: the checkpoint holds them.
        }
        out.persist(Record::Checkpoint {
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            snapshot: self.history.snapshot().clone(),
            txns: self.history.txns().to_vec(),
        });
    }

    // ---------------------------------------------------------------------------------------
    // Leaving a role.

    /// Stops following or leading (closing the connections) and starts an election.
    fn become_looking(&mut self, now: Time, out: &mut Effects<Self>) {
        match &mut self.state {
            State::Leading(leader) => {
                leader.close_all(out);
                out.cancel_timer(Timer::Tick);
            }
            State::Following(follower) => {
                follower.send(out, LearnerMessage::Close);
                follower.flush(out); // Empty unless `Bug::AckBeforePersist`.
                out.cancel_timer(Timer::Tick);
            }
            State::Looking(_) => {}
        }
        self.fail_waiting_clients(out);
        self.start_election(now, out);
    }

    /// Answers every client request in progress: it may or may not take effect.
    fn fail_waiting_clients(&mut self, out: &mut Effects<Self>) {
        for (client, waiting) in std::mem::take(&mut self.clients) {
            let seq = match waiting {
                Waiting::Log { seq } | Waiting::Sync { seq, .. } => seq,
            };
            out.reply(Reply {
                client,
                seq,
                result: Err(ClientError::Indeterminate { leader: None }),
            });
        }
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if from == self.id {
            if let Message::SelfAck { epoch, zxid } = msg {
                self.on_self_ack(epoch, zxid, out);
            }
            return;
        }
        if !self.voters.contains(&from) {
            return; // Not a member of this ensemble.
        }
        match msg {
            Message::Notification(notification) => {
                self.on_notification(now, from, notification, out)
            }
            Message::ToLeader { conn, seq, msg } => {
                self.on_learner_message(now, from, conn, seq, msg, out)
            }
            Message::ToLearner { conn, seq, msg } => {
                self.on_leader_message(now, from, conn, seq, msg, out)
            }
            Message::SelfAck { .. } => {} // Only meaningful from ourselves.
        }
    }

    fn on_timer(&mut self, now: Time, timer: Timer, out: &mut Effects<Self>) {
        match timer {
            Timer::Notify => self.on_notify_timeout(out),
            Timer::Finalize => self.on_finalize(now, out),
            Timer::Tick => match self.state {
                State::Leading(_) => self.leader_tick(now, out),
                State::Following(_) => self.follower_tick(now, out),
                State::Looking(_) => {}
            },
        }
    }
}

impl Protocol for Zab {
    type Message = Message;
    type Record = Record;
    type Timer = Timer;

    /// ZAB's leader–follower protocol is correct only over FIFO channels.
    const FIFO_CHANNELS: bool = true;

    fn step(&mut self, now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        if let Input::Start { recovered } = input {
            return self.on_start(now, recovered, out);
        }
        assert!(self.started, "input before Start");
        match input {
            Input::Start { .. } => unreachable!("handled above"),
            Input::Request(request) => self.on_request(now, request, out),
            Input::Admin(admin) => {
                let why = format!(
                    "{:?} is not supported by ZAB (no dynamic reconfiguration)",
                    admin.command
                );
                out.reply(Reply {
                    client: admin.client,
                    seq: admin.seq,
                    result: Err(ClientError::Rejected(why)),
                });
            }
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
            Input::Timer(timer) => self.on_timer(now, timer, out),
        }
    }

    fn status(&self) -> NodeStatus {
        let role = match self.state {
            State::Looking(_) => Role::Candidate,
            State::Following(_) => Role::Follower,
            State::Leading(_) => Role::Leader,
        };
        NodeStatus {
            id: self.id,
            role,
            term: self.accepted_epoch,
            leader: self.leader(),
            commit_index: self.committed.as_u64(),
            applied_index: self.committed.as_u64(),
            last_index: self.history.last_zxid().as_u64(),
        }
    }

    fn check_invariants(&self) {
        assert!(
            self.current_epoch <= self.accepted_epoch,
            "currentEpoch above acceptedEpoch"
        );
        assert!(
            self.committed <= self.history.last_zxid(),
            "delivered beyond the history"
        );
        assert!(
            self.committed >= self.history.snapshot().last_zxid,
            "snapshot ahead of the state machine"
        );
        assert!(
            self.history.last_zxid().epoch <= self.accepted_epoch,
            "a transaction of an epoch this server never accepted"
        );
        assert!(
            self.clients.len() <= self.config.sessions_max,
            "waiting clients over their bound"
        );
        match &self.state {
            State::Leading(leader) => leader.check_invariants(self),
            State::Following(follower) => follower.check_invariants(self),
            State::Looking(election) => election.check_invariants(self),
        }
    }
}
