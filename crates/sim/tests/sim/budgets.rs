//! Per-seed budgets and panics (issue 15): a run that never ends, or one that panics, is a
//! failure reported with its seed, within its budget, and never hangs or aborts the batch.
//! The looping and panicking runs come from deliberately broken Raft variants (`bugs`).

use quorate_protocols::raft::Bug;
use quorate_sim::{run_many, Abort, Faults, RaftHarness, RunReport, SimConfig, Summary};
use std::time::{Duration, Instant};

fn harness(bug: Option<Bug>) -> RaftHarness {
    let mut harness = RaftHarness::default();
    harness.config.bug = bug;
    harness
}

fn config() -> SimConfig {
    SimConfig {
        nodes: 3,
        // The seed counts quoted (VERIFICATION.md) were measured under the classic faults;
        // `all` now adds pauses and crash points, which move them.
        faults: Faults::classic(),
        duration: Duration::from_secs(2),
        ..SimConfig::default()
    }
}

fn batch(harness: &RaftHarness, config: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, config, &seeds, 2, |_| {})
}

/// A node that re-sends its own durability notice forever never lets simulated time advance,
/// so no deadline of the run ever fires; the step budget ends every seed.
#[test]
fn a_looping_seed_is_reported_with_its_seed_when_its_step_budget_runs_out() {
    let config = SimConfig {
        events_max: 200_000,
        ..config()
    };
    let started = Instant::now();
    let reports = batch(&harness(Some(Bug::DurableLoop)), &config, 0..4);
    let wall = started.elapsed();
    for report in &reports {
        eprintln!("seed {}: {:?}", report.seed, report.violations);
        assert_eq!(
            report.aborted,
            Some(Abort::Steps { limit: 200_000 }),
            "seed {} was not stopped by its step budget: {:?}",
            report.seed,
            report.violations
        );
        assert!(report.violations[0].starts_with("budget:"));
        assert_eq!(report.stats.events, 200_000);
    }
    let summary = Summary::of(&reports);
    assert_eq!(summary.exhausted_seeds, vec![0, 1, 2, 3]);
    assert!(summary.panicked_seeds.is_empty());
    eprintln!("4 looping seeds stopped in {wall:?}");
    assert!(wall < Duration::from_secs(60), "{wall:?}");
}

/// The wall-clock budget stops the same loop when the step budget is out of reach.
#[test]
fn a_looping_seed_is_reported_with_its_seed_when_its_wall_budget_runs_out() {
    let config = SimConfig {
        events_max: u64::MAX,
        wall_max: Duration::from_millis(500),
        ..config()
    };
    let started = Instant::now();
    let reports = batch(&harness(Some(Bug::DurableLoop)), &config, 7..9);
    let wall = started.elapsed();
    for report in &reports {
        eprintln!("seed {}: {:?}", report.seed, report.violations);
        assert_eq!(
            report.aborted,
            Some(Abort::Wall {
                limit: Duration::from_millis(500)
            }),
            "seed {}",
            report.seed
        );
        assert!(report.wall >= Duration::from_millis(500));
    }
    assert_eq!(Summary::of(&reports).exhausted_seeds, vec![7, 8]);
    // Two seeds on two threads, 0.5 s each, plus the history check of a short history.
    assert!(wall < Duration::from_secs(20), "{wall:?}");
}

/// A follower that commits beyond the entries it holds panics when it applies them. The panic
/// is reported with its seed and message; the other seeds of the batch still run.
#[test]
fn a_panicking_seed_is_reported_with_its_seed_and_message_and_the_batch_goes_on() {
    let reports = batch(&harness(Some(Bug::CommitBeyondMatch)), &config(), 0..20);
    assert_eq!(reports.len(), 20, "every seed reported");
    let summary = Summary::of(&reports);
    eprintln!(
        "panicked: {:?}; failed: {:?}",
        summary.panicked_seeds, summary.failed_seeds
    );
    assert!(
        !summary.panicked_seeds.is_empty(),
        "no seed of 0..20 panicked"
    );
    for report in reports.iter().filter(|r| r.aborted.is_some()) {
        let Some(Abort::Panic { message }) = &report.aborted else {
            panic!("seed {}: {:?}", report.seed, report.aborted);
        };
        eprintln!("seed {}: panic: {message}", report.seed);
        assert!(message.contains("committed entries are held"), "{message}");
        assert!(report.violations.iter().any(|v| v.contains("panic at")));
    }
}

/// The budgets do not touch a correct run: the defaults leave ample room.
#[test]
fn correct_runs_stay_within_the_default_budgets() {
    let reports = batch(&harness(None), &config(), 0..4);
    for report in &reports {
        assert!(
            report.violations.is_empty() && report.aborted.is_none(),
            "seed {}: {:?}",
            report.seed,
            report.violations
        );
        assert!(report.stats.events < SimConfig::default().events_max / 10);
    }
}
