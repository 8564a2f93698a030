//! TLS on real node processes over loopback: `quorate certs`, `quorate cluster --tls`, a
//! TLS client, a plain-text client refused, and peers with the wrong certificate refused.
//!
//! Every process a test starts is stopped by its PID (a guard kills it if the test fails),
//! every port is picked free by the OS, and every address is 127.0.0.1.

use crate::support::{sample, scrape, Proc};
use quorate_server::resp::client::{self, ClientTls};
use quorate_server::resp::frame::Frame;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `quorate certs --out dir --nodes n`.
fn certs(dir: &Path, nodes: u64) {
    let status = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(["certs", "--out", dir.to_str().unwrap(), "--nodes"])
        .arg(nodes.to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "quorate certs failed");
}

struct NodeInfo {
    client: SocketAddr,
    metrics: SocketAddr,
    peer: SocketAddr,
    log: PathBuf,
}

/// `quorate cluster --tls certs` with free ports; returns once its manifest lists every node.
/// The cluster id is the default one the impostors below claim, so that only their
/// certificates can give them away.
fn start_tls_cluster(dir: &Path, certs: &Path) -> (Proc, Vec<NodeInfo>) {
    let args = [
        "cluster",
        "--nodes",
        "3",
        "--cluster-id",
        quorate_server::config::DEFAULT_CLUSTER_ID,
        "--free-ports",
        "--data-dir",
        dir.to_str().unwrap(),
        "--tls",
        certs.to_str().unwrap(),
    ];
    crate::support::forget_manifest(dir);
    let proc = Proc::spawn(&args, &dir.with_extension("out"));
    let json = crate::support::wait_for_manifest(dir);
    let nodes = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| NodeInfo {
            client: n["client_addr"].as_str().unwrap().parse().unwrap(),
            metrics: n["metrics_addr"].as_str().unwrap().parse().unwrap(),
            peer: n["peer_addr"].as_str().unwrap().parse().unwrap(),
            log: n["log"].as_str().unwrap().into(),
        })
        .collect();
    (proc, nodes)
}

/// One command over TLS; `None` while the node is unreachable.
fn call(addr: SocketAddr, tls: &ClientTls, args: &[&[u8]]) -> Option<Frame> {
    client::exchange_over(addr, &[args], Duration::from_secs(2), Some(tls))
        .ok()
        .and_then(|mut replies| replies.pop())
}

/// Retries `SET key value` over TLS on every node until one acknowledges it.
fn set_acknowledged(nodes: &[NodeInfo], tls: &ClientTls, key: &str, value: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, node) in nodes.iter().enumerate() {
            let reply = call(
                node.client,
                tls,
                &[b"SET", key.as_bytes(), value.as_bytes()],
            );
            if matches!(&reply, Some(Frame::Simple(ok)) if ok == "OK") {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no node acknowledged a SET");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of counter `name` in a metrics page.
fn counter(page: &str, name: &str) -> u64 {
    sample(page, name).unwrap_or_else(|| panic!("no {name} in the metrics"))
}

/// Waits until `log` contains `text`.
fn wait_for_log(log: &Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let content = fs::read_to_string(log).unwrap_or_default();
        if content.contains(text) {
            return content;
        }
        assert!(
            Instant::now() < deadline,
            "{} never said {text:?}; it says:\n{content}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_addr() -> SocketAddr {
    quorate_server::ports::free_loopback_addrs(1).unwrap()[0]
}

/// A node process outside the cluster that dials its members as member `id`, with the
/// given certificate, key and CA.
fn impostor(
    dir: &Path,
    id: u64,
    nodes: &[NodeInfo],
    (cert, key, ca): (&Path, &Path, &Path),
) -> Proc {
    let own_peer = free_addr();
    let peers: Vec<String> = (1..=3u64)
        .map(|m| match m == id {
            true => format!("{m}={own_peer}"),
            false => format!("{m}={}", nodes[m as usize - 1].peer),
        })
        .collect();
    let data = dir.join(format!("impostor-{id}"));
    let client_addr = free_addr().to_string();
    let args = [
        "serve",
        "--protocol",
        "raft",
        "--id",
        &id.to_string(),
        "--peers",
        &peers.join(","),
        "--client-addr",
        &client_addr,
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-ca",
        ca.to_str().unwrap(),
    ];
    Proc::spawn(&args, &data.with_extension("log"))
}

#[test]
fn a_tls_cluster_serves_tls_clients_and_refuses_plain_ones_and_impostor_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let certs_dir = tmp.path().join("certs");
    certs(&certs_dir, 3);
    for file in ["ca-key.pem", "node-1-key.pem", "node-3-key.pem"] {
        let mode = fs::metadata(certs_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is readable by others");
    }
    let (cluster, nodes) = start_tls_cluster(&tmp.path().join("c"), &certs_dir);
    let tls = quorate_server::tls::client_config(&certs_dir.join("ca.pem")).unwrap();

    // A leader is elected over mutual TLS and serves SET and GET over TLS.
    let acked = set_acknowledged(&nodes, &tls, "k", "over-tls");
    let got = call(nodes[acked].client, &tls, &[b"GET", b"k"]);
    assert!(
        matches!(&got, Some(Frame::Bulk(v)) if v.as_ref() == b"over-tls"),
        "GET over TLS answered {got:?}"
    );
    redis_cli_over_tls(&nodes[acked], &certs_dir);

    // A plain-text client is told why, in RESP, and counted.
    let mut plain = TcpStream::connect(nodes[0].client).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert_eq!(answer, "-ERR this port accepts TLS connections only\r\n");
    let page = scrape(nodes[0].metrics);
    assert_eq!(counter(&page, "quorate_client_tls_refused_total"), 1);

    // A peer whose certificate another CA signed is refused, and the log says why.
    let other = tmp.path().join("other-ca");
    certs(&other, 3);
    let ca = certs_dir.join("ca.pem");
    let _stranger = impostor(
        tmp.path(),
        2,
        &nodes,
        (
            &other.join("node-2.pem"),
            &other.join("node-2-key.pem"),
            &ca,
        ),
    );
    let log = wait_for_log(&nodes[0].log, "not signed by this cluster's CA");
    assert!(log.contains("refused a peer connection: TLS handshake failed"));

    // A member's genuine certificate, presented by someone claiming to be another member.
    let _thief = impostor(
        tmp.path(),
        3,
        &nodes,
        (
            &certs_dir.join("node-2.pem"),
            &certs_dir.join("node-2-key.pem"),
            &ca,
        ),
    );
    let log = wait_for_log(&nodes[0].log, "does not name node-3");
    assert!(log.contains("refused a peer connection"));
    let page = scrape(nodes[0].metrics);
    assert!(counter(&page, "quorate_peer_tls_refused_total") >= 2);

    // The cluster still serves after the impostors' attempts.
    let acked = set_acknowledged(&nodes, &tls, "k", "still-here");
    let got = call(nodes[acked].client, &tls, &[b"GET", b"k"]);
    assert!(matches!(&got, Some(Frame::Bulk(v)) if v.as_ref() == b"still-here"));
    // SIGTERM, so the cluster stops its nodes; dropping it would SIGKILL it and orphan them.
    cluster.stop();
}

/// `redis-cli --tls --cacert ca.pem` against the node, when redis-cli is installed.
fn redis_cli_over_tls(node: &NodeInfo, certs: &Path) {
    let run = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["--tls", "--cacert", certs.join("ca.pem").to_str().unwrap()])
            .args(["-h", "127.0.0.1", "-p", &node.client.port().to_string()])
            .args(args)
            .output()
    };
    let set = match run(&["SET", "cli", "via-redis-cli"]) {
        Ok(out) => out,
        Err(e) => {
            println!("skipping the redis-cli part: redis-cli not runnable ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&set.stdout).to_string();
    if !set.status.success() && String::from_utf8_lossy(&set.stderr).contains("TLS") {
        println!("skipping the redis-cli part: this redis-cli was built without TLS");
        return;
    }
    assert_eq!(text.trim(), "OK", "redis-cli --tls SET: {set:?}");
    let get = run(&["GET", "cli"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "via-redis-cli");
}
