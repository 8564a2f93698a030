//! Scripted multi-node scenarios that show a feature's check bites, message by message:
//!
//! - thesis §9.6: without pre-vote, a node that campaigned alone during a partition deposes a
//!   healthy leader when it comes back (counted as a disruption); with pre-vote it does not;
//! - thesis §6.4.1: a lease read on a leader whose clock runs slower than the drift bound
//!   allows returns a stale value, which the linearizability checker rejects; within the
//!   bound, the same leader's lease has run out and it does not answer.

use crate::support;

use quorate_check::linearizability::Limits;
use quorate_check::promise::linearizability;
use quorate_check::Verdict;
use quorate_core::{Input, Role};
use quorate_protocols::raft::{AppendResult, Message, RaftConfig, Timer};
use support::{get, put, Cluster};

/// Three nodes; n1 leads from 200 ms, n3 is cut off from 220 ms to 1010 ms and times out three
/// times meanwhile; then n1's heartbeat reaches it. Returns the cluster and n3's answer.
fn rejoin(pre_vote: bool) -> (Cluster, Message) {
    let config = RaftConfig {
        pre_vote,
        ..RaftConfig::default()
    };
    let mut c = Cluster::new(3, config);
    c.advance_to(200);
    c.elect(1, &[2, 3]);
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.exchange(&[1, 2, 3]);
    c.advance_to(220);
    c.partition(&[3]);
    for t in (250..=1000).step_by(50) {
        c.advance_to(t);
        c.step(1, Input::Timer(Timer::Heartbeat));
        c.exchange(&[1, 2]);
        if t % 300 == 100 {
            c.step(3, Input::Timer(Timer::Election)); // At 400, 700 and 1000 ms.
        }
    }
    c.advance_to(1010);
    c.heal();
    c.network.clear(); // n3's campaign messages were sent into the partition.
    c.advance_to(1050);
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.deliver_while(|from, to, _| from == 1 && to == 3);
    let (_, _, answer) = c
        .network
        .iter()
        .find(|(from, to, _)| (*from, *to) == (3, 1))
        .cloned()
        .expect("n3 answers the heartbeat");
    c.exchange(&[1, 2, 3]);
    (c, answer)
}

#[test]
fn t9_6_without_pre_vote_a_rejoining_node_disrupts_a_healthy_leader() {
    let (c, answer) = rejoin(false);
    assert_eq!(c.nodes[&3].term(), 4, "three lonely elections");
    let Message::AppendEntriesResponse {
        term: 4,
        result: AppendResult::Reject { .. },
        ..
    } = answer
    else {
        panic!("n3 refuses the leader of term 1 with its term 4, got {answer:?}")
    };
    assert_ne!(c.role(1), Role::Leader, "the healthy leader was deposed");
    assert_eq!(c.safety.count("leader_disruptions"), 1);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn t9_6_with_pre_vote_a_rejoining_node_does_not_disrupt_the_leader() {
    let (c, answer) = rejoin(true);
    assert_eq!(c.nodes[&3].term(), 1, "pre-votes never bump the term");
    let Message::AppendEntriesResponse {
        term: 1,
        result: AppendResult::Success { .. },
        ..
    } = answer
    else {
        panic!("n3 accepts the leader of term 1, got {answer:?}")
    };
    assert_eq!(c.role(1), Role::Leader);
    assert_eq!(c.safety.count("leader_disruptions"), 0);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

/// Three nodes with lease reads and a 5% drift bound (lease = 150 ms × 0.95 / 1.05 =
/// 135.7 ms of the leader's clock). n1's clock drifts by `leader_drift_ppm`, the others' by
/// `follower_drift_ppm`. n1 leads and earns a lease at 250 ms and is cut off at 251 ms; n2 is
/// elected at 410 ms and acknowledges put(k, new) at 420 ms; at 430 ms a client reads k at n1.
fn lease_read_after_a_new_leader(leader_drift_ppm: i64, follower_drift_ppm: i64) -> Cluster {
    let config = RaftConfig {
        lease_reads: true,
        clock_drift_bound_ppm: 50_000,
        ..RaftConfig::default()
    };
    let mut c = Cluster::new(3, config);
    c.set_drift(1, leader_drift_ppm);
    c.set_drift(2, follower_drift_ppm);
    c.set_drift(3, follower_drift_ppm);
    c.advance_to(200);
    c.elect(1, &[2, 3]);
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.exchange(&[1, 2, 3]);
    c.advance_to(210);
    c.invoke(1, 1, put("k", "old"));
    c.exchange(&[1, 2, 3]);
    c.complete_answered();
    c.advance_to(250);
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.exchange(&[1, 2, 3]);
    c.advance_to(251);
    c.partition(&[1]);
    c.advance_to(410);
    c.elect(2, &[3]);
    c.step(2, Input::Timer(Timer::Heartbeat));
    c.exchange(&[2, 3]);
    c.advance_to(420);
    c.invoke(2, 2, put("k", "new"));
    c.exchange(&[2, 3]);
    c.complete_answered();
    c.advance_to(430);
    c.invoke(1, 3, get("k"));
    c.complete_answered();
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    c
}

#[test]
fn t6_4_1_a_lease_read_beyond_the_drift_bound_is_stale_and_the_checker_rejects_it() {
    // n1's clock runs 40% slow: its 135.7 ms lease lasts 226 ms of true time, past the
    // moment n3 (whose clock is right) may vote for n2.
    let c = lease_read_after_a_new_leader(-400_000, 0);
    let stale = c.history.last().expect("the read completed");
    assert_eq!(stale.node, Some(1));
    assert_eq!(stale.value, quorate_check::OpValue::Get(Some("old".into())));
    assert_eq!(c.safety.count("lease_reads"), 1);
    let (verdict, violations) = linearizability(&c.history, &Limits::default());
    assert_eq!(verdict, Verdict::NotLinearizable);
    assert!(
        violations[0].contains("no linearization of key \"k\""),
        "{violations:?}"
    );
}

#[test]
fn t6_4_1_within_the_drift_bound_the_old_leader_lease_has_expired() {
    // n1 runs 5% slow and the others 5% fast, the worst the bound allows: n1's lease ends
    // (at 392.9 ms) before n2 can be elected, so at 430 ms n1 starts a round instead of
    // answering, and the round cannot reach a quorum.
    let c = lease_read_after_a_new_leader(-50_000, 50_000);
    assert!(c.replies.is_empty());
    assert_eq!(c.safety.count("lease_reads"), 0);
    let last = c.history.last().expect("the read was invoked");
    assert_eq!(last.kind, quorate_check::EventKind::Invoke);
    let (verdict, _) = linearizability(&c.history, &Limits::default());
    assert_eq!(verdict, Verdict::Linearizable);
}
