//! Scenario tests: exact inputs to nodes, exact effects out, in the order of the module docs.

use super::*;
use crate::effects::sends;
use bytes::Bytes;
use quorate_core::{Effect, Op, Output, ReadMode, Request};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn members(size: u64) -> Vec<NodeId> {
    (1..=size).map(n).collect()
}

fn started(id: u64, size: u64, config: QuorumConfig) -> Quorum {
    let mut node = Quorum::new(n(id), &members(size), config);
    step(&mut node, Input::Start { recovered: vec![] });
    node
}

fn step(node: &mut Quorum, input: Input<Quorum>) -> Vec<Effect<Quorum>> {
    step_at(node, Time::ZERO, input)
}

fn step_at(node: &mut Quorum, now: Time, input: Input<Quorum>) -> Vec<Effect<Quorum>> {
    let mut out = Effects::new();
    node.step(now, input, &mut out);
    node.check_invariants();
    out.drain().collect()
}

fn deliver(node: &mut Quorum, from: u64, msg: Message) -> Vec<Effect<Quorum>> {
    step(node, Input::Message { from: n(from), msg })
}

fn replies(effects: &[Effect<Quorum>]) -> Vec<Result<Output, ClientError>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(reply) => Some(reply.result.clone()),
            _ => None,
        })
        .collect()
}

fn request(client: u64, seq: u64, op: Op) -> Input<Quorum> {
    Input::Request(Request {
        client: ClientId(client),
        seq,
        op,
        read: ReadMode::Linearizable,
        quorum: None,
    })
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: b(key),
        value: b(value),
    }
}

fn get(key: &str) -> Op {
    Op::Get { key: b(key) }
}

fn at(counter: u64, writer: u64, value: Option<&str>) -> Versioned {
    Versioned {
        version: Version {
            counter,
            writer: n(writer),
        },
        value: value.map(b),
    }
}

/// The op id of the first query the effects send.
fn first_op(effects: &[Effect<Quorum>]) -> OpId {
    sends(effects)
        .into_iter()
        .find_map(|(_, msg)| match msg {
            Message::Query { op, .. } | Message::Store { op: Some(op), .. } => Some(op),
            _ => None,
        })
        .expect("the coordinator sent a query or a store")
}

/// A 3-node cluster with N = 3: every node replicates every key.
fn three() -> QuorumConfig {
    QuorumConfig::default()
}

// -------------------------------------------------------------------------------------------
// Configuration.

#[test]
fn r_plus_w_not_above_n_is_refused_unless_partial_quorums_are_allowed() {
    let config = QuorumConfig {
        n: 3,
        r: 1,
        w: 2,
        ..QuorumConfig::default()
    };
    let err = config.validate(5).unwrap_err();
    assert!(err.contains("R + W = 3 is not more than N = 3"), "{err}");
    let partial = QuorumConfig {
        allow_partial: true,
        ..config
    };
    assert!(partial.validate(5).is_ok());
    assert!(!partial.linearizable());
    let sloppy = QuorumConfig {
        sloppy: true,
        ..QuorumConfig::default()
    };
    assert!(sloppy.validate(5).unwrap_err().contains("sloppy"));
    assert!(QuorumConfig::default()
        .validate(2)
        .unwrap_err()
        .contains("N = 3"));
}

#[test]
fn a_config_that_cannot_work_is_refused_with_its_reason() {
    let ok = QuorumConfig::default();
    assert_eq!(ok.validate(5), Ok(()));
    let refused = |config: QuorumConfig| config.validate(5).unwrap_err();
    // The ring and the Merkle tree: each bound alone refuses.
    let shape = "vnodes must be positive and merkle_depth between 1 and 4";
    let vnodes = QuorumConfig {
        vnodes: 0,
        ..ok.clone()
    };
    assert_eq!(refused(vnodes), shape);
    for merkle_depth in [0, 5] {
        let config = QuorumConfig {
            merkle_depth,
            ..ok.clone()
        };
        assert_eq!(refused(config), shape);
    }
    for merkle_depth in [1, 4] {
        let config = QuorumConfig {
            merkle_depth,
            ..ok.clone()
        };
        assert_eq!(config.validate(5), Ok(()));
    }
    // Anti-entropy's interval is a range: a fixed one is accepted, min > max is not.
    let interval = |min: u64, max: u64| QuorumConfig {
        anti_entropy_interval_min: Duration::from_millis(min),
        anti_entropy_interval_max: Duration::from_millis(max),
        ..ok.clone()
    };
    assert_eq!(interval(150, 150).validate(5), Ok(()));
    assert!(refused(interval(201, 200)).contains("exceeds"));
    let positive = "bounds and intervals must be positive";
    let zeroed = [
        QuorumConfig {
            inflight_max: 0,
            ..ok.clone()
        },
        QuorumConfig {
            sessions_max: 0,
            ..ok.clone()
        },
        QuorumConfig {
            checkpoint_every: 0,
            ..ok.clone()
        },
        QuorumConfig {
            hints_max: 0,
            ..ok.clone()
        },
        QuorumConfig {
            handoff_batch_max: 0,
            ..ok.clone()
        },
        QuorumConfig {
            retry_interval: Duration::ZERO,
            ..ok.clone()
        },
    ];
    for config in zeroed {
        assert_eq!(refused(config), positive);
    }
}

#[test]
fn the_seeds_presets_all_intersect() {
    for (preset, r, w) in [
        (Preset::Strong, 3, 3),
        (Preset::ReadOptimized, 2, 4),
        (Preset::WriteOptimized, 4, 2),
    ] {
        let config = QuorumConfig::preset(preset);
        assert_eq!((config.n, config.r, config.w), (5, r, w));
        assert!(config.validate(5).is_ok() && config.linearizable());
    }
}

#[test]
fn a_request_may_ask_for_its_own_quorum_sizes_within_the_rules() {
    let mut node = started(1, 3, three());
    let mut asking = |r, w| {
        step(
            &mut node,
            Input::Request(Request {
                quorum: Some(QuorumSizes { r, w }),
                ..match request(7, 1, get("k")) {
                    Input::Request(request) => request,
                    _ => unreachable!(),
                }
            }),
        )
    };
    let refused = replies(&asking(1, 1));
    assert!(
        matches!(&refused[..], [Err(ClientError::Rejected(why))] if why.contains("stale")),
        "{refused:?}"
    );
    let effects = asking(3, 1);
    assert_eq!(sends(&effects).len(), 3, "R = 3 still asks all three");
}

// -------------------------------------------------------------------------------------------
// Steps 1 and 2: writes.

#[test]
fn a_write_reads_versions_then_persists_its_version_before_storing_it() {
    let mut node = started(1, 3, three());
    let effects = step(&mut node, request(7, 1, put("k", "x")));
    let queries = sends(&effects);
    assert_eq!(
        queries.len(),
        3,
        "the query goes to the whole preference list"
    );
    let op = first_op(&effects);
    deliver(
        &mut node,
        2,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(4, 3, Some("old")),
        },
    );
    let effects = deliver(
        &mut node,
        3,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: Versioned::absent(),
        },
    );
    // R = 2 answers: the version is one above the highest seen, written by this node.
    let expected = at(5, 1, Some("x"));
    match &effects[0] {
        Effect::Persist(Record::Assigned { client, assigned }) => {
            assert_eq!(*client, ClientId(7));
            assert_eq!(assigned.stored, expected);
            assert!(assigned.existed);
        }
        other => panic!("expected the assignment to be persisted first, got {other:?}"),
    }
    let stores = sends(&effects);
    assert_eq!(stores.len(), 3);
    assert!(stores.iter().all(
        |(_, m)| matches!(m, Message::Store { stored, hint: None, .. } if *stored == expected)
    ));
    // W = 2 acknowledgements complete the write.
    let ack = |node: &mut Quorum, from| {
        deliver(
            node,
            from,
            Message::StoreAck {
                op,
                key: b("k"),
                version: expected.version,
            },
        )
    };
    assert!(replies(&ack(&mut node, 2)).is_empty());
    assert_eq!(replies(&ack(&mut node, 3)), vec![Ok(Output::Done)]);
}

#[test]
fn concurrent_writers_that_see_the_same_version_never_collide() {
    let mut versions = Vec::new();
    for coordinator in [1, 2] {
        let mut node = started(coordinator, 3, three());
        let op = first_op(&step(&mut node, request(coordinator, 1, put("k", "v"))));
        for from in [1, 3] {
            let effects = deliver(
                &mut node,
                from,
                Message::QueryReply {
                    op,
                    key: b("k"),
                    stored: at(9, 3, Some("a")),
                },
            );
            for effect in effects {
                if let Effect::Persist(Record::Assigned { assigned, .. }) = effect {
                    versions.push(assigned.stored.version);
                }
            }
        }
    }
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].counter, versions[1].counter, "same counter...");
    assert_ne!(versions[0], versions[1], "...different writers");
}

#[test]
fn a_retried_write_stores_the_same_version_even_after_a_restart() {
    let mut node = started(1, 3, three());
    let op = first_op(&step(&mut node, request(7, 1, put("k", "x"))));
    let mut durable = vec![Record::Incarnation(1)];
    for from in [2, 3] {
        for effect in deliver(
            &mut node,
            from,
            Message::QueryReply {
                op,
                key: b("k"),
                stored: Versioned::absent(),
            },
        ) {
            if let Effect::Persist(record) = effect {
                durable.push(record);
            }
        }
    }
    // The coordinator crashes before any acknowledgement, and restarts.
    let mut node = Quorum::new(n(1), &members(3), three());
    step(&mut node, Input::Start { recovered: durable });
    let effects = step(&mut node, request(7, 1, put("k", "x")));
    let stores: Vec<_> = sends(&effects)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Store { stored, .. } => Some(stored),
            _ => None,
        })
        .collect();
    assert_eq!(stores.len(), 3, "no new read phase: straight to storing");
    assert!(stores.iter().all(|s| *s == at(1, 1, Some("x"))));
    // A new write after the restart never reuses that counter.
    let op = first_op(&step(&mut node, request(8, 1, put("k", "y"))));
    let effects = deliver(
        &mut node,
        2,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: Versioned::absent(),
        },
    );
    let effects = [
        effects,
        deliver(
            &mut node,
            3,
            Message::QueryReply {
                op,
                key: b("k"),
                stored: Versioned::absent(),
            },
        ),
    ]
    .concat();
    let assigned = effects.iter().find_map(|e| match e {
        Effect::Persist(Record::Assigned { assigned, .. }) => Some(assigned.stored.version),
        _ => None,
    });
    assert_eq!(
        assigned,
        Some(Version {
            counter: 2,
            writer: n(1)
        })
    );
}

// -------------------------------------------------------------------------------------------
// Step 3: reads.

#[test]
fn a_read_whose_answers_agree_on_w_replicas_needs_no_write_back() {
    let mut node = started(1, 3, three());
    let op = first_op(&step(&mut node, request(7, 1, get("k"))));
    deliver(
        &mut node,
        2,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(3, 2, Some("x")),
        },
    );
    let effects = deliver(
        &mut node,
        3,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(3, 2, Some("x")),
        },
    );
    assert_eq!(replies(&effects), vec![Ok(Output::Value(Some(b("x"))))]);
    assert!(sends(&effects).is_empty());
}

#[test]
fn a_read_that_saw_a_newer_version_on_one_replica_writes_it_back_before_answering() {
    let mut node = started(1, 3, three());
    let op = first_op(&step(&mut node, request(7, 1, get("k"))));
    deliver(
        &mut node,
        2,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(3, 2, Some("new")),
        },
    );
    let effects = deliver(
        &mut node,
        3,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(2, 2, Some("old")),
        },
    );
    assert!(
        replies(&effects).is_empty(),
        "no answer before the write-back"
    );
    let stores = sends(&effects);
    assert_eq!(stores.len(), 3);
    assert!(stores.iter().all(
        |(_, m)| matches!(m, Message::Store { stored, .. } if *stored == at(3, 2, Some("new")))
    ));
    let version = at(3, 2, None).version;
    deliver(
        &mut node,
        2,
        Message::StoreAck {
            op,
            key: b("k"),
            version,
        },
    );
    let effects = deliver(
        &mut node,
        3,
        Message::StoreAck {
            op,
            key: b("k"),
            version,
        },
    );
    assert_eq!(replies(&effects), vec![Ok(Output::Value(Some(b("new"))))]);
}

#[test]
fn without_write_back_a_read_answers_at_once_and_repairs_in_the_background() {
    let config = QuorumConfig {
        write_back: false,
        ..three()
    };
    let mut node = started(1, 3, config);
    let op = first_op(&step(&mut node, request(7, 1, get("k"))));
    deliver(
        &mut node,
        2,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(3, 2, Some("new")),
        },
    );
    let effects = deliver(
        &mut node,
        3,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: at(2, 2, Some("old")),
        },
    );
    assert_eq!(replies(&effects), vec![Ok(Output::Value(Some(b("new"))))]);
    let repairs = sends(&effects);
    assert_eq!(repairs.len(), 1, "only the stale replica is repaired");
    assert!(matches!(&repairs[0], (to, Message::Store { op: None, .. }) if *to == n(3)));
}

#[test]
fn no_quorum_within_the_timeout_is_unavailable_never_a_silent_success() {
    let mut node = started(1, 3, three());
    let op = first_op(&step(&mut node, request(7, 1, put("k", "x"))));
    deliver(
        &mut node,
        2,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: Versioned::absent(),
        },
    );
    let retry = Timer::Retry(op.seq);
    let effects = step_at(&mut node, Time::from_nanos(50_000_000), Input::Timer(retry));
    assert_eq!(sends(&effects).len(), 2, "asks the silent replicas again");
    let late = Time::ZERO + node.config().request_timeout;
    let effects = step_at(&mut node, late, Input::Timer(retry));
    assert_eq!(replies(&effects), vec![Err(ClientError::Unavailable)]);
}

// -------------------------------------------------------------------------------------------
// Step 4: replicas.

#[test]
fn a_replica_keeps_only_newer_versions_and_acknowledges_after_persisting() {
    let mut node = started(2, 3, three());
    let op = OpId {
        incarnation: 1,
        seq: 0,
    };
    let store = |stored| Message::Store {
        op: Some(op),
        key: b("k"),
        stored,
        hint: None,
    };
    let effects = deliver(&mut node, 1, store(at(5, 1, Some("x"))));
    assert!(matches!(effects[0], Effect::Persist(Record::Stored { .. })));
    assert!(matches!(
        effects[1],
        Effect::Send {
            msg: Message::StoreAck { .. },
            ..
        }
    ));
    // An older version is acknowledged (the replica holds something newer) but not kept.
    let effects = deliver(&mut node, 1, store(at(4, 3, Some("y"))));
    assert!(matches!(
        &effects[..],
        [Effect::Send {
            msg: Message::StoreAck { .. },
            ..
        }]
    ));
    assert_eq!(node.stored(b"k"), at(5, 1, Some("x")));
}

#[test]
fn appends_cas_and_membership_changes_are_refused() {
    let mut node = started(1, 3, three());
    let append = Op::Append {
        key: b("k"),
        value: b("x"),
    };
    let refused = replies(&step(&mut node, request(7, 1, append)));
    assert!(matches!(&refused[..], [Err(ClientError::Rejected(why))] if why.contains("consensus")));
    let admin = Input::Admin(quorate_core::AdminRequest {
        client: ClientId(9),
        seq: 1,
        command: quorate_core::AdminCommand::AddVoter(n(4)),
    });
    assert!(matches!(
        &replies(&step(&mut node, admin))[..],
        [Err(ClientError::Rejected(_))]
    ));
}

// -------------------------------------------------------------------------------------------
// Repair: sloppy quorums, hinted handoff, anti-entropy.

#[test]
fn a_sloppy_quorum_stores_hints_on_stand_ins_that_hand_them_back() {
    let config = QuorumConfig {
        n: 2,
        r: 1,
        w: 2,
        allow_partial: true,
        sloppy: true,
        ..QuorumConfig::default()
    };
    let coordinator_id = 1;
    let mut coordinator = started(coordinator_id, 4, config.clone());
    let home = coordinator.preference_list(b"k");
    let walk = coordinator.ring().walk(b"k");
    let stand_in = walk[2];
    let op = first_op(&step(&mut coordinator, request(7, 1, put("k", "x"))));
    let effects = deliver(
        &mut coordinator,
        home[0].0,
        Message::QueryReply {
            op,
            key: b("k"),
            stored: Versioned::absent(),
        },
    );
    let stored = match &sends(&effects)[0].1 {
        Message::Store { stored, .. } => stored.clone(),
        other => panic!("{other:?}"),
    };
    let version = stored.version;
    deliver(
        &mut coordinator,
        home[0].0,
        Message::StoreAck {
            op,
            key: b("k"),
            version,
        },
    );
    // home[1] stays silent: the retry enlists the next node on the ring, with a hint.
    let effects = step_at(
        &mut coordinator,
        Time::from_nanos(1),
        Input::Timer(Timer::Retry(op.seq)),
    );
    let hinted = sends(&effects).into_iter().find(|(to, _)| *to == stand_in);
    let Some((
        _,
        Message::Store {
            hint: Some(for_home),
            ..
        },
    )) = hinted
    else {
        panic!("no hinted store to {stand_in}: {effects:?}")
    };
    assert_eq!(for_home, home[1]);
    // The stand-in holds the hint, acknowledges it, and it counts towards W.
    let mut helper = started(stand_in.0, 4, config.clone());
    let msg = Message::Store {
        op: Some(op),
        key: b("k"),
        stored: stored.clone(),
        hint: Some(home[1]),
    };
    let effects = step(
        &mut helper,
        Input::Message {
            from: n(coordinator_id),
            msg,
        },
    );
    assert_eq!(helper.hints_held(), 1);
    assert!(!helper.is_home(b"k"));
    assert_eq!(sends(&effects).len(), 1);
    let effects = step(
        &mut coordinator,
        Input::Message {
            from: stand_in,
            msg: Message::StoreAck {
                op,
                key: b("k"),
                version,
            },
        },
    );
    assert_eq!(replies(&effects), vec![Ok(Output::Done)]);
    // Handoff: the stand-in offers the write to its home, which keeps it and acknowledges.
    let offers = sends(&step(&mut helper, Input::Timer(Timer::Handoff)));
    let [(to, offer)] = &offers[..] else {
        panic!("{offers:?}")
    };
    assert_eq!(*to, home[1]);
    let mut owner = started(home[1].0, 4, config);
    let effects = step(
        &mut owner,
        Input::Message {
            from: stand_in,
            msg: offer.clone(),
        },
    );
    assert_eq!(owner.stored(b"k"), stored);
    let [(_, ack)] = &sends(&effects)[..] else {
        panic!()
    };
    step(
        &mut helper,
        Input::Message {
            from: home[1],
            msg: ack.clone(),
        },
    );
    assert_eq!(helper.hints_held(), 0);
}

#[test]
fn anti_entropy_finds_and_repairs_the_one_key_that_differs() {
    let mut a = started(1, 3, three());
    let mut b_node = started(2, 3, three());
    let op = OpId {
        incarnation: 1,
        seq: 0,
    };
    for i in 0..40 {
        let key = b(&format!("k{i}"));
        let msg = Message::Store {
            op: Some(op),
            key,
            stored: at(1, 1, Some("v")),
            hint: None,
        };
        deliver(&mut a, 3, msg.clone());
        if i != 17 {
            deliver(&mut b_node, 3, msg);
        }
    }
    // a starts an exchange with its first peer, node 2; messages bounce until the leaves.
    let mut in_flight = sends(&step(&mut a, Input::Timer(Timer::AntiEntropy)));
    let mut rounds = 0;
    while let Some((to, msg)) = in_flight.pop() {
        rounds += 1;
        assert!(rounds < 20, "the exchange does not end");
        in_flight.extend(if to == n(2) {
            deliver(&mut b_node, 1, msg)
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Send { to, msg } => Some((to, msg)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        } else {
            deliver(&mut a, 2, msg)
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Send { to, msg } => Some((to, msg)),
                    _ => None,
                })
                .collect()
        });
    }
    assert_eq!(b_node.stored(b"k17"), at(1, 1, Some("v")));
    assert_eq!(
        b_node.stats().anti_entropy_repairs,
        1,
        "only the missing key moved"
    );
}

#[test]
fn a_write_retried_during_its_read_phase_gets_one_version() {
    let mut node = started(1, 3, three());
    let op = first_op(&step(&mut node, request(7, 1, put("k", "x"))));
    // The client times out and resends before the read phase finished: nothing new starts.
    assert!(step(&mut node, request(7, 1, put("k", "x"))).is_empty());
    let mut assigned = 0;
    for from in [2, 3] {
        let reply = Message::QueryReply {
            op,
            key: b("k"),
            stored: Versioned::absent(),
        };
        let effects = deliver(&mut node, from, reply);
        assigned += effects
            .iter()
            .filter(|e| matches!(e, Effect::Persist(Record::Assigned { .. })))
            .count();
    }
    assert_eq!(assigned, 1);
}

/// A write that names this node as the home it stands in for is this node's own write: kept in
/// its store, not held as a hint for itself.
#[test]
fn a_hinted_store_naming_this_node_as_home_is_stored_as_its_own() {
    let mut node = started(2, 3, three());
    let stored = at(1, 1, Some("x"));
    let op = OpId {
        incarnation: 1,
        seq: 1,
    };
    let effects = deliver(
        &mut node,
        1,
        Message::Store {
            op: Some(op),
            key: b("k"),
            stored: stored.clone(),
            hint: Some(n(2)),
        },
    );
    assert_eq!(node.stored(b"k"), stored);
    assert_eq!(node.hints_held(), 0);
    let version = stored.version;
    let ack = Message::StoreAck {
        op,
        key: b("k"),
        version,
    };
    assert_eq!(sends(&effects), vec![(n(1), ack)]);
}

/// Anti-entropy entries count only for keys both ends replicate: a peer's entry for a key
/// outside this node's preference list is not stored. A correct peer sends only the keys the
/// two share (`shared_entries`), so the guard is defensive; pinned all the same.
#[test]
fn anti_entropy_entries_for_a_key_this_node_does_not_replicate_are_not_stored() {
    let mut node = started(1, 5, three());
    let key = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let list = node.preference_list(k.as_bytes());
            !list.contains(&n(1)) && list.contains(&n(2))
        })
        .expect("a key of n2's but not n1's");
    let stored = at(1, 2, Some("x"));
    let leaves = Message::MerkleLeaves {
        leaves: vec![],
        entries: vec![(b(&key), stored.clone())],
        reply: false,
    };
    deliver(&mut node, 2, leaves);
    assert_ne!(node.stored(key.as_bytes()), stored);
}

/// Each of the node's own invariants that its fields reach fires on a copy of a coordinator
/// with a write in progress, put into the state it forbids; the uncorrupted node passes. The
/// session table's and the operations' own bookkeeping is private to `session.rs` and
/// `coordinator.rs`, out of reach here.
#[test]
fn each_invariant_of_the_node_fires_on_the_state_it_forbids() {
    use crate::effects::invariant_fired as fired;
    let mut node = started(1, 3, three());
    step(&mut node, request(7, 1, put("k", "x")));
    assert_eq!(node.ops.len(), 1);
    node.hints
        .entry(n(2))
        .or_default()
        .insert(b("h"), at(1, 1, Some("y")));
    node.check_invariants();
    assert_eq!(
        fired(&node, |node| node.config.inflight_max = 0),
        "inflight over its bound"
    );
    assert_eq!(
        fired(&node, |node| node.config.hints_max = 0),
        "hints over their bound"
    );
    let version_zero = |node: &mut Quorum| {
        node.store.insert(b("z"), at(0, 0, Some("z")));
    };
    assert_eq!(
        fired(&node, version_zero),
        format!("{:?} stored at version zero", b("z"))
    );
}

/// The checker's totals add each node's counters once: a step with nothing new adds nothing, a
/// later step adds only the difference, and a node restarted with its counters at zero keeps
/// what it counted before (as ZAB's and multi-primary's checker tests do).
#[test]
fn the_checker_totals_each_nodes_counters_once_across_steps_and_restarts() {
    use quorate_core::Invariants;
    fn every(value: u64) -> QuorumStats {
        QuorumStats {
            reads: value,
            writes: value,
            write_backs: value,
            one_round_reads: value,
            read_repairs: value,
            anti_entropy_repairs: value,
            hints_stored: value,
            hints_handed_off: value,
            unavailable: value,
        }
    }
    let mut checker = QuorumSafety::new();
    let mut a = started(1, 3, three());
    let mut b = started(2, 3, three());
    a.stats = every(2);
    checker.after_step(n(1), &a, &[]).unwrap();
    b.stats = every(3);
    checker.after_step(n(2), &b, &[]).unwrap();
    checker.after_step(n(1), &a, &[]).unwrap(); // Nothing new: counted once.
    a.stats = every(5);
    checker.after_step(n(1), &a, &[]).unwrap(); // 3 more at node 1.
                                                // Node 2 crashes and restarts with its counters at zero: what it counted before stays.
    checker.on_crash(n(2));
    let mut restarted = started(2, 3, three());
    restarted.stats = every(1);
    checker.after_step(n(2), &restarted, &[]).unwrap();
    assert_eq!(checker.totals(), every(5 + 3 + 1));
}
