//! `SETNX key value` is `SET key value NX` answering 1 or 0.
//!
//! `SET key value [NX] [EX seconds | PX milliseconds]`: `OK`. With `NX`, only if the key is
//! absent (a compare-and-set against "absent"): `OK` if set, nil if not. `SETEX key seconds
//! value` and `PSETEX key milliseconds value` are `SET` with a time to live. A time to live
//! is stamped into a deadline by the leader (see `quorate_core::kv::expiry`); `NX` together
//! with a time to live, `EXAT`, `PXAT` and `KEEPTTL` are refused.
//!
//! With a protocol that keeps siblings (multiprimary with version vectors), SET carries the
//! causal context the connection has seen for the key, superseding exactly those versions
//! (see `session::Contexts`).

use super::{unexpected, Parse};
use crate::metrics::Metrics;
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Expiry, Op, Output};
use quorate_protocols::multiprimary::SIBLING_LIMIT_REFUSAL;

#[derive(Debug)]
pub struct Set {
    key: Bytes,
    value: Bytes,
    only_if_absent: bool,
    ttl_ms: Option<u64>,
    /// SETNX: answer 1 or 0 instead of `OK` or nil.
    answer_integer: bool,
}

impl Set {
    pub fn parse(parse: &mut Parse) -> Result<Set, Frame> {
        let key = parse.sized("key")?;
        let value = parse.sized("value")?;
        let mut only_if_absent = false;
        let mut ttl_ms = None;
        while let Some(option) = parse.keyword() {
            match option.as_str() {
                "NX" => only_if_absent = true,
                "EX" | "PX" if ttl_ms.is_none() => {
                    let unit = if option == "EX" { 1_000 } else { 1 };
                    ttl_ms = Some(positive_ttl_ms(parse.integer()?, unit)?);
                }
                "EXAT" | "PXAT" | "KEEPTTL" => {
                    return Err(Frame::error(format!(
                        "ERR SET {option} is not supported: give a relative time with EX or PX"
                    )))
                }
                other => {
                    return Err(Frame::error(format!(
                        "ERR unsupported SET option '{other}'"
                    )))
                }
            }
        }
        if only_if_absent && ttl_ms.is_some() {
            return Err(Frame::error(
                "ERR SET NX with EX/PX is not supported yet: SET NX, then EXPIRE",
            ));
        }
        Ok(Set {
            key,
            value,
            only_if_absent,
            ttl_ms,
            answer_integer: false,
        })
    }

    /// `SETNX key value`: `SET key value NX`, answering 1 if set and 0 if not.
    pub fn parse_setnx(parse: &mut Parse) -> Result<Set, Frame> {
        Ok(Set {
            key: parse.sized("key")?,
            value: parse.sized("value")?,
            only_if_absent: true,
            ttl_ms: None,
            answer_integer: true,
        })
    }

    /// `SETEX key seconds value` or `PSETEX key milliseconds value`.
    pub fn parse_setex(name: &str, parse: &mut Parse) -> Result<Set, Frame> {
        let key = parse.sized("key")?;
        let unit = if name == "setex" { 1_000 } else { 1 };
        let ttl_ms = Some(positive_ttl_ms(parse.integer()?, unit)?);
        let value = parse.sized("value")?;
        Ok(Set {
            key,
            value,
            only_if_absent: false,
            ttl_ms,
            answer_integer: false,
        })
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        if self.only_if_absent {
            let op = Op::Cas {
                key: self.key,
                expected: None,
                new: self.value,
            };
            return match exec.write(op).await? {
                Output::Swapped(set) if self.answer_integer => Ok(Frame::Integer(i64::from(set))),
                Output::Swapped(true) => Ok(Frame::ok()),
                Output::Swapped(false) => Ok(Frame::Null),
                other => Err(unexpected(other)),
            };
        }
        if let Some(ttl_ms) = self.ttl_ms {
            let op = Op::PutExpiring {
                key: self.key,
                value: self.value,
                expiry: Expiry::After { ttl_ms },
            };
            return match exec.write(op).await? {
                Output::Done => Ok(Frame::ok()),
                other => Err(unexpected(other)),
            };
        }
        if exec.model().causal_contexts {
            let op = Op::PutWithContext {
                key: self.key.clone(),
                value: Some(self.value),
                context: exec.contexts.get(&self.key),
            };
            let written = exec.write(op).await;
            if let Err(CallError::Rejected(why)) = &written {
                if why.starts_with(SIBLING_LIMIT_REFUSAL) {
                    Metrics::inc(&exec.node.metrics.sibling_limit_refusals);
                }
            }
            return match written? {
                Output::Written { context } => {
                    exec.contexts.learn(&self.key, &context);
                    Ok(Frame::ok())
                }
                other => Err(unexpected(other)),
            };
        }
        let op = Op::Put {
            key: self.key,
            value: self.value,
        };
        match exec.write(op).await? {
            Output::Done => Ok(Frame::ok()),
            other => Err(unexpected(other)),
        }
    }
}

/// A SET time to live in `unit` milliseconds, which Redis requires to be positive.
fn positive_ttl_ms(amount: i64, unit: i64) -> Result<u64, Frame> {
    if amount <= 0 {
        return Err(Frame::error("ERR invalid expire time in 'set' command"));
    }
    super::expire::ttl_ms(amount, unit)
}
