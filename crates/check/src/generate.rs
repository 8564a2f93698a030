//! Seeded generator of register histories that are linearizable by construction, for
//! benchmarks and tests.
//!
//! `processes` threads each run one operation at a time on one of `keys` keys: 50% reads, 40%
//! writes, 10% CAS (expecting the last value the thread saw on that key). Every operation is
//! given a random interval and takes effect at a random instant inside it; executing the
//! operations in the order of those instants on real registers gives every read its value and
//! every CAS its outcome (`ok`, or `fail` when the comparison does not hold). A fraction of the
//! operations end in `info` (unknown outcome): they take effect or not, at random, and the
//! thread continues as a new process, as a Jepsen process does after an indeterminate result.
//! Written values are unique.
//!
//! [`inject_stale_read`] then breaks linearizability in the textbook way: one late read
//! returns a value that had been overwritten, in real time, before the read was invoked.

use crate::history::{Event, EventKind, OpValue};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub operations: usize,
    pub keys: usize,
    /// Concurrent threads (each is one process until it gets an `info`).
    pub processes: usize,
    /// Operations that end in `info`, in parts per million.
    pub info_ppm: u32,
    /// Include CAS operations (10% of the mix) and, with them, `fail`s.
    pub cas: bool,
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            operations: 1000,
            keys: 10,
            processes: 16,
            info_ppm: 10_000,
            cas: true,
            seed: 1,
        }
    }
}

/// SplitMix64: small, seeded, good enough for workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Cas,
}

struct Planned {
    process: u64,
    key: usize,
    kind: Kind,
    /// Written value (write, CAS new).
    value: u64,
    /// CAS expected value (0 = absent).
    expected: u64,
    call: u64,
    at: u64,
    ret: u64,
    info: bool,
    /// An `info` operation that takes effect.
    effective: bool,
    /// Filled in by execution: the read's value, or whether the CAS held.
    read: u64,
    held: bool,
}

/// Generates a history; see the module documentation.
pub fn generate(config: &GenConfig) -> Vec<Event> {
    assert!(config.keys > 0 && config.processes > 0);
    let mut rng = Rng(config.seed);
    let mut planned = plan(config, &mut rng);
    execute(&mut planned, config.keys);
    to_events(&planned)
}

fn plan(config: &GenConfig, rng: &mut Rng) -> Vec<Planned> {
    let mut clock = vec![0u64; config.processes];
    let mut process: Vec<u64> = (0..config.processes as u64).collect();
    let mut next_process = config.processes as u64;
    let mut seen = vec![vec![0u64; config.keys]; config.processes];
    let mut planned = Vec::with_capacity(config.operations);
    for n in 0..config.operations {
        // The thread that is free first goes next, so threads stay interleaved.
        let thread = (0..config.processes).min_by_key(|t| clock[*t]).unwrap();
        let key = rng.below(config.keys as u64) as usize;
        let roll = rng.below(100);
        let kind = match roll {
            0..50 => Kind::Read,
            50..90 => Kind::Write,
            _ if config.cas => Kind::Cas,
            _ => Kind::Write,
        };
        let call = clock[thread] + 1 + rng.below(1_000);
        let ret = call + 2 + rng.below(3_000);
        let at = call + 1 + rng.below(ret - call - 1);
        let info = rng.below(1_000_000) < u64::from(config.info_ppm);
        let value = n as u64 + 1;
        planned.push(Planned {
            process: process[thread],
            key,
            kind,
            value,
            expected: seen[thread][key],
            call,
            at,
            ret,
            info,
            effective: !info || rng.below(2) == 0,
            read: 0,
            held: false,
        });
        clock[thread] = ret;
        if info {
            process[thread] = next_process;
            next_process += 1;
        }
        if kind != Kind::Read {
            seen[thread][key] = value; // what a CAS by this thread will expect next
        }
    }
    planned
}

fn execute(planned: &mut [Planned], keys: usize) {
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|i| (planned[*i].at, *i));
    let mut registers = vec![0u64; keys];
    for i in order {
        let op = &mut planned[i];
        if !op.effective {
            continue;
        }
        let register = &mut registers[op.key];
        match op.kind {
            Kind::Read => op.read = *register,
            Kind::Write => *register = op.value,
            Kind::Cas => {
                op.held = *register == op.expected;
                if op.held {
                    *register = op.value;
                }
            }
        }
    }
}

fn text(value: u64) -> Option<String> {
    (value != 0).then(|| value.to_string())
}

fn to_events(planned: &[Planned]) -> Vec<Event> {
    let mut stamped: Vec<(u64, bool, usize, Event)> = Vec::with_capacity(planned.len() * 2);
    for (i, op) in planned.iter().enumerate() {
        let invoke_value = match op.kind {
            Kind::Read => OpValue::Get(None),
            Kind::Write => OpValue::Put(op.value.to_string()),
            Kind::Cas => OpValue::Cas {
                expected: text(op.expected),
                new: op.value.to_string(),
            },
        };
        let (kind, value) = match (op.kind, op.info) {
            (_, true) => (EventKind::Info, invoke_value.clone()),
            (Kind::Read, false) => (EventKind::Ok, OpValue::Get(text(op.read))),
            (Kind::Cas, false) if !op.held => (EventKind::Fail, invoke_value.clone()),
            (_, false) => (EventKind::Ok, invoke_value.clone()),
        };
        let event = |kind, value, time| Event {
            process: op.process,
            kind,
            key: Some(format!("k{}", op.key)),
            value,
            time,
            node: None,
            error: None,
            mode: Default::default(),
        };
        stamped.push((
            op.call,
            false,
            i,
            event(EventKind::Invoke, invoke_value, op.call),
        ));
        stamped.push((op.ret, true, i, event(kind, value, op.ret)));
    }
    stamped.sort_by_key(|(time, is_completion, i, _)| (*time, *is_completion, *i));
    stamped.into_iter().map(|(_, _, _, e)| e).collect()
}

/// Makes one `ok` read in the last quarter of the history return a value that was overwritten
/// before the read was invoked: a put `w` returned, then another put `w2` on the same key was
/// invoked and returned, all before the read's invocation. Returns the index of the changed
/// completion event, or `None` when the history has no such read.
pub fn inject_stale_read(events: &mut [Event]) -> Option<usize> {
    // Per key: completed puts in completion order, as (invoke time, return time, value).
    let mut invoked_at = std::collections::BTreeMap::new();
    let mut puts: std::collections::BTreeMap<String, Vec<(u64, u64, String)>> = Default::default();
    let quarter = events.len() * 3 / 4;
    let mut stale = None;
    for (index, event) in events.iter().enumerate() {
        let key = event.key.clone().unwrap_or_default();
        match (&event.kind, &event.value) {
            (EventKind::Invoke, _) => {
                invoked_at.insert(event.process, event.time);
            }
            (EventKind::Ok, OpValue::Put(value)) => {
                let call = invoked_at[&event.process];
                puts.entry(key)
                    .or_default()
                    .push((call, event.time, value.clone()));
            }
            (EventKind::Ok, OpValue::Get(_)) if index >= quarter => {
                let call = invoked_at[&event.process];
                let done: Vec<_> = puts
                    .get(&key)
                    .map(|p| p.iter().filter(|(_, ret, _)| *ret < call).collect())
                    .unwrap_or_default();
                // w returned before w2 was invoked; w2 returned before this read was invoked.
                stale = done.iter().enumerate().find_map(|(i, w)| {
                    done[i + 1..]
                        .iter()
                        .any(|w2| w.1 < w2.0)
                        .then(|| (index, w.2.clone()))
                });
                if stale.is_some() {
                    break;
                }
            }
            _ => {}
        }
    }
    let (index, value) = stale?;
    events[index].value = OpValue::Get(Some(value));
    Some(index)
}
