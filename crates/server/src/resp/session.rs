//! Client sessions over RESP, and how one operation reaches the node that can serve it.
//!
//! Every connection is a client session in the sense of the Raft thesis §6.3: a [`ClientId`]
//! and request numbers 1, 2, 3, ... so that a retried write is applied once. The protocols
//! accept one outstanding request per session, so a connection that pipelines holds several
//! *lanes*, each a session of its own (the first is the connection's `CLIENT ID`); a request
//! takes a free lane and gives it back when its reply is written. A client that lost a
//! connection can continue its session on a new one with `CLIENT RESUME id seq` and resend
//! the write whose answer it lost: the state machine returns the remembered answer instead
//! of applying it twice.
//!
//! ## Getting an answer
//!
//! [`Exec::call`] sends a request to the local node and, depending on the answer:
//!
//! 1. `Ok`: done.
//! 2. `NotLeader { leader: Some(l) }`: in `forward` mode, send the same request (same lane,
//!    same number) to `l` over the peer connection and relay its answer; in `redirect` mode,
//!    answer `-MOVED 0 <l's client address>`. The request did not take effect here.
//! 3. `NotLeader { leader: None }` (an election is running): wait briefly and retry.
//! 4. `Indeterminate` / `Unavailable` / no answer within an attempt: the request may have
//!    taken effect; retry *with the same number*, which the session makes safe, until the
//!    request deadline. A deadline reached this way answers `-TIMEOUT`, saying the outcome
//!    is unknown.
//! 5. `Rejected` / `SessionExpired`: answer the error.
//!
//! A lane's number advances only when a request may have taken effect, so a lane never
//! reuses a number for a different operation.
//!
//! Leaderless protocols (quorum, multiprimary) never answer `NotLeader`, so steps 2 and 3
//! never happen for them: a request and all its retries run at the connected node, which is
//! what their coordinators' per-node deduplication of retried writes needs. A leader-based
//! protocol whose nodes point at each other (a view change in progress) makes step 2 bounce;
//! after [`FORWARDS_BEFORE_PAUSE`] forwards of one request the call pauses before each further
//! one, so a disagreement costs a few messages per pause rather than a busy loop.
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
use quorate_core::{ClientError, ClientId, NodeId, Op, Output, ReadMode, Request};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long one attempt waits before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Pause before retrying while no leader is known or leadership just changed.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// `NotLeader` forwards of one request before each further one waits
/// `RETRY_PAUSE` (nodes that disagree about the leader would otherwise bounce it busily).
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

/// One session of a connection: an id and the number of its next write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lane {
    pub id: ClientId,
    pub next_seq: u64,
}

impl Lane {
    /// A fresh session with a random id (positive as an i64, so `CLIENT ID` can show it).
    pub fn fresh() -> Lane {
        Lane {
            id: ClientId(rand::random::<u64>() >> 2),
            next_seq: 1,
        }
    }
}

/// The per-connection session state.
pub struct Session {
    /// The id `CLIENT ID` reports.
    pub primary: ClientId,
    /// Lanes not in use; the primary first in line for a client that does not pipeline.
    pub free: Vec<Lane>,
    /// Reads are served this way unless a command names a mode.
    pub read_mode: ReadMode,
    pub name: Option<String>,
    /// Causal contexts per key, for protocols that keep siblings.
    pub contexts: Contexts,
}

impl Session {
    pub fn new() -> Session {
        let lane = Lane::fresh();
        Session {
            primary: lane.id,
            free: vec![lane],
            read_mode: ReadMode::Linearizable,
            name: None,
            contexts: Contexts::default(),
        }
    }

    pub fn take_lane(&mut self) -> Lane {
        self.free.pop().unwrap_or_else(Lane::fresh)
    }

    pub fn give_back(&mut self, lane: Lane) {
        self.free.push(lane);
    }

    /// The primary lane, if no request holds it.
    pub fn primary_lane(&self) -> Option<Lane> {
        self.free.iter().find(|l| l.id == self.primary).copied()
    }

    /// Continues session `id` at request number `next_seq` (`CLIENT RESUME`).
    pub fn resume(&mut self, id: ClientId, next_seq: u64) {
        self.primary = id;
        self.free = vec![Lane { id, next_seq }];
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
}

/// Keeps a connection's pipelined commands in the order they were sent, as Redis does: a
/// command's first request is enqueued only after the previous command released it. A
/// one-request command releases its successor as soon as its request is in the runtime's
/// queue (the runtime, the peer link and the leader all keep FIFO order from there); a
/// command of several requests (INCR, DEL of several keys) releases it when it completes.
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
        let seq = self.lane.next_seq;
        let (result, maybe_applied) = self.call(op, seq, ReadMode::Linearizable).await;
        if maybe_applied {
            self.lane.next_seq += 1;
        }
        result
    }

    /// Serves a read in `mode` (reads need no deduplication: request number 0).
    pub async fn read(&mut self, op: Op, mode: ReadMode) -> Result<Output, CallError> {
        self.call(op, 0, mode).await.0
    }

    /// Gets an answer for one request, retrying as the module docs describe. Also returns
    /// whether the request may have taken effect.
    async fn call(
        &mut self,
        op: Op,
        seq: u64,
        read: ReadMode,
    ) -> (Result<Output, CallError>, bool) {
        for write in std::mem::take(&mut self.order.after_writes) {
            let _ = write.await; // Completed (or gone): either way, its effect is decided.
        }
        if let Some(previous) = self.order.previous.take() {
            let _ = previous.await; // Released, or the previous command is gone: either way, go.
        }
        // Back-pressure: wait for a slot rather than overflow the protocol's bounded queues.
        let inflight = self.node.inflight.clone();
        let _permit = inflight.acquire_owned().await;
        let node = &self.node;
        let deadline = Instant::now() + node.config.request_timeout();
        let is_write = !op.is_read();
        let mut via: Option<NodeId> = None;
        let mut forwards = 0u32;
        let mut maybe_applied = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                let why = format!("no answer within {:?}", node.config.request_timeout());
                return (Err(CallError::Unknown(why)), maybe_applied);
            }
            let request = Request {
                client: self.lane.id,
                seq,
                op: op.clone(),
                read,
                quorum: None,
            };
            let answer = node.enqueue(request, via).await;
            if self.order.release_on_enqueue {
                self.order.next.take();
            }
            let attempt = async { answer?.await.ok() };
            let limit = ATTEMPT_TIMEOUT.min(deadline - now);
            let reply = match tokio::time::timeout(limit, attempt).await {
                Ok(Some(reply)) => reply,
                Ok(None) | Err(_) => {
                    maybe_applied |= is_write;
                    via = None;
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let error = match reply.result {
                Ok(output) => return (Ok(output), true),
                Err(error) => error,
            };
            match error {
                ClientError::NotLeader {
                    leader: Some(leader),
                } if leader != node.me() => {
                    match node.config.follower {
                        FollowerMode::Forward => {
                            // The node asked answered that another node leads: go there,
                            // pausing if nodes keep pointing elsewhere (a view change).
                            Metrics::inc(&node.metrics.client_forwards);
                            forwards += 1;
                            if forwards > FORWARDS_BEFORE_PAUSE {
                                tokio::time::sleep(RETRY_PAUSE).await;
                            }
                            via = Some(leader);
                        }
                        FollowerMode::Redirect if !maybe_applied => {
                            Metrics::inc(&node.metrics.client_redirects);
                            let addr = node.peers.client_addr_of(leader);
                            return (Err(CallError::Redirect { leader, addr }), false);
                        }
                        FollowerMode::Redirect => {
                            let why = format!(
                                "leadership moved to {leader} while the request was in flight"
                            );
                            return (Err(CallError::Unknown(why)), true);
                        }
                    }
                }
                ClientError::NotLeader { .. } => {
                    via = None;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                ClientError::Indeterminate { .. } | ClientError::Unavailable => {
                    maybe_applied |= is_write;
                    via = None;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                ClientError::SessionExpired => return (Err(CallError::Expired), maybe_applied),
                ClientError::Rejected(why) if maybe_applied => {
                    let why = format!(
                        "an earlier attempt may have applied it, a retry was refused ({why})"
                    );
                    return (Err(CallError::Unknown(why)), true);
                }
                ClientError::Rejected(why) => return (Err(CallError::Rejected(why)), false),
            }
        }
    }
}
