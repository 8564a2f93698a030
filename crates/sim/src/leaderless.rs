//! The leaderless protocols as the simulator runs them: the quorum store and multi-primary
//! replication, each with the promise it makes ([`quorate_check::promise`] judges it):
//!
//! | harness | promised | measured |
//! |---|---|---|
//! | quorum, `R + W > N` with write-back | linearizable; replicas converge | stale reads (none expected) |
//! | quorum, no write-back, partial or sloppy quorums | replicas converge | linearizable (often not); stale reads |
//! | multi-primary, version vectors | convergence; no acknowledged write lost | |
//! | multi-primary, CRDTs | convergence; no acknowledged update lost | |
//! | multi-primary, LWW | convergence | acknowledged puts LWW discarded, with HLC and with wall clocks |

use crate::harness::{ClientOps, DiskCodec, Harness, MessageSize};
use quorate_check::final_reads::{self, LwwStamps};
use quorate_check::{Operation, Promise};
use quorate_core::NodeId;
use quorate_protocols::multiprimary::{
    MultiPrimary, MultiPrimaryConfig, MultiPrimarySafety, Resolution,
};
use quorate_protocols::quorum::{Quorum, QuorumConfig, QuorumSafety};
use quorate_protocols::ring::Ring;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long the cluster runs without clients before final reads: several anti-entropy rounds
/// with every peer.
const SETTLE: Duration = Duration::from_secs(2);

/// The quorum store, on a cluster of `nodes`.
#[derive(Clone, Debug)]
pub struct QuorumHarness {
    pub config: QuorumConfig,
    pub nodes: usize,
}

impl QuorumHarness {
    /// The key's home replicas, as the nodes compute them.
    fn replicas(&self, key: &str) -> Vec<u64> {
        let members: Vec<NodeId> = (1..=self.nodes as u64).map(NodeId).collect();
        Ring::new(&members, self.config.vnodes)
            .preference_list(key.as_bytes(), self.config.n)
            .into_iter()
            .map(|n| n.0)
            .collect()
    }
}

impl Harness for QuorumHarness {
    type Node = Quorum;
    type Invariants = QuorumSafety;

    /// The format and torn writes, but no damage to fsynced data: a node that loses its disk
    /// for good loses the writes only it acknowledged (multi-primary) or starves the clients
    /// that stick to it (quorum), which these protocols do not promise to survive.
    fn message_size(&self) -> Option<MessageSize<Quorum>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<Quorum>> {
        Some(DiskCodec {
            damage: Some(0.0),
            ..DiskCodec::postcard()
        })
    }

    fn name(&self) -> &'static str {
        "quorum"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Quorum {
        Quorum::new(id, members, self.config.clone())
    }

    fn invariants(&self) -> QuorumSafety {
        QuorumSafety::new()
    }

    fn client_ops(&self) -> ClientOps {
        ClientOps::Registers
    }

    fn sticky_writes(&self) -> bool {
        true
    }

    fn final_reads(&self) -> Option<Duration> {
        Some(SETTLE)
    }

    fn replicates(&self, key: &str, node: u64) -> bool {
        self.replicas(key).contains(&node)
    }

    fn promise(&self) -> Promise {
        if self.config.linearizable() {
            Promise::Quorum
        } else {
            Promise::QuorumSloppy
        }
    }
}

/// What `--resolve` picks for multi-primary: the register resolution, or CRDT values.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ResolveMode {
    Lww,
    VersionVectors,
    Crdt,
}

/// Multi-primary replication, with clients that use what the resolution mode offers.
#[derive(Clone, Debug)]
pub struct MultiPrimaryHarness {
    pub config: MultiPrimaryConfig,
    pub mode: ResolveMode,
}

impl MultiPrimaryHarness {
    pub fn new(mode: ResolveMode) -> MultiPrimaryHarness {
        let resolution = match mode {
            ResolveMode::Lww => Resolution::Lww,
            ResolveMode::VersionVectors | ResolveMode::Crdt => Resolution::VersionVectors,
        };
        MultiPrimaryHarness {
            config: MultiPrimaryConfig {
                resolution,
                ..MultiPrimaryConfig::default()
            },
            mode,
        }
    }

    /// Acknowledged puts LWW discarded, under both clocks.
    fn lww_counters(
        &self,
        ops: &[Operation],
        invariants: &MultiPrimarySafety,
    ) -> Vec<(&'static str, u64)> {
        let stamps: BTreeMap<String, LwwStamps> = invariants
            .lww_writes()
            .iter()
            .filter_map(|w| {
                let value = String::from_utf8_lossy(w.value.as_ref()?).into_owned();
                let o = w.origin;
                let stamps = LwwStamps {
                    hlc: (o.hlc.physical, o.hlc.logical, o.node.0),
                    wall: (o.wall, o.node.0),
                };
                Some((value, stamps))
            })
            .collect();
        let (acked, by_hlc, by_wall) = final_reads::lww_discards(ops, &stamps);
        vec![
            ("lww_puts_acked", acked),
            ("lww_discarded_hlc", by_hlc),
            ("lww_discarded_wall_clock", by_wall),
        ]
    }
}

impl Harness for MultiPrimaryHarness {
    type Node = MultiPrimary;
    type Invariants = MultiPrimarySafety;

    /// The format and torn writes, but no damage to fsynced data: a node that loses its disk
    /// for good loses the writes only it acknowledged (multi-primary) or starves the clients
    /// that stick to it (quorum), which these protocols do not promise to survive.
    fn message_size(&self) -> Option<MessageSize<MultiPrimary>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<MultiPrimary>> {
        Some(DiskCodec {
            damage: Some(0.0),
            ..DiskCodec::postcard()
        })
    }

    fn name(&self) -> &'static str {
        "multiprimary"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> MultiPrimary {
        MultiPrimary::new(id, members, self.config.clone())
    }

    fn invariants(&self) -> MultiPrimarySafety {
        MultiPrimarySafety::new()
    }

    fn client_ops(&self) -> ClientOps {
        match self.mode {
            ResolveMode::Lww => ClientOps::Registers,
            ResolveMode::VersionVectors => ClientOps::Causal,
            ResolveMode::Crdt => ClientOps::Crdt,
        }
    }

    fn sticky_writes(&self) -> bool {
        true
    }

    fn final_reads(&self) -> Option<Duration> {
        Some(SETTLE)
    }

    fn promise(&self) -> Promise {
        match self.mode {
            ResolveMode::Lww => Promise::Lww,
            ResolveMode::VersionVectors => Promise::VersionVectors,
            ResolveMode::Crdt => Promise::Crdt,
        }
    }

    fn measure(
        &self,
        ops: &[Operation],
        invariants: &MultiPrimarySafety,
    ) -> Vec<(&'static str, u64)> {
        match self.mode {
            ResolveMode::Lww => self.lww_counters(ops, invariants),
            ResolveMode::VersionVectors | ResolveMode::Crdt => Vec::new(),
        }
    }
}
