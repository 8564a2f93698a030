//! `EXISTS key [key ...]`: how many of the keys exist (a key named twice counts twice), read
//! in the connection's read mode.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Exists {
    keys: Vec<Bytes>,
}

impl Exists {
    pub fn parse(parse: &mut Parse) -> Result<Exists, Frame> {
        let mut keys = vec![parse.sized("key")?];
        while parse.remaining() > 0 {
            keys.push(parse.sized("key")?);
        }
        Ok(Exists { keys })
    }

    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mut found = 0;
        let mode = exec.read_mode;
        for key in self.keys {
            match exec.read(Op::Get { key }, mode).await? {
                Output::Value(value) => found += i64::from(value.is_some()),
                other => return Err(unexpected(other)),
            }
        }
        Ok(Frame::Integer(found))
    }
}
