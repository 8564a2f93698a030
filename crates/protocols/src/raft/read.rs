//! Linearizable reads without writing to the log (thesis §6.4): ReadIndex, leases, and
//! follower reads.
//!
//! **ReadIndex.** A leader may be deposed without knowing it, so it cannot answer a read from
//! its own state straight away. Instead:
//!
//! 1. It waits until it has committed an entry of its own term (then its commit index covers
//!    every entry committed before it was elected).
//! 2. It starts a heartbeat *round* after the read arrived; every AppendEntries carries the
//!    round number, and responses echo it.
//! 3. Once a quorum has echoed that round (or a later one), no newer leader existed when they
//!    answered, so the commit index at that moment — the read index — covers every write that
//!    completed before the read arrived.
//! 4. It answers from its state machine, whose applied index is at least the read index.
//!
//! Rounds are shared: a read that arrives while a round is in flight (sent, not yet echoed by
//! a quorum) does not start one of its own; it waits for the next round, which starts as
//! soon as the one in flight is confirmed (or at the next heartbeat, if its messages were
//! lost). One round thus confirms every read queued before it was sent — never a read that
//! arrived after, which the round would prove nothing about. Under load that is one round
//! trip per batch of reads instead of one per read.
//!
//! **Leases** (§6.4.1). A follower that acknowledged round `r` ignores vote requests for the
//! minimum election timeout after receiving it (check-quorum). So for the lease duration (see
//! `RaftConfig::lease_duration`, which accounts for the clock-drift bound) after *sending*
//! round `r`, no other leader can exist, and the leader answers reads at once. A lease earned
//! under one configuration is dropped when another is appended, and a leader that sent
//! TimeoutNow never trusts its lease again in that term (the target campaigns past the
//! followers' check). A restarted node ignores vote requests for a minimum election timeout,
//! so a crash does not shorten the promise it made.
//!
//! **Follower reads.** A follower (or learner) asks the leader for a read index with
//! `ReadIndex`; the leader runs steps 1–3 and answers with its commit index; the follower
//! answers its client once it has applied that far.
//!
//! Reads of a client session the store does not know yet go through the log instead: the
//! session must exist before its later requests can be deduplicated.

use super::message::Message;
use super::{Event, Raft, RoleState};
use quorate_core::{ClientError, Effects, NodeId, Output, Reply, Request, Time};
use std::collections::{BTreeMap, VecDeque};

/// Send times of recent rounds kept for the lease; older rounds cannot extend it.
const ROUNDS_KEPT: usize = 64;

/// Who waits for a read.
#[derive(Clone, Debug)]
enum ReadOrigin {
    Client(Request),
    Follower { node: NodeId, id: u64 },
}

#[derive(Clone, Debug)]
struct PendingRead {
    /// The first round whose quorum confirms this read.
    round: u64,
    origin: ReadOrigin,
}

/// The leader's rounds, lease and waiting reads.
#[derive(Clone, Debug)]
pub(super) struct ReadState {
    /// The current heartbeat round; every AppendEntries carries it.
    pub round: u64,
    /// `(round, leader's clock when it was sent)`, oldest first.
    sent_at: VecDeque<(u64, Time)>,
    lease_until: Option<Time>,
    /// Rounds before this one do not extend the lease (sent under an earlier configuration).
    lease_round_min: u64,
    /// TimeoutNow was sent in this term: never trust the lease again.
    lease_revoked: bool,
    pending: VecDeque<PendingRead>,
}

impl ReadState {
    pub fn new() -> ReadState {
        ReadState {
            round: 0,
            sent_at: VecDeque::new(),
            lease_until: None,
            lease_round_min: 1,
            lease_revoked: false,
            pending: VecDeque::new(),
        }
    }

    pub fn start_round(&mut self, now: Time) {
        self.round += 1;
        self.sent_at.push_back((self.round, now));
        if self.sent_at.len() > ROUNDS_KEPT {
            self.sent_at.pop_front();
        }
    }

    pub fn restart_lease(&mut self) {
        self.lease_until = None;
        self.lease_round_min = self.round + 1;
    }

    pub fn revoke_lease(&mut self) {
        self.lease_until = None;
        self.lease_revoked = true;
    }

    fn lease_valid(&self, now: Time) -> bool {
        !self.lease_revoked && self.lease_until.is_some_and(|until| now < until)
    }

    /// A quorum echoed `round`: the lease runs from when it was sent (from `acked_at`, when
    /// the acknowledgements arrived, in the broken variant `Bug::LeaseFromAck`).
    fn extend_lease(&mut self, round: u64, lease: std::time::Duration, acked_at: Option<Time>) {
        if self.lease_revoked || round < self.lease_round_min {
            return;
        }
        let sent = self.sent_at.iter().rev().find(|(r, _)| *r <= round);
        if let Some(&(r, at)) = sent {
            if r >= self.lease_round_min {
                let until = acked_at.unwrap_or(at) + lease;
                self.lease_until = Some(self.lease_until.map_or(until, |u| u.max(until)));
            }
        }
    }

    /// A deposed leader tells its waiting readers to ask elsewhere (a read has no effect, so
    /// "not served here" is certain).
    pub fn fail_pending(self, leader: Option<NodeId>, out: &mut Effects<Raft>) {
        for read in self.pending {
            if let ReadOrigin::Client(request) = read.origin {
                Raft::answer(&request, Err(ClientError::NotLeader { leader }), out);
            }
        }
    }
}

/// A follower's reads in progress.
#[derive(Clone, Debug, Default)]
pub(super) struct FollowerReads {
    next_id: u64,
    /// Asked the leader, awaiting its read index: the request and when it was forwarded.
    forwarded: BTreeMap<u64, (Request, Time)>,
    /// Read index known, awaiting application that far.
    ready: Vec<(u64, Request)>,
}

impl Raft {
    /// A linearizable read of a known session (or none): served without touching the log.
    pub(super) fn on_linearizable_read(&mut self, request: Request, out: &mut Effects<Self>) {
        if self.is_leader() {
            return self.leader_read(ReadOrigin::Client(request), out);
        }
        let Some(leader) = self.leader_hint().filter(|_| self.config.follower_reads) else {
            let leader = self.leader_hint();
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        };
        let reads = &mut self.follower_reads;
        if reads.forwarded.len() + reads.ready.len() >= self.config.reads_pending_max {
            let leader = Some(leader);
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        }
        reads.next_id += 1;
        let id = reads.next_id;
        reads.forwarded.insert(id, (request, self.now));
        out.send(
            leader,
            Message::ReadIndex {
                term: self.term,
                id,
            },
        );
    }

    fn leader_read(&mut self, origin: ReadOrigin, out: &mut Effects<Self>) {
        let (now, ready) = (self.now, self.committed_in_term());
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("checked by the caller")
        };
        if let ReadOrigin::Client(request) = &origin {
            if ready && leader.transfer.is_none() && leader.reads.lease_valid(now) {
                self.events.push(Event::LeaseRead);
                let result = Self::read_state(&self.kv, &self.config, self.now, &request.op);
                return Self::answer(request, result, out);
            }
        }
        if leader.reads.pending.len() >= self.config.reads_pending_max {
            if let ReadOrigin::Client(request) = &origin {
                let why = "too many reads await confirmation; retry later".to_string();
                Self::answer(request, Err(ClientError::Rejected(why)), out);
            }
            return;
        }
        // The read waits for the next round, which starts after it arrived. If a round is
        // already on its way, the next one starts when that one is confirmed (or at the next
        // heartbeat), and confirms every read queued meanwhile: one round per batch of reads,
        // not one per read (thesis §6.4 allows batching; etcd does the same).
        let round = leader.reads.round + 1;
        leader
            .reads
            .pending
            .push_back(PendingRead { round, origin });
        if !self.read_round_in_flight() {
            self.start_read_round(out);
        }
        self.confirm_reads(out);
    }

    /// Whether a round was sent that a quorum has not confirmed yet.
    fn read_round_in_flight(&self) -> bool {
        let RoleState::Leader(leader) = &self.role else {
            return false;
        };
        self.confirmed_round() < leader.reads.round
    }

    /// Starts a round and sends it to every follower.
    fn start_read_round(&mut self, out: &mut Effects<Self>) {
        let now = self.now;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        leader.reads.start_round(now);
        for peer in self.followers() {
            self.send_append(peer, true, out);
        }
    }

    /// The highest round a quorum of voters echoed (the leader echoes every round itself).
    fn confirmed_round(&self) -> u64 {
        let RoleState::Leader(leader) = &self.role else {
            return 0;
        };
        let me = self.id;
        self.membership.quorum_value(
            |id| {
                if id == me {
                    leader.reads.round
                } else {
                    leader.progress.get(&id).map_or(0, |p| p.acked_round)
                }
            },
            false,
        )
    }

    /// Extends the lease and serves every read whose round a quorum confirmed.
    pub(super) fn confirm_reads(&mut self, out: &mut Effects<Self>) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        if leader.reads.pending.is_empty() && !self.config.lease_reads {
            return; // Nothing waits, and no lease to extend.
        }
        let confirmed = self.confirmed_round();
        let (lease, lease_reads) = (self.config.lease_duration(), self.config.lease_reads);
        let ready = self.committed_in_term();
        let acked_at = self
            .config
            .has_bug(super::Bug::LeaseFromAck)
            .then_some(self.now);
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("checked above")
        };
        if lease_reads {
            leader.reads.extend_lease(confirmed, lease, acked_at);
        }
        // Reads that arrived after the last round was sent wait for the next one: start it
        // once nothing is in flight (the confirmation just seen may have been the last).
        let waiting_for_next = leader
            .reads
            .pending
            .back()
            .is_some_and(|r| r.round > leader.reads.round);
        if waiting_for_next && confirmed >= leader.reads.round {
            self.start_read_round(out);
        }
        if !ready {
            return;
        }
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("checked above")
        };
        assert_eq!(
            self.last_applied, self.commit_index,
            "a leader applies at once"
        );
        let skip_quorum = self.config.has_bug(super::Bug::ReadIndexSkipsQuorum);
        while leader
            .reads
            .pending
            .front()
            .is_some_and(|r| r.round <= confirmed || skip_quorum)
        {
            let read = leader.reads.pending.pop_front().expect("peeked");
            match read.origin {
                ReadOrigin::Client(request) => {
                    self.events.push(Event::ReadIndexRead);
                    let result = Self::read_state(&self.kv, &self.config, self.now, &request.op);
                    Self::answer(&request, result, out);
                }
                ReadOrigin::Follower { node, id } => {
                    let message = Message::ReadIndexResponse {
                        term: self.term,
                        id,
                        read_index: self.commit_index,
                    };
                    out.send(node, message);
                }
            }
        }
    }

    /// A follower asks for a read index. Only members are served: a node the configuration
    /// dropped would never apply far enough to use it.
    pub(super) fn on_read_index(
        &mut self,
        from: NodeId,
        term: u64,
        id: u64,
        out: &mut Effects<Self>,
    ) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        if term != self.term || !leader.progress.contains_key(&from) {
            return;
        }
        self.leader_read(ReadOrigin::Follower { node: from, id }, out);
    }

    /// The leader's answer: the read waits until this node applied through `read_index`. Any
    /// leader's answer will do, of any term: it confirmed leadership after the request left.
    pub(super) fn on_read_index_response(
        &mut self,
        id: u64,
        read_index: u64,
        out: &mut Effects<Self>,
    ) {
        let Some((request, _)) = self.follower_reads.forwarded.remove(&id) else {
            return; // Expired, or a duplicate.
        };
        self.follower_reads.ready.push((read_index, request));
        self.serve_ready_reads(out);
    }

    /// Answers the follower reads whose read index has been applied.
    pub(super) fn serve_ready_reads(&mut self, out: &mut Effects<Self>) {
        if self.follower_reads.ready.is_empty() {
            return;
        }
        let applied = self.last_applied;
        let ready = std::mem::take(&mut self.follower_reads.ready);
        let (now_ready, waiting): (Vec<_>, Vec<_>) =
            ready.into_iter().partition(|(index, _)| *index <= applied);
        self.follower_reads.ready = waiting;
        for (_, request) in now_ready {
            self.events.push(Event::FollowerRead);
            let result = Self::read_state(&self.kv, &self.config, self.now, &request.op);
            Self::answer(&request, result, out);
        }
    }

    /// Forgets forwarded reads the leader never answered (the message or the answer was lost);
    /// their clients have timed out and retried by then.
    pub(super) fn expire_forwarded_reads(&mut self) {
        let (now, patience) = (self.now, 2 * self.config.election_timeout_max);
        self.follower_reads
            .forwarded
            .retain(|_, (_, at)| now.saturating_since(*at) < patience);
    }

    /// The leader changed: forwarded reads will not be answered; send their clients on.
    pub(super) fn drain_forwarded_reads(
        &mut self,
        leader: Option<NodeId>,
        out: &mut Effects<Self>,
    ) {
        let forwarded = std::mem::take(&mut self.follower_reads.forwarded);
        for (_, (request, _)) in forwarded {
            Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        }
    }

    pub(super) fn answer(
        request: &Request,
        result: Result<Output, ClientError>,
        out: &mut Effects<Self>,
    ) {
        out.reply(Reply {
            client: request.client,
            seq: request.seq,
            result,
        });
    }
}
