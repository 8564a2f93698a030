//! The delete family.
//!
//! - `DEL key [key ...]`: how many of the keys existed. Each key is deleted by its own
//!   replicated operation, in order; the command as a whole is not atomic.
//! - `GETDEL key`: removes `key` and answers the value it had, in one step.
//!
//! (`DELIFEQ`, a delete conditioned on the value, is in the compare family, `cas.rs`.)

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Del {
    keys: Vec<Bytes>,
}

impl Del {
    pub fn parse(parse: &mut Parse) -> Result<Del, Frame> {
        let mut keys = vec![parse.sized("key")?];
        while parse.remaining() > 0 {
            keys.push(parse.sized("key")?);
        }
        Ok(Del { keys })
    }

    /// `DEL key` of one key (what `DELEX key` without a condition is).
    pub fn one(key: Bytes) -> Del {
        Del { keys: vec![key] }
    }

    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        let ops = self
            .keys
            .into_iter()
            .map(|key| Op::Delete { key })
            .collect();
        super::Queued::new(ops, super::Reply::Existed)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mut deleted = 0;
        for key in self.keys {
            match exec.write(Op::Delete { key }).await? {
                Output::Existed(existed) => deleted += i64::from(existed),
                other => return Err(unexpected(other)),
            }
        }
        Ok(Frame::Integer(deleted))
    }
}

/// `GETDEL key`: the value `key` had (nil: absent), removed in the same step.
#[derive(Debug)]
pub struct GetDel {
    key: Bytes,
}

impl GetDel {
    pub fn parse(parse: &mut Parse) -> Result<GetDel, Frame> {
        Ok(GetDel {
            key: parse.sized("key")?,
        })
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        let ops = vec![Op::GetDelete { key: self.key }];
        super::Queued::new(ops, super::Reply::Bulk)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        match exec.write(Op::GetDelete { key: self.key }).await? {
            Output::Value(previous) => Ok(previous.map_or(Frame::Null, Frame::Bulk)),
            other => Err(unexpected(other)),
        }
    }
}
