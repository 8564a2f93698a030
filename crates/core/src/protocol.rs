//! The one interface every protocol implements.
//!
//! A protocol node is a deterministic state machine. It is fed one [`Input`] at a time together
//! with `now`, the reading of its own clock, and answers by pushing [`Effect`]s into an
//! [`Effects`] buffer. It never performs I/O itself: the *driver* (the simulator, or the
//! networked server) carries the effects out. This is the shape of etcd-io/raft's
//! `Step`/`Ready`, raft-rs's persist barrier and stateright's actors, and it is what lets the
//! same node type run under a seeded fault-injecting simulator and over real TCP and disks.
//!
//! ```text
//! inputs : Start { recovered records } | Request | Admin | Message { from, msg } | Timer
//! outputs: Persist(record)                 -- a barrier, see below
//!          Send { to, msg } | Reply | SetTimer { timer, after: min..=max } | CancelTimer
//! ```
//!
//! ## The rules a driver follows
//!
//! 1. **Effects run in order, and `Persist` is a barrier.** A driver executes each node's
//!    effects as one FIFO queue. When it meets a `Persist`, it writes the record and holds
//!    *every later effect of that node* (including those produced by later inputs) until the
//!    record is durable (fsynced). Consecutive persists may share one fsync (group commit).
//!    A node therefore never says anything that depends on state it has not yet made durable:
//!    "persist before you speak" is enforced by construction, not by discipline.
//! 2. **Only persisted records survive a crash.** A restarted node is constructed afresh and
//!    receives, in [`Input::Start`], the records that were durable, in the order they were
//!    persisted. A record whose [`Durable::is_checkpoint`] is true stands for everything before
//!    it, so drivers may discard the earlier records (this is how log compaction frees disk).
//! 3. **Timers are ranges.** `SetTimer { after }` asks for the timer to fire once after a
//!    duration the driver draws from `after` (seeded in the simulator). Setting a timer that is
//!    already set replaces it; `CancelTimer` removes it. Protocol code owns no randomness.
//! 4. **`now` is the node's own clock.** It is monotonic for one incarnation of a node but may
//!    run at a different rate than other nodes' clocks. Protocols that rely on clocks for safety
//!    (leases) must state their drift bound.
//! 5. **Messages may be lost, duplicated, delayed and reordered**, unless the protocol declares
//!    [`Protocol::FIFO_CHANNELS`], in which case a driver delivers the messages between two
//!    nodes in the order they were sent, and only a broken connection (a partition, or a
//!    crash of either end) may lose a suffix of them; nothing sent before a break arrives
//!    after it. Drivers do not report breaks: a protocol that must know numbers its messages.
//! 6. **A message to oneself is delivered reliably, in order.** A `Send` whose destination is
//!    the node itself crosses no network: it is never lost, duplicated or partitioned, and it
//!    is delivered (as `Input::Message` from the node itself) only after every effect before
//!    it, so after every earlier `Persist` is durable. This is how a node learns that its own
//!    writes are on disk — a leader counting its own log toward a quorum, a candidate counting
//!    its own vote — as etcd-io/raft's storage-append responses do. (A zero-delay timer set
//!    after a persist works too, by rule 1.)

use crate::ids::NodeId;
use crate::kv::{AdminRequest, Reply, Request};
use crate::time::{Time, TimerRange};
use std::fmt;
use std::hash::Hash;

/// A durable record type: what a protocol asks its driver to persist.
pub trait Durable {
    /// True when this record contains everything a node needs from all earlier records, so
    /// the driver may discard them.
    fn is_checkpoint(&self) -> bool;
}

/// A deterministic protocol node. See the module docs for the contract with drivers.
pub trait Protocol: Sized {
    /// Messages between nodes of the cluster.
    type Message: Clone + fmt::Debug + Hash;
    /// Records of durable state.
    type Record: Clone + fmt::Debug + Durable;
    /// Names of the node's timers; each name is at most once pending.
    type Timer: Copy + Eq + Ord + Hash + fmt::Debug;

    /// Whether the protocol needs FIFO channels between each pair of nodes (ZAB does).
    const FIFO_CHANNELS: bool = false;

    /// Feeds one input to the node at local time `now`; effects are appended to `out`.
    fn step(&mut self, now: Time, input: Input<Self>, out: &mut Effects<Self>);

    /// A summary of the node's state for operators (INFO), traces and drivers.
    fn status(&self) -> NodeStatus;

    /// Asserts the node's local invariants; drivers call it after every step in tests and
    /// simulation. Violations are programmer errors and panic.
    fn check_invariants(&self) {}
}

/// One input to a node.
pub enum Input<P: Protocol> {
    /// The node starts (or restarts after a crash) with the records that survived on disk.
    Start { recovered: Vec<P::Record> },
    /// A client request arrived.
    Request(Request),
    /// An operator's request to change membership or leadership; answered with a `Reply`.
    Admin(AdminRequest),
    /// A message from another node arrived.
    Message { from: NodeId, msg: P::Message },
    /// A timer set earlier fired.
    Timer(P::Timer),
}

/// One effect a node asks its driver to carry out.
pub enum Effect<P: Protocol> {
    /// Send `msg` to node `to` (best effort: it may be lost).
    Send { to: NodeId, msg: P::Message },
    /// Answer a client request.
    Reply(Reply),
    /// Make a record durable. A barrier: later effects wait until it is fsynced.
    Persist(P::Record),
    /// Fire `timer` once after a duration drawn from `after`, replacing any pending instance.
    SetTimer { timer: P::Timer, after: TimerRange },
    /// Remove the pending instance of `timer`, if any.
    CancelTimer(P::Timer),
}

/// The buffer a node pushes its effects into. Drivers reuse one buffer across steps.
pub struct Effects<P: Protocol> {
    list: Vec<Effect<P>>,
}

impl<P: Protocol> Default for Effects<P> {
    fn default() -> Self {
        Effects { list: Vec::new() }
    }
}

impl<P: Protocol> Effects<P> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn send(&mut self, to: NodeId, msg: P::Message) {
        self.list.push(Effect::Send { to, msg });
    }

    pub fn reply(&mut self, reply: Reply) {
        self.list.push(Effect::Reply(reply));
    }

    pub fn persist(&mut self, record: P::Record) {
        self.list.push(Effect::Persist(record));
    }

    pub fn set_timer(&mut self, timer: P::Timer, after: TimerRange) {
        self.list.push(Effect::SetTimer { timer, after });
    }

    pub fn cancel_timer(&mut self, timer: P::Timer) {
        self.list.push(Effect::CancelTimer(timer));
    }

    pub fn as_slice(&self) -> &[Effect<P>] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Removes and returns all effects, in order, keeping the allocation.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect<P>> {
        self.list.drain(..)
    }
}

/// A node's role, as reported in its status.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
    /// A non-voting member that only receives state.
    Learner,
    /// A member of a leaderless protocol.
    Replica,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
            Role::Learner => "learner",
            Role::Replica => "replica",
        };
        f.write_str(name)
    }
}

/// What a node reports about itself.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Role,
    /// The protocol's logical epoch: Raft's term, ZAB's epoch, a view or ballot number.
    pub term: u64,
    /// The node's best guess of the current leader, if the protocol has one.
    pub leader: Option<NodeId>,
    /// Highest log position known to be committed.
    pub commit_index: u64,
    /// Highest log position applied to the state machine.
    pub applied_index: u64,
    /// Highest log position present locally.
    pub last_index: u64,
}

impl<P: Protocol> fmt::Debug for Input<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Start { recovered } => write!(f, "Start({} records)", recovered.len()),
            Input::Request(request) => write!(f, "{request:?}"),
            Input::Admin(admin) => write!(f, "{admin:?}"),
            Input::Message { from, msg } => write!(f, "{from} -> {msg:?}"),
            Input::Timer(timer) => write!(f, "Timer({timer:?})"),
        }
    }
}

impl<P: Protocol> fmt::Debug for Effect<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Send { to, msg } => write!(f, "Send({to}, {msg:?})"),
            Effect::Reply(reply) => write!(f, "{reply:?}"),
            Effect::Persist(record) => write!(f, "Persist({record:?})"),
            Effect::SetTimer { timer, after } => {
                write!(f, "SetTimer({timer:?}, {:?}..={:?})", after.min, after.max)
            }
            Effect::CancelTimer(timer) => write!(f, "CancelTimer({timer:?})"),
        }
    }
}

impl<P: Protocol> Clone for Effect<P> {
    fn clone(&self) -> Self {
        match self {
            Effect::Send { to, msg } => Effect::Send {
                to: *to,
                msg: msg.clone(),
            },
            Effect::Reply(reply) => Effect::Reply(reply.clone()),
            Effect::Persist(record) => Effect::Persist(record.clone()),
            Effect::SetTimer { timer, after } => Effect::SetTimer {
                timer: *timer,
                after: *after,
            },
            Effect::CancelTimer(timer) => Effect::CancelTimer(*timer),
        }
    }
}

impl<P: Protocol> fmt::Debug for Effects<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

/// A violated safety property, found by a cluster-wide checker.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Violation {
    /// The property's name, as the paper names it (for example "election safety").
    pub property: &'static str,
    /// What was observed.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

/// Cluster-wide safety properties of a protocol, checked by a driver after every step.
///
/// A checker sees the state of the node that just stepped and the effects that step produced
/// (so it can see exactly what the node decided to persist and send), and keeps whatever
/// cluster-wide ledger it needs (leaders per term, committed entries, chosen values).
pub trait Invariants<P: Protocol> {
    /// `node` is about to step with `input` at true (simulated) time `now`. Checkers that need
    /// to know what clients asked for (validity: "only a proposed value may be chosen") or
    /// when things happened (time to decision) look here; the default ignores it.
    fn before_step(&mut self, _now: Time, _node: NodeId, _input: &Input<P>) {}

    /// Checks the properties after `node` stepped into `state`, producing `effects`.
    fn after_step(
        &mut self,
        node: NodeId,
        state: &P,
        effects: &[Effect<P>],
    ) -> Result<(), Violation>;

    /// `from` sent `msg` to `to` at true time `now`: the driver carried out the `Send`, so
    /// everything `from`
    /// persisted before it is durable. Checkers that count what a message attests (an
    /// acceptor's vote, say) count it here, not in `after_step`: a message still held behind
    /// a persist barrier when its node crashes never leaves, and its vote never happened.
    fn on_send(
        &mut self,
        _now: Time,
        _from: NodeId,
        _to: NodeId,
        _msg: &P::Message,
    ) -> Result<(), Violation> {
        Ok(())
    }

    /// `node` crashed: its volatile state is gone.
    fn on_crash(&mut self, _node: NodeId) {}

    /// Named counters of interesting events the checker observed (elections, stale reads,
    /// membership changes, ...), reported in simulation summaries. They also guard against
    /// checks that pass vacuously: a property over zero elections proves nothing.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}
