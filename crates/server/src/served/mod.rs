//! What the server needs from a protocol, beyond [`quorate_core::Protocol`].
//!
//! The runtime is generic over the node type: it never looks inside messages or records. It
//! needs to put them on the wire and on disk (serde), to move them between threads (`Send`),
//! and to build a node from the operator's configuration. That is all a protocol implements
//! here; the same node type runs unchanged under the simulator.

use crate::membership::MemberView;
use quorate_core::{KvStore, NodeId, Protocol};
use quorate_protocols::raft::{
    Membership, Raft, RaftConfig, Record as RaftRecord, Snapshot as RaftSnapshot,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub mod leaderless;
pub mod replicated;

/// A protocol the server can run. Adding one is this impl plus one arm in
/// [`serve_by_name`](crate::serve_by_name).
pub trait ServedProtocol:
    Protocol<
        Message: Serialize + DeserializeOwned + Send + 'static,
        Record: Serialize + DeserializeOwned + Send + 'static,
        Timer: Send + 'static,
    > + Send
    + 'static
{
    /// The names `--protocol` takes for this node type, one per variant it can be built as
    /// (chain and CRAQ are one node type). The name is also checked in the peer handshake and
    /// recorded in the data directory, so variants never mix.
    const NAMES: &'static [&'static str];

    /// Tunables, read from the `[tuning]` table of the server's config file (every field
    /// should have a default, so an absent table means "the defaults").
    /// Whether the node's `now` must be comparable across nodes: then it starts at the Unix
    /// time (by the system clock) when the node starts, and runs monotonically from there;
    /// otherwise it starts at 0. Only protocols that stamp data with their clock need this
    /// (multiprimary's hybrid logical clocks); for them, nodes' system clocks must agree
    /// within the protocol's bound (NTP). Timeouts never depend on it.
    const UNIX_CLOCK: bool = false;

    /// Whether the node's status reports positions in a replicated log (`commit_index`,
    /// `applied_index`). The leaderless protocols keep no log and report zeros there, so the
    /// metrics leave out what would be derived from them (`quorate_apply_lag`) rather than
    /// export a 0 that means nothing.
    const KEEPS_LOG: bool = true;

    type Config: DeserializeOwned + Default + Clone + Send + Sync + fmt::Debug;

    /// A fresh node `id` of the cluster `members` (which includes `id`), as the variant
    /// `name` (one of [`NAMES`](Self::NAMES)). It receives `Input::Start` with the recovered
    /// records before anything else. An invalid configuration is an `Err` saying what is wrong.
    fn build(
        name: &str,
        id: NodeId,
        members: &[NodeId],
        config: &Self::Config,
    ) -> Result<Self, String>;

    /// How the RESP front end should talk to this protocol (default: one value per key).
    fn client_model(config: &Self::Config) -> ClientModel {
        let _ = config;
        ClientModel::default()
    }

    /// The replicated store as applied on this node, at `status().applied_index` (a committed
    /// point): what `SNAPSHOT` copies into a backup. `Err` says why this protocol has none.
    fn applied_store(&self) -> Result<&KvStore, String> {
        Err(NO_SINGLE_STORE.into())
    }

    /// Online membership changes (see [`crate::membership`]): the configuration in force on
    /// this node. `None`: this protocol's membership is fixed at bootstrap, and `MEMBER` is
    /// refused by name.
    fn members(&self) -> Option<MemberView> {
        None
    }

    /// The addresses of members added online, by id (strings a [`MemberAddress`] encoded),
    /// which the runtime dials. Read after every step, so it must be cheap.
    ///
    /// [`MemberAddress`]: crate::membership::MemberAddress
    fn member_addresses(&self) -> Option<&BTreeMap<NodeId, String>> {
        None
    }

    /// On a leader, the log position each other member has acknowledged holding (its match
    /// index), by member: what `quorate_follower_lag` is computed from. `None` on a node that
    /// does not lead, and from protocols that do not expose it. The runtime asks after every
    /// batch of inputs while the node leads, so it must be cheap.
    fn followers_matched(&self) -> Option<BTreeMap<NodeId, u64>> {
        None
    }

    /// The durable records that start node `id` of a *new* cluster of `members` from `store`
    /// (`quorate snapshot restore`): the protocol's empty durable state (term, votes and log
    /// at zero, the bootstrap membership) with `store` as its snapshot at index 0, the same on
    /// every member, so no node remembers anything of the cluster the backup came from.
    fn restored(
        name: &str,
        members: &[NodeId],
        store: KvStore,
    ) -> Result<Vec<Self::Record>, String> {
        let _ = (members, store);
        Err(format!("{name}: {NO_SINGLE_STORE}"))
    }
}

/// Why the leaderless protocols have no backup.
const NO_SINGLE_STORE: &str = "this protocol keeps no single replicated store with a committed index: its replicas hold versions of each key that converge over time (read repair, hinted handoff, anti-entropy), so there is no point at which one node's state is the cluster's. Back up every node's data directory while the cluster is stopped instead";

/// What the client front end needs to know about a protocol's answers, beyond the
/// `Protocol` interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientModel {
    /// Registers keep concurrent versions (siblings) with causal contexts: `SET` sends the
    /// context the connection last got for the key (`PutWithContext`), so that it supersedes
    /// exactly the versions the client has seen, and `GET` may answer several values.
    pub causal_contexts: bool,
}

/// Milliseconds as a `Duration` (tunables are read in milliseconds).
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Raft's tunables as a server reads them (milliseconds rather than `Duration`s). The
/// defaults suit a LAN or loopback, with windows sized for a few hundred concurrent clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftTuning {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub entries_per_append_max: usize,
    pub inflight_max: usize,
    pub snapshot_threshold: u64,
    pub uncommitted_max: u64,
    pub sessions_max: usize,
    /// Serve linearizable reads from the leader's lease instead of a heartbeat round
    /// (thesis §6.4.1): no messages per read, but correct only while every node's clock rate
    /// stays within `clock_drift_bound_ppm` of true time. Off by default (ReadIndex, as etcd).
    pub lease_reads: bool,
    /// The bound on clock-rate drift the lease assumes, in millionths; the lease is the
    /// election timeout shortened by it.
    pub clock_drift_bound_ppm: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        let base = RaftConfig::default();
        RaftTuning {
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_interval_ms: 75,
            entries_per_append_max: 512,
            // AppendEntries in flight per follower. A small window batches under load: the
            // entries proposed while the window is full leave in one message when an
            // acknowledgement frees a slot, instead of one message per write (measured in
            // BENCHMARKS.md: 1.9 peer messages per write at 64 clients with 32, 0.3 with 4).
            // The simulator's Raft runs with the same window.
            inflight_max: 4,
            snapshot_threshold: 16_384,
            uncommitted_max: 16_384,
            sessions_max: base.sessions_max,
            lease_reads: false,
            clock_drift_bound_ppm: base.clock_drift_bound_ppm,
        }
    }
}

impl RaftTuning {
    pub fn to_config(&self) -> RaftConfig {
        RaftConfig {
            election_timeout_min: Duration::from_millis(self.election_timeout_min_ms),
            election_timeout_max: Duration::from_millis(self.election_timeout_max_ms),
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms),
            entries_per_append_max: self.entries_per_append_max,
            inflight_max: self.inflight_max,
            snapshot_threshold: self.snapshot_threshold,
            uncommitted_max: self.uncommitted_max,
            sessions_max: self.sessions_max,
            lease_reads: self.lease_reads,
            clock_drift_bound_ppm: self.clock_drift_bound_ppm,
            // Room for every node's `inflight_max` (4,096) of reads forwarded to the leader.
            reads_pending_max: 16_384,
            ..RaftConfig::default()
        }
    }
}

impl ServedProtocol for Raft {
    const NAMES: &'static [&'static str] = &["raft"];
    /// The leader stamps keys' deadlines with its clock (`quorate_core::kv::expiry`), which
    /// every node compares: the clocks must share an origin.
    const UNIX_CLOCK: bool = true;
    type Config = RaftTuning;

    fn build(_: &str, id: NodeId, members: &[NodeId], tuning: &RaftTuning) -> Result<Raft, String> {
        let config = tuning.to_config();
        config.validate()?;
        Ok(Raft::new(id, members, config))
    }

    fn applied_store(&self) -> Result<&KvStore, String> {
        Ok(self.store())
    }

    fn members(&self) -> Option<MemberView> {
        let membership = self.membership().clone();
        let matched = membership
            .members()
            .into_iter()
            .filter_map(|id| Some((id, self.match_index(id)?)))
            .collect();
        Some(MemberView {
            membership,
            matched,
            last_index: self.status().last_index,
        })
    }

    fn member_addresses(&self) -> Option<&BTreeMap<NodeId, String>> {
        Some(&self.membership().addresses)
    }

    fn followers_matched(&self) -> Option<BTreeMap<NodeId, u64>> {
        if !self.is_leader() {
            return None;
        }
        let me = self.id();
        let matched = (self.membership().members().into_iter())
            .filter(|id| *id != me)
            .filter_map(|id| Some((id, self.match_index(id)?)))
            .collect();
        Some(matched)
    }

    fn restored(_: &str, members: &[NodeId], store: KvStore) -> Result<Vec<RaftRecord>, String> {
        let snapshot = RaftSnapshot {
            last_index: 0,
            last_term: 0,
            membership: Membership::new(members.iter().copied()),
            state: store,
        };
        Ok(vec![RaftRecord::Checkpoint {
            term: 0,
            vote: None,
            snapshot: Arc::new(snapshot),
            entries: Vec::new(),
        }])
    }
}
