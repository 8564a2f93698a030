//! Phase 3: broadcast: PROPOSAL, ACK, COMMIT, and failure detection.

use super::*;

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
    assert_eq!(zab.counters().timeouts, 0);
    let mut out = Effects::new();
    let late = Time::ZERO + config().tick * (config().sync_limit + 1);
    zab.step(late, Input::Timer(Timer::Tick), &mut out);
    assert_eq!(zab.peer_state(), PeerState::Looking);
    assert_eq!(zab.counters().timeouts, 1, "the timeout is counted");
}

/// `Bug::AckBeforePersist`, the broken variant the simulator must catch, is ZooKeeper's lazy
/// flush: a follower acknowledges a proposal on receipt and persists what it acknowledged at
/// its next tick, or once `LAZY_FLUSH` proposals wait.
#[cfg(feature = "bugs")]
#[test]
fn broadcast_the_ack_before_persist_variant_persists_what_it_acknowledged_at_the_next_tick() {
    let config = ZabConfig {
        bug: Some(Bug::AckBeforePersist),
        ..config()
    };
    let mut zab = serving_follower(config);
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(txn(1, 1))),
    );
    assert_eq!(
        persisted(&effects),
        vec![],
        "acknowledged before it is persisted"
    );
    let ack = to_leader(1, 4, LearnerMessage::Ack { zxid: z(1, 1) });
    assert_eq!(sends(&effects), vec![(n(1), ack)]);
    let effects = step(&mut zab, Input::Timer(Timer::Tick));
    assert_eq!(persisted(&effects), vec![Record::Txns(vec![txn(1, 1)])]);
    // Between ticks, the eighth proposal held back flushes the eight.
    for counter in 2..=8 {
        let proposal = LeaderMessage::Proposal(txn(1, counter));
        let effects = deliver(&mut zab, 1, to_learner(1, 4 + counter, proposal));
        assert_eq!(persisted(&effects), vec![]);
    }
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 13, LeaderMessage::Proposal(txn(1, 9))),
    );
    let held: Vec<Txn> = (2..=9).map(|counter| txn(1, counter)).collect();
    assert_eq!(persisted(&effects), vec![Record::Txns(held)]);
}

#[test]
fn broadcast_a_forwarded_request_is_proposed_only_while_serving_and_only_once() {
    // Synchronizing (follower 2 acknowledged the epoch, not yet NEWLEADER): a request a
    // follower forwards is dropped, its client retries; proposing it would break the rule
    // that nothing is proposed before broadcast.
    let mut zab = prospective_leader(vec![], config());
    let info = LearnerMessage::FollowerInfo { accepted_epoch: 0 };
    deliver(&mut zab, 2, to_leader(7, 1, info));
    let ack = LearnerMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        fresh: true,
    };
    deliver(&mut zab, 2, to_leader(7, 2, ack));
    assert!(!zab.is_serving());
    let forwarded = LearnerMessage::Request(put(5, 1, "a", "1"));
    let effects = deliver(&mut zab, 2, to_leader(7, 3, forwarded));
    assert!(persisted(&effects).is_empty(), "{effects:?}");
    assert_eq!(zab.last_zxid(), Zxid::ZERO);

    // Serving: proposed once, and a copy forwarded again after it was delivered (the
    // follower retries a request whose answer it missed) is not proposed a second time.
    let mut zab = broadcasting_leader(config());
    let forwarded = || LearnerMessage::Request(put(5, 1, "a", "1"));
    let effects = deliver(&mut zab, 2, to_leader(7, 4, forwarded()));
    assert_eq!(persisted(&effects).len(), 1, "{effects:?}");
    assert_eq!(zab.last_zxid(), z(1, 1));
    quorum_acks_first_proposal(&mut zab, 5);
    assert_eq!(zab.committed(), z(1, 1));
    let effects = deliver(&mut zab, 2, to_leader(7, 6, forwarded()));
    assert!(persisted(&effects).is_empty(), "{effects:?}");
    assert_eq!(
        zab.last_zxid(),
        z(1, 1),
        "applied already: not proposed again"
    );
}

#[test]
fn broadcast_a_clients_retry_at_the_leader_while_its_request_is_proposed_waits_for_that_proposal() {
    let mut zab = broadcasting_leader(config());
    let effects = step(&mut zab, Input::Request(put(5, 1, "a", "1")));
    assert_eq!(persisted(&effects).len(), 1, "{effects:?}");
    assert_eq!(zab.last_zxid(), z(1, 1));
    // The client retries before the proposal commits: nothing is proposed again.
    let effects = step(&mut zab, Input::Request(put(5, 1, "a", "1")));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(zab.last_zxid(), z(1, 1));
    // The one proposal commits, and the client is answered once.
    let effects = quorum_acks_first_proposal(&mut zab, 4);
    assert_eq!(zab.committed(), z(1, 1));
    let answered = replies(&effects);
    assert_eq!(answered.len(), 1, "{effects:?}");
    assert_eq!(
        (answered[0].client, answered[0].seq, &answered[0].result),
        (ClientId(5), 1, &Ok(Output::Done))
    );
}

/// Once a request is delivered the leader forgets it was proposed: a retry that arrives after
/// its session was evicted (here by one other client, `sessions_max` 1) is proposed again, and
/// answered (`Expired`), instead of waiting for a proposal that will never come.
#[test]
fn broadcast_a_retry_after_its_session_was_evicted_is_proposed_again() {
    let config = ZabConfig {
        sessions_max: 1,
        ..config()
    };
    let mut zab = broadcasting_leader(config);
    for (client, counter, seq) in [(5, 1, 4), (6, 2, 5)] {
        step(&mut zab, Input::Request(put(client, 1, "a", "1")));
        let ack = LearnerMessage::Ack {
            zxid: z(1, counter),
        };
        deliver(&mut zab, 2, to_leader(7, seq, ack));
        let self_ack = Message::SelfAck {
            epoch: 1,
            zxid: z(1, counter),
        };
        assert_eq!(replies(&deliver(&mut zab, 1, self_ack)).len(), 1);
    }
    let effects = step(&mut zab, Input::Request(put(5, 1, "a", "1")));
    assert_eq!(persisted(&effects).len(), 1, "{effects:?}");
    assert_eq!(zab.last_zxid(), z(1, 3));
}

/// Follower 2 (on connection 7, message number `seq`) and then the leader itself acknowledge
/// proposal 1.1; the effects of the leader's own acknowledgement, which completes the quorum.
fn quorum_acks_first_proposal(zab: &mut Zab, seq: u64) -> Vec<Effect<Zab>> {
    deliver(
        zab,
        2,
        to_leader(7, seq, LearnerMessage::Ack { zxid: z(1, 1) }),
    );
    let self_ack = Message::SelfAck {
        epoch: 1,
        zxid: z(1, 1),
    };
    deliver(zab, 1, self_ack)
}
