use super::*;
use crate::kv::{Op, Output, ReadMode};
use bytes::Bytes;

const ME: NodeId = NodeId(1);
const LEADER: NodeId = NodeId(2);

fn shell() -> Shell<&'static str> {
    Shell::new(ME, vec![ME, LEADER, NodeId(3)])
}

fn get(client: u64, seq: u64, key: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Get {
            key: Bytes::from(key.to_string()),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

fn value(client: u64, seq: u64, v: &str) -> Reply {
    Reply {
        client: ClientId(client),
        seq,
        result: Ok(Output::Value(Some(Bytes::from(v.to_string())))),
    }
}

fn not_leader(client: u64, seq: u64) -> Reply {
    Reply {
        client: ClientId(client),
        seq,
        result: Err(ClientError::NotLeader {
            leader: Some(LEADER),
        }),
    }
}

fn delivered(actions: &[Action<&'static str>]) -> Vec<(&'static str, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver(w, r) => Some((*w, r.seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_late_answer_to_an_earlier_read_does_not_complete_the_current_one() {
    let mut shell = shell();
    shell.submit(Time::ZERO, get(7, 1, "r1"), "first", false);
    // The first read timed out; the session's next read (of another key) waits now.
    shell.submit(Time::ZERO, get(7, 2, "r2"), "second", false);
    assert!(delivered(&shell.on_reply(value(7, 1, "r1's value"))).is_empty());
    assert_eq!(
        delivered(&shell.on_reply(value(7, 2, "r2's value"))),
        [("second", 2)]
    );
    assert_eq!(shell.waiting(), 0);
}

#[test]
fn a_request_the_node_does_not_lead_is_forwarded_and_its_answer_relayed() {
    let mut follower = shell();
    let mut leader: Shell<&'static str> = Shell::new(LEADER, vec![ME, LEADER, NodeId(3)]);
    let actions = follower.submit(Time::ZERO, get(7, 1, "k"), "client", true);
    assert!(matches!(&actions[..], [Action::Step(_)]));
    let actions = follower.on_reply(not_leader(7, 1));
    let [Action::Send(to, forward)] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(*to, LEADER);
    let actions = leader.on_message(Time::ZERO, ME, forward.clone());
    assert!(matches!(&actions[..], [Action::Step(r)] if r.seq == 1));
    let actions = leader.on_reply(value(7, 1, "v"));
    let [Action::Send(back, relayed)] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(*back, ME);
    let actions = follower.on_message(Time::ZERO, LEADER, relayed.clone());
    assert_eq!(delivered(&actions), [("client", 1)]);
}

#[test]
fn without_forward_the_not_leader_answer_reaches_the_client() {
    let mut shell = shell();
    shell.submit(Time::ZERO, get(7, 1, "k"), "client", false);
    assert_eq!(
        delivered(&shell.on_reply(not_leader(7, 1))),
        [("client", 1)]
    );
}

#[test]
fn a_relayed_answer_is_never_relayed_again() {
    // A forwarded request's waiter is the forwarding node; an answer that itself arrives
    // relayed (a confused peer) goes nowhere rather than around in circles.
    let mut shell = shell();
    shell.on_message(Time::ZERO, LEADER, ShellMsg::Forward(get(7, 1, "k")));
    let actions = shell.on_message(
        Time::ZERO,
        NodeId(3),
        ShellMsg::ForwardReply(value(7, 1, "v")),
    );
    assert!(actions.is_empty());
    let actions = shell.on_reply(value(7, 1, "v"));
    assert!(matches!(&actions[..], [Action::Send(to, ShellMsg::ForwardReply(_))] if *to == LEADER));
}

#[test]
fn old_and_abandoned_waiters_are_swept() {
    let mut shell = shell();
    shell.submit(Time::ZERO, get(1, 1, "k"), "gone", false);
    shell.submit(Time::from_nanos(50), get(2, 1, "k"), "here", false);
    shell.on_message(Time::ZERO, LEADER, ShellMsg::Forward(get(3, 1, "k")));
    shell.sweep(Time::from_nanos(100), Duration::from_nanos(80), |w| {
        *w != "gone"
    });
    assert_eq!(shell.waiting(), 1, "only client 2's young waiter stays");
    assert_eq!(delivered(&shell.on_reply(value(2, 1, "v"))), [("here", 1)]);
}
