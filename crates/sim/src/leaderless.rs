//! The leaderless protocols as the simulator runs them: the quorum store and multi-primary
//! replication, each with the consistency checks that fit what it promises.
//!
//! | harness | promised | measured |
//! |---|---|---|
//! | quorum, `R + W > N` with write-back | linearizable; replicas converge | stale reads (none expected) |
//! | quorum, no write-back, partial or sloppy quorums | replicas converge | linearizable (often not); stale reads |
//! | multi-primary, version vectors | convergence; no acknowledged write lost | |
//! | multi-primary, CRDTs | convergence; no acknowledged update lost | |
//! | multi-primary, LWW | convergence | acknowledged puts LWW discarded, with HLC and with wall clocks |

use crate::convergence::{self, LwwStamps};
use crate::harness::{linearizability, ClientOps, DiskCodec, Harness, ModelCheck, RunCheck};
use quorate_check::history::pair;
use quorate_check::linearizability::Limits;
use quorate_check::{Event as HistoryEvent, Operation, Verdict};
use quorate_core::{NodeId, ReadMode};
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

/// Pairs the client events of a history; a malformed history is itself a violation.
fn client_operations(history: &[HistoryEvent]) -> Result<Vec<Operation>, String> {
    pair(history).map_err(|e| format!("the simulator recorded a malformed history: {e}"))
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    }
}

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

    fn check_run(
        &self,
        history: &[HistoryEvent],
        _read_modes: &[ReadMode],
        _invariants: &QuorumSafety,
        limits: &Limits,
    ) -> RunCheck {
        let (clients, finals) = convergence::split_final_reads(history);
        let linearizable = linearizability(&clients, limits);
        let promised = self.config.linearizable();
        let mut check = RunCheck::default();
        if promised {
            check.violations.extend(linearizable.violations);
            check
                .models
                .push(ModelCheck::promised("linearizable", &linearizable.verdict));
        } else {
            check
                .models
                .push(ModelCheck::measured("linearizable", &linearizable.verdict));
        }
        let ops = match client_operations(&clients) {
            Ok(ops) => ops,
            Err(why) => {
                check.violations.push(why);
                return check;
            }
        };
        let (agreed, mut violations) = convergence::agreement(&finals, |key| self.replicas(key));
        violations.extend(convergence::registers_justified(&ops, &agreed));
        check.models.push(ModelCheck::promised(
            "convergence",
            &verdict(violations.is_empty()),
        ));
        check.violations.extend(violations);
        let (reads, stale) = convergence::stale_reads(&ops);
        check.counters = vec![("reads_checked", reads), ("stale_reads", stale)];
        check
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
    fn lww_counters(&self, ops: &[Operation], invariants: &MultiPrimarySafety) -> RunCheck {
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
        let (acked, by_hlc, by_wall) = convergence::lww_discards(ops, &stamps);
        RunCheck {
            counters: vec![
                ("lww_puts_acked", acked),
                ("lww_discarded_hlc", by_hlc),
                ("lww_discarded_wall_clock", by_wall),
            ],
            ..RunCheck::default()
        }
    }
}

impl Harness for MultiPrimaryHarness {
    type Node = MultiPrimary;
    type Invariants = MultiPrimarySafety;

    /// The format and torn writes, but no damage to fsynced data: a node that loses its disk
    /// for good loses the writes only it acknowledged (multi-primary) or starves the clients
    /// that stick to it (quorum), which these protocols do not promise to survive.
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

    fn check_run(
        &self,
        history: &[HistoryEvent],
        _read_modes: &[ReadMode],
        invariants: &MultiPrimarySafety,
        _limits: &Limits,
    ) -> RunCheck {
        let (clients, finals) = convergence::split_final_reads(history);
        let ops = match client_operations(&clients) {
            Ok(ops) => ops,
            Err(why) => {
                return RunCheck {
                    violations: vec![why],
                    ..RunCheck::default()
                }
            }
        };
        let (agreed, mut violations) = convergence::agreement(&finals, |_| {
            // Every node replicates every key.
            finals.values().flatten().map(|r| r.node).collect()
        });
        let mut check = match self.mode {
            ResolveMode::Lww => {
                violations.extend(convergence::registers_justified(&ops, &agreed));
                self.lww_counters(&ops, invariants)
            }
            ResolveMode::VersionVectors => {
                let lost = convergence::causal_no_lost_writes(&ops, &agreed);
                let mut check = RunCheck::default();
                check.models.push(ModelCheck::promised(
                    "no_lost_writes",
                    &verdict(lost.is_empty()),
                ));
                violations.extend(lost);
                check
            }
            ResolveMode::Crdt => {
                let lost = convergence::crdt_no_lost_updates(&ops, &agreed);
                let mut check = RunCheck::default();
                check.models.push(ModelCheck::promised(
                    "no_lost_writes",
                    &verdict(lost.is_empty()),
                ));
                violations.extend(lost);
                check
            }
        };
        let converged = !violations.iter().any(|v| v.starts_with("convergence"));
        check
            .models
            .insert(0, ModelCheck::promised("convergence", &verdict(converged)));
        check.violations = violations;
        check
    }
}
