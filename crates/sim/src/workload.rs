//! The operations of leaderless workloads (causal registers and CRDTs), how every operation
//! is written into the history, and the final reads that end a run of a protocol that wants
//! them (see `Harness::final_reads`).

use crate::harness::{ClientOps, Harness, FINAL_READ_PROCESS};
use crate::simulation::{Event, Phase, Simulation};
use bytes::Bytes;
use quorate_check::lease::LeaseOp;
use quorate_check::txn::Mop;
use quorate_check::{EventKind, Mode, OpValue};
use quorate_core::crdt::{CrdtKind, CrdtOp, CrdtValue};
use quorate_core::{ClientId, Expiry, Op, Output, ReadMode, Reply, Request};

/// Client ids with this bit set belong to final reads: `FINAL_CLIENT | node << 20 | key`.
pub(crate) const FINAL_CLIENT: u64 = 1 << 62;

/// How long final reads may take before the run reports that a node never answered.
const FINAL_READ_TIMEOUT: u64 = 10_000_000_000;

/// The history's view of an operation: what was asked, and (on completion) what came back.
pub(crate) fn op_value(op: &Op, output: Option<&Output>) -> OpValue {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let texts = |values: &[Bytes]| values.iter().map(text).collect();
    match (op, output) {
        (Op::Put { value, .. }, _) => OpValue::Put(text(value)),
        // The clock error is filled in by the recorder, which knows the clocks.
        (
            Op::PutExpiring {
                value,
                expiry: Expiry::After { ttl_ms },
                ..
            },
            _,
        ) => OpValue::PutTtl {
            value: text(value),
            ttl_ms: *ttl_ms,
            clock_error_ms: 0,
        },
        // A lock acquire (`SET k token NX PX ms`) and release (compare-and-delete).
        (
            Op::Set {
                value,
                when: quorate_core::SetWhen::IfAbsent,
                expiry: Some(Expiry::After { ttl_ms }),
                ..
            },
            _,
        ) => OpValue::PutTtlIfAbsent {
            value: text(value),
            ttl_ms: *ttl_ms,
            clock_error_ms: 0,
        },
        (Op::DeleteIf { expected, .. }, _) => OpValue::DeleteIf(text(expected)),
        // Leases: the clock error is filled in by the recorder; a grant's id comes with its
        // completion.
        (Op::PutLeased { value, lease, .. }, _) => OpValue::PutLease {
            value: text(value),
            lease: *lease,
            expires: None,
        },
        (Op::LeaseGrant { ttl_ms, .. }, output) => OpValue::Lease(LeaseOp::Grant {
            ttl_ms: *ttl_ms,
            clock_error_ms: 0,
            id: match output {
                Some(Output::Lease(Some(granted))) => Some(granted.id),
                _ => None,
            },
        }),
        (Op::LeaseKeepAlive { lease, .. }, _) => OpValue::Lease(LeaseOp::KeepAlive {
            id: *lease,
            clock_error_ms: 0,
        }),
        (Op::LeaseRevoke { lease }, _) => OpValue::Lease(LeaseOp::Revoke { id: *lease }),
        (Op::Delete { .. }, _) => OpValue::Delete,
        (Op::Append { value, .. }, _) => OpValue::Append(text(value)),
        (Op::Cas { expected, new, .. }, _) => OpValue::Cas {
            expected: expected.as_ref().map(text),
            new: text(new),
        },
        (Op::Incr { by, .. }, _) => OpValue::Incr(*by),
        (Op::PutWithContext { value, .. }, _) => match value {
            Some(value) => OpValue::Put(text(value)),
            None => OpValue::Delete,
        },
        (Op::CrdtUpdate { op, .. }, _) => match op {
            CrdtOp::Increment(by) => OpValue::Incr(i64::try_from(*by).unwrap_or(i64::MAX)),
            CrdtOp::Add(delta) => OpValue::Incr(*delta),
            CrdtOp::SetAdd(element) => OpValue::SetAdd(text(element)),
            CrdtOp::SetRemove(element) => OpValue::SetRemove(text(element)),
            CrdtOp::LwwSet(value) | CrdtOp::MvSet(value) => OpValue::Put(text(value)),
        },
        // Reads: the value comes with the completion; an invocation reads "not known yet".
        (_, Some(Output::Value(value))) => OpValue::Get(value.as_ref().map(text)),
        (_, Some(Output::Siblings { values, .. })) => OpValue::Siblings(texts(values)),
        (_, Some(Output::Crdt(value))) => match value {
            CrdtValue::Counter(n) => OpValue::Get(Some(n.to_string())),
            CrdtValue::Register(value) => OpValue::Get(value.as_ref().map(text)),
            CrdtValue::Set(values) | CrdtValue::MultiValue(values) => {
                OpValue::Siblings(texts(values))
            }
        },
        (Op::Get { .. } | Op::GetSiblings { .. } | Op::CrdtRead { .. }, _) => OpValue::Get(None),
        // Simulated clients never issue these: a stamped deadline, EXPIRE, PERSIST, TTL and
        // the leader's own expiries have no register meaning in a history.
        (
            Op::PutExpiring { .. }
            | Op::Expire { .. }
            | Op::Persist { .. }
            | Op::Ttl { .. }
            | Op::Expired { .. }
            | Op::ExpireDue { .. }
            | Op::Set { .. }
            | Op::GetDelete { .. }
            | Op::PutMany { .. }
            | Op::GetMany { .. }
            | Op::Scan { .. }
            | Op::Count
            | Op::Txn { .. }
            | Op::Revisions { .. }
            | Op::LeaseExpired { .. }
            | Op::LeaseRead { .. },
            _,
        ) => panic!(
            "a simulated client issued {}, which histories cannot record",
            op.name()
        ),
    }
}

/// The kind of CRDT a CRDT workload keeps under key number `key`.
pub(crate) fn crdt_kind(key: usize) -> CrdtKind {
    match key % 2 {
        0 => CrdtKind::PnCounter,
        _ => CrdtKind::OrSet,
    }
}

/// The read of key number `key` that a workload of `ops` uses.
fn read_op(ops: ClientOps, key: usize) -> Op {
    let name = Bytes::from(format!("k{key}"));
    match ops {
        ClientOps::Kv | ClientOps::Registers => Op::Get { key: name },
        ClientOps::Causal => Op::GetSiblings { key: name },
        ClientOps::Crdt => Op::CrdtRead {
            key: name,
            kind: crdt_kind(key),
        },
    }
}

impl<H: Harness> Simulation<'_, H> {
    /// A lease workload's next operation (see `Workload::leases`): a grant when the client
    /// holds no lease, else reads, writes attached to its lease, keep-alives, revocations,
    /// deletes and plain writes (which detach a key from its lease).
    pub(crate) fn next_lease_op(&mut self, slot: usize) -> (Op, usize) {
        let ttl_ms = self
            .config
            .workload
            .put_ttl
            .map_or(100, |t| t.as_millis() as u64);
        let Some(lease) = self.clients[slot].lease else {
            return (Op::LeaseGrant { ttl_ms, now: None }, 0);
        };
        let key_index = self.rng.below(self.config.workload.keys as u64) as usize;
        let key = Bytes::from(format!("k{key_index}"));
        let op = match self.rng.below(100) {
            0..=39 => Op::Get { key },
            40..=64 => Op::PutLeased {
                key,
                value: self.fresh_value(),
                lease,
                now: None,
            },
            65..=79 => Op::LeaseKeepAlive { lease, now: None },
            80..=84 => Op::LeaseRevoke { lease },
            85..=89 => Op::Delete { key },
            _ => Op::Put {
                key,
                value: self.fresh_value(),
            },
        };
        (op, key_index)
    }

    fn fresh_value(&mut self) -> Bytes {
        self.value_counter += 1;
        Bytes::from(self.value_counter.to_string())
    }

    /// Multi-value registers: reads, and writes (one in ten a delete) that carry the join of
    /// the contexts this session got for the key.
    pub(crate) fn next_causal_op(&mut self, slot: usize) -> (Op, usize) {
        let key_index = self.rng.below(self.config.workload.keys as u64) as usize;
        let key = Bytes::from(format!("k{key_index}"));
        let roll = self.rng.below(100);
        if roll < 40 {
            return (Op::GetSiblings { key }, key_index);
        }
        let context = self.clients[slot].contexts[key_index].clone();
        let value = if roll < 50 && !context.is_empty() {
            None
        } else {
            Some(self.fresh_value())
        };
        let op = Op::PutWithContext {
            key,
            value,
            context,
        };
        (op, key_index)
    }

    /// CRDTs: counters take increments and reads; sets take adds of fresh elements, removes
    /// of elements the session read, and reads.
    pub(crate) fn next_crdt_op(&mut self, slot: usize) -> (Op, usize) {
        let key_index = self.rng.below(self.config.workload.keys as u64) as usize;
        let key = Bytes::from(format!("k{key_index}"));
        let roll = self.rng.below(100);
        if roll < 35 {
            return (read_op(ClientOps::Crdt, key_index), key_index);
        }
        let op = match crdt_kind(key_index) {
            CrdtKind::PnCounter => {
                let delta = self.rng.below(8) as i64 - 2;
                CrdtOp::Add(if delta == 0 { 1 } else { delta })
            }
            _ => {
                let seen = &self.clients[slot].elements[key_index];
                if roll < 60 && !seen.is_empty() {
                    let pick = self.rng.below(seen.len() as u64) as usize;
                    CrdtOp::SetRemove(seen[pick].clone())
                } else {
                    CrdtOp::SetAdd(self.fresh_value())
                }
            }
        };
        (Op::CrdtUpdate { key, op }, key_index)
    }

    // ---------------------------------------------------------------------------------------
    // Final reads: process FINAL_READ_PROCESS + i reads every key on node i + 1, in order.

    /// The cluster settled: start reading every key on every node.
    pub(crate) fn start_final_reads(&mut self) {
        if self.phase != Phase::Settling {
            return;
        }
        self.phase = Phase::FinalReads;
        self.trace_line(usize::MAX, || "final reads on every node".into());
        self.final_next = vec![0; self.ids.len()];
        for node in 0..self.ids.len() {
            if self.slots[node].refused {
                // Its recovery refused a damaged disk: it is out of the cluster for good.
                self.final_next[node] = self.config.workload.keys;
                continue;
            }
            self.send_final_read(node);
        }
        let deadline = self.now + FINAL_READ_TIMEOUT;
        self.queue.push(deadline, Event::FinalReadDeadline);
    }

    fn send_final_read(&mut self, node: usize) {
        let key = self.final_next[node];
        let op = read_op(self.harness.client_ops(), key);
        self.record_final(node, EventKind::Invoke, &op, None);
        let request = Request {
            client: ClientId(FINAL_CLIENT | (node as u64) << 20 | key as u64),
            seq: 0,
            op,
            read: ReadMode::Local,
            quorum: None,
        };
        let at = self.now + self.delay();
        let describe = || crate::simulation::describe_request(&request);
        let from = self.client_lane(request.client);
        let id = self.observe_send(from, crate::record::node_lane(node), false, describe);
        self.queue.push(
            at,
            Event::Request {
                to: node,
                request,
                id,
            },
        );
    }

    pub(crate) fn on_final_read_reply(&mut self, from: usize, reply: Reply) {
        let node = ((reply.client.0 & !FINAL_CLIENT) >> 20) as usize;
        let key = (reply.client.0 & 0xf_ffff) as usize;
        let expected = self.final_next.get(node) == Some(&key);
        if self.phase != Phase::FinalReads || from != node || !expected {
            return; // A duplicate.
        }
        let op = read_op(self.harness.client_ops(), key);
        match reply.result {
            Ok(output) => self.record_final(node, EventKind::Ok, &op, Some(&output)),
            Err(error) => {
                let why = format!("final read of k{key} on n{}: {error}", node + 1);
                self.violations.push(why);
                self.phase = Phase::Done;
                return;
            }
        }
        self.final_next[node] += 1;
        if self.final_next[node] < self.config.workload.keys {
            self.send_final_read(node);
        } else if (0..self.ids.len()).all(|i| self.final_next[i] >= self.config.workload.keys) {
            self.phase = Phase::Done;
        }
    }

    /// Records an event of a final read of node `node` (0-based), if the node replicates the
    /// key (see `Harness::replicates`).
    fn record_final(&mut self, node: usize, kind: EventKind, op: &Op, output: Option<&Output>) {
        let key = String::from_utf8_lossy(op.key());
        let on = node as u64 + 1;
        if !self.harness.replicates(&key, on) {
            return;
        }
        let process = FINAL_READ_PROCESS + node as u64;
        self.record_op(process, kind, op, Mode::Final, output, Some(on), None);
    }

    pub(crate) fn on_final_read_deadline(&mut self) {
        if self.phase == Phase::FinalReads {
            self.violations.push(format!(
                "final reads: not every node answered within {}s",
                FINAL_READ_TIMEOUT / 1_000_000_000
            ));
            self.phase = Phase::Done;
        }
    }
}

/// A client's `WATCH` round in a transaction workload, as a Redis client runs one: `WATCH`
/// the keys (their revisions, read linearizably, [`Op::Revisions`]), `MGET` them, then
/// `EXEC` a transaction guarded by those revisions that appends to each. If the transaction
/// commits, no watched key changed since the `WATCH`, so each still held what the `MGET` read
/// when it applied: the history records the transaction as those reads followed by its
/// appends, one atomic step, and a guard that let a change through shows up as a cycle.
#[derive(Clone, Debug)]
pub(crate) struct Watching {
    keys: Vec<Bytes>,
    revisions: Vec<u64>,
    /// What the `MGET` read, once it has.
    values: Option<Vec<Option<Bytes>>>,
}

/// Longest transaction a transaction workload issues, in micro-ops.
const TXN_MOPS_MAX: u64 = 4;

/// The history's value of a transaction workload's operation: `txn` micro-ops for
/// [`Op::Txn`] and [`Op::GetMany`] (`prior` reads first, then each operation's, with the
/// values `output` read), nothing for a `WATCH` ([`Op::Revisions`]).
pub(crate) fn txn_value(op: &Op, prior: &[Mop], output: Option<&Output>) -> Option<OpValue> {
    let (ops, outputs): (&[Op], Option<&[Output]>) = match (op, output) {
        (Op::Revisions { .. }, _) => return None,
        (Op::Txn { ops, .. }, Some(Output::Txn(Some(outputs)))) => (ops, Some(outputs)),
        (Op::Txn { ops, .. }, _) => (ops, None),
        (Op::GetMany { .. }, _) => (std::slice::from_ref(op), output.map(std::slice::from_ref)),
        (op, _) => panic!(
            "a transaction workload issued {}, which it never makes",
            op.name()
        ),
    };
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let mut mops = prior.to_vec();
    for (i, op) in ops.iter().enumerate() {
        let output = outputs.and_then(|outputs| outputs.get(i));
        match (op, output) {
            (Op::Append { key, value }, _) => mops.push(Mop::Append {
                key: text(key),
                value: text(value),
            }),
            (Op::Get { key }, output) => mops.push(Mop::Read {
                key: text(key),
                value: match output {
                    Some(Output::Value(value)) => value.as_ref().map(text),
                    _ => None,
                },
            }),
            (Op::GetMany { keys }, output) => {
                for (j, key) in keys.iter().enumerate() {
                    let value = match output {
                        Some(Output::Values(values)) => values.get(j).cloned().flatten(),
                        _ => None,
                    };
                    mops.push(Mop::Read {
                        key: text(key),
                        value: value.as_ref().map(text),
                    });
                }
            }
            (op, _) => panic!(
                "a simulated transaction holds {}, which list-append histories cannot record",
                op.name()
            ),
        }
    }
    Some(OpValue::Txn(mops))
}

impl<H: Harness> Simulation<'_, H> {
    /// The next operation of a transaction workload (see `Workload::txns`): the next step of
    /// the client's `WATCH` round if it is in one; else one in five starts a round, one in
    /// ten is an `MGET`, and the rest are `MULTI`/`EXEC` of one to four appends and reads
    /// (reads weighted by the mix's gets, appends by its writes).
    /// With the operation come the reads its history record begins with (see [`Watching`]).
    pub(crate) fn next_txn_op(&mut self, slot: usize) -> (Op, Vec<Mop>) {
        if let Some(watching) = self.clients[slot].watching.take() {
            if watching.values.is_some() {
                return self.guarded_txn(watching);
            }
            let keys = watching.keys.clone();
            self.clients[slot].watching = Some(watching);
            return (Op::GetMany { keys }, Vec::new());
        }
        let roll = self.rng.below(10);
        if roll < 2 {
            let count = 1 + self.rng.below(2) as usize;
            let keys = self.distinct_keys(count);
            return (Op::Revisions { keys }, Vec::new());
        }
        if roll < 3 {
            let count = 1 + self.rng.below(3) as usize;
            let keys = self.distinct_keys(count);
            return (Op::GetMany { keys }, Vec::new());
        }
        let mix = self.config.workload.mix;
        let writes = u64::from(mix.put + mix.append + mix.cas + mix.delete);
        let count = 1 + self.rng.below(TXN_MOPS_MAX);
        let ops = (0..count)
            .map(|_| {
                let key = self.random_key();
                if self.rng.below(u64::from(mix.get) + writes) < u64::from(mix.get) {
                    Op::Get { key }
                } else {
                    Op::Append {
                        key,
                        value: self.fresh_element(),
                    }
                }
            })
            .collect();
        let txn = Op::txn(Vec::new(), ops).expect("appends and reads make a transaction");
        (txn, Vec::new())
    }

    /// `EXEC` of a `WATCH` round: one append to each watched key, guarded by the revisions
    /// the `WATCH` read, and recorded after the reads of the round's `MGET`. The round is
    /// over whatever the answer.
    fn guarded_txn(&mut self, watching: Watching) -> (Op, Vec<Mop>) {
        let guards = watching
            .keys
            .iter()
            .zip(&watching.revisions)
            .map(|(key, &revision)| quorate_core::Guard::Unchanged {
                key: key.clone(),
                revision,
            })
            .collect();
        let ops = watching
            .keys
            .iter()
            .map(|key| Op::Append {
                key: key.clone(),
                value: self.fresh_element(),
            })
            .collect();
        let values = watching.values.unwrap_or_default();
        let prior = watching
            .keys
            .iter()
            .zip(values)
            .map(|(key, value)| Mop::Read {
                key: String::from_utf8_lossy(key).into_owned(),
                value: value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            })
            .collect();
        let txn = Op::txn(guards, ops).expect("appends make a transaction");
        (txn, prior)
    }

    /// A completed `WATCH` or `MGET` of a transaction workload moves the client's round on.
    pub(crate) fn watch_read(&mut self, slot: usize, op: &Op, output: &Output) {
        let client = &mut self.clients[slot];
        match (op, output) {
            (Op::Revisions { keys }, Output::Revisions(revisions)) => {
                client.watching = Some(Watching {
                    keys: keys.clone(),
                    revisions: revisions.clone(),
                    values: None,
                });
            }
            (Op::GetMany { keys }, Output::Values(values)) => {
                if let Some(watching) = &mut client.watching {
                    if watching.keys == *keys && watching.values.is_none() {
                        watching.values = Some(values.clone());
                    }
                }
            }
            _ => client.watching = None,
        }
    }

    /// A list key: `l0`, `l1`, ... (register operations mixed in use `k0`, `k1`, ...).
    fn random_key(&mut self) -> Bytes {
        let index = self.rng.below(self.config.workload.keys as u64);
        Bytes::from(format!("l{index}"))
    }

    /// Up to `count` distinct keys (fewer when the workload has fewer).
    fn distinct_keys(&mut self, count: usize) -> Vec<Bytes> {
        let mut keys: Vec<Bytes> = Vec::new();
        for _ in 0..count.min(self.config.workload.keys) * 4 {
            if keys.len() == count.min(self.config.workload.keys) {
                break;
            }
            let key = self.random_key();
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// A list element no other append writes: the next value and the delimiter `,`.
    fn fresh_element(&mut self) -> Bytes {
        self.value_counter += 1;
        Bytes::from(format!("{},", self.value_counter))
    }
}
