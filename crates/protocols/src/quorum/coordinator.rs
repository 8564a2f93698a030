//! The coordinator: a client's read or write, phase by phase (steps 1–3 of the module docs).

use super::message::{Assigned, Message, OpId, Record, Version, Versioned};
use super::{Bug, Quorum, Timer};
use quorate_core::{
    ClientError, ClientId, Effects, Key, NodeId, Op, Output, QuorumSizes, ReadMode, Request, Time,
    TimerRange, Value,
};
use std::collections::{BTreeMap, BTreeSet};

/// One operation in progress at its coordinator.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    client: ClientId,
    seq: u64,
    key: Key,
    /// `None` for a read; `Some(value)` for a write of `value` (`None`: a delete).
    write: Option<Option<Value>>,
    r: usize,
    w: usize,
    /// The key's home replicas.
    home: Vec<NodeId>,
    /// Stand-ins asked in place of unresponsive home replicas: stand-in → home (sloppy).
    stand_ins: BTreeMap<NodeId, NodeId>,
    phase: Phase,
    /// After this (local) time the coordinator answers `Unavailable`.
    deadline: Time,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Waiting for `r` answers to a query.
    Query {
        replies: BTreeMap<NodeId, Versioned>,
    },
    /// Waiting for `w` replicas to hold `stored`; then the client gets `output`.
    Store {
        stored: Versioned,
        acks: BTreeSet<NodeId>,
        output: Output,
    },
}

impl Pending {
    fn asked(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.home
            .iter()
            .copied()
            .chain(self.stand_ins.keys().copied())
    }

    fn was_asked(&self, node: NodeId) -> bool {
        self.home.contains(&node) || self.stand_ins.contains_key(&node)
    }

    /// The nodes that have answered the current phase.
    fn answered(&self) -> BTreeSet<NodeId> {
        match &self.phase {
            Phase::Query { replies } => replies.keys().copied().collect(),
            Phase::Store { acks, .. } => acks.clone(),
        }
    }

    pub(super) fn check_invariants(&self, _id: NodeId) {
        assert!(self.r >= 1 && self.w >= 1, "quorums of zero");
        assert!(
            self.answered().iter().all(|node| self.was_asked(*node)),
            "an answer from a node that was not asked"
        );
        assert!(
            self.stand_ins.keys().all(|s| !self.home.contains(s)),
            "a home replica doubles as a stand-in"
        );
        if let Phase::Query { replies } = &self.phase {
            assert!(
                replies.len() < self.r,
                "a complete query phase was not finished"
            );
        }
    }
}

impl Quorum {
    pub(super) fn on_request(&mut self, now: Time, request: Request, out: &mut Effects<Self>) {
        if request.op.needs_leader_clock() {
            // No node orders a key's writes, so no clock decides its deadline.
            let refusal = quorate_core::kv::expiry::refusal("quorum (leaderless)");
            return Self::answer(request.client, request.seq, Err(refusal), out);
        }
        if request.op.is_multi_key() {
            let refusal = request.op.multi_key_refusal("quorum (leaderless)");
            return Self::answer(request.client, request.seq, Err(refusal), out);
        }
        let Request {
            client,
            seq,
            op,
            read,
            quorum,
        } = request;
        match op {
            Op::Get { key } if read == ReadMode::Local => {
                let value = self.stored(&key).value;
                Self::answer(client, seq, Ok(Output::Value(value)), out);
            }
            Op::Get { key } => self.start(now, (client, seq), key, None, quorum, out),
            Op::Put { key, value } => {
                self.start(now, (client, seq), key, Some(Some(value)), quorum, out)
            }
            Op::Delete { key } => self.start(now, (client, seq), key, Some(None), quorum, out),
            other => {
                let why = format!(
                    "{}: a quorum register serves get, put and delete; read-modify-write \
                     operations need consensus (use raft)",
                    other.name()
                );
                Self::answer(client, seq, Err(ClientError::Rejected(why)), out);
            }
        }
    }

    /// Starts (or resumes, for a retried write) an operation.
    fn start(
        &mut self,
        now: Time,
        (client, seq): (ClientId, u64),
        key: Key,
        write: Option<Option<Value>>,
        quorum: Option<QuorumSizes>,
        out: &mut Effects<Self>,
    ) {
        let (r, w) = match self.sizes(quorum) {
            Ok(sizes) => sizes,
            Err(why) => return Self::answer(client, seq, Err(ClientError::Rejected(why)), out),
        };
        if self.in_progress(client, seq) {
            return; // A retry of what is already under way: its answer will come.
        }
        let mut resume = None;
        if let (Some(_), Some((_, assigned))) = (&write, self.sessions.get(client)) {
            if seq < assigned.seq {
                return; // A stale duplicate: the client has moved on.
            }
            if seq == assigned.seq {
                if assigned.key != key {
                    let why = format!("sequence number {seq} reused for another key");
                    return Self::answer(client, seq, Err(ClientError::Rejected(why)), out);
                }
                resume = Some(assigned.clone());
            }
        }
        if self.ops.len() >= self.config.inflight_max {
            let why = format!("{} operations in progress; retry later", self.ops.len());
            return Self::answer(client, seq, Err(ClientError::Rejected(why)), out);
        }
        let pending = Pending {
            client,
            seq,
            home: self.preference_list(&key),
            key,
            write,
            r,
            w,
            stand_ins: BTreeMap::new(),
            phase: Phase::Query {
                replies: BTreeMap::new(),
            },
            deadline: now + self.config.request_timeout,
        };
        let op = self.next_op;
        self.next_op += 1;
        self.ops.insert(op, pending);
        out.set_timer(
            Timer::Retry(op),
            TimerRange::fixed(self.config.retry_interval),
        );
        match resume {
            // A retried write stores the version assigned the first time, never a new one.
            Some(assigned) => {
                self.enter_store(op, assigned.stored.clone(), write_output(&assigned), out)
            }
            None => self.send_phase(op, None, out),
        }
    }

    fn in_progress(&self, client: ClientId, seq: u64) -> bool {
        self.ops
            .values()
            .any(|p| p.client == client && p.seq == seq)
    }

    fn op_id(&self, op: u64) -> OpId {
        OpId {
            incarnation: self.incarnation,
            seq: op,
        }
    }

    /// Sends the current phase's message to every asked node, or only to `only`.
    fn send_phase(&self, op: u64, only: Option<&BTreeSet<NodeId>>, out: &mut Effects<Self>) {
        let pending = &self.ops[&op];
        let id = self.op_id(op);
        for node in pending.asked() {
            if only.is_some_and(|set| !set.contains(&node)) {
                continue;
            }
            let msg = match &pending.phase {
                Phase::Query { .. } => Message::Query {
                    op: id,
                    key: pending.key.clone(),
                },
                Phase::Store { stored, .. } => Message::Store {
                    op: Some(id),
                    key: pending.key.clone(),
                    stored: stored.clone(),
                    hint: pending.stand_ins.get(&node).copied(),
                },
            };
            out.send(node, msg);
        }
    }

    /// Finds the operation an answer belongs to, if it still waits for one from `from`.
    fn pending_for(&mut self, from: NodeId, op: OpId, key: &Key) -> Option<&mut Pending> {
        if op.incarnation != self.incarnation {
            return None; // An answer to an operation of an earlier life.
        }
        self.ops
            .get_mut(&op.seq)
            .filter(|p| p.key == *key && p.was_asked(from))
    }

    pub(super) fn on_query_reply(
        &mut self,
        from: NodeId,
        op: OpId,
        key: Key,
        stored: Versioned,
        out: &mut Effects<Self>,
    ) {
        let Some(pending) = self.pending_for(from, op, &key) else {
            return;
        };
        let Phase::Query { replies } = &mut pending.phase else {
            return; // The read phase already finished.
        };
        replies.insert(from, stored);
        if replies.len() >= pending.r {
            self.finish_query(op.seq, out);
        }
    }

    /// Step 1 is complete: decide what the operation stores, or answer a read right away.
    fn finish_query(&mut self, op: u64, out: &mut Effects<Self>) {
        let pending = &self.ops[&op];
        let Phase::Query { replies } = &pending.phase else {
            unreachable!("called in the read phase")
        };
        let newest = replies.values().max().cloned().expect("r >= 1 answers");
        match pending.write.clone() {
            None => self.finish_read_phase(op, newest, out),
            Some(value) => self.assign_version(op, newest, value, out),
        }
    }

    /// Step 3: answer a read, after writing back what it returns unless `W` replicas hold it.
    fn finish_read_phase(&mut self, op: u64, newest: Versioned, out: &mut Effects<Self>) {
        let pending = &self.ops[&op];
        let Phase::Query { replies } = &pending.phase else {
            unreachable!("called in the read phase")
        };
        let holding = replies
            .values()
            .filter(|s| s.version == newest.version)
            .count();
        let output = Output::Value(newest.value.clone());
        if holding >= pending.w {
            self.stats.one_round_reads += 1;
            return self.complete(op, output, out);
        }
        if self.config.write_back {
            self.stats.write_backs += 1;
            return self.enter_store(op, newest, output, out);
        }
        // Regular reads: answer now, repair the stale replicas without waiting.
        let repair = self.config.read_repair;
        let stale: Vec<(NodeId, Option<NodeId>)> = replies
            .iter()
            .filter(|(_, s)| repair && s.version < newest.version)
            .map(|(node, _)| (*node, pending.stand_ins.get(node).copied()))
            .collect();
        for (node, hint) in stale {
            self.stats.read_repairs += 1;
            let msg = Message::Store {
                op: None,
                key: self.ops[&op].key.clone(),
                stored: newest.clone(),
                hint,
            };
            out.send(node, msg);
        }
        self.complete(op, output, out);
    }

    /// Step 2: a write takes a version above everything seen, persisted before it is sent.
    fn assign_version(
        &mut self,
        op: u64,
        newest: Versioned,
        value: Option<Value>,
        out: &mut Effects<Self>,
    ) {
        let version = if self.config.has_bug(Bug::VersionWithoutWriter) {
            Version {
                counter: newest.version.counter + 1,
                writer: quorate_core::NodeId(0),
            }
        } else {
            let counter = newest.version.counter.max(self.last_counter) + 1;
            self.last_counter = counter;
            Version {
                counter,
                writer: self.id,
            }
        };
        let pending = &self.ops[&op];
        let (client, seq, key) = (pending.client, pending.seq, pending.key.clone());
        // One version per write, ever. A client that sent a later write before this one
        // finished (it has moved on; well-behaved clients do not) gets no answer to this one.
        if self
            .sessions
            .get(client)
            .is_some_and(|(latest, _)| latest >= seq)
        {
            self.ops.remove(&op);
            return out.cancel_timer(Timer::Retry(op));
        }
        let assigned = Assigned {
            seq,
            key,
            stored: Versioned { version, value },
            existed: newest.value.is_some(),
        };
        let output = write_output(&assigned);
        // Remembered before persisting: the record may trigger a checkpoint, which replaces
        // it and must therefore already hold it.
        self.sessions.insert(client, seq, assigned.clone());
        self.persist(
            Record::Assigned {
                client,
                assigned: assigned.clone(),
            },
            out,
        );
        self.enter_store(op, assigned.stored, output, out);
    }

    fn enter_store(&mut self, op: u64, stored: Versioned, output: Output, out: &mut Effects<Self>) {
        let pending = self.ops.get_mut(&op).expect("a pending operation");
        pending.phase = Phase::Store {
            stored,
            acks: BTreeSet::new(),
            output,
        };
        self.send_phase(op, None, out);
    }

    pub(super) fn on_store_ack(
        &mut self,
        from: NodeId,
        op: OpId,
        key: Key,
        version: Version,
        out: &mut Effects<Self>,
    ) {
        let Some(pending) = self.pending_for(from, op, &key) else {
            return;
        };
        let w = pending.w;
        let Phase::Store {
            stored,
            acks,
            output,
        } = &mut pending.phase
        else {
            return;
        };
        if version < stored.version {
            return; // Acknowledges an older store (a duplicate from another phase).
        }
        acks.insert(from);
        if acks.len() >= w {
            let output = output.clone();
            if pending.write.is_some() {
                self.stats.writes += 1;
            } else {
                self.stats.reads += 1;
            }
            self.complete(op.seq, output, out);
        }
    }

    fn complete(&mut self, op: u64, output: Output, out: &mut Effects<Self>) {
        let pending = self.ops.remove(&op).expect("a pending operation");
        if pending.write.is_none() && matches!(pending.phase, Phase::Query { .. }) {
            self.stats.reads += 1;
        }
        out.cancel_timer(Timer::Retry(op));
        Self::answer(pending.client, pending.seq, Ok(output), out);
    }

    /// A phase waited `retry_interval`: give up past the deadline, or ask again, enlisting
    /// stand-ins for silent home replicas when the quorum may be sloppy.
    pub(super) fn on_retry(&mut self, now: Time, op: u64, out: &mut Effects<Self>) {
        let Some(pending) = self.ops.get(&op) else {
            return;
        };
        if now >= pending.deadline {
            let pending = self.ops.remove(&op).expect("checked above");
            self.stats.unavailable += 1;
            return Self::answer(
                pending.client,
                pending.seq,
                Err(ClientError::Unavailable),
                out,
            );
        }
        if self.config.sloppy {
            self.enlist_stand_ins(op);
        }
        let pending = &self.ops[&op];
        let answered = pending.answered();
        let silent: BTreeSet<NodeId> = pending.asked().filter(|n| !answered.contains(n)).collect();
        self.send_phase(op, Some(&silent), out);
        out.set_timer(
            Timer::Retry(op),
            TimerRange::fixed(self.config.retry_interval),
        );
    }

    /// For every home replica that has not answered, asks the next node on the ring that is
    /// neither a home replica nor already a stand-in (Dynamo's "first N healthy nodes").
    fn enlist_stand_ins(&mut self, op: u64) {
        let pending = &self.ops[&op];
        let answered = pending.answered();
        let covered: BTreeSet<NodeId> = pending.stand_ins.values().copied().collect();
        let silent: Vec<NodeId> = pending
            .home
            .iter()
            .copied()
            .filter(|h| !answered.contains(h) && !covered.contains(h))
            .collect();
        let walk = self.ring().walk(&pending.key);
        let mut candidates = walk
            .into_iter()
            .filter(|n| !pending.home.contains(n) && !pending.stand_ins.contains_key(n));
        let mut enlisted = Vec::new();
        for home in silent {
            match candidates.next() {
                Some(stand_in) => enlisted.push((stand_in, home)),
                None => break,
            }
        }
        let pending = self.ops.get_mut(&op).expect("checked above");
        pending.stand_ins.extend(enlisted);
    }
}

/// What a write answers: PUT is done; DELETE says whether its read phase found the key.
fn write_output(assigned: &Assigned) -> Output {
    match assigned.stored.value {
        Some(_) => Output::Done,
        None => Output::Existed(assigned.existed),
    }
}
