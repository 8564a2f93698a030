//! Histories: what clients saw, one event per line.
//!
//! ## The JSON-lines format
//!
//! Every line is one JSON object:
//!
//! ```json
//! {"process":3,"type":"invoke","f":"cas","key":"k1","value":["a","b"],"time":1250000,"node":2}
//! {"process":3,"type":"ok","f":"cas","key":"k1","value":["a","b"],"time":1900000,"node":2}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `process` | the logical client process; it has at most one operation outstanding |
//! | `type` | `invoke`, then one of `ok` (it happened), `fail` (it did not happen), `info` (unknown) |
//! | `f` | `get`, `put`, `delete`, `append`, `cas` (Jepsen's `read`/`write` are accepted for `get`/`put`), `put_ttl`, `put_ttl_nx`, `delete_if`, `incr`, `add`, `remove`, `txn` |
//! | `key` | the key (optional: a history without keys is one register) |
//! | `value` | `get`: `null` on invoke, the value read (or `null` for absent) on `ok`, or an array of sibling values for a multi-value register (`[]` absent); `put`/`append`: the string; `delete`: `null`; `cas`: `[expected or null, new]`; `put_ttl` and `put_ttl_nx` (only if absent: a lock with a lease): `[value, ttl_ms, clock_error_ms]`; `delete_if` (compare-and-delete): the expected value; `txn` (no `key`): the micro-ops, `[["append","k1","7,"],["r","k2","3,5,"]]`, reads `null` on invoke |
//! | `time` | nanoseconds on one clock shared by all clients (optional: without it, line order is time order) |
//! | `node` | optional: the node that answered (convergence takes each node's last read as its final state) |
//! | `mode` | optional: how a read was served, when not linearizable: `sync`, `local`, `any-replica` or `final` (see [`Mode`]) |
//! | `error` | optional: why a `fail` or `info` happened |
//!
//! A history may start with a header line naming the promise the system that recorded it
//! makes, `{"promise":"quorum"}` (see [`crate::promise`]); `quorate check` then judges it by
//! that promise unless told otherwise.
//!
//! Values are strings; integers are accepted and read as their decimal text. Unknown fields
//! are rejected, so a typo is an error rather than silently ignored; the format grows by
//! optional fields (as `node` and sibling arrays did), so older histories stay valid.
//!
//! Jepsen/Knossos EDN histories are read too ([`crate::edn`]); [`parse`] picks the format
//! ([`Format::Auto`] looks at the first form).
//!
//! ## Sessions
//!
//! A process is a session: its operations, in invocation order, are the session order the
//! causal, session and sequential checkers use. A client that continues after an `info` must
//! do so as a new process (Jepsen's rule), because the `info` operation may take effect after
//! anything it does next.
//!
//! ## Semantics (Jepsen's)
//!
//! - `fail`: the operation did not take effect; it is dropped before checking. A `cas` whose
//!   comparison did not hold is recorded as `fail`.
//! - `info` (or an invocation that never completed): the operation may have taken effect at any
//!   point after its invocation, or never. An `info` read tells nothing and is dropped. The
//!   process never issues again (pairing rejects a history where it does).
//! - A read's value comes from its completion.

use crate::txn::Mop;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt;

/// What happened to an operation at this event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// An operation and its value, as in one event.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum OpValue {
    /// A read; `None` is "absent" (or, on an invocation, "not known yet").
    Get(Option<String>),
    /// A read of a multi-value register: the sibling values it returned, in no particular
    /// order (empty: absent). Written as a JSON array on a `get` completion.
    Siblings(Vec<String>),
    Put(String),
    Delete,
    Append(String),
    Cas {
        expected: Option<String>,
        new: String,
    },
    /// Add a signed amount to a counter (a CRDT counter's update; its reads are `get`s that
    /// return the decimal value).
    Incr(i64),
    /// Add an element to a set (an OR-Set's update; its reads are `get`s returning an array).
    SetAdd(String),
    /// Remove an element from a set.
    SetRemove(String),
    /// `put` of a value that expires `ttl_ms` after the write takes effect, by a system whose
    /// clocks are within `clock_error_ms` of each other (see [`crate::expiry`]). JSON:
    /// `[value, ttl_ms, clock_error_ms]`.
    PutTtl {
        value: String,
        ttl_ms: u64,
        clock_error_ms: u64,
    },
    /// The expiry of a `put_ttl` of this value: the key becomes absent if it still holds it.
    /// Never recorded: the checker adds one per `put_ttl` ([`crate::expiry`]).
    ExpireIf(String),
    /// `put_ttl` only if the key is absent (Redis's `SET k v NX PX ms`, a lock acquired with a
    /// lease): a CAS from absent whose value then expires like a `put_ttl`'s. Recorded `ok`
    /// when it set the value, `fail` when the key was held. JSON as `put_ttl`'s.
    PutTtlIfAbsent {
        value: String,
        ttl_ms: u64,
        clock_error_ms: u64,
    },
    /// Delete the key if it holds this value (compare-and-delete, how a lock holder releases
    /// its own lock): `ok` when it deleted, `fail` when the key held something else.
    DeleteIf(String),
    /// A transaction of micro-operations on several keys, applied as one step (Redis's
    /// `MULTI`/`EXEC`, `MGET`): appends and reads of lists, checked by the list-append
    /// checker ([`crate::list_append`]) for strict serializability. Its event has no `key`.
    /// JSON: an array of `["append", key, element]` and `["r", key, list or null]`; an
    /// invocation's reads are `null`.
    Txn(Vec<Mop>),
    /// `put` of a value attached to lease `lease` (`SET k v LEASE id`): the key then goes
    /// when the lease ends ([`crate::lease`]). `ok` when written, `fail` when the lease was
    /// gone. JSON: `[value, lease]`. `expires` is the window the checker derives from the
    /// lease's events, never recorded.
    PutLease {
        value: String,
        lease: u64,
        expires: Option<crate::lease::Window>,
    },
    /// An operation on a lease itself ([`crate::lease`]); its event has no `key`.
    Lease(crate::lease::LeaseOp),
}

impl OpValue {
    pub fn f(&self) -> &'static str {
        match self {
            OpValue::Get(_) | OpValue::Siblings(_) => "get",
            OpValue::Put(_) => "put",
            OpValue::Delete => "delete",
            OpValue::Append(_) => "append",
            OpValue::Cas { .. } => "cas",
            OpValue::Incr(_) => "incr",
            OpValue::SetAdd(_) => "add",
            OpValue::SetRemove(_) => "remove",
            OpValue::PutTtl { .. } => "put_ttl",
            OpValue::ExpireIf(_) => "expire",
            OpValue::PutTtlIfAbsent { .. } => "put_ttl_nx",
            OpValue::DeleteIf(_) => "delete_if",
            OpValue::Txn(_) => "txn",
            OpValue::PutLease { .. } => "put_lease",
            OpValue::Lease(op) => op.f(),
        }
    }

    /// The value as the JSON-lines format writes it.
    pub fn to_json(&self) -> Json {
        match self {
            OpValue::Get(value) => value.clone().map_or(Json::Null, Json::String),
            OpValue::Siblings(values) => {
                Json::Array(values.iter().cloned().map(Json::String).collect())
            }
            OpValue::Incr(amount) => Json::from(*amount),
            OpValue::SetAdd(element) | OpValue::SetRemove(element) => Json::String(element.clone()),
            OpValue::Put(value) | OpValue::Append(value) => Json::String(value.clone()),
            OpValue::Delete => Json::Null,
            OpValue::PutTtl {
                value,
                ttl_ms,
                clock_error_ms,
            }
            | OpValue::PutTtlIfAbsent {
                value,
                ttl_ms,
                clock_error_ms,
            } => Json::Array(vec![
                Json::String(value.clone()),
                Json::from(*ttl_ms),
                Json::from(*clock_error_ms),
            ]),
            OpValue::ExpireIf(value) | OpValue::DeleteIf(value) => Json::String(value.clone()),
            OpValue::Cas { expected, new } => Json::Array(vec![
                expected.clone().map_or(Json::Null, Json::String),
                Json::String(new.clone()),
            ]),
            OpValue::Txn(mops) => Json::Array(mops.iter().map(mop_json).collect()),
            OpValue::PutLease { value, lease, .. } => {
                Json::Array(vec![Json::String(value.clone()), Json::from(*lease)])
            }
            OpValue::Lease(op) => op.to_json(),
        }
    }

    fn from_json(f: &str, value: &Json) -> Result<OpValue, String> {
        let text = |v: &Json| -> Result<String, String> {
            match v {
                Json::String(s) => Ok(s.clone()),
                Json::Number(n) => Ok(n.to_string()),
                other => Err(format!("expected a string or a number, found {other}")),
            }
        };
        let optional = |v: &Json| -> Result<Option<String>, String> {
            if v.is_null() {
                Ok(None)
            } else {
                text(v).map(Some)
            }
        };
        match f {
            "get" | "read" => match value {
                Json::Array(siblings) => Ok(OpValue::Siblings(
                    siblings.iter().map(text).collect::<Result<_, _>>()?,
                )),
                _ => Ok(OpValue::Get(optional(value)?)),
            },
            "incr" => value
                .as_i64()
                .map(OpValue::Incr)
                .ok_or_else(|| format!("incr takes an integer, found {value}")),
            "add" => Ok(OpValue::SetAdd(text(value)?)),
            "remove" => Ok(OpValue::SetRemove(text(value)?)),
            "put" | "write" => Ok(OpValue::Put(text(value)?)),
            "delete" => Ok(OpValue::Delete),
            "put_ttl" | "put_ttl_nx" => match value.as_array().map(Vec::as_slice) {
                Some([v, Json::Number(ttl), Json::Number(error)]) => {
                    let (value, ttl_ms, clock_error_ms) = (
                        text(v)?,
                        ttl.as_u64().ok_or(format!("{f}'s ttl_ms is not a count"))?,
                        error
                            .as_u64()
                            .ok_or(format!("{f}'s clock error is not a count"))?,
                    );
                    Ok(match f {
                        "put_ttl" => OpValue::PutTtl {
                            value,
                            ttl_ms,
                            clock_error_ms,
                        },
                        _ => OpValue::PutTtlIfAbsent {
                            value,
                            ttl_ms,
                            clock_error_ms,
                        },
                    })
                }
                _ => Err(format!(
                    "{f} takes [value, ttl_ms, clock_error_ms], found {value}"
                )),
            },
            "delete_if" => Ok(OpValue::DeleteIf(text(value)?)),
            "append" => Ok(OpValue::Append(text(value)?)),
            "cas" => match value.as_array().map(Vec::as_slice) {
                Some([expected, new]) => Ok(OpValue::Cas {
                    expected: optional(expected)?,
                    new: text(new)?,
                }),
                _ => Err(format!("cas takes [expected, new], found {value}")),
            },
            "txn" => match value {
                Json::Array(mops) => mops
                    .iter()
                    .map(mop_from_json)
                    .collect::<Result<_, _>>()
                    .map(OpValue::Txn),
                _ => Err(format!(
                    "txn takes an array of micro-ops such as [[\"append\",\"k\",\"1,\"],[\"r\",\"k\",null]], found {value}"
                )),
            },
            "put_lease" => match value.as_array().map(Vec::as_slice) {
                Some([v, Json::Number(lease)]) => Ok(OpValue::PutLease {
                    value: text(v)?,
                    lease: lease
                        .as_u64()
                        .ok_or(format!("put_lease's lease is not an id: {lease}"))?,
                    expires: None,
                }),
                _ => Err(format!("put_lease takes [value, lease], found {value}")),
            },
            "lease_grant" | "lease_keepalive" | "lease_revoke" => {
                crate::lease::LeaseOp::from_json(f, value).map(OpValue::Lease)
            }
            other => Err(format!(
                "unknown f {other:?}: expected get, put, put_ttl, put_ttl_nx, put_lease, delete, delete_if, append, cas, incr, add, remove, txn, lease_grant, lease_keepalive or lease_revoke"
            )),
        }
    }
}

/// A micro-op as a transaction's JSON writes it: `["append", key, element]`, `["r", key,
/// list or null]`, `["w", key, value]`.
fn mop_json(mop: &Mop) -> Json {
    let (f, key, value) = match mop {
        Mop::Append { key, value } => ("append", key, Json::String(value.clone())),
        Mop::Read { key, value } => ("r", key, value.clone().map_or(Json::Null, Json::String)),
        Mop::Write { key, value } => ("w", key, Json::String(value.clone())),
    };
    Json::Array(vec![
        Json::String(f.into()),
        Json::String(key.clone()),
        value,
    ])
}

fn mop_from_json(mop: &Json) -> Result<Mop, String> {
    let parts = mop.as_array().map(Vec::as_slice);
    let Some([Json::String(f), Json::String(key), value]) = parts else {
        return Err(format!(
            "a micro-op is [f, key, value] with f append, r or w, found {mop}"
        ));
    };
    let key = key.clone();
    match (f.as_str(), value) {
        ("append", Json::String(value)) => Ok(Mop::Append {
            key,
            value: value.clone(),
        }),
        ("r", Json::Null) => Ok(Mop::Read { key, value: None }),
        ("r", Json::String(value)) => Ok(Mop::Read {
            key,
            value: Some(value.clone()),
        }),
        ("w", Json::String(value)) => Ok(Mop::Write {
            key,
            value: value.clone(),
        }),
        _ => Err(format!(
            "a micro-op is [\"append\", key, string], [\"r\", key, string or null] or [\"w\", key, string], found {mop}"
        )),
    }
}

/// How a read was served, as the recorder knew it. The default, `linearizable`, is omitted
/// from JSON; writes are always `linearizable`. A promise ([`crate::promise`]) decides what
/// each mode is held to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Through the protocol's ordering (the log, a quorum with write-back, the tail).
    #[default]
    Linearizable,
    /// Catch up with the leader, then read the contacted server's state (ZooKeeper's
    /// `sync` + read).
    Sync,
    /// The contacted server's own state, in the client's session (ZooKeeper's plain read).
    Local,
    /// One replica's state, drawn at random per read: possibly stale by design, measured.
    AnyReplica,
    /// A read of one node's state after the cluster settled without clients (`node` says
    /// which): judged for convergence, not as a client's read.
    Final,
}

impl Mode {
    fn is_linearizable(&self) -> bool {
        *self == Mode::Linearizable
    }
}

/// One line of a history.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Event {
    pub process: u64,
    pub kind: EventKind,
    pub key: Option<String>,
    pub value: OpValue,
    /// Nanoseconds on the clients' shared clock.
    pub time: u64,
    pub node: Option<u64>,
    pub error: Option<String>,
    /// How the operation's read was served (`Linearizable` for writes).
    pub mode: Mode,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    process: u64,
    #[serde(rename = "type")]
    kind: EventKind,
    f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default)]
    value: Json,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Mode::is_linearizable")]
    mode: Mode,
}

/// The optional first line of a JSON-lines history.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    promise: String,
}

/// The header line that names `promise` (without the newline).
pub fn header_line(promise: &str) -> String {
    let header = RawHeader {
        promise: promise.to_string(),
    };
    serde_json::to_string(&header).expect("headers always serialize")
}

impl Event {
    /// The event as one line of JSON (without the newline).
    pub fn to_json_line(&self) -> String {
        let raw = RawEvent {
            process: self.process,
            kind: self.kind,
            f: self.value.f().to_string(),
            key: self.key.clone(),
            value: self.value.to_json(),
            time: Some(self.time),
            node: self.node,
            error: self.error.clone(),
            mode: self.mode,
        };
        serde_json::to_string(&raw).expect("events always serialize")
    }
}

/// A history that cannot be read or makes no sense.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct HistoryError {
    /// 1-based line (or form) number.
    pub line: usize,
    pub message: String,
}

/// Parses a JSON-lines history. Blank lines are skipped.
pub fn parse_jsonl(text: &str) -> Result<Vec<Event>, HistoryError> {
    parse_jsonl_lines(text).map(|history| history.events)
}

/// A parsed history file: its events and the line each came from.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
    /// 1-based line of each event, for errors and explanations.
    pub lines: Vec<usize>,
    /// The promise the header line names, if the history has one.
    pub promise: Option<String>,
}

impl History {
    /// Pairs the events into operations (see [`pair`]), naming file lines in errors.
    pub fn pair(&self) -> Result<Vec<Operation>, HistoryError> {
        pair_lines(&self.events, &self.lines)
    }
}

/// The input formats `quorate check` reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// JSON lines if the first form starts with `{"` or `{}`, EDN otherwise.
    Auto,
    Jsonl,
    Edn,
}

/// Parses a history in `format`.
pub fn parse(text: &str, format: Format) -> Result<History, HistoryError> {
    match format {
        Format::Jsonl => parse_jsonl_lines(text),
        Format::Edn => crate::edn::parse_edn(text).map(|(events, lines)| History {
            events,
            lines,
            promise: None,
        }),
        Format::Auto => parse(text, detect(text)),
    }
}

/// Guesses the format: JSON objects start with `{"`; EDN starts with `[`, `(`, `;` or `{:`.
pub fn detect(text: &str) -> Format {
    let start = text.trim_start();
    let json = start.starts_with('{') && start[1..].trim_start().starts_with(['"', '}']);
    if json {
        Format::Jsonl
    } else {
        Format::Edn
    }
}

fn parse_jsonl_lines(text: &str) -> Result<History, HistoryError> {
    let mut history = History::default();
    let mut times = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line_no = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        let error = |message: String| HistoryError {
            line: line_no,
            message,
        };
        let first = history.events.is_empty() && history.promise.is_none();
        if first {
            if let Ok(header) = serde_json::from_str::<RawHeader>(line) {
                history.promise = Some(header.promise);
                continue;
            }
        }
        let raw: RawEvent =
            serde_json::from_str(line).map_err(|e| error(format!("not a history event: {e}")))?;
        let value = OpValue::from_json(&raw.f, &raw.value).map_err(error)?;
        times.push((line_no, raw.time));
        history.lines.push(line_no);
        history.events.push(Event {
            process: raw.process,
            kind: raw.kind,
            key: raw.key,
            value,
            time: 0,
            node: raw.node,
            error: raw.error,
            mode: raw.mode,
        });
    }
    assign_times(&mut history.events, &times)?;
    Ok(history)
}

/// Fills in event times: all given, or none (then file order is time order).
pub(crate) fn assign_times(
    events: &mut [Event],
    times: &[(usize, Option<u64>)],
) -> Result<(), HistoryError> {
    let timed = times.iter().filter(|(_, t)| t.is_some()).count();
    if timed != 0 && timed != times.len() {
        let (line, _) = times
            .iter()
            .find(|(_, t)| t.is_none())
            .expect("one is missing");
        return Err(HistoryError {
            line: *line,
            message: "this event has no time but others do; give every event a time or none".into(),
        });
    }
    for (index, (event, (_, time))) in events.iter_mut().zip(times).enumerate() {
        event.time = time.unwrap_or(index as u64);
    }
    Ok(())
}

/// One operation: an invocation paired with its completion.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Operation {
    /// Position in the list of operations the pairing produced.
    pub id: usize,
    pub process: u64,
    pub key: Option<String>,
    /// The operation, with a read's value taken from its completion.
    pub value: OpValue,
    /// Invocation time.
    pub call: u64,
    /// Completion time; `None` when the outcome is unknown (`info`, or never completed).
    pub ret: Option<u64>,
    /// 1-based line of the invocation, for explanations.
    pub line: usize,
    /// The node that answered (from the completion, else the invocation), when recorded.
    pub node: Option<u64>,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("-");
        let value = self.value.to_json();
        let ret = self
            .ret
            .map_or_else(|| "unknown".to_string(), |t| t.to_string());
        write!(
            f,
            "process {} {} {key} {value} [{} .. {ret}] (line {})",
            self.process,
            self.value.f(),
            self.call,
            self.line
        )
    }
}

/// Pairs invocations with completions, dropping `fail`ed operations and `info` reads.
/// Errors name the event's position (1-based), which is its line when every line is one
/// event; [`History::pair`] names file lines.
pub fn pair(events: &[Event]) -> Result<Vec<Operation>, HistoryError> {
    let lines: Vec<usize> = (1..=events.len()).collect();
    pair_lines(events, &lines)
}

/// [`pair`], with the line of every event given.
pub fn pair_lines(events: &[Event], lines: &[usize]) -> Result<Vec<Operation>, HistoryError> {
    assert_eq!(events.len(), lines.len(), "one line per event");
    let mut open: BTreeMap<u64, (usize, &Event)> = BTreeMap::new();
    let mut operations = Vec::new();
    let mut push = |invoke: &Event, line: usize, value: OpValue, ret: Option<u64>, node| {
        let unknown_read = ret.is_none() && value.f() == "get";
        if !unknown_read {
            operations.push(Operation {
                id: operations.len(),
                process: invoke.process,
                key: invoke.key.clone(),
                value,
                call: invoke.time,
                ret,
                line,
                node,
            });
        }
    };
    // Processes that got `info`, and where: Jepsen's processes never issue again after an
    // indeterminate result (the operation may still take effect after anything they did next).
    let mut crashed: BTreeMap<u64, usize> = BTreeMap::new();
    for (event, &line) in events.iter().zip(lines) {
        let error = |message: String| HistoryError { line, message };
        if event.kind == EventKind::Invoke {
            if let Some(info_line) = crashed.get(&event.process) {
                return Err(error(format!(
                    "process {} invokes again after its info on line {info_line}; a process \
                     never issues again after an unknown outcome (continue as a new process)",
                    event.process
                )));
            }
            if let Some((earlier, _)) = open.insert(event.process, (line, event)) {
                return Err(error(format!(
                    "process {} invokes again while its invocation on line {earlier} is open",
                    event.process
                )));
            }
            continue;
        }
        let Some((invoke_line, invoke)) = open.remove(&event.process) else {
            return Err(error(format!(
                "process {} completes an operation it never invoked",
                event.process
            )));
        };
        if invoke.value.f() != event.value.f() || invoke.key != event.key {
            return Err(error(format!(
                "completion ({} {:?}) does not match the invocation on line {invoke_line} ({} {:?})",
                event.value.f(),
                event.key,
                invoke.value.f(),
                invoke.key
            )));
        }
        if event.time < invoke.time {
            return Err(error(format!(
                "completes at {} before its invocation at {}",
                event.time, invoke.time
            )));
        }
        match event.kind {
            EventKind::Ok => {
                let value = match event.value {
                    // What was read comes with the completion.
                    OpValue::Get(_)
                    | OpValue::Siblings(_)
                    | OpValue::Txn(_)
                    | OpValue::Lease(crate::lease::LeaseOp::Grant { .. }) => event.value.clone(),
                    _ => invoke.value.clone(),
                };
                push(
                    invoke,
                    invoke_line,
                    value,
                    Some(event.time),
                    event.node.or(invoke.node),
                );
            }
            EventKind::Fail => {}
            EventKind::Info => {
                crashed.insert(event.process, line);
                push(invoke, invoke_line, invoke.value.clone(), None, invoke.node)
            }
            EventKind::Invoke => unreachable!("handled above"),
        }
    }
    for (line, invoke) in open.into_values() {
        push(invoke, line, invoke.value.clone(), None, invoke.node);
    }
    Ok(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json_lines() {
        let event = Event {
            process: 3,
            kind: EventKind::Ok,
            key: Some("k1".into()),
            value: OpValue::Cas {
                expected: None,
                new: "b".into(),
            },
            time: 1900,
            node: Some(2),
            error: None,
            mode: Mode::Linearizable,
        };
        let line = event.to_json_line();
        assert_eq!(
            line,
            r#"{"process":3,"type":"ok","f":"cas","key":"k1","value":[null,"b"],"time":1900,"node":2}"#
        );
        assert_eq!(parse_jsonl(&line).unwrap(), vec![event]);
    }

    #[test]
    fn siblings_and_crdt_updates_round_trip() {
        let events = [
            OpValue::Siblings(vec!["a".into(), "b".into()]),
            OpValue::Incr(-3),
            OpValue::SetAdd("x".into()),
            OpValue::SetRemove("x".into()),
        ]
        .into_iter()
        .map(|value| Event {
            process: 1,
            kind: EventKind::Ok,
            key: Some("k".into()),
            value,
            time: 5,
            node: None,
            error: None,
            mode: Mode::Linearizable,
        })
        .collect::<Vec<_>>();
        for event in events {
            let line = event.to_json_line();
            assert_eq!(parse_jsonl(&line).unwrap(), vec![event], "{line}");
        }
    }

    #[test]
    fn a_header_names_the_promise_and_modes_round_trip() {
        let mut event = Event {
            process: 1,
            kind: EventKind::Ok,
            key: Some("k".into()),
            value: OpValue::Get(Some("a".into())),
            time: 5,
            node: Some(2),
            error: None,
            mode: Mode::Final,
        };
        let text = format!("{}\n{}\n", header_line("quorum"), event.to_json_line());
        assert!(text.contains(r#""mode":"final""#), "{text}");
        let history = parse(&text, Format::Auto).unwrap();
        assert_eq!(history.promise.as_deref(), Some("quorum"));
        assert_eq!(history.events, vec![event.clone()]);
        assert_eq!(history.lines, vec![2]);
        event.mode = Mode::Linearizable;
        assert!(
            !event.to_json_line().contains("mode"),
            "the default is omitted"
        );
        // Only the first line may be a header.
        let late = format!("{}\n{}\n", event.to_json_line(), header_line("quorum"));
        assert_eq!(parse(&late, Format::Auto).unwrap_err().line, 2);
    }

    #[test]
    fn malformed_lines_are_named() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"get\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"frob\"}\n";
        let err = parse_jsonl(text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown f"), "{err}");
        let err = parse_jsonl("not json").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn pairing_follows_jepsen_semantics() {
        let text = r#"
{"process":0,"type":"invoke","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"ok","f":"read","value":1}
{"process":2,"type":"invoke","f":"cas","value":[2,3]}
{"process":2,"type":"fail","f":"cas","value":[2,3]}
{"process":3,"type":"invoke","f":"write","value":4}
{"process":3,"type":"info","f":"write","value":4}
{"process":4,"type":"invoke","f":"read","value":null}
{"process":4,"type":"info","f":"read","value":null}
{"process":5,"type":"invoke","f":"write","value":5}
"#;
        let ops = pair(&parse_jsonl(text).unwrap()).unwrap();
        let summary: Vec<_> = ops
            .iter()
            .map(|o| (o.process, o.value.clone(), o.ret))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, OpValue::Put("1".into()), Some(2)),
                (1, OpValue::Get(Some("1".into())), Some(3)),
                (3, OpValue::Put("4".into()), None),
                (5, OpValue::Put("5".into()), None),
            ]
        );
    }

    #[test]
    fn impossible_pairings_are_errors() {
        let twice = r#"{"process":0,"type":"invoke","f":"get"}
{"process":0,"type":"invoke","f":"get"}"#;
        assert_eq!(pair(&parse_jsonl(twice).unwrap()).unwrap_err().line, 2);
        let orphan = r#"{"process":0,"type":"ok","f":"get","value":null}"#;
        assert_eq!(pair(&parse_jsonl(orphan).unwrap()).unwrap_err().line, 1);
        let mixed = r#"{"process":0,"type":"invoke","f":"get","time":5}
{"process":0,"type":"ok","f":"get"}"#;
        assert_eq!(parse_jsonl(mixed).unwrap_err().line, 2);
        let after_info = r#"{"process":0,"type":"invoke","f":"put","value":"1"}
{"process":0,"type":"info","f":"put","value":"1"}
{"process":0,"type":"invoke","f":"get"}"#;
        let err = pair(&parse_jsonl(after_info).unwrap()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("after its info on line 2"), "{err}");
    }
}
