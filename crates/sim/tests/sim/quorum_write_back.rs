//! ABD's write-back, shown on one scripted interleaving (Attiya, Bar-Noy & Dolev 1995).
//!
//! Three replicas, N = 3, R = 2, W = 2, every message delivered by hand:
//!
//! 1. Client A's write of "1" reaches only replica 1 (its other stores are held back).
//! 2. Client B reads through replica 2 from replicas 1 and 2: it sees "1" on replica 1.
//! 3. Client C, invoked after B returned, reads through replica 3 from replicas 2 and 3.
//!
//! Without write-back B answers "1" at once and C, whose quorum misses replica 1, answers
//! absent: B saw the new value and C, later, the old one. No order of the three operations
//! explains that, and the checker rejects the history. With write-back B first stores "1" on a
//! write quorum (replicas 1 and 2), C's read quorum meets it, and the history is linearizable.

use bytes::Bytes;
use quorate_check::linearizability::Limits;
use quorate_check::promise::linearizability;
use quorate_check::{Event as HistoryEvent, EventKind, OpValue, Verdict};
use quorate_core::{
    ClientId, Effect, Effects, Input, NodeId, Op, Output, Protocol, ReadMode, Reply, Request, Time,
};
use quorate_protocols::quorum::{Message, Quorum, QuorumConfig};

/// Three nodes and the messages between them, delivered only when the script says so.
struct Cluster {
    nodes: Vec<Quorum>,
    /// Messages sent and not yet delivered: (from, to, message).
    in_flight: Vec<(NodeId, NodeId, Message)>,
    replies: Vec<Reply>,
    history: Vec<HistoryEvent>,
    clock: u64,
}

impl Cluster {
    fn new(write_back: bool) -> Cluster {
        let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let config = QuorumConfig {
            write_back,
            read_repair: false,
            ..QuorumConfig::default()
        };
        let mut cluster = Cluster {
            nodes: Vec::new(),
            in_flight: Vec::new(),
            replies: Vec::new(),
            history: Vec::new(),
            clock: 0,
        };
        for id in &members {
            let node = Quorum::new(*id, &members, config.clone());
            cluster.nodes.push(node);
            cluster.step(*id, Input::Start { recovered: vec![] });
        }
        cluster
    }

    fn step(&mut self, id: NodeId, input: Input<Quorum>) {
        let mut out = Effects::new();
        self.nodes[id.0 as usize - 1].step(Time::ZERO, input, &mut out);
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => self.in_flight.push((id, to, msg)),
                Effect::Reply(reply) => self.replies.push(reply),
                // Persists are durable at once: nothing crashes in this script.
                Effect::Persist(_) | Effect::SetTimer { .. } | Effect::CancelTimer(_) => {}
            }
        }
    }

    /// Delivers, until none is left, every message for which `allow(from, to, msg)` holds.
    fn deliver(&mut self, allow: impl Fn(u64, u64, &Message) -> bool) {
        loop {
            let Some(at) = self
                .in_flight
                .iter()
                .position(|(from, to, msg)| allow(from.0, to.0, msg))
            else {
                return;
            };
            let (from, to, msg) = self.in_flight.remove(at);
            self.step(to, Input::Message { from, msg });
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn invoke(&mut self, process: u64, node: u64, op: Op) {
        let value = match &op {
            Op::Put { value, .. } => OpValue::Put(String::from_utf8_lossy(value).into()),
            _ => OpValue::Get(None),
        };
        self.record(process, EventKind::Invoke, value);
        let request = Request {
            client: ClientId(process),
            seq: 1,
            op,
            read: ReadMode::Linearizable,
            quorum: None,
        };
        self.step(NodeId(node), Input::Request(request));
    }

    /// Records the completion of `process`'s read, which must have been answered.
    fn complete_read(&mut self, process: u64) -> Option<String> {
        let reply = self
            .replies
            .iter()
            .find(|r| r.client == ClientId(process))
            .unwrap_or_else(|| panic!("process {process} got no answer"));
        let Ok(Output::Value(value)) = &reply.result else {
            panic!("{reply:?}")
        };
        let value = value
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        self.record(process, EventKind::Ok, OpValue::Get(value.clone()));
        value
    }

    fn record(&mut self, process: u64, kind: EventKind, value: OpValue) {
        let time = self.tick();
        self.history.push(HistoryEvent {
            process,
            kind,
            key: Some("x".into()),
            value,
            time,
            node: None,
            error: None,
            mode: Default::default(),
        });
    }
}

fn key() -> Bytes {
    Bytes::from_static(b"x")
}

/// A message of the operation coordinated by `coordinator` between it and `replicas`.
fn exchange(coordinator: u64, replicas: &[u64]) -> impl Fn(u64, u64, &Message) -> bool + '_ {
    move |from, to, msg| {
        let request = matches!(msg, Message::Query { .. } | Message::Store { .. });
        let answer = matches!(msg, Message::QueryReply { .. } | Message::StoreAck { .. });
        (request && from == coordinator && replicas.contains(&to))
            || (answer && to == coordinator && replicas.contains(&from))
    }
}

/// Runs the script; returns what B and C read and the checker's verdict.
fn script(write_back: bool) -> (Option<String>, Option<String>, Verdict) {
    let mut c = Cluster::new(write_back);
    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;
    // 1. A writes through replica 1: its read phase completes with replicas 1 and 2, then
    //    only replica 1 receives the store. The stores to replicas 2 and 3 stay in flight.
    c.invoke(
        A,
        1,
        Op::Put {
            key: key(),
            value: Bytes::from_static(b"1"),
        },
    );
    c.deliver(|from, to, msg| {
        let query = matches!(msg, Message::Query { .. } | Message::QueryReply { .. });
        query && from != 3 && to != 3
    });
    c.deliver(|from, to, msg| matches!(msg, Message::Store { .. }) && from == 1 && to == 1);
    // 2. B reads through replica 2, from replicas 1 and 2 (writing back to them, if it must).
    c.invoke(B, 2, Op::Get { key: key() });
    c.deliver(exchange(2, &[1, 2]));
    let b_read = c.complete_read(B);
    // 3. C, invoked after B returned, reads through replica 3 from replicas 2 and 3.
    c.invoke(C, 3, Op::Get { key: key() });
    c.deliver(exchange(3, &[2, 3]));
    let c_read = c.complete_read(C);
    let (verdict, _) = linearizability(&c.history, &Limits::default());
    (b_read, c_read, verdict)
}

#[test]
fn a_quorum_read_without_write_back_lets_a_later_read_see_an_older_value() {
    let (b, c, verdict) = script(false);
    assert_eq!(b.as_deref(), Some("1"), "B saw the write in progress");
    assert_eq!(c, None, "C, invoked after B returned, did not");
    assert_eq!(
        verdict,
        Verdict::NotLinearizable,
        "the checker rejects the history"
    );
}

#[test]
fn write_back_makes_the_same_interleaving_linearizable() {
    let (b, c, verdict) = script(true);
    assert_eq!(b.as_deref(), Some("1"));
    assert_eq!(c.as_deref(), Some("1"), "C's quorum met B's write-back");
    assert_eq!(verdict, Verdict::Linearizable);
}
