//! Transactions under faults, through the same code a server's `MULTI`/`EXEC`, `MGET` and
//! `WATCH` take: `Op::Txn`, `Op::GetMany` and `Op::Revisions` proposed to each log
//! protocol's nodes and applied by the same `KvStore`. The history records them as `txn`
//! events that the list-append checker holds to strict serializability, and a `WATCH` round
//! (revisions, `MGET`, guarded `EXEC`) as the reads it made followed by its appends: a guard
//! that lets a change through is a dependency cycle. A Raft leader that drops guards proves
//! the check is not vacuous.

use quorate_protocols::raft::Bug;
use quorate_sim::{
    run_many, ChainHarness, Faults, Harness, MultiPaxosHarness, PrimaryBackupHarness, RaftHarness,
    RunReport, SimConfig, ZabHarness,
};
use std::time::Duration;

fn txn_config(nodes: usize, clients: usize, keys: usize) -> SimConfig {
    let mut config = SimConfig {
        nodes,
        duration: Duration::from_secs(3),
        faults: Faults::all(),
        ..SimConfig::default()
    };
    config.workload.txns = true;
    config.workload.clients = clients;
    config.workload.keys = keys;
    config
}

/// Runs `seeds` and returns the reports, printing every failing seed.
fn batch<H: Harness + Sync>(
    harness: &H,
    config: &SimConfig,
    seeds: std::ops::Range<u64>,
) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    let reports = run_many(harness, config, &seeds, 2, |_| {});
    for (seed, violations) in quorate_sim::failures(&reports) {
        eprintln!(
            "{} seed {seed}: {violations:?}\n  replay: quorate sim --protocol {} --workload txn --seed {seed}",
            harness.name(),
            harness.name()
        );
    }
    reports
}

/// Every seed clean, its transactions judged (never "unknown"), and the workload did what it
/// is for: transactions of several keys committed, and `WATCH` rounds both committed and
/// aborted.
fn assert_clean(name: &str, reports: &[RunReport]) {
    let failed = quorate_sim::failures(reports);
    assert!(failed.is_empty(), "{name}: {} seeds failed", failed.len());
    for report in reports {
        let model = report
            .models
            .iter()
            .find(|m| m.model == "strict-serializable")
            .unwrap_or_else(|| panic!("{name} seed {}: transactions not judged", report.seed));
        assert_eq!(model.satisfied, Some(true), "{name} seed {}", report.seed);
    }
    let count = |name: &str| -> u64 {
        reports
            .iter()
            .map(|r| r.counters.get(name).copied().unwrap_or(0))
            .sum()
    };
    let (multi_key, failed) = (count("txns_multi_key"), count("txns_failed"));
    assert!(
        multi_key > 100,
        "{name}: only {multi_key} multi-key transactions"
    );
    assert!(failed > 0, "{name}: no WATCH round was ever aborted");
}

#[test]
fn raft_transactions_are_strict_serializable_under_every_fault() {
    let reports = batch(&RaftHarness::default(), &txn_config(3, 6, 3), 0..30);
    assert_clean("raft", &reports);
    let reports = batch(&RaftHarness::default(), &txn_config(5, 10, 2), 100..110);
    assert_clean("raft, two hot keys", &reports);
}

#[test]
fn every_log_protocol_commits_transactions_strict_serializably_under_every_fault() {
    let config = txn_config(3, 6, 3);
    assert_clean(
        "multipaxos",
        &batch(&MultiPaxosHarness::default(), &config, 0..12),
    );
    assert_clean("zab", &batch(&ZabHarness::default(), &config, 0..12));
    assert_clean(
        "primary-backup",
        &batch(&PrimaryBackupHarness::default(), &config, 0..12),
    );
    assert_clean("chain", &batch(&ChainHarness::new(false), &config, 0..12));
    assert_clean("craq", &batch(&ChainHarness::new(true), &config, 0..12));
}

#[test]
fn a_leader_that_drops_watch_guards_is_caught() {
    let mut broken = RaftHarness::default();
    broken.config.bug = Some(Bug::TxnDropsGuards);
    let config = txn_config(3, 8, 2);
    let reports = batch(&broken, &config, 0..20);
    let caught: Vec<_> = quorate_sim::failures(&reports)
        .into_iter()
        .filter(|(_, violations)| violations.iter().any(|v| v.starts_with("transactions:")))
        .collect();
    assert!(
        caught.len() >= 5,
        "only {} of 20 seeds caught a leader that drops guards",
        caught.len()
    );
    eprintln!(
        "caught by {} of 20 seeds, first: {:?}",
        caught.len(),
        caught[0]
    );
}

/// Transactions beside keys that expire, in one Raft run: half the operations are `SET PX`
/// writes and reads of registers (judged linearizable with their expiry windows), half
/// transactions (judged strict serializable), so expiry entries and transactions interleave
/// in one log under every fault.
#[test]
fn transactions_and_expiring_keys_share_a_raft_log_under_every_fault() {
    let mut config = txn_config(3, 8, 2);
    config.workload.put_ttl = Some(Duration::from_millis(100));
    config.workload.mix.append = 0;
    let reports = batch(&RaftHarness::default(), &config, 200..224);
    assert_clean("raft with expiring keys", &reports);
    for report in &reports {
        let linearizable = report.models.iter().find(|m| m.model == "linearizable");
        assert_eq!(
            linearizable.map(|m| m.satisfied),
            Some(Some(true)),
            "seed {}: the expiring registers were not judged",
            report.seed
        );
    }
}
