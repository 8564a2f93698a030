//! Phase 1: discovery: epochs are agreed by a quorum.

use super::*;

#[test]
fn discovery_the_new_epoch_is_one_above_the_highest_accepted_epoch_of_a_quorum() {
    let mut zab = prospective_leader(vec![Record::AcceptedEpoch(2)], config());
    let info = LearnerMessage::FollowerInfo { accepted_epoch: 6 };
    let effects = deliver(&mut zab, 2, to_leader(3, 1, info));
    // The leader's own promise is durable before anyone hears of the epoch.
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::AcceptedEpoch(7))
    ));
    let leader_info = to_learner(3, 1, LeaderMessage::LeaderInfo { epoch: 7 });
    assert_eq!(sends(&effects), vec![(n(2), leader_info)]);
    assert_eq!(zab.accepted_epoch(), 7);
}

#[test]
fn discovery_a_follower_persists_the_accepted_epoch_before_acknowledging_it() {
    let mut zab = connected_follower(
        vec![Record::AcceptedEpoch(2), Record::Txns(vec![txn(1, 1)])],
        config(),
    );
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 1, LeaderMessage::LeaderInfo { epoch: 3 }),
    );
    let ack = LearnerMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: z(1, 1),
        fresh: true,
    };
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::AcceptedEpoch(3))
    ));
    assert_eq!(sends(&effects), vec![(n(1), to_leader(1, 2, ack))]);
}

#[test]
fn discovery_an_epoch_accepted_before_is_acknowledged_as_not_fresh() {
    let mut zab = connected_follower(vec![Record::AcceptedEpoch(3)], config());
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 1, LeaderMessage::LeaderInfo { epoch: 3 }),
    );
    assert!(persisted(&effects).is_empty());
    let ack = LearnerMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        fresh: false,
    };
    assert_eq!(sends(&effects), vec![(n(1), to_leader(1, 2, ack))]);
}

#[test]
fn discovery_a_follower_refuses_an_epoch_below_the_one_it_accepted() {
    let mut zab = connected_follower(vec![Record::AcceptedEpoch(5)], config());
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 1, LeaderMessage::LeaderInfo { epoch: 4 }),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
    assert_eq!(zab.accepted_epoch(), 5);
    assert_eq!(
        sends(&effects)[0],
        (n(1), to_leader(1, 2, LearnerMessage::Close))
    );
    assert_eq!(zab.counters().epochs_refused, 1);
}

#[test]
fn discovery_only_fresh_acknowledgements_establish_an_epoch() {
    let mut zab = prospective_leader(vec![], config());
    deliver(
        &mut zab,
        2,
        to_leader(7, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 }),
    );
    let stale = LearnerMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        fresh: false,
    };
    deliver(&mut zab, 2, to_leader(7, 2, stale));
    assert_eq!(
        zab.established(),
        None,
        "server 2 promised epoch 1 to someone else"
    );
    deliver(
        &mut zab,
        3,
        to_leader(4, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 }),
    );
    let fresh = LearnerMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        fresh: true,
    };
    let effects = deliver(&mut zab, 3, to_leader(4, 2, fresh));
    assert_eq!(zab.established(), Some((1, Zxid::ZERO)));
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::CurrentEpoch(1))
    ));
    // Both followers are synchronized, the one with the stale acknowledgement too.
    let newleaders = sends(&effects)
        .into_iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::ToLearner {
                    msg: LeaderMessage::NewLeader { epoch: 1 },
                    ..
                }
            )
        })
        .count();
    assert_eq!(newleaders, 2);
}

#[test]
fn discovery_the_leader_refuses_a_follower_ahead_of_it() {
    let mut zab = prospective_leader(
        vec![Record::CurrentEpoch(1), Record::AcceptedEpoch(1)],
        config(),
    );
    deliver(
        &mut zab,
        2,
        to_leader(7, 1, LearnerMessage::FollowerInfo { accepted_epoch: 1 }),
    );
    let ahead = LearnerMessage::AckEpoch {
        current_epoch: 1,
        last_zxid: z(1, 3),
        fresh: true,
    };
    let effects = deliver(&mut zab, 2, to_leader(7, 2, ahead));
    assert_eq!(
        sends(&effects),
        vec![(n(2), to_learner(7, 2, LeaderMessage::Close))]
    );
    assert_eq!(zab.established(), None);
    assert_eq!(zab.counters().followers_refused, 1);
}
