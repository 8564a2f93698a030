//! Moving a [`KvStore`] between nodes in bounded pieces.
//!
//! A lagging replica that needs the whole state (Raft's InstallSnapshot, ZAB's SNAP) should not
//! force either side to hold a second, serialized copy of the store, and the sender should not
//! need to know the total size before it starts. [`KvStore::chunk`] cuts the store into
//! [`KvChunk`]s of about `bytes_max` bytes each, walking it in a fixed order from a
//! [`KvCursor`]: first the client sessions (in client order), then the key-value pairs (in key
//! order). The receiver feeds the chunks, in order, to a [`KvBuilder`], which rebuilds the store
//! incrementally; the last chunk is the one after which `chunk` returned no cursor.
//!
//! Memory: the sender materializes one chunk at a time (the store itself is shared, not
//! copied); the receiver holds the store being rebuilt plus the chunk in hand.

use super::{Key, KvStore, Session, Value};
use crate::ids::ClientId;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// Where a chunked walk of a store stands. Start with [`KvCursor::Start`]; otherwise treat it as
/// opaque and hand back what [`KvStore::chunk`] returned.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum KvCursor {
    /// Nothing sent yet.
    Start,
    /// Sessions up to and including this client were sent.
    AfterSession(ClientId),
    /// Every session, and the pairs up to and including this key, were sent.
    AfterKey(Key),
}

/// One piece of a store in transit.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct KvChunk {
    /// The store's session bound and logical clock, repeated in every chunk so that any chunk
    /// can start a rebuild.
    sessions_max: usize,
    tick: u64,
    sessions: Vec<(ClientId, Session)>,
    pairs: Vec<(Key, Value)>,
    /// The deadlines of this chunk's pairs that expire.
    #[serde(default)]
    deadlines: Vec<(Key, Time)>,
    /// The store's `WATCH` change counters (see [`super::txn`]), repeated in every chunk.
    change_count: u64,
    last_removed: u64,
    /// The revision of each of this chunk's pairs, in pair order.
    last_changed: Vec<u64>,
    /// The store's revision (see [`super::changes`]), repeated like `tick`.
    #[serde(default)]
    revision: u64,
    /// The store's leases (see [`super::lease`]), in the first chunk only, and the count of
    /// leases granted, repeated like `tick`.
    #[serde(default)]
    leases: Vec<(u64, super::lease::Lease)>,
    #[serde(default)]
    leases_granted: u64,
}

/// Bytes a session is assumed to take in transit (ids, counters, the remembered output).
const SESSION_BYTES: usize = 48;
/// Per-pair overhead in transit, beyond the key and value bytes.
const PAIR_BYTES: usize = 16;

impl KvChunk {
    /// Sessions and pairs in this chunk.
    pub fn items(&self) -> usize {
        self.sessions.len() + self.pairs.len()
    }

    /// Approximate size in transit, in bytes.
    pub fn size_bytes(&self) -> usize {
        let sessions: usize = self.sessions.iter().map(|(_, s)| session_bytes(s)).sum();
        let pairs: usize = self.pairs.iter().map(|(k, v)| pair_bytes(k, v)).sum();
        sessions + pairs
    }
}

fn session_bytes(session: &Session) -> usize {
    let output = match &session.last_output {
        super::Output::Value(Some(value)) => value.len(),
        _ => 0,
    };
    SESSION_BYTES + output
}

fn pair_bytes(key: &Key, value: &Value) -> usize {
    PAIR_BYTES + key.len() + value.len()
}

impl KvStore {
    /// The chunk that starts at `from`: sessions and pairs in walk order until the chunk holds
    /// at least `bytes_max` bytes (and at least one item, unless the store is exhausted).
    /// Returns the cursor of the next chunk, or `None` when this chunk is the last.
    pub fn chunk(&self, from: &KvCursor, bytes_max: usize) -> (KvChunk, Option<KvCursor>) {
        let mut chunk = KvChunk {
            sessions_max: self.sessions_max,
            tick: self.tick,
            revision: self.revision,
            sessions: Vec::new(),
            pairs: Vec::new(),
            deadlines: Vec::new(),
            change_count: self.change_count,
            last_removed: self.last_removed,
            last_changed: Vec::new(),
            leases: Vec::new(),
            leases_granted: self.leases_granted,
        };
        if *from == KvCursor::Start {
            chunk.leases = self.leases.iter().map(|(id, l)| (*id, l.clone())).collect();
        }
        let mut size = 0usize;
        let session_start = match from {
            KvCursor::Start => Some(Bound::Unbounded),
            KvCursor::AfterSession(client) => Some(Bound::Excluded(*client)),
            KvCursor::AfterKey(_) => None,
        };
        if let Some(start) = session_start {
            let mut sessions = self.sessions.range((start, Bound::Unbounded)).peekable();
            while let Some((client, session)) = sessions.next() {
                chunk.sessions.push((*client, session.clone()));
                size += session_bytes(session);
                let more = sessions.peek().is_some() || !self.data.is_empty();
                if size >= bytes_max && more {
                    return (chunk, Some(KvCursor::AfterSession(*client)));
                }
            }
        }
        let pair_start = match from {
            KvCursor::AfterKey(key) => Bound::Excluded(key.clone()),
            _ => Bound::Unbounded,
        };
        let mut pairs = self.data.range((pair_start, Bound::Unbounded)).peekable();
        while let Some((key, value)) = pairs.next() {
            chunk.pairs.push((key.clone(), value.clone()));
            chunk.last_changed.push(self.revision_of(key));
            if let Some(deadline) = self.own_deadline(key) {
                chunk.deadlines.push((key.clone(), deadline));
            }
            size += pair_bytes(key, value);
            if size >= bytes_max && pairs.peek().is_some() {
                return (chunk, Some(KvCursor::AfterKey(key.clone())));
            }
        }
        (chunk, None)
    }

    /// True when the store remembers a session for `client`.
    pub fn has_session(&self, client: ClientId) -> bool {
        self.sessions.contains_key(&client)
    }
}

/// Rebuilds a store from its chunks, fed in walk order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct KvBuilder {
    store: Option<KvStore>,
    chunks: u64,
}

impl KvBuilder {
    pub fn new() -> KvBuilder {
        KvBuilder::default()
    }

    /// Chunks received so far.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Adds the next chunk.
    ///
    /// # Panics
    /// If the chunk's items do not continue the walk order (a chunk delivered out of order is
    /// the caller's mistake: transports number their chunks).
    pub fn push(&mut self, chunk: KvChunk) {
        let store = self.store.get_or_insert_with(|| {
            let mut store = KvStore::new(chunk.sessions_max);
            store.tick = chunk.tick;
            store.revision = chunk.revision;
            store
        });
        for (client, session) in chunk.sessions {
            assert!(
                store.data.is_empty(),
                "a session chunk after the pairs started"
            );
            if let Some((last, _)) = store.sessions.last_key_value() {
                assert!(*last < client, "session chunks out of order");
            }
            store.lru.insert(session.used, client);
            store.sessions.insert(client, session);
        }
        assert_eq!(
            chunk.pairs.len(),
            chunk.last_changed.len(),
            "a change count per pair"
        );
        for (key, deadline) in chunk.deadlines {
            store.set_deadline(&key, Some(deadline));
        }
        store.leases_granted = chunk.leases_granted;
        for (id, lease) in chunk.leases {
            store.restore_lease(id, lease);
        }
        for ((key, value), changed) in chunk.pairs.into_iter().zip(chunk.last_changed) {
            if let Some((last, _)) = store.data.last_key_value() {
                assert!(*last < key, "pair chunks out of order");
            }
            store.insert_data(&key, value);
            store.last_changed.insert(key, changed);
        }
        // Rebuilding counted changes of its own: the sender's counters replace them.
        store.change_count = chunk.change_count;
        store.last_removed = chunk.last_removed;
        self.chunks += 1;
    }

    /// The rebuilt store (an empty one if no chunk arrived).
    pub fn finish(self) -> KvStore {
        let store = self.store.unwrap_or_default();
        assert_eq!(
            store.sessions.len(),
            store.lru.len(),
            "sessions and lru agree"
        );
        assert_eq!(
            store.last_changed.len(),
            store.len(),
            "a change count per key"
        );
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, Op};
    use bytes::Bytes;

    fn store(pairs: usize, sessions: u64) -> KvStore {
        let mut kv = KvStore::new(1000);
        for client in 1..=sessions {
            let put = Op::Put {
                key: Bytes::from(format!("s{client}")),
                value: Bytes::from("v"),
            };
            kv.apply(&Command {
                client: ClientId(client),
                seq: 1,
                op: put,
            });
        }
        for k in 0..pairs {
            let key = Bytes::from(format!("k{k:04}"));
            let value = Bytes::from(vec![b'x'; k % 50]);
            // Every third key expires: deadlines travel with their pairs.
            kv.apply_op(&match k % 3 {
                0 => Op::PutExpiring {
                    key,
                    value,
                    expiry: crate::kv::Expiry::At {
                        deadline: Time::from_nanos(k as u64),
                    },
                },
                _ => Op::Put { key, value },
            });
        }
        kv
    }

    fn transfer(kv: &KvStore, bytes_max: usize) -> (KvStore, usize, usize) {
        let mut builder = KvBuilder::new();
        let mut cursor = KvCursor::Start;
        let mut largest = 0;
        let mut chunks = 0;
        loop {
            let (chunk, next) = kv.chunk(&cursor, bytes_max);
            largest = largest.max(chunk.size_bytes());
            chunks += 1;
            builder.push(chunk);
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        (builder.finish(), chunks, largest)
    }

    #[test]
    fn a_store_survives_a_chunked_transfer_exactly() {
        for (pairs, sessions, bytes_max) in
            [(0, 0, 64), (1, 0, 1), (300, 40, 256), (50, 5, 1 << 20)]
        {
            let kv = store(pairs, sessions);
            let (rebuilt, chunks, largest) = transfer(&kv, bytes_max);
            assert_eq!(
                rebuilt, kv,
                "{pairs} pairs, {sessions} sessions, {bytes_max} bytes"
            );
            // A chunk overshoots its budget by at most one item.
            assert!(
                largest < bytes_max + SESSION_BYTES + PAIR_BYTES + 64,
                "{largest}"
            );
            if pairs + sessions as usize > 0 && bytes_max == 1 {
                assert_eq!(chunks, pairs + sessions as usize, "one item per chunk");
            }
        }
    }

    #[test]
    fn a_rebuilt_store_keeps_deduplicating_and_evicting() {
        let kv = store(10, 3);
        let (mut rebuilt, _, _) = transfer(&kv, 40);
        let retry = Command {
            client: ClientId(2),
            seq: 1,
            op: Op::Put {
                key: Bytes::from("s2"),
                value: Bytes::from("other"),
            },
        };
        assert!(matches!(
            rebuilt.apply(&retry),
            super::super::Applied::Cached(_)
        ));
        assert!(rebuilt.has_session(ClientId(3)));
        assert!(!rebuilt.has_session(ClientId(4)));
    }

    #[test]
    fn chunks_count_their_items_and_weigh_what_they_carry() {
        // Sessions only (no pairs), one remembering a large read: the walk must end after the
        // last session, and the read's value counts towards its chunk's size.
        let mut kv = KvStore::default();
        let big = Bytes::from(vec![b'x'; 100]);
        kv.apply_op(&Op::Put {
            key: Bytes::from("k"),
            value: big.clone(),
        });
        let get = |client| Command {
            client: ClientId(client),
            seq: 1,
            op: Op::Get {
                key: Bytes::from("k"),
            },
        };
        kv.apply(&get(1));
        kv.apply(&get(2));
        kv.apply_op(&Op::Delete {
            key: Bytes::from("k"),
        });
        let mut builder = KvBuilder::new();
        let mut cursor = KvCursor::Start;
        let mut sizes = Vec::new();
        loop {
            let (chunk, next) = kv.chunk(&cursor, 1);
            assert_eq!(chunk.items(), 1, "one item per chunk under a 1-byte budget");
            sizes.push(chunk.size_bytes());
            builder.push(chunk);
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        assert_eq!(
            builder.chunks(),
            2,
            "one chunk per session, none empty after"
        );
        assert_eq!(sizes, [SESSION_BYTES + big.len(); 2]);
        assert_eq!(builder.finish(), kv);
        // A pair weighs its overhead, key and value.
        let mut kv = KvStore::default();
        kv.apply_op(&Op::Put {
            key: Bytes::from("k"),
            value: big.clone(),
        });
        let (chunk, next) = kv.chunk(&KvCursor::Start, 1 << 20);
        assert_eq!((chunk.items(), next), (1, None));
        assert_eq!(chunk.size_bytes(), PAIR_BYTES + 1 + big.len());
    }

    #[test]
    fn a_chunk_fills_its_budget_before_it_ends() {
        let kv = store(40, 0);
        let total = kv.chunk(&KvCursor::Start, usize::MAX).0.size_bytes();
        let (_, chunks, _) = transfer(&kv, 256);
        // Every chunk but the last holds at least 256 bytes.
        assert!(
            chunks <= total / 256 + 1,
            "{chunks} chunks for {total} bytes"
        );
    }
}
