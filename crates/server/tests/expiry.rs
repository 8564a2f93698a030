//! Keys that expire, on a real three-node Raft cluster over loopback, spoken to by a Redis
//! client: the deadline is stamped by the leader, the removal committed through the log, and
//! after it no node answers the value — also after the leader that stamped it is killed.

mod common;

use common::TestCluster;
use redis::{Commands, RedisResult};
use std::time::{Duration, Instant};

/// Reads `key` on node `i` in LOCAL mode (the node's own state) until it is absent.
fn wait_absent_locally(cluster: &TestCluster, i: usize, key: &str, within: Duration) {
    let mut con = cluster.redis(i);
    let deadline = Instant::now() + within;
    loop {
        let value: Option<String> = redis::cmd("GET")
            .arg(key)
            .arg("LOCAL")
            .query(&mut con)
            .unwrap();
        if value.is_none() {
            return;
        }
        assert!(Instant::now() < deadline, "node {i} still shows {key}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_key_set_with_ex_expires_on_every_node_also_after_a_leader_kill() {
    let mut cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let mut con = cluster.redis(leader);
    let set = Instant::now();
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("EX")
        .arg(1)
        .query(&mut con)
        .unwrap();
    let _: () = con.set_ex("long", "w", 3).unwrap();
    let _: () = con.set("forever", "f").unwrap();
    let ttl: i64 = con.ttl("short").unwrap();
    assert_eq!(ttl, 1);
    let pttl: i64 = con.pttl("long").unwrap();
    assert!((2_000..=3_000).contains(&pttl), "{pttl}");
    assert_eq!(con.ttl::<_, i64>("forever").unwrap(), -1);
    assert_eq!(con.ttl::<_, i64>("absent").unwrap(), -2);
    for i in 0..3 {
        let value: Option<String> = cluster.redis(i).get("short").unwrap();
        assert_eq!(value.as_deref(), Some("v"), "node {i} before the deadline");
    }

    // After the deadline: absent through the leader (linearizable) and on every node's own
    // state (the Expired entry reached every log).
    std::thread::sleep(Duration::from_millis(1_000).saturating_sub(set.elapsed()));
    for i in 0..3 {
        let value: Option<String> = cluster.redis(i).get("short").unwrap();
        assert_eq!(value, None, "node {i} after the deadline");
        wait_absent_locally(&cluster, i, "short", Duration::from_secs(2));
    }
    assert_eq!(con.ttl::<_, i64>("short").unwrap(), -2);

    // Kill the leader that stamped `long`; the new leader expires it by its own clock.
    cluster.stop_node(leader);
    let next = cluster.wait_for_leader(Duration::from_secs(10));
    assert_ne!(next, leader);
    std::thread::sleep(Duration::from_millis(3_000).saturating_sub(set.elapsed()));
    for i in (0..3).filter(|i| *i != leader) {
        let value: Option<String> = cluster.redis(i).get("long").unwrap();
        assert_eq!(value, None, "node {i} after the deadline, new leader");
        wait_absent_locally(&cluster, i, "long", Duration::from_secs(2));
        let value: Option<String> = cluster.redis(i).get("forever").unwrap();
        assert_eq!(value.as_deref(), Some("f"), "only keys with a TTL expire");
    }
}

#[test]
fn expire_persist_and_set_change_a_keys_deadline() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let mut con = cluster.redis(leader);
    let _: () = con.set("k", "v").unwrap();
    assert_eq!(con.expire::<_, i64>("k", 100).unwrap(), 1);
    assert_eq!(con.expire::<_, i64>("missing", 100).unwrap(), 0);
    assert!((99..=100).contains(&con.ttl::<_, i64>("k").unwrap()));
    assert_eq!(con.persist::<_, i64>("k").unwrap(), 1);
    assert_eq!(con.persist::<_, i64>("k").unwrap(), 0);
    assert_eq!(con.ttl::<_, i64>("k").unwrap(), -1);
    assert_eq!(con.pexpire::<_, i64>("k", 200).unwrap(), 1);
    let _: () = con.set("k", "again").unwrap();
    assert_eq!(con.ttl::<_, i64>("k").unwrap(), -1, "SET clears the TTL");
    assert_eq!(con.pexpire::<_, i64>("k", 100).unwrap(), 1);
    std::thread::sleep(Duration::from_millis(150));
    let value: Option<String> = con.get("k").unwrap();
    assert_eq!(value, None);
    let refused: RedisResult<()> = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(0)
        .query(&mut con);
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("invalid expire time"));
}

#[test]
fn protocols_without_a_leader_refuse_expiry_and_name_the_ones_that_do_not() {
    let cluster = TestCluster::start_protocol("quorum", 3, |_| {});
    let mut con = cluster.redis(0);
    let refused: RedisResult<()> = con.set_ex("k", "v", 10);
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("--protocol raft"), "{message}");
    let value: Option<String> = con.get("k").unwrap();
    assert_eq!(value, None, "the refused SET wrote nothing");
}
