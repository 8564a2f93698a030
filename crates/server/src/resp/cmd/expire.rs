//! `EXPIRE key seconds`, `PEXPIRE key milliseconds`: give a present key a time to live
//! (1 if it exists, 0 if not); `PERSIST key`: remove it (1 if the key had one, 0 if not).
//!
//! The deadline is not decided here: the leader stamps it with its own clock when it proposes
//! the command, and later proposes the key's removal through the log, so every replica
//! removes it at the same log position (see `quorate_core::kv::expiry`). A time to live of
//! zero or less makes the key due at once. Protocols without a leader refuse these commands.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Expiry, Op, Output};

#[derive(Debug)]
pub struct Expire {
    key: Bytes,
    /// `None`: PERSIST.
    ttl_ms: Option<u64>,
}

impl Expire {
    /// Parses `name` (`expire`, `pexpire` or `persist`) and its arguments.
    pub fn parse(name: &str, parse: &mut Parse) -> Result<Expire, Frame> {
        let key = parse.sized("key")?;
        let ttl_ms = match name {
            "persist" => None,
            "expire" => Some(ttl_ms(parse.integer()?, 1_000)?),
            _ => Some(ttl_ms(parse.integer()?, 1)?),
        };
        Ok(Expire { key, ttl_ms })
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        super::Queued::new(vec![self.op()], super::Reply::Existed)
    }

    fn op(self) -> Op {
        match self.ttl_ms {
            Some(ttl_ms) => Op::Expire {
                key: self.key,
                expiry: Expiry::After { ttl_ms },
            },
            None => Op::Persist { key: self.key },
        }
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let op = match self.ttl_ms {
            Some(ttl_ms) => Op::Expire {
                key: self.key,
                expiry: Expiry::After { ttl_ms },
            },
            None => Op::Persist { key: self.key },
        };
        match exec.write(op).await? {
            Output::Existed(done) => Ok(Frame::Integer(i64::from(done))),
            other => Err(unexpected(other)),
        }
    }
}

/// A time to live in `unit` milliseconds as milliseconds; zero or less is due at once.
pub fn ttl_ms(amount: i64, unit: i64) -> Result<u64, Frame> {
    let ms = amount
        .checked_mul(unit)
        .ok_or_else(|| Frame::error("ERR invalid expire time: it overflows milliseconds"))?;
    Ok(ms.max(0) as u64)
}
