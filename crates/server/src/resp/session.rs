//! Client sessions over RESP, and how one operation reaches the node that can serve it.
//!
//! Every connection is a client session in the sense of the Raft thesis §6.3: a [`ClientId`]
//! and request numbers 1, 2, 3, ..., one per request, reads included, so that a retried write
//! is applied once and an answer is never taken for the answer to another request. The
//! protocols accept one outstanding request per session, so a connection that pipelines
//! holds several *lanes*, each a session of its own (the first is the connection's `CLIENT
//! ID`); a request takes a free lane and gives it back when its reply is written. A client
//! that lost a connection can continue its session on a new one with `CLIENT RESUME id seq`
//! and resend the write whose answer it lost: the state machine returns the remembered
//! answer instead of applying it twice.
//!
//! ## Getting an answer
//!
//! Numbering, retries, following the leader and what an answer means are the sans-IO
//! [`quorate_core::client`] state machine, the same one the simulator's clients drive under
//! faults. [`Exec::call`] only carries it out: it hands the request to the local node's
//! runtime (or, to follow a leader, to the runtime for forwarding to that node), waits up
//! to `ATTEMPT_TIMEOUT` for the answer, and asks the [`Call`] what to do next, until the
//! request deadline. In `forward` mode a `NotLeader` answer naming the leader is followed
//! (the runtime forwards it over the peer link and relays the answer); in `redirect` mode it
//! answers `-MOVED 0 <leader's client address>`. A deadline reached answers `-TIMEOUT`:
//! the outcome is unknown.
//!
//! Leaderless protocols (quorum, multiprimary) never answer `NotLeader`, so a request and
//! all its retries run at the connected node, which is what their coordinators'
//! per-node deduplication of retried writes needs.
//!
//! ## Causal contexts (multiprimary with version vectors)
//!
//! When the protocol keeps siblings ([`ClientModel::causal_contexts`]), the connection
//! remembers per key the join of every causal context its GETs and SETs were answered with
//! ([`Contexts`]), and a SET carries it: the write supersedes exactly the versions this
//! connection has seen, and stays a sibling of writes it has not (Riak's model). A connection
//! that never read a key writes blindly, adding a sibling.

use crate::served::ClientModel;
use bytes::Bytes;
use quorate_core::clock::CausalContext;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::frame::Frame;
use crate::config::FollowerMode;
use crate::metrics::Metrics;
use crate::runtime::NodeHandle;
use quorate_core::client::{self, Call, CallPolicy, Follow, Outcome, Step};
use quorate_core::{ClientId, NodeId, Op, Output, ReadMode};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long one attempt waits before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Pause before retrying while no leader is known or leadership just changed.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Hops of one request to a named leader before each further one waits `RETRY_PAUSE`
/// (nodes that disagree about the leader would otherwise bounce it busily).
pub const FORWARDS_BEFORE_PAUSE: u32 = 3;
/// Keys whose causal context a connection remembers, at most.
const CONTEXTS_MAX: usize = 4096;

/// Per key, the join of the causal contexts a connection's requests were answered with.
/// Shared by the connection's pipelined commands.
#[derive(Clone, Default)]
pub struct Contexts(Arc<Mutex<BTreeMap<Bytes, CausalContext>>>);

impl Contexts {
    /// The context to send with a write of `key` (empty: the connection has seen nothing).
    pub fn get(&self, key: &Bytes) -> CausalContext {
        let map = self.0.lock().expect("contexts lock");
        map.get(key).cloned().unwrap_or_default()
    }

    /// Joins `context` into what the connection has seen of `key`. Beyond `CONTEXTS_MAX`
    /// keys one is forgotten; its next SET is then blind (one more sibling, nothing lost).
    pub fn learn(&self, key: &Bytes, context: &CausalContext) {
        let mut map = self.0.lock().expect("contexts lock");
        if !map.contains_key(key) && map.len() >= CONTEXTS_MAX {
            map.pop_first();
        }
        map.entry(key.clone()).or_default().join(context);
    }
}

/// One session of a connection (a [`client::Session`]), and whether it is the one `CLIENT ID`
/// names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub session: client::Session,
    pub primary: bool,
}

/// A fresh session id, random and positive as an i64 (so `CLIENT ID` can show it).
pub fn fresh_id() -> ClientId {
    ClientId(rand::random::<u64>() >> 2)
}

impl Lane {
    /// A lane of a new session.
    pub fn fresh(primary: bool) -> Lane {
        Lane {
            session: client::Session::new(fresh_id()),
            primary,
        }
    }
}

/// The per-connection session state.
pub struct Session {
    /// The id `CLIENT ID` reports: the primary lane's.
    pub primary: ClientId,
    /// Lanes not in use; the primary first in line for a client that does not pipeline.
    pub free: Vec<Lane>,
    /// Reads are served this way unless a command names a mode.
    pub read_mode: ReadMode,
    pub name: Option<String>,
    /// Causal contexts per key, for protocols that keep siblings.
    pub contexts: Contexts,
    /// Who the connection is; `None` until it authenticates (see [`crate::auth`]).
    pub access: Option<crate::auth::Access>,
    /// The transaction being queued, between `MULTI` and `EXEC`/`DISCARD`.
    pub multi: Option<super::cmd::Multi>,
    /// What the `WATCH`es since the last `EXEC`/`DISCARD`/`UNWATCH` will guard it with.
    pub watched: Vec<super::cmd::Watched>,
    /// The session lease of this connection's ephemeral keys (see `ephemeral.rs`).
    pub lease: super::ephemeral::SessionLease,
}

impl Session {
    pub fn new() -> Session {
        let lane = Lane::fresh(true);
        Session {
            primary: lane.session.id(),
            free: vec![lane],
            read_mode: ReadMode::Linearizable,
            name: None,
            contexts: Contexts::default(),
            access: None,
            multi: None,
            watched: Vec::new(),
            lease: Default::default(),
        }
    }

    pub fn take_lane(&mut self) -> Lane {
        self.free.pop().unwrap_or_else(|| Lane::fresh(false))
    }

    /// Returns a lane after its command; the primary lane may have moved to a new id (a
    /// session opens with a write, see [`client::Session::start`]).
    pub fn give_back(&mut self, lane: Lane) {
        if lane.primary {
            self.primary = lane.session.id();
        }
        self.free.push(lane);
    }

    /// The identity the primary lane's next write will have (`CLIENT SESSION`), if no request
    /// holds the lane.
    pub fn prepare_write(&mut self) -> Option<(ClientId, u64)> {
        let lane = self.free.iter_mut().find(|l| l.primary)?;
        lane.session.prepare_write(fresh_id);
        self.primary = lane.session.id();
        Some((lane.session.id(), lane.session.next_seq()))
    }

    /// Continues session `id` at request number `next_seq` (`CLIENT RESUME`).
    pub fn resume(&mut self, id: ClientId, next_seq: u64) {
        self.primary = id;
        self.free = vec![Lane {
            session: client::Session::resumed(id, next_seq),
            primary: true,
        }];
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

/// Why an operation got no output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Not applied here; the leader is `leader`, reachable for clients at `addr`.
    Redirect {
        leader: NodeId,
        addr: Option<std::net::SocketAddr>,
    },
    /// Refused; did not take effect.
    Rejected(String),
    /// The session was evicted; the outcome of the request cannot be known.
    Expired,
    /// No answer: the request may or may not have taken effect.
    Unknown(String),
}

impl CallError {
    pub fn to_frame(&self) -> Frame {
        match self {
            CallError::Redirect { addr: Some(addr), .. } => Frame::error(format!("MOVED 0 {addr}")),
            CallError::Redirect { leader, addr: None } => Frame::error(format!(
                "TRYAGAIN not the leader; the leader is {leader} but its client address is not known yet"
            )),
            CallError::Rejected(why) => Frame::error(format!("ERR rejected: {why}")),
            CallError::Expired => Frame::error("ERR client session expired: the outcome of this request cannot be known"),
            CallError::Unknown(why) => Frame::error(format!("TIMEOUT outcome unknown: {why}")),
        }
    }
}

/// What a command needs to run against the node.
pub struct Exec {
    pub node: NodeHandle,
    pub lane: Lane,
    pub read_mode: ReadMode,
    pub order: Order,
    pub contexts: Contexts,
    /// The connection's session lease, for `SET ... EPHEMERAL`; `None` for requests the server
    /// makes on its own (renewals).
    pub session_lease: Option<super::ephemeral::SessionLease>,
}

/// Keeps a connection's pipelined commands in the order they were sent, as Redis does: a
/// command's first request is enqueued only after the previous command released it. A
/// one-request command releases its successor as soon as its request is in the runtime's
/// queue (the runtime, the peer link and the leader all keep FIFO order from there); a
/// command of several requests (DEL or EXISTS of several keys) releases it when it completes.
///
/// A read after writes waits until those writes completed (`after_writes`). Release on
/// enqueue alone is not enough for reads: a linearizable read served by ReadIndex or a lease
/// reflects what is *committed* when it arrives, which need not include a write enqueued just
/// before it, so `SET k v` then `GET k` in one pipeline could read the old value. (That would
/// still be linearizable — the two overlap — but Redis clients expect their own order.)
///
/// Retries after a failure are not ordered: a pipeline that spans a leader change may see
/// its commands applied out of order.
#[derive(Default)]
pub struct Order {
    /// Resolves (or is dropped) when the previous command releases this one.
    pub previous: Option<oneshot::Receiver<()>>,
    /// Released by this command; dropping it releases too.
    pub next: Option<oneshot::Sender<()>>,
    /// Release `next` as soon as the first request is enqueued.
    pub release_on_enqueue: bool,
    /// For a read: resolve (or are dropped) when the connection's earlier writes completed.
    pub after_writes: Vec<oneshot::Receiver<()>>,
    /// For a write: dropped when it completes, which resolves a later read's `after_writes`.
    pub done: Option<oneshot::Sender<()>>,
}

impl Exec {
    /// How the protocol's answers look (siblings or single values).
    pub fn model(&self) -> ClientModel {
        self.node.model
    }

    /// Applies a write in this lane's session, exactly once.
    pub async fn write(&mut self, op: Op) -> Result<Output, CallError> {
        self.call(op, ReadMode::Linearizable).await
    }

    /// Serves a read in `mode`. A read takes a request number too: its answer must never be
    /// mistaken for the answer to another request of the session.
    pub async fn read(&mut self, op: Op, mode: ReadMode) -> Result<Output, CallError> {
        self.call(op, mode).await
    }

    /// Gets an answer for one request: a [`Call`] decides what each answer means (see
    /// [`quorate_core::client`]); this drives it with real time and the node's queue.
    async fn call(&mut self, op: Op, read: ReadMode) -> Result<Output, CallError> {
        for write in std::mem::take(&mut self.order.after_writes) {
            let _ = write.await; // Completed (or gone): either way, its effect is decided.
        }
        if let Some(previous) = self.order.previous.take() {
            let _ = previous.await; // Released, or the previous command is gone: either way, go.
        }
        // Back-pressure: wait for a slot rather than overflow the protocol's bounded queues.
        // The wait is boxed, as `NodeHandle::enqueue`'s is: it is rare, and its future would
        // otherwise take space in every request's task.
        let _permit = match self.node.inflight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => Box::pin(self.node.inflight.clone().acquire_owned())
                .await
                .ok(),
        };
        let node = self.node.clone();
        let timeout = node.config.request_timeout();
        let deadline = Instant::now() + timeout;
        let mut call = Call::start(&mut self.lane.session, op, read, policy(&node), fresh_id);
        let mut via: Option<NodeId> = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return answer(&node, call.give_up(format!("no answer within {timeout:?}")));
            }
            let answered = node.enqueue(call.request().clone(), via).await;
            if self.order.release_on_enqueue {
                self.order.next.take();
            }
            let attempt = async { answered?.await.ok() };
            let limit = ATTEMPT_TIMEOUT.min(deadline - now);
            let step = match tokio::time::timeout(limit, attempt).await {
                Ok(Some(reply)) if call.is_answered_by(&reply) => {
                    call.on_reply(via.unwrap_or(node.me()), reply.result)
                }
                // The runtime routes answers by request identity, so a foreign answer would be
                // its bug; it is no answer to this request either way.
                Ok(Some(_)) | Ok(None) | Err(_) => call.on_timeout(),
            };
            match step {
                Step::Done(outcome) => return answer(&node, outcome),
                Step::Send { to, pause } => {
                    if to.is_some() {
                        Metrics::inc(&node.metrics.client_forwards);
                    }
                    via = to.filter(|l| *l != node.me());
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
}

/// The call policy of this node's configuration.
fn policy(node: &NodeHandle) -> CallPolicy {
    CallPolicy {
        retry_pause: RETRY_PAUSE,
        redirect_pause: Duration::ZERO,
        redirects_before_pause: FORWARDS_BEFORE_PAUSE,
        follow: match node.config.follower {
            FollowerMode::Forward => Follow::Retry,
            FollowerMode::Redirect => Follow::Redirect,
        },
    }
}

/// What a finished call answers the command.
fn answer(node: &NodeHandle, outcome: Outcome) -> Result<Output, CallError> {
    match outcome {
        Outcome::Ok(output) => Ok(output),
        Outcome::Redirect(leader) => {
            Metrics::inc(&node.metrics.client_redirects);
            let addr = node.peers.client_addr_of(leader);
            Err(CallError::Redirect { leader, addr })
        }
        Outcome::Rejected(why) => Err(CallError::Rejected(why)),
        Outcome::Expired => Err(CallError::Expired),
        Outcome::Unknown(why) => Err(CallError::Unknown(why)),
    }
}
