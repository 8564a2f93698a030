//! `quorate member` on real node processes: a 3-node Raft cluster grows to 4 and shrinks back
//! while clients write, and the history stays linearizable with no acknowledged write lost.
//!
//! Every process a test starts is stopped by its PID (guards kill them if the test fails);
//! ports come from `quorate_server::ports`; every address is 127.0.0.1.

use crate::cluster::{
    assert_linearizable, client_loop, connect, field, info, leader, start_cluster,
    write_distinct_keys, Recorder,
};
use crate::support::Proc;
use quorate_check::history::pair;
use quorate_check::{EventKind, OpValue};
use quorate_server::ServerConfig;
use redis::Commands;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `quorate member ARGS --endpoints ...`; returns its stdout, or panics with its output.
fn member(endpoints: &[SocketAddr], args: &[&str]) -> String {
    let (ok, out) = member_outcome(endpoints, args);
    assert!(ok, "quorate member {args:?} failed:\n{out}");
    out
}

/// Runs `quorate member ARGS`; whether it succeeded, and its stdout and stderr.
fn member_outcome(endpoints: &[SocketAddr], args: &[&str]) -> (bool, String) {
    let list: Vec<String> = endpoints.iter().map(|a| a.to_string()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .arg("member")
        .args(args)
        .args(["--endpoints", &list.join(","), "--timeout", "30s"])
        .output()
        .expect("the quorate binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The `id=N role=R ...` lines of `member list`, as (id, role, leader) triples.
fn members(endpoints: &[SocketAddr]) -> Vec<(u64, String, bool)> {
    member(endpoints, &["list"])
        .lines()
        .map(|line| {
            let word = |name: &str| {
                line.split(' ')
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                    .to_string()
            };
            (
                word("id").parse().unwrap(),
                word("role"),
                word("leader") == "yes",
            )
        })
        .collect()
}

/// Node 4's config: node 1's (protocol, cluster id, tuning) with its own addresses and data
/// directory, no metrics port, and `join`.
fn joiner_config(dir: &Path, n1: &Path, nodes_peers: &[SocketAddr]) -> (ServerConfig, SocketAddr) {
    let [peer, client] = quorate_server::ports::free_loopback_addrs(2)
        .unwrap()
        .try_into()
        .unwrap();
    let mut config = ServerConfig::from_file(n1).unwrap();
    config.id = 4;
    config.peers = nodes_peers
        .iter()
        .enumerate()
        .map(|(i, a)| (quorate_core::NodeId(i as u64 + 1), *a))
        .chain([(quorate_core::NodeId(4), peer)])
        .collect();
    config.client_addr = client;
    config.metrics_addr = None;
    config.data_dir = dir.join("n4");
    config.join = true;
    (config, peer)
}

#[test]
fn member_add_grows_3_to_4_and_remove_shrinks_back_while_clients_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (cluster, nodes) = start_cluster(&dir, 3);
    leader(&nodes, Duration::from_secs(20));
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.client).collect();
    let peers: Vec<SocketAddr> = nodes.iter().map(|n| n.peer).collect();

    // Node 4 starts first, with --join: it must wait, not campaign or bootstrap.
    let (config, peer4) = joiner_config(tmp.path(), &nodes[0].config, &peers);
    let client4 = config.client_addr;
    let config4 = tmp.path().join("n4.toml");
    fs::write(&config4, config.to_toml()).unwrap();
    let log4 = tmp.path().join("n4.log");
    let node4 = Proc::spawn(&["serve", "--config", config4.to_str().unwrap()], &log4);

    let rec = Arc::new(Recorder {
        origin: Instant::now(),
        events: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut served_by_4 = 0;
    let ops = std::thread::scope(|scope| {
        // A failed check below must still stop the clients, or the scope would wait forever.
        let _stop = StopOnDrop(&stop);
        let clients: Vec<_> = (0..3u64)
            .map(|t| {
                let (rec, stop, addrs) = (rec.clone(), stop.clone(), addrs.clone());
                scope.spawn(move || client_loop(t, &addrs, &rec, &stop))
            })
            .collect();
        // A writer of distinct keys: every acknowledged one must survive the changes.
        let writer = {
            let (stop, acked, addrs) = (stop.clone(), acked.clone(), addrs.clone());
            scope.spawn(move || write_distinct_keys(&addrs, &acked, &stop))
        };
        std::thread::sleep(Duration::from_millis(1000));
        let alone = info(client4).expect("the joiner serves INFO");
        assert_ne!(field(&alone, "role").as_deref(), Some("leader"), "{alone}");
        assert_ne!(
            field(&alone, "role").as_deref(),
            Some("candidate"),
            "{alone}"
        );

        // Grow: add as a learner, catch up, promote.
        let (peer, client) = (peer4.to_string(), client4.to_string());
        let out = member(
            &addrs,
            &["add", "4", "--peer-addr", &peer, "--client-addr", &client],
        );
        assert!(out.contains("promoted node 4 to voter"), "{out}");
        let listed = members(&addrs);
        assert_eq!(listed.len(), 4, "{listed:?}");
        assert_eq!((listed[3].0, listed[3].1.as_str()), (4, "voter"));

        // Node 4 serves what was acknowledged before it joined.
        let before: Vec<String> = acked.lock().unwrap().clone();
        assert!(before.len() > 10, "the writer made progress before the add");
        let mut con = connect(client4).expect("node 4 serves clients");
        for key in &before {
            let value: Option<String> = con.get(key).unwrap();
            assert_eq!(
                value.as_deref(),
                Some(key.trim_start_matches("ack")),
                "{key} on node 4"
            );
            served_by_4 += 1;
        }

        // Node 4 can lead (the others dial it: they learned its address from the log), and
        // removing it while it leads makes it step down.
        let out = member(&addrs, &["transfer-leader", "4"]);
        assert!(out.contains("node 4 leads"), "{out}");
        std::thread::sleep(Duration::from_millis(500));
        let out = member(&[client4], &["remove", "4"]);
        assert!(out.contains("removed node 4"), "{out}");
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        clients
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum::<usize>()
    });

    let listed = members(&addrs);
    let ids: Vec<u64> = listed.iter().map(|m| m.0).collect();
    assert_eq!(ids, [1, 2, 3], "{listed:?}");
    assert!(listed.iter().all(|m| m.1 == "voter"), "{listed:?}");
    let new_leader = leader(&nodes, Duration::from_secs(20));

    // Every acknowledged write survived, on every remaining node.
    let acked = acked.lock().unwrap().clone();
    for n in &nodes {
        let mut con = connect(n.client).expect("every node serves clients");
        for key in &acked {
            // A signal to the test process (its children stop and exit) can interrupt the
            // client's read (EINTR, seen once in CI): ask again on a new connection.
            let value: Option<String> = match con.get(key) {
                Ok(value) => value,
                Err(e) if e.is_io_error() => {
                    con = connect(n.client).expect("every node serves clients");
                    con.get(key).unwrap()
                }
                Err(e) => panic!("GET {key} on {}: {e}", n.client),
            };
            assert_eq!(
                value.as_deref(),
                Some(key.trim_start_matches("ack")),
                "{key} lost"
            );
        }
    }
    // Final reads of the history's keys close the history.
    for (i, n) in nodes.iter().enumerate() {
        let mut con = connect(n.client).unwrap();
        for key in ["x", "y", "z"] {
            let process = 900_000_000 + i as u64;
            rec.record(process, EventKind::Invoke, key, OpValue::Get(None), None);
            let value: Option<String> = con.get(key).unwrap();
            rec.record(process, EventKind::Ok, key, OpValue::Get(value), None);
        }
    }
    let events = rec.events.lock().unwrap().clone();
    let operations = pair(&events).expect("the recorded history is well-formed");
    assert_linearizable(&events, &operations, "member");
    eprintln!(
        "member add/remove: {ops} operations, {} acknowledged distinct writes, {served_by_4} read from node 4, leader now {}",
        acked.len(),
        new_leader + 1
    );
    node4.stop();

    // The joined directory refuses to start as a bootstrap member (without --join).
    let mut bootstrap = config.clone();
    bootstrap.join = false;
    let config4 = tmp.path().join("n4-bootstrap.toml");
    fs::write(&config4, bootstrap.to_toml()).unwrap();
    let log = tmp.path().join("n4-bootstrap.log");
    let refused = Proc::spawn(&["serve", "--config", config4.to_str().unwrap()], &log);
    let out = wait_for_exit(refused, &log);
    assert!(out.contains("joined a running cluster"), "{out}");
    cluster.stop();
}

/// Sets its flag when dropped, also while a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits (at most 20 s) for a process that must exit by itself; returns its output.
fn wait_for_exit(proc: Proc, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let out = fs::read_to_string(log).unwrap_or_default();
        if out.contains("error") {
            drop(proc);
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the process did not exit: {}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// Other protocols refuse `MEMBER` by name; Raft refuses unsafe requests with the reason.
#[test]
fn member_commands_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("zab");
    let (cluster, nodes) = crate::cluster::start_cluster_with(&dir, 1, &["--protocol", "zab"]);
    leader(&nodes, Duration::from_secs(20));
    let (ok, out) = member_outcome(&[nodes[0].client], &["list"]);
    assert!(!ok);
    assert!(
        out.contains("zab does not support online membership changes (MEMBER LIST)"),
        "{out}"
    );
    cluster.stop();

    let dir = tmp.path().join("raft");
    let (cluster, nodes) = start_cluster(&dir, 1);
    leader(&nodes, Duration::from_secs(20));
    let addrs = [nodes[0].client];
    let (ok, out) = member_outcome(&addrs, &["promote", "9"]);
    assert!(!ok);
    assert!(out.contains("n9 is not a learner"), "{out}");
    let (ok, out) = member_outcome(&addrs, &["remove", "1"]);
    assert!(!ok);
    assert!(out.contains("n1 is the only voter"), "{out}");
    let (ok, out) = member_outcome(
        &addrs,
        &[
            "add",
            "1",
            "--peer-addr",
            "127.0.0.1:1",
            "--client-addr",
            "127.0.0.1:2",
        ],
    );
    assert!(!ok);
    assert!(out.contains("n1 is already a member"), "{out}");
    assert_eq!(members(&addrs), vec![(1, "voter".to_string(), true)]);
    cluster.stop();
}
