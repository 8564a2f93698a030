//! The quorum store's cluster-wide properties, checked after every step.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | Version uniqueness | one version names one value, everywhere | a ledger `version → digest(value)`, fed from every persisted store, hint and assignment; a version only the crashed node held is forgotten at its crash (it may not have been durable, and then never left the node) |
//! | Replica monotonicity | a replica's version of a key never goes back (within one life) | the last persisted version per (node, key); a crash resets the node's entries |
//! | Persist before acknowledging | a replica acknowledges a version only once it (or a newer one) is persisted | per (node, key) the highest version persisted so far, in effect order (the driver's barrier makes effect order durability order); a restart starts from what the node recovered |
//!
//! Linearizability itself is a property of client histories, checked at the end of a run; the
//! checks here catch the protocol-level mistakes that cause it to fail (the seed's
//! `latest + 1` versions, for one) at the step where they happen. The counters report what
//! the run exercised, so that a clean run over zero write-backs or zero repairs is visible.

use super::message::{Message, Record, Version};
use super::{Quorum, QuorumStats};
use quorate_core::digest::digest;
use quorate_core::{Effect, Invariants, Key, NodeId, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// The cluster-wide ledgers and counters of a quorum store run.
#[derive(Clone, Debug, Default)]
pub struct QuorumSafety {
    /// Every version some node persisted: the digest of its value, and the nodes holding it.
    versions: BTreeMap<Version, (u64, BTreeSet<NodeId>)>,
    /// The version each node last persisted for each key, since its last start.
    replicas: BTreeMap<(NodeId, Key), Version>,
    /// The highest version each node persisted (or recovered) per key, stores and hints alike.
    durable: BTreeMap<(NodeId, Key), Version>,
    /// Each node's stats when last observed (they restart from zero after a crash).
    seen: BTreeMap<NodeId, QuorumStats>,
    totals: QuorumStats,
}

impl QuorumSafety {
    pub fn new() -> QuorumSafety {
        QuorumSafety::default()
    }

    pub fn totals(&self) -> QuorumStats {
        self.totals
    }

    fn version_uniqueness(
        &mut self,
        id: NodeId,
        version: Version,
        value_digest: u64,
    ) -> Result<(), Violation> {
        let (known, holders) = self
            .versions
            .entry(version)
            .or_insert_with(|| (value_digest, BTreeSet::new()));
        holders.insert(id);
        let known = *known;
        if known != value_digest {
            return Err(Violation {
                property: "version uniqueness",
                detail: format!(
                    "{id} persisted {version} with value digest {value_digest:016x}; another \
                     node holds {version} with digest {known:016x}"
                ),
            });
        }
        Ok(())
    }

    fn monotonic(&mut self, id: NodeId, key: &Key, version: Version) -> Result<(), Violation> {
        let last = self
            .replicas
            .entry((id, key.clone()))
            .or_insert(Version::ZERO);
        if version <= *last {
            return Err(Violation {
                property: "replica monotonicity",
                detail: format!("{id} persisted {version} of {key:?} after {last}"),
            });
        }
        *last = version;
        Ok(())
    }

    fn persisted(&mut self, id: NodeId, key: &Key, version: Version) {
        let entry = self
            .durable
            .entry((id, key.clone()))
            .or_insert(Version::ZERO);
        *entry = (*entry).max(version);
    }

    fn acknowledged(&self, id: NodeId, key: &Key, version: Version) -> Result<(), Violation> {
        let durable = self
            .durable
            .get(&(id, key.clone()))
            .copied()
            .unwrap_or(Version::ZERO);
        if durable < version {
            return Err(Violation {
                property: "persist before acknowledging",
                detail: format!(
                    "{id} acknowledged {version} of {key:?} having persisted only {durable}"
                ),
            });
        }
        Ok(())
    }

    /// A restarted node holds what it recovered: that is durable.
    fn recovered(&mut self, id: NodeId, node: &Quorum) {
        for (key, stored) in node.store() {
            self.persisted(id, key, stored.version);
        }
        for (key, stored) in node.hints() {
            self.persisted(id, key, stored.version);
        }
    }

    fn count(&mut self, id: NodeId, now: QuorumStats) {
        let before = self.seen.insert(id, now).unwrap_or_default();
        let t = &mut self.totals;
        t.reads += now.reads - before.reads;
        t.writes += now.writes - before.writes;
        t.write_backs += now.write_backs - before.write_backs;
        t.one_round_reads += now.one_round_reads - before.one_round_reads;
        t.read_repairs += now.read_repairs - before.read_repairs;
        t.anti_entropy_repairs += now.anti_entropy_repairs - before.anti_entropy_repairs;
        t.hints_stored += now.hints_stored - before.hints_stored;
        t.hints_handed_off += now.hints_handed_off - before.hints_handed_off;
        t.unavailable += now.unavailable - before.unavailable;
    }
}

impl Invariants<Quorum> for QuorumSafety {
    fn after_step(
        &mut self,
        id: NodeId,
        node: &Quorum,
        effects: &[Effect<Quorum>],
    ) -> Result<(), Violation> {
        for effect in effects {
            let record = match effect {
                Effect::Send {
                    msg: Message::StoreAck { key, version, .. },
                    ..
                } => {
                    self.acknowledged(id, key, *version)?;
                    continue;
                }
                Effect::Persist(record) => record,
                _ => continue,
            };
            match record {
                Record::Stored { key, stored } => {
                    self.version_uniqueness(id, stored.version, digest(&stored.value))?;
                    self.monotonic(id, key, stored.version)?;
                    self.persisted(id, key, stored.version);
                }
                Record::Hinted { key, stored, .. } => {
                    self.version_uniqueness(id, stored.version, digest(&stored.value))?;
                    self.persisted(id, key, stored.version);
                }
                Record::Assigned { assigned, .. } => {
                    let stored = &assigned.stored;
                    self.version_uniqueness(id, stored.version, digest(&stored.value))?;
                }
                Record::Incarnation(_) => self.recovered(id, node),
                Record::HandedOff { .. } | Record::Checkpoint(_) => {}
            }
        }
        self.count(id, node.stats());
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.replicas.retain(|(node, _), _| *node != id);
        self.durable.retain(|(node, _), _| *node != id);
        let only_here = BTreeSet::from([id]);
        self.versions
            .retain(|_, (_, holders)| *holders != only_here);
        self.seen.remove(&id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let t = self.totals;
        vec![
            ("reads", t.reads),
            ("writes", t.writes),
            ("write_backs", t.write_backs),
            ("one_round_reads", t.one_round_reads),
            ("read_repairs", t.read_repairs),
            ("anti_entropy_repairs", t.anti_entropy_repairs),
            ("hints_stored", t.hints_stored),
            ("hints_handed_off", t.hints_handed_off),
            ("unavailable", t.unavailable),
            ("versions", self.versions.len() as u64),
        ]
    }
}
