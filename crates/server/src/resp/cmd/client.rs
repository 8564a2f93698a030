//! `CLIENT` subcommands: the connection's session.
//!
//! - `CLIENT ID`: the session id of this connection.
//! - `CLIENT SESSION`: `[id, next request number]`, what a client records to resume later:
//!   the identity the connection's next request, if it is a write, will have.
//! - `CLIENT RESUME id seq`: continue session `id` on this connection; the next request gets
//!   number `seq`. Every request takes a number, reads included (an answer is matched to its
//!   request by number), so record `CLIENT SESSION` right before the write you may need to
//!   retry. To retry a write whose answer was lost, resume at that write's number and send it
//!   again: it is applied at most once, and answers what it answered the first time. Only
//!   while nothing is in flight.
//! - `CLIENT LEASE`: the id of the connection's session lease, which its `SET ... EPHEMERAL`
//!   keys are attached to; nil until the first such write (see `resp/ephemeral.rs`).
//! - `CLIENT SESSIONTIMEOUT [ms]`: the session lease's time to live, 10000 ms unless set
//!   (300 ms to a day) before the first ephemeral write; without an argument, answers it. The
//!   server renews the lease every third of it while the connection is open, so the keys
//!   outlive a dead or cut-off node by at most this long.
//! - `CLIENT SETNAME name`, `CLIENT GETNAME`, `CLIENT SETINFO ...`: accepted for client
//!   libraries that send them.

use super::{parse_integer, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::Session;
use bytes::Bytes;
use quorate_core::ClientId;

#[derive(Debug)]
pub enum Client {
    Id,
    Session,
    Resume { id: u64, seq: u64 },
    SetName(Bytes),
    GetName,
    SetInfo,
    Lease,
    SessionTimeout(Option<u64>),
}

impl Client {
    pub fn parse(parse: &mut Parse) -> Result<Client, Frame> {
        let Some(sub) = parse.keyword() else {
            return Err(Frame::error(
                "ERR wrong number of arguments for 'client' command",
            ));
        };
        let number = |bytes: Bytes| {
            parse_integer(&bytes)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| {
                    Frame::error("ERR CLIENT RESUME takes a session id and a request number")
                })
        };
        match sub.as_str() {
            "ID" => Ok(Client::Id),
            "SESSION" => Ok(Client::Session),
            "RESUME" => {
                let id = number(parse.bytes()?)?;
                let seq = number(parse.bytes()?)?;
                if seq == 0 {
                    return Err(Frame::error("ERR request numbers start at 1"));
                }
                Ok(Client::Resume { id, seq })
            }
            "SETNAME" => Ok(Client::SetName(parse.bytes()?)),
            "GETNAME" => Ok(Client::GetName),
            "LEASE" => Ok(Client::Lease),
            "SESSIONTIMEOUT" => match parse.optional() {
                None => Ok(Client::SessionTimeout(None)),
                Some(ms) => parse_integer(&ms)
                    .and_then(|n| u64::try_from(n).ok())
                    .map(|ms| Client::SessionTimeout(Some(ms)))
                    .ok_or_else(|| {
                        Frame::error("ERR CLIENT SESSIONTIMEOUT takes milliseconds")
                    }),
            },
            "SETINFO" => {
                parse.rest();
                Ok(Client::SetInfo)
            }
            other => Err(Frame::error(format!(
                "ERR unknown subcommand '{other}'. Try CLIENT ID, SESSION, RESUME, LEASE, SESSIONTIMEOUT, SETNAME, GETNAME"
            ))),
        }
    }

    pub fn reply(self, session: &mut Session, in_flight: usize) -> Frame {
        match self {
            Client::Id => Frame::Integer(session.primary.0 as i64),
            Client::Session => match session.prepare_write() {
                Some((id, next_seq)) => Frame::Array(vec![
                    Frame::Integer(id.0 as i64),
                    Frame::Integer(next_seq as i64),
                ]),
                None => Frame::error("ERR the session has a request in flight"),
            },
            Client::Resume { .. } if in_flight > 0 => {
                Frame::error("ERR CLIENT RESUME needs a connection with no request in flight")
            }
            Client::Resume { id, seq } => {
                session.resume(ClientId(id), seq);
                Frame::ok()
            }
            Client::SetName(name) => {
                session.name = Some(String::from_utf8_lossy(&name).into_owned());
                Frame::ok()
            }
            Client::GetName => match &session.name {
                Some(name) => Frame::Bulk(Bytes::from(name.clone())),
                None => Frame::Null,
            },
            Client::SetInfo => Frame::ok(),
            Client::Lease => match session.lease.id() {
                Some(id) => Frame::Integer(id as i64),
                None => Frame::Null,
            },
            Client::SessionTimeout(None) => Frame::Integer(session.lease.timeout_ms() as i64),
            Client::SessionTimeout(Some(ms)) => match session.lease.set_timeout_ms(ms) {
                Ok(()) => Frame::ok(),
                Err(e) => Frame::error(e),
            },
        }
    }
}
