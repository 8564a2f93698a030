//! Simulator speed: simulated events per second of one core, for 5-node clusters of each
//! protocol under every fault, without the end-of-run history check (which is the checker's
//! benchmark).
//!
//! `cargo bench -p quorate-sim --bench simulator`; criterion reports the throughput in
//! elements per second, where an element is one simulated event. Compare protocols by their
//! ratio to Raft measured in the same run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorate_protocols::quorum::QuorumConfig;
use quorate_sim::{
    run, ChainHarness, Faults, Harness, MultiPaxosHarness, MultiPrimaryHarness, PaxosHarness,
    PrimaryBackupHarness, QuorumHarness, RaftHarness, ResolveMode, SimConfig, ZabHarness,
};
use std::time::Duration;

fn five_nodes_all_faults<H: Harness>(c: &mut Criterion, harness: &H, config: &SimConfig) {
    let seeds: Vec<u64> = (0..16).collect();
    let events: u64 = seeds
        .iter()
        .map(|seed| run(harness, config, *seed, None).stats.events)
        .sum();
    let mut group = c.benchmark_group("simulator");
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    let name = format!("{}_5_nodes_all_faults_16_seeds", harness.name());
    group.bench_function(name, |b| {
        b.iter(|| {
            for seed in &seeds {
                criterion::black_box(run(harness, config, *seed, None));
            }
        })
    });
    group.finish();
}

/// The settings every protocol's benchmark shares.
fn config() -> SimConfig {
    SimConfig {
        nodes: 5,
        faults: Faults::all(),
        duration: Duration::from_secs(4),
        check_history: false,
        ..SimConfig::default()
    }
}

fn raft_five_nodes_all_faults(c: &mut Criterion) {
    five_nodes_all_faults(c, &RaftHarness::default(), &config());
}

fn multipaxos_five_nodes_all_faults(c: &mut Criterion) {
    five_nodes_all_faults(c, &MultiPaxosHarness::default(), &config());
}

fn paxos_five_nodes_all_faults(c: &mut Criterion) {
    five_nodes_all_faults(c, &PaxosHarness::default(), &config());
}

/// ZAB with its default read mix (plain, sync and linearizable reads), as `quorate sim`
/// runs it.
fn zab_five_nodes_all_faults(c: &mut Criterion) {
    let mut config = config();
    config.workload.reads = ZabHarness::READS;
    five_nodes_all_faults(c, &ZabHarness::default(), &config);
}

/// Primary-backup and chain replication with `quorate sim`'s default share of local reads.
fn view_stamped_config() -> SimConfig {
    let mut config = config();
    config.workload.local_reads = 0.2;
    config
}

fn primary_backup_five_nodes_all_faults(c: &mut Criterion) {
    five_nodes_all_faults(c, &PrimaryBackupHarness::default(), &view_stamped_config());
}

fn chain_five_nodes_all_faults(c: &mut Criterion) {
    five_nodes_all_faults(c, &ChainHarness::new(false), &view_stamped_config());
}

/// Quorums with N=3, R=2, W=2 on 5 nodes, reads linearizable by write-back.
fn quorum_five_nodes_all_faults(c: &mut Criterion) {
    let harness = QuorumHarness {
        config: QuorumConfig::default(),
        nodes: 5,
    };
    five_nodes_all_faults(c, &harness, &config());
}

/// Multi-primary with dotted version vectors (siblings).
fn multiprimary_five_nodes_all_faults(c: &mut Criterion) {
    let harness = MultiPrimaryHarness::new(ResolveMode::VersionVectors);
    five_nodes_all_faults(c, &harness, &config());
}

criterion_group!(
    benches,
    raft_five_nodes_all_faults,
    multipaxos_five_nodes_all_faults,
    paxos_five_nodes_all_faults,
    zab_five_nodes_all_faults,
    primary_backup_five_nodes_all_faults,
    chain_five_nodes_all_faults,
    quorum_five_nodes_all_faults,
    multiprimary_five_nodes_all_faults
);
criterion_main!(benches);
