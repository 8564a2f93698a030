//! # Dynamo-style quorum replication, with ABD for linearizable registers
//!
//! A leaderless store: every key lives on `N` replicas (its preference list on a
//! [consistent-hashing ring](crate::ring)), any node coordinates any request, and a request
//! succeeds once `R` replicas answered a read or `W` acknowledged a write (DeCandia et al.,
//! "Dynamo: Amazon's Highly Available Key-value Store", SOSP 2007). When `R + W > N`, every read
//! quorum meets every write quorum, so a read sees at least one replica with the latest
//! completed write.
//!
//! ## Why that is not enough, and what ABD adds
//!
//! Quorum intersection alone does not make reads linearizable. A write in progress may have
//! reached one replica: a reader whose quorum includes it returns the new value, and a *later*
//! reader whose quorum misses it returns the old one (a new/old inversion). Attiya, Bar-Noy and
//! Dolev ("Sharing Memory Robustly in Message-Passing Systems", JACM 1995) fix this with two
//! phases per operation, which is what quorate's linearizable mode does:
//!
//! 1. **Read phase** (reads and writes): query the `N` replicas, wait for `R` answers, take the
//!    highest [`Version`].
//! 2. A **write** takes the version `(counter + 1, coordinator id)`, persists that assignment,
//!    and stores it on the replicas; it completes after `W` acknowledgements. The coordinator's
//!    id breaks ties, so concurrent writers never produce one version with two values (the
//!    seed's `latest + 1` does).
//! 3. A **read** writes the highest version it saw back to the replicas and answers only after
//!    `W` of them hold it (skipped when `W` of the answers already carried it). Every later read
//!    phase then sees that version or a newer one: no inversion.
//! 4. A replica keeps a version only if it is newer than its own, persists it, and only then
//!    acknowledges (the driver's persist barrier enforces the order).
//!
//! Without write-back (`write_back: false`) reads are *regular*, not linearizable: the
//! simulator finds inversions (see `crates/sim/tests/sim/quorum_simulation.rs`).
//!
//! ## Retries and coordinators
//!
//! A client whose write timed out retries it *at the same coordinator* (the node it first
//! contacted), with the same session and sequence number. The coordinator remembers, per client,
//! the version it assigned to the client's latest write (persisted before the write phase), and
//! a retry stores that same version again. A retry at a different coordinator would assign a
//! second version to one write, which a reader could observe on both sides of another write;
//! so the simulated clients keep a write's retries at one node and give up (outcome unknown)
//! when that node does not answer. Reads are idempotent and may be retried anywhere.
//!
//! ## Repairing replicas
//!
//! - **Read repair**: a read that saw stale replicas stores the newest version on them (in
//!   linearizable mode the write-back does it; otherwise it is sent without waiting, unless
//!   `read_repair` is off). Read repair narrows the window of new/old inversions without
//!   closing it: only waiting for the write-back does.
//! - **Anti-entropy**: every node periodically compares a [Merkle tree](crate::merkle) of the
//!   keys it shares with one peer (round-robin) and exchanges the entries that differ, so that
//!   replicas converge even for keys nobody reads.
//! - **Sloppy quorum with hinted handoff** (`sloppy: true`, Dynamo §4.6): when home replicas do
//!   not answer, the coordinator also asks the next nodes on the ring (stand-ins), which store
//!   the write as a *hint* for the home replica, count towards `W`, and hand the write back
//!   when the home replica answers again. This keeps writes available during failures, but a
//!   write quorum of stand-ins need not intersect a later read quorum of home replicas:
//!   **sloppy quorums are not linearizable** and can return stale values until handoff, which
//!   is why they are refused unless partial quorums are explicitly allowed.
//!
//! ## Quorum sizes
//!
//! `N`, `R`, `W` are set per cluster ([`QuorumConfig`], with the seed's presets for `N = 5`:
//! strong `R=3 W=3`, read-optimized `R=2 W=4`, write-optimized `R=4 W=2`) and may be overridden
//! per request. `R + W ≤ N` is refused with an error unless `allow_partial` is set, in which
//! case reads may be stale; the simulator measures how often. Not reaching a quorum in time is
//! answered [`ClientError::Unavailable`], never a silent success.
//!
//! ## Fault model
//!
//! Crash-recovery nodes with stable storage, an asynchronous network that loses, duplicates,
//! delays and reorders messages and partitions nodes. Safety (linearizability with `R + W > N`
//! and write-back) never depends on timing.
//!
//! ## Deliberately left out
//!
//! Membership changes (the ring is fixed at start), APPEND and CAS (read-modify-write needs
//! consensus: a quorum register offers only read and write; use Raft), tombstone collection
//! (deleted keys keep a tombstone version forever), incremental Merkle trees (they are rebuilt
//! per exchange), and per-key `N`. `Output::Existed` of a delete reports what the delete's read
//! phase saw, which a concurrent write can make stale.

mod coordinator;
mod message;
mod replica;
pub mod safety;

#[cfg(test)]
mod tests;

pub use message::{Assigned, Message, OpId, Record, Snapshot, Version, Versioned};
pub use safety::QuorumSafety;

use crate::ring::Ring;
use crate::session::SessionTable;
use coordinator::Pending;
use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use quorate_core::{
    ClientError, ClientId, Effects, Input, Key, NodeId, NodeStatus, Protocol, QuorumSizes, Reply,
    Role, Time, TimerRange,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Deliberately broken variants, switched on only with the `bugs` feature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// The seed's `version = latest + 1` with no writer id: concurrent writes collide.
    VersionWithoutWriter,
    /// Replicas acknowledge a store before persisting it: a crash loses acknowledged writes.
    AckBeforePersist,
}

/// The seed's named quorum configurations for five replicas.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Preset {
    /// `N=5 R=3 W=3`.
    Strong,
    /// `N=5 R=2 W=4`: cheap reads, expensive writes.
    ReadOptimized,
    /// `N=5 R=4 W=2`: cheap writes, expensive reads.
    WriteOptimized,
}

/// Tunables of the quorum store.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// Replicas per key.
    pub n: usize,
    /// Replicas that must answer a read (and a write's read phase).
    pub r: usize,
    /// Replicas that must acknowledge a write (and a read's write-back).
    pub w: usize,
    /// Points per node on the ring.
    pub vnodes: usize,
    /// Reads write back what they return before answering (ABD): linearizable.
    pub write_back: bool,
    /// Without write-back: a read that saw stale replicas repairs them after answering.
    pub read_repair: bool,
    /// Accept `R + W ≤ N` and sloppy quorums, which give up linearizability.
    pub allow_partial: bool,
    /// Count stand-ins' acknowledgements towards `W` when home replicas do not answer.
    pub sloppy: bool,
    /// How long a coordinator waits for a phase before asking again (and enlisting stand-ins).
    pub retry_interval: Duration,
    /// How long a coordinator tries before answering `Unavailable`.
    pub request_timeout: Duration,
    /// Time between two anti-entropy exchanges started by one node.
    pub anti_entropy_interval_min: Duration,
    pub anti_entropy_interval_max: Duration,
    /// Merkle tree depth: 16^depth leaves.
    pub merkle_depth: u32,
    /// Time between two hinted-handoff attempts.
    pub handoff_interval: Duration,
    /// Hinted writes a stand-in holds at most; beyond, it refuses more.
    pub hints_max: usize,
    /// Entries per handoff message, at most.
    pub handoff_batch_max: usize,
    /// Operations one coordinator runs at once, at most.
    pub inflight_max: usize,
    /// Clients whose latest write a coordinator remembers (least recently used are forgotten).
    pub sessions_max: usize,
    /// Records persisted between two checkpoints.
    pub checkpoint_every: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            n: 3,
            r: 2,
            w: 2,
            vnodes: 32,
            write_back: true,
            read_repair: true,
            allow_partial: false,
            sloppy: false,
            retry_interval: Duration::from_millis(40),
            request_timeout: Duration::from_millis(300),
            anti_entropy_interval_min: Duration::from_millis(100),
            anti_entropy_interval_max: Duration::from_millis(200),
            merkle_depth: 2,
            handoff_interval: Duration::from_millis(100),
            hints_max: 10_000,
            handoff_batch_max: 64,
            inflight_max: 256,
            sessions_max: SESSIONS_MAX_DEFAULT,
            checkpoint_every: 256,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl QuorumConfig {
    /// One of the seed's presets (`N = 5`).
    pub fn preset(preset: Preset) -> QuorumConfig {
        let (r, w) = match preset {
            Preset::Strong => (3, 3),
            Preset::ReadOptimized => (2, 4),
            Preset::WriteOptimized => (4, 2),
        };
        QuorumConfig {
            n: 5,
            r,
            w,
            ..QuorumConfig::default()
        }
    }

    /// Checks the configuration for a cluster of `nodes`, explaining what is wrong.
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if self.n == 0 || self.n > nodes {
            return Err(format!(
                "N = {} replicas per key needs 1 to {nodes} (the cluster's nodes)",
                self.n
            ));
        }
        self.validate_sizes(self.r, self.w)?;
        if self.sloppy && !self.allow_partial {
            return Err(
                "a sloppy quorum counts stand-ins that a later read quorum need not \
                        meet, so it is not linearizable; allow partial quorums to use it"
                    .into(),
            );
        }
        if self.vnodes == 0 || !(1..=crate::merkle::DEPTH_MAX).contains(&self.merkle_depth) {
            return Err("vnodes must be positive and merkle_depth between 1 and 4".into());
        }
        if self.anti_entropy_interval_min > self.anti_entropy_interval_max {
            return Err("anti_entropy_interval_min exceeds anti_entropy_interval_max".into());
        }
        let positive = [
            self.inflight_max,
            self.sessions_max,
            self.checkpoint_every,
            self.hints_max,
            self.handoff_batch_max,
        ];
        if positive.contains(&0) || self.retry_interval.is_zero() {
            return Err("bounds and intervals must be positive".into());
        }
        Ok(())
    }

    /// Checks read and write quorum sizes against `N` (the cluster's, or a request's own).
    pub fn validate_sizes(&self, r: usize, w: usize) -> Result<(), String> {
        let n = self.n;
        if !(1..=n).contains(&r) || !(1..=n).contains(&w) {
            return Err(format!(
                "R = {r} and W = {w} must each be between 1 and N = {n}"
            ));
        }
        if r + w <= n && !self.allow_partial {
            return Err(format!(
                "R + W = {} is not more than N = {n}: a read quorum can miss the latest write \
                 (stale reads); allow partial quorums to run it anyway",
                r + w
            ));
        }
        Ok(())
    }

    /// True when histories must be linearizable: intersecting strict quorums and write-back.
    pub fn linearizable(&self) -> bool {
        self.r + self.w > self.n && self.write_back && !self.sloppy
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

/// The quorum store's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// An operation's phase waited `retry_interval`: ask again, or give up.
    Retry(u64),
    /// Start an anti-entropy exchange with the next peer.
    AntiEntropy,
    /// Hand hinted writes back to their home replicas.
    Handoff,
}

/// Events a node counts, for the simulator's summary (volatile: reset by a crash).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct QuorumStats {
    pub reads: u64,
    pub writes: u64,
    /// Reads that had to write back before answering.
    pub write_backs: u64,
    /// Reads answered in one round because `W` answers already held the newest version.
    pub one_round_reads: u64,
    /// Read-repair stores sent without waiting (regular mode).
    pub read_repairs: u64,
    /// Versions a replica took from an anti-entropy exchange.
    pub anti_entropy_repairs: u64,
    /// Hinted writes stored by this node as a stand-in.
    pub hints_stored: u64,
    /// Hinted writes a home replica took back from a stand-in.
    pub hints_handed_off: u64,
    /// Operations answered `Unavailable`.
    pub unavailable: u64,
}

/// One node of the quorum store: a replica of the keys the ring gives it, and a coordinator of
/// whatever clients ask it.
#[derive(Clone, Debug)]
pub struct Quorum {
    id: NodeId,
    /// Every node, in id order.
    members: Vec<NodeId>,
    ring: Ring,
    config: QuorumConfig,
    started: bool,
    incarnation: u64,

    // Replica state (durable).
    store: BTreeMap<Key, Versioned>,
    /// Writes held for unreachable home replicas, by home replica.
    hints: BTreeMap<NodeId, BTreeMap<Key, Versioned>>,

    // Coordinator state.
    /// Per client, its latest write's assigned version (durable, through `Assigned`).
    sessions: SessionTable<Assigned>,
    /// The highest version counter this node ever assigned (durable, through `Assigned`).
    last_counter: u64,
    next_op: u64,
    ops: BTreeMap<u64, Pending>,

    anti_entropy_peer: usize,
    records_since_checkpoint: usize,
    stats: QuorumStats,
}

impl Quorum {
    /// Node `id` of the cluster `members`; it does nothing until [`Input::Start`].
    ///
    /// # Panics
    /// If `id` is not a member or the configuration is invalid for the cluster.
    pub fn new(id: NodeId, members: &[NodeId], config: QuorumConfig) -> Quorum {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        assert!(members.contains(&id), "a node must be a member");
        if let Err(why) = config.validate(members.len()) {
            panic!("invalid QuorumConfig: {why}");
        }
        Quorum {
            id,
            sessions: SessionTable::new(config.sessions_max),
            ring: Ring::new(&members, config.vnodes),
            members,
            config,
            started: false,
            incarnation: 0,
            store: BTreeMap::new(),
            hints: BTreeMap::new(),
            last_counter: 0,
            next_op: 0,
            ops: BTreeMap::new(),
            anti_entropy_peer: 0,
            records_since_checkpoint: 0,
            stats: QuorumStats::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn config(&self) -> &QuorumConfig {
        &self.config
    }

    /// This replica's copy of `key` (absent when it never held one).
    pub fn stored(&self, key: &[u8]) -> Versioned {
        self.store
            .get(key)
            .cloned()
            .unwrap_or_else(Versioned::absent)
    }

    /// The key's home replicas: its preference list.
    pub fn preference_list(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring.preference_list(key, self.config.n)
    }

    pub fn is_home(&self, key: &[u8]) -> bool {
        self.preference_list(key).contains(&self.id)
    }

    /// Every key this replica holds, with its version.
    pub fn store(&self) -> impl Iterator<Item = (&Key, &Versioned)> {
        self.store.iter()
    }

    /// Every write held as a stand-in, whatever its home replica.
    pub fn hints(&self) -> impl Iterator<Item = (&Key, &Versioned)> {
        self.hints.values().flat_map(|held| held.iter())
    }

    pub fn hints_held(&self) -> usize {
        self.hints.values().map(BTreeMap::len).sum()
    }

    pub fn stats(&self) -> QuorumStats {
        self.stats
    }

    fn ring(&self) -> &Ring {
        &self.ring
    }

    // ---------------------------------------------------------------------------------------
    // Start-up, recovery and persistence.

    fn on_start(&mut self, recovered: Vec<Record>, out: &mut Effects<Self>) {
        assert!(!self.started, "Start delivered twice");
        self.started = true;
        for record in recovered {
            self.recover(record);
        }
        self.incarnation += 1;
        self.persist(Record::Incarnation(self.incarnation), out);
        out.set_timer(Timer::AntiEntropy, self.anti_entropy_interval());
        out.set_timer(
            Timer::Handoff,
            TimerRange::fixed(self.config.handoff_interval),
        );
    }

    fn recover(&mut self, record: Record) {
        match record {
            Record::Incarnation(n) => self.incarnation = self.incarnation.max(n),
            Record::Stored { key, stored } => {
                self.keep(key, stored);
            }
            Record::Hinted { home, key, stored } => {
                self.hints.entry(home).or_default().insert(key, stored);
            }
            Record::HandedOff { home, key, version } => self.forget_hint(home, &key, version),
            Record::Assigned { client, assigned } => {
                if assigned.stored.version.writer == self.id {
                    self.last_counter = self.last_counter.max(assigned.stored.version.counter);
                }
                self.sessions.insert(client, assigned.seq, assigned);
            }
            Record::Checkpoint(snapshot) => {
                let Snapshot {
                    incarnation,
                    store,
                    hints,
                    sessions,
                    last_counter,
                } = *snapshot;
                self.incarnation = incarnation;
                self.store = store;
                self.hints = hints;
                self.sessions = SessionTable::new(self.config.sessions_max);
                for (client, assigned) in sessions {
                    self.sessions.insert(client, assigned.seq, assigned);
                }
                self.last_counter = last_counter;
            }
        }
    }

    /// Persists `record`, and every `checkpoint_every` records a checkpoint of everything.
    /// The state must already include what `record` says: the checkpoint replaces it.
    fn persist(&mut self, record: Record, out: &mut Effects<Self>) {
        out.persist(record);
        self.records_since_checkpoint += 1;
        if self.records_since_checkpoint >= self.config.checkpoint_every {
            self.records_since_checkpoint = 0;
            let sessions = self
                .sessions
                .iter()
                .map(|(client, _, assigned)| (client, assigned.clone()))
                .collect();
            out.persist(Record::Checkpoint(Box::new(Snapshot {
                incarnation: self.incarnation,
                store: self.store.clone(),
                hints: self.hints.clone(),
                sessions,
                last_counter: self.last_counter,
            })));
        }
    }

    /// Keeps `stored` as this replica's copy of `key` if it is newer; true if it was.
    fn keep(&mut self, key: Key, stored: Versioned) -> bool {
        let current = self.store.get(&key).map_or(Version::ZERO, |s| s.version);
        if stored.version > current {
            self.store.insert(key, stored);
            true
        } else {
            false
        }
    }

    fn forget_hint(&mut self, home: NodeId, key: &Key, version: Version) {
        if let Some(held) = self.hints.get_mut(&home) {
            if held.get(key).is_some_and(|h| h.version <= version) {
                held.remove(key);
            }
            if held.is_empty() {
                self.hints.remove(&home);
            }
        }
    }

    fn anti_entropy_interval(&self) -> TimerRange {
        TimerRange {
            min: self.config.anti_entropy_interval_min,
            max: self.config.anti_entropy_interval_max,
        }
    }

    fn answer(
        client: ClientId,
        seq: u64,
        result: Result<quorate_core::Output, ClientError>,
        out: &mut Effects<Self>,
    ) {
        out.reply(Reply {
            client,
            seq,
            result,
        });
    }

    fn on_timer(&mut self, now: Time, timer: Timer, out: &mut Effects<Self>) {
        match timer {
            Timer::Retry(op) => self.on_retry(now, op, out),
            Timer::AntiEntropy => {
                self.start_anti_entropy(out);
                out.set_timer(Timer::AntiEntropy, self.anti_entropy_interval());
            }
            Timer::Handoff => {
                self.hand_off(out);
                out.set_timer(
                    Timer::Handoff,
                    TimerRange::fixed(self.config.handoff_interval),
                );
            }
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if !self.members.contains(&from) {
            return; // Not a member of this cluster.
        }
        match msg {
            Message::Query { op, key } => self.on_query(from, op, key, out),
            Message::QueryReply { op, key, stored } => {
                self.on_query_reply(from, op, key, stored, out)
            }
            Message::Store {
                op,
                key,
                stored,
                hint,
            } => self.on_store(from, op, key, stored, hint, out),
            Message::StoreAck { op, key, version } => {
                self.on_store_ack(from, op, key, version, out)
            }
            Message::Handoff { entries } => self.on_handoff(from, entries, out),
            Message::HandoffAck { entries } => self.on_handoff_ack(from, entries, out),
            Message::MerkleNodes { level, nodes } => self.on_merkle_nodes(from, level, nodes, out),
            Message::MerkleLeaves {
                leaves,
                entries,
                reply,
            } => self.on_merkle_leaves(from, leaves, entries, reply, out),
        }
    }

    /// The quorum sizes a request asks for, checked against `N`.
    fn sizes(&self, asked: Option<QuorumSizes>) -> Result<(usize, usize), String> {
        match asked {
            None => Ok((self.config.r, self.config.w)),
            Some(QuorumSizes { r, w }) => {
                self.config.validate_sizes(r, w)?;
                Ok((r, w))
            }
        }
    }
}

impl Protocol for Quorum {
    type Message = Message;
    type Record = Record;
    type Timer = Timer;

    fn step(&mut self, now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        if let Input::Start { recovered } = input {
            return self.on_start(recovered, out);
        }
        assert!(self.started, "input before Start");
        match input {
            Input::Start { .. } => unreachable!("handled above"),
            Input::Request(request) => self.on_request(now, request, out),
            Input::Admin(admin) => {
                let why = format!(
                    "{:?}: the quorum store's ring is fixed at start",
                    admin.command
                );
                Self::answer(
                    admin.client,
                    admin.seq,
                    Err(ClientError::Rejected(why)),
                    out,
                );
            }
            Input::Message { from, msg } => self.on_message(from, msg, out),
            Input::Timer(timer) => self.on_timer(now, timer, out),
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.id,
            role: Role::Replica,
            term: self.incarnation,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            last_index: 0,
        }
    }

    fn check_invariants(&self) {
        assert!(
            self.ops.len() <= self.config.inflight_max,
            "inflight over its bound"
        );
        self.sessions.check_invariants();
        assert!(
            self.hints_held() <= self.config.hints_max,
            "hints over their bound"
        );
        for (key, stored) in &self.store {
            assert!(
                stored.version > Version::ZERO,
                "{key:?} stored at version zero"
            );
        }
        for pending in self.ops.values() {
            pending.check_invariants(self.id);
        }
    }
}
