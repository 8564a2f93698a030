//! Raft §5.4.2, Figure 8, scripted message by message on a five-node cluster: why a leader
//! must not commit an entry of an earlier term by counting replicas. The correct Raft refuses
//! the commit at step (c); the deliberately broken variant commits it, and the cluster-wide
//! checker reports the violation when step (d) elects a leader without that entry.

use quorate_core::{
    ClientId, Effect, Effects, Input, Invariants, NodeId, Op, ReadMode, Request, Role,
};
use quorate_core::{Protocol, Time, Violation};
use quorate_protocols::raft::{Bug, Message, Raft, RaftConfig, RaftSafety, Record, Timer};
use std::collections::BTreeMap;

/// Five Raft nodes whose messages are delivered only when the script says so.
struct Cluster {
    config: RaftConfig,
    nodes: BTreeMap<u64, Raft>,
    disks: BTreeMap<u64, Vec<Record>>,
    /// Messages sent and not yet delivered: (from, to, message).
    network: Vec<(u64, u64, Message)>,
    safety: RaftSafety,
    violations: Vec<Violation>,
}

const IDS: [NodeId; 5] = [NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)];

impl Cluster {
    fn new(config: RaftConfig) -> Cluster {
        let mut cluster = Cluster {
            config,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            network: Vec::new(),
            safety: RaftSafety::new(),
            violations: Vec::new(),
        };
        for id in 1..=5 {
            cluster.restart(id);
        }
        cluster
    }

    fn step(&mut self, id: u64, input: Input<Raft>) {
        let node = self.nodes.get_mut(&id).expect("node is up");
        let mut out = Effects::new();
        node.step(Time::ZERO, input, &mut out);
        if let Err(v) = self.safety.after_step(NodeId(id), node, out.as_slice()) {
            self.violations.push(v);
        }
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => self.network.push((id, to.0, msg)),
                Effect::Persist(record) => self.disks.entry(id).or_default().push(record),
                _ => {}
            }
        }
    }

    fn restart(&mut self, id: u64) {
        let node = Raft::new(NodeId(id), &IDS, self.config.clone());
        self.nodes.insert(id, node);
        let recovered = self.disks.get(&id).cloned().unwrap_or_default();
        self.step(id, Input::Start { recovered });
    }

    fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.safety.on_crash(NodeId(id));
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Delivers, repeatedly, every message among the given nodes; others stay queued.
    fn exchange(&mut self, among: &[u64]) {
        self.deliver_while(|from, to, _| among.contains(&from) && among.contains(&to));
    }

    /// Lets `candidate` time out (as often as it takes) until `voters` elect it.
    fn elect(&mut self, candidate: u64, voters: &[u64]) {
        let mut among = voters.to_vec();
        among.push(candidate);
        for _ in 0..4 {
            if self.nodes[&candidate].status().role == Role::Leader {
                break;
            }
            self.campaign(candidate, &among);
        }
        assert_eq!(
            self.nodes[&candidate].status().role,
            Role::Leader,
            "n{candidate} won"
        );
        // Forget whatever the new leader sent beyond the vote: the script decides what flows.
        self.network.clear();
    }

    fn campaign(&mut self, candidate: u64, among: &[u64]) {
        self.step(candidate, Input::Timer(Timer::Election));
        // Deliver only the vote requests and answers, so that no entries move yet.
        self.deliver_while(|from, to, msg| {
            among.contains(&from)
                && among.contains(&to)
                && matches!(
                    msg,
                    Message::RequestVote { .. } | Message::RequestVoteResponse { .. }
                )
        });
    }

    /// Delivers queued messages that `select` picks, including the answers they provoke,
    /// until none is left.
    fn deliver_while(&mut self, select: impl Fn(u64, u64, &Message) -> bool) {
        while let Some(k) = self
            .network
            .iter()
            .position(|(from, to, msg)| select(*from, *to, msg))
        {
            let (from, to, msg) = self.network.remove(k);
            let from = NodeId(from);
            self.step(to, Input::Message { from, msg });
        }
    }

    fn put(&mut self, leader: u64, seq: u64) {
        let request = Request {
            client: ClientId(7),
            seq,
            op: Op::Put {
                key: "k".into(),
                value: seq.to_string().into(),
            },
            read: ReadMode::Linearizable,
            quorum: None,
        };
        self.step(leader, Input::Request(request));
    }

    /// Delivers the leader's pending AppendEntries to `followers` and their answers.
    fn replicate(&mut self, leader: u64, followers: &[u64]) {
        self.network
            .retain(|(from, to, _)| *from == leader && followers.contains(to));
        let mut among = followers.to_vec();
        among.push(leader);
        self.exchange(&among);
    }

    fn last_index(&self, id: u64) -> u64 {
        self.nodes[&id].status().last_index
    }
}

/// Figure 8 (a) to (d). Returns the cluster and the index of S1's term-2 entry that, after
/// step (c), sits on a majority {S1, S2, S3}.
fn figure8(config: RaftConfig) -> (Cluster, u64) {
    let mut c = Cluster::new(config);
    // Term 1: S1 leads and replicates a first command everywhere.
    c.elect(1, &[2, 3, 4, 5]);
    c.put(1, 1);
    c.replicate(1, &[2, 3, 4, 5]);
    // (a) S1 leads term 2 and replicates a new entry to S2 only.
    c.crash(1);
    c.restart(1);
    c.elect(1, &[2, 3]);
    assert_eq!(c.nodes[&1].term(), 2);
    c.put(1, 2);
    c.replicate(1, &[2]);
    let old_entry = c.last_index(1);
    // (b) S1 crashes; S5 leads term 3 with the votes of S3 and S4, and appends at the same
    // index an entry no one else receives.
    c.crash(1);
    c.elect(5, &[3, 4]);
    assert_eq!(c.nodes[&5].term(), 3);
    c.put(5, 3);
    c.network.clear();
    // (c) S5 crashes; S1 restarts and leads term 4 with the votes of S2 and S3, and replicates
    // its log to S2 (which has it) and S3: the term-2 entry is now on a majority.
    c.crash(5);
    c.restart(1);
    c.elect(1, &[2, 3]);
    assert_eq!(c.nodes[&1].term(), 4);
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.replicate(1, &[2, 3]);
    // (d) S1 crashes; S5 restarts and campaigns among S2, S3, S4.
    c.crash(1);
    c.restart(5);
    for _ in 0..3 {
        c.campaign(5, &[2, 3, 4, 5]);
    }
    c.exchange(&[2, 3, 4, 5]);
    (c, old_entry)
}

#[test]
fn figure8_correct_raft_never_commits_the_old_entry_by_counting() {
    let (c, _) = figure8(RaftConfig::default());
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn figure8_the_broken_commit_rule_loses_a_committed_entry_and_is_caught() {
    let config = RaftConfig {
        bug: Some(Bug::CommitPreviousTermByCounting),
        ..RaftConfig::default()
    };
    let (c, old_entry) = figure8(config);
    assert_eq!(c.nodes[&5].status().role, Role::Leader, "S5 won term 5");
    assert!(c.nodes[&5].term() >= 5);
    let found: Vec<&str> = c.violations.iter().map(|v| v.property).collect();
    assert!(
        found.contains(&"leader completeness"),
        "expected a leader completeness violation about index {old_entry}, found {:?}",
        c.violations
    );
}
