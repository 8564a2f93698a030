//! What a run found, and the aggregate over many runs.

use crate::harness::{Harness, ModelCheck};
use crate::simulation::Simulation;
use quorate_check::history::pair;
use quorate_check::linearizability::Limits;
use quorate_check::{judge, Event as HistoryEvent, EventKind, Judgement, Mode, Promise, Verdict};
use quorate_core::Invariants;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// Events processed (deliveries, timers, requests, fsync completions, faults).
    pub events: u64,
    /// Simulated time at the end, in nanoseconds.
    pub sim_time: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    /// Bytes of the messages sent, encoded as the server sends them (postcard payload and
    /// frame header); counted only with `SimConfig::count_message_bytes`.
    pub message_bytes: u64,
    /// fsyncs started: one per batch of persists (group commit), as the server's WAL does.
    pub fsyncs: u64,
    /// The deterministic leader crash (`SimConfig::leader_crash`), if it happened.
    pub leader_crash: Option<LeaderCrashed>,
    pub crashes: u64,
    /// Of the crashes, those placed at crash points (see `Faults::crash_points`).
    pub crash_points: u64,
    /// Process pauses (see `Faults::pause`).
    pub pauses: u64,
    pub partitions: u64,
    /// Disk faults that damaged fsynced data (flipped bits, lost files, failing reads), and
    /// starts that recovery refused because of them.
    pub disk_faults: u64,
    pub refused_starts: u64,
    /// Requests the reconfiguration nemesis sent, those answered done, and those refused or
    /// redirected (certainly not done); the outcome of the rest is unknown.
    pub admin_requests: u64,
    pub admin_ok: u64,
    pub admin_refused: u64,
}

/// When and where the deterministic leader crash struck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderCrashed {
    /// Simulated time of the crash, in nanoseconds.
    pub at: u64,
    /// The node that crashed (1-based).
    pub node: u64,
    /// Whether it claimed leadership then (false: no node did, so node 1 crashed).
    pub was_leader: bool,
}

/// Why a run stopped before its end, besides a violation of the protocol's properties: a
/// liveness failure of the run itself (a budget ran out) or a bug that panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abort {
    /// The step budget (`SimConfig::events_max`, `--max-steps`) ran out.
    Steps { limit: u64 },
    /// The wall-clock budget (`SimConfig::wall_max`, `--seed-timeout`) ran out.
    Wall { limit: Duration },
    /// Code inside the run panicked (an assertion in a node, a checker, the simulator).
    Panic { message: String },
}

impl Abort {
    /// True for the liveness class: a budget ran out.
    pub fn is_budget(&self) -> bool {
        !matches!(self, Abort::Panic { .. })
    }
}

/// The outcome of one seeded run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub protocol: &'static str,
    pub seed: u64,
    /// Safety, liveness and consistency violations; empty for a good run.
    pub violations: Vec<String>,
    /// Set when the run stopped early: a budget ran out, or it panicked (also listed in
    /// `violations`).
    pub aborted: Option<Abort>,
    pub ops_ok: u64,
    pub ops_fail: u64,
    pub ops_info: u64,
    pub stats: RunStats,
    /// Hash of every processed event: equal hashes mean identical runs.
    pub trace_hash: u64,
    /// The verdict of the end-of-run history check (`None` when not checked).
    pub linearizable: Option<Verdict>,
    /// Every consistency model the end-of-run checks judged (empty when not checked).
    pub models: Vec<ModelCheck>,
    /// What the protocol promises; the history was judged by it.
    pub promise: Promise,
    /// The judgement of the history alone (`None` when not checked): what
    /// `quorate check --promise` says of the exported history. `violations` adds what the
    /// run's own checks found.
    pub judgement: Option<Judgement>,
    /// The protocol checker's named counters (see `Invariants::counters`).
    pub counters: BTreeMap<String, u64>,
    /// Wall time the simulation took (excluding the history check).
    pub wall: Duration,
    /// Wall time of the history check.
    pub check_wall: Duration,
    /// Every event, with its read mode: what `quorate sim --history` exports.
    pub history: Vec<HistoryEvent>,
}

pub(crate) fn finish<H: Harness>(sim: Simulation<'_, H>, seed: u64, started: Instant) -> RunReport {
    let wall = started.elapsed();
    let count = |kind| sim.history.iter().filter(|e| e.kind == kind).count() as u64;
    let (ops_ok, ops_fail, ops_info) = (
        count(EventKind::Ok),
        count(EventKind::Fail),
        count(EventKind::Info),
    );
    let mut violations = sim.violations.clone();
    let check_started = Instant::now();
    let mut counters: BTreeMap<String, u64> = sim
        .invariants
        .counters()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    for (name, value) in sim.feeds.counters() {
        counters.insert(name.to_string(), value);
    }
    let promise = sim.harness.promise();
    let mut models = Vec::new();
    let mut linearizable = None;
    let mut judgement = None;
    if sim.config.check_history {
        let deadline = Instant::now() + sim.config.check_time_limit;
        let cancelled = move || Instant::now() > deadline;
        let limits = Limits {
            cancelled: &cancelled,
            ..Limits::default()
        };
        let found = judge(&sim.history, promise, &limits);
        violations.extend(found.violations.iter().cloned());
        for (name, value) in &found.counters {
            *counters.entry(name.to_string()).or_default() += value;
        }
        for (name, value) in sim
            .harness
            .measure(&client_operations(&sim.history), &sim.invariants)
        {
            *counters.entry(name.to_string()).or_default() += value;
        }
        linearizable = found
            .models
            .iter()
            .find(|m| m.model == "linearizable")
            .map(|m| match m.satisfied {
                Some(true) => Verdict::Linearizable,
                Some(false) => Verdict::NotLinearizable,
                None => Verdict::Unknown,
            });
        models = found.models.clone();
        judgement = Some(found);
    }
    RunReport {
        protocol: sim.harness.name(),
        seed,
        violations,
        aborted: sim.aborted.clone(),
        ops_ok,
        ops_fail,
        ops_info,
        stats: sim.stats.clone(),
        trace_hash: sim.trace_hash(),
        linearizable,
        models,
        promise,
        judgement,
        counters,
        wall,
        check_wall: check_started.elapsed(),
        history: sim.history,
    }
}

/// The client operations of `history` (final reads and reads of random replicas left out),
/// for the harness's own measurements; none when the history does not pair.
fn client_operations(history: &[HistoryEvent]) -> Vec<quorate_check::Operation> {
    let clients: Vec<HistoryEvent> = history
        .iter()
        .filter(|e| !matches!(e.mode, Mode::Final | Mode::AnyReplica))
        .cloned()
        .collect();
    pair(&clients).unwrap_or_default()
}

impl RunReport {
    /// The report of a seed whose run panicked before the simulator could report (while
    /// building the cluster, or in the end-of-run checks).
    pub fn panicked(protocol: &'static str, seed: u64, message: String, wall: Duration) -> Self {
        RunReport {
            protocol,
            seed,
            violations: vec![format!("panic: {message}")],
            aborted: Some(Abort::Panic { message }),
            ops_ok: 0,
            ops_fail: 0,
            ops_info: 0,
            stats: RunStats::default(),
            trace_hash: 0,
            linearizable: None,
            models: Vec::new(),
            promise: Promise::Linearizable,
            judgement: None,
            counters: BTreeMap::new(),
            wall,
            check_wall: Duration::ZERO,
            history: Vec::new(),
        }
    }
}

/// Totals over many runs.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub failed_seeds: Vec<u64>,
    /// Seeds that ran out of their step or wall-clock budget (a liveness failure).
    pub exhausted_seeds: Vec<u64>,
    /// Seeds whose run panicked.
    pub panicked_seeds: Vec<u64>,
    pub violations: u64,
    pub ops_ok: u64,
    pub ops_fail: u64,
    pub ops_info: u64,
    pub events: u64,
    pub sim_time: u64,
    /// Summed wall time of the simulations, i.e. CPU time on one core.
    pub sim_wall: Duration,
    pub check_wall: Duration,
    pub unknown_checks: u64,
    /// The seeds whose linearizability check ran out of time, to replay with a longer limit.
    pub unknown_seeds: Vec<u64>,
    /// The seeds of runs where some consistency model, promised or measured, could not be
    /// decided (time or memory limit): such a run proves nothing about that model, so it must
    /// not read as clean (`quorate sim --strict` fails on them).
    pub unchecked_seeds: Vec<u64>,
    /// Per model the protocol only measures (a failure is no violation): the seeds of the runs
    /// that failed it, to replay.
    pub measured_failures: BTreeMap<&'static str, Vec<u64>>,
    pub crashes: u64,
    pub crash_points: u64,
    pub pauses: u64,
    pub partitions: u64,
    /// Disk faults on fsynced data, and starts recovery refused (see [`RunStats`]).
    pub disk_faults: u64,
    pub refused_starts: u64,
    /// The reconfiguration nemesis' requests, summed (see [`RunStats`]).
    pub admin_requests: u64,
    pub admin_ok: u64,
    pub admin_refused: u64,
    pub last_trace_hash: u64,
    /// Sums of the protocol checkers' named counters (maxima for names ending in `_max`).
    pub counters: BTreeMap<String, u64>,
    /// Per consistency model: in how many runs it held, failed, or could not be decided.
    pub models: BTreeMap<&'static str, ModelTally>,
}

/// How one consistency model fared over many runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelTally {
    pub satisfied: u64,
    pub violated: u64,
    pub unknown: u64,
    /// Whether the protocol promises it (failures are violations) or runs only measure it.
    pub promised: bool,
}

/// The runs of a batch that found violations: each seed with what it violated, in the order
/// of `reports`.
pub fn failures(reports: &[RunReport]) -> Vec<(u64, Vec<String>)> {
    reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .map(|r| (r.seed, r.violations.clone()))
        .collect()
}

impl Summary {
    /// The totals of a batch of runs.
    pub fn of(reports: &[RunReport]) -> Summary {
        let mut summary = Summary::default();
        for report in reports {
            summary.add(report);
        }
        summary
    }

    /// A protocol checker's counter over the batch (0 if no run reported it).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    pub fn add(&mut self, report: &RunReport) {
        self.runs += 1;
        if !report.violations.is_empty() {
            self.failed_seeds.push(report.seed);
        }
        match &report.aborted {
            Some(abort) if abort.is_budget() => self.exhausted_seeds.push(report.seed),
            Some(_) => self.panicked_seeds.push(report.seed),
            None => {}
        }
        self.violations += report.violations.len() as u64;
        self.ops_ok += report.ops_ok;
        self.ops_fail += report.ops_fail;
        self.ops_info += report.ops_info;
        self.events += report.stats.events;
        self.sim_time += report.stats.sim_time;
        self.sim_wall += report.wall;
        self.check_wall += report.check_wall;
        if report.linearizable == Some(Verdict::Unknown) {
            self.unknown_checks += 1;
            self.unknown_seeds.push(report.seed);
        }
        self.crashes += report.stats.crashes;
        self.crash_points += report.stats.crash_points;
        self.pauses += report.stats.pauses;
        self.partitions += report.stats.partitions;
        self.disk_faults += report.stats.disk_faults;
        self.refused_starts += report.stats.refused_starts;
        self.admin_requests += report.stats.admin_requests;
        self.admin_ok += report.stats.admin_ok;
        self.admin_refused += report.stats.admin_refused;
        self.last_trace_hash = report.trace_hash;
        for (name, value) in &report.counters {
            let total = self.counters.entry(name.clone()).or_default();
            // Counters named `..._max` are maxima; the others are sums.
            if name.ends_with("_max") {
                *total = (*total).max(*value);
            } else {
                *total += value;
            }
        }
        if report.models.iter().any(|m| m.satisfied.is_none()) {
            self.unchecked_seeds.push(report.seed);
        }
        for model in &report.models {
            if model.satisfied == Some(false) && !model.promised {
                let seeds = self.measured_failures.entry(model.model).or_default();
                seeds.push(report.seed);
            }
            let tally = self.models.entry(model.model).or_default();
            tally.promised |= model.promised;
            match model.satisfied {
                Some(true) => tally.satisfied += 1,
                Some(false) => tally.violated += 1,
                None => tally.unknown += 1,
            }
        }
    }

    /// Simulated events per second of simulation CPU time (one core).
    pub fn events_per_second(&self) -> f64 {
        let secs = self.sim_wall.as_secs_f64();
        if secs == 0.0 {
            0.0
        } else {
            self.events as f64 / secs
        }
    }
}
