//! What one operation costs each protocol in a fault-free run: messages, message bytes and
//! fsyncs per completed operation, held to a band around what the protocol's design says
//! (measured and explained in VERIFICATION.md, "Cost per operation"), and the same cost in
//! a run twice as long, so that no cost grows with the history. A change that makes a
//! protocol send twice the messages, ship whole logs on heartbeats or sync on every read
//! is a regression no safety check sees.

use quorate_sim::{
    ChainHarness, Faults, Harness, MultiPaxosHarness, MultiPrimaryHarness, PaxosHarness,
    PrimaryBackupHarness, QuorumHarness, RaftHarness, ResolveMode, SimConfig, ZabHarness,
};
use std::time::Duration;

/// Messages, message bytes and fsyncs per completed operation over `seeds` fault-free runs
/// of `secs` simulated seconds.
#[derive(Debug, Clone, Copy)]
struct Cost {
    messages: f64,
    bytes: f64,
    fsyncs: f64,
    ops: u64,
}

fn cost<H: Harness>(harness: &H, secs: u64) -> Cost {
    let config = SimConfig {
        nodes: 3,
        faults: Faults::none(),
        duration: Duration::from_secs(secs),
        count_message_bytes: true,
        ..SimConfig::default()
    };
    let (mut messages, mut bytes, mut fsyncs, mut ops) = (0, 0, 0, 0);
    for seed in 0..2 {
        let report = quorate_sim::run(harness, &config, seed, None);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        messages += report.stats.messages_sent;
        bytes += report.stats.message_bytes;
        fsyncs += report.stats.fsyncs;
        ops += report.ops_ok;
    }
    let per_op = |n: u64| n as f64 / ops as f64;
    Cost {
        messages: per_op(messages),
        bytes: per_op(bytes),
        fsyncs: per_op(fsyncs),
        ops,
    }
}

/// What each protocol costs per completed operation, measured (session 40) with this file's
/// workload: the simulator's default mix (reads, writes, appends, CAS, deletes) from its
/// default clients, 3 nodes, no faults, seeds 0 and 1, 2 simulated seconds. Each cost must
/// stay within [`BAND`] of it. Why each is what it is: VERIFICATION.md, "Cost per operation".
const EXPECTED: [(&str, Cost); 9] = [
    ("raft", Cost::new(4.30, 93.1, 2.16)),
    ("multipaxos", Cost::new(7.16, 177.4, 3.46)),
    ("paxos", Cost::new(1.78, 34.7, 0.98)),
    ("zab", Cost::new(9.53, 182.8, 3.64)),
    ("primary-backup", Cost::new(5.11, 113.5, 2.11)),
    ("chain", Cost::new(6.63, 131.5, 2.06)),
    ("craq", Cost::new(6.96, 138.3, 2.15)),
    ("quorum", Cost::new(8.58, 161.9, 1.60)),
    ("multiprimary", Cost::new(1.00, 32.6, 1.24)),
];

/// How far a cost may move from [`EXPECTED`] before the test asks for a look: a quarter up
/// or a fifth down (a change that saves a fifth is worth updating the table for).
const BAND: (f64, f64) = (0.8, 1.25);

/// How far the cost of a run twice as long may differ from the short run's: a cost that
/// grows with the history (a heartbeat that carries the whole log, a digest over every
/// key ever written) moves it beyond this.
const GROWTH: (f64, f64) = (0.9, 1.1);

impl Cost {
    const fn new(messages: f64, bytes: f64, fsyncs: f64) -> Cost {
        Cost {
            messages,
            bytes,
            fsyncs,
            ops: 0,
        }
    }

    fn parts(&self) -> [(&'static str, f64); 3] {
        [
            ("messages", self.messages),
            ("message bytes", self.bytes),
            ("fsyncs", self.fsyncs),
        ]
    }
}

/// Checks `name`'s cost against [`EXPECTED`] and its growth; answers what is out of bounds.
fn judge<H: Harness>(name: &str, harness: &H) -> Vec<String> {
    let expected = EXPECTED.iter().find(|(n, _)| *n == name).expect("a row").1;
    let short = cost(harness, 2);
    let long = cost(harness, 4);
    assert!(short.ops > 500, "{name}: only {} operations", short.ops);
    let mut found = Vec::new();
    for (((what, got), (_, want)), (_, longer)) in short
        .parts()
        .into_iter()
        .zip(expected.parts())
        .zip(long.parts())
    {
        let ratio = got / want;
        if !(BAND.0..=BAND.1).contains(&ratio) {
            found.push(format!(
                "{name}: {got:.2} {what} per operation, expected about {want:.2} ({ratio:.2}x)"
            ));
        }
        let growth = longer / got;
        if !(GROWTH.0..=GROWTH.1).contains(&growth) {
            found.push(format!(
                "{name}: {what} per operation grow with the run: {got:.2} in 2 s, {longer:.2} \
                 in 4 s ({growth:.2}x)"
            ));
        }
    }
    found
}

#[test]
fn each_protocol_costs_what_its_design_says_per_operation_and_no_more_as_runs_grow() {
    let quorum = QuorumHarness {
        config: quorate_protocols::quorum::QuorumConfig::default(),
        nodes: 3,
    };
    let found: Vec<String> = [
        judge("raft", &RaftHarness::default()),
        judge("multipaxos", &MultiPaxosHarness::default()),
        judge("paxos", &PaxosHarness::default()),
        judge("zab", &ZabHarness::default()),
        judge("primary-backup", &PrimaryBackupHarness::default()),
        judge("chain", &ChainHarness::new(false)),
        judge("craq", &ChainHarness::new(true)),
        judge("quorum", &quorum),
        judge("multiprimary", &MultiPrimaryHarness::new(ResolveMode::Lww)),
    ]
    .concat();
    assert!(found.is_empty(), "{found:#?}");
}

/// Raft's row with one knob turned, and what the bands say of it.
fn raft_with(turn: impl Fn(&mut RaftHarness)) -> Vec<String> {
    let mut harness = RaftHarness::default();
    turn(&mut harness);
    judge("raft", &harness)
}

#[test]
fn the_bands_bite() {
    let out_of_band = |found: &[String], what: &str| {
        let needle = format!(" {what} per operation, expected");
        assert!(
            found.iter().any(|f| f.contains(&needle)),
            "{what}: {found:?}"
        );
    };
    // Every read through a ReadIndex round instead of the lease: 1.35x the messages.
    out_of_band(&raft_with(|h| h.config.lease_reads = false), "messages");
    // Heartbeats eight times as often: 1.29x the bytes.
    let chatty = raft_with(|h| h.config.heartbeat_interval /= 8);
    out_of_band(&chatty, "message bytes");
    // A snapshot after every entry: 1.74x the fsyncs.
    out_of_band(&raft_with(|h| h.config.snapshot_threshold = 1), "fsyncs");
}

#[test]
fn the_growth_check_bites() {
    let grows = |found: &[String], what: &str| {
        let needle = format!(" {what} per operation grow with the run");
        found.iter().any(|f| f.contains(&needle))
    };
    // Nothing compacts the log: each entry is still sent once, so no cost grows.
    let uncompacted = |h: &mut RaftHarness| h.config.snapshot_threshold = u64::MAX;
    let correct = raft_with(uncompacted);
    assert!(!grows(&correct, "message bytes"), "{correct:?}");
    // Heartbeats that carry the whole log again grow with it.
    let broken = raft_with(|h| {
        uncompacted(h);
        h.config.bug = Some(quorate_protocols::raft::Bug::HeartbeatCarriesLog);
    });
    eprintln!("uncompacted: {correct:?}\nwith the bug: {broken:?}");
    assert!(grows(&broken, "message bytes"), "{broken:?}");
}
