//! # quorate-sim: a deterministic, fault-injecting simulator
//!
//! Runs any [`Harness`] (a protocol plus its safety properties) as a cluster of nodes that
//! talk through a simulated network, write to simulated disks and read simulated clocks, while
//! simulated clients drive a key-value workload and record a history. In the spirit of
//! TigerBeetle's VOPR and FoundationDB's simulation:
//!
//! - **One seed, one run.** A single seeded PRNG is the only source of randomness; time is
//!   virtual. The same seed replays bit for bit (compare trace hashes).
//! - **Faults** ([`Faults`]): message loss, duplication, reordering and long delays; partitions
//!   (isolated node, minority/majority, one-way, bridge), often aimed at the leader; crashes
//!   that lose every write not yet fsynced (or keep an arbitrary prefix of them); clock offsets
//!   and drift; slow fsyncs. Intensities are drawn per seed (swarm testing).
//! - **Checks after every step**: the node's own invariants and the protocol's cluster-wide
//!   safety properties. At the end, the history is judged by what the protocol promises
//!   ([`Harness::promise`]) with [`quorate_check::judge`], the function `quorate check
//!   --promise` calls on an exported history: linearizability by default, per read mode where
//!   it differs (ZAB), convergence of final reads (leaderless); the reads sent to random
//!   replicas (`Workload::local_reads`) are measured for staleness instead. Every event
//!   records its read mode, so the exported history carries all the judge needs.
//! - **Reconfiguration** (`SimConfig::reconfig`): spare nodes start outside the cluster, and a
//!   nemesis adds and removes members, promotes learners, replaces the voters wholesale and
//!   transfers leadership while the other faults go on (for harnesses that support it).
//! - **Liveness phase**: after the fault phase every fault heals, and every client must
//!   complete an operation within a deadline.
//! - **Final reads** (protocols that ask for them, see [`Harness::final_reads`]): the cluster
//!   settles without clients, then every key is read on every node, so that convergence can
//!   be checked.
//! - **The change feed** ([`feed`]): every node with one applied store runs the server's
//!   `ChangeFeed`, checked after every step (one revision, one command, on every node; no gap
//!   or repeat within a feed; watchers that resume at other nodes) and at the end (every
//!   acknowledged write is a change).
//! - **Consistency models**: each run reports the models its promise checked, promised (a
//!   failure is a violation) or only measured.

pub mod config;
pub mod explore;
pub mod feed;
pub mod harness;
pub mod leaderless;
pub mod record;
pub mod report;
pub mod rng;
pub mod script;

mod client;
mod nemesis;
mod node;
mod paxos_harness;
mod queue;
mod reconfig;
mod simulation;
mod workload;
mod zab;

pub use config::{Faults, LeaderCrash, Mix, ReadMix, SimConfig, Workload};
pub use harness::{
    ChainHarness, ClientOps, Configuration, DiskCodec, Harness, ModelCheck, PrimaryBackupHarness,
    RaftHarness, FINAL_READ_PROCESS,
};
pub use leaderless::{MultiPrimaryHarness, QuorumHarness, ResolveMode};
pub use paxos_harness::{MultiPaxosHarness, PaxosHarness};
pub use report::{failures, Abort, LeaderCrashed, ModelTally, RunReport, RunStats, Summary};
pub use zab::ZabHarness;

/// Runs one seed. `trace`, if given, receives one line per event of the run's record (see
/// [`record`]).
///
/// Never panics and never runs past its budgets (`SimConfig::events_max`,
/// `SimConfig::wall_max`): a panic anywhere in the run, the end-of-run checks included, and a
/// spent budget come back as a failed report with the seed (see [`RunReport::aborted`]).
pub fn run<'a, H: Harness>(
    harness: &'a H,
    config: &'a SimConfig,
    seed: u64,
    trace: Option<&'a mut dyn FnMut(&str)>,
) -> RunReport {
    match trace {
        Some(trace) => run_observed(harness, config, seed, &mut |event| {
            trace(&event.to_string())
        }),
        None => run_with(harness, config, seed, None),
    }
}

/// Runs one seed, reporting every event of the run's record to `observer`: the same run as
/// [`run`] (same draws, same trace hash), seen as data.
pub fn run_observed<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seed: u64,
    observer: &mut dyn FnMut(&record::RunEvent),
) -> RunReport {
    run_with(harness, config, seed, Some(observer))
}

fn run_with<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seed: u64,
    observer: Option<&mut dyn FnMut(&record::RunEvent)>,
) -> RunReport {
    let started = std::time::Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let config = harness.configure(config);
        let observer = observer.map(|o| o as &mut dyn FnMut(&record::RunEvent));
        simulation::Simulation::new(harness, &config, seed, observer).run(seed)
    }));
    outcome.unwrap_or_else(|panic| {
        let message = simulation::panic_message(panic.as_ref());
        RunReport::panicked(harness.name(), seed, message, started.elapsed())
    })
}

/// Runs `seeds` on `jobs` threads, calling `progress` after each run (from the calling
/// thread, in completion order). Reports come back in seed order.
///
/// Every seed is bounded by its budgets (see [`run`]). A seed that outlives them anyway can
/// only be stuck inside a single step or check, which the simulator cannot interrupt; it is
/// named on standard error, with its seed, as soon as that is clear.
pub fn run_many<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seeds: &[u64],
    jobs: usize,
    mut progress: impl FnMut(&RunReport),
) -> Vec<RunReport> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Mutex};
    use std::time::{Duration, Instant};
    let next = AtomicUsize::new(0);
    let running: Mutex<Vec<(u64, Instant)>> = Mutex::new(Vec::new());
    let stuck_after = config.wall_max + config.check_time_limit + Duration::from_secs(30);
    let (sender, receiver) = mpsc::channel();
    let mut reports: Vec<Option<RunReport>> = vec![None; seeds.len()];
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let sender = sender.clone();
            let (next, running) = (&next, &running);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(index) else {
                    break;
                };
                lock(running).push((*seed, Instant::now()));
                let mut report = run(harness, config, *seed, None);
                lock(running).retain(|(s, _)| s != seed);
                report.history = Vec::new(); // Keep memory flat over many seeds.
                if sender.send((index, report)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        let mut named: Vec<u64> = Vec::new();
        loop {
            match receiver.recv_timeout(Duration::from_secs(1)) {
                Ok((index, report)) => {
                    progress(&report);
                    reports[index] = Some(report);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    for (seed, since) in lock(&running).iter() {
                        if since.elapsed() > stuck_after && !named.contains(seed) {
                            named.push(*seed);
                            eprintln!(
                                "seed {seed}: still running after {:?}, past its budgets: stuck \
                                 inside one step or check (replay it alone with its seed)",
                                since.elapsed()
                            );
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    reports
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect()
}

/// Locks `mutex`, also after a panic elsewhere (runs catch their own panics).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
