//! `quorate serve`: run one node of a cluster.

use anyhow::{anyhow, Context};
use clap::Args;
use quorate_server::config::parse_peers;
use quorate_server::tls::TlsConfig;
use quorate_server::{serve_by_name, FollowerMode, ServeError, ServerConfig, PROTOCOLS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A TOML config file (see crates/server/src/config.rs); flags given as well override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The protocol to run; every member must run the same one. With a leader (followers
    /// forward or redirect): raft, multipaxos, zab, primary-backup, chain (reads at the tail),
    /// craq (reads at any node). Leaderless (any node serves): quorum (GET/SET/DEL; N, R, W
    /// in the config's [tuning]), multiprimary ([tuning] resolution = "vv" keeps concurrent
    /// SETs as siblings, which GET answers as an array; "lww": last write wins).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PROTOCOLS))]
    protocol: Option<String>,
    /// This node's id (a key of --peers).
    #[arg(long)]
    id: Option<u64>,
    /// Every member's peer address, this node included: 1=127.0.0.1:7101,2=127.0.0.1:7102,...
    #[arg(long)]
    peers: Option<String>,
    /// Where Redis clients connect.
    #[arg(long, value_name = "IP:PORT")]
    client_addr: Option<SocketAddr>,
    /// Where the write-ahead log and snapshots live (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A name every member shares; peers of other clusters are refused [default: quorate].
    #[arg(long)]
    cluster_id: Option<String>,
    /// Serve Prometheus metrics over HTTP here.
    #[arg(long, value_name = "IP:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// What a follower does with writes and linearizable reads: forward them to the leader,
    /// or redirect the client (-MOVED) [default: forward].
    #[arg(long)]
    follower: Option<FollowerMode>,
    /// Largest key or value a client may write, in bytes [default: 1048576].
    #[arg(long)]
    value_max: Option<usize>,
    /// TLS for clients and peers from a directory `quorate certs` wrote: ca.pem,
    /// node-ID.pem and node-ID-key.pem. Clients then need TLS (redis-cli --tls --cacert
    /// DIR/ca.pem); peers need a certificate from the same CA naming them.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key", "tls_ca"])]
    tls: Option<PathBuf>,
    /// TLS with this node certificate (PEM; must name node-ID); needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The node certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The cluster CA certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Join a running Raft cluster instead of bootstrapping one (etcd's
    /// `--initial-cluster-state existing`): --peers lists the current members and this node;
    /// it waits, without campaigning, until `quorate member add` adds it. Needs an empty
    /// --data-dir the first time, and --join on every restart.
    #[arg(long)]
    join: bool,
}

/// Builds the configuration from the file and the flags.
fn config(args: ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => Some(ServerConfig::from_file(path)?),
        None => None,
    };
    if config.is_none() {
        let missing: Vec<&str> = [
            ("--protocol", args.protocol.is_none()),
            ("--id", args.id.is_none()),
            ("--peers", args.peers.is_none()),
            ("--client-addr", args.client_addr.is_none()),
            ("--data-dir", args.data_dir.is_none()),
        ]
        .into_iter()
        .filter_map(|(flag, absent)| absent.then_some(flag))
        .collect();
        if !missing.is_empty() {
            return Err(anyhow!(
                "missing {} (or give --config FILE); example: quorate serve --protocol raft --id 1 --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --client-addr 127.0.0.1:6381 --data-dir /tmp/q1",
                missing.join(", ")
            ));
        }
        let peers = parse_peers(args.peers.as_deref().expect("checked"))
            .map_err(|e| anyhow!("--peers: {e}"))?;
        config = Some(ServerConfig::new(
            args.protocol.as_deref().expect("checked"),
            args.id.expect("checked"),
            peers,
            args.client_addr.expect("checked"),
            args.data_dir.clone().expect("checked"),
        ));
    }
    let mut config = config.expect("built above");
    if let Some(protocol) = args.protocol {
        config.protocol = protocol;
    }
    if let Some(id) = args.id {
        config.id = id;
    }
    if let Some(peers) = args.peers {
        config.peers = parse_peers(&peers).map_err(|e| anyhow!("--peers: {e}"))?;
    }
    if let Some(addr) = args.client_addr {
        config.client_addr = addr;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(cluster_id) = args.cluster_id {
        config.cluster_id = cluster_id;
    }
    if let Some(addr) = args.metrics_addr {
        config.metrics_addr = Some(addr);
    }
    if let Some(follower) = args.follower {
        config.follower = follower;
    }
    if let Some(value_max) = args.value_max {
        config.value_max = value_max;
    }
    if args.join {
        config.join = true;
    }
    if let Some(dir) = args.tls {
        config.tls = Some(TlsConfig::from_dir(&dir, config.id));
    }
    if let (Some(cert), Some(key), Some(ca)) = (args.tls_cert, args.tls_key, args.tls_ca) {
        config.tls = Some(TlsConfig {
            cert,
            key,
            ca,
            clients: true,
            peers: true,
        });
    }
    config.validate()?;
    Ok(config)
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Before any thread exists: it changes the environment.
    quorate_server::inherited::adopt_from_env().map_err(anyhow::Error::msg)?;
    let config = config(args)?;
    init_logging();
    // Two workers by default; QUORATE_WORKER_THREADS overrides it (on a machine whose cores
    // are shared by several nodes, one worker each saves cross-thread wake-ups; see
    // BENCHMARKS.md).
    let workers = std::env::var("QUORATE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match runtime.block_on(serve_by_name(config, shutdown_signal())) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(ServeError::Config(e)) => Err(e.into()),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Logs to stderr; `RUST_LOG` chooses the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
        _ = terminate.recv() => tracing::info!("terminated; shutting down"),
    }
}
