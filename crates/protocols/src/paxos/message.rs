//! Ballots, wire messages and durable records of single-decree Paxos.

use quorate_core::{Durable, Key, NodeId, Value};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A proposal number ("ballot"): totally ordered, and unique because it carries the id of the
/// node that issued it. Ordered by `round`, then by `node` (the field order matters for the
/// derived `Ord`). Paxos Made Simple §2.5: "different proposers choose their numbers from
/// disjoint sets of numbers".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    /// Below every ballot a proposer can issue (rounds start at 1): "promised nothing yet".
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };

    pub fn new(round: u64, node: NodeId) -> Ballot {
        Ballot { round, node }
    }
}

impl Default for Ballot {
    fn default() -> Self {
        Ballot::ZERO
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// A value an acceptor accepted, with the ballot that proposed it (a "pvalue" minus the slot).
pub type AcceptedValue = (Ballot, Value);

/// The messages of single-decree Paxos. Every message names the register (`key`) whose
/// instance it belongs to; instances of different keys share nothing else.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a: "promise not to accept ballots below `ballot`, and tell me what you accepted".
    Prepare { key: Key, ballot: Ballot },
    /// Phase 1b: the promise, with the highest-ballot value this acceptor accepted, if any.
    Promise {
        key: Key,
        ballot: Ballot,
        accepted: Option<AcceptedValue>,
    },
    /// Phase 2a: "accept `value` in `ballot`".
    Accept {
        key: Key,
        ballot: Ballot,
        value: Value,
    },
    /// Phase 2b, sent by an acceptor to every learner: it accepted `value` in `ballot`.
    Accepted {
        key: Key,
        ballot: Ballot,
        value: Value,
    },
    /// The acceptor refused `ballot` because it promised `promised` (Paxos Made Simple §2.5:
    /// an acceptor "should probably inform the proposer" so it can stop and try higher).
    Nack {
        key: Key,
        ballot: Ballot,
        promised: Ballot,
    },
    /// The sender knows `value` was chosen: the answer a node that learned the decision gives
    /// to any later Prepare or Accept, so that stragglers learn in one round trip.
    Chosen { key: Key, value: Value },
}

impl Message {
    pub fn key(&self) -> &Key {
        match self {
            Message::Prepare { key, .. }
            | Message::Promise { key, .. }
            | Message::Accept { key, .. }
            | Message::Accepted { key, .. }
            | Message::Nack { key, .. }
            | Message::Chosen { key, .. } => key,
        }
    }
}

/// Durable state. Everything an acceptor promises or accepts is a record, persisted before the
/// reply that depends on it leaves (the driver enforces the barrier).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// The proposer's highest round so far, persisted before its Prepare is sent, so that a
    /// restarted proposer never issues the same ballot twice (two different values proposed
    /// under one ballot would break the acceptors' reasoning).
    Round(u64),
    /// An acceptor's whole state for one register.
    Acceptor {
        key: Key,
        promised: Ballot,
        accepted: Option<AcceptedValue>,
    },
    /// A learner's decision, so that it decides at most once even across restarts.
    Chosen { key: Key, value: Value },
}

impl Durable for Record {
    fn is_checkpoint(&self) -> bool {
        false
    }
}
