//! The log-replicating protocols besides Raft: Multi-Paxos, ZAB, and the view-based
//! replication of [`primary_backup`](quorate_protocols::primary_backup) in its three shapes
//! (primary-backup, chain, chain with CRAQ reads).
//!
//! Each has a leader (the distinguished proposer, ZAB's leader, the primary or the chain's
//! head) that answers `NotLeader` with its best guess elsewhere, so the RESP front end's
//! forwarding and `MOVED` redirects work as they do for Raft. Chain replication differs in
//! one way a client can see: a linearizable read is served by the *tail* (by any node with
//! CRAQ), so a read at the head is forwarded to the tail while a write at the tail is
//! forwarded to the head.
//!
//! Tunables are the protocol's own, in milliseconds; the defaults are the protocol's defaults
//! with timeouts widened for real networks and processes (a tokio task is not a simulated
//! node: a garbage-collection-free pause of tens of milliseconds is normal under load).

use super::{ms, ServedProtocol};
use quorate_core::{KvStore, NodeId};
use quorate_protocols::multipaxos::{self, Ballot, MultiPaxos, MultiPaxosConfig};
use quorate_protocols::primary_backup::{self, Replica, ReplicaConfig, Topology};
use quorate_protocols::zab::{self, Zab, ZabConfig, Zxid};
use serde::Deserialize;
use std::sync::Arc;

/// Multi-Paxos tunables (`[tuning]` of a `multipaxos` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiPaxosTuning {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub batch_max: usize,
    pub pipeline_max: usize,
    pub pending_max: usize,
    pub catchup_max: usize,
    pub snapshot_threshold: u64,
    pub sessions_max: usize,
}

impl Default for MultiPaxosTuning {
    fn default() -> Self {
        let base = MultiPaxosConfig::default();
        MultiPaxosTuning {
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_interval_ms: 75,
            batch_max: base.batch_max,
            pipeline_max: base.pipeline_max,
            // Room for every node's `inflight_max` (4,096) forwarded to the leader.
            pending_max: 16_384,
            catchup_max: base.catchup_max,
            snapshot_threshold: 16_384,
            sessions_max: base.sessions_max,
        }
    }
}

impl ServedProtocol for MultiPaxos {
    const NAMES: &'static [&'static str] = &["multipaxos"];
    type Config = MultiPaxosTuning;

    fn build(
        _: &str,
        id: NodeId,
        members: &[NodeId],
        t: &MultiPaxosTuning,
    ) -> Result<Self, String> {
        // Without the `bugs` feature every field is named below; with it, `bug` is not.
        #[allow(clippy::needless_update)]
        let config = MultiPaxosConfig {
            election_timeout_min: ms(t.election_timeout_min_ms),
            election_timeout_max: ms(t.election_timeout_max_ms),
            heartbeat_interval: ms(t.heartbeat_interval_ms),
            batch_max: t.batch_max,
            pipeline_max: t.pipeline_max,
            pending_max: t.pending_max,
            catchup_max: t.catchup_max,
            snapshot_threshold: t.snapshot_threshold,
            sessions_max: t.sessions_max,
            ..MultiPaxosConfig::default()
        };
        config.validate()?;
        Ok(MultiPaxos::new(id, members, config))
    }

    fn applied_store(&self) -> Result<&KvStore, String> {
        Ok(self.store())
    }

    /// No round used, no promise, nothing accepted; the store as the snapshot of slot 0.
    fn restored(_: &str, _: &[NodeId], store: KvStore) -> Result<Vec<multipaxos::Record>, String> {
        let snapshot = multipaxos::Snapshot {
            last_slot: 0,
            state: store,
        };
        Ok(vec![multipaxos::Record::Checkpoint {
            round: 0,
            promised: Ballot::ZERO,
            snapshot: Arc::new(snapshot),
            accepted: Vec::new(),
        }])
    }
}

/// ZAB tunables (`[tuning]` of a `zab` node), named as ZooKeeper names them.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZabTuning {
    /// ZooKeeper's `tickTime`.
    pub tick_ms: u64,
    /// ZooKeeper's `initLimit` and `syncLimit`, in ticks.
    pub init_limit: u32,
    pub sync_limit: u32,
    pub notify_timeout_min_ms: u64,
    pub notify_timeout_max_ms: u64,
    pub finalize_wait_min_ms: u64,
    pub finalize_wait_max_ms: u64,
    /// ZooKeeper's `snapCount`.
    pub snapshot_threshold: u64,
    pub uncommitted_max: u64,
    pub sessions_max: usize,
}

impl Default for ZabTuning {
    fn default() -> Self {
        let base = ZabConfig::default();
        ZabTuning {
            tick_ms: 100,
            init_limit: base.init_limit,
            sync_limit: base.sync_limit,
            notify_timeout_min_ms: 50,
            notify_timeout_max_ms: 800,
            finalize_wait_min_ms: 20,
            finalize_wait_max_ms: 40,
            snapshot_threshold: 16_384,
            // Room for every node's `inflight_max` (4,096) forwarded to the leader.
            uncommitted_max: 16_384,
            sessions_max: base.sessions_max,
        }
    }
}

impl ServedProtocol for Zab {
    const NAMES: &'static [&'static str] = &["zab"];
    type Config = ZabTuning;

    fn build(_: &str, id: NodeId, members: &[NodeId], t: &ZabTuning) -> Result<Self, String> {
        let config = ZabConfig {
            tick: ms(t.tick_ms),
            init_limit: t.init_limit,
            sync_limit: t.sync_limit,
            notify_timeout_min: ms(t.notify_timeout_min_ms),
            notify_timeout_max: ms(t.notify_timeout_max_ms),
            finalize_wait_min: ms(t.finalize_wait_min_ms),
            finalize_wait_max: ms(t.finalize_wait_max_ms),
            snapshot_threshold: t.snapshot_threshold,
            uncommitted_max: t.uncommitted_max,
            sessions_max: t.sessions_max,
            ..ZabConfig::default()
        };
        config.validate()?;
        Ok(Zab::new(id, members, config))
    }

    fn applied_store(&self) -> Result<&KvStore, String> {
        Ok(self.store())
    }

    /// Both epochs 0, no transactions; the store as the snapshot of zxid 0.0.
    fn restored(_: &str, _: &[NodeId], store: KvStore) -> Result<Vec<zab::Record>, String> {
        let snapshot = zab::Snapshot {
            last_zxid: Zxid::ZERO,
            state: store,
        };
        Ok(vec![zab::Record::Checkpoint {
            accepted_epoch: 0,
            current_epoch: 0,
            snapshot: Arc::new(snapshot),
            txns: Vec::new(),
        }])
    }
}

/// Tunables of primary-backup, chain and CRAQ nodes (one node type; the `--protocol` name
/// chooses the topology).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicaTuning {
    pub view_change_timeout_min_ms: u64,
    pub view_change_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Chain: how long a new head waits for the other members to join its view.
    pub gather_timeout_ms: u64,
    /// Chain: the head cuts out a member silent this long.
    pub member_timeout_ms: u64,
    /// Chain: the head takes a live standby back once the view is this old.
    pub rejoin_after_ms: u64,
    pub entries_per_prepare_max: usize,
    pub inflight_max: usize,
    pub snapshot_threshold: u64,
    pub uncommitted_max: u64,
    pub reads_max: usize,
    pub sessions_max: usize,
}

impl Default for ReplicaTuning {
    fn default() -> Self {
        let base = ReplicaConfig::new(Topology::PrimaryBackup);
        ReplicaTuning {
            view_change_timeout_min_ms: 300,
            view_change_timeout_max_ms: 600,
            heartbeat_interval_ms: 75,
            gather_timeout_ms: 50,
            member_timeout_ms: 600,
            rejoin_after_ms: 1000,
            entries_per_prepare_max: 512,
            inflight_max: 32,
            snapshot_threshold: 16_384,
            uncommitted_max: 16_384,
            reads_max: 16_384,
            sessions_max: base.sessions_max,
        }
    }
}

impl ReplicaTuning {
    fn to_config(&self, topology: Topology) -> ReplicaConfig {
        ReplicaConfig {
            view_change_timeout_min: ms(self.view_change_timeout_min_ms),
            view_change_timeout_max: ms(self.view_change_timeout_max_ms),
            heartbeat_interval: ms(self.heartbeat_interval_ms),
            gather_timeout: ms(self.gather_timeout_ms),
            member_timeout: ms(self.member_timeout_ms),
            rejoin_after: ms(self.rejoin_after_ms),
            entries_per_prepare_max: self.entries_per_prepare_max,
            inflight_max: self.inflight_max,
            snapshot_threshold: self.snapshot_threshold,
            uncommitted_max: self.uncommitted_max,
            reads_max: self.reads_max,
            sessions_max: self.sessions_max,
            ..ReplicaConfig::new(topology)
        }
    }
}

impl ServedProtocol for Replica {
    const NAMES: &'static [&'static str] = &["primary-backup", "chain", "craq"];
    type Config = ReplicaTuning;

    fn build(
        name: &str,
        id: NodeId,
        members: &[NodeId],
        t: &ReplicaTuning,
    ) -> Result<Self, String> {
        let topology = match name {
            "primary-backup" => Topology::PrimaryBackup,
            "chain" => Topology::Chain { craq: false },
            "craq" => Topology::Chain { craq: true },
            other => {
                return Err(format!(
                    "{other:?} is not a primary-backup or chain variant"
                ))
            }
        };
        let config = t.to_config(topology);
        config.validate()?;
        Ok(Replica::new(id, members, config))
    }

    fn applied_store(&self) -> Result<&KvStore, String> {
        Ok(self.store())
    }

    /// View 0 with no vote, boot 0, an empty log; the store as the snapshot of op 0.
    fn restored(
        _: &str,
        _: &[NodeId],
        store: KvStore,
    ) -> Result<Vec<primary_backup::Record>, String> {
        let snapshot = primary_backup::Snapshot {
            last_op: 0,
            last_view: 0,
            state: store,
        };
        Ok(vec![primary_backup::Record::Checkpoint {
            view: 0,
            vote: None,
            boot: 0,
            snapshot: Arc::new(snapshot),
            entries: Vec::new(),
        }])
    }
}
