//! `INFO [section]`: the node as an operator sees it, in Redis's `key:value` text.
//!
//! Sections: `server` (version, protocol, ids, addresses), `replication` (role, term or
//! epoch, leader and its client address, commit/applied/last index), `clients`.

use super::Parse;
use crate::resp::frame::Frame;
use crate::runtime::NodeHandle;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

#[derive(Debug)]
pub struct Info {
    section: Option<String>,
}

impl Info {
    pub fn parse(parse: &mut Parse) -> Result<Info, Frame> {
        let section = parse
            .optional()
            .map(|s| String::from_utf8_lossy(&s).to_ascii_lowercase());
        Ok(Info { section })
    }

    pub fn reply(self, node: &NodeHandle) -> Frame {
        let wants = |name: &str| match self.section.as_deref() {
            None | Some("all") | Some("default") | Some("everything") => true,
            Some(section) => section == name,
        };
        let config = &node.config;
        let mut out = String::new();
        if wants("server") {
            let _ = write!(
                out,
                "# Server\r\nquorate_version:{}\r\nprotocol:{}\r\ncluster_id:{}\r\nnode_id:{}\r\nclient_addr:{}\r\nprocess_id:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                config.protocol,
                config.cluster_id,
                config.id,
                config.client_addr,
                std::process::id()
            );
        }
        if wants("replication") {
            if let Some(status) = node.metrics.status() {
                let leader = status.leader.map_or(String::new(), |l| l.0.to_string());
                let leader_addr = status
                    .leader
                    .and_then(|l| node.peers.client_addr_of(l))
                    .map_or(String::new(), |a| a.to_string());
                let _ = write!(
                    out,
                    "# Replication\r\nrole:{}\r\nterm:{}\r\nleader_id:{leader}\r\nleader_addr:{leader_addr}\r\ncommit_index:{}\r\napplied_index:{}\r\nlast_index:{}\r\nmembers:{}\r\n\r\n",
                    status.role,
                    status.term,
                    status.commit_index,
                    status.applied_index,
                    status.last_index,
                    config.peers.len()
                );
            }
        }
        if wants("clients") {
            let connected = node.metrics.client_connections.load(Ordering::Relaxed);
            let _ = write!(out, "# Clients\r\nconnected_clients:{connected}\r\n\r\n");
        }
        Frame::Bulk(out.into())
    }
}
