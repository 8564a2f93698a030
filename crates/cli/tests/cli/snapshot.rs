//! Backups end to end with real processes on loopback: `quorate snapshot save` from a running
//! cluster while a client writes, `status`, damaged files refused, `restore` into a new cluster
//! that serves every acknowledged key.
//!
//! Every process is stopped by its PID (a guard kills it if the test fails), every port is
//! picked free by the OS.

use crate::support;

use redis::Commands;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Proc;

/// `quorate cluster` on free ports; returns the nodes' client addresses once its manifest
/// lists them (the nodes may still be starting: `connect` retries).
fn start_cluster(dir: &Path, protocol: &str) -> (Proc, Vec<SocketAddr>) {
    let data_dir = dir.to_str().unwrap();
    let args = [
        "cluster",
        "--protocol",
        protocol,
        "--nodes",
        "3",
        "--free-ports",
        "--data-dir",
        data_dir,
    ];
    support::forget_manifest(dir);
    let proc = Proc::spawn(&args, &dir.with_extension("out"));
    let addrs: Vec<SocketAddr> = support::wait_for_manifest(dir)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["client_addr"].as_str().unwrap().parse().unwrap())
        .collect();
    (proc, addrs)
}

/// A connection to `addr`, retried while the node is still starting (the cluster's manifest
/// is written before its nodes listen).
fn connect(addr: SocketAddr) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let con = loop {
        match client.get_connection_with_timeout(Duration::from_secs(2)) {
            Ok(con) => break con,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{addr} never accepted a connection: {e}"),
        }
    };
    con.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    con
}

/// SET, retried until acknowledged (a fresh cluster may still be electing).
fn set(con: &mut redis::Connection, key: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match con.set::<_, _, ()>(key, value) {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("SET {key} never acknowledged: {e}"),
        }
    }
}

fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match con.get(key) {
            Ok(value) => return value,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("GET {key} failed: {e}"),
        }
    }
}

fn quorate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(args)
        .output()
        .expect("the quorate binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A header field of `quorate snapshot status`.
fn status_field(file: &Path, name: &str) -> u64 {
    let out = quorate(&["snapshot", "status", file.to_str().unwrap()]);
    assert!(out.status.success(), "status: {}", text(&out));
    let all = text(&out);
    let line = all
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {all}"));
    line.trim().parse().unwrap()
}

/// Saves from a 3-node cluster of `protocol` (asking a follower or the leader: `MOVED` is
/// followed) while a client writes, and returns the keys and values that must be in it: every
/// write acknowledged before the save began, and the writer's writes that it holds, which must
/// be a prefix of the writer's sequence (one client, one write at a time: a linearizable copy
/// holds its writes in order).
fn save_while_writing(root: &Path, protocol: &str, file: &Path) -> Vec<(String, String)> {
    let (cluster, addrs) = start_cluster(&root.join(format!("{protocol}-old")), protocol);
    let mut con = connect(addrs[0]);
    let mut expected = Vec::new();
    for i in 0..50 {
        let (key, value) = (format!("k{i}"), format!("v{i}-{protocol}"));
        set(&mut con, &key, &value);
        expected.push((key, value));
    }
    // A writer that keeps going while the snapshot is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let addr = addrs[1];
        std::thread::spawn(move || {
            let mut con = connect(addr);
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) && acked < 5_000 {
                if con.set::<_, _, ()>(format!("w{acked}"), acked).is_ok() {
                    acked += 1;
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let out = quorate(&[
        "snapshot",
        "save",
        file.to_str().unwrap(),
        "--addr",
        &addrs[2].to_string(),
        "--timeout",
        "15s",
    ]);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    assert!(out.status.success(), "save: {}", text(&out));
    assert!(text(&out).contains("saved"), "{}", text(&out));
    println!("{protocol}: saved in {took:?} while a client acknowledged {acked} writes");
    cluster.stop();
    expected
}

/// Restores `file` into a fresh 3-node `protocol` cluster and checks it serves `expected` and
/// a prefix of the writer's keys, exactly as many keys as the header says.
fn restore_and_read(root: &Path, protocol: &str, file: &Path, expected: &[(String, String)]) {
    let dir = root.join(format!("{protocol}-new"));
    let file_arg = file.to_str().unwrap();
    let dir_arg = dir.to_str().unwrap();
    let restore = |extra: &[&str]| {
        let mut args = vec!["snapshot", "restore", file_arg, "--data-dir", dir_arg];
        args.extend_from_slice(&["--nodes", "3", "--protocol", protocol]);
        args.extend_from_slice(extra);
        quorate(&args)
    };
    let out = restore(&[]);
    assert!(out.status.success(), "restore: {}", text(&out));
    // Again, into what is now a non-empty directory: refused unless --force.
    let again = restore(&[]);
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    let forced = restore(&["--force"]);
    assert!(
        forced.status.success(),
        "restore --force: {}",
        text(&forced)
    );

    let keys = status_field(file, "keys");
    let (cluster, addrs) = start_cluster(&dir, protocol);
    let mut con = connect(addrs[0]);
    for (key, value) in expected {
        assert_eq!(get(&mut con, key).as_deref(), Some(value.as_str()), "{key}");
    }
    let mut written = 0;
    while get(&mut con, &format!("w{written}")).as_deref() == Some(written.to_string().as_str()) {
        written += 1;
    }
    assert_eq!(
        get(&mut con, &format!("w{}", written + 1)),
        None,
        "the writer's keys in the snapshot are not a prefix of its writes"
    );
    assert_eq!(
        expected.len() as u64 + written,
        keys,
        "the restored cluster serves other keys than the snapshot's header counts"
    );
    // The new cluster takes writes.
    set(&mut con, "after-restore", "yes");
    assert_eq!(get(&mut con, "after-restore").as_deref(), Some("yes"));
    cluster.stop();
}

#[test]
fn raft_snapshot_saved_under_writes_restores_every_acknowledged_key() {
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("raft.snap");
    let expected = save_while_writing(root.path(), "raft", &file);
    assert!(status_field(&file, "keys") >= expected.len() as u64);
    assert!(status_field(&file, "index") > 0);

    // Damaged copies are refused, clearly, by status and by restore.
    let bytes = fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    let truncated = &bytes[..bytes.len() - 100];
    for (name, content, says) in [
        ("flipped.snap", &flipped[..], "checksum"),
        ("truncated.snap", truncated, "truncated"),
        ("empty.snap", &[][..], "not a quorate snapshot"),
    ] {
        let bad = root.path().join(name);
        fs::write(&bad, content).unwrap();
        let status = quorate(&["snapshot", "status", bad.to_str().unwrap()]);
        assert_eq!(status.status.code(), Some(2), "{name}: {}", text(&status));
        assert!(text(&status).contains(says), "{name}: {}", text(&status));
        let target = root.path().join(format!("{name}.restored"));
        let restore = quorate(&[
            "snapshot",
            "restore",
            bad.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
            "--nodes",
            "3",
        ]);
        assert!(!restore.status.success(), "{name} restored");
        assert!(!target.join("n1").exists(), "{name} left a data directory");
    }

    restore_and_read(root.path(), "raft", &file, &expected);
    println!("raft save/restore test took {:?}", started.elapsed());
}

#[test]
fn zab_snapshot_restores_into_zab_and_multipaxos_and_quorum_refuses_to_take_one() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("zab.snap");
    let expected = save_while_writing(root.path(), "zab", &file);
    restore_and_read(root.path(), "zab", &file, &expected);
    // Every log protocol replicates the same store: ZAB's backup seeds a Multi-Paxos cluster.
    restore_and_read(root.path(), "multipaxos", &file, &expected);

    // A leaderless cluster has no single store to copy, and says so.
    let (cluster, addrs) = start_cluster(&root.path().join("quorum"), "quorum");
    let bad = root.path().join("quorum.snap");
    let out = quorate(&[
        "snapshot",
        "save",
        bad.to_str().unwrap(),
        "--addr",
        &addrs[0].to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no single replicated store"),
        "{}",
        text(&out)
    );
    assert!(!bad.exists());
    cluster.stop();
}
