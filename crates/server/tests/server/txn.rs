//! Transactions as a Redis client sees them (`MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`,
//! `MSETNX`): exact replies on the wire, through the leader and a forwarding follower, on
//! every log protocol, and the refusal of the protocols without one order of all writes.

use crate::common;

use common::{raw_exchange, TestCluster};
use redis::{Connection, RedisResult, Value};
use std::time::Duration;

/// RESP2 encoding of a command.
fn resp(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    out
}

/// Sends `commands` pipelined on one connection and returns the raw replies.
fn exchange(cluster: &TestCluster, node: usize, commands: &[&[&str]]) -> String {
    let bytes: String = commands.iter().map(|c| resp(c)).collect();
    let (replies, _) = raw_exchange(
        cluster.client_addr(node),
        bytes.as_bytes(),
        Duration::from_millis(1500),
    );
    replies
}

pub fn q(con: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(con)
}

#[test]
fn multi_exec_answers_every_queued_reply_in_one_array_like_redis() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    for node in [leader, (leader + 1) % 3] {
        let k = format!("k{node}");
        let s = format!("s{node}");
        let replies = exchange(
            &cluster,
            node,
            &[
                &["SET", &s, "text"],
                &["MULTI"],
                &["SET", &k, "1"],
                &["INCRBY", &k, "41"],
                &["GET", &k],
                &["APPEND", &k, "x"],
                &["INCR", &k],
                &["SET", &k, "v", "NX", "GET"],
                &["GETSET", &k, "w"],
                &["MSET", &s, "a", "m", "b"],
                &["MGET", &s, "nope", "m"],
                &["EXISTS", &k, "nope", &s],
                &["DEL", &k, "nope", &s],
                &["GETDEL", "m"],
                &["SETNX", &k, "y"],
                &["EXEC"],
                &["MULTI"],
                &["EXEC"],
                &["GET", &k],
            ],
        );
        let expected = concat!(
            "+OK\r\n+OK\r\n",
            "+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n",
            "+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n",
            "*13\r\n+OK\r\n:42\r\n$2\r\n42\r\n:3\r\n",
            "-ERR value is not an integer or out of range (or the sum would overflow)\r\n",
            "$3\r\n42x\r\n$3\r\n42x\r\n+OK\r\n*3\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n:2\r\n:2\r\n",
            "$1\r\nb\r\n:1\r\n",
            "+OK\r\n*0\r\n$1\r\ny\r\n",
        );
        assert_eq!(replies, expected, "node {node}");
    }
}

#[test]
fn queuing_errors_abort_exec_and_misplaced_transaction_commands_answer_like_redis() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let replies = exchange(
        &cluster,
        leader,
        &[
            &["EXEC"],
            &["DISCARD"],
            &["MULTI"],
            &["MULTI"],
            &["WATCH", "a"],
            &["SET", "a", "1"],
            &["EXEC"],
            // Unknown command, wrong number of arguments, a command transactions do not take.
            &["MULTI"],
            &["SET", "a", "2"],
            &["NOSUCH"],
            &["EXEC"],
            &["MULTI"],
            &["SET", "a", "3"],
            &["GET"],
            &["EXEC"],
            &["MULTI"],
            &["SET", "a", "4"],
            &["KEYS", "*"],
            &["EXEC"],
            &["MULTI"],
            &["SET", "a", "5"],
            &["DISCARD"],
            &["GET", "a"],
        ],
    );
    let lines: Vec<&str> = replies.split("\r\n").collect();
    let abort = "-EXECABORT Transaction discarded because of previous errors.";
    assert_eq!(lines[0], "-ERR EXEC without MULTI", "{replies}");
    assert_eq!(lines[1], "-ERR DISCARD without MULTI");
    assert_eq!(lines[2], "+OK");
    assert_eq!(lines[3], "-ERR MULTI calls can not be nested");
    assert_eq!(lines[4], "-ERR WATCH inside MULTI is not allowed");
    assert_eq!(lines[5..9], ["+QUEUED", "*1", "+OK", "+OK"], "{replies}");
    assert_eq!(lines[9], "+QUEUED");
    assert!(
        lines[10].starts_with("-ERR unknown command 'NOSUCH'"),
        "{replies}"
    );
    assert_eq!(lines[11], abort);
    assert_eq!(lines[12..14], ["+OK", "+QUEUED"]);
    assert_eq!(
        lines[14],
        "-ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(lines[15], abort);
    assert_eq!(lines[16..18], ["+OK", "+QUEUED"]);
    assert!(lines[18].starts_with("-ERR 'keys' is not allowed inside a transaction"));
    assert_eq!(lines[19], abort);
    assert_eq!(lines[20..23], ["+OK", "+QUEUED", "+OK"]);
    // Only the first transaction applied.
    assert_eq!(lines[23..26], ["$1", "1", ""], "{replies}");
}

#[test]
fn watch_aborts_exec_when_a_key_changed_even_back_to_its_value_and_exec_forgets_watches() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let mut con = cluster.redis(follower);
    let mut other = cluster.redis(leader);
    let ok = |r: RedisResult<Value>| r.unwrap();
    ok(q(&mut other, &["SET", "w", "0"]));
    // Changed and set back: the value is the same, the transaction still aborts (no ABA).
    assert_eq!(ok(q(&mut con, &["WATCH", "w", "absent"])), Value::Okay);
    ok(q(&mut other, &["SET", "w", "1"]));
    ok(q(&mut other, &["SET", "w", "0"]));
    assert_eq!(ok(q(&mut con, &["MULTI"])), Value::Okay);
    assert_eq!(
        ok(q(&mut con, &["SET", "x", "1"])),
        Value::SimpleString("QUEUED".into())
    );
    assert_eq!(ok(q(&mut con, &["EXEC"])), Value::Nil);
    assert_eq!(ok(q(&mut con, &["EXISTS", "x"])), Value::Int(0));
    // EXEC forgot the watch: the next transaction applies despite another change.
    ok(q(&mut con, &["MULTI"]));
    ok(q(&mut other, &["SET", "w", "2"]));
    ok(q(&mut con, &["INCR", "x"]));
    assert_eq!(
        ok(q(&mut con, &["EXEC"])),
        Value::Array(vec![Value::Int(1)])
    );
    // Unchanged: applies. UNWATCH and DISCARD forget watches too.
    ok(q(&mut con, &["WATCH", "w"]));
    ok(q(&mut con, &["MULTI"]));
    ok(q(&mut con, &["INCR", "x"]));
    assert_eq!(
        ok(q(&mut con, &["EXEC"])),
        Value::Array(vec![Value::Int(2)])
    );
    ok(q(&mut con, &["WATCH", "w"]));
    assert_eq!(ok(q(&mut con, &["UNWATCH"])), Value::Okay);
    ok(q(&mut other, &["SET", "w", "3"]));
    ok(q(&mut con, &["MULTI"]));
    ok(q(&mut con, &["INCR", "x"]));
    assert_eq!(
        ok(q(&mut con, &["EXEC"])),
        Value::Array(vec![Value::Int(3)])
    );
    // On the wire, a failed WATCH answers the nil *array*, as Redis does.
    let replies = exchange(
        &cluster,
        leader,
        &[
            &["WATCH", "w"],
            &["SET", "w", "4"],
            &["MULTI"],
            &["GET", "w"],
            &["EXEC"],
        ],
    );
    assert_eq!(replies, "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n");
    // MSETNX: all or nothing, guarded by absence.
    assert_eq!(
        ok(q(&mut con, &["MSETNX", "n1", "a", "n2", "b"])),
        Value::Int(1)
    );
    assert_eq!(
        ok(q(&mut con, &["MSETNX", "n3", "c", "n2", "d"])),
        Value::Int(0)
    );
    assert_eq!(ok(q(&mut con, &["EXISTS", "n3"])), Value::Int(0));
}

/// Transactions through `con` and `other` (two nodes) of a log protocol: one entry each.
pub fn transactions(protocol: &str, con: &mut Connection, other: &mut Connection, node: usize) {
    let key = format!("t{node}");
    let ok = |r: RedisResult<Value>| r.unwrap_or_else(|e| panic!("{protocol}: {e}"));
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(&key)
        .arg("1")
        .cmd("INCR")
        .arg(&key)
        .cmd("GET")
        .arg(&key);
    let (set, n, value): (String, i64, String) = pipe.query(con).unwrap();
    assert_eq!(
        (set.as_str(), n, value.as_str()),
        ("OK", 2, "2"),
        "{protocol}"
    );
    ok(q(con, &["WATCH", &key]));
    ok(q(other, &["SET", &key, "2"]));
    ok(q(con, &["MULTI"]));
    ok(q(con, &["INCR", &key]));
    assert_eq!(ok(q(con, &["EXEC"])), Value::Nil, "{protocol}: WATCH");
    ok(q(con, &["WATCH", &key]));
    ok(q(con, &["MULTI"]));
    ok(q(con, &["INCR", &key]));
    assert_eq!(
        ok(q(con, &["EXEC"])),
        Value::Array(vec![Value::Int(3)]),
        "{protocol}"
    );
    assert_eq!(
        ok(q(other, &["MSETNX", &key, "x"])),
        Value::Int(0),
        "{protocol}"
    );
}

/// How a protocol without one order of all writes refuses transactions: by name.
pub fn refuses_transactions(con: &mut Connection, names: &str) {
    let refused = |r: RedisResult<Value>| r.unwrap_err().to_string();
    ok_queued(q(con, &["MULTI"]), "+OK");
    ok_queued(q(con, &["SET", "a", "1"]), "QUEUED");
    let exec = refused(q(con, &["EXEC"]));
    let watch = refused(q(con, &["WATCH", "a"]));
    let msetnx = refused(q(con, &["MSETNX", "a", "1"]));
    for why in [exec, watch, msetnx] {
        assert!(
            why.contains("transactions (MULTI/EXEC, WATCH, MSETNX)")
                && why.contains(names)
                && why.contains("--protocol raft"),
            "{why}"
        );
    }
    let a: Option<String> = redis::Commands::get(con, "a").unwrap();
    assert_eq!(a, None, "the refused transaction wrote nothing");
}

fn ok_queued(result: RedisResult<Value>, what: &str) {
    let value = result.unwrap();
    match what {
        "QUEUED" => assert_eq!(value, Value::SimpleString("QUEUED".into())),
        _ => assert_eq!(value, Value::Okay),
    }
}
