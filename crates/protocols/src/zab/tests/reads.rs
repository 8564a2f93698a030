//! Reads and requests at followers, administration, and recovery.

use super::*;

#[test]
fn reads_a_plain_read_is_answered_from_local_state() {
    let mut zab = serving_follower(config());
    deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(txn(1, 1))),
    );
    let effects = step(&mut zab, Input::Request(get(5, 1, "k", ReadMode::Local)));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(None)),
        "1.1 is not committed"
    );
    deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Commit { zxid: z(1, 1) }),
    );
    let effects = step(&mut zab, Input::Request(get(5, 2, "k", ReadMode::Local)));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(Some("1.1".into())))
    );
}

#[test]
fn reads_a_server_that_is_not_serving_refuses_every_request() {
    let mut zab = connected_follower(vec![], config());
    for request in [get(5, 1, "k", ReadMode::Local), put(5, 1, "k", "v")] {
        let effects = step(&mut zab, Input::Request(request));
        assert_eq!(
            replies(&effects)[0].result,
            Err(ClientError::NotLeader { leader: None })
        );
    }
}

#[test]
fn reads_sync_waits_for_the_leader_and_the_commits_before_its_answer() {
    let mut zab = serving_follower(config());
    deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(txn(1, 1))),
    );
    let effects = step(&mut zab, Input::Request(get(5, 1, "k", ReadMode::Sync)));
    let sync = to_leader(
        1,
        5,
        LearnerMessage::Sync {
            client: ClientId(5),
            seq: 1,
        },
    );
    assert_eq!(sends(&effects), vec![(n(1), sync)]);
    assert!(replies(&effects).is_empty());
    deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Commit { zxid: z(1, 1) }),
    );
    let done = LeaderMessage::SyncDone {
        client: ClientId(5),
        seq: 1,
    };
    let effects = deliver(&mut zab, 1, to_learner(1, 7, done));
    assert_eq!(
        replies(&effects)[0].result,
        Ok(Output::Value(Some("1.1".into())))
    );
}

#[test]
fn reads_the_leader_answers_a_sync_once_what_it_proposed_is_committed() {
    let mut zab = broadcasting_leader(config());
    step(&mut zab, Input::Request(put(5, 1, "k", "v")));
    let sync = LearnerMessage::Sync {
        client: ClientId(6),
        seq: 1,
    };
    let effects = deliver(&mut zab, 2, to_leader(7, 4, sync));
    assert!(sends(&effects).is_empty(), "1.1 is outstanding");
    deliver(
        &mut zab,
        1,
        Message::SelfAck {
            epoch: 1,
            zxid: z(1, 1),
        },
    );
    let effects = deliver(
        &mut zab,
        2,
        to_leader(7, 5, LearnerMessage::Ack { zxid: z(1, 1) }),
    );
    let sent = sends(&effects);
    assert!(matches!(
        sent[0].1,
        Message::ToLearner {
            msg: LeaderMessage::Commit { .. },
            ..
        }
    ));
    let done = LeaderMessage::SyncDone {
        client: ClientId(6),
        seq: 1,
    };
    assert_eq!(sent[1], (n(2), to_learner(7, 7, done)), "after the COMMIT");
}

#[test]
fn reads_a_write_at_a_follower_is_forwarded_and_answered_once_applied_there() {
    let mut zab = serving_follower(config());
    let request = put(5, 1, "k", "v");
    let effects = step(&mut zab, Input::Request(request.clone()));
    let forwarded = to_leader(1, 4, LearnerMessage::Request(request.clone()));
    assert_eq!(sends(&effects), vec![(n(1), forwarded)]);
    let proposal = Txn {
        zxid: z(1, 1),
        command: request.command(),
    };
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 5, LeaderMessage::Proposal(proposal)),
    );
    assert!(replies(&effects).is_empty(), "proposed, not committed");
    let effects = deliver(
        &mut zab,
        1,
        to_learner(1, 6, LeaderMessage::Commit { zxid: z(1, 1) }),
    );
    assert_eq!(replies(&effects)[0].result, Ok(Output::Done));
    // A retry is answered from the session table.
    let effects = step(&mut zab, Input::Request(request));
    assert_eq!(replies(&effects)[0].result, Ok(Output::Done));
}

#[test]
fn reads_a_linearizable_read_goes_through_the_log() {
    let mut zab = broadcasting_leader(config());
    let effects = step(
        &mut zab,
        Input::Request(get(5, 1, "k", ReadMode::Linearizable)),
    );
    assert!(replies(&effects).is_empty());
    let Record::Txns(txns) = &persisted(&effects)[0] else {
        panic!("a proposal")
    };
    assert!(txns[0].command.op.is_read());
}

#[test]
fn admin_requests_are_rejected() {
    let mut zab = broadcasting_leader(config());
    let admin = AdminRequest {
        client: ClientId(1),
        seq: 1,
        command: AdminCommand::AddVoter(n(4)),
    };
    let effects = step(&mut zab, Input::Admin(admin));
    assert!(matches!(
        replies(&effects)[..],
        [Reply {
            result: Err(ClientError::Rejected(_)),
            ..
        }]
    ));
}

#[test]
fn recovery_restores_epochs_and_history_but_delivers_only_the_snapshot() {
    let records = vec![
        Record::AcceptedEpoch(2),
        Record::CurrentEpoch(2),
        Record::Txns(vec![txn(1, 1), txn(2, 1), txn(2, 2)]),
        Record::Truncate { after: z(2, 1) },
    ];
    let zab = server(1, 3, records, config());
    assert_eq!((zab.accepted_epoch(), zab.current_epoch()), (2, 2));
    assert_eq!(zab.last_zxid(), z(2, 1));
    assert_eq!(
        zab.committed(),
        Zxid::ZERO,
        "what is committed waits for a leader"
    );
    assert_eq!(
        zab.own_vote().zxid,
        z(2, 1),
        "elections see the whole history"
    );
}
