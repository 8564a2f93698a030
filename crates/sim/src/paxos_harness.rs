//! Single-decree Paxos and Multi-Paxos as the simulator runs them.

use crate::config::SimConfig;
use crate::harness::{DiskCodec, Harness, MessageSize};
use quorate_core::{KvStore, NodeId};
use quorate_protocols::multipaxos::{MultiPaxos, MultiPaxosConfig, MultiPaxosSafety};
use quorate_protocols::paxos::{Paxos, PaxosConfig, PaxosSafety, Retry};
use std::time::Duration;

/// Single-decree Paxos, one write-once register per key. The workload becomes write-once
/// registers (see `Workload::write_once`): clients read keys or propose values for them, and
/// move to a fresh generation of keys every `generation`, so that every run decides many
/// registers under faults, not one at its very start.
#[derive(Clone, Debug)]
pub struct PaxosHarness {
    pub config: PaxosConfig,
    pub generation: Duration,
    name: &'static str,
}

impl Default for PaxosHarness {
    fn default() -> Self {
        PaxosHarness {
            config: PaxosConfig::default(),
            generation: Duration::from_millis(200),
            name: "paxos",
        }
    }
}

impl PaxosHarness {
    /// Paxos without the livelock cure: a pre-empted proposer retries at once with a higher
    /// ballot, so duelling proposers can keep pre-empting each other (`paxos-livelock`).
    pub fn without_backoff() -> PaxosHarness {
        let mut harness = PaxosHarness::default();
        harness.config.retry = Retry::Immediately;
        harness.name = "paxos-livelock";
        harness
    }
}

impl Harness for PaxosHarness {
    type Node = Paxos;
    type Invariants = PaxosSafety;

    fn message_size(&self) -> Option<MessageSize<Paxos>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<Paxos>> {
        Some(DiskCodec::postcard())
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Paxos {
        Paxos::new(id, members, self.config.clone())
    }

    fn invariants(&self) -> PaxosSafety {
        PaxosSafety::new()
    }

    fn configure(&self, config: &SimConfig) -> SimConfig {
        let mut config = config.clone();
        config.workload.write_once = Some(self.generation);
        config
    }
}

/// Multi-Paxos replicating the KV store, with a snapshot threshold low enough that compaction,
/// catch-up and snapshot transfer happen in every run, and a pipeline short enough that five
/// clients already fill it, so that commands are batched.
#[derive(Clone, Debug)]
pub struct MultiPaxosHarness {
    pub config: MultiPaxosConfig,
}

impl Default for MultiPaxosHarness {
    fn default() -> Self {
        MultiPaxosHarness {
            config: MultiPaxosConfig {
                snapshot_threshold: 64,
                pipeline_max: 2,
                batch_max: 16,
                catchup_max: 32,
                ..MultiPaxosConfig::default()
            },
        }
    }
}

impl Harness for MultiPaxosHarness {
    type Node = MultiPaxos;
    type Invariants = MultiPaxosSafety;

    fn message_size(&self) -> Option<MessageSize<MultiPaxos>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<MultiPaxos>> {
        Some(DiskCodec::postcard())
    }

    fn name(&self) -> &'static str {
        "multipaxos"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> MultiPaxos {
        MultiPaxos::new(id, members, self.config.clone())
    }

    fn applied_store<'n>(&self, node: &'n MultiPaxos) -> Option<&'n KvStore> {
        Some(node.store())
    }

    fn invariants(&self) -> MultiPaxosSafety {
        MultiPaxosSafety::new()
    }
}
