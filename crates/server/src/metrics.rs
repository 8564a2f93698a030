//! Counters and gauges in the Prometheus text format, served over plain HTTP.
//!
//! Every counter is a relaxed atomic bumped where the event happens; the node's status
//! (role, term, indexes) is copied in by the runtime after each batch of inputs; a change of
//! role or of the known leader is logged there and counted (`leader_changes_seen_total`, as
//! etcd names it), with the position each follower has acknowledged while the node leads
//! a protocol that exposes it (Raft), for `quorate_follower_lag`. How many client requests
//! wait for their answer (`quorate_proposals_pending`) is counted there too: the node shell's
//! waiters, so it is a count of real requests, not an estimate. Protocols that keep no log
//! (quorum, multi-primary) get no `quorate_apply_lag`. The HTTP endpoint serves `/metrics` in the text exposition format (version
//! 0.0.4), `/health` (200 while the node's event loop runs) and `/ready` (200 once the node
//! can serve: it knows a leader, or is a replica of a leaderless protocol; 503 otherwise),
//! 404 elsewhere. It reads at most 8 KiB of request and never keeps a connection open.

use quorate_core::{NodeId, NodeStatus, Role};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::info;

/// Latency histogram bucket bounds, in seconds (fsyncs and client requests).
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The commands that run against the node, each with its latency histogram.
/// (`Command::name` of each; a test in `resp::cmd` keeps the two in step.)
pub const NODE_COMMANDS: [&str; 21] = [
    "get", "set", "del", "exists", "append", "incr", "cas", "getdel", "mget", "mset", "expire",
    "ttl", "strlen", "type", "dbsize", "keys", "scan", "msetnx", "watch", "exec", "lease",
];

/// A Prometheus histogram of durations: cumulative buckets, sum and count.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        bump(&self.count);
        self.micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bump(bucket);
            }
        }
    }

    /// The sample lines of `name{labels}` (the family's HELP and TYPE are the caller's).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let with = |extra: &str| {
            let all: Vec<&str> = [labels, extra]
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect();
            match all.is_empty() {
                true => String::new(),
                false => format!("{{{}}}", all.join(",")),
            }
        };
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let n = bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{} {n}", with(&format!("le=\"{bound}\"")));
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{} {count}", with("le=\"+Inf\""));
        let _ = writeln!(out, "{name}_sum{} {sum}", with(""));
        let _ = writeln!(out, "{name}_count{} {count}", with(""));
    }
}

/// Every number the node exports.
#[derive(Default)]
pub struct Metrics {
    pub client_connections: AtomicU64,
    pub client_connections_total: AtomicU64,
    pub client_connections_refused: AtomicU64,
    pub client_requests: AtomicU64,
    pub client_errors: AtomicU64,
    pub client_protocol_errors: AtomicU64,
    /// AUTH and HELLO AUTH refused for a wrong user or password.
    pub client_auth_failures: AtomicU64,
    /// Client connections closed for holding a partial command, or idling, too long.
    pub client_timeouts: AtomicU64,
    /// Plain-text connections refused on a TLS-only client port.
    pub client_tls_refused: AtomicU64,
    /// Client TLS handshakes that failed (or did not finish in time).
    pub client_tls_handshakes_failed: AtomicU64,
    /// Client connections closed because their unsent replies outgrew
    /// `client_output_buffer_max`.
    pub client_output_buffer_closed: AtomicU64,
    pub client_redirects: AtomicU64,
    pub client_forwards: AtomicU64,
    /// Multi-primary writes refused for exceeding `max_siblings`.
    pub sibling_limit_refusals: AtomicU64,
    pub peer_messages_sent: AtomicU64,
    pub peer_messages_received: AtomicU64,
    pub peer_messages_dropped: AtomicU64,
    pub peer_connects: AtomicU64,
    pub peer_handshakes_refused: AtomicU64,
    /// Peer TLS handshakes refused or failed, either direction: a certificate from another
    /// CA, or one that does not name the member it claims to be.
    pub peer_tls_refused: AtomicU64,
    /// Inbound peer connections closed at once: too many handshakes in progress.
    pub peer_connections_refused: AtomicU64,
    /// Inbound peer connections closed because the same member connected again.
    pub peer_connections_replaced: AtomicU64,
    /// Inbound peer frames refused: too large, too slow, corrupt or undecodable.
    pub peer_frames_refused: AtomicU64,
    pub wal_records: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_fsyncs: AtomicU64,
    pub wal_checkpoints: AtomicU64,
    fsync_seconds: Histogram,
    /// Client request latency per node command, in [`NODE_COMMANDS`] order: from the
    /// command's arrival to its answer (forwarding, replication and fsync included).
    request_seconds: [Histogram; NODE_COMMANDS.len()],
    pub steps: AtomicU64,
    pub held_effects: AtomicU64,
    /// Times this node saw the leader change (to a known leader, or to a new term of it).
    pub leader_changes: AtomicU64,
    /// Client requests this node handed to its protocol (stepped here, forwarded to the
    /// leader, or forwarded here by a peer), snapshot barriers and membership requests, not
    /// yet answered: set by the runtime after every batch of inputs.
    pub proposals_pending: AtomicU64,
    /// The protocol keeps no log (quorum, multi-primary): no `quorate_apply_lag`.
    logless: AtomicBool,
    status: Mutex<Option<Published>>,
}

/// What the runtime publishes after every batch of inputs, under one lock so a scrape sees
/// the followers' positions and the leader's last index of the same moment.
struct Published {
    status: NodeStatus,
    /// On a leader, each follower's acknowledged log position (see
    /// [`ServedProtocol::followers_matched`](crate::served::ServedProtocol::followers_matched)).
    followers: Option<BTreeMap<NodeId, u64>>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn inc(counter: &AtomicU64) {
        bump(counter);
    }

    pub fn observe_fsync(&self, seconds: f64) {
        bump(&self.wal_fsyncs);
        self.fsync_seconds.observe(seconds);
    }

    /// Records one client request to the node; `command` is one of [`NODE_COMMANDS`].
    pub fn observe_request(&self, command: &str, seconds: f64) {
        if let Some(i) = NODE_COMMANDS.iter().position(|c| *c == command) {
            self.request_seconds[i].observe(seconds);
        }
    }

    /// Marks the protocol as one without a log: `commit_index` and `applied_index` in its
    /// status are zeros, not positions, so no apply lag is exported.
    pub fn set_logless(&self) {
        self.logless.store(true, Ordering::Relaxed);
    }

    /// Records the node's status; logs and counts a change of role or leader.
    pub fn set_status(&self, status: NodeStatus) {
        self.publish(status, None);
    }

    /// Records the node's status and, on a leader, the log position each follower has
    /// acknowledged (`None` keeps the positions last published: a leader re-reads them only
    /// now and then; they are shown only while the status says leader); logs and counts a
    /// change of role or leader.
    pub fn publish(&self, status: NodeStatus, followers: Option<BTreeMap<NodeId, u64>>) {
        let mut current = self.status.lock().expect("status lock");
        let before = current.as_ref().map(|p| &p.status);
        if before.map(|b| b.role) != Some(status.role) {
            info!(role = %status.role, term = status.term, "role changed");
        } else if before.is_some_and(|b| b.term != status.term) {
            info!(role = %status.role, term = status.term, "term changed");
        }
        let leader_of = |s: &NodeStatus| s.leader.map(|l| (l, s.term));
        let seen = status.leader.is_some() && before.and_then(leader_of) != leader_of(&status);
        if seen {
            bump(&self.leader_changes);
            info!(
                leader = status.leader.map_or(0, |l| l.0),
                term = status.term,
                "leader changed"
            );
        }
        let followers = followers.or_else(|| current.take().and_then(|p| p.followers));
        *current = Some(Published { status, followers });
    }

    /// True once the node can serve requests (see the module header).
    pub fn ready(&self) -> bool {
        self.status()
            .is_some_and(|s| s.leader.is_some() || s.role == Role::Replica)
    }

    pub fn status(&self) -> Option<NodeStatus> {
        let published = self.status.lock().expect("status lock");
        published.as_ref().map(|p| p.status.clone())
    }

    /// The status and the followers' acknowledged positions, as last published.
    fn published(&self) -> Option<(NodeStatus, Option<BTreeMap<NodeId, u64>>)> {
        let published = self.status.lock().expect("status lock");
        published
            .as_ref()
            .map(|p| (p.status.clone(), p.followers.clone()))
    }

    /// The exposition text.
    pub fn render(&self, protocol: &str) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let v = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP quorate_{name} {help}\n# TYPE quorate_{name} counter\nquorate_{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP quorate_{name} {help}\n# TYPE quorate_{name} gauge\nquorate_{name} {value}"
            );
        };
        if let Some((status, followers)) = self.published() {
            let _ = writeln!(out, "# HELP quorate_info The node's identity.\n# TYPE quorate_info gauge\nquorate_info{{protocol=\"{protocol}\",node=\"{}\"}} 1", status.id.0);
            let is = |role: Role| u64::from(status.role == role);
            gauge(
                &mut out,
                "is_leader",
                "1 when this node leads.",
                is(Role::Leader),
            );
            gauge(
                &mut out,
                "term",
                "The protocol's term, epoch or ballot.",
                status.term,
            );
            gauge(
                &mut out,
                "leader_id",
                "The known leader's id, 0 if unknown.",
                status.leader.map_or(0, |l| l.0),
            );
            gauge(
                &mut out,
                "commit_index",
                "Highest committed log position.",
                status.commit_index,
            );
            gauge(
                &mut out,
                "applied_index",
                "Highest applied log position.",
                status.applied_index,
            );
            gauge(
                &mut out,
                "last_index",
                "Highest log position held.",
                status.last_index,
            );
            if !self.logless.load(Ordering::Relaxed) {
                gauge(
                    &mut out,
                    "apply_lag",
                    "Committed log positions not yet applied on this node (commit_index - applied_index).",
                    status.commit_index.saturating_sub(status.applied_index),
                );
            }
            let followers = followers.filter(|f| status.role == Role::Leader && !f.is_empty());
            if let Some(followers) = followers {
                let _ = writeln!(out, "# HELP quorate_follower_lag On the leader: log positions each follower's acknowledged position is behind the leader's last index.\n# TYPE quorate_follower_lag gauge");
                for (follower, matched) in followers {
                    let lag = status.last_index.saturating_sub(matched);
                    let _ = writeln!(
                        out,
                        "quorate_follower_lag{{follower=\"{}\"}} {lag}",
                        follower.0
                    );
                }
            }
        }
        gauge(
            &mut out,
            "proposals_pending",
            "Client requests handed to the protocol (stepped here, forwarded to the leader or here by a peer) and not yet answered.",
            self.proposals_pending.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "client_connections",
            "Open client connections.",
            self.client_connections.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "held_effects",
            "Effects waiting for an fsync.",
            self.held_effects.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "leader_changes_seen_total",
            "Times this node saw the leader change (a new leader or a new term).",
            &self.leader_changes,
        );
        counter(
            &mut out,
            "client_connections_total",
            "Client connections accepted.",
            &self.client_connections_total,
        );
        counter(
            &mut out,
            "client_connections_refused_total",
            "Client connections refused (over connections_max).",
            &self.client_connections_refused,
        );
        counter(
            &mut out,
            "client_auth_failures_total",
            "AUTH and HELLO AUTH refused for a wrong user or password.",
            &self.client_auth_failures,
        );
        counter(
            &mut out,
            "client_timeouts_total",
            "Client connections closed: a partial command or idleness outlasted its timeout.",
            &self.client_timeouts,
        );
        counter(
            &mut out,
            "client_tls_refused_total",
            "Plain-text connections refused on a TLS-only client port.",
            &self.client_tls_refused,
        );
        counter(
            &mut out,
            "client_tls_handshakes_failed_total",
            "Client TLS handshakes that failed or timed out.",
            &self.client_tls_handshakes_failed,
        );
        counter(
            &mut out,
            "client_output_buffer_closed_total",
            "Client connections closed: unsent replies exceeded client_output_buffer_max.",
            &self.client_output_buffer_closed,
        );
        counter(
            &mut out,
            "client_requests_total",
            "Client commands received.",
            &self.client_requests,
        );
        counter(
            &mut out,
            "client_errors_total",
            "Client commands answered with an error.",
            &self.client_errors,
        );
        counter(
            &mut out,
            "client_protocol_errors_total",
            "Client connections closed for malformed RESP.",
            &self.client_protocol_errors,
        );
        counter(
            &mut out,
            "client_redirects_total",
            "Requests answered with MOVED.",
            &self.client_redirects,
        );
        counter(
            &mut out,
            "client_forwards_total",
            "Requests forwarded to the leader.",
            &self.client_forwards,
        );
        counter(
            &mut out,
            "sibling_limit_refusals_total",
            "Multi-primary SETs refused: the key already holds max_siblings concurrent versions.",
            &self.sibling_limit_refusals,
        );
        counter(
            &mut out,
            "peer_messages_sent_total",
            "Protocol messages queued to peers.",
            &self.peer_messages_sent,
        );
        counter(
            &mut out,
            "peer_messages_received_total",
            "Protocol messages received from peers.",
            &self.peer_messages_received,
        );
        counter(
            &mut out,
            "peer_messages_dropped_total",
            "Messages dropped: send queue full or peer unreachable.",
            &self.peer_messages_dropped,
        );
        counter(
            &mut out,
            "peer_connects_total",
            "Outbound peer connections established.",
            &self.peer_connects,
        );
        counter(
            &mut out,
            "peer_handshakes_refused_total",
            "Inbound peer handshakes refused.",
            &self.peer_handshakes_refused,
        );
        counter(
            &mut out,
            "peer_tls_refused_total",
            "Peer TLS handshakes refused: certificate from another CA or naming another member.",
            &self.peer_tls_refused,
        );
        counter(
            &mut out,
            "peer_connections_refused_total",
            "Inbound peer connections closed at once: too many handshakes in progress.",
            &self.peer_connections_refused,
        );
        counter(
            &mut out,
            "peer_connections_replaced_total",
            "Inbound peer connections closed because the same member connected again.",
            &self.peer_connections_replaced,
        );
        counter(
            &mut out,
            "peer_frames_refused_total",
            "Inbound peer frames refused: too large, too slow, corrupt or undecodable.",
            &self.peer_frames_refused,
        );
        counter(
            &mut out,
            "wal_records_total",
            "Records written to the write-ahead log.",
            &self.wal_records,
        );
        counter(
            &mut out,
            "wal_bytes_total",
            "Bytes written to the write-ahead log.",
            &self.wal_bytes,
        );
        counter(
            &mut out,
            "wal_checkpoints_total",
            "Snapshots written.",
            &self.wal_checkpoints,
        );
        counter(
            &mut out,
            "steps_total",
            "Inputs fed to the protocol node.",
            &self.steps,
        );
        let _ = writeln!(out, "# HELP quorate_wal_fsync_seconds Duration of one group-commit fsync.\n# TYPE quorate_wal_fsync_seconds histogram");
        self.fsync_seconds
            .render(&mut out, "quorate_wal_fsync_seconds", "");
        let _ = writeln!(out, "# HELP quorate_request_seconds Client request latency by command, arrival to answer.\n# TYPE quorate_request_seconds histogram");
        for (command, histogram) in NODE_COMMANDS.iter().zip(&self.request_seconds) {
            let labels = format!("command=\"{command}\"");
            histogram.render(&mut out, "quorate_request_seconds", &labels);
        }
        out
    }
}

/// The status line, content type and body for one request (its head, as read).
fn respond(
    request: &[u8],
    metrics: &Metrics,
    protocol: &str,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|b| *b == b' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    if method != b"GET" && method != b"HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
    }
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    match path {
        b"/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4",
            metrics.render(protocol),
        ),
        b"/health" | b"/healthz" | b"/livez" => ("200 OK", TEXT, "ok\n".into()),
        b"/ready" | b"/readyz" => match (metrics.ready(), metrics.status()) {
            (true, Some(s)) => match s.leader {
                Some(leader) => (
                    "200 OK",
                    TEXT,
                    format!(
                        "ready: {} in term {}, leader {}\n",
                        s.role, s.term, leader.0
                    ),
                ),
                None => ("200 OK", TEXT, format!("ready: {}\n", s.role)),
            },
            (_, None) => (
                "503 Service Unavailable",
                TEXT,
                "not ready: the node has not started yet\n".into(),
            ),
            (false, Some(s)) => (
                "503 Service Unavailable",
                TEXT,
                format!(
                    "not ready: no leader known ({} in term {}); requests would wait or fail\n",
                    s.role, s.term
                ),
            ),
        },
        _ => (
            "404 Not Found",
            TEXT,
            "not found: try /metrics, /health or /ready\n".into(),
        ),
    }
}

/// Serves `/metrics`, `/health` and `/ready` on `listener` until the task is dropped.
pub async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>, protocol: &'static str) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = Vec::with_capacity(512);
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut chunk),
                )
                .await
                {
                    Ok(Ok(n)) if n > 0 => request.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            let (status, kind, body) = respond(&request, &metrics, protocol);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Binds the metrics listener (separately, so bind errors surface at start-up).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_core::NodeId;

    fn status(role: Role, term: u64, leader: Option<u64>) -> NodeStatus {
        NodeStatus {
            id: NodeId(1),
            role,
            term,
            leader: leader.map(NodeId),
            commit_index: 0,
            applied_index: 0,
            last_index: 0,
        }
    }

    #[test]
    fn a_new_leader_or_a_new_term_counts_as_a_change_and_losing_one_does_not() {
        let metrics = Metrics::new();
        let changes = || metrics.leader_changes.load(Ordering::Relaxed);
        metrics.set_status(status(Role::Follower, 1, None));
        assert_eq!(changes(), 0);
        metrics.set_status(status(Role::Follower, 1, Some(2)));
        metrics.set_status(status(Role::Follower, 1, Some(2)));
        assert_eq!(changes(), 1);
        metrics.set_status(status(Role::Candidate, 2, None));
        assert_eq!(changes(), 1);
        metrics.set_status(status(Role::Follower, 3, Some(2)));
        assert_eq!(changes(), 2, "the same node leading again in a new term");
        metrics.set_status(status(Role::Leader, 4, Some(1)));
        assert_eq!(changes(), 3);
    }

    #[test]
    fn request_latency_is_a_histogram_per_command() {
        let metrics = Metrics::new();
        metrics.observe_request("get", 0.003);
        metrics.observe_request("get", 2.0);
        metrics.observe_request("nosuch", 1.0);
        metrics.observe_fsync(0.0007);
        let text = metrics.render("raft");
        for line in [
            "quorate_request_seconds_bucket{command=\"get\",le=\"0.002\"} 0",
            "quorate_request_seconds_bucket{command=\"get\",le=\"0.005\"} 1",
            "quorate_request_seconds_bucket{command=\"get\",le=\"5\"} 2",
            "quorate_request_seconds_bucket{command=\"get\",le=\"+Inf\"} 2",
            "quorate_request_seconds_count{command=\"get\"} 2",
            "quorate_request_seconds_count{command=\"set\"} 0",
            "quorate_wal_fsync_seconds_bucket{le=\"0.001\"} 1",
            "quorate_wal_fsync_seconds_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(
            text.matches("# TYPE quorate_request_seconds histogram")
                .count(),
            1
        );
    }

    /// Every sample belongs to a family whose `# HELP` and `# TYPE` come before it, once.
    fn assert_well_formed(text: &str) {
        let mut typed: Vec<&str> = Vec::new();
        let mut helped: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!helped.contains(&name), "HELP of {name} twice");
                helped.push(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(
                    helped.last() == Some(&name),
                    "TYPE of {name} without its HELP"
                );
                assert!(!typed.contains(&name), "TYPE of {name} twice");
                typed.push(name);
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(f)))
                    .unwrap_or(name);
                assert_eq!(typed.last(), Some(&family), "{line:?} outside its family");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line:?}: not a number");
            }
        }
    }

    /// The value of the sample line that starts with `name` and a space.
    fn sample(text: &str, name: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_leader_exports_apply_lag_pending_proposals_and_each_followers_lag() {
        let metrics = Metrics::new();
        let leader = NodeStatus {
            commit_index: 90,
            applied_index: 87,
            last_index: 100,
            ..status(Role::Leader, 2, Some(1))
        };
        let followers = [(NodeId(2), 100), (NodeId(3), 60)].into();
        metrics.publish(leader.clone(), Some(followers));
        metrics.proposals_pending.store(5, Ordering::Relaxed);
        let text = metrics.render("raft");
        assert_well_formed(&text);
        assert_eq!(sample(&text, "quorate_apply_lag"), Some(3));
        assert_eq!(sample(&text, "quorate_proposals_pending"), Some(5));
        assert_eq!(
            sample(&text, "quorate_follower_lag{follower=\"2\"}"),
            Some(0)
        );
        assert_eq!(
            sample(&text, "quorate_follower_lag{follower=\"3\"}"),
            Some(40)
        );
        assert_eq!(text.matches("quorate_follower_lag{").count(), 2);
        assert_eq!(text.matches("# TYPE quorate_follower_lag gauge").count(), 1);
        // A follower reports no followers' lag, even with positions left over; its apply lag
        // never goes below 0.
        let follower = NodeStatus {
            role: Role::Follower,
            commit_index: 5,
            applied_index: 7,
            ..leader
        };
        metrics.publish(follower, Some([(NodeId(2), 1)].into()));
        let text = metrics.render("raft");
        assert_well_formed(&text);
        assert!(!text.contains("quorate_follower_lag"), "{text}");
        assert_eq!(sample(&text, "quorate_apply_lag"), Some(0));
    }

    #[test]
    fn a_protocol_without_a_log_exports_no_apply_lag_but_its_pending_requests() {
        let metrics = Metrics::new();
        metrics.set_logless();
        metrics.set_status(status(Role::Replica, 0, None));
        metrics.proposals_pending.store(2, Ordering::Relaxed);
        let text = metrics.render("quorum");
        assert_well_formed(&text);
        assert!(!text.contains("quorate_apply_lag"), "{text}");
        assert!(!text.contains("quorate_follower_lag"), "{text}");
        assert_eq!(sample(&text, "quorate_proposals_pending"), Some(2));
        // Before the runtime published a status, pending requests are still exported.
        let fresh = Metrics::new().render("raft");
        assert_well_formed(&fresh);
        assert_eq!(sample(&fresh, "quorate_proposals_pending"), Some(0));
    }

    #[test]
    fn readiness_waits_for_a_leader_and_unknown_paths_are_not_found() {
        let metrics = Metrics::new();
        let get = |path: &str| {
            respond(
                format!("GET {path} HTTP/1.1\r\n").as_bytes(),
                &metrics,
                "raft",
            )
            .0
        };
        assert_eq!(get("/ready"), "503 Service Unavailable");
        assert_eq!(get("/health"), "200 OK");
        metrics.set_status(status(Role::Follower, 1, Some(2)));
        assert_eq!(get("/ready"), "200 OK");
        assert_eq!(get("/metrics?x=1"), "200 OK");
        assert_eq!(get("/other"), "404 Not Found");
        assert_eq!(get("/"), "404 Not Found", "only /metrics serves metrics");
        let post = respond(b"POST /metrics HTTP/1.1\r\n", &metrics, "raft").0;
        assert_eq!(post, "405 Method Not Allowed");
    }
}
