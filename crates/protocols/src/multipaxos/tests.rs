//! Scenario tests: exact inputs to one node and the exact effects, named by the sections of
//! "Paxos Made Simple" (PMS §3, "Implementing a State Machine") and "Paxos Made Moderately
//! Complex" (PMMC: §3 acceptors, leaders with scouts and commanders, replicas); then scripted
//! leader changes on a small cluster.

use super::*;
use crate::effects::{persists, replies, sends};
use crate::script::Cluster;
use quorate_core::{
    AdminCommand, AdminRequest, Durable, Effect, Invariants, Key, Op, ReadMode, Value,
};
use std::collections::BTreeMap;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn ballot(round: u64, node: u64) -> Ballot {
    Ballot::new(round, n(node))
}

fn bytes(text: &str) -> Key {
    Key::copy_from_slice(text.as_bytes())
}

fn config() -> MultiPaxosConfig {
    MultiPaxosConfig::default()
}

fn node_with(id: u64, size: u64, config: MultiPaxosConfig, recovered: Vec<Record>) -> MultiPaxos {
    let members: Vec<NodeId> = (1..=size).map(n).collect();
    let mut node = MultiPaxos::new(n(id), &members, config);
    step(&mut node, Input::Start { recovered });
    node
}

fn node(id: u64, size: u64) -> MultiPaxos {
    node_with(id, size, config(), Vec::new())
}

fn step(node: &mut MultiPaxos, input: Input<MultiPaxos>) -> Vec<Effect<MultiPaxos>> {
    let mut out = Effects::new();
    node.step(Time::ZERO, input, &mut out);
    node.check_invariants();
    out.drain().collect()
}

fn deliver(node: &mut MultiPaxos, from: u64, msg: Message) -> Vec<Effect<MultiPaxos>> {
    step(node, Input::Message { from: n(from), msg })
}

fn to_all(size: u64, msg: Message) -> Vec<(NodeId, Message)> {
    (1..=size).map(|id| (n(id), msg.clone())).collect()
}

fn put(client: u64, seq: u64, key: &str, value: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Put {
            key: bytes(key),
            value: bytes(value),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

fn get(client: u64, seq: u64, key: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Get { key: bytes(key) },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

fn batch(requests: &[&Request]) -> Batch {
    Batch::new(requests.iter().map(|r| r.command()).collect())
}

fn accept(b: Ballot, slot: Slot, batch: &Batch, chosen: Slot) -> Message {
    Message::Accept {
        ballot: b,
        slot,
        batch: batch.clone(),
        chosen,
    }
}

fn vote(b: Ballot, slot: Slot, batch: &Batch) -> Message {
    Message::Accepted {
        ballot: b,
        slot,
        digest: batch.digest(),
    }
}

fn promise(b: Ballot, accepted: Vec<PValue>) -> Message {
    Message::Promise {
        ballot: b,
        accepted,
        snapshot: None,
    }
}

/// Node 1 of `size`, elected leader of ballot 1.n1 with empty promises.
fn leader_with(size: u64, config: MultiPaxosConfig) -> MultiPaxos {
    let mut leader = node_with(1, size, config, Vec::new());
    step(&mut leader, Input::Timer(Timer::Election));
    for from in 1..=majority(size as usize) as u64 {
        deliver(&mut leader, from, promise(ballot(1, 1), vec![]));
    }
    assert!(leader.is_leader());
    leader
}

/// Delivers votes for `slot` from enough acceptors to decide it.
fn decide(
    leader: &mut MultiPaxos,
    size: u64,
    slot: Slot,
    batch: &Batch,
) -> Vec<Effect<MultiPaxos>> {
    let b = leader.ballot().unwrap();
    let mut effects = Vec::new();
    for from in 1..=majority(size as usize) as u64 {
        effects = deliver(leader, from, vote(b, slot, batch));
    }
    effects
}

#[test]
fn pms_3_a_candidate_persists_its_round_then_prepares_every_slot_not_applied() {
    let mut candidate = node(1, 3);
    let effects = step(&mut candidate, Input::Timer(Timer::Election));
    assert_eq!(persists(&effects), vec![Record::Round(1)]);
    let prepare = Message::Prepare {
        ballot: ballot(1, 1),
        from_slot: 1,
    };
    assert_eq!(sends(&effects), to_all(3, prepare));
    assert_eq!(candidate.status().role, Role::Candidate);
}

#[test]
fn pmmc_3_an_acceptor_promises_for_every_slot_and_reports_its_votes_from_the_asked_slot() {
    let mut acceptor = node(3, 3);
    let (a, b) = (
        batch(&[&put(7, 1, "k", "a")]),
        batch(&[&put(7, 2, "k", "b")]),
    );
    deliver(&mut acceptor, 1, accept(ballot(1, 1), 1, &a, 0));
    deliver(&mut acceptor, 1, accept(ballot(1, 1), 2, &b, 0));
    let prepare = Message::Prepare {
        ballot: ballot(2, 2),
        from_slot: 2,
    };
    let effects = deliver(&mut acceptor, 2, prepare);
    assert_eq!(persists(&effects), vec![Record::Promise(ballot(2, 2))]);
    let reported = promise(ballot(2, 2), vec![(2, ballot(1, 1), b)]);
    assert_eq!(sends(&effects), vec![(n(2), reported)]);
    assert_eq!(acceptor.promised(), ballot(2, 2));
}

#[test]
fn pmmc_3_a_retransmitted_prepare_is_answered_again_without_a_second_promise_on_disk() {
    let mut acceptor = node(3, 3);
    let prepare = Message::Prepare {
        ballot: ballot(2, 2),
        from_slot: 1,
    };
    let first = deliver(&mut acceptor, 2, prepare.clone());
    assert_eq!(persists(&first), vec![Record::Promise(ballot(2, 2))]);
    let again = deliver(&mut acceptor, 2, prepare);
    assert_eq!(sends(&again), vec![(n(2), promise(ballot(2, 2), vec![]))]);
    assert_eq!(
        again.len(),
        1,
        "nothing persisted, no timer restarted: {again:?}"
    );
}

#[test]
fn pmmc_3_an_acceptor_that_promises_another_nodes_ballot_follows_it_and_waits_before_campaigning() {
    let mut acceptor = node(3, 3);
    let prepare = Message::Prepare {
        ballot: ballot(2, 2),
        from_slot: 1,
    };
    let effects = deliver(&mut acceptor, 2, prepare);
    let timers: Vec<Timer> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::SetTimer { timer, .. } => Some(*timer),
            _ => None,
        })
        .collect();
    assert_eq!(timers, vec![Timer::Election], "{effects:?}");
    let effects = step(&mut acceptor, Input::Request(put(7, 1, "k", "v")));
    let redirect = Err(ClientError::NotLeader { leader: Some(n(2)) });
    assert_eq!(replies(&effects)[0].result, redirect);
}

#[test]
fn pmmc_3_an_acceptor_refuses_a_lower_ballot_whatever_it_asks() {
    let mut acceptor = node(3, 3);
    let prepare = |round, node| Message::Prepare {
        ballot: ballot(round, node),
        from_slot: 1,
    };
    deliver(&mut acceptor, 2, prepare(2, 2));
    let nack = Message::Nack {
        ballot: ballot(1, 1),
        promised: ballot(2, 2),
    };
    let refused = vec![(n(1), nack)];
    assert_eq!(sends(&deliver(&mut acceptor, 1, prepare(1, 1))), refused);
    let a = batch(&[&put(7, 1, "k", "a")]);
    let effects = deliver(&mut acceptor, 1, accept(ballot(1, 1), 1, &a, 0));
    assert_eq!(sends(&effects), refused);
    assert!(persists(&effects).is_empty());
    let commit = Message::Commit {
        ballot: ballot(1, 1),
        chosen: 1,
    };
    assert_eq!(sends(&deliver(&mut acceptor, 1, commit)), refused);
    assert_eq!(acceptor.vote(1), None);
}

#[test]
fn pmmc_3_an_acceptor_persists_its_vote_before_answering_the_leader() {
    let mut acceptor = node(2, 3);
    let a = batch(&[&put(7, 1, "k", "a")]);
    let effects = deliver(&mut acceptor, 1, accept(ballot(1, 1), 1, &a, 0));
    let persisted = Record::Accept {
        slot: 1,
        ballot: ballot(1, 1),
        batch: a.clone(),
    };
    let at_persist = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(r) if *r == persisted));
    let at_send = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }));
    assert!(at_persist.unwrap() < at_send.unwrap(), "{effects:?}");
    assert_eq!(sends(&effects), vec![(n(1), vote(ballot(1, 1), 1, &a))]);
    assert_eq!(
        acceptor.status().leader,
        Some(n(1)),
        "it follows the ballot's owner"
    );
}

#[test]
fn pmmc_leader_adopts_the_highest_ballot_vote_per_slot_and_fills_gaps_with_noops() {
    let mut candidate = node(1, 3);
    deliver(
        &mut candidate,
        3,
        Message::Commit {
            ballot: ballot(3, 3),
            chosen: 0,
        },
    );
    step(&mut candidate, Input::Timer(Timer::Election));
    let b = ballot(4, 1);
    let (old, new, third) = (
        batch(&[&put(7, 1, "k", "old")]),
        batch(&[&put(8, 1, "k", "new")]),
        batch(&[&put(9, 1, "k", "third")]),
    );
    deliver(
        &mut candidate,
        2,
        promise(
            b,
            vec![(1, ballot(1, 2), old), (3, ballot(1, 2), third.clone())],
        ),
    );
    let effects = deliver(
        &mut candidate,
        3,
        promise(b, vec![(1, ballot(3, 3), new.clone())]),
    );
    assert!(candidate.is_leader());
    let proposed: Vec<(Slot, Batch)> = sends(&effects)
        .into_iter()
        .filter(|(to, _)| *to == n(1))
        .filter_map(|(_, msg)| match msg {
            Message::Accept {
                slot,
                batch,
                ballot,
                ..
            } if ballot == b => Some((slot, batch)),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, vec![(1, new), (2, Batch::noop()), (3, third)]);
    // New commands go after the slots taken over.
    let request = put(10, 1, "x", "1");
    let effects = step(&mut candidate, Input::Request(request.clone()));
    assert_eq!(
        sends(&effects),
        to_all(3, accept(b, 4, &batch(&[&request]), 0))
    );
}

#[test]
fn pmmc_commander_a_majority_of_votes_for_the_proposed_batch_decides_the_slot() {
    let mut leader = leader_with(3, config());
    let request = put(7, 1, "k", "v");
    let effects = step(&mut leader, Input::Request(request.clone()));
    let proposed = batch(&[&request]);
    assert_eq!(
        sends(&effects),
        to_all(3, accept(ballot(1, 1), 1, &proposed, 0))
    );
    let other = batch(&[&put(7, 1, "k", "other")]);
    assert!(
        deliver(&mut leader, 2, vote(ballot(1, 1), 1, &other)).is_empty(),
        "wrong batch"
    );
    assert!(deliver(&mut leader, 2, vote(ballot(1, 1), 1, &proposed)).is_empty());
    assert!(
        deliver(&mut leader, 2, vote(ballot(1, 1), 1, &proposed)).is_empty(),
        "duplicate"
    );
    let effects = deliver(&mut leader, 3, vote(ballot(1, 1), 1, &proposed));
    let answer = Reply {
        client: ClientId(7),
        seq: 1,
        result: Ok(Output::Done),
    };
    assert_eq!(replies(&effects), vec![answer]);
    assert_eq!(leader.applied(), 1);
    assert_eq!(leader.state_machine().get(b"k"), Some(&bytes("v")));
}

#[test]
fn pmmc_the_leader_batches_commands_that_arrive_while_its_pipeline_is_full() {
    let config = MultiPaxosConfig {
        pipeline_max: 1,
        ..config()
    };
    let mut leader = leader_with(3, config);
    let (first, second, third) = (put(1, 1, "a", "1"), put(2, 1, "b", "2"), get(3, 1, "a"));
    step(&mut leader, Input::Request(first.clone()));
    assert!(sends(&step(&mut leader, Input::Request(second.clone()))).is_empty());
    assert!(sends(&step(&mut leader, Input::Request(third.clone()))).is_empty());
    let effects = decide(&mut leader, 3, 1, &batch(&[&first]));
    let together = batch(&[&second, &third]);
    assert_eq!(
        sends(&effects),
        to_all(3, accept(ballot(1, 1), 2, &together, 1))
    );
    let effects = decide(&mut leader, 3, 2, &together);
    let results: Vec<_> = replies(&effects)
        .into_iter()
        .map(|r| (r.client, r.result))
        .collect();
    let read = Ok(Output::Value(Some(bytes("1"))));
    assert_eq!(
        results,
        vec![(ClientId(2), Ok(Output::Done)), (ClientId(3), read)]
    );
}

#[test]
fn reads_go_through_the_log() {
    let mut leader = leader_with(3, config());
    let read = get(7, 1, "k");
    let effects = step(&mut leader, Input::Request(read.clone()));
    assert!(
        replies(&effects).is_empty(),
        "not answered from local state"
    );
    assert_eq!(
        sends(&effects),
        to_all(3, accept(ballot(1, 1), 1, &batch(&[&read]), 0))
    );
}

#[test]
fn a_retried_command_is_answered_from_its_session_and_not_decided_again() {
    let mut leader = leader_with(3, config());
    let append = Request {
        op: Op::Append {
            key: bytes("k"),
            value: bytes("x"),
        },
        ..put(7, 1, "k", "")
    };
    step(&mut leader, Input::Request(append.clone()));
    // A retry while the first attempt is undecided is not proposed twice.
    assert!(step(&mut leader, Input::Request(append.clone())).is_empty());
    decide(&mut leader, 3, 1, &batch(&[&append]));
    let effects = step(&mut leader, Input::Request(append));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Length(1)));
    assert!(sends(&effects).is_empty());
    assert_eq!(leader.state_machine().get(b"k"), Some(&bytes("x")));
}

#[test]
fn followers_redirect_clients_to_the_leader_they_follow() {
    let mut follower = node(2, 3);
    deliver(
        &mut follower,
        3,
        Message::Commit {
            ballot: ballot(1, 3),
            chosen: 0,
        },
    );
    let effects = step(&mut follower, Input::Request(put(7, 1, "k", "v")));
    let redirect = Err(ClientError::NotLeader { leader: Some(n(3)) });
    assert_eq!(replies(&effects)[0].result, redirect);
    // Local reads are served from local state, without the leader.
    let local = Request {
        read: ReadMode::Local,
        ..get(7, 2, "k")
    };
    assert_eq!(
        replies(&step(&mut follower, Input::Request(local)))[0].result,
        Ok(Output::Value(None))
    );
}

#[test]
fn a_deposed_leader_steps_down_and_answers_its_waiting_clients_indeterminate() {
    let mut leader = leader_with(3, config());
    step(&mut leader, Input::Request(put(7, 1, "k", "v")));
    let nack = Message::Nack {
        ballot: ballot(1, 1),
        promised: ballot(2, 3),
    };
    let effects = deliver(&mut leader, 2, nack);
    assert!(!leader.is_leader());
    let indeterminate = Err(ClientError::Indeterminate { leader: Some(n(3)) });
    assert_eq!(replies(&effects)[0].result, indeterminate);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::CancelTimer(Timer::Heartbeat))));
}

#[test]
fn pmmc_replica_applies_the_prefix_it_voted_for_in_the_leaders_ballot_and_catches_up_on_the_rest() {
    let mut follower = node(2, 3);
    let b = ballot(2, 1);
    let (one, two, three) = (
        batch(&[&put(7, 1, "k", "1")]),
        batch(&[&put(7, 2, "k", "2")]),
        batch(&[&put(7, 3, "k", "3")]),
    );
    deliver(&mut follower, 3, accept(ballot(1, 3), 2, &two, 0)); // An earlier ballot's vote.
    deliver(&mut follower, 1, accept(b, 1, &one, 0));
    deliver(&mut follower, 1, accept(b, 3, &three, 0));
    let effects = deliver(
        &mut follower,
        1,
        Message::Commit {
            ballot: b,
            chosen: 3,
        },
    );
    assert_eq!(follower.applied(), 1, "slot 2's vote is not the leader's");
    assert_eq!(
        sends(&effects),
        vec![(n(1), Message::CatchUp { from_slot: 2 })]
    );
    // The leader's answer fills the gap, and slot 3 follows.
    let decided = Message::Decided {
        first: 2,
        batches: vec![two.clone()],
    };
    deliver(&mut follower, 1, decided);
    assert_eq!(follower.applied(), 2);
    deliver(
        &mut follower,
        1,
        Message::Commit {
            ballot: b,
            chosen: 3,
        },
    );
    assert_eq!(follower.applied(), 3);
    assert_eq!(follower.state_machine().get(b"k"), Some(&bytes("3")));
}

#[test]
fn compaction_replaces_the_applied_prefix_by_a_checkpoint_and_serves_it_to_laggards() {
    let config = MultiPaxosConfig {
        snapshot_threshold: 2,
        ..config()
    };
    let mut leader = leader_with(3, config);
    for (slot, value) in [(1, "1"), (2, "2")] {
        let request = put(7, slot, "k", value);
        step(&mut leader, Input::Request(request.clone()));
        let effects = decide(&mut leader, 3, slot, &batch(&[&request]));
        let checkpoints = persists(&effects)
            .into_iter()
            .filter(|r| r.is_checkpoint())
            .count();
        assert_eq!(checkpoints, usize::from(slot == 2), "slot {slot}");
    }
    assert_eq!(leader.snapshot_slot(), 2);
    assert_eq!(leader.decided(1), None);
    let effects = deliver(&mut leader, 3, Message::CatchUp { from_slot: 1 });
    let [(to, Message::Snapshot { snapshot })] = &sends(&effects)[..] else {
        panic!("expected a snapshot, got {effects:?}");
    };
    assert_eq!((*to, snapshot.last_slot), (n(3), 2));
    // A lagging replica installs it and persists a checkpoint.
    let mut lagging = node(3, 3);
    let effects = deliver(
        &mut lagging,
        1,
        Message::Snapshot {
            snapshot: snapshot.clone(),
        },
    );
    assert!(persists(&effects)[0].is_checkpoint());
    assert_eq!(lagging.applied(), 2);
    assert_eq!(lagging.state_machine().get(b"k"), Some(&bytes("2")));
}

#[test]
fn an_acceptor_answers_an_accept_for_a_compacted_slot_with_its_snapshot() {
    let mut acceptor = node(3, 3);
    let snapshot = Arc::new(Snapshot {
        last_slot: 5,
        state: KvStore::default(),
    });
    deliver(&mut acceptor, 2, Message::Snapshot { snapshot });
    let effects = deliver(&mut acceptor, 1, accept(ballot(1, 1), 4, &Batch::noop(), 0));
    assert!(matches!(
        &sends(&effects)[..],
        [(_, Message::Snapshot { .. })]
    ));
    assert!(persists(&effects).is_empty());
}

#[test]
fn an_installed_snapshot_drops_the_votes_and_decisions_it_covers_up_to_its_last_slot() {
    let mut acceptor = node(3, 3);
    let a = batch(&[&put(7, 1, "k", "a")]);
    for slot in [4, 5, 6] {
        deliver(&mut acceptor, 1, accept(ballot(1, 1), slot, &a, 0));
    }
    // Decisions beyond a gap wait in the log until the gap is filled.
    let decided = Message::Decided {
        first: 4,
        batches: vec![a.clone(), a.clone(), a.clone()],
    };
    deliver(&mut acceptor, 1, decided);
    assert_eq!((acceptor.applied(), acceptor.decided(5)), (0, Some(&a)));
    let snapshot = Arc::new(Snapshot {
        last_slot: 5,
        state: KvStore::default(),
    });
    deliver(&mut acceptor, 2, Message::Snapshot { snapshot });
    for slot in [4, 5] {
        assert_eq!(
            acceptor.vote(slot),
            None,
            "slot {slot}: covered by the snapshot"
        );
        assert_eq!(
            acceptor.decided(slot),
            None,
            "slot {slot}: covered by the snapshot"
        );
    }
    assert_eq!(
        acceptor.vote(6),
        Some((ballot(1, 1), &a)),
        "beyond it, kept"
    );
    assert_eq!(
        acceptor.applied(),
        6,
        "and slot 6's decision applied after it"
    );
}

#[test]
fn a_restarted_node_recovers_its_promise_votes_and_snapshot() {
    let mut acceptor = node(2, 3);
    let a = batch(&[&put(7, 1, "k", "a")]);
    let mut disk = persists(&deliver(&mut acceptor, 1, accept(ballot(1, 1), 1, &a, 0)));
    let prepare = Message::Prepare {
        ballot: ballot(3, 3),
        from_slot: 1,
    };
    disk.extend(persists(&deliver(&mut acceptor, 3, prepare)));
    let restarted = node_with(2, 3, config(), disk);
    assert_eq!(restarted.promised(), ballot(3, 3));
    assert_eq!(restarted.vote(1), Some((ballot(1, 1), &a)));
    assert_eq!(restarted.status().role, Role::Follower);
}

#[test]
fn admin_requests_are_rejected() {
    let mut leader = leader_with(3, config());
    let admin = AdminRequest {
        client: ClientId(1),
        seq: 1,
        command: AdminCommand::AddLearner(n(4)),
    };
    let effects = step(&mut leader, Input::Admin(admin));
    assert!(matches!(
        replies(&effects)[0].result,
        Err(ClientError::Rejected(_))
    ));
    assert!(sends(&effects).is_empty());
}

// -------------------------------------------------------------------------------------------
// Scripted leader changes.

type MultiPaxosCluster = Cluster<MultiPaxos, MultiPaxosSafety>;

fn cluster(size: u64, config: MultiPaxosConfig) -> MultiPaxosCluster {
    let members: Vec<NodeId> = (1..=size).map(n).collect();
    Cluster::new(
        size,
        move |id| MultiPaxos::new(id, &members, config.clone()),
        MultiPaxosSafety::new(),
    )
}

fn elect(c: &mut MultiPaxosCluster, candidate: u64, voters: &[u64]) {
    let mut among = voters.to_vec();
    among.push(candidate);
    c.step(candidate, Input::Timer(Timer::Election));
    c.deliver_while(|from, to, msg| {
        among.contains(&from)
            && among.contains(&to)
            && matches!(msg, Message::Prepare { .. } | Message::Promise { .. })
    });
    assert!(c.node(candidate).is_leader(), "n{candidate} won");
}

fn value(c: &MultiPaxosCluster, id: u64, key: &str) -> Option<Value> {
    c.node(id).state_machine().get(key.as_bytes()).cloned()
}

#[test]
fn the_checker_records_each_chosen_batch_and_counts_a_slot_batched_only_with_several_commands() {
    let config = MultiPaxosConfig {
        pipeline_max: 1,
        ..config()
    };
    let mut c = cluster(3, config);
    elect(&mut c, 1, &[2, 3]);
    c.deliver_while(|_, _, _| true);
    // The first put fills the pipeline; the next two wait and share the following slot.
    let puts = [
        put(1, 1, "a", "v"),
        put(2, 1, "b", "v"),
        put(3, 1, "c", "v"),
    ];
    for request in &puts {
        c.step(1, Input::Request(request.clone()));
    }
    c.deliver_while(|_, _, _| true);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    let [first, second, third] = &puts;
    assert_eq!(c.checker.chosen(1), Some(batch(&[first]).digest()));
    assert_eq!(c.checker.chosen(2), Some(batch(&[second, third]).digest()));
    assert_eq!(c.checker.chosen(3), None);
    // One more put, alone in the third slot: two single-command slots and one batch.
    let fourth = put(4, 1, "d", "v");
    c.step(1, Input::Request(fourth.clone()));
    c.deliver_while(|_, _, _| true);
    assert_eq!(c.checker.chosen(3), Some(batch(&[&fourth]).digest()));
    let counters: BTreeMap<_, _> = c.checker.counters().into_iter().collect();
    assert_eq!(counters["slots_chosen"], 3, "{counters:?}");
    assert_eq!(counters["commands_chosen"], 4, "{counters:?}");
    assert_eq!(
        counters["slots_batched"], 1,
        "only the second slot: {counters:?}"
    );
}

/// n1 leads and proposes three slots. Slot 1 is chosen by {n1, n2}; slot 2's Accepts are all
/// lost; slot 3 reaches n2 only — chosen by {n1, n2} too — but nobody hears the votes. n1
/// crashes, and n2 takes over with n3's promise.
fn leader_change(config: MultiPaxosConfig) -> MultiPaxosCluster {
    let mut c = cluster(3, config);
    elect(&mut c, 1, &[2, 3]);
    c.deliver_while(|_, _, _| true);
    for (seq, v) in [(1, "a"), (2, "b"), (3, "c")] {
        c.step(1, Input::Request(put(7, seq, "k", v)));
    }
    let is_accept =
        |msg: &Message, s: Slot| matches!(msg, Message::Accept { slot, .. } if *slot == s);
    c.lose(|_, to, msg| is_accept(msg, 2) || (to == 3 && is_accept(msg, 3)));
    c.lose(|_, to, msg| to == 3 && is_accept(msg, 1));
    c.deliver_while(|_, _, msg| matches!(msg, Message::Accept { .. }));
    c.lose(|_, _, msg| matches!(msg, Message::Accepted { slot: 3, .. }));
    c.deliver_while(|_, _, _| true);
    assert_eq!(c.checker.chosen_len(), 2, "slots 1 and 3 are chosen");
    assert_eq!(c.node(1).applied(), 1);
    c.crash(1);
    elect(&mut c, 2, &[3]);
    c.deliver_while(|from, to, _| from != 1 && to != 1);
    c
}

#[test]
fn pmmc_a_new_leader_keeps_chosen_batches_and_fills_the_gap_with_a_noop() {
    let mut c = leader_change(config());
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert_eq!(c.node(2).applied(), 3);
    assert_eq!(c.node(2).decided(2), Some(&Batch::noop()));
    assert_eq!(value(&c, 2, "k"), Some(bytes("c")), "a, no-op, then c");
    c.step(2, Input::Timer(Timer::Heartbeat));
    c.deliver_while(|from, to, _| from != 1 && to != 1);
    assert_eq!(c.node(3).applied(), 3, "n3 caught up");
    assert_eq!(value(&c, 3, "k"), Some(bytes("c")));
    // n1 restarts as a follower and catches up too.
    c.restart(1);
    c.step(2, Input::Timer(Timer::Heartbeat));
    c.deliver_while(|_, _, _| true);
    assert_eq!(c.node(1).applied(), 3);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[cfg(feature = "bugs")]
#[test]
fn pmmc_a_leader_that_ignores_reported_votes_overwrites_a_chosen_batch_and_is_caught() {
    let config = MultiPaxosConfig {
        bug: Some(Bug::LeaderIgnoresAccepted),
        ..config()
    };
    let c = leader_change(config);
    let found: Vec<&str> = c.violations.iter().map(|v| v.property).collect();
    assert!(found.contains(&"agreement"), "{:?}", c.violations);
}

/// A deposed leader's Accept reaches an acceptor that restarted after promising the new
/// leader. n1 leads ballot 1.n1 and proposes "a" in slot 1; only its own vote arrives. n2 wins
/// ballot 2.n2 with n3's promise (neither voted), proposes "b" in slot 1, and {n1, n2} choose
/// it. Then n3 restarts, and n1's old Accept(1.n1, slot 1, "a") reaches it.
fn stale_accept_after_restart(config: MultiPaxosConfig) -> MultiPaxosCluster {
    let mut c = cluster(3, config);
    elect(&mut c, 1, &[2, 3]);
    c.deliver_while(|_, _, _| true);
    c.step(1, Input::Request(put(7, 1, "k", "a")));
    assert!(c.deliver_one(|_, to, msg| to == 1 && matches!(msg, Message::Accept { .. })));
    let stale = c
        .network
        .iter()
        .position(|(_, to, m)| *to == 3 && matches!(m, Message::Accept { .. }));
    let stale = c
        .network
        .remove(stale.expect("n1's Accept to n3 is in flight"));
    c.lose(|_, _, msg| matches!(msg, Message::Accept { .. }));
    elect(&mut c, 2, &[3]);
    c.deliver_while(|from, to, _| from != 1 && to != 1);
    c.step(2, Input::Request(put(8, 1, "k", "b")));
    c.lose(|_, to, msg| to == 3 && matches!(msg, Message::Accept { .. }));
    c.deliver_while(|from, to, msg| {
        matches!(msg, Message::Accept { .. } | Message::Accepted { .. }) && from != 3 && to != 3
    });
    assert_eq!(c.node(2).applied(), 1, "b is chosen in slot 1 by n1 and n2");
    c.crash(3);
    c.restart(3);
    c.network.push(stale);
    c.deliver_while(|_, _, _| true);
    c
}

#[test]
fn a_restarted_acceptor_refuses_a_deposed_leaders_accept() {
    let c = stale_accept_after_restart(config());
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert_eq!(c.node(3).vote(1), None);
}

#[cfg(feature = "bugs")]
#[test]
fn an_acceptor_that_forgets_its_promise_lets_a_deposed_leader_choose_again_and_is_caught() {
    let config = MultiPaxosConfig {
        bug: Some(Bug::AcceptorForgetsPromise),
        ..config()
    };
    let c = stale_accept_after_restart(config);
    let found: Vec<&str> = c.violations.iter().map(|v| v.property).collect();
    assert!(found.contains(&"agreement"), "{:?}", c.violations);
}

#[test]
fn a_config_that_cannot_work_is_refused_with_its_reason() {
    assert_eq!(config().validate(), Ok(()));
    let ms = std::time::Duration::from_millis;
    let refused = |config: MultiPaxosConfig| config.validate().unwrap_err();
    let timeouts = |min: u64, max: u64, heartbeat: u64| MultiPaxosConfig {
        election_timeout_min: ms(min),
        election_timeout_max: ms(max),
        heartbeat_interval: ms(heartbeat),
        ..config()
    };
    assert_eq!(
        timeouts(150, 150, 149).validate(),
        Ok(()),
        "a fixed timeout works"
    );
    assert!(refused(timeouts(301, 300, 50)).contains("exceeds election_timeout_max"));
    assert!(refused(timeouts(150, 300, 150)).contains("heartbeat_interval must be below"));
    // Each bound set to zero is refused.
    let zeroed: [fn(&mut MultiPaxosConfig); 6] = [
        |c| c.batch_max = 0,
        |c| c.pipeline_max = 0,
        |c| c.pending_max = 0,
        |c| c.catchup_max = 0,
        |c| c.sessions_max = 0,
        |c| c.snapshot_threshold = 0,
    ];
    for (bound, zero) in zeroed.iter().enumerate() {
        let mut config = config();
        zero(&mut config);
        assert!(
            refused(config).contains("must be positive"),
            "bound {bound}"
        );
    }
}

#[test]
fn compaction_waits_for_another_threshold_of_slots_after_each_snapshot() {
    // The threshold counts the slots applied since the last snapshot, not since slot 0: with
    // a threshold of 2, slots 2 and 4 are checkpointed, slots 1, 3 and 5 are not.
    let config = MultiPaxosConfig {
        snapshot_threshold: 2,
        ..config()
    };
    let mut leader = leader_with(3, config);
    for slot in 1..=5 {
        let request = put(7, slot, "k", &slot.to_string());
        step(&mut leader, Input::Request(request.clone()));
        let effects = decide(&mut leader, 3, slot, &batch(&[&request]));
        let checkpoints = persists(&effects)
            .into_iter()
            .filter(|r| r.is_checkpoint())
            .count();
        assert_eq!(checkpoints, usize::from(slot % 2 == 0), "slot {slot}");
        assert_eq!(leader.snapshot_slot(), slot / 2 * 2, "slot {slot}");
    }
}

/// The node's own invariants, which these tests and the simulator check after every step,
/// fire on the states they forbid (states no step can make, so they are made by hand here):
/// a check that never fired would pass every run.
#[test]
fn each_invariant_of_the_node_fires_on_the_state_it_forbids() {
    let leader = leader_with(3, config());
    leader.check_invariants();
    let fired = |corrupt: fn(&mut MultiPaxos)| crate::effects::invariant_fired(&leader, corrupt);
    let vote_in_compacted_slot = |node: &mut MultiPaxos| {
        node.accepted
            .insert(0, (ballot(1, 1), Batch::new(Vec::new())));
    };
    let decision_in_compacted_slot = |node: &mut MultiPaxos| {
        node.log.insert(0, Batch::new(Vec::new()));
    };
    assert_eq!(fired(vote_in_compacted_slot), "a vote in a compacted slot");
    assert_eq!(
        fired(decision_in_compacted_slot),
        "a decision in a compacted slot"
    );
    assert_eq!(
        fired(|node| node.promised = ballot(9, 2)),
        "promised an unseen round"
    );
    assert!(fired(|node| node.leader = None).contains("a leader knows it leads"));
}

/// A Nack deposes a leader only when the promise it names is above the leader's ballot. No
/// acceptor sends one naming the ballot itself (it refuses only a lower ballot, `on_prepare`,
/// `on_accept`, `on_commit`), so this pins the comparison rather than a reachable case: with
/// `>=` the leader would step down to follow itself.
#[test]
fn pmmc_3_a_nack_naming_the_leaders_own_ballot_as_the_promise_does_not_depose_it() {
    let mut leader = leader_with(3, config());
    let nack = Message::Nack {
        ballot: ballot(1, 1),
        promised: ballot(1, 1),
    };
    let effects = deliver(&mut leader, 2, nack);
    assert!(leader.is_leader());
    assert_eq!(leader.ballot(), Some(ballot(1, 1)));
    assert!(effects.is_empty(), "{effects:?}");
}

/// A restarted acceptor's promise comes from its checkpoint (which is never below the votes it
/// holds), and `Bug::AcceptorForgetsPromise` forgets it there too, even the promise its
/// checkpointed votes imply: restarted from a checkpoint holding a vote of ballot 2.n1, the
/// variant has promised nothing and takes an Accept of a lower ballot over that vote.
#[cfg(feature = "bugs")]
#[test]
fn an_acceptor_that_forgets_its_promise_forgets_the_one_its_checkpointed_votes_imply() {
    let a = batch(&[&put(7, 1, "k", "a")]);
    let checkpoint = Record::Checkpoint {
        round: 0,
        promised: ballot(2, 1),
        snapshot: Arc::new(Snapshot::empty(config().sessions_max)),
        accepted: vec![(1, ballot(2, 1), a.clone())],
    };
    let restarted = node_with(2, 3, config(), vec![checkpoint.clone()]);
    assert_eq!(restarted.promised(), ballot(2, 1));
    let forgetful = MultiPaxosConfig {
        bug: Some(Bug::AcceptorForgetsPromise),
        ..config()
    };
    let mut restarted = node_with(2, 3, forgetful, vec![checkpoint]);
    assert_eq!(restarted.promised(), Ballot::ZERO);
    assert_eq!(restarted.vote(1), Some((ballot(2, 1), &a)));
    let b = batch(&[&put(8, 1, "k", "b")]);
    let effects = deliver(&mut restarted, 1, accept(ballot(1, 1), 1, &b, 0));
    assert_eq!(sends(&effects), vec![(n(1), vote(ballot(1, 1), 1, &b))]);
    assert_eq!(restarted.vote(1), Some((ballot(1, 1), &b)));
}
