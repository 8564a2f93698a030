//! Phase 2: synchronization: DIFF, TRUNC, SNAP, NEWLEADER, UPTODATE.

use super::*;

/// A leader (server 1) whose history is a snapshot at 1.2 and then 1.3, 1.4, 3.1.
fn leader_with_history() -> Zab {
    let snapshot = Arc::new(Snapshot {
        last_zxid: z(1, 2),
        state: KvStore::default(),
    });
    let checkpoint = Record::Checkpoint {
        accepted_epoch: 3,
        current_epoch: 3,
        snapshot,
        txns: vec![txn(1, 3), txn(1, 4), txn(3, 1)],
    };
    server(1, 3, vec![checkpoint], config())
}

#[test]
fn synchronization_a_follower_behind_gets_a_diff() {
    let zab = leader_with_history();
    assert_eq!(
        zab.sync_payload(z(1, 4)),
        LeaderMessage::Diff {
            txns: vec![txn(3, 1)]
        }
    );
    assert_eq!(
        zab.sync_payload(z(1, 2)),
        LeaderMessage::Diff {
            txns: vec![txn(1, 3), txn(1, 4), txn(3, 1)]
        }
    );
    assert_eq!(
        zab.sync_payload(z(3, 1)),
        LeaderMessage::Diff { txns: vec![] }
    );
}

#[test]
fn synchronization_a_follower_with_proposals_the_leader_never_had_is_truncated() {
    let zab = leader_with_history();
    // Uncommitted proposals 1.5 and 1.6 of epoch 1: cut back to 1.4, then 3.1.
    assert_eq!(
        zab.sync_payload(z(1, 6)),
        LeaderMessage::Trunc {
            zxid: z(1, 4),
            txns: vec![txn(3, 1)]
        }
    );
    // Proposals of epoch 2, which the leader never saw: same cut.
    assert_eq!(
        zab.sync_payload(z(2, 8)),
        LeaderMessage::Trunc {
            zxid: z(1, 4),
            txns: vec![txn(3, 1)]
        }
    );
    // Ahead of the leader's last zxid: truncate to it.
    assert_eq!(
        zab.sync_payload(z(3, 2)),
        LeaderMessage::Trunc {
            zxid: z(3, 1),
            txns: vec![]
        }
    );
}

#[test]
fn synchronization_a_follower_behind_the_snapshot_gets_a_snap() {
    let zab = leader_with_history();
    for far_behind in [Zxid::ZERO, z(1, 1)] {
        match zab.sync_payload(far_behind) {
            LeaderMessage::Snap { snapshot, txns } => {
                assert_eq!(snapshot.last_zxid, z(1, 2));
                assert_eq!(txns, vec![txn(1, 3), txn(1, 4), txn(3, 1)]);
            }
            other => panic!("expected SNAP, got {other:?}"),
        }
    }
}

/// A follower that acknowledged epoch 3 to leader 1 and has history 1.1, 1.2, 1.3.
fn synchronizing_follower() -> Zab {
    let records = vec![
        Record::AcceptedEpoch(1),
        Record::CurrentEpoch(1),
        Record::Txns(vec![txn(1, 1), txn(1, 2), txn(1, 3)]),
    ];
    let mut zab = connected_follower(records, config());
    deliver(
        &mut zab,
        1,
        to_learner(1, 1, LeaderMessage::LeaderInfo { epoch: 3 }),
    );
    zab
}

#[test]
fn synchronization_the_follower_persists_history_and_epoch_before_acknowledging_newleader() {
    let mut zab = synchronizing_follower();
    let diff = LeaderMessage::Diff {
        txns: vec![txn(1, 4), txn(2, 1)],
    };
    let effects = deliver(&mut zab, 1, to_learner(1, 2, diff));
    assert_eq!(
        persisted(&effects),
        vec![Record::Txns(vec![txn(1, 4), txn(2, 1)])]
    );
    assert!(sends(&effects).is_empty());
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 3, LeaderMessage::NewLeader { epoch: 3 }),
    );
    let persist = position(&effects, |e| {
        matches!(e, Effect::Persist(Record::CurrentEpoch(3)))
    });
    let ack = position(&effects, |e| matches!(e, Effect::Send { .. }));
    assert!(persist < ack, "{effects:?}");
    assert_eq!(
        sends(&effects),
        vec![(n(1), to_leader(1, 3, LearnerMessage::AckNewLeader))]
    );
    assert_eq!(zab.current_epoch(), 3);
    assert!(!zab.is_serving(), "not before UPTODATE");
    // UPTODATE commits the synchronized history and the follower serves.
    deliver(
        &mut zab,
        1,
        to_learner(1, 4, LeaderMessage::UpToDate { committed: z(2, 1) }),
    );
    assert!(zab.is_serving());
    assert_eq!(zab.committed(), z(2, 1));
    assert_eq!(
        zab.state_machine().get(b"k").map(|v| v.as_ref()),
        Some(&b"2.1"[..])
    );
}

#[test]
fn synchronization_trunc_drops_uncommitted_proposals_of_an_old_epoch() {
    let mut zab = synchronizing_follower();
    let trunc = LeaderMessage::Trunc {
        zxid: z(1, 1),
        txns: vec![txn(2, 1)],
    };
    let effects = deliver(&mut zab, 1, to_learner(1, 2, trunc));
    assert_eq!(
        persisted(&effects),
        vec![
            Record::Truncate { after: z(1, 1) },
            Record::Txns(vec![txn(2, 1)])
        ]
    );
    let held: Vec<Zxid> = zab.txns().iter().map(|t| t.zxid).collect();
    assert_eq!(held, vec![z(1, 1), z(2, 1)]);
}

#[test]
fn synchronization_snap_replaces_the_whole_history() {
    let mut zab = synchronizing_follower();
    let mut state = KvStore::default();
    state.apply_op(&Op::Put {
        key: "k".into(),
        value: "snap".into(),
    });
    let snapshot = Arc::new(Snapshot {
        last_zxid: z(2, 7),
        state,
    });
    let snap = LeaderMessage::Snap {
        snapshot,
        txns: vec![txn(2, 8)],
    };
    let effects = deliver(&mut zab, 1, to_learner(1, 2, snap));
    assert!(matches!(
        persisted(&effects)[..],
        [Record::Checkpoint { .. }]
    ));
    assert_eq!(zab.snapshot().last_zxid, z(2, 7));
    assert_eq!(zab.last_zxid(), z(2, 8));
    assert_eq!(
        zab.state_machine().get(b"k").map(|v| v.as_ref()),
        Some(&b"snap"[..])
    );
}

#[test]
fn synchronization_a_trunc_below_the_leaders_shared_prefix_is_refused() {
    let mut zab = synchronizing_follower();
    let trunc = LeaderMessage::Trunc {
        zxid: z(0, 9),
        txns: vec![],
    };
    deliver(&mut zab, 1, to_learner(1, 2, trunc));
    assert_eq!(
        zab.peer_state(),
        PeerState::Looking,
        "not a prefix it holds"
    );
}

#[test]
fn synchronization_the_leader_serves_once_a_quorum_acknowledged_newleader() {
    let mut zab = prospective_leader(vec![Record::Txns(vec![txn(0, 1)])], config());
    deliver(
        &mut zab,
        2,
        to_leader(7, 1, LearnerMessage::FollowerInfo { accepted_epoch: 0 }),
    );
    let ack = LearnerMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        fresh: true,
    };
    let effects = deliver(&mut zab, 2, to_leader(7, 2, ack));
    // Established: DIFF and NEWLEADER to 2, and the leader's own acknowledgement to itself,
    // sent after its current epoch is durable.
    let sent = sends(&effects);
    assert_eq!(
        sent[0],
        (
            n(1),
            Message::SelfAck {
                epoch: 1,
                zxid: z(0, 1)
            }
        )
    );
    let diff = LeaderMessage::Diff {
        txns: vec![txn(0, 1)],
    };
    assert_eq!(sent[1], (n(2), to_learner(7, 2, diff)));
    assert_eq!(
        sent[2],
        (
            n(2),
            to_learner(7, 3, LeaderMessage::NewLeader { epoch: 1 })
        )
    );
    assert!(!zab.is_serving());
    deliver(&mut zab, 2, to_leader(7, 3, LearnerMessage::AckNewLeader));
    assert!(
        !zab.is_serving(),
        "the leader's own write is not durable yet"
    );
    let effects = deliver(
        &mut zab,
        1,
        Message::SelfAck {
            epoch: 1,
            zxid: z(0, 1),
        },
    );
    assert!(zab.is_serving());
    assert_eq!(zab.committed(), z(0, 1), "the initial history is committed");
    let up = to_learner(7, 4, LeaderMessage::UpToDate { committed: z(0, 1) });
    assert_eq!(sends(&effects), vec![(n(2), up)]);
}

#[test]
fn synchronization_a_follower_names_its_leader_only_once_it_serves() {
    let zab = synchronizing_follower();
    assert_eq!(zab.peer_state(), PeerState::Following);
    assert_eq!(zab.leader(), None);
    assert_eq!(serving_follower(config()).leader(), Some(n(1)));
}

/// A follower that keeps hearing from its leader but has not finished joining it within
/// `init_limit` ticks goes back to election at its first tick past that, not before.
#[test]
fn synchronization_a_follower_still_joining_after_init_limit_ticks_goes_back_to_election() {
    let init = config().tick * config().init_limit;
    let ms = std::time::Duration::from_millis;
    let mut zab = connected_follower(vec![], config());
    let at = |zab: &mut Zab, elapsed: std::time::Duration, input: Input<Zab>| {
        let mut out = Effects::new();
        zab.step(Time::ZERO + elapsed, input, &mut out);
    };
    // LEADERINFO 100 ms before the limit: the leader is not silent.
    let info = to_learner(1, 1, LeaderMessage::LeaderInfo { epoch: 1 });
    at(
        &mut zab,
        init - ms(100),
        Input::Message {
            from: n(1),
            msg: info,
        },
    );
    at(&mut zab, init, Input::Timer(Timer::Tick));
    assert_eq!(zab.peer_state(), PeerState::Following);
    at(&mut zab, init + ms(1), Input::Timer(Timer::Tick));
    assert_eq!(zab.peer_state(), PeerState::Looking);
    assert_eq!(zab.counters().timeouts, 1);
}
