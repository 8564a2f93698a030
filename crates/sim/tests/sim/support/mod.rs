//! A scripted Raft cluster: messages are delivered only when the script says so, time advances
//! only when the script says so, and each node's clock may run fast or slow. Every step is
//! checked by [`RaftSafety`]; client answers and a Jepsen-style history are recorded.

#![allow(dead_code)] // Each test file uses a different part.

use quorate_check::{Event as HistoryEvent, EventKind, OpValue};
use quorate_core::{
    ClientId, Effect, Effects, Input, Invariants, NodeId, Op, Output, Protocol, ReadMode, Reply,
    Request, Role, Time, Violation,
};
use quorate_protocols::raft::{Message, Raft, RaftConfig, RaftSafety, Record, Timer};
use std::collections::{BTreeMap, BTreeSet};

pub const MS: u64 = 1_000_000;

pub struct Cluster {
    pub config: RaftConfig,
    /// The bootstrap configuration every node is built with.
    voters: Vec<NodeId>,
    pub nodes: BTreeMap<u64, Raft>,
    disks: BTreeMap<u64, Vec<Record>>,
    /// Messages sent and not yet delivered: (from, to, message).
    pub network: Vec<(u64, u64, Message)>,
    /// Links that drop whatever is sent on them: (from, to).
    blocked: BTreeSet<(u64, u64)>,
    /// Client answers, in order: (node, reply).
    pub replies: Vec<(u64, Reply)>,
    pub safety: RaftSafety,
    pub violations: Vec<Violation>,
    /// True time, in nanoseconds.
    pub now: u64,
    /// Clock drift per node, in parts per million of true time (+100_000 runs 10% fast).
    drift_ppm: BTreeMap<u64, i64>,
    pub history: Vec<HistoryEvent>,
}

impl Cluster {
    /// A cluster of nodes `1..=size`, all started at time 0.
    pub fn new(size: u64, config: RaftConfig) -> Cluster {
        let voters: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let mut cluster = Cluster {
            config,
            voters,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            network: Vec::new(),
            blocked: BTreeSet::new(),
            replies: Vec::new(),
            safety: RaftSafety::new(),
            violations: Vec::new(),
            now: 0,
            drift_ppm: BTreeMap::new(),
            history: Vec::new(),
        };
        for id in 1..=size {
            cluster.restart(id);
        }
        cluster
    }

    pub fn set_drift(&mut self, id: u64, ppm: i64) {
        self.drift_ppm.insert(id, ppm);
    }

    /// Node `id`'s clock at the current true time.
    pub fn local(&self, id: u64) -> Time {
        let drift = self.drift_ppm.get(&id).copied().unwrap_or(0);
        let now = i128::from(self.now);
        Time::from_nanos((now + now * i128::from(drift) / 1_000_000) as u64)
    }

    pub fn advance_to(&mut self, millis: u64) {
        assert!(millis * MS >= self.now, "time never goes back");
        self.now = millis * MS;
    }

    pub fn step(&mut self, id: u64, input: Input<Raft>) {
        let now = self.local(id);
        let node = self.nodes.get_mut(&id).expect("node is up");
        let mut out = Effects::new();
        node.step(now, input, &mut out);
        node.check_invariants();
        if let Err(v) = self.safety.after_step(NodeId(id), node, out.as_slice()) {
            self.violations.push(v);
        }
        let mut to_self = Vec::new();
        for effect in out.drain() {
            match effect {
                // Disks here are instant: what a node tells itself after a persist (rule 6
                // of the protocol contract) arrives at once.
                Effect::Send { to, msg } if to.0 == id => to_self.push(msg),
                Effect::Send { to, msg } if !self.blocked.contains(&(id, to.0)) => {
                    self.network.push((id, to.0, msg))
                }
                Effect::Persist(record) => self.disks.entry(id).or_default().push(record),
                Effect::Reply(reply) => self.replies.push((id, reply)),
                _ => {}
            }
        }
        for msg in to_self {
            let from = NodeId(id);
            self.step(id, Input::Message { from, msg });
        }
    }

    pub fn restart(&mut self, id: u64) {
        let node = Raft::new(NodeId(id), &self.voters, self.config.clone());
        self.nodes.insert(id, node);
        let recovered = self.disks.get(&id).cloned().unwrap_or_default();
        self.step(id, Input::Start { recovered });
    }

    pub fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.safety.on_crash(NodeId(id));
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Cuts every link between `group` and the other nodes, both ways; in-flight messages
    /// across the cut are lost.
    pub fn partition(&mut self, group: &[u64]) {
        let all: Vec<u64> = self.nodes.keys().copied().collect();
        for a in &all {
            for b in &all {
                if group.contains(a) != group.contains(b) {
                    self.blocked.insert((*a, *b));
                }
            }
        }
        let blocked = self.blocked.clone();
        self.network
            .retain(|(from, to, _)| !blocked.contains(&(*from, *to)));
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Delivers, repeatedly, every message among the given nodes; others stay queued.
    pub fn exchange(&mut self, among: &[u64]) {
        self.deliver_while(|from, to, _| among.contains(&from) && among.contains(&to));
    }

    /// Delivers queued messages that `select` picks, including the answers they provoke,
    /// until none is left.
    pub fn deliver_while(&mut self, select: impl Fn(u64, u64, &Message) -> bool) {
        while let Some(k) = self
            .network
            .iter()
            .position(|(from, to, msg)| select(*from, *to, msg))
        {
            let (from, to, msg) = self.network.remove(k);
            if !self.nodes.contains_key(&to) {
                continue;
            }
            let from = NodeId(from);
            self.step(to, Input::Message { from, msg });
        }
    }

    /// Lets `candidate` time out (as often as it takes) until `voters` elect it; only election
    /// messages flow meanwhile, and whatever else the new leader sent is forgotten.
    pub fn elect(&mut self, candidate: u64, voters: &[u64]) {
        let mut among = voters.to_vec();
        among.push(candidate);
        for _ in 0..4 {
            if self.role(candidate) == Role::Leader {
                break;
            }
            self.campaign(candidate, &among);
        }
        assert_eq!(self.role(candidate), Role::Leader, "n{candidate} won");
        self.network.clear();
    }

    pub fn campaign(&mut self, candidate: u64, among: &[u64]) {
        self.step(candidate, Input::Timer(Timer::Election));
        self.deliver_while(|from, to, msg| {
            among.contains(&from)
                && among.contains(&to)
                && matches!(
                    msg,
                    Message::PreVote { .. }
                        | Message::PreVoteResponse { .. }
                        | Message::RequestVote { .. }
                        | Message::RequestVoteResponse { .. }
                )
        });
    }

    pub fn role(&self, id: u64) -> Role {
        self.nodes[&id].status().role
    }

    pub fn last_index(&self, id: u64) -> u64 {
        self.nodes[&id].status().last_index
    }

    /// Delivers the leader's pending messages to `followers` and their answers.
    pub fn replicate(&mut self, leader: u64, followers: &[u64]) {
        self.network
            .retain(|(from, to, _)| *from == leader && followers.contains(to));
        let mut among = followers.to_vec();
        among.push(leader);
        self.exchange(&among);
    }

    /// A client request to `node`, recorded in the history as an invocation by `process`.
    pub fn invoke(&mut self, node: u64, process: u64, op: Op) {
        let value = match &op {
            Op::Get { .. } => OpValue::Get(None),
            Op::Put { value, .. } => OpValue::Put(text(value)),
            other => panic!("the script uses gets and puts, not {other:?}"),
        };
        self.history.push(HistoryEvent {
            process,
            kind: EventKind::Invoke,
            key: Some(text(op.key())),
            value,
            time: self.now,
            node: None,
            error: None,
            mode: Default::default(),
        });
        let request = Request {
            client: ClientId(process),
            seq: 0,
            op,
            read: ReadMode::Linearizable,
            quorum: None,
        };
        self.step(node, Input::Request(request));
    }

    /// Records the answers that reached clients so far as completions in the history.
    pub fn complete_answered(&mut self) {
        let replies = std::mem::take(&mut self.replies);
        for (node, reply) in replies {
            let invoked = self
                .history
                .iter()
                .rev()
                .find(|e| e.process == reply.client.0 && e.kind == EventKind::Invoke)
                .expect("an answer follows an invocation")
                .clone();
            let (kind, value) = match (&reply.result, &invoked.value) {
                (Ok(Output::Value(v)), OpValue::Get(_)) => {
                    (EventKind::Ok, OpValue::Get(v.as_ref().map(text)))
                }
                (Ok(_), value) => (EventKind::Ok, value.clone()),
                (Err(_), value) => (EventKind::Info, value.clone()),
            };
            self.history.push(HistoryEvent {
                kind,
                value,
                time: self.now,
                node: Some(node),
                ..invoked
            });
        }
    }
}

pub fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
    }
}

pub fn get(key: &str) -> Op {
    Op::Get {
        key: key.as_bytes().to_vec().into(),
    }
}

fn text(bytes: &bytes::Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
