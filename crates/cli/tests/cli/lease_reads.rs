//! Lease reads on a real Raft cluster (`--tuning lease_reads=true`, thesis §6.4.1).
//!
//! With both followers stopped (SIGSTOP), a leader serving reads by ReadIndex cannot answer a
//! GET (the read needs a quorum's echo of a heartbeat round), while a leader holding a lease
//! answers it at once from its own state. Once the lease has run out the same leader must not
//! answer: check-quorum has deposed it by then. The election timeout is 2-3 s, so the lease
//! (2 s shortened by the 5% drift bound) leaves a wide margin on both sides of each check.
//!
//! Every process is signalled by its PID; a guard kills the nodes by PID if the test fails (a
//! stopped node ignores the cluster's SIGTERM).

use crate::cluster::{connect, leader, signal, start_cluster_with, NodeInfo, SLOW_ELECTIONS};
use crate::support::{KillOnPanic, Proc};
use nix::sys::signal::Signal;
use redis::{Commands, RedisResult};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A 3-node Raft cluster with 2-3 s election timeouts and the given extra tuning; the nodes
/// and the leader's index.
fn cluster(dir: &std::path::Path, extra: &[&str]) -> (Proc, Vec<NodeInfo>, usize) {
    let mut tuning = SLOW_ELECTIONS.to_vec();
    tuning.extend_from_slice(extra);
    let (cluster, nodes) = start_cluster_with(dir, 3, &tuning);
    let l = leader(&nodes, Duration::from_secs(30));
    (cluster, nodes, l)
}

/// A connection to `node` whose session is open: its first read went through the log (a
/// session's first request is logged), so later reads take the read path under test.
fn reader(node: &NodeInfo) -> redis::Connection {
    let mut con = connect(node.client).expect("the node accepts a connection");
    let r: RedisResult<Option<String>> = con.get("opens-the-session");
    r.expect("a first GET while every node runs");
    con
}

/// `GET key` on `con` from another thread; its answer arrives on the receiver.
fn get_in_background(
    mut con: redis::Connection,
    key: &'static str,
) -> mpsc::Receiver<RedisResult<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(con.get(key));
    });
    rx
}

fn followers(nodes: &[NodeInfo], leader: usize) -> Vec<i32> {
    (0..nodes.len())
        .filter(|i| *i != leader)
        .map(|i| nodes[i].pid)
        .collect()
}

/// What a failed check needs to be understood: how long since the followers stopped, the
/// leader's role and term now, each stopped process's state, and where the logs are.
fn diagnosis(
    nodes: &[NodeInfo],
    leader: usize,
    stopped: &[i32],
    since: Instant,
    dir: &Path,
) -> String {
    let status = crate::cluster::info(nodes[leader].client).map(|text| {
        let field = |name| crate::cluster::field(&text, name).unwrap_or_default();
        format!("role {} term {}", field("role"), field("term"))
    });
    let states: Vec<_> = stopped
        .iter()
        .map(|pid| format!("{pid}: {:?}", crate::cluster::process_state(*pid)))
        .collect();
    format!(
        "{:?} after the followers stopped; the leader (node {}) reports {status:?}; stopped \
         processes {states:?}; node logs kept in {}",
        since.elapsed(),
        leader + 1,
        dir.display()
    )
}

#[test]
fn a_lease_read_needs_no_quorum_while_the_lease_lasts_and_is_refused_after() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, nodes, l) = cluster(&tmp.path().join("c"), &["--tuning", "lease_reads=true"]);
    let _guard = KillOnPanic(nodes.iter().map(|n| n.pid).collect());
    let mut con = connect(nodes[l].client).expect("the leader accepts a connection");
    let r: RedisResult<()> = con.set("k", "v");
    r.expect("SET on the leader");
    let (early, late) = (reader(&nodes[l]), reader(&nodes[l]));
    // A few heartbeat rounds, so the lease starts from an acknowledged round.
    std::thread::sleep(Duration::from_millis(300));

    let stopped = followers(&nodes, l);
    for pid in &stopped {
        signal(*pid, Signal::SIGSTOP);
    }
    let since = Instant::now();
    let answer = get_in_background(early, "k").recv_timeout(Duration::from_millis(1000));
    assert_eq!(
        answer
            .expect("a lease read is answered without a quorum")
            .unwrap(),
        "v"
    );

    // Past the lease and the election timeout, the leader has stepped down: the same read is
    // not answered from its state while the followers stay stopped.
    std::thread::sleep(Duration::from_millis(3500));
    let late = get_in_background(late, "k");
    match late.recv_timeout(Duration::from_millis(1000)) {
        Err(_) => {} // Waiting for a leader, as it should.
        Ok(Err(_)) => {}
        Ok(Ok(v)) => {
            let why = diagnosis(&nodes, l, &stopped, since, &tmp.keep());
            panic!("a GET was answered ({v:?}) after the lease ran out: {why}")
        }
    }
    for pid in &stopped {
        signal(*pid, Signal::SIGCONT);
    }
    cluster.stop();
}

#[test]
fn without_lease_reads_a_read_waits_for_a_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, nodes, l) = cluster(&tmp.path().join("c"), &[]);
    let _guard = KillOnPanic(nodes.iter().map(|n| n.pid).collect());
    let mut con = connect(nodes[l].client).expect("the leader accepts a connection");
    let r: RedisResult<()> = con.set("k", "v");
    r.expect("SET on the leader");
    let con = reader(&nodes[l]);

    let stopped = followers(&nodes, l);
    for pid in &stopped {
        signal(*pid, Signal::SIGSTOP);
    }
    let answer = get_in_background(con, "k");
    assert!(
        answer.recv_timeout(Duration::from_millis(500)).is_err(),
        "a ReadIndex read was answered with no follower running"
    );
    for pid in &stopped {
        signal(*pid, Signal::SIGCONT);
    }
    let answer = answer
        .recv_timeout(Duration::from_secs(10))
        .expect("the read is answered once the followers resume");
    assert_eq!(answer.unwrap(), "v");
    cluster.stop();
}
