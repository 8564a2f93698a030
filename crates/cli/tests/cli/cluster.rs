//! Real node processes on loopback: `quorate cluster`, kill -9, restart, and bad input.
//!
//! Every process a test starts is stopped by its PID (a guard kills it if the test fails),
//! every port is picked free by the OS, and every address is 127.0.0.1.

use crate::support::{scrape, KillOnPanic, Proc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use quorate_check::history::{pair, Operation};
use quorate_check::linearizability::{check_linearizable, Limits};
use quorate_check::{Event, EventKind, OpValue, Verdict};
use redis::{Commands, RedisResult};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct NodeInfo {
    pub(crate) pid: i32,
    pub(crate) client: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// Where the node serves `/metrics`.
    pub(crate) metrics: SocketAddr,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
}

/// `quorate cluster` with free ports; returns once its manifest lists every node.
pub(crate) fn start_cluster(dir: &Path, nodes: usize) -> (Proc, Vec<NodeInfo>) {
    start_cluster_with(dir, nodes, &[])
}

/// `start_cluster` with more arguments for `quorate cluster` (`--protocol`, `--tuning`).
pub(crate) fn start_cluster_with(
    dir: &Path,
    nodes: usize,
    extra: &[&str],
) -> (Proc, Vec<NodeInfo>) {
    let nodes_arg = nodes.to_string();
    let mut args = vec![
        "cluster",
        "--nodes",
        &nodes_arg,
        "--free-ports",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    crate::support::forget_manifest(dir);
    let proc = Proc::spawn(&args, &dir.with_extension("out"));
    let json = crate::support::wait_for_manifest(dir);
    let infos = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| NodeInfo {
            pid: n["pid"].as_i64().unwrap() as i32,
            client: n["client_addr"].as_str().unwrap().parse().unwrap(),
            peer: n["peer_addr"].as_str().unwrap().parse().unwrap(),
            metrics: n["metrics_addr"].as_str().unwrap().parse().unwrap(),
            config: n["config"].as_str().unwrap().into(),
            log: n["log"].as_str().unwrap().into(),
        })
        .collect();
    (proc, infos)
}

pub(crate) fn info(addr: SocketAddr) -> Option<String> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    redis::cmd("INFO").query(&mut con).ok()
}

pub(crate) fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// The node that reports being the leader (waiting up to `within`).
pub(crate) fn leader(nodes: &[NodeInfo], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        for (i, n) in nodes.iter().enumerate() {
            if let Some(text) = info(n.client) {
                if field(&text, "role").as_deref() == Some("leader") {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn connect(addr: SocketAddr) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let con = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    // Longer than the server's 5 s request deadline, so a slow answer is still an answer.
    con.set_read_timeout(Some(Duration::from_secs(8))).ok()?;
    con.set_write_timeout(Some(Duration::from_secs(8))).ok()?;
    Some(con)
}

/// Jepsen-style clients: one operation at a time, every invocation and completion recorded.
pub(crate) struct Recorder {
    pub(crate) origin: Instant,
    pub(crate) events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub(crate) fn record(
        &self,
        process: u64,
        kind: EventKind,
        key: &str,
        value: OpValue,
        error: Option<String>,
    ) {
        let event = Event {
            process,
            kind,
            key: Some(key.to_string()),
            value,
            time: self.origin.elapsed().as_nanos() as u64,
            node: None,
            error,
            mode: Default::default(),
        };
        self.events.lock().unwrap().push(event);
    }
}

/// What one operation's answer means for the history.
fn outcome<T>(result: &RedisResult<T>) -> (EventKind, Option<String>) {
    match result {
        Ok(_) => (EventKind::Ok, None),
        Err(e) => {
            let text = e.to_string();
            // Definite refusals: the request did not take effect.
            let definite =
                text.contains("rejected") || text.contains("MOVED") || text.contains("TRYAGAIN");
            let kind = if definite {
                EventKind::Fail
            } else {
                EventKind::Info
            };
            (kind, Some(text))
        }
    }
}

/// Checks the recorded history with the linearizability checker (two minutes, 1 GiB), and on
/// anything but "linearizable" writes it to `quorate-<name>-history.jsonl` in the temporary
/// directory and fails saying where.
pub(crate) fn assert_linearizable(events: &[Event], operations: &[Operation], name: &str) {
    let started = Instant::now();
    let cancelled = move || started.elapsed() > Duration::from_secs(120);
    let limits = Limits {
        memo_bytes_max: 1 << 30,
        cancelled: &cancelled,
    };
    let report = check_linearizable(operations, &limits);
    if report.verdict != Verdict::Linearizable {
        let history: Vec<String> = events.iter().map(Event::to_json_line).collect();
        let path = std::env::temp_dir().join(format!("quorate-{name}-history.jsonl"));
        fs::write(&path, history.join("\n")).unwrap();
        panic!(
            "history of {} operations is {:?} (key {:?}, stuck at {:?}, {:?}); written to {}",
            operations.len(),
            report.verdict,
            report.key,
            report.stuck.map(|s| operations[s].to_string()),
            report.reason,
            path.display()
        );
    }
}

/// Writes distinct keys `ack0`, `ack1`, ... over `addrs` in turn until `stop`, and records
/// each acknowledged key in `acked`: every one of them must survive what the test does.
pub(crate) fn write_distinct_keys(
    addrs: &[SocketAddr],
    acked: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let mut con = None;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() {
            con = connect(addrs[i % addrs.len()]);
        }
        let Some(c) = con.as_mut() else {
            i += 1;
            continue;
        };
        let key = format!("ack{i}");
        let r: RedisResult<()> = c.set(&key, i);
        match r {
            Ok(()) => acked.lock().unwrap().push(key),
            Err(_) => con = None,
        }
        i += 1;
    }
}

/// One client thread: random GET / SET / APPEND / CAS on a few keys until `stop`.
pub(crate) fn client_loop(
    t: u64,
    nodes: &[SocketAddr],
    rec: &Recorder,
    stop: &AtomicBool,
) -> usize {
    let keys = ["x", "y", "z"];
    let mut generation = 0u64;
    let mut target = t as usize;
    let mut seen: [Option<String>; 3] = [None, None, None];
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1).wrapping_mul(0x1000_0001);
    let mut n = 0usize;
    let mut con = None;
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() {
            con = connect(nodes[target % nodes.len()]);
            if con.is_none() {
                target += 1;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let c = con.as_mut().unwrap();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let k = (state % 3) as usize;
        let key = keys[k];
        let process = t * 1_000_000 + generation;
        let value = format!("{t}.{n}");
        n += 1;
        let kind = match (state >> 8) % 4 {
            0 => {
                rec.record(process, EventKind::Invoke, key, OpValue::Get(None), None);
                let r: RedisResult<Option<String>> = c.get(key);
                let (kind, error) = outcome(&r);
                let read = r.ok().flatten();
                if kind == EventKind::Ok {
                    seen[k] = read.clone();
                }
                rec.record(process, kind, key, OpValue::Get(read), error);
                kind
            }
            1 => {
                rec.record(
                    process,
                    EventKind::Invoke,
                    key,
                    OpValue::Put(value.clone()),
                    None,
                );
                let r: RedisResult<()> = c.set(key, &value);
                let (kind, error) = outcome(&r);
                rec.record(process, kind, key, OpValue::Put(value), error);
                kind
            }
            2 => {
                let v = format!("{value},");
                rec.record(
                    process,
                    EventKind::Invoke,
                    key,
                    OpValue::Append(v.clone()),
                    None,
                );
                let r: RedisResult<i64> = c.append(key, &v);
                let (kind, error) = outcome(&r);
                rec.record(process, kind, key, OpValue::Append(v), error);
                kind
            }
            _ => {
                let expected = seen[k].clone();
                let op = OpValue::Cas {
                    expected: expected.clone(),
                    new: value.clone(),
                };
                rec.record(process, EventKind::Invoke, key, op.clone(), None);
                let (kind, error) = match &expected {
                    Some(old) => {
                        let r: RedisResult<i64> =
                            redis::cmd("CAS").arg(key).arg(old).arg(&value).query(c);
                        match outcome(&r) {
                            (EventKind::Ok, _) if r.as_ref().ok() == Some(&0) => {
                                (EventKind::Fail, None)
                            }
                            other => other,
                        }
                    }
                    None => {
                        let r: RedisResult<Option<String>> =
                            redis::cmd("SET").arg(key).arg(&value).arg("NX").query(c);
                        match outcome(&r) {
                            (EventKind::Ok, _) if r.as_ref().ok() == Some(&None) => {
                                (EventKind::Fail, None)
                            }
                            other => other,
                        }
                    }
                };
                rec.record(process, kind, key, op, error);
                kind
            }
        };
        if kind == EventKind::Info {
            // Unknown outcome: this process is done (Jepsen semantics); continue as a new one
            // on another node.
            generation += 1;
            target += 1;
            con = None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    n
}

#[test]
fn kill_9_of_the_leader_loses_no_acknowledged_write_and_the_history_is_linearizable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (cluster, nodes) = start_cluster(&dir, 3);
    let first_leader = leader(&nodes, Duration::from_secs(20));
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.client).collect();
    let rec = Arc::new(Recorder {
        origin: Instant::now(),
        events: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    let mut restarted = None;
    let ops = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4u64)
            .map(|t| {
                let (rec, stop, addrs) = (rec.clone(), stop.clone(), addrs.clone());
                scope.spawn(move || client_loop(t, &addrs, &rec, &stop))
            })
            .collect();
        // A writer of distinct keys: every acknowledged one must survive.
        let writer = {
            let (stop, acked, addrs) = (stop.clone(), acked.clone(), addrs.clone());
            scope.spawn(move || write_distinct_keys(&addrs, &acked, &stop))
        };
        std::thread::sleep(Duration::from_millis(1500));
        let victim = &nodes[first_leader];
        kill(Pid::from_raw(victim.pid), Signal::SIGKILL).unwrap();
        let killed_at = rec.origin.elapsed();
        std::thread::sleep(Duration::from_millis(1500));
        // Restart the killed node from its data directory, as an operator would.
        let log = tmp.path().join("restarted.log");
        restarted = Some(Proc::spawn(
            &["serve", "--config", victim.config.to_str().unwrap()],
            &log,
        ));
        std::thread::sleep(Duration::from_millis(2500));
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let ops: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        (ops, killed_at)
    });
    let (ops, killed_at) = ops;

    // Every node, the restarted one included, converges on the acknowledged writes.
    let new_leader = leader(&nodes, Duration::from_secs(20));
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "the writer made progress ({} acknowledged)",
        acked.len()
    );
    let restarted_node = &nodes[first_leader];
    let mut con = connect(restarted_node.client).expect("the restarted node serves clients");
    for (i, key) in acked.iter().enumerate() {
        let value: Option<String> = con.get(key).unwrap();
        let expected = key.trim_start_matches("ack");
        assert_eq!(
            value.as_deref(),
            Some(expected),
            "acknowledged write {i} ({key}) was lost"
        );
    }
    // Final reads of the history's keys, from every node, close the history.
    for (i, n) in nodes.iter().enumerate() {
        let mut con = connect(n.client).expect("every node serves clients after the restart");
        for key in ["x", "y", "z"] {
            let process = 900_000_000 + i as u64;
            rec.record(process, EventKind::Invoke, key, OpValue::Get(None), None);
            let value: Option<String> = con.get(key).unwrap();
            rec.record(process, EventKind::Ok, key, OpValue::Get(value), None);
        }
    }
    let events = rec.events.lock().unwrap().clone();
    let operations = pair(&events).expect("the recorded history is well-formed");
    let completed_after_kill = events
        .iter()
        .filter(|e| e.kind == EventKind::Ok && e.time > killed_at.as_nanos() as u64)
        .count();
    assert!(
        completed_after_kill > 50,
        "operations completed after the kill: {completed_after_kill}"
    );
    assert_linearizable(&events, &operations, "kill9");
    eprintln!(
        "kill -9: {ops} operations, {} acknowledged distinct writes, leader {} killed, leader now {}",
        acked.len(),
        first_leader + 1,
        new_leader + 1
    );
    restarted.take().unwrap().stop();
    cluster.stop();
}

#[test]
fn a_peer_from_another_cluster_is_refused_and_the_cluster_serves_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    let (cluster, nodes) = start_cluster(&dir, 1);
    leader(&nodes, Duration::from_secs(20));
    let [intruder_peer, intruder_client] = quorate_server::ports::free_loopback_addrs(2)
        .unwrap()
        .try_into()
        .unwrap();
    let peers = format!("1={},2={intruder_peer}", nodes[0].peer);
    let log = tmp.path().join("intruder.log");
    let intruder = Proc::spawn(
        &[
            "serve",
            "--protocol",
            "raft",
            "--cluster-id",
            "intruder",
            "--id",
            "2",
            "--peers",
            &peers,
            "--client-addr",
            &intruder_client.to_string(),
            "--data-dir",
            tmp.path().join("intruder").to_str().unwrap(),
        ],
        &log,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let home = fs::read_to_string(&nodes[0].log).unwrap_or_default();
        let theirs = fs::read_to_string(&log).unwrap_or_default();
        let refused_here = home.contains("refused a peer connection")
            && home.contains("belongs to cluster \\\"intruder\\\"")
            || home.contains("belongs to cluster \"intruder\"");
        if refused_here && theirs.contains("refused by peer n1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\nhome: {home}\nintruder: {theirs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut con = connect(nodes[0].client).unwrap();
    let _: () = con.set("still", "serving").unwrap();
    let value: String = con.get("still").unwrap();
    assert_eq!(value, "serving");
    intruder.stop();
    cluster.stop();
}

#[test]
fn serve_with_bad_flags_exits_2_with_a_clear_message() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_quorate"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["serve", "--protocol", "raft", "--id", "1"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("missing --peers, --client-addr, --data-dir"),
        "{err}"
    );
    let (code, err) = run(&[
        "serve",
        "--protocol",
        "raft",
        "--id",
        "4",
        "--peers",
        "1=127.0.0.1:7101,2=127.0.0.1:7102",
        "--client-addr",
        "127.0.0.1:6381",
        "--data-dir",
        "/tmp/never-created",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("node id 4 is not among the peers (1, 2)"),
        "{err}"
    );
    let (code, err) = run(&[
        "serve",
        "--peers",
        "1=localhost",
        "--protocol",
        "raft",
        "--id",
        "1",
        "--client-addr",
        "127.0.0.1:6381",
        "--data-dir",
        "/tmp/x",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not IP:PORT"), "{err}");
    let (code, err) = run(&["cluster", "--nodes", "12"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--nodes must be between 1 and 9"), "{err}");
}

#[test]
fn a_leaderless_cluster_starts_takes_its_tuning_and_serves_at_every_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("quorum");
    let extra = ["--protocol", "quorum", "--tuning", "r=3", "--tuning", "w=1"];
    let (cluster, nodes) = start_cluster_with(&dir, 3, &extra);
    let _guard = KillOnPanic(nodes.iter().map(|n| n.pid).collect());
    let out = dir.with_extension("out");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("leaderless: every node serves clients")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            fs::read_to_string(&out).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = fs::read_to_string(&nodes[0].config).unwrap();
    assert!(
        config.contains("r = 3") && config.contains("w = 1"),
        "{config}"
    );
    let mut con = connect(nodes[0].client).unwrap();
    let _: () = con.set("k", "v").unwrap();
    for node in &nodes {
        let mut con = connect(node.client).unwrap();
        let value: String = con.get("k").unwrap();
        assert_eq!(value, "v");
        let info = info(node.client).unwrap();
        assert_eq!(field(&info, "role").as_deref(), Some("replica"), "{info}");
        // No log, so no apply lag and no followers' lag; waiting requests are still counted.
        let page = scrape(node.metrics);
        assert!(page.contains("\nquorate_proposals_pending "), "{page}");
        assert!(!page.contains("quorate_apply_lag"), "{page}");
        assert!(!page.contains("quorate_follower_lag"), "{page}");
    }
    cluster.stop();
}

/// Waits until `path` contains `needle`; returns the file's text.
fn wait_for_text(path: &Path, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cluster_reports_the_new_leader_and_restarts_a_killed_node_as_its_own_child() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let (cluster, nodes) = start_cluster(&dir, 3);
    let out = dir.with_extension("out");
    let first = leader(&nodes, Duration::from_secs(15));
    wait_for_text(
        &out,
        &format!("leader: node {}", first + 1),
        Duration::from_secs(10),
    );
    let killed = nodes[first].pid;
    kill(Pid::from_raw(killed), Signal::SIGKILL).unwrap();
    // The cluster says the node exited, then names the new leader.
    let exited = format!("node {} (pid {killed}) exited", first + 1);
    wait_for_text(&out, &exited, Duration::from_secs(10));
    let others: Vec<NodeInfo> = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, n)| n)
        .collect();
    let second = leader(&others, Duration::from_secs(15));
    let id = |n: &NodeInfo| n.config.file_stem().unwrap().to_string_lossy()[1..].to_string();
    let new_leader = format!("leader: node {}", id(&others[second]));
    let after_exit = |t: &str| t.split_once(&exited).map(|(_, rest)| rest.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !after_exit(&fs::read_to_string(&out).unwrap())
        .unwrap()
        .contains(&new_leader)
    {
        assert!(Instant::now() < deadline, "{new_leader:?} never printed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Restart through the running cluster.
    let node = (first + 1).to_string();
    let restart = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(["cluster", "restart", &node, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&restart.stdout).into_owned()
        + &String::from_utf8_lossy(&restart.stderr);
    assert!(restart.status.success(), "{said}");
    assert!(
        said.contains(&format!("node {node} restarted (pid ")),
        "{said}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let new_pid = manifest["nodes"][first]["pid"].as_i64().unwrap() as i32;
    assert_ne!(new_pid, killed);
    assert!(
        kill(Pid::from_raw(new_pid), None).is_ok(),
        "the restarted node runs"
    );
    // A second request for a running node is refused with a reason.
    let again = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(["cluster", "restart", &node, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is running"));
    // Stopping the cluster stops the restarted node too: nothing is orphaned.
    cluster.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while kill(Pid::from_raw(new_pid), None).is_ok() && process_state(new_pid) != Some('Z') {
        assert!(
            Instant::now() < deadline,
            "node {new_pid} outlived its cluster"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn process_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim().chars().next()
}

/// Sends `signal` to `pid` and waits until the process is stopped (`T`) or running again.
pub(crate) fn signal(pid: i32, signal: Signal) {
    if let Err(e) = kill(Pid::from_raw(pid), signal) {
        panic!("{signal} to {pid}: {e} (the node exited? see its log)");
    }
    let stopped = signal == Signal::SIGSTOP;
    let deadline = Instant::now() + Duration::from_secs(5);
    while (process_state(pid) == Some('T')) != stopped {
        assert!(
            Instant::now() < deadline,
            "{pid} did not take {signal}: state {:?} (Z: it exited; see its log)",
            process_state(pid)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Tuning for tests that stop followers for a moment: election timeouts of 2-3 s, so the
/// leader keeps leading (check-quorum deposes it after an election timeout at the earliest),
/// with heartbeats every 100 ms.
pub(crate) const SLOW_ELECTIONS: [&str; 6] = [
    "--tuning",
    "election_timeout_min_ms=2000",
    "--tuning",
    "election_timeout_max_ms=3000",
    "--tuning",
    "heartbeat_interval_ms=100",
];
