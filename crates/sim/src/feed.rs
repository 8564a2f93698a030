//! The change feed under faults: every simulated node runs the server's [`ChangeFeed`] over
//! its applied store, and the feed's promises are checked as the run goes.
//!
//! The server's runtime (`quorate-server`'s `watch.rs`) copies a node's applied store into a
//! [`ChangeFeed`] after every step and serves `XREAD` on `__changes__` from it. The simulator
//! does the same for every node of a protocol with one applied store
//! ([`Harness::applied_store`](crate::Harness::applied_store)): a feed per node, caught up
//! after each of its steps, a fresh feed at every start (a restarted server process starts
//! with an empty one), and a window that is the server's on half the seeds and a few dozen
//! changes on the others, so that compaction happens. [`FeedCheck`] then holds the feeds to
//! what `quorate_core::kv::changes` promises:
//!
//! - **Agreement**: a revision names the same command everywhere. The first node to emit a
//!   revision sets its changes in a cluster-wide map; every node emitting it later must emit
//!   exactly those (keys, events, values and their order `n`).
//! - **Contiguity**: within one feed (one incarnation of a node), each command's revision is
//!   the one after the last; only a feed that starts over (its store no longer holds what
//!   follows: a snapshot replaced it) may skip ahead, and no feed ever goes back.
//! - **Completeness**: at the end, every acknowledged write is in the cluster-wide map: a
//!   put, CAS or lock of value `v` as a `set` of `v`, an append as an `append` whose value is
//!   the key's previous one plus the suffix, a compare-and-delete as a `del` of a key that
//!   held the token. Writes that may change nothing (a plain delete, which may find the key
//!   absent) and failed ones are not looked for.
//! - **Resumable readers**: a few watchers read from one node's feed (`ChangeFeed::read`),
//!   remember the last revision they saw, and now and then reconnect to another node and
//!   resume there. What each receives must continue its stream exactly (the revision after
//!   its last, each command as in the map); a `Compacted` answer is a declared gap, counted,
//!   after which the watcher resumes from the oldest revision kept.
//!
//! The feeds draw from their own random stream (window sizes, which node a watcher reads and
//! when it reconnects) and schedule no events: a seed's run is the same with them as without.

use crate::rng::Rng;
use quorate_check::txn::Mop;
use quorate_check::{Event as HistoryEvent, EventKind, Mode, OpValue};
use quorate_core::kv::{Change, ChangeFeed, Compacted, Event};
use quorate_core::KvStore;
use std::collections::{BTreeMap, BTreeSet};

/// The server's default window (`change_window_max`, `change_window_bytes_max`).
pub const SERVER_WINDOW: (usize, usize) = (100_000, 64 << 20);
/// Watchers per run.
const WATCHERS: usize = 3;
/// A watcher reads once per this many node steps (taking turns).
const READ_EVERY: u64 = 16;
/// The chance that a watcher disconnects after a read and resumes at another node.
const RECONNECT: f64 = 0.1;

/// The cluster-wide record of what the feeds emitted, and the checks on it.
#[derive(Clone, Default)]
pub struct FeedCheck {
    /// Each revision's changes, as the first feed that emitted it did.
    cluster: BTreeMap<u64, Vec<Change>>,
    /// `Compacted` answers watchers were given (declared gaps).
    pub compacted_reads: u64,
    /// Watcher reads answered.
    pub reads: u64,
    /// Feeds that started over from a store that no longer held what followed them.
    pub starts_over: u64,
}

/// One feed's catch-up, as [`FeedCheck::caught_up`] judges it.
pub struct CatchUp<'c> {
    /// The feed's revision before (0: a fresh feed).
    pub before: u64,
    /// After.
    pub after: u64,
    /// Whether it copied on from `before` (false: it started over).
    pub continued: bool,
    /// The changes it emitted.
    pub fresh: &'c [Change],
}

impl FeedCheck {
    pub fn new() -> FeedCheck {
        FeedCheck::default()
    }

    /// The revisions emitted so far, each with its changes.
    pub fn revisions(&self) -> &BTreeMap<u64, Vec<Change>> {
        &self.cluster
    }

    /// Catches node `node`'s `feed` up with its applied `store`, as the server's runtime does
    /// after every step, and checks what it emitted (see [`FeedCheck::caught_up`]).
    pub fn catch_up(&mut self, node: u64, feed: &mut ChangeFeed, store: &KvStore) -> Vec<String> {
        let before = feed.revision();
        if store.revision() == before {
            return Vec::new();
        }
        let continued = feed.continues(store);
        let fresh = feed.catch_up(store);
        let step = CatchUp {
            before,
            after: feed.revision(),
            continued,
            fresh: &fresh,
        };
        self.caught_up(node, step)
    }

    /// Node `node`'s feed caught up: checks contiguity and agreement, and records the new
    /// revisions. Answers the violations found.
    pub fn caught_up(&mut self, node: u64, step: CatchUp<'_>) -> Vec<String> {
        let mut found = Vec::new();
        if step.after < step.before {
            found.push(format!(
                "change feed: n{node}'s feed went back from revision {} to {} (its store went \
                 back; watchers would see revisions again)",
                step.before, step.after
            ));
        }
        if !step.continued && step.before > 0 {
            self.starts_over += 1;
        }
        let mut last = step.before;
        for command in commands(step.fresh) {
            let revision = command[0].revision;
            let expected = last + 1;
            let gap_allowed = !step.continued && revision > last;
            if revision != expected && !gap_allowed {
                found.push(format!(
                    "change feed: n{node}'s feed emitted revision {revision} after {last} \
                     ({}; expected {expected})",
                    if revision <= last {
                        "a duplicate"
                    } else {
                        "a gap"
                    }
                ));
            }
            found.extend(numbering(node, command));
            found.extend(self.agree(&format!("n{node}'s feed"), command));
            last = revision;
        }
        if !step.fresh.is_empty() && last != step.after {
            found.push(format!(
                "change feed: n{node}'s feed is at revision {} but its last change is of {last}",
                step.after
            ));
        }
        found
    }

    /// Checks one command's changes against the map, recording them if they are new.
    fn agree(&mut self, who: &str, command: &[Change]) -> Option<String> {
        let revision = command[0].revision;
        match self.cluster.get(&revision) {
            None => {
                self.cluster.insert(revision, command.to_vec());
                None
            }
            Some(known) if known.as_slice() == command => None,
            Some(known) => Some(format!(
                "change feed: {who} emitted revision {revision} as {} but it was {} elsewhere",
                describe(command),
                describe(known)
            )),
        }
    }

    /// A watcher that last saw `after` read `answer` from a feed: checks that it continues
    /// the watcher's stream. Answers where the watcher is now, and the violations found.
    pub fn read(
        &mut self,
        who: impl Fn() -> String,
        after: u64,
        answer: Result<Vec<Change>, Compacted>,
    ) -> (u64, Vec<String>) {
        self.reads += 1;
        let changes = match answer {
            Ok(changes) => changes,
            Err(Compacted { oldest }) if oldest > after => {
                self.compacted_reads += 1;
                return (oldest, Vec::new());
            }
            Err(Compacted { oldest }) => {
                let text = format!(
                    "change feed: {} was told revision {after} is compacted, with {oldest} \
                     the oldest kept",
                    who()
                );
                return (after, vec![text]);
            }
        };
        let mut found = Vec::new();
        let mut last = after;
        for command in commands(&changes) {
            let revision = command[0].revision;
            if revision != last + 1 {
                found.push(format!(
                    "change feed: {} read revision {revision} right after {last}",
                    who()
                ));
            }
            match self.cluster.get(&revision) {
                Some(known) if known.as_slice() == command => {}
                Some(known) => found.push(format!(
                    "change feed: {} read revision {revision} as {} but it was {}",
                    who(),
                    describe(command),
                    describe(known)
                )),
                None => found.push(format!(
                    "change feed: {} read revision {revision}, which no feed emitted",
                    who()
                )),
            }
            last = revision;
        }
        (last, found)
    }

    /// At the end of a run: every revision up to the last was emitted by some feed, and
    /// every acknowledged write of `history` is among the changes.
    pub fn complete(&self, history: &[HistoryEvent]) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(gap) = self.first_gap() {
            found.push(format!(
                "change feed: no node's feed emitted revision {gap}, though later ones were"
            ));
        }
        let index = KeyIndex::new(&self.cluster);
        for event in history {
            if event.kind != EventKind::Ok || event.mode == Mode::Final {
                continue;
            }
            let missing = match (&event.key, &event.value) {
                (Some(key), value) => index.missing(key, value).map(|m| (key.as_str(), m)),
                (None, OpValue::Txn(mops)) => index.missing_from_txn(mops),
                (None, _) => None,
            };
            if let Some((key, missing)) = missing {
                found.push(format!(
                    "change feed: the acknowledged {} of {key} (process {}) is in no feed: no \
                     {missing}",
                    event.value.f(),
                    event.process
                ));
            }
        }
        found
    }

    fn first_gap(&self) -> Option<u64> {
        let first = *self.cluster.keys().next()?;
        (first..)
            .zip(self.cluster.keys())
            .find(|(expected, revision)| expected != *revision)
            .map(|(expected, _)| expected)
    }
}

/// What completeness looks up, from every change in revision order: `(key, bytes)` pairs of
/// the values set, the suffixes appended (a change's value less the key's previous one) and
/// the values deletes removed.
#[derive(Default)]
struct KeyIndex<'c> {
    set: BTreeSet<(&'c [u8], &'c [u8])>,
    appended: BTreeSet<(&'c [u8], &'c [u8])>,
    deleted: BTreeSet<(&'c [u8], &'c [u8])>,
}

impl<'c> KeyIndex<'c> {
    fn new(cluster: &'c BTreeMap<u64, Vec<Change>>) -> KeyIndex<'c> {
        let mut index = KeyIndex::default();
        let mut values: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
        for change in cluster.values().flatten() {
            let key = &change.key[..];
            let value = change.value.as_deref();
            let before = values.get(key).copied().unwrap_or_default();
            match (change.event, value) {
                (Event::Set, Some(value)) => {
                    index.set.insert((key, value));
                }
                (Event::Append, Some(value)) => {
                    let suffix = value.strip_prefix(before).unwrap_or(value);
                    index.appended.insert((key, suffix));
                }
                (Event::Del, _) => {
                    index.deleted.insert((key, before));
                }
                _ => {}
            }
            match value {
                Some(value) => values.insert(key, value),
                None => values.remove(key),
            };
        }
        index
    }

    /// What change an acknowledged write of `value` to `key` should have left and did not
    /// (`None`: it is there, or the write need not have changed anything).
    fn missing(&self, key: &str, value: &OpValue) -> Option<String> {
        let has =
            |set: &BTreeSet<(&[u8], &[u8])>, v: &str| set.contains(&(key.as_bytes(), v.as_bytes()));
        match value {
            OpValue::Put(v)
            | OpValue::Cas { new: v, .. }
            | OpValue::PutTtl { value: v, .. }
            | OpValue::PutTtlIfAbsent { value: v, .. }
            | OpValue::PutLease { value: v, .. } => {
                (!has(&self.set, v)).then(|| format!("set of {v:?}"))
            }
            OpValue::Append(suffix) => {
                (!has(&self.appended, suffix)).then(|| format!("append of {suffix:?}"))
            }
            OpValue::DeleteIf(token) => {
                (!has(&self.deleted, token)).then(|| format!("del of the key holding {token:?}"))
            }
            _ => None,
        }
    }
}

impl KeyIndex<'_> {
    /// The first write of a committed transaction that left no change: each append's token
    /// must be in some append to its key (a transaction appending twice to one key records
    /// both tokens in one suffix: each change carries the key's value after the command).
    fn missing_from_txn<'m>(&self, mops: &'m [Mop]) -> Option<(&'m str, String)> {
        mops.iter().find_map(|mop| match mop {
            Mop::Append { key, value } => {
                let token = value.as_bytes();
                let found = self
                    .appended
                    .range((key.as_bytes(), &b""[..])..)
                    .take_while(|(k, _)| *k == key.as_bytes())
                    .any(|(_, suffix)| suffix.windows(token.len()).any(|w| w == token));
                (!found).then(|| (key.as_str(), format!("append of {value:?}")))
            }
            Mop::Write { key, value } => self
                .missing(key, &OpValue::Put(value.clone()))
                .map(|m| (key.as_str(), m)),
            Mop::Read { .. } => None,
        })
    }
}

/// `changes` split into commands (runs of one revision).
fn commands(changes: &[Change]) -> impl Iterator<Item = &[Change]> {
    changes.chunk_by(|a, b| a.revision == b.revision)
}

/// A command's changes must be numbered 0, 1, 2, ...
fn numbering(node: u64, command: &[Change]) -> Option<String> {
    let numbered = command.iter().enumerate().all(|(n, c)| c.n as usize == n);
    (!numbered).then(|| {
        format!(
            "change feed: n{node}'s feed emitted revision {} numbered {:?}",
            command[0].revision,
            command.iter().map(|c| c.n).collect::<Vec<_>>()
        )
    })
}

/// A command's changes as a violation shows them: `[set k1="7", expire k1="7"]`.
fn describe(command: &[Change]) -> String {
    let each: Vec<String> = command
        .iter()
        .map(|c| {
            let key = String::from_utf8_lossy(&c.key);
            match &c.value {
                Some(v) => format!("{} {key}={:?}", c.event.name(), String::from_utf8_lossy(v)),
                None => format!("{} {key} (absent)", c.event.name()),
            }
        })
        .collect();
    format!("[{}]", each.join(", "))
}

/// A watcher: reads from one node, resumes elsewhere after a disconnect.
#[derive(Clone)]
struct Watcher {
    node: usize,
    /// The last revision it saw (0: none).
    after: u64,
}

/// The simulation's feeds: one per node that is up, the watchers and the checks (the
/// explorer's worlds carry them too, cloned with each branch).
#[derive(Clone)]
pub(crate) struct Feeds {
    nodes: Vec<Option<ChangeFeed>>,
    window: (usize, usize),
    watchers: Vec<Watcher>,
    rng: Rng,
    /// Steps of nodes with an applied store (none: the protocol has no feed).
    steps: u64,
    pub check: FeedCheck,
}

impl Feeds {
    /// The feeds of a run of `seed` with `nodes` nodes (spares included).
    pub fn new(seed: u64, nodes: usize) -> Feeds {
        let mut rng = Rng::new(seed ^ 0xfeed_c4a9_6e5f_0003);
        let window = if rng.chance(0.5) {
            SERVER_WINDOW
        } else {
            (rng.between(4, 64) as usize, SERVER_WINDOW.1)
        };
        let watchers = (0..WATCHERS)
            .map(|_| Watcher {
                node: rng.below(nodes as u64) as usize,
                after: 0,
            })
            .collect();
        Feeds {
            nodes: (0..nodes).map(|_| None).collect(),
            window,
            watchers,
            rng,
            steps: 0,
            check: FeedCheck::new(),
        }
    }

    /// Whether any node has a feed (the protocol has one applied store per node).
    pub fn active(&self) -> bool {
        self.steps > 0
    }

    /// What the feeds counted, for the run's report.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        if !self.active() {
            return Vec::new();
        }
        let check = &self.check;
        vec![
            ("feed_revisions", check.cluster.len() as u64),
            ("feed_starts_over", check.starts_over),
            ("feed_reads", check.reads),
            ("feed_reads_compacted", check.compacted_reads),
        ]
    }

    /// Node `i` (re)starts: a fresh process, a fresh feed.
    pub fn started(&mut self, i: usize) {
        self.nodes[i] = Some(ChangeFeed::new(self.window.0, self.window.1));
    }

    /// Node `i` crashed: its feed is gone with the process.
    pub fn crashed(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Node `i` stepped and its applied store is `store`: catches its feed up, as the
    /// server's runtime does after every step, checks what it emitted, and lets a watcher
    /// read now and then. Answers the violations found.
    pub fn stepped(&mut self, i: usize, store: &KvStore) -> Vec<String> {
        let Some(feed) = self.nodes[i].as_mut() else {
            return Vec::new();
        };
        let mut found = self.check.catch_up(i as u64 + 1, feed, store);
        self.steps += 1;
        if self.steps.is_multiple_of(READ_EVERY) {
            let w = (self.steps / READ_EVERY) as usize % self.watchers.len();
            found.extend(self.watch(w));
        }
        found
    }

    /// Watcher `w` reads from its node, or, if that node is down, reconnects elsewhere.
    fn watch(&mut self, w: usize) -> Vec<String> {
        let watcher = &self.watchers[w];
        let Some(feed) = self.nodes[watcher.node].as_ref() else {
            self.reconnect(w);
            return Vec::new();
        };
        let count = self.rng.between(1, 8) as usize;
        let answer = feed.read(watcher.after, count);
        let who = || format!("watcher {w} at n{}", watcher.node + 1);
        let (after, found) = self.check.read(who, watcher.after, answer);
        self.watchers[w].after = after;
        if self.rng.chance(RECONNECT) {
            self.reconnect(w);
        }
        found
    }

    fn reconnect(&mut self, w: usize) {
        self.watchers[w].node = self.rng.below(self.nodes.len() as u64) as usize;
    }
}
