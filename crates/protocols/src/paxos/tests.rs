//! Scenario tests: exact inputs to one node and the exact effects, named by the sections of
//! "Paxos Made Simple" (PMS); then scripted runs of a small cluster: the seed's example and
//! the duelling-proposers livelock.

use super::*;
use crate::effects::{replies, sends};
use crate::script::Cluster;
use quorate_core::{AdminCommand, AdminRequest, Effect, Invariants};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn v(text: &str) -> Value {
    Value::copy_from_slice(text.as_bytes())
}

fn k() -> Key {
    v("k")
}

fn ballot(round: u64, node: u64) -> Ballot {
    Ballot::new(round, n(node))
}

fn config(retry: Retry) -> PaxosConfig {
    PaxosConfig {
        retry,
        ..PaxosConfig::default()
    }
}

fn node_with(id: u64, size: u64, config: PaxosConfig, recovered: Vec<Record>) -> Paxos {
    let members: Vec<NodeId> = (1..=size).map(n).collect();
    let mut paxos = Paxos::new(n(id), &members, config);
    step(&mut paxos, Input::Start { recovered });
    paxos
}

fn node(id: u64, size: u64) -> Paxos {
    node_with(id, size, PaxosConfig::default(), Vec::new())
}

fn step(paxos: &mut Paxos, input: Input<Paxos>) -> Vec<Effect<Paxos>> {
    let mut out = Effects::new();
    paxos.step(Time::ZERO, input, &mut out);
    paxos.check_invariants();
    out.drain().collect()
}

fn deliver(paxos: &mut Paxos, from: u64, msg: Message) -> Vec<Effect<Paxos>> {
    step(paxos, Input::Message { from: n(from), msg })
}

fn to_all(size: u64, msg: Message) -> Vec<(NodeId, Message)> {
    (1..=size).map(|id| (n(id), msg.clone())).collect()
}

fn propose(client: u64, seq: u64, value: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Cas {
            key: k(),
            expected: None,
            new: v(value),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

fn get(client: u64, seq: u64) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Get { key: k() },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

fn prepare(round: u64, node: u64) -> Message {
    Message::Prepare {
        key: k(),
        ballot: ballot(round, node),
    }
}

fn promise(round: u64, node: u64, accepted: Option<(Ballot, &str)>) -> Message {
    Message::Promise {
        key: k(),
        ballot: ballot(round, node),
        accepted: accepted.map(|(b, value)| (b, v(value))),
    }
}

fn accept(round: u64, node: u64, value: &str) -> Message {
    Message::Accept {
        key: k(),
        ballot: ballot(round, node),
        value: v(value),
    }
}

fn accepted(round: u64, node: u64, value: &str) -> Message {
    Message::Accepted {
        key: k(),
        ballot: ballot(round, node),
        value: v(value),
    }
}

#[test]
fn pms_2_2_an_acceptor_persists_its_promise_before_it_promises() {
    let mut acceptor = node(3, 3);
    let effects = deliver(&mut acceptor, 1, prepare(1, 1));
    assert!(matches!(
        &effects[..],
        [
            Effect::Persist(Record::Acceptor { promised, accepted: None, .. }),
            Effect::Send { to: NodeId(1), msg: Message::Promise { accepted: None, .. } },
        ] if *promised == ballot(1, 1)
    ));
    // A duplicate Prepare gets the same promise again, with nothing new to persist.
    let again = deliver(&mut acceptor, 1, prepare(1, 1));
    assert_eq!(sends(&again), vec![(n(1), promise(1, 1, None))]);
    assert_eq!(again.len(), 1);
}

#[test]
fn pms_2_2_an_acceptor_refuses_ballots_below_its_promise() {
    let mut acceptor = node(3, 3);
    deliver(&mut acceptor, 2, prepare(2, 2));
    let nack = Message::Nack {
        key: k(),
        ballot: ballot(1, 1),
        promised: ballot(2, 2),
    };
    let effects = deliver(&mut acceptor, 1, prepare(1, 1));
    assert_eq!(effects.len(), 1, "nothing to persist for a refusal");
    assert_eq!(sends(&effects), vec![(n(1), nack.clone())]);
    let effects = deliver(&mut acceptor, 1, accept(1, 1, "X"));
    assert_eq!(sends(&effects), vec![(n(1), nack)]);
    assert_eq!(acceptor.acceptor(b"k"), Some((ballot(2, 2), None)));
}

#[test]
fn pms_2_2_an_acceptor_accepts_at_its_promise_persists_then_tells_every_learner() {
    let mut acceptor = node(3, 3);
    deliver(&mut acceptor, 1, prepare(1, 1));
    let effects = deliver(&mut acceptor, 1, accept(1, 1, "X"));
    let Effect::Persist(Record::Acceptor {
        promised,
        accepted: Some((accepted_in, value)),
        ..
    }) = &effects[0]
    else {
        panic!("persist first, got {effects:?}");
    };
    assert_eq!(
        (*promised, *accepted_in, value),
        (ballot(1, 1), ballot(1, 1), &v("X"))
    );
    assert_eq!(sends(&effects), to_all(3, accepted(1, 1, "X")));
    // A higher Prepare now hears of X, with the ballot it was accepted in.
    let effects = deliver(&mut acceptor, 2, prepare(2, 2));
    let reported = promise(2, 2, Some((ballot(1, 1), "X")));
    assert_eq!(sends(&effects), vec![(n(2), reported)]);
}

#[test]
fn pms_2_2_an_acceptor_accepts_a_higher_ballot_without_a_promise_for_it() {
    // An Accept above the promise implies the promise (its proposer had a majority elsewhere).
    let mut acceptor = node(3, 3);
    deliver(&mut acceptor, 1, prepare(1, 1));
    deliver(&mut acceptor, 2, accept(4, 2, "Y"));
    let state = acceptor.acceptor(b"k").unwrap();
    assert_eq!(state.0, ballot(4, 2));
    assert_eq!(state.1, Some(&(ballot(4, 2), v("Y"))));
}

#[test]
fn pms_2_5_a_proposer_persists_its_round_before_preparing_and_never_reuses_a_ballot() {
    let mut proposer = node(1, 3);
    let effects = step(&mut proposer, Input::Request(propose(7, 1, "X")));
    assert!(matches!(effects[0], Effect::Persist(Record::Round(1))));
    assert_eq!(sends(&effects), to_all(3, prepare(1, 1)));
    // After a restart, the durable round keeps the next ballot above every ballot issued.
    let mut restarted = node_with(1, 3, PaxosConfig::default(), vec![Record::Round(1)]);
    let effects = step(&mut restarted, Input::Request(propose(7, 1, "X")));
    assert_eq!(sends(&effects), to_all(3, prepare(2, 1)));
}

#[test]
fn pms_2_5_a_proposer_outbids_the_highest_round_it_has_seen() {
    let mut proposer = node(1, 3);
    deliver(&mut proposer, 3, prepare(5, 3));
    let effects = step(&mut proposer, Input::Request(propose(7, 1, "X")));
    assert_eq!(sends(&effects), to_all(3, prepare(6, 1)));
}

#[test]
fn pms_2_2_a_proposer_adopts_the_value_accepted_in_the_highest_ballot() {
    let mut proposer = node(1, 3);
    deliver(&mut proposer, 2, prepare(2, 2)); // Seen round 2: our ballot will be 3.1.
    step(&mut proposer, Input::Request(propose(7, 1, "mine")));
    assert!(deliver(&mut proposer, 2, promise(3, 1, Some((ballot(1, 2), "A")))).is_empty());
    let effects = deliver(&mut proposer, 3, promise(3, 1, Some((ballot(2, 3), "B"))));
    assert_eq!(sends(&effects), to_all(3, accept(3, 1, "B")));
    assert_eq!(proposer.proposing(b"k"), Some(&v("B")));
}

#[test]
fn pms_2_2_a_proposer_uses_its_own_value_only_when_no_promise_reports_one() {
    let mut proposer = node(1, 3);
    step(&mut proposer, Input::Request(propose(7, 1, "mine")));
    deliver(&mut proposer, 1, promise(1, 1, None));
    let effects = deliver(&mut proposer, 3, promise(1, 1, None));
    assert_eq!(sends(&effects), to_all(3, accept(1, 1, "mine")));
    // Promises for another ballot, or after phase 1 ended, change nothing.
    assert!(deliver(
        &mut proposer,
        2,
        promise(1, 1, Some((ballot(1, 2), "late")))
    )
    .is_empty());
}

#[test]
fn pms_2_3_a_learner_needs_a_majority_in_one_ballot_and_persists_before_answering() {
    let mut learner = node(1, 3);
    step(&mut learner, Input::Request(propose(7, 1, "X")));
    assert!(deliver(&mut learner, 2, accepted(1, 1, "X")).is_empty());
    // A vote in another ballot does not add up with it.
    assert!(deliver(&mut learner, 3, accepted(2, 3, "X")).is_empty());
    let effects = deliver(&mut learner, 3, accepted(1, 1, "X"));
    assert!(
        matches!(&effects[0], Effect::Persist(Record::Chosen { value, .. }) if *value == v("X"))
    );
    let answer = Reply {
        client: ClientId(7),
        seq: 1,
        result: Ok(Output::Swapped(true)),
    };
    assert_eq!(replies(&effects), vec![answer]);
    assert_eq!(learner.chosen(b"k"), Some(&v("X")));
    // It decides once: more votes change nothing.
    assert!(deliver(&mut learner, 2, accepted(2, 3, "X")).is_empty());
}

#[test]
fn pms_2_3_a_proposal_that_lost_learns_which_value_won() {
    let mut learner = node(1, 3);
    step(&mut learner, Input::Request(propose(7, 1, "mine")));
    deliver(&mut learner, 2, accepted(4, 2, "theirs"));
    let effects = deliver(&mut learner, 3, accepted(4, 2, "theirs"));
    let results: Vec<_> = replies(&effects).into_iter().map(|r| r.result).collect();
    assert_eq!(results, vec![Ok(Output::Swapped(false))]);
    // Later requests are answered from the decision, with no round.
    let effects = step(&mut learner, Input::Request(get(8, 1)));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(Some(v("theirs"))))
    );
    assert!(sends(&effects).is_empty());
}

#[test]
fn pms_2_3_a_node_that_knows_the_decision_answers_prepare_and_accept_with_it() {
    let mut learner = node(2, 3);
    deliver(
        &mut learner,
        1,
        Message::Chosen {
            key: k(),
            value: v("X"),
        },
    );
    let chosen = Message::Chosen {
        key: k(),
        value: v("X"),
    };
    assert_eq!(
        sends(&deliver(&mut learner, 3, prepare(9, 3))),
        vec![(n(3), chosen.clone())]
    );
    assert_eq!(
        sends(&deliver(&mut learner, 3, accept(9, 3, "Y"))),
        vec![(n(3), chosen)]
    );
}

#[test]
fn a_read_with_no_accepted_value_in_a_promise_majority_is_absent() {
    let mut reader = node(1, 3);
    let effects = step(&mut reader, Input::Request(get(7, 1)));
    assert_eq!(sends(&effects), to_all(3, prepare(1, 1)));
    deliver(&mut reader, 1, promise(1, 1, None));
    let effects = deliver(&mut reader, 2, promise(1, 1, None));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Value(None)));
    assert!(sends(&effects).is_empty(), "a read proposes nothing");
    assert_eq!(reader.round_in_progress(b"k"), None);
}

#[test]
fn a_read_that_hears_an_accepted_value_completes_it_before_answering() {
    let mut reader = node(1, 3);
    step(&mut reader, Input::Request(get(7, 1)));
    deliver(&mut reader, 1, promise(1, 1, None));
    let effects = deliver(&mut reader, 2, promise(1, 1, Some((ballot(0, 3), "X"))));
    assert_eq!(sends(&effects), to_all(3, accept(1, 1, "X")));
    assert!(replies(&effects).is_empty());
    deliver(&mut reader, 1, accepted(1, 1, "X"));
    let effects = deliver(&mut reader, 2, accepted(1, 1, "X"));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Value(Some(v("X")))));
}

#[test]
fn a_read_that_arrives_during_phase_one_waits_for_a_round_of_its_own() {
    let mut reader = node(1, 3);
    step(&mut reader, Input::Request(get(7, 1)));
    step(&mut reader, Input::Request(get(8, 1)));
    deliver(&mut reader, 1, promise(1, 1, None));
    let effects = deliver(&mut reader, 2, promise(1, 1, None));
    // Only the first reader was waiting when the promises were asked for.
    let answered: Vec<ClientId> = replies(&effects).iter().map(|r| r.client).collect();
    assert_eq!(answered, vec![ClientId(7)]);
    assert_eq!(sends(&effects), to_all(3, prepare(2, 1)));
}

#[test]
fn pms_2_4_without_back_off_a_preempted_proposer_retries_at_once() {
    let mut proposer = node_with(1, 3, config(Retry::Immediately), Vec::new());
    step(&mut proposer, Input::Request(propose(7, 1, "X")));
    let nack = Message::Nack {
        key: k(),
        ballot: ballot(1, 1),
        promised: ballot(4, 2),
    };
    let effects = deliver(&mut proposer, 2, nack);
    assert_eq!(sends(&effects), to_all(3, prepare(5, 1)));
}

#[test]
fn pms_2_4_with_back_off_a_preempted_proposer_waits_a_random_doubling_time() {
    let retry = Retry::RandomizedBackoff {
        base: Duration::from_millis(5),
        max: Duration::from_millis(320),
    };
    let mut proposer = node_with(1, 3, config(retry), Vec::new());
    let mut ceilings = Vec::new();
    for round in 1..=8u64 {
        let effects = if round == 1 {
            step(&mut proposer, Input::Request(propose(7, 1, "X")))
        } else {
            step(&mut proposer, Input::Timer(Timer::Retry(0)))
        };
        assert_eq!(
            proposer.round_in_progress(b"k"),
            Some(ballot(round, 1)),
            "{effects:?}"
        );
        let nack = Message::Nack {
            key: k(),
            ballot: ballot(round, 1),
            promised: ballot(round, 2),
        };
        let effects = deliver(&mut proposer, 2, nack);
        assert!(sends(&effects).is_empty(), "no Prepare while backing off");
        let [Effect::SetTimer { after, .. }] = &effects[..] else {
            panic!("expected one back-off timer, got {effects:?}");
        };
        assert_eq!(after.min, Duration::ZERO);
        ceilings.push(after.max.as_millis());
        // A client arriving during the back-off waits for it.
        assert!(sends(&step(&mut proposer, Input::Request(propose(8, round, "Y")))).is_empty());
    }
    assert_eq!(ceilings, vec![10, 20, 40, 80, 160, 320, 320, 320]);
}

#[test]
fn a_round_that_times_out_is_retried_with_a_higher_ballot() {
    let mut proposer = node_with(1, 3, config(Retry::Immediately), Vec::new());
    step(&mut proposer, Input::Request(propose(7, 1, "X")));
    let effects = step(&mut proposer, Input::Timer(Timer::Retry(0)));
    assert_eq!(sends(&effects), to_all(3, prepare(2, 1)));
}

#[test]
fn a_restarted_acceptor_keeps_its_promise() {
    let mut acceptor = node(3, 3);
    let effects = deliver(&mut acceptor, 2, prepare(2, 2));
    let disk: Vec<Record> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Persist(record) => Some(record),
            _ => None,
        })
        .collect();
    let mut restarted = node_with(3, 3, PaxosConfig::default(), disk);
    let effects = deliver(&mut restarted, 1, accept(1, 1, "X"));
    assert!(matches!(&sends(&effects)[..], [(_, Message::Nack { .. })]));
}

#[test]
fn other_operations_and_admin_requests_are_rejected() {
    let mut paxos = node(1, 3);
    let put = Request {
        op: Op::Put {
            key: k(),
            value: v("X"),
        },
        ..propose(7, 1, "X")
    };
    let effects = step(&mut paxos, Input::Request(put));
    assert!(
        matches!(&replies(&effects)[0].result, Err(ClientError::Rejected(why)) if why.contains("put"))
    );
    let cas = Request {
        op: Op::Cas {
            key: k(),
            expected: Some(v("A")),
            new: v("B"),
        },
        ..propose(7, 2, "X")
    };
    let effects = step(&mut paxos, Input::Request(cas));
    assert!(matches!(
        replies(&effects)[0].result,
        Err(ClientError::Rejected(_))
    ));
    let admin = AdminRequest {
        client: ClientId(1),
        seq: 1,
        command: AdminCommand::TransferLeadership(n(2)),
    };
    let effects = step(&mut paxos, Input::Admin(admin));
    assert!(matches!(
        replies(&effects)[0].result,
        Err(ClientError::Rejected(_))
    ));
    assert!(sends(&effects).is_empty());
}

// -------------------------------------------------------------------------------------------
// Scripted clusters.

type PaxosCluster = Cluster<Paxos, PaxosSafety>;

fn cluster(size: u64, config: PaxosConfig) -> PaxosCluster {
    let members: Vec<NodeId> = (1..=size).map(n).collect();
    Cluster::new(
        size,
        move |id| Paxos::new(id, &members, config.clone()),
        PaxosSafety::new(),
    )
}

fn is_prepare(msg: &Message) -> bool {
    matches!(msg, Message::Prepare { .. } | Message::Promise { .. })
}

/// The seed's example run. Three nodes are the acceptors A1–A3; P1 runs on n1 and P2 on n2.
fn seed_example(config: PaxosConfig) -> PaxosCluster {
    let mut c = cluster(3, config);
    // T1–T2: P1 proposes "X"; every acceptor promises ballot 1.n1.
    c.step(1, Input::Request(propose(1, 1, "X")));
    c.deliver_while(|_, _, msg| is_prepare(msg));
    // T3: P1's ACCEPT to A3 is lost. T4: A1 and A2 accept; "X" is chosen. Only P1 hears the
    // Accepted messages (the others are lost), so P1 learns and answers its client.
    c.lose(|_, to, msg| to == 3 && matches!(msg, Message::Accept { .. }));
    c.deliver_while(|_, _, msg| matches!(msg, Message::Accept { .. }));
    c.lose(|_, to, msg| to != 1 && matches!(msg, Message::Accepted { .. }));
    c.deliver_while(|_, _, _| true);
    assert_eq!(c.checker.chosen(b"k"), Some(&v("X")), "X is chosen");
    assert_eq!(c.node(1).chosen(b"k"), Some(&v("X")), "P1 learned it");
    // T5: P2 proposes "Y" with a higher ballot; its Prepare to A1 is lost.
    c.step(2, Input::Request(propose(2, 1, "Y")));
    c.lose(|_, to, _| to == 1);
    // T6: A2 reports "X" accepted in 1.n1; A3 reports nothing. T7: P2 must propose "X".
    c.deliver_while(|_, _, msg| is_prepare(msg));
    c
}

#[test]
fn seed_example_p2_hears_x_and_proposes_x_instead_of_y() {
    let mut c = seed_example(PaxosConfig::default());
    assert_eq!(c.node(2).proposing(b"k"), Some(&v("X")));
    c.deliver_while(|_, _, _| true);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    for id in 1..=3 {
        assert_eq!(c.node(id).chosen(b"k"), Some(&v("X")), "n{id} learned X");
    }
    let p2 = c
        .replies
        .iter()
        .find(|(_, r)| r.client == ClientId(2))
        .unwrap();
    assert_eq!(p2.1.result, Ok(Output::Swapped(false)), "P2 learns Y lost");
}

#[cfg(feature = "bugs")]
#[test]
fn seed_example_a_proposer_ignoring_accepted_values_breaks_agreement_and_is_caught() {
    let config = PaxosConfig {
        bug: Some(Bug::ProposerIgnoresAccepted),
        ..PaxosConfig::default()
    };
    let mut c = seed_example(config);
    assert_eq!(c.node(2).proposing(b"k"), Some(&v("Y")));
    c.deliver_while(|_, _, _| true);
    let found: Vec<&str> = c.violations.iter().map(|v| v.property).collect();
    assert!(found.contains(&"agreement"), "{:?}", c.violations);
}

/// An acceptor's promise matters after a restart. P1 (n1, ballot 1.n1) gets "X" accepted by
/// n1 only; its Accept to n3 is delayed. P2 (n2, ballot 1.n2) hears nothing from its promise
/// majority {n2, n3} and gets "Y" chosen by {n1, n2}. Then n3, which promised 1.n2, restarts,
/// and P1's late Accept(1.n1, "X") reaches it.
fn forgotten_promise(config: PaxosConfig) -> PaxosCluster {
    let mut c = cluster(3, config);
    c.step(1, Input::Request(propose(1, 1, "X")));
    c.lose(|_, to, msg| to == 2 && is_prepare(msg));
    c.deliver_while(|_, _, msg| is_prepare(msg));
    c.lose(|_, to, msg| to == 2 && is_accept(msg));
    assert!(c.deliver_one(|_, to, msg| to == 1 && is_accept(msg)));
    let late = c
        .network
        .iter()
        .position(|(_, to, m)| *to == 3 && is_accept(m));
    let late = c
        .network
        .remove(late.expect("P1's Accept to n3 is in flight"));
    c.step(2, Input::Request(propose(2, 1, "Y")));
    c.lose(|_, to, msg| to == 1 && is_prepare(msg));
    c.deliver_while(|_, _, msg| is_prepare(msg));
    assert_eq!(c.node(2).proposing(b"k"), Some(&v("Y")));
    c.lose(|_, to, msg| to == 3 && is_accept(msg));
    c.deliver_while(|_, _, msg| is_accept(msg));
    assert_eq!(c.checker.chosen(b"k"), Some(&v("Y")));
    c.crash(3);
    c.restart(3);
    c.network.push(late);
    c.deliver_while(|_, _, _| true);
    c
}

#[test]
fn a_restarted_acceptor_refuses_the_ballot_it_promised_to_ignore() {
    let c = forgotten_promise(PaxosConfig::default());
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert_eq!(c.node(3).acceptor(b"k").unwrap().1, None, "n3 refused X");
}

#[cfg(feature = "bugs")]
#[test]
fn an_acceptor_that_forgets_its_promise_lets_a_second_value_be_chosen_and_is_caught() {
    let config = PaxosConfig {
        bug: Some(Bug::AcceptorForgetsPromise),
        ..PaxosConfig::default()
    };
    let c = forgotten_promise(config);
    let found: Vec<&str> = c.violations.iter().map(|v| v.property).collect();
    assert!(found.contains(&"agreement"), "{:?}", c.violations);
}

/// Duelling proposers (PMS §2.4): whenever one proposer is about to send its Accepts, the
/// other's higher Prepare reaches the acceptors first. Returns the cluster after `rounds`
/// such exchanges (or fewer, if someone decided).
fn duel(config: PaxosConfig, rounds: usize) -> PaxosCluster {
    let mut c = cluster(3, config);
    c.step(1, Input::Request(propose(1, 1, "X")));
    c.step(2, Input::Request(propose(2, 1, "Y")));
    // Phase 1 of the first proposer completes before the second's Prepare is delivered.
    c.deliver_while(|from, to, msg| match msg {
        Message::Prepare { .. } => from == 1,
        Message::Promise { .. } => to == 1,
        _ => false,
    });
    for _ in 0..rounds {
        // Everything but Accepts flows (new Prepares and their promises included)...
        c.deliver_while(|_, _, msg| !is_accept(msg));
        // ...then the Accepts of the lowest ballot in flight arrive, too late.
        let Some(lowest) = c
            .network
            .iter()
            .filter_map(|(_, _, m)| accept_ballot(m))
            .min()
        else {
            break;
        };
        c.deliver_while(|_, _, msg| accept_ballot(msg) == Some(lowest));
    }
    c
}

fn is_accept(msg: &Message) -> bool {
    matches!(msg, Message::Accept { .. })
}

fn accept_ballot(msg: &Message) -> Option<Ballot> {
    match msg {
        Message::Accept { ballot, .. } => Some(*ballot),
        _ => None,
    }
}

#[test]
fn pms_2_4_duelling_proposers_without_back_off_livelock() {
    let c = duel(config(Retry::Immediately), 20);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert_eq!(c.checker.decided(), 0, "nothing decided after 20 exchanges");
    let counters: BTreeMap<&str, u64> = c.checker.counters().into_iter().collect();
    assert!(counters["rounds"] >= 20, "{counters:?}");
    assert!(counters["rounds_preempted"] >= 19, "{counters:?}");
}

#[test]
fn pms_2_4_randomized_back_off_ends_the_duel() {
    let c = duel(PaxosConfig::default(), 20);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert_eq!(c.checker.decided(), 1);
    let counters: BTreeMap<&str, u64> = c.checker.counters().into_iter().collect();
    assert_eq!(counters["rounds"], 2, "{counters:?}");
}

/// A tunable that would stall a node (no round timeout, an empty back-off range) or starve it
/// (no room for registers or waiters) is refused with its reason when the node is built.
#[test]
fn a_config_that_cannot_work_is_refused_with_its_reason() {
    assert_eq!(PaxosConfig::default().validate(), Ok(()));
    assert_eq!(config(Retry::Immediately).validate(), Ok(()));
    let refused = |config: PaxosConfig| config.validate().unwrap_err();
    let no_timeout = PaxosConfig {
        round_timeout: Duration::ZERO,
        ..PaxosConfig::default()
    };
    assert!(refused(no_timeout).contains("round_timeout"));
    let backoff = |base: u64, max: u64| {
        config(Retry::RandomizedBackoff {
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
        })
    };
    assert_eq!(backoff(5, 5).validate(), Ok(()));
    assert!(refused(backoff(0, 5)).contains("back-off"));
    assert!(refused(backoff(10, 5)).contains("back-off"));
    for (instances_max, waiters_max) in [(0, 1), (1, 0)] {
        let starved = PaxosConfig {
            instances_max,
            waiters_max,
            ..PaxosConfig::default()
        };
        assert!(refused(starved).contains("must be positive"));
    }
}

/// Each of the node's own invariants fires on a copy of a node with one register in use, put
/// into the state it forbids; the uncorrupted node passes.
#[test]
fn each_invariant_of_the_node_fires_on_the_state_it_forbids() {
    use crate::effects::invariant_fired as fired;
    let mut paxos = node(1, 3);
    step(&mut paxos, Input::Request(propose(7, 1, "a")));
    assert_eq!((paxos.instances.len(), paxos.timers.len()), (1, 1));
    paxos.check_invariants();
    assert!(fired(&paxos, |node| node.config.instances_max = 0)
        .contains("self.instances.len() <= self.config.instances_max"));
    assert!(fired(&paxos, |node| node.timers.clear()).contains("one timer per register"));
}

/// The checker's integrity (PMS §2.1), fed directly: a learner learns only the value chosen,
/// once per incarnation, and never another. No correct node breaks it, so no run shows it.
#[test]
fn the_checker_reports_a_learner_that_learns_a_value_not_chosen_or_learns_twice() {
    let mut safety = PaxosSafety::new();
    let learner = node(1, 3);
    let learn = |value: &str| {
        vec![Effect::Persist(Record::Chosen {
            key: k(),
            value: v(value),
        })]
    };
    let violation = safety
        .after_step(n(1), &learner, &learn("X"))
        .expect_err("nothing was chosen yet");
    assert_eq!(violation.property, "integrity");
    safety.before_step(Time::ZERO, n(1), &Input::Request(propose(7, 1, "X")));
    for from in [1, 2] {
        let vote = accepted(1, 1, "X");
        safety
            .on_send(Time::ZERO, n(from), n(1), &vote)
            .expect("a vote for a proposed value");
    }
    assert_eq!(safety.chosen(b"k"), Some(&v("X")));
    safety
        .after_step(n(1), &learner, &learn("X"))
        .expect("the chosen value");
    let violation = safety
        .after_step(n(1), &learner, &learn("X"))
        .expect_err("decided twice");
    assert_eq!(
        (
            violation.property,
            violation.detail.starts_with("n1 decided")
        ),
        ("integrity", true),
        "{violation:?}"
    );
    let violation = safety
        .after_step(n(2), &learner, &learn("Y"))
        .expect_err("not the value chosen");
    assert_eq!(violation.property, "integrity");
}
