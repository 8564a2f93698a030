//! Clients: tasks speaking RESP to the nodes, recording every operation in the history.
//!
//! A client is a sequence of logical processes (Jepsen's rule): one connection each, one
//! operation outstanding, and after an operation whose outcome is unknown (`info`: a timeout,
//! a closed connection, `-TIMEOUT`) the process never issues again; the client goes on as a
//! new process on a new connection. Nothing is retried behind the history's back, with one
//! explicit exception: a write prepared for resumption (`CLIENT SESSION` before it) whose
//! connection fails is resent once on a new connection to the same node after
//! `CLIENT RESUME id seq`, which the server applies at most once; the operation is then `ok`
//! with the resent write's answer (its interval spans both attempts), or `info`.

use crate::resp::{Conn, Reply};
use crate::txn::TxnOp;
use crate::verdict::TOKEN_END;
use quorate_check::lease::LeaseOp;
use quorate_check::{Event, EventKind, OpValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Which operations the protocol's RESP front end offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// GET/SET/CAS registers and APPEND lists (every log-based protocol).
    Full,
    /// GET/SET registers only (quorum; multi-primary with last-writer-wins).
    Registers,
    /// GET/SET registers whose reads are sibling sets (multi-primary with version vectors).
    Siblings,
}

/// The history and counters every client shares.
pub struct Shared {
    pub start: Instant,
    pub events: Mutex<Vec<Event>>,
    pub next_process: AtomicU64,
    pub next_value: AtomicU64,
    pub stop: AtomicBool,
    pub nodes: Vec<(u64, SocketAddr)>,
    pub kind: Kind,
    pub keys: usize,
    pub timeout: Duration,
    pub resume_tried: AtomicU64,
    pub resume_ok: AtomicU64,
    pub ok: AtomicU64,
    /// Half of the register writes carry this time to live (`SET k v PX ms`), when set.
    pub ttl: Option<Duration>,
    /// How far apart the nodes' clocks may read, in milliseconds, recorded with every
    /// `put_ttl` as the window its expiry may take effect in ([`quorate_check::expiry`]).
    pub clock_error_ms: u64,
    /// The last value seen per register, for CAS's expected value.
    recent: Mutex<BTreeMap<String, String>>,
}

impl Shared {
    pub fn new(
        nodes: Vec<(u64, SocketAddr)>,
        kind: Kind,
        keys: usize,
        timeout: Duration,
    ) -> Shared {
        Shared {
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
            next_process: AtomicU64::new(0),
            next_value: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            nodes,
            kind,
            keys,
            timeout,
            resume_tried: AtomicU64::new(0),
            resume_ok: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            ttl: None,
            clock_error_ms: 0,
            recent: Mutex::new(BTreeMap::new()),
        }
    }

    /// A recorder for `nodes` on the same clock, continuing the process numbering.
    pub fn successor(&self, nodes: Vec<(u64, SocketAddr)>) -> Shared {
        let mut next = Shared::new(nodes, self.kind, self.keys, self.timeout);
        next.start = self.start;
        next.ttl = self.ttl;
        next.clock_error_ms = self.clock_error_ms;
        next.next_process = AtomicU64::new(self.next_process.load(Ordering::Relaxed));
        next
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn record(
        &self,
        process: u64,
        kind: EventKind,
        key: &str,
        value: OpValue,
        node: u64,
        error: Option<String>,
    ) {
        self.record_event(process, kind, Some(key), value, node, error);
    }

    /// Records an event; `key` is `None` for a transaction, which names its keys in its
    /// micro-ops.
    fn record_event(
        &self,
        process: u64,
        kind: EventKind,
        key: Option<&str>,
        value: OpValue,
        node: u64,
        error: Option<String>,
    ) {
        let event = Event {
            process,
            kind,
            key: key.map(str::to_string),
            value,
            time: self.now(),
            node: Some(node),
            error,
            mode: Default::default(),
        };
        self.events.lock().expect("history lock").push(event);
    }

    pub(crate) fn value(&self) -> u64 {
        self.next_value.fetch_add(1, Ordering::Relaxed)
    }
}

/// One operation to perform.
#[derive(Clone, Debug)]
enum Op {
    Get(String),
    Put(String, String),
    /// A put that expires: key, value, time to live and the clocks' error, in milliseconds.
    PutTtl(String, String, u64, u64),
    Cas(String, String, String),
    Append(String, String),
    /// `LEASE GRANT PX ttl`: time to live and the clocks' error, in milliseconds.
    LeaseGrant(u64, u64),
    /// `SET k v LEASE id`.
    PutLease(String, String, u64),
    /// `LEASE KEEPALIVE id`, with the clocks' error.
    KeepAlive(u64, u64),
    /// `LEASE REVOKE id`.
    Revoke(u64),
}

impl Op {
    /// The key, `None` for an operation on a lease itself.
    fn key(&self) -> Option<&str> {
        match self {
            Op::Get(k)
            | Op::Put(k, _)
            | Op::PutTtl(k, ..)
            | Op::Cas(k, _, _)
            | Op::Append(k, _)
            | Op::PutLease(k, ..) => Some(k),
            Op::LeaseGrant(..) | Op::KeepAlive(..) | Op::Revoke(_) => None,
        }
    }

    /// Whether the operation ends the client's use of its lease when it fails.
    fn on_lease(&self) -> bool {
        matches!(
            self,
            Op::LeaseGrant(..) | Op::PutLease(..) | Op::KeepAlive(..) | Op::Revoke(_)
        )
    }

    fn is_write(&self) -> bool {
        !matches!(self, Op::Get(_))
    }

    fn invocation(&self, kind: Kind) -> OpValue {
        match self {
            Op::Get(_) if kind == Kind::Siblings => OpValue::Siblings(Vec::new()),
            Op::Get(_) => OpValue::Get(None),
            Op::Put(_, v) => OpValue::Put(v.clone()),
            Op::PutTtl(_, v, ttl_ms, clock_error_ms) => OpValue::PutTtl {
                value: v.clone(),
                ttl_ms: *ttl_ms,
                clock_error_ms: *clock_error_ms,
            },
            Op::Cas(_, e, n) => OpValue::Cas {
                expected: Some(e.clone()),
                new: n.clone(),
            },
            Op::Append(_, t) => OpValue::Append(t.clone()),
            Op::LeaseGrant(ttl_ms, clock_error_ms) => OpValue::Lease(LeaseOp::Grant {
                ttl_ms: *ttl_ms,
                clock_error_ms: *clock_error_ms,
                id: None,
            }),
            Op::PutLease(_, v, lease) => OpValue::PutLease {
                value: v.clone(),
                lease: *lease,
                expires: None,
            },
            Op::KeepAlive(id, clock_error_ms) => OpValue::Lease(LeaseOp::KeepAlive {
                id: *id,
                clock_error_ms: *clock_error_ms,
            }),
            Op::Revoke(id) => OpValue::Lease(LeaseOp::Revoke { id: *id }),
        }
    }

    /// The command's words (see [`as_args`] for what `Conn::call` takes).
    fn args(&self) -> Vec<String> {
        match self {
            Op::Get(k) => vec!["GET".into(), k.clone()],
            Op::Put(k, v) => vec!["SET".into(), k.clone(), v.clone()],
            Op::PutTtl(k, v, ttl_ms, _) => {
                vec![
                    "SET".into(),
                    k.clone(),
                    v.clone(),
                    "PX".into(),
                    ttl_ms.to_string(),
                ]
            }
            Op::Cas(k, e, n) => vec!["CAS".into(), k.clone(), e.clone(), n.clone()],
            Op::Append(k, t) => vec!["APPEND".into(), k.clone(), t.clone()],
            Op::LeaseGrant(ttl_ms, _) => {
                vec![
                    "LEASE".into(),
                    "GRANT".into(),
                    "PX".into(),
                    ttl_ms.to_string(),
                ]
            }
            Op::PutLease(k, v, id) => vec![
                "SET".into(),
                k.clone(),
                v.clone(),
                "LEASE".into(),
                id.to_string(),
            ],
            Op::KeepAlive(id, _) => vec!["LEASE".into(), "KEEPALIVE".into(), id.to_string()],
            Op::Revoke(id) => vec!["LEASE".into(), "REVOKE".into(), id.to_string()],
        }
    }
}

fn as_args(words: &[String]) -> Vec<&[u8]> {
    words.iter().map(|w| w.as_bytes()).collect()
}

/// What the client saw.
pub(crate) enum Outcome {
    Ok(OpValue),
    Fail(String),
    /// Unknown: the process ends here.
    Info(String),
}

/// With a time to live (Raft), part of the register writes use leases, as etcd's clients do:
/// a client grants one, attaches the keys it writes, renews it and sometimes revokes it, and
/// drops it after any failure or unknown outcome (see `quorate_check::lease`).
fn next_lease_op(shared: &Shared, rng: &mut StdRng, lease: Option<u64>, key: String) -> Op {
    let ttl_ms = shared.ttl.map_or(1_000, |t| t.as_millis() as u64);
    let Some(id) = lease else {
        return Op::LeaseGrant(ttl_ms, shared.clock_error_ms);
    };
    match rng.random_range(0..20) {
        0..=9 => Op::PutLease(key, format!("v{}", shared.value()), id),
        10..=17 => Op::KeepAlive(id, shared.clock_error_ms),
        _ => Op::Revoke(id),
    }
}

fn next_op(shared: &Shared, rng: &mut StdRng, lease: Option<u64>) -> Op {
    let key_index = rng.random_range(0..shared.keys.max(1));
    let list = shared.kind == Kind::Full && rng.random_bool(0.5);
    if list {
        let key = format!("l{key_index}");
        if rng.random_bool(0.6) {
            let token = format!("a{}{TOKEN_END}", shared.value());
            Op::Append(key, token)
        } else {
            Op::Get(key)
        }
    } else {
        let key = format!("r{key_index}");
        let roll = rng.random_range(0..10);
        if roll < 4 {
            Op::Get(key)
        } else if shared.ttl.is_some() && shared.kind == Kind::Full && rng.random_bool(0.4) {
            next_lease_op(shared, rng, lease, key)
        } else if roll < 7 || shared.kind != Kind::Full {
            let value = format!("v{}", shared.value());
            match shared.ttl {
                Some(ttl) if rng.random_bool(0.5) => {
                    Op::PutTtl(key, value, ttl.as_millis() as u64, shared.clock_error_ms)
                }
                _ => Op::Put(key, value),
            }
        } else {
            let recent = shared.recent.lock().expect("recent lock");
            let expected = recent.get(&key).cloned().unwrap_or_else(|| "v0".into());
            drop(recent);
            Op::Cas(key, expected, format!("v{}", shared.value()))
        }
    }
}

/// Interprets `reply` to `op`.
fn outcome(op: &Op, reply: Reply, kind: Kind) -> Outcome {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    match (op, reply) {
        (_, Reply::Error(e)) => {
            // The lease was gone when the command applied: nothing changed.
            let lease_gone = op.on_lease() && e.contains("not found");
            if lease_gone || crate::txn::definite(&e) || !op.is_write() {
                Outcome::Fail(e)
            } else {
                Outcome::Info(e)
            }
        }
        (Op::Get(_), Reply::Nil) if kind == Kind::Siblings => {
            Outcome::Ok(OpValue::Siblings(Vec::new()))
        }
        (Op::Get(_), Reply::Nil) => Outcome::Ok(OpValue::Get(None)),
        (Op::Get(_), Reply::Bulk(b)) if kind == Kind::Siblings => {
            Outcome::Ok(OpValue::Siblings(vec![text(b)]))
        }
        (Op::Get(_), Reply::Bulk(b)) => Outcome::Ok(OpValue::Get(Some(text(b)))),
        (Op::Get(_), Reply::Array(items)) if kind == Kind::Siblings => {
            let mut values = Vec::new();
            for item in items {
                match item {
                    Reply::Bulk(b) => values.push(text(b)),
                    other => return Outcome::Fail(format!("unexpected sibling {other:?}")),
                }
            }
            Outcome::Ok(OpValue::Siblings(values))
        }
        (Op::Put(_, v), Reply::Simple(s)) if s == "OK" => Outcome::Ok(OpValue::Put(v.clone())),
        (Op::PutTtl(..), Reply::Simple(s)) if s == "OK" => Outcome::Ok(op.invocation(kind)),
        (Op::Cas(_, e, n), Reply::Integer(1)) => Outcome::Ok(OpValue::Cas {
            expected: Some(e.clone()),
            new: n.clone(),
        }),
        (Op::Cas(..), Reply::Integer(0)) => Outcome::Fail("comparison failed".into()),
        (Op::Append(_, t), Reply::Integer(_)) => Outcome::Ok(OpValue::Append(t.clone())),
        (Op::LeaseGrant(ttl_ms, clock_error_ms), Reply::Integer(id)) if id > 0 => {
            Outcome::Ok(OpValue::Lease(LeaseOp::Grant {
                ttl_ms: *ttl_ms,
                clock_error_ms: *clock_error_ms,
                id: Some(id as u64),
            }))
        }
        (Op::PutLease(..), Reply::Simple(s)) if s == "OK" => Outcome::Ok(op.invocation(kind)),
        (Op::KeepAlive(..) | Op::Revoke(_), Reply::Integer(_)) => Outcome::Ok(op.invocation(kind)),
        (op, other) if op.is_write() => Outcome::Info(format!("unexpected reply {other:?}")),
        (_, other) => Outcome::Fail(format!("unexpected reply {other:?}")),
    }
}

/// `CLIENT SESSION`: `(id, next request number)`, or `None` when the server answered
/// something else. `Err` when no answer came: the connection is out of step (a late reply
/// would be taken for the next command's) and must be dropped.
async fn session(conn: &mut Conn, timeout: Duration) -> std::io::Result<Option<(u64, u64)>> {
    Ok(match conn.call(&[b"CLIENT", b"SESSION"], timeout).await? {
        Reply::Array(items) => match items.as_slice() {
            [Reply::Integer(id), Reply::Integer(seq)] => Some((*id as u64, *seq as u64)),
            _ => None,
        },
        _ => None,
    })
}

/// Performs `op` on `conn`, resuming once on a fresh connection when prepared to.
async fn perform(
    shared: &Shared,
    conn: &mut Conn,
    addr: SocketAddr,
    op: &Op,
    resume: Option<(u64, u64)>,
) -> Outcome {
    let words = op.args();
    let args = as_args(&words);
    let first = conn.call(&args, shared.timeout).await;
    let e = match first {
        // The server gave up with the outcome unknown: as good a reason to resume.
        Ok(Reply::Error(e)) if resume.is_some() && e.starts_with("TIMEOUT") => e,
        Ok(reply) => return outcome(op, reply, shared.kind),
        Err(e) => e.to_string(),
    };
    let Some((id, seq)) = resume else {
        return Outcome::Info(e);
    };
    shared.resume_tried.fetch_add(1, Ordering::Relaxed);
    // A log-based protocol's sessions are replicated: resume at another node. A
    // leaderless coordinator deduplicates only its own clients' retries: the same.
    let addr = match shared.kind {
        Kind::Full => {
            let at = shared
                .nodes
                .iter()
                .position(|(_, a)| *a == addr)
                .unwrap_or(0);
            shared.nodes[(at + 1) % shared.nodes.len()].1
        }
        _ => addr,
    };
    let Ok(mut fresh) = Conn::connect(addr, shared.timeout).await else {
        return Outcome::Info(format!("{e}; resume: cannot reconnect"));
    };
    let (id_text, seq_text) = (id.to_string(), seq.to_string());
    let resumed = fresh
        .call(
            &[
                b"CLIENT",
                b"RESUME",
                id_text.as_bytes(),
                seq_text.as_bytes(),
            ],
            shared.timeout,
        )
        .await;
    if !matches!(resumed, Ok(Reply::Simple(_))) {
        return Outcome::Info(format!("{e}; resume refused: {resumed:?}"));
    }
    match fresh.call(&args, shared.timeout).await {
        Ok(reply) => {
            let result = outcome(op, reply, shared.kind);
            if matches!(result, Outcome::Ok(_)) {
                shared.resume_ok.fetch_add(1, Ordering::Relaxed);
            }
            // The resumed connection is abandoned either way: a fresh process
            // will dial its own.
            result
        }
        Err(e2) => Outcome::Info(format!("{e}; resumed write: {e2}")),
    }
}

/// One client: processes one after another until the run stops.
pub async fn client(shared: Arc<Shared>, index: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64);
    let mut target = index % shared.nodes.len();
    // The lease this client attaches its writes to (with a time to live): granted to it and
    // not known to be gone.
    let mut lease: Option<u64> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let (node, addr) = shared.nodes[target];
        target = rng.random_range(0..shared.nodes.len());
        let Ok(mut conn) = Conn::connect(addr, shared.timeout).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let process = shared.next_process.fetch_add(1, Ordering::Relaxed);
        while !shared.stop.load(Ordering::Relaxed) {
            if shared.kind == Kind::Full && rng.random_bool(TXN_SHARE) {
                let txn = TxnOp::random(&shared, &mut rng);
                if !transaction(&shared, &mut conn, process, node, &txn).await {
                    break; // Queued commands or watches may linger: a new connection.
                }
                continue;
            }
            let op = next_op(&shared, &mut rng, lease);
            let resume = if op.is_write() && !op.on_lease() && rng.random_bool(0.5) {
                match session(&mut conn, shared.timeout).await {
                    Ok(resume) => resume,
                    Err(_) => break, // Nothing invoked yet: just a new connection.
                }
            } else {
                None
            };
            shared.record_event(
                process,
                EventKind::Invoke,
                op.key(),
                op.invocation(shared.kind),
                node,
                None,
            );
            let result = perform(&shared, &mut conn, addr, &op, resume).await;
            match result {
                Outcome::Ok(value) => {
                    if let (
                        OpValue::Get(Some(v))
                        | OpValue::Put(v)
                        | OpValue::PutTtl { value: v, .. }
                        | OpValue::PutLease { value: v, .. }
                        | OpValue::Cas { new: v, .. },
                        Some(key),
                    ) = (&value, op.key())
                    {
                        let mut recent = shared.recent.lock().expect("recent lock");
                        recent.insert(key.to_string(), v.clone());
                    }
                    match (&op, &value) {
                        (Op::LeaseGrant(..), OpValue::Lease(LeaseOp::Grant { id, .. })) => {
                            lease = *id
                        }
                        (Op::Revoke(_), _) => lease = None,
                        _ => {}
                    }
                    shared.ok.fetch_add(1, Ordering::Relaxed);
                    shared.record_event(process, EventKind::Ok, op.key(), value, node, None);
                }
                Outcome::Fail(why) => {
                    if op.on_lease() {
                        lease = None;
                    }
                    shared.record_event(
                        process,
                        EventKind::Fail,
                        op.key(),
                        op.invocation(shared.kind),
                        node,
                        Some(why),
                    );
                }
                Outcome::Info(why) => {
                    if op.on_lease() {
                        lease = None;
                    }
                    shared.record_event(
                        process,
                        EventKind::Info,
                        op.key(),
                        op.invocation(shared.kind),
                        node,
                        Some(why),
                    );
                    break; // This process is done; continue as a new one.
                }
            }
        }
    }
}

/// Share of a log protocol's operations that are transactions (see [`crate::txn`]).
const TXN_SHARE: f64 = 0.15;

/// Performs and records one transaction; `false` when the connection must not be reused.
async fn transaction(
    shared: &Shared,
    conn: &mut Conn,
    process: u64,
    node: u64,
    txn: &TxnOp,
) -> bool {
    let invocation = txn.invocation();
    shared.record_event(
        process,
        EventKind::Invoke,
        None,
        invocation.clone(),
        node,
        None,
    );
    match txn.perform(conn, shared.timeout).await {
        Outcome::Ok(value) => {
            shared.ok.fetch_add(1, Ordering::Relaxed);
            shared.record_event(process, EventKind::Ok, None, value, node, None);
            true
        }
        Outcome::Fail(why) => {
            shared.record_event(process, EventKind::Fail, None, invocation, node, Some(why));
            false
        }
        Outcome::Info(why) => {
            shared.record_event(process, EventKind::Info, None, invocation, node, Some(why));
            false
        }
    }
}

/// Reads every key on `nodes` once the nemesis is over, retrying each read (as new
/// processes) until `within` passes: the list-append check needs a read after every
/// acknowledged append, convergence needs each replica's final state.
pub async fn final_reads(shared: &Shared, on_every_node: bool, within: Duration) {
    let deadline = Instant::now() + within;
    let mut keys = Vec::new();
    for i in 0..shared.keys.max(1) {
        keys.push(format!("r{i}"));
        if shared.kind == Kind::Full {
            keys.push(format!("l{i}"));
        }
    }
    let targets: Vec<(u64, SocketAddr)> = if on_every_node {
        shared.nodes.clone()
    } else {
        Vec::new()
    };
    let mut jobs: Vec<(String, Option<(u64, SocketAddr)>)> = Vec::new();
    for key in &keys {
        if on_every_node {
            for t in &targets {
                jobs.push((key.clone(), Some(*t)));
            }
        } else {
            jobs.push((key.clone(), None));
        }
    }
    let mut turn = 0usize;
    for (key, fixed) in jobs {
        loop {
            let (node, addr) = fixed.unwrap_or_else(|| {
                turn += 1;
                shared.nodes[turn % shared.nodes.len()]
            });
            let process = shared.next_process.fetch_add(1, Ordering::Relaxed);
            let op = Op::Get(key.clone());
            let done = match Conn::connect(addr, shared.timeout).await {
                Err(_) => false,
                Ok(mut conn) => {
                    shared.record(
                        process,
                        EventKind::Invoke,
                        &key,
                        op.invocation(shared.kind),
                        node,
                        None,
                    );
                    match conn.call(&as_args(&op.args()), shared.timeout).await {
                        Ok(reply) => match outcome(&op, reply, shared.kind) {
                            Outcome::Ok(value) => {
                                shared.record(process, EventKind::Ok, &key, value, node, None);
                                true
                            }
                            Outcome::Fail(why) | Outcome::Info(why) => {
                                shared.record(
                                    process,
                                    EventKind::Fail,
                                    &key,
                                    op.invocation(shared.kind),
                                    node,
                                    Some(why),
                                );
                                false
                            }
                        },
                        Err(e) => {
                            shared.record(
                                process,
                                EventKind::Info,
                                &key,
                                op.invocation(shared.kind),
                                node,
                                Some(e.to_string()),
                            );
                            false
                        }
                    }
                }
            };
            if done || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
