//! Leases on real node processes (`quorate cluster`, Raft, 3 nodes), killed with kill -9.
//!
//! ZooKeeper's promise for ephemeral keys: when the node serving the session's connection
//! dies, nobody renews the session lease and its keys go within the session timeout; a
//! session on a node that lives survives the leader's death. etcd's: a lease a client keeps
//! alive survives the leader's death, and so do the keys attached to it.

use crate::cluster::{connect, leader, start_cluster};
use crate::support::{KillOnPanic, Proc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use redis::{Commands, RedisResult};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The session timeout of the connection whose node is killed.
const SESSION_TIMEOUT: Duration = Duration::from_millis(3_000);
/// The client-kept lease's time to live, and how often the client renews it.
const LEASE_TTL_S: i64 = 3;
const RENEW_EVERY: Duration = Duration::from_millis(500);

fn get(addr: SocketAddr, key: &str) -> Option<String> {
    let mut con = connect(addr).expect("the node serves clients");
    con.get(key).unwrap()
}

/// Renews lease `id` every `RENEW_EVERY` through `addrs` (the first that answers) until
/// `stop`; sets `lost` if the lease is ever found gone.
fn keep_alive(addrs: &[SocketAddr], id: i64, stop: &AtomicBool, lost: &AtomicBool) -> usize {
    let mut renewals = 0;
    let mut con = None;
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() {
            con = connect(addrs[next % addrs.len()]);
            next += 1;
        }
        if let Some(c) = con.as_mut() {
            let renewed: RedisResult<i64> = redis::cmd("LEASE").arg("KEEPALIVE").arg(id).query(c);
            match renewed {
                Ok(_) => renewals += 1,
                Err(e) if e.to_string().contains("not found") => {
                    lost.store(true, Ordering::Relaxed);
                    return renewals;
                }
                // No leader for a moment, or the connection's node died: try again.
                Err(_) => con = None,
            }
        }
        std::thread::sleep(RENEW_EVERY);
    }
    renewals
}

#[test]
fn ephemeral_keys_go_with_a_killed_node_and_leases_kept_alive_survive_a_leader_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (cluster, nodes) = start_cluster(&dir, 3);
    let _guard = KillOnPanic(nodes.iter().map(|n| n.pid).collect());
    let first_leader = leader(&nodes, Duration::from_secs(20));
    // Chosen deliberately: the ephemeral session on `doomed`, a follower that forwards
    // everything to the leader; the client's lease and a second session on `survivor`.
    let doomed = (first_leader + 1) % 3;
    let survivor = (first_leader + 2) % 3;
    let observe = nodes[first_leader].client;

    // A lease a client keeps alive, with a key on it.
    let mut client = connect(nodes[survivor].client).unwrap();
    let id: i64 = redis::cmd("LEASE")
        .arg("GRANT")
        .arg(LEASE_TTL_S)
        .query(&mut client)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("service")
        .arg("up")
        .arg("LEASE")
        .arg(id)
        .query(&mut client)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = {
        let addrs = vec![nodes[survivor].client, nodes[doomed].client];
        let (stop, lost) = (stop.clone(), lost.clone());
        std::thread::spawn(move || keep_alive(&addrs, id, &stop, &lost))
    };

    // Ephemeral keys: one on the node to be killed, one on the node that lives.
    let mut on_doomed = connect(nodes[doomed].client).unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("SESSIONTIMEOUT")
        .arg(SESSION_TIMEOUT.as_millis() as u64)
        .query(&mut on_doomed)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("member-doomed")
        .arg("n")
        .arg("EPHEMERAL")
        .query(&mut on_doomed)
        .unwrap();
    let mut on_survivor = connect(nodes[survivor].client).unwrap();
    let _: () = redis::cmd("SET")
        .arg("member-survivor")
        .arg("n")
        .arg("EPHEMERAL")
        .query(&mut on_survivor)
        .unwrap();
    // Several renewals of both sessions' leases happen before the kill.
    std::thread::sleep(SESSION_TIMEOUT);
    assert_eq!(get(observe, "member-doomed").as_deref(), Some("n"));

    // kill -9 the ephemeral session's node: nobody revokes or renews its lease any more.
    kill(Pid::from_raw(nodes[doomed].pid), Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    assert_eq!(
        get(observe, "member-doomed").as_deref(),
        Some("n"),
        "the key outlives its node's death until the session times out"
    );
    let margin = Duration::from_secs(3);
    loop {
        if get(observe, "member-doomed").is_none() {
            break;
        }
        assert!(
            killed.elapsed() < SESSION_TIMEOUT + margin,
            "the ephemeral key of a dead node's session is still there {:?} after the kill",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone_after = killed.elapsed();
    for key in ["service", "member-survivor"] {
        assert!(get(observe, key).is_some(), "{key} is kept alive");
    }

    // Restart the killed node (a quorum is needed once the leader dies), then kill the leader.
    let log = tmp.path().join("restarted.log");
    let restarted = Proc::spawn(
        &["serve", "--config", nodes[doomed].config.to_str().unwrap()],
        &log,
    );
    let _restarted_guard = KillOnPanic(vec![restarted.pid().as_raw()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_opt(nodes[doomed].client, "service").is_none() {
        assert!(
            Instant::now() < deadline,
            "the restarted node never caught up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(Pid::from_raw(nodes[first_leader].pid), Signal::SIGKILL).unwrap();
    let leader_killed = Instant::now();
    let alive = [doomed, survivor];
    let new_leader = loop {
        let found = leader(&nodes, Duration::from_secs(20));
        if found != first_leader {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Well past both time to lives: only renewals through the new leader keep the keys.
    std::thread::sleep(Duration::from_secs(2 * LEASE_TTL_S as u64));
    for i in alive {
        let addr = nodes[i].client;
        assert_eq!(get(addr, "service").as_deref(), Some("up"), "node {i}");
        assert_eq!(
            get(addr, "member-survivor").as_deref(),
            Some("n"),
            "node {i}"
        );
        assert_eq!(get(addr, "member-doomed"), None, "node {i}");
    }
    assert!(!lost.load(Ordering::Relaxed), "the client's lease was lost");
    let mut con = connect(nodes[new_leader].client).unwrap();
    let ttl: i64 = redis::cmd("LEASE")
        .arg("TTL")
        .arg(id)
        .query(&mut con)
        .unwrap();
    assert!((1..=LEASE_TTL_S).contains(&ttl), "LEASE TTL {ttl}");

    // The survivor's session ends with its connection; the client's lease when revoked.
    drop(on_survivor);
    stop.store(true, Ordering::Relaxed);
    let renewals = keeper.join().unwrap();
    let revoked: i64 = redis::cmd("LEASE")
        .arg("REVOKE")
        .arg(id)
        .query(&mut con)
        .unwrap();
    assert_eq!(revoked, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(nodes[new_leader].client, "member-survivor").is_some() {
        assert!(Instant::now() < deadline, "a closed session's key stayed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(nodes[new_leader].client, "service"), None);
    eprintln!(
        "leases: the dead node's ephemeral key went {gone_after:?} after kill -9 (session \
         timeout {SESSION_TIMEOUT:?}); {renewals} client renewals; leader {} killed {:?} ago, \
         leader now {}",
        first_leader + 1,
        leader_killed.elapsed(),
        new_leader + 1
    );
    drop(on_doomed);
    restarted.stop();
    cluster.stop();
}

/// `get` that tolerates a node still starting.
fn get_opt(addr: SocketAddr, key: &str) -> Option<String> {
    let mut con = connect(addr)?;
    con.get(key).ok()?
}
