//! Client operations at the node that receives them (steps 1 and 5 of the module docs).

use super::message::{ClientWrite, Entry, LwwOrigin, Slot};
use super::{Bug, LwwClock, MultiPrimary, Resolution, SIBLING_LIMIT_REFUSAL};
use quorate_core::clock::{CausalContext, DvvSet, HlcStamp};
use quorate_core::crdt::{Crdt, LwwRegister, LwwStamp};
use quorate_core::{ClientError, Effects, Key, Op, Output, Request, Time, Value};

/// What a write did: the entry it changed, the answer, for LWW the value and its stamps, and
/// for version vectors the write's delta (what replication ships instead of the whole entry).
type Written = (
    Slot,
    Output,
    Option<(Option<Value>, LwwOrigin)>,
    Option<Entry>,
);

impl MultiPrimary {
    pub(super) fn on_request(&mut self, now: Time, request: Request, out: &mut Effects<Self>) {
        if request.op.needs_leader_clock() {
            // Every node accepts writes: there is no leader whose clock could decide.
            let refusal = quorate_core::kv::expiry::refusal("multiprimary");
            return Self::answer(request.client, request.seq, Err(refusal), out);
        }
        if request.op.is_multi_key() {
            let refusal = request.op.multi_key_refusal("multiprimary");
            return Self::answer(request.client, request.seq, Err(refusal), out);
        }
        let Request {
            client, seq, op, ..
        } = request;
        if op.is_read() {
            return Self::answer(client, seq, self.read(&op), out);
        }
        if seq != 0 && !self.config.has_bug(Bug::NoSessionCheck) {
            if let Some((last, output)) = self.sessions.get(client) {
                if seq < last {
                    return; // A stale duplicate: the client has moved on.
                }
                if seq == last {
                    let output = output.clone();
                    return Self::answer(client, seq, Ok(output), out);
                }
            }
        }
        self.tree = None; // The write may touch an entry, refused or not.
        let (slot, output, lww, delta) = match self.write(now, &op) {
            Ok(written) => written,
            Err(why) => return Self::answer(client, seq, Err(ClientError::Rejected(why)), out),
        };
        self.stats.writes += 1;
        self.note_siblings(&slot);
        if seq != 0 {
            self.sessions.insert(client, seq, output.clone());
        }
        let write = ClientWrite {
            client,
            seq,
            output: output.clone(),
            lww,
        };
        self.persist(slot.clone(), Some(write), out);
        // Both wait behind the persist: the answer and the replication follow durability.
        Self::answer(client, seq, Ok(output), out);
        let shipped = delta.unwrap_or_else(|| self.entries[&slot].clone());
        self.replicate(slot, shipped, out);
    }

    /// Step 5: a read is answered from this replica's state.
    fn read(&self, op: &Op) -> Result<Output, ClientError> {
        let register = |key: &Key| self.entries.get(&Slot::Register(key.clone()));
        match op {
            Op::Get { key } => Ok(match (self.config.resolution_of(key), register(key)) {
                (Resolution::Lww, Some(Entry::Lww(r))) => Output::Value(r.get().cloned().flatten()),
                (Resolution::Lww, _) => Output::Value(None),
                (Resolution::VersionVectors, entry) => siblings_output(entry),
            }),
            Op::GetSiblings { key } => match self.config.resolution_of(key) {
                Resolution::VersionVectors => Ok(siblings_output(register(key))),
                Resolution::Lww => Err(rejected_lww(op)),
            },
            Op::CrdtRead { key, kind } => {
                let slot = Slot::Crdt(key.clone(), *kind);
                let value = match self.entries.get(&slot) {
                    Some(Entry::Crdt(crdt)) => crdt.value(),
                    _ => Crdt::new(*kind).value(),
                };
                Ok(Output::Crdt(value))
            }
            _ => unreachable!("{op:?} is not a read"),
        }
    }

    /// Step 1: applies a write to this replica's entry.
    fn write(&mut self, now: Time, op: &Op) -> Result<Written, String> {
        match op {
            Op::Put { key, value } => self.write_register(now, key, Some(value.clone()), None),
            Op::Delete { key } => self.write_register(now, key, None, None),
            Op::PutWithContext {
                key,
                value,
                context,
            } => self.write_register(now, key, value.clone(), Some(context)),
            Op::CrdtUpdate { key, op } => {
                let slot = Slot::Crdt(key.clone(), op.kind());
                let (stamp, _) = self.lww_stamp(now);
                let id = self.id;
                let entry = self
                    .entries
                    .entry(slot.clone())
                    .or_insert_with(|| Entry::Crdt(Crdt::new(op.kind())));
                let Entry::Crdt(crdt) = entry else {
                    unreachable!("CRDT slots hold CRDTs")
                };
                crdt.apply(op, id, stamp);
                Ok((slot, Output::Done, None, None))
            }
            Op::Append { .. }
            | Op::Cas { .. }
            | Op::Incr { .. }
            | Op::Set { .. }
            | Op::DeleteIf { .. }
            | Op::GetDelete { .. } => Err(format!(
                "{}: read-modify-write needs consensus; multi-primary registers take put, \
                 delete and CRDT updates (a PN-Counter adds, an OR-Set appends)",
                op.name()
            )),
            _ => unreachable!("{op:?} is a read"),
        }
    }

    /// A write of `value` (`None`: delete) to `key`'s register, with the client's context for
    /// version vectors (`None`: a write without one).
    fn write_register(
        &mut self,
        now: Time,
        key: &Key,
        value: Option<Value>,
        context: Option<&CausalContext>,
    ) -> Result<Written, String> {
        let slot = Slot::Register(key.clone());
        match self.config.resolution_of(key) {
            Resolution::Lww if context.is_some() => Err(format!(
                "put_with_context: {:?} uses last-write-wins, which keeps one value and no \
                 siblings",
                String::from_utf8_lossy(key)
            )),
            Resolution::Lww => {
                let (stamp, origin) = self.lww_stamp(now);
                let entry = self
                    .entries
                    .entry(slot.clone())
                    .or_insert_with(|| Entry::Lww(LwwRegister::default()));
                let Entry::Lww(register) = entry else {
                    unreachable!("LWW keys hold LWW registers")
                };
                let existed = register.get().is_some_and(Option::is_some);
                if !register.set(stamp, value.clone()) {
                    self.stats.lww_lost_on_arrival += 1;
                }
                let output = match value {
                    Some(_) => Output::Done,
                    None => Output::Existed(existed),
                };
                Ok((slot, output, Some((value, origin)), None))
            }
            Resolution::VersionVectors => {
                let id = self.id;
                let max_siblings = self.config.max_siblings;
                let replace_all = self.config.has_bug(Bug::ContextReplacesAll);
                let entry = self
                    .entries
                    .entry(slot.clone())
                    .or_insert_with(|| Entry::Siblings(DvvSet::new()));
                let Entry::Siblings(set) = entry else {
                    unreachable!("version-vector keys hold sibling sets")
                };
                let existed = !Entry::live_siblings(set).is_empty();
                let mut seen = match context {
                    Some(context) => context.clone(),
                    // A write without context: a PUT supersedes nothing (one more sibling);
                    // a DELETE removes every version this replica holds.
                    None if value.is_none() => set.context(),
                    None => CausalContext::new(),
                };
                if replace_all {
                    seen.join(&set.context());
                }
                let is_delete = value.is_none();
                // Riak's max_siblings: a write that would leave more concurrent versions than
                // the limit is refused (it did not happen); a write whose context resolves
                // siblings always goes through.
                let after = set.siblings_after_write(&seen);
                if !is_delete && after > max_siblings && after > set.len() {
                    self.stats.sibling_limit_refusals += 1;
                    return Err(format!(
                        "{SIBLING_LIMIT_REFUSAL}: {:?} would hold {after} concurrent versions, \
                         more than max_siblings = {max_siblings}; read the key and write with \
                         its context to resolve them",
                        String::from_utf8_lossy(key)
                    ));
                }
                let dot = match value {
                    Some(value) => set.write(id, &seen, Some(value)),
                    None => set.remove(id, &seen),
                };
                let delta = Entry::Siblings(set.delta(dot, &seen));
                let output = match (context, is_delete) {
                    (Some(_), _) => Output::Written {
                        context: set.written_context(&seen, dot),
                    },
                    (None, false) => Output::Done,
                    (None, true) => Output::Existed(existed),
                };
                Ok((slot, output, None, Some(delta)))
            }
        }
    }

    /// A fresh LWW stamp on the configured clock, and both clocks' readings.
    fn lww_stamp(&mut self, now: Time) -> (LwwStamp, LwwOrigin) {
        let hlc = self.hlc.tick(now.as_nanos());
        let wall = now.as_nanos();
        let time = match self.config.lww_clock {
            LwwClock::Hlc => hlc,
            LwwClock::Wall => HlcStamp {
                physical: wall,
                logical: 0,
            },
        };
        let origin = LwwOrigin {
            hlc,
            wall,
            node: self.id,
        };
        let stamp = LwwStamp {
            time,
            node: self.id,
        };
        (stamp, origin)
    }
}

fn siblings_output(entry: Option<&Entry>) -> Output {
    match entry {
        Some(Entry::Siblings(set)) => Output::Siblings {
            values: Entry::live_siblings(set),
            context: set.context(),
        },
        _ => Output::Siblings {
            values: Vec::new(),
            context: CausalContext::new(),
        },
    }
}

fn rejected_lww(op: &Op) -> ClientError {
    ClientError::Rejected(format!(
        "{}: {:?} uses last-write-wins, which keeps one value and no siblings",
        op.name(),
        String::from_utf8_lossy(op.key())
    ))
}
