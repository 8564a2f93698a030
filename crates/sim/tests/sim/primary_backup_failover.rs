//! Fenced failover, scripted message by message on five replicas: the primary is partitioned
//! away, the other four elect a new view, and the old primary, which still believes it leads,
//! takes a write and a read. When the partition heals (first towards three of the backups), the
//! backups refuse its view, it learns it was deposed, and neither the write nor the read is
//! answered from the old view. The deliberately broken replica that accepts
//! messages from an older view lets the same write be acknowledged, and the cluster-wide checker
//! reports the acknowledged write the new view then overwrites.

use quorate_core::{
    ClientError, ClientId, Effect, Effects, Input, Invariants, NodeId, Op, Output, Protocol,
    ReadMode, Reply, Request, Time,
};
use quorate_protocols::primary_backup::{
    Bug, Message, Record, Replica, ReplicaConfig, Timer, Topology, ViewSafety,
};
use std::collections::BTreeMap;

/// Five replicas; messages wait in `network` until the script delivers them.
struct Cluster {
    config: ReplicaConfig,
    nodes: BTreeMap<u64, Replica>,
    disks: BTreeMap<u64, Vec<Record>>,
    network: Vec<(u64, u64, Message)>,
    /// Links that are down, as (lower id, higher id): messages over them are lost.
    blocked: Vec<(u64, u64)>,
    replies: Vec<(u64, Reply)>,
    safety: ViewSafety,
    violations: Vec<String>,
}

const ALL: [u64; 5] = [1, 2, 3, 4, 5];

impl Cluster {
    fn new(config: ReplicaConfig) -> Cluster {
        let mut cluster = Cluster {
            config,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            network: Vec::new(),
            blocked: Vec::new(),
            replies: Vec::new(),
            safety: ViewSafety::new(),
            violations: Vec::new(),
        };
        let ids: Vec<NodeId> = ALL.iter().map(|id| NodeId(*id)).collect();
        for id in ALL {
            cluster
                .nodes
                .insert(id, Replica::new(NodeId(id), &ids, cluster.config.clone()));
            cluster.step(id, Input::Start { recovered: vec![] });
        }
        cluster
    }

    fn step(&mut self, id: u64, input: Input<Replica>) {
        let node = self.nodes.get_mut(&id).expect("node is up");
        let mut out = Effects::new();
        node.step(Time::ZERO, input, &mut out);
        node.check_invariants();
        if let Err(v) = self.safety.after_step(NodeId(id), node, out.as_slice()) {
            self.violations.push(v.to_string());
        }
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => self.network.push((id, to.0, msg)),
                Effect::Persist(record) => self.disks.entry(id).or_default().push(record),
                Effect::Reply(reply) => self.replies.push((id, reply)),
                _ => {}
            }
        }
    }

    /// Delivers what `select` picks, until nothing is left; the partition loses what crosses it.
    fn deliver_while(&mut self, select: impl Fn(u64, u64, &Message) -> bool) {
        let blocked = self.blocked.clone();
        self.network
            .retain(|(from, to, _)| !blocked.contains(&(*from.min(to), *from.max(to))));
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

    fn exchange(&mut self) {
        self.deliver_while(|_, _, _| true);
    }

    fn request(&mut self, id: u64, seq: u64, op: Op) {
        let request = Request {
            client: ClientId(7),
            seq,
            op,
            read: ReadMode::Linearizable,
            quorum: None,
        };
        self.step(id, Input::Request(request));
    }

    fn replies_to(&self, seq: u64) -> Vec<(u64, Result<Output, ClientError>)> {
        self.replies
            .iter()
            .filter(|(_, r)| r.client == ClientId(7) && r.seq == seq)
            .map(|(id, r)| (*id, r.result.clone()))
            .collect()
    }

    fn value(&self, id: u64) -> Option<&[u8]> {
        self.nodes[&id]
            .state_machine()
            .get(b"k")
            .map(|v| v.as_ref())
    }
}

fn put(value: &str) -> Op {
    Op::Put {
        key: "k".into(),
        value: value.to_string().into(),
    }
}

/// What the script observed.
struct Outcome {
    cluster: Cluster,
    /// Replies to the write the deposed primary took, and to the read it was asked.
    deposed_write: Vec<(u64, Result<Output, ClientError>)>,
    deposed_read: Vec<(u64, Result<Output, ClientError>)>,
}

fn partition_the_primary_away(config: ReplicaConfig) -> Outcome {
    let mut c = Cluster::new(config);
    // View 1: n1 leads and commits a first write everywhere.
    c.step(1, Input::Timer(Timer::ViewChange));
    c.exchange();
    assert!(c.nodes[&1].is_primary());
    c.request(1, 1, put("1"));
    c.exchange();
    assert_eq!(c.replies_to(1), vec![(1, Ok(Output::Done))]);

    // The partition: n1 alone; the other four stop hearing from it, and n2 wins view 2.
    c.blocked = vec![(1, 2), (1, 3), (1, 4), (1, 5)];
    c.step(2, Input::Timer(Timer::ViewChange));
    c.deliver_while(|_, _, m| {
        matches!(
            m,
            Message::StartViewChange { .. } | Message::DoViewChange { .. }
        )
    });
    assert!(
        c.nodes[&2].is_primary(),
        "the majority elected a new primary"
    );
    assert_eq!(c.nodes[&2].view(), 2);
    // n2's ViewStart reaches the others and commits; the commit number has not reached them.
    c.deliver_while(|from, _, m| {
        from != 1 && matches!(m, Message::Prepare { .. } | Message::PrepareOk { .. })
    });
    assert!(
        c.nodes[&2].commit_number() >= 3,
        "view 2 began with a committed ViewStart"
    );

    // n1 still believes it is primary of view 1, and takes a write and a read.
    assert!(c.nodes[&1].is_primary() && c.nodes[&1].view() == 1);
    c.request(1, 2, put("2"));
    c.step(
        1,
        Input::Request(Request {
            client: ClientId(8),
            seq: 0,
            op: Op::Get { key: "k".into() },
            read: ReadMode::Linearizable,
            quorum: None,
        }),
    );
    c.step(1, Input::Timer(Timer::Heartbeat));

    // n1's Prepares are lost in the partition. It heals except between n1 and n2; n1's next
    // heartbeat resends the write in view 1 to n3, n4 and n5, and their answers come first.
    c.exchange();
    c.blocked = vec![(1, 2)];
    c.step(1, Input::Timer(Timer::Heartbeat));
    c.deliver_while(|from, to, _| from == 1 || to == 1);
    c.blocked.clear();
    // Then n2's heartbeats carry view 2 and its commit number everywhere (unless a violation
    // was found: like the simulator, the script stops at the first).
    for _ in 0..3 {
        if !c.violations.is_empty() {
            break;
        }
        c.step(2, Input::Timer(Timer::Heartbeat));
        c.exchange();
    }
    let deposed_read = c
        .replies
        .iter()
        .filter(|(_, r)| r.client == ClientId(8))
        .map(|(id, r)| (*id, r.result.clone()))
        .collect();
    Outcome {
        deposed_write: c.replies_to(2),
        deposed_read,
        cluster: c,
    }
}

fn config() -> ReplicaConfig {
    ReplicaConfig::new(Topology::PrimaryBackup)
}

#[test]
fn the_deposed_primary_cannot_get_a_write_acknowledged() {
    let Outcome {
        cluster: c,
        deposed_write,
        deposed_read,
    } = partition_the_primary_away(config());
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert!(
        deposed_write.iter().all(|(_, result)| result.is_err()),
        "the write at the deposed primary was acknowledged: {deposed_write:?}"
    );
    assert_eq!(
        deposed_write,
        vec![(1, Err(ClientError::Indeterminate { leader: None }))],
        "n1 learned it was deposed and left the write's outcome open"
    );
    assert_eq!(
        deposed_read,
        vec![(1, Err(ClientError::NotLeader { leader: None }))],
        "the deposed primary never answered the read from its own state"
    );
    assert!(!c.nodes[&1].is_primary());
    assert_eq!(c.nodes[&1].view(), 2, "n1 joined the new view");
    assert!(c.nodes[&1].stats().stale_refused == 0 && c.nodes[&3].stats().stale_refused > 0);
    for id in ALL {
        assert_eq!(
            c.value(id),
            Some(&b"1"[..]),
            "n{id} holds the acknowledged write only"
        );
    }
}

#[test]
fn replicas_that_accept_an_older_view_let_the_deposed_primary_lose_a_write_and_are_caught() {
    let config = ReplicaConfig {
        bug: Some(Bug::AcceptOlderViews),
        ..config()
    };
    let Outcome {
        cluster: c,
        deposed_write,
        ..
    } = partition_the_primary_away(config);
    assert!(
        deposed_write.contains(&(1, Ok(Output::Done))),
        "the broken replicas let n1 acknowledge the write: {deposed_write:?}"
    );
    assert!(
        c.violations
            .iter()
            .any(|v| v.starts_with("committed prefix agreement")),
        "the checker saw two different entries committed at one op: {:?}",
        c.violations
    );
}
