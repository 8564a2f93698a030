//! The SET family: each sets a key in one step of the state machine (one log entry).
//!
//! - `SET key value [NX | XX] [GET] [EX seconds | PX milliseconds]`: `OK`, or nil when `NX`
//!   (only if absent) or `XX` (only if present) did not allow it; with `GET`, the previous
//!   value (nil: absent) instead. Any combination is one atomic step, so `SET lock token NX
//!   PX 30000` takes a lock with a lease, as redis-py's `Lock` and Redlock clients do.
//! - `SETNX key value`: `SET key value NX` answering 1 or 0. `SETEX key seconds value` and
//!   `PSETEX key milliseconds value`: `SET` with a time to live.
//! - `GETSET key value`: `SET key value GET`.
//! - `SET key value LEASE id`: writes the key attached to lease `id` (etcd's `put --lease`,
//!   see `lease.rs`), `OK`; `ERR lease <id> not found ...` when the lease expired or was
//!   revoked, and nothing is written. `SET key value EPHEMERAL`: attached to the connection's
//!   own session lease instead, which the server keeps alive while the connection lives and
//!   revokes when it closes (ZooKeeper's ephemeral nodes, see `resp/ephemeral.rs`). A leased
//!   key lives as long as its lease, so neither combines with `EX`/`PX`, nor with `NX`, `XX`
//!   or `GET` (the state machine's leased write is unconditional); neither runs inside `MULTI`.
//!
//! A time to live is stamped into a deadline by the leader (see `quorate_core::kv::expiry`);
//! `EXAT`, `PXAT` and `KEEPTTL` are refused, and so are contradictions (`NX` with `XX`, two
//! times to live) and unknown words (`ERR syntax error`, as Redis answers).
//!
//! With a protocol that keeps siblings (multiprimary with version vectors), a plain SET
//! carries the causal context the connection has seen for the key, superseding exactly those
//! versions (see `session::Contexts`).

use super::{unexpected, Parse};
use crate::metrics::Metrics;
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Expiry, Op, Output, SetWhen};
use quorate_protocols::multiprimary::SIBLING_LIMIT_REFUSAL;

#[derive(Debug)]
pub struct Set {
    key: Bytes,
    value: Bytes,
    when: SetWhen,
    ttl_ms: Option<u64>,
    /// `GET` (and GETSET): answer the previous value instead of `OK`.
    answer_previous: bool,
    /// SETNX: answer 1 or 0 instead of `OK` or nil.
    answer_integer: bool,
    /// `LEASE id` or `EPHEMERAL`.
    lease: Option<Leased>,
}

/// The lease a `SET` attaches its key to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leased {
    /// `LEASE id`.
    Id(u64),
    /// `EPHEMERAL`: the connection's session lease.
    Session,
}

impl Set {
    pub fn parse(parse: &mut Parse) -> Result<Set, Frame> {
        let mut set = Set::plain(parse.sized("key")?, parse.sized("value")?);
        while let Some(option) = parse.keyword() {
            match option.as_str() {
                "NX" | "XX" if set.when == SetWhen::Always => {
                    set.when = match option.as_str() {
                        "NX" => SetWhen::IfAbsent,
                        _ => SetWhen::IfPresent,
                    }
                }
                "GET" if !set.answer_previous => set.answer_previous = true,
                "EX" | "PX" if set.ttl_ms.is_none() => {
                    let unit = if option == "EX" { 1_000 } else { 1 };
                    set.ttl_ms = Some(positive_ttl_ms(parse.integer()?, unit)?);
                }
                "LEASE" if set.lease.is_none() => {
                    set.lease = Some(Leased::Id(super::lease::lease_id(parse)?));
                }
                "EPHEMERAL" if set.lease.is_none() => set.lease = Some(Leased::Session),
                "EXAT" | "PXAT" | "KEEPTTL" => {
                    return Err(Frame::error(format!(
                        "ERR SET {option} is not supported: give a relative time with EX or PX"
                    )))
                }
                _ => return Err(Frame::error("ERR syntax error")),
            }
        }
        let conditional = set.when != SetWhen::Always || set.answer_previous;
        if set.lease.is_some() && (conditional || set.ttl_ms.is_some()) {
            return Err(Frame::error(
                "ERR syntax error: SET with LEASE or EPHEMERAL takes no NX, XX, GET, EX or PX \
                 (the key lives as long as its lease, and a leased write is unconditional)",
            ));
        }
        Ok(set)
    }

    /// The lease this SET attaches its key to, if any.
    pub fn leased(&self) -> Option<Leased> {
        self.lease
    }

    /// `SET key value` without options.
    fn plain(key: Bytes, value: Bytes) -> Set {
        Set {
            key,
            value,
            when: SetWhen::Always,
            ttl_ms: None,
            answer_previous: false,
            answer_integer: false,
            lease: None,
        }
    }

    /// `SETNX key value`: `SET key value NX`, answering 1 if set and 0 if not.
    pub fn parse_setnx(parse: &mut Parse) -> Result<Set, Frame> {
        let mut set = Set::plain(parse.sized("key")?, parse.sized("value")?);
        set.when = SetWhen::IfAbsent;
        set.answer_integer = true;
        Ok(set)
    }

    /// `GETSET key value`: `SET key value GET`.
    pub fn parse_getset(parse: &mut Parse) -> Result<Set, Frame> {
        let mut set = Set::plain(parse.sized("key")?, parse.sized("value")?);
        set.answer_previous = true;
        Ok(set)
    }

    /// `SETEX key seconds value` or `PSETEX key milliseconds value`.
    pub fn parse_setex(name: &str, parse: &mut Parse) -> Result<Set, Frame> {
        let key = parse.sized("key")?;
        let unit = if name == "setex" { 1_000 } else { 1 };
        let ttl_ms = Some(positive_ttl_ms(parse.integer()?, unit)?);
        let mut set = Set::plain(key, parse.sized("value")?);
        set.ttl_ms = ttl_ms;
        Ok(set)
    }

    /// As a command of a transaction (see `multi.rs`): one [`Op::Set`] when it reads the
    /// previous value, otherwise a plain or expiring put.
    pub fn queued(self) -> super::Queued {
        let expiry = self.ttl_ms.map(|ttl_ms| Expiry::After { ttl_ms });
        if self.when != SetWhen::Always || self.answer_previous {
            let reply = super::Reply::Set {
                when: self.when,
                answer_previous: self.answer_previous,
                answer_integer: self.answer_integer,
            };
            let op = Op::Set {
                key: self.key,
                value: self.value,
                when: self.when,
                expiry,
            };
            return super::Queued::new(vec![op], reply);
        }
        let op = match expiry {
            Some(expiry) => Op::PutExpiring {
                key: self.key,
                value: self.value,
                expiry,
            },
            None => Op::Put {
                key: self.key,
                value: self.value,
            },
        };
        super::Queued::new(vec![op], super::Reply::Ok)
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        match self.lease {
            Some(Leased::Id(lease)) => {
                let op = Op::PutLeased {
                    key: self.key,
                    value: self.value,
                    lease,
                    now: None,
                };
                return match exec.write(op).await? {
                    Output::Existed(true) => Ok(Frame::ok()),
                    Output::Existed(false) => Ok(Frame::error(super::lease::not_found(lease))),
                    other => Err(unexpected(other)),
                };
            }
            Some(Leased::Session) => {
                let Some(session) = exec.session_lease.clone() else {
                    return Err(CallError::Rejected(
                        "no connection to attach an ephemeral key to".into(),
                    ));
                };
                session.put(exec, self.key, self.value).await?;
                return Ok(Frame::ok());
            }
            None => {}
        }
        if self.when != SetWhen::Always || self.answer_previous {
            return self.execute_conditional(exec).await;
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

impl Set {
    /// A SET that reads before it writes (`NX`, `XX`, `GET`): one [`Op::Set`], whose answer
    /// is the previous value.
    async fn execute_conditional(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let plain_nx = self.when == SetWhen::IfAbsent && !self.answer_previous;
        if plain_nx && self.ttl_ms.is_none() {
            // A CAS from absent: what single-decree Paxos serves too.
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
        let op = Op::Set {
            key: self.key,
            value: self.value,
            when: self.when,
            expiry: self.ttl_ms.map(|ttl_ms| Expiry::After { ttl_ms }),
        };
        let previous = match exec.write(op).await? {
            Output::Value(previous) => previous,
            other => return Err(unexpected(other)),
        };
        let set = self.when.allows(previous.as_ref());
        Ok(match (self.answer_previous, self.answer_integer, set) {
            (true, ..) => previous.map_or(Frame::Null, Frame::Bulk),
            (false, true, set) => Frame::Integer(i64::from(set)),
            (false, false, true) => Frame::ok(),
            (false, false, false) => Frame::Null,
        })
    }
}

/// A SET time to live in `unit` milliseconds, which Redis requires to be positive.
fn positive_ttl_ms(amount: i64, unit: i64) -> Result<u64, Frame> {
    if amount <= 0 {
        return Err(Frame::error("ERR invalid expire time in 'set' command"));
    }
    super::expire::ttl_ms(amount, unit)
}
