//! Pre-vote (thesis §9.6) and check-quorum (thesis §6.2, §4.2.3), with the default
//! configuration's timeouts: election timeout 150..300 ms, heartbeats every 50 ms.

use super::*;

fn pre_vote(term: u64, last_log_index: u64, last_log_term: u64) -> Message {
    Message::PreVote {
        term,
        last_log_index,
        last_log_term,
    }
}

fn request_vote(term: u64, last: (u64, u64), transfer: bool) -> Message {
    Message::RequestVote {
        term,
        last_log_index: last.0,
        last_log_term: last.1,
        transfer,
    }
}

/// Node 3 of {1, 2, 3}, following leader 1 of term 1 since time 0 (log: the no-op at 1).
fn follower_of_1() -> Raft {
    let mut raft = node_with(3, &[1, 2, 3], RaftConfig::default());
    deliver(&mut raft, 1, append(1, (0, 0), vec![entry(1, 1)], 0));
    raft
}

#[test]
fn t9_6_pre_vote_asks_for_the_next_term_without_taking_it() {
    let mut raft = node_with(1, &[1, 2, 3], RaftConfig::default());
    let effects = step_at(&mut raft, ms(200), Input::Timer(Timer::Election));
    assert!(
        persists(&effects).is_empty(),
        "a pre-vote changes nothing durable"
    );
    assert_eq!(
        sends(&effects),
        vec![(n(2), pre_vote(1, 0, 0)), (n(3), pre_vote(1, 0, 0))]
    );
    assert_eq!(raft.term(), 0);
    assert_eq!(raft.status().role, Role::Candidate);
    // A quorum of pre-votes (its own and node 2's) starts the real election.
    let granted = Message::PreVoteResponse {
        term: 1,
        granted: true,
    };
    let effects = deliver(&mut raft, 2, granted);
    assert_eq!(
        persists(&effects),
        vec![Record::HardState {
            term: 1,
            vote: Some(n(1))
        }]
    );
    let ask = request_vote(1, (0, 0), false);
    assert_eq!(sends(&effects), vec![(n(2), ask.clone()), (n(3), ask)]);
}

#[test]
fn t9_6_a_node_that_heard_from_a_leader_recently_refuses_its_pre_vote() {
    let mut raft = follower_of_1();
    let effects = deliver_at(&mut raft, ms(100), 2, pre_vote(2, 1, 1));
    let refused = Message::PreVoteResponse {
        term: 1,
        granted: false,
    };
    assert_eq!(effects.len(), 1, "no term change, no persist: {effects:?}");
    assert_eq!(sends(&effects), vec![(n(2), refused)]);
    // Once the minimum election timeout passed without the leader, the same pre-vote is
    // granted, still without touching the term.
    let effects = deliver_at(&mut raft, ms(160), 2, pre_vote(2, 1, 1));
    let granted = Message::PreVoteResponse {
        term: 2,
        granted: true,
    };
    assert_eq!(sends(&effects), vec![(n(2), granted)]);
    assert!(persists(&effects).is_empty());
    assert_eq!(raft.term(), 1);
    // A stale log is refused whatever the time.
    let effects = deliver_at(&mut raft, ms(400), 2, pre_vote(2, 0, 0));
    assert!(matches!(
        sends(&effects)[..],
        [(_, Message::PreVoteResponse { granted: false, .. })]
    ));
}

#[test]
fn t9_6_a_refusal_from_a_higher_term_brings_a_pre_candidate_up_to_date() {
    let mut raft = node_with(1, &[1, 2, 3], RaftConfig::default());
    step_at(&mut raft, ms(200), Input::Timer(Timer::Election));
    let refused = Message::PreVoteResponse {
        term: 5,
        granted: false,
    };
    let effects = deliver(&mut raft, 2, refused);
    assert_eq!(
        persists(&effects),
        vec![Record::HardState {
            term: 5,
            vote: None
        }]
    );
    assert_eq!(raft.status().role, Role::Follower);
}

#[test]
fn t4_2_3_a_node_that_heard_from_a_leader_recently_ignores_vote_requests() {
    let mut raft = follower_of_1();
    let effects = deliver_at(&mut raft, ms(100), 2, request_vote(2, (1, 1), false));
    assert!(effects.is_empty(), "ignored entirely: {effects:?}");
    assert_eq!(raft.term(), 1);
    // A candidate the leader asked to take over (TimeoutNow) is heard.
    let effects = deliver_at(&mut raft, ms(100), 2, request_vote(2, (1, 1), true));
    assert_eq!(
        persists(&effects),
        vec![
            Record::HardState {
                term: 2,
                vote: None
            },
            Record::HardState {
                term: 2,
                vote: Some(n(2))
            }
        ]
    );
    assert_eq!(sends(&effects), vec![(n(2), vote_granted(2))]);
}

#[test]
fn t4_2_3_a_restarted_node_keeps_ignoring_vote_requests_for_an_election_timeout() {
    // A lease may rest on an acknowledgement this node sent just before it crashed.
    let mut raft = Raft::new(n(3), &[n(1), n(2), n(3)], RaftConfig::default());
    step_at(&mut raft, ms(1000), Input::Start { recovered: vec![] });
    let effects = deliver_at(&mut raft, ms(1100), 2, request_vote(1, (0, 0), false));
    assert!(effects.is_empty());
    let effects = deliver_at(&mut raft, ms(1150), 2, request_vote(1, (0, 0), false));
    assert_eq!(sends(&effects), vec![(n(2), vote_granted(1))]);
}

#[test]
fn t6_2_check_quorum_a_leader_that_hears_from_no_quorum_steps_down() {
    let mut raft = leader_of(&[1, 2, 3], RaftConfig::default());
    // Node 2 answers at 40 ms; at the check at 150 ms it counts, with the leader, as a quorum.
    deliver_at(&mut raft, ms(40), 2, ack(1, 0, 1));
    step_at(&mut raft, ms(50), Input::Timer(Timer::Heartbeat));
    step_at(&mut raft, ms(100), Input::Timer(Timer::Heartbeat));
    step_at(&mut raft, ms(150), Input::Timer(Timer::Heartbeat));
    assert!(raft.is_leader());
    // Nobody answers in the next election timeout: at 300 ms the leader steps down, in the
    // same term, without sending anything.
    step_at(&mut raft, ms(200), Input::Timer(Timer::Heartbeat));
    step_at(&mut raft, ms(250), Input::Timer(Timer::Heartbeat));
    let effects = step_at(&mut raft, ms(300), Input::Timer(Timer::Heartbeat));
    assert!(!raft.is_leader());
    assert_eq!(raft.term(), 1);
    assert!(sends(&effects).is_empty(), "{effects:?}");
    assert_eq!(raft.events(), &[Event::CheckQuorumStepDown]);
    assert!(matches!(
        effects[..],
        [
            Effect::CancelTimer(Timer::Heartbeat),
            Effect::SetTimer {
                timer: Timer::Election,
                ..
            }
        ]
    ));
}

/// What a node that campaigned alone during a partition answers the leader's heartbeat with:
/// a rejection carrying its higher `term`.
fn rejoined_in_term(term: u64) -> Message {
    Message::AppendEntriesResponse {
        term,
        round: 0,
        result: AppendResult::Reject {
            prev_log_index: 0,
            conflict_term: None,
            conflict_index: 0,
        },
    }
}

#[test]
fn t9_6_a_higher_term_from_a_rejoining_node_disrupts_a_healthy_leader() {
    // What pre-vote prevents: a node that campaigned alone during a partition has a higher
    // term; the leader's next heartbeat gets it back, and the leader must step down although
    // a quorum follows it.
    let mut raft = leader_of(&[1, 2, 3], RaftConfig::default());
    deliver_at(&mut raft, ms(10), 2, ack(1, 0, 1));
    let rejoined = rejoined_in_term(7);
    deliver_at(&mut raft, ms(20), 3, rejoined);
    assert!(!raft.is_leader());
    assert_eq!(raft.term(), 7);
    assert_eq!(raft.events(), &[Event::LeaderDisrupted]);
}

#[test]
fn t9_6_a_higher_term_deposes_a_leader_no_quorum_answered_lately_without_counting_a_disruption() {
    // A leader is healthy while a quorum answered it within the minimum election timeout
    // (150 ms): n2's answer at 10 ms vouches for it until 160 ms, exclusive. Deposing it
    // after that is a recovery, not a disruption (`leader_disruptions` counts only those).
    let mut raft = leader_of(&[1, 2, 3], RaftConfig::default());
    deliver_at(&mut raft, ms(10), 2, ack(1, 0, 1));
    let rejoined = rejoined_in_term(7);
    let mut healthy = raft.clone();
    deliver_at(&mut healthy, ms(159), 3, rejoined.clone());
    assert!(!healthy.is_leader());
    assert_eq!(healthy.events(), &[Event::LeaderDisrupted]);
    deliver_at(&mut raft, ms(160), 3, rejoined);
    assert!(!raft.is_leader());
    assert_eq!(raft.term(), 7);
    assert_eq!(raft.events(), &[], "nobody answered n1 for 150 ms");
}
