//! The node processes: `quorate serve --config nN.toml`, started, killed, paused and
//! restarted by PID, each logging to `nN.log` in the report directory.
//!
//! Every node gets its own loopback address (127.0.0.2, 127.0.0.3, ...; all of 127/8 is
//! loopback on Linux), so nothing in the run can lean on every node being 127.0.0.1. Peer
//! addresses in node `a`'s configuration point at the harness's proxy for each link `a -> b`
//! (see [`crate::proxy`]); its own peer address is where it really listens.
//!
//! With `--netns` each node runs in its own network namespace instead (see [`crate::netns`]):
//! its own address and port space, reachable only through the harness.

use crate::netns::{Namespaces, CLIENT_PORT, PEER_PORT};
use crate::proxy::{spawn_link, Links};
use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use quorate_core::NodeId;
use quorate_server::ServerConfig;
use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node and its process, if running.
pub struct Node {
    pub id: u64,
    pub config: ServerConfig,
    pub config_path: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    pub paused: bool,
    /// Extra environment for the process (libfaketime).
    pub env: Vec<(String, String)>,
    /// The network namespace the process runs in (`--netns`), if any.
    pub netns: Option<String>,
}

impl Node {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// True while the process exists (running or stopped).
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        }
    }

    /// The exit status if the process ended on its own.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn start(&mut self, binary: &Path) -> anyhow::Result<()> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        // `ip netns exec` enters the namespace and execs in place: the PID stays the node's.
        let mut command = match &self.netns {
            Some(name) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let child = command.spawn().context("starting a node process")?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    pub fn signal(&mut self, signal: Signal) {
        if let Some(pid) = self.pid() {
            if self.alive() {
                let _ = kill(Pid::from_raw(pid as i32), signal);
            }
        }
        match signal {
            Signal::SIGSTOP => self.paused = true,
            Signal::SIGCONT => self.paused = false,
            _ => {}
        }
    }

    /// SIGCONT, SIGTERM, and SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        if matches!(child.try_wait(), Ok(None)) {
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.child = None;
        self.paused = false;
    }

    /// Resident set size (kB) and open file descriptors, from /proc.
    pub fn resources(&self) -> Option<(u64, usize)> {
        let pid = self.pid()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())?;
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
        Some((rss, fds))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Never leave a process behind, however the harness ends.
        if let Some(child) = self.child.as_mut() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The address node `id` listens on.
pub fn host(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + id as u8))
}

/// A free port on `ip` below the ephemeral range (a restarted node must find its port free),
/// with its listener kept open until every port is chosen.
fn free(ip: IpAddr, held: &mut Vec<std::net::TcpListener>) -> anyhow::Result<SocketAddr> {
    let listener =
        quorate_server::ports::reserve(ip).with_context(|| format!("binding a port on {ip}"))?;
    let addr = listener.local_addr()?;
    held.push(listener);
    Ok(addr)
}

/// Chooses every address, writes each node's configuration into `dir`, and starts the
/// proxies of every directed link. No node is started yet. With `spaces`, node `i` listens
/// inside its namespace and its links' proxies listen on the harness's end of its veth.
pub async fn prepare(
    protocol: &str,
    count: u64,
    tuning: &[(String, toml::Value)],
    dir: &Path,
    links: &Links,
    spaces: Option<&Namespaces>,
) -> anyhow::Result<Vec<Node>> {
    let mut held = Vec::new();
    let mut peer = BTreeMap::new();
    let mut client = BTreeMap::new();
    for id in 1..=count {
        match spaces {
            Some(spaces) => {
                let ip = IpAddr::V4(spaces.host(id).node);
                peer.insert(id, SocketAddr::new(ip, PEER_PORT));
                client.insert(id, SocketAddr::new(ip, CLIENT_PORT));
            }
            None => {
                peer.insert(id, free(host(id), &mut held)?);
                client.insert(id, free(host(id), &mut held)?);
            }
        }
    }
    // One proxy listener per directed link, on the harness's own address (the one the
    // sending node can reach).
    let mut proxies = BTreeMap::new();
    for from in 1..=count {
        let harness = match spaces {
            Some(spaces) => IpAddr::V4(spaces.host(from).harness),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        for to in (1..=count).filter(|to| *to != from) {
            let listener = tokio::net::TcpListener::bind((harness, 0)).await?;
            proxies.insert((from, to), listener);
        }
    }
    drop(held);
    let cluster_id = quorate_server::config::fresh_cluster_id("torture");
    let mut nodes = Vec::new();
    for id in 1..=count {
        let mut peers = BTreeMap::new();
        for other in 1..=count {
            let addr = if other == id {
                peer[&id]
            } else {
                proxies[&(id, other)].local_addr()?
            };
            peers.insert(NodeId(other), addr);
        }
        let mut config =
            ServerConfig::new(protocol, id, peers, client[&id], dir.join(format!("n{id}")));
        // Shorter than the clients' own timeout, so a request the node gives up on is
        // answered -TIMEOUT (unknown) rather than cut off by the client.
        config.request_timeout_ms = 2_000;
        config.cluster_id = cluster_id.clone();
        for (key, value) in tuning {
            config.tuning.insert(key.clone(), value.clone());
        }
        config.validate().map_err(anyhow::Error::msg)?;
        quorate_server::check_tuning(&config).map_err(anyhow::Error::msg)?;
        let config_path = dir.join(format!("n{id}.toml"));
        fs::write(&config_path, config.to_toml())?;
        nodes.push(Node {
            id,
            config,
            config_path,
            log: dir.join(format!("n{id}.log")),
            child: None,
            paused: false,
            env: Vec::new(),
            netns: spaces.map(|s| s.host(id).name.clone()),
        });
    }
    for ((from, to), listener) in proxies {
        spawn_link(listener, from, to, peer[&to], links.clone());
    }
    Ok(nodes)
}
