//! `quorate explore`: bounded exhaustive exploration of a small cluster (see
//! `quorate_sim::explore`), with a progress spinner, a results table, `--json`, and
//! `--replay` to re-run a reported schedule with its trace.

use crate::sim_cmd::{ProtocolName, ResolveName};
use anyhow::bail;
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};
use quorate_sim::explore::{
    default_depth, default_timers, default_warm_up, explore, parse_path, replay, ExploreConfig,
    ExploreReport,
};
use quorate_sim::{
    ChainHarness, Harness, MultiPaxosHarness, MultiPrimaryHarness, PaxosHarness,
    PrimaryBackupHarness, QuorumHarness, RaftHarness, ZabHarness,
};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// The protocol to explore.
    #[arg(long, value_enum)]
    protocol: ProtocolName,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Actions per schedule (default: the protocol's, sized to finish in seconds).
    #[arg(long)]
    depth: Option<usize>,
    /// Client operations (alternately writes and reads of one key), one client each. With 0
    /// only the per-step invariants judge the schedules (and the writes of --orphan-writes).
    #[arg(long, default_value_t = 2)]
    ops: usize,
    /// Message drops per schedule.
    #[arg(long, default_value_t = 1)]
    drops: usize,
    /// Node crashes per schedule (restarts are free).
    #[arg(long, default_value_t = 1)]
    crashes: usize,
    /// Timer firings per schedule after the warm-up (default: as many as the depth allows).
    #[arg(long)]
    timers: Option<usize>,
    /// Stop after this many expanded states (reported as a cut search).
    #[arg(long, default_value_t = 5_000_000)]
    states_max: u64,
    /// Explore from the boot instead of after the scripted warm-up prefix (a leader elected
    /// and followed by every node), which leader-based protocols use by default.
    #[arg(long, conflicts_with = "warm_up")]
    no_warm_up: bool,
    /// Start after the scripted warm-up prefix also for a protocol that does not by default
    /// (multipaxos: a leader elected and followed by every node).
    #[arg(long)]
    warm_up: bool,
    /// After the warm-up, pause its leader while the others elect a new one (the failover
    /// prefix); the search starts with the deposed leader resuming, still believing it leads.
    #[arg(long, conflicts_with = "no_warm_up")]
    failover: bool,
    /// With --failover, pause node N (1 to --nodes) instead of the leader, until the others
    /// lead in a later view without it: chain and craq, `--failover-node 3` pauses the
    /// warm-up's tail, which the head then cuts out (add --any-node for clients to reach it).
    #[arg(long, requires = "failover")]
    failover_node: Option<usize>,
    /// The failover prefix, then (the deposed leader still paused) every client commits a
    /// write of a key of its own at the new leader: the search starts with the deposed
    /// leader resuming behind them.
    #[arg(long, conflicts_with = "no_warm_up")]
    lagging: bool,
    /// --lagging, and the deposed leader resumes and rejoins by the script (every node
    /// follows the new leader, nothing in flight) before the search starts.
    #[arg(long, conflicts_with = "no_warm_up")]
    rejoin: bool,
    /// The failover prefix, with the leader paused right after one more round (its
    /// heartbeat): the followers' acknowledgements wait for it through the pause.
    #[arg(long, conflicts_with = "no_warm_up")]
    pause_after_round: bool,
    /// Explore every order of independent deliveries (no sleep sets): slower, for comparison.
    #[arg(long)]
    no_sleep_sets: bool,
    /// ZooKeeper-style sessions: clients send to any node, and a client whose write
    /// succeeded reads the key back with a plain (local) read at the node that answered.
    #[arg(long)]
    sessions: bool,
    /// Clients send to any up node, not only to those that believe they lead (CRAQ serves
    /// reads at every chain node).
    #[arg(long)]
    any_node: bool,
    /// In the warm-up, every client opens its session with a committed write of a key of
    /// its own (the servers then know the sessions: Raft's ReadIndex path).
    #[arg(long, conflicts_with = "no_warm_up")]
    open_sessions: bool,
    /// At every leaf, restart every node, deliver what is in flight, and read every key on
    /// every node (the simulator's final reads; multiprimary and quorum): lost writes.
    #[arg(long)]
    final_reads: bool,
    /// Idle timer firings per schedule (the node's state, timers and the network unchanged:
    /// a backup's heartbeat tick) that count against neither --timers nor --depth.
    #[arg(long, default_value_t = 0)]
    idle_timers: usize,
    /// Snapshot after this many applied entries instead of the simulator's tuning (64 for
    /// raft, chain and primary-backup): small enough for a few client writes to reach the
    /// snapshot paths. Raft, zab, multipaxos, primary-backup, chain and craq.
    #[arg(long)]
    snapshot_threshold: Option<u64>,
    /// After the warm-up, ROUNDS times (1 or 2; 2 when the flag is given alone): the leader
    /// takes a write that nothing it sends for it delivers, and is paused while the others
    /// elect a new leader (the first resumes for the second round). The search starts with
    /// the last deposed leader resuming, its write the only copy. Two rounds: Raft's Figure 8
    /// on three nodes. One round: a CRAQ head with a dirty write of its old view, whose old
    /// tail is the new view's tail. One more client per round sends the write.
    #[arg(long, value_name = "ROUNDS", num_args = 0..=1, default_missing_value = "2",
          value_parser = clap::value_parser!(u8).range(1..=2),
          conflicts_with_all = ["no_warm_up", "failover", "lagging", "rejoin", "pause_after_round"])]
    orphan_writes: Option<u8>,
    /// No crash points. By default a delivery, timer firing or client request whose step
    /// persists a record
    /// after it sent a message or answered a client is also explored with its node crashing
    /// right there (within --crashes): what it said is out, the record is lost.
    #[arg(long)]
    no_crash_points: bool,
    /// No change feeds. By default every node runs the server's change feed, checked after
    /// every action (agreement, contiguity) and at the end of a schedule (completeness).
    #[arg(long)]
    no_change_feeds: bool,
    /// The clients' writes expire after this many milliseconds (`SET k v PX ms`): reads
    /// past a deadline, followers that keep expired keys.
    #[arg(long)]
    ttl_ms: Option<u64>,
    /// The clients' writes are CAS operations, each from the value of the write before it
    /// (the first from the --preload write's 0, or from absent): writes that read the key.
    #[arg(long)]
    cas: bool,
    /// After the warm-up and before any other prefix, one more client writes k0 (a write
    /// of the clients' kind: with --ttl-ms it expires) and the script commits it: the
    /// search starts with the key written. With --failover after it, the new leader's
    /// clock is past the key's deadline before it proposed the key's expiry.
    #[arg(long, conflicts_with = "no_warm_up")]
    preload: bool,
    /// raft: a membership change. One spare node starts outside the configuration, and the
    /// warm-up's leader adds it as a learner; the search may then send, once, the request
    /// that replaces the last voter with it (joint consensus).
    #[arg(long, conflicts_with_all = ["no_warm_up", "orphan_writes"])]
    replace_voter: bool,
    /// raft: no pre-vote round before an election (a defence off, as `quorate sim
    /// --no-pre-vote`).
    #[arg(long)]
    no_pre_vote: bool,
    /// raft: no check-quorum (a leader that hears from no majority keeps leading, and
    /// followers grant votes while they follow one; a defence off). Lease reads go with it.
    #[arg(long)]
    no_check_quorum: bool,
    /// Late copies per schedule (the simulator's `stale` fault): a copy of any message a
    /// node sent while it believed it led, the prefixes' included, may be delivered again at
    /// any later point, after its sender was deposed or leads again. Not for zab, whose
    /// FIFO connections deliver nothing out of order.
    #[arg(long, default_value_t = 0)]
    stale: usize,
    /// Client attempts per schedule whose answer is lost after the request took effect
    /// (writes only): the client times out and sends the same request again, which the
    /// servers' session tables must recognise.
    #[arg(long, default_value_t = 0)]
    lost_replies: usize,
    /// multiprimary: how concurrent writes are resolved (crdt: the clients increment a
    /// PN-Counter and read it).
    #[arg(long, value_enum, default_value = "vv")]
    resolve: ResolveName,
    /// A deliberately broken variant, `protocol-bug` in kebab case, e.g.
    /// `vote-without-log-check` (needs a binary built with `--features bugs`).
    #[arg(long)]
    bug: Option<String>,
    /// Re-run one schedule (the dot-separated path a violation prints) and print its trace.
    #[arg(long)]
    replay: Option<String>,
    /// Print a JSON summary instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if args.failover_node.is_some_and(|n| n == 0 || n > args.nodes) {
        bail!("--failover-node must be one of the nodes, 1 to --nodes");
    }
    if (args.no_pre_vote || args.no_check_quorum) && args.protocol != ProtocolName::Raft {
        bail!("--no-pre-vote and --no-check-quorum are Raft's defences: use them with --protocol raft");
    }
    if args.resolve != ResolveName::Vv && args.protocol != ProtocolName::Multiprimary {
        bail!("--resolve chooses multi-primary's conflict resolution: use it with --protocol multiprimary");
    }
    let config = ExploreConfig {
        nodes: args.nodes,
        depth: args
            .depth
            .unwrap_or_else(|| default_depth(protocol_name(args.protocol))),
        ops: args.ops,
        drops: args.drops,
        crashes: args.crashes,
        timers: args
            .timers
            .or_else(|| default_timers(protocol_name(args.protocol))),
        states_max: args.states_max,
        warm_up: (default_warm_up(protocol_name(args.protocol)) || args.warm_up)
            && !args.no_warm_up,
        sleep_sets: !args.no_sleep_sets,
        sessions: args.sessions,
        idle_timers: args.idle_timers,
        failover: args.failover,
        failover_node: args.failover_node.map(|n| n.saturating_sub(1)),
        any_node: args.any_node,
        open_sessions: args.open_sessions,
        final_reads: args.final_reads,
        lagging: args.lagging,
        rejoin: args.rejoin,
        pause_after_round: args.pause_after_round,
        lost_replies: args.lost_replies,
        orphan_writes: args.orphan_writes.map_or(0, usize::from),
        crash_points: !args.no_crash_points,
        change_feeds: !args.no_change_feeds,
        ttl_ms: args.ttl_ms,
        cas: args.cas,
        preload: args.preload,
        replace_voter: args.replace_voter,
        stale: args.stale,
        ..ExploreConfig::default()
    };
    let bug = args.bug.as_deref();
    let snapshots = args.snapshot_threshold;
    if snapshots == Some(0) {
        bail!("--snapshot-threshold must be at least 1");
    }
    if snapshots.is_some()
        && matches!(
            args.protocol,
            ProtocolName::Paxos
                | ProtocolName::PaxosLivelock
                | ProtocolName::Quorum
                | ProtocolName::Multiprimary
        )
    {
        bail!("--snapshot-threshold: this protocol takes no snapshots of a log");
    }
    let leaderless = matches!(
        args.protocol,
        ProtocolName::Paxos
            | ProtocolName::PaxosLivelock
            | ProtocolName::Quorum
            | ProtocolName::Multiprimary
    );
    if leaderless && args.cas {
        bail!(
            "--cas: this protocol's clients write registers without read-modify-write \
             (single-decree Paxos writes once; quorum and multi-primary take no CAS); \
             use raft, multipaxos, zab, primary-backup, chain or craq"
        );
    }
    let prefixes = [
        (args.warm_up, "--warm-up"),
        (args.failover, "--failover"),
        (args.failover_node.is_some(), "--failover-node"),
        (args.open_sessions, "--open-sessions"),
        (args.lagging, "--lagging"),
        (args.rejoin, "--rejoin"),
        (args.pause_after_round, "--pause-after-round"),
        (args.orphan_writes.is_some(), "--orphan-writes"),
        (args.preload, "--preload"),
    ];
    let needs_leader = prefixes.iter().find(|(on, _)| *on);
    if let (true, Some((_, flag))) = (leaderless, needs_leader) {
        bail!(
            "{flag}: its scripted prefix elects a leader (and pauses or writes to it), and \
             this protocol has none; use raft, multipaxos, zab, primary-backup, chain or craq"
        );
    }
    if args.stale > 0 && matches!(args.protocol, ProtocolName::Zab) {
        bail!(
            "--stale: zab's peers talk over FIFO connections, which deliver nothing late or \
             out of order (a broken connection loses what it held: --drops)"
        );
    }
    if args.replace_voter && !matches!(args.protocol, ProtocolName::Raft) {
        bail!(
            "--replace-voter: membership changes are explored for raft only (the other \
             protocols' harnesses send no admin requests)"
        );
    }
    match args.protocol {
        ProtocolName::Raft => {
            let mut harness = RaftHarness::default();
            bugs::raft(&mut harness, bug)?;
            crate::sim_cmd::raft_defences_off(
                &mut harness.config,
                false,
                args.no_pre_vote,
                args.no_check_quorum,
            );
            if let Some(every) = snapshots {
                harness.config.snapshot_threshold = every;
            }
            drive(&harness, &config, &args)
        }
        ProtocolName::Paxos | ProtocolName::PaxosLivelock => {
            let mut harness = match args.protocol {
                ProtocolName::Paxos => PaxosHarness::default(),
                _ => PaxosHarness::without_backoff(),
            };
            bugs::paxos(&mut harness, bug)?;
            drive(&harness, &config, &args)
        }
        ProtocolName::Multipaxos => {
            let mut harness = MultiPaxosHarness::default();
            bugs::multipaxos(&mut harness, bug)?;
            if let Some(every) = snapshots {
                harness.config.snapshot_threshold = every;
            }
            drive(&harness, &config, &args)
        }
        ProtocolName::Zab => {
            let mut harness = ZabHarness::default();
            bugs::zab(&mut harness, bug)?;
            if let Some(every) = snapshots {
                harness.config.snapshot_threshold = every;
            }
            drive(&harness, &config, &args)
        }
        ProtocolName::PrimaryBackup | ProtocolName::Chain | ProtocolName::Craq => {
            let mut harness = match args.protocol {
                ProtocolName::PrimaryBackup => PrimaryBackupHarness::default().config,
                ProtocolName::Chain => ChainHarness::new(false).config,
                _ => ChainHarness::new(true).config,
            };
            bugs::primary_backup(&mut harness, bug)?;
            if let Some(every) = snapshots {
                harness.snapshot_threshold = every;
            }
            match args.protocol {
                ProtocolName::PrimaryBackup => {
                    drive(&PrimaryBackupHarness { config: harness }, &config, &args)
                }
                _ => drive(&ChainHarness { config: harness }, &config, &args),
            }
        }
        ProtocolName::Quorum => {
            let mut harness = QuorumHarness {
                config: quorate_protocols::quorum::QuorumConfig::default(),
                nodes: args.nodes,
            };
            bugs::quorum(&mut harness, bug)?;
            drive(&harness, &config, &args)
        }
        ProtocolName::Multiprimary => {
            let mut harness = MultiPrimaryHarness::new(args.resolve.mode());
            bugs::multiprimary(&mut harness, bug)?;
            drive(&harness, &config, &args)
        }
    }
}

/// The name `--protocol` takes, which keys the default depths.
fn protocol_name(protocol: ProtocolName) -> &'static str {
    match protocol {
        ProtocolName::Raft => "raft",
        ProtocolName::Paxos => "paxos",
        ProtocolName::PaxosLivelock => "paxos-livelock",
        ProtocolName::Multipaxos => "multipaxos",
        ProtocolName::Zab => "zab",
        ProtocolName::PrimaryBackup => "primary-backup",
        ProtocolName::Chain => "chain",
        ProtocolName::Craq => "craq",
        ProtocolName::Quorum => "quorum",
        ProtocolName::Multiprimary => "multiprimary",
    }
}

fn drive<H>(harness: &H, config: &ExploreConfig, args: &ExploreArgs) -> anyhow::Result<ExitCode>
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    if let Some(text) = &args.replay {
        let path = parse_path(text).map_err(anyhow::Error::msg)?;
        let (trace, violation) = replay(harness, config, &path).map_err(anyhow::Error::msg)?;
        for line in trace {
            println!("{line}");
        }
        return Ok(match violation {
            Some(violation) => {
                println!("VIOLATION: {violation}");
                ExitCode::from(1)
            }
            None => {
                println!("no violation on this schedule");
                ExitCode::SUCCESS
            }
        });
    }
    let spinner = ProgressBar::new_spinner();
    if args.json {
        spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} exploring {msg}")
            .expect("the template is valid"),
    );
    spinner.enable_steady_tick(Duration::from_millis(200));
    let name = harness.name();
    let report = explore(harness, config, &mut |states| {
        spinner.set_message(format!("{name}: {states} states"));
    });
    spinner.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&report, config))?);
    } else {
        print_table(&report, config);
    }
    if let Some(found) = &report.violation {
        eprintln!("VIOLATION: {}", found.violation);
        eprintln!(
            "  replay: {}",
            replay_command(args, config, &found.path_text())
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The command that re-runs one schedule: the explored bounds and every option given.
fn replay_command(args: &ExploreArgs, config: &ExploreConfig, path: &str) -> String {
    let mut command = format!(
        "quorate explore --protocol {} --nodes {} --ops {} --drops {} --crashes {}",
        protocol_name(args.protocol),
        config.nodes,
        config.ops,
        config.drops,
        config.crashes
    );
    let flags = [
        (args.no_warm_up, " --no-warm-up"),
        (args.warm_up, " --warm-up"),
        (args.failover, " --failover"),
        (args.sessions, " --sessions"),
        (args.any_node, " --any-node"),
        (args.open_sessions, " --open-sessions"),
        (args.final_reads, " --final-reads"),
        (args.lagging, " --lagging"),
        (args.rejoin, " --rejoin"),
        (args.pause_after_round, " --pause-after-round"),
        (args.preload, " --preload"),
        (args.cas, " --cas"),
        (args.replace_voter, " --replace-voter"),
        (args.no_crash_points, " --no-crash-points"),
        (args.no_change_feeds, " --no-change-feeds"),
        (args.no_pre_vote, " --no-pre-vote"),
        (args.no_check_quorum, " --no-check-quorum"),
    ];
    for (on, flag) in flags {
        if on {
            command.push_str(flag);
        }
    }
    let resolve = (args.resolve != ResolveName::Vv)
        .then(|| {
            args.resolve
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
        })
        .flatten();
    let options = [
        ("--timers", args.timers.map(|t| t.to_string())),
        (
            "--idle-timers",
            (args.idle_timers > 0).then(|| args.idle_timers.to_string()),
        ),
        ("--ttl-ms", args.ttl_ms.map(|ms| ms.to_string())),
        ("--stale", (args.stale > 0).then(|| args.stale.to_string())),
        ("--orphan-writes", args.orphan_writes.map(|n| n.to_string())),
        (
            "--lost-replies",
            (args.lost_replies > 0).then(|| args.lost_replies.to_string()),
        ),
        ("--resolve", resolve),
        ("--failover-node", args.failover_node.map(|n| n.to_string())),
        (
            "--snapshot-threshold",
            args.snapshot_threshold.map(|n| n.to_string()),
        ),
        ("--bug", args.bug.clone()),
    ];
    for (name, value) in options {
        if let Some(value) = value {
            command.push_str(&format!(" {name} {value}"));
        }
    }
    command.push_str(&format!(" --replay {path}"));
    command
}

fn print_table(report: &ExploreReport, config: &ExploreConfig) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "protocol",
        "depth",
        "states",
        "distinct",
        "max depth",
        "leaves",
        "histories (completed)",
        "exhaustive",
        "violation",
        "wall",
    ]);
    let row = vec![
        report.protocol.to_string(),
        config.depth.to_string(),
        report.states.to_string(),
        report.distinct.to_string(),
        report.max_depth.to_string(),
        report.leaves.to_string(),
        format!("{} ({})", report.histories, report.histories_completed),
        if report.cut { "no (cut)" } else { "yes" }.to_string(),
        if report.violation.is_some() {
            "yes"
        } else {
            "none"
        }
        .to_string(),
        format!("{:.1}s", report.elapsed.as_secs_f64()),
    ];
    table.add_row(
        row.into_iter()
            .map(|c| Cell::new(c).set_alignment(CellAlignment::Right)),
    );
    println!("{table}");
}

fn json(report: &ExploreReport, config: &ExploreConfig) -> serde_json::Value {
    serde_json::json!({
        "protocol": report.protocol,
        "nodes": config.nodes,
        "depth": config.depth,
        "ops": config.ops,
        "drops": config.drops,
        "crashes": config.crashes,
        "timers": config.timers,
        "warm_up": config.warm_up,
        "failover": config.failover,
        "failover_node": config.failover_node.map(|n| n + 1),
        "sessions": config.sessions,
        "any_node": config.any_node,
        "open_sessions": config.open_sessions,
        "final_reads": config.final_reads,
        "lagging": config.lagging,
        "rejoin": config.rejoin,
        "pause_after_round": config.pause_after_round,
        "idle_timers": config.idle_timers,
        "lost_replies": config.lost_replies,
        "orphan_writes": config.orphan_writes,
        "crash_points": config.crash_points,
        "change_feeds": config.change_feeds,
        "ttl_ms": config.ttl_ms,
        "cas": config.cas,
        "replace_voter": config.replace_voter,
        "stale": config.stale,
        "preload": config.preload,
        "sleep_sets": config.sleep_sets,
        "states": report.states,
        "distinct": report.distinct,
        "max_depth": report.max_depth,
        "leaves": report.leaves,
        "histories": report.histories,
        "histories_completed": report.histories_completed,
        "exhaustive": !report.cut,
        "elapsed_s": report.elapsed.as_secs_f64(),
        "violation": report.violation.as_ref().map(|v| v.violation.clone()),
        "replay": report.violation.as_ref().map(|v| v.path_text()),
    })
}

/// `--bug`: the protocols' deliberately broken variants, with the `bugs` feature.
#[cfg(feature = "bugs")]
mod bugs {
    use anyhow::bail;
    use quorate_protocols::{multipaxos, multiprimary, paxos, primary_backup, quorum, raft, zab};
    use quorate_sim::{
        MultiPaxosHarness, MultiPrimaryHarness, PaxosHarness, QuorumHarness, RaftHarness,
        ZabHarness,
    };

    /// Finds `name` among `variants` by their kebab-case names.
    fn pick<B: std::fmt::Debug + Copy>(
        variants: &[B],
        name: Option<&str>,
    ) -> anyhow::Result<Option<B>> {
        let Some(name) = name else { return Ok(None) };
        let kebab = |b: &B| {
            let mut out = String::new();
            for (i, c) in format!("{b:?}").chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        };
        match variants.iter().find(|b| kebab(b) == name) {
            Some(b) => Ok(Some(*b)),
            None => {
                let names: Vec<String> = variants.iter().map(kebab).collect();
                bail!(
                    "unknown --bug {name:?} for this protocol; it has: {}",
                    names.join(", ")
                )
            }
        }
    }

    pub fn raft(h: &mut RaftHarness, name: Option<&str>) -> anyhow::Result<()> {
        use raft::Bug::*;
        let all = [
            CommitPreviousTermByCounting,
            VoteWithoutLogCheck,
            JointNewMajorityOnly,
            CommitBeyondMatch,
            DurableLoop,
            StaleSnapshot,
            ReadIndexSkipsQuorum,
            LeaseFromAck,
            VoteBeforePersist,
            ReadSkipsDeadline,
            FollowerIgnoresExpiry,
            RmwSeesExpired,
        ];
        h.config.bug = pick(&all, name)?;
        Ok(())
    }

    pub fn paxos(h: &mut PaxosHarness, name: Option<&str>) -> anyhow::Result<()> {
        use paxos::Bug::*;
        h.config.bug = pick(&[AcceptorForgetsPromise, ProposerIgnoresAccepted], name)?;
        Ok(())
    }

    pub fn multipaxos(h: &mut MultiPaxosHarness, name: Option<&str>) -> anyhow::Result<()> {
        use multipaxos::Bug::*;
        h.config.bug = pick(&[AcceptorForgetsPromise, LeaderIgnoresAccepted], name)?;
        Ok(())
    }

    pub fn zab(h: &mut ZabHarness, name: Option<&str>) -> anyhow::Result<()> {
        use zab::Bug::*;
        h.config.bug = pick(
            &[AckBeforePersist, SkipSynchronization, ReplyBeforeApply],
            name,
        )?;
        Ok(())
    }

    pub fn primary_backup(
        c: &mut primary_backup::ReplicaConfig,
        name: Option<&str>,
    ) -> anyhow::Result<()> {
        use primary_backup::Bug::*;
        c.bug = pick(
            &[
                AckBeforeReplicated,
                AcceptOlderViews,
                RestartForgetsAcknowledged,
                FollowsPrimaryById,
                ReadSkipsConfirmation,
                VersionQueryAcrossViews,
            ],
            name,
        )?;
        Ok(())
    }

    pub fn quorum(h: &mut QuorumHarness, name: Option<&str>) -> anyhow::Result<()> {
        use quorum::Bug::*;
        h.config.bug = pick(&[VersionWithoutWriter, AckBeforePersist], name)?;
        Ok(())
    }

    pub fn multiprimary(h: &mut MultiPrimaryHarness, name: Option<&str>) -> anyhow::Result<()> {
        use multiprimary::Bug::*;
        h.config.bug = pick(&[ContextReplacesAll, NoSessionCheck], name)?;
        Ok(())
    }
}

/// Without the `bugs` feature, `--bug` says how to get it.
#[cfg(not(feature = "bugs"))]
mod bugs {
    macro_rules! refuse {
        ($($name:ident: $ty:ty),*) => {$(
            pub fn $name(_: &mut $ty, bug: Option<&str>) -> anyhow::Result<()> {
                match bug {
                    None => Ok(()),
                    Some(_) => anyhow::bail!(
                        "--bug needs a binary built with the bugs feature: \
                         cargo run --release -p quorate --features bugs -- explore ..."
                    ),
                }
            }
        )*};
    }
    refuse!(
        raft: quorate_sim::RaftHarness,
        paxos: quorate_sim::PaxosHarness,
        multipaxos: quorate_sim::MultiPaxosHarness,
        zab: quorate_sim::ZabHarness,
        primary_backup: quorate_protocols::primary_backup::ReplicaConfig,
        quorum: quorate_sim::QuorumHarness,
        multiprimary: quorate_sim::MultiPrimaryHarness
    );
}
