//! Transactions of micro-operations, the input of the list-append checker
//! ([`crate::list_append`]).
//!
//! A [`Txn`] is one operation of a history: a process, its interval, how it ended, and a
//! list of micro-operations ([`Mop`]) on keys. In quorate's JSON-lines histories an `append`
//! or a `get` is one micro-op and a `txn` event carries any number (`MULTI`/`EXEC`, `MGET`,
//! [`from_history`]); Elle's `:txn` histories in EDN have any number too
//! ([`parse_edn_txns`]):
//!
//! ```edn
//! {:process 0, :type :invoke, :f :txn, :value [[:append 5 1] [:r 5 nil]]}
//! {:process 0, :type :ok,     :f :txn, :value [[:append 5 1] [:r 5 [1]]]}
//! ```
//!
//! A list is written as quorate's APPEND writes it: every element followed by one
//! delimiter. Elle's integer elements become `"1;"`, and a read `[1 2]` becomes `"1;2;"`,
//! so the same parsing serves both (an element containing `;` is refused).

use crate::edn::{self, Edn};
use crate::history::{EventKind, History, HistoryError, OpValue, Operation};
use std::collections::BTreeMap;

/// The delimiter Elle's elements are given when they become strings.
pub const ELLE_DELIMITER: char = ';';

/// How a transaction ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Ok,
    /// Unknown: it may have taken effect; its reads tell nothing.
    Info,
    /// It did not take effect (a read of its appends is an aborted read, G1a).
    Fail,
}

/// One micro-operation.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Mop {
    /// Append `value` (an element and its delimiter, e.g. `t17;`) to the list at `key`.
    Append { key: String, value: String },
    /// Read the list at `key`: the concatenation of its appends (`None`: absent or unknown).
    Read { key: String, value: Option<String> },
    /// Overwrite a register (Elle's rw-register `[:w k v]`); not a list operation.
    Write { key: String, value: String },
}

impl Mop {
    pub fn key(&self) -> &str {
        match self {
            Mop::Append { key, .. } | Mop::Read { key, .. } | Mop::Write { key, .. } => key,
        }
    }
}

/// One transaction (or single operation) of a history.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Txn {
    /// The operation id ([`Operation::id`]) for histories of single operations, so that a
    /// witness can be drawn; a position otherwise.
    pub id: usize,
    pub process: u64,
    pub status: Status,
    pub call: u64,
    /// Completion time (`None`: never completed, or `info`).
    pub ret: Option<u64>,
    pub mops: Vec<Mop>,
    /// 1-based line of the invocation.
    pub line: usize,
}

/// Paired operations as transactions: an `append` or a `get` is one micro-op, a `txn` its
/// micro-ops. Only these belong in a list-append history; anything else is refused, naming
/// its line.
pub fn from_operations(ops: &[Operation]) -> Result<Vec<Txn>, HistoryError> {
    ops.iter()
        .map(|op| {
            let key = op.key.clone().unwrap_or_default();
            let mops = match &op.value {
                OpValue::Append(value) => vec![Mop::Append {
                    key,
                    value: value.clone(),
                }],
                OpValue::Get(value) => vec![Mop::Read {
                    key,
                    value: value.clone(),
                }],
                OpValue::Txn(mops) => mops.clone(),
                other => {
                    return Err(HistoryError {
                        line: op.line,
                        message: format!(
                            "a list-append history has only appends and reads, not {}",
                            other.f()
                        ),
                    })
                }
            };
            Ok(Txn {
                id: op.id,
                process: op.process,
                status: if op.ret.is_some() {
                    Status::Ok
                } else {
                    Status::Info
                },
                call: op.call,
                ret: op.ret,
                mops,
                line: op.line,
            })
        })
        .collect()
}

/// A parsed history as transactions: its paired operations plus its failed appends (which
/// pairing drops, but which an aborted read, G1a, needs). Failed appends get ids after every
/// operation's.
pub fn from_history(history: &History) -> Result<Vec<Txn>, HistoryError> {
    let ops = history.pair()?;
    let mut txns = from_operations(&ops)?;
    let mut open = BTreeMap::new();
    for (event, &line) in history.events.iter().zip(&history.lines) {
        match event.kind {
            EventKind::Invoke => {
                open.insert(event.process, (event, line));
            }
            EventKind::Fail => {
                if let Some((invoke, line)) = open.remove(&event.process) {
                    let appends = failed_appends(invoke);
                    if !appends.is_empty() {
                        txns.push(Txn {
                            id: ops.len() + txns.len(),
                            process: invoke.process,
                            status: Status::Fail,
                            call: invoke.time,
                            ret: Some(event.time),
                            mops: appends,
                            line,
                        });
                    }
                }
            }
            EventKind::Ok | EventKind::Info => {
                open.remove(&event.process);
            }
        }
    }
    Ok(txns)
}

/// The appends of an invocation that failed: a read of any of them is an aborted read.
fn failed_appends(invoke: &crate::history::Event) -> Vec<Mop> {
    match &invoke.value {
        OpValue::Append(value) => vec![Mop::Append {
            key: invoke.key.clone().unwrap_or_default(),
            value: value.clone(),
        }],
        OpValue::Txn(mops) => mops
            .iter()
            .filter(|mop| matches!(mop, Mop::Append { .. }))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// A `:txn` value of one micro-op as a key and an ordinary operation (`[:r k v]` a get,
/// `[:append k v]` an append of `v;`, `[:w k v]` a put). Longer transactions are refused
/// with a message that names the model that checks them.
pub(crate) fn single_mop(value: &Edn) -> Result<(String, OpValue), String> {
    let mops = mops_of(value)?;
    match mops.as_slice() {
        [mop] => Ok(match mop.clone() {
            Mop::Append { key, value } => (key, OpValue::Append(value)),
            Mop::Read { key, value } => (key, OpValue::Get(value)),
            Mop::Write { key, value } => (key, OpValue::Put(value)),
        }),
        _ => Err(format!(
            "a transaction of {} micro-ops: only the list-append model checks multi-micro-op \
             transactions (quorate check FILE --model list-append)",
            mops.len()
        )),
    }
}

/// The micro-ops of a `:txn` value: a vector of `[f k v]` vectors.
pub(crate) fn mops_of(value: &Edn) -> Result<Vec<Mop>, String> {
    let (Edn::Vector(items) | Edn::List(items)) = value else {
        return Err(format!(
            ":txn takes a vector of micro-ops such as [[:append 1 2] [:r 1 nil]], found {}",
            edn::show(value)
        ));
    };
    items.iter().map(mop_of).collect()
}

fn element(value: &Edn) -> Result<String, String> {
    let text = edn::scalar(value).ok_or_else(|| {
        format!(
            "a list element must be a scalar, found {}",
            edn::show(value)
        )
    })?;
    if text.contains(ELLE_DELIMITER) {
        return Err(format!(
            "list element {text:?} contains {ELLE_DELIMITER:?}, which delimits elements"
        ));
    }
    Ok(text)
}

fn mop_of(mop: &Edn) -> Result<Mop, String> {
    let (Edn::Vector(parts) | Edn::List(parts)) = mop else {
        return Err(format!(
            "a micro-op is [f key value], found {}",
            edn::show(mop)
        ));
    };
    let [Edn::Keyword(f), key, value] = parts.as_slice() else {
        return Err("a micro-op is [f key value], e.g. [:append 3 7] or [:r 3 nil]".into());
    };
    let key = edn::scalar(key).ok_or_else(|| {
        format!(
            "a micro-op's key must be a scalar, found {}",
            edn::show(key)
        )
    })?;
    match f.as_str() {
        "append" => Ok(Mop::Append {
            key,
            value: format!("{}{ELLE_DELIMITER}", element(value)?),
        }),
        "r" => {
            let value = match value {
                Edn::Nil => None,
                Edn::Vector(items) | Edn::List(items) => {
                    let mut text = String::new();
                    for item in items {
                        text += &element(item)?;
                        text.push(ELLE_DELIMITER);
                    }
                    Some(text)
                }
                scalar => Some(
                    edn::scalar(scalar)
                        .ok_or_else(|| format!("unreadable read value {}", edn::show(scalar)))?,
                ),
            };
            Ok(Mop::Read { key, value })
        }
        "w" => Ok(Mop::Write {
            key,
            value: edn::scalar(value).ok_or_else(|| {
                format!(
                    "a write's value must be a scalar, found {}",
                    edn::show(value)
                )
            })?,
        }),
        other => Err(format!(
            "unknown micro-op :{other}: expected :r, :append or :w"
        )),
    }
}

/// Parses an Elle `:txn` history in EDN (a vector of maps or one map per line, records
/// `#jepsen.history.Op{...}` too) into transactions. Invocations pair with completions per
/// process: `:ok` takes the completion's micro-ops (with the values read), `:fail` and
/// `:info` keep the invocation's (an `info` transaction's reads are dropped).
pub fn parse_edn_txns(text: &str) -> Result<Vec<Txn>, HistoryError> {
    let maps = edn::history_maps(text)?;
    let mut txns = Vec::new();
    let mut open: BTreeMap<u64, (Vec<Mop>, u64, usize)> = BTreeMap::new();
    let mut timed = None;
    for (index, (pairs, line)) in maps.iter().enumerate() {
        let error = |message: String| HistoryError {
            line: *line,
            message,
        };
        let Some(process) = edn::process_of(pairs).map_err(error)? else {
            continue;
        };
        let kind = edn::kind_of(pairs).map_err(error)?;
        match edn::get(pairs, "f") {
            Some(Edn::Keyword(f)) if f == "txn" => {}
            _ => {
                return Err(error(
                    "a transaction history has :f :txn in every client operation".into(),
                ))
            }
        }
        let time = match edn::get(pairs, "time") {
            Some(t) => Some(edn::integer(t, ":time").map_err(error)?),
            None => None,
        };
        if *timed.get_or_insert(time.is_some()) != time.is_some() {
            return Err(error(
                "this event has no time but others do; give every event a time or none".into(),
            ));
        }
        let time = time.unwrap_or(index as u64);
        let mops = mops_of(edn::get(pairs, "value").unwrap_or(&Edn::Nil)).map_err(error)?;
        if kind == EventKind::Invoke {
            if open.insert(process, (mops, time, *line)).is_some() {
                return Err(error(format!(
                    "process {process} invokes again while an invocation is open"
                )));
            }
            continue;
        }
        let Some((invoked, call, call_line)) = open.remove(&process) else {
            return Err(error(format!(
                "process {process} completes a transaction it never invoked"
            )));
        };
        let (status, mops, ret) = match kind {
            EventKind::Ok => (Status::Ok, mops, Some(time)),
            EventKind::Fail => (Status::Fail, invoked, Some(time)),
            _ => (Status::Info, without_reads(invoked), None),
        };
        txns.push(Txn {
            id: txns.len(),
            process,
            status,
            call,
            ret,
            mops,
            line: call_line,
        });
    }
    for (process, (mops, call, line)) in open {
        txns.push(Txn {
            id: txns.len(),
            process,
            status: Status::Info,
            call,
            ret: None,
            mops: without_reads(mops),
            line,
        });
    }
    Ok(txns)
}

fn without_reads(mops: Vec<Mop>) -> Vec<Mop> {
    mops.into_iter()
        .filter(|m| !matches!(m, Mop::Read { .. }))
        .collect()
}

/// Whether an EDN text looks like an Elle transaction history.
pub fn is_txn_history(text: &str) -> bool {
    text.contains(":txn")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_elle_history() {
        let text = r#"
[{:process 0, :type :invoke, :f :txn, :value [[:append 5 1] [:r 5 nil]], :time 10}
 {:process 1, :type :invoke, :f :txn, :value [[:append 5 2]], :time 11}
 {:process 0, :type :ok, :f :txn, :value [[:append 5 1] [:r 5 [1]]], :time 20}
 {:process 1, :type :info, :f :txn, :value [[:append 5 2]], :time 21}
 #jepsen.history.Op{:process 2, :type :invoke, :f :txn, :value [[:r 5 nil] [:append 6 3]], :time 30}
 #jepsen.history.Op{:process 2, :type :fail, :f :txn, :value [[:r 5 nil] [:append 6 3]], :time 31}]"#;
        let txns = parse_edn_txns(text).unwrap();
        assert_eq!(txns.len(), 3);
        assert_eq!(txns[0].status, Status::Ok);
        assert_eq!(
            txns[0].mops[1],
            Mop::Read {
                key: "5".into(),
                value: Some("1;".into())
            }
        );
        assert_eq!((txns[0].call, txns[0].ret, txns[0].line), (10, Some(20), 2));
        assert_eq!(txns[1].status, Status::Info);
        assert_eq!(txns[2].status, Status::Fail);
        assert_eq!(txns[2].mops.len(), 2);
    }

    #[test]
    fn malformed_micro_ops_are_named() {
        let cases = [
            (
                "[{:process 0, :type :invoke, :f :txn, :value [[:cas 1 2]]}]",
                "unknown micro-op",
            ),
            (
                "[{:process 0, :type :invoke, :f :txn, :value [[:r 1]]}]",
                "[f key value]",
            ),
            (
                "[{:process 0, :type :invoke, :f :txn, :value [[:append 1 \"a;b\"]]}]",
                "delimits",
            ),
            (
                "[{:process 0, :type :invoke, :f :read, :value nil}]",
                ":f :txn",
            ),
        ];
        for (text, fragment) in cases {
            let err = parse_edn_txns(text).unwrap_err();
            assert!(err.message.contains(fragment), "{text}: {err}");
        }
    }
}
