//! Single-decree Paxos under the simulator: many seeds with every fault, determinism, the
//! duelling-proposers livelock and its cure measured, and proof that the checks bite
//! (deliberately broken acceptors and proposers are caught within fixed seed ranges).

use quorate_protocols::paxos::Bug;
use quorate_sim::{failures, run, run_many, Faults, PaxosHarness, RunReport, SimConfig, Summary};
use std::time::Duration;

fn config() -> SimConfig {
    SimConfig {
        duration: Duration::from_secs(3),
        ..SimConfig::default()
    }
}

fn runs(harness: &PaxosHarness, config: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, config, &seeds, 2, |_| {})
}

#[test]
fn paxos_is_safe_and_live_over_many_seeds_with_every_fault() {
    let reports = runs(&PaxosHarness::default(), &config(), 2000..2200);
    let failed = failures(&reports);
    assert!(
        failed.is_empty(),
        "{} seeds failed, first: {:?}; replay with quorate sim --protocol paxos --seed N --trace",
        failed.len(),
        failed.first()
    );
    let counters = Summary::of(&reports).counters;
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    let crashes: u64 = reports.iter().map(|r| r.stats.crashes).sum();
    let partitions: u64 = reports.iter().map(|r| r.stats.partitions).sum();
    assert!(ok > 5_000, "only {ok} operations succeeded");
    assert!(counters["registers_decided"] > 5_000, "{counters:?}");
    assert!(
        counters["rounds_preempted"] > 500,
        "proposers duelled: {counters:?}"
    );
    assert!(
        crashes > 100 && partitions > 100,
        "faults were injected: {crashes} crashes, {partitions} partitions"
    );
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let harness = PaxosHarness::default();
    let first = run(&harness, &config(), 31, None);
    let second = run(&harness, &config(), 31, None);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
    assert_ne!(
        first.trace_hash,
        run(&harness, &config(), 32, None).trace_hash
    );
}

/// Ten clients contend for one register per generation, without faults: the setting in which
/// proposers duel. Returns (mean rounds to a decision, mean milliseconds to a decision).
fn duel(harness: &PaxosHarness) -> (f64, f64) {
    let mut config = SimConfig {
        faults: Faults::none(),
        ..config()
    };
    config.workload.clients = 10;
    config.workload.keys = 1;
    let reports = runs(harness, &config, 0..40);
    assert!(
        failures(&reports).is_empty(),
        "{:?}",
        failures(&reports).first()
    );
    let counters = Summary::of(&reports).counters;
    let decided = counters["registers_decided"] as f64;
    assert!(decided > 200.0, "{counters:?}");
    let rounds = counters["rounds_to_decide"] as f64 / decided;
    let millis = counters["decide_time_us"] as f64 / decided / 1000.0;
    (rounds, millis)
}

#[test]
fn randomized_back_off_cures_the_duelling_proposers_livelock() {
    let (cured_rounds, cured_ms) = duel(&PaxosHarness::default());
    let (duel_rounds, duel_ms) = duel(&PaxosHarness::without_backoff());
    eprintln!(
        "rounds to decide: {duel_rounds:.1} without back-off, {cured_rounds:.1} with; \
         time to decide: {duel_ms:.1} ms without, {cured_ms:.1} ms with"
    );
    assert!(
        duel_rounds > 3.0 * cured_rounds,
        "{duel_rounds} vs {cured_rounds}"
    );
    assert!(duel_ms > 2.0 * cured_ms, "{duel_ms} vs {cured_ms}");
}

fn broken(bug: Bug) -> PaxosHarness {
    let mut harness = PaxosHarness::default();
    harness.config.bug = Some(bug);
    harness
}

/// Runs the broken variant on `seeds`, asserting that some seed found a violation that
/// mentions `property`.
fn caught(bug: Bug, seeds: std::ops::Range<u64>, property: &str) {
    let total = seeds.end - seeds.start;
    let reports = runs(&broken(bug), &config(), seeds);
    let failed = failures(&reports);
    assert!(!failed.is_empty(), "no seed caught {bug:?}");
    assert!(
        failed
            .iter()
            .any(|(_, v)| v.iter().any(|v| v.contains(property))),
        "{bug:?} was caught, but not by {property:?}: {:?}",
        failed[0]
    );
    eprintln!(
        "{bug:?}: caught by {} of {total} seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
}

/// A restarted acceptor that forgot its promise but kept its acceptance is inconsistent at
/// once (it holds a value accepted above what it promised), and its own invariant says so at
/// its next step for that register. The agreement violation this leads to when a late Accept
/// of a lower ballot arrives is scripted in `paxos::tests`.
#[test]
fn an_acceptor_that_forgets_its_promise_is_caught() {
    caught(
        Bug::AcceptorForgetsPromise,
        0..20,
        "accepted above the promise",
    );
}

#[test]
fn a_proposer_that_ignores_accepted_values_is_caught() {
    caught(Bug::ProposerIgnoresAccepted, 0..100, "agreement");
}
