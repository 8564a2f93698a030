//! The client session and the node shell run under the simulator (issue 13): with the bug the
//! real node had re-introduced — reads without a request number of their own, so that a late
//! answer to one read completes the next — the simulator finds wrong answers within a fixed
//! seed range, and prints the seeds that replay them.

use quorate_core::client::ClientBug;
use quorate_sim::{failures, run_many, Faults, MultiPaxosHarness, RaftHarness, SimConfig};
use std::time::Duration;

fn config(bug: Option<ClientBug>) -> SimConfig {
    let mut config = SimConfig {
        nodes: 3,
        duration: Duration::from_secs(4),
        // The seed counts quoted (VERIFICATION.md) were measured under the classic faults;
        // `all` now adds pauses and crash points, which move them.
        faults: Faults::classic(),
        client_bug: bug,
        ..SimConfig::default()
    };
    config.workload.keys = 3;
    config
}

#[test]
fn reads_without_identity_are_caught_in_multipaxos() {
    let seeds: Vec<u64> = (0..40).collect();
    let reports = run_many(
        &MultiPaxosHarness::default(),
        &config(Some(ClientBug::ReadsWithoutIdentity)),
        &seeds,
        2,
        |_| {},
    );
    let failed = failures(&reports);
    assert!(
        !failed.is_empty(),
        "a late answer to an earlier read completing a later one went unnoticed in 40 seeds"
    );
    eprintln!(
        "caught in {} of 40 seeds, first {:?}",
        failed.len(),
        failed.first()
    );
}

#[test]
fn reads_without_identity_are_caught_in_raft() {
    let seeds: Vec<u64> = (0..40).collect();
    let bug = config(Some(ClientBug::ReadsWithoutIdentity));
    let failed = failures(&run_many(&RaftHarness::default(), &bug, &seeds, 2, |_| {}));
    assert!(!failed.is_empty(), "unnoticed in 40 raft seeds");
    // The same seeds with every request numbered are clean.
    let clean = failures(&run_many(
        &RaftHarness::default(),
        &config(None),
        &seeds,
        2,
        |_| {},
    ));
    assert!(clean.is_empty(), "{clean:?}");
}
