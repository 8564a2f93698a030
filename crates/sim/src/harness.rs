//! How a protocol plugs into the simulator.

use quorate_core::{Invariants, NodeId, Protocol};
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
