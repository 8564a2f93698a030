//! A scripted cluster for scenario tests: nodes step only when the test says so, and messages
//! wait in a network until the test delivers or drops them. Records go to per-node disks and
//! are durable at once (the simulator is where fsync latency and torn writes live); a
//! cluster-wide checker watches every step, as in the simulator.

use quorate_core::{Effect, Effects, Input, Invariants, NodeId, Protocol, Reply, Time, Violation};
use std::collections::BTreeMap;

/// A message in flight: sender, receiver, message.
pub(crate) type InFlight<M> = (u64, u64, M);

pub(crate) struct Cluster<P: Protocol, I: Invariants<P>> {
    make: Box<dyn Fn(NodeId) -> P>,
    pub nodes: BTreeMap<u64, P>,
    pub disks: BTreeMap<u64, Vec<P::Record>>,
    pub network: Vec<InFlight<P::Message>>,
    /// Replies to clients, with the node that sent them, in order.
    pub replies: Vec<(u64, Reply)>,
    pub checker: I,
    pub violations: Vec<Violation>,
    /// Passed as `now` to every step; tests move it by hand.
    pub now: Time,
}

impl<P: Protocol, I: Invariants<P>> Cluster<P, I> {
    /// Starts nodes `1..=size`, each built by `make`.
    pub fn new(size: u64, make: impl Fn(NodeId) -> P + 'static, checker: I) -> Self {
        let mut cluster = Cluster {
            make: Box::new(make),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            network: Vec::new(),
            replies: Vec::new(),
            checker,
            violations: Vec::new(),
            now: Time::ZERO,
        };
        for id in 1..=size {
            cluster.restart(id);
        }
        cluster
    }

    pub fn node(&self, id: u64) -> &P {
        &self.nodes[&id]
    }

    /// Feeds one input to node `id`, checks it, carries out its effects and returns them.
    pub fn step(&mut self, id: u64, input: Input<P>) -> Vec<Effect<P>> {
        self.checker.before_step(self.now, NodeId(id), &input);
        let node = self.nodes.get_mut(&id).expect("the node is up");
        let mut out = Effects::new();
        node.step(self.now, input, &mut out);
        node.check_invariants();
        if let Err(v) = self.checker.after_step(NodeId(id), node, out.as_slice()) {
            self.violations.push(v);
        }
        let effects: Vec<Effect<P>> = out.drain().collect();
        for effect in &effects {
            match effect {
                Effect::Send { to, msg } => {
                    if let Err(v) = self.checker.on_send(self.now, NodeId(id), *to, msg) {
                        self.violations.push(v);
                    }
                    self.network.push((id, to.0, msg.clone()))
                }
                Effect::Persist(record) => self.disks.entry(id).or_default().push(record.clone()),
                Effect::Reply(reply) => self.replies.push((id, reply.clone())),
                Effect::SetTimer { .. } | Effect::CancelTimer(_) => {}
            }
        }
        effects
    }

    /// Builds node `id` afresh from its disk and starts it.
    pub fn restart(&mut self, id: u64) {
        self.nodes.insert(id, (self.make)(NodeId(id)));
        let recovered = self.disks.get(&id).cloned().unwrap_or_default();
        self.step(id, Input::Start { recovered });
    }

    /// Node `id` loses its volatile state and every message to or from it.
    pub fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.checker.on_crash(NodeId(id));
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Delivers the first message in flight that `select` picks; false if there is none.
    pub fn deliver_one(&mut self, select: impl Fn(u64, u64, &P::Message) -> bool) -> bool {
        let Some(k) = self
            .network
            .iter()
            .position(|(from, to, msg)| select(*from, *to, msg) && self.nodes.contains_key(to))
        else {
            return false;
        };
        let (from, to, msg) = self.network.remove(k);
        self.step(
            to,
            Input::Message {
                from: NodeId(from),
                msg,
            },
        );
        true
    }

    /// Delivers messages `select` picks, including the ones they provoke, until none is left.
    pub fn deliver_while(&mut self, select: impl Fn(u64, u64, &P::Message) -> bool) {
        while self.deliver_one(&select) {}
    }

    /// Removes (loses) every message in flight that `select` picks.
    pub fn lose(&mut self, select: impl Fn(u64, u64, &P::Message) -> bool) {
        self.network
            .retain(|(from, to, msg)| !select(*from, *to, msg));
    }
}
