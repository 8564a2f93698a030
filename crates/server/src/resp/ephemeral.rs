//! Ephemeral keys: a connection's own session lease (ZooKeeper's ephemeral nodes over the
//! replicated leases of `quorate_core::kv::lease`).
//!
//! `SET key value EPHEMERAL` attaches the key to the connection's *session lease*, granted on
//! the first such write with the connection's session timeout as its time to live (10 s unless
//! `CLIENT SESSIONTIMEOUT ms` changed it before). From then on:
//!
//! - **While the connection is open** a task tied to it ([`keep_alive`]) renews the lease every
//!   timeout/3 (sooner after a failed attempt), through the leader like any write; the client
//!   does nothing.
//! - **When the connection closes** (`QUIT`, end of input, a reset) the handler revokes the
//!   lease ([`SessionLease::close`]), so its keys disappear at once, at one log position.
//! - **When the node serving the connection dies or is cut off from the leader**, nobody
//!   renews the lease: the leader expires it at its deadline, at most one session timeout
//!   after the last renewal, and its keys go with it. That is ZooKeeper's promise for
//!   ephemeral nodes, and the reason the lease lives in the log rather than in this process.
//!
//! If a renewal finds the lease gone (the node was cut off for longer than the timeout), the
//! connection forgets it; its ephemeral keys are gone with it, and the next `SET … EPHEMERAL`
//! grants a new lease. The client is not told otherwise (`CLIENT LEASE` answers the current
//! id, nil when there is none), which is weaker than ZooKeeper's session-expired event: a
//! client that must know watches its keys (keyspace notifications announce `expired`/`del`).
//!
//! Ephemeral writes of one connection are serialized (`grant`): two pipelined first writes
//! must not grant two leases.

use super::session::{CallError, Contexts, Exec, Lane, Order};
use crate::runtime::NodeHandle;
use bytes::Bytes;
use quorate_core::{Op, Output, ReadMode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// The session timeout of a connection that did not choose one, as ZooKeeper clients' usual.
pub const SESSION_TIMEOUT_DEFAULT_MS: u64 = 10_000;
/// The shortest session timeout `CLIENT SESSIONTIMEOUT` takes: renewals every third of it
/// must still fit a round through the leader.
pub const SESSION_TIMEOUT_MIN_MS: u64 = 300;
/// The longest session timeout `CLIENT SESSIONTIMEOUT` takes (a day).
pub const SESSION_TIMEOUT_MAX_MS: u64 = 86_400_000;
/// Pause before the next renewal after one failed (no leader, a timeout).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(250);

/// A connection's session lease; clones share it.
#[derive(Clone)]
pub struct SessionLease(Arc<Shared>);

struct Shared {
    /// Held by an ephemeral write from reading `id` to its write, and by the close.
    grant: tokio::sync::Mutex<()>,
    /// The lease id; 0: none (lease ids start at 1).
    id: AtomicU64,
    timeout_ms: AtomicU64,
    /// The connection is closing: no more grants.
    closed: AtomicBool,
    keeper: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Forgets lease `id` if it is still the one held.
    fn forget(&self, id: u64) {
        let _ = self
            .id
            .compare_exchange(id, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

impl Drop for Shared {
    /// The connection's handler is gone without closing (the node shuts down): stop renewing.
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.get_mut().expect("keeper lock").take() {
            keeper.abort();
        }
    }
}

impl Default for SessionLease {
    fn default() -> Self {
        SessionLease(Arc::new(Shared {
            grant: tokio::sync::Mutex::new(()),
            id: AtomicU64::new(0),
            timeout_ms: AtomicU64::new(SESSION_TIMEOUT_DEFAULT_MS),
            closed: AtomicBool::new(false),
            keeper: Mutex::new(None),
        }))
    }
}

impl std::fmt::Debug for SessionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLease")
            .field("id", &self.id())
            .field("timeout_ms", &self.timeout_ms())
            .finish()
    }
}

impl SessionLease {
    /// The session lease's id (`CLIENT LEASE`), if one is held.
    pub fn id(&self) -> Option<u64> {
        match self.0.id.load(Ordering::SeqCst) {
            0 => None,
            id => Some(id),
        }
    }

    pub fn timeout_ms(&self) -> u64 {
        self.0.timeout_ms.load(Ordering::SeqCst)
    }

    /// `CLIENT SESSIONTIMEOUT ms`: only before the lease is granted (its time to live is fixed
    /// at the grant).
    pub fn set_timeout_ms(&self, ms: u64) -> Result<(), String> {
        if !(SESSION_TIMEOUT_MIN_MS..=SESSION_TIMEOUT_MAX_MS).contains(&ms) {
            return Err(format!(
                "ERR the session timeout must be between {SESSION_TIMEOUT_MIN_MS} and \
                 {SESSION_TIMEOUT_MAX_MS} milliseconds"
            ));
        }
        if let Some(id) = self.id() {
            return Err(format!(
                "ERR the session lease {id} is already granted with a timeout of {} ms; set \
                 the timeout before the first SET ... EPHEMERAL",
                self.timeout_ms()
            ));
        }
        self.0.timeout_ms.store(ms, Ordering::SeqCst);
        Ok(())
    }

    /// `SET key value EPHEMERAL`: writes the key attached to the session lease, granting the
    /// lease first when there is none (or the one held turned out to be gone); an error is
    /// the command's answer.
    pub async fn put(&self, exec: &mut Exec, key: Bytes, value: Bytes) -> Result<(), CallError> {
        let _serialized = self.0.grant.lock().await;
        for _ in 0..2 {
            if self.0.closed.load(Ordering::SeqCst) {
                return Err(CallError::Rejected("the connection is closing".into()));
            }
            let id = match self.id() {
                Some(id) => id,
                None => self.grant(exec).await?,
            };
            let op = Op::PutLeased {
                key: key.clone(),
                value: value.clone(),
                lease: id,
                now: None,
            };
            match exec.write(op).await? {
                Output::Existed(true) => return Ok(()),
                // Expired since its last renewal: forget it and grant a new one.
                Output::Existed(false) => self.forget(id),
                other => return Err(super::cmd::unexpected(other)),
            }
        }
        Err(CallError::Rejected(
            "the session lease ended right after it was granted; is the session timeout \
             shorter than a round through the leader?"
                .into(),
        ))
    }

    async fn grant(&self, exec: &mut Exec) -> Result<u64, CallError> {
        let ttl_ms = self.timeout_ms();
        let view = match exec.write(Op::LeaseGrant { ttl_ms, now: None }).await? {
            Output::Lease(Some(view)) => view,
            other => return Err(super::cmd::unexpected(other)),
        };
        self.0.id.store(view.id, Ordering::SeqCst);
        let keeper = tokio::spawn(keep_alive(
            Arc::downgrade(&self.0),
            exec.node.clone(),
            view.id,
            ttl_ms,
        ));
        if let Some(old) = self.0.keeper.lock().expect("keeper lock").replace(keeper) {
            old.abort();
        }
        debug!(
            lease = view.id,
            ttl_ms, "granted a connection's session lease"
        );
        Ok(view.id)
    }

    fn forget(&self, id: u64) {
        self.0.forget(id);
    }

    /// The connection closed: stop renewing and revoke the lease, removing its keys now.
    /// Waits for an ephemeral write in progress, so none grants a lease after this.
    pub async fn close(&self, node: &NodeHandle) {
        let _serialized = self.0.grant.lock().await;
        self.0.closed.store(true, Ordering::SeqCst);
        if let Some(keeper) = self.0.keeper.lock().expect("keeper lock").take() {
            keeper.abort();
        }
        let id = self.0.id.swap(0, Ordering::SeqCst);
        if id == 0 {
            return;
        }
        let mut exec = side_exec(node);
        match exec.write(Op::LeaseRevoke { lease: id }).await {
            Ok(Output::Lease(Some(view))) => {
                debug!(
                    lease = id,
                    keys = view.keys.len(),
                    "revoked a closed connection's session lease"
                )
            }
            Ok(_) => debug!(
                lease = id,
                "a closed connection's session lease was already gone"
            ),
            // It runs out by itself within the session timeout.
            Err(e) => info!(
                lease = id,
                "could not revoke a closed connection's session lease: {e:?}"
            ),
        }
    }
}

/// An [`Exec`] of its own session, for requests no client command asked for.
fn side_exec(node: &NodeHandle) -> Exec {
    Exec {
        node: node.clone(),
        lane: Lane::fresh(false),
        read_mode: ReadMode::Linearizable,
        order: Order::default(),
        contexts: Contexts::default(),
        session_lease: None,
    }
}

/// Renews lease `id` every `ttl_ms`/3 while the connection lives (while `shared` does, and
/// until the close aborts it); stops when a renewal finds the lease gone.
async fn keep_alive(shared: Weak<Shared>, node: NodeHandle, id: u64, ttl_ms: u64) {
    let period = Duration::from_millis(ttl_ms / 3);
    let mut exec = side_exec(&node);
    let mut pause = period;
    loop {
        tokio::time::sleep(pause).await;
        if shared.strong_count() == 0 {
            return;
        }
        match exec
            .write(Op::LeaseKeepAlive {
                lease: id,
                now: None,
            })
            .await
        {
            Ok(Output::Lease(Some(_))) => pause = period,
            Ok(Output::Lease(None)) => {
                info!(lease = id, "a connection's session lease ended before its renewal: its ephemeral keys are gone");
                if let Some(shared) = shared.upgrade() {
                    shared.forget(id);
                }
                return;
            }
            Ok(other) => {
                debug!(lease = id, "unexpected answer to a keep-alive: {other:?}");
                pause = RETRY_AFTER_FAILURE.min(period);
            }
            Err(e) => {
                debug!(lease = id, "a keep-alive failed, retrying: {e:?}");
                pause = RETRY_AFTER_FAILURE.min(period);
            }
        }
    }
}
