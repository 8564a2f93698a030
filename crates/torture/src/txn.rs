//! Transactions on real nodes, as a Redis client runs them: `MULTI`, queued `APPEND`s and
//! `GET`s, `EXEC`; `MGET`; and `WATCH` rounds (`WATCH` keys, `MGET` them, `MULTI`, one
//! `APPEND` to each, `EXEC`), over the list keys the single-operation workload also uses.
//!
//! The simulator runs the same `Op::Txn`, `Op::GetMany` and `Op::Revisions` through every log
//! protocol; what only a real node runs is the RESP side: queuing on the connection, `EXEC`
//! turning the queue into one operation and its outputs back into replies, the revisions
//! `WATCH` remembers per connection, all under kill -9, pauses and partitions.
//!
//! Each is recorded as one `txn` event of micro-ops, judged with the lists' single
//! operations by the list-append analysis. A `WATCH` round is recorded as the reads its
//! `MGET` made followed by its appends: if `EXEC` commits, no watched key changed since
//! `WATCH`, so each still held what `MGET` read when the transaction applied. An `EXEC`
//! answered with a nil array (a watched key changed) is `fail`: nothing of it may be read.

use crate::resp::{Conn, Reply};
use crate::verdict::TOKEN_END;
use crate::workload::{Outcome, Shared};
use quorate_check::txn::Mop;
use quorate_check::OpValue;
use rand::rngs::StdRng;
use rand::Rng;
use std::time::Duration;

/// Longest `MULTI` the workload queues, in commands.
const MULTI_MAX: usize = 4;

/// One transaction to perform.
#[derive(Clone, Debug)]
pub(crate) enum TxnOp {
    /// `MULTI`, an `APPEND` or `GET` per micro-op, `EXEC`.
    Multi(Vec<Mop>),
    /// `MGET` of distinct keys.
    Mget(Vec<String>),
    /// `WATCH` the keys, `MGET` them, `MULTI`, append each token to its key, `EXEC`.
    Watch(Vec<(String, String)>),
}

impl TxnOp {
    /// A random transaction over the list keys `l0..l{keys}`: a third `WATCH` rounds, a
    /// sixth `MGET`s, the rest `MULTI`/`EXEC` of one to four appends and reads.
    pub(crate) fn random(shared: &Shared, rng: &mut StdRng) -> TxnOp {
        let mut key = || format!("l{}", rng.random_range(0..shared.keys.max(1)));
        let mut keys: Vec<String> = (0..2).map(|_| key()).collect();
        keys.dedup();
        let token = || format!("a{}{TOKEN_END}", shared.value());
        match rng.random_range(0..6) {
            0 | 1 => TxnOp::Watch(keys.into_iter().map(|k| (k, token())).collect()),
            2 => TxnOp::Mget(keys),
            _ => {
                let count = rng.random_range(1..=MULTI_MAX);
                let mops = (0..count)
                    .map(|_| {
                        let key = format!("l{}", rng.random_range(0..shared.keys.max(1)));
                        if rng.random_bool(0.6) {
                            Mop::Append {
                                key,
                                value: token(),
                            }
                        } else {
                            Mop::Read { key, value: None }
                        }
                    })
                    .collect();
                TxnOp::Multi(mops)
            }
        }
    }

    /// The history's value at invocation: every read not known yet.
    pub(crate) fn invocation(&self) -> OpValue {
        OpValue::Txn(match self {
            TxnOp::Multi(mops) => mops.clone(),
            TxnOp::Mget(keys) => reads(keys, &[]),
            TxnOp::Watch(appends) => {
                let keys: Vec<String> = appends.iter().map(|(k, _)| k.clone()).collect();
                let mut mops = reads(&keys, &[]);
                mops.extend(appends_of(appends));
                mops
            }
        })
    }

    /// Runs the transaction on `conn`. Any outcome but `ok` leaves the connection in a state
    /// the caller must not reuse (queued commands, watches): it dials a new one.
    pub(crate) async fn perform(&self, conn: &mut Conn, timeout: Duration) -> Outcome {
        match self.run(conn, timeout).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Info(e.to_string()),
        }
    }

    async fn run(&self, conn: &mut Conn, timeout: Duration) -> std::io::Result<Outcome> {
        match self {
            TxnOp::Mget(keys) => Ok(match mget(conn, keys, timeout).await? {
                Ok(values) => Outcome::Ok(OpValue::Txn(reads(keys, &values))),
                Err(why) => Outcome::Fail(why),
            }),
            TxnOp::Multi(mops) => {
                let commands: Vec<Vec<String>> = mops.iter().map(command).collect();
                Ok(match exec(conn, &commands, timeout).await? {
                    Exec::Committed(replies) => match answered(mops, replies) {
                        Some(mops) => Outcome::Ok(OpValue::Txn(mops)),
                        None => Outcome::Info("EXEC answered the wrong replies".into()),
                    },
                    Exec::Aborted => Outcome::Info("EXEC aborted with nothing watched".into()),
                    Exec::Refused(why) => Outcome::Fail(why),
                    Exec::Unknown(why) => Outcome::Info(why),
                })
            }
            TxnOp::Watch(appends) => {
                let keys: Vec<String> = appends.iter().map(|(k, _)| k.clone()).collect();
                let mut watch = vec!["WATCH".to_string()];
                watch.extend(keys.iter().cloned());
                match call(conn, &watch, timeout).await? {
                    Reply::Simple(ok) if ok == "OK" => {}
                    other => return Ok(Outcome::Fail(format!("WATCH answered {other:?}"))),
                }
                let values = match mget(conn, &keys, timeout).await? {
                    Ok(values) => values,
                    Err(why) => return Ok(Outcome::Fail(why)),
                };
                let mut mops = reads(&keys, &values);
                mops.extend(appends_of(appends));
                let commands: Vec<Vec<String>> = appends_of(appends).iter().map(command).collect();
                Ok(match exec(conn, &commands, timeout).await? {
                    Exec::Committed(replies) if replies.len() == appends.len() => {
                        Outcome::Ok(OpValue::Txn(mops))
                    }
                    Exec::Committed(_) => Outcome::Info("EXEC answered the wrong replies".into()),
                    Exec::Aborted => Outcome::Fail("a watched key changed".into()),
                    Exec::Refused(why) => Outcome::Fail(why),
                    Exec::Unknown(why) => Outcome::Info(why),
                })
            }
        }
    }
}

/// Reads of `keys` with the values read (`None` where not known).
fn reads(keys: &[String], values: &[Option<String>]) -> Vec<Mop> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| Mop::Read {
            key: key.clone(),
            value: values.get(i).cloned().flatten(),
        })
        .collect()
}

fn appends_of(appends: &[(String, String)]) -> Vec<Mop> {
    appends
        .iter()
        .map(|(key, token)| Mop::Append {
            key: key.clone(),
            value: token.clone(),
        })
        .collect()
}

/// The command a micro-op is queued as.
fn command(mop: &Mop) -> Vec<String> {
    match mop {
        Mop::Append { key, value } => vec!["APPEND".into(), key.clone(), value.clone()],
        Mop::Read { key, .. } => vec!["GET".into(), key.clone()],
        Mop::Write { key, value } => vec!["SET".into(), key.clone(), value.clone()],
    }
}

async fn call(conn: &mut Conn, words: &[String], timeout: Duration) -> std::io::Result<Reply> {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    conn.call(&args, timeout).await
}

/// A bulk string or nil as a list's value.
fn value(reply: &Reply) -> Option<Option<String>> {
    match reply {
        Reply::Bulk(bytes) => Some(Some(String::from_utf8_lossy(bytes).into_owned())),
        Reply::Nil => Some(None),
        _ => None,
    }
}

/// `MGET keys`: the values, or why it was refused (a read: refusal is definite).
async fn mget(
    conn: &mut Conn,
    keys: &[String],
    timeout: Duration,
) -> std::io::Result<Result<Vec<Option<String>>, String>> {
    let mut words = vec!["MGET".to_string()];
    words.extend(keys.iter().cloned());
    Ok(match call(conn, &words, timeout).await? {
        Reply::Array(items) if items.len() == keys.len() => {
            match items.iter().map(value).collect::<Option<Vec<_>>>() {
                Some(values) => Ok(values),
                None => Err(format!("MGET answered {items:?}")),
            }
        }
        other => Err(format!("MGET answered {other:?}")),
    })
}

/// How an `EXEC` ended.
enum Exec {
    /// Applied: one reply per queued command.
    Committed(Vec<Reply>),
    /// A nil array: a watched key changed, nothing applied.
    Aborted,
    /// Certainly not applied (refused while queuing, `EXECABORT`, a redirect).
    Refused(String),
    /// The server gave up, or answered what `EXEC` never answers.
    Unknown(String),
}

/// `MULTI`, each command (each must be `QUEUED`), `EXEC`.
async fn exec(
    conn: &mut Conn,
    commands: &[Vec<String>],
    timeout: Duration,
) -> std::io::Result<Exec> {
    match call(conn, &["MULTI".to_string()], timeout).await? {
        Reply::Simple(ok) if ok == "OK" => {}
        other => return Ok(Exec::Refused(format!("MULTI answered {other:?}"))),
    }
    for words in commands {
        match call(conn, words, timeout).await? {
            Reply::Simple(queued) if queued == "QUEUED" => {}
            // Still in MULTI: the caller drops the connection, which discards the queue.
            other => return Ok(Exec::Refused(format!("{} answered {other:?}", words[0]))),
        }
    }
    Ok(match call(conn, &["EXEC".to_string()], timeout).await? {
        Reply::Array(replies) => Exec::Committed(replies),
        Reply::Nil => Exec::Aborted,
        Reply::Error(e) if definite(&e) => Exec::Refused(e),
        other => Exec::Unknown(format!("EXEC answered {other:?}")),
    })
}

/// Errors that say a write certainly did not take effect.
pub fn definite(error: &str) -> bool {
    [
        "EXECABORT",
        "MOVED",
        "TRYAGAIN",
        "ERR rejected",
        "ERR unknown",
        "ERR wrong",
    ]
    .iter()
    .any(|prefix| error.starts_with(prefix))
}

/// The micro-ops with the values `EXEC`'s replies read; `None` when a reply does not fit
/// its command.
fn answered(mops: &[Mop], replies: Vec<Reply>) -> Option<Vec<Mop>> {
    if replies.len() != mops.len() {
        return None;
    }
    mops.iter()
        .zip(&replies)
        .map(|(mop, reply)| match (mop, reply) {
            (Mop::Append { .. }, Reply::Integer(_)) => Some(mop.clone()),
            (Mop::Read { key, .. }, reply) => Some(Mop::Read {
                key: key.clone(),
                value: value(reply)?,
            }),
            _ => None,
        })
        .collect()
}
