//! Test helpers shared by the primary-backup and chain scenario tests: single replicas fed
//! exact inputs, and a small cluster whose messages are delivered only when a test says so.

use super::{Message, Record, Replica, ReplicaConfig, Timer, ViewSafety};
pub use crate::effects::{replies, sends};
use quorate_core::{
    ClientId, Effect, Effects, Input, Invariants, NodeId, Op, Output, Protocol, ReadMode, Reply,
    Request, Time,
};
use std::collections::BTreeMap;

pub fn n(id: u64) -> NodeId {
    NodeId(id)
}

pub fn members(size: u64) -> Vec<NodeId> {
    (1..=size).map(n).collect()
}

/// A started replica `id` of a group of `size`.
pub fn replica(id: u64, size: u64, config: ReplicaConfig) -> Replica {
    let mut replica = Replica::new(n(id), &members(size), config);
    step(&mut replica, Input::Start { recovered: vec![] });
    replica
}

pub fn step_at(replica: &mut Replica, now: Time, input: Input<Replica>) -> Vec<Effect<Replica>> {
    let mut out = Effects::new();
    replica.step(now, input, &mut out);
    replica.check_invariants();
    out.drain().collect()
}

pub fn step(replica: &mut Replica, input: Input<Replica>) -> Vec<Effect<Replica>> {
    step_at(replica, Time::ZERO, input)
}

pub fn deliver(replica: &mut Replica, from: u64, msg: Message) -> Vec<Effect<Replica>> {
    step(replica, Input::Message { from: n(from), msg })
}

/// `from` asks `replica` to change to `view`, holding no writes: the replica moves to that
/// view (and refuses older ones from then on).
pub fn hear_view_change(replica: &mut Replica, from: u64, view: u64) -> Vec<Effect<Replica>> {
    let ask = Message::StartViewChange {
        view,
        last_op: 0,
        last_view: 0,
    };
    deliver(replica, from, ask)
}

pub fn put(client: u64, seq: u64, key: &str, value: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Put {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

pub fn get(client: u64, key: &str, read: ReadMode) -> Request {
    Request {
        client: ClientId(client),
        seq: 0,
        op: Op::Get {
            key: key.as_bytes().to_vec().into(),
        },
        read,
        quorum: None,
    }
}

pub fn value(text: &str) -> Output {
    Output::Value(Some(text.as_bytes().to_vec().into()))
}

/// Replicas whose messages wait in `network` until a test delivers them, with disks and the
/// cluster-wide safety checker.
pub struct Cluster {
    pub config: ReplicaConfig,
    pub size: u64,
    pub nodes: BTreeMap<u64, Replica>,
    pub disks: BTreeMap<u64, Vec<Record>>,
    /// Sent and not yet delivered: (from, to, message).
    pub network: Vec<(u64, u64, Message)>,
    pub replies: Vec<(u64, Reply)>,
    /// `Timer::Durable` notifications set and not yet fired: the scripted disks are instant,
    /// so they fire before the next message is delivered.
    pub durable_timers: Vec<(u64, Timer)>,
    pub safety: ViewSafety,
    pub violations: Vec<String>,
    pub now: Time,
}

impl Cluster {
    pub fn new(size: u64, config: ReplicaConfig) -> Cluster {
        let mut cluster = Cluster {
            config,
            size,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            network: Vec::new(),
            replies: Vec::new(),
            durable_timers: Vec::new(),
            safety: ViewSafety::new(),
            violations: Vec::new(),
            now: Time::ZERO,
        };
        for id in 1..=size {
            cluster.restart(id);
        }
        cluster
    }

    pub fn step(&mut self, id: u64, input: Input<Replica>) {
        let node = self.nodes.get_mut(&id).expect("node is up");
        let mut out = Effects::new();
        node.step(self.now, input, &mut out);
        node.check_invariants();
        if let Err(v) = self.safety.after_step(n(id), node, out.as_slice()) {
            self.violations.push(v.to_string());
        }
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => self.network.push((id, to.0, msg)),
                Effect::Persist(record) => self.disks.entry(id).or_default().push(record),
                Effect::Reply(reply) => self.replies.push((id, reply)),
                Effect::SetTimer {
                    timer: timer @ Timer::Durable { .. },
                    ..
                } => self.durable_timers.push((id, timer)),
                _ => {}
            }
        }
    }

    pub fn restart(&mut self, id: u64) {
        let node = Replica::new(n(id), &members(self.size), self.config.clone());
        self.nodes.insert(id, node);
        let recovered = self.disks.get(&id).cloned().unwrap_or_default();
        self.step(id, Input::Start { recovered });
    }

    pub fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.durable_timers.retain(|(node, _)| *node != id);
        self.safety.on_crash(n(id));
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Delivers, repeatedly, every message among `among` (answers included); the rest waits.
    pub fn exchange(&mut self, among: &[u64]) {
        self.deliver_while(|from, to, _| among.contains(&from) && among.contains(&to));
    }

    pub fn deliver_while(&mut self, select: impl Fn(u64, u64, &Message) -> bool) {
        let mut delivered = 0;
        self.fire_durable_timers();
        while let Some(k) = self
            .network
            .iter()
            .position(|(from, to, msg)| select(*from, *to, msg))
        {
            let (from, to, msg) = self.network.remove(k);
            if self.nodes.contains_key(&to) {
                self.step(to, Input::Message { from: n(from), msg });
            }
            delivered += 1;
            assert!(delivered < 100_000, "the exchange does not settle");
            self.fire_durable_timers();
        }
    }

    /// Fires the pending durability notifications (the scripted disks are instant).
    pub fn fire_durable_timers(&mut self) {
        while !self.durable_timers.is_empty() {
            let (id, timer) = self.durable_timers.remove(0);
            if self.nodes.contains_key(&id) {
                self.step(id, Input::Timer(timer));
            }
        }
    }

    /// Drops every undelivered message from or to `id`.
    pub fn drop_messages_of(&mut self, id: u64) {
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Lets `candidate`'s view-change timer fire and delivers the campaign among `among`, with
    /// `ticks` gather timeouts for chains.
    pub fn elect(&mut self, candidate: u64, among: &[u64]) {
        self.step(candidate, Input::Timer(Timer::ViewChange));
        self.exchange(among);
        if !self.nodes[&candidate].is_primary() {
            self.step(candidate, Input::Timer(Timer::Gather));
            self.exchange(among);
        }
        assert!(self.nodes[&candidate].is_primary(), "n{candidate} won");
    }

    pub fn request(&mut self, id: u64, request: Request) {
        self.step(id, Input::Request(request));
    }

    pub fn tick(&mut self, id: u64) {
        self.step(id, Input::Timer(Timer::Heartbeat));
    }

    /// The replies emitted so far for `client`'s request `seq`.
    pub fn replies_to(&self, client: u64, seq: u64) -> Vec<(u64, Reply)> {
        self.replies
            .iter()
            .filter(|(_, r)| r.client == ClientId(client) && r.seq == seq)
            .cloned()
            .collect()
    }
}
