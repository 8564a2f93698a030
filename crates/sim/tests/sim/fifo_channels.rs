//! The simulator's FIFO channels, checked with a probe protocol under every fault: between
//! two nodes, messages arrive in the order they were sent, never twice, and reordering or
//! loss happens only across a broken connection. A crash breaks every connection of the
//! crashed node: nothing sent by an earlier incarnation arrives after a later one spoke, and
//! nothing sent to an earlier incarnation reaches a later one.

use quorate_core::{
    ClientError, Durable, Effect, Effects, Input, Invariants, NodeId, NodeStatus, Output, Protocol,
    Reply, Role, Time, TimerRange, Violation,
};
use quorate_sim::{run_many, Faults, Harness, SimConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// A probe message: the sender's incarnation and its sequence number on this link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Probe {
    boot: u64,
    seq: u64,
}

/// The probe's only durable record: one per start, so a node knows its incarnation.
#[derive(Clone, Debug)]
struct Boot;

impl Durable for Boot {
    fn is_checkpoint(&self) -> bool {
        false
    }
}

/// Sends numbered probes to every peer every few milliseconds and asserts what it receives.
struct Prober {
    id: NodeId,
    peers: Vec<NodeId>,
    boot: u64,
    next_seq: BTreeMap<NodeId, u64>,
    /// The last probe received from each peer.
    last: BTreeMap<NodeId, Probe>,
    /// The probe received in the current step, for the ensemble-wide checker.
    received: Option<(NodeId, Probe)>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
struct Send;

impl Protocol for Prober {
    type Message = Probe;
    type Record = Boot;
    type Timer = Send;

    const FIFO_CHANNELS: bool = true;

    fn step(&mut self, _now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        self.received = None;
        let tick = TimerRange::between(Duration::from_micros(200)..Duration::from_millis(3));
        match input {
            Input::Start { recovered } => {
                self.boot = recovered.len() as u64 + 1;
                out.persist(Boot);
                out.set_timer(Send, tick);
            }
            Input::Timer(Send) => {
                for peer in self.peers.clone() {
                    let seq = self.next_seq.entry(peer).or_insert(0);
                    *seq += 1;
                    let probe = Probe {
                        boot: self.boot,
                        seq: *seq,
                    };
                    out.send(peer, probe);
                }
                out.set_timer(Send, tick);
            }
            Input::Message { from, msg } => {
                if let Some(last) = self.last.get(&from) {
                    assert!(
                        msg.boot >= last.boot,
                        "{}: probe of incarnation {} of {from} after incarnation {}",
                        self.id,
                        msg.boot,
                        last.boot
                    );
                    assert!(
                        msg.boot > last.boot || msg.seq > last.seq,
                        "{}: probe {:?} from {from} after {:?}: reordered or duplicated",
                        self.id,
                        msg,
                        last
                    );
                }
                self.last.insert(from, msg);
                self.received = Some((from, msg));
            }
            Input::Request(request) => out.reply(Reply {
                client: request.client,
                seq: request.seq,
                result: Ok(Output::Done),
            }),
            Input::Admin(admin) => out.reply(Reply {
                client: admin.client,
                seq: admin.seq,
                result: Err(ClientError::Rejected("probe".into())),
            }),
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.id,
            role: Role::Replica,
            term: self.boot,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            last_index: 0,
        }
    }
}

/// Remembers, for every probe sent, which incarnation of its receiver was running: a probe
/// must reach that incarnation, or nobody (not a later one, and nothing sent while the
/// receiver was down).
#[derive(Default)]
struct Ledger {
    /// The running incarnation of each node; `None` while it is down.
    running: BTreeMap<NodeId, Option<u64>>,
    /// `(from, to, boot, seq) -> the incarnation of `to` running when it was sent`.
    sent: BTreeMap<(NodeId, NodeId, u64, u64), Option<u64>>,
    delivered: u64,
    /// Consecutive deliveries on a link with a hole between them: a connection broke.
    gaps: u64,
    last_seq: BTreeMap<(NodeId, NodeId), Probe>,
}

impl Invariants<Prober> for Ledger {
    fn after_step(
        &mut self,
        id: NodeId,
        node: &Prober,
        effects: &[Effect<Prober>],
    ) -> Result<(), Violation> {
        self.running.insert(id, Some(node.boot));
        if let Some((from, probe)) = node.received {
            let sent_to = self.sent.remove(&(from, id, probe.boot, probe.seq));
            if sent_to != Some(Some(node.boot)) {
                return Err(Violation {
                    property: "connections die with their node",
                    detail: format!(
                        "incarnation {} of {id} received {probe:?} from {from}, sent to \
                         incarnation {sent_to:?} (None: while it was down)",
                        node.boot
                    ),
                });
            }
            self.delivered += 1;
            if let Some(last) = self.last_seq.insert((from, id), probe) {
                if last.boot == probe.boot && probe.seq != last.seq + 1 {
                    self.gaps += 1;
                }
            }
        }
        for effect in effects {
            if let Effect::Send { to, msg } = effect {
                let running = self.running.get(to).copied().flatten();
                self.sent.insert((id, *to, msg.boot, msg.seq), running);
            }
        }
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.running.insert(id, None);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("probes_delivered", self.delivered), ("gaps", self.gaps)]
    }
}

struct FifoProbe;

impl Harness for FifoProbe {
    type Node = Prober;
    type Invariants = Ledger;

    fn name(&self) -> &'static str {
        "fifo-probe"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Prober {
        Prober {
            id,
            peers: members.iter().copied().filter(|m| *m != id).collect(),
            boot: 0,
            next_seq: BTreeMap::new(),
            last: BTreeMap::new(),
            received: None,
        }
    }

    fn invariants(&self) -> Ledger {
        Ledger::default()
    }
}

#[test]
fn fifo_channels_reorder_and_lose_only_across_broken_connections() {
    let config = SimConfig {
        nodes: 4,
        faults: Faults::all(),
        duration: Duration::from_secs(2),
        check_history: false,
        ..SimConfig::default()
    };
    let seeds: Vec<u64> = (0..60).collect();
    let reports = run_many(&FifoProbe, &config, &seeds, 2, |_| {});
    let mut delivered = 0;
    let mut gaps = 0;
    let mut crashes = 0;
    for report in &reports {
        assert!(
            report.violations.is_empty(),
            "seed {}: {:?}",
            report.seed,
            report.violations
        );
        delivered += report.counters["probes_delivered"];
        gaps += report.counters["gaps"];
        crashes += report.stats.crashes;
    }
    // Not vacuous: much was delivered, connections did break, nodes did crash.
    assert!(delivered > 100_000, "{delivered} probes delivered");
    assert!(
        gaps > 50,
        "{gaps} gaps: partitions never broke a connection?"
    );
    assert!(crashes > 50, "{crashes} crashes");
}
