//! Simulated clients: Jepsen-style processes that invoke one operation at a time, retry on
//! redirects and timeouts within their session, and record every invocation and completion.
//!
//! A client that gives up on an operation records it as `info` (outcome unknown) and continues
//! as a *new* process with a new session, as a Jepsen process would after a crash. Retries of
//! one operation reuse its session and sequence number, so the state machine applies it at
//! most once however many nodes received it.

use crate::harness::{ClientOps, Harness};
use crate::simulation::{Event, Phase, Simulation};
use bytes::Bytes;
use quorate_check::{Event as HistoryEvent, EventKind};
use quorate_core::clock::CausalContext;
use quorate_core::crdt::CrdtValue;
use quorate_core::{ClientError, ClientId, Op, Output, ReadMode, Reply, Request};

/// Client sessions encode their client slot in the low bits of the id.
const SLOT_BITS: u64 = 16;

pub(crate) struct ClientSlot {
    /// The history's process id; a new one after every `info`.
    pub process: u64,
    pub session: ClientId,
    pub seq: u64,
    /// The node this client currently believes serves requests.
    pub target: usize,
    pub pending: Option<Pending>,
    /// Bumped whenever a wake-up is scheduled; older wake-ups are ignored.
    pub generation: u64,
    /// Completed an operation invoked after the faults healed.
    pub healed_ok: bool,
    /// The last value this client saw for each key: what its CAS operations expect.
    pub seen: Vec<Option<Bytes>>,
    /// Per key, the join of the causal contexts this session got (causal workloads).
    pub contexts: Vec<CausalContext>,
    /// Per key, the set elements this session last read (CRDT workloads).
    pub elements: Vec<Vec<Bytes>>,
}

pub(crate) struct Pending {
    pub op: Op,
    pub key: usize,
    pub invoked: u64,
    pub deadline: u64,
    /// On the next wake-up, resend to another node (the last attempt timed out).
    pub switch_target: bool,
}

impl<H: Harness> Simulation<'_, H> {
    pub(crate) fn start_clients(&mut self) {
        let keys = self.config.workload.keys;
        for slot in 0..self.config.workload.clients {
            let target = self.rng.below(self.ids.len() as u64) as usize;
            let client = ClientSlot {
                process: 0,
                session: ClientId(0),
                seq: 0,
                target,
                pending: None,
                generation: 0,
                healed_ok: false,
                seen: vec![None; keys],
                contexts: vec![CausalContext::new(); keys],
                elements: vec![Vec::new(); keys],
            };
            self.clients.push(client);
            self.new_session(slot);
            let think = self.think_time();
            self.wake_client(slot, think);
        }
    }

    fn new_session(&mut self, slot: usize) {
        let client = &mut self.clients[slot];
        client.process = self.next_process;
        client.session = ClientId((self.next_session << SLOT_BITS) | slot as u64);
        client.seq = 0;
        // What a session has seen is its own: a new process starts knowing nothing.
        client
            .contexts
            .iter_mut()
            .for_each(|c| *c = CausalContext::new());
        client.elements.iter_mut().for_each(Vec::clear);
        self.next_process += 1;
        self.next_session += 1;
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
            return self.give_up(slot, "timed out");
        }
        // A write stays with the node first asked when the protocol needs it (see
        // `Harness::sticky_writes`); the client gives up on it rather than move it.
        let sticky = self.harness.sticky_writes() && !pending.op.is_read();
        if pending.switch_target && !sticky {
            let n = self.ids.len() as u64;
            let client = &mut self.clients[slot];
            client.target = (client.target + 1) % n as usize;
        }
        self.send_request(slot);
    }

    fn invoke(&mut self, slot: usize) {
        let (op, key) = self.next_op(slot);
        let client = &mut self.clients[slot];
        client.seq += 1;
        let process = client.process;
        let deadline = self.now + self.config.workload.op_timeout.as_nanos() as u64;
        self.record(process, EventKind::Invoke, &op, None, None);
        self.clients[slot].pending = Some(Pending {
            op,
            key,
            invoked: self.now,
            deadline,
            switch_target: false,
        });
        self.send_request(slot);
    }

    fn next_op(&mut self, slot: usize) -> (Op, usize) {
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
            ClientOps::Causal => return self.next_causal_op(slot),
            ClientOps::Crdt => return self.next_crdt_op(slot),
        }
        let key_index = self.rng.below(self.config.workload.keys as u64) as usize;
        let key = Bytes::from(format!("k{key_index}"));
        self.value_counter += 1;
        let fresh = self.value_counter.to_string();
        let total = mix.get + mix.put + mix.append + mix.cas + mix.delete;
        let mut roll = self.rng.below(u64::from(total)) as u32;
        let mut pick = |weight: u32| {
            let hit = roll < weight;
            roll = roll.saturating_sub(weight);
            hit
        };
        let op = if pick(mix.get) {
            Op::Get { key }
        } else if pick(mix.put) {
            Op::Put {
                key,
                value: Bytes::from(fresh),
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
        } else {
            Op::Delete { key }
        };
        (op, key_index)
    }

    fn send_request(&mut self, slot: usize) {
        let client = &mut self.clients[slot];
        let pending = client.pending.as_mut().expect("a request to send");
        pending.switch_target = true;
        let request = Request {
            client: client.session,
            seq: client.seq,
            op: pending.op.clone(),
            read: ReadMode::Linearizable,
            quorum: None,
        };
        let to = client.target;
        if !self.rng.chance(self.plan.loss) {
            let at = self.now + self.delay();
            self.queue.push(at, Event::Request { to, request });
        }
        let timeout = self.config.workload.attempt_timeout.as_nanos() as u64;
        self.wake_client(slot, timeout);
    }

    pub(crate) fn send_reply(&mut self, from: usize, reply: Reply) {
        if !self.rng.chance(self.plan.loss) {
            let at = self.now + self.delay();
            self.queue.push(at, Event::Reply { from, reply });
        }
    }

    pub(crate) fn on_reply(&mut self, from: usize, reply: Reply) {
        if reply.client.0 & crate::workload::FINAL_CLIENT != 0 {
            return self.on_final_read_reply(from, reply);
        }
        let slot = (reply.client.0 & ((1 << SLOT_BITS) - 1)) as usize;
        let Some(client) = self.clients.get(slot) else {
            return;
        };
        if client.session != reply.client || client.seq != reply.seq || client.pending.is_none() {
            return; // A late or duplicate answer to something this client no longer awaits.
        }
        self.hash_event(from, 6, quorate_core::digest::digest(&reply));
        match reply.result {
            Ok(output) => self.complete(slot, from, output),
            Err(ClientError::NotLeader { leader } | ClientError::Indeterminate { leader }) => {
                let known = leader
                    .map(|id| self.node_index(id))
                    .filter(|i| *i < self.ids.len());
                let client = &mut self.clients[slot];
                let pending = client.pending.as_mut().expect("checked above");
                pending.switch_target = known.is_none();
                if let Some(leader) = known {
                    client.target = leader;
                }
                let backoff = if known.is_some() {
                    1_000_000
                } else {
                    20_000_000
                };
                self.wake_client(slot, backoff);
            }
            Err(ClientError::Unavailable) => self.wake_client(slot, 20_000_000),
            Err(ClientError::SessionExpired) => self.give_up(slot, "session expired"),
            Err(ClientError::Rejected(why)) => self.fail(slot, from, why),
        }
    }

    fn complete(&mut self, slot: usize, from: usize, output: Output) {
        let client = &mut self.clients[slot];
        let pending = client.pending.take().expect("checked by the caller");
        let process = client.process;
        let node = Some(from as u64 + 1);
        match (&pending.op, output) {
            (Op::Cas { .. }, Output::Swapped(false)) => {
                let why = Some("compare failed".to_string());
                self.record_full(process, EventKind::Fail, &pending.op, None, node, why);
            }
            (Op::Get { .. }, Output::Value(value)) => {
                client.seen[pending.key] = value.clone();
                let output = Output::Value(value);
                self.record(process, EventKind::Ok, &pending.op, Some(&output), node);
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
                self.record(process, EventKind::Ok, &pending.op, Some(&output), node);
            }
            (op, _) => {
                client.seen[pending.key] = match op {
                    Op::Put { value, .. } => Some(value.clone()),
                    Op::Cas { new, .. } => Some(new.clone()),
                    Op::Delete { .. } => None,
                    _ => client.seen[pending.key].clone(),
                };
                self.record(process, EventKind::Ok, &pending.op, None, node);
            }
        }
        self.after_completion(slot, pending.invoked, true);
    }

    fn fail(&mut self, slot: usize, from: usize, why: String) {
        let client = &mut self.clients[slot];
        let pending = client.pending.take().expect("checked by the caller");
        let process = client.process;
        let node = Some(from as u64 + 1);
        self.record_full(process, EventKind::Fail, &pending.op, None, node, Some(why));
        self.after_completion(slot, pending.invoked, false);
    }

    fn give_up(&mut self, slot: usize, why: &str) {
        let client = &mut self.clients[slot];
        let pending = client.pending.take().expect("a pending operation");
        let process = client.process;
        self.record_full(
            process,
            EventKind::Info,
            &pending.op,
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
        op: &Op,
        output: Option<&Output>,
        node: Option<u64>,
    ) {
        self.record_full(process, kind, op, output, node, None);
    }

    fn record_full(
        &mut self,
        process: u64,
        kind: EventKind,
        op: &Op,
        output: Option<&Output>,
        node: Option<u64>,
        error: Option<String>,
    ) {
        let value = crate::workload::op_value(op, output);
        self.history.push(HistoryEvent {
            process,
            kind,
            key: Some(String::from_utf8_lossy(op.key()).into_owned()),
            value,
            time: self.now,
            node,
            error,
        });
    }
}
