//! Simulated clients: Jepsen-style processes that invoke one operation at a time, retry on
//! redirects and timeouts within their session, and record every invocation and completion.
//!
//! A client that gives up on an operation records it as `info` (outcome unknown) and continues
//! as a *new* process with a new session, as a Jepsen process would after a crash. Retries of
//! one operation reuse its session and sequence number, so the state machine applies it at
//! most once however many nodes received it.
//!
//! Identity, retries and what an answer means are [`quorate_core::client`]'s `Session` and
//! `Call`, the state machine the server's RESP sessions drive too; this module only carries
//! it out in simulated time (which node to try, when to wake, what to record).

use crate::harness::{ClientOps, Harness};
use crate::record::{node_lane, What};
use crate::simulation::{Event, Phase, Simulation};
use bytes::Bytes;
use quorate_check::lease::LeaseOp;
use quorate_check::{Event as HistoryEvent, EventKind, Mode, OpValue};
use quorate_core::client::{Call, CallPolicy, Follow, Outcome, Session, Step};
use quorate_core::clock::CausalContext;
use quorate_core::crdt::CrdtValue;
use quorate_core::{ClientId, Op, Output, ReadMode, Reply};
use std::time::Duration;

/// Client sessions encode their client slot in the low bits of the id.
pub(crate) const SLOT_BITS: u64 = 16;

/// The client slot a session id belongs to.
pub(crate) fn client_slot(id: ClientId) -> usize {
    (id.0 & ((1 << SLOT_BITS) - 1)) as usize
}

pub(crate) struct ClientSlot {
    /// The history's process id; a new one after every `info`.
    pub process: u64,
    pub session: Session,
    /// The node this client currently believes serves requests.
    pub target: usize,
    pub pending: Option<Pending>,
    /// Bumped whenever a wake-up is scheduled; older wake-ups are ignored.
    pub generation: u64,
    /// Completed an operation invoked after the faults healed.
    pub healed_ok: bool,
    /// The last value this client saw for each key: what its CAS operations expect.
    pub seen: Vec<Option<Bytes>>,
    /// The client changed nodes since its current process began (sticky clients only): its
    /// next invocation starts a new process.
    pub moved: bool,
    /// Per key, the join of the causal contexts this session got (causal workloads).
    pub contexts: Vec<CausalContext>,
    /// Per key, the set elements this session last read (CRDT workloads).
    pub elements: Vec<Vec<Bytes>>,
    /// Where the client is in a `WATCH` round (transaction workloads).
    pub watching: Option<crate::workload::Watching>,
    /// The lease this client attaches its writes to (lease workloads): granted to it, and not
    /// known to be gone.
    pub lease: Option<u64>,
}

pub(crate) struct Pending {
    /// The request and its retries.
    pub call: Call,
    /// An attempt is out and no answer has come (a wake-up is its timeout).
    pub awaiting: bool,
    pub op: Op,
    /// How a GET asks to be served (`Linearizable` for writes).
    pub read: ReadMode,
    /// How the history records it: the read mode, or `AnyReplica` for a read sent to a
    /// random node (see `draw_local_read`).
    pub mode: Mode,
    pub key: usize,
    pub invoked: u64,
    pub deadline: u64,
    /// On the next wake-up, resend to another node (the last attempt timed out).
    pub switch_target: bool,
    /// Reads this operation's history record begins with: what the client read of the keys
    /// a `WATCH`-guarded transaction watched, which still hold those values when it applies.
    pub prior: Vec<quorate_check::txn::Mop>,
}

impl<H: Harness> Simulation<'_, H> {
    pub(crate) fn start_clients(&mut self) {
        let keys = self.config.workload.keys;
        for slot in 0..self.config.workload.clients {
            let target = self.rng.below(self.ids.len() as u64) as usize;
            let client = ClientSlot {
                process: 0,
                session: Session::new(ClientId(0)),
                target,
                pending: None,
                generation: 0,
                healed_ok: false,
                seen: vec![None; keys],
                moved: false,
                contexts: vec![CausalContext::new(); keys],
                elements: vec![Vec::new(); keys],
                watching: None,
                lease: None,
            };
            self.clients.push(client);
            self.new_session(slot);
            let think = self.think_time();
            self.wake_client(slot, think);
        }
    }

    fn new_session(&mut self, slot: usize) {
        let id = self.fresh_session_id(slot);
        let bug = self.config.client_bug;
        let client = &mut self.clients[slot];
        client.process = self.next_process;
        client.session = Session::new(id).with_bug(bug);
        client.moved = false;
        // What a session has seen is its own: a new process starts knowing nothing.
        client
            .contexts
            .iter_mut()
            .for_each(|c| *c = CausalContext::new());
        client.elements.iter_mut().for_each(Vec::clear);
        client.watching = None;
        // An unknown outcome may have ended the lease, or not: leave it to run out.
        client.lease = None;
        self.next_process += 1;
    }

    fn fresh_session_id(&mut self, slot: usize) -> ClientId {
        self.next_session += 1;
        ClientId(((self.next_session - 1) << SLOT_BITS) | slot as u64)
    }

    /// How simulated clients call: follow a named leader after 1 ms, pause 20 ms otherwise.
    fn call_policy() -> CallPolicy {
        CallPolicy {
            retry_pause: Duration::from_millis(20),
            redirect_pause: Duration::from_millis(1),
            redirects_before_pause: u32::MAX,
            follow: Follow::Retry,
        }
    }

    /// Continues the client's session under a new history process.
    fn new_process(&mut self, slot: usize) {
        let client = &mut self.clients[slot];
        client.process = self.next_process;
        client.moved = false;
        self.next_process += 1;
    }

    /// Whether clients stick to one node (see [`crate::ReadMix`]).
    fn sticky(&self) -> bool {
        !self.config.workload.reads.is_linearizable_only()
    }

    /// Points the client at `target`. A sticky client that changes nodes continues as a new
    /// process; a pending non-linearizable read is abandoned (recorded as `info`), because
    /// the new node may be behind what the client saw. Returns whether it was abandoned.
    fn retarget(&mut self, slot: usize, target: usize) -> bool {
        let sticky = self.sticky();
        let client = &mut self.clients[slot];
        if client.target == target {
            return false;
        }
        client.target = target;
        if !sticky {
            return false;
        }
        client.moved = true;
        let abandon = client
            .pending
            .as_ref()
            .is_some_and(|p| p.op.is_read() && p.read != ReadMode::Linearizable);
        if abandon {
            let pending = client.pending.take().expect("checked");
            let process = client.process;
            let why = Some("moved to another node".to_string());
            self.record_full(process, EventKind::Info, &pending, None, None, why);
            self.new_process(slot);
        }
        abandon
    }

    fn think_time(&mut self) -> u64 {
        self.rng
            .between(0, self.config.workload.think_max.as_nanos() as u64)
    }

    fn wake_client(&mut self, slot: usize, after: u64) {
        let client = &mut self.clients[slot];
        client.generation += 1;
        let generation = client.generation;
        self.queue.push(
            self.now + after,
            Event::ClientWake {
                client: slot,
                generation,
            },
        );
    }

    pub(crate) fn on_client_wake(&mut self, slot: usize, generation: u64) {
        if self.clients[slot].generation != generation || self.phase == Phase::Done {
            return;
        }
        let Some(pending) = &self.clients[slot].pending else {
            if !self.clients[slot].healed_ok {
                self.invoke(slot);
            }
            return;
        };
        if self.now >= pending.deadline {
            self.check_healed_timeout(slot);
            return self.give_up(slot, "timed out");
        }
        if pending.awaiting {
            // No answer within the attempt's time: a write may have taken effect. The next
            // attempt goes to another node (`switch_target`), at once.
            let pending = self.clients[slot].pending.as_mut().expect("checked");
            pending.call.on_timeout();
            pending.awaiting = false;
        }
        let pending = self.clients[slot].pending.as_ref().expect("checked");
        // A write stays with the node first asked when the protocol needs it (see
        // `Harness::sticky_writes`); the client gives up on it rather than move it.
        let sticky_write = self.harness.sticky_writes() && !pending.op.is_read();
        if pending.switch_target && !sticky_write {
            let next = (self.clients[slot].target + 1) % self.ids.len();
            if self.retarget(slot, next) {
                if !self.clients[slot].healed_ok {
                    self.invoke(slot);
                }
                return;
            }
        }
        self.send_request(slot);
    }

    fn invoke(&mut self, slot: usize) {
        if self.clients[slot].moved {
            self.new_process(slot);
        }
        let (op, key, mut read, prior) = if self.draw_txn(slot) {
            let (op, prior) = self.next_txn_op(slot);
            (op, 0, ReadMode::Linearizable, prior)
        } else {
            let (op, key, read) = self.next_op(slot);
            (op, key, read, Vec::new())
        };
        let mut mode = history_mode(read);
        if read == ReadMode::Linearizable && self.draw_local_read(slot, &op) {
            read = ReadMode::Local;
            mode = Mode::AnyReplica;
        }
        let fresh = self.fresh_session_id(slot);
        let client = &mut self.clients[slot];
        let call = Call::start(
            &mut client.session,
            op.clone(),
            read,
            Self::call_policy(),
            || fresh,
        );
        let process = client.process;
        let deadline = self.now + self.config.workload.op_timeout.as_nanos() as u64;
        let pending = Pending {
            call,
            awaiting: false,
            op,
            read,
            mode,
            key,
            invoked: self.now,
            deadline,
            switch_target: false,
            prior,
        };
        self.record(process, EventKind::Invoke, &pending, None, None);
        self.clients[slot].pending = Some(pending);
        self.send_request(slot);
    }

    /// Whether the next operation of a transaction workload is a transaction: always, but
    /// for half of them, drawn, when keys also expire (`Workload::put_ttl`), which are then
    /// the ordinary register operations on keys of their own. The client's `WATCH` round
    /// runs to its end first.
    fn draw_txn(&mut self, slot: usize) -> bool {
        let workload = &self.config.workload;
        if !workload.txns {
            return false;
        }
        let watching = self.clients[slot].watching.is_some();
        watching || workload.put_ttl.is_none() || !self.rng.chance(0.5)
    }

    /// A share of reads (`Workload::local_reads`) asks for `ReadMode::Local` and goes to a
    /// node drawn at random, so that it is served by whichever replica that is. Such reads are
    /// measured for staleness rather than judged (unlike the read mix's sticky local reads).
    fn draw_local_read(&mut self, slot: usize, op: &Op) -> bool {
        let share = self.config.workload.local_reads;
        if !op.is_read() || share <= 0.0 || !self.rng.chance(share) {
            return false;
        }
        self.clients[slot].target = self.rng.below(self.ids.len() as u64) as usize;
        true
    }

    fn next_op(&mut self, slot: usize) -> (Op, usize, ReadMode) {
        if self.config.workload.leases {
            let (op, key) = self.next_lease_op(slot);
            return (op, key, ReadMode::Linearizable);
        }
        if let Some(period) = self.config.workload.write_once {
            let (op, key) = self.next_write_once_op(period);
            return (op, key, ReadMode::Linearizable);
        }
        let mut mix = self.config.workload.mix;
        match self.harness.client_ops() {
            ClientOps::Kv => {}
            ClientOps::Registers => {
                mix.append = 0;
                mix.cas = 0;
                if mix.get + mix.put + mix.delete == 0 {
                    mix.get = 1;
                }
            }
            ClientOps::Causal => {
                let (op, key) = self.next_causal_op(slot);
                return (op, key, ReadMode::Linearizable);
            }
            ClientOps::Crdt => {
                let (op, key) = self.next_crdt_op(slot);
                return (op, key, ReadMode::Linearizable);
            }
        }
        let key_index = self.rng.below(self.config.workload.keys as u64) as usize;
        let key = Bytes::from(format!("k{key_index}"));
        self.value_counter += 1;
        let fresh = self.value_counter.to_string();
        let writes = mix.put + mix.append + mix.cas + mix.delete;
        let open_with_write = self.sticky() && !self.clients[slot].session.opened() && writes > 0;
        let gets = if open_with_write { 0 } else { mix.get };
        let mut roll = self.rng.below(u64::from(gets + writes)) as u32;
        let mut pick = |weight: u32| {
            let hit = roll < weight;
            roll = roll.saturating_sub(weight);
            hit
        };
        let op = if pick(gets) {
            let read = self.read_mode();
            return (Op::Get { key }, key_index, read);
        } else if pick(mix.put) {
            let value = Bytes::from(fresh);
            match self.config.workload.put_ttl {
                Some(ttl) if self.config.workload.locks => Op::Set {
                    key,
                    value,
                    when: quorate_core::SetWhen::IfAbsent,
                    expiry: Some(quorate_core::Expiry::After {
                        ttl_ms: ttl.as_millis() as u64,
                    }),
                },
                Some(ttl) => Op::PutExpiring {
                    key,
                    value,
                    expiry: quorate_core::Expiry::After {
                        ttl_ms: ttl.as_millis() as u64,
                    },
                },
                None => Op::Put { key, value },
            }
        } else if pick(mix.append) {
            Op::Append {
                key,
                value: Bytes::from(format!("{fresh},")),
            }
        } else if pick(mix.cas) {
            Op::Cas {
                key,
                expected: self.clients[slot].seen[key_index].clone(),
                new: Bytes::from(fresh),
            }
        } else if self.config.workload.locks {
            // Release with the token this client last saw; a fresh one when it saw none.
            let token = self.clients[slot].seen[key_index].clone();
            Op::DeleteIf {
                key,
                expected: token.unwrap_or_else(|| Bytes::from(fresh)),
            }
        } else {
            Op::Delete { key }
        };
        (op, key_index, ReadMode::Linearizable)
    }

    /// Draws a GET's read mode from the read mix (without a draw when all are linearizable,
    /// so that default runs replay exactly as before the mix existed).
    fn read_mode(&mut self) -> ReadMode {
        let reads = self.config.workload.reads;
        if reads.is_linearizable_only() {
            return ReadMode::Linearizable;
        }
        let roll = self.rng.below(u64::from(reads.total())) as u32;
        if roll < reads.linearizable {
            ReadMode::Linearizable
        } else if roll < reads.linearizable + reads.local {
            ReadMode::Local
        } else {
            ReadMode::Sync
        }
    }

    /// A write-once register operation (see `Workload::write_once`): read the key, or
    /// propose a fresh value for it with a CAS from absent, which succeeds only if this value
    /// is the one decided. Keys carry their generation, so each is decided once.
    fn next_write_once_op(&mut self, period: std::time::Duration) -> (Op, usize) {
        let mix = self.config.workload.mix;
        let key_index = self.rng.below(self.config.workload.keys as u64) as usize;
        let generation = self.now / (period.as_nanos() as u64).max(1);
        let key = Bytes::from(format!("k{key_index}.g{generation}"));
        self.value_counter += 1;
        let total = mix.get + mix.put + mix.append + mix.cas + mix.delete;
        let op = if self.rng.below(u64::from(total)) < u64::from(mix.get) {
            Op::Get { key }
        } else {
            Op::Cas {
                key,
                expected: None,
                new: Bytes::from(self.value_counter.to_string()),
            }
        };
        (op, key_index)
    }

    fn send_request(&mut self, slot: usize) {
        let client = &mut self.clients[slot];
        let pending = client.pending.as_mut().expect("a request to send");
        pending.switch_target = true;
        pending.awaiting = true;
        let request = pending.call.request().clone();
        let to = client.target;
        let from = self.client_lane(request.client);
        let describe = || crate::simulation::describe_request(&request);
        if !self.rng.chance(self.plan.loss) {
            let at = self.now + self.delay();
            let id = self.observe_send(from, node_lane(to), false, describe);
            self.queue.push(at, Event::Request { to, request, id });
        } else {
            self.observe_drop(from, node_lane(to), "lost", describe);
        }
        let timeout = self.config.workload.attempt_timeout.as_nanos() as u64;
        self.wake_client(slot, timeout);
    }

    pub(crate) fn send_reply(&mut self, from: usize, reply: Reply) {
        let to = self.client_lane(reply.client);
        let describe = || crate::simulation::describe_reply(&reply);
        if !self.rng.chance(self.plan.loss) {
            let at = self.now + self.delay();
            let id = self.observe_send(node_lane(from), to, false, describe);
            self.queue.push(at, Event::Reply { from, reply, id });
        } else {
            self.observe_drop(node_lane(from), to, "lost", describe);
        }
    }

    pub(crate) fn on_reply(&mut self, from: usize, reply: Reply) {
        if reply.client.0 & crate::workload::FINAL_CLIENT != 0 {
            return self.on_final_read_reply(from, reply);
        }
        let slot = client_slot(reply.client);
        let Some(client) = self.clients.get_mut(slot) else {
            return;
        };
        let Some(pending) = client.pending.as_mut() else {
            return; // A late or duplicate answer: this client awaits nothing.
        };
        if !pending.call.is_answered_by(&reply) {
            return; // A late or duplicate answer to an earlier request of the session.
        }
        pending.awaiting = false;
        self.hash_event(from, 6, quorate_core::digest::digest(&reply));
        let node = self.ids[from];
        let client = &mut self.clients[slot];
        let pending = client.pending.as_mut().expect("checked above");
        match pending.call.on_reply(node, reply.result) {
            Step::Done(Outcome::Ok(output)) => self.complete(slot, from, output),
            Step::Done(Outcome::Rejected(why)) => {
                // It did not happen: a write that was to open the session did not open it.
                client.session.refused(&pending.call);
                self.fail(slot, from, why)
            }
            Step::Done(Outcome::Expired) => self.give_up(slot, "session expired"),
            Step::Done(Outcome::Unknown(why)) => self.give_up(slot, &why),
            Step::Done(Outcome::Redirect(_)) => unreachable!("simulated clients follow leaders"),
            Step::Send { to, pause } => {
                let known = to
                    .map(|id| self.node_index(id))
                    .filter(|i| *i < self.ids.len());
                let pending = self.clients[slot].pending.as_mut().expect("checked above");
                pending.switch_target = known.is_none();
                if let Some(leader) = known {
                    self.retarget(slot, leader);
                }
                self.wake_client(slot, pause.as_nanos() as u64);
            }
        }
    }

    fn complete(&mut self, slot: usize, from: usize, output: Output) {
        let txns = self.config.workload.txns;
        let client = &mut self.clients[slot];
        let pending = client.pending.take().expect("checked by the caller");
        let process = client.process;
        let node = Some(from as u64 + 1);
        match (&pending.op, output) {
            (Op::Txn { .. }, Output::Txn(None)) => {
                let why = Some("a watched key changed".to_string());
                self.record_full(process, EventKind::Fail, &pending, None, node, why);
            }
            (Op::Revisions { .. } | Op::GetMany { .. }, output) if txns => {
                self.watch_read(slot, &pending.op, &output);
                self.record(process, EventKind::Ok, &pending, Some(&output), node);
            }
            (Op::Txn { .. }, output) => {
                self.record(process, EventKind::Ok, &pending, Some(&output), node);
            }
            (Op::LeaseGrant { .. }, Output::Lease(Some(granted))) => {
                client.lease = Some(granted.id);
                let output = Output::Lease(Some(granted));
                self.record(process, EventKind::Ok, &pending, Some(&output), node);
            }
            (
                Op::LeaseKeepAlive { .. } | Op::LeaseRevoke { .. } | Op::PutLeased { .. },
                Output::Lease(None) | Output::Existed(false),
            ) => {
                client.lease = None;
                let why = Some("the lease is gone".to_string());
                self.record_full(process, EventKind::Fail, &pending, None, node, why);
            }
            (Op::LeaseRevoke { .. }, _) => {
                client.lease = None;
                self.record(process, EventKind::Ok, &pending, None, node);
            }
            (Op::Cas { .. }, Output::Swapped(false))
            | (Op::DeleteIf { .. }, Output::Existed(false)) => {
                let why = Some("compare failed".to_string());
                self.record_full(process, EventKind::Fail, &pending, None, node, why);
            }
            (Op::Set { .. }, Output::Value(Some(holder))) => {
                // The lock is held: nothing was set; what holds it is the holder's token.
                client.seen[pending.key] = Some(holder);
                let why = Some("held".to_string());
                self.record_full(process, EventKind::Fail, &pending, None, node, why);
            }
            (Op::Get { .. }, Output::Value(value)) => {
                client.seen[pending.key] = value.clone();
                let output = Output::Value(value);
                self.record(process, EventKind::Ok, &pending, Some(&output), node);
            }
            (_, output @ (Output::Siblings { .. } | Output::Written { .. } | Output::Crdt(_))) => {
                match &output {
                    Output::Siblings { context, .. } | Output::Written { context } => {
                        client.contexts[pending.key].join(context)
                    }
                    Output::Crdt(CrdtValue::Set(elements)) => {
                        client.elements[pending.key] = elements.clone()
                    }
                    _ => {}
                }
                self.record(process, EventKind::Ok, &pending, Some(&output), node);
            }
            (op, _) => {
                client.seen[pending.key] = match op {
                    Op::Put { value, .. }
                    | Op::PutExpiring { value, .. }
                    | Op::PutLeased { value, .. }
                    | Op::Set { value, .. } => Some(value.clone()),
                    Op::Cas { new, .. } => Some(new.clone()),
                    Op::Delete { .. } | Op::DeleteIf { .. } => None,
                    _ => client.seen[pending.key].clone(),
                };
                self.record(process, EventKind::Ok, &pending, None, node);
            }
        }
        self.after_completion(slot, pending.invoked, true);
    }

    fn fail(&mut self, slot: usize, from: usize, why: String) {
        let client = &mut self.clients[slot];
        let pending = client.pending.take().expect("checked by the caller");
        let process = client.process;
        client.watching = None;
        let node = Some(from as u64 + 1);
        self.record_full(process, EventKind::Fail, &pending, None, node, Some(why));
        self.after_completion(slot, pending.invoked, false);
    }

    /// A healed cluster answers within the operation's time: an operation invoked after the
    /// heal that times out is a liveness failure (a protocol that cannot finish a round with
    /// every node up and every link working), reported with the run's seed.
    fn check_healed_timeout(&mut self, slot: usize) {
        let Phase::Healing { since } = self.phase else {
            return;
        };
        let client = &self.clients[slot];
        let pending = client.pending.as_ref().expect("a pending operation");
        if pending.invoked >= since {
            let violation = format!(
                "liveness: client {}'s {:?} was invoked {:?} after all faults healed and \
                 timed out after {:?}",
                client.process,
                pending.op,
                Duration::from_nanos(pending.invoked - since),
                self.config.workload.op_timeout
            );
            self.violations.push(violation);
        }
    }

    fn give_up(&mut self, slot: usize, why: &str) {
        let client = &mut self.clients[slot];
        let pending = client.pending.take().expect("a pending operation");
        let process = client.process;
        self.record_full(
            process,
            EventKind::Info,
            &pending,
            None,
            None,
            Some(why.into()),
        );
        self.new_session(slot);
        if self.harness.sticky_writes() {
            // The node may be down: the next operation tries another.
            let client = &mut self.clients[slot];
            client.target = (client.target + 1) % self.ids.len();
        }
        self.after_completion(slot, pending.invoked, false);
    }

    fn after_completion(&mut self, slot: usize, invoked: u64, ok: bool) {
        if let Phase::Healing { since } = self.phase {
            if ok && invoked >= since {
                self.clients[slot].healed_ok = true;
                self.check_liveness_done();
                return;
            }
        }
        let think = self.think_time();
        self.wake_client(slot, think);
    }

    /// Ends the run once every client made progress after the heal (after final reads, when
    /// the protocol wants them).
    pub(crate) fn check_liveness_done(&mut self) {
        if let Phase::Healing { .. } = self.phase {
            if self.clients.iter().all(|c| c.healed_ok) {
                match self.harness.final_reads() {
                    Some(settle) => {
                        self.phase = Phase::Settling;
                        let at = self.now + settle.as_nanos() as u64;
                        self.queue.push(at, Event::FinalReads);
                    }
                    None => self.phase = Phase::Done,
                }
            }
        }
    }

    pub(crate) fn record(
        &mut self,
        process: u64,
        kind: EventKind,
        pending: &Pending,
        output: Option<&Output>,
        node: Option<u64>,
    ) {
        self.record_full(process, kind, pending, output, node, None);
    }

    /// Appends an event of `pending`'s operation to the history.
    fn record_full(
        &mut self,
        process: u64,
        kind: EventKind,
        pending: &Pending,
        output: Option<&Output>,
        node: Option<u64>,
        error: Option<String>,
    ) {
        let (op, mode) = (pending.op.clone(), pending.mode);
        let txn_op = matches!(
            op,
            Op::Txn { .. } | Op::GetMany { .. } | Op::Revisions { .. }
        );
        if self.config.workload.txns && txn_op {
            // A WATCH reads revisions, not values: nothing for the history.
            if let Some(value) = crate::workload::txn_value(&op, &pending.prior, output) {
                self.push_event(process, kind, &op, value, mode, node, error);
            }
            return;
        }
        self.record_op(process, kind, &op, mode, output, node, error);
    }

    /// How far apart two nodes' clocks may read, in milliseconds, over the time a key written
    /// now with `ttl_ms` could live (its write may still take `op_timeout`): the offsets'
    /// spread plus both drifting apart, rounded up. What a `put_ttl`'s expiry window allows.
    fn clock_error_ms(&self, ttl_ms: u64) -> u64 {
        let horizon =
            self.now + (2 * ttl_ms) * 1_000_000 + self.config.workload.op_timeout.as_nanos() as u64;
        let drift = self.plan.clock_drift_ppm_max.unsigned_abs();
        let spread = self.plan.clock_offset_max + 2 * drift * (horizon / 1_000_000);
        spread.div_ceil(1_000_000) + 1
    }

    /// Appends an event of `op` (recorded with `mode`) to the history.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_op(
        &mut self,
        process: u64,
        kind: EventKind,
        op: &Op,
        mode: Mode,
        output: Option<&Output>,
        node: Option<u64>,
        error: Option<String>,
    ) {
        let mut value = crate::workload::op_value(op, output);
        let lease_ttl_ms = self
            .config
            .workload
            .put_ttl
            .map_or(0, |t| t.as_millis() as u64);
        match &mut value {
            OpValue::PutTtl {
                ttl_ms,
                clock_error_ms,
                ..
            }
            | OpValue::PutTtlIfAbsent {
                ttl_ms,
                clock_error_ms,
                ..
            }
            | OpValue::Lease(LeaseOp::Grant {
                ttl_ms,
                clock_error_ms,
                ..
            }) => *clock_error_ms = self.clock_error_ms(*ttl_ms),
            OpValue::Lease(LeaseOp::KeepAlive { clock_error_ms, .. }) => {
                *clock_error_ms = self.clock_error_ms(lease_ttl_ms)
            }
            _ => {}
        }
        self.push_event(process, kind, op, value, mode, node, error);
    }

    /// Appends an event of `op`, recorded as `value`, to the history (and the trace).
    #[allow(clippy::too_many_arguments)]
    fn push_event(
        &mut self,
        process: u64,
        kind: EventKind,
        op: &Op,
        value: OpValue,
        mode: Mode,
        node: Option<u64>,
        error: Option<String>,
    ) {
        self.observe(|_| What::Op {
            process,
            phase: match kind {
                EventKind::Invoke => "invoke",
                EventKind::Ok => "ok",
                EventKind::Fail => "fail",
                EventKind::Info => "info",
            },
            op: describe_op(op, &value, kind),
            node: node.map(|n| format!("n{n}")),
            error: error.clone(),
        });
        // A transaction names its keys in its micro-ops.
        let key = (!matches!(value, OpValue::Txn(_) | OpValue::Lease(_)))
            .then(|| String::from_utf8_lossy(op.key()).into_owned());
        self.history.push(HistoryEvent {
            process,
            kind,
            key,
            value,
            time: self.now,
            node,
            error,
            mode,
        });
    }
}

/// How the history records a read asked for in `read` mode.
fn history_mode(read: ReadMode) -> Mode {
    match read {
        ReadMode::Linearizable => Mode::Linearizable,
        ReadMode::Sync => Mode::Sync,
        ReadMode::Local => Mode::Local,
    }
}

/// An operation as the record shows it, as the checker's explanations do: `put k0 7`,
/// `get k0 → 7` (the value only once the completion carries it).
fn describe_op(op: &Op, value: &quorate_check::OpValue, kind: EventKind) -> String {
    let key = String::from_utf8_lossy(op.key());
    let json = value.to_json();
    let shown = match &json {
        serde_json::Value::Null if kind == EventKind::Invoke => String::new(),
        serde_json::Value::String(text) => format!(" {text}"),
        other => format!(" {other}"),
    };
    let arrow = if op.is_read() && kind != EventKind::Invoke {
        " →"
    } else {
        ""
    };
    format!("{} {key}{arrow}{shown}", value.f())
}
