//! Leases over RESP against real nodes: `LEASE GRANT|KEEPALIVE|REVOKE|TTL|PTTL|KEYS`,
//! `SET ... LEASE id`, and ephemeral keys (`SET ... EPHEMERAL`, `CLIENT LEASE`,
//! `CLIENT SESSIONTIMEOUT`) that live as long as their connection.

use crate::common::TestCluster;
use redis::Value::{Int, Nil, Okay};
use redis::{Commands, Value};
use std::time::{Duration, Instant};

use crate::common::{query, query_err};

fn int(value: Value) -> i64 {
    match value {
        Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn keys(value: Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("not a key: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Waits until `key` reads absent through `con` (linearizable), failing after `within`.
fn wait_absent(con: &mut redis::Connection, key: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let value: Option<String> = con.get(key).unwrap();
        if value.is_none() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{key} still there after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_lease_holds_several_keys_is_renewed_revoked_and_expires() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let mut con = cluster.redis(leader);
    // Through a forwarding follower as well: the leader stamps the deadlines either way.
    let mut via = cluster.redis(follower);

    let id = int(query(&mut con, &["LEASE", "GRANT", "10"]));
    assert!(id > 0);
    let granted = Instant::now();
    assert_eq!(
        query(&mut con, &["SET", "a", "1", "LEASE", &id.to_string()]),
        Okay
    );
    assert_eq!(
        query(&mut via, &["SET", "b", "2", "LEASE", &id.to_string()]),
        Okay
    );
    assert_eq!(
        keys(query(&mut via, &["LEASE", "KEYS", &id.to_string()])),
        ["a", "b"]
    );
    // A key's TTL is its lease's.
    let ttl: i64 = con.ttl("a").unwrap();
    assert!((9..=10).contains(&ttl), "TTL a = {ttl}");
    let pttl = int(query(&mut con, &["LEASE", "PTTL", &id.to_string()]));
    let key_pttl: i64 = con.pttl("b").unwrap();
    assert!((8_000..=10_000).contains(&pttl), "LEASE PTTL = {pttl}");
    assert!((pttl - key_pttl).abs() < 500, "{pttl} vs {key_pttl}");
    assert_eq!(int(query(&mut via, &["LEASE", "TTL", &id.to_string()])), 10);
    assert_eq!(
        int(query(&mut con, &["LEASE", "TTL", &id.to_string(), "LOCAL"])),
        10
    );

    // A keep-alive moves the deadline a full time to live past now.
    std::thread::sleep(Duration::from_millis(2_100).saturating_sub(granted.elapsed()));
    let before = int(query(&mut con, &["LEASE", "PTTL", &id.to_string()]));
    assert!(before <= 8_000, "{before}");
    assert_eq!(
        int(query(&mut via, &["LEASE", "KEEPALIVE", &id.to_string()])),
        10
    );
    let after = int(query(&mut con, &["LEASE", "PTTL", &id.to_string()]));
    assert!(after > before + 500, "keep-alive: {before} -> {after}");

    // Revoking removes both keys at once and says how many.
    assert_eq!(
        int(query(&mut con, &["LEASE", "REVOKE", &id.to_string()])),
        2
    );
    for key in ["a", "b"] {
        let value: Option<String> = via.get(key).unwrap();
        assert_eq!(value, None, "{key} after the revocation");
    }
    let gone = format!("ERR lease {id} not found (it expired or was revoked)");
    for sub in ["REVOKE", "KEEPALIVE", "KEYS"] {
        let e = query_err(&mut con, &["LEASE", sub, &id.to_string()]);
        assert!(e.contains(&gone[4..]), "LEASE {sub}: {e}");
    }
    assert_eq!(int(query(&mut con, &["LEASE", "TTL", &id.to_string()])), -2);
    assert_eq!(int(query(&mut con, &["LEASE", "PTTL", "999999"])), -2);

    // Attaching to a lease that is gone (or never was) writes nothing.
    for lease in [id.to_string(), "999999".to_string()] {
        let e = query_err(&mut via, &["SET", "c", "3", "LEASE", &lease]);
        assert!(e.contains("not found (it expired or was revoked)"), "{e}");
    }
    let value: Option<String> = con.get("c").unwrap();
    assert_eq!(value, None, "a refused SET LEASE wrote nothing");

    // Expiry: the leader removes the lease and every key on it after the time to live.
    let short = int(query(&mut con, &["LEASE", "GRANT", "PX", "600"]));
    assert_eq!(
        query(&mut con, &["SET", "x", "1", "LEASE", &short.to_string()]),
        Okay
    );
    assert_eq!(
        query(&mut con, &["SET", "y", "2", "LEASE", &short.to_string()]),
        Okay
    );
    let _: () = con.set("plain", "p").unwrap();
    // A plain SET detaches a key from its lease.
    assert_eq!(
        query(&mut con, &["SET", "z", "3", "LEASE", &short.to_string()]),
        Okay
    );
    let _: () = con.set("z", "kept").unwrap();
    let waited = wait_absent(&mut via, "x", Duration::from_secs(5));
    let value: Option<String> = con.get("y").unwrap();
    assert_eq!(value, None, "y expired with x");
    assert!(
        waited >= Duration::from_millis(300),
        "x went after {waited:?}"
    );
    assert_eq!(
        con.get::<_, Option<String>>("plain").unwrap().as_deref(),
        Some("p")
    );
    assert_eq!(
        con.get::<_, Option<String>>("z").unwrap().as_deref(),
        Some("kept")
    );
    assert_eq!(
        int(query(&mut con, &["LEASE", "TTL", &short.to_string()])),
        -2
    );
    let e = query_err(&mut con, &["LEASE", "KEEPALIVE", &short.to_string()]);
    assert!(e.contains("not found"), "{e}");
}

#[test]
fn lease_arguments_transactions_and_the_command_table() {
    let cluster = TestCluster::start(1, |_| {});
    let mut con = cluster.redis(0);
    for (args, expected) in [
        (vec!["LEASE", "GRANT", "0"], "must be positive"),
        (vec!["LEASE", "GRANT", "PX", "-5"], "must be positive"),
        (vec!["LEASE", "GRANT", "x"], "not an integer"),
        (vec!["LEASE", "KEEPALIVE", "0"], "positive integer"),
        (vec!["LEASE", "NOPE", "1"], "unknown subcommand"),
        (vec!["LEASE", "TTL", "1", "SOMETIMES"], "unknown read mode"),
        (
            vec!["SET", "k", "v", "LEASE", "1", "EX", "5"],
            "syntax error",
        ),
        (vec!["SET", "k", "v", "NX", "LEASE", "1"], "syntax error"),
        (vec!["SET", "k", "v", "EPHEMERAL", "GET"], "syntax error"),
        (
            vec!["SET", "k", "v", "LEASE", "1", "EPHEMERAL"],
            "syntax error",
        ),
        (vec!["CLIENT", "SESSIONTIMEOUT", "10"], "between"),
    ] {
        let e = query_err(&mut con, &args);
        assert!(e.contains(expected), "{args:?}: {e}");
    }
    assert_eq!(con.get::<_, Option<String>>("k").unwrap(), None);

    // Inside MULTI: refused with a reason, and the transaction is aborted.
    let id = int(query(&mut con, &["LEASE", "GRANT", "30"])).to_string();
    assert_eq!(query(&mut con, &["MULTI"]), Okay);
    let e = query_err(&mut con, &["LEASE", "KEEPALIVE", &id]);
    assert!(
        e.contains("LEASE is not allowed inside a transaction"),
        "{e}"
    );
    let e = query_err(&mut con, &["SET", "k", "v", "LEASE", &id]);
    assert!(e.contains("LEASE or EPHEMERAL is not allowed"), "{e}");
    let e = query_err(&mut con, &["EXEC"]);
    assert!(e.contains("Transaction discarded"), "{e}");

    // COMMAND knows LEASE.
    let Value::Array(info) = query(&mut con, &["COMMAND", "INFO", "lease"]) else {
        panic!("COMMAND INFO");
    };
    let Value::Array(entry) = &info[0] else {
        panic!("no entry for lease: {info:?}");
    };
    assert_eq!(entry[0], Value::BulkString(b"lease".to_vec()));
    assert_eq!(entry[1], Int(-3));
}

#[test]
fn ephemeral_keys_live_as_long_as_their_connection() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let mut observer = cluster.redis(leader);

    // Through a follower, which forwards the grant, the writes and the renewals.
    let mut session = cluster.redis(follower);
    assert_eq!(query(&mut session, &["CLIENT", "LEASE"]), Nil);
    assert_eq!(
        int(query(&mut session, &["CLIENT", "SESSIONTIMEOUT"])),
        10_000
    );
    assert_eq!(
        query(&mut session, &["CLIENT", "SESSIONTIMEOUT", "1000"]),
        Okay
    );
    assert_eq!(query(&mut session, &["SET", "e1", "a", "EPHEMERAL"]), Okay);
    assert_eq!(query(&mut session, &["SET", "e2", "b", "EPHEMERAL"]), Okay);
    let id = int(query(&mut session, &["CLIENT", "LEASE"]));
    assert_eq!(
        keys(query(&mut observer, &["LEASE", "KEYS", &id.to_string()])),
        ["e1", "e2"],
        "both keys on the one session lease"
    );
    let e = query_err(&mut session, &["CLIENT", "SESSIONTIMEOUT", "5000"]);
    assert!(e.contains("already granted"), "{e}");

    // The server renews the lease while the connection is open: well past the timeout the
    // keys are still there, though the client sent nothing.
    std::thread::sleep(Duration::from_millis(2_500));
    for key in ["e1", "e2"] {
        let value: Option<String> = observer.get(key).unwrap();
        assert!(
            value.is_some(),
            "{key} expired while its connection was open"
        );
    }
    assert_eq!(int(query(&mut session, &["CLIENT", "LEASE"])), id);

    // A session lease that ends under the connection (revoked here by another client; a node
    // cut off longer than the timeout is the real case) is replaced by the next ephemeral
    // write, which is not refused...
    assert_eq!(
        int(query(&mut observer, &["LEASE", "REVOKE", &id.to_string()])),
        2
    );
    assert_eq!(query(&mut session, &["SET", "e1", "a2", "EPHEMERAL"]), Okay);
    let second = int(query(&mut session, &["CLIENT", "LEASE"]));
    assert_ne!(second, id, "a new session lease");
    assert_eq!(
        keys(query(
            &mut observer,
            &["LEASE", "KEYS", &second.to_string()]
        )),
        ["e1"]
    );
    // ... and the renewal task that finds it gone forgets it.
    assert_eq!(
        int(query(
            &mut observer,
            &["LEASE", "REVOKE", &second.to_string()]
        )),
        1
    );
    let start = Instant::now();
    while query(&mut session, &["CLIENT", "LEASE"]) != Nil {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the lost lease is still held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(query(&mut session, &["SET", "e1", "a3", "EPHEMERAL"]), Okay);
    let third = int(query(&mut session, &["CLIENT", "LEASE"]));
    assert!(third != id && third != second, "{third}");
    drop(session);
    wait_absent(&mut observer, "e1", Duration::from_secs(5));

    // Closing revokes the lease: with the default session timeout of 10 s, the keys go far
    // sooner than it, whether the client says QUIT or just drops the connection.
    for quit in [true, false] {
        let mut con = cluster.redis(if quit { follower } else { leader });
        assert_eq!(query(&mut con, &["SET", "e3", "c", "EPHEMERAL"]), Okay);
        assert_eq!(query(&mut con, &["SET", "e4", "d", "EPHEMERAL"]), Okay);
        let other = int(query(&mut con, &["CLIENT", "LEASE"]));
        assert_ne!(other, id, "a new connection has a lease of its own");
        if quit {
            assert_eq!(query(&mut con, &["QUIT"]), Okay);
        }
        drop(con);
        let waited = wait_absent(&mut observer, "e3", Duration::from_secs(5));
        let value: Option<String> = observer.get("e4").unwrap();
        assert_eq!(value, None, "e4 went with e3");
        assert_eq!(
            int(query(&mut observer, &["LEASE", "TTL", &other.to_string()])),
            -2
        );
        println!("ephemeral keys gone {waited:?} after the close (QUIT: {quit})");
    }
}

#[test]
fn protocols_without_a_leader_refuse_leases_and_say_which_serve_them() {
    let cluster = TestCluster::start_protocol("quorum", 3, |_| {});
    let mut con = cluster.redis(0);
    for args in [
        vec!["LEASE", "GRANT", "10"],
        vec!["SET", "k", "v", "LEASE", "1"],
        vec!["SET", "k", "v", "EPHEMERAL"],
    ] {
        let e = query_err(&mut con, &args);
        assert!(
            e.contains("leases (LEASE, SET LEASE, EPHEMERAL)") && e.contains("--protocol raft"),
            "{args:?}: {e}"
        );
    }
    assert_eq!(con.get::<_, Option<String>>("k").unwrap(), None);
}
