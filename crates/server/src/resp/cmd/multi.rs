//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, as Redis users know them.
//!
//! - `MULTI`: `OK`; the connection now queues commands, answering each `QUEUED`, instead of
//!   running them. A command that cannot be queued (unknown, wrong number of arguments, a
//!   syntax error, a command transactions do not take, one the user may not run) is answered
//!   with its error and marks the transaction: its `EXEC` answers `-EXECABORT`. A nested
//!   `MULTI` and a `WATCH` are answered with an error and leave the transaction as it is.
//! - `EXEC`: runs the queued commands as **one** [`Op::Txn`], one entry of the protocol's log,
//!   so that no replica ever applies anything between them; answers the array of their
//!   replies (a command that fails inside, like `INCR` of a non-number, answers its error in
//!   its place; the others still apply, as in Redis). A retried `EXEC` is deduplicated by the
//!   session like any write: applied at most once.
//! - `DISCARD`: forgets the queue. `EXEC` and `DISCARD` without `MULTI` are errors.
//! - `WATCH key [key ...]`: reads the keys' modification revisions through the protocol's
//!   linearizable read path (see `quorate_core::kv::txn`); the next `EXEC` carries them as
//!   guards and answers a nil array, applying nothing, if any key changed since (even if it
//!   was set back to the same value). `EXEC`, `DISCARD` and `UNWATCH` forget the watches.
//!
//! Commands a transaction takes: the KV commands that are one state-machine operation per key
//! (`GET`, `SET` with its options, `SETNX`, `SETEX`, `PSETEX`, `GETSET`, `GETDEL`, `DEL`,
//! `EXISTS`, `APPEND`, `INCR`, `DECR`, `INCRBY`, `DECRBY`, `MSET`, `MGET`, and, where the
//! protocol stamps deadlines, `EXPIRE`, `PEXPIRE`, `PERSIST`, `TTL`, `PTTL`). Each queued
//! command knows its operations and how to turn their outputs into its Redis reply
//! ([`Queued`]), exactly the reply it gives outside a transaction.

use super::unexpected;
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Guard, Lifetime, Op, Output, SetWhen, Time};
use tokio::sync::oneshot;

/// How a queued command's outputs become its reply.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// `Done`: `+OK`.
    Ok,
    /// `Value`: the bulk string or nil.
    Bulk,
    /// `Length`: an integer (APPEND).
    Length,
    /// `Counter`: the sum, or the error Redis gives for a non-integer.
    Counter,
    /// One `Existed` per key: how many existed (DEL), or 0/1 (EXPIRE, PERSIST).
    Existed,
    /// One `Value` per key: how many are present (EXISTS).
    Present,
    /// `Value` of the previous value from a conditional SET (see `set.rs`).
    Set {
        when: SetWhen,
        answer_previous: bool,
        answer_integer: bool,
    },
    /// `Values`: an array (MGET).
    Values,
    /// `Lifetime`: TTL in seconds or milliseconds.
    Ttl { in_ms: bool },
}

/// A command queued between `MULTI` and `EXEC`: its operations and how it answers.
#[derive(Debug, Clone)]
pub struct Queued {
    pub ops: Vec<Op>,
    pub reply: Reply,
}

impl Queued {
    pub fn new(ops: Vec<Op>, reply: Reply) -> Queued {
        Queued { ops, reply }
    }

    /// The reply from the outputs of this command's operations, in order.
    fn answer(&self, outputs: Vec<Output>) -> Result<Frame, CallError> {
        let mut outputs = outputs.into_iter();
        let mut next = || outputs.next().expect("an output per operation");
        Ok(match self.reply {
            Reply::Ok => match next() {
                Output::Done => Frame::ok(),
                other => return Err(unexpected(other)),
            },
            Reply::Bulk => match next() {
                Output::Value(value) => value.map_or(Frame::Null, Frame::Bulk),
                other => return Err(unexpected(other)),
            },
            Reply::Length => match next() {
                Output::Length(length) => Frame::Integer(length as i64),
                other => return Err(unexpected(other)),
            },
            Reply::Counter => match next() {
                Output::Counter(Some(sum)) => Frame::Integer(sum),
                Output::Counter(None) => Frame::error(
                    "ERR value is not an integer or out of range (or the sum would overflow)",
                ),
                other => return Err(unexpected(other)),
            },
            Reply::Existed | Reply::Present => {
                let mut count = 0;
                for _ in 0..self.ops.len() {
                    count += i64::from(match next() {
                        Output::Existed(existed) => existed,
                        Output::Value(value) => value.is_some(),
                        other => return Err(unexpected(other)),
                    });
                }
                Frame::Integer(count)
            }
            Reply::Set {
                when,
                answer_previous,
                answer_integer,
            } => {
                let previous = match next() {
                    Output::Value(previous) => previous,
                    other => return Err(unexpected(other)),
                };
                let set = when.allows(previous.as_ref());
                match (answer_previous, answer_integer, set) {
                    (true, ..) => previous.map_or(Frame::Null, Frame::Bulk),
                    (false, true, set) => Frame::Integer(i64::from(set)),
                    (false, false, true) => Frame::ok(),
                    (false, false, false) => Frame::Null,
                }
            }
            Reply::Values => match next() {
                Output::Values(values) => Frame::Array(
                    values
                        .into_iter()
                        .map(|value| value.map_or(Frame::Null, Frame::Bulk))
                        .collect(),
                ),
                other => return Err(unexpected(other)),
            },
            Reply::Ttl { in_ms } => match next() {
                Output::Lifetime(lifetime) => Frame::Integer(ttl_reply(lifetime, in_ms)),
                other => return Err(unexpected(other)),
            },
        })
    }
}

/// What `TTL` (`in_ms`: `PTTL`) answers for `lifetime`, by this node's clock.
pub fn ttl_reply(lifetime: Lifetime, in_ms: bool) -> i64 {
    let ms = lifetime.pttl_ms(Time::from_nanos(crate::runtime::unix_nanos()));
    match ms {
        ms if ms < 0 || in_ms => ms,
        ms => (ms + 500) / 1_000,
    }
}

/// The transaction a connection is building between `MULTI` and `EXEC`.
#[derive(Debug, Default)]
pub struct Multi {
    pub queued: Vec<Queued>,
    /// A command was refused while queuing: `EXEC` answers `EXECABORT`.
    pub aborted: bool,
}

/// What a `WATCH` hands the next `EXEC`: its guards, once its read is answered (dropped
/// without a value when the read failed, whose error the client was given).
pub type Watched = oneshot::Receiver<Vec<Guard>>;

/// `WATCH key [key ...]`.
#[derive(Debug)]
pub struct Watch {
    keys: Vec<Bytes>,
    /// Where the guards go; set by the connection when it runs the command.
    pub guards: Option<oneshot::Sender<Vec<Guard>>>,
}

impl Watch {
    pub fn parse(parse: &mut super::Parse) -> Result<Watch, Frame> {
        let mut keys = vec![parse.sized("key")?];
        while parse.remaining() > 0 {
            keys.push(parse.sized("key")?);
        }
        Ok(Watch { keys, guards: None })
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let op = Op::Revisions {
            keys: self.keys.clone(),
        };
        // Always linearizable: a stale revision would only abort the EXEC for nothing.
        let revisions = match exec.read(op, quorate_core::ReadMode::Linearizable).await? {
            Output::Revisions(revisions) => revisions,
            other => return Err(unexpected(other)),
        };
        let guards = self.keys.into_iter().zip(revisions);
        let guards = guards.map(|(key, revision)| Guard::Unchanged { key, revision });
        if let Some(sender) = self.guards {
            let _ = sender.send(guards.collect());
        }
        Ok(Frame::ok())
    }
}

/// `EXEC` of a transaction that was not aborted: the queue and the watches it carries.
#[derive(Debug, Default)]
pub struct ExecTxn {
    pub queued: Vec<Queued>,
    pub watched: Vec<Watched>,
}

impl ExecTxn {
    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mut guards = Vec::new();
        for watched in self.watched {
            // A WATCH whose read failed was answered with an error: it watches nothing.
            guards.extend(watched.await.unwrap_or_default());
        }
        let ops: Vec<Op> = self.queued.iter().flat_map(|q| q.ops.clone()).collect();
        let Some(txn) = Op::txn(guards, ops) else {
            return Ok(Frame::Array(Vec::new())); // MULTI then EXEC, nothing watched.
        };
        let outputs = match exec.write(txn).await? {
            Output::Txn(None) => return Ok(Frame::NullArray),
            Output::Txn(Some(outputs)) => outputs,
            other => return Err(unexpected(other)),
        };
        let mut outputs = outputs.into_iter();
        let mut replies = Vec::with_capacity(self.queued.len());
        for queued in &self.queued {
            let mine: Vec<Output> = outputs.by_ref().take(queued.ops.len()).collect();
            replies.push(queued.answer(mine).unwrap_or_else(|e| e.to_frame()));
        }
        Ok(Frame::Array(replies))
    }
}
