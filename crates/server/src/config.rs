//! A node's configuration: from command-line flags or a TOML file, validated before anything
//! starts.
//!
//! ```toml
//! protocol = "raft"
//! cluster_id = "quorate"
//! id = 1
//! client_addr = "127.0.0.1:6381"
//! metrics_addr = "127.0.0.1:9101"      # optional: Prometheus metrics over HTTP
//! data_dir = "/var/lib/quorate/n1"
//! follower = "forward"                 # or "redirect": answer MOVED with the leader's address
//!
//! [peers]                              # every member, this node included
//! 1 = "127.0.0.1:7101"
//! 2 = "127.0.0.1:7102"
//! 3 = "127.0.0.1:7103"
//!
//! [tuning]                             # the protocol's own knobs (see `served.rs`)
//! heartbeat_interval_ms = 75
//!
//! [tls]                                # optional (see `tls.rs`); `quorate certs` writes these
//! cert = "/etc/quorate/node-1.pem"     # names node-1 (SAN DNS), signed by the CA
//! key = "/etc/quorate/node-1-key.pem"
//! ca = "/etc/quorate/ca.pem"           # the cluster CA: peers must present a cert it signed
//! clients = true                       # the client port accepts TLS only
//! peers = true                         # mutual TLS between members
//! ```

use quorate_core::NodeId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a follower does with a request only the leader can serve.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowerMode {
    /// Pass it to the leader over the peer connection and relay the answer.
    #[default]
    Forward,
    /// Answer `-MOVED 0 <leader client address>` (Redis Cluster's redirect; `redis-cli -c`
    /// follows it).
    Redirect,
}

impl std::str::FromStr for FollowerMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "forward" => Ok(FollowerMode::Forward),
            "redirect" => Ok(FollowerMode::Redirect),
            other => Err(format!(
                "unknown follower mode {other:?}: use forward or redirect"
            )),
        }
    }
}

/// Everything a node needs to run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Which protocol to run (`raft`, ...). Every member must run the same one.
    pub protocol: String,
    /// A name shared by the members of one cluster; peers from other clusters are refused.
    #[serde(default = "default_cluster_id")]
    pub cluster_id: String,
    /// This node's id; must be a key of `peers`.
    pub id: u64,
    /// Every member's peer address (this node's own is where it listens for peers).
    #[serde(deserialize_with = "deserialize_peers")]
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where clients connect (RESP).
    pub client_addr: SocketAddr,
    /// Where Prometheus scrapes metrics; none when absent.
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    /// The write-ahead log and snapshot live here.
    pub data_dir: PathBuf,
    #[serde(default)]
    pub follower: FollowerMode,
    /// Largest key or value a client may write, in bytes.
    #[serde(default = "default_value_max")]
    pub value_max: usize,
    /// Largest peer frame, in bytes (a snapshot travels in one frame).
    #[serde(default = "default_frame_max")]
    pub peer_frame_max: usize,
    /// While the storage thread is idle, the event loop writes and fsyncs a small record
    /// itself when nothing else waits, saving two thread hand-offs per write on a lightly
    /// loaded node (see `runtime.rs`, `flush_staged`); false leaves every fsync to the
    /// storage thread, so the loop keeps taking messages and firing timers however long
    /// an fsync stalls.
    #[serde(default = "default_true")]
    pub wal_sync_in_place: bool,
    /// Messages queued for one peer before new ones are dropped.
    #[serde(default = "default_send_queue_max")]
    pub send_queue_max: usize,
    /// Client connections served at once; more are refused with an error.
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    /// Requests one client connection may have in flight (pipelining depth).
    #[serde(default = "default_pipeline_max")]
    pub pipeline_max: usize,
    /// Client requests in flight through this node at once, over all connections; further
    /// requests wait for a slot (back-pressure) rather than overflow the protocol's bounded
    /// queues, which would refuse them.
    #[serde(default = "default_inflight_max")]
    pub inflight_max: usize,
    /// How long a request may take, retries included, before the client is told the outcome
    /// is unknown.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long a client may take to finish a command it has begun sending; a connection
    /// holding a partial command longer is closed (so idle half-commands cannot hold every
    /// connection slot).
    #[serde(default = "default_client_partial_timeout_ms")]
    pub client_partial_timeout_ms: u64,
    /// Bytes of replies a client connection may owe (written but not yet taken by the
    /// client) before it is closed (Redis's `client-output-buffer-limit`, hard limit).
    #[serde(default = "default_client_output_buffer_max")]
    pub client_output_buffer_max: usize,
    /// Close client connections idle this long with nothing in flight (Redis's `timeout`);
    /// 0, the default, never does.
    #[serde(default)]
    pub client_idle_timeout_ms: u64,
    /// The `default` user's password (Redis's `requirepass`; see [`crate::auth`]).
    #[serde(default)]
    pub requirepass: Option<String>,
    /// Named users with roles (see [`crate::auth`]).
    #[serde(default)]
    pub users: Vec<crate::auth::UserConfig>,
    /// TLS for clients and peers; none when absent (see [`crate::tls`]).
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Changes the node keeps for `XREAD ... STREAMS __changes__` to resume from (see
    /// [`crate::watch`]); a client further behind is told the oldest revision kept.
    #[serde(default = "default_change_window_max")]
    pub change_window_max: usize,
    /// Bytes of keys and values that window may hold (it may keep overwritten values alive).
    #[serde(default = "default_change_window_bytes_max")]
    pub change_window_bytes_max: usize,
    /// Join a running cluster instead of bootstrapping one (etcd's `--initial-cluster-state
    /// existing`): `peers` are the current members to reach and this node's own address; the
    /// node starts outside the configuration, never campaigns, and waits for the leader to
    /// add it (`quorate member add`; see [`crate::membership`]). Raft only.
    #[serde(default)]
    pub join: bool,
    /// The protocol's tunables, passed to `ServedProtocol::Config`.

    #[serde(default)]
    pub tuning: toml::Table,
}

/// The cluster id of a node configured without one.
pub const DEFAULT_CLUSTER_ID: &str = "quorate";

fn default_cluster_id() -> String {
    DEFAULT_CLUSTER_ID.into()
}

/// A new cluster id, `PREFIX-` and 8 random hex digits, for a cluster started by a tool
/// (`quorate cluster`, `quorate torture`): clusters started side by side on one machine then
/// refuse each other's peers, as etcd's `--initial-cluster-token` makes them do.
pub fn fresh_cluster_id(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}
fn default_value_max() -> usize {
    1 << 20
}
fn default_frame_max() -> usize {
    256 << 20
}
fn default_true() -> bool {
    true
}
fn default_send_queue_max() -> usize {
    4096
}
fn default_connections_max() -> usize {
    4096
}
fn default_client_partial_timeout_ms() -> u64 {
    10_000
}
fn default_client_output_buffer_max() -> usize {
    64 << 20
}
fn default_change_window_max() -> usize {
    100_000
}
fn default_change_window_bytes_max() -> usize {
    64 << 20
}
fn default_pipeline_max() -> usize {
    64
}
fn default_inflight_max() -> usize {
    // 1024 made 256 clients pipelining 16 slower than 64 (BENCHMARKS.md): each connection
    // then had about 4 requests in the node at a time, so replies left in small writes and
    // every completed request woke a waiting one. Protocols' served queues hold 16,384.
    4096
}
fn default_request_timeout_ms() -> u64 {
    5_000
}

fn deserialize_peers<'de, D>(deserializer: D) -> Result<BTreeMap<NodeId, SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = BTreeMap::<String, SocketAddr>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(id, addr)| {
            let id: u64 = id
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("peer id {id:?} is not a number")))?;
            Ok((NodeId(id), addr))
        })
        .collect()
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ServerConfig {
    /// A configuration with every optional field at its default.
    pub fn new(
        protocol: &str,
        id: u64,
        peers: BTreeMap<NodeId, SocketAddr>,
        client_addr: SocketAddr,
        data_dir: PathBuf,
    ) -> ServerConfig {
        ServerConfig {
            protocol: protocol.into(),
            cluster_id: default_cluster_id(),
            id,
            peers,
            client_addr,
            metrics_addr: None,
            data_dir,
            follower: FollowerMode::default(),
            value_max: default_value_max(),
            peer_frame_max: default_frame_max(),
            send_queue_max: default_send_queue_max(),
            wal_sync_in_place: true,
            connections_max: default_connections_max(),
            pipeline_max: default_pipeline_max(),
            client_partial_timeout_ms: default_client_partial_timeout_ms(),
            client_idle_timeout_ms: 0,
            client_output_buffer_max: default_client_output_buffer_max(),
            tls: None,
            requirepass: None,
            users: Vec::new(),
            inflight_max: default_inflight_max(),
            request_timeout_ms: default_request_timeout_ms(),
            change_window_max: default_change_window_max(),
            change_window_bytes_max: default_change_window_bytes_max(),
            join: false,
            tuning: toml::Table::new(),
        }
    }

    /// Reads and validates a TOML config file.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let config: ServerConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML, as `quorate cluster` writes it for each node.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out += &format!("protocol = {:?}\n", self.protocol);
        out += &format!("cluster_id = {:?}\n", self.cluster_id);
        out += &format!("id = {}\n", self.id);
        out += &format!("client_addr = \"{}\"\n", self.client_addr);
        if let Some(addr) = self.metrics_addr {
            out += &format!("metrics_addr = \"{addr}\"\n");
        }
        out += &format!("data_dir = {:?}\n", self.data_dir.display().to_string());
        let follower = match self.follower {
            FollowerMode::Forward => "forward",
            FollowerMode::Redirect => "redirect",
        };
        out += &format!("follower = \"{follower}\"\n");
        out += &format!("value_max = {}\n", self.value_max);
        out += &format!("request_timeout_ms = {}\n", self.request_timeout_ms);
        if self.join {
            out += "join = true\n";
        }
        if let Some(pass) = &self.requirepass {
            out += &format!("requirepass = {}\n", toml::Value::from(pass.as_str()));
        }
        if self.change_window_max != default_change_window_max() {
            out += &format!("change_window_max = {}\n", self.change_window_max);
        }
        if self.change_window_bytes_max != default_change_window_bytes_max() {
            out += &format!(
                "change_window_bytes_max = {}\n",
                self.change_window_bytes_max
            );
        }
        if self.client_output_buffer_max != default_client_output_buffer_max() {
            out += &format!(
                "client_output_buffer_max = {}\n",
                self.client_output_buffer_max
            );
        }
        out += "\n[peers]\n";
        for (id, addr) in &self.peers {
            out += &format!("{} = \"{addr}\"\n", id.0);
        }
        for user in &self.users {
            let role = match user.role {
                crate::auth::Role::ReadOnly => "read-only",
                crate::auth::Role::ReadWrite => "read-write",
                crate::auth::Role::Admin => "admin",
            };
            out += &format!(
                "\n[[users]]\nname = {}\npassword = {}\nrole = \"{role}\"\n",
                toml::Value::from(user.name.as_str()),
                toml::Value::from(user.password.as_str())
            );
        }
        if let Some(tls) = &self.tls {
            let path = |p: &Path| toml::Value::from(p.display().to_string());
            out += &format!(
                "\n[tls]\ncert = {}\nkey = {}\nca = {}\nclients = {}\npeers = {}\n",
                path(&tls.cert),
                path(&tls.key),
                path(&tls.ca),
                tls.clients,
                tls.peers
            );
        }
        if !self.tuning.is_empty() {
            out += "\n[tuning]\n";
            out += &self.tuning.to_string();
        }
        out
    }

    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if !self.peers.contains_key(&NodeId(self.id)) {
            let known: Vec<String> = self.peers.keys().map(|id| id.0.to_string()).collect();
            return invalid(format!(
                "node id {} is not among the peers ({}); --peers must list every member, this node included",
                self.id,
                known.join(", ")
            ));
        }
        if self.peers.keys().any(|id| id.0 == 0) {
            return invalid("node ids start at 1".into());
        }
        let mut addrs: Vec<SocketAddr> = self.peers.values().copied().collect();
        addrs.sort();
        addrs.dedup();
        if addrs.len() != self.peers.len() {
            return invalid("two peers share one address".into());
        }
        if self.peers.values().any(|a| *a == self.client_addr) {
            return invalid("the client address is also a peer address".into());
        }
        let id_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
        if self.cluster_id.is_empty()
            || self.cluster_id.len() > 64
            || !self.cluster_id.chars().all(id_ok)
        {
            return invalid(format!(
                "cluster id {:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
                self.cluster_id
            ));
        }
        let positive = [
            ("value_max", self.value_max),
            ("peer_frame_max", self.peer_frame_max),
            ("send_queue_max", self.send_queue_max),
            ("connections_max", self.connections_max),
            ("pipeline_max", self.pipeline_max),
            ("client_output_buffer_max", self.client_output_buffer_max),
            (
                "client_partial_timeout_ms",
                self.client_partial_timeout_ms as usize,
            ),
            ("inflight_max", self.inflight_max),
            ("change_window_max", self.change_window_max),
            ("change_window_bytes_max", self.change_window_bytes_max),
            ("request_timeout_ms", self.request_timeout_ms as usize),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return invalid(format!("{name} must be positive"));
        }
        if self.value_max >= self.peer_frame_max {
            return invalid("value_max must be smaller than peer_frame_max".into());
        }
        if self.requirepass.as_deref() == Some("") {
            return invalid("requirepass must not be empty (leave it out for no password)".into());
        }
        crate::auth::validate(&self.users).map_err(ConfigError::Invalid)?;
        if self.join && self.peers.len() < 2 {
            return invalid(
                "join needs --peers to list the running cluster's members as well as this node"
                    .into(),
            );
        }
        if self.join && self.protocol != "raft" {
            return invalid(format!(
                "join: protocol {} has no online membership changes; only raft does",
                self.protocol
            ));
        }
        Ok(())
    }

    pub fn node_id(&self) -> NodeId {
        NodeId(self.id)
    }

    /// The bootstrap configuration the node is built with: every peer, or for a node that
    /// joins a running cluster, every peer but itself (so it is not a voter of it and never
    /// campaigns; the leader's log replaces this configuration with the real one).
    pub fn members(&self) -> Vec<NodeId> {
        let me = self.node_id();
        self.peers
            .keys()
            .copied()
            .filter(|id| !self.join || *id != me)
            .collect()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Parses `1=127.0.0.1:7101,2=127.0.0.1:7102` into a peer map.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('=').ok_or_else(|| {
            format!("peer {item:?} is not ID=HOST:PORT (example: 1=127.0.0.1:7101)")
        })?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("peer id {id:?} is not a positive integer"))?;
        let addr: SocketAddr = addr.trim().parse().map_err(|_| {
            format!("peer address {addr:?} is not IP:PORT (example: 127.0.0.1:7101)")
        })?;
        if peers.insert(NodeId(id), addr).is_some() {
            return Err(format!("peer id {id} is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err("no peers given (example: 1=127.0.0.1:7101,2=127.0.0.1:7102)".into());
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_ones_explain_themselves() {
        let peers = parse_peers("1=127.0.0.1:7101, 2=127.0.0.1:7102").unwrap();
        assert_eq!(peers.len(), 2);
        assert!(parse_peers("1=127.0.0.1").unwrap_err().contains("IP:PORT"));
        assert!(parse_peers("x=127.0.0.1:1")
            .unwrap_err()
            .contains("positive integer"));
        assert!(parse_peers("1=127.0.0.1:1,1=127.0.0.1:2")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn a_config_round_trips_through_toml_and_is_validated() {
        let peers = parse_peers("1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103").unwrap();
        let mut config = ServerConfig::new(
            "raft",
            2,
            peers,
            "127.0.0.1:6382".parse().unwrap(),
            "/tmp/q".into(),
        );
        config
            .tuning
            .insert("heartbeat_interval_ms".into(), 20.into());
        config.requirepass = Some("a \"quoted\" pass".into());
        config.users = vec![crate::auth::UserConfig {
            name: "reader".into(),
            password: "r3ad".into(),
            role: crate::auth::Role::ReadOnly,
        }];
        config.tls = Some(crate::tls::TlsConfig {
            peers: false,
            ..crate::tls::TlsConfig::from_dir(Path::new("/etc/quorate \"certs\""), 2)
        });
        config.client_output_buffer_max = 1 << 20;
        config.join = true;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n2.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        let back = ServerConfig::from_file(&path).unwrap();
        assert_eq!(back.id, 2);
        assert_eq!(back.peers, config.peers);
        assert_eq!(back.tuning, config.tuning);
        assert_eq!(back.requirepass, config.requirepass);
        assert_eq!(back.users, config.users);
        assert_eq!(back.tls, config.tls);
        assert_eq!(back.client_output_buffer_max, 1 << 20);
        assert!(back.join);
        assert_eq!(
            back.members(),
            vec![NodeId(1), NodeId(3)],
            "a joiner is no voter"
        );
        config.users.push(config.users[0].clone());
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("defined twice"));
        config.users.clear();
        config.id = 9;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not among the peers"));
    }

    /// The example configs in `deploy/` load with the loader `quorate serve --config` uses,
    /// and the compose cluster's nodes agree on the members, each being the one it says.
    #[test]
    fn the_deployment_examples_are_valid_configs() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let single = ServerConfig::from_file(&deploy.join("quorate.toml")).unwrap();
        assert_eq!((single.id, single.peers.len()), (1, 3));
        let nodes: Vec<ServerConfig> = (1..=3)
            .map(|i| ServerConfig::from_file(&deploy.join(format!("compose/node{i}.toml"))))
            .collect::<Result<_, _>>()
            .unwrap();
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(node.id, i as u64 + 1);
            assert_eq!(
                node.peers, nodes[0].peers,
                "node {} has other members",
                node.id
            );
            assert_eq!(node.cluster_id, nodes[0].cluster_id);
            assert_eq!(node.client_addr.ip(), node.peers[&node.node_id()].ip());
        }
    }
}
