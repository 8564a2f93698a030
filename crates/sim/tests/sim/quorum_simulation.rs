//! The quorum store under the simulator: linearizable with write-back over many seeds and
//! every fault, stale reads measured when quorums are partial, and proof that the checks bite
//! (reads without write-back, and deliberately broken variants, are caught).

use quorate_protocols::quorum::{Bug, Preset, QuorumConfig};
use quorate_sim::{run, run_many, QuorumHarness, RunReport, SimConfig, Summary};
use std::time::Duration;

fn config() -> SimConfig {
    SimConfig {
        duration: Duration::from_secs(3),
        ..SimConfig::default()
    }
}

fn harness(config: QuorumConfig) -> QuorumHarness {
    QuorumHarness { config, nodes: 5 }
}

fn runs(harness: &QuorumHarness, seeds: std::ops::Range<u64>) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, &config(), &seeds, 2, |_| {})
}

fn assert_clean(reports: &[RunReport]) {
    let failed: Vec<_> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .collect();
    for report in &failed {
        eprintln!("seed {}: {:?}", report.seed, report.violations);
    }
    assert!(
        failed.is_empty(),
        "{} seeds failed; replay with quorate sim --protocol quorum --seed N --trace",
        failed.len()
    );
}

fn model(report: &RunReport, name: &str) -> Option<bool> {
    report
        .models
        .iter()
        .find(|m| m.model == name)
        .and_then(|m| m.satisfied)
}

#[test]
fn abd_quorums_are_linearizable_and_converge_over_many_seeds_with_every_fault() {
    let reports = runs(&harness(QuorumConfig::default()), 2000..2150);
    assert_clean(&reports);
    for report in &reports {
        assert_eq!(
            model(report, "linearizable"),
            Some(true),
            "seed {}",
            report.seed
        );
        assert_eq!(
            model(report, "convergence"),
            Some(true),
            "seed {}",
            report.seed
        );
    }
    assert_eq!(Summary::of(&reports).counter("stale_reads"), 0);
    let ok: u64 = reports.iter().map(|r| r.ops_ok).sum();
    assert!(ok > 10_000, "only {ok} operations succeeded");
    for counter in [
        "write_backs",
        "one_round_reads",
        "anti_entropy_repairs",
        "unavailable",
    ] {
        assert!(
            Summary::of(&reports).counter(counter) > 0,
            "no {counter} in 150 runs: the check is vacuous"
        );
    }
    let crashes: u64 = reports.iter().map(|r| r.stats.crashes).sum();
    assert!(crashes > 100, "{crashes} crashes");
}

#[test]
fn the_seeds_presets_are_linearizable() {
    for preset in [
        Preset::Strong,
        Preset::ReadOptimized,
        Preset::WriteOptimized,
    ] {
        let reports = runs(&harness(QuorumConfig::preset(preset)), 0..40);
        assert_clean(&reports);
    }
}

#[test]
fn reads_without_write_back_are_caught_and_write_back_removes_the_inversions() {
    // Read-optimized quorums (N=5, R=2, W=4) leave the widest window between a write reaching
    // its first replica and reaching a read quorum.
    let regular = QuorumConfig {
        write_back: false,
        read_repair: false,
        ..QuorumConfig::preset(Preset::ReadOptimized)
    };
    let reports = runs(&harness(regular.clone()), 0..300);
    assert_clean(&reports); // Linearizability is measured here, not promised.
    let inverted: Vec<u64> = reports
        .iter()
        .filter(|r| model(r, "linearizable") == Some(false))
        .map(|r| r.seed)
        .collect();
    assert!(
        !inverted.is_empty(),
        "no seed of 300 caught a new/old inversion"
    );
    eprintln!("non-linearizable without write-back: seeds {inverted:?}");
    let abd = QuorumConfig {
        write_back: true,
        ..regular
    };
    let reports = runs(&harness(abd), 0..300);
    assert_clean(&reports);
    assert!(reports
        .iter()
        .all(|r| model(r, "linearizable") == Some(true)));
}

#[test]
fn partial_quorums_converge_and_report_their_stale_reads() {
    let partial = QuorumConfig {
        r: 1,
        w: 1,
        allow_partial: true,
        write_back: false,
        ..QuorumConfig::default()
    };
    let reports = runs(&harness(partial), 0..60);
    assert_clean(&reports);
    let (stale, reads) = (
        Summary::of(&reports).counter("stale_reads"),
        Summary::of(&reports).counter("reads_checked"),
    );
    assert!(stale > 0 && stale < reads, "{stale} stale reads of {reads}");
}

#[test]
fn sloppy_quorums_hand_their_hints_back_and_converge() {
    let sloppy = QuorumConfig {
        allow_partial: true,
        sloppy: true,
        ..QuorumConfig::default()
    };
    let reports = runs(&harness(sloppy), 0..60);
    assert_clean(&reports);
    assert!(Summary::of(&reports).counter("hints_stored") > 0);
    assert!(Summary::of(&reports).counter("hints_handed_off") > 0);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let h = harness(QuorumConfig::default());
    let first = run(&h, &config(), 99, None);
    let second = run(&h, &config(), 99, None);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.history, second.history);
}

fn caught(bug: Bug, seeds: std::ops::Range<u64>) -> Vec<(u64, Vec<String>)> {
    let config = QuorumConfig {
        bug: Some(bug),
        ..QuorumConfig::default()
    };
    runs(&harness(config), seeds)
        .into_iter()
        .filter(|r| !r.violations.is_empty())
        .map(|r| (r.seed, r.violations))
        .collect()
}

#[test]
fn versions_without_a_writer_id_are_caught() {
    let failed = caught(Bug::VersionWithoutWriter, 0..50);
    assert!(
        !failed.is_empty(),
        "the seed's latest + 1 versions went unnoticed"
    );
    assert!(
        failed
            .iter()
            .any(|(_, v)| v.iter().any(|v| v.contains("version uniqueness"))),
        "{failed:?}"
    );
}

#[test]
fn acknowledging_before_persisting_is_caught() {
    // The history check alone catches a lost acknowledged write in about one seed in 1,500
    // (anti-entropy repairs the replica quickly); the persist-before-acknowledging property
    // catches the mistake at the first acknowledgement.
    let failed = caught(Bug::AckBeforePersist, 0..3);
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed[0].1[0].contains("persist before acknowledging"),
        "{failed:?}"
    );
}
