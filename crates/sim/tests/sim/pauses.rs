//! Process pauses (issue 15, "faults that are too polite"): a node stops for several election
//! timeouts while its clock runs on, then handles everything that queued up meanwhile — the
//! classic GC-pause split brain. A Raft leader that runs its lease from when acknowledgements
//! *arrive* rather than from when it *sent* the round they acknowledge (`Bug::LeaseFromAck`)
//! looks correct while messages are prompt: no classic fault (loss, duplication, reordering,
//! partitions, crashes, clock drift, slow disks) catches it. After a pause, the resumed leader
//! handles its followers' old acknowledgements first, believes it holds a fresh lease, and
//! answers reads from before the newer leader's writes. Measured over seeds 0..1000 (10
//! clients, 2 keys): 9 seeds catch it with pauses (first: seed 10), none without.

use quorate_protocols::raft::Bug;
use quorate_sim::{failures, run_many, Faults, RaftHarness, SimConfig};

const SEEDS: std::ops::Range<u64> = 0..1000;

fn caught(faults: Faults) -> Vec<u64> {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(Bug::LeaseFromAck);
    let mut config = SimConfig {
        faults,
        ..SimConfig::default()
    };
    config.workload.clients = 10;
    config.workload.keys = 2;
    let seeds: Vec<u64> = SEEDS.collect();
    let reports = run_many(&harness, &config, &seeds, 2, |_| {});
    let summary = quorate_sim::Summary::of(&reports);
    eprintln!(
        "{faults}: {} pauses, {} crashes; lease reads {:?}",
        summary.pauses,
        summary.crashes,
        summary.counters.get("lease_reads")
    );
    let failed = failures(&reports);
    for (seed, violations) in failed.iter().take(3) {
        eprintln!("  seed {seed}: {violations:?}");
    }
    failed.into_iter().map(|(seed, _)| seed).collect()
}

#[test]
fn a_lease_run_from_the_acknowledgements_is_caught_by_pauses_only() {
    let classic = caught(Faults::classic());
    let paused = caught(Faults {
        pause: true,
        ..Faults::classic()
    });
    eprintln!(
        "seeds {SEEDS:?} catching Bug::LeaseFromAck: {} under the classic faults {classic:?}, \
         {} with pauses too (first: {:?})",
        classic.len(),
        paused.len(),
        paused.first()
    );
    assert!(classic.is_empty(), "classic faults caught it: {classic:?}");
    assert!(!paused.is_empty(), "pauses did not catch the broken lease");
}

/// A resumed process does not promise to read its connections in the order their bytes
/// arrived: the runtime polls client and peer sockets as it likes. `pause-requests-first`
/// (opt-in) hands a resumed node the client requests that queued first, before the messages
/// that did. That reaches a chain tail (a CRAQ node) that answers reads without its
/// confirmation round (`primary_backup::Bug::ReadSkipsConfirmation`) at the protocol's
/// default timeouts: the tail was paused, the head cut it out and the new tail acknowledged a
/// write, and the old tail takes a read queued by a client still connected to it before the
/// new view's messages that reached it earlier. Measured over seeds 0..300 (3 nodes, 10
/// clients, 2 keys, network faults and pauses): chain 3 seeds with it (first: 126), none with
/// in-order pauses; CRAQ 9 (first: 8) and none. Over 0..1000, before refused candidates
/// stopped resetting view-change timers (which moved every schedule): 11 and 1 (457), 13 and
/// 1 (639). About 1 s of CPU per sweep.
#[test]
fn a_chain_tail_that_skips_its_round_is_caught_when_a_resumed_node_takes_requests_first() {
    use quorate_protocols::primary_backup::Bug as PbBug;
    let caught = |craq: bool, faults: &str| -> Vec<u64> {
        let mut harness = quorate_sim::ChainHarness::new(craq);
        harness.config.bug = Some(PbBug::ReadSkipsConfirmation);
        let mut config = SimConfig {
            nodes: 3,
            faults: Faults::parse(faults).expect("valid faults"),
            ..SimConfig::default()
        };
        config.workload.clients = 10;
        config.workload.keys = 2;
        let seeds: Vec<u64> = (0..300).collect();
        let reports = run_many(&harness, &config, &seeds, 2, |_| {});
        failures(&reports).into_iter().map(|(s, _)| s).collect()
    };
    let network = "partition,loss,reorder,duplicate";
    for craq in [false, true] {
        let name = if craq { "craq" } else { "chain" };
        let in_order = caught(craq, &format!("{network},pause"));
        let requests_first = caught(craq, &format!("{network},pause-requests-first"));
        eprintln!(
            "{name}: seeds 0..300 catching ReadSkipsConfirmation: {} with in-order pauses \
             {in_order:?}, {} with pause-requests-first {requests_first:?}",
            in_order.len(),
            requests_first.len()
        );
        assert!(
            requests_first.len() >= 3 * in_order.len().max(1),
            "{name}: requests first should catch it in far more seeds: {} vs {}",
            requests_first.len(),
            in_order.len()
        );
    }
}
