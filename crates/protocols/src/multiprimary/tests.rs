//! Scenario tests: exact inputs to nodes, exact effects out.

use super::*;
use bytes::Bytes;
use quorate_core::clock::CausalContext;
use quorate_core::crdt::{CrdtKind, CrdtOp, CrdtValue};
use quorate_core::{Effect, Op, ReadMode, Request};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn node(id: u64, config: MultiPrimaryConfig) -> MultiPrimary {
    let members: Vec<NodeId> = (1..=3).map(n).collect();
    let mut node = MultiPrimary::new(n(id), &members, config);
    step(&mut node, Time::ZERO, Input::Start { recovered: vec![] });
    node
}

fn step(
    node: &mut MultiPrimary,
    now: Time,
    input: Input<MultiPrimary>,
) -> Vec<Effect<MultiPrimary>> {
    let mut out = Effects::new();
    node.step(now, input, &mut out);
    node.check_invariants();
    out.drain().collect()
}

fn request(
    node: &mut MultiPrimary,
    now: u64,
    client: u64,
    seq: u64,
    op: Op,
) -> Vec<Effect<MultiPrimary>> {
    let request = Request {
        client: ClientId(client),
        seq,
        op,
        read: ReadMode::Linearizable,
        quorum: None,
    };
    step(node, Time::from_nanos(now), Input::Request(request))
}

fn answer(effects: &[Effect<MultiPrimary>]) -> Result<Output, ClientError> {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Reply(reply) => Some(reply.result.clone()),
            _ => None,
        })
        .expect("an answer")
}

/// Delivers every message in `effects` addressed to `to`'s id, as from `from`.
fn deliver_all(effects: &[Effect<MultiPrimary>], from: u64, to: &mut MultiPrimary, now: u64) {
    for effect in effects {
        if let Effect::Send { to: dest, msg } = effect {
            if *dest == to.id() {
                let input = Input::Message {
                    from: n(from),
                    msg: msg.clone(),
                };
                step(to, Time::from_nanos(now), input);
            }
        }
    }
}

/// Runs one anti-entropy exchange that `a` starts (with node 2 first, round-robin), for ten
/// message hops back and forth between `a` and `b`.
fn anti_entropy_round(a: &mut MultiPrimary, b: &mut MultiPrimary) {
    let mut in_flight = step(a, Time::ZERO, Input::Timer(Timer::AntiEntropy));
    for hop in 0..10 {
        let (from, to) = if hop % 2 == 0 {
            (a.id(), &mut *b)
        } else {
            (b.id(), &mut *a)
        };
        let mut next = Vec::new();
        for effect in &in_flight {
            if let Effect::Send { to: dest, msg } = effect {
                if *dest == to.id() {
                    let input = Input::Message {
                        from,
                        msg: msg.clone(),
                    };
                    next.extend(step(to, Time::ZERO, input));
                }
            }
        }
        in_flight = next;
    }
}

fn siblings(node: &mut MultiPrimary, key: &str) -> (Vec<Bytes>, CausalContext) {
    match answer(&request(node, 0, 99, 0, Op::GetSiblings { key: b(key) })) {
        Ok(Output::Siblings { values, context }) => (values, context),
        other => panic!("{other:?}"),
    }
}

fn put_with(key: &str, value: &str, context: CausalContext) -> Op {
    Op::PutWithContext {
        key: b(key),
        value: Some(b(value)),
        context,
    }
}

fn lww(clock: LwwClock) -> MultiPrimaryConfig {
    MultiPrimaryConfig {
        resolution: Resolution::Lww,
        lww_clock: clock,
        ..MultiPrimaryConfig::default()
    }
}

#[test]
fn a_write_is_persisted_then_answered_then_replicated_to_every_peer() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let effects = request(
        &mut a,
        5,
        7,
        1,
        Op::Put {
            key: b("k"),
            value: b("x"),
        },
    );
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::Applied { write: Some(_), .. })
    ));
    assert!(matches!(effects[1], Effect::Reply(_)));
    let targets: Vec<NodeId> = effects[2..]
        .iter()
        .map(|e| match e {
            Effect::Send {
                to,
                msg: Message::Replicate { .. },
            } => *to,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(targets, vec![n(2), n(3)]);
}

/// Only a peer's messages count: a Replicate whose sender is not a member, or is the node
/// itself, is ignored. No run sends one (the guard is defensive); pinned all the same.
#[test]
fn a_replicate_from_a_non_member_or_from_the_node_itself_is_ignored() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut other = node(2, MultiPrimaryConfig::default());
    let put = Op::Put {
        key: b("k"),
        value: b("x"),
    };
    let effects = request(&mut a, 5, 7, 1, put);
    for from in [9, 2] {
        deliver_all(&effects, from, &mut other, 6);
        assert_eq!(
            siblings(&mut other, "k").0,
            Vec::<Bytes>::new(),
            "from n{from}"
        );
    }
    deliver_all(&effects, 1, &mut other, 6);
    assert_eq!(siblings(&mut other, "k").0, vec![b("x")]);
}

#[test]
fn concurrent_writes_become_siblings_and_a_write_with_their_context_resolves_them() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut b_node = node(2, MultiPrimaryConfig::default());
    let from_a = request(
        &mut a,
        0,
        7,
        1,
        Op::Put {
            key: b("k"),
            value: b("x"),
        },
    );
    let from_b = request(
        &mut b_node,
        0,
        8,
        1,
        Op::Put {
            key: b("k"),
            value: b("y"),
        },
    );
    deliver_all(&from_a, 1, &mut b_node, 1);
    deliver_all(&from_b, 2, &mut a, 1);
    let (values, context) = siblings(&mut a, "k");
    assert_eq!(
        values,
        vec![b("x"), b("y")],
        "neither concurrent write is lost"
    );
    assert_eq!(
        siblings(&mut b_node, "k"),
        (values, context.clone()),
        "replicas agree"
    );
    let resolved = request(&mut a, 2, 7, 2, put_with("k", "z", context.clone()));
    let Ok(Output::Written { context: written }) = answer(&resolved) else {
        panic!()
    };
    assert!(
        written.contains_all(&context),
        "the answer's context covers the read's"
    );
    deliver_all(&resolved, 1, &mut b_node, 3);
    assert_eq!(siblings(&mut b_node, "k").0, vec![b("z")]);
}

#[test]
fn a_context_replaces_only_the_versions_it_covers() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut c = node(3, MultiPrimaryConfig::default());
    request(
        &mut a,
        0,
        7,
        1,
        Op::Put {
            key: b("k"),
            value: b("x"),
        },
    );
    let (_, seen) = siblings(&mut a, "k");
    // Meanwhile node 3 accepted a write that node 1 has not heard of.
    let from_c = request(
        &mut c,
        0,
        8,
        1,
        Op::Put {
            key: b("k"),
            value: b("unseen"),
        },
    );
    deliver_all(&from_c, 3, &mut a, 1);
    request(&mut a, 2, 7, 2, put_with("k", "x2", seen));
    assert_eq!(siblings(&mut a, "k").0, vec![b("x2"), b("unseen")]);
}

#[test]
fn lww_on_hybrid_logical_clocks_keeps_a_write_that_followed_another() {
    // Node 1's clock is 10 s ahead of node 2's. Node 2 writes after it heard of node 1's write.
    let ahead = 10_000_000_000;
    for (clock, later_write_survives) in [(LwwClock::Hlc, true), (LwwClock::Wall, false)] {
        let mut a = node(1, lww(clock));
        let mut b_node = node(2, lww(clock));
        let from_a = request(
            &mut a,
            ahead,
            7,
            1,
            Op::Put {
                key: b("k"),
                value: b("first"),
            },
        );
        deliver_all(&from_a, 1, &mut b_node, 1_000);
        request(
            &mut b_node,
            2_000,
            8,
            1,
            Op::Put {
                key: b("k"),
                value: b("second"),
            },
        );
        let read = answer(&request(&mut b_node, 3_000, 9, 0, Op::Get { key: b("k") }));
        let expected = if later_write_survives {
            "second"
        } else {
            "first"
        };
        assert_eq!(read, Ok(Output::Value(Some(b(expected)))), "{clock:?}");
        let lost = b_node.stats().lww_lost_on_arrival;
        assert_eq!(lost, u64::from(!later_write_survives), "{clock:?}");
    }
}

#[test]
fn a_clock_too_far_ahead_is_refused_and_nothing_is_merged() {
    let config = MultiPrimaryConfig {
        clock_ahead_max: Duration::from_secs(1),
        ..lww(LwwClock::Hlc)
    };
    let mut a = node(1, config.clone());
    let mut b_node = node(2, config);
    let from_a = request(
        &mut a,
        5_000_000_000,
        7,
        1,
        Op::Put {
            key: b("k"),
            value: b("x"),
        },
    );
    deliver_all(&from_a, 1, &mut b_node, 0);
    assert_eq!(b_node.stats().clock_refusals, 1);
    assert!(b_node.entries().is_empty());
    assert!(
        b_node.clock() < a.clock(),
        "the local clock was not dragged ahead"
    );
}

#[test]
fn a_retried_increment_is_applied_once() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let incr = || Op::CrdtUpdate {
        key: b("c"),
        op: CrdtOp::Add(5),
    };
    let first = request(&mut a, 0, 7, 1, incr());
    let retry = request(&mut a, 1, 7, 1, incr());
    assert_eq!(answer(&first), answer(&retry));
    assert!(
        retry.iter().all(|e| matches!(e, Effect::Reply(_))),
        "no second write"
    );
    let read = Op::CrdtRead {
        key: b("c"),
        kind: CrdtKind::PnCounter,
    };
    assert_eq!(
        answer(&request(&mut a, 2, 9, 0, read)),
        Ok(Output::Crdt(CrdtValue::Counter(5)))
    );
}

#[test]
fn counters_incremented_on_two_primaries_merge_to_the_sum() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut b_node = node(2, MultiPrimaryConfig::default());
    let from_a = request(
        &mut a,
        0,
        7,
        1,
        Op::CrdtUpdate {
            key: b("c"),
            op: CrdtOp::Add(5),
        },
    );
    let from_b = request(
        &mut b_node,
        0,
        8,
        1,
        Op::CrdtUpdate {
            key: b("c"),
            op: CrdtOp::Add(-2),
        },
    );
    deliver_all(&from_a, 1, &mut b_node, 1);
    deliver_all(&from_b, 2, &mut a, 1);
    let read = Op::CrdtRead {
        key: b("c"),
        kind: CrdtKind::PnCounter,
    };
    for replica in [&mut a, &mut b_node] {
        let value = answer(&request(replica, 2, 9, 0, read.clone()));
        assert_eq!(value, Ok(Output::Crdt(CrdtValue::Counter(3))));
    }
}

#[test]
fn anti_entropy_repairs_what_replication_lost() {
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut b_node = node(2, MultiPrimaryConfig::default());
    for i in 0..20 {
        // Replication messages to node 2 are all lost.
        request(
            &mut a,
            0,
            7,
            i + 1,
            Op::Put {
                key: b(&format!("k{i}")),
                value: b("v"),
            },
        );
    }
    anti_entropy_round(&mut a, &mut b_node);
    assert_eq!(b_node.entries(), a.entries(), "the replicas converged");
    assert_eq!(b_node.stats().anti_entropy_repairs, 20);
}

#[test]
fn resolution_is_chosen_per_key_and_unsupported_operations_are_refused() {
    let config = MultiPrimaryConfig {
        resolution: Resolution::VersionVectors,
        resolution_by_prefix: vec![(b("lww/"), Resolution::Lww)],
        ..MultiPrimaryConfig::default()
    };
    let mut a = node(1, config);
    let refused = answer(&request(
        &mut a,
        0,
        7,
        0,
        Op::GetSiblings { key: b("lww/x") },
    ));
    assert!(matches!(refused, Err(ClientError::Rejected(why)) if why.contains("last-write-wins")));
    assert!(matches!(
        answer(&request(
            &mut a,
            0,
            7,
            0,
            Op::GetSiblings { key: b("vv/x") }
        )),
        Ok(Output::Siblings { .. })
    ));
    let append = Op::Append {
        key: b("k"),
        value: b("x"),
    };
    assert!(matches!(
        answer(&request(&mut a, 0, 7, 1, append)),
        Err(ClientError::Rejected(_))
    ));
    let admin = Input::Admin(quorate_core::AdminRequest {
        client: ClientId(9),
        seq: 1,
        command: quorate_core::AdminCommand::RemoveNode(n(3)),
    });
    assert!(matches!(
        answer(&step(&mut a, Time::ZERO, admin)),
        Err(ClientError::Rejected(_))
    ));
}

#[test]
fn a_restarted_node_keeps_its_entries_sessions_and_clock() {
    let mut a = node(1, lww(LwwClock::Hlc));
    let effects = request(
        &mut a,
        1_000,
        7,
        1,
        Op::Put {
            key: b("k"),
            value: b("x"),
        },
    );
    let durable: Vec<Record> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Persist(record) => Some(record),
            _ => None,
        })
        .collect();
    let clock = a.clock();
    let mut restarted = MultiPrimary::new(n(1), &[n(1), n(2), n(3)], lww(LwwClock::Hlc));
    step(
        &mut restarted,
        Time::ZERO,
        Input::Start { recovered: durable },
    );
    assert!(restarted.clock() >= clock);
    let retry = request(
        &mut restarted,
        0,
        7,
        1,
        Op::Put {
            key: b("k"),
            value: b("x"),
        },
    );
    assert_eq!(retry.len(), 1, "the retry is answered from the session");
    let read = answer(&request(&mut restarted, 0, 9, 0, Op::Get { key: b("k") }));
    assert_eq!(read, Ok(Output::Value(Some(b("x")))));
}

#[test]
fn a_restarted_node_keeps_its_clock_past_a_replicated_write_it_stored() {
    // Node 1's clock is 10 s ahead of node 2's. Node 2 stores node 1's write as a replica
    // (the record names no write of its own, so only the stored register carries the stamp),
    // restarts, and must still stamp its next write after the one it stored.
    let ahead = 10_000_000_000;
    let mut a = node(1, lww(LwwClock::Hlc));
    let put = |value: &str| Op::Put {
        key: b("k"),
        value: b(value),
    };
    let from_a = request(&mut a, ahead, 7, 1, put("first"));
    let mut b_node = node(2, lww(LwwClock::Hlc));
    let mut durable = Vec::new();
    for effect in &from_a {
        if let Effect::Send { to, msg } = effect {
            if *to == n(2) {
                let input = Input::Message {
                    from: n(1),
                    msg: msg.clone(),
                };
                for effect in step(&mut b_node, Time::from_nanos(1_000), input) {
                    if let Effect::Persist(record) = effect {
                        durable.push(record);
                    }
                }
            }
        }
    }
    assert!(
        matches!(&durable[..], [Record::Applied { write: None, .. }]),
        "{durable:?}"
    );
    let mut restarted = MultiPrimary::new(n(2), &[n(1), n(2), n(3)], lww(LwwClock::Hlc));
    step(
        &mut restarted,
        Time::ZERO,
        Input::Start { recovered: durable },
    );
    assert!(restarted.clock() >= a.clock(), "the clock went back");
    request(&mut restarted, 2_000, 8, 1, put("second"));
    let read = answer(&request(
        &mut restarted,
        3_000,
        9,
        0,
        Op::Get { key: b("k") },
    ));
    assert_eq!(read, Ok(Output::Value(Some(b("second")))));
}

#[test]
fn a_write_with_a_context_to_a_last_write_wins_key_is_refused() {
    let config = MultiPrimaryConfig {
        resolution: Resolution::VersionVectors,
        resolution_by_prefix: vec![(b("lww/"), Resolution::Lww)],
        ..MultiPrimaryConfig::default()
    };
    let mut a = node(1, config);
    let effects = request(
        &mut a,
        0,
        7,
        1,
        put_with("lww/x", "v", CausalContext::new()),
    );
    assert!(
        matches!(answer(&effects), Err(ClientError::Rejected(why)) if why.contains("put_with_context")),
        "{effects:?}"
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::Persist(_))));
    assert!(a.entries().is_empty(), "nothing was written");
    // The same write to a version-vector key is taken.
    let effects = request(&mut a, 0, 7, 2, put_with("vv/x", "v", CausalContext::new()));
    assert!(answer(&effects).is_ok(), "{effects:?}");
    assert_eq!(a.entries().len(), 1);
}

#[test]
fn the_checker_totals_each_nodes_counters_once_across_steps_and_restarts() {
    use quorate_core::Invariants;
    fn set(node: &mut MultiPrimary, value: u64) {
        node.stats = MultiPrimaryStats {
            writes: value,
            replication_merges: value,
            anti_entropy_repairs: value,
            clock_refusals: value,
            lww_lost_on_arrival: value,
            siblings_max: value,
            sibling_limit_refusals: value,
            sibling_limit_exceeded: value,
        };
    }
    let mut checker = MultiPrimarySafety::new();
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut b_node = node(2, MultiPrimaryConfig::default());
    set(&mut a, 2);
    checker.after_step(n(1), &a, &[]).unwrap();
    set(&mut b_node, 3);
    checker.after_step(n(2), &b_node, &[]).unwrap();
    checker.after_step(n(1), &a, &[]).unwrap(); // Nothing new: counted once.
    set(&mut a, 5);
    checker.after_step(n(1), &a, &[]).unwrap(); // 3 more at node 1.
                                                // Node 2 crashes and restarts with its counters at zero: what it counted before stays.
    checker.on_crash(n(2));
    let mut restarted = node(2, MultiPrimaryConfig::default());
    set(&mut restarted, 1);
    checker.after_step(n(2), &restarted, &[]).unwrap();
    let counters: BTreeMap<&str, u64> = checker.counters().into_iter().collect();
    for name in [
        "writes",
        "replication_merges",
        "anti_entropy_repairs",
        "clock_refusals",
        "lww_lost_on_arrival",
        "sibling_limit_refusals",
        "sibling_limit_exceeded",
    ] {
        assert_eq!(counters[name], 5 + 3 + 1, "{name}: {counters:?}");
    }
    assert_eq!(counters["concurrent_siblings"], 0);
}

#[test]
fn anti_entropy_repairs_a_lost_g_counter_increment() {
    // A CRDT entry is placed in the Merkle tree by its key and kind (`Slot::position_bytes`);
    // the G-counter is the first kind. Its increment's replication to node 2 is lost.
    let mut a = node(1, MultiPrimaryConfig::default());
    let mut b_node = node(2, MultiPrimaryConfig::default());
    let incr = Op::CrdtUpdate {
        key: b("g"),
        op: CrdtOp::Increment(3),
    };
    request(&mut a, 0, 7, 1, incr);
    anti_entropy_round(&mut a, &mut b_node);
    assert_eq!(b_node.entries(), a.entries(), "the replicas converged");
    let read = Op::CrdtRead {
        key: b("g"),
        kind: CrdtKind::GCounter,
    };
    assert_eq!(
        answer(&request(&mut b_node, 1, 9, 0, read)),
        Ok(Output::Crdt(CrdtValue::Counter(3)))
    );
    assert_eq!(b_node.stats().anti_entropy_repairs, 1);
}

#[test]
fn a_crdt_entry_is_placed_by_its_key_a_zero_byte_and_its_kind_plus_one() {
    // Placement only (every node computes the same bytes), but the tree's leaves and hashes
    // follow from it: pinned so that a change is deliberate.
    assert_eq!(Slot::Register(b("k")).position_bytes(), b"k".to_vec());
    for (kind, byte) in [
        (CrdtKind::GCounter, 1),
        (CrdtKind::PnCounter, 2),
        (CrdtKind::OrSet, 3),
        (CrdtKind::LwwRegister, 4),
        (CrdtKind::MvRegister, 5),
    ] {
        assert_eq!(
            Slot::Crdt(b("k"), kind).position_bytes(),
            vec![b'k', 0, byte]
        );
    }
}

#[test]
fn entries_of_different_kinds_do_not_merge() {
    // Unreachable from a node (`fits` refuses an entry of another kind than its slot before
    // merging), so this pins `Entry::merge`'s own refusal: no change, and no panic from
    // `Crdt::merge`.
    let mut counter = Entry::Crdt(quorate_core::crdt::Crdt::new(CrdtKind::GCounter));
    let before = counter.clone();
    let set = Entry::Crdt(quorate_core::crdt::Crdt::new(CrdtKind::OrSet));
    assert!(!counter.merge(&set));
    assert_eq!(counter, before);
}

#[test]
fn a_config_that_cannot_work_is_refused_with_its_reason() {
    assert_eq!(MultiPrimaryConfig::default().validate(), Ok(()));
    let refused = |config: MultiPrimaryConfig| config.validate().unwrap_err();
    for depth in [0, crate::merkle::DEPTH_MAX + 1] {
        let config = MultiPrimaryConfig {
            merkle_depth: depth,
            ..MultiPrimaryConfig::default()
        };
        assert!(refused(config).contains("merkle_depth"), "depth {depth}");
    }
    let ms = std::time::Duration::from_millis;
    let intervals = |min: u64, max: u64| MultiPrimaryConfig {
        anti_entropy_interval_min: ms(min),
        anti_entropy_interval_max: ms(max),
        ..MultiPrimaryConfig::default()
    };
    assert_eq!(
        intervals(50, 50).validate(),
        Ok(()),
        "a fixed interval works"
    );
    for (min, max) in [(51, 50), (0, 50)] {
        assert!(refused(intervals(min, max)).contains("anti-entropy intervals"));
    }
    // Each bound set to zero, alone, is refused.
    let zeroed: [fn(&mut MultiPrimaryConfig); 4] = [
        |c| c.sessions_max = 0,
        |c| c.checkpoint_every = 0,
        |c| c.entries_per_message_max = 0,
        |c| c.max_siblings = 0,
    ];
    for (bound, zero) in zeroed.iter().enumerate() {
        let mut config = MultiPrimaryConfig::default();
        zero(&mut config);
        assert!(
            refused(config).contains("must be positive"),
            "bound {bound}"
        );
    }
}

#[test]
fn a_delete_answers_whether_the_key_held_a_live_value() {
    // Under version vectors (siblings, the default) and under last-write-wins alike.
    for config in [MultiPrimaryConfig::default(), lww(LwwClock::Hlc)] {
        let mut a = node(1, config);
        let delete = || Op::Delete { key: b("k") };
        let put = Op::Put {
            key: b("k"),
            value: b("x"),
        };
        let existed = |effects: Vec<Effect<MultiPrimary>>| answer(&effects);
        assert_eq!(
            existed(request(&mut a, 1, 7, 1, delete())),
            Ok(Output::Existed(false)),
            "never written"
        );
        request(&mut a, 2, 7, 2, put);
        assert_eq!(
            existed(request(&mut a, 3, 7, 3, delete())),
            Ok(Output::Existed(true))
        );
        assert_eq!(
            existed(request(&mut a, 4, 7, 4, delete())),
            Ok(Output::Existed(false)),
            "already deleted"
        );
    }
}

/// Each of the node's own invariants that its fields reach fires on a copy of a node holding
/// a register and a counter, put into the state it forbids; the uncorrupted node passes. The
/// session table's bookkeeping is private to `session.rs`, out of reach here.
#[test]
fn each_invariant_of_the_node_fires_on_the_state_it_forbids() {
    use crate::effects::invariant_fired as fired;
    use quorate_core::crdt::Crdt;
    let mut a = node(1, MultiPrimaryConfig::default());
    let put = Op::Put {
        key: b("k"),
        value: b("v"),
    };
    request(&mut a, 0, 7, 1, put);
    let incr = Op::CrdtUpdate {
        key: b("c"),
        op: CrdtOp::Add(5),
    };
    request(&mut a, 1, 8, 1, incr);
    assert_eq!(a.entries.len(), 2);
    a.check_invariants();
    let another_kind = |node: &mut MultiPrimary| {
        let crdt = Entry::Crdt(Crdt::new(CrdtKind::OrSet));
        node.entries
            .insert(Slot::Crdt(b("c"), CrdtKind::PnCounter), crdt);
    };
    assert!(fired(&a, another_kind).contains("a CRDT stored under another kind"));
    let register = Slot::Register(b("k"));
    let crdt = Entry::Crdt(Crdt::new(CrdtKind::PnCounter));
    let expected = format!("{register:?} holds {crdt:?}");
    let register_holds_a_crdt = move |node: &mut MultiPrimary| {
        node.entries.insert(register, crdt);
    };
    assert_eq!(fired(&a, register_holds_a_crdt), expected);
}

/// Blind writes at two primaries, each within `max_siblings` where it was accepted, merge
/// into more siblings than the limit: all are kept (nothing accepted is lost), and the merge
/// that leaves the key above the limit is counted (`sibling_limit_exceeded`).
#[test]
fn a_merge_that_leaves_a_key_above_max_siblings_keeps_them_all_and_is_counted() {
    let config = MultiPrimaryConfig {
        max_siblings: 2,
        ..MultiPrimaryConfig::default()
    };
    let mut a = node(1, config.clone());
    let mut b_node = node(2, config);
    let put = |value: &str| Op::Put {
        key: b("k"),
        value: b(value),
    };
    request(&mut a, 0, 7, 1, put("x"));
    let first = request(&mut b_node, 0, 8, 1, put("y"));
    let second = request(&mut b_node, 0, 9, 1, put("z"));
    deliver_all(&first, 2, &mut a, 1);
    assert_eq!(siblings(&mut a, "k").0.len(), 2);
    assert_eq!(
        a.stats().sibling_limit_exceeded,
        0,
        "at the limit, not above"
    );
    deliver_all(&second, 2, &mut a, 1);
    assert_eq!(siblings(&mut a, "k").0, vec![b("x"), b("y"), b("z")]);
    assert_eq!(a.stats().sibling_limit_exceeded, 1);
}
