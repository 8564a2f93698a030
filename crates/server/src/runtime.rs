//! The event loop that owns one protocol node.
//!
//! ```text
//!  peer frames ──┐                                   ┌──> peer send queues
//!  client calls ─┼──> step(now, input) ──> effects ──┼──> client replies (oneshot)
//!  timers ───────┘                         │         └──> timers
//!                                          └─ Persist ──> storage thread ──(durable token)──┐
//!          held effects <───────────────────────────────────────────────────────────────────┘
//! ```
//!
//! One task owns the node, so the node needs no locks and sees one input at a time, exactly
//! as in the simulator. The loop:
//!
//! 1. waits for the first of: a durability report from the storage thread, a peer message, a
//!    client call, or the earliest timer deadline; several queued peer messages or client
//!    calls are taken in one wake-up;
//! 2. feeds each to `Protocol::step` with `now` read from a monotonic clock (nanoseconds since
//!    the process started) and checks the node's invariants;
//! 3. dispatches the effects in order. A `Persist` is handed to the storage thread at once
//!    with the next token (1, 2, 3, ...). Any other effect runs immediately if every persist
//!    issued so far is durable, and otherwise waits in `held`, tagged with the last token
//!    issued before it. When the storage thread reports token `t` durable, the held effects
//!    tagged `<= t` run, in order. That is rule 1 of the protocol contract: nothing leaves
//!    before the records it follows are fsynced, and consecutive persists share an fsync.
//!    One exception saves two thread hand-offs per write on a lightly loaded node: while
//!    the storage thread is idle, a batch's records wait until the batch ends, and if no
//!    input is queued and nothing left during the batch, the loop writes and fsyncs them
//!    itself and runs the held effects at once (`flush_staged`); otherwise the thread
//!    takes them.
//! 4. `SetTimer` draws a duration uniformly from its range with a real RNG; `Reply` goes to
//!    the waiting client (or, for a request a follower forwarded, back to that follower).

use crate::membership::{MemberAddress, MemberView};
use crate::metrics::Metrics;
use crate::served::ServedProtocol;
use crate::storage::{PersistEvent, Persister};
use crate::transport::{spawn_outbound, PeerContext, PeerMsg, PeerSender};
use quorate_core::shell::{Action, Shell, ShellMsg};
use quorate_core::{
    AdminCommand, AdminRequest, ClientError, ClientId, Effect, Effects, Input, KvStore, NodeId,
    NodeStatus, Op, ReadMode, Reply, Request, Time, TimerRange,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Peer messages or client calls taken in one wake-up, at most (keeps timers and durability
/// reports from waiting behind a flood).
const BATCH_MAX: usize = 256;
/// Records a batch may stage and still fsync in place, at most: more is load, which the
/// storage thread's group commit serves better (the loop keeps stepping while it syncs).
const STAGED_IN_PLACE_MAX: usize = 2;
/// Waiters older than this are forgotten (their client gave up long ago).
const WAITER_TTL: Duration = Duration::from_secs(60);
/// How often a leader's metrics re-read each follower's acknowledged position.
const FOLLOWERS_EVERY: Duration = Duration::from_millis(100);

/// A client request handed to the runtime by a connection handler.
pub enum ClientCall {
    /// Step the request on this node. With `forward`, a `NotLeader` answer naming another
    /// node is not delivered: the request goes to that leader instead, from inside the event
    /// loop, so requests enqueued in some order reach the leader in that order.
    Submit {
        request: Request,
        reply: oneshot::Sender<Reply>,
        forward: bool,
    },
    /// Send the request to node `to` (the leader) and relay its answer.
    Forward {
        to: NodeId,
        request: Request,
        reply: oneshot::Sender<Reply>,
    },
    /// Copy the applied store at a linearizable point, for a backup (see [`crate::backup`]):
    /// step a linearizable read on this node (never forwarded) and copy the store in the step
    /// that answers it.
    Snapshot {
        reply: oneshot::Sender<Result<Captured, ClientError>>,
    },
    /// An operator's membership or leadership change (see [`crate::membership`]), stepped on
    /// this node (never forwarded: a follower answers `NotLeader`).
    Admin {
        command: AdminCommand,
        reply: oneshot::Sender<Reply>,
    },
    /// The configuration in force on this node and its status; `None` from protocols
    /// without online membership changes.
    Members {
        reply: oneshot::Sender<Option<(MemberView, NodeStatus)>>,
    },
}

/// A copy of a node's applied store and the node's status when it was taken.
pub struct Captured {
    pub store: KvStore,
    pub status: NodeStatus,
}

/// Snapshots one node takes at once, at most (each holds a copy of the store).
const SNAPSHOTS_MAX: usize = 2;
/// Client ids of snapshot barriers have this bit set; connections' ids never do
/// (`resp::session::fresh_id`).
const SNAPSHOT_CLIENT_BIT: u64 = 1 << 63;

/// Client ids of operators' admin requests have this bit set; connections' ids never do.
const ADMIN_CLIENT_BIT: u64 = 1 << 62;
/// Admin requests waiting for an answer on one node, at most.
const ADMINS_MAX: usize = 16;

/// The channels the runtime listens on.
pub struct Inboxes<M> {
    pub peers: mpsc::Receiver<(NodeId, PeerMsg<M>)>,
    pub calls: mpsc::Receiver<ClientCall>,
    pub persisted: mpsc::UnboundedReceiver<PersistEvent>,
}

/// One node and everything needed to drive it.
pub struct Runtime<P: ServedProtocol> {
    node: P,
    effects: Effects<P>,
    origin: Instant,
    /// What `now` reads at `origin`: 0, or the Unix time for protocols whose clocks are
    /// compared across nodes ([`ServedProtocol::UNIX_CLOCK`]).
    origin_nanos: u64,
    rng: StdRng,
    timers: BTreeMap<P::Timer, Instant>,
    persister: Persister<P::Record>,
    /// The token of the last record the node asked to persist.
    issued: u64,
    /// The token of the last record handed to the storage thread or written in place; the
    /// thread is idle while `handed == durable`.
    handed: u64,
    /// Records persisted in this batch while the storage thread was idle, not yet handed
    /// over: the loop may write them itself at the batch's end (`flush_staged`).
    staged: Vec<(u64, P::Record)>,
    /// Whether a send or reply left during this batch without waiting for a persist.
    released: bool,
    /// Whether staging is on (see `flush_staged`).
    sync_in_place: bool,
    /// Every record up to this token is durable.
    durable: u64,
    /// Effects waiting for the record they follow to become durable, with its token.
    held: VecDeque<(u64, Effect<P>)>,
    /// Messages the node sent itself, delivered back after the current step (rule 6 of the
    /// protocol contract: how a node learns its own writes are durable).
    loopback: VecDeque<P::Message>,
    /// Who waits for which answer, and forwarding to the leader: the node shell the
    /// simulator drives too.
    shell: Shell<oneshot::Sender<Reply>>,
    peers: BTreeMap<NodeId, PeerSender<P::Message>>,
    ctx: Arc<PeerContext>,
    metrics: Arc<Metrics>,
    last_sweep: Instant,
    /// When the followers' positions were last read for the metrics, and whether the node
    /// led at the last batch (see `publish_status`).
    followers_read: Instant,
    was_leading: bool,
    /// Snapshot barriers waiting for their read's answer, by the barrier's client id.
    snapshots: BTreeMap<ClientId, oneshot::Sender<Result<Captured, ClientError>>>,
    /// Barriers started, for their client ids.
    snapshots_started: u64,
    /// Keyspace notifications and the change feed, filled after every step.
    watch: Option<Arc<crate::watch::Watch>>,
    /// Admin requests waiting for the node's answer, by their client id.
    admins: BTreeMap<ClientId, oneshot::Sender<Reply>>,
    /// Admin requests started, for their client ids.
    admins_started: u64,
    /// The send queue of each peer connection opened for a member added online.
    send_queue_max: usize,
}

impl<P: ServedProtocol> Runtime<P> {
    /// Builds the runtime and starts the node with its recovered records.
    pub fn start(
        node: P,
        recovered: Vec<P::Record>,
        persister: Persister<P::Record>,
        peers: BTreeMap<NodeId, PeerSender<P::Message>>,
        ctx: Arc<PeerContext>,
        send_queue_max: usize,
    ) -> Runtime<P> {
        let metrics = ctx.metrics.clone();
        let mut runtime = Runtime {
            node,
            effects: Effects::new(),
            origin: Instant::now(),
            origin_nanos: if P::UNIX_CLOCK { unix_nanos() } else { 0 },
            rng: StdRng::from_os_rng(),
            timers: BTreeMap::new(),
            persister,
            issued: 0,
            handed: 0,
            staged: Vec::new(),
            released: false,
            sync_in_place: false,
            durable: 0,
            held: VecDeque::new(),
            loopback: VecDeque::new(),
            shell: Shell::new(ctx.me, peers.keys().copied().collect()),
            peers,
            ctx,
            metrics,
            last_sweep: Instant::now(),
            followers_read: Instant::now(),
            was_leading: false,
            snapshots: BTreeMap::new(),
            snapshots_started: 0,
            watch: None,
            admins: BTreeMap::new(),
            admins_started: 0,
            send_queue_max,
        };
        if !P::KEEPS_LOG {
            runtime.metrics.set_logless();
        }
        runtime.step(Input::Start { recovered });
        runtime.publish_status();
        runtime
    }

    /// Lets the loop fsync small records itself while the storage thread is idle
    /// ([`ServerConfig::wal_sync_in_place`](crate::config::ServerConfig)).
    pub fn sync_in_place(&mut self, on: bool) {
        self.sync_in_place = on;
    }

    /// Feeds `watch` from the applied store from now on (or tells it why there is none).
    pub fn attach_watch(&mut self, watch: Arc<crate::watch::Watch>) {
        match self.node.applied_store() {
            Ok(store) => watch.catch_up(store),
            Err(why) => watch.refuse(format!(
                "{} applies writes in no single order; {why}",
                self.ctx.protocol
            )),
        }
        self.watch = Some(watch);
    }

    /// Runs until `shutdown` resolves or storage fails (`Err` with the reason).
    pub async fn run(
        mut self,
        mut inboxes: Inboxes<P::Message>,
        mut shutdown: oneshot::Receiver<()>,
    ) -> Result<(), String> {
        let result = loop {
            let quiet = || inboxes.calls.is_empty() && inboxes.peers.is_empty();
            if let Err(why) = self.flush_staged(quiet) {
                break Err(why);
            }
            let deadline = self.timers.values().min().copied();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break Ok(()),
                event = inboxes.persisted.recv() => match event {
                    Some(PersistEvent::Durable(token)) => self.on_durable(token),
                    Some(PersistEvent::Failed(why)) => break Err(why),
                    None => break Err("the storage thread stopped".into()),
                },
                _ = sleep => self.fire_timers(),
                Some(first) = inboxes.peers.recv() => {
                    self.on_peer(first.0, first.1);
                    for _ in 1..BATCH_MAX {
                        let Ok((from, msg)) = inboxes.peers.try_recv() else { break };
                        self.on_peer(from, msg);
                    }
                }
                Some(first) = inboxes.calls.recv() => {
                    self.on_call(first);
                    for _ in 1..BATCH_MAX {
                        let Ok(call) = inboxes.calls.try_recv() else { break };
                        self.on_call(call);
                    }
                }
            }
            self.after_batch();
        };
        self.hand_over_staged();
        self.persister.shutdown();
        result
    }

    fn after_batch(&mut self) {
        self.deliver_loopback();
        self.metrics
            .held_effects
            .store(self.held.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let now = Instant::now();
        if now.duration_since(self.last_sweep) > Duration::from_secs(5) {
            self.last_sweep = now;
            let at = self.now();
            self.shell.sweep(at, WAITER_TTL, |reply| !reply.is_closed());
            self.snapshots.retain(|_, waiter| !waiter.is_closed());
            self.admins.retain(|_, waiter| !waiter.is_closed());
        }
        self.publish_status();
    }

    /// Copies the node's status into the metrics, with each follower's acknowledged log
    /// position while it leads, and the number of requests waiting for their answer: the
    /// shell's waiters (local clients' requests stepped here or forwarded to the leader,
    /// peers' requests forwarded here), snapshot barriers and membership requests.
    fn publish_status(&mut self) {
        let status = self.node.status();
        let leading = status.role == quorate_core::Role::Leader;
        let now = Instant::now();
        // Followers' positions are re-read when the node starts leading and then every
        // FOLLOWERS_EVERY, not every batch: building them was a fifth of a loaded leader's
        // allocations (BENCHMARKS.md, "Allocations per request").
        let stale = now.duration_since(self.followers_read) >= FOLLOWERS_EVERY;
        let followers = match leading && (stale || !self.was_leading) {
            true => {
                self.followers_read = now;
                self.node.followers_matched()
            }
            false => None,
        };
        self.was_leading = leading;
        self.metrics.publish(status, followers);
        let pending = self.shell.waiting() + self.snapshots.len() + self.admins.len();
        self.metrics
            .proposals_pending
            .store(pending as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The node's clock: monotonic (an `Instant`), from `origin_nanos`.
    fn now(&self) -> Time {
        Time::from_nanos(self.origin_nanos + self.origin.elapsed().as_nanos() as u64)
    }

    /// Delivers what the node sent itself, in order, including what those steps send.
    fn deliver_loopback(&mut self) {
        let me = self.ctx.me;
        while let Some(msg) = self.loopback.pop_front() {
            self.step(Input::Message { from: me, msg });
        }
    }

    /// Feeds one input to the node and dispatches its effects.
    fn step(&mut self, input: Input<P>) {
        let now = self.now();
        let mut effects = std::mem::take(&mut self.effects);
        self.node.step(now, input, &mut effects);
        self.node.check_invariants();
        Metrics::inc(&self.metrics.steps);
        if let (Some(watch), Ok(store)) = (&self.watch, self.node.applied_store()) {
            watch.catch_up(store);
        }
        self.learn_members();
        for effect in effects.drain() {
            self.dispatch(effect);
        }
        self.effects = effects;
    }

    fn dispatch(&mut self, effect: Effect<P>) {
        match effect {
            Effect::Persist(record) => {
                self.issued += 1;
                // A checkpoint (a whole snapshot) always goes to the thread: written here
                // it would hold the loop, and its timers, for as long as it takes.
                let small = !quorate_core::Durable::is_checkpoint(&record);
                if self.sync_in_place && small && self.handed == self.durable {
                    self.staged.push((self.issued, record));
                } else {
                    self.hand_over_staged();
                    // If the storage thread is gone, its Failed event ends the loop shortly.
                    let _ = self.persister.persist(self.issued, record);
                    self.handed = self.issued;
                }
            }
            other if self.issued > self.durable => self.held.push_back((self.issued, other)),
            other => {
                self.released |= match &other {
                    Effect::Send { to, .. } => *to != self.ctx.me,
                    Effect::Reply(_) => true,
                    _ => false,
                };
                self.execute(other)
            }
        }
    }

    /// Hands the staged records to the storage thread, in order.
    fn hand_over_staged(&mut self) {
        for (token, record) in self.staged.drain(..) {
            let _ = self.persister.persist(token, record);
            self.handed = token;
        }
    }

    /// At a batch's end, writes and fsyncs the records staged while the storage thread was
    /// idle on the loop's own thread, when nothing else is waiting: no input is queued, the
    /// batch staged at most `STAGED_IN_PLACE_MAX` records, and nothing left during the batch (a message or answer already out would wait behind the
    /// fsync in this worker's queue). That saves two thread hand-offs per write, to the
    /// storage thread and back, on a lightly loaded node; under load the thread takes them,
    /// so the loop keeps stepping while the disk syncs and one fsync covers many requests.
    fn flush_staged(&mut self, quiet: impl Fn() -> bool) -> Result<(), String> {
        while let Some(&(last, _)) = self.staged.last() {
            if self.released || self.staged.len() > STAGED_IN_PLACE_MAX || !quiet() {
                self.hand_over_staged();
                break;
            }
            self.persister.persist_here(&mut self.staged)?;
            self.handed = last;
            self.on_durable(last);
            self.deliver_loopback();
        }
        self.released = false;
        Ok(())
    }

    fn on_durable(&mut self, token: u64) {
        assert!(token <= self.issued, "durable token beyond what was issued");
        self.durable = self.durable.max(token);
        while self.held.front().is_some_and(|(t, _)| *t <= self.durable) {
            let (_, effect) = self.held.pop_front().expect("checked");
            self.execute(effect);
        }
    }

    fn execute(&mut self, effect: Effect<P>) {
        match effect {
            Effect::Send { to, msg } if to == self.ctx.me => self.loopback.push_back(msg),
            Effect::Send { to, msg } => self.send(to, PeerMsg::Protocol(msg)),
            Effect::Reply(reply) if self.snapshots.contains_key(&reply.client) => {
                self.capture(reply);
            }
            Effect::Reply(reply) if reply.client.0 & ADMIN_CLIENT_BIT != 0 => {
                if let Some(waiter) = self.admins.remove(&reply.client) {
                    let _ = waiter.send(reply); // The operator may have given up.
                }
            }
            Effect::Reply(reply) => {
                let actions = self.shell.on_reply(reply);
                self.run_shell(actions);
            }
            Effect::SetTimer { timer, after } => {
                let at = Instant::now() + self.draw(after);
                self.timers.insert(timer, at);
            }
            Effect::CancelTimer(timer) => {
                self.timers.remove(&timer);
            }
            Effect::Persist(_) => unreachable!("persists are dispatched, never held"),
        }
    }

    fn draw(&mut self, range: TimerRange) -> Duration {
        let min = range.min.as_nanos() as u64;
        let max = range.max.as_nanos() as u64;
        Duration::from_nanos(self.rng.random_range(min..=max))
    }

    fn send(&self, to: NodeId, msg: PeerMsg<P::Message>) {
        match self.peers.get(&to) {
            Some(peer) => peer.send(msg, &self.metrics),
            None => debug!(%to, "message to a node that is not a peer dropped"),
        }
    }

    /// Carries out what the shell asks for.
    fn run_shell(&mut self, actions: Vec<Action<oneshot::Sender<Reply>>>) {
        for action in actions {
            match action {
                Action::Step(request) => self.step(Input::Request(request)),
                Action::Deliver(waiter, reply) => {
                    let _ = waiter.send(reply); // The client may have gone; nothing to do.
                }
                Action::Send(to, msg) => {
                    if matches!(msg, ShellMsg::Forward(_)) {
                        Metrics::inc(&self.metrics.client_forwards);
                    }
                    self.send(to, PeerMsg::Shell(msg));
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(Instant, P::Timer)> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(timer, at)| (*at, *timer))
            .collect();
        due.sort();
        for (_, timer) in due {
            // An earlier timer's effects may have re-set or cancelled this one.
            if self.timers.get(&timer).is_some_and(|at| *at <= now) {
                self.timers.remove(&timer);
                self.step(Input::Timer(timer));
            }
        }
    }

    fn on_peer(&mut self, from: NodeId, msg: PeerMsg<P::Message>) {
        match msg {
            PeerMsg::Protocol(msg) => self.step(Input::Message { from, msg }),
            PeerMsg::Shell(msg) => {
                let actions = self.shell.on_message(self.now(), from, msg);
                self.run_shell(actions);
            }
        }
    }

    fn on_call(&mut self, call: ClientCall) {
        let now = self.now();
        let actions = match call {
            ClientCall::Submit {
                request,
                reply,
                forward,
            } => self.shell.submit(now, request, reply, forward),
            ClientCall::Forward { to, request, reply } => {
                self.shell.submit_to(now, to, request, reply)
            }
            ClientCall::Snapshot { reply } => return self.start_snapshot(reply),
            ClientCall::Admin { command, reply } => return self.start_admin(command, reply),
            ClientCall::Members { reply } => {
                let view = self.node.members().map(|view| (view, self.node.status()));
                let _ = reply.send(view);
                return;
            }
        };
        self.run_shell(actions);
    }

    /// Steps an operator's change; its answer arrives as a `Reply` to the admin client id.
    fn start_admin(&mut self, command: AdminCommand, reply: oneshot::Sender<Reply>) {
        let refuse = |why: String| Reply {
            client: ClientId(ADMIN_CLIENT_BIT),
            seq: 0,
            result: Err(ClientError::Rejected(why)),
        };
        if self.node.members().is_none() {
            let why = "this protocol's membership is fixed when the cluster is bootstrapped";
            let _ = reply.send(refuse(why.into()));
            return;
        }
        if self.admins.len() >= ADMINS_MAX {
            let why = format!("{ADMINS_MAX} membership requests are already waiting on this node; try again when one is done");
            let _ = reply.send(refuse(why));
            return;
        }
        self.admins_started += 1;
        let client = ClientId(ADMIN_CLIENT_BIT | self.admins_started);
        self.admins.insert(client, reply);
        let admin = AdminRequest {
            client,
            seq: 1,
            command,
        };
        self.step(Input::Admin(admin));
    }

    /// Dials members the node's configuration names that this node was not configured with
    /// (added online; see [`crate::membership`]), and lets them through the handshake.
    fn learn_members(&mut self) {
        let Some(addresses) = self.node.member_addresses() else {
            return;
        };
        let me = self.ctx.me;
        let new: Vec<(NodeId, MemberAddress)> = addresses
            .iter()
            .filter(|(id, _)| **id != me && !self.peers.contains_key(id))
            .filter_map(|(id, text)| match MemberAddress::decode(text) {
                Some(address) => Some((*id, address)),
                None => {
                    warn!(member = %id, address = %text, "a member's address does not parse; not dialing it");
                    None
                }
            })
            .collect();
        for (id, address) in new {
            info!(member = %id, peer = %address.peer, client = %address.client, "dialing a member added online");
            self.ctx.members.lock().expect("members lock").insert(id);
            self.ctx
                .client_addrs
                .lock()
                .expect("addrs lock")
                .entry(id)
                .or_insert(address.client);
            let sender = spawn_outbound(self.ctx.clone(), id, address.peer, self.send_queue_max);
            self.peers.insert(id, sender);
            self.shell.add_peer(id);
        }
    }

    /// Steps the linearizable read a snapshot waits for (step 1 of [`crate::backup`]).
    fn start_snapshot(&mut self, reply: oneshot::Sender<Result<Captured, ClientError>>) {
        if let Err(why) = self.node.applied_store() {
            let _ = reply.send(Err(ClientError::Rejected(why)));
            return;
        }
        if self.snapshots.len() >= SNAPSHOTS_MAX {
            let _ = reply.send(Err(ClientError::Rejected(format!(
                "{SNAPSHOTS_MAX} snapshots are already being taken on this node; try again when one is done"
            ))));
            return;
        }
        self.snapshots_started += 1;
        let client = ClientId(SNAPSHOT_CLIENT_BIT | self.snapshots_started);
        self.snapshots.insert(client, reply);
        let barrier = Request {
            client,
            seq: 0,
            op: Op::Get {
                key: Default::default(),
            },
            read: ReadMode::Linearizable,
            quorum: None,
        };
        self.step(Input::Request(barrier));
    }

    /// The barrier read was answered: copy the applied store now (step 3), or pass on why not.
    fn capture(&mut self, reply: Reply) {
        let waiter = self.snapshots.remove(&reply.client).expect("checked");
        let answer = match reply.result {
            Ok(_) => {
                let store = self
                    .node
                    .applied_store()
                    .expect("checked at the start")
                    .clone();
                Ok(Captured {
                    store,
                    status: self.node.status(),
                })
            }
            Err(e) => Err(e),
        };
        let _ = waiter.send(answer);
    }

    /// The node's id, for logs.
    pub fn id(&self) -> NodeId {
        self.ctx.me
    }
}

impl<P: ServedProtocol> Drop for Runtime<P> {
    fn drop(&mut self) {
        if !self.held.is_empty() {
            info!(
                held = self.held.len(),
                "stopping with effects still waiting for an fsync; they are never sent"
            );
        }
    }
}

/// Nanoseconds since the Unix epoch by the system clock (0 if it is set before 1970).
pub(crate) fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What connection handlers hold: a way to reach the runtime, and the node's shared context.
///
/// Every request's task holds a clone, so a clone is one reference count: the shared parts
/// live behind one `Arc` (a clone of each part was seven atomic increments and as many
/// decrements per request, contended between the workers; BENCHMARKS.md, "What a request
/// costs the leader").
#[derive(Clone)]
pub struct NodeHandle(Arc<NodeShared>);

/// The parts of a [`NodeHandle`], shared by all its clones.
pub struct NodeShared {
    calls: mpsc::Sender<ClientCall>,
    /// One permit per client request in flight through this node (`inflight_max`).
    pub inflight: Arc<tokio::sync::Semaphore>,
    pub peers: Arc<PeerContext>,
    pub config: Arc<crate::ServerConfig>,
    pub metrics: Arc<Metrics>,
    /// How the protocol's answers look to clients (siblings or single values).
    pub model: crate::served::ClientModel,
    /// Keyspace notifications, pub/sub and the change feed.
    pub watch: Arc<crate::watch::Watch>,
}

impl std::ops::Deref for NodeHandle {
    type Target = NodeShared;

    fn deref(&self) -> &NodeShared {
        &self.0
    }
}

impl NodeHandle {
    pub fn new(
        calls: mpsc::Sender<ClientCall>,
        peers: Arc<PeerContext>,
        config: Arc<crate::ServerConfig>,
        model: crate::served::ClientModel,
        watch: Arc<crate::watch::Watch>,
    ) -> NodeHandle {
        let metrics = peers.metrics.clone();
        let inflight = Arc::new(tokio::sync::Semaphore::new(config.inflight_max));
        NodeHandle(Arc::new(NodeShared {
            calls,
            inflight,
            peers,
            config,
            metrics,
            model,
            watch,
        }))
    }

    /// Hands `request` to the runtime: to step on this node (`to: None`; forwarded to the
    /// leader in `forward` mode if this node does not lead), or to send to node `to`. Returns
    /// where the answer will arrive, once the request is in the runtime's queue (so requests
    /// enqueued one after the other are handled in that order); `None` if the runtime is gone.
    pub async fn enqueue(
        &self,
        request: Request,
        to: Option<NodeId>,
    ) -> Option<oneshot::Receiver<Reply>> {
        let (reply, answer) = oneshot::channel();
        let call = match to {
            None => ClientCall::Submit {
                request,
                reply,
                forward: self.config.follower == crate::FollowerMode::Forward,
            },
            Some(to) => ClientCall::Forward { to, request, reply },
        };
        // The queue almost always has room. The waiting send is boxed: a request's task keeps
        // the space of every future it awaits for its whole life, and with thousands of
        // requests in flight their size is what falls out of the caches (BENCHMARKS.md, "What
        // a request costs the leader").
        match self.calls.try_send(call) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(call)) => {
                Box::pin(self.calls.send(call)).await.ok()?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return None,
        }
        Some(answer)
    }

    pub fn me(&self) -> NodeId {
        self.peers.me
    }

    /// Steps an operator's change on this node; `None` if the runtime is gone.
    pub async fn admin(&self, command: AdminCommand) -> Option<oneshot::Receiver<Reply>> {
        let (reply, answer) = oneshot::channel();
        let call = ClientCall::Admin { command, reply };
        self.calls.send(call).await.ok()?;
        Some(answer)
    }

    /// The configuration in force on this node (`None` inside: no online membership).
    pub async fn members(&self) -> Option<Option<(MemberView, NodeStatus)>> {
        let (reply, answer) = oneshot::channel();
        self.calls.send(ClientCall::Members { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Asks the runtime for a copy of the applied store at a linearizable point (see
    /// [`crate::backup`]); `None` if the runtime is gone.
    pub async fn snapshot(&self) -> Option<oneshot::Receiver<Result<Captured, ClientError>>> {
        let (reply, answer) = oneshot::channel();
        self.calls.send(ClientCall::Snapshot { reply }).await.ok()?;
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    //! The persist barrier, observed from outside: nothing after a `Persist` leaves before
    //! the storage thread's report reaches the runtime.

    use super::*;
    use crate::storage::Storage;
    use quorate_core::ClientId;
    use quorate_core::{Durable, NodeStatus, Op, Output, Protocol, ReadMode, Role};
    use serde::{Deserialize, Serialize};

    /// Persists the request number, then tells node 2 and answers the client; with
    /// `send_first`, tells node 2 before persisting.
    struct Toy {
        send_first: bool,
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Seen(u64);

    impl Durable for Seen {
        fn is_checkpoint(&self) -> bool {
            false
        }
    }

    impl Protocol for Toy {
        type Message = u64;
        type Record = Seen;
        type Timer = u8;

        fn step(&mut self, _now: Time, input: Input<Self>, out: &mut Effects<Self>) {
            if let Input::Request(request) = input {
                if self.send_first {
                    out.send(NodeId(2), request.seq);
                }
                out.persist(Seen(request.seq));
                if !self.send_first {
                    out.send(NodeId(2), request.seq);
                }
                out.reply(Reply {
                    client: request.client,
                    seq: request.seq,
                    result: Ok(Output::Done),
                });
            }
        }

        fn status(&self) -> NodeStatus {
            NodeStatus {
                id: NodeId(1),
                role: Role::Leader,
                term: 1,
                leader: None,
                commit_index: 0,
                applied_index: 0,
                last_index: 0,
            }
        }
    }

    impl ServedProtocol for Toy {
        const NAMES: &'static [&'static str] = &["toy"];
        type Config = ();
        fn build(_: &str, _: NodeId, _: &[NodeId], _: &()) -> Result<Toy, String> {
            Ok(Toy { send_first: false })
        }
    }

    /// A runtime driving `Toy` over a real WAL in `dir`, its inboxes' senders, what it sends
    /// node 2, and the storage thread's reports, which the test decides to pass on or not.
    struct Rig {
        calls: mpsc::Sender<ClientCall>,
        durable: mpsc::UnboundedSender<PersistEvent>,
        from_storage: mpsc::UnboundedReceiver<PersistEvent>,
        sent: mpsc::Receiver<PeerMsg<u64>>,
        stop: oneshot::Sender<()>,
        stopped: tokio::task::JoinHandle<Result<(), String>>,
    }

    fn rig(dir: &std::path::Path, toy: Toy, sync_in_place: bool) -> Rig {
        let (storage, _, _) = Storage::open(dir, "toy").unwrap();
        let metrics = Metrics::new();
        let (to_test, from_storage) = mpsc::unbounded_channel();
        let persister = Persister::start(storage, to_test, metrics.clone());
        let (peer_queue, sent) = mpsc::channel(16);
        let peers = BTreeMap::from([(NodeId(2), PeerSender::from_queue(peer_queue))]);
        let ctx = Arc::new(PeerContext {
            me: NodeId(1),
            cluster_id: "test".into(),
            protocol: "toy",
            members: std::sync::Mutex::new([NodeId(1), NodeId(2)].into()),
            client_addr: ([127, 0, 0, 1], 1).into(),
            frame_max: 1 << 20,
            metrics,
            client_addrs: Default::default(),
            inbound: crate::transport::Inbound::new(1 << 20),
            tls: crate::tls::Tls::none(),
        });
        let mut runtime = Runtime::start(toy, Vec::new(), persister, peers, ctx, 16);
        runtime.sync_in_place(sync_in_place);
        let (_peer_tx, peer_rx) = mpsc::channel(16);
        let (calls, call_rx) = mpsc::channel(16);
        let (durable, durable_rx) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let inboxes = Inboxes {
            peers: peer_rx,
            calls: call_rx,
            persisted: durable_rx,
        };
        Rig {
            calls,
            durable,
            from_storage,
            sent,
            stop,
            stopped: tokio::spawn(runtime.run(inboxes, stopped)),
        }
    }

    impl Rig {
        async fn submit(&self, seq: u64) -> oneshot::Receiver<Reply> {
            let (reply, answer) = oneshot::channel();
            let request = Request {
                client: ClientId(7),
                seq,
                op: Op::Get { key: "k".into() },
                read: ReadMode::Local,
                quorum: None,
            };
            let call = ClientCall::Submit {
                request,
                reply,
                forward: false,
            };
            self.calls.send(call).await.unwrap();
            answer
        }
    }

    async fn answered(answer: oneshot::Receiver<Reply>) -> Reply {
        let within = tokio::time::timeout(Duration::from_secs(5), answer).await;
        within
            .expect("no answer within 5 s")
            .expect("the waiter was dropped")
    }

    /// The records in the WAL of `dir`, once the runtime that wrote them has stopped.
    fn wal(dir: &std::path::Path) -> Vec<u64> {
        let (_, payloads, _) = Storage::open(dir, "toy").unwrap();
        let records = payloads
            .iter()
            .map(|p| postcard::from_bytes::<Seen>(p).unwrap());
        records.map(|Seen(seq)| seq).collect()
    }

    #[tokio::test]
    async fn effects_after_a_persist_wait_until_it_is_reported_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut rig = rig(dir.path(), Toy { send_first: false }, false);
        let answer = rig.submit(1).await;
        // The record is fsynced, but the runtime has not been told: nothing may leave.
        let event = rig.from_storage.recv().await.unwrap();
        assert!(matches!(event, PersistEvent::Durable(1)), "{event:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut answer = answer;
        assert!(
            answer.try_recv().is_err(),
            "a reply left before its persist was durable"
        );
        assert!(
            rig.sent.try_recv().is_err(),
            "a message left before its persist was durable"
        );
        // Now it hears: the held effects run, in order.
        rig.durable.send(event).unwrap();
        assert_eq!(answered(answer).await.result, Ok(Output::Done));
        assert!(matches!(rig.sent.recv().await, Some(PeerMsg::Protocol(1))));
    }

    /// With nothing else waiting, the loop fsyncs the record itself: the storage thread
    /// reports nothing, yet the answer and message leave, and the records are in the WAL,
    /// in order, when the node is stopped.
    #[tokio::test]
    async fn an_idle_loop_fsyncs_in_place_and_then_releases() {
        let dir = tempfile::tempdir().unwrap();
        let mut rig = rig(dir.path(), Toy { send_first: false }, true);
        for seq in 1..=3 {
            let answer = rig.submit(seq).await;
            assert_eq!(answered(answer).await.result, Ok(Output::Done));
            assert!(matches!(rig.sent.recv().await, Some(PeerMsg::Protocol(s)) if s == seq));
        }
        assert!(
            rig.from_storage.try_recv().is_err(),
            "the storage thread wrote a record the loop should have written"
        );
        drop(rig.stop);
        rig.stopped.await.unwrap().unwrap();
        assert_eq!(wal(dir.path()), vec![1, 2, 3]);
    }

    /// A message that left before the persist (a Raft leader sends a new entry before
    /// writing it) must not wait behind an fsync on this worker: the thread takes the record.
    #[tokio::test]
    async fn a_batch_that_sent_something_leaves_the_fsync_to_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut rig = rig(dir.path(), Toy { send_first: true }, true);
        let answer = rig.submit(1).await;
        assert!(matches!(rig.sent.recv().await, Some(PeerMsg::Protocol(1))));
        let report = tokio::time::timeout(Duration::from_secs(5), rig.from_storage.recv());
        let event = report
            .await
            .expect("the storage thread never wrote the record");
        let event = event.unwrap();
        assert!(matches!(event, PersistEvent::Durable(1)), "{event:?}");
        rig.durable.send(event).unwrap();
        assert_eq!(answered(answer).await.result, Ok(Output::Done));
    }
}
