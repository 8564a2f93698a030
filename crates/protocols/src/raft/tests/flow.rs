//! Flow control (probe and replicate states, in-flight limits in messages and bytes) and
//! chunked InstallSnapshot (§7).

use super::*;

fn appended_indices(effects: &[Effect<Raft>], to: u64) -> Vec<Vec<u64>> {
    sends(effects)
        .into_iter()
        .filter(|(peer, _)| *peer == n(to))
        .filter_map(|(_, msg)| match msg {
            Message::AppendEntries { entries, .. } => {
                Some(entries.iter().map(|e| e.index).collect())
            }
            _ => None,
        })
        .collect()
}

fn one_entry_per_message(config: RaftConfig) -> RaftConfig {
    RaftConfig {
        entries_per_append_max: 1,
        ..config
    }
}

#[test]
fn flow_probe_sends_one_message_at_a_time_then_replicate_pipelines_within_the_window() {
    let config = RaftConfig {
        inflight_max: 2,
        ..one_entry_per_message(RaftConfig::default())
    };
    let mut raft = leader_of(&[1, 2, 3], config);
    // The no-op went out as node 2's probe: nothing more until it is answered.
    for seq in 1..=3 {
        let effects = step(&mut raft, Input::Request(put(9, seq, "k", "v")));
        assert!(appended_indices(&effects, 2).is_empty());
    }
    // The probe succeeds: replicate, two messages in flight at most.
    let effects = deliver(&mut raft, 2, ack(1, 0, 1));
    assert_eq!(appended_indices(&effects, 2), vec![vec![2], vec![3]]);
    let effects = deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(appended_indices(&effects, 2), vec![vec![4]]);
}

#[test]
fn flow_the_byte_limit_bounds_what_is_in_flight() {
    // A put of "k" = "v" takes 42 bytes: two fit in 100 bytes, a third does not.
    assert_eq!(
        Entry {
            index: 2,
            term: 1,
            payload: Payload::Command(put(9, 1, "k", "v").command())
        }
        .size_bytes(),
        42
    );
    two_of_three_puts_fit(100);
}

/// Three 42-byte puts, one per message, to a follower whose window holds `inflight_bytes_max`
/// bytes: its acknowledgement of the no-op lets two go out, and the third waits for the
/// first of them to be acknowledged.
fn two_of_three_puts_fit(inflight_bytes_max: u64) {
    let config = RaftConfig {
        inflight_bytes_max,
        ..one_entry_per_message(RaftConfig::default())
    };
    let mut raft = leader_of(&[1, 2, 3], config);
    for seq in 1..=3 {
        step(&mut raft, Input::Request(put(9, seq, "k", "v")));
    }
    let effects = deliver(&mut raft, 2, ack(1, 0, 1));
    assert_eq!(appended_indices(&effects, 2), vec![vec![2], vec![3]]);
    let effects = deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(appended_indices(&effects, 2), vec![vec![4]]);
}

#[test]
fn flow_a_rejection_sends_the_follower_back_to_probe() {
    let mut raft = leader_of(&[1, 2, 3], one_entry_per_message(RaftConfig::default()));
    deliver(&mut raft, 2, ack(1, 0, 1));
    for seq in 1..=3 {
        step(&mut raft, Input::Request(put(9, seq, "k", "v")));
    }
    // Entry 2 was lost; the message with entry 3 fails the consistency check at index 2.
    let reject = Message::AppendEntriesResponse {
        term: 1,
        round: 0,
        result: AppendResult::Reject {
            prev_log_index: 2,
            conflict_term: None,
            conflict_index: 2,
        },
    };
    let effects = deliver(&mut raft, 2, reject);
    assert_eq!(appended_indices(&effects, 2), vec![vec![2]], "one probe");
    let effects = step(&mut raft, Input::Request(put(9, 4, "k", "v")));
    assert!(
        appended_indices(&effects, 2).is_empty(),
        "waiting for the probe"
    );
}

/// A leader of {1, 2, 3} that compacted through index 6 a store of one session and five
/// keys, with a one-byte chunk size: every item travels in a chunk of its own.
fn compacted_leader() -> Raft {
    let config = RaftConfig {
        snapshot_threshold: 6,
        snapshot_chunk_bytes: 1,
        ..RaftConfig::default()
    };
    let mut raft = leader_of(&[1, 2, 3], config);
    deliver(&mut raft, 2, ack(1, 0, 1));
    for seq in 1..=5 {
        step(
            &mut raft,
            Input::Request(put(9, seq, &format!("k{seq}"), "v")),
        );
        deliver(&mut raft, 2, ack(1, 0, seq + 1));
    }
    assert_eq!(raft.log.first_index(), 7);
    raft
}

fn chunk_to(effects: &[Effect<Raft>], to: u64) -> Option<SnapshotChunk> {
    sends(effects)
        .into_iter()
        .find_map(|(peer, msg)| match msg {
            Message::InstallSnapshot { chunk, .. } if peer == n(to) => Some(*chunk),
            _ => None,
        })
}

fn answer(follower: &mut Raft, chunk: SnapshotChunk) -> (Vec<Effect<Raft>>, Message) {
    let effects = deliver(
        follower,
        1,
        Message::InstallSnapshot {
            term: 1,
            chunk: Box::new(chunk),
        },
    );
    let [(_, response)] = &sends(&effects)[..] else {
        panic!("one answer expected: {effects:?}")
    };
    (effects.clone(), response.clone())
}

#[test]
fn s7_a_snapshot_travels_in_numbered_chunks_one_at_a_time() {
    let mut leader = compacted_leader();
    // Node 3 never answered its probe: at the next tick it gets chunk 0, and only chunk 0.
    let effects = step(&mut leader, Input::Timer(Timer::Heartbeat));
    let first = chunk_to(&effects, 3).expect("chunk 0");
    assert_eq!((first.last_index, first.offset, first.done), (6, 0, false));
    assert_eq!(first.data.items(), 1);
    let mut follower = node_with(3, &[1, 2, 3], RaftConfig::default());
    let (_, response) = answer(&mut follower, first.clone());
    let next = |k| Message::InstallSnapshotResponse {
        term: 1,
        last_index: 6,
        ack: SnapshotAck::Next(k),
    };
    assert_eq!(response, next(1));
    // A chunk out of order is answered with the one expected.
    let mut chunk = first.clone();
    chunk.offset = 3;
    assert_eq!(answer(&mut follower, chunk).1, next(1));
    // The leader and the follower exchange the rest, one chunk per answer.
    let mut response = response;
    let mut chunks = 1;
    loop {
        let effects = deliver(&mut leader, 3, response);
        let Some(chunk) = chunk_to(&effects, 3) else {
            break;
        };
        assert_eq!(chunk.offset, chunks);
        chunks += 1;
        let (effects, answered) = answer(&mut follower, chunk.clone());
        response = answered;
        if chunk.done {
            let checkpoint = persists(&effects);
            assert!(matches!(checkpoint[..], [Record::Checkpoint { .. }]));
            let installed = Message::InstallSnapshotResponse {
                term: 1,
                last_index: 6,
                ack: SnapshotAck::Installed,
            };
            assert_eq!(response, installed);
        }
    }
    assert_eq!(chunks, 6, "one session and five pairs");
    assert_eq!(follower.state_machine(), leader.state_machine());
    assert_eq!(follower.commit_index(), 6);
    assert_eq!(follower.events(), &[Event::SnapshotInstalled]);
}

#[test]
fn s7_a_follower_that_lost_its_partial_snapshot_makes_the_leader_start_over() {
    let mut leader = compacted_leader();
    let effects = step(&mut leader, Input::Timer(Timer::Heartbeat));
    let mut follower = node_with(3, &[1, 2, 3], RaftConfig::default());
    let (_, response) = answer(&mut follower, chunk_to(&effects, 3).unwrap());
    let effects = deliver(&mut leader, 3, response);
    let second = chunk_to(&effects, 3).unwrap();
    assert_eq!(second.offset, 1);
    // The follower restarts and has nothing: it asks for chunk 0, and gets it.
    let mut restarted = node_with(3, &[1, 2, 3], RaftConfig::default());
    let (_, response) = answer(&mut restarted, second.clone());
    let effects = deliver(&mut leader, 3, response);
    let zero = chunk_to(&effects, 3).unwrap();
    assert_eq!(zero.offset, 0);
    // Two chunks later, a late duplicate of chunk 0 resets the follower, which then asks for
    // chunk 1 while the leader is at chunk 2: the leader starts over rather than stall.
    let (_, response) = answer(&mut restarted, zero.clone());
    let effects = deliver(&mut leader, 3, response);
    let one = chunk_to(&effects, 3).unwrap();
    let (_, response) = answer(&mut restarted, one);
    let effects = deliver(&mut leader, 3, response);
    let two = chunk_to(&effects, 3).unwrap();
    assert_eq!(two.offset, 2);
    answer(&mut restarted, zero);
    let (_, response) = answer(&mut restarted, two);
    let stale = Message::InstallSnapshotResponse {
        term: 1,
        last_index: 6,
        ack: SnapshotAck::Next(1),
    };
    assert_eq!(response, stale);
    let effects = deliver(&mut leader, 3, response);
    assert_eq!(chunk_to(&effects, 3).unwrap().offset, 0);
}

/// A follower in the middle of a snapshot that already holds the log through its last index
/// (its `Installed` answer was lost, or it had the entries all along) answers the heartbeat
/// sent beside the chunks: the leader stops sending the snapshot and replicates from there.
#[test]
fn s7_a_follower_that_answers_the_heartbeat_at_the_snapshots_index_gets_entries_not_the_rest_of_it()
{
    let mut leader = compacted_leader();
    let effects = step(&mut leader, Input::Timer(Timer::Heartbeat));
    assert_eq!(chunk_to(&effects, 3).map(|c| c.offset), Some(0));
    deliver(&mut leader, 3, ack(1, 0, 6));
    let effects = step(&mut leader, Input::Request(put(9, 6, "k6", "v")));
    assert_eq!(appended_indices(&effects, 3), vec![vec![7]]);
    assert_eq!(chunk_to(&effects, 3), None);
}

#[test]
fn flow_a_configuration_entry_weighs_eight_bytes_per_member_and_a_noop_its_overhead_alone() {
    let size = |payload| {
        Entry {
            index: 2,
            term: 1,
            payload,
        }
        .size_bytes()
    };
    assert_eq!(size(Payload::Noop), 24);
    // 24 bytes of overhead and 8 per member: 48 for three members, 64 for five.
    assert_eq!(
        size(Payload::Config(Membership::new([n(1), n(2), n(3)]))),
        48
    );
    assert_eq!(size(Payload::Config(Membership::new((1..=5).map(n)))), 64);
}

#[test]
fn flow_a_transaction_weighs_each_guards_key_and_its_operations() {
    use quorate_core::Guard;
    let key = |k: &str| -> quorate_core::Key { k.as_bytes().to_vec().into() };
    let txn = Op::Txn {
        guards: vec![
            Guard::Unchanged {
                key: key("g"),
                revision: 1,
            },
            Guard::Absent { key: key("h") },
        ],
        ops: vec![put(9, 1, "k", "v").op],
        now: None,
    };
    let entry = Entry {
        index: 2,
        term: 1,
        payload: Payload::Command(quorate_core::Command {
            client: quorate_core::ClientId(9),
            seq: 1,
            op: txn,
        }),
    };
    // 24 bytes of overhead, 16 and its key's byte per guard (34), and the put's 16 + 1 + 1.
    assert_eq!(entry.size_bytes(), 24 + 34 + 18);
}

#[test]
fn flow_an_append_is_cut_to_the_room_left_in_the_byte_window() {
    // A 100-byte window holds two 42-byte puts. With 2 and 3 in flight, 4 and 5 wait. Once 2
    // is acknowledged 58 bytes are free, and the next append takes what fits in them: 4
    // alone. Cut to the whole window instead (4 and 5, 84 bytes), it would not fit beside 3
    // and nothing would go out.
    let config = RaftConfig {
        inflight_bytes_max: 100,
        ..RaftConfig::default()
    };
    let mut raft = leader_of(&[1, 2, 3], config);
    deliver(&mut raft, 2, ack(1, 0, 1));
    let sent: Vec<Vec<u64>> = (1..=4)
        .flat_map(|seq| {
            let effects = step(&mut raft, Input::Request(put(9, seq, "k", "v")));
            appended_indices(&effects, 2)
        })
        .collect();
    assert_eq!(sent, vec![vec![2], vec![3]]);
    let effects = deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(appended_indices(&effects, 2), vec![vec![4]]);
}

#[test]
fn flow_a_message_that_fills_the_byte_window_exactly_is_still_sent() {
    // Two puts of 42 bytes fill an 84-byte window exactly: both go out, a third waits.
    two_of_three_puts_fit(84);
}
