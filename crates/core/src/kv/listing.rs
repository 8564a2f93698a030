//! Reads of the whole keyspace: `SCAN`, `KEYS` and `DBSIZE` ([`Op::Scan`], [`Op::Count`]).
//!
//! **The cursor is a position in a fixed order, not in the store.** Keys are walked in the
//! order of a fixed 63-bit hash of their bytes ([`key_hash`], FNV-1a, the same on every node
//! and in every version), ties broken by the key. A cursor is the hash the next page starts
//! at (`0`: the start, and the answer when the walk is over), and a page always ends after
//! the last key of a hash (so keys sharing a hash are never split between pages). Inserting
//! or removing keys moves no other key in this order, so a key present for the whole of a
//! scan is returned exactly once and a key added or removed during it at most once, which is
//! Redis's guarantee (Redis promises "at least once"; this order never repeats). The cursor
//! names no node or state, so a scan survives a change of leader: the next page is read from
//! whatever state the new leader serves, a later one than the last page's.
//!
//! A cursor fits in 63 bits because clients parse it as an integer (redis-py as a Python
//! `int`, redis-rs and go-redis as `u64`, others as `i64`).
//!
//! `COUNT n` bounds the keys a page *examines*, as in Redis: a page with `MATCH` may return
//! fewer (none) and still not be the last. [`Op::Scan`] with `count: u64::MAX` is `KEYS`: one
//! read of one state.
//!
//! Expiring keys: a page is refused ([`ClientError::Unavailable`], the client retries) while
//! a key in its range has passed its deadline on the serving node's clock but its `Expired`
//! entry is not applied yet, as single-key reads are (see [`super::expiry`]); `DBSIZE` is
//! refused while any key is in that state.

use super::{ClientError, Key, KvStore, Op, Output};
use crate::time::Time;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// The position of `key` in the scan order: FNV-1a over its bytes, the top 63 bits.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash >> 1
}

/// Every key in scan order, built from the store's keys the first time a scan needs it and
/// kept in step by every later insert and remove. Not serialized (a snapshot's store builds it
/// again when first scanned) and not part of the store's equality or hash: it is a function
/// of the keys.
#[derive(Clone, Default)]
pub(super) struct HashOrder(OnceLock<BTreeSet<(u64, Key)>>);

impl HashOrder {
    pub(super) fn inserted(&mut self, key: &Key) {
        if let Some(order) = self.0.get_mut() {
            order.insert((key_hash(key), key.clone()));
        }
    }

    pub(super) fn removed(&mut self, key: &Key) {
        if let Some(order) = self.0.get_mut() {
            order.remove(&(key_hash(key), key.clone()));
        }
    }
}

impl PartialEq for HashOrder {
    fn eq(&self, _: &HashOrder) -> bool {
        true
    }
}

impl Eq for HashOrder {}

impl Hash for HashOrder {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for HashOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashOrder")
    }
}

/// One page of a scan: the keys examined, in scan order, and the cursor that follows them.
struct Page<'a> {
    examined: Vec<&'a Key>,
    /// The first and last hash examined (`None`: nothing was).
    range: Option<(u64, u64)>,
    next: u64,
}

impl KvStore {
    fn hash_order(&self) -> &BTreeSet<(u64, Key)> {
        self.by_hash
            .0
            .get_or_init(|| self.data.keys().map(|k| (key_hash(k), k.clone())).collect())
    }

    fn page(&self, cursor: u64, count: u64) -> Page<'_> {
        let order = self.hash_order();
        let mut walk = order.range((cursor, Key::new())..);
        let mut examined = Vec::new();
        let mut last = None;
        let mut pending = walk.next();
        while let Some((hash, key)) = pending {
            let full = examined.len() as u64 >= count.max(1);
            if full && last != Some(*hash) {
                break;
            }
            examined.push(key);
            last = Some(*hash);
            pending = walk.next();
        }
        let next = match (pending, last) {
            (Some(_), Some(last)) => last + 1,
            _ => 0,
        };
        let range = last.map(|last| (cursor, last));
        Page {
            examined,
            range,
            next,
        }
    }

    /// Answers [`Op::Scan`] and [`Op::Count`].
    pub(super) fn read_listing(&self, op: &Op) -> Output {
        match op {
            Op::Scan {
                cursor,
                pattern,
                count,
            } => {
                let page = self.page(*cursor, *count);
                let keys = page
                    .examined
                    .into_iter()
                    .filter(|key| pattern.as_ref().is_none_or(|p| glob_match(p, key)))
                    .cloned()
                    .collect();
                Output::Scan {
                    cursor: page.next,
                    keys,
                }
            }
            Op::Count => Output::Length(self.data.len() as u64),
            _ => unreachable!("{op:?} is not a listing"),
        }
    }

    /// [`KvStore::visible`] for listings: not while a key they would read has passed its
    /// deadline at `now` but is still present.
    pub(super) fn listing_visible(&self, op: &Op, now: Time) -> Result<(), ClientError> {
        let mut due = self
            .by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|(_, key)| key);
        let hidden = match op {
            Op::Count => due.next().is_some(),
            Op::Scan { cursor, count, .. } => match self.page(*cursor, *count).range {
                None => false,
                Some((from, to)) => due.any(|key| (from..=to).contains(&key_hash(key))),
            },
            _ => false,
        };
        match hidden {
            true => Err(ClientError::Unavailable),
            false => Ok(()),
        }
    }
}

/// Whether `text` matches the glob `pattern` as Redis's `KEYS` and `SCAN MATCH` read it: `*`
/// any run of bytes, `?` any one byte, `[abc]`, `[^abc]` and `[a-z]` classes, `\x` the byte
/// `x` itself.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matching with one backtrack point (the last `*`), linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, end)) = class(pattern, p, text[t]) {
                        if matched {
                            p = end;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        // An unclosed class is a literal '['.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                byte => {
                    if byte == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// The class starting at `pattern[start] == b'['`: whether `byte` is in it and the index after
/// its `]`; `None` if it never closes.
fn class(pattern: &[u8], start: usize, byte: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let c = *pattern.get(i)?;
        if c == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let c = match c {
            b'\\' => {
                i += 1;
                *pattern.get(i)?
            }
            c => c,
        };
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|e| *e != b']') {
            let mut end = pattern[i + 2];
            if end == b'\\' {
                i += 1;
                end = *pattern.get(i + 2)?;
            }
            let (lo, hi) = (c.min(end), c.max(end));
            matched |= (lo..=hi).contains(&byte);
            i += 3;
        } else {
            matched |= c == byte;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn globs_match_as_redis_reads_them() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("user:*", "user:1", true),
            ("user:*", "users", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("h[a-c]llo", "hdllo", false),
            // A negated class holds neither its `[` nor its `^`; escapes inside a class and
            // at the end of a range.
            ("[^e]", "[", true),
            ("[^e]", "^", true),
            ("[\\]x]", "]", true),
            ("[\\]x]", "\\", false),
            ("[a-\\z]", "m", true),
            ("[a-\\z]", "\\", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*c", "abcabc", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            // A trailing backslash escapes nothing: it is itself.
            ("a\\", "a\\", true),
            ("[", "[", true),
            ("", "", true),
            ("", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                *expected,
                "{pattern:?} against {text:?}"
            );
        }
    }

    fn store(keys: impl IntoIterator<Item = String>) -> KvStore {
        let mut store = KvStore::default();
        for key in keys {
            store.apply_op(&Op::Put {
                key: Bytes::from(key),
                value: Bytes::from_static(b"v"),
            });
        }
        store
    }

    fn scan(store: &KvStore, cursor: u64, count: u64, pattern: Option<&str>) -> (u64, Vec<Key>) {
        let op = Op::Scan {
            cursor,
            pattern: pattern.map(|p| Bytes::copy_from_slice(p.as_bytes())),
            count,
        };
        match store.read(&op) {
            Output::Scan { cursor, keys } => (cursor, keys),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scan_visits_every_key_once_even_while_keys_come_and_go() {
        let mut store = store((0..200).map(|i| format!("k{i}")));
        let mut seen = Vec::new();
        let mut cursor = 0;
        let mut pages = 0;
        loop {
            let (next, keys) = scan(&store, cursor, 7, None);
            assert!(keys.len() <= 8, "a page examines about COUNT keys");
            seen.extend(keys);
            pages += 1;
            // Between pages: add keys and remove ones the scan may or may not have passed.
            store.apply_op(&Op::Put {
                key: Bytes::from(format!("new{pages}")),
                value: Bytes::new(),
            });
            store.apply_op(&Op::Delete {
                key: Bytes::from(format!("k{}", 150 + pages % 50)),
            });
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let unique: BTreeSet<&Key> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no key twice");
        for i in 0..150 {
            assert!(
                unique.contains(&Bytes::from(format!("k{i}"))),
                "k{i}, present throughout, was missed"
            );
        }
        assert!(pages > 20);
    }

    #[test]
    fn keys_and_dbsize_read_one_state_and_match_patterns() {
        let mut store = store(["a1", "a2", "b1"].map(String::from));
        let (cursor, mut keys) = scan(&store, 0, u64::MAX, Some("a*"));
        keys.sort();
        assert_eq!(
            (cursor, keys),
            (0, vec![Bytes::from("a1"), Bytes::from("a2")])
        );
        assert_eq!(store.read(&Op::Count), Output::Length(3));
        store.apply_op(&Op::Delete {
            key: Bytes::from("a1"),
        });
        assert_eq!(scan(&store, 0, u64::MAX, None).1.len(), 2);
        assert_eq!(store.read(&Op::Count), Output::Length(2));
        // A key inserted after the order was built is in it.
        store.apply_op(&Op::Put {
            key: Bytes::from("c9"),
            value: Bytes::from_static(b"v"),
        });
        let (_, keys) = scan(&store, 0, u64::MAX, None);
        assert!(keys.contains(&Bytes::from("c9")), "{keys:?}");
        // A store that arrives without its order (a snapshot) builds it on its first scan.
        let copy: KvStore = store.clone();
        assert_eq!(scan(&copy, 0, 10, None).1.len(), 3);
    }

    #[test]
    fn a_listing_waits_while_a_key_in_its_range_is_past_its_deadline() {
        use super::super::Expiry;
        let mut store = store(["a"].map(String::from));
        let deadline = Time::ZERO + std::time::Duration::from_secs(1);
        store.apply_op(&Op::PutExpiring {
            key: Bytes::from("b"),
            value: Bytes::new(),
            expiry: Expiry::At { deadline },
        });
        let scan_all = Op::Scan {
            cursor: 0,
            pattern: None,
            count: 10,
        };
        assert!(store.read_at(&scan_all, Time::ZERO).is_ok());
        let later = deadline + std::time::Duration::from_millis(1);
        assert_eq!(
            store.read_at(&scan_all, later),
            Err(ClientError::Unavailable)
        );
        assert_eq!(
            store.read_at(&Op::Count, later),
            Err(ClientError::Unavailable)
        );
        store.apply_op(&Op::Expired {
            key: Bytes::from("b"),
            deadline,
        });
        assert_eq!(store.read_at(&Op::Count, later), Ok(Output::Length(1)));
    }
}
