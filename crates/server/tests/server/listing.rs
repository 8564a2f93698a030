//! DBSIZE, KEYS, SCAN, EXISTS on several keys, TYPE, STRLEN, SETNX and SETEX, as a Redis
//! client library sees them on a three-node Raft cluster: answers read through the leader
//! (linearizable) whichever node is asked, and a SCAN whose cursor survives the leader's
//! death.

use crate::common;

use crate::resp::http_get;
use common::TestCluster;
use redis::{Commands, Connection, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn q(con: &mut Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// One `SCAN` page: the next cursor and the keys.
fn scan_page(con: &mut Connection, cursor: u64, args: &[&str]) -> (u64, Vec<String>) {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor);
    for arg in args {
        cmd.arg(*arg);
    }
    cmd.query(con).unwrap()
}

#[test]
fn listing_commands_answer_like_redis_and_a_follower_sees_the_leaders_latest_write() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let mut writer = cluster.redis(leader);
    let mut reader = cluster.redis(follower);
    assert_eq!(q(&mut reader, &["DBSIZE"]), Value::Int(0));
    assert_eq!(
        q(&mut reader, &["SCAN", "0"]),
        Value::Array(vec![bulk("0"), Value::Array(vec![])])
    );
    let users: BTreeSet<String> = (0..40).map(|i| format!("user:{i}")).collect();
    for user in &users {
        let _: () = writer.set(user, "x").unwrap();
    }
    let _: () = writer.set("other", "hello").unwrap();
    // Each answer comes from the leader's state: the follower sees the last write at once.
    assert_eq!(q(&mut reader, &["DBSIZE"]), Value::Int(41));
    let keys: Vec<String> = reader.keys("user:*").unwrap();
    assert_eq!(
        keys,
        users.iter().cloned().collect::<Vec<_>>(),
        "KEYS sorts"
    );
    let keys: Vec<String> = reader.keys("u?er:[1-2]").unwrap();
    assert_eq!(keys, ["user:1", "user:2"]);
    // redis-rs's own SCAN iterator (it parses the cursor as a u64).
    let scanned: Vec<String> = reader.scan_match("user:*").unwrap().collect();
    assert_eq!(scanned.len(), 40, "each key once: {scanned:?}");
    assert_eq!(scanned.into_iter().collect::<BTreeSet<_>>(), users);
    let all: BTreeSet<String> = reader.scan().unwrap().collect();
    assert_eq!(all.len(), 41);
    // COUNT bounds the keys a page examines; MATCH may leave a page empty but not the walk.
    let (mut cursor, mut pages, mut seen) = (0, 0, Vec::new());
    loop {
        let (next, keys) = scan_page(&mut reader, cursor, &["MATCH", "user:1*", "COUNT", "4"]);
        assert!(keys.len() <= 5, "{keys:?}");
        seen.extend(keys);
        pages += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(pages >= 10, "41 keys at 4 a page: {pages} pages");
    seen.sort();
    let want: Vec<String> = users
        .iter()
        .filter(|u| u.starts_with("user:1"))
        .cloned()
        .collect();
    assert_eq!(seen, want);
    let (_, typed) = scan_page(&mut reader, 0, &["COUNT", "100", "TYPE", "hash"]);
    assert!(typed.is_empty(), "every value is a string: {typed:?}");
    let (_, typed) = scan_page(&mut reader, 0, &["COUNT", "100", "TYPE", "string"]);
    assert_eq!(typed.len(), 41);
    for (args, error) in [
        (&["SCAN", "x"][..], "invalid cursor"),
        (&["SCAN", "0", "COUNT", "0"], "syntax error"),
        (&["SCAN", "0", "NOSUCH", "1"], "syntax error"),
        (&["KEYS"], "wrong number of arguments"),
        (&["DBSIZE", "x"], "unexpected arguments"),
    ] {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let why = cmd.query::<Value>(&mut reader).unwrap_err().to_string();
        assert!(why.contains(error), "{args:?}: {why}");
    }
    // EXISTS counts a key named twice twice; TYPE and STRLEN; SETNX and SETEX.
    assert_eq!(
        q(
            &mut reader,
            &["EXISTS", "user:1", "nosuch", "user:1", "other"]
        ),
        Value::Int(3)
    );
    assert_eq!(
        q(&mut reader, &["TYPE", "other"]),
        Value::SimpleString("string".into())
    );
    assert_eq!(
        q(&mut reader, &["TYPE", "nosuch"]),
        Value::SimpleString("none".into())
    );
    assert_eq!(q(&mut reader, &["STRLEN", "other"]), Value::Int(5));
    assert_eq!(q(&mut reader, &["STRLEN", "nosuch"]), Value::Int(0));
    assert_eq!(q(&mut reader, &["SETNX", "other", "y"]), Value::Int(0));
    assert_eq!(q(&mut reader, &["SETNX", "fresh", "y"]), Value::Int(1));
    assert_eq!(
        q(&mut reader, &["SETEX", "leased", "100", "v"]),
        Value::Okay
    );
    let ttl: i64 = reader.ttl("leased").unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(q(&mut reader, &["DBSIZE"]), Value::Int(43));
    let _: () = writer.del("user:0").unwrap();
    assert_eq!(q(&mut reader, &["DBSIZE"]), Value::Int(42));
    let keys: Vec<String> = reader.keys("user:0").unwrap();
    assert!(keys.is_empty());
    // An expired key leaves the listings (through the log, like every other removal).
    assert_eq!(
        q(&mut writer, &["SET", "brief", "v", "PX", "150"]),
        Value::Okay
    );
    assert_eq!(q(&mut reader, &["EXISTS", "brief"]), Value::Int(1));
    std::thread::sleep(Duration::from_millis(400));
    let keys: Vec<String> = reader.keys("brief").unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(q(&mut reader, &["DBSIZE"]), Value::Int(42));
}

#[test]
fn a_scan_continues_across_a_leader_kill_and_returns_every_key_present_throughout_once() {
    let mut cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let mut writer = cluster.redis(follower);
    let keys: BTreeSet<String> = (0..300).map(|i| format!("k{i:03}")).collect();
    for chunk in keys.iter().collect::<Vec<_>>().chunks(50) {
        let pairs: Vec<(&String, &str)> = chunk.iter().map(|k| (*k, "v")).collect();
        let _: () = writer.mset(&pairs).unwrap();
    }
    let mut reader = cluster.redis(follower);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor = 0;
    let mut page = 0;
    loop {
        let (next, got) = scan_page(&mut reader, cursor, &["COUNT", "20"]);
        for key in got {
            *seen.entry(key).or_default() += 1;
        }
        page += 1;
        if page == 3 {
            // Kill the leader between two pages; the same connection (to a follower) and the
            // same cursor carry on once a new leader is elected.
            cluster.stop_node(leader);
            let new_leader = cluster.wait_for_leader(Duration::from_secs(10));
            assert_ne!(new_leader, leader);
            // The surviving follower's operations endpoints: ready, naming the new leader
            // (once it heard from it), and a second leader change counted.
            let metrics = cluster.metrics_addr(follower);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let want = format!("leader {}\n", new_leader + 1);
            loop {
                let (status, body) = http_get(metrics, "/ready");
                if status == 200 && body.ends_with(&want) {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{status} {body}");
                std::thread::sleep(Duration::from_millis(20));
            }
            let (_, body) = http_get(metrics, "/metrics");
            let changes: u64 = body
                .lines()
                .find_map(|l| l.strip_prefix("quorate_leader_changes_seen_total "))
                .expect(&body)
                .parse()
                .unwrap();
            assert!(changes >= 2, "{changes}");
            assert!(
                body.lines()
                    .any(|l| l == "quorate_request_seconds_count{command=\"scan\"} 3"),
                "three SCAN pages timed at the node asked: {body}"
            );
        }
        if page > 3 {
            // Keys come and go while the scan runs; none of the original ones.
            let _: () = writer.set(format!("new{page}"), "v").unwrap();
            let _: () = writer.del(format!("new{}", page - 1)).unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(page > 10, "{page} pages");
    for key in &keys {
        assert_eq!(seen.get(key), Some(&1), "{key}: {seen:?}");
    }
    for (key, n) in &seen {
        assert_eq!(*n, 1, "{key} returned {n} times");
    }
}
