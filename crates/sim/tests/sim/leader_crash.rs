//! The deterministic leader crash of `quorate compare`, and the counters it reads: the
//! current leader crashes at the configured time and restarts after the downtime, the same
//! way on every replay; fsyncs are counted always, message bytes only when asked.

use quorate_sim::{ChainHarness, Faults, LeaderCrash, QuorumHarness, RaftHarness, SimConfig};
use std::time::Duration;

fn config() -> SimConfig {
    SimConfig {
        nodes: 3,
        faults: Faults::none(),
        duration: Duration::from_secs(2),
        leader_crash: Some(LeaderCrash {
            at: Duration::from_millis(800),
            downtime: Duration::from_millis(500),
        }),
        count_message_bytes: true,
        ..SimConfig::default()
    }
}

#[test]
fn the_leader_crashes_at_the_set_time_and_replays_identically() {
    let config = config();
    for seed in 0..3 {
        let report = quorate_sim::run(&RaftHarness::default(), &config, seed, None);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        let crash = report.stats.leader_crash.expect("the leader crashed");
        assert_eq!(crash.at, 800_000_000);
        assert!(
            crash.was_leader,
            "a raft leader exists 800 ms into a clean run"
        );
        assert_eq!(
            report.stats.crashes, 1,
            "only the leader crash, no random ones"
        );
        let again = quorate_sim::run(&RaftHarness::default(), &config, seed, None);
        assert_eq!(report.trace_hash, again.trace_hash);
        assert!(report.stats.fsyncs > 0);
        assert!(report.stats.message_bytes >= 8 * report.stats.messages_sent);
    }
    let mut trace = Vec::new();
    let mut keep = |line: &str| trace.push(line.to_string());
    quorate_sim::run(&ChainHarness::new(false), &config, 0, Some(&mut keep));
    let crash = trace
        .iter()
        .find(|l| l.contains("nemesis: crash the leader"));
    assert!(crash.is_some(), "the chain's head crashes as its leader");
    let restart = trace.iter().filter(|l| l.contains("start (")).count();
    assert_eq!(restart, 4, "three starts and the crashed node's restart");
}

#[test]
fn leaderless_protocols_lose_node_one_and_bytes_are_counted_only_when_asked() {
    let mut config = config();
    let harness = QuorumHarness {
        config: Default::default(),
        nodes: 3,
    };
    let report = quorate_sim::run(&harness, &config, 1, None);
    let crash = report.stats.leader_crash.expect("a node crashed");
    assert_eq!((crash.node, crash.was_leader), (1, false));
    config.count_message_bytes = false;
    let report = quorate_sim::run(&RaftHarness::default(), &config, 1, None);
    assert_eq!(report.stats.message_bytes, 0);
    assert!(report.stats.messages_sent > 0);
}

#[test]
fn a_crash_after_the_fault_phase_is_refused() {
    let mut config = config();
    config.leader_crash = Some(LeaderCrash {
        at: Duration::from_secs(3),
        downtime: Duration::from_secs(1),
    });
    let why = config.validate().unwrap_err();
    assert!(why.contains("after the fault phase"), "{why}");
}
