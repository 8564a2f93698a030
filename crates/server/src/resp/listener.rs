//! Accepting client connections and serving each one.

use super::cmd::{Command, ExecTxn};
use super::connection::{split, FrameReader, FrameWriter, ReadError};
use super::frame::{Frame, Limits, Proto};
use super::session::{Exec, Lane, Order, Session};
use crate::metrics::Metrics;
use crate::runtime::NodeHandle;
use crate::tls::{self, Stream};
use crate::watch::Subscriber;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Accepts client connections, at most `connections_max` at once.
pub struct Listener {
    pub listener: TcpListener,
    pub node: NodeHandle,
}

impl Listener {
    /// Serves clients until the task is dropped.
    pub async fn run(self) {
        let limit = Arc::new(Semaphore::new(self.node.config.connections_max));
        loop {
            let (mut stream, remote) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    warn!("accepting a client connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                Metrics::inc(&self.node.metrics.client_connections_refused);
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let node = self.node.clone();
            tokio::spawn(async move {
                debug!(%remote, "client connected");
                if let Some(stream) = accept_tls(stream, remote, &node).await {
                    Handler::new(stream, node).run().await;
                }
                drop(permit);
            });
        }
    }
}

/// The connection, inside TLS if the client port uses it. A client that does not begin with
/// a TLS handshake is told, in plain text, that the port speaks TLS only.
async fn accept_tls(
    mut stream: TcpStream,
    remote: SocketAddr,
    node: &NodeHandle,
) -> Option<Stream> {
    let Some(acceptor) = &node.peers.tls.clients else {
        return Some(Stream::Plain(stream));
    };
    let metrics = &node.metrics;
    let limit = Duration::from_millis(node.config.client_partial_timeout_ms);
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == tls::TLS_HANDSHAKE_RECORD => {}
        Ok(Ok(1)) => {
            Metrics::inc(&metrics.client_tls_refused);
            info!(%remote, "refused a plain-text client on the TLS client port");
            let _ = tokio::time::timeout(limit, stream.write_all(tls::PLAIN_REFUSAL)).await;
            let _ = stream.shutdown().await;
            return None;
        }
        _ => return None, // Closed, failed or silent before its first byte.
    }
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(Stream::Accepted(Box::new(tls))),
        Ok(Err(e)) => {
            Metrics::inc(&metrics.client_tls_handshakes_failed);
            info!(%remote, "client TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            Metrics::inc(&metrics.client_tls_handshakes_failed);
            info!(%remote, "client TLS handshake did not finish within {limit:?}");
            None
        }
    }
}

/// A reply not yet written: ready now, or a task still working on it (holding a lane).
enum InFlight {
    Ready(Frame),
    /// `HELLO`'s reply: written in, and switching the connection to, this protocol (replies
    /// to requests before it keep the protocol they were asked in).
    Switch(Frame, Proto),
    Task(JoinHandle<(Frame, Lane)>),
}

/// Serves one connection: reads commands, runs them, writes replies in request order.
pub struct Handler {
    reader: FrameReader,
    writer: FrameWriter,
    node: NodeHandle,
    session: Session,
    /// Replies owed, oldest first; at most `pipeline_max`.
    in_flight: VecDeque<InFlight>,
    /// Set after QUIT, end of input or a protocol error: answer what is owed, then close.
    closing: bool,
    /// Released by the last command sent to the node, to keep the next one behind it.
    last_order: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Writes issued since the last read: the next read waits for them to complete.
    unread_writes: Vec<tokio::sync::oneshot::Receiver<()>>,
    /// Pub/sub subscriptions, while there are any (see `cmd::pubsub`).
    subscriber: Option<Subscriber>,
}

impl Handler {
    pub fn new(stream: Stream, node: NodeHandle) -> Handler {
        let partial = Duration::from_millis(node.config.client_partial_timeout_ms);
        let (reader, writer) = split(stream, Limits::for_values(node.config.value_max), partial);
        let mut session = Session::new();
        session.access =
            crate::auth::initial(node.config.requirepass.as_deref(), &node.config.users);
        Handler {
            reader,
            writer,
            node,
            session,
            in_flight: VecDeque::new(),
            closing: false,
            last_order: None,
            unread_writes: Vec::new(),
            subscriber: None,
        }
    }

    pub async fn run(mut self) {
        let metrics = self.node.metrics.clone();
        metrics.client_connections.fetch_add(1, Ordering::Relaxed);
        Metrics::inc(&metrics.client_connections_total);
        let _ = self.serve().await;
        self.writer.shutdown().await;
        // Its ephemeral keys go with the connection (see `ephemeral.rs`).
        self.session.lease.close(&self.node).await;
        metrics.client_connections.fetch_sub(1, Ordering::Relaxed);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let pipeline_max = self.node.config.pipeline_max;
        let idle_timeout = match self.node.config.client_idle_timeout_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        let owed_max = self.node.config.client_output_buffer_max;
        loop {
            if self.closing && self.in_flight.is_empty() {
                return Ok(());
            }
            let owed = self.writer.owed();
            if owed > owed_max {
                Metrics::inc(&self.node.metrics.client_output_buffer_closed);
                warn!(
                    owed,
                    max = owed_max,
                    "closing a client connection: it owes more reply bytes than \
                     client_output_buffer_max (a client that sends without reading?)"
                );
                self.writer.discard();
                self.in_flight.clear();
                return Ok(());
            }
            let can_read = !self.closing && self.in_flight.len() < pipeline_max;
            // Idle only counts while the client waits for nothing.
            let idle = idle_timeout.filter(|_| self.in_flight.is_empty());
            // Replies wait while more requests are already buffered (one write for a batch).
            let write = self.writer.has_output()
                && (!self.reader.has_buffered() || self.in_flight.is_empty());
            // Messages go out between replies, never ahead of one owed.
            let listen = self.subscriber.is_some() && self.in_flight.is_empty() && !self.closing;
            tokio::select! {
                biased;
                done = next_done(&mut self.in_flight), if !self.in_flight.is_empty() => {
                    self.write_reply(done);
                    // Stop at the bound, so a connection owes at most one reply beyond it.
                    self.write_ready(owed_max).await;
                    // The node answers a batch of requests at once (one fsync, one read
                    // round), but each request's task finishes in its own turn on the
                    // scheduler. Let the rest of the batch finish before writing, so that a
                    // pipelining client gets its replies in one write rather than one each
                    // (strace before: about one sendto per request at 64 × 16).
                    if !self.in_flight.is_empty() && self.writer.owed() <= owed_max {
                        tokio::task::yield_now().await;
                        self.write_ready(owed_max).await;
                    }
                }
                written = self.writer.write_some(), if write => written?,
                frames = next_message(&mut self.subscriber), if listen => {
                    for frame in &frames {
                        self.writer.push(frame);
                    }
                }
                frame = self.reader.read_frame(idle), if can_read => self.on_frame(frame),
            }
        }
    }

    /// Encodes the replies at the front that are complete, in order, up to the output bound.
    async fn write_ready(&mut self, owed_max: usize) {
        while self.writer.owed() <= owed_max {
            let Some(done) = ready_front(&mut self.in_flight).await else {
                break;
            };
            self.write_reply(done);
        }
    }

    fn write_reply(&mut self, Done { frame, lane, proto }: Done) {
        if let Frame::Error(_) = frame {
            Metrics::inc(&self.node.metrics.client_errors);
        }
        if let Some(proto) = proto {
            self.writer.proto = proto;
        }
        self.writer.push(&frame);
        if let Some(lane) = lane {
            self.session.give_back(lane);
        }
    }

    fn on_frame(&mut self, frame: Result<Option<Frame>, ReadError>) {
        let frame = match frame {
            Ok(Some(Frame::Array(items))) if items.is_empty() => return, // A blank inline line.
            Ok(Some(frame)) => frame,
            Ok(None) => {
                self.closing = true;
                return;
            }
            Err(ReadError::Protocol(e)) => {
                Metrics::inc(&self.node.metrics.client_protocol_errors);
                debug!("closing a client connection: {e}");
                self.in_flight
                    .push_back(InFlight::Ready(Frame::error(format!("ERR {e}"))));
                self.closing = true;
                return;
            }
            Err(ReadError::Io(_)) => {
                self.closing = true;
                self.in_flight.clear(); // Nobody is left to read the replies.
                return;
            }
            Err(e @ (ReadError::PartialTimeout(_) | ReadError::IdleTimeout(_))) => {
                Metrics::inc(&self.node.metrics.client_timeouts);
                match e {
                    ReadError::PartialTimeout(_) => {
                        info!("closing a client connection: {e} (client_partial_timeout_ms)")
                    }
                    _ => debug!("closing a client connection: {e} (client_idle_timeout_ms)"),
                }
                self.closing = true;
                return;
            }
        };
        Metrics::inc(&self.node.metrics.client_requests);
        let parsed = Command::from_frame(frame, self.node.config.value_max);
        let parsed = match parsed {
            Ok(command) if self.refuses(&command).is_some() => {
                Err(self.refuses(&command).expect("just checked"))
            }
            Ok(command) if self.refuses_subscribed(&command).is_some() => {
                Err(self.refuses_subscribed(&command).expect("just checked"))
            }
            parsed => parsed,
        };
        let parsed = match self.transaction(parsed) {
            Ok(parsed) => parsed,
            Err(reply) => return self.in_flight.push_back(reply),
        };
        let reply = match parsed {
            Err(error) => InFlight::Ready(error),
            Ok(Command::Subscribe(cmd)) => {
                let subscriber = self
                    .subscriber
                    .get_or_insert_with(|| Subscriber::new(self.node.watch.clone()));
                let frames = subscriber.change(cmd.kind, cmd.names);
                if subscriber.count() == 0 {
                    self.subscriber = None;
                }
                self.in_flight
                    .extend(frames.into_iter().map(InFlight::Ready));
                return;
            }
            Ok(Command::Ping(ping))
                if self.subscriber.is_some() && self.queued_proto() == Proto::Resp2 =>
            {
                InFlight::Ready(ping.reply_subscribed())
            }
            Ok(Command::XRead(read)) => {
                // Answered in order like any reply; the lane only rides along.
                let lane = self.session.take_lane();
                let watch = self.node.watch.clone();
                let proto = self.queued_proto();
                InFlight::Task(tokio::spawn(async move {
                    (read.execute(&watch, proto).await, lane)
                }))
            }
            Ok(Command::Auth(auth)) => InFlight::Ready(self.authenticate(auth)),
            Ok(Command::Snapshot(snapshot)) => {
                // Answered in order like any reply; the lane only rides along.
                let lane = self.session.take_lane();
                let node = self.node.clone();
                InFlight::Task(tokio::spawn(
                    async move { (snapshot.execute(node).await, lane) },
                ))
            }
            Ok(Command::Member(member)) => {
                // Answered in order like any reply; the lane only rides along.
                let lane = self.session.take_lane();
                let node = self.node.clone();
                InFlight::Task(tokio::spawn(
                    async move { (member.execute(node).await, lane) },
                ))
            }
            Ok(command) if command.needs_node() => self.spawn(command),
            Ok(Command::Hello(hello)) => {
                let current = self.queued_proto();
                let (frame, proto) = hello.reply(&mut self.session, current, &self.node.config);
                if let Frame::Error(e) = &frame {
                    if e.starts_with("WRONGPASS") {
                        Metrics::inc(&self.node.metrics.client_auth_failures);
                        info!("refused HELLO AUTH: wrong user or password");
                    }
                }
                InFlight::Switch(frame, proto)
            }
            Ok(command) => InFlight::Ready(self.answer_locally(command)),
        };
        self.in_flight.push_back(reply);
    }

    /// The transaction commands, and every command between `MULTI` and `EXEC` (see
    /// `cmd/multi.rs`): `Err` is the reply, when the transaction state answers; `Ok` hands
    /// the command on to be served as usual.
    fn transaction(
        &mut self,
        parsed: Result<Command, Frame>,
    ) -> Result<Result<Command, Frame>, InFlight> {
        let ready = |frame| Err(InFlight::Ready(frame));
        let Some(multi) = &mut self.session.multi else {
            return match parsed {
                Ok(Command::Multi) => {
                    self.session.multi = Some(Default::default());
                    ready(Frame::ok())
                }
                Ok(Command::Exec(_)) => ready(Frame::error("ERR EXEC without MULTI")),
                Ok(Command::Discard) => ready(Frame::error("ERR DISCARD without MULTI")),
                Ok(Command::Unwatch) => {
                    self.session.watched.clear();
                    ready(Frame::ok())
                }
                Ok(Command::Watch(mut watch)) => {
                    let (sender, receiver) = tokio::sync::oneshot::channel();
                    watch.guards = Some(sender);
                    self.session.watched.push(receiver);
                    Err(self.spawn(Command::Watch(watch)))
                }
                parsed => Ok(parsed),
            };
        };
        match parsed {
            Err(error) => {
                multi.aborted = true;
                ready(error)
            }
            Ok(Command::Multi) => ready(Frame::error("ERR MULTI calls can not be nested")),
            Ok(Command::Watch(_)) => ready(Frame::error("ERR WATCH inside MULTI is not allowed")),
            Ok(Command::Quit) => Ok(Ok(Command::Quit)),
            Ok(Command::Unknown(unknown)) => {
                multi.aborted = true;
                ready(unknown.reply())
            }
            Ok(Command::Discard) => {
                self.session.multi = None;
                self.session.watched.clear();
                ready(Frame::ok())
            }
            Ok(Command::Exec(_)) => {
                let multi = self.session.multi.take().expect("in a transaction");
                let watched = std::mem::take(&mut self.session.watched);
                if multi.aborted {
                    return ready(Frame::error(
                        "EXECABORT Transaction discarded because of previous errors.",
                    ));
                }
                let queued = multi.queued;
                Err(self.spawn(Command::Exec(ExecTxn { queued, watched })))
            }
            Ok(command) if command.refused_in_transaction().is_some() => {
                multi.aborted = true;
                let why = command.refused_in_transaction().expect("just checked");
                ready(Frame::error(why))
            }
            Ok(command) => {
                let name = command.name();
                match command.queued() {
                    Some(queued) => {
                        multi.queued.push(queued);
                        ready(Frame::Simple("QUEUED".into()))
                    }
                    None => {
                        multi.aborted = true;
                        ready(Frame::error(format!(
                            "ERR '{name}' is not allowed inside a transaction on quorate: \
                             MULTI queues GET SET SETNX SETEX PSETEX GETSET GETDEL DEL EXISTS \
                             APPEND INCR DECR INCRBY DECRBY MSET MGET EXPIRE PEXPIRE PERSIST \
                             TTL PTTL"
                        )))
                    }
                }
            }
        }
    }

    /// The protocol the connection will speak once every earlier reply is out.
    fn queued_proto(&self) -> Proto {
        self.in_flight
            .iter()
            .rev()
            .find_map(|f| match f {
                InFlight::Switch(_, proto) => Some(*proto),
                _ => None,
            })
            .unwrap_or(self.writer.proto)
    }

    /// A RESP2 connection with subscriptions takes only pub/sub commands, PING and QUIT, as
    /// in Redis (its replies could not be told from messages); RESP3 takes any.
    fn refuses_subscribed(&self, command: &Command) -> Option<Frame> {
        let allowed = matches!(
            command,
            Command::Subscribe(_) | Command::Ping(_) | Command::Quit
        );
        if allowed || self.subscriber.is_none() || self.queued_proto() != Proto::Resp2 {
            return None;
        }
        Some(Frame::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            command.name()
        )))
    }

    /// The error answering `command`, if this connection may not run it.
    fn refuses(&self, command: &Command) -> Option<Frame> {
        match &self.session.access {
            None if !command.before_auth() => Some(Frame::error(crate::auth::NOAUTH)),
            Some(access)
                if (access.role == crate::auth::Role::ReadOnly && command.is_write())
                    || (access.role != crate::auth::Role::Admin && command.is_admin()) =>
            {
                Some(Frame::error(format!(
                    "NOPERM User {} has no permissions to run the '{}' command",
                    access.user,
                    command.name()
                )))
            }
            _ => None,
        }
    }

    fn authenticate(&mut self, auth: crate::resp::cmd::Auth) -> Frame {
        match auth.check(&self.node.config) {
            Ok(access) => {
                self.session.access = Some(access);
                Frame::ok()
            }
            Err(e) => {
                Metrics::inc(&self.node.metrics.client_auth_failures);
                info!("refused AUTH: {e}");
                Frame::error(e)
            }
        }
    }

    fn spawn(&mut self, command: Command) -> InFlight {
        let (next, released) = tokio::sync::oneshot::channel();
        // A read waits for the writes before it (see `Order`); later reads are ordered after
        // this one, hence after those writes too.
        let (after_writes, done) = if command.is_read() {
            (std::mem::take(&mut self.unread_writes), None)
        } else {
            let (done, completed) = tokio::sync::oneshot::channel();
            // Forget writes that completed already, so a write-only pipeline keeps this short.
            self.unread_writes.retain_mut(|write| {
                matches!(
                    write.try_recv(),
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                )
            });
            self.unread_writes.push(completed);
            (Vec::new(), Some(done))
        };
        let order = Order {
            previous: self.last_order.replace(released),
            next: Some(next),
            release_on_enqueue: command.is_single_request(),
            after_writes,
            done,
        };
        let mut exec = Exec {
            node: self.node.clone(),
            lane: self.session.take_lane(),
            read_mode: self.session.read_mode,
            order,
            contexts: self.session.contexts.clone(),
            session_lease: Some(self.session.lease.clone()),
        };
        let started = std::time::Instant::now();
        // Boxed: the future of `execute` is as large as its largest command's (about 2 KiB),
        // and a task moves its future, and its output slot which is as large, several times;
        // a box moves once. The copies were about 5% of a loaded leader's CPU (BENCHMARKS.md,
        // "What a request costs the leader").
        let request = async move {
            let name = command.name();
            let frame = command.execute(&mut exec).await;
            let metrics = &exec.node.metrics;
            metrics.observe_request(name, started.elapsed().as_secs_f64());
            (frame, exec.lane)
        };
        InFlight::Task(tokio::spawn(Box::pin(request)))
    }

    fn answer_locally(&mut self, command: Command) -> Frame {
        let in_flight = self.in_flight.len();
        match command {
            Command::Ping(cmd) => cmd.reply(),
            Command::Info(cmd) => cmd.reply(&self.node),
            Command::Client(cmd) => cmd.reply(&mut self.session, in_flight),
            Command::ReadMode(cmd) => cmd.reply(&mut self.session),
            Command::Config(cmd) => cmd.reply(&self.node.watch),
            Command::Publish(cmd) => cmd.reply(&self.node.watch),
            Command::CommandInfo(cmd) => cmd.reply(),
            Command::Script(cmd) => cmd.answer(),
            Command::Select(cmd) => cmd.reply(),
            Command::Unknown(cmd) => cmd.reply(),
            Command::Quit => {
                self.closing = true;
                Frame::ok()
            }
            other => unreachable!("{other:?} needs the node"),
        }
    }
}

/// The frames of the next message for this connection's subscriptions. Cancel-safe.
async fn next_message(subscriber: &mut Option<Subscriber>) -> Vec<Frame> {
    subscriber
        .as_mut()
        .expect("guarded by is_some")
        .next()
        .await
}

/// A reply ready to write: its frame, the lane to give back, and the protocol to switch to.
struct Done {
    frame: Frame,
    lane: Option<Lane>,
    proto: Option<Proto>,
}

/// Waits for the oldest reply and removes it. Cancel-safe: nothing is removed until it is
/// complete.
async fn next_done(in_flight: &mut VecDeque<InFlight>) -> Done {
    let done = match in_flight.front_mut().expect("guarded by is_empty") {
        InFlight::Ready(_) | InFlight::Switch(..) => None,
        InFlight::Task(task) => Some(task.await),
    };
    let front = in_flight.pop_front().expect("still there");
    let (frame, lane, proto) = match (front, done) {
        (InFlight::Ready(frame), _) => (frame, None, None),
        (InFlight::Switch(frame, proto), _) => (frame, None, Some(proto)),
        (InFlight::Task(_), Some(Ok((frame, lane)))) => (frame, Some(lane), None),
        (InFlight::Task(_), _) => (
            Frame::error("ERR internal error while serving this request"),
            None,
            None,
        ),
    };
    Done { frame, lane, proto }
}

/// The oldest reply if it is already complete.
async fn ready_front(in_flight: &mut VecDeque<InFlight>) -> Option<Done> {
    let ready = match in_flight.front()? {
        InFlight::Ready(_) | InFlight::Switch(..) => true,
        InFlight::Task(task) => task.is_finished(),
    };
    if ready {
        Some(next_done(in_flight).await)
    } else {
        None
    }
}
