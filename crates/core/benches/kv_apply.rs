//! What applying one command costs the state machine, and how much of it is the change
//! feed's bookkeeping (`KvStore::apply` records every change for watchers; `apply_op` is the
//! bare state change).
//!
//! `cargo bench -p quorate-core --bench kv_apply`. A store of 10,000 keys (16-byte keys,
//! 100-byte values); each iteration overwrites one of them (cycling), so the recorded window
//! is full and evicting, as on a busy node. Compare `apply` with `apply_op` on the same
//! operation: the difference is the per-write cost of the feed. Also a `SET … LEASE` write
//! and a plain `GET`, for scale.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use quorate_core::{ClientId, Command, KvStore, Op, Time};

const KEYS: usize = 10_000;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i:012}"))
}

fn store() -> KvStore {
    let mut kv = KvStore::default();
    let value = Bytes::from(vec![b'v'; 100]);
    for i in 0..KEYS {
        kv.apply_op(&Op::Put {
            key: key(i),
            value: value.clone(),
        });
    }
    kv
}

fn puts() -> Vec<Op> {
    let value = Bytes::from(vec![b'w'; 100]);
    (0..KEYS)
        .map(|i| Op::Put {
            key: key(i),
            value: value.clone(),
        })
        .collect()
}

/// `op` as a logged command with request number 0.
fn command(op: Op) -> Command {
    Command {
        client: ClientId(1),
        seq: 0,
        op,
    }
}

fn bench(c: &mut Criterion) {
    let ops = puts();
    let mut group = c.benchmark_group("kv_apply");
    let (mut kv, mut n) = (store(), 0usize);
    group.bench_function("put, apply_op (no feed)", |b| {
        b.iter(|| {
            n = (n + 1) % KEYS;
            black_box(kv.apply_op(&ops[n]))
        })
    });
    let (mut kv, mut n) = (store(), 0usize);
    group.bench_function("put, apply (feed recorded)", |b| {
        b.iter(|| {
            n = (n + 1) % KEYS;
            black_box(kv.apply(&command(ops[n].clone())))
        })
    });
    let (mut kv, mut n) = (store(), 0usize);
    let granted = kv.apply_op(&Op::LeaseGrant {
        ttl_ms: u64::MAX / 4_000_000,
        now: Some(Time::ZERO),
    });
    let lease = match granted {
        quorate_core::Output::Lease(Some(view)) => view.id,
        other => panic!("grant answered {other:?}"),
    };
    let value = Bytes::from(vec![b'l'; 100]);
    let leased: Vec<Op> = (0..KEYS)
        .map(|i| Op::PutLeased {
            key: key(i),
            value: value.clone(),
            lease,
            now: Some(Time::ZERO),
        })
        .collect();
    group.bench_function("put leased, apply (feed recorded)", |b| {
        b.iter(|| {
            n = (n + 1) % KEYS;
            black_box(kv.apply(&command(leased[n].clone())))
        })
    });
    let (kv, mut n) = (store(), 0usize);
    let gets: Vec<Op> = (0..KEYS).map(|i| Op::Get { key: key(i) }).collect();
    group.bench_function("get, read", |b| {
        b.iter(|| {
            n = (n + 1) % KEYS;
            black_box(kv.read(&gets[n]))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
