//! Reads without the log (thesis §6.4): ReadIndex, leases (§6.4.1) and follower reads.

use super::*;

fn heartbeat(round: u64, prev: (u64, u64), commit: u64) -> Message {
    Message::AppendEntries {
        term: 1,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries: vec![],
        leader_commit: commit,
        round,
    }
}

fn value(v: Option<&str>) -> Output {
    Output::Value(v.map(|v| v.as_bytes().to_vec().into()))
}

#[test]
fn t6_4_read_index_confirms_leadership_with_a_round_and_writes_nothing() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    let effects = step(&mut raft, Input::Request(get(9, 0, "k")));
    assert!(persists(&effects).is_empty(), "nothing goes to the log");
    assert!(replies(&effects).is_empty(), "not before a quorum confirms");
    assert_eq!(
        sends(&effects),
        vec![
            (n(2), heartbeat(1, (1, 1), 1)),
            (n(3), heartbeat(1, (1, 1), 1))
        ]
    );
    // An answer to an earlier round proves nothing about leadership after the read arrived.
    assert!(replies(&deliver(&mut raft, 2, ack(1, 0, 1))).is_empty());
    let effects = deliver(&mut raft, 2, ack(1, 1, 1));
    assert_eq!(replies(&effects), vec![ok_reply(9, 0, value(None))]);
    assert_eq!(raft.events(), &[Event::ReadIndexRead]);
}

#[test]
fn t6_4_reads_queued_behind_a_round_in_flight_share_the_next_round() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    // The first read starts round 1.
    let effects = step(&mut raft, Input::Request(get(9, 0, "k")));
    assert_eq!(sends(&effects).len(), 2, "round 1 to both followers");
    // Three more arrive while round 1 is in flight: no round each, they wait for round 2.
    for client in [10, 11, 12] {
        let effects = step(&mut raft, Input::Request(get(client, 0, "k")));
        assert!(sends(&effects).is_empty(), "no round per read: {effects:?}");
        assert!(replies(&effects).is_empty());
    }
    // Round 1 confirmed: it answers the read that came before it, not the three after it
    // (round 1 left before they arrived, so it proves nothing about leadership since), and
    // starts round 2 for them.
    let effects = deliver(&mut raft, 2, ack(1, 1, 1));
    assert_eq!(replies(&effects), vec![ok_reply(9, 0, value(None))]);
    assert_eq!(
        sends(&effects)
            .iter()
            .filter(|(_, m)| matches!(m, Message::AppendEntries { round: 2, .. }))
            .count(),
        2,
        "round 2 to both followers: {effects:?}"
    );
    // One confirmation of round 2 answers all three.
    let effects = deliver(&mut raft, 3, ack(1, 2, 1));
    assert_eq!(
        replies(&effects),
        vec![
            ok_reply(10, 0, value(None)),
            ok_reply(11, 0, value(None)),
            ok_reply(12, 0, value(None))
        ]
    );
    assert!(sends(&effects).is_empty(), "nothing waits: no round 3");
}

#[test]
fn t6_4_a_heartbeat_round_confirms_reads_queued_before_it() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    step(&mut raft, Input::Request(get(9, 0, "k"))); // Round 1, whose answers are lost.
    step(&mut raft, Input::Request(get(10, 0, "k"))); // Waits for round 2.
    let effects = step(&mut raft, Input::Timer(Timer::Heartbeat)); // Sends round 2.
    assert!(replies(&effects).is_empty());
    let effects = deliver(&mut raft, 2, ack(1, 2, 1));
    assert_eq!(
        replies(&effects),
        vec![ok_reply(9, 0, value(None)), ok_reply(10, 0, value(None))]
    );
}

#[test]
fn t6_4_a_new_leader_serves_reads_only_once_its_noop_is_committed() {
    let mut raft = leader_of(&[1, 2, 3], RaftConfig::default());
    step(&mut raft, Input::Request(get(9, 0, "k")));
    // Round 1 is confirmed, but the commit index may still lag the previous leader's.
    assert!(replies(&deliver(&mut raft, 2, ack(1, 1, 0))).is_empty());
    let effects = deliver(&mut raft, 2, ack(1, 1, 1));
    assert_eq!(raft.commit_index(), 1);
    assert_eq!(replies(&effects), vec![ok_reply(9, 0, value(None))]);
}

#[test]
fn t6_3_a_read_that_opens_a_session_goes_through_the_log() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    let effects = step(&mut raft, Input::Request(get(9, 1, "k")));
    let command = Payload::Command(get(9, 1, "k").command());
    assert_eq!(
        persists(&effects),
        vec![Record::Entries(vec![Entry {
            index: 2,
            term: 1,
            payload: command
        }])]
    );
}

fn leased(drift_bound_ppm: u64) -> Raft {
    let config = RaftConfig {
        lease_reads: true,
        clock_drift_bound_ppm: drift_bound_ppm,
        ..RaftConfig::default()
    };
    let mut raft = settled_leader_of(&[1, 2, 3], config);
    // Round 1 leaves at 50 ms; node 2 echoes it at 60 ms: with the leader, a quorum.
    step_at(&mut raft, ms(50), Input::Timer(Timer::Heartbeat));
    deliver_at(&mut raft, ms(60), 2, ack(1, 1, 1));
    raft
}

#[test]
fn t6_4_1_a_lease_serves_reads_at_once_until_it_runs_out() {
    // No drift allowed: the lease is the minimum election timeout, 150 ms from 50 ms.
    let mut raft = leased(0);
    let effects = step_at(&mut raft, ms(199), Input::Request(get(9, 0, "k")));
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(replies(&effects), vec![ok_reply(9, 0, value(None))]);
    assert_eq!(raft.events(), &[Event::LeaseRead]);
    let effects = step_at(&mut raft, ms(200), Input::Request(get(9, 0, "k")));
    assert!(
        replies(&effects).is_empty(),
        "the lease ran out: a round instead"
    );
    assert_eq!(sends(&effects).len(), 2);
}

#[test]
fn t6_4_1_the_drift_bound_shortens_the_lease() {
    // 10% drift: 150 ms × 0.9 / 1.1 = 122.7 ms, so the lease ends at 172.7 ms.
    let mut raft = leased(100_000);
    assert_eq!(
        replies(&step_at(&mut raft, ms(172), Input::Request(get(9, 0, "k")))).len(),
        1
    );
    assert!(replies(&step_at(&mut raft, ms(173), Input::Request(get(9, 0, "k")))).is_empty());
}

#[test]
fn t6_4_1_a_new_configuration_voids_the_lease() {
    let mut raft = leased(0);
    step_at(
        &mut raft,
        ms(70),
        admin(5, 1, AdminCommand::AddLearner(n(4))),
    );
    let effects = step_at(&mut raft, ms(80), Input::Request(get(9, 0, "k")));
    assert!(
        replies(&effects).is_empty(),
        "a round under the new configuration"
    );
}

/// The leader remembers when it sent each of its last 64 rounds: a quorum's late echo of the
/// oldest of them still earns a lease, from when that round was sent; once a 65th round has
/// left, the echo earns none.
#[test]
fn t6_4_1_a_late_echo_of_the_oldest_round_remembered_still_earns_a_lease() {
    for (rounds, served) in [(64, 1), (65, 0)] {
        let config = RaftConfig {
            lease_reads: true,
            clock_drift_bound_ppm: 0,
            ..RaftConfig::default()
        };
        let mut raft = settled_leader_of(&[1, 2, 3], config);
        for i in 0..rounds {
            step_at(&mut raft, ms(50 + i), Input::Timer(Timer::Heartbeat));
        }
        deliver_at(&mut raft, ms(120), 2, ack(1, 1, 1));
        let effects = step_at(&mut raft, ms(121), Input::Request(get(9, 0, "k")));
        assert_eq!(replies(&effects).len(), served, "after {rounds} rounds");
    }
}

#[test]
fn t6_4_follower_reads_ask_the_leader_and_wait_to_apply_its_read_index() {
    // The follower's side.
    let mut follower = node_with(3, &[1, 2, 3], RaftConfig::default());
    deliver(&mut follower, 1, append(1, (0, 0), vec![entry(1, 1)], 1));
    let effects = step(&mut follower, Input::Request(get(9, 0, "k")));
    assert_eq!(
        sends(&effects),
        vec![(n(1), Message::ReadIndex { term: 1, id: 1 })]
    );
    let answer = Message::ReadIndexResponse {
        term: 1,
        id: 1,
        read_index: 2,
    };
    assert!(
        replies(&deliver(&mut follower, 1, answer)).is_empty(),
        "applied 1 < 2"
    );
    let effects = deliver(&mut follower, 1, append(1, (1, 1), vec![entry(2, 1)], 2));
    assert_eq!(replies(&effects), vec![ok_reply(9, 0, value(None))]);
    assert_eq!(follower.events(), &[Event::FollowerRead]);

    // The leader's side: a round, then the read index.
    let mut leader = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    let effects = deliver(&mut leader, 3, Message::ReadIndex { term: 1, id: 7 });
    assert_eq!(sends(&effects).len(), 2, "a round to both followers");
    let effects = deliver(&mut leader, 2, ack(1, 1, 1));
    assert_eq!(
        sends(&effects),
        vec![(
            n(3),
            Message::ReadIndexResponse {
                term: 1,
                id: 7,
                read_index: 1
            }
        )]
    );
}

#[test]
fn t6_4_a_deposed_leader_sends_waiting_readers_elsewhere() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    step(&mut raft, Input::Request(get(9, 0, "k")));
    let effects = deliver(&mut raft, 2, append(2, (1, 1), vec![], 1));
    let leader = Some(n(2));
    assert_eq!(
        replies(&effects),
        vec![err_reply(9, 0, ClientError::NotLeader { leader })]
    );
}

#[test]
fn figure2_reads_go_through_the_log_even_outside_a_session() {
    // Figure 2 has no ReadIndex: a read that ReadIndex would answer without the log (no
    // session to open, as in the test above) is appended like a write.
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::figure2());
    let effects = step(&mut raft, Input::Request(get(9, 0, "k")));
    assert_eq!(
        persists(&effects),
        vec![Record::Entries(vec![Entry {
            index: 2,
            term: 1,
            payload: Payload::Command(get(9, 0, "k").command())
        }])]
    );
}
