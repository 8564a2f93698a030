//! Raft §5.4.2, Figure 8, scripted message by message on a five-node cluster: why a leader
//! must not commit an entry of an earlier term by counting replicas. The correct Raft refuses
//! the commit at step (c); the deliberately broken variant commits it, and the cluster-wide
//! checker reports the violation when step (d) elects a leader without that entry.

use crate::support;

use quorate_core::{ClientId, Input, Op, Protocol, ReadMode, Request, Role};
use quorate_protocols::raft::{Bug, RaftConfig, Timer};
use support::Cluster;

/// Figure 8 is about Figure 2 Raft: no pre-vote or check-quorum, which would change who may
/// campaign when, and which the script does not model.
fn config() -> RaftConfig {
    RaftConfig::figure2()
}

/// A client write of `seq` to `leader`, with the session of client 7.
fn put(c: &mut Cluster, leader: u64, seq: u64) {
    let request = Request {
        client: ClientId(7),
        seq,
        op: Op::Put {
            key: "k".into(),
            value: seq.to_string().into(),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    };
    c.step(leader, Input::Request(request));
}

/// Figure 8 (a) to (d). Returns the cluster and the index of S1's term-2 entry that, after
/// step (c), sits on a majority {S1, S2, S3}.
fn figure8(config: RaftConfig) -> (Cluster, u64) {
    let mut c = Cluster::new(5, config);
    // Term 1: S1 leads and replicates a first command everywhere.
    c.elect(1, &[2, 3, 4, 5]);
    put(&mut c, 1, 1);
    c.replicate(1, &[2, 3, 4, 5]);
    // (a) S1 leads term 2 and replicates a new entry to S2 only.
    c.crash(1);
    c.restart(1);
    c.elect(1, &[2, 3]);
    assert_eq!(c.nodes[&1].term(), 2);
    put(&mut c, 1, 2);
    c.replicate(1, &[2]);
    let old_entry = c.last_index(1);
    // (b) S1 crashes; S5 leads term 3 with the votes of S3 and S4, and appends at the same
    // index an entry no one else receives.
    c.crash(1);
    c.elect(5, &[3, 4]);
    assert_eq!(c.nodes[&5].term(), 3);
    put(&mut c, 5, 3);
    c.network.clear();
    // (c) S5 crashes; S1 restarts and leads term 4 with the votes of S2 and S3, and replicates
    // its log to S2 (which has it) and S3: the term-2 entry is now on a majority.
    c.crash(5);
    c.restart(1);
    c.elect(1, &[2, 3]);
    assert_eq!(c.nodes[&1].term(), 4);
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.replicate(1, &[2, 3]);
    // (d) S1 crashes; S5 restarts and campaigns among S2, S3, S4.
    c.crash(1);
    c.restart(5);
    for _ in 0..3 {
        c.campaign(5, &[2, 3, 4, 5]);
    }
    c.exchange(&[2, 3, 4, 5]);
    (c, old_entry)
}

#[test]
fn figure8_correct_raft_never_commits_the_old_entry_by_counting() {
    let (c, _) = figure8(config());
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn figure8_the_broken_commit_rule_loses_a_committed_entry_and_is_caught() {
    let config = RaftConfig {
        bug: Some(Bug::CommitPreviousTermByCounting),
        ..config()
    };
    let (c, old_entry) = figure8(config);
    assert_eq!(c.nodes[&5].status().role, Role::Leader, "S5 won term 5");
    assert!(c.nodes[&5].term() >= 5);
    let found: Vec<&str> = c.violations.iter().map(|v| v.property).collect();
    assert!(
        found.contains(&"leader completeness"),
        "expected a leader completeness violation about index {old_entry}, found {:?}",
        c.violations
    );
}

/// The same story in the simulator, as `quorate sim --scenario raft-figure8` runs it: the
/// scripted fault schedule (`quorate_sim::script::raft_figure8`) steers the elections by
/// topology and places the crashes, while timers, delays and fsyncs are drawn from the seed.
/// On every seed tried, n1 leads term 4, finds its term-2 entry at index 2 on a quorum,
/// reports withholding the commit (`Event::OldTermCommitWithheld`), and commits index 2 only
/// together with its term-4 no-op at index 3; every safety check holds.
#[test]
fn figure8_scripted_in_the_simulator_withholds_the_old_term_commit_on_every_seed() {
    use quorate_sim::record::{RunEvent, What};
    use quorate_sim::{Faults, RaftHarness, SimConfig};
    use std::time::Duration;

    let mut harness = RaftHarness::default();
    harness.config.entries_per_append_max = 1;
    let mut config = SimConfig {
        nodes: 5,
        faults: Faults::none(),
        duration: Duration::from_secs(3),
        script: Some(quorate_sim::script::raft_figure8()),
        ..SimConfig::default()
    };
    config.workload.clients = 1;
    config.workload.local_reads = 1.0;
    config.workload.mix = quorate_sim::Mix {
        get: 1,
        put: 0,
        append: 0,
        cas: 0,
        delete: 0,
    };
    for seed in 0..20 {
        let mut events: Vec<RunEvent> = Vec::new();
        let report =
            quorate_sim::run_observed(&harness, &config, seed, &mut |e| events.push(e.clone()));
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        assert_eq!(
            report.counters.get("old_term_commits_withheld"),
            Some(&1),
            "seed {seed}: {:?}",
            report.counters
        );
        let n1 = |e: &&RunEvent| e.what.lane() == Some("n1");
        let term4 = events
            .iter()
            .position(|e| matches!(&e.what, What::Role { node, role, term: 4, .. } if node == "n1" && role == "Leader"))
            .unwrap_or_else(|| panic!("seed {seed}: n1 never led term 4"));
        let after: Vec<&RunEvent> = events[term4..].iter().filter(n1).collect();
        let withheld = after
            .iter()
            .position(|e| matches!(&e.what, What::Note { text, .. } if text.starts_with("commit withheld: index 2 ") && text.contains("older term 2")))
            .unwrap_or_else(|| panic!("seed {seed}: no withheld commit of index 2 in term 4"));
        let first_commit = after
            .iter()
            .find_map(|e| match e.what {
                What::Commit { index, .. } => Some(index),
                _ => None,
            })
            .unwrap_or_else(|| panic!("seed {seed}: n1 commits nothing in term 4"));
        assert_eq!(
            first_commit, 3,
            "seed {seed}: index 2 commits only with the term-4 no-op at index 3"
        );
        let commit_at = after
            .iter()
            .position(|e| matches!(e.what, What::Commit { .. }))
            .expect("found above");
        assert!(
            withheld < commit_at,
            "seed {seed}: withheld before it commits"
        );
        let before: Vec<&RunEvent> = events[..term4].iter().filter(n1).collect();
        assert!(
            !before
                .iter()
                .any(|e| matches!(e.what, What::Commit { index, .. } if index >= 2)),
            "seed {seed}: n1 committed index 2 before term 4"
        );
    }
}
