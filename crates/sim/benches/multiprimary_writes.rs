//! Issue 23: what one write to a multi-primary version-vector key costs after 100 and after
//! 10,000 earlier writes to it, by one session and by 64 taking turns (the done-when: the
//! 10,000th within 1.5x of the 100th).
//!
//! `cargo bench -p quorate-sim --bench multiprimary_writes`. One write is the coordinator's
//! step (apply, persist, answer, replicate) and both peers merging its replication message,
//! on a 3-node cluster, with the session's context kept as the RESP front end keeps it (the
//! join of every answer). Before the write, a blind write nobody reads left a sibling (a
//! previous connection's), which is what made every session's context grow before the fix.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use quorate_core::clock::CausalContext;
use quorate_core::{
    ClientId, Effect, Effects, Input, NodeId, Op, Output, Protocol, ReadMode, Request, Time,
};
use quorate_protocols::multiprimary::{MultiPrimary, MultiPrimaryConfig};

#[derive(Clone)]
struct Cluster {
    nodes: Vec<MultiPrimary>,
    contexts: Vec<CausalContext>,
    writes: u64,
}

impl Cluster {
    fn new(sessions: usize) -> Cluster {
        let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let nodes = members
            .iter()
            .map(|id| {
                let mut node = MultiPrimary::new(*id, &members, MultiPrimaryConfig::default());
                node.step(
                    Time::ZERO,
                    Input::Start { recovered: vec![] },
                    &mut Effects::new(),
                );
                node
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            contexts: vec![CausalContext::new(); sessions + 1],
            writes: 0,
        };
        cluster.write_as(sessions, 1); // The earlier connection's blind write.
        cluster
    }

    /// The next session in turn writes at its node; peers merge the replication at once.
    fn write(&mut self) {
        let sessions = self.contexts.len() - 1;
        let session = self.writes as usize % sessions;
        let seq = self.writes / sessions as u64 + 1;
        self.write_as(session, seq);
        self.writes += 1;
    }

    fn write_as(&mut self, session: usize, seq: u64) {
        let now = Time::from_nanos(1_000 * (self.writes + 1));
        let request = Request {
            client: ClientId(session as u64),
            seq,
            op: Op::PutWithContext {
                key: Bytes::from_static(b"key:__rand_int__"),
                value: Some(Bytes::from_static(b"xxx")),
                context: self.contexts[session].clone(),
            },
            read: ReadMode::Linearizable,
            quorum: None,
        };
        let at = session % 3;
        let mut out = Effects::new();
        self.nodes[at].step(now, Input::Request(request), &mut out);
        let from = self.nodes[at].id();
        for effect in out.drain() {
            match effect {
                Effect::Reply(reply) => match reply.result {
                    Ok(Output::Written { context }) => self.contexts[session].join(&context),
                    other => panic!("write refused: {other:?}"),
                },
                Effect::Send { to, msg } => {
                    let peer = &mut self.nodes[to.0 as usize - 1];
                    peer.step(now, Input::Message { from, msg }, &mut Effects::new());
                }
                _ => {}
            }
        }
    }
}

fn one_write_after_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("multiprimary_write");
    for sessions in [1, 64] {
        for history in [100u64, 10_000] {
            let mut cluster = Cluster::new(sessions);
            while cluster.writes < history - 1 {
                cluster.write();
            }
            let name = format!("{sessions}_sessions_write_{history}");
            group.bench_function(name, |b| {
                b.iter_batched(
                    || cluster.clone(),
                    |mut cluster| {
                        cluster.write();
                        cluster
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, one_write_after_history);
criterion_main!(benches);
