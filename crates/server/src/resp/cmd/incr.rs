//! `INCR key`, `DECR key`, `INCRBY key n`, `DECRBY key n`: the value after adding, with an
//! absent key counting as 0.
//!
//! One replicated operation of the state machine ([`Op::Incr`]): atomic, and exactly once
//! like any write, so a retry with `CLIENT RESUME` answers the number the first attempt
//! produced rather than adding again. Protocols without read-modify-write operations (quorum,
//! multiprimary) refuse it; their counters are CRDTs.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Incr {
    key: Bytes,
    delta: i64,
}

impl Incr {
    pub fn parse(name: &str, parse: &mut Parse) -> Result<Incr, Frame> {
        let key = parse.sized("key")?;
        let delta = match name {
            "incr" => 1,
            "decr" => -1,
            "incrby" => parse.integer()?,
            "decrby" => parse
                .integer()?
                .checked_neg()
                .ok_or_else(|| Frame::error("ERR decrement would overflow"))?,
            other => unreachable!("not an increment: {other}"),
        };
        Ok(Incr { key, delta })
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        let op = Op::Incr {
            key: self.key,
            by: self.delta,
        };
        super::Queued::new(vec![op], super::Reply::Counter)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let op = Op::Incr {
            key: self.key,
            by: self.delta,
        };
        match exec.write(op).await? {
            Output::Counter(Some(sum)) => Ok(Frame::Integer(sum)),
            Output::Counter(None) => Ok(Frame::error(
                "ERR value is not an integer or out of range (or the sum would overflow)",
            )),
            other => Err(unexpected(other)),
        }
    }
}
