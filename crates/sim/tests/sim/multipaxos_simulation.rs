//! Multi-Paxos under the simulator: many seeds with every fault, non-vacuous (elections,
//! batches, no-op gap fills, catch-up and snapshots happen), determinism, and a deliberately
//! broken leader caught within a fixed seed range.

use quorate_protocols::multipaxos::Bug;
use quorate_sim::{failures, run, run_many, Faults, MultiPaxosHarness, RunReport, SimConfig};
use std::collections::BTreeMap;
use std::time::Duration;

fn config() -> SimConfig {
    SimConfig {
        duration: Duration::from_secs(3),
        // The non-vacuity thresholds below were calibrated under the classic faults; pauses
        // and crash points (now in `all`) leave fewer operations done in 3 s.
        faults: Faults::classic(),
        ..SimConfig::default()
    }
}

fn runs(harness: &MultiPaxosHarness, seeds: std::ops::Range<u64>) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, &config(), &seeds, 2, |_| {})
}

#[test]
fn multipaxos_is_safe_and_live_over_many_seeds_with_every_fault() {
    let reports = runs(&MultiPaxosHarness::default(), 3000..3200);
    let failed = failures(&reports);
    assert!(
        failed.is_empty(),
        "{} seeds failed, first: {:?}; replay with quorate sim --protocol multipaxos --seed N \
         --trace",
        failed.len(),
        failed.first()
    );
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    for report in &reports {
        for (name, value) in &report.counters {
            *counters.entry(name.clone()).or_default() += value;
        }
    }
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    let crashes: u64 = reports.iter().map(|r| r.stats.crashes).sum();
    assert!(ok > 10_000, "only {ok} operations succeeded");
    assert!(crashes > 100, "{crashes} crashes");
    assert!(counters["leaders_elected"] > 400, "{counters:?}");
    assert!(counters["slots_batched"] > 200, "{counters:?}");
    assert!(counters["noop_fills"] > 0, "{counters:?}");
    assert!(counters["catch_ups"] > 500, "{counters:?}");
    assert!(counters["snapshots_sent"] > 50, "{counters:?}");
    assert!(
        counters["commands_chosen"] > counters["slots_chosen"],
        "batching decides several commands per slot: {counters:?}"
    );
}

#[test]
fn without_faults_every_operation_succeeds() {
    let config = SimConfig {
        faults: Faults::none(),
        ..config()
    };
    let report = run(&MultiPaxosHarness::default(), &config, 7, None);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.ops_info, 0);
    assert!(report.ops_ok > 500, "{} operations", report.ops_ok);
    assert_eq!(report.counters["leaders_elected"], 1, "one stable leader");
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let harness = MultiPaxosHarness::default();
    let first = run(&harness, &config(), 41, None);
    let second = run(&harness, &config(), 41, None);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
    assert_ne!(
        first.trace_hash,
        run(&harness, &config(), 42, None).trace_hash
    );
}

#[test]
fn a_leader_that_ignores_reported_votes_is_caught() {
    let mut harness = MultiPaxosHarness::default();
    harness.config.bug = Some(Bug::LeaderIgnoresAccepted);
    let reports = runs(&harness, 0..50);
    let failed = failures(&reports);
    assert!(!failed.is_empty(), "no seed caught the broken leader");
    assert!(
        failed
            .iter()
            .any(|(_, v)| v.iter().any(|v| v.starts_with("agreement"))),
        "{:?}",
        failed[0]
    );
    eprintln!(
        "caught by {} of 50 seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
}
