//! `TTL key`, `PTTL key`: the time a key has left in seconds (rounded) or milliseconds; -1 if
//! it never expires, -2 if it is absent, as in Redis.
//!
//! The node answers the key's deadline (on the clock of the leader that stamped it); the time
//! left is measured here against this machine's clock, the same Unix-epoch clock the node
//! runs on, so with clocks synchronized (NTP) the answer is within their offset of the
//! leader's view. A read of a key past its deadline is not answered until the key's removal
//! has committed (see `quorate_core::kv::expiry`), so it never shows a time of a key that is
//! gone.

use super::{read_mode_arg, unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output, ReadMode};

#[derive(Debug)]
pub struct Ttl {
    key: Bytes,
    in_ms: bool,
    mode: Option<ReadMode>,
}

impl Ttl {
    /// Parses `ttl` or `pttl` and its key.
    pub fn parse(name: &str, parse: &mut Parse) -> Result<Ttl, Frame> {
        let key = parse.sized("key")?;
        let mode = read_mode_arg(parse)?;
        Ok(Ttl {
            key,
            in_ms: name == "pttl",
            mode,
        })
    }

    /// As a command of a transaction (see `multi.rs`).
    pub fn queued(self) -> super::Queued {
        let reply = super::Reply::Ttl { in_ms: self.in_ms };
        super::Queued::new(vec![Op::Ttl { key: self.key }], reply)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mode = self.mode.unwrap_or(exec.read_mode);
        let lifetime = match exec.read(Op::Ttl { key: self.key }, mode).await? {
            Output::Lifetime(lifetime) => lifetime,
            other => return Err(unexpected(other)),
        };
        Ok(Frame::Integer(super::multi::ttl_reply(
            lifetime, self.in_ms,
        )))
    }
}
