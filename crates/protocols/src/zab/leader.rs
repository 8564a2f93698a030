//! The leader's side of discovery, synchronization and broadcast (ZooKeeper's `Leader` and
//! `LearnerHandler`).

use super::message::{LeaderMessage, LearnerMessage, Message, Record, Txn, Zxid};
use super::{Bug, State, Timer, Zab};
use quorate_core::{ClientId, Command, Effects, NodeId, Time};
use std::collections::{BTreeMap, BTreeSet};

/// Where a leader is in establishing its epoch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    /// Collecting FOLLOWERINFOs and then ACKEPOCHs from a quorum.
    Discovery,
    /// The epoch is established; waiting for a quorum to acknowledge NEWLEADER.
    Synchronization,
    /// The initial history is committed; proposing and serving.
    Broadcast,
}

/// Where one follower's connection is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LearnerPhase {
    /// FOLLOWERINFO arrived; LEADERINFO waits for the epoch to be decided.
    Connected,
    /// LEADERINFO sent; waiting for ACKEPOCH.
    EpochSent,
    /// ACKEPOCH arrived; synchronization waits for the epoch to be established.
    EpochAcked,
    /// DIFF/TRUNC/SNAP and NEWLEADER sent; waiting for the NEWLEADER acknowledgement.
    Syncing,
    /// NEWLEADER acknowledged and UPTODATE sent (or about to be, at establishment).
    Synced,
}

/// The leader's end of one follower's connection (ZooKeeper's `LearnerHandler`).
#[derive(Clone, Debug)]
struct Learner {
    conn: u64,
    /// Sequence number of the last message sent and of the last one received.
    seq_out: u64,
    seq_in: u64,
    phase: LearnerPhase,
    last_heard: Time,
    /// The follower's last zxid, from its ACKEPOCH.
    last_zxid: Zxid,
    /// The leader's last zxid when this follower's synchronization was sent: what the
    /// follower holds once it acknowledges NEWLEADER.
    synced_to: Zxid,
    /// Everything up to this zxid is durable at the follower in this epoch.
    acked: Zxid,
}

impl Learner {
    fn new(conn: u64, now: Time) -> Learner {
        Learner {
            conn,
            seq_out: 0,
            seq_in: 1,
            phase: LearnerPhase::Connected,
            last_heard: now,
            last_zxid: Zxid::ZERO,
            synced_to: Zxid::ZERO,
            acked: Zxid::ZERO,
        }
    }

    fn send(&mut self, to: NodeId, out: &mut Effects<Zab>, msg: LeaderMessage) {
        self.seq_out += 1;
        let (conn, seq) = (self.conn, self.seq_out);
        out.send(to, Message::ToLearner { conn, seq, msg });
    }

    /// Receives proposals: its synchronization was sent, so PROPOSALs follow it in order.
    fn receives_proposals(&self) -> bool {
        matches!(self.phase, LearnerPhase::Syncing | LearnerPhase::Synced)
    }
}

/// A `sync` waiting for everything proposed before it to be committed.
#[derive(Clone, Debug)]
struct PendingSync {
    until: Zxid,
    /// The follower that forwarded it, or `None` for one of the leader's own clients.
    learner: Option<NodeId>,
    client: ClientId,
    seq: u64,
}

/// A leading server's state.
#[derive(Clone, Debug)]
pub(super) struct Leader {
    phase: Phase,
    started: Time,
    /// `(currentEpoch, lastZxid)` when leadership began: before the epoch is established,
    /// followers ahead of it are refused.
    summary: (u64, Zxid),
    /// The new epoch, once a quorum connected.
    epoch: Option<u64>,
    /// The accepted epoch of every server that connected (CEPOCH), the leader included.
    connected_epochs: BTreeMap<NodeId, u64>,
    /// Servers whose fresh ACKEPOCH counts towards establishing the epoch (leader included).
    epoch_acks: BTreeSet<NodeId>,
    learners: BTreeMap<NodeId, Learner>,
    /// The last zxid of the epoch's initial history.
    initial_last: Zxid,
    /// Everything up to this zxid is durable here with the new current epoch (`SelfAck`).
    self_acked: Option<Zxid>,
    /// The counter of the next proposal.
    next_counter: u64,
    /// Client sessions with an uncommitted proposal, and its sequence number.
    proposed: BTreeMap<ClientId, u64>,
    syncs: Vec<PendingSync>,
}

impl Leader {
    fn new(now: Time, summary: (u64, Zxid)) -> Leader {
        Leader {
            phase: Phase::Discovery,
            started: now,
            summary,
            epoch: None,
            connected_epochs: BTreeMap::new(),
            epoch_acks: BTreeSet::new(),
            learners: BTreeMap::new(),
            initial_last: Zxid::ZERO,
            self_acked: None,
            next_counter: 1,
            proposed: BTreeMap::new(),
            syncs: Vec::new(),
        }
    }

    pub(super) fn established(&self) -> Option<(u64, Zxid)> {
        match self.phase {
            Phase::Discovery => None,
            _ => Some((self.epoch.expect("established"), self.initial_last)),
        }
    }

    pub(super) fn is_broadcasting(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// Closes every follower's connection.
    pub(super) fn close_all(&mut self, out: &mut Effects<Zab>) {
        for (id, learner) in std::mem::take(&mut self.learners) {
            let mut learner = learner;
            learner.send(id, out, LeaderMessage::Close);
        }
    }

    fn synced(&self) -> usize {
        let synced = self.learners.values();
        synced.filter(|l| l.phase == LearnerPhase::Synced).count()
    }

    pub(super) fn check_invariants(&self, node: &Zab) {
        assert!(
            !self.learners.contains_key(&node.id),
            "a leader is not its own follower"
        );
        assert!(
            self.next_counter <= node.config.counter_limit(),
            "zxid counter past its limit"
        );
        if let Some(epoch) = self.epoch {
            assert_eq!(
                node.accepted_epoch, epoch,
                "a leader accepted its own epoch"
            );
        }
        if self.phase != Phase::Discovery {
            assert_eq!(
                node.current_epoch,
                self.epoch.expect("decided"),
                "established"
            );
            assert!(
                self.epoch_acks.len() >= node.quorum(),
                "established by a quorum"
            );
            assert!(self.initial_last <= node.history.last_zxid());
        }
        if self.phase == Phase::Broadcast {
            assert!(
                node.committed >= self.initial_last,
                "initial history delivered"
            );
        }
        assert!(
            self.syncs.len() <= node.config.sessions_max,
            "pending syncs over their bound"
        );
    }
}

impl Zab {
    fn leading(&mut self) -> &mut Leader {
        match &mut self.state {
            State::Leading(leader) => leader,
            _ => panic!("{} is not leading", self.id),
        }
    }

    /// Starts leading: discovery begins with the leader's own accepted epoch.
    pub(super) fn lead(&mut self, now: Time, out: &mut Effects<Self>) {
        let summary = (self.current_epoch, self.history.last_zxid());
        let mut leader = Leader::new(now, summary);
        leader.connected_epochs.insert(self.id, self.accepted_epoch);
        self.state = State::Leading(Box::new(leader));
        out.set_timer(Timer::Tick, self.tick());
        self.maybe_propose_epoch(out);
    }

    /// Refuses (closes) connection `conn` from `to` with the first message on it.
    pub(super) fn refuse_connection(to: NodeId, conn: u64, out: &mut Effects<Self>) {
        let msg = LeaderMessage::Close;
        out.send(to, Message::ToLearner { conn, seq: 1, msg });
    }

    pub(super) fn on_learner_message(
        &mut self,
        now: Time,
        from: NodeId,
        conn: u64,
        seq: u64,
        msg: LearnerMessage,
        out: &mut Effects<Self>,
    ) {
        let State::Leading(leader) = &mut self.state else {
            let looking = matches!(self.state, State::Looking(_));
            match (msg, seq) {
                (LearnerMessage::FollowerInfo { accepted_epoch }, 1) if looking => {
                    self.on_early_follower_info(from, conn, accepted_epoch, out)
                }
                // Following: refuse the connection so the follower looks again at once.
                (LearnerMessage::FollowerInfo { .. }, 1) => {
                    Self::refuse_connection(from, conn, out)
                }
                (LearnerMessage::Close, _) if looking => self.forget_early_follower(from, conn),
                _ => {}
            }
            return;
        };
        if let LearnerMessage::FollowerInfo { accepted_epoch } = msg {
            if seq == 1 {
                leader.learners.insert(from, Learner::new(conn, now));
                self.on_follower_info(from, accepted_epoch, out);
            }
            return;
        }
        let Some(learner) = leader.learners.get_mut(&from) else {
            return;
        };
        if learner.conn != conn {
            return; // From an earlier connection.
        }
        if seq != learner.seq_in + 1 {
            // Messages went missing: the connection broke underneath us.
            self.counters.connections_broken += 1;
            return self.drop_learner(from, out);
        }
        learner.seq_in = seq;
        learner.last_heard = now;
        match msg {
            LearnerMessage::FollowerInfo { .. } => unreachable!("handled above"),
            LearnerMessage::AckEpoch {
                current_epoch,
                last_zxid,
                fresh,
            } => self.on_ack_epoch(from, (current_epoch, last_zxid), fresh, out),
            LearnerMessage::AckNewLeader => self.on_ack_new_leader(from, out),
            LearnerMessage::Ack { zxid } => self.on_ack(from, zxid, out),
            LearnerMessage::Ping => {}
            LearnerMessage::Request(request) => self.on_forwarded_request(now, request, out),
            LearnerMessage::Sync { client, seq } => self.on_forwarded_sync(from, client, seq, out),
            LearnerMessage::Close => {
                self.leading().learners.remove(&from);
            }
        }
    }

    /// Closes `id`'s connection.
    fn drop_learner(&mut self, id: NodeId, out: &mut Effects<Self>) {
        if let Some(mut learner) = self.leading().learners.remove(&id) {
            learner.send(id, out, LeaderMessage::Close);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Discovery.

    fn on_follower_info(&mut self, from: NodeId, accepted_epoch: u64, out: &mut Effects<Self>) {
        let leader = self.leading();
        match leader.epoch {
            Some(epoch) => {
                let learner = leader.learners.get_mut(&from).expect("just connected");
                learner.send(from, out, LeaderMessage::LeaderInfo { epoch });
                learner.phase = LearnerPhase::EpochSent;
            }
            None => {
                leader.connected_epochs.insert(from, accepted_epoch);
                self.maybe_propose_epoch(out);
            }
        }
    }

    /// Once a quorum has connected, proposes `newEpoch = max(acceptedEpoch) + 1`.
    fn maybe_propose_epoch(&mut self, out: &mut Effects<Self>) {
        let quorum = self.quorum();
        let State::Leading(leader) = &mut self.state else {
            unreachable!("only leaders propose epochs")
        };
        if leader.epoch.is_some() || leader.connected_epochs.len() < quorum {
            return;
        }
        let highest = leader.connected_epochs.values().max().copied();
        let epoch = highest.expect("a quorum is not empty") + 1;
        leader.epoch = Some(epoch);
        leader.epoch_acks.insert(self.id);
        // Persist first: no LEADERINFO leaves before the leader's own promise is durable.
        self.accepted_epoch = epoch;
        out.persist(Record::AcceptedEpoch(epoch));
        for (learner_id, learner) in leader.learners.iter_mut() {
            if learner.phase == LearnerPhase::Connected {
                learner.send(*learner_id, out, LeaderMessage::LeaderInfo { epoch });
                learner.phase = LearnerPhase::EpochSent;
            }
        }
        self.maybe_establish_epoch(out);
    }

    fn on_ack_epoch(
        &mut self,
        from: NodeId,
        state: (u64, Zxid),
        fresh: bool,
        out: &mut Effects<Self>,
    ) {
        let leader = self.leading();
        let discovery = leader.phase == Phase::Discovery;
        let summary = leader.summary;
        let learner = leader
            .learners
            .get_mut(&from)
            .expect("checked by the caller");
        if learner.phase != LearnerPhase::EpochSent {
            return self.drop_learner(from, out); // Out of protocol order.
        }
        if discovery && state > summary {
            // The follower is ahead of us: election should have chosen it. Its extra
            // transactions cannot be committed, but we refuse it rather than guess.
            self.counters.followers_refused += 1;
            return self.drop_learner(from, out);
        }
        learner.last_zxid = state.1;
        learner.phase = LearnerPhase::EpochAcked;
        if discovery {
            if fresh {
                leader.epoch_acks.insert(from);
            }
            self.maybe_establish_epoch(out);
        } else {
            self.synchronize(from, out);
        }
    }

    /// With a quorum of fresh ACKEPOCHs, adopts the epoch and synchronizes the followers.
    fn maybe_establish_epoch(&mut self, out: &mut Effects<Self>) {
        let quorum = self.quorum();
        let id = self.id;
        let last = self.history.last_zxid();
        let leader = self.leading();
        if leader.phase != Phase::Discovery || leader.epoch_acks.len() < quorum {
            return;
        }
        let epoch = leader.epoch.expect("acks follow the epoch");
        leader.phase = Phase::Synchronization;
        leader.initial_last = last;
        let waiting: Vec<NodeId> = leader
            .learners
            .iter()
            .filter(|(_, l)| l.phase == LearnerPhase::EpochAcked)
            .map(|(id, _)| *id)
            .collect();
        self.current_epoch = epoch;
        out.persist(Record::CurrentEpoch(epoch));
        out.send(id, Message::SelfAck { epoch, zxid: last });
        for learner in waiting {
            self.synchronize(learner, out);
        }
        self.maybe_start_broadcast(out);
    }

    // ---------------------------------------------------------------------------------------
    // Synchronization.

    /// Brings one follower to the leader's history: DIFF, TRUNC or SNAP, then NEWLEADER.
    fn synchronize(&mut self, id: NodeId, out: &mut Effects<Self>) {
        let last = self.history.last_zxid();
        let skip = self.config.has_bug(Bug::SkipSynchronization);
        let leader = match &self.state {
            State::Leading(leader) => leader,
            _ => unreachable!("only leaders synchronize"),
        };
        let peer_last = leader.learners[&id].last_zxid;
        let epoch = leader.epoch.expect("established");
        let payload = (!skip).then(|| self.sync_payload(peer_last));
        match &payload {
            Some(LeaderMessage::Diff { .. }) => self.counters.sync_diff += 1,
            Some(LeaderMessage::Trunc { .. }) => self.counters.sync_trunc += 1,
            Some(LeaderMessage::Snap { .. }) => self.counters.sync_snap += 1,
            _ => {}
        }
        let learner = self.leading().learners.get_mut(&id).expect("a learner");
        if let Some(payload) = payload {
            learner.send(id, out, payload);
        }
        learner.send(id, out, LeaderMessage::NewLeader { epoch });
        learner.phase = LearnerPhase::Syncing;
        learner.synced_to = last;
    }

    /// What brings a follower whose last zxid is `peer_last` to this leader's history.
    pub(super) fn sync_payload(&self, peer_last: Zxid) -> LeaderMessage {
        let history = &self.history;
        let snap = || LeaderMessage::Snap {
            snapshot: history.snapshot().clone(),
            txns: history.txns().to_vec(),
        };
        if peer_last < history.snapshot().last_zxid {
            return snap(); // Far behind: what it lacks is compacted away.
        }
        if history.holds(peer_last) {
            let txns = history.after(peer_last).to_vec();
            return LeaderMessage::Diff { txns };
        }
        // The follower holds transactions this leader never had: cut back to the last zxid
        // both hold. Such transactions were never committed, or election would have chosen
        // a leader that holds them.
        match history.last_before(peer_last) {
            Some(zxid) => LeaderMessage::Trunc {
                zxid,
                txns: history.after(zxid).to_vec(),
            },
            None => snap(),
        }
    }

    fn on_ack_new_leader(&mut self, from: NodeId, out: &mut Effects<Self>) {
        let committed = self.committed;
        let leader = self.leading();
        let phase = leader.phase;
        let learner = leader
            .learners
            .get_mut(&from)
            .expect("checked by the caller");
        if learner.phase != LearnerPhase::Syncing {
            return self.drop_learner(from, out);
        }
        learner.phase = LearnerPhase::Synced;
        learner.acked = learner.acked.max(learner.synced_to);
        match phase {
            Phase::Synchronization => self.maybe_start_broadcast(out),
            Phase::Broadcast => {
                learner.send(from, out, LeaderMessage::UpToDate { committed });
                self.try_commit(out);
            }
            Phase::Discovery => unreachable!("no follower syncs before establishment"),
        }
    }

    /// The leader's own writes are durable up to `zxid` in `epoch`.
    pub(super) fn on_self_ack(&mut self, epoch: u64, zxid: Zxid, out: &mut Effects<Self>) {
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        if leader.epoch != Some(epoch) || leader.phase == Phase::Discovery {
            return; // From an earlier term of leadership.
        }
        leader.self_acked = Some(leader.self_acked.map_or(zxid, |acked| acked.max(zxid)));
        match leader.phase {
            Phase::Synchronization => self.maybe_start_broadcast(out),
            _ => self.try_commit(out),
        }
    }

    /// A quorum holds the initial history with the new epoch: commit it and serve.
    fn maybe_start_broadcast(&mut self, out: &mut Effects<Self>) {
        let quorum = self.quorum();
        let leader = self.leading();
        let acked = leader.synced() + usize::from(leader.self_acked.is_some());
        if leader.phase != Phase::Synchronization || acked < quorum {
            return;
        }
        leader.phase = Phase::Broadcast;
        let initial_last = leader.initial_last;
        self.counters.epochs_established += 1;
        self.commit_to(initial_last, out);
        let committed = self.committed;
        for (id, learner) in self.leading().learners.iter_mut() {
            if learner.phase == LearnerPhase::Synced {
                learner.send(*id, out, LeaderMessage::UpToDate { committed });
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Broadcast.

    /// Proposes `command` with the next zxid of the epoch. Returns false when the zxid
    /// counter is exhausted: the leader then steps down to force a new epoch.
    pub(super) fn propose(&mut self, now: Time, command: Command, out: &mut Effects<Self>) -> bool {
        let limit = self.config.counter_limit();
        let id = self.id;
        let leader = self.leading();
        assert_eq!(leader.phase, Phase::Broadcast, "proposing before broadcast");
        if leader.next_counter >= limit {
            self.counters.zxid_rollovers += 1;
            self.become_looking(now, out);
            return false;
        }
        let epoch = leader.epoch.expect("established");
        let zxid = Zxid::new(epoch, leader.next_counter);
        leader.next_counter += 1;
        if command.seq != 0 {
            leader.proposed.insert(command.client, command.seq);
        }
        let txn = Txn { zxid, command };
        self.history.append(txn.clone());
        out.persist(Record::Txns(vec![txn.clone()]));
        for (learner_id, learner) in self.leading().learners.iter_mut() {
            if learner.receives_proposals() {
                learner.send(*learner_id, out, LeaderMessage::Proposal(txn.clone()));
            }
        }
        out.send(id, Message::SelfAck { epoch, zxid });
        self.counters.proposals += 1;
        true
    }

    fn on_ack(&mut self, from: NodeId, zxid: Zxid, out: &mut Effects<Self>) {
        let last = self.history.last_zxid();
        let learner = self.leading().learners.get_mut(&from).expect("checked");
        if !learner.receives_proposals() || zxid > last {
            return; // Not an acknowledgement of anything we sent on this connection.
        }
        learner.acked = learner.acked.max(zxid);
        self.try_commit(out);
    }

    /// Commits the highest zxid durable on a quorum, in zxid order, and tells the followers.
    fn try_commit(&mut self, out: &mut Effects<Self>) {
        let quorum = self.quorum();
        let voters = self.voters.clone();
        let id = self.id;
        let last = self.history.last_zxid();
        let leader = self.leading();
        if leader.phase != Phase::Broadcast {
            return;
        }
        let mut acked: Vec<Zxid> = voters
            .iter()
            .map(|voter| match voter {
                v if *v == id => leader.self_acked.unwrap_or(Zxid::ZERO),
                v => leader
                    .learners
                    .get(v)
                    .filter(|l| l.receives_proposals())
                    .map_or(Zxid::ZERO, |l| l.acked),
            })
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let target = acked[quorum - 1].min(last);
        if target <= self.committed {
            return;
        }
        self.commit_to(target, out);
        let committed = self.committed;
        for (learner_id, learner) in self.leading().learners.iter_mut() {
            if learner.phase == LearnerPhase::Synced {
                learner.send(*learner_id, out, LeaderMessage::Commit { zxid: committed });
            }
        }
        self.resolve_syncs(out);
    }

    /// A write (or linearizable read) forwarded by a follower; the follower answers its client
    /// when it applies the transaction, so only a proposal is needed here.
    fn on_forwarded_request(
        &mut self,
        now: Time,
        request: quorate_core::Request,
        out: &mut Effects<Self>,
    ) {
        if !self.leading().is_broadcasting() || self.kv.already_applied(request.client, request.seq)
        {
            return; // Not serving yet (the client retries), or applied already.
        }
        if self.leading().proposed.get(&request.client) == Some(&request.seq) {
            return; // Proposed already.
        }
        if self.outstanding() >= self.config.uncommitted_max {
            return; // Overloaded: the client times out and retries.
        }
        self.propose(now, request.command(), out);
    }

    /// Proposals not yet committed.
    pub(super) fn outstanding(&self) -> u64 {
        self.history.after(self.committed).len() as u64
    }

    /// Whether the leader already proposed `client`'s request `seq`.
    pub(super) fn is_proposed(&self, client: ClientId, seq: u64) -> bool {
        match &self.state {
            State::Leading(leader) => leader.proposed.get(&client) == Some(&seq),
            _ => false,
        }
    }

    /// Forgets `client`'s proposal once it is delivered.
    pub(super) fn on_delivered(&mut self, client: ClientId, seq: u64) {
        if let State::Leading(leader) = &mut self.state {
            if leader.proposed.get(&client) == Some(&seq) {
                leader.proposed.remove(&client);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Sync.

    fn on_forwarded_sync(
        &mut self,
        from: NodeId,
        client: ClientId,
        seq: u64,
        out: &mut Effects<Self>,
    ) {
        self.queue_sync(Some(from), client, seq, out);
    }

    /// Answers a `sync` once everything proposed so far is committed (ZooKeeper's
    /// `Leader.processSync`).
    pub(super) fn queue_sync(
        &mut self,
        learner: Option<NodeId>,
        client: ClientId,
        seq: u64,
        out: &mut Effects<Self>,
    ) {
        let until = self.history.last_zxid();
        let bound = self.config.sessions_max;
        let leader = self.leading();
        if leader.syncs.len() >= bound {
            return; // Overloaded: the client times out and retries.
        }
        leader.syncs.push(PendingSync {
            until,
            learner,
            client,
            seq,
        });
        self.resolve_syncs(out);
    }

    fn resolve_syncs(&mut self, out: &mut Effects<Self>) {
        let committed = self.committed;
        let leader = self.leading();
        let (ready, waiting): (Vec<PendingSync>, Vec<PendingSync>) =
            std::mem::take(&mut leader.syncs)
                .into_iter()
                .partition(|sync| sync.until <= committed);
        leader.syncs = waiting;
        for sync in ready {
            match sync.learner {
                Some(id) => {
                    if let Some(learner) = self.leading().learners.get_mut(&id) {
                        let done = LeaderMessage::SyncDone {
                            client: sync.client,
                            seq: sync.seq,
                        };
                        learner.send(id, out, done);
                    }
                }
                None => self.finish_sync(sync.client, sync.seq, out),
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Failure detection.

    /// Pings the followers, drops the silent ones, and steps down without a quorum (or when
    /// the epoch is not established within `init_limit`).
    pub(super) fn leader_tick(&mut self, now: Time, out: &mut Effects<Self>) {
        let sync_timeout = self.sync_timeout();
        let init_timeout = self.init_timeout();
        let quorum = self.quorum();
        let leader = self.leading();
        let silent: Vec<NodeId> = leader
            .learners
            .iter()
            .filter(|(_, l)| now.saturating_since(l.last_heard) > sync_timeout)
            .map(|(id, _)| *id)
            .collect();
        for (id, learner) in leader.learners.iter_mut() {
            if !silent.contains(id) {
                learner.send(*id, out, LeaderMessage::Ping);
            }
        }
        self.counters.timeouts += silent.len() as u64;
        for id in silent {
            self.drop_learner(id, out);
        }
        let leader = self.leading();
        let lost = match leader.phase {
            Phase::Broadcast => leader.synced() + 1 < quorum,
            _ => now.saturating_since(leader.started) > init_timeout,
        };
        if lost {
            self.counters.timeouts += 1;
            return self.become_looking(now, out);
        }
        out.set_timer(Timer::Tick, self.tick());
    }
}
