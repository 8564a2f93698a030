//! Defences hide bugs behind them (issue 15). Lease reads serve most of a Raft leader's reads,
//! and check-quorum and pre-vote depose a cut-off leader within an election timeout, so a
//! ReadIndex that skips its quorum round (`Bug::ReadIndexSkipsQuorum`) is rarely on the path of
//! a read, and a deposed leader rarely lives long enough to serve a stale one. With those
//! defences off (`quorate sim --no-lease-reads --no-check-quorum --no-pre-vote`) every leader
//! read takes the broken path and cut-off leaders linger: measured over seeds 0..600 (10
//! clients, 2 keys), 12 seeds catch it with the defences off (first: seed 88), none with them
//! on.

use quorate_protocols::raft::Bug;
use quorate_sim::{failures, run_many, Faults, RaftHarness, SimConfig};
use std::time::Duration;

const SEEDS: std::ops::Range<u64> = 0..600;

fn harness(defences: bool) -> RaftHarness {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(Bug::ReadIndexSkipsQuorum);
    harness.config.lease_reads = defences;
    harness.config.check_quorum = defences;
    harness.config.pre_vote = defences;
    harness
}

fn caught(harness: &RaftHarness) -> Vec<u64> {
    let mut config = SimConfig {
        // The seed counts quoted (VERIFICATION.md) were measured under the classic faults;
        // `all` now adds pauses and crash points, which move them.
        faults: Faults::classic(),
        duration: Duration::from_secs(3),
        ..SimConfig::default()
    };
    config.workload.clients = 10;
    config.workload.keys = 2;
    let seeds: Vec<u64> = SEEDS.collect();
    let reports = run_many(harness, &config, &seeds, 2, |_| {});
    let summary = quorate_sim::Summary::of(&reports);
    eprintln!("counters: {:?}", summary.counters);
    let failed = failures(&reports);
    for (seed, violations) in failed.iter().take(3) {
        eprintln!("  seed {seed}: {violations:?}");
    }
    failed.into_iter().map(|(seed, _)| seed).collect()
}

#[test]
fn a_read_index_that_skips_its_quorum_is_caught_far_sooner_with_the_defences_off() {
    let with_defences = caught(&harness(true));
    let without = caught(&harness(false));
    eprintln!(
        "seeds {SEEDS:?} catching the bug: {} with the defences on {with_defences:?}, {} with them \
         off (first: {:?})",
        with_defences.len(),
        without.len(),
        without.first()
    );
    assert!(!without.is_empty(), "defences off: no seed caught the bug");
    assert!(
        without.len() >= 3 * with_defences.len().max(1),
        "defences off should catch it in far more seeds: {} vs {}",
        without.len(),
        with_defences.len()
    );
}
