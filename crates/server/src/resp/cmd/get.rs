//! `GET key [LINEARIZABLE|LOCAL]`: the value, or nil. Without a mode word the connection's
//! read mode applies (see `READMODE`).
//!
//! A protocol that keeps concurrent versions (multiprimary with version vectors) may answer
//! several: GET then answers an *array* of the values (in the protocol's deterministic
//! order), and the connection's next `SET key` supersedes all of them. One version is a bulk
//! string and none is nil, as in Redis.

use super::{read_mode_arg, read_values, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, ReadMode};

#[derive(Debug)]
pub struct Get {
    key: Bytes,
    mode: Option<ReadMode>,
}

impl Get {
    pub fn parse(parse: &mut Parse) -> Result<Get, Frame> {
        let key = parse.sized("key")?;
        let mode = read_mode_arg(parse)?;
        Ok(Get { key, mode })
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        super::Queued::new(vec![Op::Get { key: self.key }], super::Reply::Bulk)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mode = self.mode.unwrap_or(exec.read_mode);
        let op = Op::Get {
            key: self.key.clone(),
        };
        let output = exec.read(op, mode).await?;
        let mut values = read_values(exec, &self.key, output)?;
        Ok(match values.len() {
            0 => Frame::Null,
            1 => Frame::Bulk(values.remove(0)),
            _ => Frame::Array(values.into_iter().map(Frame::Bulk).collect()),
        })
    }
}
