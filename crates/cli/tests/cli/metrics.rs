//! What a real Raft cluster's metrics say about replication: requests waiting for their
//! answer (`quorate_proposals_pending`), committed entries not yet applied
//! (`quorate_apply_lag`), and on the leader how far each follower's acknowledged position is
//! behind (`quorate_follower_lag{follower="N"}`), while followers are stopped with SIGSTOP
//! and resumed with SIGCONT.
//!
//! Every process is signalled by its PID; if the test fails, a guard kills the nodes by PID
//! (a stopped node ignores the cluster's SIGTERM) before the cluster's own guard runs.

use crate::cluster::{connect, leader, signal, start_cluster_with, NodeInfo, SLOW_ELECTIONS};
use crate::support::{sample, scrape, KillOnPanic};
use nix::sys::signal::Signal;
use redis::{Commands, RedisResult};
use std::time::{Duration, Instant};

/// The node's id, from its config file's name (`n2.toml`).
fn id(node: &NodeInfo) -> u64 {
    let stem = node.config.file_stem().unwrap().to_string_lossy();
    stem[1..].parse().unwrap()
}

/// The leader's lag for follower `id`, `None` if its page has no such line.
fn follower_lag(page: &str, id: u64) -> Option<u64> {
    sample(page, &format!("quorate_follower_lag{{follower=\"{id}\"}}"))
}

/// Scrapes `node` until `ok` holds for its page, for at most `within`; returns the page.
fn wait_for_page(
    node: &NodeInfo,
    within: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let page = scrape(node.metrics);
        if ok(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not within {within:?}:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `SET` of `count` keys on `leader`, each acknowledged.
fn write(leader: &NodeInfo, prefix: &str, count: usize) {
    let mut con = connect(leader.client).expect("the leader accepts a connection");
    for i in 0..count {
        let r: RedisResult<()> = con.set(format!("{prefix}{i}"), i);
        r.unwrap_or_else(|e| panic!("SET {prefix}{i} on the leader: {e}"));
    }
}

#[test]
fn the_leader_counts_waiting_proposals_and_a_stopped_followers_lag_grows_until_it_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    // Election timeouts of 2-3 s: with both followers stopped for a moment, the leader keeps
    // leading (check-quorum deposes it after an election timeout at the earliest), so its
    // waiting proposal stays waiting until they resume.
    let (cluster, nodes) = start_cluster_with(&dir, 3, &SLOW_ELECTIONS);
    let _guard = KillOnPanic(nodes.iter().map(|n| n.pid).collect());
    let l = leader(&nodes, Duration::from_secs(30));
    let followers: Vec<&NodeInfo> = (0..3).filter(|i| *i != l).map(|i| &nodes[i]).collect();
    let (leader, stopped, running) = (&nodes[l], followers[0], followers[1]);
    write(leader, "a", 20);

    // Every node exports the new gauges; once the writes are replicated, the leader has one
    // lag line per follower, both 0, and nothing waits.
    let settled = |page: &str| {
        followers
            .iter()
            .all(|f| follower_lag(page, id(f)) == Some(0))
            && sample(page, "quorate_proposals_pending") == Some(0)
            && sample(page, "quorate_apply_lag") == Some(0)
    };
    let page = wait_for_page(leader, Duration::from_secs(10), "a settled leader", settled);
    assert_eq!(page.matches("\nquorate_follower_lag{").count(), 2, "{page}");
    assert_eq!(page.matches("# TYPE quorate_follower_lag gauge").count(), 1);
    for f in &followers {
        let page = scrape(f.metrics);
        assert!(
            sample(&page, "quorate_proposals_pending").is_some(),
            "{page}"
        );
        assert!(sample(&page, "quorate_apply_lag").is_some(), "{page}");
        assert!(!page.contains("quorate_follower_lag"), "{page}");
    }

    // One follower stopped: the cluster writes on, and its lag on the leader grows by at
    // least the entries written since (it can acknowledge none of them), while the other's
    // returns to 0.
    signal(stopped.pid, Signal::SIGSTOP);
    write(leader, "b", 100);
    let page = wait_for_page(
        leader,
        Duration::from_secs(10),
        "the running follower caught up",
        |p| follower_lag(p, id(running)) == Some(0),
    );
    let lag = follower_lag(&page, id(stopped)).expect("a line for the stopped follower");
    assert!(
        lag >= 100,
        "the stopped follower is only {lag} behind:\n{page}"
    );

    // Both followers stopped: a SET waits on the leader, which counts it, until they resume.
    signal(running.pid, Signal::SIGSTOP);
    let client = leader.client;
    let waiting = std::thread::spawn(move || {
        let mut con = connect(client).expect("the leader accepts a connection");
        let r: RedisResult<()> = con.set("c", "waits");
        r
    });
    wait_for_page(leader, Duration::from_secs(5), "a pending proposal", |p| {
        sample(p, "quorate_proposals_pending").is_some_and(|n| n >= 1)
    });
    signal(running.pid, Signal::SIGCONT);
    signal(stopped.pid, Signal::SIGCONT);
    waiting
        .join()
        .unwrap()
        .expect("the waiting SET is acknowledged once a follower resumes");

    // Resumed, the stopped follower catches up: its lag falls back to 0, and nothing waits.
    wait_for_page(
        leader,
        Duration::from_secs(15),
        "the resumed follower caught up",
        settled,
    );
    cluster.stop();
}
