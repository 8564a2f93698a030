//! Ports handed from parent to node, and clusters that keep to themselves.
//!
//! Two `quorate cluster --free-ports` started at once used to race for ports: each released
//! the ports it had chosen before its nodes bound them, so the other could choose one in
//! between. A node then failed with "address already in use", and a test's SIGSTOP met a
//! process that had exited (`lease_reads.rs`, about 1 run in 60 on a loaded machine). With a
//! peer port, a node of one cluster could have answered another's peers: every cluster was
//! called "quorate". Now the cluster hands each node the sockets it bound, and each cluster
//! on free ports gets its own id.

use crate::cluster::{connect, leader, start_cluster_with};
use crate::support::KillOnPanic;
use quorate_server::inherited;
use redis::{Commands, RedisResult};
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `quorate serve` of a 1-node Raft cluster on `peer` and `client`, logging to `log`.
fn serve(dir: &Path, peer: &TcpListener, client: &TcpListener, log: &Path) -> Command {
    let out = fs::File::create(log).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_quorate"));
    command
        .args(["serve", "--protocol", "raft", "--id", "1", "--peers"])
        .arg(format!("1={}", peer.local_addr().unwrap()))
        .arg("--client-addr")
        .arg(client.local_addr().unwrap().to_string())
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    command
}

#[test]
fn a_node_serves_on_the_sockets_its_parent_bound_while_the_parent_still_holds_them() {
    let tmp = tempfile::tempdir().unwrap();
    let ip = [127, 0, 0, 1].into();
    let peer = quorate_server::ports::reserve(ip).unwrap();
    let client = quorate_server::ports::reserve(ip).unwrap();

    // The control: while this process holds the ports, a node that binds them itself fails.
    let log = tmp.path().join("bind.log");
    let status = serve(&tmp.path().join("a"), &peer, &client, &log)
        .status()
        .unwrap();
    assert!(!status.success());
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("Address already in use"), "{text}");

    // Handed the same sockets, it listens on them, and this process keeps its copies.
    let mut command = serve(
        &tmp.path().join("b"),
        &peer,
        &client,
        &tmp.path().join("b.log"),
    );
    inherited::pass(
        &mut command,
        vec![peer.try_clone().unwrap(), client.try_clone().unwrap()],
    );
    let mut child = command.spawn().unwrap();
    let _guard = KillOnPanic(vec![child.id() as i32]);
    let addr = client.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Some(mut con) = connect(addr) {
            let r: RedisResult<()> = con.set("k", "v");
            if r.is_ok() {
                break con.get::<_, String>("k");
            }
        }
        assert!(Instant::now() < deadline, "no SET answered on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(answer.unwrap(), "v");
    let log = fs::read_to_string(tmp.path().join("b.log")).unwrap();
    assert!(!log.contains("inherited listener"), "{log}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The `cluster_id` a running cluster wrote in `dir/cluster.json`.
fn cluster_id(dir: &Path) -> String {
    let text = fs::read_to_string(dir.join("cluster.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["cluster_id"].as_str().unwrap().to_string()
}

#[test]
fn clusters_started_side_by_side_get_their_own_ids_and_a_restart_keeps_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (first, nodes_a) = start_cluster_with(&a, 1, &[]);
    let (second, nodes_b) = start_cluster_with(&b, 1, &[]);
    let _guard = KillOnPanic(nodes_a.iter().chain(&nodes_b).map(|n| n.pid).collect());
    let (id_a, id_b) = (cluster_id(&a), cluster_id(&b));
    assert!(id_a.starts_with("quorate-"), "{id_a}");
    assert_ne!(id_a, id_b);
    leader(&nodes_a, Duration::from_secs(20));
    let mut con = connect(nodes_a[0].client).unwrap();
    let r: RedisResult<()> = con.set("k", "kept");
    r.unwrap();
    first.stop();
    second.stop();

    // Restarted on its directory, the cluster keeps its id: its nodes' storage, which records
    // the id, accepts it, and the write is there.
    let (again, nodes) = start_cluster_with(&a, 1, &[]);
    let _guard = KillOnPanic(nodes.iter().map(|n| n.pid).collect());
    assert_eq!(cluster_id(&a), id_a);
    leader(&nodes, Duration::from_secs(20));
    let mut con = connect(nodes[0].client).unwrap();
    let v: String = con.get("k").unwrap();
    assert_eq!(v, "kept");
    again.stop();
}
