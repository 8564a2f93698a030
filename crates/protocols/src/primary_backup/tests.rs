//! Scenario tests: feed one replica (or a small scripted cluster) exact inputs and assert the
//! exact effects, in the order of the module docs' steps.

use super::testkit::*;
use super::*;
use quorate_core::{AdminCommand, AdminRequest, Effect, ReadMode};

fn pb() -> ReplicaConfig {
    ReplicaConfig::new(Topology::PrimaryBackup)
}

/// Replica 1 of a group of `size`, primary of view 1 with its ViewStart entry at op 1.
fn primary(size: u64) -> Replica {
    primary_with(size, pb())
}

/// `primary` with `config`.
fn primary_with(size: u64, config: ReplicaConfig) -> Replica {
    let mut r = replica(1, size, config);
    step(&mut r, Input::Timer(Timer::ViewChange));
    for voter in 2..=(size / 2 + 1) {
        let vote = Message::DoViewChange {
            view: 1,
            granted: true,
            last_op: 0,
            last_view: 0,
        };
        deliver(&mut r, voter, vote);
    }
    assert!(r.is_primary());
    r
}

fn prepare_ok(view: u64, op: u64) -> Message {
    Message::PrepareOk {
        view,
        result: PrepareResult::Ok { op },
        commit: 0,
    }
}

fn group_of(size: u64) -> Group {
    Arc::new(members(size))
}

// ---------------------------------------------------------------------------------------------
// Step 4: view changes.

#[test]
fn step4_a_view_change_persists_view_and_vote_before_asking() {
    let mut r = replica(1, 3, pb());
    let effects = step(&mut r, Input::Timer(Timer::ViewChange));
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::ViewState {
            view: 1,
            vote: Some(NodeId(1)),
            boot: 1
        })
    ));
    let ask = Message::StartViewChange {
        view: 1,
        last_op: 0,
        last_view: 0,
    };
    assert_eq!(sends(&effects), vec![(n(2), ask.clone()), (n(3), ask)]);
    assert_eq!(r.status().role, quorate_core::Role::Candidate);
}

#[test]
fn step4_a_majority_of_votes_makes_a_primary_that_starts_its_view() {
    let mut r = replica(1, 3, pb());
    step(&mut r, Input::Timer(Timer::ViewChange));
    let vote = Message::DoViewChange {
        view: 1,
        granted: true,
        last_op: 0,
        last_view: 0,
    };
    let effects = deliver(&mut r, 2, vote);
    assert!(r.is_primary());
    assert_eq!(r.group(), &[n(1), n(2), n(3)]);
    let view_start = Entry {
        op: 1,
        view: 1,
        payload: Payload::ViewStart,
    };
    assert!(
        matches!(&effects[..], [.., Effect::Persist(Record::Entries(e)), _, _] if e == &vec![view_start.clone()])
    );
    for (_, msg) in sends(&effects) {
        assert!(
            matches!(msg, Message::Prepare { view: 1, prev_op: 0, ref entries, .. } if entries == &vec![view_start.clone()])
        );
    }
}

#[test]
fn step4_votes_go_only_to_a_candidate_holding_at_least_as_many_writes() {
    let mut r = replica(3, 3, pb());
    // Give replica 3 two entries of view 1.
    let entries = vec![
        Entry {
            op: 1,
            view: 1,
            payload: Payload::ViewStart,
        },
        Entry {
            op: 2,
            view: 1,
            payload: Payload::ViewStart,
        },
    ];
    let prepare = Message::Prepare {
        view: 1,
        group: group_of(3),
        prev_op: 0,
        prev_view: 0,
        entries,
        commit: 0,
    };
    deliver(&mut r, 1, prepare);
    assert_eq!(r.last_viewstamp(), (1, 2));
    let behind = Message::StartViewChange {
        view: 2,
        last_op: 1,
        last_view: 1,
    };
    let effects = deliver(&mut r, 2, behind);
    assert!(matches!(
        sends(&effects)[..],
        [(
            _,
            Message::DoViewChange {
                view: 2,
                granted: false,
                last_op: 2,
                last_view: 1
            }
        )]
    ));
    // A candidate with a later view in its last entry is more up to date, even if shorter.
    let later = Message::StartViewChange {
        view: 3,
        last_op: 1,
        last_view: 2,
    };
    let effects = deliver(&mut r, 1, later);
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::ViewState {
            view: 3,
            vote: None,
            ..
        })
    ));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Persist(Record::ViewState {
            view: 3,
            vote: Some(NodeId(1)),
            ..
        })
    )));
    assert!(matches!(
        sends(&effects)[..],
        [(
            _,
            Message::DoViewChange {
                view: 3,
                granted: true,
                ..
            }
        )]
    ));
}

#[test]
fn step4_one_vote_per_view() {
    let mut r = replica(3, 3, pb());
    let ask = |view| Message::StartViewChange {
        view,
        last_op: 0,
        last_view: 0,
    };
    let granted = |effects: &[Effect<Replica>]| {
        matches!(
            sends(effects)[..],
            [(_, Message::DoViewChange { granted: true, .. })]
        )
    };
    assert!(granted(&deliver(&mut r, 1, ask(1))));
    assert!(
        !granted(&deliver(&mut r, 2, ask(1))),
        "a second candidate of view 1"
    );
    assert!(
        granted(&deliver(&mut r, 1, ask(1))),
        "the same candidate again"
    );
    assert!(
        granted(&deliver(&mut r, 2, ask(2))),
        "a new view, a new vote"
    );
}

/// A backup that refuses a candidate behind it joins the candidate's view but keeps its own
/// view-change timer running, as Raft's election timer ignores a higher term: resetting it
/// would let a candidate that can never win put off, attempt after attempt, the candidacy of
/// the replica that can (seen under `quorate sim --protocol chain --faults all`, where crashes
/// leave such a stale replica next to an up-to-date one). A granted vote, a primary's message
/// and a primary stepping down do reset it.
#[test]
fn step4_a_refused_candidate_does_not_put_off_the_refusing_replica() {
    let view_change_timer = |effects: &[Effect<Replica>]| {
        effects.iter().any(|e| {
            matches!(
                e,
                Effect::SetTimer {
                    timer: Timer::ViewChange,
                    ..
                }
            )
        })
    };
    let mut c = Cluster::new(3, pb());
    c.elect(1, &[1, 2, 3]);
    c.exchange(&[1, 2, 3]);
    let backup = c.nodes.get_mut(&2).unwrap();
    assert_eq!(backup.last_viewstamp(), (1, 1), "n2 holds the ViewStart");
    let refused = deliver(
        backup,
        3,
        Message::StartViewChange {
            view: 2,
            last_op: 0,
            last_view: 0,
        },
    );
    assert!(matches!(
        sends(&refused)[..],
        [(
            _,
            Message::DoViewChange {
                view: 2,
                granted: false,
                ..
            }
        )]
    ));
    assert!(!view_change_timer(&refused), "a refusal keeps the timer");
    let granted = deliver(
        backup,
        1,
        Message::StartViewChange {
            view: 3,
            last_op: 1,
            last_view: 1,
        },
    );
    assert!(matches!(
        sends(&granted)[..],
        [(
            _,
            Message::DoViewChange {
                view: 3,
                granted: true,
                ..
            }
        )]
    ));
    assert!(view_change_timer(&granted), "a granted vote resets it");
    let mut deposed = c.nodes.remove(&1).unwrap();
    assert!(deposed.is_primary());
    let stepped_down = deliver(
        &mut deposed,
        3,
        Message::StartViewChange {
            view: 2,
            last_op: 0,
            last_view: 0,
        },
    );
    assert!(!deposed.is_primary());
    assert!(
        view_change_timer(&stepped_down),
        "a primary stepping down has no timer running: it starts one"
    );
}

// ---------------------------------------------------------------------------------------------
// Steps 2 and 3: normal operation.

#[test]
fn step3_the_primary_answers_only_once_a_majority_including_itself_holds_the_write() {
    let mut r = primary(5);
    deliver(&mut r, 2, prepare_ok(1, 1));
    deliver(&mut r, 3, prepare_ok(1, 1));
    assert_eq!(r.commit_number(), 1, "the ViewStart entry committed");
    step(&mut r, Input::Request(put(7, 1, "k", "v")));
    let effects = deliver(&mut r, 2, prepare_ok(1, 2));
    assert!(
        replies(&effects).is_empty(),
        "primary + 1 backup of 5 is no majority"
    );
    let effects = deliver(&mut r, 4, prepare_ok(1, 2));
    assert_eq!(
        replies(&effects).len(),
        1,
        "primary + 2 backups of 5 is a majority"
    );
    assert_eq!(replies(&effects)[0].result, Ok(Output::Done));
    assert_eq!(r.commit_number(), 2);
}

#[test]
fn step2_a_backup_persists_entries_before_it_acknowledges_them() {
    let mut r = replica(2, 3, pb());
    let prepare = Message::Prepare {
        view: 1,
        group: group_of(3),
        prev_op: 0,
        prev_view: 0,
        entries: vec![Entry {
            op: 1,
            view: 1,
            payload: Payload::ViewStart,
        }],
        commit: 0,
    };
    let effects = deliver(&mut r, 1, prepare);
    let persist = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Entries(_))))
        .expect("persisted");
    let ack = effects
        .iter()
        .position(|e| {
            matches!(
                e,
                Effect::Send {
                    msg: Message::PrepareOk { .. },
                    ..
                }
            )
        })
        .expect("acknowledged");
    assert!(persist < ack, "persist before you speak: {effects:?}");
    assert_eq!(r.primary(), Some(n(1)));
}

#[test]
fn step2_a_backup_refuses_entries_that_do_not_follow_its_log() {
    let mut r = replica(2, 3, pb());
    let prepare = Message::Prepare {
        view: 1,
        group: group_of(3),
        prev_op: 3,
        prev_view: 1,
        entries: vec![],
        commit: 0,
    };
    let effects = deliver(&mut r, 1, prepare);
    assert!(matches!(
        sends(&effects)[..],
        [(
            _,
            Message::PrepareOk {
                result: PrepareResult::Mismatch {
                    prev_op: 3,
                    conflict_view: None,
                    conflict_op: 1
                },
                ..
            }
        )]
    ));
}

#[test]
fn step2_a_heartbeat_behind_entries_in_flight_anchors_at_the_acknowledged_prefix() {
    let mut r = primary(3);
    // The ViewStart (op 1) and a write (op 2) are in flight to replica 2; it answers an older
    // heartbeat with its prefix, op 0, which acknowledges nothing new.
    step(&mut r, Input::Request(put(7, 1, "k", "v")));
    deliver(&mut r, 2, prepare_ok(1, 0));
    let effects = step(&mut r, Input::Timer(Timer::Heartbeat));
    let to_2: Vec<_> = sends(&effects)
        .into_iter()
        .filter(|(to, _)| *to == n(2))
        .collect();
    // Not op 1, which replica 2 may not hold yet: the heartbeat would fail its check.
    assert!(
        matches!(
            &to_2[..],
            [(_, Message::Prepare { prev_op: 0, prev_view: 0, entries, .. })] if entries.is_empty()
        ),
        "{to_2:?}"
    );
}

/// The Prepare of view 1 (`group`'s first node primary) carrying its ViewStart at op 1 and
/// one write at op 2.
fn view_1_ops_1_and_2(group: Vec<NodeId>) -> Message {
    Message::Prepare {
        view: 1,
        group: Arc::new(group),
        prev_op: 0,
        prev_view: 0,
        entries: vec![
            Entry {
                op: 1,
                view: 1,
                payload: Payload::ViewStart,
            },
            Entry {
                op: 2,
                view: 1,
                payload: Payload::Command(put(7, 1, "k", "v").command()),
            },
        ],
        commit: 0,
    }
}

#[test]
fn step2_a_mismatch_resumes_after_the_primarys_last_op_of_the_conflicting_view() {
    // Replica 1 holds ops 1-2 of view 1 (from primary 2), then becomes primary of view 2,
    // whose ViewStart is op 3.
    let mut r = replica(1, 3, pb());
    let prepare = view_1_ops_1_and_2(vec![n(2), n(1), n(3)]);
    deliver(&mut r, 2, prepare);
    step(&mut r, Input::Timer(Timer::ViewChange));
    let vote = Message::DoViewChange {
        view: 2,
        granted: true,
        last_op: 0,
        last_view: 0,
    };
    deliver(&mut r, 3, vote);
    assert!(r.is_primary());
    // Replica 3's log conflicts at op 2 with entries of view 1: the primary resumes after its
    // own last op of view 1 (op 2, capped by the rejected prev_op 2), so its next Prepare
    // carries op 2 onwards, not op 1.
    let mismatch = Message::PrepareOk {
        view: 2,
        result: PrepareResult::Mismatch {
            prev_op: 2,
            conflict_view: Some(1),
            conflict_op: 1,
        },
        commit: 0,
    };
    let effects = deliver(&mut r, 3, mismatch);
    let firsts: Vec<_> = sends(&effects)
        .into_iter()
        .filter_map(|(to, msg)| match msg {
            Message::Prepare {
                prev_op, entries, ..
            } if to == n(3) => Some((prev_op, entries.first().map(|e| e.op))),
            _ => None,
        })
        .collect();
    assert_eq!(firsts, vec![(1, Some(2))]);
}

/// Replica 2 holds ops 1-3 but its answers were lost: at the tick the primary resends from op
/// 1, one entry per Prepare. The late answer for op 3 then moves the primary past op 3: it
/// sends nothing more, not op 3 again.
#[test]
fn step2_a_late_answer_beyond_a_retransmission_moves_the_primary_past_it() {
    let config = ReplicaConfig {
        entries_per_prepare_max: 1,
        ..pb()
    };
    let mut r = primary_with(3, config);
    for seq in 1..=2 {
        step(&mut r, Input::Request(put(7, seq, "k", "v")));
    }
    let ops_to_2 = |effects: &[Effect<Replica>]| -> Vec<u64> {
        sends(effects)
            .into_iter()
            .filter(|(to, _)| *to == n(2))
            .flat_map(|(_, msg)| match msg {
                Message::Prepare { entries, .. } => entries.iter().map(|e| e.op).collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    let effects = step(&mut r, Input::Timer(Timer::Heartbeat));
    assert_eq!(ops_to_2(&effects), vec![1], "resent from op 1");
    let effects = deliver(&mut r, 2, prepare_ok(1, 3));
    assert_eq!(ops_to_2(&effects), Vec::<u64>::new(), "{effects:?}");
}

/// A backup whose last entry conflicts with the Prepare's previous entry names that entry's
/// view and the op where the view began in its log, so that the primary can skip the view.
#[test]
fn step2_a_backup_names_the_view_of_its_conflicting_last_entry_and_where_it_began() {
    let mut r = replica(2, 3, pb());
    let view_1 = view_1_ops_1_and_2(vec![n(1), n(2), n(3)]);
    deliver(&mut r, 1, view_1);
    // Primary 3 of view 2 holds op 1 of view 1 and its own ViewStart at op 2.
    let view_2 = Message::Prepare {
        view: 2,
        group: Arc::new(vec![n(3), n(2), n(1)]),
        prev_op: 2,
        prev_view: 2,
        entries: vec![],
        commit: 0,
    };
    let effects = deliver(&mut r, 3, view_2);
    let answers: Vec<_> = sends(&effects)
        .into_iter()
        .filter_map(|(to, msg)| match msg {
            Message::PrepareOk { result, .. } if to == n(3) => Some(result),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            answers[..],
            [PrepareResult::Mismatch {
                prev_op: 2,
                conflict_view: Some(1),
                conflict_op: 1
            }]
        ),
        "{answers:?}"
    );
}

#[test]
fn step2_writes_at_a_backup_are_redirected_to_the_primary() {
    let mut r = replica(2, 3, pb());
    let heartbeat = Message::Prepare {
        view: 1,
        group: group_of(3),
        prev_op: 0,
        prev_view: 0,
        entries: vec![],
        commit: 0,
    };
    deliver(&mut r, 1, heartbeat);
    let effects = step(&mut r, Input::Request(put(7, 1, "k", "v")));
    assert_eq!(
        replies(&effects)[0].result,
        Err(ClientError::NotLeader { leader: Some(n(1)) })
    );
}

// ---------------------------------------------------------------------------------------------
// Step 5: fencing.

#[test]
fn step5_a_backup_refuses_an_older_view_and_names_the_newer_one() {
    let mut r = replica(2, 3, pb());
    hear_view_change(&mut r, 3, 2);
    let stale = Message::Prepare {
        view: 1,
        group: group_of(3),
        prev_op: 0,
        prev_view: 0,
        entries: vec![Entry {
            op: 1,
            view: 1,
            payload: Payload::ViewStart,
        }],
        commit: 0,
    };
    let effects = deliver(&mut r, 1, stale);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Persist(_))),
        "nothing appended"
    );
    assert_eq!(
        sends(&effects),
        vec![(
            n(1),
            Message::PrepareOk {
                view: 2,
                result: PrepareResult::StaleView,
                commit: 0
            }
        )]
    );
    assert_eq!(r.stats().stale_refused, 1);
}

#[test]
fn step6_a_confirmation_is_answered_in_the_current_view_and_counted_stale_only_from_an_older_one() {
    let mut r = replica(2, 3, pb());
    hear_view_change(&mut r, 3, 2);
    let effects = deliver(&mut r, 1, Message::Confirm { view: 1, round: 5 });
    assert_eq!(
        sends(&effects),
        vec![(n(1), Message::ConfirmOk { view: 2, round: 5 })],
        "the answer names the newer view: the asker is deposed"
    );
    assert_eq!(r.stats().stale_refused, 1);
    let effects = deliver(&mut r, 3, Message::Confirm { view: 2, round: 6 });
    assert_eq!(
        sends(&effects),
        vec![(n(3), Message::ConfirmOk { view: 2, round: 6 })]
    );
    assert_eq!(
        r.stats().stale_refused,
        1,
        "a round of the current view is not stale"
    );
}

#[test]
fn step5_a_deposed_primary_leaves_its_writes_indeterminate_and_cannot_commit_them() {
    let mut r = primary(3);
    step(&mut r, Input::Request(put(7, 1, "k", "v")));
    let refused = Message::PrepareOk {
        view: 2,
        result: PrepareResult::StaleView,
        commit: 0,
    };
    let effects = deliver(&mut r, 2, refused);
    assert!(!r.is_primary());
    assert_eq!(r.view(), 2);
    assert_eq!(
        replies(&effects)[0].result,
        Err(ClientError::Indeterminate { leader: None })
    );
    // A late acknowledgement of view 1 no longer counts.
    let effects = deliver(&mut r, 3, prepare_ok(1, 2));
    assert!(replies(&effects).is_empty());
    assert_eq!(r.commit_number(), 0);
}

// ---------------------------------------------------------------------------------------------
// Steps 6 and 7: reads.

#[test]
fn step6_a_read_at_the_primary_waits_for_a_majority_to_confirm_the_view() {
    let mut r = primary(3);
    deliver(&mut r, 2, prepare_ok(1, 1));
    step(&mut r, Input::Request(put(7, 1, "k", "v")));
    deliver(&mut r, 2, prepare_ok(1, 2));
    let effects = step(&mut r, Input::Request(get(8, "k", ReadMode::Linearizable)));
    assert!(replies(&effects).is_empty(), "not before the round");
    let rounds: Vec<u64> = sends(&effects)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Confirm { view: 1, round } => Some(round),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 2, "asks both backups");
    let round = rounds[0];
    assert_eq!(round >> 40, 1, "rounds are numbered from the boot counter");
    let effects = deliver(&mut r, 3, Message::ConfirmOk { view: 1, round });
    assert_eq!(replies(&effects)[0].result, Ok(value("v")));
    assert_eq!(r.stats().confirmed_reads, 1);
}

#[test]
fn step6_a_confirmation_answered_in_a_newer_view_deposes_the_primary_and_refuses_its_reads() {
    let mut r = primary(3);
    deliver(&mut r, 2, prepare_ok(1, 1));
    let effects = step(&mut r, Input::Request(get(8, "k", ReadMode::Linearizable)));
    let Some((_, Message::Confirm { round, .. })) = sends(&effects).into_iter().next() else {
        panic!("a round started");
    };
    let effects = deliver(&mut r, 2, Message::ConfirmOk { view: 2, round });
    assert_eq!(
        replies(&effects)[0].result,
        Err(ClientError::NotLeader { leader: None })
    );
    assert!(!r.is_primary());
}

#[test]
fn step6_a_new_primary_serves_no_read_before_it_commits_an_entry_of_its_view() {
    let mut r = primary(3);
    let effects = step(&mut r, Input::Request(get(8, "k", ReadMode::Linearizable)));
    let Some((_, Message::Confirm { round, .. })) = sends(&effects).into_iter().next() else {
        panic!("a round started");
    };
    let effects = deliver(&mut r, 2, Message::ConfirmOk { view: 1, round });
    assert!(
        replies(&effects).is_empty(),
        "ViewStart is not committed yet"
    );
    let effects = deliver(&mut r, 2, prepare_ok(1, 1));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Value(None)));
}

#[test]
fn step7_a_local_read_at_a_backup_is_answered_at_once() {
    let mut r = replica(2, 3, pb());
    let effects = step(&mut r, Input::Request(get(8, "k", ReadMode::Local)));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Value(None)));
    assert_eq!(r.stats().local_reads, 1);
    let effects = step(&mut r, Input::Request(get(8, "k", ReadMode::Linearizable)));
    assert_eq!(
        replies(&effects)[0].result,
        Err(ClientError::NotLeader { leader: None })
    );
    assert_eq!(r.stats().local_reads, 1, "a refused read is no local read");
}

#[test]
fn a_restarted_replica_numbers_its_read_rounds_above_its_earlier_life() {
    let mut r = replica(1, 3, pb());
    let effects = step(&mut r, Input::Timer(Timer::ViewChange));
    let disk: Vec<Record> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Persist(record) => Some(record),
            _ => None,
        })
        .collect();
    let mut again = Replica::new(n(1), &members(3), pb());
    let effects = step(&mut again, Input::Start { recovered: disk });
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::ViewState {
            view: 1,
            boot: 2,
            ..
        })
    ));
}

#[test]
fn admin_requests_are_rejected_with_a_reason() {
    let mut r = primary(3);
    let admin = AdminRequest {
        client: ClientId(9),
        seq: 1,
        command: AdminCommand::TransferLeadership(n(2)),
    };
    let effects = step(&mut r, Input::Admin(admin));
    let Err(ClientError::Rejected(why)) = &replies(&effects)[0].result else {
        panic!("rejected");
    };
    assert!(why.contains("decided by election"), "{why}");
}

// ---------------------------------------------------------------------------------------------
// A scripted cluster.

#[test]
fn a_retried_write_is_applied_once_across_a_failover() {
    let mut c = Cluster::new(3, pb());
    c.elect(1, &[1, 2, 3]);
    c.request(1, put(7, 1, "k", "v"));
    // The write reaches replica 2 only; the primary dies before it commits.
    c.deliver_while(|from, to, m| from == 1 && to == 2 && matches!(m, Message::Prepare { .. }));
    c.crash(1);
    c.network.clear();
    c.elect(2, &[2, 3]);
    // The client retries at the new primary, which holds the write from view 1 already.
    c.request(2, put(7, 1, "k", "v"));
    c.exchange(&[2, 3]);
    let answers = c.replies_to(7, 1);
    assert!(
        answers.iter().all(|(_, r)| r.result == Ok(Output::Done)),
        "{answers:?}"
    );
    assert!(!answers.is_empty());
    assert_eq!(
        c.nodes[&2].state_machine().get(b"k").map(|v| v.as_ref()),
        Some(&b"v"[..])
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step8_a_backup_behind_the_primarys_snapshot_receives_its_state() {
    let config = ReplicaConfig {
        snapshot_threshold: 4,
        ..pb()
    };
    let mut c = Cluster::new(3, config);
    c.elect(1, &[1, 2, 3]);
    c.crash(3);
    for seq in 1..=8 {
        c.request(1, put(7, seq, "k", &seq.to_string()));
        c.exchange(&[1, 2]);
    }
    c.tick(1);
    c.exchange(&[1, 2]);
    assert!(c.nodes[&1].first_op() > 1, "the primary compacted");
    c.drop_messages_of(3); // The Prepares sent while it was down are lost.
    c.restart(3);
    c.tick(1);
    c.exchange(&[1, 2, 3]);
    assert_eq!(c.nodes[&3].stats().state_transfers, 1);
    assert_eq!(
        c.nodes[&3].state_machine().get(b"k").map(|v| v.as_ref()),
        Some(&b"8"[..])
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn a_config_that_cannot_work_is_refused_with_its_reason() {
    assert_eq!(pb().validate(), Ok(()));
    let ms = std::time::Duration::from_millis;
    let refused = |config: ReplicaConfig| config.validate().unwrap_err();
    let timeouts = |min: u64, max: u64, heartbeat: u64, member: u64| ReplicaConfig {
        view_change_timeout_min: ms(min),
        view_change_timeout_max: ms(max),
        heartbeat_interval: ms(heartbeat),
        member_timeout: ms(member),
        ..pb()
    };
    assert_eq!(
        timeouts(150, 150, 149, 150).validate(),
        Ok(()),
        "a fixed timeout works"
    );
    assert!(refused(timeouts(301, 300, 50, 300)).contains("exceeds view_change_timeout_max"));
    assert!(refused(timeouts(150, 300, 150, 300)).contains("heartbeat_interval must be below"));
    assert!(refused(timeouts(150, 300, 50, 50)).contains("member_timeout must exceed"));
    // Each bound set to zero is refused.
    let zeroed: [fn(&mut ReplicaConfig); 6] = [
        |c| c.entries_per_prepare_max = 0,
        |c| c.inflight_max = 0,
        |c| c.reads_max = 0,
        |c| c.snapshot_threshold = 0,
        |c| c.uncommitted_max = 0,
        |c| c.sessions_max = 0,
    ];
    for (bound, zero) in zeroed.iter().enumerate() {
        let mut config = pb();
        zero(&mut config);
        assert!(
            refused(config).contains("must be positive"),
            "bound {bound}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The replica's own invariants.

/// Each of the replica's own invariants fires on a copy of a primary put into the state it
/// forbids, with its own message; the uncorrupted primary passes. The primary has committed
/// op 1 and holds a client's write (op 2) and a linearizable read, both unanswered. The
/// read rounds' bookkeeping is private to `reads.rs`: only its bound is reached from here.
#[test]
fn each_invariant_of_the_replica_fires_on_the_state_it_forbids() {
    use crate::effects::invariant_fired as fired;
    let mut r = primary(3);
    deliver(&mut r, 2, prepare_ok(1, 1));
    step(&mut r, Input::Request(put(7, 1, "k", "v")));
    let effects = step(&mut r, Input::Request(get(8, "k", ReadMode::Linearizable)));
    assert!(replies(&effects).is_empty());
    assert_eq!(
        (r.applied, r.commit, r.verified, r.log.last_op()),
        (1, 1, 2, 2)
    );
    r.check_invariants();
    assert_eq!(fired(&r, |r| r.applied = 2), "applied beyond commit");
    assert_eq!(
        fired(&r, |r| r.commit = 3),
        "committed beyond the verified prefix"
    );
    assert_eq!(fired(&r, |r| r.durable = 3), "durable beyond the log");
    assert_eq!(fired(&r, |r| r.verified = 3), "verified beyond the log");
    let snapshot_ahead = |r: &mut Replica| {
        let mut snapshot = (**r.log.snapshot()).clone();
        snapshot.last_op = 1;
        snapshot.last_view = 1;
        r.log.install(Arc::new(snapshot));
        r.applied = 0;
    };
    assert_eq!(
        fired(&r, snapshot_ahead),
        "snapshot ahead of the state machine"
    );
    assert_eq!(fired(&r, |r| r.view = 0), "an entry from a future view");
    let group = |ids: &[u64]| -> Group { Arc::new(ids.iter().copied().map(n).collect()) };
    assert!(fired(&r, |r| r.group = group(&[1, 2])).contains("PB groups hold everyone"));
    assert!(fired(&r, |r| r.group = group(&[2, 1, 3])).contains("the group names the primary"));
    assert!(fired(&r, |r| r.group = group(&[1, 2, 2])).contains("a group lists a replica twice"));
    let chain_of_one = |r: &mut Replica| {
        r.config.topology = Topology::Chain { craq: false };
        r.group = group(&[1]);
    };
    assert_eq!(fired(&r, chain_of_one), "a group smaller than a majority");
    assert!(fired(&r, |r| r.vote = Some(n(2))).contains("a primary voted for itself"));
    assert!(fired(&r, |r| r.verified = 1).contains("a primary's log is the view's"));
    let next_at_match = |r: &mut Replica| {
        let p = r.downstream.get_mut(&n(2)).expect("a backup");
        p.match_op = p.next_op;
    };
    assert_eq!(fired(&r, next_at_match), "next_op is past match_op");
    let over_bound = |r: &mut Replica| {
        let inflight_max = r.config.inflight_max;
        r.downstream.get_mut(&n(2)).expect("a backup").inflight = inflight_max + 1;
    };
    assert_eq!(fired(&r, over_bound), "inflight over its bound");
    let candidate = |votes: &[u64], members: &[u64]| {
        let votes = votes.iter().copied().map(n).collect();
        let group = group(members);
        move |r: &mut Replica| {
            r.status = Status::Candidate {
                votes,
                answers: BTreeMap::new(),
            };
            r.group = group;
        }
    };
    let other_vote = |r: &mut Replica| {
        candidate(&[1], &[])(r);
        r.vote = Some(n(2));
    };
    assert!(fired(&r, other_vote).contains("a candidate voted for itself"));
    assert_eq!(
        fired(&r, candidate(&[], &[])),
        "a candidate counts its own vote"
    );
    // Led by another replica, so that the group names no primary wrongly.
    assert_eq!(
        fired(&r, candidate(&[1], &[2, 1, 3])),
        "a candidate has no group yet"
    );
    let backup = |r: &mut Replica| {
        r.status = Status::Backup;
        r.group = group(&[]);
    };
    assert_eq!(fired(&r, backup), "only a primary awaits writes");
    assert_eq!(
        fired(&r, |r| r.config.reads_max = 0),
        "pending reads over their bound"
    );
}

/// The checker's primary completeness: a primary of a later view must hold each committed
/// entry with its view, not merely an entry with the same payload. Replica 1's ViewStart of
/// view 1 is committed; replica 2, primary of view 2 without it, holds its own ViewStart (the
/// same payload) at op 1, and is reported.
#[test]
fn the_checker_reports_a_new_primary_holding_another_views_view_start_at_a_committed_op() {
    use quorate_core::Invariants;
    let mut safety = ViewSafety::new();
    let mut first = primary(3);
    deliver(&mut first, 2, prepare_ok(1, 1));
    assert_eq!(first.commit_number(), 1);
    safety
        .after_step(n(1), &first, &[])
        .expect("primary of view 1");
    assert_eq!(safety.committed_len(), 1);
    let mut second = replica(2, 3, pb());
    step(&mut second, Input::Timer(Timer::ViewChange));
    step(&mut second, Input::Timer(Timer::ViewChange));
    let vote = Message::DoViewChange {
        view: 2,
        granted: true,
        last_op: 0,
        last_view: 0,
    };
    deliver(&mut second, 3, vote);
    assert!(second.is_primary());
    assert_eq!((second.view(), second.commit_number()), (2, 0));
    let view_start = Entry {
        op: 1,
        view: 2,
        payload: Payload::ViewStart,
    };
    assert_eq!(second.log.entry(1), Some(&view_start));
    let violation = safety
        .after_step(n(2), &second, &[])
        .expect_err("a primary without the committed op 1 of view 1");
    assert_eq!(violation.property, "primary completeness");
    assert_eq!(
        violation.detail,
        "n2 became primary of view 2 without committed op 1 of view 1; it holds Some(2)"
    );
}
