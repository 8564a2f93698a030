//! The explored world: nodes, in-flight messages, timers, clients and their history, and the
//! actions that move it (see the parent module for the model).

use super::ExploreConfig;
use crate::feed::Feeds;
use crate::harness::{ClientOps, Harness};
use crate::workload::op_value;
use bytes::Bytes;
use quorate_check::linearizability::Limits;
use quorate_check::{Event as HistoryEvent, EventKind, Mode, OpValue};
use quorate_core::client::{Call, CallPolicy, Follow, Outcome, Session, Step};
use quorate_core::clock::CausalContext;
use quorate_core::crdt::CrdtOp;
use quorate_core::protocol::Effects;
use quorate_core::{
    ClientId, Durable, Effect, Input, Invariants, NodeId, Op, Output, Protocol, ReadMode, Reply,
    Role, Time,
};
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Scripted steps the warm-up may take before it gives up.
const WARM_UP_STEPS_MAX: usize = 500;

/// How the failover prefix reports a script that never settled (a violation met on the
/// way is reported as itself).
const UNSETTLED_FAILOVER: &str = "the failover prefix did not settle a new leader";

/// What every unsettled script's report says (the warm-up's, the failover's, the rejoin's).
const UNSETTLED: &str = "did not settle";

/// The client id of node `n`'s final reads is `FINAL_CLIENT + n`.
const FINAL_CLIENT: u64 = 1 << 40;

/// Inputs one action may hand a node (the action's own, then its messages to itself and its
/// zero-delay timers) before the action counts as a step that never ends: a node that keeps
/// messaging itself never lets time advance, which the simulator's step budget reports as an
/// exhausted seed and the explorer, whose actions must end, as a violation.
pub(super) const STEP_INPUTS_MAX: usize = 10_000;

/// What travels between nodes.
pub(super) struct InFlight<M> {
    from: usize,
    to: usize,
    msg: M,
}

impl<M: Hash + std::fmt::Debug> InFlight<M> {
    /// What identifies the message: sender, destination and content (identical copies are
    /// one message to sleep sets, the digest and the late copies).
    fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        (self.from, self.to, &self.msg).hash(&mut hasher);
        hasher.finish()
    }

    /// `n1 -> n2: <message>`, for traces.
    fn route(&self) -> String {
        format!("n{} -> n{}: {:?}", self.from + 1, self.to + 1, self.msg)
    }
}

impl<M: Clone> Clone for InFlight<M> {
    fn clone(&self) -> Self {
        InFlight {
            from: self.from,
            to: self.to,
            msg: self.msg.clone(),
        }
    }
}

/// A node slot: the node while up, its durable records always.
pub(super) struct Machine<P: Protocol> {
    node: Option<P>,
    durable: Vec<P::Record>,
    /// Pending timers, each with the window of global time it fires in (`set at + after`).
    timers: Vec<(P::Timer, u64, u64)>,
    /// Digest of `node` and `durable`, refreshed after every change.
    digest: u64,
}

impl<P: Protocol + Clone> Clone for Machine<P> {
    fn clone(&self) -> Self {
        Machine {
            node: self.node.clone(),
            durable: self.durable.clone(),
            timers: self.timers.clone(),
            digest: self.digest,
        }
    }
}

/// Where a client's one operation is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Stage {
    /// The request waits to be sent; `to` is the node named by a redirect, if any.
    Ready {
        to: Option<usize>,
    },
    /// Sent to this node; no answer yet.
    Awaiting {
        at: usize,
    },
    Done,
}

#[derive(Clone, Debug)]
pub(super) struct Client {
    session: Session,
    call: Call,
    op: Op,
    /// The read mode of `call` (plain `Local` reads only in a session's read-back).
    read: ReadMode,
    stage: Stage,
    attempts: u32,
    invoked: bool,
    /// With [`ExploreConfig::sessions`], a write's client reads the key back in its session
    /// at the node that answered once the write succeeds: this read, not yet started.
    read_back: Option<Op>,
    /// The current call is a session's read-back: it goes to the node that answered the write
    /// and nowhere else (a ZooKeeper client that moves to another server starts a new
    /// session there, a new process in the simulator's histories), waiting while it is down.
    /// Also a write of a harness with [`Harness::sticky_writes`] once sent: a leaderless
    /// coordinator deduplicates retries per node, so the write's retries stay with it.
    sticky: bool,
    /// The answer to the attempt in flight is lost ([`Action::SendLosingReply`]): when the
    /// node answers, the client hears nothing, times the attempt out and sends it again.
    losing_reply: bool,
}

/// Everything the search branches over.
pub(super) struct World<H: Harness> {
    machines: Vec<Machine<H::Node>>,
    net: Vec<InFlight<<H::Node as Protocol>::Message>>,
    clients: Vec<Client>,
    history: Vec<HistoryEvent>,
    invariants: H::Invariants,
    /// Each node's change feed, caught up after every action and checked as the simulator
    /// checks its own (see `crate::feed`); not part of the digest, like the invariants.
    feeds: Feeds,
    pub(super) now: u64,
    drops_left: usize,
    crashes_left: usize,
    /// Timer firings left (`usize::MAX` without a budget; the warm-up does not count).
    timers_left: usize,
    /// Idle timer firings left that cost neither the timer budget nor depth.
    idle_left: usize,
    /// Idle timer firings taken on the way here (the search subtracts them from the depth).
    pub(super) idle_taken: usize,
    /// Client attempts left whose answer may be lost ([`Action::SendLosingReply`]).
    lost_replies_left: usize,
    /// The initial voters, `n1..=n{voters}`; nodes after them are spares that start outside
    /// the configuration ([`ExploreConfig::replace_voter`]).
    voters: usize,
    /// Membership changes left to send ([`Action::Reconfigure`]).
    reconfigs_left: usize,
    /// Whether booted nodes run a change feed ([`ExploreConfig::change_feeds`]).
    change_feeds: bool,
    /// Copies of the messages sent by nodes that believed they led, each offered once as a
    /// late delivery ([`ExploreConfig::stale`]): kept from the boot on while late deliveries
    /// are left, distinct, in the order of their digests (kept beside them: the world's
    /// digest reads them at every state).
    late: Vec<(u64, InFlight<<H::Node as Protocol>::Message>)>,
    /// Late deliveries left ([`Action::Late`]); none kept for a FIFO protocol.
    stale_left: usize,
    /// The action under way is torn ([`Action::TornDeliver`], [`Action::TornFire`],
    /// [`Action::TornSend`]): its node crashes at the first persist after it said something
    /// (not part of the digest).
    tear: bool,
    /// The action under way sent a message to another node or answered a client.
    said: bool,
    /// Effects other than setting a timer in the last `step` (not part of the digest).
    loud: usize,
    /// Whether the last applied action answered or redirected a client (not part of the
    /// digest: it only tells the search that the action does not commute with others).
    pub(super) touched_clients: bool,
}

impl<H: Harness> Clone for World<H>
where
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    fn clone(&self) -> Self {
        World {
            machines: self.machines.clone(),
            net: self.net.clone(),
            clients: self.clients.clone(),
            history: self.history.clone(),
            invariants: self.invariants.clone(),
            feeds: self.feeds.clone(),
            now: self.now,
            drops_left: self.drops_left,
            crashes_left: self.crashes_left,
            timers_left: self.timers_left,
            idle_left: self.idle_left,
            idle_taken: self.idle_taken,
            lost_replies_left: self.lost_replies_left,
            voters: self.voters,
            reconfigs_left: self.reconfigs_left,
            change_feeds: self.change_feeds,
            late: self.late.clone(),
            stale_left: self.stale_left,
            tear: false,
            said: false,
            loud: 0,
            touched_clients: false,
        }
    }
}

/// A delivery as sleep sets know it: identical messages to one node are one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DeliveryKey {
    pub(super) to: usize,
    message: u64,
}

/// One enabled action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Deliver(usize),
    Drop(usize),
    Fire {
        node: usize,
        timer: usize,
    },
    Crash(usize),
    Restart(usize),
    Send {
        client: usize,
        to: usize,
    },
    /// [`Action::Deliver`] with a crash point: the node crashes at the step's first persist
    /// that follows a message to another node or an answer to a client, so what it said is
    /// out and the record is lost (see [`ExploreConfig::crash_points`]).
    TornDeliver(usize),
    /// [`Action::Fire`] with the same crash point.
    TornFire {
        node: usize,
        timer: usize,
    },
    /// [`Action::Send`] with the same crash point at the node the request goes to (a Raft
    /// leader sends a new entry before writing it when its disk is idle).
    TornSend {
        client: usize,
        to: usize,
    },
    /// A send whose answer will be lost: the request arrives and takes effect, the reply
    /// does not (the connection broke after the request went out), so the client retries
    /// the same request, as `CLIENT RESUME` does on a real node.
    SendLosingReply {
        client: usize,
        to: usize,
    },
    /// The membership change of [`ExploreConfig::replace_voter`], sent to a node that
    /// believes it leads (once per schedule): the last initial voter is replaced by the
    /// spare the prefix added as a learner.
    Reconfigure {
        to: usize,
    },
    /// The prefix's admin request that adds the spare as a learner
    /// ([`ExploreConfig::replace_voter`]); never offered to the search.
    AddLearner {
        to: usize,
    },
    /// A late copy of `late[i]` ([`ExploreConfig::stale`]), delivered again now.
    Late(usize),
}

/// The session the explorer's admin requests use: an admin session, as the simulator's
/// reconfiguration nemesis marks them.
const ADMIN_CLIENT: ClientId = ClientId(crate::reconfig::ADMIN_BIT | 1);

/// The operations of the clients: writes of distinct values and reads of one key, in the
/// protocol's client interface (write-once registers for single-decree Paxos).
fn client_ops<H: Harness>(harness: &H, config: &ExploreConfig) -> Vec<Op> {
    let once = write_once(harness);
    let key = client_key(once);
    (0..config.ops)
        .map(|i| {
            let value = Bytes::from((i + 1).to_string());
            let read = i % 2 == 1;
            match (harness.client_ops(), read) {
                (ClientOps::Crdt, true) => crdt_read(key.clone()),
                // Distinct increments, so the final counter tells which were applied.
                (ClientOps::Crdt, false) => Op::CrdtUpdate {
                    key: key.clone(),
                    op: CrdtOp::Add(i as i64 + 1),
                },
                (ClientOps::Causal, true) => Op::GetSiblings { key: key.clone() },
                (ClientOps::Causal, false) => Op::PutWithContext {
                    key: key.clone(),
                    value: Some(value),
                    context: CausalContext::new(),
                },
                (_, true) => Op::Get { key: key.clone() },
                (_, false) => write_op(key.clone(), once, i, value, config),
            }
        })
        .collect()
}

/// The key the clients share: `k0`, or a write-once register's name.
fn client_key(write_once: bool) -> Bytes {
    Bytes::from(if write_once { "k0.g0" } else { "k0" })
}

fn write_once<H: Harness>(harness: &H) -> bool {
    let config = harness.configure(&crate::SimConfig::default());
    config.workload.write_once.is_some()
}

/// Client `i`'s register write of `value`: a write-once CAS from absent (single-decree
/// Paxos), a CAS from the value of the write before it ([`ExploreConfig::cas`]; the first
/// from the preloaded `0`, or from absent), an expiring write ([`ExploreConfig::ttl_ms`]), or
/// a plain `SET`.
fn write_op(key: Bytes, write_once: bool, i: usize, value: Bytes, config: &ExploreConfig) -> Op {
    if write_once {
        return Op::Cas {
            key,
            expected: None,
            new: value,
        };
    }
    if config.cas {
        let expected = match i {
            0 => config.preload.then(|| Bytes::from_static(b"0")),
            // Writes are the even operations, and write `i` writes `i + 1`.
            i => Some(Bytes::from((i - 1).to_string())),
        };
        return Op::Cas {
            key,
            expected,
            new: value,
        };
    }
    preload_op(key, value, config)
}

/// The preload prefix's write ([`ExploreConfig::preload`]): an expiring write with
/// [`ExploreConfig::ttl_ms`], else a plain `SET`.
fn preload_op(key: Bytes, value: Bytes, config: &ExploreConfig) -> Op {
    match config.ttl_ms {
        Some(ttl_ms) => Op::PutExpiring {
            key,
            value,
            expiry: quorate_core::Expiry::After { ttl_ms },
        },
        None => Op::Put { key, value },
    }
}

/// How the history records `op` (with its `output`, on a completion), as the simulator's
/// recorder does.
fn history_value(op: &Op, output: Option<&Output>) -> OpValue {
    let mut value = op_value(op, output);
    if let OpValue::PutTtl { clock_error_ms, .. } = &mut value {
        // One clock, no drift: the expiry window is exact, but for the nanoseconds that
        // order the events recorded at one `now` (see `World::event_time`).
        *clock_error_ms = 1;
    }
    value
}

/// Why an answered write did nothing, which the history records as `fail` (as the
/// simulator's clients record it): a CAS whose comparison failed.
fn refusal(op: &Op, output: &Output) -> Option<&'static str> {
    match (op, output) {
        (Op::Cas { .. }, Output::Swapped(false)) => Some("compare failed"),
        _ => None,
    }
}

/// A read of the explorer's counter `key` (the simulator's CRDT workload keeps a PN-Counter
/// under `k0`).
fn crdt_read(key: Bytes) -> Op {
    Op::CrdtRead {
        key,
        kind: crate::workload::crdt_kind(0),
    }
}

impl Client {
    fn call(session: &mut Session, i: usize, op: Op, read: ReadMode) -> Call {
        let fresh = || ClientId(1000 + i as u64);
        Call::start(session, op, read, policy(), fresh)
    }

    /// How the history records this client's current operation.
    fn mode(&self) -> Mode {
        match self.read {
            ReadMode::Linearizable => Mode::Linearizable,
            ReadMode::Sync => Mode::Sync,
            ReadMode::Local => Mode::Local,
        }
    }
}

fn policy() -> CallPolicy {
    CallPolicy {
        retry_pause: Duration::ZERO,
        redirect_pause: Duration::ZERO,
        redirects_before_pause: u32::MAX,
        follow: Follow::Retry,
    }
}

impl<H> World<H>
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    /// The world at the start of every schedule: every node booted and, with
    /// [`ExploreConfig::warm_up`], the scripted warm-up prefix run.
    pub(super) fn start(
        harness: &H,
        config: &ExploreConfig,
        mut trace: Option<&mut Vec<String>>,
    ) -> Result<World<H>, String> {
        let mut ops = client_ops(harness, config);
        if config.preload {
            // One more client, with the write the preload prefix commits.
            let key = client_key(write_once(harness));
            ops.push(preload_op(key, "0".into(), config));
        }
        // One more client per orphan-writes round, with the write a deposed leader keeps to
        // itself.
        ops.extend((1..=config.orphan_writes).map(|n| Op::Put {
            key: Bytes::from_static(b"k0"),
            value: Bytes::from(format!("orphan{n}")),
        }));
        let clients = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                let mut session = Session::new(ClientId(i as u64 + 1));
                let read_back = (config.sessions && !op.is_read()).then(|| Op::Get {
                    key: op.key().clone(),
                });
                let read = ReadMode::Linearizable;
                let call = Client::call(&mut session, i, op.clone(), read);
                Client {
                    session,
                    call,
                    op,
                    read,
                    stage: Stage::Ready { to: None },
                    attempts: 0,
                    invoked: false,
                    read_back,
                    sticky: false,
                    losing_reply: false,
                }
            })
            .collect();
        // The spare of `replace_voter` is booted by its prefix, after the warm-up.
        let spares = usize::from(config.replace_voter);
        let mut world = World {
            machines: Vec::new(),
            net: Vec::new(),
            clients,
            history: Vec::new(),
            invariants: harness.invariants(),
            feeds: Feeds::new(0, config.nodes + spares),
            now: 0,
            drops_left: config.drops,
            crashes_left: config.crashes,
            timers_left: usize::MAX,
            idle_left: 0,
            idle_taken: 0,
            lost_replies_left: 0,
            voters: config.nodes,
            reconfigs_left: 0,
            change_feeds: config.change_feeds,
            late: Vec::new(),
            // The prefixes' messages are kept too: a late copy may be of the first reign.
            stale_left: match <H::Node as Protocol>::FIFO_CHANNELS {
                true => 0,
                false => config.stale,
            },
            tear: false,
            said: false,
            loud: 0,
            touched_clients: false,
        };
        for _ in 0..config.nodes + spares {
            world.machines.push(Machine {
                node: None,
                durable: Vec::new(),
                timers: Vec::new(),
                digest: 0,
            });
        }
        for n in 0..config.nodes {
            world.boot(harness, n, trace.as_deref_mut())?;
        }
        let lagging = config.lagging || config.rejoin;
        let failover = config.failover || lagging || config.pause_after_round;
        let scripted = config.warm_up || failover || config.open_sessions;
        let orphans = config.orphan_writes > 0;
        if scripted || orphans || config.preload || config.replace_voter {
            world.scripted(harness, trace.as_deref_mut(), None, false, true)?;
        }
        if config.replace_voter {
            world.add_spare(harness, trace.as_deref_mut())?;
        }
        if config.preload {
            world.preload(harness, trace.as_deref_mut(), config.ops)?;
        }
        if orphans {
            let first = config.ops + usize::from(config.preload);
            let clients = first..first + config.orphan_writes;
            world.orphan_writes(harness, trace.as_deref_mut(), clients)?;
        }
        if config.open_sessions && !lagging {
            let leader = (world.leader())
                .ok_or("--open-sessions needs the warm-up prefix (a leader to send to)")?;
            world.open_sessions(harness, trace.as_deref_mut(), leader, None)?;
        }
        if failover && !orphans {
            let leader = world.leader().expect("the warm-up settles with one leader");
            let leader = match config.failover_node {
                Some(node) if node >= config.nodes => {
                    return Err(format!(
                        "the failover node n{} is not one of the {} nodes",
                        node + 1,
                        config.nodes
                    ))
                }
                Some(node) => node,
                None => leader,
            };
            if config.pause_after_round {
                world.fire_earliest(harness, leader, trace.as_deref_mut())?;
            }
            // After a preload no leader's timer fires (see `preload`): the new leader is
            // followed, and its followers may not know its latest commit index yet.
            let caught_up = !config.preload;
            world.settle(harness, trace.as_deref_mut(), Some(leader), caught_up)?;
            if lagging {
                let new = (world.leader_except(Some(leader)))
                    .expect("the failover prefix settles with a new leader");
                world.open_sessions(harness, trace.as_deref_mut(), new, Some(leader))?;
            }
            if config.rejoin {
                // Settled once every node follows the new leader, nothing in flight: whether
                // the deposed leader was also caught up is for the search to find out.
                world.settle(harness, trace, None, false)?;
            }
        }
        world.timers_left = config.timers.unwrap_or(usize::MAX);
        world.idle_left = config.idle_timers;
        world.lost_replies_left = config.lost_replies;
        world.reconfigs_left = usize::from(config.replace_voter);
        Ok(world)
    }

    /// Runs the scripted prefix until the cluster settles (see [`World::scripted`]): messages
    /// first, as in the warm-up; if that never settles (ZAB's candidates restart each
    /// other's wait, round after round), again from the same world with due timers first.
    fn settle(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
        paused: Option<usize>,
        caught_up: bool,
    ) -> Result<(), String> {
        let before = self.clone();
        let lines = trace.as_ref().map_or(0, |t| t.len());
        let failed = self.scripted(harness, trace.as_deref_mut(), paused, false, caught_up);
        if failed.as_ref().is_err_and(|e| e.contains(UNSETTLED)) {
            *self = before;
            if let Some(trace) = trace.as_deref_mut() {
                trace.truncate(lines);
            }
            return self.scripted(harness, trace, paused, true, caught_up);
        }
        failed
    }

    /// Fires node `n`'s timer whose window opens first (a leader's heartbeat), as a scripted
    /// step (time jumps to its opening): with [`ExploreConfig::pause_after_round`], the
    /// leader sends one more round before it is paused, and the answers wait for it.
    fn fire_earliest(
        &mut self,
        harness: &H,
        n: usize,
        trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        let timers = &self.machines[n].timers;
        let Some(timer) = (0..timers.len()).min_by_key(|&i| timers[i].1) else {
            return Err(format!(
                "n{}: no timer to send a round with before the pause",
                n + 1
            ));
        };
        self.scripted_step(harness, trace, "p", Action::Fire { node: n, timer })
    }

    /// Takes one step of a scripted prefix, traced with `mark` (which prefix, which step).
    fn scripted_step(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
        mark: &str,
        action: Action,
    ) -> Result<(), String> {
        if let Some(trace) = trace.as_deref_mut() {
            let now = self.now / 1_000_000;
            trace.push(format!("  {mark} t={now}ms {}", self.describe(action)));
        }
        self.apply(harness, action, trace)
    }

    /// The scripted prefix (see the parent module): deliver the oldest message in flight,
    /// else fire the timer whose window opens first, until the cluster is settled. With
    /// `paused` (the failover prefix), that node is paused: nothing is delivered to it and
    /// none of its timers fire (its clock runs on, as in a process pause), and the others
    /// settle on a new leader among themselves. With `due_first`, a timer whose window
    /// opened fires before any message is delivered.
    fn scripted(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
        paused: Option<usize>,
        due_first: bool,
        caught_up: bool,
    ) -> Result<(), String> {
        let live = |n: usize| Some(n) != paused;
        for step in 0..WARM_UP_STEPS_MAX {
            if self.settled(paused, caught_up) {
                return Ok(());
            }
            let earliest = (self.machines.iter().enumerate())
                .filter(|(n, m)| m.node.is_some() && live(*n))
                .flat_map(|(node, m)| {
                    (m.timers.iter().enumerate()).map(move |(timer, t)| (t.1, node, timer))
                })
                .min();
            // With `due_first`, a timer that is due fires before what was sent since is
            // delivered: two candidates whose waits open together both end them (ZAB's
            // finalize), rather than the first one's messages always arriving first and
            // restarting the other's wait, round after round.
            let due = earliest.filter(|(opens, _, _)| due_first && *opens <= self.now);
            let oldest = self.net.iter().position(|m| live(m.to));
            let action = match (due, oldest, earliest) {
                (Some((_, node, timer)), _, _) => Action::Fire { node, timer },
                (None, Some(i), _) => Action::Deliver(i),
                (None, None, Some((_, node, timer))) => Action::Fire { node, timer },
                (None, None, None) => break,
            };
            let mark = if paused.is_some() { 'f' } else { 'w' };
            self.scripted_step(
                harness,
                trace.as_deref_mut(),
                &format!("{mark}{step}"),
                action,
            )?;
        }
        Err(match paused {
            None => format!(
                "the warm-up prefix (or the rejoin after the failover) {UNSETTLED} a leader \
                 within {WARM_UP_STEPS_MAX} scripted steps; explore this protocol without \
                 --warm-up (or --rejoin)"
            ),
            Some(n) => format!(
                "{UNSETTLED_FAILOVER} without n{} within {WARM_UP_STEPS_MAX} scripted steps; \
                 explore this protocol without --failover (or --orphan-writes)",
                n + 1
            ),
        })
    }

    /// Opens every client's session before the search (see the parent module): a write of
    /// a key of its own, sent to the leader the warm-up elected, and the scripted prefix run
    /// until the cluster settled again with it committed. The client's operation then comes
    /// next in the same session.
    fn open_sessions(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
        leader: usize,
        paused: Option<usize>,
    ) -> Result<(), String> {
        for client in 0..self.clients.len() {
            let c = &mut self.clients[client];
            let op = c.op.clone();
            let opening = Op::Put {
                key: Bytes::from(format!("session{}", client + 1)),
                value: Bytes::from_static(b"0"),
            };
            // The call made for the operation took number 1: start the session afresh.
            c.session = Session::new(ClientId(client as u64 + 1));
            c.call = Client::call(
                &mut c.session,
                client,
                opening.clone(),
                ReadMode::Linearizable,
            );
            c.op = opening;
            let (mark, settle) = (format!("s{client}"), (paused, true));
            if !self.scripted_write(
                harness,
                trace.as_deref_mut(),
                &mark,
                (client, leader),
                settle,
            )? {
                return Err(format!(
                    "client {}'s session-opening write did not succeed in the scripted prefix",
                    client + 1
                ));
            }
            let c = &mut self.clients[client];
            c.call = Client::call(&mut c.session, client, op.clone(), c.read);
            c.op = op;
            c.stage = Stage::Ready { to: None };
            c.attempts = 0;
            c.invoked = false;
        }
        Ok(())
    }

    /// The replace-voter prefix (see the parent module): the spare boots, outside the
    /// configuration, and the leader the warm-up elected is asked to add it as a learner;
    /// the script runs until it is caught up and the cluster settled.
    fn add_spare(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        let leader = (self.leader())
            .ok_or("--replace-voter needs the warm-up prefix (a leader to send to)")?;
        let spare = self.voters;
        self.boot(harness, spare, trace.as_deref_mut())?;
        let action = Action::AddLearner { to: leader };
        self.scripted_step(harness, trace.as_deref_mut(), "l", action)?;
        self.settle(harness, trace, None, true)
    }

    /// The admin request of a membership action: adding the spare as a learner, or replacing
    /// the last initial voter with it (`ChangeMembership`, joint consensus).
    fn admin_request(&self, action: Action) -> quorate_core::AdminRequest {
        let spare = NodeId(self.voters as u64 + 1);
        let (seq, command) = match action {
            Action::AddLearner { .. } => (1, quorate_core::AdminCommand::AddLearner(spare)),
            _ => {
                let kept = (1..self.voters as u64).map(NodeId);
                let voters = kept.chain([spare]).collect();
                (2, quorate_core::AdminCommand::ChangeMembership { voters })
            }
        };
        quorate_core::AdminRequest {
            client: ADMIN_CLIENT,
            seq,
            command,
        }
    }

    /// The preload prefix (see the parent module): client `client` sends its write of `k0` to
    /// the leader the warm-up elected, and the script runs until it is committed and nothing
    /// is in flight. It does not wait for the followers to learn the commit index: that takes
    /// the leader's heartbeat, whose tick proposes the expiry of a key past its deadline, and
    /// the search is to choose when that happens.
    fn preload(
        &mut self,
        harness: &H,
        trace: Option<&mut Vec<String>>,
        client: usize,
    ) -> Result<(), String> {
        let leader =
            (self.leader()).ok_or("--preload needs the warm-up prefix (a leader to send to)")?;
        let mark = format!("w{client}");
        if !self.scripted_write(harness, trace, &mark, (client, leader), (None, false))? {
            return Err("the preload write did not succeed in the scripted prefix".into());
        }
        Ok(())
    }

    /// Client `client` sends its current write to `to` by script (traced with `mark`), and
    /// the script runs until the cluster settles (`settle`: the paused node and whether
    /// followers must have caught up, as in [`World::settle`]). Answers whether the write
    /// succeeded.
    fn scripted_write(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
        mark: &str,
        (client, to): (usize, usize),
        (paused, caught_up): (Option<usize>, bool),
    ) -> Result<bool, String> {
        let action = Action::Send { client, to };
        self.scripted_step(harness, trace.as_deref_mut(), mark, action)?;
        self.settle(harness, trace, paused, caught_up)?;
        let answered = self.history.last().map(|e| e.kind);
        Ok(self.clients[client].stage == Stage::Done && answered == Some(EventKind::Ok))
    }

    /// The orphan-writes prefix (see the parent module), one round per client of `clients`:
    /// the leader takes that client's write and is cut off before anything it sent arrives
    /// (the script drops it), then paused while the others settle on a new leader; a second
    /// round resumes the first deposed leader. After two rounds the search starts with two
    /// deposed leaders behind it, each holding a write no other node received, the second
    /// one paused until the search resumes it: Raft's Figure 8, where an entry of an earlier
    /// term reaches a majority under a later leader. After one round, the one deposed leader
    /// is paused with its write: a CRAQ head whose old tail is the new view's tail.
    fn orphan_writes(
        &mut self,
        harness: &H,
        mut trace: Option<&mut Vec<String>>,
        clients: std::ops::Range<usize>,
    ) -> Result<(), String> {
        let mut paused = None;
        for client in clients {
            let leader = (self.leader_except(paused))
                .ok_or("--orphan-writes needs the warm-up prefix (a leader to send to)")?;
            let action = Action::Send { client, to: leader };
            self.scripted_step(harness, trace.as_deref_mut(), &format!("o{client}"), action)?;
            // The write's one attempt: its client does not send it again (a retry at the
            // next leader would only multiply the schedules; the write's own copy is what
            // the prefix is for), so its outcome is unknown unless that attempt is answered.
            self.clients[client].attempts = u32::MAX;
            // Cut off: nothing the leader sent for the write arrives.
            self.net.retain(|m| m.from != leader);
            self.settle(harness, trace.as_deref_mut(), Some(leader), true)?;
            paused = Some(leader);
        }
        Ok(())
    }

    /// The first live node that says it leads.
    fn leader(&self) -> Option<usize> {
        self.leader_except(None)
    }

    /// The first live node but `skip` (a paused one) that says it leads.
    fn leader_except(&self, skip: Option<usize>) -> Option<usize> {
        (0..self.machines.len())
            .filter(|n| Some(*n) != skip)
            .find(|n| {
                (self.machines[*n].node.as_ref()).is_some_and(|p| p.status().role == Role::Leader)
            })
    }

    /// Nothing in flight (but to `paused`), one leader, and every node (but `paused`) follows
    /// it in its term and (with `caught_up`) has committed all it holds, as much as the
    /// leader.
    fn settled(&self, paused: Option<usize>, caught_up: bool) -> bool {
        let statuses: Vec<_> = (self.machines.iter().enumerate())
            .filter(|(n, _)| Some(*n) != paused)
            .filter_map(|(_, m)| m.node.as_ref().map(|p| p.status()))
            .collect();
        let mut leaders = statuses.iter().filter(|s| s.role == Role::Leader);
        let (Some(leader), None) = (leaders.next(), leaders.next()) else {
            return false;
        };
        // A paused node is deposed once a leader of a later term leads without it (a paused
        // leader always is, by then; a paused follower must wait for the view that cuts it
        // out).
        let paused_term = paused.and_then(|p| self.machines[p].node.as_ref());
        if paused_term.is_some_and(|p| p.status().term >= leader.term) {
            return false;
        }
        self.net.iter().all(|m| Some(m.to) == paused)
            && statuses.iter().all(|s| {
                s.leader == Some(leader.id)
                    && s.term == leader.term
                    && (!caught_up
                        || (s.commit_index == leader.commit_index
                            && s.commit_index == s.last_index))
            })
    }

    fn ids(&self) -> Vec<NodeId> {
        (1..=self.machines.len() as u64).map(NodeId).collect()
    }

    /// Starts (or restarts) node `n` from its durable records.
    fn boot(
        &mut self,
        harness: &H,
        n: usize,
        trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        let ids = self.ids();
        // Spares (after the initial voters) start outside the configuration.
        self.machines[n].node = Some(harness.node(ids[n], &ids[..self.voters]));
        // A fresh process, a fresh change feed (without this no feed ever ran, and the
        // feed checks passed vacuously until session 40).
        if self.change_feeds {
            self.feeds.started(n);
        }
        let recovered = self.machines[n].durable.clone();
        self.step(n, Input::Start { recovered }, trace)
    }

    pub(super) fn actions(&self, config: &ExploreConfig) -> Vec<Action> {
        let mut actions = Vec::new();
        let fifo = <H::Node as Protocol>::FIFO_CHANNELS;
        for (i, m) in self.net.iter().enumerate() {
            let head = !fifo
                || !self.net[..i]
                    .iter()
                    .any(|o| o.from == m.from && o.to == m.to);
            if head && self.machines[m.to].node.is_some() {
                actions.push(Action::Deliver(i));
            }
        }
        // Without FIFO channels a drop is no behaviour of its own: within a depth bound, a
        // message never delivered is a message lost, and nothing observes the loss. On FIFO
        // links a drop breaks the link, which also discards what was sent after it.
        if fifo && self.drops_left > 0 {
            for (i, m) in self.net.iter().enumerate() {
                // On FIFO links a drop breaks the link: offer it once, at its oldest message.
                let head = !fifo
                    || !self.net[..i]
                        .iter()
                        .any(|o| o.from == m.from && o.to == m.to);
                if head {
                    actions.push(Action::Drop(i));
                }
            }
        }
        // A timer may fire once its window opened, and not after another timer's closed.
        let deadline = self
            .machines
            .iter()
            .filter(|m| m.node.is_some())
            .flat_map(|m| m.timers.iter().map(|t| t.2))
            .min()
            .unwrap_or(u64::MAX);
        for (node, machine) in self.machines.iter().enumerate() {
            if machine.node.is_some() && self.timers_left > 0 {
                for (timer, (_, opens, _)) in machine.timers.iter().enumerate() {
                    if *opens <= deadline {
                        actions.push(Action::Fire { node, timer });
                    }
                }
            }
        }
        for (n, machine) in self.machines.iter().enumerate() {
            match machine.node {
                Some(_) if self.crashes_left > 0 => actions.push(Action::Crash(n)),
                None => actions.push(Action::Restart(n)),
                Some(_) => {}
            }
        }
        for (client, c) in self.clients.iter().enumerate() {
            let Stage::Ready { to } = c.stage else {
                continue;
            };
            if c.attempts >= config.attempts_max {
                continue;
            }
            let targets = match c.sticky {
                true => to
                    .filter(|n| self.machines[*n].node.is_some())
                    .into_iter()
                    .collect(),
                false => self.targets(to, config.sessions || config.any_node),
            };
            for &to in &targets {
                actions.push(Action::Send { client, to });
            }
            // A lost answer to a read only repeats the read: only writes lose theirs.
            if self.lost_replies_left > 0 && !c.op.is_read() {
                for to in targets {
                    actions.push(Action::SendLosingReply { client, to });
                }
            }
        }
        // Last, so that the indices of every other action (and the paths printed before
        // crash points) stay as they were.
        if config.crash_points && self.crashes_left > 0 {
            let torn: Vec<Action> = (actions.iter())
                .filter_map(|action| match *action {
                    Action::Deliver(i) => {
                        let m = &self.net[i];
                        let input = Input::Message {
                            from: NodeId(m.from as u64 + 1),
                            msg: m.msg.clone(),
                        };
                        self.tears(m.to, input).then_some(Action::TornDeliver(i))
                    }
                    Action::Fire { node, timer } => {
                        let input = Input::Timer(self.machines[node].timers[timer].0);
                        self.tears(node, input)
                            .then_some(Action::TornFire { node, timer })
                    }
                    Action::Send { client, to } => {
                        let request = self.clients[client].call.request().clone();
                        self.tears(to, Input::Request(request))
                            .then_some(Action::TornSend { client, to })
                    }
                    _ => None,
                })
                .collect();
            actions.extend(torn);
        }
        if self.reconfigs_left > 0 {
            for to in self.targets(None, false) {
                actions.push(Action::Reconfigure { to });
            }
        }
        if self.stale_left > 0 {
            for (i, m) in self.late.iter().enumerate() {
                if self.machines[m.1.to].node.is_some() {
                    actions.push(Action::Late(i));
                }
            }
        }
        actions
    }

    /// Whether node `n`'s step with `input` has a crash point: a persist after a message to
    /// another node or an answer to a client, in the step's own effects (probed on a copy
    /// of the node). Rule 1 of the driver contract holds everything after a persist until
    /// it is durable, so a step that persists first has nothing out to tear.
    fn tears(&self, n: usize, input: Input<H::Node>) -> bool {
        let Some(mut node) = self.machines[n].node.clone() else {
            return false;
        };
        let me = NodeId(n as u64 + 1);
        let mut out = Effects::new();
        let now = Time::from_nanos(self.now);
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.step(now, input, &mut out);
        }));
        if stepped.is_err() {
            return false; // The untorn action reports the panic as a violation.
        }
        let mut said = false;
        for effect in out.as_slice() {
            match effect {
                Effect::Send { to, .. } if *to != me => said = true,
                Effect::Reply(_) => said = true,
                Effect::Persist(_) if said => return true,
                _ => {}
            }
        }
        false
    }

    /// Where a ready client may send: the node a redirect (or its session) named, else every
    /// up node that believes it serves requests, else the first up node (which redirects).
    /// With sessions (`any`), every up node: ZooKeeper's clients connect to any server.
    fn targets(&self, named: Option<usize>, any: bool) -> Vec<usize> {
        let up = |n: &usize| self.machines[*n].node.is_some();
        if let Some(n) = named.filter(up) {
            return vec![n];
        }
        if any {
            return (0..self.machines.len()).filter(up).collect();
        }
        let serving: Vec<usize> = (0..self.machines.len())
            .filter(up)
            .filter(|n| {
                let role = self.machines[*n].node.as_ref().map(|p| p.status().role);
                matches!(role, Some(Role::Leader | Role::Replica))
            })
            .collect();
        if !serving.is_empty() {
            return serving;
        }
        (0..self.machines.len()).find(up).into_iter().collect()
    }

    /// A delivery's destination and a digest of the message: what the search's sleep sets
    /// remember it by. `None` for every other action.
    pub(super) fn delivery_key(&self, action: Action) -> Option<DeliveryKey> {
        let Action::Deliver(i) = action else {
            return None;
        };
        let m = &self.net[i];
        Some(DeliveryKey {
            to: m.to,
            message: m.digest(),
        })
    }

    pub(super) fn describe(&self, action: Action) -> String {
        match action {
            Action::Deliver(i) | Action::Drop(i) => {
                let m = &self.net[i];
                let verb = if matches!(action, Action::Deliver(_)) {
                    "deliver"
                } else {
                    "drop"
                };
                format!("{verb} {}", m.route())
            }
            Action::Fire { node, timer } => {
                format!(
                    "n{} timer {:?}",
                    node + 1,
                    self.machines[node].timers[timer].0
                )
            }
            Action::TornDeliver(i) => {
                let m = &self.net[i];
                format!(
                    "deliver {}, and n{} crashes before its next persist is durable",
                    m.route(),
                    m.to + 1
                )
            }
            Action::TornSend { client, to } => format!(
                "client {} sends {:?} to n{}, and n{} crashes before its next persist is durable",
                client + 1,
                self.clients[client].call.request(),
                to + 1,
                to + 1
            ),
            Action::TornFire { node, timer } => format!(
                "n{} timer {:?}, and n{} crashes before its next persist is durable",
                node + 1,
                self.machines[node].timers[timer].0,
                node + 1
            ),
            Action::Crash(n) => format!("crash n{}", n + 1),
            Action::Restart(n) => format!("restart n{}", n + 1),
            Action::Late(i) => format!("deliver late a copy of {}", self.late[i].1.route()),
            Action::Reconfigure { to } | Action::AddLearner { to } => {
                format!(
                    "admin {:?} to n{}",
                    self.admin_request(action).command,
                    to + 1
                )
            }
            Action::Send { client, to } | Action::SendLosingReply { client, to } => {
                let lost = match action {
                    Action::SendLosingReply { .. } => " (its answer will be lost)",
                    _ => "",
                };
                format!(
                    "client {} sends {:?} to n{}{lost}",
                    client + 1,
                    self.clients[client].call.request(),
                    to + 1
                )
            }
        }
    }

    pub(super) fn apply(
        &mut self,
        harness: &H,
        action: Action,
        trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        self.apply_action(harness, action, trace)?;
        self.catch_up_feeds(harness)
    }

    /// Catches every up node's feed up with its applied store and checks what it emitted,
    /// as the simulator does after every step.
    fn catch_up_feeds(&mut self, harness: &H) -> Result<(), String> {
        for (n, machine) in self.machines.iter().enumerate() {
            let Some(store) = machine
                .node
                .as_ref()
                .and_then(|node| harness.applied_store(node))
            else {
                continue;
            };
            if let Some(found) = self.feeds.stepped(n, store).into_iter().next() {
                return Err(found);
            }
        }
        Ok(())
    }

    fn apply_action(
        &mut self,
        harness: &H,
        action: Action,
        trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        self.touched_clients = false;
        self.said = false;
        match action {
            Action::TornDeliver(i) => {
                let to = self.net[i].to;
                self.torn(harness, to, Action::Deliver(i), trace)
            }
            Action::TornFire { node, timer } => {
                self.torn(harness, node, Action::Fire { node, timer }, trace)
            }
            Action::TornSend { client, to } => {
                self.torn(harness, to, Action::Send { client, to }, trace)
            }
            Action::Deliver(i) => {
                let m = self.net.remove(i);
                let input = Input::Message {
                    from: NodeId(m.from as u64 + 1),
                    msg: m.msg,
                };
                self.step(m.to, input, trace)
            }
            Action::Drop(i) => {
                self.drops_left -= 1;
                let m = self.net.remove(i);
                if <H::Node as Protocol>::FIFO_CHANNELS {
                    self.net.retain(|o| o.from != m.from || o.to != m.to);
                }
                Ok(())
            }
            Action::Fire { node, timer } => {
                self.timers_left = self.timers_left.saturating_sub(1);
                let before = self.idle_marks(node);
                let (name, at, _) = self.machines[node].timers.remove(timer);
                self.now = self.now.max(at);
                self.step(node, Input::Timer(name), trace)?;
                if self.idle_left > 0 && self.loud == 0 && self.idle_marks(node) == before {
                    // Nothing but time moved: a free firing (see the parent module).
                    self.idle_left -= 1;
                    self.idle_taken += 1;
                    self.timers_left = self.timers_left.saturating_add(1);
                }
                Ok(())
            }
            Action::Crash(n) => {
                self.crash_counted(n);
                Ok(())
            }
            Action::Restart(n) => self.boot(harness, n, trace),
            Action::Send { client, to } => self.send(harness, client, to, trace),
            Action::SendLosingReply { client, to } => {
                self.lost_replies_left -= 1;
                self.clients[client].losing_reply = true;
                self.send(harness, client, to, trace)
            }
            Action::Late(i) => {
                self.stale_left -= 1;
                let (_, m) = self.late.remove(i);
                if self.stale_left == 0 {
                    self.late.clear(); // Nothing left to offer: worlds that differ only here merge.
                }
                let input = Input::Message {
                    from: NodeId(m.from as u64 + 1),
                    msg: m.msg,
                };
                self.step(m.to, input, trace)
            }
            Action::Reconfigure { to } | Action::AddLearner { to } => {
                if matches!(action, Action::Reconfigure { .. }) {
                    self.reconfigs_left -= 1;
                }
                let request = self.admin_request(action);
                self.step(to, Input::Admin(request), trace)
            }
        }
    }

    /// Takes `action` (a delivery, timer firing or client request at node `n`) with its
    /// crash point: the
    /// node crashes at its first persist after it said something (see [`World::step`]), or
    /// at the end of the action if the step had no such persist after all.
    fn torn(
        &mut self,
        harness: &H,
        n: usize,
        action: Action,
        trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        self.tear = true;
        let stepped = self.apply_action(harness, action, trace);
        self.tear = false;
        stepped?;
        if self.machines[n].node.is_some() {
            self.crash_counted(n);
        }
        Ok(())
    }

    /// A crash of the search's (a crash action, or a crash point): it spends the budget and
    /// the checkers hear of it.
    fn crash_counted(&mut self, n: usize) {
        self.crashes_left -= 1;
        self.crash(n);
        self.invariants.on_crash(NodeId(n as u64 + 1));
    }

    /// What an idle timer firing of node `n` leaves unchanged: its pending timer names, and
    /// (with `loud`) that it had no effect but setting timers: nothing sent, persisted or
    /// answered. (Its state may change, a tick counter: idleness only decides what the
    /// firing costs of the bounds, never whether it is explored.)
    fn idle_marks(&self, n: usize) -> Vec<String> {
        let mut timers: Vec<String> = (self.machines[n].timers.iter())
            .map(|(t, _, _)| format!("{t:?}"))
            .collect();
        timers.sort();
        timers
    }

    fn crash(&mut self, n: usize) {
        self.feeds.crashed(n);
        let machine = &mut self.machines[n];
        machine.node = None;
        machine.timers.clear();
        machine.digest = digest_of(&machine.durable);
        if <H::Node as Protocol>::FIFO_CHANNELS {
            // The node's connections break with it.
            self.net.retain(|m| m.from != n && m.to != n);
        }
        // The attempts waiting on it time out.
        for c in &mut self.clients {
            if c.stage == (Stage::Awaiting { at: n }) {
                let _ = c.call.on_timeout();
                c.losing_reply = false;
                c.stage = Stage::Ready {
                    to: c.sticky.then_some(n),
                };
            }
        }
    }

    fn send(
        &mut self,
        harness: &H,
        client: usize,
        to: usize,
        trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        let c = &mut self.clients[client];
        c.attempts += 1;
        c.stage = Stage::Awaiting { at: to };
        if harness.sticky_writes() && !c.op.is_read() {
            c.sticky = true;
        }
        let request = c.call.request().clone();
        if !c.invoked {
            c.invoked = true;
            let op = c.op.clone();
            self.record(client, EventKind::Invoke, &op, None, None, None);
        }
        self.step(to, Input::Request(request), trace)
    }

    fn record(
        &mut self,
        client: usize,
        kind: EventKind,
        op: &Op,
        output: Option<&Output>,
        node: Option<usize>,
        error: Option<String>,
    ) {
        let value = history_value(op, output);
        self.history.push(HistoryEvent {
            process: client as u64,
            kind,
            key: Some(String::from_utf8_lossy(op.key()).into_owned()),
            value,
            time: self.event_time(self.history.len()),
            node: node.map(|n| n as u64 + 1),
            error,
            mode: self.clients[client].mode(),
        });
    }

    /// Steps node `n` with `input` and carries out its effects; messages to itself, and
    /// timers set to fire at once, are handled right after, in order.
    fn step(
        &mut self,
        n: usize,
        input: Input<H::Node>,
        mut trace: Option<&mut Vec<String>>,
    ) -> Result<(), String> {
        let mut inputs = std::collections::VecDeque::from([input]);
        let mut handled = 0;
        self.loud = 0;
        while let Some(input) = inputs.pop_front() {
            handled += 1;
            if handled > STEP_INPUTS_MAX {
                return Err(format!(
                    "n{}: a step that never ends: {STEP_INPUTS_MAX} inputs within one action \
                     (messages to itself, timers due at once) and more queued; time never \
                     advances",
                    n + 1
                ));
            }
            let me = NodeId(n as u64 + 1);
            let now = Time::from_nanos(self.now);
            self.invariants.before_step(now, me, &input);
            let mut out = Effects::new();
            let node = self.machines[n].node.as_mut().expect("only up nodes step");
            let before = node.status();
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                node.step(now, input, &mut out);
                node.check_invariants();
            }));
            if let Err(panic) = stepped {
                let message = crate::simulation::panic_message(panic.as_ref());
                return Err(format!("n{} panicked: {message}", n + 1));
            }
            let node = self.machines[n].node.as_ref().expect("still up");
            let after = node.status();
            monotonic(&before, &after).map_err(|v| format!("monotonicity: n{} {v}", n + 1))?;
            // The simulator's `stale` fault copies the messages of a node that coordinates.
            let keeps_late =
                self.stale_left > 0 && matches!(after.role, Role::Leader | Role::Replica);
            self.invariants
                .after_step(me, node, out.as_slice())
                .map_err(|v| format!("n{}: {v}", n + 1))?;
            if let Some(trace) = trace.as_deref_mut() {
                for effect in out.as_slice() {
                    trace.push(format!("      n{} {effect:?}", n + 1));
                }
            }
            for effect in out.drain() {
                if !matches!(effect, Effect::SetTimer { .. }) {
                    self.loud += 1;
                }
                if self.tear && self.said && matches!(effect, Effect::Persist(_)) {
                    // The crash point: what was said is out, this record and everything
                    // after it are lost with the node.
                    self.tear = false;
                    self.crash_counted(n);
                    return Ok(());
                }
                match effect {
                    Effect::Send { to, msg } => {
                        self.said |= to != me;
                        self.invariants
                            .on_send(now, me, to, &msg)
                            .map_err(|v| format!("n{}: {v}", n + 1))?;
                        if to == me {
                            inputs.push_back(Input::Message { from: me, msg });
                        } else if let Some(to) = self.index(to) {
                            let sent = InFlight { from: n, to, msg };
                            if keeps_late {
                                self.keep_late(&sent);
                            }
                            self.net.push(sent);
                        }
                    }
                    Effect::Persist(record) => {
                        let durable = &mut self.machines[n].durable;
                        if record.is_checkpoint() {
                            durable.clear();
                        }
                        durable.push(record);
                    }
                    Effect::SetTimer { timer, after } if after.max.is_zero() => {
                        // Due now and before anything else can happen (a persist's
                        // completion): fired within this action, as self-messages are.
                        inputs.push_back(Input::Timer(timer));
                    }
                    Effect::SetTimer { timer, after } => {
                        let opens = self.now + after.min.as_nanos() as u64;
                        let closes = self.now + after.max.as_nanos() as u64;
                        let timers = &mut self.machines[n].timers;
                        timers.retain(|(t, _, _)| *t != timer);
                        timers.push((timer, opens, closes));
                    }
                    Effect::CancelTimer(timer) => {
                        inputs.retain(|i| !matches!(i, Input::Timer(t) if *t == timer));
                        self.machines[n].timers.retain(|(t, _, _)| *t != timer);
                    }
                    Effect::Reply(reply) => {
                        self.said = true;
                        self.on_reply(n, reply);
                    }
                }
            }
        }
        let machine = &mut self.machines[n];
        machine.digest = digest_of(&(&machine.node, &machine.durable));
        Ok(())
    }

    /// Keeps a copy of `sent` to deliver late, unless an identical one is kept already.
    fn keep_late(&mut self, sent: &InFlight<<H::Node as Protocol>::Message>) {
        // In the order of their digests, whatever the order they were sent in: schedules that
        // differ only in the order of commuting deliveries reach the same world.
        let digest = sent.digest();
        if let Err(at) = self.late.binary_search_by_key(&digest, |(d, _)| *d) {
            self.late.insert(at, (digest, sent.clone()));
        }
    }

    fn index(&self, id: NodeId) -> Option<usize> {
        let i = (id.0 as usize).checked_sub(1)?;
        (i < self.machines.len()).then_some(i)
    }

    fn on_reply(&mut self, from: usize, reply: Reply) {
        let Some(client) = self
            .clients
            .iter()
            .position(|c| c.stage != Stage::Done && c.call.is_answered_by(&reply))
        else {
            return; // A late answer to an attempt the client gave up on.
        };
        self.touched_clients = true;
        let c = &mut self.clients[client];
        if std::mem::take(&mut c.losing_reply) {
            // The answer is lost on its way: the attempt times out, the request goes again.
            let _ = c.call.on_timeout();
            c.stage = Stage::Ready {
                to: c.sticky.then_some(from),
            };
            return;
        }
        let node = NodeId(from as u64 + 1);
        let step = self.clients[client].call.on_reply(node, reply.result);
        let op = self.clients[client].op.clone();
        match step {
            Step::Done(Outcome::Ok(output)) => {
                self.clients[client].stage = Stage::Done;
                if let Some(why) = refusal(&op, &output) {
                    let why = Some(why.to_string());
                    self.record(client, EventKind::Fail, &op, None, Some(from), why);
                } else {
                    self.record(client, EventKind::Ok, &op, Some(&output), Some(from), None);
                    self.read_back(client, from);
                }
            }
            Step::Done(Outcome::Rejected(why)) => {
                self.clients[client].stage = Stage::Done;
                self.record(client, EventKind::Fail, &op, None, Some(from), Some(why));
            }
            Step::Done(outcome) => {
                self.clients[client].stage = Stage::Done;
                let why = format!("{outcome:?}");
                self.record(client, EventKind::Info, &op, None, None, Some(why));
            }
            Step::Send { to, .. } => {
                let to = match self.clients[client].sticky {
                    true => Some(from),
                    false => to.and_then(|id| self.index(id)),
                };
                self.clients[client].stage = Stage::Ready { to };
            }
        }
    }

    /// Starts the session's read-back of a succeeded write, if any: a plain read at `node`.
    fn read_back(&mut self, client: usize, node: usize) {
        let c = &mut self.clients[client];
        let Some(op) = c.read_back.take() else {
            return;
        };
        c.call = Client::call(&mut c.session, client, op.clone(), ReadMode::Local);
        c.op = op;
        c.read = ReadMode::Local;
        c.stage = Stage::Ready { to: Some(node) };
        c.attempts = 0;
        c.invoked = false;
        c.sticky = true;
    }

    /// The time recorded for the history's `index`th event. Messages take no time, so many
    /// events share one `now`; the schedule still orders them (an answer recorded before a
    /// request was sent happened before it), and the judge orders events by time only, so
    /// each event gets `now` plus its position, in nanoseconds: strictly increasing, and a
    /// function of the history itself, so no two worlds the digest merged before are told
    /// apart now.
    fn event_time(&self, index: usize) -> u64 {
        self.now + index as u64
    }

    /// The history with every unfinished operation ended as `info`.
    pub(super) fn final_history(&self) -> Vec<HistoryEvent> {
        let mut history = self.history.clone();
        for (client, c) in self.clients.iter().enumerate() {
            if c.invoked && c.stage != Stage::Done {
                history.push(HistoryEvent {
                    process: client as u64,
                    kind: EventKind::Info,
                    key: Some(String::from_utf8_lossy(c.op.key()).into_owned()),
                    value: history_value(&c.op, None),
                    time: self.event_time(history.len()),
                    node: None,
                    error: Some("unfinished when the schedule ended".into()),
                    mode: c.mode(),
                });
            }
        }
        history
    }

    /// With [`ExploreConfig::final_reads`] and a harness that has them (the leaderless
    /// protocols, whose promises judge the replicas' final state): the leaf's history
    /// followed by the simulator's final reads. Every down node restarts, every message in
    /// flight is delivered (and what that sends, oldest first; no timer fires), and then
    /// every node reads every key of the history with a plain read, recorded as `Final`
    /// events. In the explorer's network nothing is lost (no drops without FIFO links), so
    /// what was sent is what anti-entropy would bring. `None` when there are none, or when
    /// the deliveries do not end within `STEP_INPUTS_MAX`.
    pub(super) fn with_final_reads(
        &self,
        harness: &H,
        config: &ExploreConfig,
    ) -> Result<Option<Vec<HistoryEvent>>, String> {
        if !config.final_reads || harness.final_reads().is_none() {
            return Ok(None);
        }
        let mut world = self.clone();
        for n in 0..world.machines.len() {
            if world.machines[n].node.is_none() {
                world.apply(harness, Action::Restart(n), None)?;
            }
        }
        let mut delivered = 0;
        while !world.net.is_empty() {
            delivered += 1;
            if delivered > STEP_INPUTS_MAX {
                return Ok(None);
            }
            world.apply(harness, Action::Deliver(0), None)?;
        }
        let mut history = world.final_history();
        let mut keys: Vec<String> = history.iter().filter_map(|e| e.key.clone()).collect();
        keys.sort();
        keys.dedup();
        for n in 0..world.machines.len() {
            for key in &keys {
                if !harness.replicates(key, n as u64 + 1) {
                    continue;
                }
                let key_bytes = Bytes::from(key.clone());
                let op = match harness.client_ops() {
                    ClientOps::Causal => Op::GetSiblings { key: key_bytes },
                    ClientOps::Crdt => crdt_read(key_bytes),
                    _ => Op::Get { key: key_bytes },
                };
                let request = quorate_core::Request {
                    client: ClientId(FINAL_CLIENT + n as u64),
                    seq: 0,
                    op: op.clone(),
                    read: ReadMode::Local,
                    quorum: None,
                };
                let now = Time::from_nanos(world.now);
                let mut out = Effects::new();
                let node = world.machines[n]
                    .node
                    .as_mut()
                    .expect("every node restarted");
                node.step(now, Input::Request(request), &mut out);
                let reply = out.drain().find_map(|effect| match effect {
                    Effect::Reply(reply) => Some(reply),
                    _ => None,
                });
                let Some(Reply {
                    result: Ok(output), ..
                }) = reply
                else {
                    return Err(format!("final read of {key:?} on n{}: {reply:?}", n + 1));
                };
                for (kind, output) in [(EventKind::Invoke, None), (EventKind::Ok, Some(&output))] {
                    history.push(HistoryEvent {
                        process: crate::harness::FINAL_READ_PROCESS + n as u64,
                        kind,
                        key: Some(key.clone()),
                        value: op_value(&op, output),
                        time: world.event_time(history.len()),
                        node: Some(n as u64 + 1),
                        error: None,
                        mode: Mode::Final,
                    });
                }
            }
        }
        Ok(Some(history))
    }

    /// Judges `history` (this world's, with final reads or without) as the simulator does;
    /// `Err` lists what failed.
    pub(super) fn judge_history(
        &self,
        harness: &H,
        history: &[HistoryEvent],
    ) -> Result<(), String> {
        let history = history.to_vec();
        let check = quorate_check::judge(&history, harness.promise(), &Limits::default());
        let mut failed: Vec<String> = check.violations;
        if failed.is_empty() && self.feeds.active() {
            failed.extend(self.feeds.check.complete(&history));
        }
        for model in &check.models {
            if model.promised && model.satisfied == Some(false) && failed.is_empty() {
                failed.push(format!("the history is not {}", model.model));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    pub(super) fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for machine in &self.machines {
            machine.digest.hash(&mut hasher);
            machine.timers.hash(&mut hasher);
        }
        let mut messages: Vec<u64> = self.net.iter().map(InFlight::digest).collect();
        if !<H::Node as Protocol>::FIFO_CHANNELS {
            messages.sort_unstable();
        }
        messages.hash(&mut hasher);
        // The late copies, in the order they are offered.
        for (digest, _) in &self.late {
            digest.hash(&mut hasher);
        }
        for c in &self.clients {
            let session = (c.read_back.is_some(), c.sticky, c.losing_reply);
            (&c.stage, c.attempts, c.invoked, session).hash(&mut hasher);
        }
        self.history.hash(&mut hasher);
        let budgets = (
            self.drops_left,
            self.crashes_left,
            self.timers_left,
            self.idle_left,
            self.lost_replies_left,
            self.reconfigs_left,
            self.stale_left,
        );
        (self.now, budgets).hash(&mut hasher);
        hasher.finish()
    }
}

/// The simulator's per-node monotonicity check (`node::Slot::monotonic`), step by step: a
/// node's term, commit index and applied index never go back within one incarnation (a
/// booting node starts from nothing, so its `Start` step only moves them up). Checked on the
/// status before and after each input, it needs no memory outside the node's state, so the
/// digest stays sound.
fn monotonic(
    before: &quorate_core::NodeStatus,
    after: &quorate_core::NodeStatus,
) -> Result<(), String> {
    let fields = [
        ("term", before.term, after.term),
        ("commit index", before.commit_index, after.commit_index),
        ("applied index", before.applied_index, after.applied_index),
    ];
    for (name, was, is) in fields {
        if is < was {
            return Err(format!(
                "{name} went back from {was} to {is} without a restart"
            ));
        }
    }
    Ok(())
}

/// A digest of a value's `Debug` form, written straight into the hasher.
pub(super) fn digest_of<T: std::fmt::Debug>(value: &T) -> u64 {
    struct Sink(DefaultHasher);
    impl std::fmt::Write for Sink {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut sink = Sink(DefaultHasher::new());
    write!(sink, "{value:?}").expect("formatting into a hasher does not fail");
    sink.0.finish()
}
