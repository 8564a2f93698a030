//! List-append histories, checked the way Elle does it (Kingsbury & Alvaro, "Elle:
//! Inferring Isolation Anomalies from Experimental Observations", VLDB 2020).
//!
//! In a list-append history every write appends a unique element to a list and every read
//! returns a whole list. That makes the history *recoverable*: a read names exactly the
//! appends it reflects, in order, so each key's version order can be read off its longest
//! read instead of searched for. The check is then a graph problem, linear in the history:
//!
//! 1. **Parse.** quorate's APPEND concatenates strings, so an element is an appended value
//!    such as `t17;` and a read `"t2;t4;"` is the list `[t2, t4]`. The delimiter is the last
//!    character of the appended values (each must end with it and contain it nowhere else);
//!    Elle's EDN elements are given `;` ([`crate::txn`]).
//! 2. **Version order.** Per key, the longest read is the order. Every other read must be a
//!    prefix of it: a byte comparison, so a read costs one `memcmp`, not a parse (a read that
//!    is not a prefix is a *non-prefix read*: the reads imply incompatible orders).
//! 3. **Element anomalies**, found on the longest read once and inherited by every prefix:
//!    a *duplicated element* (listed twice), a *phantom element* (never appended to that
//!    key), an *aborted read* (G1a: appended by a failed operation), an *intermediate read*
//!    (G1b: ends at an element its transaction followed with another append to the key), and
//!    a *lost append* (acknowledged, then missing from a read that began after it completed).
//! 4. **Dependencies** between operations: write-write (ww: the writer of an element, then
//!    the writer of the next), write-read (wr: the writer of the last element a read saw,
//!    then the reader), read-write (rw: the reader, then the writer of the element after the
//!    last it saw) and real time (rt: an operation that completed before another began). The
//!    real-time edges are kept linear by linking each operation only to the *frontier*: the
//!    completed operations not already followed by another completed one.
//! 5. **Cycles**: Tarjan's strongly connected components, then in each component a short
//!    cycle, searched first among the edges that make the worst anomaly: ww only (G0), ww+wr
//!    (G1c), exactly one rw (G-single), any (G2); each with `-realtime` when it needs real
//!    time. With the real-time edges the model checked is strict serializability, which for
//!    single-operation histories is linearizability of every list.

use crate::history::{History, HistoryError, Operation};
use crate::report::{Model, Report, Validity};
use crate::txn::{self, Mop, Status, Txn};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

/// How many anomalies of one class are kept (all are counted).
const KEPT_PER_CLASS: usize = 8;
/// How many read-write edges a G-single search tries per component.
const SINGLE_RW_TRIES: usize = 64;
/// For how many non-prefix reads per key every acknowledged append is looked up.
const NON_PREFIX_LOST_CHECKS: usize = 64;

/// A dependency between two operations.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord, Hash)]
pub enum Dep {
    /// Write-write: the later append's list had the earlier one's element before it.
    Ww,
    /// Write-read: the reader saw the writer's element last.
    Wr,
    /// Read-write (anti-dependency): the writer's element came right after what was read.
    Rw,
    /// Real time: the first completed before the second was invoked.
    Rt,
}

impl Dep {
    fn name(self) -> &'static str {
        match self {
            Dep::Ww => "ww",
            Dep::Wr => "wr",
            Dep::Rw => "rw",
            Dep::Rt => "rt",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// One edge of a cycle: from `from` to the next step's operation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Step {
    /// Index into the transactions checked.
    pub from: usize,
    pub dep: Dep,
    /// The key the dependency is on (`None` for real time).
    pub key: Option<String>,
}

/// What was found. Operations are indices into the transactions checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Anomaly {
    /// A dependency cycle; `name` is G0, G1c, G-single or G2, with `-realtime` when the
    /// cycle needs a real-time edge.
    Cycle { name: String, steps: Vec<Step> },
    /// G1a: `read` saw `element`, appended by `writer`, which failed.
    AbortedRead {
        read: usize,
        writer: usize,
        key: String,
        element: String,
    },
    /// G1b: `read` ended at `element`, which `writer` followed with another append to `key`.
    IntermediateRead {
        read: usize,
        writer: usize,
        key: String,
        element: String,
    },
    /// `append` was acknowledged before `read` began, yet `read` does not contain it.
    LostAppend {
        append: usize,
        read: usize,
        key: String,
        element: String,
    },
    /// `read` lists `element` more than once.
    DuplicatedElement {
        read: usize,
        key: String,
        element: String,
    },
    /// `read` lists `element`, which no operation appended to `key`.
    PhantomElement {
        read: usize,
        key: String,
        element: String,
    },
    /// Neither `read` nor `longest` is a prefix of the other.
    NonPrefixRead {
        read: usize,
        longest: usize,
        key: String,
    },
}

impl Anomaly {
    /// The anomaly's name, as Elle (and the issue) call it.
    pub fn name(&self) -> &str {
        match self {
            Anomaly::Cycle { name, .. } => name,
            Anomaly::AbortedRead { .. } => "G1a",
            Anomaly::IntermediateRead { .. } => "G1b",
            Anomaly::LostAppend { .. } => "lost append",
            Anomaly::DuplicatedElement { .. } => "duplicated element",
            Anomaly::PhantomElement { .. } => "phantom element",
            Anomaly::NonPrefixRead { .. } => "non-prefix read",
        }
    }

    /// The operations involved (indices into the transactions).
    pub fn operations(&self) -> Vec<usize> {
        match self {
            Anomaly::Cycle { steps, .. } => steps.iter().map(|s| s.from).collect(),
            Anomaly::AbortedRead { read, writer, .. }
            | Anomaly::IntermediateRead { read, writer, .. } => vec![*writer, *read],
            Anomaly::LostAppend { append, read, .. } => vec![*append, *read],
            Anomaly::DuplicatedElement { read, .. } | Anomaly::PhantomElement { read, .. } => {
                vec![*read]
            }
            Anomaly::NonPrefixRead { read, longest, .. } => vec![*longest, *read],
        }
    }
}

/// The list-append checker's answer.
#[derive(Clone, Debug, Default)]
pub struct ListAppendResult {
    /// Up to a few anomalies of each class, worst class first.
    pub anomalies: Vec<Anomaly>,
    /// How many of each class were found.
    pub counts: BTreeMap<String, usize>,
    pub keys: usize,
    /// Operations that completed `ok`.
    pub ok: usize,
    /// Dependency edges built (all four kinds).
    pub edges: usize,
}

impl ListAppendResult {
    pub fn validity(&self) -> Validity {
        if !self.anomalies.is_empty() {
            Validity::Invalid
        } else if self.ok == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    fn add(&mut self, anomaly: Anomaly) {
        let count = self.counts.entry(anomaly.name().to_string()).or_default();
        *count += 1;
        if *count <= KEPT_PER_CLASS {
            self.anomalies.push(anomaly);
        }
    }
}

/// Where an element was appended.
#[derive(Clone, Copy)]
struct Writer {
    txn: u32,
    /// No later append to the same key in the same transaction (else a read ending here
    /// saw an intermediate state).
    last_in_txn: bool,
}

/// A read of one key by an `ok` transaction.
struct Read<'a> {
    txn: u32,
    value: &'a str,
    /// Elements, when it is a prefix of the longest read.
    prefix_len: Option<usize>,
}

struct KeyState<'a> {
    name: &'a str,
    writers: HashMap<&'a str, Writer>,
    reads: Vec<Read<'a>>,
}

struct Edge {
    to: u32,
    dep: Dep,
    key: u32,
}

/// Checks transactions of appends and reads (single operations are one-micro-op
/// transactions); `Err` for histories it cannot judge (writes, values without a common
/// delimiter, an element appended twice).
pub fn check_txns(txns: &[Txn]) -> Result<ListAppendResult, HistoryError> {
    let delimiter = delimiter(txns)?;
    let mut result = ListAppendResult {
        ok: txns.iter().filter(|t| t.status == Status::Ok).count(),
        ..ListAppendResult::default()
    };
    // Keys, writers and reads.
    let mut key_ids: HashMap<&str, u32> = HashMap::new();
    let mut keys: Vec<KeyState> = Vec::new();
    for (index, txn) in txns.iter().enumerate() {
        let mut seen_later: Vec<&str> = Vec::new();
        for mop in txn.mops.iter().rev() {
            let key = mop.key();
            let id = *key_ids.entry(key).or_insert_with(|| {
                keys.push(KeyState {
                    name: key,
                    writers: HashMap::new(),
                    reads: Vec::new(),
                });
                keys.len() as u32 - 1
            });
            let state = &mut keys[id as usize];
            match mop {
                Mop::Append { value, .. } => {
                    let element = &value[..value.len() - delimiter.len_utf8()];
                    let writer = Writer {
                        txn: index as u32,
                        last_in_txn: !seen_later.contains(&key),
                    };
                    if let Some(other) = state.writers.insert(element, writer) {
                        let first = &txns[other.txn as usize];
                        return Err(HistoryError {
                            line: txn.line.min(first.line),
                            message: format!(
                                "{element:?} is appended to key {key:?} twice (lines {} and {}); \
                                 the list-append check needs unique appended values",
                                first.line.min(txn.line),
                                first.line.max(txn.line)
                            ),
                        });
                    }
                    seen_later.push(key);
                }
                Mop::Read { value, .. } => {
                    if txn.status == Status::Ok {
                        state.reads.push(Read {
                            txn: index as u32,
                            value: value.as_deref().unwrap_or(""),
                            prefix_len: None,
                        });
                    }
                }
                Mop::Write { .. } => {
                    return Err(HistoryError {
                        line: txn.line,
                        message: format!(
                            "a write to key {key:?}: the list-append check takes appends and \
                             reads only (register histories: --model linearizable)"
                        ),
                    })
                }
            }
        }
    }
    result.keys = keys.len();
    // Reads were pushed back to front within a transaction; order does not matter below.
    let mut edges: Vec<(u32, Edge)> = Vec::new();
    for (key_id, state) in keys.iter_mut().enumerate() {
        key_edges(
            txns,
            key_id as u32,
            state,
            delimiter,
            &mut edges,
            &mut result,
        );
    }
    realtime_edges(txns, &mut edges);
    result.edges = edges.len();
    let graph = Graph::new(txns.len(), edges);
    for anomaly in cycles(&graph, &keys) {
        result.add(anomaly);
    }
    result.anomalies.sort_by_key(|a| rank(a.name()));
    Ok(result)
}

/// Worst first: the order anomalies are reported in.
fn rank(name: &str) -> usize {
    const ORDER: [&str; 14] = [
        "G0",
        "G1a",
        "G1b",
        "G1c",
        "G-single",
        "G2",
        "G0-realtime",
        "G1c-realtime",
        "G-single-realtime",
        "G2-realtime",
        "lost append",
        "non-prefix read",
        "duplicated element",
        "phantom element",
    ];
    ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len())
}

fn delimiter(txns: &[Txn]) -> Result<char, HistoryError> {
    let mut delimiter = None;
    for txn in txns {
        for mop in &txn.mops {
            let Mop::Append { value, key } = mop else {
                continue;
            };
            let error = |why: String| HistoryError {
                line: txn.line,
                message: format!(
                    "appended value {value:?} (key {key:?}) {why}: the list-append check needs \
                     every appended value to be one element followed by one delimiter, e.g. \
                     \"t17;\""
                ),
            };
            let Some(last) = value.chars().last() else {
                return Err(error("is empty".into()));
            };
            if last.is_alphanumeric() {
                return Err(error(format!("ends with {last:?}, not a delimiter")));
            }
            let d = *delimiter.get_or_insert(last);
            if last != d {
                return Err(error(format!("does not end with {d:?} as the others do")));
            }
            if value.len() == d.len_utf8() || value[..value.len() - d.len_utf8()].contains(d) {
                return Err(error(format!("is not one non-empty element and {d:?}")));
            }
        }
    }
    Ok(delimiter.unwrap_or(txn::ELLE_DELIMITER))
}

/// Splits a list value into elements (a trailing piece without delimiter is an element too).
fn elements(value: &str, delimiter: char) -> impl Iterator<Item = &str> {
    value.split_terminator(delimiter)
}

/// The version order of one key, its element anomalies and its ww, wr and rw edges.
fn key_edges<'a>(
    txns: &[Txn],
    key_id: u32,
    state: &mut KeyState<'a>,
    delimiter: char,
    edges: &mut Vec<(u32, Edge)>,
    result: &mut ListAppendResult,
) {
    let key = state.name;
    let Some(longest_at) = (0..state.reads.len()).max_by_key(|&i| state.reads[i].value.len())
    else {
        lost_appends(txns, state, &HashMap::new(), 0, result);
        return;
    };
    let longest = state.reads[longest_at].value;
    let longest_txn = state.reads[longest_at].txn as usize;
    // The order: element, writer (None: phantom), and the byte offset just past it.
    let mut order: Vec<(&str, Option<Writer>)> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    let mut first_position: HashMap<&str, usize> = HashMap::new();
    // First position of each element-level anomaly on the longest read.
    let (mut first_dup, mut first_phantom, mut first_aborted) = (None, None, None);
    let mut offset = 0;
    for element in elements(longest, delimiter) {
        offset = (offset + element.len() + delimiter.len_utf8()).min(longest.len());
        let at = order.len();
        let writer = state.writers.get(element).copied();
        if *first_position.entry(element).or_insert(at) != at {
            first_dup.get_or_insert(at);
        }
        match writer {
            None => {
                first_phantom.get_or_insert(at);
            }
            Some(w) if txns[w.txn as usize].status == Status::Fail => {
                first_aborted.get_or_insert(at);
            }
            _ => {}
        }
        order.push((element, writer));
        ends.push(offset);
    }
    let in_graph = |w: &Writer| txns[w.txn as usize].status != Status::Fail;
    // ww: consecutive distinct elements' writers.
    let mut previous: Option<Writer> = None;
    for (at, (element, writer)) in order.iter().enumerate() {
        if first_position[element] != at {
            continue;
        }
        if let (Some(p), Some(w)) = (previous, writer) {
            if p.txn != w.txn && in_graph(&p) && in_graph(w) {
                edges.push((
                    p.txn,
                    Edge {
                        to: w.txn,
                        dep: Dep::Ww,
                        key: key_id,
                    },
                ));
            }
        }
        if writer.is_some() {
            previous = *writer;
        }
    }
    // The writer of the next new element at or after position `from`.
    let next_writer = |from: usize| -> Option<Writer> {
        (from..order.len())
            .find(|&at| first_position[order[at].0] == at)
            .and_then(|at| order[at].1)
    };
    let mut reads = std::mem::take(&mut state.reads);
    let mut non_prefix = 0;
    for read in reads.iter_mut() {
        let reader = read.txn;
        // Elements the read saw, and the position its last one has in the order.
        let (seen, last_at) = if longest.starts_with(read.value)
            && (read.value.is_empty() || ends.binary_search(&read.value.len()).is_ok())
        {
            let seen = if read.value.is_empty() {
                0
            } else {
                ends.binary_search(&read.value.len()).expect("checked") + 1
            };
            read.prefix_len = Some(seen);
            let flag = |first: Option<usize>| first.filter(|&at| at < seen);
            if let Some(at) = flag(first_dup) {
                result.add(Anomaly::DuplicatedElement {
                    read: reader as usize,
                    key: key.into(),
                    element: order[at].0.into(),
                });
            }
            if let Some(at) = flag(first_phantom) {
                result.add(Anomaly::PhantomElement {
                    read: reader as usize,
                    key: key.into(),
                    element: order[at].0.into(),
                });
            }
            if let Some(at) = flag(first_aborted) {
                result.add(Anomaly::AbortedRead {
                    read: reader as usize,
                    writer: order[at].1.expect("a writer").txn as usize,
                    key: key.into(),
                    element: order[at].0.into(),
                });
            }
            (
                seen,
                seen.checked_sub(1).map(|at| first_position[order[at].0]),
            )
        } else {
            result.add(Anomaly::NonPrefixRead {
                read: reader as usize,
                longest: longest_txn,
                key: key.into(),
            });
            // Judge its elements one by one (rare: only reads already in error).
            let mut once: HashMap<&str, ()> = HashMap::new();
            let mut last = None;
            let mut count = 0;
            for element in elements(read.value, delimiter) {
                count += 1;
                last = Some(element);
                if once.insert(element, ()).is_some() {
                    result.add(Anomaly::DuplicatedElement {
                        read: reader as usize,
                        key: key.into(),
                        element: element.into(),
                    });
                }
                match state.writers.get(element) {
                    None => result.add(Anomaly::PhantomElement {
                        read: reader as usize,
                        key: key.into(),
                        element: element.into(),
                    }),
                    Some(w) if txns[w.txn as usize].status == Status::Fail => {
                        result.add(Anomaly::AbortedRead {
                            read: reader as usize,
                            writer: w.txn as usize,
                            key: key.into(),
                            element: element.into(),
                        })
                    }
                    _ => {}
                }
            }
            // Lost appends: acknowledged before this read began, yet not in it (bounded:
            // every acknowledged append is looked up, for the first few such reads).
            non_prefix += 1;
            if non_prefix <= NON_PREFIX_LOST_CHECKS {
                let call = txns[reader as usize].call;
                let mut lost: Vec<(u32, &str)> = state
                    .writers
                    .iter()
                    .filter(|(element, w)| {
                        let t = &txns[w.txn as usize];
                        t.status == Status::Ok
                            && t.ret.is_some_and(|ret| ret < call)
                            && w.txn != reader
                            && !once.contains_key(*element)
                    })
                    .map(|(element, w)| (w.txn, *element))
                    .collect();
                lost.sort_unstable();
                for (append, element) in lost {
                    result.add(Anomaly::LostAppend {
                        append: append as usize,
                        read: reader as usize,
                        key: key.into(),
                        element: element.into(),
                    });
                }
            }
            (count, last.and_then(|e| first_position.get(e).copied()))
        };
        // wr and G1b: the writer of the last element seen.
        if let Some(at) = last_at {
            if let Some(w) = order[at].1.filter(|w| w.txn != reader && in_graph(w)) {
                edges.push((
                    w.txn,
                    Edge {
                        to: reader,
                        dep: Dep::Wr,
                        key: key_id,
                    },
                ));
                if !w.last_in_txn {
                    result.add(Anomaly::IntermediateRead {
                        read: reader as usize,
                        writer: w.txn as usize,
                        key: key.into(),
                        element: order[at].0.into(),
                    });
                }
            }
        }
        // rw: the writer of the element after the last one seen.
        let next = match last_at {
            Some(at) => next_writer(at + 1),
            None if seen == 0 => next_writer(0),
            None => None,
        };
        if let Some(w) = next.filter(|w| w.txn != reader && in_graph(w)) {
            edges.push((
                reader,
                Edge {
                    to: w.txn,
                    dep: Dep::Rw,
                    key: key_id,
                },
            ));
        }
    }
    state.reads = reads;
    lost_appends(txns, state, &first_position, order.len(), result);
}

/// Acknowledged appends missing from a prefix read that began after they completed (reads
/// that are not prefixes were looked up element by element already). Reads sorted by
/// invocation with the suffix minimum of their length answer each append in O(log n).
fn lost_appends(
    txns: &[Txn],
    state: &KeyState,
    position: &HashMap<&str, usize>,
    order_len: usize,
    result: &mut ListAppendResult,
) {
    let mut reads: Vec<(u64, usize, u32)> = state
        .reads
        .iter()
        .filter_map(|r| {
            r.prefix_len
                .map(|len| (txns[r.txn as usize].call, len, r.txn))
        })
        .collect();
    if reads.is_empty() {
        return;
    }
    reads.sort_unstable();
    // shortest[i]: the shortest read among reads[i..] (length, txn).
    let mut shortest = vec![(usize::MAX, 0u32); reads.len() + 1];
    for i in (0..reads.len()).rev() {
        shortest[i] = shortest[i + 1].min((reads[i].1, reads[i].2));
    }
    let mut lost: Vec<(u32, u32, &str)> = Vec::new();
    for (element, writer) in &state.writers {
        let txn = &txns[writer.txn as usize];
        let (Status::Ok, Some(ret)) = (txn.status, txn.ret) else {
            continue;
        };
        let at = position
            .get(element)
            .copied()
            .unwrap_or(order_len.max(1) + 1);
        let after = reads.partition_point(|r| r.0 <= ret);
        let (len, read) = shortest[after];
        if len != usize::MAX && len <= at && read != writer.txn {
            lost.push((writer.txn, read, element));
        }
    }
    lost.sort_unstable();
    for (append, read, element) in lost {
        result.add(Anomaly::LostAppend {
            append: append as usize,
            read: read as usize,
            key: state.name.into(),
            element: element.into(),
        });
    }
}

/// Real-time edges to the frontier: each operation gets an edge from every completed
/// operation that no other completed operation followed before it began. Their transitive
/// closure is the whole real-time order, and there are about (concurrency x operations).
fn realtime_edges(txns: &[Txn], edges: &mut Vec<(u32, Edge)>) {
    // (time, completion?, txn): invocations sort before completions at the same instant,
    // as an operation completing when another begins does not precede it.
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(txns.len() * 2);
    for (i, txn) in txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        events.push((txn.call, false, i as u32));
        if let (Status::Ok, Some(ret)) = (txn.status, txn.ret) {
            events.push((ret, true, i as u32));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut preceded: HashMap<u32, Vec<u32>> = HashMap::new();
    for (_, completion, txn) in events {
        if completion {
            if let Some(before) = preceded.remove(&txn) {
                frontier.retain(|f| !before.contains(f));
            }
            frontier.push(txn);
        } else {
            for &f in &frontier {
                edges.push((
                    f,
                    Edge {
                        to: txn,
                        dep: Dep::Rt,
                        key: u32::MAX,
                    },
                ));
            }
            if txns[txn as usize].status == Status::Ok && !frontier.is_empty() {
                preceded.insert(txn, frontier.clone());
            }
        }
    }
}

/// Adjacency in compressed rows.
struct Graph {
    start: Vec<usize>,
    edges: Vec<Edge>,
}

impl Graph {
    fn new(nodes: usize, mut list: Vec<(u32, Edge)>) -> Graph {
        list.sort_by_key(|(from, e)| (*from, e.dep, e.to));
        let mut start = vec![0; nodes + 1];
        for (from, _) in &list {
            start[*from as usize + 1] += 1;
        }
        for i in 0..nodes {
            start[i + 1] += start[i];
        }
        Graph {
            start,
            edges: list.into_iter().map(|(_, e)| e).collect(),
        }
    }

    fn nodes(&self) -> usize {
        self.start.len() - 1
    }

    fn out(&self, node: u32) -> &[Edge] {
        &self.edges[self.start[node as usize]..self.start[node as usize + 1]]
    }
}

/// Tarjan's algorithm (iterative), over `nodes` with the edges whose kind is in `mask` and
/// whose target `member` accepts; returns the components of two or more nodes.
struct Tarjan {
    index: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
}

const UNSEEN: u32 = u32::MAX;

impl Tarjan {
    fn new(nodes: usize) -> Tarjan {
        Tarjan {
            index: vec![UNSEEN; nodes],
            low: vec![0; nodes],
            on_stack: vec![false; nodes],
        }
    }

    fn components(
        &mut self,
        graph: &Graph,
        nodes: &[u32],
        mask: u8,
        member: &dyn Fn(u32) -> bool,
    ) -> Vec<Vec<u32>> {
        let mut found = Vec::new();
        let mut next = 0u32;
        let mut stack: Vec<u32> = Vec::new();
        let mut calls: Vec<(u32, usize)> = Vec::new();
        for &root in nodes {
            if self.index[root as usize] != UNSEEN {
                continue;
            }
            calls.push((root, 0));
            self.index[root as usize] = next;
            self.low[root as usize] = next;
            next += 1;
            stack.push(root);
            self.on_stack[root as usize] = true;
            while let Some(&mut (node, ref mut at)) = calls.last_mut() {
                let out = graph.out(node);
                if let Some(edge) = out.get(*at) {
                    *at += 1;
                    let to = edge.to;
                    if edge.dep.bit() & mask == 0 || !member(to) {
                        continue;
                    }
                    if self.index[to as usize] == UNSEEN {
                        self.index[to as usize] = next;
                        self.low[to as usize] = next;
                        next += 1;
                        stack.push(to);
                        self.on_stack[to as usize] = true;
                        calls.push((to, 0));
                    } else if self.on_stack[to as usize] {
                        self.low[node as usize] =
                            self.low[node as usize].min(self.index[to as usize]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    self.low[parent as usize] =
                        self.low[parent as usize].min(self.low[node as usize]);
                }
                if self.low[node as usize] == self.index[node as usize] {
                    let mut component = Vec::new();
                    loop {
                        let top = stack.pop().expect("on the stack");
                        self.on_stack[top as usize] = false;
                        component.push(top);
                        if top == node {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        found.push(component);
                    }
                }
            }
        }
        for &n in nodes {
            self.index[n as usize] = UNSEEN;
        }
        found
    }
}

const NO_RW: u8 = 1 << Dep::Ww as u8 | 1 << Dep::Wr as u8;
const ALL: u8 = NO_RW | 1 << Dep::Rw as u8 | 1 << Dep::Rt as u8;

/// One cycle per strongly connected component, of the worst kind found in it.
fn cycles(graph: &Graph, keys: &[KeyState]) -> Vec<Anomaly> {
    let mut tarjan = Tarjan::new(graph.nodes());
    let all: Vec<u32> = (0..graph.nodes() as u32).collect();
    let components = tarjan.components(graph, &all, ALL, &|_| true);
    let mut member = vec![false; graph.nodes()];
    let mut found = Vec::new();
    for component in components {
        for &n in &component {
            member[n as usize] = true;
        }
        let within = |n: u32| member[n as usize];
        let ww = Dep::Ww.bit();
        let rt = Dep::Rt.bit();
        let searches: [(u8, bool); 8] = [
            (ww, false),
            (NO_RW, false),
            (NO_RW, true),
            (NO_RW | Dep::Rw.bit(), false),
            (ww | rt, false),
            (NO_RW | rt, false),
            (NO_RW | rt, true),
            (ALL, false),
        ];
        for (mask, single_rw) in searches {
            let cycle = if single_rw {
                single_rw_cycle(graph, &component, mask, &within)
            } else {
                tarjan
                    .components(graph, &component, mask, &within)
                    .first()
                    .and_then(|sub| {
                        let inner: std::collections::HashSet<u32> = sub.iter().copied().collect();
                        shortest_path(graph, sub[0], sub[0], mask, &|n| inner.contains(&n))
                    })
            };
            if let Some(path) = cycle {
                found.push(cycle_anomaly(graph, &path, keys));
                break;
            }
        }
        for &n in &component {
            member[n as usize] = false;
        }
    }
    found
}

/// A cycle with exactly one rw edge: an rw edge `u → v` and a path `v → u` over `mask`.
fn single_rw_cycle(
    graph: &Graph,
    component: &[u32],
    mask: u8,
    within: &dyn Fn(u32) -> bool,
) -> Option<Vec<(u32, usize)>> {
    let mut tries = 0;
    for &u in component {
        for (offset, edge) in graph.out(u).iter().enumerate() {
            if edge.dep != Dep::Rw || !within(edge.to) {
                continue;
            }
            tries += 1;
            if tries > SINGLE_RW_TRIES {
                return None;
            }
            if let Some(mut path) = shortest_path(graph, edge.to, u, mask, within) {
                path.insert(0, (u, graph.start[u as usize] + offset));
                return Some(path);
            }
        }
    }
    None
}

/// Breadth-first: the fewest edges over `mask` from `from` to `to` (a cycle when they are
/// the same node), as (node, edge index) steps.
fn shortest_path(
    graph: &Graph,
    from: u32,
    to: u32,
    mask: u8,
    within: &dyn Fn(u32) -> bool,
) -> Option<Vec<(u32, usize)>> {
    let mut parent: HashMap<u32, (u32, usize)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        let base = graph.start[node as usize];
        for (offset, edge) in graph.out(node).iter().enumerate() {
            if edge.dep.bit() & mask == 0 || !within(edge.to) {
                continue;
            }
            if edge.to == to {
                let mut path = vec![(node, base + offset)];
                let mut at = node;
                while at != from {
                    let step = parent[&at];
                    path.push(step);
                    at = step.0;
                }
                path.reverse();
                return Some(path);
            }
            if edge.to != from && !parent.contains_key(&edge.to) {
                parent.insert(edge.to, (node, base + offset));
                queue.push_back(edge.to);
            }
        }
    }
    None
}

fn cycle_anomaly(graph: &Graph, path: &[(u32, usize)], keys: &[KeyState]) -> Anomaly {
    let steps: Vec<Step> = path
        .iter()
        .map(|&(from, edge)| {
            let edge = &graph.edges[edge];
            Step {
                from: from as usize,
                dep: edge.dep,
                key: keys.get(edge.key as usize).map(|k| k.name.to_string()),
            }
        })
        .collect();
    let count = |dep| steps.iter().filter(|s| s.dep == dep).count();
    let base = match (count(Dep::Rw), count(Dep::Wr)) {
        (0, 0) => "G0",
        (0, _) => "G1c",
        (1, _) => "G-single",
        _ => "G2",
    };
    let name = if count(Dep::Rt) > 0 {
        format!("{base}-realtime")
    } else {
        base.to_string()
    };
    Anomaly::Cycle { name, steps }
}

/// A short description of a transaction: `#id process P: append l0 t5; read l0 [12 elements …t4 t5]`.
pub fn describe(txn: &Txn) -> String {
    let mut text = format!("#{} process {}", txn.id, txn.process);
    if txn.status != Status::Ok {
        text += if txn.status == Status::Fail {
            " (failed)"
        } else {
            " (unknown outcome)"
        };
    }
    text += ":";
    for (i, mop) in txn.mops.iter().enumerate() {
        text += if i == 0 { " " } else { "; " };
        match mop {
            Mop::Append { key, value } => {
                let _ = write!(text, "append {key} {value}");
            }
            Mop::Write { key, value } => {
                let _ = write!(text, "write {key} {value}");
            }
            Mop::Read { key, value } => {
                let value = value.as_deref().unwrap_or("");
                if value.len() <= 40 {
                    let _ = write!(text, "read {key} {value:?}");
                } else {
                    let tail_start = value
                        .char_indices()
                        .map(|(i, _)| i)
                        .find(|&i| i >= value.len() - 24)
                        .unwrap_or(0);
                    let _ = write!(
                        text,
                        "read {key} ({} bytes) \"…{}\"",
                        value.len(),
                        &value[tail_start..]
                    );
                }
            }
        }
    }
    text
}

/// One anomaly in words.
pub fn explain(anomaly: &Anomaly, txns: &[Txn]) -> String {
    let d = |i: &usize| describe(&txns[*i]);
    match anomaly {
        Anomaly::Cycle { name, steps } => {
            let mut text = format!("{name}: ");
            for step in steps {
                let key = step
                    .key
                    .as_deref()
                    .map(|k| format!(" {k}"))
                    .unwrap_or_default();
                let _ = write!(text, "{} -{}{key}-> ", d(&step.from), step.dep.name());
            }
            let _ = write!(text, "#{}", txns[steps[0].from].id);
            text
        }
        Anomaly::AbortedRead {
            read,
            writer,
            key,
            element,
        } => format!(
            "G1a (aborted read): {} saw {element} on {key}, appended by {}, which failed",
            d(read),
            d(writer)
        ),
        Anomaly::IntermediateRead {
            read,
            writer,
            key,
            element,
        } => format!(
            "G1b (intermediate read): {} ended at {element} on {key}, which {} followed with \
             another append",
            d(read),
            d(writer)
        ),
        Anomaly::LostAppend {
            append,
            read,
            key,
            element,
        } => format!(
            "lost append: {} was acknowledged before {} began, which does not contain {element} \
             (key {key})",
            d(append),
            d(read)
        ),
        Anomaly::DuplicatedElement { read, key, element } => {
            format!(
                "duplicated element: {} lists {element} on {key} twice",
                d(read)
            )
        }
        Anomaly::PhantomElement { read, key, element } => format!(
            "phantom element: {} lists {element} on {key}, which no operation appended to {key}",
            d(read)
        ),
        Anomaly::NonPrefixRead { read, longest, key } => format!(
            "non-prefix read: {} is not a prefix of the longest read of {key}, {}: the reads \
             imply incompatible orders",
            d(read),
            d(longest)
        ),
    }
}

/// The checker's answer as a [`Report`]: the headline names every anomaly class found with
/// its count, the details explain a few of each, the witness is the worst one's operations.
pub fn report_txns(txns: &[Txn]) -> Result<Report, HistoryError> {
    let found = check_txns(txns)?;
    let validity = found.validity();
    let summary = format!(
        "{} keys, {} operations ({} ok), {} dependency edges",
        found.keys,
        txns.len(),
        found.ok,
        found.edges
    );
    let headline = match validity {
        Validity::Valid => format!("strict serializable (list-append): {summary}"),
        Validity::Unknown => "unknown: no operation completed".into(),
        Validity::Invalid => {
            let mut classes: Vec<(&String, &usize)> = found.counts.iter().collect();
            classes.sort_by_key(|(name, _)| rank(name));
            format!(
                "not strict serializable (list-append): {}",
                classes
                    .iter()
                    .map(|(name, n)| format!("{name} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    let mut details: Vec<String> = found.anomalies.iter().map(|a| explain(a, txns)).collect();
    if validity == Validity::Invalid {
        details.push(summary);
    }
    let first = found.anomalies.first();
    Ok(Report {
        model: Model::ListAppend,
        validity,
        headline,
        details,
        witness: first
            .map(|a| a.operations().iter().map(|&i| txns[i].id).collect())
            .unwrap_or_default(),
        key: first.and_then(|a| match a {
            Anomaly::Cycle { steps, .. } => steps.iter().find_map(|s| s.key.clone()),
            Anomaly::AbortedRead { key, .. }
            | Anomaly::IntermediateRead { key, .. }
            | Anomaly::LostAppend { key, .. }
            | Anomaly::DuplicatedElement { key, .. }
            | Anomaly::PhantomElement { key, .. }
            | Anomaly::NonPrefixRead { key, .. } => Some(key.clone()),
        }),
    })
}

/// [`report_txns`] over paired single operations (failed appends are not known here; use
/// [`report_history`] to find aborted reads).
pub fn report(operations: &[Operation]) -> Result<Report, HistoryError> {
    report_txns(&txn::from_operations(operations)?)
}

/// [`report_txns`] over a parsed history, failed appends included.
pub fn report_history(history: &History) -> Result<Report, HistoryError> {
    report_txns(&txn::from_history(history)?)
}

/// Whether a history's operations make a list-append history: some append or transaction,
/// and nothing but appends, reads and transactions.
pub fn is_list_append(operations: &[Operation]) -> bool {
    use crate::history::OpValue;
    operations
        .iter()
        .any(|o| matches!(o.value, OpValue::Append(_) | OpValue::Txn(_)))
        && operations.iter().all(|o| {
            matches!(
                o.value,
                OpValue::Append(_) | OpValue::Get(_) | OpValue::Txn(_)
            )
        })
}

/// A seeded list-append history on `keys` keys that is valid by construction: `processes`
/// threads each run one operation at a time (60% appends of unique `t<n>;` tokens, 40%
/// reads); every operation takes effect at a random instant inside its interval.
pub fn generate(operations: usize, keys: usize, processes: usize, seed: u64) -> Vec<crate::Event> {
    use crate::history::{Event, EventKind, OpValue};
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    };
    // (call, at, ret, process, key, append token or read)
    let mut clock = vec![0u64; processes];
    let mut planned = Vec::with_capacity(operations);
    for n in 0..operations {
        let thread = (0..processes).min_by_key(|t| clock[*t]).expect("a thread");
        let call = clock[thread] + 1 + next(1_000);
        let ret = call + 2 + next(3_000);
        let at = call + 1 + next(ret - call - 1);
        let key = next(keys as u64) as usize;
        let append = next(10) < 6;
        planned.push((call, at, ret, thread as u64, key, append.then_some(n)));
        clock[thread] = ret;
    }
    let mut by_effect: Vec<usize> = (0..planned.len()).collect();
    by_effect.sort_by_key(|&i| (planned[i].1, i));
    let mut lists = vec![String::new(); keys];
    let mut read = vec![None; planned.len()];
    for i in by_effect {
        let (_, _, _, _, key, append) = planned[i];
        match append {
            Some(n) => {
                let _ = write!(lists[key], "t{n};");
            }
            None => read[i] = Some(lists[key].clone()),
        }
    }
    let mut stamped: Vec<(u64, bool, usize, Event)> = Vec::with_capacity(operations * 2);
    for (i, &(call, _, ret, process, key, append)) in planned.iter().enumerate() {
        let (invoke, done) = match append {
            Some(n) => {
                let v = OpValue::Append(format!("t{n};"));
                (v.clone(), v)
            }
            None => {
                let value = read[i].take().filter(|v| !v.is_empty());
                (OpValue::Get(None), OpValue::Get(value))
            }
        };
        let event = |kind, value, time| Event {
            process,
            kind,
            key: Some(format!("l{key}")),
            value,
            time,
            node: None,
            error: None,
            mode: Default::default(),
        };
        stamped.push((call, false, i, event(EventKind::Invoke, invoke, call)));
        stamped.push((ret, true, i, event(EventKind::Ok, done, ret)));
    }
    stamped.sort_by_key(|(time, completion, i, _)| (*time, *completion, *i));
    stamped.into_iter().map(|(.., e)| e).collect()
}
