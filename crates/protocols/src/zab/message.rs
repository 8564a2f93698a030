//! ZAB's identifiers, transactions, votes, wire messages and durable records.
//!
//! Message names follow ZooKeeper's `Leader`/`Learner` packet types (FOLLOWERINFO, LEADERINFO,
//! ACKEPOCH, DIFF, TRUNC, SNAP, NEWLEADER, UPTODATE, PROPOSAL, ACK, COMMIT, PING, SYNC); the
//! TLA+ specification of Zab 1.0 calls the first three CEPOCH, NEWEPOCH and ACKEPOCH.

use quorate_core::{ClientId, Command, Durable, KvStore, NodeId, Request};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A ZooKeeper transaction id: the epoch of the leader that proposed the transaction and a
/// counter that leader increments per proposal, starting at 1. Ordered by epoch, then counter,
/// which is the order in which every server delivers transactions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Zxid {
    pub epoch: u64,
    pub counter: u64,
}

impl Zxid {
    /// The zxid of the empty history.
    pub const ZERO: Zxid = Zxid {
        epoch: 0,
        counter: 0,
    };

    pub const fn new(epoch: u64, counter: u64) -> Zxid {
        Zxid { epoch, counter }
    }

    /// The zxid packed into one number, ZooKeeper-style (epoch in the high 32 bits), for
    /// status reports. Counters never exceed 32 bits (see `ZabConfig::zxid_counter_bits`).
    pub fn as_u64(self) -> u64 {
        (self.epoch << 32) | (self.counter & 0xffff_ffff)
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.counter)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One transaction of a history: a client command (a write, or a linearizable read) with the
/// zxid its leader gave it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Txn {
    pub zxid: Zxid,
    pub command: Command,
}

/// The state machine after delivering every transaction up to `last_zxid`. It replaces that
/// prefix of a history (ZooKeeper's fuzzy snapshot, made exact here).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_zxid: Zxid,
    pub state: KvStore,
}

impl Snapshot {
    /// The snapshot of the empty history.
    pub fn empty(sessions_max: usize) -> Snapshot {
        Snapshot {
            last_zxid: Zxid::ZERO,
            state: KvStore::new(sessions_max),
        }
    }
}

/// A vote of fast leader election: the proposed leader and the state it was proposed with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Vote {
    pub leader: NodeId,
    /// The proposed leader's last zxid.
    pub zxid: Zxid,
    /// The proposed leader's current epoch (ZooKeeper's `peerEpoch`).
    pub epoch: u64,
}

impl Vote {
    /// FLE's `totalOrderPredicate`: a vote is better when its current epoch is higher, then
    /// its last zxid, then its server id.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.epoch, self.zxid, self.leader) > (other.epoch, other.zxid, other.leader)
    }
}

/// What a server says it is doing, in its notifications.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

/// A fast-leader-election notification.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Notification {
    pub vote: Vote,
    /// The election round the vote belongs to (ZooKeeper's `electionEpoch`/`logicalclock`).
    pub round: u64,
    pub state: PeerState,
}

/// Messages between servers.
///
/// The leader–follower conversation runs over a *connection*: the follower opens it with a
/// fresh `conn` number, and each side numbers the messages it sends on it `1, 2, 3, ...`.
/// A gap in those numbers means the channel lost messages, which FIFO channels only do when a
/// connection breaks (see the module docs), so the receiver treats the connection as closed.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Fast leader election traffic; it tolerates loss and needs no connection.
    Notification(Notification),
    /// A follower's message to its leader on connection `conn`.
    ToLeader {
        conn: u64,
        seq: u64,
        msg: LearnerMessage,
    },
    /// A leader's message to one follower on connection `conn`.
    ToLearner {
        conn: u64,
        seq: u64,
        msg: LeaderMessage,
    },
    /// A leader to itself, after its own writes up to `zxid` in `epoch` are durable: the
    /// leader's acknowledgement of its own proposals (ZooKeeper's `AckRequestProcessor`).
    /// Sent as a message so that it leaves only after the persist barrier.
    SelfAck { epoch: u64, zxid: Zxid },
}

/// Follower to leader.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum LearnerMessage {
    /// FOLLOWERINFO (CEPOCH): opens the connection with the follower's accepted epoch.
    FollowerInfo { accepted_epoch: u64 },
    /// ACKEPOCH: the new epoch is accepted; the follower's state for synchronization. `fresh`
    /// is false when the follower had already accepted this epoch (ZooKeeper sends epoch -1):
    /// such an acknowledgement does not count towards the epoch's quorum, so that no follower
    /// helps two leaders to the same epoch.
    AckEpoch {
        current_epoch: u64,
        last_zxid: Zxid,
        fresh: bool,
    },
    /// ACK of NEWLEADER (ACKLD): the synchronized history and the current epoch are durable.
    AckNewLeader,
    /// ACK of every proposal up to `zxid`, all of them durable.
    Ack { zxid: Zxid },
    /// Answer to the leader's PING.
    Ping,
    /// A client request that goes through the log, forwarded (ZooKeeper's REQUEST).
    Request(Request),
    /// A client's `sync`, forwarded.
    Sync { client: ClientId, seq: u64 },
    /// The follower closes the connection.
    Close,
}

/// Leader to follower.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum LeaderMessage {
    /// LEADERINFO (NEWEPOCH): the epoch the prospective leader proposes.
    LeaderInfo { epoch: u64 },
    /// DIFF: the follower's history is a prefix of the leader's; these transactions follow it.
    Diff { txns: Vec<Txn> },
    /// TRUNC: drop everything after `zxid` (proposals the leader never had), then append.
    Trunc { zxid: Zxid, txns: Vec<Txn> },
    /// SNAP: the follower is too far behind (or diverged before the leader's snapshot):
    /// replace its history by the snapshot and these transactions.
    Snap {
        snapshot: Arc<Snapshot>,
        txns: Vec<Txn>,
    },
    /// NEWLEADER: the follower's history now equals the leader's initial history (plus the
    /// proposals sent before this); adopt `epoch` as the current epoch.
    NewLeader { epoch: u64 },
    /// UPTODATE (COMMITLD): a quorum synchronized; everything up to `committed` is committed;
    /// start serving clients.
    UpToDate { committed: Zxid },
    /// PROPOSAL of one transaction.
    Proposal(Txn),
    /// COMMIT of every transaction up to `zxid`.
    Commit { zxid: Zxid },
    /// PING: the leader is alive.
    Ping,
    /// The answer to a forwarded `sync`: every COMMIT the leader had to send before it has
    /// been sent on this connection.
    SyncDone { client: ClientId, seq: u64 },
    /// The leader closes the connection (it refuses the follower, or stops leading).
    Close,
}

/// Durable state, persisted before anything that depends on it is said.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// `acceptedEpoch`: the last epoch acknowledged in ACKEPOCH (the paper's f.p).
    AcceptedEpoch(u64),
    /// `currentEpoch`: the last epoch acknowledged in NEWLEADER (the paper's f.a).
    CurrentEpoch(u64),
    /// Transactions appended to the history.
    Txns(Vec<Txn>),
    /// Every transaction after `after` is removed (TRUNC).
    Truncate { after: Zxid },
    /// Everything: both epochs, a snapshot and the transactions after it. Written on
    /// compaction and on SNAP; earlier records are obsolete.
    Checkpoint {
        accepted_epoch: u64,
        current_epoch: u64,
        snapshot: Arc<Snapshot>,
        txns: Vec<Txn>,
    },
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        matches!(self, Record::Checkpoint { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxids_order_by_epoch_then_counter() {
        assert!(Zxid::new(1, 9) < Zxid::new(2, 1));
        assert!(Zxid::new(2, 1) < Zxid::new(2, 2));
        assert_eq!(Zxid::new(3, 7).as_u64(), (3 << 32) | 7);
        assert_eq!(Zxid::new(3, 7).to_string(), "3.7");
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let vote = |leader, epoch, zxid: (u64, u64)| Vote {
            leader: NodeId(leader),
            zxid: Zxid::new(zxid.0, zxid.1),
            epoch,
        };
        assert!(vote(1, 2, (1, 5)).beats(&vote(3, 1, (1, 9))), "epoch first");
        assert!(vote(1, 2, (2, 1)).beats(&vote(3, 2, (1, 9))), "then zxid");
        assert!(vote(3, 2, (2, 1)).beats(&vote(1, 2, (2, 1))), "then id");
        assert!(!vote(1, 2, (2, 1)).beats(&vote(1, 2, (2, 1))), "not itself");
    }
}
