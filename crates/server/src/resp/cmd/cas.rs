//! The compare family: each compares a key's value with one the client names and changes the
//! key only if they are equal, in one step of the state machine.
//!
//! - `CAS key expected new`: sets `key` to `new` if its value is `expected`; 1 if it did, 0
//!   if not. (To set a key only if it is absent, use `SET key value NX`.)
//! - `DELIFEQ key value` (Valkey 9.0) and `DELEX key IFEQ value` (Redis 8.4): removes `key`
//!   if its value is `value`; 1 if it did, 0 if not. How a lock holder releases its lock and
//!   never another's: the holder's token is the value it set with `SET key token NX PX ms`.
//!   `DELEX key` without a condition is `DEL key`; the other `DELEX` conditions (`IFNE`,
//!   `IFDEQ`, `IFDNE`) are refused.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Cas {
    key: Bytes,
    expected: Bytes,
    /// `None`: delete (DELIFEQ); otherwise the value to set.
    new: Option<Bytes>,
}

impl Cas {
    pub fn parse(parse: &mut Parse) -> Result<Cas, Frame> {
        Ok(Cas {
            key: parse.sized("key")?,
            expected: parse.sized("expected value")?,
            new: Some(parse.sized("value")?),
        })
    }

    /// `DELIFEQ key value`.
    pub fn parse_delifeq(parse: &mut Parse) -> Result<Cas, Frame> {
        Ok(Cas {
            key: parse.sized("key")?,
            expected: parse.sized("expected value")?,
            new: None,
        })
    }

    /// `DELEX key IFEQ value`, or `DELEX key` without a condition (a `DEL`).
    pub fn parse_delex(parse: &mut Parse) -> Result<super::Command, Frame> {
        let key = parse.sized("key")?;
        match parse.keyword().as_deref() {
            None => Ok(super::Command::Del(super::Del::one(key))),
            Some("IFEQ") => Ok(super::Command::Cas(Cas {
                key,
                expected: parse.sized("expected value")?,
                new: None,
            })),
            Some(other @ ("IFNE" | "IFDEQ" | "IFDNE")) => Err(Frame::error(format!(
                "ERR DELEX {other} is not supported: use DELEX key IFEQ value (or DELIFEQ)"
            ))),
            Some(_) => Err(Frame::error("ERR syntax error")),
        }
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let op = match self.new {
            Some(new) => Op::Cas {
                key: self.key,
                expected: Some(self.expected),
                new,
            },
            None => Op::DeleteIf {
                key: self.key,
                expected: self.expected,
            },
        };
        match exec.write(op).await? {
            Output::Swapped(done) | Output::Existed(done) => Ok(Frame::Integer(i64::from(done))),
            other => Err(unexpected(other)),
        }
    }
}
