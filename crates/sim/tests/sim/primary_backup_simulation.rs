//! Primary-backup and chain replication under the simulator: many seeds with every fault,
//! determinism, non-vacuity (failovers, fencing, chain repairs and stale local reads actually
//! happen), and proof that the checks bite (each deliberately broken variant is caught within a
//! fixed range of seeds).

use quorate_protocols::primary_backup::Bug;
use quorate_sim::{run, run_many, ChainHarness, Faults, Harness, PrimaryBackupHarness, SimConfig};
use std::collections::BTreeMap;
use std::time::Duration;

fn config() -> SimConfig {
    let mut config = SimConfig {
        duration: Duration::from_secs(3),
        // The non-vacuity thresholds and seed ranges here were calibrated under the classic
        // faults; pauses and crash points (now in `all`) move them.
        faults: Faults::classic(),
        ..SimConfig::default()
    };
    config.workload.local_reads = 0.2;
    config
}

struct Batch {
    failed: Vec<(u64, Vec<String>)>,
    ok: u64,
    counters: BTreeMap<String, u64>,
}

fn batch<H: Harness>(harness: &H, config: &SimConfig, seeds: std::ops::Range<u64>) -> Batch {
    let seeds: Vec<u64> = seeds.collect();
    let reports = run_many(harness, config, &seeds, 2, |_| {});
    let mut counters = BTreeMap::new();
    for report in &reports {
        for (name, value) in &report.counters {
            *counters.entry(name.clone()).or_insert(0) += value;
        }
    }
    Batch {
        failed: reports
            .iter()
            .filter(|r| !r.violations.is_empty())
            .map(|r| (r.seed, r.violations.clone()))
            .collect(),
        ok: reports.iter().map(|r| r.ops_ok).sum(),
        counters,
    }
}

/// Zero violations, and the events the checks are about did happen (`transfers_min`: snapshots
/// sent to replicas that fell behind a compacted log; chains need them less often, as a
/// rejoining node catches up from a predecessor that rarely compacted past it).
fn assert_safe_and_eventful(name: &str, batch: &Batch, transfers_min: u64) {
    for (seed, violations) in &batch.failed {
        eprintln!("{name} seed {seed}: {violations:?}");
    }
    assert!(
        batch.failed.is_empty(),
        "{} {name} seeds failed; replay with quorate sim --protocol {name} --seed N --trace",
        batch.failed.len()
    );
    let counter = |key: &str| batch.counters.get(key).copied().unwrap_or(0);
    assert!(batch.ok > 3_000, "only {} operations succeeded", batch.ok);
    assert!(
        counter("views_with_primary") > 400,
        "failovers happened: {:?}",
        batch.counters
    );
    assert!(
        counter("stale_view_messages_refused") > 100,
        "fencing was exercised"
    );
    assert!(
        counter("confirmed_reads") > 1_000,
        "linearizable reads were served"
    );
    assert!(
        counter("state_transfers") >= transfers_min,
        "snapshots were transferred: {:?}",
        batch.counters
    );
    assert!(
        counter("local_reads_stale") > 10,
        "some local reads were stale"
    );
}

#[test]
fn primary_backup_is_safe_and_live_over_many_seeds_with_every_fault() {
    let batch = batch(&PrimaryBackupHarness::default(), &config(), 2000..2150);
    assert_safe_and_eventful("primary-backup", &batch, 5);
}

#[test]
fn chain_is_safe_and_live_over_many_seeds_with_every_fault() {
    let batch = batch(&ChainHarness::new(false), &config(), 3000..3150);
    assert_safe_and_eventful("chain", &batch, 1);
    assert!(
        batch.counters["chain_repairs"] > 100,
        "chains were repaired"
    );
}

#[test]
fn craq_is_safe_and_live_over_many_seeds_with_every_fault() {
    let batch = batch(&ChainHarness::new(true), &config(), 4000..4200);
    assert_safe_and_eventful("craq", &batch, 5);
    assert!(
        batch.counters["craq_clean_reads"] > 500,
        "clean reads were local"
    );
    assert!(
        batch.counters["craq_dirty_reads"] > 100,
        "dirty reads asked the tail"
    );
}

#[test]
fn without_faults_every_operation_succeeds() {
    let config = SimConfig {
        faults: Faults::none(),
        ..config()
    };
    for harness in [ChainHarness::new(false), ChainHarness::new(true)] {
        let report = run(&harness, &config, 7, None);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!(report.ops_info, 0, "{}", harness.name());
        assert!(
            report.ops_ok > 300,
            "{}: {} operations",
            harness.name(),
            report.ops_ok
        );
    }
    let report = run(&PrimaryBackupHarness::default(), &config, 7, None);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.ops_info, 0);
    assert!(report.ops_ok > 500, "{} operations", report.ops_ok);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let harness = ChainHarness::new(true);
    let config = config();
    let first = run(&harness, &config, 99, None);
    let second = run(&harness, &config, 99, None);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
    let other = run(&harness, &config, 100, None);
    assert_ne!(first.trace_hash, other.trace_hash);
}

/// Runs seeds of `range` in chunks until one reports a safety violation (liveness failures and
/// runaway runs do not count: a broken variant may also stop making progress, but what must be
/// shown is that the safety checks bite). Returns the seed and its violations.
fn first_caught<H: Harness>(
    harness: &H,
    config: &SimConfig,
    range: std::ops::Range<u64>,
) -> Option<(u64, Vec<String>)> {
    let seeds: Vec<u64> = range.collect();
    for chunk in seeds.chunks(50) {
        let reports = run_many(harness, config, chunk, 2, |_| {});
        let caught = reports.into_iter().find(|r| {
            r.violations
                .iter()
                .any(|v| !v.starts_with("liveness") && !v.starts_with("the run exceeded"))
        });
        if let Some(report) = caught {
            return Some((report.seed, report.violations));
        }
    }
    None
}

/// The broken variants run with a cap on events (a broken replica may livelock) and, for the
/// fencing bug, with the faults that depose primaries without killing them.
fn broken_config(faults: &str) -> SimConfig {
    SimConfig {
        faults: Faults::parse(faults).expect("valid faults"),
        events_max: 1_000_000,
        ..config()
    }
}

fn assert_caught(what: &str, caught: Option<(u64, Vec<String>)>) {
    let Some((seed, violations)) = caught else {
        panic!("no seed caught {what}");
    };
    eprintln!("{what}: first caught by seed {seed}: {violations:?}");
}

#[test]
fn a_primary_that_answers_before_a_majority_holds_the_write_is_caught() {
    // The primary answers once one backup of four holds the write (2 of 5); an election quorum
    // of 3 can miss both.
    let mut harness = PrimaryBackupHarness::default();
    harness.config.bug = Some(Bug::AckBeforeReplicated);
    let caught = first_caught(&harness, &broken_config("classic"), 0..200);
    assert_caught("a primary answering before a majority", caught);
}

#[test]
fn a_chain_that_answers_before_the_tail_holds_the_write_is_caught() {
    let mut harness = ChainHarness::new(false);
    harness.config.bug = Some(Bug::AckBeforeReplicated);
    let caught = first_caught(&harness, &broken_config("classic"), 0..200);
    assert_caught("a chain answering before the tail", caught);
}

#[test]
fn primary_backup_replicas_that_accept_an_older_view_are_caught() {
    let mut harness = PrimaryBackupHarness::default();
    harness.config.bug = Some(Bug::AcceptOlderViews);
    let caught = first_caught(&harness, &broken_config("partition,loss,reorder"), 0..300);
    assert_caught("primary-backup replicas accepting older views", caught);
}

#[test]
fn chain_nodes_that_accept_an_older_view_are_caught() {
    let mut harness = ChainHarness::new(false);
    harness.config.bug = Some(Bug::AcceptOlderViews);
    let caught = first_caught(&harness, &broken_config("partition,loss,reorder"), 0..300);
    assert_caught("chain nodes accepting older views", caught);
}

/// Issue 22's shape: three nodes, twelve clients on one hot key, 20-second fault phases.
fn hot_key_broken_config() -> SimConfig {
    let mut config = broken_config("classic");
    config.nodes = 3;
    config.workload.clients = 12;
    config.workload.keys = 1;
    config.duration = Duration::from_secs(20);
    config
}

#[test]
fn a_restarted_tail_that_forgets_what_it_acknowledged_is_caught() {
    // Issue 22: the tail restarts with its snapshot's commit number and serves reads from it.
    // Rare even in the hot-key shape: seed 919 is the first of 0..1000 to catch it (13, 142
    // and 886 did until refused candidates stopped resetting view-change timers, which moved
    // every schedule).
    let mut harness = ChainHarness::new(false);
    harness.config.bug = Some(Bug::RestartForgetsAcknowledged);
    let caught = first_caught(&harness, &hot_key_broken_config(), 900..950);
    assert_caught("a restarted tail forgetting what it acknowledged", caught);
}
