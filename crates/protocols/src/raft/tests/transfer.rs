//! Leadership transfer (thesis §3.10).

use super::*;

fn transfer(seq: u64, target: u64) -> Input<Raft> {
    admin(7, seq, AdminCommand::TransferLeadership(n(target)))
}

/// A settled leader of {1, 2, 3} whose entry 2 (a write) node 2 holds and node 3 lacks.
fn leader_ahead_of_3(config: RaftConfig) -> Raft {
    let mut raft = settled_leader_of(&[1, 2, 3], config);
    step(&mut raft, Input::Request(put(9, 1, "k", "v")));
    deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(raft.commit_index(), 2);
    raft
}

#[test]
fn t3_10_the_leader_pauses_proposals_catches_the_target_up_then_sends_timeout_now() {
    let mut raft = leader_ahead_of_3(RaftConfig::default());
    let effects = step(&mut raft, transfer(1, 3));
    assert!(
        !sends(&effects)
            .iter()
            .any(|(_, m)| matches!(m, Message::TimeoutNow { .. })),
        "node 3 lacks entry 2"
    );
    // Meanwhile commands are sent to the target, and membership changes are refused.
    let effects = step(&mut raft, Input::Request(put(9, 2, "k", "w")));
    let leader = Some(n(3));
    assert_eq!(
        replies(&effects),
        vec![err_reply(9, 2, ClientError::NotLeader { leader })]
    );
    let effects = step(&mut raft, admin(8, 1, AdminCommand::AddLearner(n(4))));
    let refusal = "a leadership transfer to n3 is in progress".to_string();
    assert_eq!(
        replies(&effects),
        vec![err_reply(8, 1, ClientError::Rejected(refusal))]
    );
    // Node 3 catches up: TimeoutNow.
    let effects = deliver(&mut raft, 3, ack(1, 0, 2));
    assert_eq!(
        sends(&effects),
        vec![(n(3), Message::TimeoutNow { term: 1 })]
    );
    // Node 3's election deposes the leader, which reports the transfer done. That is not a
    // disruption: the leader asked for it.
    let ask = Message::RequestVote {
        term: 2,
        last_log_index: 2,
        last_log_term: 1,
        transfer: true,
    };
    let effects = deliver(&mut raft, 3, ask);
    assert!(!raft.is_leader());
    assert_eq!(replies(&effects), vec![ok_reply(7, 1, Output::Done)]);
    assert_eq!(raft.events(), &[]);
}

#[test]
fn t3_10_the_target_campaigns_at_once_without_pre_vote_and_counts_as_a_transfer() {
    let mut raft = node_with(3, &[1, 2, 3], RaftConfig::default());
    deliver(&mut raft, 1, append(1, (0, 0), vec![entry(1, 1)], 1));
    let effects = deliver(&mut raft, 1, Message::TimeoutNow { term: 1 });
    assert_eq!(
        persists(&effects),
        vec![Record::HardState {
            term: 2,
            vote: Some(n(3))
        }]
    );
    let ask = Message::RequestVote {
        term: 2,
        last_log_index: 1,
        last_log_term: 1,
        transfer: true,
    };
    assert_eq!(sends(&effects), vec![(n(1), ask.clone()), (n(2), ask)]);
    let (now, from) = (raft.now, n(2));
    let vote = Input::Message {
        from,
        msg: vote_granted(2),
    };
    let effects = step_raw(&mut raft, now, vote);
    assert!(raft.is_leader());
    assert_eq!(raft.events(), &[Event::TransferElected]);
    deliver_durable(&mut raft, now, effects);
    // A stale TimeoutNow (of term 1) is ignored.
    assert!(deliver(&mut raft, 1, Message::TimeoutNow { term: 1 }).is_empty());
}

#[test]
fn t3_10_a_transfer_that_does_not_finish_in_an_election_timeout_is_abandoned() {
    let mut raft = leader_ahead_of_3(RaftConfig::default());
    step(&mut raft, transfer(1, 3));
    for at in [50, 100, 150, 200, 250] {
        deliver_at(&mut raft, ms(at - 5), 2, ack(1, 0, 2)); // Keeps check-quorum happy.
        let effects = step_at(&mut raft, ms(at), Input::Timer(Timer::Heartbeat));
        assert!(replies(&effects).is_empty());
    }
    let effects = step_at(&mut raft, ms(300), Input::Timer(Timer::Heartbeat));
    assert_eq!(
        replies(&effects),
        vec![err_reply(7, 1, ClientError::Unavailable)]
    );
    assert_eq!(raft.events(), &[Event::TransferAborted]);
    // Proposals resume.
    let effects = step(&mut raft, Input::Request(put(9, 2, "k", "w")));
    assert_eq!(persists(&effects).len(), 1);
}

#[test]
fn t3_10_a_leader_that_sent_timeout_now_never_trusts_its_lease_again() {
    let config = RaftConfig {
        lease_reads: true,
        ..RaftConfig::default()
    };
    let mut raft = settled_leader_of(&[1, 2, 3], config);
    step_at(&mut raft, ms(50), Input::Timer(Timer::Heartbeat));
    deliver_at(&mut raft, ms(55), 2, ack(1, 1, 1));
    assert_eq!(
        replies(&step_at(&mut raft, ms(60), Input::Request(get(9, 0, "k")))).len(),
        1,
        "the lease holds"
    );
    let effects = step_at(&mut raft, ms(61), transfer(1, 3));
    assert_eq!(
        sends(&effects),
        vec![(n(3), Message::TimeoutNow { term: 1 })]
    );
    // Node 3 may now win votes from nodes that just heard from us: no more lease reads.
    let effects = step_at(&mut raft, ms(62), Input::Request(get(9, 0, "k")));
    assert!(replies(&effects).is_empty());
}

#[test]
fn t3_10_transfers_to_non_voters_are_refused_and_to_oneself_are_done() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    let why = "n4 is not a voter of the configuration (voters {n1,n2,n3})".to_string();
    assert_eq!(
        replies(&step(&mut raft, transfer(1, 4))),
        vec![err_reply(7, 1, ClientError::Rejected(why))]
    );
    assert_eq!(
        replies(&step(&mut raft, transfer(2, 1))),
        vec![ok_reply(7, 2, Output::Done)]
    );
}
