//! One verdict: for every protocol, judging the exported history with `quorate_check::judge`
//! (what `quorate check` does with the file `quorate sim --history` writes) gives the verdict
//! the simulator gave the run, and a deliberately broken protocol is called broken by both.
//!
//! The simulator calls the same `judge` on its in-memory history, so what this test guards is
//! the export: every event, read mode and answering node must survive JSON lines, and the
//! header must name the promise the run was judged by.

use quorate_check::history::{header_line, parse, Format};
use quorate_check::linearizability::Limits;
use quorate_check::{judge, Promise, Validity};
use quorate_protocols::multiprimary::Bug;
use quorate_protocols::quorum::{Preset, QuorumConfig};
use quorate_sim::{
    run, ChainHarness, Harness, MultiPaxosHarness, MultiPrimaryHarness, PaxosHarness,
    PrimaryBackupHarness, QuorumHarness, RaftHarness, ResolveMode, SimConfig, ZabHarness,
};
use std::time::Duration;

const SEEDS: std::ops::Range<u64> = 0..30;

fn config() -> SimConfig {
    let mut config = SimConfig {
        duration: Duration::from_secs(2),
        ..SimConfig::default()
    };
    config.workload.local_reads = 0.2;
    config
}

/// What `quorate sim --history` writes.
fn export(promise: Promise, report: &quorate_sim::RunReport) -> String {
    let mut text = header_line(promise.name()) + "\n";
    for event in &report.history {
        text += &event.to_json_line();
        text.push('\n');
    }
    text
}

/// Runs `seeds` and checks that the exported history gets the run's verdict; returns the
/// seeds whose history broke the promise.
fn same_verdict<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seeds: std::ops::Range<u64>,
) -> Vec<u64> {
    let mut broken = Vec::new();
    for seed in seeds {
        let report = run(harness, config, seed, None);
        let name = harness.name();
        assert!(
            report.aborted.is_none(),
            "{name} seed {seed}: {:?}",
            report.violations
        );
        assert!(
            report.ops_ok > 0,
            "{name} seed {seed}: a history worth judging"
        );
        let sim = report.judgement.clone().expect("the run was judged");
        let parsed = parse(&export(report.promise, &report), Format::Auto).expect("it parses");
        assert_eq!(
            parsed.events, report.history,
            "{name} seed {seed}: the export is lossless"
        );
        let promise = Promise::parse(parsed.promise.as_deref().expect("a header")).unwrap();
        assert_eq!(promise, harness.promise());
        let check = judge(&parsed.events, promise, &Limits::default());
        assert_eq!(check.validity(), sim.validity(), "{name} seed {seed}");
        assert_eq!(check.models, sim.models, "{name} seed {seed}");
        assert_eq!(check.violations, sim.violations, "{name} seed {seed}");
        // Every violation of the history is one of the run's.
        for violation in &sim.violations {
            assert!(report.violations.contains(violation), "{name} seed {seed}");
        }
        if check.validity() == Validity::Invalid {
            broken.push(seed);
        }
    }
    broken
}

#[test]
fn consensus_and_primary_backup_histories_get_the_simulators_verdict() {
    let config = config();
    assert!(same_verdict(&RaftHarness::default(), &config, SEEDS).is_empty());
    assert!(same_verdict(&MultiPaxosHarness::default(), &config, SEEDS).is_empty());
    assert!(same_verdict(&PaxosHarness::default(), &config, SEEDS).is_empty());
    assert!(same_verdict(&PrimaryBackupHarness::default(), &config, SEEDS).is_empty());
    assert!(same_verdict(&ChainHarness::new(false), &config, SEEDS).is_empty());
    assert!(same_verdict(&ChainHarness::new(true), &config, SEEDS).is_empty());
}

#[test]
fn zab_histories_keep_their_read_modes() {
    let mut config = config();
    config.workload.reads = ZabHarness::READS;
    assert!(same_verdict(&ZabHarness::default(), &config, SEEDS).is_empty());
}

#[test]
fn quorum_histories_keep_their_final_reads() {
    let config = config();
    let strict = QuorumHarness {
        config: QuorumConfig::default(),
        nodes: 5,
    };
    assert_eq!(strict.promise(), Promise::Quorum);
    assert!(same_verdict(&strict, &config, SEEDS).is_empty());
    let sloppy = QuorumHarness {
        config: QuorumConfig {
            write_back: false,
            read_repair: false,
            sloppy: true,
            allow_partial: true,
            ..QuorumConfig::preset(Preset::ReadOptimized)
        },
        nodes: 5,
    };
    assert_eq!(sloppy.promise(), Promise::QuorumSloppy);
    assert!(same_verdict(&sloppy, &config, SEEDS).is_empty());
}

#[test]
fn multi_primary_histories_get_the_simulators_verdict() {
    // As `quorate sim` runs them: reads at random replicas are what every read is here.
    let mut config = config();
    config.workload.local_reads = 0.0;
    for mode in [
        ResolveMode::Lww,
        ResolveMode::VersionVectors,
        ResolveMode::Crdt,
    ] {
        let harness = MultiPrimaryHarness::new(mode);
        let broken = same_verdict(&harness, &config, SEEDS);
        assert!(broken.is_empty(), "{mode:?}: seeds {broken:?}");
    }
}

/// A context that replaces every sibling loses concurrent writes: the simulator and the
/// exported history both say so.
#[test]
fn a_broken_resolver_is_broken_in_both() {
    let mut harness = MultiPrimaryHarness::new(ResolveMode::VersionVectors);
    harness.config.bug = Some(Bug::ContextReplacesAll);
    let broken = same_verdict(&harness, &config(), 0..6);
    assert!(!broken.is_empty(), "no seed of 6 lost a write");
}
