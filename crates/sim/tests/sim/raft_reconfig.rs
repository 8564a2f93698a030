//! Raft under the reconfiguration nemesis: members are added, promoted, removed (the leader
//! too) and replaced wholesale, and leadership is transferred, while messages are lost and
//! reordered, the network partitions, nodes crash and clocks drift. Every safety property and
//! linearizability are checked as always; the tests also show that the events happened, and
//! that a broken joint-consensus rule is caught.

use quorate_protocols::raft::Bug;
use quorate_sim::{failures, run_many, Faults, RaftHarness, RunReport, SimConfig, Summary};
use std::time::Duration;

fn config(nodes: usize) -> SimConfig {
    SimConfig {
        nodes,
        duration: Duration::from_secs(3),
        reconfig: true,
        // The non-vacuity thresholds and measured counts here were calibrated under the
        // classic faults; pauses and crash points (now in `all`) move them.
        faults: Faults::classic(),
        ..SimConfig::default()
    }
}

fn runs(harness: &RaftHarness, config: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, config, &seeds, 2, |_| {})
}

#[test]
fn raft_is_safe_and_live_while_the_cluster_is_reconfigured_under_every_fault() {
    let reports = runs(&RaftHarness::default(), &config(5), 2000..2200);
    let failed = failures(&reports);
    assert!(
        failed.is_empty(),
        "{} seeds failed, first {:?}; replay with quorate sim --reconfig --seed N --trace",
        failed.len(),
        failed[0]
    );
    let sums = Summary::of(&reports).counters;
    let at_least = |name: &str, least: u64| {
        let count = sums.get(name).copied().unwrap_or(0);
        assert!(count >= least, "only {count} {name}: {sums:?}");
    };
    // Not vacuous: every kind of change happened, under faults, many times.
    at_least("membership_changes", 300);
    at_least("joint_changes", 50);
    at_least("transfers", 100);
    at_least("removed_leader_step_downs", 30);
    at_least("membership_changes_refused", 10);
    at_least("read_index_reads", 200);
    at_least("lease_reads", 1000);
    at_least("follower_reads", 500);
    at_least("snapshots_installed", 20);
    let requests: u64 = reports.iter().map(|r| r.stats.admin_requests).sum();
    let done: u64 = reports.iter().map(|r| r.stats.admin_ok).sum();
    assert!(
        requests >= 500 && done >= 300,
        "{done} of {requests} requests done"
    );
}

#[test]
fn committing_joint_consensus_with_the_new_majority_alone_is_caught() {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(Bug::JointNewMajorityOnly);
    // Longer runs: more changes per seed, so more chances to meet a partition at the moment.
    let config = SimConfig {
        duration: Duration::from_secs(6),
        ..config(5)
    };
    let reports = runs(&harness, &config, 0..200);
    let failed = failures(&reports);
    assert!(
        !failed.is_empty(),
        "no seed in 0..200 caught the broken rule"
    );
    let (seed, violations) = &failed[0];
    assert!(
        // Two leaders of one term, elected by disjoint majorities of the old and the new
        // configuration, is the thesis's own example of an unsafe change (§4.1, Figure 4.2).
        violations.iter().any(|v| v.contains("leader completeness")
            || v.contains("state machine safety")
            || v.contains("election safety")
            || v.contains("linearizability")),
        "seed {seed}: {violations:?}"
    );
    eprintln!(
        "caught by {} of 200 seeds, first {seed}: {violations:?}",
        failed.len()
    );
}

/// Members added with an address (`AddLearnerAt`, what `quorate member add` sends) keep it
/// through every later change: a leader that leaves joint consensus without the addresses is
/// caught by configuration safety, which also shows that addresses travel under faults.
#[test]
fn a_configuration_that_drops_members_addresses_is_caught() {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(Bug::JointDropsAddresses);
    let reports = runs(&harness, &config(5), 0..40);
    let failed = failures(&reports);
    assert!(!failed.is_empty(), "no seed in 0..40 caught it");
    let (seed, violations) = &failed[0];
    assert!(
        violations
            .iter()
            .any(|v| v.contains("configuration safety") && v.contains("address")),
        "seed {seed}: {violations:?}"
    );
    eprintln!("caught by {} of 40 seeds, first {seed}", failed.len());
}

#[test]
fn without_pre_vote_leaders_are_disrupted_far_more_often() {
    let config = SimConfig {
        duration: Duration::from_secs(3),
        // Measured under the classic faults. With pauses too the ratio shrinks (57 with
        // pre-vote, 116 without): a leader resumed from a long pause is deposed by a higher
        // term however pre-vote guards the followers, and that counts as a disruption.
        faults: Faults::classic(),
        ..SimConfig::default()
    };
    let disruptions = |pre_vote: bool| {
        let mut harness = RaftHarness::default();
        harness.config.pre_vote = pre_vote;
        let reports = runs(&harness, &config, 0..200);
        assert!(failures(&reports).is_empty(), "{:?}", failures(&reports));
        Summary::of(&reports)
            .counters
            .get("leader_disruptions")
            .copied()
            .unwrap_or(0)
    };
    let (without, with) = (disruptions(false), disruptions(true));
    eprintln!("leader disruptions over 200 seeds: {without} without pre-vote, {with} with");
    assert!(without >= 30, "{without}");
    assert!(
        with * 5 < without,
        "{with} with pre-vote, {without} without"
    );
}
