//! Process pauses (issue 15, "faults that are too polite"): a node stops for several election
//! timeouts while its clock runs on, then handles everything that queued up meanwhile — the
//! classic GC-pause split brain. A Raft leader that runs its lease from when acknowledgements
//! *arrive* rather than from when it *sent* the round they acknowledge (`Bug::LeaseFromAck`)
//! looks correct while messages are prompt: no classic fault (loss, duplication, reordering,
//! partitions, crashes, clock drift, slow disks) catches it. After a pause, the resumed leader
//! handles its followers' old acknowledgements first, believes it holds a fresh lease, and
//! answers reads from before the newer leader's writes. Measured over seeds 0..1000 (10
//! clients, 2 keys): 9 seeds catch it with pauses (first: seed 40), none without.

use quorate_protocols::raft::Bug;
use quorate_sim::{failures, run_many, Faults, RaftHarness, SimConfig};

const SEEDS: std::ops::Range<u64> = 0..1000;

fn caught(faults: Faults) -> Vec<u64> {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(Bug::LeaseFromAck);
    let mut config = SimConfig {
        faults,
        ..SimConfig::default()
    };
    config.workload.clients = 10;
    config.workload.keys = 2;
    let seeds: Vec<u64> = SEEDS.collect();
    let reports = run_many(&harness, &config, &seeds, 2, |_| {});
    let summary = quorate_sim::Summary::of(&reports);
    eprintln!(
        "{faults}: {} pauses, {} crashes; lease reads {:?}",
        summary.pauses,
        summary.crashes,
        summary.counters.get("lease_reads")
    );
    let failed = failures(&reports);
    for (seed, violations) in failed.iter().take(3) {
        eprintln!("  seed {seed}: {violations:?}");
    }
    failed.into_iter().map(|(seed, _)| seed).collect()
}

#[test]
fn a_lease_run_from_the_acknowledgements_is_caught_by_pauses_only() {
    let classic = caught(Faults::classic());
    let paused = caught(Faults {
        pause: true,
        ..Faults::classic()
    });
    eprintln!(
        "seeds {SEEDS:?} catching Bug::LeaseFromAck: {} under the classic faults {classic:?}, \
         {} with pauses too (first: {:?})",
        classic.len(),
        paused.len(),
        paused.first()
    );
    assert!(classic.is_empty(), "classic faults caught it: {classic:?}");
    assert!(!paused.is_empty(), "pauses did not catch the broken lease");
}
