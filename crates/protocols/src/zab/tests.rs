//! Scenario tests: feed one server exact inputs and assert the exact effects, ordered by the
//! phases of Zab (election, discovery, synchronization, broadcast) and then reads.

use super::*;
use quorate_core::{AdminCommand, AdminRequest, Effect, Output, ReadMode, Request};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn z(epoch: u64, counter: u64) -> Zxid {
    Zxid::new(epoch, counter)
}

fn put(client: u64, seq: u64, key: &str, value: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Put {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
        },
        read: ReadMode::Linearizable,
    }
}

fn get(client: u64, seq: u64, key: &str, read: ReadMode) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Get {
            key: key.as_bytes().to_vec().into(),
        },
        read,
    }
}

fn txn(epoch: u64, counter: u64) -> Txn {
    Txn {
        zxid: z(epoch, counter),
        command: put(9, 0, "k", &format!("{epoch}.{counter}")).command(),
    }
}

fn config() -> ZabConfig {
    ZabConfig::default()
}

/// Server `id` of a `size`-server ensemble, started from `recovered`: LOOKING in round 1.
fn server(id: u64, size: u64, recovered: Vec<Record>, config: ZabConfig) -> Zab {
    let voters: Vec<NodeId> = (1..=size).map(n).collect();
    let mut zab = Zab::new(n(id), &voters, config);
    step(&mut zab, Input::Start { recovered });
    zab
}

fn step(zab: &mut Zab, input: Input<Zab>) -> Vec<Effect<Zab>> {
    let mut out = Effects::new();
    zab.step(Time::ZERO, input, &mut out);
    zab.check_invariants();
    out.drain().collect()
}

fn deliver(zab: &mut Zab, from: u64, msg: Message) -> Vec<Effect<Zab>> {
    step(zab, Input::Message { from: n(from), msg })
}

fn sends(effects: &[Effect<Zab>]) -> Vec<(NodeId, Message)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn persisted(effects: &[Effect<Zab>]) -> Vec<Record> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

fn replies(effects: &[Effect<Zab>]) -> Vec<Reply> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(reply) => Some(reply.clone()),
            _ => None,
        })
        .collect()
}

/// The position of the first effect matching `pred`.
fn position(effects: &[Effect<Zab>], pred: impl Fn(&Effect<Zab>) -> bool) -> usize {
    effects
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no such effect in {effects:?}"))
}

fn notification(leader: u64, zxid: Zxid, epoch: u64, round: u64, state: PeerState) -> Message {
    Message::Notification(Notification {
        vote: Vote {
            leader: n(leader),
            zxid,
            epoch,
        },
        round,
        state,
    })
}

fn to_leader(conn: u64, seq: u64, msg: LearnerMessage) -> Message {
    Message::ToLeader { conn, seq, msg }
}

fn to_learner(conn: u64, seq: u64, msg: LeaderMessage) -> Message {
    Message::ToLearner { conn, seq, msg }
}

/// Server 1 of 3, elected by everyone: it decides at once and starts discovery.
fn prospective_leader(recovered: Vec<Record>, config: ZabConfig) -> Zab {
    let mut zab = server(1, 3, recovered, config);
    let vote = zab.own_vote();
    for from in [2, 3] {
        deliver(
            &mut zab,
            from,
            notification(1, vote.zxid, vote.epoch, 1, PeerState::Looking),
        );
    }
    assert_eq!(zab.peer_state(), PeerState::Leading);
    zab
}

/// Server 1 of 3 leading epoch `accepted + 1` in broadcast, with server 2 synchronized on
/// connection 7 (its next message is sequence number 4).
fn broadcasting_leader(config: ZabConfig) -> Zab {
    let mut zab = prospective_leader(vec![], config);
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
    deliver(&mut zab, 2, to_leader(7, 2, ack));
    deliver(&mut zab, 2, to_leader(7, 3, LearnerMessage::AckNewLeader));
    deliver(
        &mut zab,
        1,
        Message::SelfAck {
            epoch: 1,
            zxid: Zxid::ZERO,
        },
    );
    assert!(zab.is_serving());
    zab
}

/// Server 2 of 3 following server 1 on connection 1, after FOLLOWERINFO.
fn connected_follower(recovered: Vec<Record>, config: ZabConfig) -> Zab {
    let mut zab = server(2, 3, recovered, config);
    deliver(
        &mut zab,
        1,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Leading),
    );
    deliver(
        &mut zab,
        3,
        notification(1, Zxid::ZERO, 0, 4, PeerState::Following),
    );
    assert_eq!(zab.peer_state(), PeerState::Following);
    zab
}

/// Server 2 of 3 serving as a follower of server 1 in epoch 1 on connection 1 (the leader's
/// next message is sequence number 5, the follower's is 4).
fn serving_follower(config: ZabConfig) -> Zab {
    let mut zab = connected_follower(vec![], config);
    deliver(
        &mut zab,
        1,
        to_learner(1, 1, LeaderMessage::LeaderInfo { epoch: 1 }),
    );
    deliver(
        &mut zab,
        1,
        to_learner(1, 2, LeaderMessage::Diff { txns: vec![] }),
    );
    deliver(
        &mut zab,
        1,
        to_learner(1, 3, LeaderMessage::NewLeader { epoch: 1 }),
    );
    let up = LeaderMessage::UpToDate {
        committed: Zxid::ZERO,
    };
    deliver(&mut zab, 1, to_learner(1, 4, up));
    assert!(zab.is_serving());
    zab
}

// -------------------------------------------------------------------------------------------
// Phase 0: fast leader election.

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

// -------------------------------------------------------------------------------------------
// Phase 1: discovery.

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

// -------------------------------------------------------------------------------------------
// Phase 2: synchronization.

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

// -------------------------------------------------------------------------------------------
// Phase 3: broadcast.

#[test]
fn broadcast_a_follower_acknowledges_a_proposal_only_after_persisting_it() {
    let mut zab = serving_follower(config());
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(txn(1, 1))),
    );
    assert_eq!(effects.len(), 2, "{effects:?}");
    assert!(matches!(&effects[0], Effect::Persist(Record::Txns(t)) if t == &vec![txn(1, 1)]));
    let ack = to_leader(1, 4, LearnerMessage::Ack { zxid: z(1, 1) });
    assert_eq!(sends(&effects), vec![(n(1), ack)]);
}

#[test]
fn broadcast_the_leader_commits_in_zxid_order_once_a_quorum_has_it() {
    let mut zab = broadcasting_leader(config());
    let effects = step(&mut zab, Input::Request(put(5, 1, "a", "1")));
    assert_eq!(persisted(&effects).len(), 1);
    let proposal = sends(&effects);
    assert_eq!(proposal[0].0, n(2));
    assert_eq!(
        proposal[1],
        (
            n(1),
            Message::SelfAck {
                epoch: 1,
                zxid: z(1, 1)
            }
        )
    );
    step(&mut zab, Input::Request(put(6, 1, "b", "2")));
    // The follower acknowledges both at once; the leader's own acknowledgement of the
    // second is still in flight, but a quorum of 3 (itself and 2) holds the first only.
    deliver(
        &mut zab,
        2,
        to_leader(7, 4, LearnerMessage::Ack { zxid: z(1, 2) }),
    );
    assert_eq!(zab.committed(), Zxid::ZERO);
    let effects = deliver(
        &mut zab,
        1,
        Message::SelfAck {
            epoch: 1,
            zxid: z(1, 1),
        },
    );
    assert_eq!(zab.committed(), z(1, 1));
    let commit = to_learner(7, 7, LeaderMessage::Commit { zxid: z(1, 1) });
    assert_eq!(sends(&effects), vec![(n(2), commit)]);
    let answered = replies(&effects);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].result, Ok(Output::Done));
    let effects = deliver(
        &mut zab,
        1,
        Message::SelfAck {
            epoch: 1,
            zxid: z(1, 2),
        },
    );
    assert_eq!(zab.committed(), z(1, 2));
    assert_eq!(replies(&effects).len(), 1);
}

#[test]
fn broadcast_an_exhausted_zxid_counter_forces_a_new_epoch() {
    let config = ZabConfig {
        zxid_counter_bits: 2, // Counters 1 and 2; 3 is the all-ones rollover value.
        ..config()
    };
    let mut zab = broadcasting_leader(config);
    step(&mut zab, Input::Request(put(5, 1, "a", "1")));
    step(&mut zab, Input::Request(put(6, 1, "a", "2")));
    assert_eq!(zab.last_zxid(), z(1, 2));
    let effects = step(&mut zab, Input::Request(put(7, 1, "a", "3")));
    assert_eq!(zab.peer_state(), PeerState::Looking);
    assert_eq!(zab.last_zxid(), z(1, 2), "1.3 was never proposed");
    assert_eq!(zab.counters().zxid_rollovers, 1);
    // Every waiting client learns that the outcome is unknown.
    assert_eq!(replies(&effects).len(), 3);
}

#[test]
fn broadcast_a_gap_in_sequence_numbers_means_the_connection_broke() {
    let mut zab = serving_follower(config());
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Proposal(txn(1, 1))),
    );
    assert_eq!(zab.peer_state(), PeerState::Looking);
    assert!(
        persisted(&effects).is_empty(),
        "nothing after a gap is taken"
    );
    assert_eq!(zab.counters().connections_broken, 1);
    // Messages of an earlier connection are ignored.
    let mut zab = serving_follower(config());
    assert!(deliver(&mut zab, 1, to_learner(0, 5, LeaderMessage::Ping)).is_empty());
    assert!(zab.is_serving());
}

#[test]
fn broadcast_a_silent_leader_is_abandoned_after_sync_limit_ticks() {
    let mut zab = serving_follower(config());
    let mut out = Effects::new();
    let late = Time::ZERO + config().tick * (config().sync_limit + 1);
    zab.step(late, Input::Timer(Timer::Tick), &mut out);
    assert_eq!(zab.peer_state(), PeerState::Looking);
}

// -------------------------------------------------------------------------------------------
// Reads, and requests at followers.

#[test]
fn reads_a_plain_read_is_answered_from_local_state() {
    let mut zab = serving_follower(config());
    deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(txn(1, 1))),
    );
    let effects = step(&mut zab, Input::Request(get(5, 1, "k", ReadMode::Local)));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(None)),
        "1.1 is not committed"
    );
    deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Commit { zxid: z(1, 1) }),
    );
    let effects = step(&mut zab, Input::Request(get(5, 2, "k", ReadMode::Local)));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(Some("1.1".into())))
    );
}

#[test]
fn reads_a_server_that_is_not_serving_refuses_every_request() {
    let mut zab = connected_follower(vec![], config());
    for request in [get(5, 1, "k", ReadMode::Local), put(5, 1, "k", "v")] {
        let effects = step(&mut zab, Input::Request(request));
        assert_eq!(
            replies(&effects)[0].result,
            Err(ClientError::NotLeader { leader: None })
        );
    }
}

#[test]
fn reads_sync_waits_for_the_leader_and_the_commits_before_its_answer() {
    let mut zab = serving_follower(config());
    deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(txn(1, 1))),
    );
    let effects = step(&mut zab, Input::Request(get(5, 1, "k", ReadMode::Sync)));
    let sync = to_leader(
        1,
        5,
        LearnerMessage::Sync {
            client: ClientId(5),
            seq: 1,
        },
    );
    assert_eq!(sends(&effects), vec![(n(1), sync)]);
    assert!(replies(&effects).is_empty());
    deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Commit { zxid: z(1, 1) }),
    );
    let done = LeaderMessage::SyncDone {
        client: ClientId(5),
        seq: 1,
    };
    let effects = deliver(&mut zab, 1, to_learner(1, 7, done));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(Some("1.1".into())))
    );
}

#[test]
fn reads_the_leader_answers_a_sync_once_what_it_proposed_is_committed() {
    let mut zab = broadcasting_leader(config());
    step(&mut zab, Input::Request(put(5, 1, "k", "v")));
    let sync = LearnerMessage::Sync {
        client: ClientId(6),
        seq: 1,
    };
    let effects = deliver(&mut zab, 2, to_leader(7, 4, sync));
    assert!(sends(&effects).is_empty(), "1.1 is outstanding");
    deliver(
        &mut zab,
        1,
        Message::SelfAck {
            epoch: 1,
            zxid: z(1, 1),
        },
    );
    let effects = deliver(
        &mut zab,
        2,
        to_leader(7, 5, LearnerMessage::Ack { zxid: z(1, 1) }),
    );
    let sent = sends(&effects);
    assert!(matches!(
        sent[0].1,
        Message::ToLearner {
            msg: LeaderMessage::Commit { .. },
            ..
        }
    ));
    let done = LeaderMessage::SyncDone {
        client: ClientId(6),
        seq: 1,
    };
    assert_eq!(sent[1], (n(2), to_learner(7, 7, done)), "after the COMMIT");
}

#[test]
fn reads_a_write_at_a_follower_is_forwarded_and_answered_once_applied_there() {
    let mut zab = serving_follower(config());
    let request = put(5, 1, "k", "v");
    let effects = step(&mut zab, Input::Request(request.clone()));
    let forwarded = to_leader(1, 4, LearnerMessage::Request(request.clone()));
    assert_eq!(sends(&effects), vec![(n(1), forwarded)]);
    let proposal = Txn {
        zxid: z(1, 1),
        command: request.command(),
    };
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(proposal)),
    );
    assert!(replies(&effects).is_empty(), "proposed, not committed");
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Commit { zxid: z(1, 1) }),
    );
    assert_eq!(replies(&effects)[0].result, Ok(Output::Done));
    // A retry is answered from the session table.
    let effects = step(&mut zab, Input::Request(request));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Done));
}

#[test]
fn reads_a_linearizable_read_goes_through_the_log() {
    let mut zab = broadcasting_leader(config());
    let effects = step(
        &mut zab,
        Input::Request(get(5, 1, "k", ReadMode::Linearizable)),
    );
    assert!(replies(&effects).is_empty());
    let Record::Txns(txns) = &persisted(&effects)[0] else {
        panic!("a proposal")
    };
    assert!(txns[0].command.op.is_read());
}

#[test]
fn admin_requests_are_rejected() {
    let mut zab = broadcasting_leader(config());
    let admin = AdminRequest {
        client: ClientId(1),
        seq: 1,
        command: AdminCommand::AddVoter(n(4)),
    };
    let effects = step(&mut zab, Input::Admin(admin));
    assert!(matches!(
        replies(&effects)[..],
        [Reply {
            result: Err(ClientError::Rejected(_)),
            ..
        }]
    ));
}

// -------------------------------------------------------------------------------------------
// Recovery.

#[test]
fn recovery_restores_epochs_and_history_but_delivers_only_the_snapshot() {
    let records = vec![
        Record::AcceptedEpoch(2),
        Record::CurrentEpoch(2),
        Record::Txns(vec![txn(1, 1), txn(2, 1), txn(2, 2)]),
        Record::Truncate { after: z(2, 1) },
    ];
    let zab = server(1, 3, records, config());
    assert_eq!((zab.accepted_epoch(), zab.current_epoch()), (2, 2));
    assert_eq!(zab.last_zxid(), z(2, 1));
    assert_eq!(
        zab.committed(),
        Zxid::ZERO,
        "what is committed waits for a leader"
    );
    assert_eq!(
        zab.own_vote().zxid,
        z(2, 1),
        "elections see the whole history"
    );
}
