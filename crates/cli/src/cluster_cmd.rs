//! `quorate cluster`: a local cluster of real node processes on loopback.
//!
//! Writes one config file per node into the data directory, starts `quorate serve --config`
//! for each as a child process (logging to `nN.log` beside it), waits until a leader is
//! elected (for the leaderless protocols, until every node answers), prints the addresses,
//! and then waits, printing each node that exits and each change of leader. Ctrl-C (or
//! SIGTERM) stops every node by its PID: SIGTERM first, SIGKILL after five seconds.
//! `cluster.json` in the data directory lists each node's PID and addresses for scripts.
//!
//! `quorate cluster restart N --data-dir D` restarts node N of the cluster running on D (after
//! a `kill -9`, say) as a child of that cluster's process, so Ctrl-C still stops it: it
//! leaves a request file `D/restart-N` and sends the cluster process SIGUSR1, which starts
//! the node again from its config and rewrites `cluster.json`.

use anyhow::{anyhow, bail, Context};
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use quorate_core::NodeId;
use quorate_server::resp::client;
use quorate_server::{FollowerMode, ServerConfig, PROTOCOLS};
use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ClusterArgs {
    #[command(subcommand)]
    action: Option<Action>,
    /// The protocol every node runs. With a leader (followers forward or redirect): raft,
    /// multipaxos, zab, primary-backup, chain (reads at the tail), craq (reads at any node).
    /// Leaderless (any node serves): quorum (GET/SET/DEL; N=3, R=W=2 by default),
    /// multiprimary (--tuning resolution=vv: concurrent SETs kept as siblings, GET answers an
    /// array; resolution=lww: last write wins).
    #[arg(long, default_value = "raft", value_parser = clap::builder::PossibleValuesParser::new(PROTOCOLS))]
    protocol: String,
    /// A protocol tunable for every node's [tuning] table, as KEY=VALUE (repeatable), e.g.
    /// --tuning n=3 --tuning r=2 --tuning w=2 (quorum), --tuning resolution=lww
    /// (multiprimary), --tuning election_timeout_min_ms=500 (raft). Values are TOML.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tuning)]
    tuning: Vec<(String, toml::Value)>,
    /// How many nodes (1 to 9).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Directory for the nodes' data, configs and logs [default: a new directory under the
    /// system's temporary directory]. An existing cluster directory is reused, data included.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Client (RESP) port of node 1; node N listens on this + N - 1.
    #[arg(long, default_value_t = 6381)]
    client_port: u16,
    /// Peer port of node 1; node N listens on this + N - 1.
    #[arg(long, default_value_t = 7101)]
    peer_port: u16,
    /// Metrics (HTTP) port of node 1; node N listens on this + N - 1.
    #[arg(long, default_value_t = 9101)]
    metrics_port: u16,
    /// Let the system pick free ports instead of the ones above (for scripts and tests).
    #[arg(long)]
    free_ports: bool,
    /// What followers do with requests only the leader serves: forward or redirect.
    #[arg(long, default_value = "forward")]
    follower: FollowerMode,
    /// A name shared by the nodes; peers with another one are refused. Default: the id
    /// of the cluster in --data-dir; for a new cluster `quorate`, or with --free-ports a
    /// random one (`quorate-1f2e3d4c`).
    #[arg(long)]
    cluster_id: Option<String>,
    /// TLS for clients and peers, with the certificates `quorate certs` wrote in DIR (an
    /// empty or missing DIR gets a new development set first). Clients then connect with
    /// `redis-cli --tls --cacert DIR/ca.pem`.
    #[arg(long, value_name = "DIR")]
    tls: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Restart a node of a running `quorate cluster` (one that exited or was killed), as a
    /// child of that cluster, so that stopping the cluster stops it too.
    Restart {
        /// The node's id.
        node: u64,
        /// The running cluster's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

struct Node {
    config: ServerConfig,
    config_path: PathBuf,
    log: PathBuf,
    child: Child,
    exited: bool,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    if let Some(Action::Restart { node, data_dir }) = &args.action {
        return request_restart(*node, data_dir);
    }
    if !(1..=9).contains(&args.nodes) {
        bail!("--nodes must be between 1 and 9, not {}", args.nodes);
    }
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => fresh_dir()?,
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let tls_dir = match &args.tls {
        Some(tls) => Some(certificates(tls, args.nodes)?),
        None => None,
    };
    let client_tls = match &tls_dir {
        Some(tls) => Some(quorate_server::tls::client_config(&tls.join("ca.pem"))?),
        None => None,
    };
    let configs = match checked_configs(&args, &dir, tls_dir.as_deref()) {
        Ok(configs) => configs,
        Err(e) => {
            if args.data_dir.is_none() {
                let _ = fs::remove_dir(&dir); // Ours, and still empty: leave nothing behind.
            }
            return Err(e);
        }
    };
    // Catch Ctrl-C and SIGTERM before any child exists, so that no signal can end this
    // process while it would leave its nodes behind.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut signals = runtime.block_on(async { Signals::new() })?;
    // A manifest left by an earlier run names processes and ports that are gone; whoever
    // waits for this run's manifest must not read that one.
    match fs::remove_file(dir.join("cluster.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context("removing the old cluster.json"));
        }
        _ => {}
    }
    let mut nodes = Vec::new();
    for (config, listeners) in configs {
        match start(config, &dir, listeners) {
            Ok(node) => nodes.push(node),
            Err(e) => {
                stop_all(&mut nodes);
                return Err(e);
            }
        }
    }
    if let Err(e) = write_manifest(&dir, &args.protocol, &nodes) {
        stop_all(&mut nodes);
        return Err(e);
    }
    print_table(&dir, &nodes);
    let addrs: Vec<(u64, SocketAddr)> = nodes
        .iter()
        .map(|n| (n.config.id, n.config.client_addr))
        .collect();
    let interrupted = Arc::new(AtomicBool::new(false));
    let leader = runtime.block_on(async {
        let stop = interrupted.clone();
        let within = Duration::from_secs(15);
        let tls = client_tls.clone();
        let probe = tokio::task::spawn_blocking(move || {
            wait_for_leader(&addrs, within, &stop, tls.as_ref())
        });
        tokio::select! {
            found = probe => Some(found.ok().flatten()),
            _ = signals.next() => None,
        }
    });
    interrupted.store(true, Ordering::Relaxed);
    let port = match &tls_dir {
        Some(tls) => format!(
            "{} --tls --cacert {}",
            nodes[0].config.client_addr.port(),
            tls.join("ca.pem").display()
        ),
        None => nodes[0].config.client_addr.port().to_string(),
    };
    match leader {
        Some(Some(Ready::Leader(id))) => {
            println!("leader: node {id}. Try: redis-cli -p {port} SET k v")
        }
        Some(Some(Ready::Leaderless)) => {
            println!("leaderless: every node serves clients. Try: redis-cli -p {port} SET k v")
        }
        Some(None) => println!("no leader after 15 s; see the logs in {}", dir.display()),
        None => {} // Interrupted while waiting.
    }
    if leader.is_some() {
        println!("Press Ctrl-C to stop every node; `quorate cluster restart N --data-dir {}` restarts a node after it stops.", dir.display());
        let known = match leader {
            Some(Some(Ready::Leader(id))) => Some(id),
            _ => None,
        };
        let watch = Watch {
            dir: &dir,
            protocol: &args.protocol,
            leader: known,
            leaderless: matches!(leader, Some(Some(Ready::Leaderless))),
            tls: client_tls,
        };
        runtime.block_on(supervise(&mut nodes, &mut signals, watch));
    }
    stop_all(&mut nodes);
    println!("stopped; data kept in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C and SIGTERM.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    /// `quorate cluster restart` asks for a restart with SIGUSR1.
    restart: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            restart: signal(SignalKind::user_defined1())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Every node's configuration, validated (tuning included) before any process starts.
/// The TLS directory for `cluster --tls DIR`, with a new development set written first if
/// DIR holds none.
fn certificates(dir: &Path, nodes: u64) -> anyhow::Result<PathBuf> {
    if !dir.join("ca.pem").exists() {
        crate::certs_cmd::write_set(dir, nodes)?;
        println!("wrote development certificates to {}", dir.display());
    }
    Ok(dir.canonicalize()?)
}

fn checked_configs(
    args: &ClusterArgs,
    dir: &Path,
    tls: Option<&Path>,
) -> anyhow::Result<Vec<Planned>> {
    check_membership(dir, args.nodes)?;
    let mut configs = configs(args, dir)?;
    for (config, _) in &mut configs {
        config.tls = tls.map(|tls| quorate_server::tls::TlsConfig::from_dir(tls, config.id));
    }
    for (config, _) in &configs {
        config.validate().map_err(anyhow::Error::msg)?;
        quorate_server::check_tuning(config).map_err(anyhow::Error::msg)?;
    }
    Ok(configs)
}

/// Refuses to restart an existing cluster directory with another number of nodes: that would
/// change the membership by configuration (nodes 1-3 of a 3-node cluster restarted as members
/// of 5 can form majorities that do not overlap the old ones, and lose acknowledged writes).
/// Each node's `IDENTITY` records the members its directory was created for.
fn check_membership(dir: &Path, nodes: u64) -> anyhow::Result<()> {
    let wanted: Vec<String> = (1..=nodes).map(|id| id.to_string()).collect();
    let wanted = wanted.join(",");
    for id in 1..=9 {
        let identity = dir.join(format!("n{id}")).join("IDENTITY");
        let Ok(text) = fs::read_to_string(&identity) else {
            continue;
        };
        let Some(found) = text.lines().find_map(|l| l.trim().strip_prefix("members ")) else {
            continue; // Written by an older version; the node itself refuses the format.
        };
        if found.starts_with("joined") {
            continue; // Added online: its members are in the log, not in a peer list.
        }
        if found != wanted {
            let count = found.split(',').count();
            bail!(
                "{} holds a cluster of {count} node(s) (members {found}, recorded in {}); restarting it with --nodes {nodes} would change its membership by configuration, which can lose acknowledged writes. Restart it with --nodes {count} and grow or shrink it online with `quorate member add` / `quorate member remove` (new nodes start with `quorate serve --join`), or start a new {nodes}-node cluster with a fresh --data-dir (or none)",
                dir.display(),
                identity.display()
            );
        }
    }
    Ok(())
}

fn fresh_dir() -> anyhow::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(std::env::temp_dir().join(format!("quorate-cluster-{stamp}-{}", std::process::id())))
}

/// A port for node `offset`, bound: `base + offset`, or with `free` a free port below the
/// ephemeral range (see [`quorate_server::ports`]). The listener is handed to the node
/// process itself ([`quorate_server::inherited`]), so the port is never free between this
/// choice and the node's listen, and no other process can take it.
fn port(base: u16, offset: u64, free: bool) -> anyhow::Result<TcpListener> {
    if free {
        return Ok(quorate_server::ports::reserve([127, 0, 0, 1].into())?);
    }
    let port = u64::from(base) + offset;
    let port = u16::try_from(port).map_err(|_| anyhow!("port {port} is out of range"))?;
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).map_err(|e| {
        anyhow!("port {port} is in use (another cluster running?): {e}; choose other ports with --client-port/--peer-port/--metrics-port, or --free-ports")
    })
}

/// A node's configuration and its bound listeners (peers, clients, metrics), to hand over.
type Planned = (ServerConfig, Vec<TcpListener>);

fn configs(args: &ClusterArgs, dir: &Path) -> anyhow::Result<Vec<Planned>> {
    let mut peers = BTreeMap::new();
    let mut clients = Vec::new();
    let mut metrics = Vec::new();
    let mut held = Vec::new();
    let free = args.free_ports;
    for i in 0..args.nodes {
        let listeners = [
            port(args.peer_port, i, free)?,
            port(args.client_port, i, free)?,
            port(args.metrics_port, i, free)?,
        ];
        peers.insert(NodeId(i + 1), listeners[0].local_addr()?);
        clients.push(listeners[1].local_addr()?);
        metrics.push(listeners[2].local_addr()?);
        held.push(listeners);
    }
    let cluster_id = cluster_id(args, dir)?;
    let configs = held
        .into_iter()
        .enumerate()
        .map(|(i, listeners)| {
            let id = i as u64 + 1;
            let mut config = ServerConfig::new(
                &args.protocol,
                id,
                peers.clone(),
                clients[i],
                dir.join(format!("n{id}")),
            );
            config.metrics_addr = Some(metrics[i]);
            config.follower = args.follower;
            config.cluster_id = cluster_id.clone();
            for (key, value) in &args.tuning {
                config.tuning.insert(key.clone(), value.clone());
            }
            (config, Vec::from(listeners))
        })
        .collect();
    Ok(configs)
}

/// `--cluster-id`; for a directory that holds a cluster, the id its nodes' storage records
/// (a restart, or a cluster `quorate snapshot restore` seeded);
/// otherwise, with `--free-ports`, a new one (`quorate-` and 8 random hex digits), and
/// `quorate` on the fixed ports. Clusters on free ports are the ones started side by side
/// (scripts, tests): with ids of their own they refuse each other's peers even when one
/// takes a port another's stopped node had (etcd's `--initial-cluster-token` serves the
/// same end). On fixed ports a second cluster cannot start beside the first, and a node
/// started by hand with `quorate serve --join` finds the default id.
fn cluster_id(args: &ClusterArgs, dir: &Path) -> anyhow::Result<String> {
    if let Some(id) = &args.cluster_id {
        return Ok(id.clone());
    }
    let recorded = (1..=9)
        .find_map(|id| quorate_server::backup::recorded_cluster_id(&dir.join(format!("n{id}"))));
    if let Some(id) = recorded {
        return Ok(id);
    }
    Ok(match args.free_ports {
        true => quorate_server::config::fresh_cluster_id("quorate"),
        false => quorate_server::config::DEFAULT_CLUSTER_ID.into(),
    })
}

/// `KEY=VALUE` with a TOML value; a bare word is a string (`resolution=lww`).
pub(crate) fn parse_tuning(text: &str) -> Result<(String, toml::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE (example: --tuning n=3)"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{text:?} has no key"));
    }
    let value = value.trim();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key.to_string(), parsed))
}

/// Starts node `config.id` as a child process that listens on `listeners` (bound for it here;
/// none on a restart, where the node binds its ports itself).
fn start(config: ServerConfig, dir: &Path, listeners: Vec<TcpListener>) -> anyhow::Result<Node> {
    let config_path = dir.join(format!("n{}.toml", config.id));
    fs::write(&config_path, config.to_toml())?;
    let log = dir.join(format!("n{}.log", config.id));
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["serve", "--config"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    quorate_server::inherited::pass(&mut command, listeners);
    let child = command.spawn().context("starting a node process")?;
    Ok(Node {
        config,
        config_path,
        log,
        child,
        exited: false,
    })
}

fn write_manifest(dir: &Path, protocol: &str, nodes: &[Node]) -> anyhow::Result<()> {
    let entries: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "id": n.config.id,
                "pid": n.child.id(),
                "client_addr": n.config.client_addr.to_string(),
                "peer_addr": n.config.peers[&n.config.node_id()].to_string(),
                "metrics_addr": n.config.metrics_addr.map(|a| a.to_string()),
                "config": n.config_path,
                "log": n.log,
                "data_dir": n.config.data_dir,
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "protocol": protocol,
        "cluster_id": nodes.first().map(|n| n.config.cluster_id.as_str()),
        "cluster_pid": std::process::id(),
        "nodes": entries,
    });
    fs::write(
        dir.join("cluster.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(())
}

fn print_table(dir: &Path, nodes: &[Node]) {
    println!("data directory: {}", dir.display());
    if let Some(n) = nodes.first() {
        println!("cluster id: {}", n.config.cluster_id);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["node", "pid", "clients (RESP)", "peers", "metrics", "log"]);
    for n in nodes {
        let metrics = n
            .config
            .metrics_addr
            .map_or(String::new(), |a| format!("http://{a}/metrics"));
        table.add_row([
            n.config.id.to_string(),
            n.child.id().to_string(),
            n.config.client_addr.to_string(),
            n.config.peers[&n.config.node_id()].to_string(),
            metrics,
            n.log
                .file_name()
                .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
        ]);
    }
    println!("{table}");
}

/// What `wait_for_leader` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ready {
    /// This node reports being the leader.
    Leader(u64),
    /// Every node answers as a replica of a leaderless protocol.
    Leaderless,
}

/// Polls `INFO` until some node reports being the leader, or every node reports being a
/// replica of a leaderless protocol.
fn wait_for_leader(
    nodes: &[(u64, SocketAddr)],
    within: Duration,
    interrupted: &AtomicBool,
    tls: Option<&client::ClientTls>,
) -> Option<Ready> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !interrupted.load(Ordering::Relaxed) {
        let mut replicas = 0;
        for (id, addr) in nodes {
            let Ok(fields) = client::info_over(*addr, Duration::from_millis(500), tls) else {
                continue;
            };
            let role = |r: &str| fields.iter().any(|(k, v)| k == "role" && v == r);
            if role("leader") {
                return Some(Ready::Leader(*id));
            }
            replicas += usize::from(role("replica"));
        }
        if replicas == nodes.len() {
            return Some(Ready::Leaderless);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// What the supervisor watches besides the processes.
struct Watch<'a> {
    dir: &'a Path,
    protocol: &'a str,
    /// The leader last printed.
    leader: Option<u64>,
    leaderless: bool,
    /// How to reach TLS client ports, if the cluster uses TLS.
    tls: Option<client::ClientTls>,
}

/// Waits for Ctrl-C or SIGTERM, reporting nodes that exit on their own and changes of leader
/// meanwhile, and restarting nodes when `quorate cluster restart` asks.
async fn supervise(nodes: &mut [Node], signals: &mut Signals, mut watch: Watch<'_>) {
    let mut probe = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = signals.interrupt.recv() => return,
            _ = signals.terminate.recv() => return,
            _ = signals.restart.recv() => restart_requested(nodes, &watch),
            _ = tokio::time::sleep(Duration::from_millis(200)) => report_exits(nodes),
            _ = probe.tick(), if !watch.leaderless => {
                let live: Vec<(u64, SocketAddr)> = nodes
                    .iter()
                    .filter(|n| !n.exited)
                    .map(|n| (n.config.id, n.config.client_addr))
                    .collect();
                let tls = watch.tls.clone();
                let found = tokio::task::spawn_blocking(move || current_leader(&live, tls.as_ref()))
                    .await
                    .ok()
                    .flatten();
                if found != watch.leader {
                    match found {
                        Some(id) => println!("leader: node {id}"),
                        None => println!("leader: none (an election is under way, or no majority is up)"),
                    }
                    watch.leader = found;
                }
            }
        }
    }
}

/// The node that reports being the leader, asked once.
fn current_leader(nodes: &[(u64, SocketAddr)], tls: Option<&client::ClientTls>) -> Option<u64> {
    nodes.iter().find_map(|(id, addr)| {
        let fields = client::info_over(*addr, Duration::from_millis(300), tls).ok()?;
        let leads = fields.iter().any(|(k, v)| k == "role" && v == "leader");
        leads.then_some(*id)
    })
}

/// Restarts every node named by a `restart-N` request file whose process has exited.
fn restart_requested(nodes: &mut [Node], watch: &Watch<'_>) {
    for n in nodes.iter_mut() {
        let request = watch.dir.join(format!("restart-{}", n.config.id));
        if fs::remove_file(&request).is_err() {
            continue;
        }
        if let Ok(None) = n.child.try_wait() {
            println!(
                "node {} is running (pid {}); not restarted",
                n.config.id,
                n.child.id()
            );
            continue;
        }
        match start(n.config.clone(), watch.dir, Vec::new()) {
            Ok(node) => {
                println!(
                    "node {} restarted (pid {})",
                    node.config.id,
                    node.child.id()
                );
                *n = node;
            }
            Err(e) => eprintln!("node {}: restart failed: {e:#}", n.config.id),
        }
    }
    if let Err(e) = write_manifest(watch.dir, watch.protocol, nodes) {
        eprintln!("could not rewrite cluster.json: {e:#}");
    }
}

/// `quorate cluster restart N --data-dir D`: asks the cluster process running on `D` to
/// restart node `N`, and waits until it has.
fn request_restart(node: u64, dir: &Path) -> anyhow::Result<ExitCode> {
    let manifest_path = dir.join("cluster.json");
    let read = || -> anyhow::Result<serde_json::Value> {
        let text = fs::read_to_string(&manifest_path).with_context(|| {
            format!(
                "no cluster.json in {}: is a `quorate cluster` running there?",
                dir.display()
            )
        })?;
        Ok(serde_json::from_str(&text)?)
    };
    let manifest = read()?;
    let cluster_pid = manifest["cluster_pid"]
        .as_i64()
        .context("cluster.json has no cluster_pid")?;
    let pid_of = |m: &serde_json::Value| {
        m["nodes"].as_array().and_then(|nodes| {
            nodes
                .iter()
                .find(|n| n["id"].as_u64() == Some(node))
                .and_then(|n| n["pid"].as_i64())
        })
    };
    let Some(old_pid) = pid_of(&manifest) else {
        bail!("the cluster on {} has no node {node}", dir.display());
    };
    if kill(Pid::from_raw(cluster_pid as i32), None).is_err() {
        bail!(
            "the `quorate cluster` that ran on {} (pid {cluster_pid}) is gone; start it again with `quorate cluster --data-dir {}` (same --nodes)",
            dir.display(),
            dir.display()
        );
    }
    if kill(Pid::from_raw(old_pid as i32), None).is_ok() && process_state(old_pid) != Some('Z') {
        bail!("node {node} is running (pid {old_pid}); stop it first (kill {old_pid})");
    }
    fs::write(dir.join(format!("restart-{node}")), b"")?;
    kill(Pid::from_raw(cluster_pid as i32), Signal::SIGUSR1)
        .context("signalling the cluster process")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(pid) = read().ok().as_ref().and_then(pid_of) {
            if pid != old_pid {
                println!("node {node} restarted (pid {pid})");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    bail!(
        "the cluster process did not restart node {node} within 10 s; see its output and {}",
        dir.join(format!("n{node}.log")).display()
    )
}

/// The state letter of a process from /proc (`Z`: a zombie its parent has not reaped).
fn process_state(pid: i64) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim().chars().next()
}

fn report_exits(nodes: &mut [Node]) {
    for n in nodes.iter_mut().filter(|n| !n.exited) {
        if let Ok(Some(status)) = n.child.try_wait() {
            n.exited = true;
            eprintln!(
                "node {} (pid {}) exited: {status}; see {}",
                n.config.id,
                n.child.id(),
                n.log.display()
            );
        }
    }
}

/// SIGTERM to every node still running, then SIGKILL to any left after five seconds.
fn stop_all(nodes: &mut [Node]) {
    for n in nodes.iter_mut() {
        if let Ok(None) = n.child.try_wait() {
            let _ = kill(Pid::from_raw(n.child.id() as i32), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for n in nodes.iter_mut() {
        loop {
            match n.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = n.child.kill();
                    let _ = n.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
