//! `quorate compare`: one workload, one fault schedule, the same seeds, every protocol side by
//! side.
//!
//! Each protocol (and each cluster size of `--nodes`) runs the same seeds of the same
//! simulated workload under the same faults. With `--faults leader-crash` the fault is a
//! single deterministic one: at `--crash-at` the node claiming leadership (the leader, the
//! primary, the chain's head; node 1 in leaderless protocols, where every node coordinates)
//! crashes, and it restarts `--downtime` later. A row per protocol reports what the runs
//! measured (see [`measure`]); `--json` prints the rows, `--html` writes them with plots
//! (see [`plot`]) to one self-contained page, and `--svg-dir` writes the plots alone.

pub mod measure;
pub mod plot;

use crate::sim_cmd::parse_duration;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};
use measure::{Row, RunMeasures};
use quorate_protocols::quorum::QuorumConfig;
use quorate_sim::{
    ChainHarness, Faults, Harness, LeaderCrash, MultiPaxosHarness, MultiPrimaryHarness,
    PaxosHarness, PrimaryBackupHarness, QuorumHarness, RaftHarness, ResolveMode, RunReport,
    SimConfig, ZabHarness,
};
use std::process::ExitCode;
use std::time::Duration;

/// The protocols `--protocols` names; `all` is every one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Contender {
    Raft,
    /// Single-decree Paxos: write-once registers (its workload is its own: CAS from absent).
    Paxos,
    Multipaxos,
    Zab,
    PrimaryBackup,
    Chain,
    Craq,
    /// Dynamo-style quorums, N=3 R=2 W=2, with ABD write-back.
    Quorum,
    /// Multi-primary, last-write-wins on hybrid logical clocks.
    MultiprimaryLww,
    /// Multi-primary, version vectors: concurrent writes kept as siblings.
    MultiprimaryVv,
}

/// The workloads of a comparison: gets and puts of unique values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareWorkload {
    /// 90% gets, 10% puts.
    ReadHeavy,
    /// 10% gets, 90% puts.
    WriteHeavy,
    /// Half gets, half puts.
    Mixed,
    /// Half gets, half puts, every client on one key.
    HotKey,
}

/// The fault schedules of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareFaults {
    /// A clean network, no crashes.
    None,
    /// One deterministic crash of the leader at --crash-at, restarted after --downtime.
    LeaderCrash,
    /// Random partitions (isolated nodes, minority/majority, one-way, bridges) drawn per seed.
    Partition,
    /// Every fault of `quorate sim --faults all`, plus the leader crash.
    All,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// all, or a comma-separated list of: raft, paxos, multipaxos, zab, primary-backup,
    /// chain, craq, quorum, multiprimary-lww, multiprimary-vv.
    #[arg(long, default_value = "all")]
    protocols: String,
    #[arg(long, value_enum, default_value = "mixed")]
    workload: CompareWorkload,
    #[arg(long, value_enum, default_value = "leader-crash")]
    faults: CompareFaults,
    /// Seeds per protocol (the same seeds for every protocol), from --first-seed.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Cluster sizes, comma-separated (e.g. 3,5,7): one row per protocol and size.
    #[arg(long, default_value = "5")]
    nodes: String,
    /// Length of the fault phase in simulated time.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    duration: Duration,
    /// When the leader crashes (leader-crash and all).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    crash_at: Duration,
    /// How long the crashed leader stays down.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    downtime: Duration,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Distinct keys (hot-key uses one).
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Share of reads sent to a random replica with ReadMode::Local: their staleness is
    /// measured (the "stale reads" column), not judged.
    #[arg(long, default_value_t = 0.1)]
    local_reads: f64,
    /// Print the rows as JSON, as the last line of output.
    #[arg(long)]
    json: bool,
    /// Write the table and the plots to one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Write the plots as standalone SVG files into this directory.
    #[arg(long, value_name = "DIR")]
    svg_dir: Option<std::path::PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
}

impl Contender {
    const ALL: [Contender; 10] = [
        Contender::Raft,
        Contender::Paxos,
        Contender::Multipaxos,
        Contender::Zab,
        Contender::PrimaryBackup,
        Contender::Chain,
        Contender::Craq,
        Contender::Quorum,
        Contender::MultiprimaryLww,
        Contender::MultiprimaryVv,
    ];

    fn name(self) -> &'static str {
        match self {
            Contender::Raft => "raft",
            Contender::Paxos => "paxos",
            Contender::Multipaxos => "multipaxos",
            Contender::Zab => "zab",
            Contender::PrimaryBackup => "primary-backup",
            Contender::Chain => "chain",
            Contender::Craq => "craq",
            Contender::Quorum => "quorum",
            Contender::MultiprimaryLww => "multiprimary-lww",
            Contender::MultiprimaryVv => "multiprimary-vv",
        }
    }
}

/// The protocols of `--protocols`.
fn parse_protocols(text: &str) -> anyhow::Result<Vec<Contender>> {
    if text.trim() == "all" {
        return Ok(Contender::ALL.to_vec());
    }
    let mut list = Vec::new();
    for name in text.split(',').map(str::trim) {
        let Ok(contender) = Contender::from_str(name, true) else {
            let names: Vec<&str> = Contender::ALL.iter().map(|c| c.name()).collect();
            bail!(
                "unknown protocol {name:?}: expected all, or a list of {}",
                names.join(", ")
            );
        };
        if !list.contains(&contender) {
            list.push(contender);
        }
    }
    Ok(list)
}

/// The cluster sizes of `--nodes`.
fn parse_nodes(text: &str) -> anyhow::Result<Vec<usize>> {
    let mut sizes = Vec::new();
    for part in text.split(',').map(str::trim) {
        let n: usize = part
            .parse()
            .with_context(|| format!("--nodes {part:?} is not a cluster size (e.g. 3,5,7)"))?;
        if !(1..=64).contains(&n) {
            bail!("--nodes {n}: cluster sizes go from 1 to 64");
        }
        sizes.push(n);
    }
    Ok(sizes)
}

/// The simulator's configuration for one cluster size.
fn sim_config(args: &CompareArgs, nodes: usize) -> anyhow::Result<SimConfig> {
    let leader_crash = LeaderCrash {
        at: args.crash_at,
        downtime: args.downtime,
    };
    let (faults, crash) = match args.faults {
        CompareFaults::None => (Faults::none(), None),
        CompareFaults::LeaderCrash => (Faults::none(), Some(leader_crash)),
        CompareFaults::Partition => (
            Faults::parse("partition").map_err(anyhow::Error::msg)?,
            None,
        ),
        CompareFaults::All => (Faults::all(), Some(leader_crash)),
    };
    let mut config = SimConfig {
        nodes,
        faults,
        duration: args.duration,
        leader_crash: crash,
        count_message_bytes: true,
        check_time_limit: Duration::from_secs(20),
        ..SimConfig::default()
    };
    let workload = &mut config.workload;
    workload.clients = args.clients;
    workload.keys = args.keys;
    workload.local_reads = args.local_reads;
    let (get, put) = match args.workload {
        CompareWorkload::ReadHeavy => (90, 10),
        CompareWorkload::WriteHeavy => (10, 90),
        CompareWorkload::Mixed | CompareWorkload::HotKey => (50, 50),
    };
    workload.mix = quorate_sim::Mix {
        get,
        put,
        append: 0,
        cas: 0,
        delete: 0,
    };
    if args.workload == CompareWorkload::HotKey {
        workload.keys = 1;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let protocols = parse_protocols(&args.protocols)?;
    let sizes = parse_nodes(&args.nodes)?;
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let configs: Vec<SimConfig> = sizes
        .iter()
        .map(|n| sim_config(&args, *n))
        .collect::<anyhow::Result<_>>()?;
    let seeds: Vec<u64> = (args.first_seed..args.first_seed.saturating_add(args.seeds)).collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = (protocols.len() * sizes.len() * seeds.len()) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} runs ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for config in &configs {
        for protocol in &protocols {
            bar.set_prefix(format!("{} n={}", protocol.name(), config.nodes));
            rows.push(compare_one(*protocol, config, &seeds, jobs, &bar));
        }
    }
    bar.finish_and_clear();
    print_table(&rows);
    print_notes(&rows, &args);
    let command = command_line(&args);
    let phase = args.duration.as_nanos() as u64;
    let crash_at = configs[0].leader_crash.map(|c| c.at.as_nanos() as u64);
    let plots = plot::Plots::new(&rows, phase, crash_at, sizes[0]);
    if let Some(dir) = &args.svg_dir {
        plots.write_svgs(dir)?;
        eprintln!("plots: written to {}", dir.display());
    }
    if let Some(path) = &args.html {
        let page = plot::html_page(&rows, &plots, &command);
        std::fs::write(path, page)
            .with_context(|| format!("cannot write the HTML report to {}", path.display()))?;
        eprintln!("report: written to {}", path.display());
    }
    if args.json {
        let json = serde_json::json!({
            "command": command,
            "workload": args.workload.to_possible_value().expect("not skipped").get_name(),
            "faults": args.faults.to_possible_value().expect("not skipped").get_name(),
            "seeds": args.seeds,
            "first_seed": args.first_seed,
            "duration_s": args.duration.as_secs_f64(),
            "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        });
        println!("{json}");
    }
    let violations: u64 = rows.iter().map(|r| r.violations).sum();
    Ok(if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs one protocol over `seeds` at `config`'s cluster size.
fn compare_one(
    protocol: Contender,
    config: &SimConfig,
    seeds: &[u64],
    jobs: usize,
    bar: &ProgressBar,
) -> Row {
    let nodes = config.nodes;
    let runs = match protocol {
        Contender::Raft => run_seeds(&RaftHarness::default(), config, seeds, jobs, bar),
        Contender::Paxos => run_seeds(&PaxosHarness::default(), config, seeds, jobs, bar),
        Contender::Multipaxos => run_seeds(&MultiPaxosHarness::default(), config, seeds, jobs, bar),
        Contender::Zab => run_seeds(&ZabHarness::default(), config, seeds, jobs, bar),
        Contender::PrimaryBackup => {
            run_seeds(&PrimaryBackupHarness::default(), config, seeds, jobs, bar)
        }
        Contender::Chain => run_seeds(&ChainHarness::new(false), config, seeds, jobs, bar),
        Contender::Craq => run_seeds(&ChainHarness::new(true), config, seeds, jobs, bar),
        Contender::Quorum => {
            let n = 3.min(nodes);
            let harness = QuorumHarness {
                config: QuorumConfig {
                    n,
                    r: n / 2 + 1,
                    w: n / 2 + 1,
                    ..QuorumConfig::default()
                },
                nodes,
            };
            run_seeds(&harness, config, seeds, jobs, bar)
        }
        Contender::MultiprimaryLww => {
            let harness = MultiPrimaryHarness::new(ResolveMode::Lww);
            run_seeds(&harness, config, seeds, jobs, bar)
        }
        Contender::MultiprimaryVv => {
            let harness = MultiPrimaryHarness::new(ResolveMode::VersionVectors);
            run_seeds(&harness, config, seeds, jobs, bar)
        }
    };
    let phase = config.duration.as_nanos() as u64;
    measure::row(protocol.name(), nodes, &runs, phase)
}

/// Runs `seeds` on `jobs` threads, measuring each run as it ends (then dropping its
/// history); results in seed order.
fn run_seeds<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seeds: &[u64],
    jobs: usize,
    bar: &ProgressBar,
) -> Vec<(RunReport, RunMeasures)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let phase = config.duration.as_nanos() as u64;
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<(RunReport, RunMeasures)>>> =
        Mutex::new(seeds.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, seeds.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(index) else {
                    break;
                };
                let mut report = quorate_sim::run(harness, config, *seed, None);
                let measures = measure::measure(&report, phase);
                report.history = Vec::new();
                if let Some(first) = report.violations.first() {
                    let more = report.violations.len() - 1;
                    bar.suspend(|| {
                        eprintln!(
                            "{} n={} seed {seed}: VIOLATION {first} ({more} more)",
                            harness.name(),
                            config.nodes
                        )
                    });
                }
                let mut done = done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                done[index] = Some((report, measures));
                bar.inc(1);
            });
        }
    });
    done.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|run| run.expect("every seed ran"))
        .collect()
}

/// The command that reproduces this comparison.
fn command_line(args: &CompareArgs) -> String {
    let name =
        |v: Option<clap::builder::PossibleValue>| v.expect("not skipped").get_name().to_string();
    let mut command = format!(
        "quorate compare --protocols {} --workload {} --faults {} --seeds {} --nodes {} \
         --duration {}",
        args.protocols,
        name(args.workload.to_possible_value()),
        name(args.faults.to_possible_value()),
        args.seeds,
        args.nodes,
        humantime::format_duration(args.duration),
    );
    if matches!(args.faults, CompareFaults::LeaderCrash | CompareFaults::All) {
        command += &format!(
            " --crash-at {} --downtime {}",
            humantime::format_duration(args.crash_at),
            humantime::format_duration(args.downtime)
        );
    }
    if args.first_seed != 0 {
        command += &format!(" --first-seed {}", args.first_seed);
    }
    if args.clients != 5 || args.keys != 4 || args.local_reads != 0.1 {
        command += &format!(
            " --clients {} --keys {} --local-reads {}",
            args.clients, args.keys, args.local_reads
        );
    }
    command
}

/// A cell's text: `-` when the quantity does not apply.
fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

/// The table's cells of `row`, in the order of [`HEADER`].
pub fn cells(row: &Row) -> Vec<String> {
    let unavailability = row.unavailability_ms.map(|(mean, worst)| {
        let missing = row.crashed_runs - row.recovered_runs;
        let never = if missing > 0 {
            format!(" ({missing} never)")
        } else {
            String::new()
        };
        format!("{mean:.0} / {worst:.0}{never}")
    });
    let lww = row
        .lww_discarded
        .zip(row.lww_puts_acked)
        .map(|(lost, acked)| format!("{lost} of {acked}"));
    vec![
        row.protocol.to_string(),
        row.nodes.to_string(),
        format!("{:.0}", row.throughput),
        format!("{:.1}", row.latency_ms[0]),
        format!("{:.1}", row.latency_ms[1]),
        format!("{:.1}", row.latency_ms[2]),
        format!("{:.1}", row.messages_per_op),
        format!("{:.0}", row.bytes_per_op),
        format!("{:.2}", row.fsyncs_per_op),
        or_dash(unavailability),
        or_dash(row.stale_rate().map(|r| format!("{:.1}%", 100.0 * r))),
        models_held(row),
        or_dash(lww),
        row.sibling_reads.to_string(),
        row.violations.to_string(),
    ]
}

/// The table's column names.
pub const HEADER: [&str; 15] = [
    "protocol",
    "n",
    "ops/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "msgs/op",
    "bytes/op",
    "fsyncs/op",
    "unavailable ms (mean / max)",
    "stale local reads",
    "models held (runs)",
    "LWW discarded",
    "sibling reads",
    "violations",
];

/// Which models held in how many runs, e.g. `linearizable 20/20`.
fn models_held(row: &Row) -> String {
    let models: Vec<String> = row
        .models
        .iter()
        .map(|(name, tally)| {
            let measured = if tally.promised { "" } else { " (measured)" };
            let unknown = if tally.unknown > 0 {
                format!(", {} unknown", tally.unknown)
            } else {
                String::new()
            };
            format!(
                "{name} {}/{}{unknown}{measured}",
                tally.satisfied, row.seeds
            )
        })
        .collect();
    models.join(", ")
}

fn print_table(rows: &[Row]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(HEADER.to_vec());
    for row in rows {
        table.add_row(cells(row).into_iter().enumerate().map(|(k, c)| {
            let align = if k == 0 || k == 11 {
                CellAlignment::Left
            } else {
                CellAlignment::Right
            };
            Cell::new(c).set_alignment(align)
        }));
    }
    println!("{table}");
}

/// What the table's units mean, and the failing seeds to replay.
fn print_notes(rows: &[Row], args: &CompareArgs) {
    println!(
        "latencies and ops/s in simulated time; msgs, bytes and fsyncs per acknowledged \
         operation over the whole run; unavailable: from the leader crash to the first \
         acknowledged write invoked after it"
    );
    for row in rows.iter().filter(|r| !r.failed_seeds.is_empty()) {
        let mut replay = command_line(args);
        for (flag, value) in [
            ("--protocols", row.protocol.to_string()),
            ("--nodes", row.nodes.to_string()),
            ("--seeds", "1".to_string()),
        ] {
            replay = replace_flag(&replay, flag, &value);
        }
        let first = row.failed_seeds[0].to_string();
        if replay.contains(" --first-seed ") {
            replay = replace_flag(&replay, "--first-seed", &first);
        } else {
            replay += &format!(" --first-seed {first}");
        }
        println!(
            "{} n={}: violations in seeds {:?}; replay one with: {replay}",
            row.protocol, row.nodes, row.failed_seeds
        );
    }
}

/// `command` with the value after `flag` replaced by `value`.
fn replace_flag(command: &str, flag: &str, value: &str) -> String {
    let mut words: Vec<String> = command.split(' ').map(str::to_string).collect();
    if let Some(k) = words.iter().position(|w| w == flag) {
        if k + 1 < words.len() {
            words[k + 1] = value.to_string();
        }
    }
    words.join(" ")
}
