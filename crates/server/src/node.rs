//! Wiring one node: configuration, storage recovery, listeners, the runtime.

use crate::config::{ConfigError, ServerConfig};
use crate::metrics::{self, Metrics};
use crate::resp::Listener;
use crate::runtime::{Inboxes, NodeHandle, Runtime};
use crate::served::{ClientModel, ServedProtocol};
use crate::storage::{Persister, Storage, StorageError};
use crate::tls::Tls;
use crate::transport::{accept_loop, spawn_outbound, Inbound, PeerContext};
use crate::watch::Watch;
use quorate_core::{NodeId, Protocol};
use quorate_protocols::multipaxos::MultiPaxos;
use quorate_protocols::multiprimary::MultiPrimary;
use quorate_protocols::primary_backup::Replica;
use quorate_protocols::quorum::Quorum;
use quorate_protocols::raft::Raft;
use quorate_protocols::zab::Zab;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// The protocols `--protocol` accepts: every protocol the simulator runs, on the same node
/// types, except single-decree Paxos. Its nodes decide one write-once value per key, so SET
/// could only mean `SET NX` and DEL, APPEND and CAS to another value could never succeed; a
/// Redis client would see a store that silently refuses most of what it asks. Multi-Paxos
/// (`multipaxos`) is the served form of Paxos.
pub const PROTOCOLS: &[&str] = &[
    "raft",
    "multipaxos",
    "zab",
    "primary-backup",
    "chain",
    "craq",
    "quorum",
    "multiprimary",
];

/// What a joiner's data directory records instead of its bootstrap members.
const JOINED: &str = "joined a running cluster (quorate serve --join)";

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start: {0}")]
    Recovery(String),
    #[error("cannot start: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("stopped: {0}")]
    Failed(String),
}

/// Runs the protocol the config names until `shutdown` resolves.
pub async fn serve_by_name(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    match config.protocol.as_str() {
        "raft" => serve::<Raft>(config, shutdown).await,
        "multipaxos" => serve::<MultiPaxos>(config, shutdown).await,
        "zab" => serve::<Zab>(config, shutdown).await,
        "primary-backup" | "chain" | "craq" => serve::<Replica>(config, shutdown).await,
        "quorum" => serve::<Quorum>(config, shutdown).await,
        "multiprimary" => serve::<MultiPrimary>(config, shutdown).await,
        other => Err(ConfigError::Invalid(format!(
            "unknown protocol {other:?}; this build serves: {}",
            PROTOCOLS.join(", ")
        ))
        .into()),
    }
}

/// Checks that the config's `[tuning]` builds a node of its protocol, without starting one
/// (so that `quorate cluster` can refuse a bad `--tuning` before spawning anything).
pub fn check_tuning(config: &ServerConfig) -> Result<(), ConfigError> {
    match config.protocol.as_str() {
        "raft" => build::<Raft>(config).map(drop),
        "multipaxos" => build::<MultiPaxos>(config).map(drop),
        "zab" => build::<Zab>(config).map(drop),
        "primary-backup" | "chain" | "craq" => build::<Replica>(config).map(drop),
        "quorum" => build::<Quorum>(config).map(drop),
        "multiprimary" => build::<MultiPrimary>(config).map(drop),
        other => Err(ConfigError::Invalid(format!(
            "unknown protocol {other:?}; this build serves: {}",
            PROTOCOLS.join(", ")
        ))),
    }
}

/// The node the config describes: its variant name, the node, and how clients see it.
fn build<P: ServedProtocol>(
    config: &ServerConfig,
) -> Result<(&'static str, P, ClientModel), ConfigError> {
    let Some(name) = P::NAMES.iter().copied().find(|n| *n == config.protocol) else {
        return Err(ConfigError::Invalid(format!(
            "protocol {:?} is not one of {}",
            config.protocol,
            P::NAMES.join(", ")
        )));
    };
    let tuning = P::Config::deserialize(toml::Value::Table(config.tuning.clone()))
        .map_err(|e| ConfigError::Invalid(format!("[tuning] for {name}: {e}")))?;
    let node = P::build(name, config.node_id(), &config.members(), &tuning)
        .map_err(|e| ConfigError::Invalid(format!("[tuning] for {name}: {e}")))?;
    Ok((name, node, P::client_model(&tuning)))
}

/// Runs one node of protocol `P`, as the variant `config.protocol` names, until `shutdown`
/// resolves (Ok) or storage fails (Err).
pub async fn serve<P: ServedProtocol>(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    let me = config.node_id();
    let (name, node, model) = build::<P>(&config)?;
    let tls = match &config.tls {
        Some(tls) => Tls::load(tls)?,
        None => Tls::none(),
    };
    // Storage first: damage must be reported as such, whatever else is wrong.
    let (storage, records) = recover::<P>(name, &config).await?;
    let peer_listener = bind("peers", config.peers[&me]).await?;
    let client_listener = bind("clients", config.client_addr).await?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(bind("metrics", addr).await?),
        None => None,
    };
    for addr in crate::inherited::close_unused() {
        warn!(%addr, "closed an inherited listener that no configured address names");
    }

    let metrics = Metrics::new();
    let ctx = Arc::new(PeerContext {
        me,
        cluster_id: config.cluster_id.clone(),
        protocol: name,
        members: Mutex::new(config.peers.keys().copied().collect()),
        client_addr: config.client_addr,
        frame_max: config.peer_frame_max,
        metrics: metrics.clone(),
        client_addrs: Mutex::new(BTreeMap::new()),
        inbound: Inbound::new(config.peer_frame_max),
        tls,
    });
    let (persisted_tx, persisted) = mpsc::unbounded_channel();
    let persister = Persister::start(storage, persisted_tx, metrics.clone());
    let peers: BTreeMap<NodeId, _> = config
        .peers
        .iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, addr)| {
            (
                *id,
                spawn_outbound(ctx.clone(), *id, *addr, config.send_queue_max),
            )
        })
        .collect();
    let (peer_tx, peer_rx) = mpsc::channel(4096);
    let (call_tx, call_rx) = mpsc::channel(16_384);
    let config = Arc::new(config);
    let mut runtime = Runtime::start(
        node,
        records,
        persister,
        peers,
        ctx.clone(),
        config.send_queue_max,
    );
    runtime.sync_in_place(config.wal_sync_in_place);
    let watch = Watch::new(config.change_window_max, config.change_window_bytes_max);
    runtime.attach_watch(watch.clone());
    let status = metrics
        .status()
        .expect("the runtime publishes its status at start");
    info!(
        protocol = name,
        node = %me,
        cluster = %config.cluster_id,
        clients = %config.client_addr,
        peers = %config.peers[&me],
        term = status.term,
        last_index = status.last_index,
        "node started"
    );

    let mut tasks = vec![
        tokio::spawn(accept_loop(peer_listener, ctx.clone(), peer_tx)),
        tokio::spawn(
            Listener {
                listener: client_listener,
                node: NodeHandle::new(call_tx, ctx, config.clone(), model, watch),
            }
            .run(),
        ),
    ];
    if let Some(listener) = metrics_listener {
        tasks.push(tokio::spawn(metrics::serve_http(listener, metrics, name)));
    }
    let (stop, stopped) = oneshot::channel();
    tasks.push(tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    }));
    let inboxes = Inboxes {
        peers: peer_rx,
        calls: call_rx,
        persisted,
    };
    // The event loop is a task like the connections and peer links, not the future this
    // function runs on: `block_on` would keep it on its own thread, and every hand-off
    // between it and a connection (each request, each reply, each peer message) would then
    // be a wake-up of another thread. As a task it runs on whichever worker is free, often
    // the one that just queued its input (BENCHMARKS.md, "Fewer hand-offs per request").
    let result = match tokio::spawn(runtime.run(inboxes, stopped)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(format!("the event loop panicked: {e}")),
        Err(e) => Err(format!("the event loop stopped: {e}")),
    };
    for task in tasks {
        task.abort();
    }
    match &result {
        Ok(()) => info!(node = %me, "node stopped"),
        Err(why) => warn!(node = %me, "node stopping: {why}"),
    }
    result.map_err(ServeError::Failed)
}

/// The listener for `addr`: the socket the parent bound and handed down, if it did (see
/// [`crate::inherited`]), otherwise one bound here.
async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    let error = |source| ServeError::Bind { what, addr, source };
    match crate::inherited::take(addr) {
        Some(listener) => {
            listener.set_nonblocking(true).map_err(error)?;
            TcpListener::from_std(listener).map_err(error)
        }
        None => TcpListener::bind(addr).await.map_err(error),
    }
}

/// Opens the data directory and decodes the durable records.
async fn recover<P: ServedProtocol>(
    name: &str,
    config: &ServerConfig,
) -> Result<(Storage, Vec<<P as Protocol>::Record>), ServeError> {
    let members: Vec<NodeId> = config.peers.keys().copied().collect();
    let mut options =
        crate::backup::storage_options(name, config.node_id(), &config.cluster_id, &members);
    if config.join {
        // A joiner's members come from the leader's log, not from its peer list (which only
        // says whom to dial first): record that it joined, so that a restart without `join`
        // is refused rather than bootstrapping a cluster of its own.
        options.members = JOINED.into();
    }
    let dir = config.data_dir.clone();
    let opened = tokio::task::spawn_blocking(move || Storage::open_with(&dir, &options))
        .await
        .map_err(|e| ServeError::Recovery(format!("recovery panicked: {e}")))??;
    let (storage, payloads, report) = opened;
    let mut records = Vec::with_capacity(payloads.len());
    for (number, payload) in payloads.iter().enumerate() {
        let record = postcard::from_bytes(payload).map_err(|e| {
            ServeError::Recovery(format!(
                "record {} in {} passed its checksum but does not decode as a {} record ({e}); was the directory written by another version of quorate or another protocol?",
                number + 1,
                config.data_dir.display(),
                name
            ))
        })?;
        records.push(record);
    }
    if let Some((offset, bytes)) = report.torn {
        warn!(
            dir = %config.data_dir.display(),
            offset,
            bytes,
            "zeroed a torn write at the end of the write-ahead log: a batch whose write a crash cut short before its end marker, so before its fsync (nothing in it was acknowledged)"
        );
    }
    info!(
        dir = %config.data_dir.display(),
        snapshot_bytes = report.snapshot_bytes.unwrap_or(0),
        wal_records = report.wal_records,
        generation = report.generation,
        "recovered storage"
    );
    Ok((storage, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_protocol_is_the_name_of_exactly_one_served_node_type() {
        let names: Vec<&str> = [
            <Raft as ServedProtocol>::NAMES,
            <MultiPaxos as ServedProtocol>::NAMES,
            <Zab as ServedProtocol>::NAMES,
            <Replica as ServedProtocol>::NAMES,
            <Quorum as ServedProtocol>::NAMES,
            <MultiPrimary as ServedProtocol>::NAMES,
        ]
        .concat();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "a name served twice: {names:?}");
        let mut listed = PROTOCOLS.to_vec();
        listed.sort();
        assert_eq!(listed, sorted);
    }
}
