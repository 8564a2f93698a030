//! `quorate torture`: Jepsen in a box.
//!
//! Starts N real `quorate serve` processes (each on its own loopback address, peers talking
//! through a user-space proxy per directed link), runs concurrent RESP clients against them,
//! injects faults (kill -9, SIGSTOP, partitions, disk damage, clock skew), records every
//! operation in a history, and checks the history with quorate-check for the models the
//! protocol promises. Everything lands in a report directory:
//!
//! ```text
//! DIR/history.jsonl   every invocation and completion (quorate check reads it)
//! DIR/nemesis.log     every fault, with its time
//! DIR/nN.log          each node's own log; DIR/nN/ its data; DIR/nN.toml its config
//! DIR/summary.json    ops ok/fail/info, verdicts, append anomalies, recoveries, resources
//! ```
//!
//! [`run`] never leaves a process behind: every node is stopped by PID at the end, on
//! `stop` (Ctrl-C), and by `Drop` if the harness itself fails.

pub mod cluster;
pub mod nemesis;
pub mod netns;
pub mod proxy;
pub mod resp;
pub mod txn;
pub mod verdict;
pub mod workload;

use anyhow::{bail, Context};
use nemesis::{Fault, Log, Recovery};
use proxy::Links;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use verdict::{AppendStats, ModelVerdict, Plan, Promise};
use workload::{Kind, Shared};

/// Exit codes.
pub const EXIT_VALID: u8 = 0;
pub const EXIT_VIOLATION: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_UNKNOWN: u8 = 3;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `quorate` executable whose `serve` subcommand runs a node.
    pub binary: PathBuf,
    pub protocol: String,
    pub nodes: u64,
    pub duration: Duration,
    pub clients: usize,
    pub keys: usize,
    pub nemesis: Vec<Fault>,
    pub seed: u64,
    pub report: PathBuf,
    pub tuning: Vec<(String, toml::Value)>,
    /// How long a client waits for one reply.
    pub timeout: Duration,
    /// Every node in its own network namespace (root only; see [`netns`]).
    pub netns: bool,
    /// Half of the register writes expire after this long (`SET k v PX ms`), and clients
    /// attach others to leases of this time to live (Raft only).
    pub ttl: Option<Duration>,
}

/// How far a node's clock may read from real time when no clock fault runs, in
/// milliseconds: every node reads this machine's clock; the margin covers the client's
/// monotonic clock and the system clock being slewed apart over a run.
const CLOCK_ERROR_MS_LOCAL: u64 = 25;

/// Operation counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpCounts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Per operation (`get`, `put`, ...): `[ok, fail, info]`.
    pub by_f: BTreeMap<String, [u64; 3]>,
}

/// A node at the end of the run.
#[derive(Clone, Debug, Serialize)]
pub struct NodeEnd {
    pub id: u64,
    pub pid: Option<u32>,
    pub running: bool,
    pub rss_kb: Option<u64>,
    pub fds: Option<usize>,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub protocol: String,
    pub nodes: u64,
    pub seed: u64,
    pub duration_s: f64,
    pub clients: usize,
    pub keys: usize,
    pub nemesis: Vec<Fault>,
    pub skipped: Vec<String>,
    pub ops: OpCounts,
    pub resume_tried: u64,
    pub resume_ok: u64,
    pub models: Vec<ModelVerdict>,
    pub appends: AppendStats,
    pub nemesis_events: usize,
    pub recoveries: Vec<Recovery>,
    pub nodes_end: Vec<NodeEnd>,
    /// 0 valid, 1 violation, 3 unknown.
    pub exit_code: u8,
    pub report_dir: PathBuf,
}

/// The exit code of a set of verdicts: a promised violation is 1, else a promised unknown
/// (or no successful operation at all) is 3, else 0.
pub fn exit_code(models: &[ModelVerdict], ok_ops: u64) -> u8 {
    let promised = || models.iter().filter(|m| m.promise == Promise::Promised);
    if promised().any(|m| m.verdict == "invalid") {
        EXIT_VIOLATION
    } else if ok_ops == 0 || promised().any(|m| m.verdict != "valid") || promised().count() == 0 {
        EXIT_UNKNOWN
    } else {
        EXIT_VALID
    }
}

/// The models a protocol promises, and the workload its front end supports.
pub fn plan_for(protocol: &str, tuning: &[(String, toml::Value)]) -> (Plan, Kind) {
    let tuned = |key: &str| {
        tuning
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    match protocol {
        "quorum" => {
            let int = |key: &str| tuned(key).and_then(|v| v.as_integer());
            let n = int("n").unwrap_or(3);
            let r = int("r").unwrap_or(n / 2 + 1);
            let w = int("w").unwrap_or(n / 2 + 1);
            let write_back = tuned("write_back")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            let sloppy = tuned("sloppy").and_then(|v| v.as_bool()).unwrap_or(false);
            let linearizable = r + w > n && write_back && !sloppy;
            let plan = Plan {
                linearizable: Some(if linearizable {
                    Promise::Promised
                } else {
                    Promise::Measured
                }),
                appends: false,
                convergence: true,
            };
            (plan, Kind::Registers)
        }
        "multiprimary" => {
            let lww = tuned("resolution").and_then(|v| v.as_str().map(str::to_string))
                == Some("lww".into());
            let plan = Plan {
                linearizable: None,
                appends: false,
                convergence: true,
            };
            (plan, if lww { Kind::Registers } else { Kind::Siblings })
        }
        _ => (
            Plan {
                linearizable: Some(Promise::Promised),
                appends: true,
                convergence: false,
            },
            Kind::Full,
        ),
    }
}

/// What the run reports while it goes: seconds elapsed and ok operations so far.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Runs one torture test. `Err` is a harness failure (bad options, a node that never
/// started); a violation is a [`Summary`] with exit code 1.
pub async fn run(
    opts: &Options,
    stop: Arc<AtomicBool>,
    progress: Progress<'_>,
) -> anyhow::Result<Summary> {
    if !(1..=9).contains(&opts.nodes) {
        bail!("--nodes must be between 1 and 9, not {}", opts.nodes);
    }
    if opts.clients == 0 || opts.keys == 0 {
        bail!("--clients and --keys must be at least 1");
    }
    if opts.ttl.is_some() && opts.protocol != "raft" {
        bail!(
            "--ttl needs expiring keys, which only raft serves (not {}); drop --ttl or use --protocol raft",
            opts.protocol
        );
    }
    if opts.ttl.is_some_and(|ttl| ttl.as_millis() == 0) {
        bail!("--ttl must be at least 1ms (SET PX takes whole milliseconds above 0)");
    }
    fs::create_dir_all(&opts.report)
        .with_context(|| format!("creating {}", opts.report.display()))?;
    let dir = opts.report.canonicalize()?;
    clear_report_dir(&dir)?;
    let links = Links::default();
    // Declared before the nodes, so it is dropped after them: namespaces outlive processes.
    let spaces = match opts.netns {
        true => Some(netns::Namespaces::create(opts.nodes)?),
        false => None,
    };
    let mut nodes = cluster::prepare(
        &opts.protocol,
        opts.nodes,
        &opts.tuning,
        &dir,
        &links,
        spaces.as_ref(),
    )
    .await?;
    let (plan, kind) = plan_for(&opts.protocol, &opts.tuning);
    let mut skipped = Vec::new();
    // How far any node's clock may read from real time, in ms (see `clock_error_ms`).
    let mut clock_off_ms = 0.0f64;
    let mut faults: Vec<Fault> = opts.nemesis.clone();
    faults.sort();
    faults.dedup();
    if faults.contains(&Fault::Clock) {
        // libfaketime is a preloaded library; without it there is nothing to inject.
        let found = [
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/faketime/libfaketime.so.1",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        match found {
            Some(lib) => {
                let mut rng = StdRng::seed_from_u64(opts.seed ^ 0xc10c);
                for node in &mut nodes {
                    // A fixed offset and rate per node, drawn from the seed.
                    let offset = rng.random_range(-2.0..2.0f64);
                    let rate = rng.random_range(0.98..1.02f64);
                    // Faketime's rate counts from the process's start: at most the whole run
                    // (plus final reads) of drift on top of the offset.
                    let horizon_ms = (opts.duration + Duration::from_secs(60)).as_millis() as f64;
                    clock_off_ms =
                        clock_off_ms.max(offset.abs() * 1000.0 + (rate - 1.0).abs() * horizon_ms);
                    node.env.push(("LD_PRELOAD".into(), lib.into()));
                    node.env
                        .push(("FAKETIME".into(), format!("{offset:+.3}s x{rate:.3}")));
                    node.env
                        .push(("FAKETIME_DONT_FAKE_MONOTONIC".into(), "0".into()));
                }
            }
            None => skipped.push("clock: skipped: faketime not installed".to_string()),
        }
        faults.retain(|f| *f != Fault::Clock);
    }
    for node in &mut nodes {
        node.start(&opts.binary)?;
    }
    let mut shared = Shared::new(
        nodes.iter().map(|n| (n.id, n.config.client_addr)).collect(),
        kind,
        opts.keys,
        opts.timeout,
    );
    shared.ttl = opts.ttl;
    // Two clocks each within `clock_off_ms` of real time read at most twice that apart.
    shared.clock_error_ms = CLOCK_ERROR_MS_LOCAL + 2 * clock_off_ms.ceil() as u64;
    let shared = Arc::new(shared);
    let mut log = Log::create(&dir.join("nemesis.log"), shared.start)?;
    for s in &skipped {
        log.write(s);
    }
    for node in &nodes {
        if let Some((_, spec)) = node.env.iter().find(|(k, _)| k == "FAKETIME") {
            log.write(&format!(
                "clock: node {} runs under libfaketime {spec:?} (offset, rate)",
                node.id
            ));
        }
    }
    log.write(&format!(
        "start: {} nodes of {}, pids {:?}",
        opts.nodes,
        opts.protocol,
        nodes.iter().map(|n| n.pid()).collect::<Vec<_>>()
    ));
    if let Some(spaces) = &spaces {
        for host in &spaces.hosts {
            log.write(&format!(
                "netns: namespace {} at {} (harness side {})",
                host.name, host.node, host.harness
            ));
        }
    }
    // Wait until the cluster serves (a leader, or every replica answering).
    let ready_by = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let leaderless = kind != Kind::Full;
        let ready = if leaderless {
            let mut all = true;
            for n in &nodes {
                let ok = match resp::Conn::connect(n.config.client_addr, Duration::from_millis(300))
                    .await
                {
                    Ok(mut c) => c.call(&[b"PING"], Duration::from_millis(300)).await.is_ok(),
                    Err(_) => false,
                };
                all &= ok;
            }
            all
        } else {
            nemesis::leader(&nodes).await.is_some()
        };
        if ready {
            break;
        }
        for n in &mut nodes {
            if let Some(status) = n.exited() {
                bail!(
                    "node {} exited at start ({status}): {}",
                    n.id,
                    nemesis::last_line(&n.log)
                );
            }
        }
        if tokio::time::Instant::now() > ready_by || stop.load(Ordering::Relaxed) {
            bail!(
                "the cluster did not become ready within 20 s; see {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    log.write("ready");
    let mut tasks = Vec::new();
    for i in 0..opts.clients {
        tasks.push(tokio::spawn(workload::client(shared.clone(), i, opts.seed)));
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut recoveries = Vec::new();
    let end = tokio::time::Instant::now() + opts.duration;
    let stopped = || stop.load(Ordering::Relaxed);
    let sleep_until = |until: tokio::time::Instant, s: &Arc<Shared>| {
        let s = s.clone();
        let stop = stop.clone();
        async move {
            while tokio::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                progress(s.start.elapsed().as_secs(), s.ok.load(Ordering::Relaxed));
                tokio::time::sleep(
                    Duration::from_millis(100)
                        .min(until.saturating_duration_since(tokio::time::Instant::now())),
                )
                .await;
            }
        }
    };
    // Nemesis loop: quiet, fault, hold, heal.
    while tokio::time::Instant::now() < end && !stopped() {
        let quiet = Duration::from_millis(rng.random_range(1000..2500));
        sleep_until((tokio::time::Instant::now() + quiet).min(end), &shared).await;
        if tokio::time::Instant::now() >= end || stopped() || faults.is_empty() {
            continue;
        }
        let fault = *faults
            .get(rng.random_range(0..faults.len()))
            .expect("a fault");
        let hold = Duration::from_millis(rng.random_range(1000..3000));
        match fault {
            Fault::Kill => {
                if let Some(id) = nemesis::kill(&mut nodes, &mut rng, &mut log).await {
                    sleep_until(tokio::time::Instant::now() + hold, &shared).await;
                    restart(&mut nodes, id, &opts.binary, &mut log)?;
                }
            }
            Fault::Pause => {
                if let Some(id) = nemesis::pause(&mut nodes, &mut rng, &mut log).await {
                    sleep_until(tokio::time::Instant::now() + hold, &shared).await;
                    nemesis::resume(&mut nodes, id, &mut log);
                }
            }
            Fault::Partition => {
                let what = nemesis::partition(&nodes, &links, &mut rng).await;
                log.write(&what);
                sleep_until(tokio::time::Instant::now() + hold, &shared).await;
                links.heal();
                log.write("partition: healed");
            }
            Fault::Disk => {
                // At most one node down for good at a time: damage only while all run.
                let all_running = nodes.iter_mut().all(|n| n.alive());
                if !all_running {
                    log.write("disk: skipped, a node is down");
                    continue;
                }
                let id = rng.random_range(1..=opts.nodes);
                let node = nodes.iter_mut().find(|n| n.id == id).expect("a node");
                node.kill9();
                log.write(&format!("disk: kill -9 node {id}"));
                let what = nemesis::damage(node.data_dir(), &mut rng);
                log.write(&format!("disk: node {id}: {what}"));
                node.start(&opts.binary)?;
                sleep_until(
                    tokio::time::Instant::now() + Duration::from_millis(1500),
                    &shared,
                )
                .await;
                let at_ms = log.elapsed_ms();
                let (outcome, detail) = match node.exited() {
                    Some(status) => (
                        "refused".to_string(),
                        format!("{status}: {}", nemesis::last_line(&node.log)),
                    ),
                    None => ("started".to_string(), String::new()),
                };
                log.write(&format!("disk: node {id} {outcome} {detail}"));
                recoveries.push(Recovery {
                    at_ms,
                    node: id,
                    damage: what,
                    outcome,
                    detail,
                });
            }
            Fault::Clock => {}
        }
    }
    // Heal everything, let the cluster settle, then read every key.
    links.heal();
    for node in &mut nodes {
        if node.paused {
            node.signal(nix::sys::signal::Signal::SIGCONT);
        }
    }
    let refused: Vec<u64> = recoveries
        .iter()
        .filter(|r| r.outcome == "refused")
        .map(|r| r.node)
        .collect();
    for node in &mut nodes {
        if !node.alive() && !refused.contains(&node.id) {
            node.start(&opts.binary)?;
            log.write(&format!("heal: restart node {}", node.id));
        }
    }
    log.write("heal: every link and process restored; clients stop");
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(opts.timeout * 3, task).await;
    }
    let interrupted = stopped();
    if !interrupted {
        let settle = if kind == Kind::Full { 2 } else { 4 };
        tokio::time::sleep(Duration::from_secs(settle)).await;
        let serving: Vec<(u64, std::net::SocketAddr)> = nodes
            .iter_mut()
            .filter_map(|n| n.alive().then_some((n.id, n.config.client_addr)))
            .collect();
        let final_shared = shared.successor(serving);
        if !final_shared.nodes.is_empty() {
            workload::final_reads(&final_shared, kind != Kind::Full, Duration::from_secs(15)).await;
        }
        log.write("final reads done");
        shared
            .events
            .lock()
            .expect("history")
            .extend(final_shared.events.into_inner().expect("history"));
    }
    let nodes_end: Vec<NodeEnd> = nodes
        .iter_mut()
        .map(|n| {
            let running = n.alive();
            let res = if running { n.resources() } else { None };
            NodeEnd {
                id: n.id,
                pid: n.pid(),
                running,
                rss_kb: res.map(|r| r.0),
                fds: res.map(|r| r.1),
            }
        })
        .collect();
    tokio::task::block_in_place(|| {
        for node in &mut nodes {
            node.stop(Duration::from_secs(5));
        }
    });
    log.write("stopped every node");
    let events = std::mem::take(&mut *shared.events.lock().expect("history"));
    let mut out = std::io::BufWriter::new(fs::File::create(dir.join("history.jsonl"))?);
    for event in &events {
        writeln!(out, "{}", event.to_json_line())?;
    }
    out.flush()?;
    let ops = count(&events);
    let (mut models, appends) =
        tokio::task::block_in_place(|| verdict::judge(&events, &plan, Duration::from_secs(60)))
            .map_err(anyhow::Error::msg)?;
    if interrupted {
        for m in &mut models {
            m.verdict = "unknown".into();
            m.detail = format!("interrupted before the final reads; {}", m.detail);
        }
    }
    let exit = exit_code(&models, ops.ok);
    let summary = Summary {
        protocol: opts.protocol.clone(),
        nodes: opts.nodes,
        seed: opts.seed,
        duration_s: opts.duration.as_secs_f64(),
        clients: opts.clients,
        keys: opts.keys,
        nemesis: opts.nemesis.clone(),
        skipped,
        ops,
        resume_tried: shared.resume_tried.load(Ordering::Relaxed),
        resume_ok: shared.resume_ok.load(Ordering::Relaxed),
        models,
        appends,
        nemesis_events: log.events,
        recoveries,
        nodes_end,
        exit_code: exit,
        report_dir: dir.clone(),
    };
    fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    Ok(summary)
}

/// Every run starts from empty nodes: a node recovering an earlier run's log would serve
/// values this run's history never wrote. A directory holding an earlier report is
/// cleared (only the files a run writes); any other non-empty directory is refused.
fn clear_report_dir(dir: &Path) -> anyhow::Result<()> {
    let entries: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    if !dir.join("nemesis.log").exists() {
        bail!(
            "{} is not empty and holds no earlier torture report; give --report a new or empty directory",
            dir.display()
        );
    }
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ours = ["history.jsonl", "summary.json", "nemesis.log"].contains(&name.as_str())
            || (name.starts_with('n')
                && name[1..]
                    .split('.')
                    .next()
                    .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit())));
        if !ours {
            continue;
        }
        if path.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn restart(
    nodes: &mut [cluster::Node],
    id: u64,
    binary: &Path,
    log: &mut Log,
) -> anyhow::Result<()> {
    let node = nodes.iter_mut().find(|n| n.id == id).expect("a node");
    node.start(binary)?;
    log.write(&format!("kill: restart node {id} (pid {:?})", node.pid()));
    Ok(())
}

fn count(events: &[quorate_check::Event]) -> OpCounts {
    use quorate_check::EventKind;
    let mut counts = OpCounts::default();
    for e in events {
        let slot = match e.kind {
            EventKind::Invoke => continue,
            EventKind::Ok => {
                counts.ok += 1;
                0
            }
            EventKind::Fail => {
                counts.fail += 1;
                1
            }
            EventKind::Info => {
                counts.info += 1;
                2
            }
        };
        counts.by_f.entry(e.value.f().to_string()).or_default()[slot] += 1;
    }
    counts
}
