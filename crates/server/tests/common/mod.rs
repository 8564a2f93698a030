//! In-process clusters on loopback for the server's integration tests.

#![allow(dead_code)]

use quorate_core::NodeId;
use quorate_server::resp::client;
use quorate_server::{serve_by_name, ServerConfig};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Ports nobody listens on right now, all different.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// Nodes running as tasks of one tokio runtime, stopped when dropped.
pub struct TestCluster {
    pub configs: Vec<ServerConfig>,
    stops: Vec<Option<oneshot::Sender<()>>>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    pub fn start(nodes: usize, tweak: impl Fn(&mut ServerConfig)) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let addrs = free_addrs(nodes * 2);
        let peers: BTreeMap<NodeId, SocketAddr> = (0..nodes)
            .map(|i| (NodeId(i as u64 + 1), addrs[i]))
            .collect();
        let configs: Vec<ServerConfig> = (0..nodes)
            .map(|i| {
                let id = i as u64 + 1;
                let mut config = ServerConfig::new(
                    "raft",
                    id,
                    peers.clone(),
                    addrs[nodes + i],
                    dir.path().join(format!("n{id}")),
                );
                config
                    .tuning
                    .insert("election_timeout_min_ms".into(), 150.into());
                config
                    .tuning
                    .insert("election_timeout_max_ms".into(), 300.into());
                config
                    .tuning
                    .insert("heartbeat_interval_ms".into(), 40.into());
                tweak(&mut config);
                config
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut cluster = TestCluster {
            configs,
            stops: Vec::new(),
            runtime,
            _dir: dir,
        };
        for i in 0..nodes {
            cluster.stops.push(None);
            cluster.start_node(i);
        }
        cluster.wait_for_leader(Duration::from_secs(10));
        cluster
    }

    pub fn start_node(&mut self, i: usize) {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.configs[i].clone();
        self.runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = serve_by_name(config, shutdown).await {
                panic!("node failed: {e}");
            }
        });
        self.stops[i] = Some(stop);
        let addr = self.configs[i].client_addr;
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "node {} never listened", i + 1);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop_node(&mut self, i: usize) {
        if let Some(stop) = self.stops[i].take() {
            let _ = stop.send(());
        }
        // Wait until the port is released.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.configs[i].client_addr).is_ok() {
            assert!(Instant::now() < deadline, "node {} did not stop", i + 1);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.configs[i].client_addr
    }

    /// The index of the node that reports being the leader, waiting for one.
    pub fn wait_for_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for (i, config) in self.configs.iter().enumerate() {
                if self.stops[i].is_none() {
                    continue;
                }
                if let Ok(fields) = client::info(config.client_addr, Duration::from_millis(500)) {
                    if fields.iter().any(|(k, v)| k == "role" && v == "leader") {
                        return i;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader elected within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn redis(&self, i: usize) -> redis::Connection {
        let url = format!("redis://{}/", self.client_addr(i));
        let client = redis::Client::open(url).unwrap();
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for stop in self.stops.iter_mut().filter_map(Option::take) {
            let _ = stop.send(());
        }
    }
}

/// Writes raw bytes and reads what comes back until the server closes or `wait` passes.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}
