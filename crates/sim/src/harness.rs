//! How a protocol plugs into the simulator.

use crate::config::SimConfig;
use quorate_check::{Operation, Promise};
use quorate_core::{Invariants, KvStore, NodeId, Protocol};
use quorate_protocols::primary_backup::{Replica, ReplicaConfig, Topology, ViewSafety};
use quorate_protocols::raft::{Raft, RaftConfig, RaftSafety};
use std::time::Duration;

/// How a protocol's records are encoded for the simulated disk (see [`Harness::disk`]).
pub struct DiskCodec<P: Protocol> {
    pub encode: fn(&P::Record) -> Vec<u8>,
    pub decode: fn(&[u8]) -> Option<P::Record>,
    /// Recover with `quorate-storage`'s deliberately broken rule, which drops a damaged last
    /// batch as if it were a torn write (takes effect only when that crate is built with its
    /// `bugs` feature, as the simulator's tests build it).
    pub broken_recovery: bool,
    /// The chance that a crash also damages the node's disk, instead of a per-seed draw.
    pub damage: Option<f64>,
    /// Check after every recovery that no fsynced record is missing (a test switches it off
    /// to show what the protocol's own checks see without it).
    pub check_recovery: bool,
}

impl<P: Protocol> Clone for DiskCodec<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Protocol> Copy for DiskCodec<P> {}

impl<P: Protocol> DiskCodec<P>
where
    P::Record: serde::Serialize + serde::de::DeserializeOwned,
{
    /// Records encoded as the server encodes them (postcard).
    pub fn postcard() -> DiskCodec<P> {
        DiskCodec {
            encode: |record| postcard::to_allocvec(record).expect("records encode"),
            decode: |bytes| postcard::from_bytes(bytes).ok(),
            broken_recovery: false,
            damage: None,
            check_recovery: true,
        }
    }
}

/// How a harness measures a message's size (see [`Harness::message_size`]).
pub type MessageSize<P> = fn(&<P as Protocol>::Message) -> usize;

/// The bytes `message` takes between servers: its postcard encoding in a frame (a 4-byte
/// length and a 4-byte CRC32C, see the server's `transport::frame`).
pub fn wire_size<M: serde::Serialize>(message: &M) -> usize {
    const FRAME_HEADER: usize = 8;
    FRAME_HEADER + postcard::to_allocvec(message).map_or(0, |bytes| bytes.len())
}

/// A protocol, as the simulator needs it: how to build a node, and the cluster-wide safety
/// properties to check after every step.
pub trait Harness: Sync {
    type Node: Protocol;
    type Invariants: Invariants<Self::Node>;

    /// The protocol's name, as `--protocol` spells it.
    fn name(&self) -> &'static str;

    /// A fresh node (at start-up, and again at every restart after a crash).
    fn node(&self, id: NodeId, members: &[NodeId]) -> Self::Node;

    /// The store `node` has applied, which the server feeds its change feed from
    /// (`ServedProtocol::applied_store`) and the simulator does too (see [`crate::feed`]).
    /// `None` (the default): the protocol applies in no single order, and has no feed.
    fn applied_store<'n>(&self, _node: &'n Self::Node) -> Option<&'n KvStore> {
        None
    }

    /// Fresh cluster-wide checkers for one run.
    fn invariants(&self) -> Self::Invariants;

    /// The configuration a run of this protocol uses, given the one asked for. A protocol
    /// that serves less than the full KV interface adapts the workload here (single-decree
    /// Paxos turns it into write-once registers); the default runs `config` unchanged.
    fn configure(&self, config: &SimConfig) -> SimConfig {
        config.clone()
    }

    /// What the protocol promises about its histories: the end of every run judges the history
    /// with [`quorate_check::judge`] under this promise, as `quorate check --promise` does.
    /// The default is linearizability of every operation.
    fn promise(&self) -> Promise {
        Promise::Linearizable
    }

    /// The largest clock drift, in parts per million of true time, that the protocol's safety
    /// tolerates (leases, for example). The simulator keeps every clock within it. `None`:
    /// safety does not depend on clocks.
    fn clock_drift_bound_ppm(&self) -> Option<u64> {
        None
    }

    /// Whether nodes accept `Input::Admin` membership changes and leadership transfers, which
    /// the reconfiguration nemesis (`--reconfig`) sends.
    fn supports_reconfiguration(&self) -> bool {
        false
    }

    /// The configuration `node` believes in, for the reconfiguration nemesis to choose its
    /// next change from. `None` if the protocol has no membership changes.
    fn configuration(&self, _node: &Self::Node) -> Option<Configuration> {
        None
    }

    /// How this protocol's durable records reach the simulated disk. `Some`: encoded, written
    /// and recovered by `quorate-storage` (the server's format and recovery rules) on a
    /// [`MemDisk`](quorate_storage::MemDisk) with faults: torn unsynced writes, and with disk
    /// faults on, flipped bits in synced batches, lost files and failing reads. `None` (the
    /// default): records are kept as values and only unsynced ones are lost in a crash.
    fn disk(&self) -> Option<DiskCodec<Self::Node>> {
        None
    }

    /// A protocol message as the run's event record (`--trace`, `--html`) shows it: its name
    /// and key fields on one line. The default summarizes the message's `Debug` rendering
    /// (see [`crate::record::summarize`]).
    fn describe_message(&self, msg: &<Self::Node as Protocol>::Message) -> String {
        crate::record::summarize(&format!("{msg:?}"))
    }

    /// What `node`'s last step did that the run's record shows as notes on its lane (`--trace`,
    /// `--html`), beyond messages, roles and commits: decisions a reader should see, such as a
    /// Raft leader withholding a commit (Figure 8). Default: none.
    fn step_notes(&self, _node: &Self::Node) -> Vec<String> {
        Vec::new()
    }

    /// The size of a message as the server sends it, for `SimConfig::count_message_bytes`
    /// ([`wire_size`] for protocols the server runs). `None` (the default): not measured.
    fn message_size(&self) -> Option<MessageSize<Self::Node>> {
        None
    }

    /// The operations the simulated clients issue. Default: the whole KV interface.
    fn client_ops(&self) -> ClientOps {
        ClientOps::Kv
    }

    /// True when a write's retries must go to the node first asked. Leaderless coordinators
    /// deduplicate a client's retries per node; a retry elsewhere would be a second write.
    /// Clients then give up on a write (outcome unknown) rather than move it.
    fn sticky_writes(&self) -> bool {
        false
    }

    /// After the liveness phase, let the cluster run this long without clients, then read
    /// every key on every node that replicates it (see [`Harness::replicates`]) with
    /// [`ReadMode::Local`](quorate_core::ReadMode) (final reads,
    /// recorded by processes numbered from [`FINAL_READ_PROCESS`]). `None`: no final reads.
    fn final_reads(&self) -> Option<Duration> {
        None
    }

    /// Whether node `node` (1-based) is one of `key`'s replicas, whose final reads must agree.
    /// Final reads of other nodes run but are not recorded. Default: every node.
    fn replicates(&self, _key: &str, _node: u64) -> bool {
        true
    }

    /// Measurements beyond the history: what the cluster-wide checkers recorded (the stamps
    /// last-write-wins compared, for example), given the paired client operations. They never
    /// change the verdict, which is the history's alone.
    fn measure(
        &self,
        _ops: &[Operation],
        _invariants: &Self::Invariants,
    ) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// A cluster configuration as the reconfiguration nemesis sees it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Configuration {
    /// Voting members (during a joint configuration, of either half).
    pub voters: Vec<NodeId>,
    /// Non-voting members.
    pub learners: Vec<NodeId>,
}

/// History processes at and above this number are the simulator's final reads (recorded with
/// [`quorate_check::Mode::Final`]): process `FINAL_READ_PROCESS + i` reads every key on node
/// `i + 1`.
pub const FINAL_READ_PROCESS: u64 = 1 << 40;

/// The operations simulated clients issue.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientOps {
    /// GET, PUT, APPEND, CAS and DELETE in the configured mix.
    Kv,
    /// GET, PUT and DELETE only, in the mix's proportions: registers without
    /// read-modify-write (quorum stores, last-write-wins).
    Registers,
    /// Multi-value registers: GET_SIBLINGS, and PUT_WITH_CONTEXT (values, and deletes) carrying
    /// the join of every context the client's session got for the key. Written values are
    /// unique, so a history shows which writes each session had seen.
    Causal,
    /// CRDTs: even-numbered keys are PN-Counters (increments, reads), odd-numbered keys
    /// OR-Sets (adds of unique elements, removes of elements the client read, reads).
    Crdt,
}

/// The verdict on one consistency model for one run.
pub use quorate_check::ModelVerdict as ModelCheck;

/// Raft with every production feature on: pre-vote, check-quorum, ReadIndex, leases (with a
/// 5% clock-drift bound the simulator honours), follower reads. The snapshot threshold, chunk
/// size and flow-control windows are small enough that compaction, multi-chunk
/// InstallSnapshot and full windows happen in every run.
#[derive(Clone, Debug)]
pub struct RaftHarness {
    pub config: RaftConfig,
    /// Keep simulated clocks within `config.clock_drift_bound_ppm`. Tests switch it off to
    /// show what lease reads do when the bound is broken.
    pub honour_drift_bound: bool,
    /// Recover the simulated disk with the deliberately broken rule (see [`DiskCodec`]), to
    /// show the simulator catches it.
    pub broken_recovery: bool,
    /// The chance that a crash damages the disk (with disk faults on), instead of a per-seed
    /// draw.
    pub disk_damage: Option<f64>,
    /// See [`DiskCodec::check_recovery`].
    pub check_recovery: bool,
}

impl Default for RaftHarness {
    fn default() -> Self {
        RaftHarness {
            config: RaftConfig {
                snapshot_threshold: 64,
                snapshot_chunk_bytes: 256,
                entries_per_append_max: 32,
                inflight_max: 4,
                inflight_bytes_max: 4096,
                election_timeout_min: Duration::from_millis(150),
                election_timeout_max: Duration::from_millis(300),
                heartbeat_interval: Duration::from_millis(50),
                pre_vote: true,
                check_quorum: true,
                read_index: true,
                lease_reads: true,
                clock_drift_bound_ppm: 50_000,
                follower_reads: true,
                ..RaftConfig::default()
            },
            honour_drift_bound: true,
            broken_recovery: false,
            disk_damage: None,
            check_recovery: true,
        }
    }
}

impl Harness for RaftHarness {
    type Node = Raft;
    type Invariants = RaftSafety;

    fn step_notes(&self, node: &Raft) -> Vec<String> {
        node.events()
            .iter()
            .filter_map(|event| match event {
                quorate_protocols::raft::Event::OldTermCommitWithheld { index, term } => {
                    Some(format!(
                        "commit withheld: index {index} is on a quorum but of older term {term}; \
                         it commits with the first entry of term {} (§5.4.2, Figure 8)",
                        node.term()
                    ))
                }
                _ => None,
            })
            .collect()
    }

    fn name(&self) -> &'static str {
        "raft"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Raft {
        Raft::new(id, members, self.config.clone())
    }

    fn applied_store<'n>(&self, node: &'n Raft) -> Option<&'n KvStore> {
        Some(node.store())
    }

    fn invariants(&self) -> RaftSafety {
        RaftSafety::new()
    }

    fn clock_drift_bound_ppm(&self) -> Option<u64> {
        let leases = self.config.lease_reads && self.honour_drift_bound;
        leases.then_some(self.config.clock_drift_bound_ppm)
    }

    fn supports_reconfiguration(&self) -> bool {
        true
    }

    fn message_size(&self) -> Option<MessageSize<Raft>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<Raft>> {
        Some(DiskCodec {
            broken_recovery: self.broken_recovery,
            damage: self.disk_damage,
            check_recovery: self.check_recovery,
            ..DiskCodec::postcard()
        })
    }

    fn configuration(&self, node: &Raft) -> Option<Configuration> {
        let membership = node.membership();
        Some(Configuration {
            voters: membership.all_voters().into_iter().collect(),
            learners: membership.learners.iter().copied().collect(),
        })
    }
}

/// Primary-backup replication with views decided by election, with a snapshot threshold low
/// enough that compaction and state transfer happen in every run.
#[derive(Clone, Debug)]
pub struct PrimaryBackupHarness {
    pub config: ReplicaConfig,
}

impl Default for PrimaryBackupHarness {
    fn default() -> Self {
        PrimaryBackupHarness {
            config: small_snapshots(ReplicaConfig::new(Topology::PrimaryBackup)),
        }
    }
}

fn small_snapshots(config: ReplicaConfig) -> ReplicaConfig {
    ReplicaConfig {
        snapshot_threshold: 64,
        entries_per_prepare_max: 32,
        ..config
    }
}

impl Harness for PrimaryBackupHarness {
    type Node = Replica;
    type Invariants = ViewSafety;

    fn message_size(&self) -> Option<MessageSize<Replica>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<Replica>> {
        Some(DiskCodec::postcard())
    }

    fn name(&self) -> &'static str {
        "primary-backup"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Replica {
        Replica::new(id, members, self.config.clone())
    }

    fn applied_store<'n>(&self, node: &'n Replica) -> Option<&'n KvStore> {
        Some(node.store())
    }

    fn invariants(&self) -> ViewSafety {
        ViewSafety::new()
    }
}

/// Chain replication: tail reads, or (with `craq`) CRAQ reads at every chain node.
#[derive(Clone, Debug)]
pub struct ChainHarness {
    pub config: ReplicaConfig,
}

impl ChainHarness {
    pub fn new(craq: bool) -> ChainHarness {
        ChainHarness {
            config: small_snapshots(ReplicaConfig::new(Topology::Chain { craq })),
        }
    }
}

impl Harness for ChainHarness {
    type Node = Replica;
    type Invariants = ViewSafety;

    fn message_size(&self) -> Option<MessageSize<Replica>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<Replica>> {
        Some(DiskCodec::postcard())
    }

    fn name(&self) -> &'static str {
        match self.config.topology {
            Topology::Chain { craq: true } => "craq",
            _ => "chain",
        }
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Replica {
        Replica::new(id, members, self.config.clone())
    }

    fn applied_store<'n>(&self, node: &'n Replica) -> Option<&'n KvStore> {
        Some(node.store())
    }

    fn invariants(&self) -> ViewSafety {
        ViewSafety::new()
    }
}
