//! How a protocol plugs into the simulator.

use quorate_check::history::pair;
use quorate_check::linearizability::{check_linearizable, Limits};
use quorate_check::{Event as HistoryEvent, Verdict};
use quorate_core::{Invariants, NodeId, Protocol};
use quorate_protocols::primary_backup::{Replica, ReplicaConfig, Topology, ViewSafety};
use quorate_protocols::raft::{Raft, RaftConfig, RaftSafety};
use std::time::Duration;

/// A protocol, as the simulator needs it: how to build a node, and the cluster-wide safety
/// properties to check after every step.
pub trait Harness: Sync {
    type Node: Protocol;
    type Invariants: Invariants<Self::Node>;

    /// The protocol's name, as `--protocol` spells it.
    fn name(&self) -> &'static str;

    /// A fresh node (at start-up, and again at every restart after a crash).
    fn node(&self, id: NodeId, members: &[NodeId]) -> Self::Node;

    /// Fresh cluster-wide checkers for one run.
    fn invariants(&self) -> Self::Invariants;

    /// Checks the client history of a run against the consistency the protocol promises,
    /// returning the verdict and any violations. The default is linearizability of every
    /// operation; protocols that promise less (stale reads, eventual consistency) override it.
    fn check_history(&self, history: &[HistoryEvent], limits: &Limits) -> HistoryVerdict {
        linearizability(history, limits)
    }
}

/// What the end-of-run history check found.
#[derive(Clone, Debug)]
pub struct HistoryVerdict {
    pub verdict: Verdict,
    pub violations: Vec<String>,
}

/// Checks a whole history for linearizability, key by key, explaining a violation.
pub fn linearizability(history: &[HistoryEvent], limits: &Limits) -> HistoryVerdict {
    let operations = match pair(history) {
        Ok(operations) => operations,
        Err(e) => {
            return HistoryVerdict {
                verdict: Verdict::Unknown,
                violations: vec![format!("the simulator recorded a malformed history: {e}")],
            }
        }
    };
    let report = check_linearizable(&operations, limits);
    let mut violations = Vec::new();
    if report.verdict == Verdict::NotLinearizable {
        let mut detail = format!(
            "linearizability: no linearization of key {:?}",
            report.key.as_deref().unwrap_or("-")
        );
        if let Some(stuck) = report.stuck {
            detail += &format!(
                "; after linearizing {} operations, {} returned before it could take effect",
                report.linearized.len(),
                operations[stuck]
            );
        }
        violations.push(detail);
    }
    HistoryVerdict {
        verdict: report.verdict,
        violations,
    }
}

/// Raft, with a snapshot threshold low enough that compaction and InstallSnapshot happen in
/// every run.
#[derive(Clone, Debug)]
pub struct RaftHarness {
    pub config: RaftConfig,
}

impl Default for RaftHarness {
    fn default() -> Self {
        RaftHarness {
            config: RaftConfig {
                snapshot_threshold: 64,
                entries_per_append_max: 32,
                election_timeout_min: Duration::from_millis(150),
                election_timeout_max: Duration::from_millis(300),
                heartbeat_interval: Duration::from_millis(50),
                ..RaftConfig::default()
            },
        }
    }
}

impl Harness for RaftHarness {
    type Node = Raft;
    type Invariants = RaftSafety;

    fn name(&self) -> &'static str {
        "raft"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Raft {
        Raft::new(id, members, self.config.clone())
    }

    fn invariants(&self) -> RaftSafety {
        RaftSafety::new()
    }
}

/// Primary-backup replication with views decided by election, with a snapshot threshold low
/// enough that compaction and state transfer happen in every run.
#[derive(Clone, Debug)]
pub struct PrimaryBackupHarness {
    pub config: ReplicaConfig,
}

impl Default for PrimaryBackupHarness {
    fn default() -> Self {
        PrimaryBackupHarness {
            config: small_snapshots(ReplicaConfig::new(Topology::PrimaryBackup)),
        }
    }
}

fn small_snapshots(config: ReplicaConfig) -> ReplicaConfig {
    ReplicaConfig {
        snapshot_threshold: 64,
        entries_per_prepare_max: 32,
        ..config
    }
}

impl Harness for PrimaryBackupHarness {
    type Node = Replica;
    type Invariants = ViewSafety;

    fn name(&self) -> &'static str {
        "primary-backup"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Replica {
        Replica::new(id, members, self.config.clone())
    }

    fn invariants(&self) -> ViewSafety {
        ViewSafety::new()
    }
}

/// Chain replication: tail reads, or (with `craq`) CRAQ reads at every chain node.
#[derive(Clone, Debug)]
pub struct ChainHarness {
    pub config: ReplicaConfig,
}

impl ChainHarness {
    pub fn new(craq: bool) -> ChainHarness {
        ChainHarness {
            config: small_snapshots(ReplicaConfig::new(Topology::Chain { craq })),
        }
    }
}

impl Harness for ChainHarness {
    type Node = Replica;
    type Invariants = ViewSafety;

    fn name(&self) -> &'static str {
        match self.config.topology {
            Topology::Chain { craq: true } => "craq",
            _ => "chain",
        }
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Replica {
        Replica::new(id, members, self.config.clone())
    }

    fn invariants(&self) -> ViewSafety {
        ViewSafety::new()
    }
}
