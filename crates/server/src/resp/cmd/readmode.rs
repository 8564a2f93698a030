//! `READMODE [LINEARIZABLE|SYNC|LOCAL]`: the connection's read consistency (without an
//! argument, the current one).
//!
//! - `LINEARIZABLE` (the default): a read sees every write that completed before it began.
//!   Raft serves it through the log, so it costs a round of replication.
//! - `SYNC`: ZooKeeper's `sync` then read: the node first catches up with the leader, then
//!   answers from its own state (protocols without it serve it linearizably).
//! - `LOCAL`: served from the contacted node's own state, with no coordination: fast, but
//!   possibly stale (a follower may lag, a deposed leader may not know it yet).
//!
//! `READONLY` and `READWRITE` (Redis Cluster's words for "replica reads allowed") are
//! accepted as `LOCAL` and `LINEARIZABLE`. `GET key LOCAL` chooses per request.

use super::Parse;
use crate::resp::frame::Frame;
use crate::resp::session::Session;
use quorate_core::ReadMode;

#[derive(Debug)]
pub struct ReadModeCmd {
    mode: Option<ReadMode>,
}

impl ReadModeCmd {
    pub fn parse(name: &str, parse: &mut Parse) -> Result<ReadModeCmd, Frame> {
        let mode = match name {
            "readonly" => Some(ReadMode::Local),
            "readwrite" => Some(ReadMode::Linearizable),
            _ => match parse.keyword().as_deref() {
                None => None,
                Some("LINEARIZABLE") => Some(ReadMode::Linearizable),
                Some("SYNC") => Some(ReadMode::Sync),
                Some("LOCAL") => Some(ReadMode::Local),
                Some(other) => {
                    return Err(Frame::error(format!(
                        "ERR unknown read mode '{other}': use LINEARIZABLE, SYNC or LOCAL"
                    )))
                }
            },
        };
        Ok(ReadModeCmd { mode })
    }

    pub fn reply(self, session: &mut Session) -> Frame {
        match self.mode {
            Some(mode) => {
                session.read_mode = mode;
                Frame::ok()
            }
            None => Frame::Simple(
                match session.read_mode {
                    ReadMode::Linearizable => "linearizable",
                    ReadMode::Sync => "sync",
                    ReadMode::Local => "local",
                }
                .into(),
            ),
        }
    }
}
