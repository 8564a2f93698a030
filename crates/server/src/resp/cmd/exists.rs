//! `EXISTS key [key ...]`: how many of the keys exist (a key named twice counts twice), read
//! in the connection's read mode.

use super::{read_values, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::Op;

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

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        let ops = self.keys.into_iter().map(|key| Op::Get { key }).collect();
        super::Queued::new(ops, super::Reply::Present)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mut found = 0;
        let mode = exec.read_mode;
        for key in self.keys {
            let output = exec.read(Op::Get { key: key.clone() }, mode).await?;
            found += i64::from(!read_values(exec, &key, output)?.is_empty());
        }
        Ok(Frame::Integer(found))
    }
}
