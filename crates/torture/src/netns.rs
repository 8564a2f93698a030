//! The multi-host shape: every node in its own Linux network namespace (`--netns`, root only).
//!
//! A namespace is a separate network stack: its own interfaces, addresses, routes and port
//! space, as a separate machine would have. Node `i` gets namespace `qt<pid>n<i>` joined to
//! the harness's namespace by one veth pair on its own subnet `10.S.i.0/24`:
//!
//! ```text
//!   harness (root namespace)                 node i's namespace
//!   qt<pid>h<i>  10.S.i.1/24  <--- veth --->  qt<pid>p<i>  10.S.i.2/24
//!   (the proxies of links i -> *)             quorate serve: peers on :7000, clients on :6379
//! ```
//!
//! Every node listens on the same ports (each namespace has its own port space), and nothing
//! routes between the nodes' namespaces: a node reaches another only through the harness's
//! proxy for that link, bound on the harness side of its own veth. So partitions work as in
//! the loopback shape, and a node that assumed 127.0.0.1, a shared port space or a peer it
//! could reach directly would fail here. Processes enter their namespace through
//! `ip netns exec`, which `exec`s in place: the PID the harness signals is the node's own.
//!
//! [`Namespaces`] deletes every veth pair and namespace it created when dropped.

use anyhow::{bail, Context};
use std::net::Ipv4Addr;
use std::process::Command;

/// The peer port every node listens on inside its namespace.
pub const PEER_PORT: u16 = 7000;
/// The client (RESP) port every node listens on inside its namespace.
pub const CLIENT_PORT: u16 = 6379;

/// One node's namespace and the two ends of its veth pair.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    /// The harness's end of the veth pair.
    pub veth: String,
    /// The harness's address on this node's link (its proxies for the node bind here).
    pub harness: Ipv4Addr,
    /// The node's own address, inside its namespace.
    pub node: Ipv4Addr,
}

/// Every namespace of one run; deleted on drop.
#[derive(Debug, Default)]
pub struct Namespaces {
    pub hosts: Vec<Host>,
}

impl Namespaces {
    /// Creates one namespace per node `1..=count`. Fails with a message saying what is
    /// missing when not root or `ip` (iproute2) is not installed.
    pub fn create(count: u64) -> anyhow::Result<Namespaces> {
        if !nix::unistd::geteuid().is_root() {
            bail!("--netns needs root (it creates network namespaces); run without it for the loopback shape");
        }
        ip(&["-V"]).context("--netns needs iproute2's `ip` (apt-get install iproute2)")?;
        let pid = std::process::id() % 100_000;
        let subnet = free_subnet()?;
        let mut spaces = Namespaces::default();
        for id in 1..=count {
            let outside = format!("qt{pid}h{id}");
            let inside = format!("qt{pid}p{id}");
            let host = Host {
                name: format!("qt{pid}n{id}"),
                veth: outside.clone(),
                harness: Ipv4Addr::new(10, subnet, id as u8, 1),
                node: Ipv4Addr::new(10, subnet, id as u8, 2),
            };
            // Recorded before it exists, so a failure halfway still deletes it.
            spaces.hosts.push(host.clone());
            ip(&["netns", "add", &host.name])?;
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns",
                &host.name,
            ])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/24", host.harness),
                "dev",
                &outside,
            ])?;
            ip(&["link", "set", &outside, "up"])?;
            let n = host.name.as_str();
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{}/24", host.node),
                "dev",
                &inside,
            ])?;
            ip(&["-n", n, "link", "set", &inside, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(spaces)
    }

    /// Node `id`'s namespace.
    pub fn host(&self, id: u64) -> &Host {
        &self.hosts[(id - 1) as usize]
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for host in &self.hosts {
            // Deleting one end of a veth pair deletes both, at once (a namespace's own
            // interfaces go only when its last process has gone).
            let _ = ip(&["link", "del", &host.veth]);
            let _ = ip(&["netns", "del", &host.name]);
        }
    }
}

/// A second octet `S` such that no route of this machine covers `10.S.0.0/16`.
fn free_subnet() -> anyhow::Result<u8> {
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    let start = 150 + (std::process::id() % 100) as u8;
    (0..100u8)
        .map(|k| 150 + (start - 150 + k) % 100)
        .find(|s| !routes.contains(&format!("10.{s}.")))
        .context("no free 10.S.0.0/16 subnet for the namespaces' links")
}

/// Runs `ip ARGS`, returning its stdout or an error with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
