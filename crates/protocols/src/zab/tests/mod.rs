//! Scenario tests: feed one server exact inputs and assert the exact effects, ordered by the
//! phases of Zab (election, discovery, synchronization, broadcast) and then reads. This file
//! holds the helpers that put a server into each phase.

mod broadcast;
mod discovery;
mod election;
mod reads;
mod synchronization;

use super::*;
use crate::effects::{persists as persisted, replies, sends};
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
        quorum: None,
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
        quorum: None,
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

/// Each of the server's own invariants (`Zab::check_invariants` and the leader's, follower's
/// and election's) fires on a copy of a server put into the state it forbids, with its own
/// message; the uncorrupted servers pass. The leader's and the election's private fields
/// (learners, acknowledgements, votes) are out of reach here: those invariants are reached
/// through the server's fields they are checked against (its id, voters, epochs, config).
#[test]
fn each_invariant_of_the_node_fires_on_the_state_it_forbids() {
    use crate::effects::invariant_fired as fired;
    let looking = server(1, 3, vec![], config());
    looking.check_invariants();
    assert_eq!(
        fired(&looking, |node| node.current_epoch = 1),
        "currentEpoch above acceptedEpoch"
    );
    assert_eq!(
        fired(&looking, |node| node.committed = z(0, 1)),
        "delivered beyond the history"
    );
    let snapshot_ahead = |node: &mut Zab| {
        let snapshot = Snapshot {
            last_zxid: z(0, 1),
            state: KvStore::default(),
        };
        node.history = History::new(Arc::new(snapshot), Vec::new());
    };
    assert_eq!(
        fired(&looking, snapshot_ahead),
        "snapshot ahead of the state machine"
    );
    let unaccepted_epoch = |node: &mut Zab| {
        let snapshot = Snapshot::empty(node.config.sessions_max);
        node.history = History::new(Arc::new(snapshot), vec![txn(1, 1)]);
    };
    assert_eq!(
        fired(&looking, unaccepted_epoch),
        "a transaction of an epoch this server never accepted"
    );
    // The election counts its votes by server id: under another id its own vote is missing.
    assert!(
        fired(&looking, |node| node.id = n(2)).contains("a LOOKING server counts its own proposal")
    );
    assert_eq!(
        fired(&looking, |node| node.config.notify_timeout_max =
            Duration::ZERO),
        "notification back-off over its bound"
    );

    let mut leader = broadcasting_leader(config());
    step(&mut leader, Input::Request(put(7, 1, "k", "v")));
    assert_eq!(leader.clients.len(), 1);
    leader.check_invariants();
    assert_eq!(
        fired(&leader, |node| node.config.sessions_max = 0),
        "waiting clients over their bound"
    );
    // Server 2 is the leader's synchronized learner.
    assert_eq!(
        fired(&leader, |node| node.id = n(2)),
        "a leader is not its own follower"
    );
    assert_eq!(
        fired(&leader, |node| node.config.zxid_counter_bits = 0),
        "zxid counter past its limit"
    );
    assert!(
        fired(&leader, |node| node.accepted_epoch = 2).contains("a leader accepted its own epoch")
    );
    assert!(fired(&leader, |node| node.current_epoch = 0).contains("failed: established\n"));
    // Two acknowledgements are no quorum of five voters.
    assert_eq!(
        fired(&leader, |node| node.voters = (1..=5).map(n).collect()),
        "established by a quorum"
    );

    let follower = serving_follower(config());
    follower.check_invariants();
    let follow_itself = |node: &mut Zab| {
        let id = node.id;
        let State::Following(following) = &mut node.state else {
            panic!("following");
        };
        following.leader = id;
    };
    assert!(fired(&follower, follow_itself).contains("a follower does not follow itself"));
    assert!(
        fired(&follower, |node| node.accepted_epoch = 2).contains("following an accepted epoch")
    );
    assert!(fired(&follower, |node| node.current_epoch = 0).contains("NEWLEADER adopted the epoch"));
}

/// The safety checker totals what each server counted, once: a step that counted nothing
/// adds nothing, a later step adds only the difference, and a server restarted with its
/// counters at zero keeps what it counted before (as multi-primary's checker test does).
#[test]
fn the_checker_totals_each_servers_counters_once_across_steps_and_restarts() {
    use quorate_core::Invariants;
    fn set(zab: &mut Zab, value: u64) {
        zab.counters = ZabCounters {
            elections_decided: value,
            epochs_established: value,
            sync_diff: value,
            sync_trunc: value,
            sync_snap: value,
            followers_refused: value,
            epochs_refused: value,
            zxid_rollovers: value,
            connections_broken: value,
            timeouts: value,
            proposals: value,
            reads_local: value,
            reads_sync: value,
        };
    }
    let mut checker = ZabSafety::new();
    let mut a = server(1, 3, vec![], config());
    let mut b = server(2, 3, vec![], config());
    set(&mut a, 2);
    checker.after_step(n(1), &a, &[]).unwrap();
    set(&mut b, 3);
    checker.after_step(n(2), &b, &[]).unwrap();
    checker.after_step(n(1), &a, &[]).unwrap(); // Nothing new: counted once.
    set(&mut a, 5);
    checker.after_step(n(1), &a, &[]).unwrap(); // 3 more at server 1.
                                                // Server 2 crashes and restarts with its counters at zero: what it counted before stays.
    checker.on_crash(n(2));
    let mut restarted = server(2, 3, vec![], config());
    set(&mut restarted, 1);
    checker.after_step(n(2), &restarted, &[]).unwrap();
    let counters: std::collections::BTreeMap<&str, u64> = checker.counters().into_iter().collect();
    for (name, _) in ZabCounters::default().named() {
        // The checker reports its own count of established epochs under that name.
        let expected = if name == "epochs_established" {
            0
        } else {
            5 + 3 + 1
        };
        assert_eq!(counters[name], expected, "{name}: {counters:?}");
    }
}

#[test]
fn a_config_that_cannot_work_is_refused_with_its_reason() {
    let ok = ZabConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    let refused = |config: ZabConfig| config.validate().unwrap_err();
    let ms = Duration::from_millis;
    let limits = "tick, init_limit and sync_limit must be positive";
    assert_eq!(
        refused(ZabConfig {
            tick: Duration::ZERO,
            ..ok.clone()
        }),
        limits
    );
    for (init_limit, sync_limit) in [(0, 5), (10, 0)] {
        let config = ZabConfig {
            init_limit,
            sync_limit,
            ..ok.clone()
        };
        assert_eq!(refused(config), limits);
    }
    // Election timeouts are ranges: a fixed one (min = max) is accepted, min > max is not.
    let ranges = "election timeouts must be positive ranges";
    let election = |notify: (u64, u64), finalize: (u64, u64)| ZabConfig {
        notify_timeout_min: ms(notify.0),
        notify_timeout_max: ms(notify.1),
        finalize_wait_min: ms(finalize.0),
        finalize_wait_max: ms(finalize.1),
        ..ok.clone()
    };
    assert_eq!(election((50, 50), (20, 20)).validate(), Ok(()));
    assert_eq!(refused(election((0, 400), (20, 40))), ranges);
    assert_eq!(refused(election((51, 50), (20, 40))), ranges);
    assert_eq!(refused(election((50, 400), (21, 20))), ranges);
    for zxid_counter_bits in [1, 33] {
        let config = ZabConfig {
            zxid_counter_bits,
            ..ok.clone()
        };
        assert!(refused(config).contains("zxid_counter_bits"));
    }
    let zxid_ends = [2, 32].map(|zxid_counter_bits| ZabConfig {
        zxid_counter_bits,
        ..ok.clone()
    });
    for config in zxid_ends {
        assert_eq!(config.validate(), Ok(()));
    }
    for (snapshot_threshold, uncommitted_max, sessions_max) in [(0, 1, 1), (1, 0, 1), (1, 1, 0)] {
        let config = ZabConfig {
            snapshot_threshold,
            uncommitted_max,
            sessions_max,
            ..ok.clone()
        };
        assert!(refused(config).contains("must be positive"));
    }
}
