//! Raft under the simulator: many seeds with every fault, determinism, and proof that the
//! checks are not vacuous (deliberately broken variants are caught).

use quorate_protocols::raft::Bug;
use quorate_sim::{run, run_many, Faults, RaftHarness, SimConfig};
use std::time::Duration;

fn config() -> SimConfig {
    SimConfig {
        duration: Duration::from_secs(3),
        ..SimConfig::default()
    }
}

fn failures(
    harness: &RaftHarness,
    config: &SimConfig,
    seeds: std::ops::Range<u64>,
) -> Vec<(u64, Vec<String>)> {
    let seeds: Vec<u64> = seeds.collect();
    quorate_sim::failures(&run_many(harness, config, &seeds, 2, |_| {}))
}

#[test]
fn raft_is_safe_and_live_over_many_seeds_with_every_fault() {
    let harness = RaftHarness::default();
    let config = config();
    let seeds: Vec<u64> = (1000..1200).collect();
    let reports = run_many(&harness, &config, &seeds, 2, |_| {});
    let failed: Vec<_> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .collect();
    for report in &failed {
        eprintln!("seed {}: {:?}", report.seed, report.violations);
    }
    assert!(
        failed.is_empty(),
        "{} seeds failed; replay with quorate sim --seed N --trace",
        failed.len()
    );
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    let crashes: u64 = reports.iter().map(|r| r.stats.crashes).sum();
    let partitions: u64 = reports.iter().map(|r| r.stats.partitions).sum();
    assert!(ok > 5_000, "only {ok} operations succeeded");
    // Every read path served reads, and snapshots travelled.
    for name in [
        "read_index_reads",
        "lease_reads",
        "follower_reads",
        "snapshots_installed",
    ] {
        let count: u64 = reports
            .iter()
            .map(|r| r.counters.get(name).copied().unwrap_or(0))
            .sum();
        assert!(count > 20, "only {count} {name}");
    }
    assert!(
        crashes > 100 && partitions > 100,
        "faults were injected: {crashes} crashes, {partitions} partitions"
    );
}

#[test]
fn without_faults_every_operation_succeeds() {
    let config = SimConfig {
        faults: Faults::none(),
        ..config()
    };
    let report = run(&RaftHarness::default(), &config, 7, None);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.ops_info, 0);
    assert!(report.ops_ok > 500, "{} operations", report.ops_ok);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let harness = RaftHarness::default();
    let config = config();
    let first = run(&harness, &config, 99, None);
    let second = run(&harness, &config, 99, None);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
    let other = run(&harness, &config, 100, None);
    assert_ne!(first.trace_hash, other.trace_hash);
}

fn broken(bug: Bug) -> RaftHarness {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(bug);
    harness
}

#[test]
fn voting_without_the_up_to_date_check_is_caught() {
    let failed = failures(&broken(Bug::VoteWithoutLogCheck), &config(), 0..200);
    assert!(
        !failed.is_empty(),
        "no seed caught a vote without the log check"
    );
    eprintln!(
        "caught by {} of 200 seeds, first: {:?}",
        failed.len(),
        failed[0]
    );
}

/// A single node is its own quorum, so nothing but its disk stands between "appended" and
/// "committed": its own vote and log count only once durable (`Message::Durable`). Before
/// that rule, about one seed in ten of this range had a crash take back a committed entry.
#[test]
fn a_single_node_counts_only_what_is_durable() {
    let config = SimConfig {
        nodes: 1,
        ..config()
    };
    let failed = failures(&RaftHarness::default(), &config, 5000..5300);
    assert!(failed.is_empty(), "{:?}", failed.first());
}

// Keys that expire: every PUT carries a short time to live, so keys expire all through the
// run while reads race their deadlines, and the checker holds each expiry to its window
// (`quorate_check::expiry`). Two broken variants show the check is not vacuous: reads that
// skip the deadline check (caught by "no read returns an expired value"), and followers that
// skip `Expired` entries (caught when one of them leads and the key comes back).

fn ttl_config(faults: Faults) -> SimConfig {
    let mut config = SimConfig {
        duration: Duration::from_secs(2),
        faults,
        ..SimConfig::default()
    };
    config.workload.put_ttl = Some(Duration::from_millis(100));
    // APPEND keeps a key's time to live (as in Redis), which the register model's expiry
    // ("absent if it still holds the value put") does not follow: leave appends out.
    config.workload.mix.append = 0;
    config
}

fn ttl_failed(harness: &RaftHarness, faults: Faults, seeds: std::ops::Range<u64>) -> usize {
    let seeds: Vec<u64> = seeds.collect();
    let reports = run_many(harness, &ttl_config(faults), &seeds, 2, |_| {});
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    assert!(
        ok > 10 * seeds.len() as u64,
        "only {ok} operations succeeded"
    );
    let failed = quorate_sim::failures(&reports);
    if let Some(first) = failed.first() {
        eprintln!(
            "{} of {} seeds failed, first: {first:?}",
            failed.len(),
            seeds.len()
        );
    }
    failed.len()
}

#[test]
fn raft_expires_keys_within_their_window_under_every_fault() {
    assert_eq!(ttl_failed(&RaftHarness::default(), Faults::all(), 0..24), 0);
    // Without clock faults the window is a millisecond wide: timeliness is checked tightly.
    let tight = Faults {
        clock: false,
        ..Faults::all()
    };
    assert_eq!(ttl_failed(&RaftHarness::default(), tight, 100..112), 0);
}

// Locks with leases through the state machine's own operations: every PUT is `SET k token NX
// PX ms` (one `Op::Set`) and every DELETE a compare-and-delete of the token the client saw
// (`DELIFEQ`, one `Op::DeleteIf`), under every fault. The checker holds acquires to "only
// if absent, then expires in its window" and releases to "only if it holds the token": two
// holders at once, or a release of a lock held by another token, is a linearizability
// violation (`quorate_check::expiry` tests show both are caught).

#[test]
fn raft_locks_with_leases_and_compare_and_delete_releases_stay_linearizable_under_every_fault() {
    use quorate_check::{EventKind, OpValue};
    let mut config = ttl_config(Faults::all());
    config.workload.locks = true;
    // Leases long enough that holders often release before they run out, short enough that
    // many expire during the run.
    config.workload.put_ttl = Some(Duration::from_millis(300));
    config.workload.mix.put = 25;
    config.workload.mix.delete = 25;
    config.workload.mix.cas = 10;
    let seeds: Vec<u64> = (300..348).collect();
    // One at a time: `run_many` drops each run's history, which is what is counted here.
    let reports: Vec<_> = seeds
        .iter()
        .map(|seed| run(&RaftHarness::default(), &config, *seed, None))
        .collect();
    let failed = quorate_sim::failures(&reports);
    assert!(
        failed.is_empty(),
        "{} seeds failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    let count = |kind: EventKind, lock: bool| {
        reports
            .iter()
            .flat_map(|r| &r.history)
            .filter(|e| e.kind == kind)
            .filter(|e| match &e.value {
                OpValue::PutTtlIfAbsent { .. } => lock,
                OpValue::DeleteIf(_) => !lock,
                _ => false,
            })
            .count()
    };
    let (taken, held) = (count(EventKind::Ok, true), count(EventKind::Fail, true));
    let (released, refused) = (count(EventKind::Ok, false), count(EventKind::Fail, false));
    let ops: u64 = reports.iter().map(|r| r.ops_ok + r.ops_fail).sum();
    eprintln!(
        "{ops} operations; locks: {taken} taken, {held} found held; releases: {released} ok, {refused} refused"
    );
    // Each outcome happens, so each is checked.
    for (what, n) in [
        ("taken", taken),
        ("held", held),
        ("released", released),
        ("refused", refused),
    ] {
        assert!(n >= seeds.len(), "only {n} {what}");
    }
    for report in &reports {
        assert_eq!(
            report.linearizable,
            Some(quorate_check::Verdict::Linearizable),
            "seed {}",
            report.seed
        );
    }
}

#[test]
fn reads_that_skip_the_expiry_deadline_are_caught() {
    let broken = broken(Bug::ReadSkipsDeadline);
    assert!(
        ttl_failed(&broken, Faults::none(), 0..24) > 0,
        "no seed caught it"
    );
}

#[test]
fn followers_that_ignore_expiry_are_caught() {
    let broken = broken(Bug::FollowerIgnoresExpiry);
    let faults = Faults {
        crash: true,
        partition: true,
        ..Faults::none()
    };
    assert!(ttl_failed(&broken, faults, 0..24) > 0, "no seed caught it");
}

/// Found on real processes first (`quorate torture --ttl`): a `CAS` proposed by a new leader
/// before its timer proposed the `Expired` entry swapped a value past its deadline. The
/// leader now proposes `ExpireDue` before every write that reads the current value; without
/// it, leader changes under crashes and partitions let such a write see the expired value.
#[test]
fn writes_that_read_an_expired_value_are_caught() {
    let broken = broken(Bug::RmwSeesExpired);
    let faults = Faults {
        crash: true,
        partition: true,
        ..Faults::none()
    };
    assert!(ttl_failed(&broken, faults, 0..48) > 0, "no seed caught it");
}
