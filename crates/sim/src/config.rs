//! What a simulation run does: cluster size, faults, workload, phases.
//!
//! Fault *kinds* are chosen by the user (`--faults all`, `--faults none`, or a list such as
//! `--faults partition,crash`). Their *intensities* are drawn per seed from the seed itself
//! (swarm testing, Groce et al. 2012): one seed loses 12% of messages and never partitions,
//! another partitions every 300 ms over a clean network. Varying the mix finds bugs that a
//! fixed average mix hides.
//!
//! `all` is the seven `classic` kinds plus two that are less polite (issue 15): process
//! pauses (a GC pause or SIGSTOP: the node stops for several election timeouts while its
//! clock runs on, then resumes with every message that queued up meanwhile) and crash
//! points (crashes placed where a careless implementation is weakest: right after a persist
//! is issued, right after an fsync completes, and between the sends of one step). Two more
//! are opt-in, since they break assumptions a protocol is allowed to make: `clock-beyond-bound`
//! (clocks drift past the bound a protocol states, which shows which guarantees rest on it)
//! and `stale` (a leader's messages are delivered again seconds later, long after it was
//! deposed; every node's in the protocols without leaders; only for protocols without FIFO
//! channels, whose connections cannot do that).

use crate::rng::Rng;
use std::fmt;
use std::time::Duration;

/// The kinds of faults a run may inject.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Faults {
    /// Messages are dropped.
    pub loss: bool,
    /// Messages are delivered twice.
    pub duplicate: bool,
    /// Message delays vary widely, with a long tail, so messages overtake each other.
    pub reorder: bool,
    /// The network splits: isolated nodes, majority/minority, one-way links, bridges.
    pub partition: bool,
    /// Nodes crash (losing everything not fsynced) and restart.
    pub crash: bool,
    /// Node clocks are offset and run at different rates.
    pub clock: bool,
    /// fsync is slow; a crash keeps an arbitrary prefix of the unsynced writes.
    pub disk: bool,
    /// A node stops for several election timeouts (no timers, no messages; what is sent to
    /// it queues up) while its clock runs on, then resumes with its queue.
    pub pause: bool,
    /// Crashes at the points a step is weakest: right after a persist is issued, right after
    /// an fsync completes (before what waited for it leaves), and between two sends of one
    /// step (a coordinator that reached some replicas only).
    pub crash_points: bool,
    /// Clocks drift beyond the bound the protocol states (opt-in: not in `all`).
    pub clock_beyond_bound: bool,
    /// Copies of a leader's messages (any node's, in protocols without leaders) arrive again
    /// seconds later, after it was deposed (opt-in: not in `all`).
    pub stale: bool,
    /// Pauses (as `pause`) after which the node handles the client requests that reached it
    /// while it was stopped before the messages, timers and disk completions that did (each
    /// kind still in arrival order): a resumed process polls its client and peer connections
    /// in no promised order (opt-in: not in `all`).
    pub pause_requests_first: bool,
}

/// The fault names `--faults` accepts.
pub const FAULT_NAMES: [&str; 12] = [
    "loss",
    "duplicate",
    "reorder",
    "partition",
    "crash",
    "clock",
    "disk",
    "pause",
    "crash-points",
    "clock-beyond-bound",
    "stale",
    "pause-requests-first",
];

impl Faults {
    /// Every fault a correct protocol must survive: [`Faults::classic`], pauses and crash
    /// points.
    pub fn all() -> Faults {
        Faults {
            pause: true,
            crash_points: true,
            ..Faults::classic()
        }
    }

    /// The seven faults `all` meant before pauses and crash points (issue 15). Tests that pin
    /// a number of seeds measured under them pin this set, so that their numbers stay put.
    pub fn classic() -> Faults {
        Faults {
            loss: true,
            duplicate: true,
            reorder: true,
            partition: true,
            crash: true,
            clock: true,
            disk: true,
            ..Faults::default()
        }
    }

    pub fn none() -> Faults {
        Faults::default()
    }

    /// Parses `all`, `classic`, `none`, or a comma-separated list of [`FAULT_NAMES`], in
    /// which `all` and `classic` may appear too (`all,stale`).
    pub fn parse(text: &str) -> Result<Faults, String> {
        if matches!(text.trim(), "none" | "") {
            return Ok(Faults::none());
        }
        let mut faults = Faults::none();
        for name in text.split(',').map(str::trim) {
            let set = match name {
                "all" => Faults::all(),
                "classic" => Faults::classic(),
                _ => Faults::none(),
            };
            if set.any() {
                faults = faults.union(set);
                continue;
            }
            let Some(flag) = faults.flag_mut(name) else {
                return Err(format!(
                    "unknown fault {name:?}: expected all, classic, none, or a comma-separated \
                     list of {}",
                    FAULT_NAMES.join(", ")
                ));
            };
            *flag = true;
        }
        Ok(faults)
    }

    /// The flag named `name` (one of [`FAULT_NAMES`]).
    fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "loss" => &mut self.loss,
            "duplicate" => &mut self.duplicate,
            "reorder" => &mut self.reorder,
            "partition" => &mut self.partition,
            "crash" => &mut self.crash,
            "clock" => &mut self.clock,
            "disk" => &mut self.disk,
            "pause" => &mut self.pause,
            "crash-points" => &mut self.crash_points,
            "clock-beyond-bound" => &mut self.clock_beyond_bound,
            "stale" => &mut self.stale,
            "pause-requests-first" => &mut self.pause_requests_first,
            _ => return None,
        })
    }

    /// The flags in the order of [`FAULT_NAMES`].
    fn flags(&self) -> [bool; 12] {
        [
            self.loss,
            self.duplicate,
            self.reorder,
            self.partition,
            self.crash,
            self.clock,
            self.disk,
            self.pause,
            self.crash_points,
            self.clock_beyond_bound,
            self.stale,
            self.pause_requests_first,
        ]
    }

    /// Every fault of either set.
    pub fn union(self, other: Faults) -> Faults {
        let mut union = self;
        for (name, on) in FAULT_NAMES.iter().zip(other.flags()) {
            if on {
                *union.flag_mut(name).expect("a known name") = true;
            }
        }
        union
    }

    pub fn any(&self) -> bool {
        *self != Faults::none()
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Faults::all() {
            return f.write_str("all");
        }
        if *self == Faults::classic() {
            return f.write_str("classic");
        }
        let names: Vec<&str> = FAULT_NAMES
            .iter()
            .zip(self.flags())
            .filter_map(|(name, on)| on.then_some(*name))
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Relative weights of the operations simulated clients issue.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Mix {
    pub get: u32,
    pub put: u32,
    pub append: u32,
    pub cas: u32,
    pub delete: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            get: 40,
            put: 25,
            append: 10,
            cas: 20,
            delete: 5,
        }
    }
}

/// Relative weights of the read modes simulated clients use for GETs (writes always go
/// through the protocol's ordering).
///
/// With only linearizable reads (the default), clients move freely between nodes. Any other
/// mode makes them *sticky*, as ZooKeeper clients are: a client process stays with one node,
/// because that is what per-client ordering of local reads relies on. When a client must
/// move (its node stopped answering), a pending non-linearizable read is abandoned (recorded
/// as `info`, which tells nothing) and the client continues as a new history process.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadMix {
    pub linearizable: u32,
    pub local: u32,
    pub sync: u32,
}

impl Default for ReadMix {
    fn default() -> Self {
        ReadMix {
            linearizable: 1,
            local: 0,
            sync: 0,
        }
    }
}

impl ReadMix {
    /// Parses `linearizable`, `local`, `sync`, or weights such as
    /// `linearizable=1,local=3,sync=1` (unnamed modes weigh 0).
    pub fn parse(text: &str) -> Result<ReadMix, String> {
        let mut mix = ReadMix {
            linearizable: 0,
            local: 0,
            sync: 0,
        };
        for part in text.split(',').map(str::trim) {
            let (name, weight) = match part.split_once('=') {
                Some((name, weight)) => {
                    let weight = weight.trim().parse::<u32>().map_err(|_| {
                        format!("read weight {weight:?} is not a non-negative integer")
                    })?;
                    (name.trim(), weight)
                }
                None => (part, 1),
            };
            let slot = match name {
                "linearizable" => &mut mix.linearizable,
                "local" => &mut mix.local,
                "sync" => &mut mix.sync,
                other => {
                    return Err(format!(
                        "unknown read mode {other:?}: expected linearizable, local or sync, \
                         optionally with a weight (local=3)"
                    ))
                }
            };
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err("the read mix has no weight".into());
        }
        Ok(mix)
    }

    pub fn total(&self) -> u32 {
        self.linearizable + self.local + self.sync
    }

    /// True when every read is linearizable: clients need not stick to one node.
    pub fn is_linearizable_only(&self) -> bool {
        self.local == 0 && self.sync == 0
    }
}

impl fmt::Display for ReadMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "linearizable={},local={},sync={}",
            self.linearizable, self.local, self.sync
        )
    }
}

/// What the simulated clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Concurrent client processes.
    pub clients: usize,
    /// Distinct keys; fewer keys, more contention.
    pub keys: usize,
    pub mix: Mix,
    /// How GETs ask to be served.
    pub reads: ReadMix,
    /// A client resends (to another node) when a reply takes longer than this.
    pub attempt_timeout: Duration,
    /// A client gives up on an operation after this long; its outcome is then unknown (`info`)
    /// and the client continues as a new process with a new session, as in Jepsen.
    pub op_timeout: Duration,
    /// Pause between a completion and the client's next invocation, at most.
    pub think_max: Duration,
    /// Write-once registers, for single-decree consensus. When set, every key is written at
    /// most once: a client either reads a key (weight `mix.get`) or proposes a fresh value for
    /// it as a CAS from absent (every other weight), and every `write_once` period of simulated
    /// time the clients move on to a fresh generation of keys (`k0.g7`), so that decisions keep
    /// being made, under faults, for the whole run. `None`: the ordinary register workload.
    pub write_once: Option<Duration>,
    /// Share of reads (0 to 1) sent with `ReadMode::Local` to a node drawn at random. They may
    /// be stale, so they are left out of the linearizability check and measured instead (see
    /// `staleness`). At 0 no random number is drawn, so runs are exactly as without the option.
    pub local_reads: f64,
    /// When set, every PUT carries this time to live (`SET k v PX ms`), so keys expire during
    /// the run and the checker holds expiry to its window (`quorate_check::expiry`). Only for
    /// protocols that support expiry (Raft), and without appends (`mix.append = 0`): APPEND
    /// keeps a time to live, which the model's expiry does not follow. `None`: plain PUTs,
    /// runs exactly as without it.
    pub put_ttl: Option<Duration>,
    /// Locks with leases, as Redis lock clients take and release them: with `put_ttl` set,
    /// every PUT is a lock acquire, `SET k token NX PX ttl` (one `Op::Set`), and every
    /// DELETE a release, a compare-and-delete of the token this client last saw for the key
    /// (`DELIFEQ k token`, one `Op::DeleteIf`). The checker holds both to the register model
    /// (a CAS from absent whose value expires; a CAS to absent). `false`: runs exactly as
    /// without it.
    pub locks: bool,
    /// Transactions instead of the mix (see `Simulation::next_txn_op`): `MULTI`/`EXEC` of
    /// appends and reads over several keys, `MGET`, and `WATCH` rounds, recorded as `txn`
    /// events that the list-append checker holds to strict serializability. Only for
    /// protocols with one log, with linearizable reads only. With `put_ttl`, half the
    /// operations are instead the ordinary register operations with expiring puts (on keys
    /// `k*`; transactions use `l*`), judged by the register model with expiry in the same
    /// run. `false`: runs exactly as without it.
    pub txns: bool,
    /// Leases, as etcd's clients use them (see `Simulation::next_lease_op`): each client
    /// grants a lease with time to live `put_ttl`, attaches the keys it writes to it
    /// (`SET k v LEASE id`), keeps it alive, sometimes revokes it, and drops it after any
    /// unknown outcome, leaving it to run out. The checker holds each attached value's
    /// disappearance to the window its lease's events allow (`quorate_check::lease`). Raft
    /// only, with `put_ttl` set. `false`: runs exactly as without it.
    pub leases: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 5,
            keys: 4,
            mix: Mix::default(),
            reads: ReadMix::default(),
            attempt_timeout: Duration::from_millis(400),
            op_timeout: Duration::from_secs(3),
            think_max: Duration::from_millis(10),
            write_once: None,
            local_reads: 0.0,
            put_ttl: None,
            locks: false,
            txns: false,
            leases: false,
        }
    }
}

/// Everything that defines a run, besides its seed.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    pub faults: Faults,
    /// Length of the fault phase, in simulated time.
    pub duration: Duration,
    /// After the fault phase every fault heals; every client must then complete an operation
    /// within this time, or the run reports a liveness violation.
    pub liveness_timeout: Duration,
    pub workload: Workload,
    /// Check the client history for linearizability at the end of the run.
    pub check_history: bool,
    /// Wall-clock limit for that check; past it the verdict is "unknown".
    pub check_time_limit: Duration,
    /// The step budget: a run that processes this many events (deliveries, timers,
    /// requests, fsync completions, faults) without finishing stops and fails with its seed
    /// (`quorate sim --max-steps`). Catches loops that never let simulated time advance.
    pub events_max: u64,
    /// The wall-clock budget of one seed's simulation (`quorate sim --seed-timeout`): past it
    /// the run stops and fails with its seed, however slowly its events go. The history
    /// check has its own limit (`check_time_limit`).
    pub wall_max: Duration,
    /// Run the reconfiguration nemesis: [`RECONFIG_SPARES`] extra nodes start outside the
    /// cluster, and members are added, promoted, removed and replaced, and leadership is
    /// transferred, during the fault phase. Needs a harness that supports it.
    pub reconfig: bool,
    /// Check after every step that no node's term, commit index or applied index goes back
    /// within one incarnation, and that a restarted node recovers at least the term it held
    /// durably (see `node::Slot::monotonic`). Tests switch it off to show what it catches.
    pub check_monotonic: bool,
    /// Run the server's change feed on every node with an applied store and check it after
    /// every step, and at the end that it holds every acknowledged write (see
    /// [`crate::feed`]). Tests switch it off to show what it catches.
    pub check_feed: bool,
    /// Run every client as this deliberately broken variant (tests that prove a check bites).
    pub client_bug: Option<quorate_core::client::ClientBug>,
    /// Crash the leader at a fixed point of simulated time and restart it later (`quorate
    /// compare --faults leader-crash`): the same fault, at the same time, for every protocol.
    pub leader_crash: Option<LeaderCrash>,
    /// Count the bytes of every message sent (`RunStats::message_bytes`), encoded as the
    /// server sends them. Off by default: encoding every message costs time.
    pub count_message_bytes: bool,
    /// A scripted fault schedule run during the fault phase (see [`crate::script`]): faults
    /// at chosen moments, for teaching scenarios. `None`: no script; runs are exactly as
    /// without it.
    pub script: Option<crate::script::Script>,
}

/// A deterministic leader crash: at `at`, the node that claims leadership with the highest
/// term crashes (node 1 when none does, as in leaderless protocols, where every node
/// coordinates); it restarts `downtime` later. Only the choice of victim depends on the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderCrash {
    /// Simulated time from the start of the run.
    pub at: Duration,
    pub downtime: Duration,
}

/// The default step budget of one seed: about a thousand times what the largest CI shape
/// (3 nodes, 12 clients on one key, 20 s of faults) needs, some 15,000 events per seed on
/// average, and about 13 s at 1.5 million events per second.
pub const EVENTS_MAX_DEFAULT: u64 = 20_000_000;

/// The default wall-clock budget of one seed's simulation.
pub const WALL_MAX_DEFAULT: Duration = Duration::from_secs(120);

/// Nodes beyond `--nodes` that a reconfiguration run starts outside the cluster.
pub const RECONFIG_SPARES: usize = 2;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            faults: Faults::all(),
            duration: Duration::from_secs(4),
            liveness_timeout: Duration::from_secs(15),
            workload: Workload::default(),
            check_history: true,
            check_time_limit: Duration::from_secs(20),
            events_max: EVENTS_MAX_DEFAULT,
            wall_max: WALL_MAX_DEFAULT,
            reconfig: false,
            check_monotonic: true,
            check_feed: true,
            client_bug: None,
            leader_crash: None,
            count_message_bytes: false,
            script: None,
        }
    }
}

impl SimConfig {
    /// Nodes that start outside the cluster, for the reconfiguration nemesis to add.
    pub fn spares(&self) -> usize {
        if self.reconfig {
            RECONFIG_SPARES
        } else {
            0
        }
    }

    /// Refuses impossible options with a message naming the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if self.nodes + self.spares() > 64 {
            return Err(format!(
                "--nodes {} (plus {} spares) is more than the simulator's 64",
                self.nodes,
                self.spares()
            ));
        }
        if self.workload.clients == 0 {
            return Err("--clients must be at least 1".into());
        }
        if self.workload.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        let m = self.workload.mix;
        if m.get + m.put + m.append + m.cas + m.delete == 0 {
            return Err("the operation mix has no operations".into());
        }
        if self.workload.reads.total() == 0 {
            return Err("the read mix has no weight".into());
        }
        if !(0.0..=1.0).contains(&self.workload.local_reads) {
            return Err(format!(
                "--local-reads {} is not a share between 0 and 1",
                self.workload.local_reads
            ));
        }
        let linearizable_reads =
            self.workload.reads.is_linearizable_only() && self.workload.local_reads == 0.0;
        if self.workload.txns && !linearizable_reads {
            return Err("transactions read linearizably only: no read mix, no local reads".into());
        }
        if self.workload.leases && (self.workload.put_ttl.is_none() || self.workload.txns) {
            return Err("leases need a time to live (put_ttl) and no transactions".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        if let Some(crash) = self.leader_crash {
            if crash.at >= self.duration {
                return Err(format!(
                    "the leader crash at {:?} falls after the fault phase ({:?}): crash earlier \
                     or run longer",
                    crash.at, self.duration
                ));
            }
        }
        if self.events_max == 0 {
            return Err("--max-steps must be at least 1".into());
        }
        if self.wall_max.is_zero() {
            return Err("--seed-timeout must be positive".into());
        }
        if self
            .workload
            .write_once
            .is_some_and(|period| period.is_zero())
        {
            return Err("the write-once generation period must be positive".into());
        }

        Ok(())
    }
}

/// The fault intensities of one seed (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct FaultPlan {
    pub loss: f64,
    pub duplicate: f64,
    /// Message delay bounds, in nanoseconds.
    pub delay_min: u64,
    pub delay_max: u64,
    /// Chance that a message is ten times slower than its draw.
    pub slow: f64,
    /// Mean time between partition changes, if partitions are on.
    pub partition_every: Option<u64>,
    /// Mean time between crashes, if crashes are on.
    pub crash_every: Option<u64>,
    pub downtime_max: u64,
    /// Whether a crash may take down a majority at once.
    pub crash_majority: bool,
    /// Chance that a node that just became leader crashes within a few milliseconds: leader
    /// churn, which exposes mistakes in handing over uncommitted entries (Raft's Figure 8).
    pub crash_new_leader: f64,
    pub clock_drift_ppm_max: i64,
    pub clock_offset_max: u64,
    pub fsync_min: u64,
    pub fsync_max: u64,
    pub torn_writes: bool,
    /// Mean time between reconfigurations, if the reconfiguration nemesis runs.
    pub reconfig_every: Option<u64>,
    /// Mean time between process pauses, if pauses are on, and the longest pause.
    pub pause_every: Option<u64>,
    pub pause_max: u64,
    /// Chance that a step which persists, or sends to two peers or more, or an fsync
    /// completion, is a crash point.
    pub crash_point: f64,
    /// The same for a step that moved the node to a higher term (a vote, a candidacy).
    pub crash_point_elects: f64,
    /// Chance that a message a leader (any node, in protocols without leaders) sends is
    /// delivered again, seconds later.
    pub stale: f64,
}

const MS: u64 = 1_000_000;

impl FaultPlan {
    pub fn draw(faults: Faults, rng: &mut Rng) -> FaultPlan {
        let mut plan = FaultPlan {
            loss: 0.0,
            duplicate: 0.0,
            delay_min: MS / 2,
            delay_max: 2 * MS,
            slow: 0.0,
            partition_every: None,
            crash_every: None,
            downtime_max: 0,
            crash_majority: false,
            crash_new_leader: 0.0,
            clock_drift_ppm_max: 0,
            clock_offset_max: 0,
            fsync_min: MS / 10,
            fsync_max: MS / 2,
            torn_writes: false,
            reconfig_every: None,
            pause_every: None,
            pause_max: 0,
            crash_point: 0.0,
            crash_point_elects: 0.0,
            stale: 0.0,
        };
        if faults.loss {
            plan.loss = rng.unit() * 0.15;
        }
        if faults.duplicate {
            plan.duplicate = rng.unit() * 0.10;
        }
        if faults.reorder {
            plan.delay_min = rng.between(MS / 10, MS);
            plan.delay_max = plan.delay_min + rng.between(MS, 40 * MS);
            plan.slow = rng.unit() * 0.05;
        }
        if faults.partition && rng.chance(0.9) {
            plan.partition_every = Some(rng.between(150 * MS, 1500 * MS));
        }
        if faults.crash && rng.chance(0.9) {
            plan.crash_every = Some(rng.between(200 * MS, 2000 * MS));
            plan.downtime_max = rng.between(50 * MS, 2000 * MS);
            plan.crash_majority = rng.chance(0.2);
            if rng.chance(0.5) {
                plan.crash_new_leader = rng.unit() * 0.5;
            }
        }
        if faults.clock {
            plan.clock_drift_ppm_max = rng.between(0, 100_000) as i64;
            plan.clock_offset_max = rng.between(0, 10_000 * MS);
        }
        if faults.disk {
            plan.fsync_min = rng.between(MS / 20, MS);
            plan.fsync_max = plan.fsync_min + rng.between(0, 20 * MS);
            plan.torn_writes = true;
        }
        plan
    }

    /// Draws the intensities of the faults beyond [`Faults::classic`] from their own stream
    /// (`rng`), so that a run without them draws exactly as it did before they existed.
    pub fn draw_beyond_classic(&mut self, faults: Faults, rng: &mut Rng) {
        if (faults.pause || faults.pause_requests_first) && rng.chance(0.9) {
            self.pause_every = Some(rng.between(300 * MS, 2000 * MS));
            // Up to many election timeouts of every protocol here (150 to 300 ms for Raft),
            // within a client's patience (3 s).
            self.pause_max = rng.between(400 * MS, 2500 * MS);
        }
        if faults.crash_points && rng.chance(0.9) {
            self.crash_point = rng.unit() * 0.004;
            self.crash_point_elects = rng.unit() * 0.2;
            if self.downtime_max == 0 {
                self.downtime_max = rng.between(50 * MS, 1000 * MS);
            }
        }
        if faults.stale {
            self.stale = rng.unit() * 0.05;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_print() {
        assert_eq!(Faults::parse("all").unwrap(), Faults::all());
        assert_eq!(Faults::parse("classic").unwrap(), Faults::classic());
        assert_eq!(Faults::parse("none").unwrap(), Faults::none());
        let some = Faults::parse("crash, partition").unwrap();
        assert!(some.crash && some.partition && !some.loss);
        assert_eq!(some.to_string(), "partition,crash");
        assert_eq!(Faults::all().to_string(), "all");
        assert_eq!(Faults::classic().to_string(), "classic");
        let all = Faults::all();
        assert!(all.pause && all.crash_points && !all.stale && !all.clock_beyond_bound);
        assert!(!Faults::classic().pause && !Faults::classic().crash_points);
        let more = Faults::parse("all,stale,clock-beyond-bound").unwrap();
        assert!(more.stale && more.clock_beyond_bound && more.pause && more.loss);
        assert_eq!(
            more.to_string(),
            "loss,duplicate,reorder,partition,crash,clock,disk,pause,crash-points,\
             clock-beyond-bound,stale"
        );
        assert_eq!(Faults::parse(&more.to_string()).unwrap(), more);
        let first = Faults::parse("classic,pause-requests-first").unwrap();
        assert!(first.pause_requests_first && !first.pause && !all.pause_requests_first);
        assert_eq!(
            first.to_string(),
            "loss,duplicate,reorder,partition,crash,clock,disk,pause-requests-first"
        );
        let err = Faults::parse("crash,meteor").unwrap_err();
        assert!(err.contains("unknown fault \"meteor\""), "{err}");
    }

    #[test]
    fn read_mixes_parse_and_print() {
        let mix = ReadMix::parse("linearizable=1, local=3,sync=2").unwrap();
        assert_eq!((mix.linearizable, mix.local, mix.sync), (1, 3, 2));
        assert_eq!(mix.to_string(), "linearizable=1,local=3,sync=2");
        assert_eq!(ReadMix::parse("local").unwrap().local, 1);
        assert!(ReadMix::parse("linearizable")
            .unwrap()
            .is_linearizable_only());
        assert!(ReadMix::parse("stale")
            .unwrap_err()
            .contains("unknown read mode"));
        assert!(ReadMix::parse("local=x")
            .unwrap_err()
            .contains("not a non-negative"));
        assert!(ReadMix::parse("local=0").unwrap_err().contains("no weight"));
    }

    #[test]
    fn impossible_configurations_are_refused() {
        let mut config = SimConfig {
            nodes: 0,
            ..SimConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("--nodes"));
        config.nodes = 3;
        config.workload.clients = 0;
        assert!(config.validate().unwrap_err().contains("--clients"));
    }
}
