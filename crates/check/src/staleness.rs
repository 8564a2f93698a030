//! What weaker reads cost: how stale the `any-replica` reads ([`Mode::AnyReplica`]) were.
//!
//! Such a read is served from one replica's state without coordination, so a promise's
//! judgement leaves it out (a protocol promises linearizability only for the rest) and this
//! module measures it instead, from the history alone, in the way a Jepsen checker would:
//!
//! 1. Find the writes of the read's key that could have produced the value it returned: a PUT
//!    or CAS of that value, an APPEND whose suffix ends the value, or (for an absent key) a
//!    DELETE or the initial state. Values are unique per write in the simulator, so this is
//!    nearly always one write; when it is several, the most favourable one is taken.
//! 2. Count the writes of the key that were acknowledged *before the read was invoked* and
//!    invoked *after that write completed*: each of them certainly took effect after the value
//!    read and before the read began, so a linearizable read could not have returned it.
//! 3. That count is how many writes the read was **certainly** behind; a read behind by at least
//!    one is stale. Writes with an unknown outcome count as completing at infinity, so the
//!    measure never overstates.

use crate::history::{Event, EventKind, Mode, OpValue};
use std::collections::BTreeMap;

/// Staleness of the local reads of one history.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Staleness {
    /// Local reads that completed with a value.
    pub reads: u64,
    /// Of those, reads certainly behind at least one acknowledged write.
    pub stale: u64,
    /// The sum, over stale reads, of how many acknowledged writes each was behind.
    pub writes_behind: u64,
    /// The most acknowledged writes one read was behind.
    pub writes_behind_max: u64,
}

/// One operation of the history, paired.
#[derive(Clone, Debug)]
struct Op {
    key: Option<String>,
    value: OpValue,
    call: u64,
    /// `None` when the outcome is unknown.
    ret: Option<u64>,
    local: bool,
}

/// Splits `history` into the events a promise judges (everything but the `any-replica`
/// reads, invocations and completions) and measures the `any-replica` reads' staleness.
pub fn split_any_replica_reads(history: &[Event]) -> (Vec<Event>, Staleness) {
    let is_local: Vec<bool> = history.iter().map(|e| e.mode == Mode::AnyReplica).collect();
    if !is_local.contains(&true) {
        return (history.to_vec(), Staleness::default());
    }
    let checked = history
        .iter()
        .zip(&is_local)
        .filter(|(_, local)| !**local)
        .map(|(e, _)| e.clone())
        .collect();
    (checked, measure(&pair(history, &is_local)))
}

/// Pairs invocations with completions; `fail`ed operations are dropped.
fn pair(history: &[Event], is_local: &[bool]) -> Vec<Op> {
    let mut open: BTreeMap<u64, (usize, &Event)> = BTreeMap::new();
    let mut ops = Vec::new();
    for (index, event) in history.iter().enumerate() {
        if event.kind == EventKind::Invoke {
            open.insert(event.process, (index, event));
            continue;
        }
        let Some((invoked_at, invoke)) = open.remove(&event.process) else {
            continue;
        };
        let (value, ret) = match event.kind {
            EventKind::Ok if matches!(event.value, OpValue::Get(_)) => {
                (event.value.clone(), Some(event.time))
            }
            EventKind::Ok => (invoke.value.clone(), Some(event.time)),
            EventKind::Info => (invoke.value.clone(), None),
            EventKind::Fail | EventKind::Invoke => continue,
        };
        ops.push(Op {
            key: invoke.key.clone(),
            value,
            call: invoke.time,
            ret,
            local: is_local[invoked_at],
        });
    }
    for (invoked_at, invoke) in open.into_values() {
        ops.push(Op {
            key: invoke.key.clone(),
            value: invoke.value.clone(),
            call: invoke.time,
            ret: None,
            local: is_local[invoked_at],
        });
    }
    ops
}

fn measure(ops: &[Op]) -> Staleness {
    let mut writes: BTreeMap<Option<&str>, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if !matches!(op.value, OpValue::Get(_)) {
            writes.entry(op.key.as_deref()).or_default().push(op);
        }
    }
    let mut staleness = Staleness::default();
    for read in ops.iter().filter(|op| op.local) {
        let (OpValue::Get(value), Some(_)) = (&read.value, read.ret) else {
            continue;
        };
        let key_writes = writes
            .get(&read.key.as_deref())
            .map_or(&[][..], Vec::as_slice);
        let Some(behind) = writes_behind(read, value.as_deref(), key_writes) else {
            continue; // No write explains the value: a violation the local read may not show.
        };
        staleness.reads += 1;
        if behind > 0 {
            staleness.stale += 1;
            staleness.writes_behind += behind;
            staleness.writes_behind_max = staleness.writes_behind_max.max(behind);
        }
    }
    staleness
}

/// How many acknowledged writes `read` certainly missed, taking the most favourable write
/// that could have produced `value`; `None` if no write could have.
fn writes_behind(read: &Op, value: Option<&str>, writes: &[&Op]) -> Option<u64> {
    let read_ret = read.ret.expect("only completed reads are measured");
    // Completion times of the candidate writes: `None` for the initial state (before every
    // write), `u64::MAX` when unknown.
    let mut candidates: Vec<Option<u64>> = Vec::new();
    if value.is_none() {
        candidates.push(None);
    }
    for write in writes.iter().filter(|w| w.call <= read_ret) {
        let produces = match (&write.value, value) {
            (OpValue::Delete, None) => true,
            (OpValue::Put(v), Some(x)) => v == x,
            (OpValue::Cas { new, .. }, Some(x)) => new == x,
            (OpValue::Append(suffix), Some(x)) => x.ends_with(suffix.as_str()),
            _ => false,
        };
        if produces {
            candidates.push(Some(write.ret.unwrap_or(u64::MAX)));
        }
    }
    let produced_at = candidates.into_iter().max()?;
    let after_it = |w: &&&Op| match produced_at {
        Some(at) => w.call > at,
        None => true,
    };
    let behind = writes
        .iter()
        .filter(after_it)
        .filter(|w| w.ret.is_some_and(|ret| ret < read.call))
        .count();
    Some(behind as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(process: u64, kind: EventKind, value: OpValue, time: u64) -> Event {
        Event {
            process,
            kind,
            key: Some("k".into()),
            value,
            time,
            node: None,
            error: None,
            mode: Mode::Linearizable,
        }
    }

    /// Marks the last two events (one read) as an `any-replica` read.
    fn any_replica(history: &mut [Event]) {
        let n = history.len();
        for event in &mut history[n - 2..] {
            event.mode = Mode::AnyReplica;
        }
    }

    fn put(process: u64, v: &str, call: u64, ret: u64) -> [Event; 2] {
        [
            event(process, EventKind::Invoke, OpValue::Put(v.into()), call),
            event(process, EventKind::Ok, OpValue::Put(v.into()), ret),
        ]
    }

    fn get(process: u64, v: Option<&str>, call: u64, ret: u64) -> [Event; 2] {
        [
            event(process, EventKind::Invoke, OpValue::Get(None), call),
            event(
                process,
                EventKind::Ok,
                OpValue::Get(v.map(String::from)),
                ret,
            ),
        ]
    }

    #[test]
    fn a_read_behind_two_acknowledged_writes_is_stale_by_two() {
        let mut history = Vec::new();
        history.extend(put(1, "1", 0, 10));
        history.extend(put(1, "2", 20, 30));
        history.extend(put(1, "3", 40, 50));
        history.extend(get(2, Some("1"), 60, 70));
        any_replica(&mut history);
        let (checked, staleness) = split_any_replica_reads(&history);
        assert_eq!(checked.len(), 6, "the local read is left out of the check");
        assert_eq!(
            staleness,
            Staleness {
                reads: 1,
                stale: 1,
                writes_behind: 2,
                writes_behind_max: 2
            }
        );
    }

    #[test]
    fn concurrent_and_unknown_writes_do_not_make_a_read_stale() {
        let mut history = Vec::new();
        history.extend(put(1, "1", 0, 10));
        // Overlaps the read: it may linearize after it.
        history.extend(put(1, "2", 20, 100));
        history.push(event(3, EventKind::Invoke, OpValue::Put("3".into()), 25));
        history.push(event(3, EventKind::Info, OpValue::Put("3".into()), 35));
        history.extend(get(2, Some("1"), 50, 60));
        any_replica(&mut history);
        history.extend(get(2, None, 61, 62));
        any_replica(&mut history);
        let (_, staleness) = split_any_replica_reads(&history);
        assert_eq!(staleness.reads, 2);
        assert_eq!(
            staleness.stale, 1,
            "the absent value misses the acknowledged put 1"
        );
        assert_eq!(staleness.writes_behind, 1);
    }

    #[test]
    fn an_append_is_identified_by_its_suffix() {
        let mut history = Vec::new();
        let append = |p, v: &str, call, ret| {
            [
                event(p, EventKind::Invoke, OpValue::Append(v.into()), call),
                event(p, EventKind::Ok, OpValue::Append(v.into()), ret),
            ]
        };
        history.extend(append(1, "4,", 0, 10));
        history.extend(append(1, "5,", 20, 30));
        history.extend(get(2, Some("4,5,"), 40, 50));
        any_replica(&mut history);
        let (_, staleness) = split_any_replica_reads(&history);
        assert_eq!(staleness.stale, 0);
        assert_eq!(staleness.reads, 1);
    }

    #[test]
    fn without_local_reads_the_history_is_unchanged() {
        let history: Vec<Event> = put(1, "1", 0, 10).into();
        let (checked, staleness) = split_any_replica_reads(&history);
        assert_eq!(checked, history);
        assert_eq!(staleness, Staleness::default());
    }
}
