//! # Multi-primary replication with conflict resolution
//!
//! Every node is a primary for every key: it accepts a write, makes it durable, answers the
//! client, and only then tells the other replicas (asynchronously). Writes stay available on
//! any node that is up, partitioned or not, and are fast (no round trip before the answer).
//! The price: two nodes can accept conflicting writes to one key, and the system must decide
//! what the key holds afterwards. The seed lists three ways; quorate implements each properly.
//!
//! ## Resolution, per cluster or per key
//!
//! - **Last-write-wins** ([`Resolution::Lww`]): the write with the highest timestamp holds.
//!   The seed stamps with `time.time()`, and a node whose clock runs behind then loses *every*
//!   write it makes until its clock catches up, silently, after acknowledging them. quorate
//!   stamps with a [hybrid logical clock](quorate_core::clock): a write made after a node heard
//!   of another write always has the larger stamp, and received clocks too far ahead are
//!   refused. LWW still discards one of two *concurrent* writes; the simulator counts the
//!   acknowledged writes each clock discards (HLC and the raw skewed wall clock, side by side),
//!   and `lww_clock: Wall` runs the seed's clock for comparison.
//! - **Dotted version vectors** ([`Resolution::VersionVectors`]): nothing is discarded.
//!   Concurrent writes are kept as *siblings* (Preguiça et al. 2012, see
//!   [`DvvSet`](quorate_core::clock::DvvSet)); a read returns them all with a causal context,
//!   and a write carrying that context replaces exactly the siblings the client saw. A write
//!   without context (a blind PUT) becomes one more sibling.
//! - **CRDTs** ([`quorate_core::crdt`]): counters, sets and registers whose merge is a join,
//!   addressed by `(key, kind)`. Always available, whatever the register resolution.
//!
//! ## The algorithm, in numbered steps
//!
//! 1. **Write.** A node that receives a write applies it to its own entry (a new LWW stamp, a
//!    new dot, a CRDT update), persists the entry and the client's session, and answers.
//! 2. **Replicate.** After the answer it sends the change to every other node: for a version-
//!    vector register the write's *delta* (its sibling and the dots it superseded, see
//!    [`DvvSet::delta`](quorate_core::clock::DvvSet::delta)), so a write costs the same however
//!    long the key's history; for an LWW register or a CRDT the entry's new state. Deltas and
//!    states are both join-semilattice values: any number of lost, duplicated or reordered
//!    messages is harmless, because a replica *merges* (joins) what it receives, and
//!    anti-entropy ships whole entries to repair what was lost.
//! 3. **Merge.** A receiver observes the sender's clock, joins the entry into its own, and
//!    persists the result if it changed.
//! 4. **Anti-entropy.** Every node periodically compares a [Merkle tree](crate::merkle) of all
//!    its entries with one peer (round-robin) and exchanges the entries that differ, which
//!    repairs whatever replication lost (partitions, crashes, dropped messages).
//! 5. **Read.** A node answers reads from its own state: eventual consistency, with no
//!    coordination. Once writes stop and anti-entropy has run, every replica holds the join of
//!    every write: they **converge**, and with version vectors or CRDTs no acknowledged write
//!    is lost (the simulator checks both).
//!
//! Retried writes: each node remembers per client its latest write and answer (persisted with
//! the write), so a client retrying at the same node gets the same answer and an increment is
//! applied once. A retry at another node is a second write, which is why the simulated clients
//! keep a write's retries at one node.
//!
//! ## Fault model
//!
//! Crash-recovery nodes with stable storage; a network that loses, duplicates, delays and
//! reorders messages and partitions nodes; clocks that are offset and drift (HLC bounds how
//! far a received clock may be ahead, `clock_ahead_max`). Safety needs no timing at all.
//!
//! ## Deliberately left out
//!
//! Pruning nodes from version vectors (a key's context keeps an entry per node that ever
//! wrote it), deltas for CRDTs (their whole states are shipped), APPEND and CAS (they need
//! consensus), and read-your-writes across nodes (a client that moves to another node may not
//! see its own write until replication reaches it).
//!
//! ## Bounded per-key state (issue 23)
//!
//! A version-vector key holds its live siblings (a dot and a value each) and one causal
//! context of every dot its replica has seen, stored as ranges per node: superseded writes
//! and deletions leave nothing behind but that context, which is a version vector once every
//! replica has seen every dot. A write's answer covers everything the replica has seen except
//! the siblings the writer has not, so a session's context stays as small as the siblings are
//! few. Blind writers still add a sibling each: at most `max_siblings` (default
//! [`MAX_SIBLINGS_DEFAULT`], Riak's); a write beyond is refused and counted
//! (`sibling_limit_refusals`), and a merge that leaves more is counted
//! (`sibling_limit_exceeded`). `bounded.rs` measures all of this over 10,000 writes.

mod message;
mod ops;
pub mod safety;
mod sync;

#[cfg(test)]
mod bounded;
#[cfg(test)]
mod tests;

pub use message::{ClientWrite, Entry, LwwOrigin, Message, Record, Slot, Snapshot};
pub use safety::MultiPrimarySafety;

use crate::session::SessionTable;
use quorate_core::clock::{Hlc, HlcStamp};
use quorate_core::digest::digest;
use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use quorate_core::{
    ClientError, ClientId, Effects, Input, Key, NodeId, NodeStatus, Output, Protocol, Reply, Role,
    Time, TimerRange,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Deliberately broken variants, switched on only with the `bugs` feature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// A write with a context replaces *every* sibling the replica holds, not just those the
    /// context covers: concurrent writes the client never saw are lost.
    ContextReplacesAll,
    /// Writes skip the session check, so a retried CRDT increment is applied twice.
    NoSessionCheck,
}

/// How a key's register resolves concurrent writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resolution {
    /// Last-write-wins on `lww_clock` stamps.
    Lww,
    /// Dotted version vectors: siblings with causal contexts.
    VersionVectors,
}

/// The clock that orders LWW writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LwwClock {
    /// Hybrid logical clocks.
    Hlc,
    /// The node's raw wall clock (`now`), as the seed does: for comparison only.
    Wall,
}

/// How the refusal of a write beyond `max_siblings` starts (drivers count these).
pub const SIBLING_LIMIT_REFUSAL: &str = "too many siblings";

/// The default of [`MultiPrimaryConfig::max_siblings`], Riak's.
pub const MAX_SIBLINGS_DEFAULT: usize = 100;

/// Tunables of multi-primary replication.
#[derive(Clone, Debug)]
pub struct MultiPrimaryConfig {
    /// The registers' resolution, unless a prefix rule says otherwise.
    pub resolution: Resolution,
    /// Per-key resolution: the first rule whose prefix starts the key applies.
    pub resolution_by_prefix: Vec<(Key, Resolution)>,
    pub lww_clock: LwwClock,
    /// Received clocks further ahead of the local clock than this are refused.
    pub clock_ahead_max: Duration,
    pub anti_entropy_interval_min: Duration,
    pub anti_entropy_interval_max: Duration,
    /// Merkle tree depth: 16^depth leaves.
    pub merkle_depth: u32,
    /// Entries per anti-entropy message, at most (the rest follow in later rounds).
    pub entries_per_message_max: usize,
    pub sessions_max: usize,
    /// Records persisted between two checkpoints.
    pub checkpoint_every: usize,
    /// Siblings one key may hold (Riak's `max_siblings`): a write that would leave more is
    /// refused. Merges are never refused; a merge that leaves more counts in
    /// `sibling_limit_exceeded`.
    pub max_siblings: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for MultiPrimaryConfig {
    fn default() -> Self {
        MultiPrimaryConfig {
            resolution: Resolution::VersionVectors,
            resolution_by_prefix: Vec::new(),
            lww_clock: LwwClock::Hlc,
            clock_ahead_max: Duration::from_secs(60),
            anti_entropy_interval_min: Duration::from_millis(50),
            anti_entropy_interval_max: Duration::from_millis(100),
            merkle_depth: 2,
            entries_per_message_max: 256,
            sessions_max: SESSIONS_MAX_DEFAULT,
            checkpoint_every: 256,
            max_siblings: MAX_SIBLINGS_DEFAULT,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl MultiPrimaryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=crate::merkle::DEPTH_MAX).contains(&self.merkle_depth) {
            return Err("merkle_depth must be between 1 and 4".into());
        }
        if self.anti_entropy_interval_min > self.anti_entropy_interval_max
            || self.anti_entropy_interval_min.is_zero()
        {
            return Err("anti-entropy intervals must be positive and ordered".into());
        }
        if self.sessions_max == 0
            || self.checkpoint_every == 0
            || self.entries_per_message_max == 0
            || self.max_siblings == 0
        {
            return Err(
                "sessions_max, checkpoint_every, entries_per_message_max and max_siblings \
                 must be positive"
                    .into(),
            );
        }
        Ok(())
    }

    /// The resolution of `key`'s register.
    pub fn resolution_of(&self, key: &[u8]) -> Resolution {
        self.resolution_by_prefix
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix))
            .map_or(self.resolution, |(_, resolution)| *resolution)
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

/// Multi-primary's one timer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    AntiEntropy,
}

/// Events a node counts (volatile: reset by a crash).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MultiPrimaryStats {
    pub writes: u64,
    /// Entries a replica changed by merging a replication message.
    pub replication_merges: u64,
    /// Entries a replica changed by merging an anti-entropy exchange.
    pub anti_entropy_repairs: u64,
    /// Messages refused because their clock was too far ahead.
    pub clock_refusals: u64,
    /// LWW writes that lost to a stamp already held, at the node that accepted them.
    pub lww_lost_on_arrival: u64,
    /// The most siblings one key held.
    pub siblings_max: u64,
    /// Writes refused because they would have left more than `max_siblings` siblings.
    pub sibling_limit_refusals: u64,
    /// Merges that left a key with more than `max_siblings` siblings (concurrent writes at
    /// several replicas, each within the limit).
    pub sibling_limit_exceeded: u64,
}

/// One multi-primary node.
#[derive(Clone, Debug)]
pub struct MultiPrimary {
    id: NodeId,
    members: Vec<NodeId>,
    config: MultiPrimaryConfig,
    started: bool,
    entries: BTreeMap<Slot, Entry>,
    /// Per entry, the digest its Merkle leaf takes, computed when the entry changes (every
    /// change is persisted) rather than for every entry at every anti-entropy step.
    digests: BTreeMap<Slot, u64>,
    /// The Merkle tree of `digests`, until an entry changes: anti-entropy runs every 50 to
    /// 100 ms and compares trees level by level, mostly with nothing new in between.
    tree: Option<crate::merkle::MerkleTree>,
    /// Per client, its latest write's `seq` and answer.
    sessions: SessionTable<Output>,
    hlc: Hlc,
    anti_entropy_peer: usize,
    records_since_checkpoint: usize,
    stats: MultiPrimaryStats,
}

impl MultiPrimary {
    /// Node `id` of the cluster `members`; it does nothing until [`Input::Start`].
    ///
    /// # Panics
    /// If `id` is not a member or the configuration is invalid.
    pub fn new(id: NodeId, members: &[NodeId], config: MultiPrimaryConfig) -> MultiPrimary {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        assert!(members.contains(&id), "a node must be a member");
        if let Err(why) = config.validate() {
            panic!("invalid MultiPrimaryConfig: {why}");
        }
        MultiPrimary {
            id,
            members,
            hlc: Hlc::new(config.clock_ahead_max.as_nanos() as u64),
            sessions: SessionTable::new(config.sessions_max),
            config,
            started: false,
            entries: BTreeMap::new(),
            digests: BTreeMap::new(),
            tree: None,
            anti_entropy_peer: 0,
            records_since_checkpoint: 0,
            stats: MultiPrimaryStats::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn config(&self) -> &MultiPrimaryConfig {
        &self.config
    }

    pub fn entry(&self, slot: &Slot) -> Option<&Entry> {
        self.entries.get(slot)
    }

    pub fn entries(&self) -> &BTreeMap<Slot, Entry> {
        &self.entries
    }

    pub fn stats(&self) -> MultiPrimaryStats {
        self.stats
    }

    pub fn clock(&self) -> HlcStamp {
        self.hlc.last()
    }

    // ---------------------------------------------------------------------------------------
    // Start-up, recovery and persistence.

    fn on_start(&mut self, recovered: Vec<Record>, out: &mut Effects<Self>) {
        assert!(!self.started, "Start delivered twice");
        self.started = true;
        for record in recovered {
            self.recover(record);
        }
        self.digests = self
            .entries
            .iter()
            .map(|(slot, entry)| (slot.clone(), digest(&(slot, entry))))
            .collect();
        self.tree = None;
        out.set_timer(Timer::AntiEntropy, self.anti_entropy_interval());
    }

    fn recover(&mut self, record: Record) {
        match record {
            Record::Applied { slot, entry, write } => {
                self.recover_clock(&entry);
                if let Some(write) = write {
                    if let Some((_, origin)) = write.lww {
                        self.hlc.recover(origin.hlc);
                    }
                    self.sessions.insert(write.client, write.seq, write.output);
                }
                self.entries.insert(slot, entry);
            }
            Record::Checkpoint(snapshot) => {
                let Snapshot {
                    entries,
                    sessions,
                    clock,
                } = snapshot;
                self.entries = entries;
                self.sessions = SessionTable::new(self.config.sessions_max);
                for (client, seq, output) in sessions {
                    self.sessions.insert(client, seq, output);
                }
                self.hlc.recover(clock);
            }
        }
    }

    /// The clock never goes below a stamp this node has stored: its writes must keep
    /// following what it has seen, across restarts.
    fn recover_clock(&mut self, entry: &Entry) {
        if let Entry::Lww(register) = entry {
            if let Some(stamp) = register.stamp() {
                self.hlc.recover(stamp.time);
            }
        }
    }

    /// Persists the new state of `slot`, and every `checkpoint_every` records a checkpoint.
    fn persist(&mut self, slot: Slot, write: Option<ClientWrite>, out: &mut Effects<Self>) {
        let entry = self.entries[&slot].clone();
        if let Entry::Siblings(set) = &entry {
            set.check_invariants();
        }
        self.digests.insert(slot.clone(), digest(&(&slot, &entry)));
        self.tree = None;
        let write = write.map(Box::new);
        out.persist(Record::Applied { slot, entry, write });
        self.records_since_checkpoint += 1;
        if self.records_since_checkpoint >= self.config.checkpoint_every {
            self.records_since_checkpoint = 0;
            let sessions = self
                .sessions
                .iter()
                .map(|(client, seq, output)| (client, seq, output.clone()))
                .collect();
            out.persist(Record::Checkpoint(Snapshot {
                entries: self.entries.clone(),
                sessions,
                clock: self.hlc.last(),
            }));
        }
    }

    fn anti_entropy_interval(&self) -> TimerRange {
        TimerRange {
            min: self.config.anti_entropy_interval_min,
            max: self.config.anti_entropy_interval_max,
        }
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.members.iter().copied().filter(move |n| *n != me)
    }

    fn answer(
        client: ClientId,
        seq: u64,
        result: Result<Output, ClientError>,
        out: &mut Effects<Self>,
    ) {
        out.reply(Reply {
            client,
            seq,
            result,
        });
    }

    fn note_siblings(&mut self, slot: &Slot) {
        if let Some(Entry::Siblings(set)) = self.entries.get(slot) {
            self.stats.siblings_max = self.stats.siblings_max.max(set.len() as u64);
        }
    }

    /// After a merge: counts a key left above the sibling limit.
    fn note_merged_siblings(&mut self, slot: &Slot) {
        self.note_siblings(slot);
        if let Some(Entry::Siblings(set)) = self.entries.get(slot) {
            if set.len() > self.config.max_siblings {
                self.stats.sibling_limit_exceeded += 1;
            }
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if !self.members.contains(&from) || from == self.id {
            return; // Not a peer.
        }
        match msg {
            Message::Replicate { clock, entries } => {
                self.on_entries(now, clock, entries, false, out);
            }
            Message::MerkleNodes { level, nodes } => self.on_merkle_nodes(from, level, nodes, out),
            Message::MerkleLeaves {
                clock,
                leaves,
                entries,
                reply,
            } => {
                if self.on_entries(now, clock, entries, true, out) && reply {
                    self.send_leaves(from, leaves, false, out);
                }
            }
        }
    }
}

impl Protocol for MultiPrimary {
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
                let why = format!("{:?}: membership is fixed at start", admin.command);
                Self::answer(
                    admin.client,
                    admin.seq,
                    Err(ClientError::Rejected(why)),
                    out,
                );
            }
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
            Input::Timer(Timer::AntiEntropy) => {
                self.start_anti_entropy(out);
                out.set_timer(Timer::AntiEntropy, self.anti_entropy_interval());
            }
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.id,
            role: Role::Replica,
            term: 0,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            last_index: 0,
        }
    }

    fn check_invariants(&self) {
        self.sessions.check_invariants();
        for (slot, entry) in &self.entries {
            match (slot, entry) {
                // Checked where a set changes (`persist`): every step re-checking every key's
                // set made invariant checks a large share of a simulation's time.
                (Slot::Register(_), Entry::Siblings(_)) => {}
                (Slot::Register(_), Entry::Lww(_)) => {}
                (Slot::Crdt(_, kind), Entry::Crdt(crdt)) => {
                    assert_eq!(crdt.kind(), *kind, "a CRDT stored under another kind")
                }
                (slot, entry) => panic!("{slot:?} holds {entry:?}"),
            }
        }
    }
}
