//! Leases under faults, through the same code a server's `LEASE` commands and `SET … LEASE`
//! take: `Op::LeaseGrant`, `Op::PutLeased`, `Op::LeaseKeepAlive` and `Op::LeaseRevoke`
//! proposed to Raft nodes, stamped by the leader and applied by the same `KvStore`, with the
//! leader's timer ending leases that run out. The checker gives each attached value the
//! window its lease's events allow (`quorate_check::lease`): a key gone before its lease
//! could have ended, or read after it must have, is a linearizability violation. Broken
//! leaders that end leases early, or read past the deadline, prove the check is not vacuous.

use quorate_protocols::raft::Bug;
use quorate_sim::{run_many, Faults, RaftHarness, RunReport, SimConfig};
use std::time::Duration;

fn lease_config(nodes: usize, clients: usize, keys: usize, faults: Faults) -> SimConfig {
    let mut config = SimConfig {
        nodes,
        duration: Duration::from_secs(3),
        faults,
        ..SimConfig::default()
    };
    config.workload.leases = true;
    config.workload.put_ttl = Some(Duration::from_millis(150));
    config.workload.clients = clients;
    config.workload.keys = keys;
    config
}

fn batch(harness: &RaftHarness, config: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    let reports = run_many(harness, config, &seeds, 2, |_| {});
    for (seed, violations) in quorate_sim::failures(&reports) {
        eprintln!(
            "seed {seed}: {violations:?}\n  replay: quorate sim --protocol raft --workload lease \
             --nodes {} --clients {} --keys {} --seed {seed}",
            config.nodes, config.workload.clients, config.workload.keys
        );
    }
    reports
}

fn counter(reports: &[RunReport], name: &str) -> u64 {
    reports
        .iter()
        .flat_map(|r| &r.counters)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .sum()
}

#[test]
fn attached_keys_disappear_within_their_leases_window_under_every_fault() {
    for (nodes, clients, keys, seeds) in [(3, 5, 4, 0..40), (5, 8, 1, 100..130)] {
        let config = lease_config(nodes, clients, keys, Faults::all());
        let reports = batch(&RaftHarness::default(), &config, seeds);
        let failed = quorate_sim::failures(&reports);
        assert!(failed.is_empty(), "{} seeds failed", failed.len());
        for report in &reports {
            assert_eq!(
                report.linearizable,
                Some(quorate_check::Verdict::Linearizable),
                "seed {} unchecked",
                report.seed
            );
        }
        // Every part of a lease's life happened, so every part was checked.
        for name in ["leases_granted", "lease_keepalives", "leases_revoked"] {
            let n = counter(&reports, name);
            assert!(n >= reports.len() as u64, "{nodes} nodes: only {n} {name}");
        }
        let gone: u64 = reports.iter().map(|r| r.ops_fail).sum();
        assert!(gone > 0, "no lease ran out under a client");
    }
}

fn caught(bug: Bug, faults: Faults, seeds: std::ops::Range<u64>) -> usize {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(bug);
    let reports = batch(&harness, &lease_config(3, 5, 4, faults), seeds);
    quorate_sim::failures(&reports).len()
}

#[test]
fn a_leader_that_ends_leases_early_is_caught() {
    assert!(
        caught(Bug::ExpiresEarly, Faults::none(), 0..16) > 0,
        "no seed caught it"
    );
}

#[test]
fn reads_past_a_leases_deadline_are_caught() {
    assert!(
        caught(Bug::ReadSkipsDeadline, Faults::none(), 0..24) > 0,
        "no seed caught it"
    );
}
