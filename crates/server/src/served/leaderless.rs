//! The leaderless protocols: the Dynamo-style quorum store and multi-primary replication.
//!
//! Any node coordinates any request, so no answer is ever `NotLeader` and the RESP front end
//! neither forwards nor redirects: a client's requests run at the node it is connected to,
//! and so do their retries (a coordinator deduplicates a client's retried write; a retry at
//! another coordinator would be a second write, which is why the front end never moves one).
//! `INFO` reports `role:replica` and no leader.
//!
//! What a client sees:
//!
//! - **quorum**: GET, SET, DEL. With `R + W > N` and write-back (the defaults) every operation
//!   is linearizable. APPEND, CAS, `SET NX` and INCR are refused: read-modify-write needs
//!   consensus, which a quorum register does not have.
//! - **multiprimary**: every node accepts writes and answers at once; replicas converge.
//!   With `resolution = "lww"` a GET is one value (the highest hybrid-logical-clock stamp
//!   wins; a concurrent write can silently lose). With `resolution = "vv"` (the default)
//!   concurrent writes are kept as siblings: a GET of a key with several answers an *array*
//!   of the values, and a SET supersedes exactly the versions this connection has seen (see
//!   [`ClientModel::causal_contexts`]). APPEND, CAS and INCR are refused (they need
//!   consensus); the protocol's CRDTs have no RESP mapping yet.

use super::{ms, ClientModel, ServedProtocol};
use quorate_core::NodeId;
use quorate_protocols::multiprimary::{LwwClock, MultiPrimary, MultiPrimaryConfig, Resolution};
use quorate_protocols::quorum::{Quorum, QuorumConfig};
use serde::Deserialize;

/// Quorum-store tunables (`[tuning]` of a `quorum` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuorumTuning {
    /// Replicas per key (default: 3, or the cluster's size if smaller).
    pub n: Option<usize>,
    /// Replicas that must answer a read, and acknowledge a write (default: a majority of N).
    pub r: Option<usize>,
    pub w: Option<usize>,
    pub vnodes: usize,
    /// Reads write back what they return before answering (ABD): linearizable reads.
    pub write_back: bool,
    pub read_repair: bool,
    /// Accept `R + W <= N` and sloppy quorums, which give up linearizability.
    pub allow_partial: bool,
    pub sloppy: bool,
    pub retry_interval_ms: u64,
    /// A coordinator answers "unavailable" after trying this long.
    pub request_timeout_ms: u64,
    pub anti_entropy_interval_min_ms: u64,
    pub anti_entropy_interval_max_ms: u64,
    pub merkle_depth: u32,
    pub handoff_interval_ms: u64,
    pub hints_max: usize,
    pub handoff_batch_max: usize,
    pub inflight_max: usize,
    pub sessions_max: usize,
    pub checkpoint_every: usize,
}

impl Default for QuorumTuning {
    fn default() -> Self {
        let base = QuorumConfig::default();
        QuorumTuning {
            n: None,
            r: None,
            w: None,
            vnodes: base.vnodes,
            write_back: true,
            read_repair: true,
            allow_partial: false,
            sloppy: false,
            retry_interval_ms: 50,
            request_timeout_ms: 800,
            anti_entropy_interval_min_ms: 500,
            anti_entropy_interval_max_ms: 1000,
            merkle_depth: base.merkle_depth,
            handoff_interval_ms: 200,
            hints_max: base.hints_max,
            handoff_batch_max: base.handoff_batch_max,
            inflight_max: 4096,
            sessions_max: base.sessions_max,
            checkpoint_every: 1024,
        }
    }
}

impl QuorumTuning {
    /// The protocol's configuration for a cluster of `nodes`.
    pub fn to_config(&self, nodes: usize) -> QuorumConfig {
        let n = self.n.unwrap_or(3.min(nodes));
        let majority = n / 2 + 1;
        // Without the `bugs` feature every field is named below; with it, `bug` is not.
        #[allow(clippy::needless_update)]
        let config = QuorumConfig {
            n,
            r: self.r.unwrap_or(majority),
            w: self.w.unwrap_or(majority),
            vnodes: self.vnodes,
            write_back: self.write_back,
            read_repair: self.read_repair,
            allow_partial: self.allow_partial,
            sloppy: self.sloppy,
            retry_interval: ms(self.retry_interval_ms),
            request_timeout: ms(self.request_timeout_ms),
            anti_entropy_interval_min: ms(self.anti_entropy_interval_min_ms),
            anti_entropy_interval_max: ms(self.anti_entropy_interval_max_ms),
            merkle_depth: self.merkle_depth,
            handoff_interval: ms(self.handoff_interval_ms),
            hints_max: self.hints_max,
            handoff_batch_max: self.handoff_batch_max,
            inflight_max: self.inflight_max,
            sessions_max: self.sessions_max,
            checkpoint_every: self.checkpoint_every,
            ..QuorumConfig::default()
        };
        config
    }
}

impl ServedProtocol for Quorum {
    const NAMES: &'static [&'static str] = &["quorum"];
    const KEEPS_LOG: bool = false;
    type Config = QuorumTuning;

    fn build(_: &str, id: NodeId, members: &[NodeId], t: &QuorumTuning) -> Result<Self, String> {
        let config = t.to_config(members.len());
        config.validate(members.len())?;
        Ok(Quorum::new(id, members, config))
    }
}

/// How multi-primary registers resolve concurrent writes, as `[tuning]` spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolutionName {
    /// Last-write-wins on hybrid logical clocks.
    Lww,
    /// Dotted version vectors: concurrent writes kept as siblings.
    #[default]
    Vv,
}

/// Multi-primary tunables (`[tuning]` of a `multiprimary` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiPrimaryTuning {
    pub resolution: ResolutionName,
    /// Clocks received further ahead of the local clock than this are refused.
    pub clock_ahead_max_ms: u64,
    pub anti_entropy_interval_min_ms: u64,
    pub anti_entropy_interval_max_ms: u64,
    pub merkle_depth: u32,
    pub entries_per_message_max: usize,
    pub sessions_max: usize,
    pub checkpoint_every: usize,
    /// Concurrent versions one key may hold (Riak's `max_siblings`); a SET beyond is refused
    /// (`quorate_sibling_limit_refusals_total` counts them).
    pub max_siblings: usize,
}

impl Default for MultiPrimaryTuning {
    fn default() -> Self {
        let base = MultiPrimaryConfig::default();
        MultiPrimaryTuning {
            resolution: ResolutionName::Vv,
            clock_ahead_max_ms: base.clock_ahead_max.as_millis() as u64,
            anti_entropy_interval_min_ms: 500,
            anti_entropy_interval_max_ms: 1000,
            merkle_depth: base.merkle_depth,
            entries_per_message_max: base.entries_per_message_max,
            sessions_max: base.sessions_max,
            checkpoint_every: 1024,
            max_siblings: base.max_siblings,
        }
    }
}

impl ServedProtocol for MultiPrimary {
    const NAMES: &'static [&'static str] = &["multiprimary"];
    /// Hybrid logical clocks compare physical time across nodes, and refuse a clock more than
    /// `clock_ahead_max` ahead: a clock starting at 0 per process would put nodes started
    /// minutes apart beyond that bound, and make LWW favour whichever node started first.
    const UNIX_CLOCK: bool = true;
    const KEEPS_LOG: bool = false;
    type Config = MultiPrimaryTuning;

    fn build(
        _: &str,
        id: NodeId,
        members: &[NodeId],
        t: &MultiPrimaryTuning,
    ) -> Result<Self, String> {
        let config = MultiPrimaryConfig {
            resolution: match t.resolution {
                ResolutionName::Lww => Resolution::Lww,
                ResolutionName::Vv => Resolution::VersionVectors,
            },
            // The raw wall clock is the seed's mistake, kept for the simulator's comparison.
            lww_clock: LwwClock::Hlc,
            clock_ahead_max: ms(t.clock_ahead_max_ms),
            anti_entropy_interval_min: ms(t.anti_entropy_interval_min_ms),
            anti_entropy_interval_max: ms(t.anti_entropy_interval_max_ms),
            merkle_depth: t.merkle_depth,
            entries_per_message_max: t.entries_per_message_max,
            sessions_max: t.sessions_max,
            checkpoint_every: t.checkpoint_every,
            max_siblings: t.max_siblings,
            ..MultiPrimaryConfig::default()
        };
        config.validate()?;
        Ok(MultiPrimary::new(id, members, config))
    }

    fn client_model(t: &MultiPrimaryTuning) -> ClientModel {
        ClientModel {
            causal_contexts: t.resolution == ResolutionName::Vv,
        }
    }
}
