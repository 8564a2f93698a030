//! Test-only: picking one kind of effect out of what a node produced, for every protocol's
//! scenario tests.

use quorate_core::{Effect, NodeId, Protocol, Reply};

/// The messages sent, in order, with their destinations.
pub fn sends<P: Protocol>(effects: &[Effect<P>]) -> Vec<(NodeId, P::Message)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

/// The records persisted, in order.
pub fn persists<P: Protocol>(effects: &[Effect<P>]) -> Vec<P::Record> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

/// The client replies, in order.
pub fn replies<P: Protocol>(effects: &[Effect<P>]) -> Vec<Reply> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(reply) => Some(reply.clone()),
            _ => None,
        })
        .collect()
}
