//! Storage faults on real node processes (issue 13, bugs 3-5): a damaged last batch, a torn
//! write, a deleted WAL, a changed membership, and the two-fault scenario that once lost an
//! acknowledged write.
//!
//! Every process a test starts is stopped by its PID (a guard kills it if the test fails),
//! every port is picked free by the OS, and every address is 127.0.0.1.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use redis::Commands;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed (by PID) and reaped when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(args: &[&str], log: &Path) -> Proc {
        let out = fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_quorate"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the quorate binary runs");
        Proc { child }
    }

    fn serve(config: &Path, log: &Path) -> Proc {
        Proc::spawn(&["serve", "--config", config.to_str().unwrap()], log)
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        assert!(
            self.wait_exit(Duration::from_secs(10)).is_some(),
            "process {} ignored SIGTERM for 10 s",
            self.child.id()
        );
    }

    /// Waits for the process to exit on its own.
    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

struct NodeInfo {
    pid: i32,
    client: SocketAddr,
    config: PathBuf,
}

/// `quorate cluster` with free ports; returns once its manifest lists every node.
fn start_cluster(dir: &Path, nodes: usize) -> (Proc, Vec<NodeInfo>) {
    let nodes_arg = nodes.to_string();
    let args = [
        "cluster",
        "--nodes",
        &nodes_arg,
        "--free-ports",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
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
            config: n["config"].as_str().unwrap().into(),
        })
        .collect();
    (proc, infos)
}

fn connect(addr: SocketAddr) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    Some(con)
}

fn role(addr: SocketAddr) -> Option<String> {
    let mut con = connect(addr)?;
    let text: String = redis::cmd("INFO").query(&mut con).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("role:"))
        .map(|r| r.trim().to_string())
}

fn leader(nodes: &[&NodeInfo], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        for (i, n) in nodes.iter().enumerate() {
            if role(n.client).as_deref() == Some("leader") {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wal_file(node_dir: &Path) -> PathBuf {
    fs::read_dir(node_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "log")
                && p.file_name().unwrap().to_string_lossy().starts_with("wal-")
        })
        .expect("a write-ahead log")
}

/// The byte range of the last batch of a WAL: its trailer ends at the last non-zero byte
/// (`"QEND"`) and starts with the batch's offset.
fn last_batch(wal: &[u8]) -> (usize, usize) {
    let end = wal.iter().rposition(|b| *b != 0).unwrap() + 1;
    assert_eq!(&wal[end - 4..end], b"QEND", "a batch ends the log");
    let start = u64::from_le_bytes(wal[end - 16..end - 8].try_into().unwrap()) as usize;
    (start, end)
}

fn kill_9(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
}

/// Waits for a node that must refuse to start; returns its output.
fn refused(mut proc: Proc, log: &Path) -> String {
    let status = proc
        .wait_exit(Duration::from_secs(20))
        .expect("the node refuses to start");
    assert!(!status.success());
    fs::read_to_string(log).unwrap()
}

#[test]
fn a_damaged_last_batch_or_a_deleted_wal_refuses_to_start_and_a_torn_write_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("one");
    let (cluster, nodes) = start_cluster(&dir, 1);
    let node = &nodes[0];
    leader(&[node], Duration::from_secs(20));
    let mut con = connect(node.client).unwrap();
    for i in 0..20 {
        let _: () = con.set(format!("k{i}"), i).unwrap();
    }
    drop(con);
    kill_9(node.pid);
    cluster.stop();
    let wal = wal_file(&dir.join("n1"));
    let original = fs::read(&wal).unwrap();
    let (start, end) = last_batch(&original);

    // One flipped byte in the last batch, which was fsynced and acknowledged.
    let mut damaged = original.clone();
    damaged[start + (end - start) / 2] ^= 0x20;
    fs::write(&wal, &damaged).unwrap();
    let log = tmp.path().join("damaged.log");
    let output = refused(Proc::serve(&node.config, &log), &log);
    assert!(output.contains("is damaged"), "{output}");
    assert!(output.contains(&wal.display().to_string()), "{output}");
    assert!(output.contains(&format!("offset {start}")), "{output}");
    assert!(output.contains("rejoin empty"), "{output}");
    assert_eq!(
        fs::read(&wal).unwrap(),
        damaged,
        "a refusal changes nothing"
    );

    // A torn write: the start of a next batch's header, cut short by a crash before its fsync.
    let mut torn = original.clone();
    torn[end..end + 20].copy_from_slice(&original[start..start + 20]);
    torn[end + 4] ^= 0x01;
    fs::write(&wal, &torn).unwrap();
    let log = tmp.path().join("torn.log");
    let serving = Proc::serve(&node.config, &log);
    let started = Instant::now();
    let mut con = loop {
        if role(node.client).as_deref() == Some("leader") {
            break connect(node.client).unwrap();
        }
        let output = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the node did not start: {output}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for i in 0..20i64 {
        let value: i64 = con.get(format!("k{i}")).unwrap();
        assert_eq!(value, i, "acknowledged key k{i} survived");
    }
    let output = fs::read_to_string(&log).unwrap();
    assert!(output.contains("zeroed a torn write"), "{output}");
    drop(con);
    serving.stop();

    // The log deleted, IDENTITY still there.
    fs::remove_file(&wal).unwrap();
    let log = tmp.path().join("deleted.log");
    let output = refused(Proc::serve(&node.config, &log), &log);
    assert!(output.contains("is missing"), "{output}");
    assert!(output.contains("forget the node's votes"), "{output}");
}

#[test]
fn restarting_a_3_node_directory_as_5_nodes_or_with_other_peers_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("three");
    let (cluster, nodes) = start_cluster(&dir, 3);
    leader(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(20));
    cluster.stop();

    let args = [
        "cluster",
        "--nodes",
        "5",
        "--free-ports",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let log = tmp.path().join("five.out");
    let output = refused(Proc::spawn(&args, &log), &log);
    assert!(output.contains("holds a cluster of 3 node(s)"), "{output}");
    assert!(output.contains("Restart it with --nodes 3"), "{output}");
    assert!(output.contains("quorate member add"), "{output}");
    assert!(output.contains("fresh --data-dir"), "{output}");
    assert!(!dir.join("n4").exists(), "nothing was started");

    // `serve` with a peer list of two: the node's own IDENTITY refuses it.
    let [free, other] = quorate_server::ports::free_loopback_addrs(2)
        .unwrap()
        .try_into()
        .unwrap();
    let peers = format!("1={free},2={other}");
    let log = tmp.path().join("two.log");
    let config = nodes[0].config.to_str().unwrap();
    let serve = Proc::spawn(&["serve", "--config", config, "--peers", &peers], &log);
    let output = refused(serve, &log);
    assert!(
        output.contains("created for a cluster of members 1,2,3"),
        "{output}"
    );
    assert!(output.contains("change membership online"), "{output}");
}

/// Bug 3's two faults in a 3-node Raft cluster: F2 down, `SET critical v` acknowledged by the
/// leader and F1, then the leader and F1 killed and F1's last batch damaged. F1 must refuse to
/// start; F2 alone has no majority; once the old leader is back, `GET critical` is `v`. Never
/// nil: that would be an acknowledged write forgotten.
#[test]
fn two_faults_never_turn_an_acknowledged_write_into_nil() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("three");
    let (cluster, nodes) = start_cluster(&dir, 3);
    let all: Vec<&NodeInfo> = nodes.iter().collect();
    let l = leader(&all, Duration::from_secs(20));
    let followers: Vec<usize> = (0..3).filter(|i| *i != l).collect();
    let (f1, f2) = (followers[0], followers[1]);
    kill_9(nodes[f2].pid);
    let mut con = connect(nodes[l].client).unwrap();
    let _: () = con.set("critical", "v").unwrap();
    drop(con);
    kill_9(nodes[l].pid);
    kill_9(nodes[f1].pid);
    cluster.stop();

    let wal = wal_file(&dir.join(format!("n{}", f1 + 1)));
    let mut bytes = fs::read(&wal).unwrap();
    let (start, end) = last_batch(&bytes);
    bytes[start + (end - start) / 2] ^= 0x08;
    fs::write(&wal, &bytes).unwrap();

    let log = tmp.path().join("f1.log");
    let output = refused(Proc::serve(&nodes[f1].config, &log), &log);
    assert!(output.contains("is damaged"), "{output}");
    let log_f2 = tmp.path().join("f2.log");
    let _f2 = Proc::serve(&nodes[f2].config, &log_f2);
    let get = |addr: SocketAddr| -> Option<Result<Option<String>, String>> {
        let mut con = connect(addr)?;
        Some(con.get("critical").map_err(|e| e.to_string()))
    };
    // F2 alone: no answer, or an error; never nil.
    let alone = Instant::now();
    while alone.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(value)) = get(nodes[f2].client) {
            panic!("F2 alone answered {value:?} for GET critical");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log_l = tmp.path().join("leader.log");
    let _l = Proc::serve(&nodes[l].config, &log_l);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for i in [l, f2] {
            match get(nodes[i].client) {
                Some(Ok(Some(value))) => {
                    assert_eq!(value, "v");
                    return;
                }
                Some(Ok(None)) => panic!("GET critical at node {} is nil", i + 1),
                _ => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer within 30 s: {}",
            fs::read_to_string(&log_l).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
