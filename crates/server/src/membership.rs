//! Online membership changes of a running Raft cluster (`MEMBER`, `quorate member`), as
//! etcd's `member add/promote/remove/list` and `move-leader` do them.
//!
//! ## The problem
//!
//! A cluster is bootstrapped from the `peers` of its nodes' configs, and the data directory
//! records that membership: restarting with another peer list is refused, since two
//! configurations that do not overlap could each elect a leader and commit. Growing or
//! shrinking a cluster must go through the protocol's own log instead (Raft's single-server
//! changes and learners, `quorate_protocols::raft::membership`), and every node must learn how
//! to reach a member it has never been configured with.
//!
//! ## How a node is added, in numbered steps
//!
//! 1. The operator starts the new node with `quorate serve --join` (`join = true`), an empty
//!    data directory, and the peer addresses of the current members and its own. It is built
//!    with those members as its bootstrap voters and itself outside them, so it never
//!    campaigns: it waits, inert, for a leader to send it the log (etcd's
//!    `--initial-cluster-state existing`). Its data directory records that it joined, so a
//!    restart without `--join` is refused rather than bootstrapping a second cluster.
//! 2. `MEMBER ADD id peer-addr client-addr` at the leader appends a configuration entry that
//!    adds `id` as a learner with its addresses ([`MemberAddress`], carried opaquely by the
//!    protocol). Every node that holds the entry dials the new member and accepts its
//!    handshake (`Runtime::learn_members`); the entry and later snapshots keep the address
//!    across restarts.
//! 3. The leader streams the log (or a snapshot) to the learner. `MEMBER PROMOTE id` makes it
//!    a voter once its log is within `promotion_lag_max` entries of the leader's; before that
//!    it is refused with how far behind the learner is. `quorate member add` retries the
//!    promotion until it succeeds (`--learner` stops after step 2).
//! 4. `MEMBER REMOVE id` removes a member; a removed leader keeps leading until the change
//!    commits, then steps down. `MEMBER TRANSFER id` hands leadership to a voter.
//!
//! Every subcommand but `LIST` runs at the leader (others answer `-MOVED`, whatever the
//! follower mode, as `SNAPSHOT` does); `LIST` answers there too, so that what it shows is the
//! latest configuration, with each member's replication progress. Only `admin` users may run
//! `MEMBER`. Protocols without online changes refuse it by name.
//!
//! ## Deliberately left out
//!
//! Changing a member's address (remove it and add it again), closing the connections to a
//! removed member (they go idle: nothing is sent to it), and membership changes for protocols
//! other than Raft.

use quorate_core::NodeId;
use quorate_protocols::raft::Membership;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Where a member added online listens, as its configuration entry records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberAddress {
    /// Where peers dial it.
    pub peer: SocketAddr,
    /// Where its clients connect (what `MOVED` and `member list` name).
    pub client: SocketAddr,
}

impl MemberAddress {
    /// The string the protocol carries: `peer=IP:PORT client=IP:PORT`.
    pub fn encode(&self) -> String {
        format!("peer={} client={}", self.peer, self.client)
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(text: &str) -> Option<MemberAddress> {
        let mut words = text.split(' ');
        let peer = words.next()?.strip_prefix("peer=")?.parse().ok()?;
        let client = words.next()?.strip_prefix("client=")?.parse().ok()?;
        match words.next() {
            None => Some(MemberAddress { peer, client }),
            Some(_) => None,
        }
    }
}

/// The configuration in force on a node, as `MEMBER LIST` shows it.
#[derive(Clone, Debug)]
pub struct MemberView {
    pub membership: Membership,
    /// On the leader, the last log index each member is known to hold (the leader's own last
    /// index for itself); empty elsewhere.
    pub matched: BTreeMap<NodeId, u64>,
    /// The leader's last log index (how far behind a member is = this minus its match).
    pub last_index: u64,
}

/// One member as `MEMBER LIST` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub id: NodeId,
    /// `voter`, `learner`, or during joint consensus `leaving` (a voter of the old half only)
    /// and `joining` (of the new half only).
    pub role: &'static str,
    pub peer: Option<SocketAddr>,
    pub client: Option<SocketAddr>,
    pub leader: bool,
    /// Entries the member lacks compared with the leader's log, when the leader knows.
    pub behind: Option<u64>,
}

impl MemberView {
    /// The members in id order; `configured` are the bootstrap peers' addresses and `clients`
    /// the client addresses learned from handshakes (for members the configuration does not
    /// carry addresses for).
    pub fn rows(
        &self,
        leader: Option<NodeId>,
        configured: &BTreeMap<NodeId, SocketAddr>,
        clients: impl Fn(NodeId) -> Option<SocketAddr>,
    ) -> Vec<MemberRow> {
        let m = &self.membership;
        m.members()
            .into_iter()
            .map(|id| {
                let old = m.old_voters.as_ref();
                let role = match (m.voters.contains(&id), old.map(|o| o.contains(&id))) {
                    (true, Some(false)) => "joining",
                    (true, _) => "voter",
                    (false, Some(true)) => "leaving",
                    _ => "learner",
                };
                let added = m.addresses.get(&id).and_then(|a| MemberAddress::decode(a));
                MemberRow {
                    id,
                    role,
                    peer: added.map(|a| a.peer).or(configured.get(&id).copied()),
                    client: added.map(|a| a.client).or_else(|| clients(id)),
                    leader: leader == Some(id),
                    behind: self
                        .matched
                        .get(&id)
                        .map(|matched| self.last_index.saturating_sub(*matched)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_anything_else_is_not_one() {
        let address = MemberAddress {
            peer: "127.0.0.1:7104".parse().unwrap(),
            client: "127.0.0.1:6384".parse().unwrap(),
        };
        assert_eq!(
            address.encode(),
            "peer=127.0.0.1:7104 client=127.0.0.1:6384"
        );
        assert_eq!(MemberAddress::decode(&address.encode()), Some(address));
        for bad in [
            "",
            "peer=127.0.0.1:7104",
            "client=127.0.0.1:6384 peer=127.0.0.1:7104",
            "peer=127.0.0.1:7104 client=127.0.0.1:6384 more",
            "peer=nowhere client=127.0.0.1:6384",
        ] {
            assert_eq!(MemberAddress::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rows_name_roles_addresses_and_lag() {
        let mut membership = Membership::new([NodeId(1), NodeId(2), NodeId(3)]);
        membership.learners.insert(NodeId(4));
        let added = MemberAddress {
            peer: "127.0.0.1:7104".parse().unwrap(),
            client: "127.0.0.1:6384".parse().unwrap(),
        };
        membership.addresses.insert(NodeId(4), added.encode());
        let view = MemberView {
            membership,
            matched: [(NodeId(1), 10), (NodeId(2), 10), (NodeId(4), 3)].into(),
            last_index: 10,
        };
        let configured: BTreeMap<NodeId, SocketAddr> =
            [(NodeId(1), "127.0.0.1:7101".parse().unwrap())].into();
        let rows = view.rows(Some(NodeId(1)), &configured, |_| None);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            (rows[0].role, rows[0].leader, rows[0].behind),
            ("voter", true, Some(0))
        );
        assert_eq!(rows[0].peer, Some("127.0.0.1:7101".parse().unwrap()));
        assert_eq!((rows[2].peer, rows[2].behind), (None, None));
        assert_eq!(rows[3].role, "learner");
        assert_eq!(
            (rows[3].peer, rows[3].client),
            (Some(added.peer), Some(added.client))
        );
        assert_eq!(rows[3].behind, Some(7));
    }
}
