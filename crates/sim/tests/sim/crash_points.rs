//! Crash points (issue 15, "faults that are too polite"): crashes placed where a step is
//! weakest — right after a persist is issued, right after an fsync completes, and between the
//! sends of one step — and placed far more often on the rare steps that move a node to a new
//! term (a vote granted, a candidacy). A Raft voter that answers a RequestVote before the
//! hard-state write it must wait for (`Bug::VoteBeforePersist`) forgets its vote when it
//! crashes before the write is durable, and may vote again in the same term. Crashes at
//! random moments seldom fall in that window; a crash point right after the vote's persist
//! falls in it every time. The vote-safety ledger (one vote per voter per term, in
//! `RaftSafety`) sees the second vote as it leaves, whether or not it elects anybody.
//!
//! Pre-vote and check-quorum hide the bug (a restarted voter ignores vote requests for an
//! election timeout, and rarely sees a second candidate of the same term), so, as in
//! `defences.rs`, the broken voter runs without them. Measured over seeds 0..1000: 2 seeds
//! catch it under the classic faults (354, 572), 74 with crash points too (first: seed 3).

use quorate_protocols::raft::Bug;
use quorate_sim::{failures, run_many, Faults, RaftHarness, SimConfig};

const SEEDS: std::ops::Range<u64> = 0..1000;

fn caught(faults: Faults) -> Vec<u64> {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(Bug::VoteBeforePersist);
    harness.config.pre_vote = false;
    harness.config.check_quorum = false;
    harness.config.lease_reads = false;
    let config = SimConfig {
        faults,
        ..SimConfig::default()
    };
    let seeds: Vec<u64> = SEEDS.collect();
    let reports = run_many(&harness, &config, &seeds, 2, |_| {});
    let summary = quorate_sim::Summary::of(&reports);
    eprintln!(
        "{faults}: {} crashes, {} of them at crash points",
        summary.crashes, summary.crash_points
    );
    let failed = failures(&reports);
    for (seed, violations) in failed.iter().take(2) {
        eprintln!("  seed {seed}: {violations:?}");
    }
    failed.into_iter().map(|(seed, _)| seed).collect()
}

#[test]
fn a_vote_answered_before_it_is_durable_is_caught_by_crash_points() {
    let classic = caught(Faults::classic());
    let points = caught(Faults {
        crash_points: true,
        ..Faults::classic()
    });
    eprintln!(
        "seeds {SEEDS:?} catching Bug::VoteBeforePersist: {} under the classic faults \
         {classic:?}, {} with crash points too (first: {:?})",
        classic.len(),
        points.len(),
        points.first()
    );
    assert!(
        !points.is_empty(),
        "crash points did not catch the lost vote"
    );
    assert!(
        points.len() >= 20 * classic.len().max(1),
        "crash points should catch it in far more seeds: {} vs {}",
        points.len(),
        classic.len()
    );
}
