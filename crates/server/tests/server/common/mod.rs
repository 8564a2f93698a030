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
    quorate_server::ports::free_loopback_addrs(n).unwrap()
}

/// Protocols without a leader: no node ever reports `role:leader`.
pub fn is_leaderless(protocol: &str) -> bool {
    matches!(protocol, "quorum" | "multiprimary")
}

/// `[tuning]` for tests: timeouts short enough that a leader is elected (or replaced) in well
/// under a second on loopback, the same for every protocol where they have the same meaning.
fn fast_tuning(protocol: &str) -> Vec<(&'static str, toml::Value)> {
    let ms = |n: i64| toml::Value::Integer(n);
    match protocol {
        "raft" | "multipaxos" => vec![
            ("election_timeout_min_ms", ms(150)),
            ("election_timeout_max_ms", ms(300)),
            ("heartbeat_interval_ms", ms(40)),
        ],
        "zab" => vec![("tick_ms", ms(50))],
        "primary-backup" | "chain" | "craq" => vec![
            ("view_change_timeout_min_ms", ms(150)),
            ("view_change_timeout_max_ms", ms(300)),
            ("heartbeat_interval_ms", ms(40)),
            ("member_timeout_ms", ms(300)),
            ("rejoin_after_ms", ms(500)),
        ],
        "quorum" | "multiprimary" => vec![
            ("anti_entropy_interval_min_ms", ms(100)),
            ("anti_entropy_interval_max_ms", ms(200)),
        ],
        other => panic!("no test tuning for {other}"),
    }
}

/// Nodes running as tasks of one tokio runtime, stopped when dropped.
pub struct TestCluster {
    pub protocol: String,
    pub configs: Vec<ServerConfig>,
    stops: Vec<Option<oneshot::Sender<()>>>,
    tasks: Vec<Option<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// A Raft cluster of `nodes`, each config adjusted by `tweak`.
    pub fn start(nodes: usize, tweak: impl Fn(&mut ServerConfig)) -> TestCluster {
        TestCluster::start_protocol("raft", nodes, tweak)
    }

    /// A cluster of `nodes` running `protocol` (a `--protocol` name), ready for clients: a
    /// leader elected, or for leaderless protocols every node answering.
    pub fn start_protocol(
        protocol: &str,
        nodes: usize,
        tweak: impl Fn(&mut ServerConfig),
    ) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        // Peer, client and metrics addresses, from one call so they are all different.
        let addrs = free_addrs(nodes * 3);
        let peers: BTreeMap<NodeId, SocketAddr> = (0..nodes)
            .map(|i| (NodeId(i as u64 + 1), addrs[i]))
            .collect();
        let configs: Vec<ServerConfig> = (0..nodes)
            .map(|i| {
                let id = i as u64 + 1;
                let mut config = ServerConfig::new(
                    protocol,
                    id,
                    peers.clone(),
                    addrs[nodes + i],
                    dir.path().join(format!("n{id}")),
                );
                config.metrics_addr = Some(addrs[2 * nodes + i]);
                for (name, value) in fast_tuning(protocol) {
                    config.tuning.insert(name.into(), value);
                }
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
            protocol: protocol.to_string(),
            configs,
            stops: Vec::new(),
            tasks: Vec::new(),
            runtime,
            _dir: dir,
        };
        for i in 0..nodes {
            cluster.stops.push(None);
            cluster.tasks.push(None);
            cluster.start_node(i);
        }
        if is_leaderless(protocol) {
            for i in 0..nodes {
                cluster.wait_answering(i, Duration::from_secs(10));
            }
        } else {
            cluster.wait_for_leader(Duration::from_secs(10));
        }
        cluster
    }

    /// Waits until node `i` answers INFO.
    pub fn wait_answering(&self, i: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while client::info_as(
            self.client_addr(i),
            self.password(i),
            Duration::from_millis(500),
        )
        .is_err()
        {
            assert!(Instant::now() < deadline, "node {} never answered", i + 1);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// INFO of node `i`, as `key:value` pairs.
    pub fn info(&self, i: usize) -> Vec<(String, String)> {
        client::info_as(
            self.client_addr(i),
            self.password(i),
            Duration::from_secs(2),
        )
        .unwrap()
    }

    pub fn start_node(&mut self, i: usize) {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.configs[i].clone();
        let task = self.runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = serve_by_name(config, shutdown).await {
                panic!("node failed: {e}");
            }
        });
        self.stops[i] = Some(stop);
        self.tasks[i] = Some(task);
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
        if let Some(task) = self.tasks[i].take() {
            let _ = self.runtime.block_on(task);
        }
        // The node's listener tasks are aborted as it returns, which takes effect when they
        // are next polled: wait until both ports are free again, so a restart can bind them.
        let me = NodeId(i as u64 + 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        for addr in [self.configs[i].client_addr, self.configs[i].peers[&me]] {
            while TcpListener::bind(addr).is_err() {
                assert!(Instant::now() < deadline, "node {} did not stop", i + 1);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    #[allow(dead_code)] // Not every test binary scrapes metrics.
    pub fn metrics_addr(&self, i: usize) -> SocketAddr {
        self.configs[i]
            .metrics_addr
            .expect("test nodes export metrics")
    }

    #[allow(dead_code)] // Not every test binary dials peers.
    pub fn peer_addr(&self, i: usize) -> SocketAddr {
        self.configs[i].peers[&NodeId(i as u64 + 1)]
    }

    /// Node `i`'s `default` password, if it has one.
    fn password(&self, i: usize) -> Option<&str> {
        self.configs[i].requirepass.as_deref()
    }

    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.configs[i].client_addr
    }

    /// The index of the node that reports being the leader, waiting for one.
    pub fn wait_for_leader(&self, within: Duration) -> usize {
        assert!(
            !is_leaderless(&self.protocol),
            "{} has no leader",
            self.protocol
        );
        let deadline = Instant::now() + within;
        loop {
            for (i, config) in self.configs.iter().enumerate() {
                if self.stops[i].is_none() {
                    continue;
                }
                let password = config.requirepass.as_deref();
                if let Ok(fields) =
                    client::info_as(config.client_addr, password, Duration::from_millis(500))
                {
                    if fields.iter().any(|(k, v)| k == "role" && v == "leader") {
                        return i;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: no leader elected within {within:?}",
                self.protocol
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

/// Sends one command (`args[0]` and its arguments) and answers the reply; panics on an error.
pub fn query(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Sends one command that must fail and answers the error's text.
pub fn query_err(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let result: redis::RedisResult<redis::Value> = cmd.query(con);
    match result {
        Ok(value) => panic!("{args:?} answered {value:?}, not an error"),
        Err(e) => e.to_string(),
    }
}
