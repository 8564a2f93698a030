//! Identities of the actors in a cluster.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A replica of the cluster. Ids are small positive integers chosen by the operator
/// (`--id 1`, `--peers 1=...,2=...`); the simulator numbers nodes `1..=n`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A client session. Every request carries the session it belongs to and a sequence number,
/// which is what lets the state machine apply a retried write exactly once.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}
