//! Watches on a node: keyspace notifications (Redis pub/sub) and the resumable change feed
//! (`XREAD ... STREAMS __changes__ <revision>`), both fed from the applied store.
//!
//! The runtime owns the node; after every step it hands the node's applied store to
//! [`Watch::catch_up`], which copies the new changes into the node's [`ChangeFeed`] (the
//! window and resume rules live in `quorate_core::kv::changes`, which the simulator runs
//! too) and turns each into the pub/sub messages `notify-keyspace-events` asks for:
//!
//! ```text
//!  step ──> applied store (revision r, recent changes) ──catch_up──> ChangeFeed (window)
//!                                                           │           └── XREAD (resume)
//!                                                           └── bus: __keyspace@0__:<key> <event>
//!                                                                    __keyevent@0__:<event> <key>
//!  PUBLISH channel message ────────────────────────────────────> bus ──> subscribed connections
//! ```
//!
//! Guarantees. Notifications leave in apply order, which for a log protocol is commit order
//! and the same on every node; like Redis's they are at-most-once: a subscriber that
//! disconnects, or falls more than [`BUS_MAX`] messages behind, loses them. The feed is what
//! resumes: a client that saw revision `r` asks any node for what follows `r` and gets exactly
//! that, once the node has applied it, or an error naming the oldest revision still kept.
//! Protocols without a single apply order (quorum, multi-primary) refuse both.

use crate::resp::cmd::SubscribeKind as Kind;
use crate::resp::frame::Frame;
use bytes::Bytes;
use quorate_core::kv::listing::glob_match;
use quorate_core::kv::{Change, ChangeFeed, Compacted};
use quorate_core::KvStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{broadcast, watch};

/// Messages a subscriber may fall behind by before it loses some (Redis's
/// `client-output-buffer-limit pubsub` closes such a client instead).
pub const BUS_MAX: usize = 16_384;
/// The reserved stream name `XREAD` serves the change feed under.
pub const CHANGES_STREAM: &[u8] = b"__changes__";

/// One pub/sub message: a channel and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub channel: Bytes,
    pub payload: Bytes,
}

/// The node's watch state, shared by the runtime and the connections.
pub struct Watch {
    feed: Mutex<ChangeFeed>,
    bus: broadcast::Sender<Arc<Message>>,
    /// The feed's latest revision, for `XREAD BLOCK`.
    revision: watch::Sender<u64>,
    /// `notify-keyspace-events`, as Redis's flag bits.
    flags: Mutex<Flags>,
    /// Subscriptions by channel and by pattern, counted over connections (for `PUBLISH`'s
    /// answer).
    subscriptions: Mutex<Subscriptions>,
    /// Why this protocol has no feed (set once, when the runtime attaches).
    refusal: OnceLock<String>,
}

#[derive(Default)]
struct Subscriptions {
    channels: BTreeMap<Bytes, usize>,
    patterns: BTreeMap<Bytes, usize>,
}

impl Watch {
    pub fn new(window_max: usize, window_bytes_max: usize) -> Arc<Watch> {
        Arc::new(Watch {
            feed: Mutex::new(ChangeFeed::new(window_max, window_bytes_max)),
            bus: broadcast::channel(BUS_MAX).0,
            revision: watch::channel(0).0,
            flags: Mutex::new(Flags::default()),
            subscriptions: Mutex::new(Subscriptions::default()),
            refusal: OnceLock::new(),
        })
    }

    /// This protocol keeps no single applied store: no feed, no keyspace notifications.
    pub fn refuse(&self, why: String) {
        let _ = self.refusal.set(why);
    }

    /// Why watching is refused on this node, if it is.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.get().map(String::as_str)
    }

    /// Copies what `store` changed since the last call and publishes the notifications.
    pub fn catch_up(&self, store: &KvStore) {
        let fresh = {
            let mut feed = self.feed.lock().expect("feed lock");
            if feed.revision() == store.revision() {
                return;
            }
            let fresh = feed.catch_up(store);
            self.revision.send_replace(feed.revision());
            fresh
        };
        let flags = *self.flags.lock().expect("flags lock");
        if !flags.any() || self.bus.receiver_count() == 0 {
            return;
        }
        for change in &fresh {
            for message in flags.messages(change) {
                let _ = self.bus.send(Arc::new(message));
            }
        }
    }

    /// At most `count` changes after `(revision, n)` (whole commands), or `Compacted`.
    /// `n == u32::MAX` means every change of `revision` was seen.
    pub fn read(&self, after: (u64, u32), count: usize) -> Result<Vec<Change>, Compacted> {
        let feed = self.feed.lock().expect("feed lock");
        let (revision, n) = after;
        if n == u32::MAX {
            return feed.read(revision, count);
        }
        // Part of command `revision` was seen: its rest is kept only if the command is.
        let mut changes = feed.read(
            revision.saturating_sub(1),
            count.saturating_add(n as usize + 1),
        )?;
        changes.retain(|c| (c.revision, c.n) > after);
        let mut out: Vec<Change> = Vec::new();
        for change in changes {
            if out.len() >= count && out.last().is_some_and(|l| l.revision != change.revision) {
                break;
            }
            out.push(change);
        }
        Ok(out)
    }

    /// The feed's latest revision.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Waits for revisions: a receiver that sees the feed's revision change.
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// A receiver of every message published from now on.
    pub fn listen(&self) -> broadcast::Receiver<Arc<Message>> {
        self.bus.subscribe()
    }

    /// Publishes `message`; answers how many subscriptions on this node match it.
    pub fn publish(&self, message: Message) -> i64 {
        let receivers = self.receivers(&message.channel);
        if receivers > 0 {
            let _ = self.bus.send(Arc::new(message));
        }
        receivers as i64
    }

    fn receivers(&self, channel: &[u8]) -> usize {
        let subs = self.subscriptions.lock().expect("subscriptions lock");
        let direct = subs.channels.get(channel).copied().unwrap_or(0);
        let patterns: usize = subs
            .patterns
            .iter()
            .filter(|(pattern, _)| glob_match(pattern, channel))
            .map(|(_, n)| n)
            .sum();
        direct + patterns
    }

    /// Counts a connection's subscription (`pattern`: a PSUBSCRIBE) in or out.
    pub fn count(&self, name: &Bytes, pattern: bool, added: bool) {
        let mut subs = self.subscriptions.lock().expect("subscriptions lock");
        let table = if pattern {
            &mut subs.patterns
        } else {
            &mut subs.channels
        };
        if added {
            *table.entry(name.clone()).or_insert(0) += 1;
        } else if let Some(n) = table.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                table.remove(name);
            }
        }
    }

    /// `CONFIG GET notify-keyspace-events`.
    pub fn flags(&self) -> String {
        self.flags.lock().expect("flags lock").to_string()
    }

    /// `CONFIG SET notify-keyspace-events <classes>`.
    pub fn set_flags(&self, text: &[u8]) -> Result<(), String> {
        let flags = Flags::parse(text)?;
        if flags.any() {
            if let Some(why) = self.refusal() {
                return Err(format!(
                    "ERR keyspace notifications are off on this node: {why}"
                ));
            }
        }
        *self.flags.lock().expect("flags lock") = flags;
        Ok(())
    }
}

/// `notify-keyspace-events` as Redis reads it: `K` keyspace and `E` keyevent channels, and the
/// event classes (`g` generic, `$` string, `x` expired, ...; `A` for all of them).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Flags(u16);

/// Classes in Redis's order, then K and E, then the key-miss and new-key classes; `A` stands
/// for the first ten.
const CLASSES: &[u8] = b"g$lshzxetdKEmn";
const ALL_CLASSES: u16 = (1 << 10) - 1;
const KEYSPACE: u16 = 1 << 10;
const KEYEVENT: u16 = 1 << 11;

impl Flags {
    pub fn parse(text: &[u8]) -> Result<Flags, String> {
        let mut bits = 0u16;
        for &c in text {
            bits |= match c {
                b'A' => ALL_CLASSES,
                _ => match CLASSES.iter().position(|&k| k == c) {
                    Some(i) => 1 << i,
                    None => {
                        return Err(
                            "ERR Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()
                        )
                    }
                },
            };
        }
        Ok(Flags(bits))
    }

    /// Whether any notification would be sent: a channel kind and a class.
    fn any(self) -> bool {
        self.0 & (KEYSPACE | KEYEVENT) != 0 && self.0 & !(KEYSPACE | KEYEVENT) != 0
    }

    fn has_class(self, class: char) -> bool {
        CLASSES
            .iter()
            .position(|&k| k as char == class)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The messages `change` publishes: keyspace first, then keyevent, as Redis sends them.
    pub fn messages(self, change: &Change) -> Vec<Message> {
        let mut out = Vec::new();
        if !self.has_class(change.event.class()) {
            return out;
        }
        let event = change.event.name().as_bytes();
        if self.0 & KEYSPACE != 0 {
            let mut channel = b"__keyspace@0__:".to_vec();
            channel.extend_from_slice(&change.key);
            out.push(Message {
                channel: channel.into(),
                payload: Bytes::from_static(event),
            });
        }
        if self.0 & KEYEVENT != 0 {
            let mut channel = b"__keyevent@0__:".to_vec();
            channel.extend_from_slice(event);
            out.push(Message {
                channel: channel.into(),
                payload: change.key.clone(),
            });
        }
        out
    }
}

impl std::fmt::Display for Flags {
    /// Redis's canonical form: `A` when every class is on, then `K`, `E`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        for (i, &c) in CLASSES.iter().enumerate() {
            if i == 0 && self.0 & ALL_CLASSES == ALL_CLASSES {
                text.push('A');
            }
            let in_all = i < 10 && self.0 & ALL_CLASSES == ALL_CLASSES;
            if !in_all && self.0 & (1 << i) != 0 {
                text.push(c as char);
            }
        }
        f.write_str(&text)
    }
}

/// One connection's subscriptions and its place on the bus. Dropping it (the connection
/// closed, or unsubscribed from everything) takes its subscriptions out of `PUBLISH`'s count.
pub struct Subscriber {
    watch: Arc<Watch>,
    bus: broadcast::Receiver<Arc<Message>>,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    /// Messages this subscriber lost by falling more than [`BUS_MAX`] behind.
    pub lost: u64,
}

impl Subscriber {
    pub fn new(watch: Arc<Watch>) -> Subscriber {
        Subscriber {
            bus: watch.listen(),
            watch,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            lost: 0,
        }
    }

    /// Channels and patterns subscribed to.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Carries out a (P)(UN)SUBSCRIBE and answers its confirmations, one per name.
    pub fn change(&mut self, kind: Kind, names: Vec<Bytes>) -> Vec<Frame> {
        let table = |s: &mut Subscriber| {
            if kind.patterns() {
                std::mem::take(&mut s.patterns)
            } else {
                std::mem::take(&mut s.channels)
            }
        };
        let mut set = table(self);
        let names = if names.is_empty() {
            set.iter().cloned().collect()
        } else {
            names
        };
        let mut frames = Vec::new();
        for name in &names {
            let changed = if kind.adds() {
                set.insert(name.clone())
            } else {
                set.remove(name)
            };
            if changed {
                self.watch.count(name, kind.patterns(), kind.adds());
            }
            let count = self.count() + set.len();
            frames.push(confirmation(kind, Frame::Bulk(name.clone()), count));
        }
        if names.is_empty() {
            frames.push(confirmation(kind, Frame::Null, self.count()));
        }
        if kind.patterns() {
            self.patterns = set;
        } else {
            self.channels = set;
        }
        frames
    }

    /// The frames of the next message that matches a subscription. Cancel-safe.
    pub async fn next(&mut self) -> Vec<Frame> {
        loop {
            let message = match self.bus.recv().await {
                Ok(message) => message,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.lost += n;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            };
            let frames = self.frames(&message);
            if !frames.is_empty() {
                return frames;
            }
        }
    }

    fn frames(&self, message: &Message) -> Vec<Frame> {
        let bulk = |b: &Bytes| Frame::Bulk(b.clone());
        let word = |w: &'static str| Frame::Bulk(Bytes::from_static(w.as_bytes()));
        let mut frames = Vec::new();
        if self.channels.contains(&message.channel) {
            frames.push(Frame::Push(vec![
                word("message"),
                bulk(&message.channel),
                bulk(&message.payload),
            ]));
        }
        for pattern in &self.patterns {
            if glob_match(pattern, &message.channel) {
                frames.push(Frame::Push(vec![
                    word("pmessage"),
                    bulk(pattern),
                    bulk(&message.channel),
                    bulk(&message.payload),
                ]));
            }
        }
        frames
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        for channel in &self.channels {
            self.watch.count(channel, false, false);
        }
        for pattern in &self.patterns {
            self.watch.count(pattern, true, false);
        }
    }
}

fn confirmation(kind: Kind, name: Frame, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::Bulk(Bytes::from_static(kind.word().as_bytes())),
        name,
        Frame::Integer(count as i64),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_core::kv::Event;

    fn change(key: &str, event: Event) -> Change {
        Change {
            revision: 1,
            n: 0,
            key: Bytes::copy_from_slice(key.as_bytes()),
            event,
            value: None,
        }
    }

    #[test]
    fn flags_read_and_print_as_redis_does() {
        assert_eq!(Flags::parse(b"KEA").unwrap().to_string(), "AKE");
        assert_eq!(Flags::parse(b"Kg$").unwrap().to_string(), "g$K");
        assert_eq!(Flags::parse(b"").unwrap().to_string(), "");
        assert!(Flags::parse(b"KQ").is_err());
        assert!(!Flags::parse(b"K").unwrap().any());
        assert!(!Flags::parse(b"A").unwrap().any());
    }

    #[test]
    fn a_change_publishes_on_the_channels_and_classes_asked_for() {
        let all = Flags::parse(b"KEA").unwrap();
        let set = all.messages(&change("k", Event::Set));
        assert_eq!(set.len(), 2);
        assert_eq!(&set[0].channel[..], b"__keyspace@0__:k");
        assert_eq!(&set[0].payload[..], b"set");
        assert_eq!(&set[1].channel[..], b"__keyevent@0__:set");
        assert_eq!(&set[1].payload[..], b"k");
        let expired_only = Flags::parse(b"Ex").unwrap();
        assert!(expired_only.messages(&change("k", Event::Set)).is_empty());
        assert_eq!(expired_only.messages(&change("k", Event::Expired)).len(), 1);
    }
}
