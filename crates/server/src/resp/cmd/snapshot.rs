//! `SNAPSHOT`: a backup of the replicated store, as one bulk string in the snapshot file format
//! (`quorate snapshot save` writes it to a file). Admin users only.
//!
//! The node copies its applied store at a linearizable point (see [`crate::backup`]) and
//! answers the encoded file. A node that does not lead answers `-MOVED 0 <leader's address>`
//! (whatever the follower mode: the copy must be taken where the read is served), or
//! `-TRYAGAIN` while no leader is known; a protocol without one replicated store (quorum,
//! multiprimary) answers why it has none.

use super::Parse;
use crate::backup::{self, Header};
use crate::resp::frame::Frame;
use crate::runtime::NodeHandle;
use quorate_core::ClientError;
use std::time::Duration;

#[derive(Debug)]
pub struct Snapshot;

impl Snapshot {
    pub fn parse(_: &mut Parse) -> Result<Snapshot, Frame> {
        Ok(Snapshot)
    }

    pub async fn execute(self, node: NodeHandle) -> Frame {
        let limit = Duration::from_millis(node.config.request_timeout_ms);
        let Some(answer) = node.snapshot().await else {
            return Frame::error("ERR the node is stopping");
        };
        let captured = match tokio::time::timeout(limit, answer).await {
            Ok(Ok(Ok(captured))) => captured,
            Ok(Ok(Err(e))) => return refusal(&node, e),
            Ok(Err(_)) => return Frame::error("ERR the node is stopping"),
            Err(_) => {
                return Frame::error(format!(
                    "TIMEOUT no linearizable read point within {limit:?} (no quorum?); nothing was saved"
                ))
            }
        };
        let config = &node.config;
        let header = Header {
            protocol: config.protocol.clone(),
            cluster_id: config.cluster_id.clone(),
            cluster_size: config.peers.len() as u64,
            node: config.id,
            index: captured.status.applied_index,
            term: captured.status.term,
            keys: 0,
            sessions: 0,
            created_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            quorate_version: env!("CARGO_PKG_VERSION").into(),
        };
        // Encoding a large store takes a while: not on the connection's worker.
        match tokio::task::spawn_blocking(move || backup::encode(header, &captured.store)).await {
            Ok(bytes) => Frame::Bulk(bytes.into()),
            Err(e) => Frame::error(format!("ERR encoding the snapshot failed: {e}")),
        }
    }
}

/// The answer when the node could not take the copy.
fn refusal(node: &NodeHandle, error: ClientError) -> Frame {
    if let Some(redirect) = super::to_leader(node, &error, "snapshots are taken") {
        return redirect;
    }
    match error {
        ClientError::Rejected(why) => Frame::error(format!(
            "ERR {} cannot take a snapshot: {why}",
            node.config.protocol
        )),
        other => Frame::error(format!(
            "TRYAGAIN no snapshot: {other}; try again once a leader is elected"
        )),
    }
}
