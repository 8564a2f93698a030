//! A bounded table of client sessions for coordinators that are not a replicated log.
//!
//! A client retries a request with the same session and sequence number; the node that first
//! handled it must answer the retry without doing the work twice (an increment applied twice
//! is visibly wrong). [`SessionTable`] remembers, per client, the latest request and what the
//! node needs to answer its retry, evicting the least recently used client beyond `max`.

use quorate_core::ClientId;
use std::collections::BTreeMap;

/// Per client, the latest request's `seq` and a `T` to answer its retries.
#[derive(Clone, Debug)]
pub struct SessionTable<T> {
    latest: BTreeMap<ClientId, (u64, T, u64)>,
    /// Clients by last use: the eviction order.
    lru: BTreeMap<u64, ClientId>,
    tick: u64,
    max: usize,
}

impl<T: Clone> SessionTable<T> {
    pub fn new(max: usize) -> SessionTable<T> {
        assert!(max > 0, "a session table holds at least one session");
        SessionTable {
            latest: BTreeMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            max,
        }
    }

    /// The latest request of `client`: its `seq` and what was remembered.
    pub fn get(&self, client: ClientId) -> Option<(u64, &T)> {
        self.latest.get(&client).map(|(seq, t, _)| (*seq, t))
    }

    pub fn insert(&mut self, client: ClientId, seq: u64, remembered: T) {
        self.tick += 1;
        if let Some((_, _, used)) = self.latest.insert(client, (seq, remembered, self.tick)) {
            self.lru.remove(&used);
        }
        self.lru.insert(self.tick, client);
        while self.latest.len() > self.max {
            let (_, oldest) = self.lru.pop_first().expect("lru tracks every session");
            self.latest.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Every session, in client order (for checkpoints).
    pub fn iter(&self) -> impl Iterator<Item = (ClientId, u64, &T)> {
        self.latest.iter().map(|(c, (seq, t, _))| (*c, *seq, t))
    }

    /// Asserts the table's bookkeeping.
    pub fn check_invariants(&self) {
        assert!(self.latest.len() <= self.max, "sessions over their bound");
        assert_eq!(
            self.latest.len(),
            self.lru.len(),
            "lru tracks every session"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_session_is_evicted() {
        let mut table = SessionTable::new(2);
        table.insert(ClientId(1), 1, "a");
        table.insert(ClientId(2), 1, "b");
        table.insert(ClientId(1), 2, "c");
        table.insert(ClientId(3), 1, "d");
        assert_eq!(table.get(ClientId(1)), Some((2, &"c")));
        assert_eq!(table.get(ClientId(2)), None);
        assert_eq!(table.len(), 2);
        table.check_invariants();
    }
}
