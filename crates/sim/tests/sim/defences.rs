//! Defences hide bugs behind them (issue 15). Lease reads serve most of a Raft leader's reads,
//! and check-quorum and pre-vote depose a cut-off leader within an election timeout, so a
//! ReadIndex that skips its quorum round (`Bug::ReadIndexSkipsQuorum`) is rarely on the path of
//! a read, and a deposed leader rarely lives long enough to serve a stale one. With those
//! defences off (`quorate sim --no-lease-reads --no-check-quorum --no-pre-vote`) every leader
//! read takes the broken path and cut-off leaders linger: measured over seeds 0..600 (10
//! clients, 2 keys), 7 seeds catch it with the defences off (first: seed 160), none with them
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

/// Primary-backup, chain and CRAQ have no defence in front of their confirmation rounds to
/// switch off (VERIFICATION.md, "Defences off"): no leases, and a primary never steps down on
/// its own. A primary that answers linearizable reads without a round
/// (`primary_backup::Bug::ReadSkipsConfirmation`) is caught with the defaults, if rarely: a
/// deposed primary must still be asked for reads after its successor acknowledged a write.
/// Measured over seeds 0..300 (10 clients, 2 keys, classic faults): 10 seeds (first: 10). A
/// chain's tail is another matter: see the next test.
#[test]
fn a_primary_that_skips_its_confirmation_round_is_caught() {
    let mut harness = quorate_sim::PrimaryBackupHarness::default();
    harness.config.bug = Some(quorate_protocols::primary_backup::Bug::ReadSkipsConfirmation);
    let mut config = SimConfig {
        faults: Faults::classic(),
        ..SimConfig::default()
    };
    config.workload.clients = 10;
    config.workload.keys = 2;
    let seeds: Vec<u64> = (0..300).collect();
    let reports = run_many(&harness, &config, &seeds, 2, |_| {});
    let caught: Vec<u64> = failures(&reports).into_iter().map(|(s, _)| s).collect();
    eprintln!("seeds 0..300 catching ReadSkipsConfirmation: {caught:?}");
    assert!(
        !caught.is_empty(),
        "no seed caught a primary that skips its round"
    );
}

/// A chain's tail (a CRAQ node) has a defence in front of its confirmation round, though no
/// switch named it: its own view-change timer. A tail hears its head's pings and its
/// predecessor's Prepares; cut off from them it starts a view change (and stops serving reads)
/// after 150 to 300 ms, while the head cuts a silent member out only after `member_timeout`
/// (300 ms, checked on 50 ms ticks). So a cut-off tail has stepped down before the chain that
/// replaces it exists, and one still fed by a predecessor (a bridge partition) hears the new
/// view in that predecessor's answer to its next round, while the new head still gathers
/// members (20 ms) before it can acknowledge anything. That is a timing argument, as check-quorum's is: a paused process, a slow
/// clock or a slower failure detector outlives it, and then only the round stands between a
/// deposed tail and a stale read. With the readers' timeout at 1 to 2 s (`quorate sim
/// --slow-view-change`), a tail cut off by a partition keeps its role while the new chain
/// acknowledges writes, and the clients on its side of the partition still read from it (as
/// a Redis client keeps its connection). Measured over seeds 0..300 (3 nodes, 10 clients, 2
/// keys, the network faults): chain 8 seeds (first: 15), CRAQ 12 (first: 16); none with the
/// default timeout. About 1.3 s of CPU per sweep.
#[test]
fn a_chain_tail_that_skips_its_confirmation_round_is_caught_once_it_outlives_its_cut() {
    use quorate_protocols::primary_backup::Bug as PbBug;
    let caught = |craq: bool, slow: bool| -> Vec<u64> {
        let mut harness = quorate_sim::ChainHarness::new(craq);
        harness.config.bug = Some(PbBug::ReadSkipsConfirmation);
        if slow {
            harness.config.view_change_timeout_min = Duration::from_secs(1);
            harness.config.view_change_timeout_max = Duration::from_secs(2);
        }
        let mut config = SimConfig {
            nodes: 3,
            faults: Faults::parse("partition,loss,reorder,duplicate").expect("valid faults"),
            ..SimConfig::default()
        };
        config.workload.clients = 10;
        config.workload.keys = 2;
        let seeds: Vec<u64> = (0..300).collect();
        let reports = run_many(&harness, &config, &seeds, 2, |_| {});
        let failed = failures(&reports);
        if let Some((seed, violations)) = failed.first() {
            eprintln!("  seed {seed}: {violations:?}");
        }
        failed.into_iter().map(|(s, _)| s).collect()
    };
    for craq in [false, true] {
        let name = if craq { "craq" } else { "chain" };
        let with_defence = caught(craq, false);
        let without = caught(craq, true);
        eprintln!(
            "{name}: seeds 0..300 catching ReadSkipsConfirmation: {} with the default \
             view-change timeout {with_defence:?}, {} with it at 1 to 2 s {without:?}",
            with_defence.len(),
            without.len()
        );
        assert!(
            !without.is_empty(),
            "{name}: no seed caught a tail that skips its round"
        );
        assert!(
            without.len() >= 3 * with_defence.len().max(1),
            "{name}: a tail that outlives its cut should be caught in far more seeds: {} vs {}",
            without.len(),
            with_defence.len()
        );
    }
}
