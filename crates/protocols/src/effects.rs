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

/// The message `check_invariants` panics with on a copy of `node` that `corrupt` put into a
/// state an invariant forbids. Panics if no invariant fires.
pub fn invariant_fired<P: Protocol + Clone>(node: &P, corrupt: impl FnOnce(&mut P)) -> String {
    let mut node = node.clone();
    corrupt(&mut node);
    let check = std::panic::AssertUnwindSafe(|| node.check_invariants());
    let panic = std::panic::catch_unwind(check).expect_err("the invariant did not fire");
    let message = panic.downcast_ref::<&str>().map(|text| text.to_string());
    message
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .expect("a panic message")
}
