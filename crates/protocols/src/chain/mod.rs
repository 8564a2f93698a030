//! # Chain replication, with CRAQ reads
//!
//! Chain replication (van Renesse & Schneider, "Chain Replication for Supporting High
//! Throughput and Availability", OSDI 2004) arranges the replicas in a line. Writes enter at the
//! **head**, which orders them; each node stores a write durably and passes it to its
//! **successor**; the **tail** is where a write becomes committed, and the tail both answers the
//! client and serves reads. Because every write reaches the tail only after it passed through
//! every other node, the tail's state is always a prefix of every other node's, and reads at the
//! tail are linearizable without any coordination among replicas. The price is latency (a write
//! crosses the whole chain) and a chain that stops when any member stops, until it is repaired.
//!
//! CRAQ (Terrace & Freedman, "Object Storage on CRAQ", USENIX ATC 2009) lets every node serve
//! reads: a node whose newest version of a key is *clean* (committed, no newer write pending)
//! answers from its own state; if the key is *dirty* (a write of it is still on its way to the
//! tail), the node asks the tail for the newest committed version and answers with that.
//!
//! ## The same replica, another shape
//!
//! quorate's chain is [`crate::primary_backup::Replica`] with [`Topology::Chain`]: the view,
//! the election, the log, the consistency check, state transfer, fencing and the persist barrier
//! are shared with primary-backup (read that module first). What differs:
//!
//! 1. **The group is the chain.** The head of view `v` is the winner of its election; the chain
//!    is the head followed by every replica that answered the election within a short *gather*
//!    window, most up-to-date first. A chain always holds at least a majority of the members
//!    (the voters). Members outside the chain are *standbys*.
//! 2. **Writes flow down.** The head appends and sends `Prepare` to its successor; each node
//!    checks, persists, acknowledges to its predecessor and forwards the prefix it has verified
//!    to its successor. Only the verified prefix is forwarded, so nothing reaches the tail that
//!    the head does not hold.
//! 3. **The tail commits.** The tail commits everything through the last entry it verified once
//!    that entry belongs to the current view (the `ViewStart` entry of the view first) and is
//!    on the tail's own disk (`Timer::Durable`): such an entry is held, durably, by every node of
//!    the chain, which is a majority. It applies the write and answers the client. The commit number flows back up the chain in the
//!    acknowledgements, so the head can answer too and compact its log.
//! 4. **Repair through views.** The head pings every member each heartbeat. When a chain member
//!    stays silent for `member_timeout`, the head starts the next view; the new chain is formed
//!    from the replicas that answer, so the failed node (head, middle or tail alike) drops out.
//!    A silent head is replaced by the election that its missing pings trigger. A standby that
//!    answers pings is taken back into the chain by a new view once the current one is
//!    `rejoin_after` old; it catches up from its predecessor by the usual consistency check or
//!    state transfer.
//! 5. **Tail reads** wait for a confirmation round (a majority still in the view) and for the
//!    tail to have committed an entry of its view, exactly as a primary-backup primary's reads:
//!    a tail cut out of the chain by a partition must not go on answering from a state the new
//!    chain has moved past. The original paper assumes a fail-stop master that notifies the
//!    tail; under partitions that notification can be late, and the round is what makes a
//!    deposed tail harmless.
//!
//!    Usually something else deposes it first: the tail is a backup, so its view-change timer
//!    (150 to 300 ms without its head's pings or its predecessor's Prepares) makes it a
//!    candidate, serving nothing, before the head's `member_timeout` (300 ms) cuts it out.
//!    That is timing, not safety: a paused process or a slower timer outlives it, and then
//!    only the round stands between the deposed tail and a stale read (VERIFICATION.md,
//!    "Defences off": `quorate sim --slow-view-change` and `--faults pause-requests-first`,
//!    and `quorate explore --failover-node`, catch a tail that skips it).
//!
//!    "An entry of its view committed" proves only that the tail holds the writes acknowledged
//!    *before* its view. Those acknowledged *in* it, the tail acknowledged itself, so its
//!    commit number covers them, unless it went back: a tail that crashes restarts with the
//!    commit number of its snapshot and rejoins the same view as its tail at the head's next
//!    Ping. If that snapshot is of the current view, the condition holds at once, and the tail
//!    used to answer from the snapshot after acknowledging newer writes (issue 22, found with
//!    one hot key, 3 nodes and 20-second fault phases). So a restarting replica takes its log
//!    as verified through its last entry of its view (it took every such entry through the
//!    consistency check, and the head's log of that view only grows), and a tail that learns
//!    its chain commits at once what it holds on disk: everything it ever acknowledged, since
//!    it acknowledges only durable entries.
//! 6. **CRAQ reads** (`Topology::Chain { craq: true }`): any chain node serves linearizable
//!    reads. A key is clean at a node when the node's verified log holds an entry of the current
//!    view (so it holds every write committed before the view) and no entry after its applied
//!    state writes the key; then every write of the key that can have been acknowledged is in
//!    its applied state, because it passed through this node on its way to the tail. Otherwise
//!    the node sends a version query to the tail and answers once it has applied through the
//!    tail's commit number. Either way a confirmation round protects against a deposed chain.
//!    The tail answers a version query from the same commit number as its own reads, so a
//!    restarted tail re-commits what it holds (step 5) before it answers one too.
//!
//! ## Guarantees
//!
//! Writes and tail (or CRAQ) reads are linearizable; an acknowledged write survives any minority
//! of failures; a deposed head cannot get a write acknowledged, since every message carries its
//! view and the nodes of a newer chain refuse older views.
//!
//! ## Deliberately left out
//!
//! An external master (the replicas elect the head among themselves instead), adding a node at
//! the tail of a running chain without a view change, and CRAQ's multi-datacenter placement.

use crate::primary_backup::{Group, Message, Replica, Topology};
use quorate_core::{Effects, NodeId};
use std::collections::BTreeMap;

pub use crate::primary_backup::{Bug, ReplicaConfig, ViewSafety};

/// Configuration for a chain; `craq` lets every chain node serve linearizable reads.
pub fn config(craq: bool) -> ReplicaConfig {
    ReplicaConfig::new(Topology::Chain { craq })
}

/// Step 1: the new chain, the head first, then every replica that answered the election, most
/// up-to-date (by the viewstamp of its last entry) first, ties by id.
pub(crate) fn order_chain(head: NodeId, answers: &BTreeMap<NodeId, (u64, u64)>) -> Vec<NodeId> {
    let mut rest: Vec<(&NodeId, &(u64, u64))> =
        answers.iter().filter(|(id, _)| **id != head).collect();
    rest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    std::iter::once(head)
        .chain(rest.into_iter().map(|(id, _)| *id))
        .collect()
}

impl Replica {
    pub(crate) fn craq(&self) -> bool {
        matches!(self.config.topology, Topology::Chain { craq: true })
    }

    fn position(&self) -> Option<usize> {
        self.group.iter().position(|id| *id == self.id)
    }

    /// The next node down the chain.
    pub(crate) fn successor(&self) -> Option<NodeId> {
        let position = self.position()?;
        self.group.get(position + 1).copied()
    }

    /// The previous node up the chain.
    pub(crate) fn predecessor(&self) -> Option<NodeId> {
        let position = self.position()?;
        position.checked_sub(1).map(|p| self.group[p])
    }

    /// Whether this replica is the tail of its view's chain.
    pub fn is_tail(&self) -> bool {
        self.is_chain() && self.group.last() == Some(&self.id)
    }

    /// Step 4: the head's heartbeat to every member.
    pub(crate) fn ping_members(&self, out: &mut Effects<Self>) {
        let ping = Message::Ping {
            view: self.view,
            group: self.group.clone(),
            commit: self.commit,
        };
        for peer in self.others() {
            out.send(peer, ping.clone());
        }
    }

    pub(crate) fn on_ping(
        &mut self,
        from: NodeId,
        view: u64,
        group: Group,
        commit: u64,
        out: &mut Effects<Self>,
    ) {
        if view < self.view {
            self.stats.stale_refused += 1;
            return out.send(from, Message::PingOk { view: self.view });
        }
        if group.first() != Some(&from) || self.is_primary() {
            return; // Only the head pings, and a head is never pinged in its own view.
        }
        self.learn_group(&group, out);
        self.reset_view_change_timer(out);
        if self.group.contains(&self.id) {
            self.learn_commit(commit, out);
        }
        out.send(from, Message::PingOk { view });
    }

    /// Step 4: whether the head should start a new view, to cut out a silent chain member or
    /// to take back a standby that answers.
    pub(crate) fn chain_needs_repair(&self) -> bool {
        let age = self.now.saturating_since(self.view_began);
        if age < self.config.member_timeout {
            return false; // Give a new chain time to settle.
        }
        let silent = |id: &NodeId| match self.heard.get(id) {
            Some(at) => self.now.saturating_since(*at) > self.config.member_timeout,
            None => true,
        };
        if self.group.iter().skip(1).any(silent) {
            return true;
        }
        let standby_alive = self
            .others()
            .any(|id| !self.group.contains(&id) && !silent(&id));
        standby_alive && age >= self.config.rejoin_after
    }
}

#[cfg(test)]
mod tests;
