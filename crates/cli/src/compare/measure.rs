//! What one comparison run measured, read from its report and client history, and the row
//! that sums a protocol's runs.
//!
//! Every number here is counted in the run: latencies and throughput from the times the
//! clients recorded, messages, bytes and fsyncs from the simulator's counters, staleness and
//! discarded writes from the checkers' counters, which consistency models held from the
//! judge's verdicts ([`quorate_check::judge`], as `quorate sim` and `quorate check` use it).

use quorate_check::{Event, EventKind, Mode, OpValue};
use quorate_sim::{ModelTally, RunReport, Summary};
use std::collections::BTreeMap;

/// Width of a throughput-over-time bin, in nanoseconds of simulated time.
pub const BIN: u64 = 100_000_000;

/// The measurements of one seeded run (its history is dropped after these are taken).
#[derive(Clone, Debug, Default)]
pub struct RunMeasures {
    /// Latency of every acknowledged client operation, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Acknowledged client operations completed within the fault phase.
    pub ops_in_phase: u64,
    /// Acknowledged client operations per [`BIN`] of the fault phase.
    pub timeline: Vec<u64>,
    /// Simulated time from the leader crash to the first acknowledged write invoked after it
    /// (`None`: no crash, or no write succeeded again within the run).
    pub unavailability: Option<u64>,
    /// The crash happened but no write invoked after it was acknowledged before the run ended.
    pub never_recovered: bool,
    /// Reads that returned two siblings or more (concurrent writes kept side by side).
    pub sibling_reads: u64,
}

/// Whether `value` writes (every operation but a read).
fn is_write(value: &OpValue) -> bool {
    !matches!(value, OpValue::Get(_) | OpValue::Siblings(_))
}

/// The measurements of `report`, whose fault phase lasted `phase` nanoseconds.
pub fn measure(report: &RunReport, phase: u64) -> RunMeasures {
    let crash_at = report.stats.leader_crash.map(|crash| crash.at);
    let bins = phase.div_ceil(BIN) as usize;
    let mut measures = RunMeasures {
        timeline: vec![0; bins],
        ..RunMeasures::default()
    };
    // Each history process runs one operation at a time: its last invocation is pending.
    let mut pending: BTreeMap<u64, &Event> = BTreeMap::new();
    let mut first_write_after: Option<u64> = None;
    for event in report.history.iter().filter(|e| e.mode != Mode::Final) {
        match event.kind {
            EventKind::Invoke => {
                pending.insert(event.process, event);
            }
            EventKind::Ok => {
                let Some(invoke) = pending.remove(&event.process) else {
                    continue;
                };
                measures.latencies.push(event.time - invoke.time);
                if event.time < phase {
                    measures.ops_in_phase += 1;
                    measures.timeline[(event.time / BIN) as usize] += 1;
                }
                if matches!(&event.value, OpValue::Siblings(values) if values.len() >= 2) {
                    measures.sibling_reads += 1;
                }
                let after_crash = crash_at.is_some_and(|at| invoke.time >= at);
                if after_crash && is_write(&invoke.value) && first_write_after.is_none() {
                    first_write_after = Some(event.time);
                }
            }
            EventKind::Fail | EventKind::Info => {
                pending.remove(&event.process);
            }
        }
    }
    if let Some(at) = crash_at {
        measures.unavailability = first_write_after.map(|t| t - at);
        measures.never_recovered = first_write_after.is_none();
    }
    measures
}

/// One protocol at one cluster size, over every seed: a row of the comparison.
#[derive(Clone, Debug)]
pub struct Row {
    pub protocol: &'static str,
    pub nodes: usize,
    pub seeds: u64,
    pub ops_ok: u64,
    pub ops_fail: u64,
    pub ops_info: u64,
    /// Acknowledged operations per second of simulated time, over the fault phase.
    pub throughput: f64,
    /// Latency quantiles of acknowledged operations, in milliseconds (p50, p99, p99.9).
    pub latency_ms: [f64; 3],
    /// 101 latency quantiles (0%, 1%, ... 100%), in milliseconds, for the CDF plot.
    pub latency_cdf_ms: Vec<f64>,
    pub messages_per_op: f64,
    pub bytes_per_op: f64,
    pub fsyncs_per_op: f64,
    /// Over the runs where the leader crashed: mean and worst unavailability, in
    /// milliseconds, and how many runs saw writes succeed again.
    pub unavailability_ms: Option<(f64, f64)>,
    pub crashed_runs: u64,
    /// Of those, the runs where the crashed node claimed leadership (the others crashed node
    /// 1 of a leaderless protocol).
    pub crashed_leader_runs: u64,
    pub recovered_runs: u64,
    /// Reads sent to random replicas, and the stale ones among them.
    pub local_reads: u64,
    pub local_reads_stale: u64,
    /// Per consistency model: runs where it held, failed, was undecided; whether promised.
    pub models: Vec<(&'static str, ModelTally)>,
    /// Last-write-wins: acknowledged puts, and those another write's stamp discarded.
    pub lww_puts_acked: Option<u64>,
    pub lww_discarded: Option<u64>,
    pub sibling_reads: u64,
    pub violations: u64,
    pub failed_seeds: Vec<u64>,
    /// Mean acknowledged operations per second in each [`BIN`] of the fault phase.
    pub timeline: Vec<f64>,
}

/// Sums the runs of one protocol at one cluster size.
pub fn row(
    protocol: &'static str,
    nodes: usize,
    runs: &[(RunReport, RunMeasures)],
    phase: u64,
) -> Row {
    let reports: Vec<RunReport> = runs.iter().map(|(r, _)| r.clone()).collect();
    let summary = Summary::of(&reports);
    let sum = |f: fn(&RunReport) -> u64| reports.iter().map(f).sum::<u64>();
    let client_ops = runs
        .iter()
        .map(|(_, m)| m.latencies.len() as u64)
        .sum::<u64>();
    let per_op = |total: u64| total as f64 / client_ops.max(1) as f64;
    let mut latencies: Vec<u64> = runs.iter().flat_map(|(_, m)| m.latencies.clone()).collect();
    latencies.sort_unstable();
    let quantile = |q: f64| quantile_ms(&latencies, q);
    let crashed: Vec<&RunMeasures> = runs
        .iter()
        .filter(|(r, _)| r.stats.leader_crash.is_some())
        .map(|(_, m)| m)
        .collect();
    let outages: Vec<u64> = crashed.iter().filter_map(|m| m.unavailability).collect();
    let unavailability_ms = (!outages.is_empty()).then(|| {
        let mean = outages.iter().sum::<u64>() as f64 / outages.len() as f64 / 1e6;
        let worst = *outages.iter().max().expect("not empty") as f64 / 1e6;
        (mean, worst)
    });
    let seconds = phase as f64 / 1e9;
    let bins = phase.div_ceil(BIN) as usize;
    let timeline = (0..bins)
        .map(|b| {
            let total: u64 = runs.iter().map(|(_, m)| m.timeline[b]).sum();
            total as f64 / runs.len().max(1) as f64 / (BIN as f64 / 1e9)
        })
        .collect();
    let ops_in_phase: u64 = runs.iter().map(|(_, m)| m.ops_in_phase).sum();
    Row {
        protocol,
        nodes,
        seeds: summary.runs,
        ops_ok: summary.ops_ok,
        ops_fail: summary.ops_fail,
        ops_info: summary.ops_info,
        throughput: ops_in_phase as f64 / runs.len().max(1) as f64 / seconds,
        latency_ms: [quantile(0.50), quantile(0.99), quantile(0.999)],
        latency_cdf_ms: (0..=100).map(|p| quantile(p as f64 / 100.0)).collect(),
        messages_per_op: per_op(sum(|r| r.stats.messages_sent)),
        bytes_per_op: per_op(sum(|r| r.stats.message_bytes)),
        fsyncs_per_op: per_op(sum(|r| r.stats.fsyncs)),
        unavailability_ms,
        crashed_runs: crashed.len() as u64,
        crashed_leader_runs: runs
            .iter()
            .filter(|(r, _)| r.stats.leader_crash.is_some_and(|c| c.was_leader))
            .count() as u64,
        recovered_runs: outages.len() as u64,
        local_reads: summary.counter("local_reads"),
        local_reads_stale: summary.counter("local_reads_stale"),
        models: summary
            .models
            .iter()
            .map(|(name, tally)| (*name, *tally))
            .collect(),
        lww_puts_acked: summary.counters.get("lww_puts_acked").copied(),
        lww_discarded: summary.counters.get("lww_discarded_hlc").copied(),
        sibling_reads: runs.iter().map(|(_, m)| m.sibling_reads).sum(),
        violations: summary.violations,
        failed_seeds: summary.failed_seeds,
        timeline,
    }
}

/// The `q` quantile of sorted nanoseconds, in milliseconds (0 when there are none).
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1e6
}

impl Row {
    /// Share of local reads that were stale (`None` without local reads).
    pub fn stale_rate(&self) -> Option<f64> {
        (self.local_reads > 0).then(|| self.local_reads_stale as f64 / self.local_reads as f64)
    }

    /// The row as JSON, with the table's fields and the plots' series.
    pub fn to_json(&self) -> serde_json::Value {
        let models: serde_json::Map<String, serde_json::Value> = self
            .models
            .iter()
            .map(|(name, t)| {
                let tally = serde_json::json!({
                    "held": t.satisfied,
                    "violated": t.violated,
                    "unknown": t.unknown,
                    "promised": t.promised,
                });
                (name.to_string(), tally)
            })
            .collect();
        serde_json::json!({
            "protocol": self.protocol,
            "nodes": self.nodes,
            "seeds": self.seeds,
            "ops_ok": self.ops_ok,
            "ops_fail": self.ops_fail,
            "ops_info": self.ops_info,
            "throughput_ops_per_s": self.throughput,
            "latency_p50_ms": self.latency_ms[0],
            "latency_p99_ms": self.latency_ms[1],
            "latency_p999_ms": self.latency_ms[2],
            "messages_per_op": self.messages_per_op,
            "bytes_per_op": self.bytes_per_op,
            "fsyncs_per_op": self.fsyncs_per_op,
            "crashed_runs": self.crashed_runs,
            "crashed_leader_runs": self.crashed_leader_runs,
            "recovered_runs": self.recovered_runs,
            "unavailability_mean_ms": self.unavailability_ms.map(|u| u.0),
            "unavailability_max_ms": self.unavailability_ms.map(|u| u.1),
            "local_reads": self.local_reads,
            "local_reads_stale": self.local_reads_stale,
            "stale_read_rate": self.stale_rate(),
            "models": models,
            "lww_puts_acked": self.lww_puts_acked,
            "lww_discarded": self.lww_discarded,
            "sibling_reads": self.sibling_reads,
            "violations": self.violations,
            "failed_seeds": self.failed_seeds,
            "latency_cdf_ms": self.latency_cdf_ms,
            "timeline_ops_per_s": self.timeline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_sim::LeaderCrashed;

    const MS: u64 = 1_000_000;

    fn event(process: u64, kind: EventKind, value: OpValue, time: u64) -> Event {
        Event {
            process,
            kind,
            key: Some("k0".into()),
            value,
            time,
            node: None,
            error: None,
            mode: Mode::Linearizable,
        }
    }

    fn put(process: u64, kind: EventKind, time: u64) -> Event {
        event(
            process,
            kind,
            OpValue::Put(format!("{process}.{time}")),
            time,
        )
    }

    /// A run whose leader crashed at 1 s: a write in flight then completes at 1.05 s (the old
    /// leader's reply was on its way), reads go on, and the first write invoked after the
    /// crash is acknowledged at 1.4 s.
    fn crashed_run() -> RunReport {
        let mut report = RunReport::panicked("raft", 7, String::new(), Default::default());
        report.stats.leader_crash = Some(LeaderCrashed {
            at: 1000 * MS,
            node: 2,
            was_leader: true,
        });
        let siblings = OpValue::Siblings(vec!["a".into(), "b".into()]);
        report.history = vec![
            put(1, EventKind::Invoke, 990 * MS),
            event(2, EventKind::Invoke, OpValue::Get(None), 995 * MS),
            put(1, EventKind::Ok, 1050 * MS),
            event(2, EventKind::Ok, siblings, 1100 * MS),
            put(1, EventKind::Invoke, 1200 * MS),
            put(3, EventKind::Invoke, 1250 * MS),
            put(3, EventKind::Fail, 1300 * MS),
            put(1, EventKind::Ok, 1400 * MS),
            put(4, EventKind::Invoke, 1500 * MS),
            put(4, EventKind::Ok, 2500 * MS),
        ];
        report
    }

    #[test]
    fn unavailability_runs_to_the_first_write_invoked_after_the_crash() {
        let measures = measure(&crashed_run(), 2000 * MS);
        // Not 50 ms (a write acknowledged by the old leader), not the read: 400 ms.
        assert_eq!(measures.unavailability, Some(400 * MS));
        assert!(!measures.never_recovered);
        assert_eq!(
            measures.latencies,
            vec![60 * MS, 105 * MS, 200 * MS, 1000 * MS]
        );
        // The last completion falls after the 2 s phase: not counted in throughput.
        assert_eq!(measures.ops_in_phase, 3);
        assert_eq!(measures.timeline.len(), 20);
        assert_eq!(
            measures.timeline[10] + measures.timeline[11] + measures.timeline[14],
            3
        );
        assert_eq!(measures.sibling_reads, 1);
    }

    #[test]
    fn a_run_without_a_crash_or_without_recovery_says_so() {
        let mut report = crashed_run();
        report.history.truncate(7);
        let measures = measure(&report, 2000 * MS);
        assert_eq!(measures.unavailability, None);
        assert!(measures.never_recovered);
        report.stats.leader_crash = None;
        let measures = measure(&report, 2000 * MS);
        assert!(measures.unavailability.is_none() && !measures.never_recovered);
    }

    #[test]
    fn quantiles_pick_ranks_of_sorted_samples() {
        let samples: Vec<u64> = (1..=1000).map(|ms| ms * 1_000_000).collect();
        assert_eq!(quantile_ms(&samples, 0.0), 1.0);
        assert_eq!(quantile_ms(&samples, 0.5), 501.0);
        assert_eq!(quantile_ms(&samples, 0.999), 999.0);
        assert_eq!(quantile_ms(&samples, 1.0), 1000.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
