//! ZAB's synchronization phase, scripted message by message on a five-server ensemble: a
//! follower slightly behind the new leader gets a DIFF, one far behind (past the leader's
//! snapshot) gets a SNAP, and one holding an uncommitted proposal of an old epoch gets a
//! TRUNC. The ensemble-wide safety checks run after every step; the deliberately broken
//! leader that skips synchronization is caught by them on the same script.

use quorate_core::{
    ClientId, Effect, Effects, Input, Invariants, NodeId, Op, Protocol, ReadMode, Request, Time,
    Violation,
};
use quorate_protocols::zab::{
    Bug, LeaderMessage, Message, PeerState, Record, Timer, Zab, ZabConfig, ZabSafety, Zxid,
};
use std::collections::BTreeMap;

/// Five ZAB servers whose messages move only when the script says so. Links are FIFO: the
/// network is one queue, and delivery always takes the oldest message of a link.
struct Cluster {
    config: ZabConfig,
    nodes: BTreeMap<u64, Zab>,
    disks: BTreeMap<u64, Vec<Record>>,
    network: Vec<(u64, u64, Message)>,
    safety: ZabSafety,
    violations: Vec<Violation>,
    now: Time,
    /// Every synchronization payload a leader sent: (leader, follower, payload kind).
    syncs: Vec<(u64, u64, &'static str)>,
    next_client: u64,
}

const IDS: [NodeId; 5] = [NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)];

impl Cluster {
    fn new(config: ZabConfig) -> Cluster {
        let mut cluster = Cluster {
            config,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            network: Vec::new(),
            safety: ZabSafety::new(),
            violations: Vec::new(),
            now: Time::ZERO,
            syncs: Vec::new(),
            next_client: 1,
        };
        for id in 1..=5 {
            cluster.restart(id);
        }
        cluster
    }

    fn step(&mut self, id: u64, input: Input<Zab>) {
        let node = self.nodes.get_mut(&id).expect("node is up");
        let mut out = Effects::new();
        node.step(self.now, input, &mut out);
        node.check_invariants();
        if let Err(v) = self.safety.after_step(NodeId(id), node, out.as_slice()) {
            self.violations.push(v);
        }
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => {
                    if let Message::ToLearner { msg: payload, .. } = &msg {
                        let kind = match payload {
                            LeaderMessage::Diff { .. } => Some("DIFF"),
                            LeaderMessage::Trunc { .. } => Some("TRUNC"),
                            LeaderMessage::Snap { .. } => Some("SNAP"),
                            _ => None,
                        };
                        if let Some(kind) = kind {
                            self.syncs.push((id, to.0, kind));
                        }
                    }
                    if self.nodes.contains_key(&to.0) {
                        self.network.push((id, to.0, msg));
                    }
                }
                Effect::Persist(record) => self.disks.entry(id).or_default().push(record),
                _ => {}
            }
        }
    }

    fn restart(&mut self, id: u64) {
        let node = Zab::new(NodeId(id), &IDS, self.config.clone());
        self.nodes.insert(id, node);
        let recovered = self.disks.get(&id).cloned().unwrap_or_default();
        self.step(id, Input::Start { recovered });
    }

    /// A crash: the server's connections die with it.
    fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.safety.on_crash(NodeId(id));
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Delivers the oldest queued message matching `pred`, if any.
    fn deliver_first(&mut self, pred: impl Fn(u64, u64, &Message) -> bool) -> bool {
        let Some(index) = self.network.iter().position(|(f, t, m)| pred(*f, *t, m)) else {
            return false;
        };
        let (from, to, msg) = self.network.remove(index);
        if self.nodes.contains_key(&to) {
            self.step(
                to,
                Input::Message {
                    from: NodeId(from),
                    msg,
                },
            );
        }
        true
    }

    /// Delivers, in order, every message among `among` until none is left.
    fn exchange(&mut self, among: &[u64]) {
        while self.deliver_first(|f, t, _| among.contains(&f) && among.contains(&t)) {}
    }

    /// Runs election among `among` (finalize waits elapse whenever the network is quiet)
    /// until all of them follow or lead, and synchronization has finished.
    fn settle(&mut self, among: &[u64]) {
        for _ in 0..20 {
            self.exchange(among);
            let looking: Vec<u64> = among
                .iter()
                .copied()
                .filter(|id| self.nodes[id].peer_state() == PeerState::Looking)
                .collect();
            if looking.is_empty() {
                return;
            }
            for id in looking {
                self.step(id, Input::Timer(Timer::Finalize));
            }
        }
        panic!("{among:?} did not settle");
    }

    /// Lets time pass beyond the sync limit and ticks `id`.
    fn tick_late(&mut self, id: u64) {
        self.now = self.now + self.config.tick * (self.config.sync_limit + 1);
        self.step(id, Input::Timer(Timer::Tick));
    }

    fn write(&mut self, at: u64, value: &str) {
        let request = Request {
            client: ClientId(self.next_client),
            seq: 1,
            op: Op::Put {
                key: "k".into(),
                value: value.as_bytes().to_vec().into(),
            },
            read: ReadMode::Linearizable,
            quorum: None,
        };
        self.next_client += 1;
        self.step(at, Input::Request(request));
    }

    fn leader(&self) -> u64 {
        let leading: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.peer_state() == PeerState::Leading)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(leading.len(), 1, "one leader among the live servers");
        leading[0]
    }

    fn zxids(&self, id: u64) -> (Zxid, Vec<Zxid>) {
        let node = &self.nodes[&id];
        (
            node.snapshot().last_zxid,
            node.txns().iter().map(|t| t.zxid).collect(),
        )
    }

    fn sync_kind(&self, follower: u64) -> Vec<&'static str> {
        let sent = self.syncs.iter().filter(|(_, to, _)| *to == follower);
        sent.map(|(_, _, kind)| *kind).collect()
    }
}

fn z(epoch: u64, counter: u64) -> Zxid {
    Zxid::new(epoch, counter)
}

fn config() -> ZabConfig {
    ZabConfig {
        snapshot_threshold: 3,
        ..ZabConfig::default()
    }
}

/// The script. With `strict`, it also asserts how each follower was synchronized (which a
/// broken leader would not do). Returns the cluster at the end.
fn script(config: ZabConfig, strict: bool) -> Cluster {
    let mut c = Cluster::new(config);
    let all = [1, 2, 3, 4, 5];

    // Epoch 1: everyone votes for the highest id, n5; one write reaches everyone.
    c.settle(&all);
    assert_eq!(c.leader(), 5);
    c.write(5, "a");
    c.exchange(&all);
    assert_eq!(c.nodes[&1].committed(), z(1, 1));

    // n1 crashes: it will be far behind. Four more writes; the others compact their logs.
    c.crash(1);
    for value in ["b", "c", "d", "e"] {
        c.write(5, value);
        c.exchange(&[2, 3, 4, 5]);
    }
    // n2 crashes: it will be one write behind.
    c.crash(2);
    c.write(5, "f");
    c.exchange(&[3, 4, 5]);
    assert_eq!(c.nodes[&3].committed(), z(1, 6));

    // 1.7 is proposed, reaches n4 only, and is never committed: n5 and n4 crash.
    c.write(5, "g");
    while c.deliver_first(|f, t, _| f == 5 && t == 4) {}
    assert_eq!(c.nodes[&4].last_zxid(), z(1, 7));
    assert_eq!(c.nodes[&3].last_zxid(), z(1, 6));
    c.crash(5);
    c.crash(4);

    // n3 notices its leader is gone; n1 and n2 come back. n3 holds the most recent history
    // of the three, so it leads epoch 2 and synchronizes the other two.
    c.tick_late(3);
    c.restart(1);
    c.restart(2);
    c.settle(&[1, 2, 3]);
    assert_eq!(c.leader(), 3);
    if strict {
        let (snapshot, _) = c.zxids(3);
        assert!(
            snapshot > z(1, 1),
            "the leader compacted past n1: {snapshot}"
        );
        assert!(snapshot <= z(1, 5), "but not past n2: {snapshot}");
        assert_eq!(c.sync_kind(2), vec!["DIFF", "DIFF"], "n2 is behind: DIFF");
        assert_eq!(
            c.sync_kind(1),
            vec!["DIFF", "SNAP"],
            "n1 is far behind: SNAP"
        );
    }
    c.write(3, "h");
    c.exchange(&[1, 2, 3]);
    assert_eq!(c.nodes[&1].committed(), z(2, 1));

    // n4 and n5 come back with the uncommitted 1.7: they join n3's epoch and are truncated.
    c.restart(4);
    c.restart(5);
    c.settle(&all);
    if strict {
        assert_eq!(c.sync_kind(4).last(), Some(&"TRUNC"));
        assert_eq!(c.sync_kind(5).last(), Some(&"TRUNC"));
    }
    c.write(3, "i");
    c.exchange(&all);
    c
}

#[test]
fn followers_are_synchronized_by_diff_snap_and_trunc() {
    let c = script(config(), true);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    // Everyone ends with the same history and state; 1.7 is gone.
    for id in 1..=5 {
        let node = &c.nodes[&id];
        assert_eq!(node.committed(), z(2, 2), "n{id}");
        assert!(
            node.txns().iter().all(|t| t.zxid != z(1, 7)),
            "n{id} kept 1.7"
        );
        assert_eq!(
            node.state_machine().get(b"k").map(|v| v.as_ref()),
            Some(&b"i"[..]),
            "n{id}"
        );
    }
    let reference = c.nodes[&3].state_machine().clone();
    for id in 1..=5 {
        assert_eq!(c.nodes[&id].state_machine(), &reference, "n{id} diverged");
    }
}

#[test]
fn a_leader_that_skips_synchronization_is_caught_on_the_same_script() {
    let config = ZabConfig {
        bug: Some(Bug::SkipSynchronization),
        ..config()
    };
    let c = script(config, false);
    assert!(
        c.syncs.is_empty(),
        "the broken leader sends no DIFF, TRUNC or SNAP"
    );
    let first = c
        .violations
        .first()
        .expect("skipping synchronization went unnoticed");
    // n1 missed 1.2 to 1.6 and was never sent them: it delivers 2.1 right after 1.1.
    assert_eq!(first.property, "total order", "{first}");
    assert!(
        first.detail.contains("n1 delivered 2.1 right after 1.1"),
        "{first}"
    );
}
