//! The event loop: one seeded run of one protocol under faults.
//!
//! ## Life of a client request in the simulator
//!
//! 1. A simulated client invokes an operation: the invocation is appended to the history and a
//!    `Request` event is scheduled at a node after a network delay (it may be lost).
//! 2. The node steps with `Input::Request`; its effects go through [`Simulation::execute`]:
//!    `Persist` starts an fsync (a `Persisted` event after the disk's latency) and holds every
//!    later effect of that node in its backlog; `Send` schedules a `Deliver` at the peer, unless
//!    a partition, loss or a crash intervenes; `SetTimer` schedules a `Timer` event.
//! 3. After every step the protocol's local invariants and the cluster-wide safety properties
//!    are checked; a violation ends the run and is reported with the seed.
//! 4. Eventually a node emits `Reply`; a `Reply` event reaches the client, which appends the
//!    completion to the history (or retries elsewhere on a redirect or timeout).
//! 5. At the end, the history is judged by the protocol's promise (`quorate_check::judge`):
//!    linearizability by default; reads sent to random replicas are measured for staleness.
//!
//! Everything random is drawn from one [`Rng`](crate::rng::Rng) seeded by the run's seed, and
//! nothing depends on wall time or on hash-map order, so a seed replays bit for bit; the
//! trace hash, folded over every processed event, proves it.

use crate::client::ClientSlot;
use crate::config::{FaultPlan, SimConfig};
use crate::feed::Feeds;
use crate::harness::{DiskCodec, Harness};
use crate::node::{Clock, Slot};
use crate::queue::Queue;
use crate::record::{node_lane, RunEvent, What};
use crate::report::{Abort, RunReport, RunStats};
use crate::rng::Rng;
use crate::script::{Action as ScriptAction, Trigger};
use quorate_check::Event as HistoryEvent;
use quorate_core::digest::{digest, Fnv64};
use quorate_core::protocol::Effects;
use quorate_core::quorum::majority;
use quorate_core::shell::{Action as ShellAction, ShellMsg};
use quorate_core::Durable;
use quorate_core::{
    AdminRequest, ClientId, Effect, Input, Invariants, NodeId, Protocol, Reply, Request, Role, Time,
};
use quorate_storage::{Disk, Options, Store};
use std::hash::Hasher;

/// Something that happens at a point of simulated time.
pub(crate) enum Event<P: Protocol> {
    Deliver {
        from: NodeId,
        to: usize,
        msg: P::Message,
        /// The link's connection epoch when sent (FIFO channels drop across reconnections).
        epoch: u64,
        /// Names the message in the run's event record (see [`crate::record`]).
        id: u64,
    },
    Request {
        to: usize,
        request: Request,
        id: u64,
    },
    Reply {
        from: usize,
        reply: Reply,
        id: u64,
    },
    /// A message between the node shells of `from` and `to` (a forwarded request or answer).
    Shell {
        from: usize,
        to: usize,
        msg: ShellMsg,
        id: u64,
    },
    Timer {
        node: usize,
        timer: P::Timer,
        generation: u64,
    },
    Persisted {
        node: usize,
        incarnation: u64,
    },
    ClientWake {
        client: usize,
        generation: u64,
    },
    PartitionChange,
    Crash,
    /// The deterministic leader crash (`SimConfig::leader_crash`).
    LeaderCrash,
    CrashNode {
        node: usize,
        incarnation: u64,
    },
    Restart {
        node: usize,
        incarnation: u64,
    },
    /// The pause nemesis acts.
    Pause,
    /// A paused node resumes (if it is still the same incarnation).
    Resume {
        node: usize,
        incarnation: u64,
    },
    Heal,
    LivenessDeadline,
    /// An operator's request from the reconfiguration nemesis reaches node `to`.
    Admin {
        to: usize,
        request: AdminRequest,
    },
    /// The reconfiguration nemesis acts.
    Reconfig,
    /// Step `step` of the scripted fault schedule is due (`SimConfig::script`).
    Script {
        step: usize,
    },
    /// The cluster settled after the liveness phase: read every key on every node.
    FinalReads,
    FinalReadDeadline,
}

/// Where the run is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// Faults are injected.
    Faulty,
    /// Every fault healed at `since`; every client must complete an operation.
    Healing {
        since: u64,
    },
    /// Every client made progress; the cluster runs on without clients before final reads.
    Settling,
    /// Reading every key on every node.
    FinalReads,
    Done,
}

pub(crate) struct Simulation<'a, H: Harness> {
    pub harness: &'a H,
    pub config: &'a SimConfig,
    pub plan: FaultPlan,
    pub rng: Rng,
    /// True time, in nanoseconds.
    pub now: u64,
    pub queue: Queue<Event<H::Node>>,
    pub ids: Vec<NodeId>,
    pub slots: Vec<Slot<H::Node>>,
    pub invariants: H::Invariants,
    effects: Effects<H::Node>,
    /// `blocked[from * n + to]`: the link drops everything.
    pub blocked: Vec<bool>,
    /// `link_epoch[from * n + to]`: bumped when a link breaks.
    link_epoch: Vec<u64>,
    /// `last_delivery[from * n + to]`: FIFO channels deliver no earlier than this.
    last_delivery: Vec<u64>,
    timer_generation: u64,
    pub clients: Vec<ClientSlot>,
    /// What the clients saw, each event with its read mode (see `quorate_check::Mode`).
    pub history: Vec<HistoryEvent>,
    pub next_process: u64,
    pub next_session: u64,
    pub value_counter: u64,
    /// During final reads: the next key to read on each node.
    pub final_next: Vec<usize>,
    pub phase: Phase,
    pub stats: RunStats,
    pub violations: Vec<String>,
    /// Why the run stopped early, if a budget ran out or it panicked.
    pub aborted: Option<Abort>,
    pub nemesis: crate::reconfig::Nemesis,
    trace_hash: Fnv64,
    /// Receives every event of the run's record, if anyone observes (see [`crate::record`]).
    observer: Option<&'a mut dyn FnMut(&RunEvent)>,
    /// The last message id handed out (ids are for the record only: never hashed or drawn).
    message_id: u64,
    /// Per node, what the record last said of its role, term, leader and commit index.
    seen: Vec<Option<Seen>>,
    /// How records reach the simulated disks (`None`: kept as values).
    codec: Option<DiskCodec<H::Node>>,
    /// Disk damage draws from its own stream, so turning it on leaves every other draw alone.
    disk_rng: Rng,
    /// The chance that a crash also damages fsynced data on the node's disk.
    disk_damage: f64,
    /// The faults beyond `Faults::classic` (pauses, crash points, stale messages) draw from
    /// their own stream too: without them, a run draws exactly as it did before they existed.
    fault_rng: Rng,
    /// `paused[i]`: node `i`'s process is stopped; `held[i]`: what reached it meanwhile, in
    /// order (messages in its socket buffers, due timers, completed fsyncs).
    paused: Vec<bool>,
    held: Vec<Vec<Event<H::Node>>>,
    /// The next step of the scripted fault schedule (`SimConfig::script`) to fire.
    script_next: usize,
    /// Each node's change feed, the watchers reading them, and their checks (see
    /// [`crate::feed`]).
    pub feeds: Feeds,
}

/// A node's status as the event record last reported it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    role: Role,
    term: u64,
    leader: Option<NodeId>,
    commit: u64,
}

/// The simulated WAL's preallocation unit: small, so runs extend files often.
const SIM_CHUNK: u64 = 4096;

const MS: u64 = 1_000_000;

/// The run loop reads the wall clock once per this many events.
const WALL_CHECK_EVERY: u64 = 1024;

/// The text of a caught panic's payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

impl<'a, H: Harness> Simulation<'a, H> {
    pub fn new(
        harness: &'a H,
        config: &'a SimConfig,
        seed: u64,
        observer: Option<&'a mut dyn FnMut(&RunEvent)>,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let mut plan = FaultPlan::draw(config.faults, &mut rng);
        let mut fault_rng = Rng::new(seed ^ 0x9a05_e5c4_a5b0_0002);
        plan.draw_beyond_classic(config.faults, &mut fault_rng);
        let bound = harness.clock_drift_bound_ppm();
        if config.faults.clock_beyond_bound {
            // Past the stated bound on purpose, to show what rests on it: four to ten times
            // it (or 20% to 50% without one), at most 50%.
            let bound = bound.unwrap_or(50_000).max(1);
            let drift = fault_rng.between(4 * bound, 10 * bound).min(500_000);
            plan.clock_drift_ppm_max = i64::try_from(drift).unwrap_or(i64::MAX);
        } else if let Some(bound) = bound {
            // Honour the protocol's stated drift bound (it rests its safety on it).
            let bound = i64::try_from(bound).unwrap_or(i64::MAX);
            plan.clock_drift_ppm_max = plan.clock_drift_ppm_max.min(bound);
        }
        if config.reconfig {
            plan.reconfig_every = Some(rng.between(100 * MS, 600 * MS));
        }
        let codec = harness.disk();
        let mut disk_rng = Rng::new(seed ^ 0xd15c_fa17_5eed_0001);
        let disk_damage = match codec {
            Some(codec) if config.faults.disk && !config.reconfig => {
                codec.damage.unwrap_or_else(|| {
                    if disk_rng.chance(0.5) {
                        disk_rng.unit() * 0.3
                    } else {
                        0.0
                    }
                })
            }
            _ => 0.0,
        };
        let n = config.nodes + config.spares();
        let ids: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        let slots = (0..n)
            .map(|i| {
                let drift = plan.clock_drift_ppm_max;
                let clock = Clock {
                    offset: rng.between(0, plan.clock_offset_max),
                    drift_ppm: rng.between(0, 2 * drift as u64) as i64 - drift,
                };
                Slot::new(clock, ids[i], ids.clone())
            })
            .collect();
        Simulation {
            harness,
            config,
            plan,
            rng,
            now: 0,
            queue: Queue::new(),
            ids,
            slots,
            invariants: harness.invariants(),
            effects: Effects::new(),
            blocked: vec![false; n * n],
            link_epoch: vec![0; n * n],
            last_delivery: vec![0; n * n],
            timer_generation: 0,
            clients: Vec::new(),
            history: Vec::new(),
            next_process: 0,
            next_session: 1,
            value_counter: 0,
            final_next: Vec::new(),
            phase: Phase::Faulty,
            stats: RunStats::default(),
            violations: Vec::new(),
            aborted: None,
            nemesis: Default::default(),
            trace_hash: Fnv64::default(),
            observer,
            message_id: 0,
            seen: vec![None; n],
            codec,
            disk_rng,
            disk_damage,
            fault_rng,
            paused: vec![false; n],
            held: (0..n).map(|_| Vec::new()).collect(),
            script_next: 0,
            feeds: Feeds::new(seed, n),
        }
    }

    /// Runs to the end and reports. A panic inside the run, or a spent step or wall-clock
    /// budget, ends it with a violation naming what happened (the report carries the seed).
    pub fn run(mut self, seed: u64) -> RunReport {
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_loop(started);
            self.check_feed_complete();
        }));
        if let Err(panic) = outcome {
            let message = panic_message(panic.as_ref());
            let at = Time::from_nanos(self.now);
            self.violations.push(format!("panic at {at}: {message}"));
            self.aborted = Some(Abort::Panic { message });
        }
        crate::report::finish(self, seed, started)
    }

    fn run_loop(&mut self, started: std::time::Instant) {
        for i in 0..self.slots.len() {
            self.start_node(i);
        }
        self.start_clients();
        self.schedule_nemesis();
        self.schedule_reconfig();
        self.arm_script();
        if let Some(crash) = self.config.leader_crash {
            self.queue
                .push(crash.at.as_nanos() as u64, Event::LeaderCrash);
        }
        self.queue
            .push(self.config.duration.as_nanos() as u64, Event::Heal);
        while self.phase != Phase::Done && self.violations.is_empty() {
            let Some((time, event)) = self.queue.pop() else {
                break;
            };
            debug_assert!(time >= self.now, "time never goes back");
            self.now = time;
            self.stats.events += 1;
            if self.stats.events >= self.config.events_max {
                let at = Time::from_nanos(self.now);
                self.violations.push(format!(
                    "budget: the run used its {} steps (events) without finishing, at {at} of \
                     simulated time: a livelock, or a loop that never lets time advance \
                     (raise --max-steps if the run is merely long)",
                    self.config.events_max
                ));
                self.aborted = Some(Abort::Steps {
                    limit: self.config.events_max,
                });
                break;
            }
            if self.stats.events.is_multiple_of(WALL_CHECK_EVERY)
                && started.elapsed() > self.config.wall_max
            {
                let at = Time::from_nanos(self.now);
                self.violations.push(format!(
                    "budget: the run took more than {:?} of wall time ({} events, at {at} of \
                     simulated time) without finishing (raise --seed-timeout if it is merely slow)",
                    self.config.wall_max, self.stats.events
                ));
                self.aborted = Some(Abort::Wall {
                    limit: self.config.wall_max,
                });
                break;
            }
            self.dispatch(event);
        }
        self.stats.sim_time = self.now;
    }

    fn dispatch(&mut self, event: Event<H::Node>) {
        if let Some(node) = self.paused_target(&event) {
            self.held[node].push(event);
            return;
        }
        match event {
            Event::Deliver {
                from,
                to,
                msg,
                epoch,
                id,
            } => self.on_deliver(from, to, msg, epoch, id),
            Event::Request { to, request, id } => {
                self.hash_event(to, 1, digest(&request));
                let from = self.client_lane(request.client);
                self.observe_arrival(id, from, to, || describe_request(&request));
                self.on_request(to, request);
            }
            Event::Shell { from, to, msg, id } => {
                self.hash_event(to, 9, digest(&msg));
                self.observe_arrival(id, node_lane(from), to, || {
                    crate::record::summarize(&format!("{msg:?}"))
                });
                self.on_shell_message(from, to, msg);
            }
            Event::Reply { from, reply, id } => {
                self.observe(|sim| What::Deliver {
                    id,
                    from: node_lane(from),
                    to: sim.client_lane(reply.client),
                    msg: describe_reply(&reply),
                });
                if crate::reconfig::is_admin(reply.client) {
                    self.on_admin_reply(from, reply)
                } else {
                    self.on_reply(from, reply)
                }
            }
            Event::Timer {
                node,
                timer,
                generation,
            } => self.on_timer(node, timer, generation),
            Event::Persisted { node, incarnation } => self.on_persisted(node, incarnation),
            Event::ClientWake { client, generation } => self.on_client_wake(client, generation),
            Event::PartitionChange => self.on_partition_change(),
            Event::Crash => self.on_crash_tick(),
            Event::LeaderCrash => crate::nemesis::crash_leader(self),
            Event::CrashNode { node, incarnation } => {
                let slot = &self.slots[node];
                if self.phase == Phase::Faulty && slot.incarnation == incarnation && slot.is_up() {
                    self.crash(node);
                }
            }
            Event::Restart { node, incarnation } => {
                if self.slots[node].incarnation == incarnation && !self.slots[node].is_up() {
                    self.start_node(node);
                }
            }
            Event::Pause => self.on_pause_tick(),
            Event::Resume { node, incarnation } => {
                if self.slots[node].incarnation == incarnation && self.paused[node] {
                    self.resume(node);
                }
            }
            Event::Heal => self.heal(),
            Event::LivenessDeadline => self.on_liveness_deadline(),
            Event::Admin { to, request } => {
                self.hash_event(to, 8, digest(&request));
                self.step(to, Input::Admin(request));
            }
            Event::Reconfig => self.on_reconfig_tick(),
            Event::Script { step } => self.fire_script(step),
            Event::FinalReads => self.start_final_reads(),
            Event::FinalReadDeadline => self.on_final_read_deadline(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Nodes.

    fn start_node(&mut self, i: usize) {
        // Spare nodes (beyond `config.nodes`) start outside the initial configuration.
        let members = &self.ids[..self.config.nodes];
        let node = self.harness.node(self.ids[i], members);
        let recovered = match self.codec {
            Some(codec) => match self.recover(i, codec) {
                Some(records) => records,
                None => return,
            },
            None => self.slots[i].durable.clone(),
        };
        self.slots[i].node = Some(node);
        self.feeds.started(i);
        let records = recovered.len();
        self.observe(|_| What::Start {
            node: node_lane(i),
            records,
        });
        self.hash_event(i, 0, recovered.len() as u64);
        self.step(i, Input::Start { recovered });
    }

    /// Opens node `i`'s simulated disk with the server's recovery code. `None`: recovery
    /// refused (the node stays down for good, as an operator would have to step in), or it
    /// returned fewer records than were fsynced (a violation).
    fn recover(
        &mut self,
        i: usize,
        codec: DiskCodec<H::Node>,
    ) -> Option<Vec<<H::Node as quorate_core::Protocol>::Record>> {
        let slot = &mut self.slots[i];
        if slot.refused {
            return None;
        }
        let members: Vec<String> = self.ids[..self.config.nodes]
            .iter()
            .map(|id| id.0.to_string())
            .collect();
        let options = Options {
            chunk: SIM_CHUNK,
            drop_damaged_tail: codec.broken_recovery,
            ..Options::new(
                format!("{} node {}", self.harness.name(), self.ids[i].0),
                members.join(","),
            )
        };
        let disk = std::mem::take(&mut slot.disk);
        let (store, payloads, report) = match Store::open(disk, &options) {
            Ok(opened) => opened,
            Err(refusal) => {
                slot.refused = true;
                self.stats.refused_starts += 1;
                self.hash_event(i, 9, 0);
                self.trace_line(i, || format!("recovery refused to start: {refusal}"));
                return None;
            }
        };
        let expected = slot.synced_records;
        if codec.check_recovery && (payloads.len() as u64) < expected {
            let damaged = if slot.damaged {
                " (its disk was damaged)"
            } else {
                ""
            };
            self.violations.push(format!(
                "durability: recovery of n{} returned {} records but {expected} were fsynced{damaged}: an acknowledged record or vote was silently dropped",
                i + 1,
                payloads.len()
            ));
            return None;
        }
        let mut records = Vec::with_capacity(payloads.len());
        for payload in &payloads {
            let Some(record) = (codec.decode)(payload) else {
                self.violations.push(format!(
                    "durability: a record of n{} passed its checksum but does not decode",
                    i + 1
                ));
                return None;
            };
            records.push(record);
        }
        slot.synced_records = store.records();
        slot.synced_batch = None;
        slot.store = Some(store);
        if let Some((offset, bytes)) = report.torn {
            self.trace_line(i, || {
                format!("recovery zeroed a torn write: {bytes} bytes at {offset}")
            });
        }
        Some(records)
    }

    /// Feeds one input to node `i`, checks every property, and carries out its effects.
    pub fn step(&mut self, i: usize, input: Input<H::Node>) {
        let local_now = self.slots[i].clock.local(self.now);
        if !self.slots[i].is_up() {
            return;
        }
        let at = Time::from_nanos(self.now);
        self.invariants.before_step(at, self.ids[i], &input);
        let starting = matches!(input, Input::Start { .. });
        let term_before = (self.plan.crash_point > 0.0)
            .then(|| self.slots[i].node.as_ref().map(|node| node.status().term))
            .flatten();
        let mut effects = std::mem::take(&mut self.effects);
        let node = self.slots[i].node.as_mut().expect("checked above");
        node.step(local_now, input, &mut effects);
        let node = self.slots[i].node.as_ref().expect("still up");
        node.check_invariants();
        let status = node.status();
        self.observe_status(i, &status);
        if self.observer.is_some() {
            let node = self.slots[i].node.as_ref().expect("still up");
            for text in self.harness.step_notes(node) {
                let node = Some(node_lane(i));
                self.observe(|_| What::Note { node, text });
            }
        }
        let is_leader = status.role == Role::Leader;
        if self.config.check_monotonic {
            if let Err(violation) = self.slots[i].monotonic(&status, starting) {
                self.violations
                    .push(format!("monotonicity: n{} {violation} (at {at})", i + 1));
            }
        }
        let node = self.slots[i].node.as_ref().expect("still up");
        if let Err(violation) = self
            .invariants
            .after_step(self.ids[i], node, effects.as_slice())
        {
            let at = Time::from_nanos(self.now);
            self.violations.push(format!("{violation} (at {at})"));
        }
        self.catch_up_feed(i);
        let cut = match term_before {
            Some(before) if !starting => {
                let elects = status.term > before;
                self.crash_point_in_step(i, effects.as_slice(), elects)
            }
            _ => None,
        };
        let mut crashed = false;
        for (k, effect) in effects.drain().enumerate() {
            if crashed {
                continue; // The process died before it got this far.
            }
            self.execute(i, effect);
            if cut == Some(k) {
                self.crash_at_point(i, "within a step");
                crashed = true;
            }
        }
        self.effects = effects;
        if crashed {
            return;
        }
        if !self.slots[i].syncing {
            // Everything it asked to persist is durable: so is the term it holds now.
            let slot = &mut self.slots[i];
            slot.durable_term = slot.durable_term.max(status.term);
        }
        if is_leader && !self.slots[i].was_leader {
            self.on_new_leader(i);
        }
        self.slots[i].was_leader = is_leader;
        if is_leader {
            self.script_on_leader(i, status.term);
        }
    }

    /// Catches node `i`'s change feed up with its applied store, as the server's runtime does
    /// after every step, and checks what it emitted (see [`crate::feed`]).
    fn catch_up_feed(&mut self, i: usize) {
        if !self.config.check_feed {
            return;
        }
        let node = self.slots[i].node.as_ref().expect("up: it just stepped");
        let Some(store) = self.harness.applied_store(node) else {
            return;
        };
        let found = self.feeds.stepped(i, store);
        let at = Time::from_nanos(self.now);
        (self.violations).extend(found.into_iter().map(|v| format!("{v} (at {at})")));
    }

    /// After a run that ended well: every acknowledged write is in some node's feed.
    fn check_feed_complete(&mut self) {
        if self.violations.is_empty() && self.feeds.active() {
            let found = self.feeds.check.complete(&self.history);
            self.violations.extend(found);
        }
    }

    /// Leader churn: sometimes a node crashes right after it became leader.
    fn on_new_leader(&mut self, i: usize) {
        if self.phase == Phase::Faulty && self.rng.chance(self.plan.crash_new_leader) {
            let after = self.rng.between(0, 20 * MS);
            let incarnation = self.slots[i].incarnation;
            self.queue.push(
                self.now + after,
                Event::CrashNode {
                    node: i,
                    incarnation,
                },
            );
        }
    }

    /// Carries out one effect, or queues it behind an fsync in progress (the persist barrier).
    fn execute(&mut self, i: usize, effect: Effect<H::Node>) {
        if self.slots[i].syncing {
            self.slots[i].backlog.push_back(effect);
            return;
        }
        match effect {
            Effect::Send { to, msg } => self.send(i, to, msg),
            Effect::Reply(reply) if bypasses_shell(reply.client) => self.send_reply(i, reply),
            Effect::Reply(reply) => {
                let actions = self.slots[i].shell.on_reply(reply);
                self.run_shell(i, actions);
            }
            Effect::Persist(record) => {
                let slot = &mut self.slots[i];
                slot.unsynced.push(record);
                // Group commit: persists queued right behind share this fsync.
                while let Some(Effect::Persist(_)) = slot.backlog.front() {
                    let Some(Effect::Persist(next)) = slot.backlog.pop_front() else {
                        unreachable!("peeked a persist")
                    };
                    slot.unsynced.push(next);
                }
                if let (Some(store), Some(codec)) = (slot.store.as_mut(), self.codec) {
                    // One batch per fsync, written now, durable when `Persisted` arrives.
                    for record in &slot.unsynced {
                        let bytes = (codec.encode)(record);
                        if record.is_checkpoint() {
                            // Durable at once (synced and renamed into place), and it stands
                            // for every record before it.
                            store.checkpoint(&bytes).expect("the in-memory disk writes");
                            slot.synced_records = 1;
                            slot.synced_batch = None;
                        } else {
                            store.append(&bytes);
                        }
                    }
                    store.write().expect("the in-memory disk writes");
                }
                slot.syncing = true;
                self.stats.fsyncs += 1;
                let records = slot.unsynced.len();
                self.observe(|_| What::Persist {
                    node: node_lane(i),
                    records,
                });
                let latency = self.rng.between(self.plan.fsync_min, self.plan.fsync_max);
                let incarnation = self.slots[i].incarnation;
                self.queue.push(
                    self.now + latency,
                    Event::Persisted {
                        node: i,
                        incarnation,
                    },
                );
            }
            Effect::SetTimer { timer, after } => {
                let local = self
                    .rng
                    .between(after.min.as_nanos() as u64, after.max.as_nanos() as u64);
                let delay = self.slots[i].clock.to_true(local);
                self.timer_generation += 1;
                let generation = self.timer_generation;
                let timers = &mut self.slots[i].timers;
                match timers.iter_mut().find(|(name, _)| *name == timer) {
                    Some(pending) => pending.1 = generation,
                    None => timers.push((timer, generation)),
                }
                self.queue.push(
                    self.now + delay,
                    Event::Timer {
                        node: i,
                        timer,
                        generation,
                    },
                );
            }
            Effect::CancelTimer(timer) => self.slots[i].timers.retain(|(name, _)| *name != timer),
        }
    }

    fn on_persisted(&mut self, i: usize, incarnation: u64) {
        if self.slots[i].incarnation != incarnation {
            return; // The node crashed before the fsync completed.
        }
        self.slots[i].synced();
        self.hash_event(i, 2, 0);
        self.observe(|_| What::Persisted { node: node_lane(i) });
        // A crash point: after this fsync, once `cut` of the effects that waited for it left.
        let cut = self.crash_point_after_fsync(i);
        let mut released = 0;
        while !self.slots[i].syncing {
            if cut == Some(released) {
                return self.crash_at_point(i, "after an fsync");
            }
            let Some(effect) = self.slots[i].backlog.pop_front() else {
                break;
            };
            self.execute(i, effect);
            released += 1;
        }
        let slot = &mut self.slots[i];
        if let (false, Some(node)) = (slot.syncing, slot.node.as_ref()) {
            slot.durable_term = slot.durable_term.max(node.status().term);
        }
    }

    fn on_timer(&mut self, i: usize, timer: <H::Node as Protocol>::Timer, generation: u64) {
        let timers = &mut self.slots[i].timers;
        let Some(position) = timers
            .iter()
            .position(|(name, pending)| *name == timer && *pending == generation)
        else {
            return; // Replaced, cancelled, or from before a crash.
        };
        timers.swap_remove(position);
        self.hash_event(i, 3, digest(&timer));
        self.observe(|_| What::Timer {
            node: node_lane(i),
            timer: format!("{timer:?}"),
        });
        self.step(i, Input::Timer(timer));
    }

    fn on_deliver(
        &mut self,
        from: NodeId,
        to: usize,
        msg: <H::Node as Protocol>::Message,
        epoch: u64,
        id: u64,
    ) {
        let sender = self.node_index(from);
        let link = sender * self.ids.len() + to;
        let why = if self.blocked[link] {
            Some("partitioned")
        } else if H::Node::FIFO_CHANNELS && self.link_epoch[link] != epoch {
            Some("its connection broke")
        } else if !self.slots[to].is_up() {
            Some("receiver down")
        } else {
            None
        };
        self.observe(|sim| {
            let (from, to, msg) = (node_lane(sender), node_lane(to), sim.describe(&msg));
            match why {
                Some(why) => What::Drop {
                    id,
                    from,
                    to,
                    msg,
                    why,
                },
                None => What::Deliver { id, from, to, msg },
            }
        });
        if why.is_some() {
            self.stats.messages_dropped += 1;
            return;
        }
        self.hash_event(to, 4, digest(&msg));
        self.step(to, Input::Message { from, msg });
    }

    // ---------------------------------------------------------------------------------------
    // Network.

    /// A client's request reaches node `i`: through its shell, as on a server. Half the
    /// sessions (by id) ask the shell to forward to the leader, as a server in `forward` mode
    /// does; the others are told `NotLeader` and follow it themselves.
    fn on_request(&mut self, i: usize, request: Request) {
        if bypasses_shell(request.client) {
            return self.step(i, Input::Request(request));
        }
        if !self.slots[i].is_up() {
            return;
        }
        let waiter = crate::client::client_slot(request.client);
        let forward = (request.client.0 >> crate::client::SLOT_BITS) & 1 == 0;
        let now = self.slots[i].clock.local(self.now);
        let actions = self.slots[i].shell.submit(now, request, waiter, forward);
        self.run_shell(i, actions);
    }

    fn on_shell_message(&mut self, from: usize, to: usize, msg: ShellMsg) {
        if !self.slots[to].is_up() {
            return;
        }
        let now = self.slots[to].clock.local(self.now);
        let actions = self.slots[to].shell.on_message(now, self.ids[from], msg);
        self.run_shell(to, actions);
    }

    /// Carries out what node `i`'s shell asks for.
    fn run_shell(&mut self, i: usize, actions: Vec<ShellAction<usize>>) {
        for action in actions {
            match action {
                ShellAction::Step(request) => self.step(i, Input::Request(request)),
                ShellAction::Deliver(_, reply) => self.send_reply(i, reply),
                ShellAction::Send(to, msg) => self.send_shell(i, to, msg),
            }
        }
    }

    /// Sends a shell message over the simulated network: partitions block it, and it may be
    /// lost, duplicated and delayed like any message.
    fn send_shell(&mut self, i: usize, to: NodeId, msg: ShellMsg) {
        if to.0 == 0 || to.0 > self.ids.len() as u64 {
            return;
        }
        let j = self.node_index(to);
        let link = i * self.ids.len() + j;
        let describe = |msg: &ShellMsg| crate::record::summarize(&format!("{msg:?}"));
        let blocked = self.blocked[link];
        if blocked || self.rng.chance(self.plan.loss) {
            let why = if blocked { "partitioned" } else { "lost" };
            self.observe_drop(node_lane(i), node_lane(j), why, || describe(&msg));
            return;
        }
        if self.rng.chance(self.plan.duplicate) {
            let at = self.now + self.delay();
            let copy = msg.clone();
            let id = self.observe_send(node_lane(i), node_lane(j), true, || describe(&copy));
            self.queue.push(
                at,
                Event::Shell {
                    from: i,
                    to: j,
                    msg: copy,
                    id,
                },
            );
        }
        let at = self.now + self.delay();
        let id = self.observe_send(node_lane(i), node_lane(j), false, || describe(&msg));
        self.queue.push(
            at,
            Event::Shell {
                from: i,
                to: j,
                msg,
                id,
            },
        );
    }

    pub fn node_index(&self, id: NodeId) -> usize {
        (id.0 - 1) as usize
    }

    /// A network delay drawn from this seed's distribution.
    pub fn delay(&mut self) -> u64 {
        let mut delay = self.rng.between(self.plan.delay_min, self.plan.delay_max);
        if self.rng.chance(self.plan.slow) {
            delay *= 10;
        }
        delay
    }

    fn send(&mut self, i: usize, to: NodeId, msg: <H::Node as Protocol>::Message) {
        self.stats.messages_sent += 1;
        if self.config.count_message_bytes {
            if let Some(size) = self.harness.message_size() {
                self.stats.message_bytes += size(&msg) as u64;
            }
        }
        let at = Time::from_nanos(self.now);
        if let Err(violation) = self.invariants.on_send(at, self.ids[i], to, &msg) {
            self.violations.push(format!("{violation} (at {at})"));
        }
        let n = self.ids.len();
        if to.0 == 0 || to.0 > n as u64 {
            self.stats.messages_dropped += 1;
            let text = self.observer.is_some().then(|| self.describe(&msg));
            self.observe_drop(node_lane(i), to.to_string(), "no such node", || {
                text.unwrap_or_default()
            });
            return;
        }
        let j = self.node_index(to);
        let text = self.observer.is_some().then(|| self.describe(&msg));
        let text = move || text.unwrap_or_default();
        if i == j {
            // To itself: no network, so never lost, duplicated or partitioned (rule 6 of the
            // protocol contract). It still waited behind the node's earlier persists.
            let id = self.observe_send(node_lane(i), node_lane(j), false, text);
            let event = Event::Deliver {
                from: self.ids[i],
                to: j,
                msg,
                epoch: self.link_epoch[i * n + j],
                id,
            };
            self.queue.push(self.now, event);
            return;
        }
        let link = i * n + j;
        let fifo = H::Node::FIFO_CHANNELS;
        // A connection to a crashed node cannot be made: what is sent to it is lost, and so
        // cannot reach its next incarnation.
        let refused = fifo && !self.slots[j].is_up();
        let blocked = self.blocked[link];
        if blocked || refused || (!fifo && self.rng.chance(self.plan.loss)) {
            self.stats.messages_dropped += 1;
            let why = match (blocked, refused) {
                (true, _) => "partitioned",
                (_, true) => "connection refused: receiver down",
                _ => "lost",
            };
            self.observe_drop(node_lane(i), node_lane(j), why, text);
            return;
        }
        let duplicate = !fifo && self.rng.chance(self.plan.duplicate);
        if duplicate {
            self.schedule_delivery(i, j, msg.clone(), true);
        }
        if !fifo && self.plan.stale > 0.0 {
            self.maybe_redeliver_late(i, j, &msg);
        }
        self.schedule_delivery(i, j, msg, false);
    }

    /// The stale-message fault: a copy of a leader's message is delivered again half a
    /// second to five seconds later, by when its sender has usually been deposed (a
    /// retransmission from a far-away queue). In protocols without leaders (Paxos here,
    /// quorum, multi-primary: every node reports `Role::Replica` and coordinates), any node's
    /// message.
    fn maybe_redeliver_late(&mut self, i: usize, j: usize, msg: &<H::Node as Protocol>::Message) {
        let coordinates = self.slots[i]
            .node
            .as_ref()
            .is_some_and(|node| matches!(node.status().role, Role::Leader | Role::Replica));
        if !coordinates || !self.fault_rng.chance(self.plan.stale) {
            return;
        }
        let link = i * self.ids.len() + j;
        let at = self.now + self.fault_rng.between(500 * MS, 5000 * MS);
        let id = self.next_message_id();
        self.observe(|sim| What::Send {
            id,
            from: node_lane(i),
            to: node_lane(j),
            msg: sim.describe(msg),
            copy: false,
            late: true,
        });
        let event = Event::Deliver {
            from: self.ids[i],
            to: j,
            msg: msg.clone(),
            epoch: self.link_epoch[link],
            id,
        };
        self.queue.push(at, event);
    }

    fn schedule_delivery(
        &mut self,
        i: usize,
        j: usize,
        msg: <H::Node as Protocol>::Message,
        copy: bool,
    ) {
        let link = i * self.ids.len() + j;
        let mut at = self.now + self.delay();
        if H::Node::FIFO_CHANNELS {
            at = at.max(self.last_delivery[link]);
            self.last_delivery[link] = at;
        }
        let text = self.observer.is_some().then(|| self.describe(&msg));
        let id = self.observe_send(node_lane(i), node_lane(j), copy, || {
            text.unwrap_or_default()
        });
        let event = Event::Deliver {
            from: self.ids[i],
            to: j,
            msg,
            epoch: self.link_epoch[link],
            id,
        };
        self.queue.push(at, event);
    }

    /// Replaces the blocked links; links that become blocked break their connections.
    pub fn set_blocked(&mut self, blocked: Vec<bool>) {
        let n = self.ids.len();
        for (link, now_blocked) in blocked.iter().enumerate() {
            if *now_blocked && !self.blocked[link] {
                self.break_connection(link / n, link % n);
            }
        }
        self.blocked = blocked;
    }

    /// The connection between nodes `a` and `b` breaks: what is in flight on it is lost.
    ///
    /// With FIFO channels this is the only way messages are lost or reordered: a message is
    /// delivered only if its link's connection epoch is still the one it was sent in, and
    /// messages of one epoch are delivered in send order. A connection carries both
    /// directions (as a TCP connection does), so breaking either direction breaks both; the
    /// next message sent starts a new connection, not queued behind the dead one.
    fn break_connection(&mut self, a: usize, b: usize) {
        let n = self.ids.len();
        for link in [a * n + b, b * n + a] {
            self.link_epoch[link] += 1;
            self.last_delivery[link] = 0;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Faults.

    fn schedule_nemesis(&mut self) {
        if let Some(every) = self.plan.partition_every {
            let at = self.rng.between(0, 2 * every);
            self.queue.push(at, Event::PartitionChange);
        }
        if let Some(every) = self.plan.crash_every {
            let at = self.rng.between(0, 2 * every);
            self.queue.push(at, Event::Crash);
        }
        if let Some(every) = self.plan.pause_every {
            let at = self.fault_rng.between(0, 2 * every);
            self.queue.push(at, Event::Pause);
        }
    }

    /// The node that most recently claims leadership, if any (nemeses like to target it).
    pub fn leader(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| slot.node.as_ref().map(|node| (i, node.status())))
            .filter(|(_, status)| status.role == Role::Leader)
            .max_by_key(|(_, status)| status.term)
            .map(|(i, _)| i)
    }

    fn victim(&mut self) -> usize {
        match self.leader() {
            Some(leader) if self.rng.chance(0.5) => leader,
            _ => self.rng.below(self.ids.len() as u64) as usize,
        }
    }

    fn on_partition_change(&mut self) {
        if self.phase != Phase::Faulty {
            return;
        }
        let n = self.ids.len();
        if self.blocked.iter().any(|b| *b) {
            self.set_blocked(vec![false; n * n]);
            self.observe(|_| What::PartitionHealed);
        } else if n > 1 {
            let (blocked, description) = crate::nemesis::partition(self, n);
            let cut: Vec<[String; 2]> = (blocked.iter().enumerate())
                .filter(|(_, b)| **b)
                .map(|(link, _)| [node_lane(link / n), node_lane(link % n)])
                .collect();
            self.set_blocked(blocked);
            self.stats.partitions += 1;
            self.observe(|_| What::Partition { description, cut });
        }
        let every = self.plan.partition_every.expect("partitions are on");
        let next = self.now + self.rng.between(every / 4, 2 * every);
        self.queue.push(next, Event::PartitionChange);
    }

    fn on_crash_tick(&mut self) {
        if self.phase != Phase::Faulty {
            return;
        }
        let victim = self.victim();
        if self.may_take_down_one_more() && self.slots[victim].is_up() && !self.paused[victim] {
            self.crash(victim);
        }
        let every = self.plan.crash_every.expect("crashes are on");
        let next = self.now + self.rng.between(every / 4, 2 * every);
        self.queue.push(next, Event::Crash);
    }

    /// Whether one more node may be made unavailable (crashed or paused) without taking
    /// down more than a minority, unless this seed lets crashes take down a majority.
    fn may_take_down_one_more(&self) -> bool {
        let n = self.ids.len();
        let down = self.slots.iter().filter(|s| !s.is_up()).count();
        let paused = self.paused.iter().filter(|p| **p).count();
        let down_max = if self.plan.crash_majority {
            n
        } else {
            n - majority(n)
        };
        down + paused < down_max
    }

    // Crash points.

    /// Whether node `i`'s step, whose effects are `effects`, ends in a crash, and after which
    /// effect: right after a persist is issued (its fsync in flight, everything after it held
    /// back), or between two sends (some peers got the step's messages, the others never
    /// will: a coordinator that crashed mid-write). Steps that moved the node to a new term
    /// (ballot, epoch, view) — a vote granted, a candidacy, a new leader adopted — are rare
    /// and decisive, so they are crash points far more often (`elects`).
    fn crash_point_in_step(
        &mut self,
        i: usize,
        effects: &[Effect<H::Node>],
        elects: bool,
    ) -> Option<usize> {
        if self.plan.crash_point == 0.0 || self.phase != Phase::Faulty {
            return None;
        }
        let me = self.ids[i];
        let sends: Vec<usize> = (effects.iter().enumerate())
            .filter(|(_, e)| matches!(e, Effect::Send { to, .. } if *to != me))
            .map(|(k, _)| k)
            .collect();
        let persists = (effects.iter().enumerate())
            .filter(|(_, e)| matches!(e, Effect::Persist(_)))
            .map(|(k, _)| k);
        // After the last send there is nothing left to cut off.
        let between_sends = sends.iter().copied().take(sends.len().saturating_sub(1));
        let points: Vec<usize> = persists.chain(between_sends).collect();
        let chance = if elects {
            self.plan.crash_point_elects
        } else {
            self.plan.crash_point
        };
        if points.is_empty() || !self.fault_rng.chance(chance) || !self.may_take_down_one_more() {
            return None;
        }
        Some(points[self.fault_rng.below(points.len() as u64) as usize])
    }

    /// Whether node `i` crashes right after an fsync completed, and after how many of the
    /// effects that waited for it left (a vote or an acknowledgement durable but unsent).
    fn crash_point_after_fsync(&mut self, i: usize) -> Option<usize> {
        if self.plan.crash_point == 0.0
            || self.phase != Phase::Faulty
            || !self.fault_rng.chance(self.plan.crash_point)
            || !self.may_take_down_one_more()
        {
            return None;
        }
        let waiting = self.slots[i].backlog.len() as u64;
        Some(self.fault_rng.below(waiting + 1) as usize)
    }

    fn crash_at_point(&mut self, i: usize, point: &str) {
        self.stats.crash_points += 1;
        self.trace_line(i, || format!("crash point {point}"));
        self.crash(i);
    }

    // The scripted fault schedule.

    /// The step `k` of the script, if there is one.
    fn script_step(&self, k: usize) -> Option<&'a crate::script::Step> {
        let config: &'a SimConfig = self.config;
        config.script.as_ref()?.steps.get(k)
    }

    /// Arms the script's next step: schedules it after its delay, or fires it at once if its
    /// node already leads its term.
    fn arm_script(&mut self) {
        let k = self.script_next;
        let Some(step) = self.script_step(k) else {
            return;
        };
        match step.when {
            Trigger::After(delay) => {
                let at = self.now + delay.as_nanos() as u64;
                self.queue.push(at, Event::Script { step: k });
            }
            Trigger::Leader { node, term } => {
                let i = node as usize - 1;
                let status = self
                    .slots
                    .get(i)
                    .and_then(|s| s.node.as_ref())
                    .map(|n| n.status());
                if status.is_some_and(|s| s.role == Role::Leader && s.term == term) {
                    self.fire_script(k);
                }
            }
        }
    }

    /// Node `i` ended a step as leader of `term`: the script's next step may wait for that.
    fn script_on_leader(&mut self, i: usize, term: u64) {
        let k = self.script_next;
        if let Some(step) = self.script_step(k) {
            if step.when
                == (Trigger::Leader {
                    node: i as u64 + 1,
                    term,
                })
            {
                self.fire_script(k);
            }
        }
    }

    /// Carries out step `k` of the script (if it is still the next one and faults still run).
    fn fire_script(&mut self, k: usize) {
        if self.phase != Phase::Faulty || self.script_next != k {
            return;
        }
        let Some(step) = self.script_step(k) else {
            return;
        };
        self.script_next += 1;
        self.hash_event(0, 12, k as u64);
        self.trace_line(usize::MAX, || step.note.clone());
        let n = self.ids.len();
        match &step.action {
            ScriptAction::Links(links) => {
                let blocked = ScriptAction::blocked(links, n);
                let cut: Vec<[String; 2]> = (blocked.iter().enumerate())
                    .filter(|(link, b)| **b && link / n != link % n)
                    .map(|(link, _)| [node_lane(link / n), node_lane(link % n)])
                    .collect();
                let up: Vec<String> = (links.iter()).map(|(a, b)| format!("n{a}-n{b}")).collect();
                let description = format!("script: only {} work", up.join(", "));
                self.set_blocked(blocked);
                self.stats.partitions += 1;
                self.observe(|_| What::Partition { description, cut });
            }
            ScriptAction::HealLinks => {
                self.set_blocked(vec![false; n * n]);
                self.observe(|_| What::PartitionHealed);
            }
            ScriptAction::Crash(node) => {
                let i = *node as usize - 1;
                if self.slots[i].is_up() {
                    // Down until the script restarts it, or the fault phase ends.
                    self.crash_for(i, Some(3600 * 1000 * MS));
                }
            }
            ScriptAction::Restart(node) => {
                let i = *node as usize - 1;
                if !self.slots[i].is_up() {
                    self.start_node(i);
                }
            }
            ScriptAction::Note => {}
        }
        self.arm_script();
    }

    // Pauses.

    /// The event's node, if it is paused: the event waits until the node resumes.
    fn paused_target(&self, event: &Event<H::Node>) -> Option<usize> {
        let node = match event {
            Event::Deliver { to, .. }
            | Event::Request { to, .. }
            | Event::Shell { to, .. }
            | Event::Admin { to, .. } => *to,
            Event::Timer { node, .. } | Event::Persisted { node, .. } => *node,
            _ => return None,
        };
        self.paused[node].then_some(node)
    }

    /// The pause nemesis: a process (the leader's three times in four) stops, as in a long GC
    /// pause or a SIGSTOP, for up to the seed's longest pause, while every clock runs on.
    fn on_pause_tick(&mut self) {
        if self.phase != Phase::Faulty {
            return;
        }
        let victim = match self.leader() {
            Some(leader) if self.fault_rng.chance(0.75) => leader,
            _ => self.fault_rng.below(self.ids.len() as u64) as usize,
        };
        if self.slots[victim].is_up() && !self.paused[victim] && self.may_take_down_one_more() {
            let length = self.fault_rng.between(100 * MS, self.plan.pause_max);
            self.paused[victim] = true;
            self.stats.pauses += 1;
            self.hash_event(victim, 11, length);
            self.observe(|_| What::Pause {
                node: node_lane(victim),
                length,
            });
            let incarnation = self.slots[victim].incarnation;
            self.queue.push(
                self.now + length,
                Event::Resume {
                    node: victim,
                    incarnation,
                },
            );
        }
        let every = self.plan.pause_every.expect("pauses are on");
        let next = self.now + self.fault_rng.between(every / 4, 2 * every);
        self.queue.push(next, Event::Pause);
    }

    /// The process continues: it handles, in order, everything that reached it meanwhile
    /// (with `Faults::pause_requests_first`, the client requests first).
    fn resume(&mut self, i: usize) {
        self.paused[i] = false;
        let mut held = std::mem::take(&mut self.held[i]);
        if self.config.faults.pause_requests_first {
            let (requests, rest): (Vec<_>, Vec<_>) =
                (held.into_iter()).partition(|event| matches!(event, Event::Request { .. }));
            held = requests.into_iter().chain(rest).collect();
        }
        let queued = held.len();
        self.observe(|_| What::Resume {
            node: node_lane(i),
            queued,
        });
        for event in held {
            self.dispatch(event);
        }
    }

    fn crash(&mut self, i: usize) {
        self.crash_for(i, None);
    }

    /// Crashes node `i` and restarts it after `downtime` nanoseconds (`None`: a downtime
    /// drawn from the seed's plan).
    pub(crate) fn crash_for(&mut self, i: usize, downtime: Option<u64>) {
        // A stopped process can be killed too; what queued for it dies with it.
        self.paused[i] = false;
        self.held[i].clear();
        let unsynced = self.slots[i].unsynced_len();
        let kept = if self.plan.torn_writes {
            self.rng.between(0, unsynced)
        } else {
            0
        };
        self.slots[i].crash(kept);
        self.feeds.crashed(i);
        self.damage_disk(i);
        // Its connections die with it: nothing sent to or by the old incarnation arrives later.
        for j in 0..self.ids.len() {
            self.break_connection(i, j);
        }
        self.invariants.on_crash(self.ids[i]);
        self.stats.crashes += 1;
        self.seen[i] = None;
        self.observe(|_| What::Crash {
            node: node_lane(i),
            detail: format!("kept {kept} of {unsynced} unsynced records"),
        });
        self.hash_event(i, 5, kept);
        let downtime = downtime.unwrap_or_else(|| {
            self.rng
                .between(10 * MS, self.plan.downtime_max.max(10 * MS))
        });
        let incarnation = self.slots[i].incarnation;
        self.queue.push(
            self.now + downtime,
            Event::Restart {
                node: i,
                incarnation,
            },
        );
    }

    /// The disk-fault nemesis: sometimes a crashed node's disk also loses fsynced data — a
    /// flipped bit in the last fsynced batch or anywhere before it, a lost file, a failing
    /// read. Never on more nodes than a majority can do without, since each is refused
    /// for good by a correct recovery.
    fn damage_disk(&mut self, i: usize) {
        if self.disk_damage == 0.0 || self.slots[i].store.is_some() {
            return;
        }
        let n = self.config.nodes;
        let hurt = self.slots[..n]
            .iter()
            .filter(|s| s.damaged || s.refused)
            .count();
        if i >= n || hurt >= n - majority(n) || !self.disk_rng.chance(self.disk_damage) {
            return;
        }
        let slot = &mut self.slots[i];
        let names = slot.disk.list().unwrap_or_default();
        let Some(wal) = names
            .iter()
            .filter(|n| n.starts_with("wal-"))
            .max()
            .cloned()
        else {
            return;
        };
        let synced = slot
            .synced_batch
            .clone()
            .filter(|(file, _, _)| *file == wal);
        let (start, end) = synced.map(|(_, a, b)| (a, b)).unwrap_or((0, 32));
        let kind = self.disk_rng.below(100);
        let bit = self.disk_rng.below(8) as u8;
        let what = if kind < 50 {
            let at = self.disk_rng.between(start, end - 1);
            slot.disk.flip_bit(&wal, at, bit);
            format!("flipped bit {bit} at offset {at} of {wal}, in its last fsynced batch")
        } else if kind < 70 {
            let at = self.disk_rng.between(0, end - 1);
            slot.disk.flip_bit(&wal, at, bit);
            format!("flipped bit {bit} at offset {at} of {wal}")
        } else if kind < 85 {
            let lost = if names.iter().any(|n| n == "snapshot") && self.disk_rng.chance(0.5) {
                "snapshot".to_string()
            } else {
                wal
            };
            slot.disk.lose(&lost);
            format!("lost {lost}")
        } else {
            slot.disk.fail_reads(&wal);
            format!("reads of {wal} fail")
        };
        slot.damaged = true;
        self.stats.disk_faults += 1;
        self.hash_event(i, 10, kind);
        self.trace_line(i, || format!("disk fault: {what}"));
    }

    /// End of the fault phase: restart every node, reconnect every link, stop losing and
    /// duplicating messages; then every client must make progress.
    fn heal(&mut self) {
        let n = self.ids.len();
        if let Some(step) = self.script_step(self.script_next) {
            let (k, when) = (self.script_next + 1, step.when);
            self.trace_line(usize::MAX, || {
                format!("script: the fault phase ended while step {k} waited for {when:?}")
            });
        }
        self.set_blocked(vec![false; n * n]);
        self.plan.loss = 0.0;
        self.plan.duplicate = 0.0;
        self.plan.slow = 0.0;
        self.plan.stale = 0.0;
        for i in 0..n {
            if self.paused[i] {
                self.resume(i);
            }
        }
        for i in 0..n {
            if !self.slots[i].is_up() {
                self.start_node(i);
            }
        }
        self.phase = Phase::Healing { since: self.now };
        self.observe(|_| What::Heal);
        let deadline = self.now + self.config.liveness_timeout.as_nanos() as u64;
        self.queue.push(deadline, Event::LivenessDeadline);
        self.check_liveness_done();
    }

    fn on_liveness_deadline(&mut self) {
        if let Phase::Healing { .. } = self.phase {
            let waiting = self.clients.iter().filter(|c| !c.healed_ok).count();
            self.violations.push(format!(
                "liveness: {waiting} of {} clients completed no operation within {:?} after all \
                 faults healed",
                self.clients.len(),
                self.config.liveness_timeout
            ));
            self.phase = Phase::Done;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Tracing.

    /// Folds an event into the trace hash: when, where, what kind, and its content's digest.
    pub fn hash_event(&mut self, node: usize, kind: u8, content: u64) {
        self.trace_hash.write_u64(self.now);
        self.trace_hash.write_u64(node as u64);
        self.trace_hash.write_u8(kind);
        self.trace_hash.write_u64(content);
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace_hash.finish()
    }

    /// Records a note on node `node`'s lane (`usize::MAX`: the cluster's).
    pub fn trace_line(&mut self, node: usize, line: impl FnOnce() -> String) {
        self.observe(|_| What::Note {
            node: (node != usize::MAX).then(|| node_lane(node)),
            text: line(),
        });
    }

    /// Reports an event to the observer, if there is one; `what` is built only then.
    pub fn observe(&mut self, what: impl FnOnce(&Self) -> What) {
        if self.observer.is_none() {
            return;
        }
        let event = RunEvent {
            time: self.now,
            what: what(self),
        };
        if let Some(observer) = self.observer.as_mut() {
            observer(&event);
        }
    }

    /// A fresh message id (for the record only: ids are never hashed nor drawn).
    pub fn next_message_id(&mut self) -> u64 {
        self.message_id += 1;
        self.message_id
    }

    /// Names a message leaving `from` for `to` and records it; returns its id.
    pub fn observe_send(
        &mut self,
        from: String,
        to: String,
        copy: bool,
        msg: impl FnOnce() -> String,
    ) -> u64 {
        let id = self.next_message_id();
        self.observe(|_| What::Send {
            id,
            from,
            to,
            msg: msg(),
            copy,
            late: false,
        });
        id
    }

    /// Records a message lost as it was sent.
    pub fn observe_drop(
        &mut self,
        from: String,
        to: String,
        why: &'static str,
        msg: impl FnOnce() -> String,
    ) {
        self.observe(|_| What::Drop {
            id: 0,
            from,
            to,
            msg: msg(),
            why,
        });
    }

    /// Records the arrival of a client's request (or a shell message) at node `to`, or its
    /// loss if the node is down.
    fn observe_arrival(&mut self, id: u64, from: String, to: usize, msg: impl FnOnce() -> String) {
        let up = self.slots[to].is_up();
        self.observe(|_| {
            let (to, msg) = (node_lane(to), msg());
            if up {
                What::Deliver { id, from, to, msg }
            } else {
                let why = "receiver down";
                What::Drop {
                    id,
                    from,
                    to,
                    msg,
                    why,
                }
            }
        });
    }

    /// Records node `i`'s role, term and leader when they changed, and its commit index when
    /// it advanced.
    fn observe_status(&mut self, i: usize, status: &quorate_core::NodeStatus) {
        if self.observer.is_none() {
            return;
        }
        let now = Seen {
            role: status.role,
            term: status.term,
            leader: status.leader,
            commit: status.commit_index,
        };
        let before = self.seen[i].replace(now);
        let changed = |b: Seen| (b.role, b.term, b.leader) != (now.role, now.term, now.leader);
        if before.is_none_or(changed) {
            self.observe(|sim| What::Role {
                node: node_lane(i),
                role: format!("{:?}", now.role),
                term: now.term,
                leader: now.leader.map(|l| node_lane(sim.node_index(l))),
            });
        }
        if before.is_some_and(|b| now.commit > b.commit) {
            self.observe(|_| What::Commit {
                node: node_lane(i),
                index: now.commit,
            });
        }
    }

    /// A protocol message as the record shows it.
    pub fn describe(&self, msg: &<H::Node as Protocol>::Message) -> String {
        self.harness.describe_message(msg)
    }

    /// The lane of the client that sent `client`'s requests: its history process.
    pub fn client_lane(&self, client: ClientId) -> String {
        if client.0 & crate::workload::FINAL_CLIENT != 0 {
            // As the history records final reads: one process per node read.
            let node = (client.0 & !crate::workload::FINAL_CLIENT) >> 20;
            return format!("p{}", crate::harness::FINAL_READ_PROCESS + node);
        }
        if crate::reconfig::is_admin(client) {
            return "admin".into();
        }
        let slot = crate::client::client_slot(client);
        match self.clients.get(slot) {
            Some(c) => format!("p{}", c.process),
            None => format!("client {}", client.0),
        }
    }
}

/// A client request as the record shows it: `Put key=k0 value=7 seq=3`.
pub(crate) fn describe_request(request: &Request) -> String {
    let op = crate::record::summarize(&format!("{:?}", request.op));
    format!("{op} seq={}", request.seq)
}

/// A reply as the record shows it.
pub(crate) fn describe_reply(reply: &Reply) -> String {
    match &reply.result {
        Ok(output) => format!("ok {}", crate::record::summarize(&format!("{output:?}"))),
        Err(error) => format!("error {}", crate::record::summarize(&format!("{error:?}"))),
    }
}

/// Final reads and the reconfiguration nemesis' requests talk to nodes directly: they are
/// the test's own probes, not clients.
fn bypasses_shell(client: ClientId) -> bool {
    client.0 & crate::workload::FINAL_CLIENT != 0 || crate::reconfig::is_admin(client)
}
