use super::*;
use bytes::Bytes;

fn get(key: &str) -> Op {
    Op::Get {
        key: Bytes::from(key.to_string()),
    }
}

fn put(key: &str) -> Op {
    Op::Put {
        key: Bytes::from(key.to_string()),
        value: Bytes::from_static(b"v"),
    }
}

fn policy(follow: Follow) -> CallPolicy {
    CallPolicy {
        retry_pause: Duration::from_millis(20),
        redirect_pause: Duration::ZERO,
        redirects_before_pause: 2,
        follow,
    }
}

fn never() -> ClientId {
    panic!("no fresh id expected")
}

/// A linearizable call of `op` that follows leaders, in a session that needs no fresh id.
fn start(session: &mut Session, op: Op) -> Call {
    Call::start(
        session,
        op,
        ReadMode::Linearizable,
        policy(Follow::Retry),
        never,
    )
}

#[test]
fn every_request_reads_included_has_its_own_number() {
    let mut session = Session::new(ClientId(7));
    let a = start(&mut session, put("a"));
    let b = start(&mut session, get("a"));
    let c = start(&mut session, get("b"));
    let seqs = [a.request().seq, b.request().seq, c.request().seq];
    assert_eq!(seqs, [1, 2, 3]);
    // The answer to read b (seq 2) does not answer read c (seq 3), though both are reads.
    let late = Reply {
        client: ClientId(7),
        seq: 2,
        result: Ok(Output::Value(None)),
    };
    assert!(b.is_answered_by(&late));
    assert!(!c.is_answered_by(&late));
}

#[test]
fn the_broken_client_shares_number_zero_between_reads() {
    let mut session = Session::new(ClientId(7)).with_bug(Some(ClientBug::ReadsWithoutIdentity));
    let b = start(&mut session, get("a"));
    let c = start(&mut session, get("b"));
    let late = Reply {
        client: ClientId(7),
        seq: b.request().seq,
        result: Ok(Output::Value(None)),
    };
    assert!(c.is_answered_by(&late), "the bug this variant plants");
}

#[test]
fn a_write_after_reads_opens_a_fresh_session() {
    let mut session = Session::new(ClientId(7));
    Call::start(
        &mut session,
        get("a"),
        ReadMode::Local,
        policy(Follow::Retry),
        never,
    );
    let w = Call::start(
        &mut session,
        put("a"),
        ReadMode::Linearizable,
        policy(Follow::Retry),
        || ClientId(8),
    );
    assert_eq!((w.request().client, w.request().seq), (ClientId(8), 1));
    let r = Call::start(
        &mut session,
        get("a"),
        ReadMode::Local,
        policy(Follow::Retry),
        never,
    );
    assert_eq!((r.request().client, r.request().seq), (ClientId(8), 2));
    // A resumed session is open: its writes keep the id.
    let mut resumed = Session::resumed(ClientId(9), 5);
    let w = start(&mut resumed, put("a"));
    assert_eq!((w.request().client, w.request().seq), (ClientId(9), 5));
}

#[test]
fn not_leader_is_followed_then_paced() {
    let mut session = Session::new(ClientId(1));
    let mut call = start(&mut session, put("a"));
    let not_leader = || {
        Err(ClientError::NotLeader {
            leader: Some(NodeId(2)),
        })
    };
    let hop = |pause| Step::Send {
        to: Some(NodeId(2)),
        pause,
    };
    assert_eq!(call.on_reply(NodeId(1), not_leader()), hop(Duration::ZERO));
    assert_eq!(call.on_reply(NodeId(1), not_leader()), hop(Duration::ZERO));
    assert_eq!(
        call.on_reply(NodeId(1), not_leader()),
        hop(Duration::from_millis(20))
    );
    assert!(!call.may_have_taken_effect(), "NotLeader is definite");
    let done = call.on_reply(NodeId(2), Ok(Output::Done));
    assert_eq!(done, Step::Done(Outcome::Ok(Output::Done)));
}

#[test]
fn redirect_only_while_nothing_may_have_taken_effect() {
    let mut session = Session::new(ClientId(1));
    let not_leader = || {
        Err(ClientError::NotLeader {
            leader: Some(NodeId(3)),
        })
    };
    let mut call = Call::start(
        &mut session,
        put("a"),
        ReadMode::Linearizable,
        policy(Follow::Redirect),
        never,
    );
    assert_eq!(
        call.on_reply(NodeId(1), not_leader()),
        Step::Done(Outcome::Redirect(NodeId(3)))
    );
    let mut call = Call::start(
        &mut session,
        put("a"),
        ReadMode::Linearizable,
        policy(Follow::Redirect),
        never,
    );
    assert!(matches!(call.on_timeout(), Step::Send { to: None, .. }));
    assert!(call.may_have_taken_effect());
    assert!(matches!(
        call.on_reply(NodeId(1), not_leader()),
        Step::Done(Outcome::Unknown(_))
    ));
}

#[test]
fn a_refused_retry_of_a_write_that_may_have_applied_is_unknown() {
    let mut session = Session::new(ClientId(1));
    let rejected = || Err(ClientError::Rejected("busy".into()));
    let mut call = start(&mut session, put("a"));
    assert_eq!(
        call.on_reply(NodeId(1), rejected()),
        Step::Done(Outcome::Rejected("busy".into()))
    );
    let mut call = start(&mut session, put("a"));
    call.on_reply(NodeId(1), Err(ClientError::Indeterminate { leader: None }));
    assert!(matches!(
        call.on_reply(NodeId(1), rejected()),
        Step::Done(Outcome::Unknown(_))
    ));
    // A read that timed out has taken no effect: a refusal of its retry is a refusal.
    let mut call = start(&mut session, get("a"));
    call.on_timeout();
    assert_eq!(
        call.on_reply(NodeId(1), rejected()),
        Step::Done(Outcome::Rejected("busy".into()))
    );
}

#[test]
fn expired_sessions_end_the_call() {
    let mut session = Session::new(ClientId(1));
    let mut call = start(&mut session, put("a"));
    assert_eq!(
        call.on_reply(NodeId(1), Err(ClientError::SessionExpired)),
        Step::Done(Outcome::Expired)
    );
}
