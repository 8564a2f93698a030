//! `APPEND key value`: the length of the value after appending (an absent key counts as
//! empty). Appending is applied exactly once even when the client's request is retried.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Append {
    key: Bytes,
    value: Bytes,
}

impl Append {
    pub fn parse(parse: &mut Parse) -> Result<Append, Frame> {
        Ok(Append {
            key: parse.sized("key")?,
            value: parse.sized("value")?,
        })
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        let op = Op::Append {
            key: self.key,
            value: self.value,
        };
        super::Queued::new(vec![op], super::Reply::Length)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let op = Op::Append {
            key: self.key,
            value: self.value,
        };
        match exec.write(op).await? {
            Output::Length(length) => Ok(Frame::Integer(length as i64)),
            other => Err(unexpected(other)),
        }
    }
}
