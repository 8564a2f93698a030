//! Keys that expire, under the simulator: every PUT carries a short time to live, so keys
//! expire all through the run while reads race their deadlines, and the checker holds each
//! expiry to its window (`quorate_check::expiry`). Two deliberately broken Raft variants show
//! the check is not vacuous: reads that skip the deadline check (caught by *no read returns
//! an expired value*), and followers that skip `Expired` entries (caught when one of them
//! leads and the key comes back).

use quorate_protocols::raft::Bug;
use quorate_sim::{failures, run_many, Faults, RaftHarness, SimConfig};
use std::time::Duration;

fn config(faults: Faults) -> SimConfig {
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

fn failed(harness: &RaftHarness, faults: Faults, seeds: std::ops::Range<u64>) -> usize {
    let seeds: Vec<u64> = seeds.collect();
    let reports = run_many(harness, &config(faults), &seeds, 2, |_| {});
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    assert!(
        ok > 10 * seeds.len() as u64,
        "only {ok} operations succeeded"
    );
    let failed = failures(&reports);
    if let Some(first) = failed.first() {
        eprintln!(
            "{} of {} seeds failed, first: {first:?}",
            failed.len(),
            seeds.len()
        );
    }
    failed.len()
}

fn broken(bug: Bug) -> RaftHarness {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(bug);
    harness
}

#[test]
fn raft_expires_keys_within_their_window_under_every_fault() {
    assert_eq!(failed(&RaftHarness::default(), Faults::all(), 0..24), 0);
    // Without clock faults the window is a millisecond wide: timeliness is checked tightly.
    let tight = Faults {
        clock: false,
        ..Faults::all()
    };
    assert_eq!(failed(&RaftHarness::default(), tight, 100..112), 0);
}

#[test]
fn reads_that_skip_the_deadline_are_caught() {
    let broken = broken(Bug::ReadSkipsDeadline);
    assert!(
        failed(&broken, Faults::none(), 0..24) > 0,
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
    assert!(failed(&broken, faults, 0..24) > 0, "no seed caught it");
}
