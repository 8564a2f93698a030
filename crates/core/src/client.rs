//! The client side of a request: one sans-IO state machine that the simulator's clients and
//! the server's RESP sessions both drive.
//!
//! ## Identity (Raft thesis §6.3)
//!
//! A [`Session`] is a [`ClientId`] and a counter. **Every request takes the next number,
//! reads included**, so no two requests of a session share an identity: an answer is matched
//! to the request it answers by `(client, seq)` alone, and a late answer to an earlier read
//! can never complete a later one (which could return another key's value). Retries of one
//! request reuse its identity, which is what lets a state machine apply a retried write once.
//!
//! A state machine that first sees a session at a number above 1 takes it for an evicted
//! one (`SessionExpired`), and reads that a protocol serves without its log use numbers the
//! log never sees. So a session whose reads used numbers before its first write starts that
//! write under a fresh id ([`Session::start`]): a session *opens* with a write, as a
//! ZooKeeper session opens with its `createSession` transaction.
//!
//! ## One call
//!
//! A [`Call`] is one request and its retries. The driver sends [`Call::request`] somewhere,
//! and feeds back what happened: an answer ([`Call::on_reply`], after checking
//! [`Call::is_answered_by`]) or silence ([`Call::on_timeout`]). The call answers with the
//! next [`Step`]: send again (same identity) to a named node or wherever the driver thinks
//! best, after a pause; or done, with an [`Outcome`]. The rules:
//!
//! 1. `Ok`: done.
//! 2. `NotLeader { leader: Some(l) }`: the request did not take effect here. Follow it to `l`
//!    ([`Follow::Retry`]), or stop with [`Outcome::Redirect`] ([`Follow::Redirect`], only while
//!    nothing may have taken effect; otherwise the outcome is unknown). After
//!    `redirects_before_pause` hops, every further hop pauses, so nodes that disagree about
//!    the leader cost a few messages per pause instead of a busy loop.
//! 3. `NotLeader { leader: None }`: an election runs; pause and try again.
//! 4. `Indeterminate`, `Unavailable`, silence: a write may have taken effect; retry with the
//!    same identity, which the session makes safe.
//! 5. `SessionExpired`: the outcome cannot be known ([`Outcome::Expired`]).
//! 6. `Rejected`: refused, no effect ([`Outcome::Rejected`]) — unless an earlier attempt may
//!    have taken effect, in which case the refusal of the retry says nothing and the outcome
//!    is unknown.
//!
//! Deadlines are the driver's: it owns the clocks. A call past its deadline is
//! [`Call::give_up`], whose outcome is [`Outcome::Unknown`].

use crate::ids::{ClientId, NodeId};
use crate::kv::{ClientError, Op, Output, ReadMode, Reply, Request};
use std::time::Duration;

/// A deliberately broken client, for tests that prove the checks catch it. No production
/// driver sets one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientBug {
    /// Reads carry request number 0 and use no number of their own (what the server did
    /// before every request had an identity): a late answer to an earlier read then completes
    /// the session's current read.
    ReadsWithoutIdentity,
}

/// A client session: an id and the number of its next request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    id: ClientId,
    next_seq: u64,
    /// A write was started in this session (or it was resumed, which implies one).
    opened: bool,
    bug: Option<ClientBug>,
}

impl Session {
    /// A new session; its first request is number 1.
    pub fn new(id: ClientId) -> Session {
        Session {
            id,
            next_seq: 1,
            opened: false,
            bug: None,
        }
    }

    /// Continues session `id` at request number `next_seq` (a client that reconnected).
    pub fn resumed(id: ClientId, next_seq: u64) -> Session {
        Session {
            id,
            next_seq: next_seq.max(1),
            opened: true,
            bug: None,
        }
    }

    /// Makes this session behave as `bug` describes (tests only).
    pub fn with_bug(mut self, bug: Option<ClientBug>) -> Session {
        self.bug = bug;
        self
    }

    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The number the next request will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether a write was started in this session.
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// Makes the next write keep this session's id: a session whose reads used numbers
    /// before any write moves to a fresh id now rather than at that write. For a client that
    /// records `(id, next_seq)` to retry the write after reconnecting.
    pub fn prepare_write(&mut self, fresh: impl FnOnce() -> ClientId) {
        if !self.opened && self.next_seq > 1 {
            self.id = fresh();
            self.next_seq = 1;
        }
    }

    /// `call` was refused (it did not take effect): if it was the write that opened the
    /// session, the session is not open after all.
    pub fn refused(&mut self, call: &Call) {
        if call.opens {
            self.opened = false;
        }
    }

    /// Gives `op` its identity: the session's next number. A write of a session that is not
    /// open yet but whose reads used numbers moves to a fresh id from `fresh` first (see the
    /// module docs).
    pub fn start(&mut self, op: &Op, fresh: impl FnOnce() -> ClientId) -> (ClientId, u64) {
        if op.is_read() && self.bug == Some(ClientBug::ReadsWithoutIdentity) {
            return (self.id, 0);
        }
        if !op.is_read() {
            self.prepare_write(fresh);
            self.opened = true;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        (self.id, seq)
    }
}

/// How a call follows a `NotLeader` answer that names the leader.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Follow {
    /// Send the request there (a server forwarding for its client, or a simulated client).
    Retry,
    /// Stop and tell the caller where the leader is (Redis Cluster's `MOVED`).
    Redirect,
}

/// The tunables of a call.
#[derive(Clone, Copy, Debug)]
pub struct CallPolicy {
    /// Pause before retrying after silence, an unknown leader or an indeterminate answer.
    pub retry_pause: Duration,
    /// Pause before following a named leader, for the first `redirects_before_pause` hops.
    pub redirect_pause: Duration,
    /// Hops to a named leader before each further one pauses `retry_pause`.
    pub redirects_before_pause: u32,
    pub follow: Follow,
}

/// What the driver does next for a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send [`Call::request`] again after `pause`: to `to`, or (`None`) wherever the driver
    /// thinks best (the node it asked before, or another one after silence).
    Send { to: Option<NodeId>, pause: Duration },
    /// The call is over.
    Done(Outcome),
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Ok(Output),
    /// Not applied; node `leader` serves requests ([`Follow::Redirect`] only).
    Redirect(NodeId),
    /// Refused; it did not take effect.
    Rejected(String),
    /// The session was evicted; the outcome of the request cannot be known.
    Expired,
    /// No definite answer: the request may or may not have taken effect.
    Unknown(String),
}

/// One request and its retries.
#[derive(Clone, Debug)]
pub struct Call {
    request: Request,
    policy: CallPolicy,
    /// A write attempt ended without a definite answer: it may have taken effect.
    may_have_taken_effect: bool,
    redirects: u32,
    /// This write opened its session.
    opens: bool,
}

impl Call {
    /// Starts a call of `op` in `session` (see [`Session::start`] for `fresh`).
    pub fn start(
        session: &mut Session,
        op: Op,
        read: ReadMode,
        policy: CallPolicy,
        fresh: impl FnOnce() -> ClientId,
    ) -> Call {
        let was_open = session.opened();
        let (client, seq) = session.start(&op, fresh);
        let request = Request {
            client,
            seq,
            op,
            read,
            quorum: None,
        };
        Call {
            request,
            policy,
            may_have_taken_effect: false,
            redirects: 0,
            opens: !was_open && session.opened(),
        }
    }

    /// What to send, every attempt the same.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Whether `reply` answers this call (and not an earlier request of its session).
    pub fn is_answered_by(&self, reply: &Reply) -> bool {
        reply.client == self.request.client && reply.seq == self.request.seq
    }

    /// Whether some attempt may have taken effect.
    pub fn may_have_taken_effect(&self) -> bool {
        self.may_have_taken_effect
    }

    /// The answer `result` arrived from node `from` (checked with [`Call::is_answered_by`]).
    pub fn on_reply(&mut self, from: NodeId, result: Result<Output, ClientError>) -> Step {
        let error = match result {
            Ok(output) => return Step::Done(Outcome::Ok(output)),
            Err(error) => error,
        };
        match error {
            ClientError::NotLeader {
                leader: Some(leader),
            } if leader != from => self.follow(leader),
            ClientError::NotLeader { .. } => self.pause(None),
            ClientError::Indeterminate { leader } => {
                self.lost_track();
                self.pause(leader.filter(|l| *l != from))
            }
            ClientError::Unavailable => {
                self.lost_track();
                self.pause(None)
            }
            ClientError::SessionExpired => Step::Done(Outcome::Expired),
            ClientError::Rejected(why) if self.may_have_taken_effect => {
                let why =
                    format!("an earlier attempt may have applied it, a retry was refused ({why})");
                Step::Done(Outcome::Unknown(why))
            }
            ClientError::Rejected(why) => Step::Done(Outcome::Rejected(why)),
        }
    }

    /// No answer came within an attempt's time.
    pub fn on_timeout(&mut self) -> Step {
        self.lost_track();
        self.pause(None)
    }

    /// The driver's deadline passed.
    pub fn give_up(&self, why: String) -> Outcome {
        Outcome::Unknown(why)
    }

    /// An attempt ended without a definite answer: a write may have taken effect.
    fn lost_track(&mut self) {
        self.may_have_taken_effect |= !self.request.op.is_read();
    }

    fn pause(&self, to: Option<NodeId>) -> Step {
        Step::Send {
            to,
            pause: self.policy.retry_pause,
        }
    }

    fn follow(&mut self, leader: NodeId) -> Step {
        if self.policy.follow == Follow::Redirect {
            if !self.may_have_taken_effect {
                return Step::Done(Outcome::Redirect(leader));
            }
            let why = format!("leadership moved to {leader} while the request was in flight");
            return Step::Done(Outcome::Unknown(why));
        }
        self.redirects += 1;
        let pause = if self.redirects > self.policy.redirects_before_pause {
            self.policy.retry_pause
        } else {
            self.policy.redirect_pause
        };
        Step::Send {
            to: Some(leader),
            pause,
        }
    }
}

#[cfg(test)]
mod tests;
