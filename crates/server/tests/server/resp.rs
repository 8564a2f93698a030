//! The RESP front end against real in-process nodes on loopback: a Redis client library,
//! raw bytes as `redis-cli` would send them, and bad input that must not hurt.

use crate::common;

use common::{raw_exchange, TestCluster};
use quorate_server::FollowerMode;
use redis::{Commands, RedisResult};
use std::time::{Duration, Instant};

#[test]
fn redis_client_commands_work_on_the_leader_and_through_a_forwarding_follower() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    for node in [leader, follower] {
        let mut con = cluster.redis(node);
        let key = format!("k{node}");
        let _: () = con.set(&key, "v").unwrap();
        let value: String = con.get(&key).unwrap();
        assert_eq!(value, "v");
        let length: i64 = con.append(&key, "w").unwrap();
        assert_eq!(length, 2);
        let exists: i64 = con.exists(&key).unwrap();
        assert_eq!(exists, 1);
        let n: i64 = con.incr(format!("n{node}"), 1).unwrap();
        assert_eq!(n, 1);
        let n: i64 = redis::cmd("INCRBY")
            .arg(format!("n{node}"))
            .arg(41)
            .query(&mut con)
            .unwrap();
        assert_eq!(n, 42);
        let swapped: i64 = redis::cmd("CAS")
            .arg(&key)
            .arg("vw")
            .arg("x")
            .query(&mut con)
            .unwrap();
        assert_eq!(swapped, 1);
        let swapped: i64 = redis::cmd("CAS")
            .arg(&key)
            .arg("vw")
            .arg("y")
            .query(&mut con)
            .unwrap();
        assert_eq!(swapped, 0);
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg("z")
            .arg("NX")
            .query(&mut con)
            .unwrap();
        assert_eq!(set, None, "NX on an existing key does not set it");
        let deleted: i64 = con.del(&key).unwrap();
        assert_eq!(deleted, 1);
        let value: Option<String> = con.get(&key).unwrap();
        assert_eq!(value, None);
        let pong: String = redis::cmd("PING").query(&mut con).unwrap();
        assert_eq!(pong, "PONG");
    }
    let mut con = cluster.redis(follower);
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("role:follower"), "{info}");
    assert!(
        info.contains(&format!("leader_id:{}", leader + 1)),
        "{info}"
    );
    assert!(
        info.contains(&format!("leader_addr:{}", cluster.client_addr(leader))),
        "{info}"
    );
    assert!(info.contains("commit_index:"), "{info}");
}

#[test]
fn a_follower_in_redirect_mode_answers_moved_with_the_leaders_address() {
    let cluster = TestCluster::start(3, |c| c.follower = FollowerMode::Redirect);
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    // The leader's address is learned from its handshake; give it a moment to dial.
    std::thread::sleep(Duration::from_millis(300));
    let (reply, _) = raw_exchange(
        cluster.client_addr(follower),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        Duration::from_millis(500),
    );
    assert_eq!(
        reply,
        format!("-MOVED 0 {}\r\n", cluster.client_addr(leader))
    );
    // Stale reads stay local, and say nothing about the leader.
    let (reply, _) = raw_exchange(
        cluster.client_addr(follower),
        b"GET k LOCAL\r\n",
        Duration::from_millis(500),
    );
    assert_eq!(reply, "$-1\r\n");
}

#[test]
fn set_and_get_as_redis_cli_sends_them() {
    let cluster = TestCluster::start(1, |_| {});
    let addr = cluster.client_addr(0);
    let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    let (reply, _) = raw_exchange(addr, wire, Duration::from_millis(500));
    assert_eq!(reply, "+OK\r\n$1\r\nv\r\n");
    // redis-cli asks for command docs on start; an empty map (a flat list in RESP2) is fine.
    let (reply, _) = raw_exchange(
        addr,
        b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n",
        Duration::from_millis(300),
    );
    assert_eq!(reply, "*0\r\n");
    // Inline commands, as typed into telnet.
    let (reply, _) = raw_exchange(addr, b"GET k\r\nPING\r\n", Duration::from_millis(300));
    assert_eq!(reply, "$1\r\nv\r\n+PONG\r\n");
}

#[test]
fn hello_3_switches_the_connection_to_resp3_after_the_replies_before_it() {
    let cluster = TestCluster::start(1, |_| {});
    let addr = cluster.client_addr(0);
    // A pipeline: a nil in RESP2, HELLO 3, the same nil in RESP3, then HELLO 2 back.
    let wire = b"GET nokey\r\nHELLO 3 SETNAME app\r\nGET nokey\r\nCLIENT GETNAME\r\nHELLO 2\r\nGET nokey\r\n";
    let (reply, _) = raw_exchange(addr, wire, Duration::from_millis(500));
    let (before, rest) = reply.split_once("%7\r\n").expect(&reply);
    assert_eq!(before, "$-1\r\n", "{reply}");
    assert!(rest.contains("$5\r\nproto\r\n:3\r\n"), "{reply}");
    assert!(
        rest.contains("$6\r\nserver\r\n$7\r\nquorate\r\n"),
        "{reply}"
    );
    let (_, after) = rest.split_once("*0\r\n").expect(&reply); // modules, the last field
    assert!(after.starts_with("_\r\n$3\r\napp\r\n*14\r\n"), "{reply}");
    assert!(after.ends_with("$-1\r\n"), "{reply}");
    // Unknown versions and users are refused, and the connection stays as it was.
    let (reply, _) = raw_exchange(
        addr,
        b"HELLO 4\r\nHELLO 3 AUTH alice pw\r\nGET nokey\r\nCOMMAND COUNT\r\n",
        Duration::from_millis(300),
    );
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert!(lines[0].starts_with("-NOPROTO"), "{reply}");
    assert!(lines[1].starts_with("-WRONGPASS"), "{reply}");
    assert_eq!(lines[2], "$-1", "{reply}");
    assert!(
        lines[3].starts_with(':'),
        "COMMAND COUNT is an integer: {reply}"
    );
}

#[test]
fn pipelined_commands_are_answered_and_applied_in_order_on_the_leader_and_a_follower() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    for node in [leader, (leader + 1) % 3] {
        let mut wire = Vec::new();
        let mut expected = String::new();
        for i in 0..200 {
            let (key, value) = (format!("n{node}k{}", i % 10), format!("v{i}"));
            wire.extend_from_slice(
                format!("SET {key} {value}\r\nGET {key}\r\nPING\r\n").as_bytes(),
            );
            expected += &format!("+OK\r\n${}\r\n{value}\r\n+PONG\r\n", value.len());
        }
        let (reply, _) = raw_exchange(cluster.client_addr(node), &wire, Duration::from_secs(3));
        assert_eq!(reply, expected, "node {}", node + 1);
    }
}

#[test]
fn garbage_gets_a_protocol_error_and_the_connection_is_closed_but_the_node_serves_on() {
    let cluster = TestCluster::start(1, |_| {});
    let addr = cluster.client_addr(0);
    let attacks: [&[u8]; 6] = [
        b"*1\r\n$99999999999\r\n",
        b"*-7\r\n*1\r\n$-5\r\n",
        b"*2\r\n$3\r\nGET\r\n:notanumber\r\n",
        b"*1\r\n*1\r\n*1\r\n*1\r\n$1\r\nx\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nkXX",
        &[b'*', b'1', b'\r', b'\n', 0xff, 0x00, 0xfe, b'\r', b'\n'],
    ];
    for attack in attacks {
        let (reply, closed) = raw_exchange(addr, attack, Duration::from_secs(2));
        assert!(
            reply.starts_with("-ERR Protocol error"),
            "{attack:?} got {reply:?}"
        );
        assert!(closed, "{attack:?}: the connection must be closed");
    }
    // Random bytes: whatever the answer, the node keeps serving.
    let mut state = 0x1234_5678_9abc_def0u64;
    for _ in 0..50 {
        let bytes: Vec<u8> = (0..200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let table = b"*$:+-\r\n0123456789abcSETGET \x00\xff";
                table[(state % table.len() as u64) as usize]
            })
            .collect();
        let _ = raw_exchange(addr, &bytes, Duration::from_millis(50));
    }
    let (reply, _) = raw_exchange(addr, b"PING\r\n", Duration::from_millis(500));
    assert_eq!(reply, "+PONG\r\n");
}

#[test]
fn wrong_commands_get_errors_and_the_connection_stays_open() {
    let cluster = TestCluster::start(1, |c| c.value_max = 1024);
    let mut con = cluster.redis(0);
    let unknown: RedisResult<String> = redis::cmd("FLUSHALL").query(&mut con);
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("unknown command 'FLUSHALL'"));
    let arity: RedisResult<String> = redis::cmd("GET").query(&mut con);
    assert!(arity
        .unwrap_err()
        .to_string()
        .contains("wrong number of arguments for 'get'"));
    let big = vec![b'x'; 2000];
    let refused: RedisResult<()> = con.set("k", big.as_slice());
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("value is 2000 bytes, over the limit of 1024"),
        "{message}"
    );
    let expiry: RedisResult<()> = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EXAT")
        .arg(10)
        .query(&mut con);
    assert!(expiry
        .unwrap_err()
        .to_string()
        .contains("give a relative time"));
    let not_number: RedisResult<i64> = {
        let _: () = con.set("s", "abc").unwrap();
        con.incr("s", 1)
    };
    assert!(not_number
        .unwrap_err()
        .to_string()
        .contains("not an integer"));
    let value: Option<String> = con.get("k").unwrap();
    assert_eq!(value, None, "nothing refused was written");
}

#[test]
fn a_retried_append_in_a_resumed_session_applies_once() {
    let cluster = TestCluster::start(3, |_| {});
    let mut first = cluster.redis(0);
    let (id, seq): (i64, i64) = redis::cmd("CLIENT")
        .arg("SESSION")
        .query(&mut first)
        .unwrap();
    let length: i64 = first.append("log", "x").unwrap();
    assert_eq!(length, 1);
    drop(first); // Pretend the answer was lost with the connection.
    let mut second = cluster.redis(1);
    let _: () = redis::cmd("CLIENT")
        .arg("RESUME")
        .arg(id)
        .arg(seq)
        .query(&mut second)
        .unwrap();
    let length: i64 = second.append("log", "x").unwrap();
    assert_eq!(length, 1, "the retry returns the remembered answer");
    let value: String = second.get("log").unwrap();
    assert_eq!(value, "x", "and is not applied twice");
    let length: i64 = second.append("log", "y").unwrap();
    assert_eq!(length, 2, "the session continues with the next number");
}

#[test]
fn a_retried_incr_in_a_resumed_session_answers_what_it_answered() {
    // Before INCR was one operation of the state machine, the retry re-read the counter and
    // sent a different CAS under the old request number: it answered 2 (INCRBY: 20) while
    // the value stayed 1 (10).
    let cluster = TestCluster::start(3, |_| {});
    for (command, by, key) in [("INCR", None, "n1"), ("INCRBY", Some(10), "n10")] {
        let mut first = cluster.redis(0);
        let session = |con: &mut redis::Connection| -> (i64, i64) {
            redis::cmd("CLIENT").arg("SESSION").query(con).unwrap()
        };
        let incr = |con: &mut redis::Connection| -> i64 {
            let mut cmd = redis::cmd(command);
            cmd.arg(key);
            if let Some(by) = by {
                cmd.arg(by);
            }
            cmd.query(con).unwrap()
        };
        let _: Option<String> = first.get(key).unwrap(); // Reads take numbers too.
        let (id, seq) = session(&mut first);
        let answered = incr(&mut first);
        assert_eq!(answered, by.unwrap_or(1));
        drop(first); // Pretend the answer was lost with the connection.
        let mut second = cluster.redis(1);
        let _: () = redis::cmd("CLIENT")
            .arg("RESUME")
            .arg(id)
            .arg(seq)
            .query(&mut second)
            .unwrap();
        assert_eq!(
            incr(&mut second),
            answered,
            "the retry answers what the first did"
        );
        let value: i64 = second.get(key).unwrap();
        assert_eq!(value, answered, "and adds nothing");
        assert_eq!(incr(&mut second), 2 * answered, "the session goes on");
    }
}

#[test]
fn concurrent_increments_through_every_node_are_atomic() {
    // As `redis-benchmark -t incr -c 16` does, on one key: no client-side CAS loop to give up.
    let cluster = TestCluster::start(3, |_| {});
    std::thread::scope(|scope| {
        for t in 0..16 {
            let cluster = &cluster;
            scope.spawn(move || {
                let mut con = cluster.redis(t % 3);
                for _ in 0..25 {
                    let _: i64 = con.incr("counter", 1).unwrap();
                }
            });
        }
    });
    let mut con = cluster.redis(0);
    let total: i64 = con.get("counter").unwrap();
    assert_eq!(total, 400);
}

#[test]
fn read_modes_are_chosen_per_connection_and_per_request() {
    let cluster = TestCluster::start(3, |_| {});
    let mut con = cluster.redis(1);
    let _: () = con.set("k", "v").unwrap();
    let mode: String = redis::cmd("READMODE").query(&mut con).unwrap();
    assert_eq!(mode, "linearizable");
    let _: () = redis::cmd("READMODE").arg("LOCAL").query(&mut con).unwrap();
    let mode: String = redis::cmd("READMODE").query(&mut con).unwrap();
    assert_eq!(mode, "local");
    // A local read on a follower may lag; it converges quickly on a quiet cluster.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let value: Option<String> = redis::cmd("GET")
            .arg("k")
            .arg("LOCAL")
            .query(&mut con)
            .unwrap();
        if value.as_deref() == Some("v") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "local read never caught up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let bad: RedisResult<()> = redis::cmd("READMODE").arg("SOMETIMES").query(&mut con);
    assert!(bad.unwrap_err().to_string().contains("unknown read mode"));
}

#[test]
fn acknowledged_writes_survive_a_restart_of_every_node() {
    let mut cluster = TestCluster::start(3, |_| {});
    let mut con = cluster.redis(0);
    for i in 0..50 {
        let _: () = con.set(format!("k{i}"), i).unwrap();
    }
    drop(con);
    for i in 0..3 {
        cluster.stop_node(i);
    }
    for i in 0..3 {
        cluster.start_node(i);
    }
    cluster.wait_for_leader(Duration::from_secs(10));
    let mut con = cluster.redis(2);
    for i in 0..50 {
        let value: i64 = con.get(format!("k{i}")).unwrap();
        assert_eq!(value, i);
    }
}

/// One HTTP/1.1 GET against `addr`: the status code and the body.
pub(crate) fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[test]
fn the_metrics_port_serves_metrics_health_and_readiness_and_counts_leader_changes() {
    let cluster = TestCluster::start(3, |_| {});
    let metrics: Vec<_> = (0..3).map(|i| cluster.metrics_addr(i)).collect();
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let addr = metrics[leader];
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    let seen: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("quorate_leader_changes_seen_total "))
        .expect(&body)
        .parse()
        .unwrap();
    assert!(seen >= 1, "the leader saw itself elected: {seen}");
    let mut con = cluster.redis(leader);
    let _: () = con.set("k", "v").unwrap();
    let (_, body) = http_get(addr, "/metrics");
    assert!(
        body.lines()
            .any(|l| l == "quorate_request_seconds_count{command=\"set\"} 1"),
        "{body}"
    );
    assert_eq!(http_get(addr, "/health"), (200, "ok\n".into()));
    // Every node knows the leader once the first heartbeat arrived.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for m in &metrics {
        while http_get(*m, "/ready").0 != 200 {
            assert!(std::time::Instant::now() < deadline, "{m} never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(http_get(addr, "/nosuch").0, 404);
    assert_eq!(http_get(addr, "/").0, 404, "only /metrics serves metrics");
}

#[test]
fn connections_holding_half_a_command_are_closed_so_they_cannot_hold_every_slot() {
    use std::io::{Read, Write};
    let cluster = TestCluster::start(1, |config| {
        config.connections_max = 4;
        config.client_partial_timeout_ms = 1500;
    });
    let addr = cluster.client_addr(0);
    let mut held: Vec<std::net::TcpStream> = (0..6)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nke").unwrap();
            s
        })
        .collect();
    // Every slot is held: the connections beyond the fourth are refused.
    let mut refused = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut reply = [0u8; 64];
        if let Ok(n) = s.read(&mut reply) {
            assert!(String::from_utf8_lossy(&reply[..n]).contains("max number of clients"));
            refused += 1;
        }
    }
    assert!(refused >= 2, "only {refused} of 6 refused with 4 slots");
    // After the partial timeout the half-commands are closed and the slots are free.
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        // Closed: the end of the stream, or a reset where the node never read what we sent.
        if let Err(e) = s.read_to_end(&mut rest) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset,
                "still open: {e}"
            );
        }
    }
    let (reply, _) = raw_exchange(addr, b"PING\r\n", Duration::from_millis(300));
    assert_eq!(reply, "+PONG\r\n");
    // A client that sends a command slowly but within the limit is served.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    for part in [&b"*1\r\n"[..], b"$4\r\n", b"PING\r\n"] {
        slow.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    slow.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut pong = [0u8; 7];
    slow.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
}

#[test]
fn an_idle_timeout_closes_quiet_connections_only_when_configured() {
    use std::io::Read;
    for (idle_ms, closed) in [(300, true), (0, false)] {
        let cluster = TestCluster::start(1, |config| config.client_idle_timeout_ms = idle_ms);
        let mut quiet = std::net::TcpStream::connect(cluster.client_addr(0)).unwrap();
        quiet
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut rest = Vec::new();
        let ended = quiet.read_to_end(&mut rest).is_ok();
        assert_eq!(ended, closed, "idle timeout {idle_ms} ms");
    }
}

#[test]
fn passwords_and_roles_are_enforced_for_a_real_redis_client() {
    use quorate_server::auth::{Role, UserConfig};
    let cluster = TestCluster::start(3, |config| {
        config.requirepass = Some("s3cret".into());
        config.users = vec![
            UserConfig {
                name: "reader".into(),
                password: "r3ad".into(),
                role: Role::ReadOnly,
            },
            UserConfig {
                name: "writer".into(),
                password: "wr1te".into(),
                role: Role::ReadWrite,
            },
        ];
    });
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let addr = cluster.client_addr((leader + 1) % 3); // Through a forwarding follower.
    let connect = |url: String| {
        redis::Client::open(url)
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
    };
    // Without AUTH: every command but AUTH, HELLO and QUIT is refused.
    let mut anonymous = connect(format!("redis://{addr}/")).unwrap();
    let refused: RedisResult<Option<String>> = redis::cmd("GET").arg("k").query(&mut anonymous);
    assert!(
        refused.unwrap_err().to_string().contains("NOAUTH"),
        "GET before AUTH"
    );
    let refused: RedisResult<String> = redis::cmd("PING").query(&mut anonymous);
    assert!(refused.is_err(), "PING before AUTH");
    // The default user writes; the reader reads but may not write.
    let mut admin = connect(format!("redis://:s3cret@{addr}/")).unwrap();
    let _: () = admin.set("k", "v").unwrap();
    let mut reader = connect(format!("redis://reader:r3ad@{addr}/")).unwrap();
    let value: String = reader.get("k").unwrap();
    assert_eq!(value, "v");
    let denied: RedisResult<()> = reader.set("k", "w");
    let denied = denied.unwrap_err().to_string();
    assert!(
        denied.contains("NOPERM") && denied.contains("'set'"),
        "{denied}"
    );
    let value: String = admin.get("k").unwrap();
    assert_eq!(value, "v", "the refused SET did not happen");
    // Backups are for admins: a read-write user may not take one, the default user may.
    let mut writer = connect(format!("redis://writer:wr1te@{addr}/")).unwrap();
    let denied: RedisResult<Vec<u8>> = redis::cmd("SNAPSHOT").query(&mut writer);
    let denied = denied.unwrap_err().to_string();
    assert!(
        denied.contains("NOPERM") && denied.contains("'snapshot'"),
        "{denied}"
    );
    let at_leader = cluster.client_addr(leader);
    let mut admin_at_leader = connect(format!("redis://:s3cret@{at_leader}/")).unwrap();
    let bytes: Vec<u8> = redis::cmd("SNAPSHOT").query(&mut admin_at_leader).unwrap();
    let backup = quorate_server::backup::decode(&bytes).unwrap();
    assert_eq!(backup.store.get(b"k").map(|v| &v[..]), Some(&b"v"[..]));
    assert_eq!(backup.header.cluster_size, 3);
    // Wrong passwords are refused when the connection opens.
    let wrong = connect(format!("redis://reader:nope@{addr}/"));
    assert!(wrong.is_err(), "a wrong password connected");
    // AUTH on an open connection, and HELLO's AUTH, as raw bytes.
    let (reply, _) = raw_exchange(
        addr,
        b"HELLO 3\r\nAUTH wrong\r\nAUTH s3cret\r\nHELLO 3 AUTH reader r3ad\r\nDEL k\r\n",
        Duration::from_millis(500),
    );
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert!(lines[0].starts_with("-NOAUTH HELLO"), "{reply}");
    assert!(lines[1].starts_with("-WRONGPASS"), "{reply}");
    assert_eq!(lines[2], "+OK", "{reply}");
    assert!(lines[3].starts_with("%7"), "{reply}");
    assert!(
        reply.contains("-NOPERM User reader has no permissions to run the 'del' command"),
        "{reply}"
    );
}

/// A client that pipelines large GETs and never reads owes the node ever more reply bytes;
/// past `client_output_buffer_max` the node closes it instead of holding them (before the
/// bound, the node kept every reply it could not send).
#[test]
fn a_client_that_never_reads_is_closed_at_the_output_buffer_limit() {
    use std::io::{Read, Write};
    let cluster = TestCluster::start(1, |c| c.client_output_buffer_max = 1 << 20);
    let mut conn = cluster.redis(0);
    let value = vec![b'x'; 256 << 10];
    let _: () = conn.set("big", &value).unwrap();
    // 400 GETs owe 100 MiB of replies: more than the kernel's socket buffers and the limit.
    let gets = 400;
    let mut stream = std::net::TcpStream::connect(cluster.client_addr(0)).unwrap();
    let request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(gets);
    stream.write_all(&request).unwrap();
    let (_, body) = http_get(cluster.metrics_addr(0), "/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut body = body;
    while !body.contains("quorate_client_output_buffer_closed_total 1")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        body = http_get(cluster.metrics_addr(0), "/metrics").1;
    }
    assert!(
        body.contains("quorate_client_output_buffer_closed_total 1"),
        "the node did not close the connection that owes it {gets} replies"
    );
    // What the client can still read is what had reached its socket: far from all replies.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut received = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        received += n;
    }
    assert!(
        received < gets * value.len() / 2,
        "received {received} bytes: the connection was not cut short"
    );
    // The node itself carries on.
    let back: Vec<u8> = cluster.redis(0).get("big").unwrap();
    assert_eq!(back.len(), value.len());
}

#[test]
fn strlen_type_setnx_and_exists_on_many_keys_answer_like_redis() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let mut con = cluster.redis(leader);
    let set: i64 = redis::cmd("SETNX")
        .arg("a")
        .arg("xyz")
        .query(&mut con)
        .unwrap();
    assert_eq!(set, 1);
    let set: i64 = redis::cmd("SETNX")
        .arg("a")
        .arg("other")
        .query(&mut con)
        .unwrap();
    assert_eq!(set, 0, "SETNX leaves an existing key alone");
    assert_eq!(con.strlen::<_, i64>("a").unwrap(), 3);
    assert_eq!(con.strlen::<_, i64>("missing").unwrap(), 0);
    let kind: String = redis::cmd("TYPE").arg("a").query(&mut con).unwrap();
    assert_eq!(kind, "string");
    let kind: String = redis::cmd("TYPE").arg("missing").query(&mut con).unwrap();
    assert_eq!(kind, "none");
    let _: () = con.set("b", "1").unwrap();
    let found: i64 = con.exists(&["a", "b", "missing", "a"]).unwrap();
    assert_eq!(found, 3, "a key named twice counts twice");
}

// Keys that expire: the deadline is stamped by the leader, the removal committed through the
// log, and after it no node answers the value, also after the leader that stamped it is killed.

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
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("EX")
        .arg(1)
        .query(&mut con)
        .unwrap();
    // The leader stamps a deadline when it proposes the SET, after the client sent it and
    // before it answers: time the deadlines from the answers, or a loaded machine reads before
    // them (the test failed so, reading `long` a few ms before its deadline).
    let set = Instant::now();
    let _: () = con.set_ex("long", "w", 3).unwrap();
    let set_long = Instant::now();
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
    std::thread::sleep(Duration::from_millis(3_000).saturating_sub(set_long.elapsed()));
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

// The SET options, compare-and-delete, GETSET/GETDEL and MSET/MGET: exact replies (nil, OK,
// previous values, errors) through the leader and through a forwarding follower.

use crate::common::{query, query_err};

fn bulk(s: &str) -> redis::Value {
    redis::Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn set_options_compare_and_delete_getset_getdel_mset_and_mget_answer_like_redis() {
    use redis::Value::{Int, Nil, Okay};
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    for node in [leader, (leader + 1) % 3] {
        let mut con = cluster.redis(node);
        let at = |name: &str| format!("{name}{node}");
        let (lock, x, g, m1, m2) = (at("lock"), at("x"), at("g"), at("m1"), at("m2"));
        let q = |con: &mut redis::Connection, args: &[&str]| query(con, args);

        // A lock with a lease: SET NX PX takes it once; the holder's token is its value.
        assert_eq!(q(&mut con, &["SET", &lock, "t1", "NX", "PX", "5000"]), Okay);
        assert_eq!(q(&mut con, &["SET", &lock, "t2", "NX", "PX", "5000"]), Nil);
        let pttl: i64 = con.pttl(&lock).unwrap();
        assert!((4_000..=5_000).contains(&pttl), "{pttl}");
        assert_eq!(q(&mut con, &["GET", &lock]), bulk("t1"));
        // Compare-and-delete: only the holder's token releases it.
        assert_eq!(q(&mut con, &["DELIFEQ", &lock, "t2"]), Int(0));
        assert_eq!(q(&mut con, &["GET", &lock]), bulk("t1"));
        assert_eq!(q(&mut con, &["DELIFEQ", &lock, "t1"]), Int(1));
        assert_eq!(q(&mut con, &["GET", &lock]), Nil);
        assert_eq!(q(&mut con, &["DELIFEQ", &lock, "t1"]), Int(0));
        assert_eq!(q(&mut con, &["DELEX", &lock, "IFEQ", "t1"]), Int(0));

        // GET: the previous value instead of OK, whether or not the condition allowed it.
        assert_eq!(
            q(&mut con, &["SET", &lock, "t3", "NX", "PX", "5000", "GET"]),
            Nil
        );
        assert_eq!(q(&mut con, &["SET", &lock, "t4", "NX", "GET"]), bulk("t3"));
        assert_eq!(
            q(&mut con, &["GET", &lock]),
            bulk("t3"),
            "NX GET did not set"
        );
        assert_eq!(q(&mut con, &["SET", &x, "v", "XX"]), Nil);
        assert_eq!(q(&mut con, &["EXISTS", &x]), Int(0), "XX on an absent key");
        assert_eq!(q(&mut con, &["SET", &lock, "t5", "XX", "GET"]), bulk("t3"));
        assert_eq!(
            q(&mut con, &["TTL", &lock]),
            Int(-1),
            "SET without EX clears it"
        );
        assert_eq!(q(&mut con, &["DELEX", &lock, "IFEQ", "t5"]), Int(1));
        assert_eq!(
            q(&mut con, &["DELEX", &lock]),
            Int(0),
            "DELEX without IFEQ is DEL"
        );

        // GETSET and GETDEL.
        assert_eq!(q(&mut con, &["GETSET", &g, "1"]), Nil);
        assert_eq!(q(&mut con, &["GETSET", &g, "2"]), bulk("1"));
        assert_eq!(q(&mut con, &["GETDEL", &g]), bulk("2"));
        assert_eq!(q(&mut con, &["GETDEL", &g]), Nil);
        assert_eq!(q(&mut con, &["EXISTS", &g]), Int(0));

        // MSET sets every pair (a key given twice takes its last value); MGET answers in order.
        assert_eq!(q(&mut con, &["MSET", &m1, "a", &m2, "b", &m1, "c"]), Okay);
        assert_eq!(
            q(&mut con, &["MGET", &m1, "missing", &m2]),
            redis::Value::Array(vec![bulk("c"), Nil, bulk("b")])
        );

        // Errors, as Redis words them.
        for args in [
            &["SET", &x, "1", "NX", "XX"][..],
            &["SET", &x, "1", "EX", "10", "PX", "10"],
            &["SET", &x, "1", "BOGUS"],
            &["DELEX", &x, "BOGUS", "1"],
        ] {
            assert!(
                query_err(&mut con, args).contains("syntax error"),
                "{args:?}"
            );
        }
        assert!(query_err(&mut con, &["SET", &x, "1", "NX", "PX", "0"]).contains("invalid expire"));
        assert!(query_err(&mut con, &["SET", &x, "1", "KEEPTTL"]).contains("not supported"));
        assert!(query_err(&mut con, &["DELEX", &x, "IFNE", "1"]).contains("not supported"));
        for args in [&["MSET", &m1][..], &["MGET"], &["DELIFEQ", &x], &["GETDEL"]] {
            let why = query_err(&mut con, args);
            assert!(why.contains("wrong number of arguments"), "{args:?}: {why}");
        }
        assert_eq!(q(&mut con, &["EXISTS", &x]), Int(0), "no refused SET wrote");
    }
}

#[test]
fn a_lock_holder_whose_lease_expired_cannot_release_the_next_holders_lock() {
    use redis::Value::{Int, Nil, Okay};
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let mut con = cluster.redis(leader);
    assert_eq!(
        query(&mut con, &["SET", "lock", "a", "NX", "PX", "100"]),
        Okay
    );
    // The lease runs out through the log (an `Expired` entry); then another client takes it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while query(&mut con, &["SET", "lock", "b", "NX", "PX", "10000"]) == Nil {
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(query(&mut con, &["DELIFEQ", "lock", "a"]), Int(0));
    for i in 0..3 {
        let value: Option<String> = cluster.redis(i).get("lock").unwrap();
        assert_eq!(value.as_deref(), Some("b"), "node {i}");
    }
    assert_eq!(query(&mut con, &["DELIFEQ", "lock", "b"]), Int(1));
}

/// redis-py's Lock scripts, laid out on one line (layout does not matter).
const RELEASE_SCRIPT: &str = "local token = redis.call('get', KEYS[1]) if not token or token ~= ARGV[1] then return 0 end redis.call('del', KEYS[1]) return 1";
const EXTEND_SCRIPT: &str = "local token = redis.call('get', KEYS[1]) if not token or token ~= ARGV[1] then return 0 end local expiration = redis.call('pttl', KEYS[1]) if not expiration then expiration = 0 end if expiration < 0 then return 0 end local newttl = ARGV[2] if ARGV[3] == \"0\" then newttl = ARGV[2] + expiration end if tonumber(newttl) <= 0 then return 1 end redis.call('pexpire', KEYS[1], newttl) return 1";

#[test]
fn lock_scripts_run_by_eval_and_evalsha_and_other_scripts_are_refused() {
    use redis::Value::{Array, Int, Nil, Okay};
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    for node in [leader, (leader + 1) % 3] {
        let mut con = cluster.redis(node);
        let lock = format!("script-lock{node}");
        let q = |con: &mut redis::Connection, args: &[&str]| query(con, args);
        let sha = match q(&mut con, &["SCRIPT", "LOAD", RELEASE_SCRIPT]) {
            redis::Value::BulkString(sha) => String::from_utf8(sha).unwrap(),
            other => panic!("SCRIPT LOAD answered {other:?}"),
        };
        assert_eq!(sha.len(), 40, "{sha}");
        assert_eq!(
            q(&mut con, &["SCRIPT", "EXISTS", &sha, &"0".repeat(40)]),
            Array(vec![Int(1), Int(0)])
        );
        // Release: only the holder's token deletes the key.
        assert_eq!(q(&mut con, &["SET", &lock, "t1", "NX", "PX", "5000"]), Okay);
        assert_eq!(q(&mut con, &["EVALSHA", &sha, "1", &lock, "t2"]), Int(0));
        assert_eq!(q(&mut con, &["GET", &lock]), bulk("t1"));
        // Extend: the holder adds 10 s to the time left; another token changes nothing.
        assert_eq!(
            q(
                &mut con,
                &["EVAL", EXTEND_SCRIPT, "1", &lock, "t2", "10000", "0"]
            ),
            Int(0)
        );
        assert_eq!(
            q(
                &mut con,
                &["EVAL", EXTEND_SCRIPT, "1", &lock, "t1", "10000", "0"]
            ),
            Int(1)
        );
        let pttl: i64 = con.pttl(&lock).unwrap();
        assert!((13_000..=15_000).contains(&pttl), "{pttl}");
        assert_eq!(
            q(
                &mut con,
                &["EVAL", EXTEND_SCRIPT, "1", &lock, "t1", "2000", "1"]
            ),
            Int(1)
        );
        let pttl: i64 = con.pttl(&lock).unwrap();
        assert!((1_000..=2_000).contains(&pttl), "{pttl}");
        assert_eq!(
            q(
                &mut con,
                &["EVALSHA", &sha.to_uppercase(), "1", &lock, "t1"]
            ),
            Int(1)
        );
        assert_eq!(q(&mut con, &["GET", &lock]), Nil);
        // A key without a deadline has none to extend.
        assert_eq!(q(&mut con, &["SET", &lock, "t3"]), Okay);
        assert_eq!(
            q(
                &mut con,
                &["EVAL", EXTEND_SCRIPT, "1", &lock, "t3", "1000", "0"]
            ),
            Int(0)
        );
        assert_eq!(q(&mut con, &["PTTL", &lock]), Int(-1));
        // Anything else is refused by name; an unknown digest is NOSCRIPT, as in Redis.
        let refused = query_err(&mut con, &["EVAL", "return redis.call('flushall')", "0"]);
        assert!(refused.contains("quorate runs no Lua"), "{refused}");
        let refused = query_err(&mut con, &["SCRIPT", "LOAD", "return 1"]);
        assert!(refused.contains("quorate runs no Lua"), "{refused}");
        let unknown = query_err(&mut con, &["EVALSHA", &"0".repeat(40), "0"]);
        assert!(unknown.contains("No matching script"), "{unknown}");
        let keys = query_err(&mut con, &["EVALSHA", &sha, "2", &lock, "x", "t1"]);
        assert!(keys.contains("takes 1 key"), "{keys}");
    }
}
