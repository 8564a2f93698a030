//! Figure 2 Raft, by the sections of the 2014 paper: pre-vote, check-quorum and reads without
//! the log are off (`RaftConfig::figure2`), as in the paper.

use super::*;
use quorate_core::{Command, Effect, Op, Output};

fn node(id: u64, size: u64) -> Raft {
    let voters: Vec<u64> = (1..=size).collect();
    node_with(id, &voters, RaftConfig::figure2())
}

/// Makes node 1 of a 3-node cluster leader of term 1.
fn elected_leader() -> Raft {
    let mut raft = node(1, 3);
    step(&mut raft, Input::Timer(Timer::Election));
    let granted = Message::RequestVoteResponse {
        term: 1,
        granted: true,
    };
    deliver(&mut raft, 2, granted);
    assert!(raft.is_leader());
    raft
}

#[test]
fn s5_2_election_timeout_starts_an_election_and_persists_before_asking() {
    let mut raft = node(1, 3);
    let effects = step(&mut raft, Input::Timer(Timer::Election));
    assert!(matches!(
        effects[0],
        Effect::Persist(Record::HardState {
            term: 1,
            vote: Some(NodeId(1))
        })
    ));
    let vote_request = Message::RequestVote {
        term: 1,
        last_log_index: 0,
        last_log_term: 0,
        transfer: false,
    };
    assert_eq!(
        sends(&effects),
        vec![(n(2), vote_request.clone()), (n(3), vote_request)]
    );
    assert_eq!(raft.status().role, Role::Candidate);
}

#[test]
fn s5_2_a_majority_of_votes_makes_a_leader_that_appends_a_noop() {
    let mut raft = node(1, 3);
    step(&mut raft, Input::Timer(Timer::Election));
    let refused = Message::RequestVoteResponse {
        term: 1,
        granted: false,
    };
    assert!(deliver(&mut raft, 3, refused).is_empty());
    let effects = deliver(
        &mut raft,
        2,
        Message::RequestVoteResponse {
            term: 1,
            granted: true,
        },
    );
    assert!(raft.is_leader());
    let noop = entry(1, 1);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Persist(Record::Entries(es)) if es == &vec![noop.clone()])));
    assert_eq!(
        sends(&effects),
        vec![
            (n(2), append(1, (0, 0), vec![noop.clone()], 0)),
            (n(3), append(1, (0, 0), vec![noop], 0)),
        ]
    );
}

#[test]
fn s5_2_one_vote_per_term() {
    let mut raft = node(3, 3);
    let ask = Message::RequestVote {
        term: 1,
        last_log_index: 0,
        last_log_term: 0,
        transfer: false,
    };
    let effects = deliver(&mut raft, 1, ask.clone());
    assert!(matches!(
        effects[..],
        [
            Effect::Persist(Record::HardState {
                term: 1,
                vote: None
            }),
            Effect::Persist(Record::HardState {
                term: 1,
                vote: Some(NodeId(1))
            }),
            Effect::SetTimer {
                timer: Timer::Election,
                ..
            },
            Effect::Send { .. }
        ]
    ));
    let granted = |effects: &[Effect<Raft>]| match sends(effects).as_slice() {
        [(_, Message::RequestVoteResponse { granted, .. })] => *granted,
        other => panic!("expected one vote response, got {other:?}"),
    };
    assert!(granted(&effects));
    assert!(!granted(&deliver(&mut raft, 2, ask.clone())));
    // Asking again (a duplicate) gets the same answer.
    assert!(granted(&deliver(&mut raft, 1, ask)));
}

/// Figure 2: a follower restarts its election timer for its leader's AppendEntries and for a
/// vote it grants, and for nothing else. A refused candidate of a higher term moves the
/// follower to that term, but the follower's own turn to campaign is not put off: otherwise
/// stale candidates that cannot win keep the one node that can from ever standing.
#[test]
fn s5_2_a_refused_candidate_of_a_higher_term_does_not_restart_the_election_timer() {
    let mut raft = node(3, 3);
    deliver(&mut raft, 1, append(1, (0, 0), vec![entry(1, 1)], 0));
    let stale = Message::RequestVote {
        term: 2,
        last_log_index: 0,
        last_log_term: 0,
        transfer: false,
    };
    let effects = deliver(&mut raft, 2, stale);
    assert_eq!(raft.term(), 2);
    let timer_set = effects.iter().any(|e| {
        matches!(
            e,
            Effect::SetTimer {
                timer: Timer::Election,
                ..
            }
        )
    });
    assert!(!timer_set, "{effects:?}");
    assert!(matches!(
        sends(&effects).as_slice(),
        [(_, Message::RequestVoteResponse { granted: false, .. })]
    ));
}

#[test]
fn s5_4_1_votes_only_for_an_up_to_date_log() {
    let mut raft = node(3, 3);
    deliver(
        &mut raft,
        1,
        append(2, (0, 0), vec![entry(1, 1), entry(2, 2)], 0),
    );
    let vote = |raft: &mut Raft, from, term, last_log_index, last_log_term| {
        let msg = Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
            transfer: false,
        };
        match sends(&deliver(raft, from, msg)).as_slice() {
            [(_, Message::RequestVoteResponse { granted, .. })] => *granted,
            other => panic!("{other:?}"),
        }
    };
    assert!(!vote(&mut raft, 2, 3, 5, 1), "lower last term, longer log");
    assert!(!vote(&mut raft, 2, 4, 1, 2), "same last term, shorter log");
    assert!(vote(&mut raft, 2, 5, 2, 2), "same last term, same length");
}

#[test]
fn s5_1_stale_terms_are_refused_and_higher_terms_depose() {
    let mut raft = elected_leader();
    let effects = deliver(&mut raft, 2, append(0, (0, 0), vec![], 0));
    assert_eq!(
        sends(&effects),
        vec![(
            n(2),
            Message::AppendEntriesResponse {
                term: 1,
                round: 0,
                result: AppendResult::Reject {
                    prev_log_index: 0,
                    conflict_term: None,
                    conflict_index: 0
                }
            }
        )]
    );
    assert!(raft.is_leader());
    deliver(
        &mut raft,
        3,
        Message::RequestVoteResponse {
            term: 7,
            granted: false,
        },
    );
    assert!(!raft.is_leader());
    assert_eq!(raft.term(), 7);
}

#[test]
fn s5_3_consistency_check_rejects_with_a_conflict_hint() {
    let mut raft = node(2, 3);
    deliver(
        &mut raft,
        1,
        append(1, (0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1)], 0),
    );
    // Leader of term 3 whose entry 3 is of term 2: the follower reports term 1 from index 1.
    let effects = deliver(&mut raft, 3, append(3, (3, 2), vec![], 0));
    assert_eq!(
        sends(&effects),
        vec![(
            n(3),
            Message::AppendEntriesResponse {
                term: 3,
                round: 0,
                result: AppendResult::Reject {
                    prev_log_index: 3,
                    conflict_term: Some(1),
                    conflict_index: 1
                }
            }
        )]
    );
    // Too short a log: the hint is its end.
    let effects = deliver(&mut raft, 3, append(3, (9, 3), vec![], 0));
    assert!(matches!(
        sends(&effects)[0].1,
        Message::AppendEntriesResponse {
            result: AppendResult::Reject {
                conflict_term: None,
                conflict_index: 4,
                ..
            },
            ..
        }
    ));
}

#[test]
fn s5_3_conflicting_suffix_is_truncated_and_persisted_before_the_answer() {
    let mut raft = node(2, 3);
    deliver(
        &mut raft,
        1,
        append(1, (0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1)], 1),
    );
    let effects = deliver(&mut raft, 3, append(2, (1, 1), vec![entry(2, 2)], 1));
    let persisted = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Entries(es)) if es == &vec![entry(2, 2)]))
        .expect("the new entry is persisted");
    let answered = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }))
        .expect("answered");
    assert!(persisted < answered, "persist before speaking");
    assert_eq!(raft.log.last_index(), 2);
    assert_eq!(raft.log.term_at(2), Some(2));
}

#[test]
fn s5_3_follower_commit_is_bounded_by_what_the_message_verified() {
    let mut raft = node(2, 3);
    deliver(
        &mut raft,
        1,
        append(1, (0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1)], 0),
    );
    // A new leader verifies only index 1 but reports commit 3: entries 2..3 may still be
    // replaced, so only index 1 may be committed.
    deliver(&mut raft, 3, append(2, (1, 1), vec![], 3));
    assert_eq!(raft.commit_index(), 1);
}

#[test]
fn s5_4_2_an_entry_of_an_earlier_term_is_not_committed_by_counting() {
    // Node 1 holds an entry of term 1 that node 2 also holds, then wins term 2's election.
    let mut raft = node(1, 3);
    deliver(&mut raft, 3, append(1, (0, 0), vec![entry(1, 1)], 0));
    step(&mut raft, Input::Timer(Timer::Election));
    deliver(
        &mut raft,
        2,
        Message::RequestVoteResponse {
            term: 2,
            granted: true,
        },
    );
    assert!(raft.is_leader());
    // Node 2 acknowledges entry 1 only (it lacks the no-op of term 2): nothing commits.
    deliver(&mut raft, 2, ack(2, 0, 1));
    assert_eq!(raft.commit_index(), 0);
    // Once the term-2 no-op is on a majority, both entries commit.
    deliver(&mut raft, 2, ack(2, 0, 2));
    assert_eq!(raft.commit_index(), 2);
}

#[test]
fn s5_3_the_leader_answers_the_client_once_the_entry_is_applied() {
    let mut raft = elected_leader();
    let effects = step(&mut raft, Input::Request(put(9, 1, "k", "v")));
    assert!(effects.iter().all(|e| !matches!(e, Effect::Reply(_))));
    let effects = deliver(&mut raft, 2, ack(1, 0, 2));
    let replies: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        vec![Reply {
            client: ClientId(9),
            seq: 1,
            result: Ok(Output::Done)
        }]
    );
    // A retry of the applied request is answered from the session, not appended again.
    let last = raft.log.last_index();
    let effects = step(&mut raft, Input::Request(put(9, 1, "k", "v")));
    assert!(matches!(
        effects[..],
        [Effect::Reply(Reply {
            result: Ok(Output::Done),
            ..
        })]
    ));
    assert_eq!(raft.log.last_index(), last);
}

#[test]
fn s8_followers_redirect_clients_to_the_leader() {
    let mut raft = node(2, 3);
    deliver(&mut raft, 1, append(1, (0, 0), vec![], 0));
    let effects = step(&mut raft, Input::Request(put(9, 1, "k", "v")));
    assert!(matches!(
        &effects[..],
        [Effect::Reply(Reply {
            result: Err(ClientError::NotLeader {
                leader: Some(NodeId(1))
            }),
            ..
        })]
    ));
}

#[test]
fn s8_a_deposed_leader_answers_waiting_clients_indeterminate() {
    let mut raft = elected_leader();
    step(&mut raft, Input::Request(put(9, 1, "k", "v")));
    let effects = deliver(&mut raft, 2, append(2, (0, 0), vec![], 0));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Reply(Reply {
            result: Err(ClientError::Indeterminate {
                leader: Some(NodeId(2))
            }),
            ..
        })
    )));
}

#[test]
fn s7_compaction_then_install_snapshot_on_a_lagging_follower() {
    let config = RaftConfig {
        snapshot_threshold: 4,
        ..RaftConfig::figure2()
    };
    let mut leader = leader_of(&[1, 2, 3], config.clone());
    for seq in 1..=5 {
        step(
            &mut leader,
            Input::Request(put(9, seq, "k", &seq.to_string())),
        );
        deliver(&mut leader, 2, ack(1, 0, seq + 1));
    }
    assert_eq!(leader.commit_index(), 6);
    assert_eq!(leader.log.first_index(), 5, "compacted through index 4");
    // Node 3 never acknowledged anything: at the next heartbeat tick it is sent the snapshot
    // (small enough for one chunk), together with a heartbeat anchored at the snapshot.
    let effects = step(&mut leader, Input::Timer(Timer::Heartbeat));
    let to_3: Vec<Message> = sends(&effects)
        .into_iter()
        .filter(|(to, _)| *to == n(3))
        .map(|(_, msg)| msg)
        .collect();
    let [Message::InstallSnapshot { term: 1, chunk }, Message::AppendEntries {
        prev_log_index: 4, ..
    }] = &to_3[..]
    else {
        panic!("expected a snapshot chunk and a heartbeat, got {to_3:?}")
    };
    assert_eq!((chunk.last_index, chunk.offset, chunk.done), (4, 0, true));
    let mut follower = node_with(3, &[1, 2, 3], config);
    let install = Message::InstallSnapshot {
        term: 1,
        chunk: chunk.clone(),
    };
    let effects = deliver(&mut follower, 1, install);
    let checkpoint = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Checkpoint { .. })))
        .expect("the installed snapshot is persisted");
    let answer = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }))
        .expect("answered");
    assert!(checkpoint < answer, "persist before speaking");
    assert_eq!(
        sends(&effects),
        vec![(
            n(1),
            Message::InstallSnapshotResponse {
                term: 1,
                last_index: 4,
                ack: SnapshotAck::Installed
            }
        )]
    );
    assert_eq!(follower.commit_index(), 4);
    assert_eq!(
        follower.state_machine().get(b"k").map(|v| v.to_vec()),
        Some(b"3".to_vec())
    );
}

#[test]
fn recovery_restores_term_vote_and_log_from_records() {
    let mut raft = node(2, 3);
    let mut persisted = Vec::new();
    let mut record = |effects: Vec<Effect<Raft>>| {
        for e in effects {
            if let Effect::Persist(r) = e {
                persisted.push(r);
            }
        }
    };
    record(deliver(
        &mut raft,
        1,
        append(1, (0, 0), vec![entry(1, 1), entry(2, 1)], 0),
    ));
    record(deliver(
        &mut raft,
        3,
        append(2, (1, 1), vec![entry(2, 2)], 0),
    ));
    let voters = [n(1), n(2), n(3)];
    let mut restarted = Raft::new(n(2), &voters, RaftConfig::figure2());
    step(
        &mut restarted,
        Input::Start {
            recovered: persisted,
        },
    );
    assert_eq!(restarted.term(), 2);
    assert_eq!(restarted.log.last_index(), 2);
    assert_eq!(restarted.log.term_at(2), Some(2));
    assert_eq!(restarted.commit_index(), 0);
}

#[test]
fn a_single_node_cluster_elects_itself_and_commits_alone() {
    let mut raft = node(1, 1);
    step(&mut raft, Input::Timer(Timer::Election));
    assert!(raft.is_leader());
    let effects = step(&mut raft, Input::Request(put(1, 1, "k", "v")));
    let persist = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(_)))
        .unwrap();
    let reply = effects
        .iter()
        .position(|e| matches!(e, Effect::Reply(_)))
        .unwrap();
    assert!(
        persist < reply,
        "the reply waits behind the persist barrier"
    );
    let _ = Command {
        client: ClientId(1),
        seq: 1,
        op: Op::Get { key: "k".into() },
    };
}

#[test]
fn t10_2_1_the_leader_sends_a_new_entry_before_its_own_write_and_counts_itself_once_durable() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::figure2());
    let effects = step_raw(&mut raft, ms(0), Input::Request(put(7, 1, "k", "v")));
    let position = |wanted: &dyn Fn(&Effect<Raft>) -> bool| effects.iter().position(wanted);
    let first_append = position(&|e| {
        matches!(e, Effect::Send { msg: Message::AppendEntries { entries, .. }, .. } if !entries.is_empty())
    })
    .expect("the new entry is sent to the followers");
    let persist = position(&|e| matches!(e, Effect::Persist(Record::Entries(_))))
        .expect("the new entry is persisted");
    assert!(
        first_append < persist,
        "the followers' copies are written in parallel with the leader's (thesis §10.2.1)"
    );
    // Follower 2 has it durably; the leader's own write has not finished: no majority yet.
    deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(
        raft.commit_index(),
        1,
        "the leader's unsynced copy does not count"
    );
    // The leader's write reaches its disk: its Durable message to itself arrives.
    let committed = deliver_durable(&mut raft, ms(0), effects);
    assert_eq!(raft.commit_index(), 2);
    assert_eq!(replies(&committed), vec![ok_reply(7, 1, Output::Done)]);
}

#[test]
fn t10_2_1_while_its_last_write_is_syncing_the_leader_persists_first_to_batch_followers() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::figure2());
    let first = step_raw(&mut raft, ms(0), Input::Request(put(7, 1, "k", "v")));
    // The first write's Durable message is still in flight: the disk is busy.
    let second = step_raw(&mut raft, ms(0), Input::Request(put(8, 1, "k", "w")));
    let persist = second
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Entries(_))))
        .expect("the second entry is persisted");
    let first_append = second.iter().position(|e| {
        matches!(
            e,
            Effect::Send {
                msg: Message::AppendEntries { .. },
                ..
            }
        )
    });
    assert!(
        first_append.iter().all(|send| persist < *send),
        "behind a syncing write, the leader persists before it sends"
    );
    let mut effects = deliver_durable(&mut raft, ms(0), first);
    effects.extend(deliver_durable(&mut raft, ms(0), second));
    deliver(&mut raft, 2, ack(1, 0, 3));
    assert_eq!(raft.commit_index(), 3);
}
