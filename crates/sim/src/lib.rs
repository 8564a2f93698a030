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
//!   safety properties. At the end, the history is checked against what the protocol
//!   promises: linearizability by default, per read mode where it differs (ZAB); the
//!   `ReadMode::Local` reads sent to random replicas (`Workload::local_reads`) are left out
//!   and their staleness is measured instead ([`staleness`]).
//! - **Reconfiguration** (`SimConfig::reconfig`): spare nodes start outside the cluster, and a
//!   nemesis adds and removes members, promotes learners, replaces the voters wholesale and
//!   transfers leadership while the other faults go on (for harnesses that support it).
//! - **Liveness phase**: after the fault phase every fault heals, and every client must
//!   complete an operation within a deadline.
//! - **Final reads** (protocols that ask for them, see [`Harness::final_reads`]): the cluster
//!   settles without clients, then every key is read on every node, so that convergence can
//!   be checked.
//! - **Consistency models** ([`Harness::check_run`]): each run reports the models it was
//!   checked against, promised (a failure is a violation) or only measured.

pub mod config;
pub mod convergence;
pub mod harness;
pub mod leaderless;
pub mod report;
pub mod rng;
pub mod staleness;

mod client;
mod nemesis;
mod node;
mod ordered_reads;
mod paxos_harness;
mod queue;
mod reconfig;
mod simulation;
mod workload;
mod zab;

pub use config::{Faults, Mix, ReadMix, SimConfig, Workload};
pub use harness::{
    linearizability, ChainHarness, ClientOps, Configuration, DiskCodec, Harness, HistoryVerdict,
    ModelCheck, PrimaryBackupHarness, RaftHarness, RunCheck, FINAL_READ_PROCESS,
};
pub use leaderless::{MultiPrimaryHarness, QuorumHarness, ResolveMode};
pub use paxos_harness::{MultiPaxosHarness, PaxosHarness};
pub use report::{failures, ModelTally, RunReport, RunStats, Summary};
pub use zab::ZabHarness;

/// Runs one seed. `trace`, if given, receives one line per event.
pub fn run<'a, H: Harness>(
    harness: &'a H,
    config: &'a SimConfig,
    seed: u64,
    trace: Option<&'a mut dyn FnMut(&str)>,
) -> RunReport {
    let config = harness.configure(config);
    let trace = trace.map(|trace| trace as &mut dyn FnMut(&str));
    simulation::Simulation::new(harness, &config, seed, trace).run(seed)
}

/// Runs `seeds` on `jobs` threads, calling `progress` after each run (from the calling
/// thread, in completion order). Reports come back in seed order.
pub fn run_many<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seeds: &[u64],
    jobs: usize,
    mut progress: impl FnMut(&RunReport),
) -> Vec<RunReport> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let mut reports: Vec<Option<RunReport>> = vec![None; seeds.len()];
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(index) else {
                    break;
                };
                let mut report = run(harness, config, *seed, None);
                report.history = Vec::new(); // Keep memory flat over many seeds.
                report.local_reads = Vec::new();
                if sender.send((index, report)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for (index, report) in receiver {
            progress(&report);
            reports[index] = Some(report);
        }
    });
    reports
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect()
}
