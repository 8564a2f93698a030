//! Tunables, the two shapes of a group, and the deliberately broken variants.

use quorate_core::kv::SESSIONS_MAX_DEFAULT;
use std::time::Duration;

/// The shape of a view's group: who feeds whom, and who commits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Topology {
    /// The primary sends every entry to every backup and commits on a majority.
    PrimaryBackup,
    /// Entries flow head → ... → tail; the tail commits and serves linearizable reads. With
    /// `craq`, every chain node serves linearizable reads (CRAQ, Terrace & Freedman 2009).
    Chain { craq: bool },
}

/// Deliberately broken variants. They can only be switched on with the `bugs` feature, which
/// the tests use to show that the simulator's checks catch real mistakes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// Answer a write before it is safely replicated. Primary-backup: commit once one replica
    /// fewer than a majority holds the entry (2 of 5: an election quorum of 3 can miss it).
    /// Chain: the node before the tail commits as if it were the tail.
    ///
    /// (The seed's `acks < len(backups)//2` is this mistake for even group sizes, 2 of 4; next
    /// to this module's elections, which need 3 of 4, every write quorum of 2 still meets every
    /// election quorum, so the simulator rightly finds nothing wrong with it there. It loses
    /// writes in the seed because the seed promotes a backup without any quorum at all.)
    AckBeforeReplicated,
    /// Follow whichever primary (or chain predecessor) talks to you: a replica that has not
    /// yet received entries of its newer view goes back to an older view when a message of
    /// that view's primary side arrives, so that a deposed primary can still gather a
    /// "majority" (and a deposed chain can still reach its tail).
    AcceptOlderViews,
    /// Chain (issue 22): a restarted replica trusts only its snapshot as verified, and a tail
    /// that rejoins its view does not commit again what its log holds. Its committed state
    /// goes back to its snapshot; when that snapshot is of the current view, the tail counts
    /// as "committed in its view" and answers reads from it, although before the crash it
    /// acknowledged newer writes.
    RestartForgetsAcknowledged,
    /// A backup recognises its primary (chain: its predecessor) by node id instead of by view:
    /// a `Prepare` from the replica it follows is current by definition, and the backup takes
    /// on the view it carries, going back to it as [`Bug::AcceptOlderViews`] does. Harmless
    /// while messages are prompt and a deposed primary stays deposed; when the same replica
    /// is primary again in a later view (an ABA), a `Prepare` of its earlier reign delivered
    /// late sends the backup back to that view. Primary-backup shows it only under the
    /// `stale` fault (issue 15); in a chain a predecessor keeps its place across the views a
    /// head starts to cut out or take back a member, so prompt messages show it too.
    FollowsPrimaryById,
    /// A primary (a chain's tail, a CRAQ node) answers a linearizable read as soon as what it
    /// needs is applied, without waiting for a confirmation round sent after the read arrived
    /// (step 6 of the module docs): a deposed primary answers from stale state.
    ReadSkipsConfirmation,
    /// CRAQ: a tail answers a version query of an older view (a deposed node's dirty read)
    /// instead of refusing it, with the asker's view and its own commit number (step 6's
    /// fencing off). The deposed node then counts as committed its own dirty entries of the
    /// old view at positions the newer view filled with other entries.
    VersionQueryAcrossViews,
}

/// Tunables. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub topology: Topology,
    /// A backup starts a view change after hearing nothing from the primary for a time drawn
    /// from `view_change_timeout_min..=view_change_timeout_max`.
    pub view_change_timeout_min: Duration,
    pub view_change_timeout_max: Duration,
    /// How often replicas send heartbeats and retransmit; well below the view-change timeout.
    pub heartbeat_interval: Duration,
    /// Chain: after winning a view, how long the new head waits for the remaining members to
    /// answer, so that they join the new chain instead of waiting for the next view.
    pub gather_timeout: Duration,
    /// Chain: the head cuts a chain member out (with a new view) when it has not heard from it
    /// for this long.
    pub member_timeout: Duration,
    /// Chain: the head takes a live standby back into the chain (with a new view) once the
    /// current view is this old.
    pub rejoin_after: Duration,
    /// Entries per Prepare message, at most.
    pub entries_per_prepare_max: usize,
    /// Prepare messages carrying entries in flight to one replica, at most.
    pub inflight_max: usize,
    /// Applied entries beyond the last snapshot that trigger a new snapshot.
    pub snapshot_threshold: u64,
    /// Uncommitted entries the primary accepts before refusing new writes.
    pub uncommitted_max: u64,
    /// Linearizable reads waiting at one replica, at most.
    pub reads_max: usize,
    /// Client sessions remembered by the state machine.
    pub sessions_max: usize,
    /// Fencing (step 5 of the module docs): replicas refuse messages of older views. `false`
    /// is a teaching variant, never for real use: the seed's DNS failover, where nothing
    /// stops the old primary. A replica then follows whichever primary's `Prepare` reaches it,
    /// going back to an older view as [`Bug::AcceptOlderViews`] does, so that a deposed
    /// primary still gathers a "majority" and two primaries acknowledge writes at once (split
    /// brain, which the checkers report). `quorate sim --scenario split-brain-without-fencing`.
    pub fencing: bool,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl ReplicaConfig {
    /// Defaults for `topology`.
    pub fn new(topology: Topology) -> ReplicaConfig {
        ReplicaConfig {
            topology,
            view_change_timeout_min: Duration::from_millis(150),
            view_change_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            gather_timeout: Duration::from_millis(20),
            member_timeout: Duration::from_millis(300),
            rejoin_after: Duration::from_millis(500),
            entries_per_prepare_max: 64,
            inflight_max: 8,
            snapshot_threshold: 1024,
            uncommitted_max: 4096,
            reads_max: 1024,
            sessions_max: SESSIONS_MAX_DEFAULT,
            fencing: true,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }

    /// Checks that the tunables make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.view_change_timeout_min > self.view_change_timeout_max {
            return Err("view_change_timeout_min exceeds view_change_timeout_max".into());
        }
        if self.heartbeat_interval >= self.view_change_timeout_min {
            return Err("heartbeat_interval must be below view_change_timeout_min".into());
        }
        if self.member_timeout <= self.heartbeat_interval {
            return Err("member_timeout must exceed heartbeat_interval".into());
        }
        if self.entries_per_prepare_max == 0 || self.inflight_max == 0 || self.reads_max == 0 {
            return Err(
                "entries_per_prepare_max, inflight_max and reads_max must be positive".into(),
            );
        }
        if self.snapshot_threshold == 0 || self.uncommitted_max == 0 || self.sessions_max == 0 {
            return Err(
                "snapshot_threshold, uncommitted_max and sessions_max must be positive".into(),
            );
        }
        Ok(())
    }

    /// Whether the deliberately broken behaviour `bug` is switched on.
    pub(crate) fn has_bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "bugs")]
        return self.bug == Some(bug);
        #[cfg(not(feature = "bugs"))]
        {
            let _ = bug;
            false
        }
    }
}
