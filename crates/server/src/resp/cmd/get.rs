//! `GET key [LINEARIZABLE|LOCAL]`: the value, or nil. Without a mode word the connection's
//! read mode applies (see `READMODE`).

use super::{read_mode_arg, unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output, ReadMode};

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

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mode = self.mode.unwrap_or(exec.read_mode);
        match exec.read(Op::Get { key: self.key }, mode).await? {
            Output::Value(Some(value)) => Ok(Frame::Bulk(value)),
            Output::Value(None) => Ok(Frame::Null),
            other => Err(unexpected(other)),
        }
    }
}
