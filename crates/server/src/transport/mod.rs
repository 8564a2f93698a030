//! Peer transport: framed, checksummed TCP with a versioned handshake.
//!
//! ## Wire format
//!
//! Every frame is `length u32 LE | crc32c(payload) u32 LE | payload`, the payload a postcard
//! encoding. A frame longer than `peer_frame_max` or failing its checksum closes the
//! connection (a peer that sends garbage is not going to send sense next).
//!
//! ## Connections
//!
//! Each node dials every other node once and uses that connection only to *send*; what it
//! receives arrives on the connections the others dialed. One connection per direction gives
//! FIFO order per (sender, receiver) pair and avoids deciding which of two simultaneous dials
//! wins. The first frame on a connection is a [`Hello`]: protocol version, cluster id,
//! protocol name, the dialer's id, the id it believes it is calling, and its client address
//! (so followers learn where to redirect clients). The acceptor answers [`HelloAnswer`];
//! a refusal is logged on both sides with the reason.
//!
//! ## TLS
//!
//! With `[tls] peers = true` every connection is mutual TLS before the first frame: the
//! dialer expects the certificate of `node-<id>` for the member it dials, the acceptor a
//! certificate from the cluster CA, and after the hello, one that names the member the hello
//! claims (see [`crate::tls`]). Everything above then runs inside the TLS session.
//!
//! ## Bounded resources
//!
//! Without TLS, anyone who can reach the peer port and names a member in its handshake is
//! taken for that member, so what inbound connections may hold is bounded regardless of who
//! sends (see [`Inbound`]): at most
//! [`HANDSHAKES_MAX`] connections at once may be inside their handshake (more are closed at
//! once); each member has at most one inbound connection (a new one from the same member
//! replaces the old, which is what a redial after a lost connection needs anyway); every
//! frame first takes its length from a byte budget shared by all connections (the largest
//! frame, `peer_frame_max`), so all of them together hold at most that much of partly read
//! frames, and gives up after [`FRAME_READ_TIMEOUT`]; memory grows with the bytes that
//! arrive, never with the length a header announces. Each refusal is counted and logged.
//!
//! Each peer has a bounded send queue; when it is full, or the peer is unreachable, messages
//! are dropped and counted. Protocols tolerate loss (Raft retransmits on its heartbeat), and
//! a queue that never blocks keeps a slow peer from stalling the event loop. A lost connection
//! is redialed with jittered exponential back-off (50 ms doubling to 2 s).

mod frame;

pub use frame::{read_frame, read_frame_budgeted, write_frame_into, FrameError, FRAME_HEADER_LEN};

use crate::metrics::Metrics;
use crate::tls::{self, Stream, Tls};
use quorate_core::shell::ShellMsg;
use quorate_core::NodeId;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};

/// The version of the peer wire protocol; bumped on any incompatible change.
/// Version 2: client requests and answers between nodes are the node shell's messages.
/// Version 3: Raft's configurations carry the addresses of members added online.
pub const PEER_PROTOCOL_VERSION: u16 = 3;
const HELLO_MAGIC: [u8; 4] = *b"QRTP";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Bytes of encoded messages gathered into one write, at most.
const WRITE_BATCH_MAX: usize = 1 << 20;
/// Inbound connections that may be inside their handshake at once.
pub const HANDSHAKES_MAX: usize = 16;
/// How long one inbound frame may take to arrive once its header has.
pub const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What inbound peer connections may hold, shared by all of them (see the module header).
pub struct Inbound {
    handshakes: Arc<Semaphore>,
    bytes: Semaphore,
    /// Each member's one live inbound connection.
    live: Mutex<BTreeMap<NodeId, AbortHandle>>,
}

impl Inbound {
    /// Bounds for a node whose largest peer frame is `frame_max` bytes.
    pub fn new(frame_max: usize) -> Inbound {
        Inbound {
            handshakes: Arc::new(Semaphore::new(HANDSHAKES_MAX)),
            bytes: Semaphore::new(frame_max.clamp(1, u32::MAX as usize)),
            live: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes `task` the live connection of `peer`, closing the one before it, if any.
    fn replace(&self, peer: NodeId, task: AbortHandle) -> bool {
        let old = self.live.lock().expect("live lock").insert(peer, task);
        old.map(|old| old.abort()).is_some()
    }

    /// Inbound member connections now open.
    pub fn connections(&self) -> usize {
        let live = self.live.lock().expect("live lock");
        live.values().filter(|task| !task.is_finished()).count()
    }
}

/// What travels between nodes: the protocol's own messages, and the node shells' (client
/// requests a follower forwards to the leader, with their answers; see
/// [`quorate_core::shell`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerMsg<M> {
    Protocol(M),
    Shell(ShellMsg),
}

/// The dialer's first frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub version: u16,
    pub cluster_id: String,
    pub protocol: String,
    pub from: NodeId,
    pub to: NodeId,
    pub client_addr: SocketAddr,
}

/// The acceptor's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HelloAnswer {
    Welcome,
    Refused(String),
}

/// What both sides of the transport need to know about this node.
pub struct PeerContext {
    pub me: NodeId,
    pub cluster_id: String,
    pub protocol: &'static str,
    /// Who may connect: the configured peers, and members added online as this node learns
    /// of them (see `Runtime::learn_members`).
    pub members: Mutex<BTreeSet<NodeId>>,
    pub client_addr: SocketAddr,
    pub frame_max: usize,
    pub metrics: Arc<Metrics>,
    /// Peers' client addresses, learned from their handshakes.
    pub client_addrs: Mutex<BTreeMap<NodeId, SocketAddr>>,
    /// Bounds on inbound connections.
    pub inbound: Inbound,
    /// TLS contexts; all `None` without a `[tls]` section.
    pub tls: Tls,
}

impl PeerContext {
    fn hello(&self, to: NodeId) -> Hello {
        Hello {
            magic: HELLO_MAGIC,
            version: PEER_PROTOCOL_VERSION,
            cluster_id: self.cluster_id.clone(),
            protocol: self.protocol.to_string(),
            from: self.me,
            to,
            client_addr: self.client_addr,
        }
    }

    /// Why `hello` must be refused, if it must.
    pub fn refusal(&self, hello: &Hello) -> Option<String> {
        if hello.magic != HELLO_MAGIC {
            return Some("not a quorate peer (bad magic)".into());
        }
        if hello.version != PEER_PROTOCOL_VERSION {
            return Some(format!(
                "speaks peer protocol version {}, this node speaks {PEER_PROTOCOL_VERSION}",
                hello.version
            ));
        }
        if hello.cluster_id != self.cluster_id {
            return Some(format!(
                "belongs to cluster {:?}, this node to cluster {:?}",
                hello.cluster_id, self.cluster_id
            ));
        }
        if hello.protocol != self.protocol {
            return Some(format!(
                "runs protocol {:?}, this node runs {:?}",
                hello.protocol, self.protocol
            ));
        }
        if hello.to != self.me {
            return Some(format!(
                "dialed {} but reached {} (check --peers on both)",
                hello.to, self.me
            ));
        }
        if hello.from == self.me {
            return Some(format!(
                "claims to be {}, this node itself (is another node configured with id {}, or \
                 does --peers list this node's own address for another member?)",
                hello.from, self.me.0
            ));
        }
        let members = self.members.lock().expect("members lock");
        if !members.contains(&hello.from) {
            let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            return Some(format!(
                "claims to be {}, which is not a member (members: {})",
                hello.from,
                members.join(", ")
            ));
        }
        None
    }

    /// The client address of `node`, if known.
    pub fn client_addr_of(&self, node: NodeId) -> Option<SocketAddr> {
        if node == self.me {
            return Some(self.client_addr);
        }
        self.client_addrs
            .lock()
            .expect("addrs lock")
            .get(&node)
            .copied()
    }
}

/// A bounded, never-blocking handle on one peer's outbound connection.
pub struct PeerSender<M> {
    queue: mpsc::Sender<PeerMsg<M>>,
}

impl<M> PeerSender<M> {
    /// A sender feeding `queue` directly (tests observe what the runtime sends).
    #[cfg(test)]
    pub(crate) fn from_queue(queue: mpsc::Sender<PeerMsg<M>>) -> PeerSender<M> {
        PeerSender { queue }
    }

    /// Queues `msg`; drops it (and counts the drop) when the queue is full.
    pub fn send(&self, msg: PeerMsg<M>, metrics: &Metrics) {
        match self.queue.try_send(msg) {
            Ok(()) => Metrics::inc(&metrics.peer_messages_sent),
            Err(_) => Metrics::inc(&metrics.peer_messages_dropped),
        }
    }
}

/// Starts the task that dials `peer` at `addr` and keeps the connection up.
pub fn spawn_outbound<M>(
    ctx: Arc<PeerContext>,
    peer: NodeId,
    addr: SocketAddr,
    queue_max: usize,
) -> PeerSender<M>
where
    M: Serialize + Send + 'static,
{
    let (queue, rx) = mpsc::channel(queue_max);
    tokio::spawn(outbound(ctx, peer, addr, rx));
    PeerSender { queue }
}

async fn outbound<M: Serialize>(
    ctx: Arc<PeerContext>,
    peer: NodeId,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<PeerMsg<M>>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut last_problem = String::new();
    loop {
        match dial(&ctx, peer, addr).await {
            Ok(stream) => {
                Metrics::inc(&ctx.metrics.peer_connects);
                info!(%peer, %addr, "connected to peer");
                last_problem.clear();
                backoff = BACKOFF_MIN;
                match pump(&ctx, stream, &mut rx).await {
                    Ok(()) => return, // The runtime stopped.
                    Err(e) => warn!(%peer, %addr, "peer connection lost: {e}"),
                }
            }
            Err(problem) => {
                if problem != last_problem {
                    match problem.starts_with("refused") {
                        true => error!(%peer, %addr, "{problem}"),
                        false => warn!(%peer, %addr, "cannot reach peer: {problem} (retrying)"),
                    }
                    last_problem = problem;
                } else {
                    debug!(%peer, %addr, "still cannot reach peer: {problem}");
                }
            }
        }
        // Whatever queued while the peer was away is stale by now.
        while rx.try_recv().is_ok() {
            Metrics::inc(&ctx.metrics.peer_messages_dropped);
        }
        let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if rx.is_closed() {
            return;
        }
    }
}

async fn dial(ctx: &PeerContext, peer: NodeId, addr: SocketAddr) -> Result<Stream, String> {
    let connect = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr));
    let stream = match connect.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connect timed out".into()),
    };
    let _ = stream.set_nodelay(true);
    let mut stream = match &ctx.tls.peer_connector {
        None => Stream::Plain(stream),
        Some(connector) => {
            let connect = connector.connect(tls::server_name_of(peer), stream);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect).await {
                Ok(Ok(tls)) => Stream::Dialed(Box::new(tls)),
                Ok(Err(e)) => {
                    Metrics::inc(&ctx.metrics.peer_tls_refused);
                    return Err(format!(
                        "refused: TLS handshake with {peer} failed: {}",
                        tls_reason(&e, peer)
                    ));
                }
                Err(_) => return Err("TLS handshake timed out".into()),
            }
        }
    };
    let hello = postcard::to_allocvec(&ctx.hello(peer)).expect("a hello encodes");
    let mut buf = Vec::new();
    write_frame_into(&mut buf, &hello);
    let exchange = async {
        stream.write_all(&buf).await.map_err(|e| e.to_string())?;
        let answer = read_frame(&mut stream, 64 << 10)
            .await
            .map_err(|e| e.to_string())?;
        postcard::from_bytes::<HelloAnswer>(&answer)
            .map_err(|_| "peer answered the handshake with garbage".to_string())
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
        Ok(Ok(HelloAnswer::Welcome)) => Ok(stream),
        Ok(Ok(HelloAnswer::Refused(why))) => Err(format!("refused by peer {peer}: {why}")),
        Ok(Err(e)) => Err(format!("handshake failed: {e}")),
        Err(_) => Err("handshake timed out".into()),
    }
}

/// Writes queued messages until the queue closes (Ok) or the connection fails (Err).
async fn pump<M: Serialize>(
    ctx: &PeerContext,
    stream: Stream,
    rx: &mut mpsc::Receiver<PeerMsg<M>>,
) -> Result<(), String> {
    let (mut reader, mut writer) = tls::split(stream);
    // The peer never writes after its answer; a read returning means it hung up.
    let mut hangup = tokio::spawn(async move {
        let mut byte = [0u8; 1];
        let _ = reader.read(&mut byte).await;
    });
    let mut buf = Vec::with_capacity(64 << 10);
    let result = loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break Ok(()) };
                encode(&mut buf, &msg, ctx)?;
                while buf.len() < WRITE_BATCH_MAX {
                    match rx.try_recv() {
                        Ok(msg) => encode(&mut buf, &msg, ctx)?,
                        Err(_) => break,
                    }
                }
                match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&buf)).await {
                    Ok(Ok(())) => buf.clear(),
                    Ok(Err(e)) => break Err(e.to_string()),
                    Err(_) => break Err("write timed out".into()),
                }
            }
            _ = &mut hangup => break Err("peer closed the connection".into()),
        }
    };
    hangup.abort();
    result
}

fn encode<M: Serialize>(
    buf: &mut Vec<u8>,
    msg: &PeerMsg<M>,
    ctx: &PeerContext,
) -> Result<(), String> {
    let payload =
        postcard::to_allocvec(msg).map_err(|e| format!("cannot encode a message: {e}"))?;
    if payload.len() > ctx.frame_max {
        // Dropped, not fatal: the protocol will retry, and the operator sees the count.
        warn!(
            bytes = payload.len(),
            max = ctx.frame_max,
            "message over peer_frame_max dropped"
        );
        Metrics::inc(&ctx.metrics.peer_messages_dropped);
        return Ok(());
    }
    write_frame_into(buf, &payload);
    Ok(())
}

/// Accepts peer connections and delivers their messages to `inbox` as `(from, message)`.
pub async fn accept_loop<M>(
    listener: TcpListener,
    ctx: Arc<PeerContext>,
    inbox: mpsc::Sender<(NodeId, PeerMsg<M>)>,
) where
    M: DeserializeOwned + Send + 'static,
{
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("accepting a peer connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = ctx.inbound.handshakes.clone().try_acquire_owned() else {
            Metrics::inc(&ctx.metrics.peer_connections_refused);
            warn!(%remote, "refused a peer connection: {HANDSHAKES_MAX} handshakes already in progress");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let Some(mut stream) = accept_tls(stream, remote, &ctx).await else {
                return;
            };
            let from = handshake(&mut stream, remote, &ctx).await;
            drop(permit);
            let Some(from) = from else { return };
            let task = tokio::spawn(receive(stream, remote, from, ctx.clone(), inbox));
            if ctx.inbound.replace(from, task.abort_handle()) {
                Metrics::inc(&ctx.metrics.peer_connections_replaced);
                info!(peer = %from, %remote, "a new connection from this peer replaces its old one");
            }
        });
    }
}

/// The connection, inside TLS if peers use it; logs and counts a failed TLS handshake.
async fn accept_tls(stream: TcpStream, remote: SocketAddr, ctx: &PeerContext) -> Option<Stream> {
    let Some(acceptor) = &ctx.tls.peer_acceptor else {
        return Some(Stream::Plain(stream));
    };
    let why = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => return Some(Stream::Accepted(Box::new(tls))),
        Ok(Err(e)) => tls_reason(&e, NodeId(0)),
        Err(_) => "no TLS handshake within 5 s".into(),
    };
    Metrics::inc(&ctx.metrics.peer_tls_refused);
    error!(%remote, "refused a peer connection: TLS handshake failed: {why}");
    None
}

/// A TLS failure in words an operator can act on (`peer` is who was dialed, if known).
fn tls_reason(e: &std::io::Error, peer: NodeId) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        format!("{text}: the certificate is not signed by this cluster's CA")
    } else if text.contains("NotValidForName") {
        format!(
            "{text}: the certificate does not name {} (issued to another member?)",
            tls::member_name(peer)
        )
    } else if text.contains("CertificateRequired") || text.contains("NoCertificatesPresented") {
        format!("{text}: the peer presented no certificate (is TLS set up on both sides?)")
    } else {
        text
    }
}

/// The dialer's id, if its handshake is accepted; logs and counts a refusal.
async fn handshake(stream: &mut Stream, remote: SocketAddr, ctx: &PeerContext) -> Option<NodeId> {
    match accept_hello(stream, ctx).await {
        Ok(from) => {
            debug!(%remote, peer = %from, "peer connected");
            Some(from)
        }
        Err(why) => {
            Metrics::inc(&ctx.metrics.peer_handshakes_refused);
            error!(%remote, "refused a peer connection: {why}");
            None
        }
    }
}

/// Delivers the frames of an accepted connection until it closes, fails or is replaced.
async fn receive<M: DeserializeOwned>(
    stream: Stream,
    remote: SocketAddr,
    from: NodeId,
    ctx: Arc<PeerContext>,
    inbox: mpsc::Sender<(NodeId, PeerMsg<M>)>,
) {
    let mut reader = BufReader::with_capacity(256 << 10, stream);
    loop {
        let read = read_frame_budgeted(
            &mut reader,
            ctx.frame_max,
            &ctx.inbound.bytes,
            FRAME_READ_TIMEOUT,
        );
        let payload = match read.await {
            Ok(payload) => payload,
            Err(FrameError::Io(e)) => {
                debug!(peer = %from, "peer connection closed: {e}");
                return;
            }
            Err(e) => {
                Metrics::inc(&ctx.metrics.peer_frames_refused);
                warn!(peer = %from, %remote, "closing peer connection: {e}");
                return;
            }
        };
        let msg = match postcard::from_bytes::<PeerMsg<M>>(&payload) {
            Ok(msg) => msg,
            Err(e) => {
                Metrics::inc(&ctx.metrics.peer_frames_refused);
                warn!(peer = %from, "closing peer connection: undecodable message ({e})");
                return;
            }
        };
        Metrics::inc(&ctx.metrics.peer_messages_received);
        if inbox.send((from, msg)).await.is_err() {
            return; // The runtime stopped.
        }
    }
}

/// Reads and checks the dialer's hello, answers it, and returns the dialer's id.
async fn accept_hello(stream: &mut Stream, ctx: &PeerContext) -> Result<NodeId, String> {
    let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(stream, 64 << 10));
    let payload = match read.await {
        Ok(Ok(payload)) => payload,
        Ok(Err(e)) => return Err(format!("bad handshake frame ({e}); not a quorate peer?")),
        Err(_) => return Err("no handshake within 5 s".into()),
    };
    let hello = match postcard::from_bytes::<Hello>(&payload) {
        Ok(hello) => hello,
        Err(_) => {
            // Tell an incompatible version apart from garbage, if the prefix allows.
            let prefix = postcard::take_from_bytes::<([u8; 4], u16)>(&payload);
            let why = match prefix {
                Ok(((HELLO_MAGIC, version), _)) => format!(
                    "speaks peer protocol version {version}, this node speaks {PEER_PROTOCOL_VERSION}"
                ),
                _ => "not a quorate peer (undecodable handshake)".into(),
            };
            answer(stream, HelloAnswer::Refused(why.clone())).await;
            return Err(why);
        }
    };
    if let Some(why) = ctx.refusal(&hello) {
        answer(stream, HelloAnswer::Refused(why.clone())).await;
        return Err(format!("peer at {} {why}", hello.client_addr));
    }
    if let Some(why) = certificate_refusal(stream, ctx, hello.from) {
        Metrics::inc(&ctx.metrics.peer_tls_refused);
        answer(stream, HelloAnswer::Refused(why.clone())).await;
        return Err(format!("peer at {} {why}", hello.client_addr));
    }
    ctx.client_addrs
        .lock()
        .expect("addrs lock")
        .insert(hello.from, hello.client_addr);
    answer(stream, HelloAnswer::Welcome).await;
    Ok(hello.from)
}

/// Why a TLS peer claiming to be `from` must be refused: its certificate names someone else.
fn certificate_refusal(stream: &Stream, ctx: &PeerContext, from: NodeId) -> Option<String> {
    ctx.tls.peer_acceptor.as_ref()?;
    let Some(cert) = stream.peer_certificate() else {
        return Some("presented no certificate".into());
    };
    tls::check_names_member(&cert, from).err()
}

async fn answer(stream: &mut Stream, answer: HelloAnswer) {
    let payload = postcard::to_allocvec(&answer).expect("an answer encodes");
    let mut buf = Vec::new();
    write_frame_into(&mut buf, &payload);
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&buf)).await;
}

#[cfg(test)]
mod tests;
