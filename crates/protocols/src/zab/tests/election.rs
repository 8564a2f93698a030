//! Phase 0: fast leader election (ZooKeeper's `FastLeaderElection`).

use super::*;

#[test]
fn election_a_looking_server_votes_for_itself_and_tells_everyone() {
    let voters = [n(1), n(2), n(3)];
    let mut zab = Zab::new(n(2), &voters, config());
    let effects = step(&mut zab, Input::Start { recovered: vec![] });
    let own = notification(2, Zxid::ZERO, 0, 1, PeerState::Looking);
    assert_eq!(sends(&effects), vec![(n(1), own.clone()), (n(3), own)]);
    assert_eq!(zab.status().role, Role::Candidate);
}

#[test]
fn election_votes_order_by_epoch_then_zxid_then_id() {
    // Server 3 has a longer history than server 1 of the same epoch: 1 adopts 3's vote.
    let mut zab = server(
        1,
        3,
        vec![Record::CurrentEpoch(2), Record::AcceptedEpoch(2)],
        config(),
    );
    let better = notification(3, z(2, 5), 2, 1, PeerState::Looking);
    let effects = deliver(&mut zab, 3, better.clone());
    assert_eq!(
        sends(&effects),
        vec![(n(2), better.clone()), (n(3), better)]
    );
    // A vote of a lower epoch does not win, however long its history.
    let worse = notification(2, z(1, 90), 1, 1, PeerState::Looking);
    assert!(sends(&deliver(&mut zab, 2, worse)).is_empty());
}

#[test]
fn election_decides_after_a_quorum_stood_for_the_finalize_wait() {
    let mut zab = server(1, 3, vec![], config());
    let effects = deliver(
        &mut zab,
        3,
        notification(3, Zxid::ZERO, 0, 1, PeerState::Looking),
    );
    // Server 1 now votes for 3, as 3 does: a quorum of 3 servers; wait for better votes.
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: Timer::Finalize,
            ..
        }
    )));
    assert_eq!(zab.peer_state(), PeerState::Looking);
    let effects = step(&mut zab, Input::Timer(Timer::Finalize));
    assert_eq!(zab.peer_state(), PeerState::Following);
    let info = to_leader(1, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 });
    assert_eq!(sends(&effects), vec![(n(3), info)]);
}

#[test]
fn election_a_higher_round_resets_the_tally_and_a_lower_one_is_answered() {
    let mut zab = server(2, 3, vec![], config());
    let effects = deliver(
        &mut zab,
        1,
        notification(1, Zxid::ZERO, 0, 5, PeerState::Looking),
    );
    // Round 5 replaces round 1; server 2's own vote beats server 1's.
    let own = notification(2, Zxid::ZERO, 0, 5, PeerState::Looking);
    assert_eq!(
        sends(&effects),
        vec![(n(1), own.clone()), (n(3), own.clone())]
    );
    let effects = deliver(
        &mut zab,
        3,
        notification(3, Zxid::ZERO, 0, 2, PeerState::Looking),
    );
    assert_eq!(
        sends(&effects),
        vec![(n(3), own)],
        "a lagging server is told the round"
    );
}

#[test]
fn election_joins_an_established_leader_only_once_it_says_it_leads() {
    let mut zab = server(3, 3, vec![], config());
    // A quorum follows 1 in round 4, but 1's own word is missing: not yet.
    deliver(
        &mut zab,
        2,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Following),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
    let effects = deliver(
        &mut zab,
        1,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Leading),
    );
    assert_eq!(zab.peer_state(), PeerState::Following);
    let info = to_leader(1, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 });
    assert_eq!(sends(&effects), vec![(n(1), info)]);
}

#[test]
fn election_a_quorum_following_a_server_that_is_not_leading_is_not_joined() {
    let mut zab = server(3, 3, vec![], config());
    deliver(
        &mut zab,
        2,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Following),
    );
    deliver(
        &mut zab,
        1,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Following),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
}

#[test]
fn election_reports_of_another_round_or_another_vote_do_not_add_up_to_a_quorum() {
    // Out of election, only reports of the same vote in the same round count together: n2's
    // report is of round 3, n1 leads in round 4.
    let mut zab = server(3, 3, vec![], config());
    deliver(
        &mut zab,
        2,
        notification(1, Zxid::ZERO, 0, 3, PeerState::Following),
    );
    deliver(
        &mut zab,
        1,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Leading),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
    // n2 follows another vote (n1 with another zxid) in round 4: still not a quorum.
    deliver(
        &mut zab,
        2,
        notification(1, z(1, 1), 1, 4, PeerState::Following),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
    // n2 reports n1's vote of round 4: n3 joins.
    deliver(
        &mut zab,
        2,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Following),
    );
    assert_eq!(zab.peer_state(), PeerState::Following);
}

#[test]
fn election_a_following_server_answers_looking_servers_with_its_decided_vote() {
    let mut zab = connected_follower(vec![], config());
    let effects = deliver(
        &mut zab,
        3,
        notification(3, Zxid::ZERO, 0, 9, PeerState::Looking),
    );
    let decided = notification(1, Zxid::ZERO, 0, 4, PeerState::Following);
    assert_eq!(sends(&effects), vec![(n(3), decided)]);
}

#[test]
fn election_the_finalize_wait_starts_once_a_quorum_agrees_and_not_again_and_a_decision_is_counted()
{
    // Server 1 of 5 adopts server 5's vote. Two of five agreeing is no quorum: no wait yet.
    let mut zab = server(1, 5, vec![], config());
    let finalize = |effects: &[Effect<Zab>]| {
        effects.iter().any(|e| {
            matches!(
                e,
                Effect::SetTimer {
                    timer: Timer::Finalize,
                    ..
                }
            )
        })
    };
    let for_five = notification(5, Zxid::ZERO, 0, 1, PeerState::Looking);
    assert!(
        !finalize(&deliver(&mut zab, 5, for_five.clone())),
        "1 and 5: no quorum"
    );
    assert!(
        finalize(&deliver(&mut zab, 4, for_five.clone())),
        "1, 4 and 5: a quorum"
    );
    // A fourth agreeing vote (not all five) does not restart the wait already running.
    assert!(
        !finalize(&deliver(&mut zab, 3, for_five)),
        "the wait is not restarted"
    );
    assert_eq!(zab.counters().elections_decided, 0);
    step(&mut zab, Input::Timer(Timer::Finalize));
    assert_eq!(zab.peer_state(), PeerState::Following);
    assert_eq!(zab.counters().elections_decided, 1);
}

/// Server 3 of 3 votes for itself and server 2 agrees: the finalize wait runs.
fn finalizing_for_itself() -> Zab {
    let mut zab = server(3, 3, vec![], config());
    deliver(
        &mut zab,
        2,
        notification(3, Zxid::ZERO, 0, 1, PeerState::Looking),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
    zab
}

#[test]
fn election_a_follower_that_connects_before_its_leader_decided_is_taken_up_when_it_leads() {
    // Server 2 finished its own finalize wait first and connects while 3 is still LOOKING.
    let mut zab = finalizing_for_itself();
    let info = to_leader(4, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 });
    assert!(
        sends(&deliver(&mut zab, 2, info)).is_empty(),
        "the connection waits instead of being closed"
    );
    let effects = step(&mut zab, Input::Timer(Timer::Finalize));
    assert_eq!(zab.peer_state(), PeerState::Leading);
    // With 2 connected the leader has its quorum and proposes the new epoch to it at once.
    let leader_info = to_learner(4, 1, LeaderMessage::LeaderInfo { epoch: 1 });
    assert_eq!(sends(&effects), vec![(n(2), leader_info)]);
}

#[test]
fn election_a_waiting_connection_its_follower_closed_is_not_taken_up() {
    let mut zab = finalizing_for_itself();
    let info = to_leader(4, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 });
    deliver(&mut zab, 2, info);
    // Server 2 gave up (its init limit ran out) and closed the connection.
    deliver(&mut zab, 2, to_leader(4, 2, LearnerMessage::Close));
    let effects = step(&mut zab, Input::Timer(Timer::Finalize));
    assert_eq!(zab.peer_state(), PeerState::Leading);
    assert!(
        sends(&effects).is_empty(),
        "no LEADERINFO on a closed connection"
    );
}

#[test]
fn election_a_server_that_votes_for_another_or_decides_to_follow_closes_early_connections() {
    // Server 1 votes for itself; server 2 connects to it early.
    let mut zab = server(1, 3, vec![], config());
    let info = |conn| to_leader(conn, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 });
    assert!(sends(&deliver(&mut zab, 2, info(4))).is_empty());
    // Server 3's better vote wins 1 over, with a quorum: 1 will follow 3.
    deliver(
        &mut zab,
        3,
        notification(3, Zxid::ZERO, 0, 1, PeerState::Looking),
    );
    // Voting for another, 1 refuses a new connection at once.
    let close = |conn| to_learner(conn, 1, LeaderMessage::Close);
    assert_eq!(
        sends(&deliver(&mut zab, 2, info(5))),
        vec![(n(2), close(5))]
    );
    // Deciding to follow, it closes the one that waited.
    let effects = step(&mut zab, Input::Timer(Timer::Finalize));
    assert_eq!(zab.peer_state(), PeerState::Following);
    let sent = sends(&effects);
    assert!(sent.contains(&(n(2), close(4))), "{sent:?}");
}
