//! Issue 23: a key's state, its replication messages and a session's causal context stay
//! bounded by the replicas and the concurrent siblings, however many writes the key has had.
//!
//! Each test writes 10,000 times to one key and measures, in the server's wire format
//! (postcard), the entry every replica holds, every replication message, and the context a
//! session keeps (the join of every context it was answered with, as the RESP front end's
//! `Contexts` keeps it). The sizes after 10,000 writes must be those after the first 1,000
//! (give or take the bytes a dot's counter grows by), and within a budget of a few dozen
//! bytes per sibling and per replica. Before the fix (issue 23), one session's context gained
//! a dot per write (29,877 bytes after 10,000 writes) and with 64 sessions every sibling kept
//! its writer's growing context (an entry of 30,275 bytes, shipped whole on every write).

use super::*;
use bytes::Bytes;
use quorate_core::clock::CausalContext;
use quorate_core::{Effect, Op, ReadMode, Request};

const WRITES: usize = 10_000;
const WARM_UP: usize = 1_000;

fn size<T: serde::Serialize>(value: &T) -> usize {
    postcard::to_stdvec(value).expect("serializable").len()
}

/// The largest of each size seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sizes {
    entry: usize,
    message: usize,
    context: usize,
    siblings: usize,
}

impl Sizes {
    fn max(&mut self, other: Sizes) {
        self.entry = self.entry.max(other.entry);
        self.message = self.message.max(other.message);
        self.context = self.context.max(other.context);
        self.siblings = self.siblings.max(other.siblings);
    }
}

struct Cluster {
    nodes: Vec<MultiPrimary>,
    now: u64,
}

impl Cluster {
    fn new(config: MultiPrimaryConfig) -> Cluster {
        let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let nodes = members
            .iter()
            .map(|id| {
                let mut node = MultiPrimary::new(*id, &members, config.clone());
                let mut out = Effects::new();
                node.step(Time::ZERO, Input::Start { recovered: vec![] }, &mut out);
                node
            })
            .collect();
        Cluster { nodes, now: 0 }
    }

    /// Session `client` writes `value` at node `at` with its context; every replication
    /// message is delivered at once. Returns the answer and the largest message's size.
    fn write(
        &mut self,
        at: usize,
        client: u64,
        seq: u64,
        value: &str,
        context: &mut CausalContext,
    ) -> usize {
        self.now += 1_000;
        let op = Op::PutWithContext {
            key: Bytes::from_static(b"k"),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            context: context.clone(),
        };
        let request = Request {
            client: ClientId(client),
            seq,
            op,
            read: ReadMode::Linearizable,
            quorum: None,
        };
        let mut out = Effects::new();
        let now = Time::from_nanos(self.now);
        self.nodes[at].step(now, Input::Request(request), &mut out);
        self.nodes[at].check_invariants();
        let from = self.nodes[at].id();
        let mut largest = 0;
        for effect in out.drain() {
            match effect {
                Effect::Reply(reply) => match reply.result {
                    // As `session::Contexts::learn` does.
                    Ok(Output::Written { context: written }) => context.join(&written),
                    other => panic!("write refused: {other:?}"),
                },
                Effect::Send { to, msg } => {
                    largest = largest.max(size(&msg));
                    let node = &mut self.nodes[to.0 as usize - 1];
                    let mut ignored = Effects::new();
                    node.step(now, Input::Message { from, msg }, &mut ignored);
                    node.check_invariants();
                }
                _ => {}
            }
        }
        largest
    }

    fn sizes(&self, message: usize, context: &CausalContext) -> Sizes {
        let slot = Slot::Register(Bytes::from_static(b"k"));
        let mut sizes = Sizes {
            message,
            context: size(context),
            ..Sizes::default()
        };
        for node in &self.nodes {
            let entry = node.entry(&slot).expect("every replica holds the key");
            sizes.entry = sizes.entry.max(size(entry));
            if let Entry::Siblings(set) = entry {
                sizes.siblings = sizes.siblings.max(set.len());
            }
        }
        sizes
    }
}

/// Runs `WRITES` writes by `sessions` sessions taking turns, session `i` at node `i % 3`,
/// after one earlier blind write nobody ever reads (a previous connection's). Returns the
/// largest sizes during the warm-up and during the rest.
fn run(sessions: usize) -> (Sizes, Sizes) {
    let mut cluster = Cluster::new(MultiPrimaryConfig::default());
    let mut earlier = CausalContext::new();
    cluster.write(0, 1_000, 1, "earlier", &mut earlier);
    let mut contexts = vec![CausalContext::new(); sessions];
    let (mut warm, mut rest) = (Sizes::default(), Sizes::default());
    for i in 0..WRITES {
        let session = i % sessions;
        let seq = (i / sessions) as u64 + 1;
        let context = &mut contexts[session];
        let message = cluster.write(session % 3, session as u64, seq, "value", context);
        let sizes = cluster.sizes(message, context);
        if i < WARM_UP {
            warm.max(sizes);
        } else {
            rest.max(sizes);
        }
    }
    (warm, rest)
}

fn assert_bounded(sessions: usize) {
    let (warm, rest) = run(sessions);
    // Every session's latest write, and the earlier one: concurrent, all kept.
    assert_eq!(
        rest.siblings,
        sessions + 1,
        "siblings are the concurrent writes"
    );
    // Counters are varints: a dot's counter may take a byte more after 10,000 writes.
    let slack = 8;
    assert!(
        rest.entry <= warm.entry + slack
            && rest.message <= warm.message + slack
            && rest.context <= warm.context + slack,
        "{sessions} sessions: sizes grew with the key's history: first {WARM_UP} writes \
         {warm:?}, the next {} {rest:?}",
        WRITES - WARM_UP
    );
    // And in absolute terms: per sibling its dot and value, per replica a few ranges.
    let budget = 64 + 40 * rest.siblings + 64 * 3;
    assert!(
        rest.entry <= budget && rest.message <= budget && rest.context <= budget,
        "{sessions} sessions: {rest:?} beyond {budget} bytes"
    );
}

#[test]
fn one_session_writing_a_key_ten_thousand_times_stays_bounded() {
    assert_bounded(1);
}

#[test]
fn sixty_four_sessions_writing_a_key_ten_thousand_times_stay_bounded() {
    assert_bounded(64);
}

/// Blind writers add a sibling each, up to `max_siblings`; the next blind write is refused
/// (it did not happen) and counted, and a write whose context resolves siblings still goes
/// through.
#[test]
fn blind_writes_beyond_max_siblings_are_refused_and_a_resolving_write_is_not() {
    let config = MultiPrimaryConfig {
        max_siblings: 4,
        ..MultiPrimaryConfig::default()
    };
    let mut cluster = Cluster::new(config);
    for client in 0..4 {
        cluster.write(0, client, 1, "blind", &mut CausalContext::new());
    }
    let request = |client: u64, context: CausalContext| Request {
        client: ClientId(client),
        seq: 1,
        op: Op::PutWithContext {
            key: Bytes::from_static(b"k"),
            value: Some(Bytes::from_static(b"v")),
            context,
        },
        read: ReadMode::Linearizable,
        quorum: None,
    };
    let node = &mut cluster.nodes[0];
    let mut out = Effects::new();
    node.step(
        Time::ZERO,
        Input::Request(request(9, CausalContext::new())),
        &mut out,
    );
    let answers: Vec<_> = out.drain().collect();
    let refused = answers.iter().any(|e| {
        matches!(e, Effect::Reply(r)
            if matches!(&r.result, Err(ClientError::Rejected(why))
                if why.starts_with(SIBLING_LIMIT_REFUSAL)))
    });
    assert!(refused, "{answers:?}");
    assert!(
        !answers.iter().any(|e| matches!(e, Effect::Persist(_))),
        "a refused write changes nothing"
    );
    assert_eq!(node.stats().sibling_limit_refusals, 1);
    let slot = Slot::Register(Bytes::from_static(b"k"));
    let Some(Entry::Siblings(set)) = node.entry(&slot) else {
        panic!()
    };
    let everything = set.context();
    node.step(
        Time::ZERO,
        Input::Request(request(10, everything)),
        &mut out,
    );
    let Some(Entry::Siblings(set)) = node.entry(&slot) else {
        panic!()
    };
    assert_eq!(
        set.len(),
        1,
        "a write that saw every sibling replaces them all"
    );
}
