//! `quorate sim`: seeded simulation runs with a progress bar, a table and a JSON summary.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};
use quorate_check::Validity;
use quorate_protocols::multiprimary::LwwClock;
use quorate_protocols::quorum::{Preset, QuorumConfig};
use quorate_sim::record::RunEvent;
use quorate_sim::{
    Abort, ChainHarness, Faults, Harness, MultiPaxosHarness, MultiPrimaryHarness, PaxosHarness,
    PrimaryBackupHarness, QuorumHarness, RaftHarness, ReadMix, ResolveMode, RunReport, SimConfig,
    Summary, ZabHarness,
};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolName {
    /// Raft (Ongaro & Ousterhout 2014) with log compaction.
    Raft,
    /// Single-decree Paxos (Lamport 1998): one write-once register per key. Clients read keys
    /// or propose values (CAS from absent) and move to fresh keys every 200 ms.
    Paxos,
    /// Single-decree Paxos without the livelock cure (no randomized back-off): duelling
    /// proposers pre-empt each other; compare its rounds_to_decide with --protocol paxos.
    PaxosLivelock,
    /// Multi-Paxos (Lamport 2001, van Renesse & Altinbuken 2015): a stable leader, batching,
    /// no-op gap fill, catch-up and snapshots, replicating the KV store.
    Multipaxos,
    /// ZAB as ZooKeeper runs it (Zab 1.0), with ZooKeeper's read semantics.
    Zab,
    /// Primary-backup with views decided by election and fenced failover (Viewstamped
    /// Replication); reads at the primary after a confirmation round.
    PrimaryBackup,
    /// Chain replication (van Renesse & Schneider 2004): writes at the head, commits and
    /// reads at the tail.
    Chain,
    /// Chain replication with CRAQ reads (Terrace & Freedman 2009) at every chain node.
    Craq,
    /// Dynamo-style quorums with tunable N/R/W; linearizable reads by ABD write-back.
    Quorum,
    /// Every node accepts writes and replicates them asynchronously; see --resolve.
    Multiprimary,
}

impl ProtocolName {
    /// The share of local reads when `--local-reads` is not given: the protocols whose point is
    /// cheap reads at replicas exercise them by default.
    fn default_local_reads(self) -> f64 {
        match self {
            ProtocolName::PrimaryBackup | ProtocolName::Chain | ProtocolName::Craq => 0.2,
            _ => 0.0,
        }
    }
}

/// What the simulated clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadName {
    /// The KV mix of --ops.
    Kv,
    /// Gets and puts of unique values only (get=50,put=50).
    Register,
    /// Transactions, as Redis clients run them: MULTI/EXEC of appends and reads over
    /// several keys, MGET, and WATCH rounds (WATCH, MGET, then EXEC guarded by the watched
    /// revisions). Checked for strict serializability by the list-append checker. Protocols
    /// with one log only (raft, multipaxos, zab, primary-backup, chain, craq).
    Txn,
    /// Leases, as etcd's clients use them: each client grants a lease living --ttl (default
    /// 150ms), attaches the keys it writes (SET k v LEASE id), keeps it alive, sometimes
    /// revokes it. Each attached value must disappear within the window its lease's events
    /// allow, and no read may return it after. Raft only.
    Lease,
}

/// The seed's quorum presets for five replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetName {
    /// N=5 R=3 W=3.
    Strong,
    /// N=5 R=2 W=4: cheap reads.
    Read,
    /// N=5 R=4 W=2: cheap writes.
    Write,
}

/// How multi-primary resolves concurrent writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResolveName {
    /// Last-write-wins on hybrid logical clocks (see --lww-clock).
    Lww,
    /// Dotted version vectors: concurrent writes kept as siblings.
    Vv,
    /// CRDT values: PN-Counters and OR-Sets.
    Crdt,
}

impl ResolveName {
    /// The simulator's harness mode for this resolution (`quorate sim`, `quorate explore`).
    pub fn mode(self) -> ResolveMode {
        match self {
            ResolveName::Lww => ResolveMode::Lww,
            ResolveName::Vv => ResolveMode::VersionVectors,
            ResolveName::Crdt => ResolveMode::Crdt,
        }
    }
}

/// Switches Raft's defences off as `--no-lease-reads`, `--no-pre-vote` and
/// `--no-check-quorum` ask (`quorate sim`, `quorate explore`): lease reads need check-quorum,
/// so turning it off turns them off too.
pub fn raft_defences_off(
    config: &mut quorate_protocols::raft::RaftConfig,
    no_lease_reads: bool,
    no_pre_vote: bool,
    no_check_quorum: bool,
) {
    config.pre_vote &= !no_pre_vote;
    config.check_quorum &= !no_check_quorum;
    config.lease_reads &= !(no_lease_reads || no_check_quorum);
}

/// The clock that orders last-write-wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockName {
    /// Hybrid logical clocks.
    Hlc,
    /// Each node's raw, skewed wall clock (the seed's time.time()), for comparison.
    Wall,
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The protocol to simulate.
    #[arg(long, value_enum, default_value = "raft")]
    protocol: ProtocolName,
    /// Nodes in the cluster (1 to 64).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// How many seeds to run, starting at --first-seed.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed of a batch.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Replay exactly one seed (overrides --seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Faults to inject: all, classic, none, or a comma-separated list of loss, duplicate,
    /// reorder, partition, crash, clock, disk (these seven are `classic`), pause, crash-points
    /// (`all` is classic plus these two), clock-beyond-bound, stale, pause-requests-first
    /// (pauses after which the node takes its queued client requests first; opt-in only).
    #[arg(long, default_value = "all")]
    faults: String,
    /// Length of the fault phase in simulated time (e.g. 4s, 500ms); a liveness phase follows.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Distinct keys the clients use.
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Change the cluster while the faults go on: two spare nodes start outside it, and a
    /// nemesis adds learners, promotes them, removes members (the leader too), replaces the
    /// voters wholesale (joint consensus) and transfers leadership. Safety and
    /// linearizability are checked as always.
    #[arg(long)]
    reconfig: bool,
    /// How GETs are served: linearizable, local (the contacted node's own state) or sync
    /// (catch up with the leader, then local), or weights such as
    /// linearizable=1,local=3,sync=1. Non-linearizable reads make clients stick to one node.
    /// Default: linearizable only (zab: linearizable=1,local=3,sync=1).
    #[arg(long, value_name = "MIX")]
    reads: Option<String>,
    /// Share of reads (0 to 1) sent with ReadMode::Local to a random node: served from that
    /// replica's state, possibly stale. They are left out of the linearizability check and
    /// their staleness is reported in the counters (local_reads, local_reads_stale, ...).
    /// Default: 0.2 for primary-backup, chain and craq; 0 for raft.
    #[arg(long, value_name = "SHARE")]
    local_reads: Option<f64>,
    /// The operation mix as weights, e.g. get=50,put=30,cas=20 (unnamed operations weigh 0).
    /// Without append and delete every written value is unique, which `quorate check`
    /// decides in polynomial time. Default: get=40,put=25,append=10,cas=20,delete=5.
    #[arg(long, value_name = "MIX")]
    ops: Option<String>,
    /// The workload: kv (the --ops mix), register (gets and puts only, every written value
    /// unique: histories that `quorate check --model causal`, `session` and `convergence`
    /// accept) or txn (MULTI/EXEC, MGET and WATCH over several keys, checked for strict
    /// serializability; log protocols only).
    #[arg(long, value_enum, default_value = "kv")]
    workload: WorkloadName,
    /// Every PUT becomes `SET k v PX <ttl>` (raft only, e.g. 100ms), so keys expire all
    /// through the run and the checker holds each expiry to its window. Leaves appends out
    /// of the mix: APPEND keeps a time to live, which the register model does not follow.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Skip the linearizability check of histories.
    #[arg(long)]
    no_check: bool,
    /// Fail (exit 1) when any run's history check could not decide a model (verdict
    /// "unknown", listed as unchecked): an unchecked run proves nothing.
    #[arg(long)]
    strict: bool,
    /// Wall-clock limit of each run's history check (e.g. 20s, 2m); past it the verdict is
    /// unknown. Replay an unchecked seed with a longer one.
    #[arg(long, value_name = "TIME", default_value = "20s", value_parser = parse_duration)]
    check_time_limit: Duration,
    /// The step budget of each seed: a run that processes this many events without finishing
    /// fails with its seed (a livelock, or a loop that never lets simulated time advance).
    #[arg(long, value_name = "EVENTS", default_value_t = quorate_sim::config::EVENTS_MAX_DEFAULT)]
    max_steps: u64,
    /// The wall-clock budget of each seed's simulation (e.g. 2m, 30s): past it the run fails
    /// with its seed.
    #[arg(long, value_name = "TIME", default_value = "2m", value_parser = parse_duration)]
    seed_timeout: Duration,
    /// Print one line per simulated event (single seed only).
    #[arg(long)]
    trace: bool,
    /// A teaching run: a scripted protocol, seed and faults that show one effect, with a
    /// sentence on the --html page saying what to look at (sets --protocol, --seed and the
    /// options it needs; combine with --html or --trace).
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// The scenario's sentence for the page (set from --scenario).
    #[arg(skip)]
    note: Option<&'static str>,
    /// The scenario's scripted fault schedule (set from --scenario).
    #[arg(skip)]
    script: Option<quorate_sim::script::Script>,
    /// raft: entries per AppendEntries, at most (set from --scenario).
    #[arg(skip)]
    raft_entries_per_append: Option<usize>,
    /// Write the run as one self-contained HTML page (single seed only): a space-time diagram
    /// of nodes and client processes, messages, faults, leaders and operations, with the
    /// checker's verdict and the violating operations highlighted.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Write the client history of the run as JSON lines (single seed only).
    #[arg(long, value_name = "FILE")]
    history: Option<std::path::PathBuf>,
    /// Print a JSON summary as the last line of output.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// raft: serve every leader read with a ReadIndex round, without leases (a defence off,
    /// so that ReadIndex is checked on its own).
    #[arg(long, help_heading = "Raft")]
    no_lease_reads: bool,
    /// raft: no pre-vote before an election (thesis §9.6).
    #[arg(long, help_heading = "Raft")]
    no_pre_vote: bool,
    /// raft: no check-quorum (a cut-off leader stays leader; followers grant votes while they
    /// hear from a leader). Lease reads need it, so this also turns them off.
    #[arg(long, help_heading = "Raft")]
    no_check_quorum: bool,
    /// quorum: replicas per key (default 3, at most --nodes).
    #[arg(long, help_heading = "Quorum")]
    n: Option<usize>,
    /// quorum: replicas that must answer a read (default: a majority of N).
    #[arg(long, help_heading = "Quorum")]
    r: Option<usize>,
    /// quorum: replicas that must acknowledge a write (default: a majority of N).
    #[arg(long, help_heading = "Quorum")]
    w: Option<usize>,
    /// quorum: one of the seed's presets for N=5 (instead of --n/--r/--w).
    #[arg(long, value_enum, help_heading = "Quorum")]
    preset: Option<PresetName>,
    /// quorum: accept R + W <= N and sloppy quorums, which may return stale reads; the
    /// summary then reports how many reads were stale.
    #[arg(long, help_heading = "Quorum")]
    allow_partial: bool,
    /// quorum: count stand-ins on the ring towards W when home replicas do not answer, and
    /// hand the writes back later (hinted handoff). Needs --allow-partial.
    #[arg(long, help_heading = "Quorum")]
    sloppy: bool,
    /// quorum: answer reads without writing back first (regular, not linearizable, reads).
    #[arg(long, help_heading = "Quorum")]
    no_write_back: bool,
    /// quorum --no-write-back: do not repair stale replicas a read saw either.
    #[arg(long, help_heading = "Quorum")]
    no_read_repair: bool,
    /// primary-backup: no fencing (teaching only, never safe): replicas follow whichever
    /// primary's Prepare reaches them, even of an older view, as the seed's DNS failover
    /// does, so a deposed primary keeps acknowledging writes next to its successor (split
    /// brain; the checkers report it).
    #[arg(long, help_heading = "Primary-backup")]
    no_fencing: bool,
    /// chain, craq: backups start a view change after 1 to 2 s without hearing from the head
    /// or their predecessor, instead of 150 to 300 ms (a defence off). A tail (a CRAQ node)
    /// cut off from its head then outlives the head's member timeout (300 ms), so it still
    /// believes it serves reads after the head cut it out and the new chain acknowledged
    /// writes: only its confirmation round keeps it from answering stale reads.
    #[arg(long, help_heading = "Chain")]
    slow_view_change: bool,
    /// multiprimary: how concurrent writes are resolved.
    #[arg(long, value_enum, default_value = "vv", help_heading = "Multi-primary")]
    resolve: ResolveName,
    /// multiprimary --resolve lww: the clock that orders writes.
    #[arg(
        long,
        value_enum,
        default_value = "hlc",
        help_heading = "Multi-primary"
    )]
    lww_clock: ClockName,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 4s, 500ms, 1m)"))
}

/// The teaching runs of `--scenario`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Scenario {
    /// Raft: the leader is cut off by a partition and a new one is elected.
    RaftElection,
    /// Paxos without back-off: two proposers pre-empt each other round after round.
    PaxosDuel,
    /// Dynamo quorums with R + W <= N: a read misses the latest write.
    QuorumStaleRead,
    /// Multi-primary with last-write-wins: an acknowledged write that came later loses to an
    /// earlier one with a higher timestamp.
    LwwLostUpdate,
    /// Primary-backup without fencing (the seed's DNS failover): replicas follow older views
    /// and two of them end up primary of the same view, which the safety checker reports.
    SplitBrainWithoutFencing,
    /// Raft's Figure 8 (§5.4.2), scripted: a new leader finds an entry of an older term on a
    /// majority and does not commit it until an entry of its own term is on a majority too.
    RaftFigure8,
}

impl Scenario {
    /// Sets the run's options; returns the sentence for the page.
    fn apply(self, args: &mut SimArgs) -> &'static str {
        args.duration = Duration::from_secs(2);
        match self {
            Scenario::RaftElection => {
                args.protocol = ProtocolName::Raft;
                args.seed = Some(1);
                args.faults = "partition".into();
                args.clients = 3;
                "Raft election under partition: n1 leads term 1 (green band) until the nemesis \
                 isolates it at 0.96s (red hatching, its messages crossed out). n5's election \
                 timer fires, it asks PreVote then RequestVote of the majority it can reach and \
                 leads term 2 from 1.13s; cut off, n1 stops hearing a quorum and steps down. \
                 Step through the events around 1.1s to watch the votes."
            }
            Scenario::PaxosDuel => {
                args.protocol = ProtocolName::PaxosLivelock;
                args.seed = Some(DUEL_SEED);
                args.faults = DUEL_FAULTS.into();
                args.clients = DUEL_CLIENTS;
                args.keys = 1;
                DUEL_NOTE
            }
            Scenario::QuorumStaleRead => {
                args.protocol = ProtocolName::Quorum;
                args.seed = Some(6);
                args.faults = "loss,partition,reorder".into();
                args.allow_partial = true;
                args.r = Some(1);
                args.w = Some(1);
                args.no_write_back = true;
                args.no_read_repair = true;
                args.clients = 4;
                args.keys = 1;
                "Quorums that need not overlap (N=3, R=1, W=1: R + W <= N): a write is \
                 acknowledged by one replica, and a read that asks another one answers an older \
                 value. The operations outlined in red cannot be linearized together: find \
                 the read that completes after a write finished and still misses it."
            }
            Scenario::LwwLostUpdate => {
                args.protocol = ProtocolName::Multiprimary;
                args.resolve = ResolveName::Lww;
                args.seed = Some(LWW_SEED);
                args.faults = LWW_FAULTS.into();
                args.clients = LWW_CLIENTS;
                args.keys = 1;
                LWW_NOTE
            }
            Scenario::SplitBrainWithoutFencing => {
                args.protocol = ProtocolName::PrimaryBackup;
                args.no_fencing = true;
                args.seed = Some(SPLIT_SEED);
                args.faults = SPLIT_FAULTS.into();
                args.duration = Duration::from_secs(3);
                SPLIT_NOTE
            }
            Scenario::RaftFigure8 => {
                args.protocol = ProtocolName::Raft;
                args.seed = Some(FIGURE8_SEED);
                args.faults = "none".into();
                args.nodes = 5;
                // Local reads only (answered from a node's state, never through the log), so
                // the logs hold the leaders' no-ops alone, as the paper's figure does.
                args.clients = 1;
                args.ops = Some("get=1".into());
                args.local_reads = Some(1.0);
                args.duration = Duration::from_secs(3);
                args.script = Some(quorate_sim::script::raft_figure8());
                args.raft_entries_per_append = Some(1);
                FIGURE8_NOTE
            }
        }
    }
}

const DUEL_SEED: u64 = 2;
const DUEL_FAULTS: &str = "none";
const DUEL_CLIENTS: usize = 3;
const DUEL_NOTE: &str = "Duelling proposers (Paxos without randomized back-off; three \
    clients on one key at a time): a proposer's Prepare raises the ballot, which makes the \
    acceptors Nack the other proposer's Accept; that one retries at once with a higher ballot \
    and pre-empts the first in turn. Follow the Prepare/Nack arrows between the nodes: most \
    rounds are pre-empted, and each register needs several rounds (counters rounds_preempted \
    and rounds_to_decide; compare --protocol paxos, which backs off).";
const LWW_SEED: u64 = 3;
const LWW_FAULTS: &str = "clock";
const LWW_CLIENTS: usize = 4;
/// `--workload txn`: transactions need one order of all writes, and their reads are
/// linearizable (WATCH, MGET), so local reads and read mixes do not apply. With `--ttl`
/// (raft) half the operations are expiring register writes and reads on keys of their own.
fn txn_workload(args: &SimArgs, config: &mut SimConfig) -> anyhow::Result<()> {
    use ProtocolName::*;
    if !matches!(
        args.protocol,
        Raft | Multipaxos | Zab | PrimaryBackup | Chain | Craq
    ) {
        bail!(
            "--workload txn needs one order of all writes (a log); {} has none: use \
             --protocol raft, multipaxos, zab, primary-backup, chain or craq",
            args.protocol.to_possible_value().expect("named").get_name()
        );
    }
    if args.ops.is_some() || args.reads.is_some() {
        bail!("--workload txn makes its own operations: leave out --ops and --reads");
    }
    if args.local_reads.is_some_and(|share| share > 0.0) {
        bail!("--workload txn reads linearizably only: leave out --local-reads");
    }
    config.workload.txns = true;
    config.workload.reads = ReadMix::default();
    config.workload.local_reads = 0.0;
    Ok(())
}

const LWW_NOTE: &str = "Last-write-wins on skewed clocks: every node accepts writes and \
    replicates them later; concurrent writes keep the one with the highest timestamp. The \
    checker finds an acknowledged put that started after another put had finished and was \
    still discarded, because the node that took it stamped it lower (details: LWW discarded). \
    Every replica converges, so the promise holds, and the client's acknowledged write is \
    gone.";
const SPLIT_SEED: u64 = 1118;
const SPLIT_FAULTS: &str = "partition,loss,reorder";
const SPLIT_NOTE: &str = "Split brain without fencing (the seed's DNS failover): replicas \
    do not refuse messages of older views, so when partitions come and go they follow \
    whichever primary's Prepare reaches them, going back to older views. At 3.24s n1 and n3 \
    are both primary of view 4 (look at the primary bands and the view numbers near the end \
    of the run): the safety checker reports it, and the run fails. Compare --protocol primary-backup, whose replicas \
    refuse the old primary.";

const FIGURE8_SEED: u64 = 1;
const FIGURE8_NOTE: &str = "Raft's Figure 8 (§5.4.2), scripted (the cluster-wide notes \
    say what the script does and why; each AppendEntries carries one entry here). n1 leads \
    term 1, then term 2, whose no-op (index 2) reaches n2 only before n1 crashes. n5 leads \
    term 3 with the votes of n3 and n4 and writes its own no-op at index 2, which reaches no \
    one, then crashes. n1 comes back and leads term 4 (its first try, term 3, fails: n3 and \
    n4 voted for n5 there). Step through the events around 1.8s on n1's lane: its term-2 \
    entry reaches n3, so index 2 is on a majority (n1, n2, n3), and n1 notes \"commit \
    withheld\" instead of committing: n5, whose last entry has the higher term 3, could \
    still be elected and overwrite it. Index 2 commits only with n1's term-4 no-op at index \
    3 (n1's commit 3, a few milliseconds later). When n5 restarts at the end of the fault \
    phase, n1's AppendEntries replace its index 2.";

pub fn run(mut args: SimArgs) -> anyhow::Result<ExitCode> {
    args.note = args.scenario.map(|scenario| scenario.apply(&mut args));
    let faults = Faults::parse(&args.faults).map_err(anyhow::Error::msg)?;
    let mut config = SimConfig {
        nodes: args.nodes,
        faults,
        duration: args.duration,
        check_history: !args.no_check,
        reconfig: args.reconfig,
        events_max: args.max_steps,
        check_time_limit: args.check_time_limit,
        wall_max: args.seed_timeout,
        script: args.script.clone(),
        ..SimConfig::default()
    };
    config.workload.clients = args.clients;
    config.workload.keys = args.keys;
    // Without fencing, replicas go back to older views (and their stores) by design.
    config.check_monotonic &= !args.no_fencing;
    config.check_feed &= !args.no_fencing;
    config.workload.reads = match &args.reads {
        Some(text) => ReadMix::parse(text).map_err(anyhow::Error::msg)?,
        None if args.protocol == ProtocolName::Zab => ZabHarness::READS,
        None => ReadMix::default(),
    };
    config.workload.local_reads = args
        .local_reads
        .unwrap_or_else(|| args.protocol.default_local_reads());
    if let Some(text) = &args.ops {
        config.workload.mix = parse_ops(text)?;
    }
    if args.workload == WorkloadName::Register {
        if args.ops.is_some() {
            bail!("--workload register is gets and puts only: leave out --ops");
        }
        config.workload.mix = parse_ops("get=50,put=50")?;
    }
    if args.workload == WorkloadName::Txn {
        txn_workload(&args, &mut config)?;
    }
    if args.workload == WorkloadName::Lease {
        if args.protocol != ProtocolName::Raft {
            bail!("--workload lease needs leases, which only raft serves: use --protocol raft");
        }
        if args.ops.is_some() {
            bail!("--workload lease makes its own operations: leave out --ops");
        }
        config.workload.leases = true;
        config.workload.put_ttl = Some(args.ttl.unwrap_or(Duration::from_millis(150)));
    }
    if let Some(ttl) = args.ttl {
        if args.protocol != ProtocolName::Raft {
            bail!("--ttl needs expiring keys, which only raft serves; drop --ttl or use --protocol raft");
        }
        if ttl.as_millis() == 0 {
            bail!("--ttl must be at least 1ms");
        }
        config.workload.put_ttl = Some(ttl);
        config.workload.mix.append = 0;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    if args.seed.is_none() && (args.trace || args.history.is_some() || args.html.is_some()) {
        bail!("--trace, --history and --html need a single run: add --seed N");
    }
    if args.strict && args.no_check {
        bail!("--strict fails on unchecked histories; it cannot be combined with --no-check");
    }
    if args.seed.is_none() && args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    check_protocol_options(&args)?;
    match args.protocol {
        ProtocolName::Raft => {
            let mut harness = RaftHarness::default();
            raft_defences_off(
                &mut harness.config,
                args.no_lease_reads,
                args.no_pre_vote,
                args.no_check_quorum,
            );
            if let Some(entries) = args.raft_entries_per_append {
                harness.config.entries_per_append_max = entries;
            }
            simulate(&harness, &config, &args)
        }
        ProtocolName::Paxos => simulate(&PaxosHarness::default(), &config, &args),
        ProtocolName::PaxosLivelock => simulate(&PaxosHarness::without_backoff(), &config, &args),
        ProtocolName::Multipaxos => simulate(&MultiPaxosHarness::default(), &config, &args),
        ProtocolName::Zab => simulate(&ZabHarness::default(), &config, &args),
        ProtocolName::PrimaryBackup => {
            let mut harness = PrimaryBackupHarness::default();
            harness.config.fencing = !args.no_fencing;
            simulate(&harness, &config, &args)
        }
        ProtocolName::Chain | ProtocolName::Craq => {
            let mut harness = ChainHarness::new(args.protocol == ProtocolName::Craq);
            if args.slow_view_change {
                harness.config.view_change_timeout_min = Duration::from_secs(1);
                harness.config.view_change_timeout_max = Duration::from_secs(2);
            }
            simulate(&harness, &config, &args)
        }
        ProtocolName::Quorum => {
            let harness = QuorumHarness {
                config: quorum_config(&args)?,
                nodes: args.nodes,
            };
            simulate(&harness, &config, &args)
        }
        ProtocolName::Multiprimary => {
            let mut harness = MultiPrimaryHarness::new(args.resolve.mode());
            harness.config.lww_clock = match args.lww_clock {
                ClockName::Hlc => LwwClock::Hlc,
                ClockName::Wall => LwwClock::Wall,
            };
            simulate(&harness, &config, &args)
        }
    }
}

/// Refuses options that do not apply to the chosen protocol, rather than ignoring them.
fn check_protocol_options(args: &SimArgs) -> anyhow::Result<()> {
    let quorum_options = args.n.is_some()
        || args.r.is_some()
        || args.w.is_some()
        || args.preset.is_some()
        || args.allow_partial
        || args.sloppy
        || args.no_write_back
        || args.no_read_repair;
    if quorum_options && args.protocol != ProtocolName::Quorum {
        bail!(
            "--n, --r, --w, --preset, --allow-partial, --sloppy, --no-write-back and \
             --no-read-repair apply to --protocol quorum"
        );
    }
    if args.no_read_repair && !args.no_write_back {
        bail!("--no-read-repair needs --no-write-back: the write-back is the repair");
    }
    let raft_options = args.no_lease_reads || args.no_pre_vote || args.no_check_quorum;
    if raft_options && args.protocol != ProtocolName::Raft {
        bail!("--no-lease-reads, --no-pre-vote and --no-check-quorum apply to --protocol raft");
    }
    if args.no_fencing && args.protocol != ProtocolName::PrimaryBackup {
        bail!("--no-fencing applies to --protocol primary-backup");
    }
    let chain = matches!(args.protocol, ProtocolName::Chain | ProtocolName::Craq);
    if args.slow_view_change && !chain {
        bail!("--slow-view-change applies to --protocol chain and craq");
    }
    let multiprimary_options = args.resolve != ResolveName::Vv || args.lww_clock != ClockName::Hlc;
    if multiprimary_options && args.protocol != ProtocolName::Multiprimary {
        bail!("--resolve and --lww-clock apply to --protocol multiprimary");
    }
    if args.lww_clock != ClockName::Hlc && args.resolve != ResolveName::Lww {
        bail!("--lww-clock applies to --resolve lww");
    }
    Ok(())
}

/// The quorum store's configuration from the command line, validated.
fn quorum_config(args: &SimArgs) -> anyhow::Result<QuorumConfig> {
    let mut config = match args.preset {
        Some(preset) => {
            if args.n.is_some() || args.r.is_some() || args.w.is_some() {
                bail!("--preset sets N, R and W; leave out --n, --r and --w");
            }
            QuorumConfig::preset(match preset {
                PresetName::Strong => Preset::Strong,
                PresetName::Read => Preset::ReadOptimized,
                PresetName::Write => Preset::WriteOptimized,
            })
        }
        None => {
            let n = args.n.unwrap_or(3.min(args.nodes));
            let majority = n / 2 + 1;
            QuorumConfig {
                n,
                r: args.r.unwrap_or(majority),
                w: args.w.unwrap_or(majority),
                ..QuorumConfig::default()
            }
        }
    };
    config.allow_partial = args.allow_partial;
    config.sloppy = args.sloppy;
    config.write_back = !args.no_write_back;
    config.read_repair = !args.no_read_repair;
    if let Err(why) = config.validate(args.nodes) {
        let hint = if why.contains("allow partial") {
            " (--allow-partial)"
        } else {
            ""
        };
        bail!("{why}{hint}");
    }
    Ok(config)
}

fn simulate<H: Harness>(
    harness: &H,
    config: &SimConfig,
    args: &SimArgs,
) -> anyhow::Result<ExitCode> {
    if config.reconfig && !harness.supports_reconfiguration() {
        bail!(
            "--reconfig: {} does not support membership changes",
            harness.name()
        );
    }
    let started = Instant::now();
    let reports = match args.seed {
        Some(seed) => vec![run_one(harness, config, args, seed)?],
        None => run_batch(harness, config, args),
    };
    let mut summary = Summary::default();
    for report in &reports {
        summary.add(report);
    }
    print_violations(&reports, harness.name(), config, args);
    print_table(&summary, started.elapsed());
    print_replayable_seeds(&summary, harness.name(), config, args);
    let unchecked_fails = args.strict && !summary.unchecked_seeds.is_empty();
    if unchecked_fails {
        eprintln!(
            "--strict: {} runs were unchecked (a model's verdict is unknown): failing",
            summary.unchecked_seeds.len()
        );
    }
    if args.json {
        println!("{}", json_summary(harness.name(), &summary, args.strict));
    }
    Ok(if summary.violations == 0 && !unchecked_fails {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_one<H: Harness>(
    harness: &H,
    config: &SimConfig,
    args: &SimArgs,
    seed: u64,
) -> anyhow::Result<RunReport> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut print = |line: &str| {
        let _ = writeln!(lock, "{line}");
    };
    let mut events = Vec::new();
    let report = match &args.html {
        Some(_) => {
            let mut observe = |event: &RunEvent| {
                if args.trace {
                    print(&event.to_string());
                }
                events.push(event.clone());
            };
            quorate_sim::run_observed(harness, config, seed, &mut observe)
        }
        None => {
            let trace: Option<&mut dyn FnMut(&str)> =
                if args.trace { Some(&mut print) } else { None };
            quorate_sim::run(harness, config, seed, trace)
        }
    };
    if let Some(path) = &args.history {
        write_history(&report, path)?;
    }
    if let Some(path) = &args.html {
        write_page(&report, &events, config, args, path)?;
    }
    eprintln!("trace hash: {:016x}", report.trace_hash);
    Ok(report)
}

/// Writes the run's page (see [`crate::view`]): the record, the history, and the verdict with
/// a linearizability witness when the run failed.
fn write_page(
    report: &RunReport,
    events: &[RunEvent],
    config: &SimConfig,
    args: &SimArgs,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let validity = match (&report.judgement, report.violations.is_empty()) {
        (_, false) => Validity::Invalid,
        (Some(judgement), true) => judgement.validity(),
        (None, true) => Validity::Unknown,
    };
    let promise = report.promise.name();
    let headline = match validity {
        Validity::Valid => format!("passed: promise {promise} kept, every safety check held"),
        Validity::Invalid => format!("failed: {} violations", report.violations.len()),
        Validity::Unknown => format!("unknown: promise {promise} not decided"),
    };
    let lines: Vec<usize> = (1..=report.history.len()).collect();
    // Highlight a linearizability violation when the run failed, and also when the promise
    // only measures linearizability and the history is not (stale reads, lost updates).
    let measured_not = report.models.iter().any(|m| m.satisfied == Some(false));
    let look = validity == Validity::Invalid || measured_not;
    let witness_lines = match (look, quorate_check::history::pair(&report.history)) {
        (true, Ok(ops)) => crate::view::linearizability_witness(&ops, Duration::from_secs(5)),
        _ => Vec::new(),
    };
    // A passing run's page shows one linearization of its linearizable operations.
    let linearization = if validity == Validity::Valid && !measured_not {
        crate::view::linearization(&report.history, &lines, Duration::from_secs(5))
    } else {
        Vec::new()
    };
    let mut details: Vec<String> = report.violations.iter().take(20).cloned().collect();
    for model in report.models.iter().filter(|m| m.satisfied == Some(false)) {
        let how = if model.promised {
            "promised"
        } else {
            "measured"
        };
        details.push(format!("{}: no ({how})", model.model));
    }
    if let Some(&lost) = report.counters.get("lww_discarded_hlc").filter(|n| **n > 0) {
        details.push(format!(
            "LWW discarded: {lost} acknowledged puts that started after a put with a higher \
             timestamp had finished (lost updates)"
        ));
    }
    if !witness_lines.is_empty() {
        details.push(format!(
            "highlighted: {} operations that cannot be linearized together (smallest set found)",
            witness_lines.len()
        ));
    }
    let s = &report.stats;
    let page = crate::view::Page {
        title: format!(
            "quorate sim --protocol {} --seed {}",
            report.protocol, report.seed
        ),
        subtitle: format!(
            "{} nodes, {} clients, faults {}, {} of faults; {} events, {} ops ok, {} failed, \
             {} unknown; {} crashes, {} partitions, {} pauses",
            config.nodes,
            config.workload.clients,
            args.faults,
            humantime::format_duration(config.duration),
            events.len(),
            report.ops_ok,
            report.ops_fail,
            report.ops_info,
            s.crashes,
            s.partitions,
            s.pauses,
        ),
        note: args.note.map(str::to_string),
        events,
        history: &report.history,
        lines: &lines,
        verdict: Some(crate::view::Verdict {
            validity,
            headline,
            details,
            witness_lines,
            linearization,
        }),
    };
    crate::view::write(&page, path)
}

/// Writes every event of the run, after a header naming the protocol's promise, and says how
/// `quorate check` reproduces the run's verdict on it.
fn write_history(report: &RunReport, path: &std::path::Path) -> anyhow::Result<()> {
    let promise = report.promise.name();
    let mut text = quorate_check::history::header_line(promise);
    text.push('\n');
    for event in &report.history {
        text += &event.to_json_line();
        text.push('\n');
    }
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the history to {}", path.display()))?;
    eprintln!(
        "history: {} events written to {} (promise: {promise})",
        report.history.len(),
        path.display()
    );
    if let Some(judgement) = &report.judgement {
        let verdict = match judgement.validity() {
            Validity::Valid => "valid",
            Validity::Invalid => "violated",
            Validity::Unknown => "unknown",
        };
        eprintln!(
            "history verdict: {verdict}; reproduce it with: quorate check {}",
            path.display()
        );
    }
    Ok(())
}

fn run_batch<H: Harness>(harness: &H, config: &SimConfig, args: &SimArgs) -> Vec<RunReport> {
    let seeds: Vec<u64> = (args.first_seed..args.first_seed.saturating_add(args.seeds)).collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = ProgressBar::new(seeds.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} seeds, {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(harness.name());
    let mut violations = 0usize;
    let protocol = harness.name();
    let reports = quorate_sim::run_many(harness, config, &seeds, jobs, |report| {
        // A panic or a spent budget is news at once, not after the batch.
        if let Some(abort) = &report.aborted {
            let what = match abort {
                Abort::Panic { message } => format!("PANIC: {message}"),
                _ => format!(
                    "BUDGET EXHAUSTED: {}",
                    report.violations.first().map_or("", String::as_str)
                ),
            };
            bar.println(format!(
                "seed {}: {what}\n  replay: {}",
                report.seed,
                replay_command(protocol, config, args, report.seed)
            ));
        }
        violations += report.violations.len();
        bar.set_message(format!("{violations} violations"));
        bar.inc(1);
    });
    bar.finish_and_clear();
    reports
}

fn replay_command(protocol: &str, config: &SimConfig, args: &SimArgs, seed: u64) -> String {
    let mut command = format!(
        "quorate sim --protocol {protocol} --nodes {} --faults {}{} --duration {} --clients {} \
         --keys {}{} --seed {seed} --trace",
        config.nodes,
        config.faults,
        if config.reconfig { " --reconfig" } else { "" },
        humantime::format_duration(config.duration),
        args.clients,
        args.keys,
        protocol_options(args)
    );
    if let Some(reads) = &args.reads {
        command += &format!(" --reads {reads}");
    }
    if let Some(ops) = &args.ops {
        command += &format!(" --ops {ops}");
    }
    match args.workload {
        WorkloadName::Kv => {}
        WorkloadName::Register => command += " --workload register",
        WorkloadName::Txn => command += " --workload txn",
        WorkloadName::Lease => command += " --workload lease",
    }
    if let Some(ttl) = args.ttl {
        command += &format!(" --ttl {}", humantime::format_duration(ttl));
    }
    if config.workload.local_reads > 0.0 {
        command += &format!(" --local-reads {}", config.workload.local_reads);
    }
    if args.max_steps != quorate_sim::config::EVENTS_MAX_DEFAULT {
        command += &format!(" --max-steps {}", args.max_steps);
    }
    if args.seed_timeout != Duration::from_secs(120) {
        command += &format!(
            " --seed-timeout {}",
            humantime::format_duration(args.seed_timeout)
        );
    }
    command
}

/// Parses `--ops`: `get=50,put=30,cas=20` (a name alone weighs 1).
fn parse_ops(text: &str) -> anyhow::Result<quorate_sim::config::Mix> {
    let mut mix = quorate_sim::config::Mix {
        get: 0,
        put: 0,
        append: 0,
        cas: 0,
        delete: 0,
    };
    for part in text.split(',').map(str::trim) {
        let (name, weight) = match part.split_once('=') {
            Some((name, weight)) => (
                name.trim(),
                weight
                    .trim()
                    .parse::<u32>()
                    .with_context(|| format!("operation weight {weight:?}"))?,
            ),
            None => (part, 1),
        };
        *match name {
            "get" => &mut mix.get,
            "put" => &mut mix.put,
            "append" => &mut mix.append,
            "cas" => &mut mix.cas,
            "delete" => &mut mix.delete,
            other => bail!("unknown operation {other:?}: expected get, put, append, cas or delete"),
        } = weight;
    }
    Ok(mix)
}

/// The protocol-specific options of a run, as command-line flags (for replay commands).
fn protocol_options(args: &SimArgs) -> String {
    let mut flags = String::new();
    match args.protocol {
        ProtocolName::Quorum => {
            if let Ok(config) = quorum_config(args) {
                flags += &format!(" --n {} --r {} --w {}", config.n, config.r, config.w);
            }
            for (on, flag) in [
                (args.allow_partial, " --allow-partial"),
                (args.sloppy, " --sloppy"),
                (args.no_write_back, " --no-write-back"),
                (args.no_read_repair, " --no-read-repair"),
            ] {
                if on {
                    flags += flag;
                }
            }
        }
        ProtocolName::Raft => {
            for (on, flag) in [
                (args.no_lease_reads, " --no-lease-reads"),
                (args.no_pre_vote, " --no-pre-vote"),
                (args.no_check_quorum, " --no-check-quorum"),
            ] {
                if on {
                    flags += flag;
                }
            }
        }
        ProtocolName::PrimaryBackup if args.no_fencing => flags += " --no-fencing",
        ProtocolName::Chain | ProtocolName::Craq if args.slow_view_change => {
            flags += " --slow-view-change"
        }
        ProtocolName::Multiprimary => {
            let resolve = args.resolve.to_possible_value().expect("no skipped values");
            flags += &format!(" --resolve {}", resolve.get_name());
            if args.lww_clock == ClockName::Wall {
                flags += " --lww-clock wall";
            }
        }
        _ => {}
    }
    flags
}

fn print_violations(reports: &[RunReport], protocol: &str, config: &SimConfig, args: &SimArgs) {
    let failed: Vec<&RunReport> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .collect();
    for report in failed.iter().take(10) {
        let kind = match &report.aborted {
            None => "VIOLATION",
            Some(Abort::Panic { .. }) => "PANIC",
            Some(_) => "BUDGET EXHAUSTED (liveness)",
        };
        eprintln!("seed {}: {kind}", report.seed);
        for violation in &report.violations {
            eprintln!("  {violation}");
        }
        eprintln!(
            "  replay: {}",
            replay_command(protocol, config, args, report.seed)
        );
    }
    if failed.len() > 10 {
        eprintln!("... and {} more failing seeds", failed.len() - 10);
    }
}

fn print_table(summary: &Summary, elapsed: Duration) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "runs",
        "ops ok",
        "ops fail",
        "ops info",
        "simulated time",
        "violations",
        "unchecked",
        "events",
        "events/s (1 core)",
        "wall",
    ]);
    let sim_secs = summary.sim_time as f64 / 1e9;
    let row = vec![
        summary.runs.to_string(),
        summary.ops_ok.to_string(),
        summary.ops_fail.to_string(),
        summary.ops_info.to_string(),
        format!("{sim_secs:.1}s"),
        summary.violations.to_string(),
        summary.unchecked_seeds.len().to_string(),
        summary.events.to_string(),
        format!("{:.0}", summary.events_per_second()),
        format!("{:.1}s", elapsed.as_secs_f64()),
    ];
    table.add_row(
        row.into_iter()
            .map(|c| Cell::new(c).set_alignment(CellAlignment::Right)),
    );
    println!("{table}");
    if !summary.models.is_empty() {
        let models: Vec<String> = summary
            .models
            .iter()
            .map(|(name, t)| {
                let how = if t.promised { "promised" } else { "measured" };
                let unknown = if t.unknown > 0 {
                    format!(", {} unknown", t.unknown)
                } else {
                    String::new()
                };
                format!(
                    "{name} {}/{} runs ({how}{unknown})",
                    t.satisfied, summary.runs
                )
            })
            .collect();
        println!("models: {}", models.join(", "));
    }
    if let (Some(reads), Some(stale)) = (
        summary.counters.get("reads_checked"),
        summary.counters.get("stale_reads"),
    ) {
        let share = if *reads == 0 {
            0.0
        } else {
            100.0 * *stale as f64 / *reads as f64
        };
        println!("stale reads: {stale} of {reads} reads ({share:.2}%)");
    }
    let counter = |name: &str| summary.counters.get(name).copied();
    if let (Some(acked), Some(hlc), Some(wall)) = (
        counter("lww_puts_acked"),
        counter("lww_discarded_hlc"),
        counter("lww_discarded_wall_clock"),
    ) {
        println!(
            "LWW discarded: {hlc} of {acked} acknowledged puts with hybrid logical clocks, \
             {wall} with the nodes' wall clocks"
        );
    }
    if !summary.counters.is_empty() {
        let counters: Vec<String> = summary
            .counters
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        println!("counters: {}", counters.join(", "));
    }
    if summary.disk_faults > 0 {
        println!(
            "storage: {} disk faults on fsynced data, {} starts refused by recovery (a refused node stays down)",
            summary.disk_faults, summary.refused_starts
        );
    }
    if summary.admin_requests > 0 {
        println!(
            "reconfiguration requests: {} ({} done, {} refused, {} outcome unknown)",
            summary.admin_requests,
            summary.admin_ok,
            summary.admin_refused,
            summary.admin_requests - summary.admin_ok - summary.admin_refused
        );
    }
    print_staleness(summary);
}

/// What local reads cost, from the simulator's staleness counters (see `quorate_sim::staleness`).
fn print_staleness(summary: &Summary) {
    let counter = |name: &str| summary.counters.get(name).copied().unwrap_or(0);
    let reads = counter("local_reads");
    if reads == 0 {
        return;
    }
    let stale = counter("local_reads_stale");
    let mean = if stale == 0 {
        0.0
    } else {
        counter("local_reads_writes_behind") as f64 / stale as f64
    };
    println!(
        "local reads: {reads}, stale: {stale} ({:.1}%), behind by {mean:.1} acknowledged writes \
         on average when stale, {} at most",
        100.0 * stale as f64 / reads as f64,
        counter("local_reads_writes_behind_max")
    );
}

/// The seeds to replay that the violations above do not cover: runs that failed a model the
/// protocol only measures, unchecked runs, spent budgets and panics.
fn print_replayable_seeds(summary: &Summary, protocol: &str, config: &SimConfig, args: &SimArgs) {
    let list = |seeds: &[u64]| {
        let shown: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
        let more = if seeds.len() > 20 {
            format!(" ... ({} in all)", seeds.len())
        } else {
            String::new()
        };
        shown.join(" ") + &more
    };
    for (model, seeds) in &summary.measured_failures {
        println!(
            "measured: {model} failed in {} runs; seeds: {}",
            seeds.len(),
            list(seeds)
        );
    }
    if !summary.unchecked_seeds.is_empty() {
        println!(
            "UNCHECKED: {} of {} runs have a model the checker could not decide (unknown), so \
             they prove nothing about it{}; seeds: {}",
            summary.unchecked_seeds.len(),
            summary.runs,
            if args.strict {
                ""
            } else {
                " (--strict fails on them)"
            },
            list(&summary.unchecked_seeds)
        );
    }
    if !summary.exhausted_seeds.is_empty() {
        println!(
            "BUDGET EXHAUSTED (liveness): {} runs; seeds: {}",
            summary.exhausted_seeds.len(),
            list(&summary.exhausted_seeds)
        );
    }
    if !summary.panicked_seeds.is_empty() {
        println!(
            "PANICKED: {} runs; seeds: {}",
            summary.panicked_seeds.len(),
            list(&summary.panicked_seeds)
        );
    }
    let first = summary
        .measured_failures
        .values()
        .flatten()
        .chain(&summary.unchecked_seeds)
        .next();
    if let (Some(seed), None) = (first, args.seed) {
        println!(
            "replay one: {}",
            replay_command(protocol, config, args, *seed)
        );
    }
}

fn json_summary(protocol: &str, summary: &Summary, strict: bool) -> serde_json::Value {
    serde_json::json!({
        "protocol": protocol,
        "seeds": summary.runs,
        "violations": summary.violations,
        "failed_seeds": summary.failed_seeds,
        "unchecked": summary.unchecked_seeds.len(),
        "unchecked_seeds": summary.unchecked_seeds,
        "strict": strict,
        "exhausted_seeds": summary.exhausted_seeds,
        "panicked_seeds": summary.panicked_seeds,
        "measured_failures": summary.measured_failures,
        "ops_ok": summary.ops_ok,
        "ops_fail": summary.ops_fail,
        "ops_info": summary.ops_info,
        "events": summary.events,
        "events_per_s": summary.events_per_second().round(),
        "sim_time_s": summary.sim_time as f64 / 1e9,
        "crashes": summary.crashes,
        "crash_points": summary.crash_points,
        "pauses": summary.pauses,
        "partitions": summary.partitions,
        "disk_faults": summary.disk_faults,
        "refused_starts": summary.refused_starts,
        "unknown_checks": summary.unknown_checks,
        "unknown_seeds": summary.unknown_seeds,
        "trace_hash": format!("{:016x}", summary.last_trace_hash),
        "counters": summary.counters,
        "reconfig": {
            "requests": summary.admin_requests,
            "done": summary.admin_ok,
            "refused": summary.admin_refused,
        },
        "models": summary
            .models
            .iter()
            .map(|(name, t)| {
                let tally = serde_json::json!({
                    "satisfied": t.satisfied,
                    "violated": t.violated,
                    "unknown": t.unknown,
                    "promised": t.promised,
                });
                (name.to_string(), tally)
            })
            .collect::<serde_json::Map<String, serde_json::Value>>(),
    })
}
