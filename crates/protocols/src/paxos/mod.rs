//! # Single-decree Paxos
//!
//! Paxos (Lamport, "The Part-Time Parliament", TOCS 1998; "Paxos Made Simple", 2001) lets a set
//! of processes agree on **one** value although some of them crash and messages are lost: once
//! a value is chosen it stays chosen, and every process that learns a value learns that one.
//!
//! ## Fault model
//!
//! Crash-recovery processes with stable storage; an asynchronous network that may lose,
//! duplicate, delay and reorder messages. No Byzantine faults. Safety never depends on timing.
//! Progress needs a majority of acceptors that can talk to one proposer for long enough — and a
//! way to stop proposers from pre-empting each other forever (step 7).
//!
//! ## Roles
//!
//! *Proposers* propose values, *acceptors* vote on them, *learners* find out what was chosen.
//! Every node here plays all three roles, and the acceptors are all the nodes: with `2F+1`
//! nodes, any `F+1` form a majority and `F` may be down. A value is **chosen** when a majority
//! of acceptors accepted it in the same ballot.
//!
//! ## The algorithm, in numbered steps (Paxos Made Simple §2.2–2.3)
//!
//! 1. **Ballots.** A proposer picks a ballot `(round, node id)` higher than any it has seen and
//!    persists its round before using it, so that even after a restart it never issues one
//!    ballot twice. Ballots of different nodes never collide.
//! 2. **Phase 1a, Prepare.** The proposer sends `Prepare(b)` to every acceptor.
//! 3. **Phase 1b, Promise.** An acceptor that has not promised a higher ballot promises `b`:
//!    it will never again accept a ballot below `b`. It persists the promise, and only then
//!    answers with the value it accepted last (if any) and that value's ballot. Otherwise it
//!    answers `Nack` with the ballot it promised.
//! 4. **Phase 2a, Accept.** With promises from a majority, the proposer picks the value: the
//!    one accepted in the *highest* ballot among the promises, or — only if none of them
//!    accepted anything — its own. It sends `Accept(b, v)`. (The seed's run, steps T5–T7: P2
//!    hears "X" and must propose "X", not its own "Y".)
//! 5. **Phase 2b, Accepted.** An acceptor that has not promised a ballot above `b` accepts
//!    `(b, v)`, persists it, and only then tells every learner `Accepted(b, v)`.
//! 6. **Learning.** A learner that hears `Accepted(b, v)` from a majority for the same `b` has
//!    learned that `v` is chosen. It persists the decision and answers its clients. A node that
//!    knows the decision answers later Prepares and Accepts with `Chosen(v)`.
//! 7. **Progress (§2.4).** Two proposers can pre-empt each other forever: each Prepare with a
//!    higher ballot makes the acceptors refuse the other's Accept ("duelling proposers", a
//!    livelock). The cure here is randomized exponential back-off: after the k-th round in a
//!    row that ended without a decision, a proposer waits a random time in
//!    `0..=min(base·2^k, max)` before it tries again, so that one of the duellists usually
//!    finishes both phases alone. ([`Retry::Immediately`] switches the cure off, to show the
//!    livelock; Multi-Paxos, in `multipaxos`, cures it with an elected distinguished proposer.)
//!
//! Why it is safe: the value `v` chosen in ballot `b` was accepted by a majority. Any later
//! ballot's promise majority intersects it, so the later proposer hears of `v` — or of a value
//! accepted in a ballot between, which by induction is `v` too — and proposes `v` again.
//!
//! ## As a service: one write-once register per key
//!
//! A node hosts one independent Paxos instance per key; each key is a **write-once register**.
//! Clients use two operations of the KV interface:
//!
//! - `CAS key, absent → v` proposes `v`. The answer is `Swapped(true)` when `v` was chosen and
//!   `Swapped(false)` when another value was (so the client learns that its write did not
//!   happen). Other writes are answered `Rejected`.
//! - `GET key` returns the chosen value. A node that has not learned one runs a round without
//!   a value of its own: if the promise majority reports no accepted value, no value was chosen
//!   when the first promise was made, so "absent" is a linearizable answer; otherwise the
//!   proposer completes phase 2 with the value it heard and returns the decision.
//!
//! Chosen values never change, so a learner's local answers are linearizable.
//!
//! ## Guarantees (checked after every simulated step by [`PaxosSafety`])
//!
//! - **Agreement**: at most one value is chosen per register.
//! - **Validity**: only a value some client proposed can be accepted, hence chosen.
//! - **Integrity**: a learner learns at most one value, only a chosen one, and never changes it.
//!
//! ## Deliberately left out
//!
//! Distinguished learners (every node learns from every acceptor: `n²` messages per decision),
//! garbage collection of decided registers, reconfiguration, and Fast/Flexible/EPaxos variants.
//! A sequence of values is Multi-Paxos, in `multipaxos`.
//!
//! ## References
//!
//! Lamport, "Paxos Made Simple" (2001); Lamport, "The Part-Time Parliament" (1998); van
//! Renesse & Altinbuken, "Paxos Made Moderately Complex" (2015); Chandra, Griesemer & Redstone,
//! "Paxos Made Live" (2007) on what persisting before replying means in practice.

mod acceptor;
mod message;
mod proposer;
pub mod safety;

#[cfg(test)]
mod tests;

pub use message::{AcceptedValue, Ballot, Message, Record};
pub use safety::PaxosSafety;

use quorate_core::quorum::majority;
use quorate_core::{
    ClientError, ClientId, Effects, Input, Key, NodeId, NodeStatus, Op, Output, Protocol, ReadMode,
    Reply, Request, Role, Time, Value,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Deliberately broken variants, switched on only with the `bugs` feature: tests show that the
/// simulator's checks catch them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// An acceptor forgets its promise when it restarts (it persisted what it accepted, but
    /// not what it promised, like the seed's sketch): it may then accept a ballot below the
    /// one it promised — even below the one it accepted — and a second value can be chosen.
    AcceptorForgetsPromise,
    /// A proposer proposes its own value even when a promise reports an accepted one (the
    /// seed's P2 proposing "Y" although it heard "X").
    ProposerIgnoresAccepted,
}

/// What a proposer does after a round ends without a decision.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Retry {
    /// The livelock cure: after the k-th failed round in a row, wait a random time in
    /// `0..=min(base·2^k, max)`, then try again with a higher ballot.
    RandomizedBackoff { base: Duration, max: Duration },
    /// No cure: try again at once with a higher ballot. Duelling proposers may livelock.
    Immediately,
}

/// Tunables. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct PaxosConfig {
    /// A round without a decision after this long is abandoned (its messages may be lost).
    pub round_timeout: Duration,
    pub retry: Retry,
    /// Registers (keys) a node keeps, at most; requests and messages for more are refused.
    pub instances_max: usize,
    /// Clients waiting on one register at one node, at most.
    pub waiters_max: usize,
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Default for PaxosConfig {
    fn default() -> Self {
        PaxosConfig {
            round_timeout: Duration::from_millis(200),
            retry: Retry::RandomizedBackoff {
                base: Duration::from_millis(5),
                max: Duration::from_millis(320),
            },
            instances_max: 1 << 20,
            waiters_max: 1024,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

impl PaxosConfig {
    /// Checks that the tunables make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.round_timeout.is_zero() {
            return Err("round_timeout must be positive".into());
        }
        if let Retry::RandomizedBackoff { base, max } = self.retry {
            if base.is_zero() || base > max {
                return Err("back-off base must be positive and at most max".into());
            }
        }
        if self.instances_max == 0 || self.waiters_max == 0 {
            return Err("instances_max and waiters_max must be positive".into());
        }
        Ok(())
    }

    fn has_bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "bugs")]
        return self.bug == Some(bug);
        #[cfg(not(feature = "bugs"))]
        {
            let _ = bug;
            false
        }
    }
}

/// Timers: one per register, named by a node-local number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Timer {
    /// The register's round timed out, or its back-off ended: try again.
    Retry(u32),
}

/// A proposer's round in progress.
#[derive(Clone, Debug)]
struct Round {
    ballot: Ballot,
    phase: Phase,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Phase 1: the promises so far, with what each acceptor had accepted.
    Prepare {
        promises: BTreeMap<NodeId, Option<AcceptedValue>>,
    },
    /// Phase 2: proposing `value`.
    Accept { value: Value },
}

/// A client waiting for the decision of one register at this node.
#[derive(Clone, Debug)]
struct Waiter {
    client: ClientId,
    seq: u64,
    /// The value it proposes; `None` for a read.
    proposal: Option<Value>,
    /// It was waiting when the current round's phase 1 began, so that round's promises are
    /// newer than its invocation (what lets a read be answered "absent").
    counted: bool,
}

/// One register: the three roles' state for one key.
#[derive(Clone, Debug)]
struct Instance {
    /// Names this register's timer.
    timer: u32,
    // Acceptor (durable).
    promised: Ballot,
    accepted: Option<AcceptedValue>,
    // Learner.
    chosen: Option<Value>,
    /// Accepted messages heard, per ballot: the value and the acceptors that sent it.
    votes: BTreeMap<Ballot, (Value, BTreeSet<NodeId>)>,
    // Proposer (volatile).
    round: Option<Round>,
    waiters: Vec<Waiter>,
    /// Rounds in a row that ended without a decision: the back-off exponent.
    failures: u32,
    /// A back-off is pending; new clients wait for it rather than start a round.
    backing_off: bool,
}

impl Instance {
    fn new(timer: u32) -> Instance {
        Instance {
            timer,
            promised: Ballot::ZERO,
            accepted: None,
            chosen: None,
            votes: BTreeMap::new(),
            round: None,
            waiters: Vec::new(),
            failures: 0,
            backing_off: false,
        }
    }

    fn persist(&self, key: &Key, out: &mut Effects<Paxos>) {
        out.persist(Record::Acceptor {
            key: key.clone(),
            promised: self.promised,
            accepted: self.accepted.clone(),
        });
    }
}

/// One Paxos node: proposer, acceptor and learner of every register.
#[derive(Clone, Debug)]
pub struct Paxos {
    id: NodeId,
    /// Every node of the cluster (all are acceptors and learners), in id order.
    members: Vec<NodeId>,
    config: PaxosConfig,
    started: bool,
    /// The highest round this node issued (durable: see `Record::Round`).
    round: u64,
    /// The highest round seen in any message, so that new ballots outbid it.
    round_seen: u64,
    instances: BTreeMap<Key, Instance>,
    /// Timer names to keys.
    timers: BTreeMap<u32, Key>,
    /// Registers whose decision this node knows.
    decided: u64,
}

impl Paxos {
    /// A node `id` of the cluster `members` (which must include `id`). It does nothing until it
    /// receives [`Input::Start`].
    pub fn new(id: NodeId, members: &[NodeId], config: PaxosConfig) -> Paxos {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        assert!(members.contains(&id), "a node must be one of the members");
        config.validate().expect("invalid PaxosConfig");
        Paxos {
            id,
            members,
            config,
            started: false,
            round: 0,
            round_seen: 0,
            instances: BTreeMap::new(),
            timers: BTreeMap::new(),
            decided: 0,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The value this node learned for `key`, if it learned one.
    pub fn chosen(&self, key: &[u8]) -> Option<&Value> {
        self.instances.get(key)?.chosen.as_ref()
    }

    /// What this node's acceptor promised and accepted for `key`.
    pub fn acceptor(&self, key: &[u8]) -> Option<(Ballot, Option<&AcceptedValue>)> {
        let instance = self.instances.get(key)?;
        Some((instance.promised, instance.accepted.as_ref()))
    }

    /// The ballot of this node's round in progress for `key`, if any.
    pub fn round_in_progress(&self, key: &[u8]) -> Option<Ballot> {
        Some(self.instances.get(key)?.round.as_ref()?.ballot)
    }

    /// The value this node proposes in phase 2 of its round for `key`, if it got that far.
    pub fn proposing(&self, key: &[u8]) -> Option<&Value> {
        match &self.instances.get(key)?.round.as_ref()?.phase {
            Phase::Accept { value } => Some(value),
            Phase::Prepare { .. } => None,
        }
    }

    fn quorum(&self) -> usize {
        majority(self.members.len())
    }

    /// The instance of `key`, created on first use unless `instances_max` is reached.
    fn instance(&mut self, key: &Key) -> Option<&mut Instance> {
        if !self.instances.contains_key(key) {
            if self.instances.len() >= self.config.instances_max {
                return None;
            }
            let timer = u32::try_from(self.instances.len()).expect("instances_max fits u32");
            self.timers.insert(timer, key.clone());
            self.instances.insert(key.clone(), Instance::new(timer));
        }
        self.instances.get_mut(key)
    }

    fn observe(&mut self, ballot: Ballot) {
        self.round_seen = self.round_seen.max(ballot.round);
    }

    // ---------------------------------------------------------------------------------------
    // Start-up and recovery.

    fn on_start(&mut self, recovered: Vec<Record>) {
        assert!(!self.started, "Start delivered twice");
        self.started = true;
        for record in recovered {
            self.recover(record);
        }
    }

    fn recover(&mut self, record: Record) {
        match record {
            Record::Round(round) => self.round = self.round.max(round),
            Record::Acceptor {
                key,
                promised,
                accepted,
            } => {
                let forget = self.config.has_bug(Bug::AcceptorForgetsPromise);
                let instance = self.instance(&key).expect("recovered within instances_max");
                instance.promised = if forget { Ballot::ZERO } else { promised };
                instance.accepted = accepted;
                self.round_seen = self.round_seen.max(promised.round);
            }
            Record::Chosen { key, value } => {
                let instance = self.instance(&key).expect("recovered within instances_max");
                let first = instance.chosen.replace(value).is_none();
                self.decided += u64::from(first);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Clients.

    fn on_request(&mut self, request: Request, out: &mut Effects<Self>) {
        let proposal = match &request.op {
            Op::Get { .. } => None,
            Op::Cas {
                expected: None,
                new,
                ..
            } => Some(new.clone()),
            other => {
                let why = format!(
                    "single-decree Paxos decides one value per key: it serves get and cas from \
                     absent (a proposal), not {}",
                    other.name()
                );
                return answer(&request, Err(ClientError::Rejected(why)), out);
            }
        };
        let key = request.op.key().clone();
        if request.read == ReadMode::Local && proposal.is_none() {
            let value = self.chosen(&key).cloned();
            return answer(&request, Ok(Output::Value(value)), out);
        }
        let waiters_max = self.config.waiters_max;
        let Some(instance) = self.instance(&key) else {
            let why = "this node holds as many registers as it may".to_string();
            return answer(&request, Err(ClientError::Rejected(why)), out);
        };
        if let Some(chosen) = &instance.chosen {
            return answer(&request, Ok(outcome(chosen, proposal.as_ref())), out);
        }
        let waiting = |w: &Waiter| w.client == request.client && w.seq == request.seq;
        if instance.waiters.iter().any(waiting) {
            return; // A retry of a request already waiting here.
        }
        if instance.waiters.len() >= waiters_max {
            let why = format!("{waiters_max} clients already wait on this register");
            return answer(&request, Err(ClientError::Rejected(why)), out);
        }
        instance.waiters.push(Waiter {
            client: request.client,
            seq: request.seq,
            proposal,
            counted: false,
        });
        if instance.round.is_none() && !instance.backing_off {
            self.start_round(&key, out);
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, out: &mut Effects<Self>) {
        if !self.members.contains(&from) {
            return; // Not a member of this cluster.
        }
        match msg {
            Message::Prepare { key, ballot } => self.on_prepare(from, key, ballot, out),
            Message::Promise {
                key,
                ballot,
                accepted,
            } => self.on_promise(from, key, ballot, accepted, out),
            Message::Accept { key, ballot, value } => self.on_accept(from, key, ballot, value, out),
            Message::Accepted { key, ballot, value } => {
                self.on_accepted(from, key, ballot, value, out)
            }
            Message::Nack {
                key,
                ballot,
                promised,
            } => self.on_nack(key, ballot, promised, out),
            Message::Chosen { key, value } => self.on_chosen(key, value, out),
        }
    }

    /// The local invariants of one register.
    fn check_instance(&self, key: &Key) {
        let Some(instance) = self.instances.get(key) else {
            return;
        };
        if let Some((ballot, _)) = &instance.accepted {
            assert!(*ballot <= instance.promised, "accepted above the promise");
        }
        if let Some(round) = &instance.round {
            assert_eq!(round.ballot.node, self.id, "a round of our own ballot");
            assert!(
                round.ballot.round <= self.round,
                "ballot beyond the durable round"
            );
            assert!(instance.chosen.is_none(), "no round once decided");
            assert!(!instance.backing_off, "a round while backing off");
        }
        if instance.chosen.is_some() {
            assert!(instance.waiters.is_empty(), "nobody waits on a decision");
        }
        assert!(instance.waiters.len() <= self.config.waiters_max);
    }
}

/// The answer to a client once `chosen` is known: a read gets the value, a proposal learns
/// whether it was the one chosen.
fn outcome(chosen: &Value, proposal: Option<&Value>) -> Output {
    match proposal {
        None => Output::Value(Some(chosen.clone())),
        Some(value) => Output::Swapped(value == chosen),
    }
}

fn reply(
    client: ClientId,
    seq: u64,
    result: Result<Output, ClientError>,
    out: &mut Effects<Paxos>,
) {
    out.reply(Reply {
        client,
        seq,
        result,
    });
}

fn answer(request: &Request, result: Result<Output, ClientError>, out: &mut Effects<Paxos>) {
    reply(request.client, request.seq, result, out);
}

impl Protocol for Paxos {
    type Message = Message;
    type Record = Record;
    type Timer = Timer;

    fn step(&mut self, _now: Time, input: Input<Self>, out: &mut Effects<Self>) {
        if let Input::Start { recovered } = input {
            return self.on_start(recovered);
        }
        assert!(self.started, "input before Start");
        let key = match &input {
            Input::Request(request) => Some(request.op.key().clone()),
            Input::Message { msg, .. } => Some(msg.key().clone()),
            Input::Timer(Timer::Retry(name)) => self.timers.get(name).cloned(),
            Input::Start { .. } | Input::Admin(_) => None,
        };
        match input {
            Input::Start { .. } => unreachable!("handled above"),
            Input::Request(request) => self.on_request(request, out),
            Input::Admin(admin) => {
                let why = format!(
                    "{:?} is not supported by single-decree Paxos",
                    admin.command
                );
                reply(
                    admin.client,
                    admin.seq,
                    Err(ClientError::Rejected(why)),
                    out,
                );
            }
            Input::Message { from, msg } => self.on_message(from, msg, out),
            Input::Timer(timer) => self.on_timer(timer, out),
        }
        if let Some(key) = key {
            self.check_instance(&key);
        }
    }

    fn status(&self) -> NodeStatus {
        let decided = self.decided;
        NodeStatus {
            id: self.id,
            role: Role::Replica,
            term: self.round,
            leader: None,
            commit_index: decided,
            applied_index: decided,
            last_index: self.instances.len() as u64,
        }
    }

    fn check_invariants(&self) {
        assert!(self.instances.len() <= self.config.instances_max);
        assert_eq!(
            self.instances.len(),
            self.timers.len(),
            "one timer per register"
        );
    }
}
