//! `quorate torture`: real node processes under a nemesis, their history checked
//! (the harness is `quorate-torture`; this file parses flags and prints the report).
//!
//! Exit status: 0 every promised model holds, 1 a violation, 2 bad input, 3 a promised
//! model could not be decided (never counted as a pass).

use crate::cluster_cmd::parse_tuning;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::{ProgressBar, ProgressStyle};
use quorate_server::PROTOCOLS;
use quorate_torture::nemesis::Fault;
use quorate_torture::{Options, Summary};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    quorate torture --protocol raft --nodes 3 --duration 60s --nemesis kill,pause,partition --seed 1\n  \
    quorate torture --protocol zab --duration 20s --nemesis kill,pause --report /tmp/zab --json\n  \
    quorate torture --protocol quorum --nodes 5 --nemesis partition,kill --duration 60s\n  \
    sudo quorate torture --protocol raft --netns --duration 30s   # a namespace per node\n  \
    quorate check DIR/history.jsonl --model linearizable   # re-check a run's history")]
pub struct TortureArgs {
    /// The protocol every node runs.
    #[arg(long, default_value = "raft", value_parser = clap::builder::PossibleValuesParser::new(PROTOCOLS))]
    protocol: String,
    /// How many node processes (1 to 9).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// How long clients run under the nemesis (final reads follow).
    #[arg(long, default_value = "60s", value_parser = duration)]
    duration: Duration,
    /// Concurrent client tasks (each a sequence of logical processes).
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Register keys r0.. (and, where APPEND exists, list keys l0..).
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Faults, comma-separated: kill, pause, partition, clock, disk; or none.
    #[arg(long, default_value = "kill,pause,partition")]
    nemesis: String,
    /// Seed of the nemesis schedule and the client workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Report directory (history, logs, summary) [default: a new directory under the
    /// system's temporary directory].
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// A protocol tunable for every node, as KEY=VALUE (repeatable), as `quorate cluster`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tuning)]
    tuning: Vec<(String, toml::Value)>,
    /// How long a client waits for one reply before the operation is `info`.
    #[arg(long, default_value = "3s", value_parser = duration)]
    timeout: Duration,
    /// Run every node in its own network namespace, with its own address and port space,
    /// reachable only through the harness (the multi-host shape; needs root and iproute2).
    #[arg(long)]
    netns: bool,
    /// Give half of the register writes a time to live (`SET k v PX <ms>`), have clients
    /// use leases of that time to live too (`LEASE GRANT`, `SET k v LEASE id`, `LEASE
    /// KEEPALIVE`, `LEASE REVOKE`), and check that no value goes before, or is read after,
    /// its expiry or its lease's end (raft only; e.g. 300ms).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    ttl: Option<Duration>,
    /// Print summary.json to stdout instead of the table.
    #[arg(long)]
    json: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 20s, 1m)"))
}

fn faults(text: &str) -> Result<Vec<Fault>, String> {
    if text == "none" {
        return Ok(Vec::new());
    }
    text.split(',').map(|f| f.trim().parse()).collect()
}

pub fn run(args: TortureArgs) -> anyhow::Result<ExitCode> {
    let nemesis = faults(&args.nemesis).map_err(anyhow::Error::msg)?;
    let report = args.report.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        std::env::temp_dir().join(format!(
            "quorate-torture-{}-seed{}-{stamp}",
            args.protocol, args.seed
        ))
    });
    let opts = Options {
        binary: std::env::current_exe()?,
        protocol: args.protocol.clone(),
        nodes: args.nodes,
        duration: args.duration,
        clients: args.clients,
        keys: args.keys,
        nemesis,
        seed: args.seed,
        report,
        tuning: args.tuning.clone(),
        timeout: args.timeout,
        netns: args.netns,
        ttl: args.ttl,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let bar = if !args.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(args.duration.as_secs());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} [{bar:30}] {pos}/{len} s {msg}")
                .expect("template"),
        );
        Some(bar)
    } else {
        None
    };
    let progress = |secs: u64, ok: u64| {
        if let Some(bar) = &bar {
            bar.set_position(secs);
            bar.set_message(format!("{ok} ok"));
        }
    };
    let summary = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let flag = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("interrupted: stopping every node");
            flag.store(true, Ordering::Relaxed);
        });
        quorate_torture::run(&opts, stop.clone(), &progress).await
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let history = summary.report_dir.join("history.jsonl");
    if history.exists() {
        let page = summary.report_dir.join("history.html");
        let title = format!("quorate torture --protocol {}", summary.protocol);
        if let Err(why) = crate::view::history_file_page(&history, &page, title) {
            eprintln!("no history.html: {why:#}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::from(summary.exit_code))
}

fn print_summary(s: &Summary) {
    println!(
        "torture: {} × {} nodes, {} s, {} clients, seed {}, nemesis {:?}",
        s.protocol, s.nodes, s.duration_s, s.clients, s.seed, s.nemesis
    );
    for skipped in &s.skipped {
        println!("  {skipped}");
    }
    let mut ops = Table::new();
    ops.load_preset(UTF8_FULL_CONDENSED);
    ops.set_header(["op", "ok", "fail", "info"]);
    for (f, [ok, fail, info]) in &s.ops.by_f {
        ops.add_row([
            f.clone(),
            ok.to_string(),
            fail.to_string(),
            info.to_string(),
        ]);
    }
    ops.add_row([
        "total".to_string(),
        s.ops.ok.to_string(),
        s.ops.fail.to_string(),
        s.ops.info.to_string(),
    ]);
    println!("{ops}");
    println!(
        "CLIENT RESUME: {} tried, {} ok; nemesis events: {}",
        s.resume_tried, s.resume_ok, s.nemesis_events
    );
    let mut models = Table::new();
    models.load_preset(UTF8_FULL_CONDENSED);
    models.set_header(["model", "promise", "verdict", "detail"]);
    for m in &s.models {
        models.add_row([
            m.model.clone(),
            format!("{:?}", m.promise).to_lowercase(),
            m.verdict.clone(),
            m.detail.clone(),
        ]);
    }
    println!("{models}");
    for example in &s.appends.examples {
        println!("  {example}");
    }
    for r in &s.recoveries {
        println!(
            "recovery: node {} after {}: {} {}",
            r.node, r.damage, r.outcome, r.detail
        );
    }
    let mut nodes = Table::new();
    nodes.load_preset(UTF8_FULL_CONDENSED);
    nodes.set_header(["node", "pid", "running", "RSS (kB)", "fds"]);
    for n in &s.nodes_end {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        nodes.add_row([
            n.id.to_string(),
            opt(n.pid.map(|p| p.to_string())),
            n.running.to_string(),
            opt(n.rss_kb.map(|v| v.to_string())),
            opt(n.fds.map(|v| v.to_string())),
        ]);
    }
    println!("{nodes}");
    let verdict = match s.exit_code {
        0 => "PASS: every promised model holds",
        1 => "FAIL: a promised model is violated",
        _ => "UNKNOWN: a promised model could not be decided",
    };
    println!("{verdict}; report in {}", s.report_dir.display());
}
