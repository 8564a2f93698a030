//! The node shell: what sits between clients and the protocol node on one machine, as one
//! sans-IO state machine that the server's runtime and the simulator both drive.
//!
//! ```text
//!   client request ──submit──> [shell] ──Action::Step──> node.step(Request)
//!   node's Reply ──on_reply──> [shell] ──Action::Deliver(waiter)──> the client
//!                                 │   ──Action::Send(peer, Forward / ForwardReply)──> peer's shell
//!   peer's message ─on_message─> [shell]
//! ```
//!
//! The shell remembers who waits for each client session's answer (a *waiter*: a oneshot
//! channel on a server, a client slot in the simulator), and routes every answer by its
//! request identity `(client, seq)`: an answer for a different number than the waiter's is
//! an answer to an earlier request of the session (late, or duplicated by the network) and
//! is dropped. That rule is only as good as the identities: it relies on every request of a
//! session having its own number, reads included (see [`crate::client`]).
//!
//! **Forwarding.** A request submitted with `forward` that the node answers with `NotLeader`
//! naming another node is not delivered: the shell sends it to that node's shell instead
//! ([`ShellMsg::Forward`]), in the order requests reached it, and relays the answer that
//! comes back ([`ShellMsg::ForwardReply`]). The receiving shell remembers the forwarding
//! node as the waiter. A relayed answer is delivered only to a local waiter, never relayed
//! again, so an answer never travels in circles.
//!
//! A protocol accepts one outstanding request per session, so a shell keeps one waiter per
//! session: a newer request of the session replaces the waiter of an older one. Waiters of
//! clients that went away are swept after a time to live.

use crate::ids::{ClientId, NodeId};
use crate::kv::{ClientError, Reply, Request};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// What shells of different nodes say to each other.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ShellMsg {
    /// Step this request on your node and send me its answer.
    Forward(Request),
    /// The answer to a request I forwarded to you... or you to me.
    ForwardReply(Reply),
}

/// What the driver carries out for the shell.
#[derive(Debug)]
pub enum Action<W> {
    /// Step the node with this request.
    Step(Request),
    /// Hand `reply` to the local client that waits on `W`.
    Deliver(W, Reply),
    /// Send a message to the shell of another node.
    Send(NodeId, ShellMsg),
}

#[derive(Debug)]
enum Whom<W> {
    /// A client connected here; `forward` keeps the request to forward it if the node
    /// answers that another node leads.
    Local { waiter: W, forward: Option<Request> },
    /// A request forwarded by the shell of node `from`.
    Remote { from: NodeId },
}

#[derive(Debug)]
struct Waiting<W> {
    seq: u64,
    since: Time,
    whom: Whom<W>,
}

/// One node's shell; `W` is how a local client waits.
#[derive(Debug)]
pub struct Shell<W> {
    me: NodeId,
    peers: Vec<NodeId>,
    /// By session. A hash map: session ids are random, so a B-tree shifted its nodes' entries
    /// on almost every insert (about 2% of a leader's CPU under load); nothing iterates it in
    /// an order that matters.
    waiting: HashMap<ClientId, Waiting<W>>,
}

impl<W> Shell<W> {
    /// The shell of node `me`, which can forward to `peers`.
    pub fn new(me: NodeId, peers: Vec<NodeId>) -> Shell<W> {
        Shell {
            me,
            peers,
            waiting: HashMap::new(),
        }
    }

    /// A local client's request: step it on this node, and deliver the answer to `waiter`.
    /// With `forward`, a `NotLeader` answer naming a peer is followed (see the module docs).
    pub fn submit(
        &mut self,
        now: Time,
        request: Request,
        waiter: W,
        forward: bool,
    ) -> Vec<Action<W>> {
        let forward = forward.then(|| request.clone());
        self.wait(
            request.client,
            request.seq,
            now,
            Whom::Local { waiter, forward },
        );
        vec![Action::Step(request)]
    }

    /// A local client's request for node `to` (a leader it learned of): send it there and
    /// deliver the answer to `waiter`.
    pub fn submit_to(
        &mut self,
        now: Time,
        to: NodeId,
        request: Request,
        waiter: W,
    ) -> Vec<Action<W>> {
        let whom = Whom::Local {
            waiter,
            forward: None,
        };
        self.wait(request.client, request.seq, now, whom);
        vec![Action::Send(to, ShellMsg::Forward(request))]
    }

    /// A message from the shell of node `from`.
    pub fn on_message(&mut self, now: Time, from: NodeId, msg: ShellMsg) -> Vec<Action<W>> {
        match msg {
            ShellMsg::Forward(request) => {
                self.wait(request.client, request.seq, now, Whom::Remote { from });
                vec![Action::Step(request)]
            }
            ShellMsg::ForwardReply(reply) => self.route(reply, false),
        }
    }

    /// The node answered a request.
    pub fn on_reply(&mut self, reply: Reply) -> Vec<Action<W>> {
        self.route(reply, true)
    }

    /// Forgets waiters older than `ttl` and local ones whose client is gone (`is_live`).
    pub fn sweep(&mut self, now: Time, ttl: Duration, is_live: impl Fn(&W) -> bool) {
        let ttl = ttl.as_nanos() as u64;
        self.waiting.retain(|_, w| {
            let young = now.as_nanos().saturating_sub(w.since.as_nanos()) < ttl;
            young
                && match &w.whom {
                    Whom::Local { waiter, .. } => is_live(waiter),
                    Whom::Remote { .. } => true,
                }
        });
    }

    /// The machine crashed: every waiter is gone with it.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }

    /// Sessions with a request waiting for its answer.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn wait(&mut self, client: ClientId, seq: u64, since: Time, whom: Whom<W>) {
        self.waiting.insert(client, Waiting { seq, since, whom });
    }

    /// Routes an answer to whoever waits for exactly that request; `from_node` is false for
    /// answers relayed by another shell, which only local waiters may receive.
    fn route(&mut self, reply: Reply, from_node: bool) -> Vec<Action<W>> {
        let Some(waiting) = self.waiting.remove(&reply.client) else {
            return Vec::new(); // Nobody waits (gave up, or a duplicate answer).
        };
        if waiting.seq != reply.seq {
            // An answer to an earlier request of the session: not this waiter's.
            self.waiting.insert(reply.client, waiting);
            return Vec::new();
        }
        match waiting.whom {
            Whom::Local {
                waiter,
                forward: Some(request),
            } if from_node => match self.leader_to_follow(&reply) {
                Some(leader) => {
                    let whom = Whom::Local {
                        waiter,
                        forward: None,
                    };
                    self.wait(reply.client, reply.seq, waiting.since, whom);
                    vec![Action::Send(leader, ShellMsg::Forward(request))]
                }
                None => vec![Action::Deliver(waiter, reply)],
            },
            Whom::Local { waiter, .. } => vec![Action::Deliver(waiter, reply)],
            Whom::Remote { from } if from_node => {
                vec![Action::Send(from, ShellMsg::ForwardReply(reply))]
            }
            whom @ Whom::Remote { .. } => {
                // A relayed answer for a request another shell forwarded here: not its
                // answer to give; keep waiting for this node's.
                let waiting = Waiting { whom, ..waiting };
                self.waiting.insert(reply.client, waiting);
                Vec::new()
            }
        }
    }

    /// Makes `peer` (a member added while the node runs) one this shell may forward to.
    pub fn add_peer(&mut self, peer: NodeId) {
        if peer != self.me && !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
    }

    /// The peer a `NotLeader` answer names, if it is one this shell can forward to.
    fn leader_to_follow(&self, reply: &Reply) -> Option<NodeId> {
        match reply.result {
            Err(ClientError::NotLeader {
                leader: Some(leader),
            }) if leader != self.me && self.peers.contains(&leader) => Some(leader),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
