//! Commands on several keys at once, each one request and one step of the state machine.
//!
//! - `MSET key value [key value ...]`: `OK`. One log entry sets every pair, so no read ever
//!   sees some of them and not the others (a key given twice takes its last value).
//! - `MGET key [key ...]`: the values (nil: absent), in the order asked, read from one state
//!   through the protocol's read path: in `LINEARIZABLE` mode (the default) the answer is a
//!   linearizable snapshot of all the keys, not one read per key.
//!
//! - `MSETNX key value [key value ...]`: 1 if no key existed and every pair was set, 0 if
//!   one existed and nothing was set: one transaction ([`Op::Txn`]) guarded by absence.
//!
//! Protocols that replicate each key on its own (quorum, multiprimary) cannot order writes to
//! different keys and refuse both with an error naming the protocols that can.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use quorate_core::{Guard, Op, Output};

#[derive(Debug)]
pub struct Many {
    op: Op,
}

impl Many {
    /// `MGET key [key ...]`.
    pub fn parse_mget(parse: &mut Parse) -> Result<Many, Frame> {
        let mut keys = vec![parse.sized("key")?];
        while parse.remaining() > 0 {
            keys.push(parse.sized("key")?);
        }
        Ok(Many {
            op: Op::GetMany { keys },
        })
    }

    /// `MSET key value [key value ...]`.
    pub fn parse_mset(parse: &mut Parse) -> Result<Many, Frame> {
        let mut pairs = vec![(parse.sized("key")?, parse.sized("value")?)];
        while parse.remaining() > 0 {
            let key = parse.sized("key")?;
            let value = parse.sized("value")?;
            pairs.push((key, value));
        }
        let op = Op::put_many(pairs).expect("at least the first pair");
        Ok(Many { op })
    }

    /// `MSETNX key value [key value ...]`: one transaction that sets every pair only if no
    /// key exists, answering 1 if it did and 0 if not.
    pub fn parse_msetnx(parse: &mut Parse) -> Result<Many, Frame> {
        let Many { op: mset } = Many::parse_mset(parse)?;
        let guards = mset
            .keys()
            .into_iter()
            .map(|key| Guard::Absent { key: key.clone() });
        let op = Op::txn(guards.collect(), vec![mset]).expect("one operation");
        Ok(Many { op })
    }

    /// As a command of a transaction (see `multi.rs`); `None` for MSETNX, itself one.
    pub fn queued(self) -> Option<super::Queued> {
        let reply = match &self.op {
            Op::GetMany { .. } => super::Reply::Values,
            Op::PutMany { .. } => super::Reply::Ok,
            _ => return None,
        };
        Some(super::Queued::new(vec![self.op], reply))
    }

    pub fn name(&self) -> &'static str {
        match &self.op {
            Op::Txn { .. } => "msetnx",
            op if op.is_read() => "mget",
            _ => "mset",
        }
    }

    pub fn is_read(&self) -> bool {
        self.op.is_read()
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let output = match self.op.is_read() {
            true => {
                let mode = exec.read_mode;
                exec.read(self.op, mode).await?
            }
            false => exec.write(self.op).await?,
        };
        match output {
            Output::Done => Ok(Frame::ok()),
            Output::Txn(set) => Ok(Frame::Integer(i64::from(set.is_some()))),
            Output::Values(values) => Ok(Frame::Array(
                values
                    .into_iter()
                    .map(|value| value.map_or(Frame::Null, Frame::Bulk))
                    .collect(),
            )),
            other => Err(unexpected(other)),
        }
    }
}
