//! `CAS key expected new`: sets `key` to `new` if its value is `expected`; 1 if it did, 0 if
//! not. (To set a key only if it is absent, use `SET key value NX`.)

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Cas {
    key: Bytes,
    expected: Bytes,
    new: Bytes,
}

impl Cas {
    pub fn parse(parse: &mut Parse) -> Result<Cas, Frame> {
        Ok(Cas {
            key: parse.sized("key")?,
            expected: parse.sized("expected value")?,
            new: parse.sized("value")?,
        })
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let op = Op::Cas {
            key: self.key,
            expected: Some(self.expected),
            new: self.new,
        };
        match exec.write(op).await? {
            Output::Swapped(swapped) => Ok(Frame::Integer(i64::from(swapped))),
            other => Err(unexpected(other)),
        }
    }
}
