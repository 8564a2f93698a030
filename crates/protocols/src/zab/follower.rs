//! The follower's side of discovery, synchronization and broadcast (ZooKeeper's `Follower`
//! and `Learner.syncWithLeader`).

use super::history::History;
use super::message::{LeaderMessage, LearnerMessage, Message, Record, Snapshot, Txn, Zxid};
use super::{Bug, State, Timer, Zab};
use quorate_core::{Effects, NodeId, Time};
use std::sync::Arc;

/// Where a follower is in joining its leader's epoch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// FOLLOWERINFO sent; waiting for LEADERINFO.
    Discovery,
    /// ACKEPOCH sent; receiving DIFF/TRUNC/SNAP and then NEWLEADER.
    Synchronization,
    /// NEWLEADER acknowledged; receiving proposals, waiting for UPTODATE.
    Synchronized,
    /// UPTODATE received: committing and serving clients.
    Broadcast,
}

/// A following server's end of its connection to the leader.
#[derive(Clone, Debug)]
pub(super) struct Follower {
    pub(super) leader: NodeId,
    conn: u64,
    /// Sequence number of the last message sent and of the last one received.
    seq_out: u64,
    seq_in: u64,
    phase: Phase,
    /// The epoch LEADERINFO proposed (0 before it arrives).
    epoch: u64,
    started: Time,
    last_heard: Time,
    /// `Bug::AckBeforePersist` only: transactions acknowledged but not yet persisted.
    pub(super) unpersisted: Vec<Txn>,
}

/// `Bug::AckBeforePersist`: the follower logs asynchronously, flushing this many transactions
/// at a time (or every tick), but acknowledges on receipt.
const LAZY_FLUSH: usize = 8;

impl Follower {
    pub(super) fn send(&mut self, out: &mut Effects<Zab>, msg: LearnerMessage) {
        self.seq_out += 1;
        let (conn, seq) = (self.conn, self.seq_out);
        out.send(self.leader, Message::ToLeader { conn, seq, msg });
    }

    pub(super) fn is_broadcasting(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// `Bug::AckBeforePersist`: persists what was acknowledged early.
    pub(super) fn flush(&mut self, out: &mut Effects<Zab>) {
        if !self.unpersisted.is_empty() {
            out.persist(Record::Txns(std::mem::take(&mut self.unpersisted)));
        }
    }

    pub(super) fn check_invariants(&self, node: &Zab) {
        assert_ne!(self.leader, node.id, "a follower does not follow itself");
        if self.phase != Phase::Discovery {
            assert_eq!(
                node.accepted_epoch, self.epoch,
                "following an accepted epoch"
            );
        }
        if matches!(self.phase, Phase::Synchronized | Phase::Broadcast) {
            assert_eq!(
                node.current_epoch, self.epoch,
                "NEWLEADER adopted the epoch"
            );
        }
    }
}

impl Zab {
    fn following(&mut self) -> &mut Follower {
        match &mut self.state {
            State::Following(follower) => follower,
            _ => panic!("{} is not following", self.id),
        }
    }

    /// Starts following `leader`: opens a connection with FOLLOWERINFO.
    pub(super) fn follow(&mut self, now: Time, leader: NodeId, out: &mut Effects<Self>) {
        self.next_conn += 1;
        let mut follower = Follower {
            leader,
            conn: self.next_conn,
            seq_out: 0,
            seq_in: 0,
            phase: Phase::Discovery,
            epoch: 0,
            started: now,
            last_heard: now,
            unpersisted: Vec::new(),
        };
        let accepted_epoch = self.accepted_epoch;
        follower.send(out, LearnerMessage::FollowerInfo { accepted_epoch });
        self.state = State::Following(follower);
        out.set_timer(Timer::Tick, self.tick());
    }

    pub(super) fn on_leader_message(
        &mut self,
        now: Time,
        from: NodeId,
        conn: u64,
        seq: u64,
        msg: LeaderMessage,
        out: &mut Effects<Self>,
    ) {
        let State::Following(follower) = &mut self.state else {
            return;
        };
        if from != follower.leader || conn != follower.conn {
            return; // From an earlier connection.
        }
        if seq != follower.seq_in + 1 {
            // Messages went missing: the connection broke underneath us.
            self.counters.connections_broken += 1;
            return self.become_looking(now, out);
        }
        follower.seq_in = seq;
        follower.last_heard = now;
        let phase = follower.phase;
        let in_order = matches!(
            (&msg, phase),
            (LeaderMessage::LeaderInfo { .. }, Phase::Discovery)
                | (
                    LeaderMessage::Diff { .. }
                        | LeaderMessage::Trunc { .. }
                        | LeaderMessage::Snap { .. }
                        | LeaderMessage::NewLeader { .. },
                    Phase::Synchronization
                )
                | (LeaderMessage::UpToDate { .. }, Phase::Synchronized)
                | (
                    LeaderMessage::Proposal(_),
                    Phase::Synchronized | Phase::Broadcast
                )
                | (
                    LeaderMessage::Commit { .. } | LeaderMessage::SyncDone { .. },
                    Phase::Broadcast
                )
                | (LeaderMessage::Ping | LeaderMessage::Close, _)
        );
        if !in_order {
            return self.become_looking(now, out); // The leader broke the protocol.
        }
        match msg {
            LeaderMessage::LeaderInfo { epoch } => self.on_leader_info(now, epoch, out),
            LeaderMessage::Diff { txns } => self.on_diff(txns, out),
            LeaderMessage::Trunc { zxid, txns } => self.on_trunc(now, zxid, txns, out),
            LeaderMessage::Snap { snapshot, txns } => self.on_snap(snapshot, txns, out),
            LeaderMessage::NewLeader { epoch } => self.on_new_leader(now, epoch, out),
            LeaderMessage::UpToDate { committed } => self.on_up_to_date(committed, out),
            LeaderMessage::Proposal(txn) => self.on_proposal(now, txn, out),
            LeaderMessage::Commit { zxid } => self.on_commit(now, zxid, out),
            LeaderMessage::Ping => self.following().send(out, LearnerMessage::Ping),
            LeaderMessage::SyncDone { client, seq } => self.finish_sync(client, seq, out),
            LeaderMessage::Close => self.become_looking(now, out),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Discovery.

    fn on_leader_info(&mut self, now: Time, epoch: u64, out: &mut Effects<Self>) {
        if epoch < self.accepted_epoch {
            // We promised a later epoch to another leader: this one is stale.
            self.counters.epochs_refused += 1;
            return self.become_looking(now, out);
        }
        let fresh = epoch > self.accepted_epoch;
        if fresh {
            self.accepted_epoch = epoch;
            out.persist(Record::AcceptedEpoch(epoch));
        }
        let (current_epoch, last_zxid) = (self.current_epoch, self.history.last_zxid());
        let follower = self.following();
        follower.epoch = epoch;
        follower.phase = Phase::Synchronization;
        let ack = LearnerMessage::AckEpoch {
            current_epoch,
            last_zxid,
            fresh,
        };
        follower.send(out, ack);
    }

    // ---------------------------------------------------------------------------------------
    // Synchronization.

    fn on_diff(&mut self, txns: Vec<Txn>, out: &mut Effects<Self>) {
        self.append_synced(txns, out);
    }

    fn on_trunc(&mut self, now: Time, zxid: Zxid, txns: Vec<Txn>, out: &mut Effects<Self>) {
        if !self.history.holds(zxid) {
            return self.become_looking(now, out); // Not a prefix we hold: refuse.
        }
        assert!(
            zxid >= self.committed,
            "{}: TRUNC to {zxid} would drop delivered transactions (delivered up to {})",
            self.id,
            self.committed
        );
        if zxid < self.history.last_zxid() {
            self.history.truncate_after(zxid);
            out.persist(Record::Truncate { after: zxid });
        }
        self.append_synced(txns, out);
    }

    fn on_snap(&mut self, snapshot: Arc<Snapshot>, txns: Vec<Txn>, out: &mut Effects<Self>) {
        assert!(
            snapshot.last_zxid >= self.committed,
            "{}: SNAP at {} is behind what it delivered ({})",
            self.id,
            snapshot.last_zxid,
            self.committed
        );
        self.kv = snapshot.state.clone();
        self.committed = snapshot.last_zxid;
        self.history = History::new(snapshot, txns);
        self.persist_checkpoint(out);
    }

    /// Appends the transactions of a DIFF (or after a TRUNC) that are new here.
    fn append_synced(&mut self, txns: Vec<Txn>, out: &mut Effects<Self>) {
        let last = self.history.last_zxid();
        let new: Vec<Txn> = txns.into_iter().filter(|txn| txn.zxid > last).collect();
        if new.is_empty() {
            return;
        }
        for txn in &new {
            self.history.append(txn.clone());
        }
        if self.config.has_bug(Bug::AckBeforePersist) {
            return self.following().unpersisted.extend(new);
        }
        out.persist(Record::Txns(new));
    }

    fn on_new_leader(&mut self, now: Time, epoch: u64, out: &mut Effects<Self>) {
        if epoch != self.following().epoch {
            return self.become_looking(now, out);
        }
        self.current_epoch = epoch;
        out.persist(Record::CurrentEpoch(epoch));
        let follower = self.following();
        follower.phase = Phase::Synchronized;
        follower.send(out, LearnerMessage::AckNewLeader);
        follower.flush(out); // Empty unless `Bug::AckBeforePersist` held the history back.
    }

    fn on_up_to_date(&mut self, committed: Zxid, out: &mut Effects<Self>) {
        let target = committed.min(self.history.last_zxid());
        self.commit_to(target, out);
        self.following().phase = Phase::Broadcast;
    }

    // ---------------------------------------------------------------------------------------
    // Broadcast.

    fn on_proposal(&mut self, now: Time, txn: Txn, out: &mut Effects<Self>) {
        let epoch = self.following().epoch;
        if txn.zxid.epoch != epoch || txn.zxid <= self.history.last_zxid() {
            return self.become_looking(now, out);
        }
        let zxid = txn.zxid;
        self.history.append(txn.clone());
        if self.config.has_bug(Bug::AckBeforePersist) {
            let follower = self.following();
            follower.send(out, LearnerMessage::Ack { zxid });
            follower.unpersisted.push(txn);
            if follower.unpersisted.len() >= LAZY_FLUSH {
                follower.flush(out);
            }
            return;
        }
        out.persist(Record::Txns(vec![txn.clone()]));
        self.following().send(out, LearnerMessage::Ack { zxid });
        if self.config.has_bug(Bug::ReplyBeforeApply) {
            self.reply_early(&txn, out);
        }
    }

    fn on_commit(&mut self, now: Time, zxid: Zxid, out: &mut Effects<Self>) {
        if zxid > self.history.last_zxid() {
            return self.become_looking(now, out); // A commit of something never proposed.
        }
        self.commit_to(zxid, out);
    }

    // ---------------------------------------------------------------------------------------
    // Failure detection.

    /// Goes back to election when the leader fell silent, or when joining it takes too long.
    pub(super) fn follower_tick(&mut self, now: Time, out: &mut Effects<Self>) {
        let sync_timeout = self.sync_timeout();
        let init_timeout = self.init_timeout();
        let follower = self.following();
        let joining = follower.phase != Phase::Broadcast;
        let too_slow = joining && now.saturating_since(follower.started) > init_timeout;
        let silent = now.saturating_since(follower.last_heard) > sync_timeout;
        if too_slow || silent {
            self.counters.timeouts += 1;
            return self.become_looking(now, out);
        }
        follower.flush(out); // Empty unless `Bug::AckBeforePersist`.
        out.set_timer(Timer::Tick, self.tick());
    }
}
