//! `LEASE`: etcd's leases over RESP (see `quorate_core::kv::lease`). A lease is a time to live
//! shared by any number of keys; a client keeps it alive, and when it runs out or is revoked
//! every key attached to it goes at once.
//!
//! - `LEASE GRANT seconds` or `LEASE GRANT PX milliseconds`: a new lease; answers its id. The
//!   time to live must be positive.
//! - `LEASE KEEPALIVE id`: renews it for another time to live, counted from the leader's clock
//!   now; answers the seconds left, rounded up (etcd's `TTL`).
//! - `LEASE REVOKE id`: ends it now; answers how many keys it removed.
//! - `LEASE TTL id` / `LEASE PTTL id`: the seconds (rounded up) or milliseconds it has left,
//!   -2 when there is no such lease.
//! - `LEASE KEYS id`: the keys attached, in key order.
//!
//! `KEEPALIVE`, `REVOKE` and `KEYS` answer `ERR lease <id> not found (it expired or was
//! revoked)` for a lease that is gone. Keys are attached with `SET key value LEASE id`
//! (`set.rs`); a later plain `SET`, `DEL`, `EXPIRE` or `PERSIST` detaches the key.
//!
//! Like `TTL`, the reads take an optional trailing read mode (`LINEARIZABLE`, `SYNC`,
//! `LOCAL`) and otherwise the connection's; the deadline is the leader's, and the time left
//! is measured against this machine's clock (see `ttl.rs`). A lease the serving node's clock
//! finds past due is not read until its expiry has committed, so a read never shows a lease
//! whose keys another read already found gone. Only Raft, whose leader stamps deadlines,
//! serves leases; the others refuse.

use super::{read_mode_arg, unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use quorate_core::kv::{LeaseView, Lifetime};
use quorate_core::{Op, Output, ReadMode, Time};

#[derive(Debug)]
pub enum Lease {
    Grant {
        ttl_ms: u64,
    },
    KeepAlive {
        id: u64,
    },
    Revoke {
        id: u64,
    },
    Ttl {
        id: u64,
        in_ms: bool,
        mode: Option<ReadMode>,
    },
    Keys {
        id: u64,
        mode: Option<ReadMode>,
    },
}

/// The error a command answers when lease `id` does not exist (any more).
pub fn not_found(id: u64) -> String {
    format!("ERR lease {id} not found (it expired or was revoked)")
}

/// A lease id argument: a positive integer.
pub fn lease_id(parse: &mut Parse) -> Result<u64, Frame> {
    let id = parse.integer()?;
    u64::try_from(id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Frame::error("ERR a lease id is a positive integer"))
}

impl Lease {
    pub fn parse(parse: &mut Parse) -> Result<Lease, Frame> {
        let Some(sub) = parse.keyword() else {
            return Err(Frame::error(
                "ERR wrong number of arguments for 'lease' command",
            ));
        };
        Ok(match sub.as_str() {
            "GRANT" => {
                let first = parse.bytes()?;
                let (amount, unit) = if first.eq_ignore_ascii_case(b"PX") {
                    (parse.integer()?, 1)
                } else {
                    let seconds = super::parse_integer(&first).ok_or_else(|| {
                        Frame::error("ERR value is not an integer or out of range")
                    })?;
                    (seconds, 1_000)
                };
                if amount <= 0 {
                    return Err(Frame::error(
                        "ERR invalid time to live in 'lease grant': it must be positive",
                    ));
                }
                Lease::Grant {
                    ttl_ms: super::expire::ttl_ms(amount, unit)?,
                }
            }
            "KEEPALIVE" => Lease::KeepAlive {
                id: lease_id(parse)?,
            },
            "REVOKE" => Lease::Revoke {
                id: lease_id(parse)?,
            },
            "TTL" | "PTTL" => Lease::Ttl {
                id: lease_id(parse)?,
                in_ms: sub == "PTTL",
                mode: read_mode_arg(parse)?,
            },
            "KEYS" => Lease::Keys {
                id: lease_id(parse)?,
                mode: read_mode_arg(parse)?,
            },
            other => {
                return Err(Frame::error(format!(
                    "ERR unknown subcommand '{other}'. Try LEASE GRANT, KEEPALIVE, REVOKE, \
                     TTL, PTTL or KEYS"
                )))
            }
        })
    }

    /// True for the subcommands that only read.
    pub fn is_read(&self) -> bool {
        matches!(self, Lease::Ttl { .. } | Lease::Keys { .. })
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        match self {
            Lease::Grant { ttl_ms } => {
                let view = lease_of(exec.write(Op::LeaseGrant { ttl_ms, now: None }).await?)?
                    .ok_or_else(|| unexpected(Output::Lease(None)))?;
                Ok(Frame::Integer(view.id as i64))
            }
            Lease::KeepAlive { id } => {
                let op = Op::LeaseKeepAlive {
                    lease: id,
                    now: None,
                };
                Ok(match lease_of(exec.write(op).await?)? {
                    Some(view) => Frame::Integer(seconds_left(&view)),
                    None => Frame::error(not_found(id)),
                })
            }
            Lease::Revoke { id } => Ok(
                match lease_of(exec.write(Op::LeaseRevoke { lease: id }).await?)? {
                    Some(view) => Frame::Integer(view.keys.len() as i64),
                    None => Frame::error(not_found(id)),
                },
            ),
            Lease::Ttl { id, in_ms, mode } => {
                let mode = mode.unwrap_or(exec.read_mode);
                Ok(Frame::Integer(
                    match lease_of(exec.read(Op::LeaseRead { lease: id }, mode).await?)? {
                        None => -2,
                        Some(view) if in_ms => ms_left(&view),
                        Some(view) => seconds_left(&view),
                    },
                ))
            }
            Lease::Keys { id, mode } => {
                let mode = mode.unwrap_or(exec.read_mode);
                Ok(
                    match lease_of(exec.read(Op::LeaseRead { lease: id }, mode).await?)? {
                        Some(view) => {
                            Frame::Array(view.keys.into_iter().map(Frame::Bulk).collect())
                        }
                        None => Frame::error(not_found(id)),
                    },
                )
            }
        }
    }
}

fn lease_of(output: Output) -> Result<Option<LeaseView>, CallError> {
    match output {
        Output::Lease(view) => Ok(view),
        other => Err(unexpected(other)),
    }
}

/// Milliseconds from this machine's clock to the lease's deadline (at least 0), as `PTTL`
/// measures a key's.
fn ms_left(view: &LeaseView) -> i64 {
    let now = Time::from_nanos(crate::runtime::unix_nanos());
    Lifetime::Until(view.deadline).pttl_ms(now)
}

/// Seconds left, rounded up as etcd rounds a lease's TTL.
fn seconds_left(view: &LeaseView) -> i64 {
    (ms_left(view) + 999) / 1_000
}
