//! Raft's tunables, and the deliberately broken variants the tests switch on.

use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use std::time::Duration;

/// Deliberately broken variants. They can only be switched on with the `bugs` feature, which
/// the tests use to show that the simulator's checks catch real mistakes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// Commit any entry stored on a majority, even one from an earlier term (Figure 8). New
    /// leaders also skip their no-op entry, which would otherwise mask the mistake most of the
    /// time (Figure 8 has no no-ops).
    CommitPreviousTermByCounting,
    /// Grant votes without the §5.4.1 up-to-date check.
    VoteWithoutLogCheck,
    /// During joint consensus, commit with a majority of the new configuration alone (§6
    /// requires majorities of both the old and the new).
    JointNewMajorityOnly,
    /// A follower adopts the leader's commit index without capping it at the entries this
    /// AppendEntries verified (§5.3: `min(leaderCommit, index of last new entry)`), then
    /// applies entries it does not hold: a panic inside a run.
    CommitBeyondMatch,
    /// A node re-sends its `Durable` notification to itself every time one arrives: a loop
    /// of self-messages that never lets simulated time advance (a run that never ends).
    DurableLoop,
    /// A follower installs a snapshot older than its commit index instead of ignoring it:
    /// its commit index, applied index and state machine go backwards.
    StaleSnapshot,
    /// A leader serves a ReadIndex read as soon as it has committed in its term, without
    /// waiting for a quorum to echo a heartbeat round sent after the read arrived (§6.4 step
    /// 3): a deposed leader answers from stale state. Lease reads, which serve most reads
    /// when on, hide it.
    ReadIndexSkipsQuorum,
    /// A leader runs its lease from when a quorum's acknowledgements *arrive* instead of from
    /// when it *sent* the round they acknowledge (§6.4.1). Harmless while messages are
    /// prompt; a leader that stalls (a GC pause) and then handles acknowledgements queued
    /// for a second serves reads on a lease its followers stopped honouring long ago.
    LeaseFromAck,
    /// A voter answers a RequestVote before it persists the term and vote it granted (the
    /// hard-state write is issued after the reply, so the reply does not wait for it). A
    /// crash before the write completes forgets the vote, and the voter may vote again in
    /// the same term.
    VoteBeforePersist,
    /// Reads are answered from the state machine without comparing a key's deadline with
    /// the node's clock: between a deadline and the commit of its `Expired` entry, a read
    /// returns the expired value.
    ReadSkipsDeadline,
    /// Followers skip `Expired` entries: they keep the key, and answer it again once one of
    /// them leads.
    FollowerIgnoresExpiry,
    /// The leader proposes no `ExpireDue` before a write that reads the current value: a
    /// `CAS` right after a leader change swaps a value whose deadline passed long ago.
    RmwSeesExpired,
    /// The leader drops a transaction's `WATCH` guards when it proposes it (as a driver that
    /// forwarded `MULTI`/`EXEC` but not `WATCH` would): a transaction commits although a
    /// watched key changed after the client read it.
    TxnDropsGuards,
    /// The leader looks for keys and leases past their deadline with its clock read 50 ms
    /// ahead (as a leader that adds a lease's time to live to the wrong reading would): a
    /// lease ends, with its keys, before its deadline.
    ExpiresEarly,
    /// Leaving joint consensus, the leader writes the new configuration without its members'
    /// addresses (as code that rebuilt it from voter ids alone would): members added with an
    /// address become unreachable for drivers after the next wholesale change.
    JointDropsAddresses,
    /// A heartbeat to a caught-up follower carries every entry of the leader's log again,
    /// from its first uncompacted index to the follower's match, instead of none. Safe (the
    /// follower holds them all and skips them) but its bytes grow with the log: bounded by
    /// snapshots, with the run where nothing compacts. Only a cost check sees it.
    HeartbeatCarriesLog,
}

/// Tunables. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// A follower starts an election after hearing nothing for a time drawn from
    /// `election_timeout_min..=election_timeout_max`.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How often an idle leader sends heartbeats; well below the election timeout.
    pub heartbeat_interval: Duration,
    /// Thesis §9.6: ask for pre-votes before bumping the term, so that a node that was cut
    /// off cannot depose a healthy leader when it comes back.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum within an election timeout,
    /// and nodes that heard from a leader within the minimum election timeout ignore vote
    /// requests (thesis §6.2 and §4.2.3). Lease reads depend on the second half.
    pub check_quorum: bool,
    /// Serve linearizable reads with ReadIndex (thesis §6.4): a heartbeat round confirms
    /// leadership, and nothing is written to the log. Off: reads go through the log.
    pub read_index: bool,
    /// While a quorum acknowledged a heartbeat round sent less than the lease ago, serve reads
    /// from the leader's state without a round (thesis §6.4.1). Safe only while every clock's
    /// rate stays within `clock_drift_bound_ppm` of true time; needs `check_quorum`.
    pub lease_reads: bool,
    /// The bound on clock drift that lease reads assume, in parts per million of true time: a
    /// clock may run at most this much fast or slow. The lease lasts
    /// `election_timeout_min × (1 − δ) / (1 + δ)`.
    pub clock_drift_bound_ppm: u64,
    /// Followers and learners serve linearizable reads themselves, asking the leader for a
    /// read index (thesis §6.4); off: they redirect clients to the leader.
    pub follower_reads: bool,
    /// Entries per AppendEntries message, at most.
    pub entries_per_append_max: usize,
    /// Bytes of entries per AppendEntries message, at most (beyond a first entry).
    pub append_bytes_max: u64,
    /// AppendEntries messages carrying entries in flight to one follower, at most.
    pub inflight_max: usize,
    /// Bytes of entries in flight to one follower, at most.
    pub inflight_bytes_max: u64,
    /// Applied entries beyond the last snapshot that trigger a new snapshot.
    pub snapshot_threshold: u64,
    /// InstallSnapshot sends the state machine in chunks of about this many bytes, one chunk
    /// in flight per follower.
    pub snapshot_chunk_bytes: usize,
    /// A learner may be promoted to voter once its log is within this many entries of the
    /// leader's.
    pub promotion_lag_max: u64,
    /// Uncommitted entries the leader accepts before refusing new commands.
    pub uncommitted_max: u64,
    /// Linearizable reads awaiting confirmation, per node, at most.
    pub reads_pending_max: usize,
    /// Client sessions remembered by the state machine.
    pub sessions_max: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            read_index: true,
            lease_reads: false,
            clock_drift_bound_ppm: 50_000,
            follower_reads: true,
            entries_per_append_max: 64,
            append_bytes_max: 256 * 1024,
            inflight_max: 8,
            inflight_bytes_max: 1024 * 1024,
            snapshot_threshold: 1024,
            snapshot_chunk_bytes: 64 * 1024,
            promotion_lag_max: 64,
            uncommitted_max: 4096,
            reads_pending_max: 8192,
            sessions_max: SESSIONS_MAX_DEFAULT,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl RaftConfig {
    /// Raft as Figure 2 of the paper describes it: no pre-vote, no check-quorum, every read
    /// through the log. The scenario tests of §5 use it.
    pub fn figure2() -> RaftConfig {
        RaftConfig {
            pre_vote: false,
            check_quorum: false,
            read_index: false,
            lease_reads: false,
            follower_reads: false,
            ..RaftConfig::default()
        }
    }

    /// Checks that the tunables make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.election_timeout_min > self.election_timeout_max {
            return Err("election_timeout_min exceeds election_timeout_max".into());
        }
        if self.heartbeat_interval >= self.election_timeout_min {
            return Err("heartbeat_interval must be below election_timeout_min".into());
        }
        if self.entries_per_append_max == 0 || self.inflight_max == 0 {
            return Err("entries_per_append_max and inflight_max must be positive".into());
        }
        if self.inflight_bytes_max == 0 || self.append_bytes_max == 0 {
            return Err("inflight_bytes_max and append_bytes_max must be positive".into());
        }
        if self.snapshot_threshold == 0 || self.uncommitted_max == 0 || self.sessions_max == 0 {
            return Err(
                "snapshot_threshold, uncommitted_max and sessions_max must be positive".into(),
            );
        }
        if self.snapshot_chunk_bytes == 0 || self.reads_pending_max == 0 {
            return Err("snapshot_chunk_bytes and reads_pending_max must be positive".into());
        }
        if self.lease_reads && !(self.check_quorum && self.read_index) {
            return Err("lease_reads needs check_quorum and read_index".into());
        }
        if self.follower_reads && !self.read_index {
            return Err("follower_reads needs read_index".into());
        }
        if self.clock_drift_bound_ppm >= 1_000_000 {
            return Err("clock_drift_bound_ppm must be below 1,000,000 (100%)".into());
        }
        Ok(())
    }

    /// How long after sending a heartbeat round that a quorum acknowledged the leader may
    /// serve reads from its own state, on its own clock (thesis §6.4.1).
    ///
    /// A follower that acknowledged the round ignores vote requests for `election_timeout_min`
    /// of its own clock after receiving it, so no other leader exists before that much time
    /// has passed on that clock. With every clock within `±δ` of true time, `L` on the
    /// leader's clock is at most `L / (1 − δ)` of true time and `E` on the follower's is at
    /// least `E / (1 + δ)`; `L = E (1 − δ) / (1 + δ)` keeps the first below the second.
    pub fn lease_duration(&self) -> Duration {
        let delta = u128::from(self.clock_drift_bound_ppm);
        let e = self.election_timeout_min.as_nanos();
        let nanos = e * (1_000_000 - delta) / (1_000_000 + delta);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Whether the deliberately broken behaviour `bug` is switched on.
    pub(super) fn has_bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "bugs")]
        return self.bug == Some(bug);
        #[cfg(not(feature = "bugs"))]
        {
            let _ = bug;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_shrinks_with_the_drift_bound() {
        let mut config = RaftConfig {
            clock_drift_bound_ppm: 0,
            ..RaftConfig::default()
        };
        assert_eq!(config.lease_duration(), config.election_timeout_min);
        config.clock_drift_bound_ppm = 100_000; // 10%: 150 ms × 0.9 / 1.1
        assert_eq!(config.lease_duration(), Duration::from_nanos(122_727_272));
    }

    #[test]
    fn inconsistent_options_are_refused() {
        let config = RaftConfig {
            lease_reads: true,
            check_quorum: false,
            ..RaftConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("check_quorum"));
        let config = RaftConfig {
            read_index: false,
            ..RaftConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("follower_reads"));
        assert!(RaftConfig::figure2().validate().is_ok());
    }
}
