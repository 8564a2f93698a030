//! The change feed under faults (`quorate_sim::feed`): every node runs the server's
//! `ChangeFeed` over its applied store, and the simulator checks agreement (one revision, one
//! command), contiguity (no gap, no repeat within a feed), completeness (every acknowledged
//! write is a change) and resumable watchers.
//!
//! Each check is shown to bite: on stores and feeds built by hand (a store that goes back, two
//! stores that disagree, changes that skip or repeat a revision, a watcher answered out of
//! order, a write acknowledged but never applied), and on deliberately broken protocols the
//! other checks miss or catch later. Then every log protocol runs clean under every fault.

use bytes::Bytes;
use quorate_check::{Event as HistoryEvent, EventKind, Mode, OpValue};
use quorate_core::kv::{Change, ChangeFeed, Compacted, Event};
use quorate_core::{ClientId, Command, KvStore, Op};
use quorate_sim::feed::{CatchUp, FeedCheck};

fn put(kv: &mut KvStore, seq: u64, key: &str, value: &str) {
    kv.apply(&Command {
        client: ClientId(1),
        seq,
        op: Op::Put {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        },
    });
}

fn set(revision: u64, n: u32, key: &str, value: &str) -> Change {
    Change {
        revision,
        n,
        key: Bytes::copy_from_slice(key.as_bytes()),
        event: Event::Set,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
    }
}

fn feed() -> ChangeFeed {
    ChangeFeed::new(100, usize::MAX)
}

fn fires(found: &[String], what: &str) {
    assert!(
        found.iter().any(|v| v.contains(what)),
        "expected a violation with {what:?}, got {found:?}"
    );
}

#[test]
fn two_nodes_that_applied_different_commands_at_one_revision_disagree() {
    let mut check = FeedCheck::new();
    let (mut a, mut b) = (KvStore::default(), KvStore::default());
    put(&mut a, 1, "k", "1");
    put(&mut b, 1, "k", "1");
    put(&mut a, 2, "k", "2");
    put(&mut b, 2, "k", "3");
    assert!(check.catch_up(1, &mut feed(), &a).is_empty());
    let found = check.catch_up(2, &mut feed(), &b);
    fires(
        &found,
        "emitted revision 2 as [set k=\"3\"] but it was [set k=\"2\"]",
    );
    // Revision 1 agreed: one violation only.
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_store_that_goes_back_repeats_revisions_in_its_feed() {
    let mut check = FeedCheck::new();
    let mut kv = KvStore::default();
    put(&mut kv, 1, "k", "1");
    let earlier = kv.clone(); // At revision 1, holding no changes.
    put(&mut kv, 2, "k", "2");
    put(&mut kv, 3, "k", "3");
    let mut node = feed();
    assert!(check.catch_up(1, &mut node, &kv).is_empty());
    // The store is replaced by an older one (a stale snapshot), then applies again.
    let found = check.catch_up(1, &mut node, &earlier);
    fires(&found, "went back from revision 3 to 1");
    // A fresh feed (a restarted node) may start anywhere: no violation.
    let mut again = earlier.clone();
    put(&mut again, 2, "k", "2");
    assert!(check.catch_up(1, &mut feed(), &again).is_empty());
}

#[test]
fn changes_that_skip_or_repeat_a_revision_break_contiguity() {
    let mut check = FeedCheck::new();
    let skip = [set(1, 0, "a", "1"), set(3, 0, "b", "3")];
    let found = check.caught_up(
        1,
        CatchUp {
            before: 0,
            after: 3,
            continued: true,
            fresh: &skip,
        },
    );
    fires(&found, "emitted revision 3 after 1 (a gap; expected 2)");
    let repeat = [set(3, 0, "b", "3")];
    let found = check.caught_up(
        2,
        CatchUp {
            before: 3,
            after: 3,
            continued: true,
            fresh: &repeat,
        },
    );
    fires(
        &found,
        "emitted revision 3 after 3 (a duplicate; expected 4)",
    );
    let misnumbered = [set(4, 0, "c", "4"), set(4, 0, "d", "4")];
    let found = check.caught_up(
        1,
        CatchUp {
            before: 3,
            after: 4,
            continued: true,
            fresh: &misnumbered,
        },
    );
    fires(&found, "numbered [0, 0]");
    // Starting over (a compaction) may skip ahead, declared.
    let ahead = [set(9, 0, "e", "9")];
    let step = CatchUp {
        before: 4,
        after: 9,
        continued: false,
        fresh: &ahead,
    };
    assert!(check.caught_up(1, step).is_empty());
    assert_eq!(check.starts_over, 1);
}

#[test]
fn a_watcher_is_held_to_its_stream() {
    let mut check = FeedCheck::new();
    let mut kv = KvStore::default();
    for i in 1..=5 {
        put(&mut kv, i, &format!("k{i}"), &i.to_string());
    }
    let mut node = ChangeFeed::new(3, usize::MAX);
    assert!(check.catch_up(1, &mut node, &kv).is_empty());
    let who = || "watcher 0".to_string();
    // Behind the window: a declared gap, resumed from the oldest revision kept.
    let (after, found) = check.read(who, 0, node.read(0, 10));
    assert!(found.is_empty(), "{found:?}");
    assert_eq!((after, check.compacted_reads), (2, 1));
    let (after, found) = check.read(who, after, node.read(after, 2));
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(after, 4);
    // An answer that skips a revision, or differs from what the feeds emitted.
    let (_, found) = check.read(who, 2, Ok(vec![set(4, 0, "k4", "4")]));
    fires(&found, "read revision 4 right after 2");
    let (_, found) = check.read(who, 3, Ok(vec![set(4, 0, "k4", "other")]));
    fires(
        &found,
        "read revision 4 as [set k4=\"other\"] but it was [set k4=\"4\"]",
    );
    let (_, found) = check.read(who, 5, Ok(vec![set(6, 0, "k6", "6")]));
    fires(&found, "which no feed emitted");
    let (_, found) = check.read(who, 4, Err(Compacted { oldest: 2 }));
    fires(&found, "was told revision 4 is compacted");
}

fn ok(key: &str, value: OpValue) -> HistoryEvent {
    HistoryEvent {
        process: 7,
        kind: EventKind::Ok,
        key: Some(key.into()),
        value,
        time: 0,
        node: Some(1),
        error: None,
        mode: Mode::Linearizable,
    }
}

#[test]
fn an_acknowledged_write_no_feed_emitted_is_incomplete() {
    let mut check = FeedCheck::new();
    let mut kv = KvStore::default();
    put(&mut kv, 1, "k", "1");
    kv.apply(&Command {
        client: ClientId(1),
        seq: 2,
        op: Op::Append {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"2,"),
        },
    });
    kv.apply(&Command {
        client: ClientId(1),
        seq: 3,
        op: Op::DeleteIf {
            key: Bytes::from_static(b"k"),
            expected: Bytes::from_static(b"12,"),
        },
    });
    assert!(check.catch_up(1, &mut feed(), &kv).is_empty());
    let history = [
        ok("k", OpValue::Put("1".into())),
        ok("k", OpValue::Append("2,".into())),
        ok("k", OpValue::DeleteIf("12,".into())),
        // Deletes may find the key absent: never looked for.
        ok("j", OpValue::Delete),
    ];
    assert_eq!(check.complete(&history), Vec::<String>::new());
    let lost = [
        ok("k", OpValue::Put("9".into())),
        ok("k", OpValue::Append("3,".into())),
        ok("k", OpValue::DeleteIf("1".into())),
    ];
    let found = check.complete(&lost);
    assert_eq!(found.len(), 3, "{found:?}");
    fires(&found, "no set of \"9\"");
    fires(&found, "no append of \"3,\"");
    fires(&found, "no del of the key holding \"1\"");
}

// ---------------------------------------------------------------------------------------
// Broken protocols.

use quorate_protocols::raft::Bug;
use quorate_protocols::zab;
use quorate_sim::{failures, run_many, Faults, Harness, RaftHarness, RunReport, SimConfig};
use quorate_sim::{ChainHarness, MultiPaxosHarness, PrimaryBackupHarness, ZabHarness};
use std::time::Duration;

fn runs<H: Harness>(
    harness: &H,
    config: &SimConfig,
    seeds: std::ops::Range<u64>,
) -> Vec<RunReport> {
    let seeds: Vec<u64> = seeds.collect();
    run_many(harness, config, &seeds, 2, |_| {})
}

/// Seeds whose first violation is the feed's, and all seeds that failed.
fn caught_by_feed(reports: &[RunReport]) -> (Vec<(u64, String)>, usize) {
    let failed = failures(reports);
    let by_feed: Vec<(u64, String)> = failed
        .iter()
        .filter(|(_, v)| v[0].starts_with("change feed:"))
        .map(|(seed, v)| (*seed, v[0].clone()))
        .collect();
    (by_feed, failed.len())
}

fn raft(bug: Bug) -> RaftHarness {
    let mut harness = RaftHarness::default();
    harness.config.bug = Some(bug);
    harness
}

/// Raft's stale snapshot (see `monotonicity.rs`): the follower's store goes back, so its feed
/// goes back. Without the monotonicity check, only the feed sees it.
#[test]
fn a_follower_installing_a_stale_snapshot_is_caught_by_the_feed() {
    let mut harness = raft(Bug::StaleSnapshot);
    harness.config.snapshot_threshold = 16;
    harness.config.snapshot_chunk_bytes = 64 * 1024;
    let config = |check_feed| SimConfig {
        nodes: 3,
        faults: Faults::classic(),
        duration: Duration::from_secs(3),
        check_monotonic: false,
        check_feed,
        ..SimConfig::default()
    };
    let (by_feed, failed) = caught_by_feed(&runs(&harness, &config(true), 0..300));
    eprintln!(
        "stale snapshot: feed first on {} of {failed} failing seeds: {:?}",
        by_feed.len(),
        by_feed.first()
    );
    assert!(!by_feed.is_empty());
    assert!(
        by_feed.iter().all(|(_, v)| v.contains("went back")),
        "{by_feed:?}"
    );
    let missed = failures(&runs(&harness, &config(false), 0..300));
    assert!(missed.is_empty(), "{missed:?}");
}

fn ttl_config(faults: Faults, check_feed: bool) -> SimConfig {
    let mut config = SimConfig {
        duration: Duration::from_secs(2),
        faults,
        check_feed,
        ..SimConfig::default()
    };
    config.workload.put_ttl = Some(Duration::from_millis(100));
    config.workload.mix.append = 0;
    config
}

/// Followers that skip `Expired` entries count one revision fewer than the leader for each:
/// their feeds disagree with the leader's from the first one on, long before one of them
/// leads and answers an expired key (what the history check waits for).
#[test]
fn followers_that_ignore_expiry_disagree_in_their_feeds() {
    let harness = raft(Bug::FollowerIgnoresExpiry);
    let faults = Faults {
        crash: true,
        partition: true,
        ..Faults::none()
    };
    let reports = runs(&harness, &ttl_config(faults, true), 0..24);
    let (by_feed, failed) = caught_by_feed(&reports);
    eprintln!(
        "follower ignores expiry: feed first on {} of {failed} failing seeds: {:?}",
        by_feed.len(),
        by_feed.first()
    );
    assert!(!by_feed.is_empty());
    let without = failures(&runs(&harness, &ttl_config(faults, false), 0..24));
    eprintln!("without the feed: {} seeds fail", without.len());
}

/// A ZAB follower that answers a forwarded write when the proposal arrives, before it is
/// committed: a write acknowledged and then lost with its leader is in no feed.
#[test]
fn writes_answered_before_they_are_applied_are_missing_from_the_feeds() {
    let mut harness = ZabHarness::default();
    harness.config.bug = Some(zab::Bug::ReplyBeforeApply);
    let config = |check_feed, check_history| {
        let mut config = SimConfig {
            duration: Duration::from_secs(3),
            check_feed,
            check_history,
            ..SimConfig::default()
        };
        config.workload.reads = ZabHarness::READS;
        config
    };
    let reports = runs(&harness, &config(true, true), 0..40);
    let (by_feed, failed) = caught_by_feed(&reports);
    eprintln!(
        "reply before apply: feed first on {} of {failed} failing seeds: {:?}",
        by_feed.len(),
        by_feed
    );
    let without = failures(&runs(&harness, &config(false, true), 0..40));
    eprintln!("without the feed: {} seeds fail", without.len());
}
