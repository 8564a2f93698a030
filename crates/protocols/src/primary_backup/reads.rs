//! Reads (steps 6 and 7 of the module docs, and CRAQ's reads in chain replication).
//!
//! A `ReadMode::Local` read is answered at once from the replica's applied state. A
//! linearizable read waits for a **confirmation round** that started after it arrived: the
//! replica asks every member whether its view is still current, and a majority answering in
//! that view proves that no newer view existed when the read arrived, hence that every write
//! acknowledged before it is committed in this view's history. What else the read waits for
//! depends on who serves it:
//!
//! | server | also waits for |
//! |---|---|
//! | primary-backup primary, chain tail | an entry of its own view committed (then its committed state holds every acknowledged write) |
//! | CRAQ node, clean key | nothing: its log holds every write of the key that could have been acknowledged, and none is pending |
//! | CRAQ node, dirty key | the tail's commit number (a *version query*), and its own state applied through it |
//!
//! Rounds are numbered `boot << 40 | n`, growing across restarts, so that an answer to a round
//! sent before a crash cannot confirm a read that arrived after it.

use super::message::Message;
use super::Replica;
use quorate_core::quorum::majority_floor;
use quorate_core::{ClientError, Effects, NodeId, ReadMode, Request};
use std::collections::BTreeMap;

/// A replica's linearizable reads and its confirmation rounds in the current view.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reads {
    pending: Vec<PendingRead>,
    /// The last round or query number drawn.
    nonce: u64,
    /// The newest round this replica started in the current view (0: none).
    round_sent: u64,
    /// The newest of our rounds each other member confirmed in the current view.
    acked: BTreeMap<NodeId, u64>,
    /// The newest round a majority (this replica included) confirmed.
    confirmed: u64,
}

#[derive(Clone, Debug)]
struct PendingRead {
    request: Request,
    /// The newest round started before the read arrived: a later one must confirm it.
    after: u64,
    needs: Needs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    /// An entry of the current view committed (primary, tail).
    ViewCommitted,
    /// The state applied through this op (CRAQ).
    Applied(u64),
    /// The tail's answer to version query `id` (CRAQ, dirty key).
    Version { id: u64 },
}

impl Reads {
    pub fn new(boot: u64) -> Reads {
        Reads {
            nonce: boot << 40,
            ..Reads::default()
        }
    }

    fn next_nonce(&mut self) -> u64 {
        self.nonce += 1;
        self.nonce
    }

    fn round_in_flight(&self) -> bool {
        self.round_sent > self.confirmed
    }

    pub fn check_invariants(&self, reads_max: usize) {
        assert!(
            self.pending.len() <= reads_max,
            "pending reads over their bound"
        );
        assert!(
            self.confirmed <= self.round_sent,
            "confirmed a round never sent"
        );
        for read in &self.pending {
            assert!(
                read.after <= self.round_sent,
                "a read waits for a future round"
            );
        }
    }
}

impl Replica {
    pub(super) fn on_read(&mut self, request: Request, out: &mut Effects<Self>) {
        if request.read == ReadMode::Local {
            self.stats.local_reads += 1;
            let output = self.kv.read(&request.op);
            return Self::answer(&request, Ok(output), out);
        }
        if self.reads.pending.len() >= self.config.reads_max {
            let why = "too many reads waiting; retry later".to_string();
            return Self::answer(&request, Err(ClientError::Rejected(why)), out);
        }
        let Some(needs) = self.read_needs(&request, out) else {
            let leader = self.read_server_hint();
            return Self::answer(&request, Err(ClientError::NotLeader { leader }), out);
        };
        let after = self.reads.round_sent;
        self.reads.pending.push(PendingRead {
            request,
            after,
            needs,
        });
        if !self.reads.round_in_flight() {
            self.start_round(out);
        }
        if self.config.has_bug(super::Bug::ReadSkipsConfirmation) {
            self.serve_reads(out);
        }
    }

    /// What a linearizable read must wait for at this replica, or `None` if it does not serve
    /// linearizable reads in its current role.
    fn read_needs(&mut self, request: &Request, out: &mut Effects<Self>) -> Option<Needs> {
        if !self.is_chain() {
            return self.is_primary().then_some(Needs::ViewCommitted);
        }
        if !self.group.contains(&self.id) {
            return None;
        }
        if self.is_tail() {
            return Some(Needs::ViewCommitted);
        }
        if !self.craq() {
            return None;
        }
        let dirty = |key: &&quorate_core::Key| self.log.writes_key_after(self.applied, key);
        // A read of every key (SCAN, DBSIZE) names none: it asks the tail like a dirty read.
        let clean = !request.op.reads_every_key() && !request.op.keys().iter().any(dirty);
        if self.caught_up() && clean {
            self.stats.craq_clean_reads += 1;
            return Some(Needs::Applied(self.applied));
        }
        self.stats.craq_dirty_reads += 1;
        let id = self.reads.next_nonce();
        self.send_version_query(id, out);
        Some(Needs::Version { id })
    }

    /// Where a linearizable read should go instead.
    fn read_server_hint(&self) -> Option<NodeId> {
        if self.is_chain() {
            self.group.last().copied()
        } else {
            self.primary()
        }
    }

    fn start_round(&mut self, out: &mut Effects<Self>) {
        self.reads.round_sent = self.reads.next_nonce();
        let confirm = Message::Confirm {
            view: self.view,
            round: self.reads.round_sent,
        };
        let others: Vec<NodeId> = self.others().collect();
        for peer in others {
            out.send(peer, confirm.clone());
        }
        self.update_confirmed(out);
    }

    pub(super) fn on_confirm(
        &mut self,
        from: NodeId,
        view: u64,
        round: u64,
        out: &mut Effects<Self>,
    ) {
        if view < self.view {
            self.stats.stale_refused += 1; // The answer carries our view: the asker is deposed.
        }
        let answer = Message::ConfirmOk {
            view: self.view,
            round,
        };
        out.send(from, answer);
    }

    pub(super) fn on_confirm_ok(
        &mut self,
        from: NodeId,
        view: u64,
        round: u64,
        out: &mut Effects<Self>,
    ) {
        if view != self.view || round > self.reads.round_sent {
            return;
        }
        let acked = self.reads.acked.entry(from).or_insert(0);
        *acked = (*acked).max(round);
        self.update_confirmed(out);
    }

    /// Recomputes the newest round a majority confirmed; serves what that allows and starts the
    /// next round if reads arrived after the last one was sent.
    fn update_confirmed(&mut self, out: &mut Effects<Self>) {
        let mut rounds: Vec<u64> = self
            .others()
            .map(|peer| self.reads.acked.get(&peer).copied().unwrap_or(0))
            .collect();
        rounds.push(self.reads.round_sent);
        let confirmed = majority_floor(&mut rounds);
        if confirmed <= self.reads.confirmed {
            return;
        }
        self.reads.confirmed = confirmed;
        self.serve_reads(out);
        let round_sent = self.reads.round_sent;
        let waiting = self.reads.pending.iter().any(|r| r.after >= round_sent);
        if waiting && !self.reads.round_in_flight() {
            self.start_round(out);
        }
    }

    /// Answers every read whose conditions hold.
    pub(crate) fn serve_reads(&mut self, out: &mut Effects<Self>) {
        if self.reads.pending.is_empty() {
            return;
        }
        let committed_in_view = self.committed_in_view();
        let (confirmed, applied) = (self.reads.confirmed, self.applied);
        let skip_round = self.config.has_bug(super::Bug::ReadSkipsConfirmation);
        let ready = |read: &PendingRead| {
            (skip_round || read.after < confirmed)
                && match read.needs {
                    Needs::ViewCommitted => committed_in_view,
                    Needs::Applied(op) => applied >= op,
                    Needs::Version { .. } => false,
                }
        };
        let (served, pending): (Vec<PendingRead>, Vec<PendingRead>) =
            std::mem::take(&mut self.reads.pending)
                .into_iter()
                .partition(ready);
        self.reads.pending = pending;
        for read in served {
            self.stats.confirmed_reads += 1;
            let output = self.kv.read(&read.request.op);
            Self::answer(&read.request, Ok(output), out);
        }
    }

    /// The view ended (or this replica's role in it did): refuse every waiting read and forget
    /// the rounds of the view.
    pub(super) fn fail_reads(&mut self, out: &mut Effects<Self>) {
        for read in std::mem::take(&mut self.reads.pending) {
            let error = ClientError::NotLeader { leader: None };
            Self::answer(&read.request, Err(error), out);
        }
        self.reads.round_sent = 0;
        self.reads.confirmed = 0;
        self.reads.acked.clear();
    }

    /// A tick: resend the confirmation round and version queries still unanswered.
    pub(super) fn retransmit_read_queries(&mut self, out: &mut Effects<Self>) {
        if self.reads.round_in_flight() {
            let round = self.reads.round_sent;
            let confirm = Message::Confirm {
                view: self.view,
                round,
            };
            let silent: Vec<NodeId> = self
                .others()
                .filter(|peer| self.reads.acked.get(peer).copied().unwrap_or(0) < round)
                .collect();
            for peer in silent {
                out.send(peer, confirm.clone());
            }
        }
        let queries: Vec<u64> = self
            .reads
            .pending
            .iter()
            .filter_map(|read| match read.needs {
                Needs::Version { id } => Some(id),
                _ => None,
            })
            .collect();
        for id in queries {
            self.send_version_query(id, out);
        }
    }

    // ---------------------------------------------------------------------------------------
    // CRAQ version queries.

    fn send_version_query(&self, id: u64, out: &mut Effects<Self>) {
        if let Some(tail) = self.group.last() {
            out.send(
                *tail,
                Message::VersionQuery {
                    view: self.view,
                    id,
                },
            );
        }
    }

    /// The tail answers with its commit number once it has committed an entry of its view
    /// (before that, its commit number may predate writes acknowledged in earlier views).
    pub(super) fn on_version_query(
        &mut self,
        from: NodeId,
        view: u64,
        id: u64,
        out: &mut Effects<Self>,
    ) {
        let fenced = !self.config.has_bug(super::Bug::VersionQueryAcrossViews);
        if view < self.view && fenced {
            self.stats.stale_refused += 1;
            let answer = Message::VersionReply {
                view: self.view,
                id,
                commit: 0,
            };
            return out.send(from, answer);
        }
        if self.is_tail() && self.committed_in_view() {
            let answer = Message::VersionReply {
                view,
                id,
                commit: self.commit,
            };
            out.send(from, answer);
        }
    }

    pub(super) fn on_version_reply(
        &mut self,
        view: u64,
        id: u64,
        commit: u64,
        out: &mut Effects<Self>,
    ) {
        if view != self.view {
            return;
        }
        let Some(read) = self
            .reads
            .pending
            .iter_mut()
            .find(|read| read.needs == Needs::Version { id })
        else {
            return;
        };
        read.needs = Needs::Applied(commit);
        // Everything through the tail's commit number is committed; our verified prefix holds
        // it (it passed through us on its way to the tail).
        if !self.learn_commit(commit, out) {
            self.serve_reads(out);
        }
    }
}
