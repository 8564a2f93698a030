//! Every served protocol besides Raft (which `resp.rs` covers in depth), as a Redis client
//! sees it: three in-process nodes on loopback, a real client library, and for the protocols
//! with a leader, the leader killed under a stream of appends and restarted, with no
//! acknowledged write lost and none applied twice.

use crate::common;

use common::TestCluster;
use redis::{Commands, Connection, RedisResult, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SET, GET, APPEND, CAS, SET NX, EXISTS and DEL, each write through one node and each read
/// through another (so every answer crosses the forwarding path of a follower).
fn kv_commands_through_every_node(cluster: &TestCluster) {
    let protocol = &cluster.protocol;
    for node in 0..3 {
        let mut con = cluster.redis(node);
        let mut other = cluster.redis((node + 1) % 3);
        let key = format!("k{node}");
        let _: () = con.set(&key, "v").unwrap();
        let value: String = other.get(&key).unwrap();
        assert_eq!(
            value,
            "v",
            "{protocol}: read at node {}",
            (node + 1) % 3 + 1
        );
        let length: i64 = con.append(&key, "w").unwrap();
        assert_eq!(length, 2, "{protocol}");
        let swapped: i64 = cas(&mut con, &key, "vw", "x");
        assert_eq!(swapped, 1, "{protocol}: CAS from the current value");
        let swapped: i64 = cas(&mut other, &key, "vw", "y");
        assert_eq!(swapped, 0, "{protocol}: CAS from a stale value");
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg("z")
            .arg("NX")
            .query(&mut other)
            .unwrap();
        assert_eq!(set, None, "{protocol}: NX on an existing key");
        let value: String = other.get(&key).unwrap();
        assert_eq!(value, "x", "{protocol}");
        let n: i64 = other.incr(format!("n{node}"), 5).unwrap();
        assert_eq!(n, 5, "{protocol}: INCRBY");
        let exists: i64 = other.exists(&key).unwrap();
        assert_eq!(exists, 1, "{protocol}");
        let deleted: i64 = other.del(&key).unwrap();
        assert_eq!(deleted, 1, "{protocol}");
        let value: Option<String> = con.get(&key).unwrap();
        assert_eq!(value, None, "{protocol}");
        coordination_commands(protocol, &mut con, &mut other, node);
    }
}

/// The conditional SET, compare-and-delete, GETSET, GETDEL, MSET and MGET: each one entry of
/// the protocol's log, written through one node and checked through another.
fn coordination_commands(
    protocol: &str,
    con: &mut Connection,
    other: &mut Connection,
    node: usize,
) {
    let lock = format!("lock{node}");
    let q = |con: &mut Connection, args: &[&str]| -> Value {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(con)
            .unwrap_or_else(|e| panic!("{protocol}: {args:?}: {e}"))
    };
    assert_eq!(
        q(con, &["SET", &lock, "t1", "NX", "GET"]),
        Value::Nil,
        "{protocol}"
    );
    assert_eq!(
        q(other, &["SET", &lock, "t2", "NX", "GET"]),
        bulk("t1"),
        "{protocol}"
    );
    assert_eq!(
        q(other, &["SET", &lock, "t3", "XX"]),
        Value::Okay,
        "{protocol}"
    );
    assert_eq!(
        q(con, &["DELIFEQ", &lock, "t1"]),
        Value::Int(0),
        "{protocol}"
    );
    assert_eq!(q(other, &["GET", &lock]), bulk("t3"), "{protocol}");
    assert_eq!(
        q(con, &["DELIFEQ", &lock, "t3"]),
        Value::Int(1),
        "{protocol}"
    );
    assert_eq!(q(other, &["GET", &lock]), Value::Nil, "{protocol}");
    assert_eq!(q(con, &["GETSET", &lock, "g"]), Value::Nil, "{protocol}");
    assert_eq!(q(other, &["GETDEL", &lock]), bulk("g"), "{protocol}");
    assert_eq!(q(con, &["GETDEL", &lock]), Value::Nil, "{protocol}");
    let (m1, m2) = (format!("m1.{node}"), format!("m2.{node}"));
    assert_eq!(
        q(con, &["MSET", &m1, "a", &m2, "b"]),
        Value::Okay,
        "{protocol}"
    );
    assert_eq!(
        q(other, &["MGET", &m2, "absent", &m1]),
        Value::Array(vec![bulk("b"), Value::Nil, bulk("a")]),
        "{protocol}"
    );
    // Listing the keyspace: one read of the whole state, through the protocol's read path.
    let pattern = format!("m?.{node}");
    let keys: Vec<String> = other.keys(&pattern).unwrap();
    assert_eq!(keys, [m1.clone(), m2.clone()], "{protocol}: KEYS");
    let mut scanned: Vec<String> = other.scan_match(&pattern).unwrap().collect();
    scanned.sort();
    assert_eq!(scanned, [m1.clone(), m2.clone()], "{protocol}: SCAN");
    let Value::Int(size) = q(other, &["DBSIZE"]) else {
        panic!("{protocol}: DBSIZE is not an integer");
    };
    assert!(size >= 2, "{protocol}: DBSIZE {size}");
    // Leases need a leader's clock, which only Raft stamps deadlines with so far.
    crate::txn::transactions(protocol, con, other, node);
    let leased: RedisResult<Value> = redis::cmd("SET")
        .arg(&lock)
        .arg("t")
        .arg("NX")
        .arg("PX")
        .arg(1000)
        .query(con);
    let why = refused(leased);
    assert!(
        why.contains(protocol) && why.contains("--protocol raft"),
        "{protocol}: {why}"
    );
}

fn cas(con: &mut Connection, key: &str, expected: &str, new: &str) -> i64 {
    redis::cmd("CAS")
        .arg(key)
        .arg(expected)
        .arg(new)
        .query(con)
        .unwrap()
}

/// What one client's appends got: the tokens acknowledged, and those whose outcome is unknown.
#[derive(Default)]
struct Appends {
    acked: Vec<u64>,
    unknown: Vec<u64>,
}

/// Appends `j,` for j = 0, 1, 2, ... to `key` through `addr` until `stop`, one at a time,
/// counting acknowledgements in `acks` as they come.
fn append_until(
    addr: std::net::SocketAddr,
    key: &'static str,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Appends> {
    std::thread::spawn(move || {
        let connect = || {
            let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
            let con = client
                .get_connection_with_timeout(Duration::from_secs(5))
                .unwrap();
            con.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            con
        };
        let mut con = connect();
        let mut appends = Appends::default();
        let mut j = 0;
        while !stop.load(Ordering::Relaxed) {
            let result: RedisResult<i64> = con.append(key, format!("{j},"));
            match result {
                Ok(_) => {
                    appends.acked.push(j);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    appends.unknown.push(j);
                    if e.is_io_error() {
                        con = connect();
                    }
                }
            }
            j += 1;
        }
        appends
    })
}

/// Waits until `acks` reaches `target`, failing after 10 s.
fn wait_for_acks(protocol: &str, acks: &AtomicUsize, target: usize, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while acks.load(Ordering::Relaxed) < target {
        assert!(
            Instant::now() < deadline,
            "{protocol}: appends stalled {when}: {} acknowledged, waiting for {target}",
            acks.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks the appended value against what the client was told: every acknowledged token once,
/// in order, and nothing twice; tokens whose outcome was unknown may be there or not.
fn check_appends(protocol: &str, value: &str, appends: &Appends) {
    let tokens: Vec<u64> = value
        .split_terminator(',')
        .map(|t| {
            t.parse()
                .unwrap_or_else(|_| panic!("{protocol}: token {t:?}"))
        })
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "{protocol}: appends out of order or applied twice: {value}"
    );
    for j in &appends.acked {
        assert!(
            tokens.binary_search(j).is_ok(),
            "{protocol}: acknowledged append {j} lost: {value}"
        );
    }
    for t in &tokens {
        assert!(
            appends.acked.contains(t) || appends.unknown.contains(t),
            "{protocol}: {t} was never sent"
        );
    }
}

/// The test for a protocol with a leader: the KV commands through every node, then the
/// leader stopped while a client appends through another node, a new leader, the old one
/// restarted; every acknowledged append is there exactly once, at every node.
fn leader_failover(protocol: &str) {
    let started = Instant::now();
    let mut cluster = TestCluster::start_protocol(protocol, 3, |_| {});
    kv_commands_through_every_node(&cluster);
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let via = (leader + 1) % 3;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let appender = append_until(cluster.client_addr(via), "log", stop.clone(), acks.clone());
    std::thread::sleep(Duration::from_millis(300));
    cluster.stop_node(leader);
    let acked_before = acks.load(Ordering::Relaxed);
    assert!(
        acked_before >= 5,
        "{protocol}: {acked_before} appends before the failover"
    );
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader, "{protocol}");
    let failed_over = started.elapsed();
    wait_for_acks(
        protocol,
        &acks,
        acked_before + 10,
        "after the leader stopped",
    );
    let recovered = started.elapsed();
    cluster.start_node(leader);
    wait_for_acks(
        protocol,
        &acks,
        acks.load(Ordering::Relaxed) + 10,
        "after the restart",
    );
    stop.store(true, Ordering::Relaxed);
    let appends = appender.join().unwrap();
    eprintln!(
        "{protocol}: leader stopped; new leader at {failed_over:?}, 10 more appends by {recovered:?}"
    );
    let mut con = cluster.redis(leader);
    let value: String = con.get("log").unwrap();
    check_appends(protocol, &value, &appends);
    // The restarted node catches up: its own state (a LOCAL read) reaches the same value.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let local: Option<String> = redis::cmd("GET")
            .arg("log")
            .arg("LOCAL")
            .query(&mut con)
            .unwrap();
        if local.as_deref() == Some(value.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{protocol}: the restarted node never caught up: {local:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{protocol}: {} appends acknowledged, {} unknown, {:?}",
        appends.acked.len(),
        appends.unknown.len(),
        started.elapsed()
    );
}

#[test]
fn multipaxos_serves_the_kv_commands_and_loses_no_acknowledged_write_when_the_leader_dies() {
    leader_failover("multipaxos");
}

#[test]
fn zab_serves_the_kv_commands_and_loses_no_acknowledged_write_when_the_leader_dies() {
    leader_failover("zab");
}

#[test]
fn primary_backup_serves_the_kv_commands_and_loses_no_acknowledged_write_when_the_primary_dies() {
    leader_failover("primary-backup");
}

#[test]
fn chain_serves_the_kv_commands_and_loses_no_acknowledged_write_when_the_head_dies() {
    leader_failover("chain");
}

#[test]
fn craq_serves_the_kv_commands_and_loses_no_acknowledged_write_when_the_head_dies() {
    leader_failover("craq");
}

/// The refusal a Redis client gets for a command the protocol cannot serve.
fn refused(result: RedisResult<Value>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn quorum_serves_get_set_del_at_any_node_refuses_read_modify_write_and_survives_a_node_down() {
    let mut cluster = TestCluster::start_protocol("quorum", 3, |_| {});
    for node in 0..3 {
        let info = cluster.info(node);
        assert!(
            info.contains(&("role".into(), "replica".into())),
            "{info:?}"
        );
        assert!(
            info.contains(&("leader_id".into(), String::new())),
            "{info:?}"
        );
    }
    let mut cons: Vec<Connection> = (0..3).map(|i| cluster.redis(i)).collect();
    for node in 0..3 {
        let key = format!("k{node}");
        let _: () = cons[node].set(&key, node).unwrap();
        for reader in &mut cons {
            let value: i64 = reader.get(&key).unwrap();
            assert_eq!(
                value,
                node as i64,
                "a write through node {} read elsewhere",
                node + 1
            );
        }
    }
    let deleted: i64 = cons[1].del("k0").unwrap();
    assert_eq!(deleted, 1);
    let value: Option<String> = cons[2].get("k0").unwrap();
    assert_eq!(value, None);
    for why in [
        refused(redis::cmd("APPEND").arg("k1").arg("x").query(&mut cons[0])),
        refused(
            redis::cmd("CAS")
                .arg("k1")
                .arg("1")
                .arg("2")
                .query(&mut cons[0]),
        ),
        refused(
            redis::cmd("SET")
                .arg("k1")
                .arg("2")
                .arg("NX")
                .query(&mut cons[0]),
        ),
        refused(redis::cmd("INCR").arg("k1").query(&mut cons[0])),
        refused(
            redis::cmd("SET")
                .arg("k1")
                .arg("2")
                .arg("XX")
                .arg("GET")
                .query(&mut cons[0]),
        ),
        refused(redis::cmd("DELIFEQ").arg("k1").arg("1").query(&mut cons[0])),
        refused(redis::cmd("GETDEL").arg("k1").query(&mut cons[0])),
        refused(redis::cmd("GETSET").arg("k1").arg("3").query(&mut cons[0])),
    ] {
        assert!(why.contains("consensus"), "{why}");
    }
    // Several keys at once need one order of all writes: refused, naming the protocol.
    for why in [
        refused(
            redis::cmd("MSET")
                .arg("k1")
                .arg("x")
                .arg("k2")
                .arg("y")
                .query(&mut cons[0]),
        ),
        refused(redis::cmd("MGET").arg("k1").arg("k2").query(&mut cons[0])),
        refused(redis::cmd("SCAN").arg(0).query(&mut cons[0])),
        refused(redis::cmd("KEYS").arg("*").query(&mut cons[0])),
        refused(redis::cmd("DBSIZE").query(&mut cons[0])),
    ] {
        assert!(
            why.contains("quorum (leaderless)") && why.contains("--protocol raft"),
            "{why}"
        );
    }
    crate::txn::refuses_transactions(&mut cons[0], "quorum (leaderless)");
    let lease = redis::cmd("SET")
        .arg("k1")
        .arg("4")
        .arg("NX")
        .arg("PX")
        .arg(1000)
        .query(&mut cons[0]);
    assert!(refused(lease).contains("quorum (leaderless)"));
    // N = 3, R = W = 2: one node down, every operation still completes at the others.
    drop(cons);
    cluster.stop_node(2);
    let mut con = cluster.redis(0);
    for i in 0..20 {
        let _: () = con.set(format!("d{i}"), i).unwrap();
    }
    cluster.start_node(2);
    let mut con = cluster.redis(2);
    for i in 0..20 {
        let value: i64 = con.get(format!("d{i}")).unwrap();
        assert_eq!(value, i);
    }
    let value: i64 = con.get("k1").unwrap();
    assert_eq!(value, 1);
}

/// Polls GET `key` at `node` until it answers `want` (replication is asynchronous).
fn eventually(cluster: &TestCluster, node: usize, key: &str, want: &Value) {
    let mut con = cluster.redis(node);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got: Value = con.get(key).unwrap();
        if &got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} never converged on {key}: {got:?}, not {want:?}",
            node + 1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn multiprimary_keeps_concurrent_sets_as_siblings_until_a_set_that_saw_them() {
    let cluster = TestCluster::start_protocol("multiprimary", 3, |_| {});
    assert!(cluster.info(1).contains(&("role".into(), "replica".into())));
    // Two clients that saw nothing write through different nodes: concurrent writes.
    let _: () = cluster.redis(0).set("k", "a").unwrap();
    let _: () = cluster.redis(1).set("k", "b").unwrap();
    let siblings = Value::Array(vec![bulk("a"), bulk("b")]);
    for node in 0..3 {
        eventually(&cluster, node, "k", &siblings);
    }
    // A client that read both and writes again supersedes both, everywhere.
    let mut con = cluster.redis(2);
    let got: Value = con.get("k").unwrap();
    assert_eq!(got, siblings);
    let _: () = con.set("k", "c").unwrap();
    let _: () = con.set("k", "d").unwrap(); // Its own write is seen too: no sibling.
    for node in 0..3 {
        eventually(&cluster, node, "k", &bulk("d"));
    }
    let deleted: i64 = cluster.redis(0).del("k").unwrap();
    assert_eq!(deleted, 1);
    for node in 0..3 {
        eventually(&cluster, node, "k", &Value::Nil);
    }
    let mut con = cluster.redis(0);
    for why in [
        refused(redis::cmd("APPEND").arg("k").arg("x").query(&mut con)),
        refused(redis::cmd("CAS").arg("k").arg("1").arg("2").query(&mut con)),
        refused(redis::cmd("INCR").arg("n").query(&mut con)),
        refused(
            redis::cmd("SET")
                .arg("k")
                .arg("1")
                .arg("NX")
                .arg("GET")
                .query(&mut con),
        ),
        refused(redis::cmd("DELIFEQ").arg("k").arg("1").query(&mut con)),
        refused(redis::cmd("GETDEL").arg("k").query(&mut con)),
    ] {
        assert!(
            why.contains("consensus") && why.contains("multi-primary"),
            "{why}"
        );
    }
    for why in [
        refused(
            redis::cmd("MSET")
                .arg("k")
                .arg("1")
                .arg("j")
                .arg("2")
                .query(&mut con),
        ),
        refused(redis::cmd("MGET").arg("k").arg("j").query(&mut con)),
        refused(redis::cmd("SCAN").arg(0).query(&mut con)),
        refused(redis::cmd("DBSIZE").query(&mut con)),
    ] {
        assert!(
            why.contains("multiprimary") && why.contains("--protocol raft"),
            "{why}"
        );
    }
    crate::txn::refuses_transactions(&mut con, "multiprimary");
    let value: Option<String> = con.get("k").unwrap();
    assert_eq!(value, None, "nothing refused was written");
}

#[test]
fn multiprimary_with_last_write_wins_answers_one_value_and_converges() {
    let mut cluster = TestCluster::start_protocol("multiprimary", 3, |config| {
        config.tuning.insert("resolution".into(), "lww".into());
    });
    let _: () = cluster.redis(0).set("k", "a").unwrap();
    eventually(&cluster, 1, "k", &bulk("a"));
    // A write made after node 2 saw "a" has a later hybrid-logical-clock stamp: it wins.
    let _: () = cluster.redis(1).set("k", "b").unwrap();
    for node in 0..3 {
        eventually(&cluster, node, "k", &bulk("b"));
    }
    // A node that restarts keeps what it acknowledged, and its clock stays ahead of it.
    cluster.stop_node(2);
    cluster.start_node(2);
    let _: () = cluster.redis(2).set("k", "c").unwrap();
    for node in 0..3 {
        eventually(&cluster, node, "k", &bulk("c"));
    }
}
