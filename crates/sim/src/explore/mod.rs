//! Bounded exhaustive exploration: every interleaving of a small cluster, not a random one.
//!
//! The seeded simulator samples schedules; a race whose window is one message wide (a view
//! change finishing inside one read-confirmation round, a quorum read overlapping a
//! half-finished write) is found only by luck. This explorer enumerates *every* schedule of a
//! small configuration up to a depth bound, over the same node types and the same per-step
//! safety checkers ([`Harness::invariants`]) the simulator uses, in the manner of stateright's
//! model checker and TLC.
//!
//! ## The model
//!
//! A *world* is the nodes (up, or down with their durable records), the messages in flight,
//! the pending timers, the clients and the history they recorded. From a world, the enabled
//! *actions* are, in this order:
//!
//! 1. **Deliver** message `i` to its (up) destination. Channels of a
//!    [`Protocol::FIFO_CHANNELS`] protocol deliver only the oldest message of each link.
//! 2. **Drop** message `i` (at most `drops` per schedule), on FIFO channels only, where a
//!    drop breaks the link: every message in flight on it is lost, as a broken TCP connection
//!    loses a suffix. Elsewhere a message never delivered before the depth bound already is a
//!    lost one, so drops would only repeat schedules.
//! 3. **Fire** a pending timer of an up node. Time is one global clock (no drift). A timer set
//!    at `t` with range `after` fires within `t + after.min ..= t + after.max`: it may fire
//!    once its window opened and not after any other pending timer's window closed, and time
//!    jumps to its opening. So no timer fires early (a lease is never outlived by the election
//!    timer it relies on) and heartbeats come before election timeouts, while timers whose
//!    windows overlap (elections) fire in every order. Messages take no time.
//! 4. **Crash** an up node (at most `crashes` per schedule), or **restart** a down one from
//!    its durable records.
//! 5. **Send** a client's request to a node: to every up node that believes it leads (or, for
//!    leaderless protocols, every up replica), else to the first up node, which redirects.
//!
//! Persists are durable at once, and a node's messages to itself are delivered within the
//! same action (rule 6 of the driver contract): the explorer explores the network and crash
//! orders, not torn writes, which the simulator's disk faults cover. Client requests and
//! replies cross no network; a crash of the node a client waits on times the attempt out.
//!
//! ## The search
//!
//! Depth-first to the depth bound, with state hashing: a world's digest covers every node's
//! state (its `Debug` form, which is canonical because protocol state lives in deterministic
//! containers), the durable records of down nodes, the in-flight messages as a multiset, the
//! timers, the clients and the history. A world already seen at the same or a smaller depth
//! is not expanded again. The checkers' ledgers are not part of the digest (as in stateright,
//! properties are judged on states, not on the paths to them).
//!
//! After every step: the node's own invariants and the protocol's cluster-wide properties.
//! At every leaf (depth bound, or nothing enabled): the history, with unfinished operations
//! as `info`, is judged by `quorate_check::judge` under [`Harness::promise`], the same judge as the simulator's, once per
//! distinct history.
//!
//! ## Replay
//!
//! A schedule is the list of action indices taken, `0.3.1.2`; [`replay`] re-runs it and
//! returns the trace. Indices are positions in the enabled-action list above, which is a
//! deterministic function of the world.

mod world;

use crate::harness::Harness;
use quorate_check::EventKind;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use world::World;

/// The bounds of one exploration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExploreConfig {
    pub nodes: usize,
    /// Actions per schedule.
    pub depth: usize,
    /// Client operations, one client each (so they may run concurrently).
    pub ops: usize,
    /// Message drops per schedule.
    pub drops: usize,
    /// Crashes per schedule (restarts are not counted).
    pub crashes: usize,
    /// Stop after expanding this many worlds (the report then says the search was cut).
    pub states_max: u64,
    /// Attempts per client operation before it gives up (outcome unknown).
    pub attempts_max: u32,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig {
            nodes: 3,
            depth: 10,
            ops: 2,
            drops: 1,
            crashes: 1,
            states_max: 5_000_000,
            attempts_max: 3,
        }
    }
}

/// The depth `quorate explore` and CI use for `protocol` (its `--protocol` name): as deep as
/// finishes in seconds on one core in a release build, with the other defaults.
pub fn default_depth(protocol: &str) -> usize {
    match protocol {
        "raft" | "multipaxos" | "multiprimary" => 7,
        "zab" | "quorum" => 6,
        "paxos" | "paxos-livelock" => 8,
        "primary-backup" | "chain" | "craq" => 12,
        _ => 6,
    }
}

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct ExploreReport {
    pub protocol: &'static str,
    /// Worlds expanded (a world reached again at a greater depth is not).
    pub states: u64,
    /// Distinct worlds seen (digests).
    pub distinct: u64,
    /// The deepest schedule explored.
    pub max_depth: usize,
    /// Schedules that ended (depth bound, or nothing enabled).
    pub leaves: u64,
    /// Distinct histories judged at leaves, and how many of them had a completed operation.
    pub histories: u64,
    pub histories_completed: u64,
    /// `states_max` stopped the search before it was exhaustive.
    pub cut: bool,
    pub elapsed: Duration,
    pub violation: Option<Counterexample>,
}

/// A violated property and the schedule that reaches it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// Action indices, replayable with [`replay`].
    pub path: Vec<usize>,
    pub violation: String,
}

impl Counterexample {
    /// The path as `--replay` takes it.
    pub fn path_text(&self) -> String {
        path_text(&self.path)
    }
}

/// `0.3.1.2`.
pub fn path_text(path: &[usize]) -> String {
    let parts: Vec<String> = path.iter().map(usize::to_string).collect();
    parts.join(".")
}

/// Parses `0.3.1.2` (an empty string is the empty schedule).
pub fn parse_path(text: &str) -> Result<Vec<usize>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split('.')
        .map(|part| {
            part.trim().parse().map_err(|_| {
                format!("bad step {part:?} in replay path {text:?}: expected numbers joined by dots, as `quorate explore` prints them")
            })
        })
        .collect()
}

/// Explores every schedule of `harness` within `config`; `progress` is called now and then
/// with the worlds expanded so far.
pub fn explore<H>(
    harness: &H,
    config: &ExploreConfig,
    progress: &mut dyn FnMut(u64),
) -> ExploreReport
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    let started = Instant::now();
    let mut search = Search {
        harness,
        config,
        seen: HashMap::new(),
        judged: HashSet::new(),
        report: ExploreReport {
            protocol: harness.name(),
            states: 0,
            distinct: 0,
            max_depth: 0,
            leaves: 0,
            histories: 0,
            histories_completed: 0,
            cut: false,
            elapsed: Duration::ZERO,
            violation: None,
        },
        progress,
        path: Vec::new(),
    };
    match World::start(harness, config) {
        Ok(world) => {
            search.dfs(world);
        }
        Err(violation) => {
            search.report.violation = Some(Counterexample {
                path: Vec::new(),
                violation,
            })
        }
    }
    search.report.distinct = search.seen.len() as u64;
    search.report.elapsed = started.elapsed();
    search.report
}

/// Re-runs `path` and returns its trace, one line per action, and the violation it reaches
/// (checked after every step, and on the history at its end).
pub fn replay<H>(
    harness: &H,
    config: &ExploreConfig,
    path: &[usize],
) -> Result<(Vec<String>, Option<String>), String>
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    let mut trace = Vec::new();
    let mut world = match World::start(harness, config) {
        Ok(world) => world,
        Err(violation) => return Ok((trace, Some(violation))),
    };
    for (depth, &index) in path.iter().enumerate() {
        let actions = world.actions(config);
        let Some(&action) = actions.get(index) else {
            return Err(format!(
                "step {depth} of the replay path takes action {index}, but only {} are enabled there: \
                 replay with the same --nodes, --ops, --drops, --crashes and --bug as the exploration",
                actions.len()
            ));
        };
        trace.push(format!(
            "{depth:>3} [{index}] t={}ms {}",
            world.now / 1_000_000,
            world.describe(action)
        ));
        if let Err(violation) = world.apply(harness, action, Some(&mut trace)) {
            return Ok((trace, Some(violation)));
        }
    }
    let found = world.judge(harness);
    for event in world.final_history() {
        trace.push(format!("    history: {event:?}"));
    }
    Ok((trace, found.err()))
}

struct Search<'a, H: Harness> {
    harness: &'a H,
    config: &'a ExploreConfig,
    /// World digest -> the smallest depth it was reached at.
    seen: HashMap<u64, usize>,
    /// Digests of the histories judged (a violation stops the search, so every one passed).
    judged: HashSet<u64>,
    report: ExploreReport,
    progress: &'a mut dyn FnMut(u64),
    path: Vec<usize>,
}

impl<H> Search<'_, H>
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    /// Returns false to stop the search (a violation, or `states_max`).
    fn dfs(&mut self, world: World<H>) -> bool {
        let depth = self.path.len();
        let digest = world.digest();
        match self.seen.get(&digest) {
            Some(&at) if at <= depth => return true,
            _ => {
                self.seen.insert(digest, depth);
            }
        }
        self.report.states += 1;
        self.report.max_depth = self.report.max_depth.max(depth);
        if self.report.states.is_multiple_of(4096) {
            (self.progress)(self.report.states);
        }
        if self.report.states >= self.config.states_max {
            self.report.cut = true;
            return false;
        }
        let actions = if depth < self.config.depth {
            world.actions(self.config)
        } else {
            Vec::new()
        };
        if actions.is_empty() {
            return self.leaf(&world);
        }
        let last = actions.len() - 1;
        let mut world = Some(world);
        for (index, action) in actions.into_iter().enumerate() {
            // The last action takes the world itself rather than a copy.
            let mut next = if index == last {
                world.take().expect("the world is kept for the last action")
            } else {
                world.as_ref().expect("not taken before the last").clone()
            };
            self.path.push(index);
            let outcome = next.apply(self.harness, action, None);
            let go_on = match outcome {
                Ok(()) => self.dfs(next),
                Err(violation) => {
                    self.report.violation = Some(Counterexample {
                        path: self.path.clone(),
                        violation,
                    });
                    false
                }
            };
            self.path.pop();
            if !go_on {
                return false;
            }
        }
        true
    }

    fn leaf(&mut self, world: &World<H>) -> bool {
        self.report.leaves += 1;
        let history = world.final_history();
        let mut hasher = DefaultHasher::new();
        history.hash(&mut hasher);
        if !self.judged.insert(hasher.finish()) {
            return true;
        }
        self.report.histories += 1;
        if history.iter().any(|e| e.kind == EventKind::Ok) {
            self.report.histories_completed += 1;
        }
        match world.judge(self.harness) {
            Ok(()) => true,
            Err(violation) => {
                self.report.violation = Some(Counterexample {
                    path: self.path.clone(),
                    violation,
                });
                false
            }
        }
    }
}
