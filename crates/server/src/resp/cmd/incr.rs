//! `INCR key`, `DECR key`, `INCRBY key n`, `DECRBY key n`: the value after adding, with an
//! absent key counting as 0.
//!
//! The replicated state machine has no arithmetic, so the server makes the increment atomic
//! with a bounded compare-and-set loop: read the value linearizably, then CAS it from what
//! was read to the sum. The CAS succeeds only if nobody wrote in between, so a successful
//! increment is one atomic step (its linearization point is the CAS). Under contention the
//! loop retries, at most `TRIES_MAX` times, then answers an error rather than spinning. (A
//! core `Incr` operation would avoid the read's round trip; the loop keeps every protocol's
//! state machine unchanged.) Protocols without compare-and-set (quorum, multiprimary) refuse
//! the CAS, and INCR answers that refusal.

use super::{parse_integer, read_values, unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output, ReadMode};

const TRIES_MAX: usize = 64;

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

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        for _ in 0..TRIES_MAX {
            let read = exec.read(
                Op::Get {
                    key: self.key.clone(),
                },
                ReadMode::Linearizable,
            );
            let output = read.await?;
            let mut values = read_values(exec, &self.key, output)?;
            if values.len() > 1 {
                return Ok(Frame::error(
                    "ERR the key holds concurrent versions (siblings); SET it first",
                ));
            }
            let current = values.pop();
            let number = match &current {
                None => 0,
                Some(bytes) => match parse_integer(bytes) {
                    Some(n) => n,
                    None => return Ok(Frame::error("ERR value is not an integer or out of range")),
                },
            };
            let Some(sum) = number.checked_add(self.delta) else {
                return Ok(Frame::error("ERR increment or decrement would overflow"));
            };
            let op = Op::Cas {
                key: self.key.clone(),
                expected: current,
                new: Bytes::from(sum.to_string()),
            };
            match exec.write(op).await? {
                Output::Swapped(true) => return Ok(Frame::Integer(sum)),
                Output::Swapped(false) => continue, // Someone wrote in between: read again.
                other => return Err(unexpected(other)),
            }
        }
        Ok(Frame::error(format!(
            "ERR increment gave up after {TRIES_MAX} conflicting attempts; retry"
        )))
    }
}
