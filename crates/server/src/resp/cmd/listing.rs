//! Reads of the whole keyspace, each one request read through the protocol like `GET`:
//!
//! - `DBSIZE`: how many keys there are.
//! - `KEYS pattern`: every key matching the glob, sorted, from one state.
//! - `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`: one page of a walk over the keys in
//!   a fixed hash order, and the cursor of the next page (`0`: done). The cursor is a position
//!   in that order, not a handle held by a node, so it stays valid across calls, connections
//!   and leader changes; a key present for the whole walk is returned exactly once (see
//!   `quorate_core::kv::listing`). `COUNT` (default 10) bounds the keys a page examines;
//!   `TYPE string` returns every key, any other type none (every value is a string).
//!
//! In the connection's read mode (`LINEARIZABLE` by default): on the log protocols a page or
//! a `KEYS` answer is a linearizable read of one state. Quorum and multiprimary replicate each
//! key on its own and refuse these with an error naming the protocols that serve them.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};

/// `SCAN`'s default `COUNT`, as in Redis.
const SCAN_COUNT_DEFAULT: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dbsize,
    Keys,
    Scan,
}

#[derive(Debug)]
pub struct Listing {
    kind: Kind,
    op: Op,
    /// `SCAN … TYPE t` with a type other than `string`: no key can match.
    no_type_matches: bool,
}

impl Listing {
    pub fn parse_dbsize() -> Listing {
        Listing {
            kind: Kind::Dbsize,
            op: Op::Count,
            no_type_matches: false,
        }
    }

    /// `KEYS pattern`.
    pub fn parse_keys(parse: &mut Parse) -> Result<Listing, Frame> {
        let pattern = parse.sized("pattern")?;
        Ok(Listing {
            kind: Kind::Keys,
            op: Op::Scan {
                cursor: 0,
                pattern: match_all(pattern),
                count: u64::MAX,
            },
            no_type_matches: false,
        })
    }

    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`.
    pub fn parse_scan(parse: &mut Parse) -> Result<Listing, Frame> {
        let cursor = parse.bytes()?;
        let cursor = std::str::from_utf8(&cursor)
            .ok()
            .and_then(|c| c.parse::<u64>().ok())
            .ok_or_else(|| Frame::error("ERR invalid cursor"))?;
        let (mut pattern, mut count, mut no_type_matches) = (None, SCAN_COUNT_DEFAULT, false);
        while let Some(word) = parse.keyword() {
            match word.as_str() {
                "MATCH" => pattern = match_all(parse.sized("pattern")?),
                "COUNT" => {
                    count = u64::try_from(parse.integer()?)
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| Frame::error("ERR syntax error"))?;
                }
                "TYPE" => {
                    let kind = parse.bytes()?;
                    no_type_matches = !kind.eq_ignore_ascii_case(b"string");
                }
                _ => return Err(Frame::error("ERR syntax error")),
            }
        }
        Ok(Listing {
            kind: Kind::Scan,
            op: Op::Scan {
                cursor,
                pattern,
                count,
            },
            no_type_matches,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Dbsize => "dbsize",
            Kind::Keys => "keys",
            Kind::Scan => "scan",
        }
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mode = exec.read_mode;
        let output = exec.read(self.op, mode).await?;
        let bulk = |keys: Vec<Bytes>| Frame::Array(keys.into_iter().map(Frame::Bulk).collect());
        match (self.kind, output) {
            (Kind::Dbsize, Output::Length(n)) => Ok(Frame::Integer(n as i64)),
            (Kind::Keys, Output::Scan { mut keys, .. }) => {
                keys.sort();
                Ok(bulk(keys))
            }
            (Kind::Scan, Output::Scan { cursor, mut keys }) => {
                if self.no_type_matches {
                    keys.clear();
                }
                let cursor = Frame::Bulk(Bytes::from(cursor.to_string()));
                Ok(Frame::Array(vec![cursor, bulk(keys)]))
            }
            (_, other) => Err(unexpected(other)),
        }
    }
}

/// The pattern, or `None` for `*` (which matches everything and need not be matched).
fn match_all(pattern: Bytes) -> Option<Bytes> {
    (pattern.as_ref() != b"*").then_some(pattern)
}
