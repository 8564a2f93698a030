//! ZAB under the simulator: many seeds with every fault, ZooKeeper's read mix, determinism,
//! zxid rollover, and proof that the checks are not vacuous (broken variants are caught).

use quorate_protocols::zab::Bug;
use quorate_sim::{failures, run, run_many, Faults, RunReport, SimConfig, Summary, ZabHarness};
use std::time::Duration;

fn config() -> SimConfig {
    let mut config = SimConfig {
        duration: Duration::from_secs(3),
        ..SimConfig::default()
    };
    config.workload.reads = ZabHarness::READS;
    config
}

fn run_seeds(
    harness: &ZabHarness,
    config: &SimConfig,
    seeds: std::ops::Range<u64>,
) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, config, &seeds, 2, |_| {})
}

#[test]
fn zab_is_safe_and_live_over_many_seeds_with_every_fault() {
    let reports = run_seeds(&ZabHarness::default(), &config(), 2000..2200);
    let failed = failures(&reports);
    for (seed, violations) in &failed {
        eprintln!("seed {seed}: {violations:?}");
    }
    assert!(
        failed.is_empty(),
        "{} seeds failed; replay with quorate sim --protocol zab --seed N --trace",
        failed.len()
    );
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    assert!(ok > 5_000, "only {ok} operations succeeded");
    let c = Summary::of(&reports).counters;
    eprintln!("{c:?}");
    // Not vacuous: every synchronization mode, epoch changes, broken connections and every
    // kind of read happened.
    for name in [
        "sync_diff",
        "sync_trunc",
        "sync_snap",
        "connections_broken",
        "reads_local",
        "reads_sync",
    ] {
        assert!(c[name] > 0, "{name} never happened: {c:?}");
    }
    assert!(c["epochs_established"] > 200, "{c:?}");
    assert!(c["txns_delivered"] > 5_000, "{c:?}");
}

#[test]
fn without_faults_every_operation_succeeds() {
    let config = SimConfig {
        faults: Faults::none(),
        ..config()
    };
    let report = run(&ZabHarness::default(), &config, 7, None);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.ops_ok > 500, "{} operations", report.ops_ok);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let harness = ZabHarness::default();
    let config = config();
    let first = run(&harness, &config, 99, None);
    let second = run(&harness, &config, 99, None);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
    let other = run(&harness, &config, 100, None);
    assert_ne!(first.trace_hash, other.trace_hash);
}

#[test]
fn a_narrow_zxid_counter_rolls_over_into_new_epochs_safely() {
    let mut harness = ZabHarness::default();
    harness.config.zxid_counter_bits = 4; // 14 proposals per epoch.
    let reports = run_seeds(&harness, &config(), 3000..3040);
    let failed = failures(&reports);
    assert!(failed.is_empty(), "{failed:?}");
    let c = Summary::of(&reports).counters;
    assert!(c["zxid_rollovers"] > 20, "{c:?}");
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    assert!(ok > 1_000, "only {ok} operations succeeded");
}

fn broken(bug: Bug) -> ZabHarness {
    let mut harness = ZabHarness::default();
    harness.config.bug = Some(bug);
    harness
}

#[test]
fn a_follower_that_acks_before_persisting_is_caught() {
    // Losing an acknowledged transaction takes a crash inside the follower's logging delay
    // and then an election that the transaction's other holders miss: likeliest with three
    // servers, crashes, slow disks and partitions, over longer runs.
    let config = SimConfig {
        nodes: 3,
        faults: Faults::parse("crash,disk,partition,reorder").expect("valid faults"),
        duration: Duration::from_secs(8),
        ..config()
    };
    let failed = failures(&run_seeds(&broken(Bug::AckBeforePersist), &config, 0..200));
    assert!(
        !failed.is_empty(),
        "no seed caught an ACK before persisting"
    );
    eprintln!(
        "caught by {} of 200 seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
}

#[test]
fn a_leader_that_skips_synchronization_is_caught() {
    let failed = failures(&run_seeds(
        &broken(Bug::SkipSynchronization),
        &config(),
        0..50,
    ));
    assert!(
        !failed.is_empty(),
        "no seed caught a leader skipping synchronization"
    );
    eprintln!(
        "caught by {} of 50 seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
}

#[test]
fn a_follower_that_answers_writes_before_applying_them_is_caught_by_the_history_check() {
    let failed = failures(&run_seeds(&broken(Bug::ReplyBeforeApply), &config(), 0..40));
    assert!(!failed.is_empty(), "no seed caught an early reply");
    eprintln!(
        "caught by {} of 40 seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
    let by_reads = failed
        .iter()
        .filter(|(_, v)| v.iter().any(|v| v.starts_with("sequential consistency")))
        .count();
    assert!(
        by_reads > 0,
        "the ordered-reads check never bit: {failed:?}"
    );
}

/// Two servers, so every election needs both: the follower adopts the leader's vote on its
/// first notification and starts its finalize wait one message delay before the leader
/// hears that it agrees, so it often decides first and connects to a server still LOOKING.
/// (Session 43 found this in three servers with one left down by a damaged log.)
fn early_connects() -> SimConfig {
    let mut config = SimConfig {
        nodes: 3,
        duration: Duration::from_secs(10),
        // Liveness is what is measured; twenty clients on one key make slow histories.
        check_history: false,
        ..config()
    };
    config.workload.clients = 20;
    config.workload.keys = 1;
    config
}

/// A LOOKING server that turns away a follower's early connection (ZAB before session 43)
/// sends it back to election, where it may decide first and connect early again, round after
/// round with every node up. Every client still completed an operation within the liveness
/// timeout, so the old rule passed these runs; the healed-cluster timeout rule (an operation
/// invoked after all faults healed must not time out) catches them, and nothing else does.
#[test]
fn a_server_that_refuses_early_followers_is_caught_by_the_healed_cluster_timeout() {
    let rule = "after all faults healed and timed out";
    let config = early_connects();
    let seeds = 0..1000;
    let failed = failures(&run_seeds(
        &broken(Bug::RefuseEarlyFollowers),
        &config,
        seeds.clone(),
    ));
    assert!(!failed.is_empty(), "no seed caught refused early followers");
    for (seed, violations) in &failed {
        assert!(
            violations.iter().all(|v| v.contains(rule)),
            "seed {seed}: caught by something else: {violations:?}"
        );
    }
    eprintln!(
        "caught by {} of 1000 seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
    let failed = failures(&run_seeds(&ZabHarness::default(), &config, seeds));
    assert!(failed.is_empty(), "the correct ZAB failed: {:?}", failed[0]);
}
