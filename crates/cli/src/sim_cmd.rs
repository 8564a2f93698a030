//! `quorate sim`: seeded simulation runs with a progress bar, a table and a JSON summary.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};
use quorate_sim::{
    ChainHarness, Faults, Harness, MultiPaxosHarness, PaxosHarness, PrimaryBackupHarness,
    RaftHarness, ReadMix, RunReport, SimConfig, Summary, ZabHarness,
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
    /// Faults to inject: all, none, or a comma-separated list of
    /// loss, duplicate, reorder, partition, crash, clock, disk.
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
    /// Skip the linearizability check of histories.
    #[arg(long)]
    no_check: bool,
    /// Print one line per simulated event (single seed only).
    #[arg(long)]
    trace: bool,
    /// Write the client history of the run as JSON lines (single seed only).
    #[arg(long, value_name = "FILE")]
    history: Option<std::path::PathBuf>,
    /// Print a JSON summary as the last line of output.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 4s, 500ms, 1m)"))
}

pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let faults = Faults::parse(&args.faults).map_err(anyhow::Error::msg)?;
    let mut config = SimConfig {
        nodes: args.nodes,
        faults,
        duration: args.duration,
        check_history: !args.no_check,
        reconfig: args.reconfig,
        ..SimConfig::default()
    };
    config.workload.clients = args.clients;
    config.workload.keys = args.keys;
    config.workload.reads = match &args.reads {
        Some(text) => ReadMix::parse(text).map_err(anyhow::Error::msg)?,
        None if args.protocol == ProtocolName::Zab => ZabHarness::READS,
        None => ReadMix::default(),
    };
    config.workload.local_reads = args
        .local_reads
        .unwrap_or_else(|| args.protocol.default_local_reads());
    config.validate().map_err(anyhow::Error::msg)?;
    if args.seed.is_none() && (args.trace || args.history.is_some()) {
        bail!("--trace and --history need a single run: add --seed N");
    }
    if args.seed.is_none() && args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    match args.protocol {
        ProtocolName::Raft => simulate(&RaftHarness::default(), &config, &args),
        ProtocolName::Paxos => simulate(&PaxosHarness::default(), &config, &args),
        ProtocolName::PaxosLivelock => simulate(&PaxosHarness::without_backoff(), &config, &args),
        ProtocolName::Multipaxos => simulate(&MultiPaxosHarness::default(), &config, &args),
        ProtocolName::Zab => simulate(&ZabHarness::default(), &config, &args),
        ProtocolName::PrimaryBackup => simulate(&PrimaryBackupHarness::default(), &config, &args),
        ProtocolName::Chain => simulate(&ChainHarness::new(false), &config, &args),
        ProtocolName::Craq => simulate(&ChainHarness::new(true), &config, &args),
    }
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
    if args.json {
        println!("{}", json_summary(harness.name(), &summary));
    }
    Ok(if summary.violations == 0 {
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
    let trace: Option<&mut dyn FnMut(&str)> = if args.trace { Some(&mut print) } else { None };
    let report = quorate_sim::run(harness, config, seed, trace);
    if let Some(path) = &args.history {
        // Local reads promise no linearizability: the file holds what `quorate check` judges.
        let modes = vec![(); report.history.len()];
        let (history, _, _) =
            quorate_sim::staleness::split_local_reads(&report.history, &report.local_reads, &modes);
        let mut text = String::new();
        for event in &history {
            text += &event.to_json_line();
            text.push('\n');
        }
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the history to {}", path.display()))?;
        eprintln!(
            "history: {} events written to {}{}",
            history.len(),
            path.display(),
            if report.local_reads.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} local reads left out: they may be stale by design)",
                    report.local_reads.len()
                )
            }
        );
    }
    eprintln!("trace hash: {:016x}", report.trace_hash);
    Ok(report)
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
    let reports = quorate_sim::run_many(harness, config, &seeds, jobs, |report| {
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
         --keys {} --seed {seed} --trace",
        config.nodes,
        config.faults,
        if config.reconfig { " --reconfig" } else { "" },
        humantime::format_duration(config.duration),
        args.clients,
        args.keys
    );
    if let Some(reads) = &args.reads {
        command += &format!(" --reads {reads}");
    }
    if config.workload.local_reads > 0.0 {
        command += &format!(" --local-reads {}", config.workload.local_reads);
    }
    command
}

fn print_violations(reports: &[RunReport], protocol: &str, config: &SimConfig, args: &SimArgs) {
    let failed: Vec<&RunReport> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .collect();
    for report in failed.iter().take(10) {
        eprintln!("seed {}: VIOLATION", report.seed);
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
        summary.events.to_string(),
        format!("{:.0}", summary.events_per_second()),
        format!("{:.1}s", elapsed.as_secs_f64()),
    ];
    table.add_row(
        row.into_iter()
            .map(|c| Cell::new(c).set_alignment(CellAlignment::Right)),
    );
    println!("{table}");
    if !summary.counters.is_empty() {
        let counters: Vec<String> = summary
            .counters
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        println!("counters: {}", counters.join(", "));
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
    if summary.unknown_checks > 0 {
        println!(
            "note: {} histories were too large to check in the time limit (verdict unknown)",
            summary.unknown_checks
        );
    }
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

fn json_summary(protocol: &str, summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "protocol": protocol,
        "seeds": summary.runs,
        "violations": summary.violations,
        "failed_seeds": summary.failed_seeds,
        "ops_ok": summary.ops_ok,
        "ops_fail": summary.ops_fail,
        "ops_info": summary.ops_info,
        "events": summary.events,
        "events_per_s": summary.events_per_second().round(),
        "sim_time_s": summary.sim_time as f64 / 1e9,
        "crashes": summary.crashes,
        "partitions": summary.partitions,
        "unknown_checks": summary.unknown_checks,
        "trace_hash": format!("{:016x}", summary.last_trace_hash),
        "counters": summary.counters,
        "reconfig": {
            "requests": summary.admin_requests,
            "done": summary.admin_ok,
            "refused": summary.admin_refused,
        },
    })
}
