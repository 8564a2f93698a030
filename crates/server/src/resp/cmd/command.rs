//! `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND LIST`, `COMMAND DOCS`: the
//! command table, as client libraries and `redis-cli` read it on connecting.
//!
//! Each entry is Redis's command-info shape: name, arity (negative: at least that many
//! words), flags, first key, last key (-1: every argument to the end), key step, and empty
//! ACL categories, tips, key specs and subcommands. `COMMAND DOCS` answers an empty map:
//! quorate ships no per-command documentation (see the README).

use super::Parse;
use crate::resp::frame::Frame;
use bytes::Bytes;

/// Name, arity, flags, first key, last key, step.
type Entry = (&'static str, i64, &'static [&'static str], i64, i64, i64);

const READ: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const LOCAL: &[&str] = &["loading", "stale", "fast"];
const PUBSUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];

/// Every command quorate answers; `from_frame` in `mod.rs` dispatches the same names (a test
/// keeps the two in step).
pub const TABLE: &[Entry] = &[
    ("get", -2, READ, 1, 1, 1),
    ("set", -3, WRITE, 1, 1, 1),
    ("del", -2, &["write"], 1, -1, 1),
    ("unlink", -2, &["write", "fast"], 1, -1, 1),
    ("exists", -2, READ, 1, -1, 1),
    ("append", 3, WRITE_FAST, 1, 1, 1),
    ("incr", 2, WRITE_FAST, 1, 1, 1),
    ("decr", 2, WRITE_FAST, 1, 1, 1),
    ("incrby", 3, WRITE_FAST, 1, 1, 1),
    ("decrby", 3, WRITE_FAST, 1, 1, 1),
    ("cas", 4, WRITE, 1, 1, 1),
    ("delifeq", 3, &["write", "fast"], 1, 1, 1),
    ("delex", -2, &["write", "fast"], 1, 1, 1),
    (
        "eval",
        -3,
        &["noscript", "stale", "skip_monitor", "no_mandatory_keys"],
        0,
        0,
        0,
    ),
    (
        "evalsha",
        -3,
        &["noscript", "stale", "skip_monitor", "no_mandatory_keys"],
        0,
        0,
        0,
    ),
    ("script", -2, &["noscript"], 0, 0, 0),
    ("getset", 3, WRITE_FAST, 1, 1, 1),
    ("getdel", 2, &["write", "fast"], 1, 1, 1),
    ("mget", -2, READ, 1, -1, 1),
    ("mset", -3, WRITE, 1, -1, 2),
    ("msetnx", -3, WRITE, 1, -1, 2),
    (
        "multi",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
    ),
    (
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        0,
        0,
        0,
    ),
    (
        "discard",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
    ),
    (
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        1,
        -1,
        1,
    ),
    (
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
    ),
    ("setnx", 3, WRITE_FAST, 1, 1, 1),
    ("setex", 4, WRITE, 1, 1, 1),
    ("psetex", 4, WRITE, 1, 1, 1),
    ("expire", 3, WRITE_FAST, 1, 1, 1),
    ("pexpire", 3, WRITE_FAST, 1, 1, 1),
    ("persist", 2, WRITE_FAST, 1, 1, 1),
    ("ttl", 2, READ, 1, 1, 1),
    ("pttl", 2, READ, 1, 1, 1),
    // LEASE GRANT|KEEPALIVE|REVOKE|TTL|PTTL|KEYS: names no key.
    ("lease", -3, &["write", "fast"], 0, 0, 0),
    ("strlen", 2, READ, 1, 1, 1),
    ("type", 2, READ, 1, 1, 1),
    ("dbsize", 1, READ, 0, 0, 0),
    ("keys", 2, &["readonly"], 0, 0, 0),
    ("scan", -2, &["readonly"], 0, 0, 0),
    ("ping", -1, &["fast"], 0, 0, 0),
    ("info", -1, &["loading", "stale"], 0, 0, 0),
    ("client", -2, &["loading", "stale"], 0, 0, 0),
    (
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
    ),
    ("readmode", -1, LOCAL, 0, 0, 0),
    ("readonly", 1, LOCAL, 0, 0, 0),
    ("readwrite", 1, LOCAL, 0, 0, 0),
    (
        "config",
        -2,
        &["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
    ),
    ("command", -1, &["loading", "stale"], 0, 0, 0),
    ("select", 2, LOCAL, 0, 0, 0),
    ("snapshot", 1, &["admin", "noscript"], 0, 0, 0),
    ("subscribe", -2, PUBSUB, 0, 0, 0),
    ("psubscribe", -2, PUBSUB, 0, 0, 0),
    ("unsubscribe", -1, PUBSUB, 0, 0, 0),
    ("punsubscribe", -1, PUBSUB, 0, 0, 0),
    (
        "publish",
        3,
        &["pubsub", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("xread", -4, &["readonly", "blocking"], 0, 0, 0),
    ("member", -2, &["admin", "noscript"], 0, 0, 0),
    (
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
    ),
];

#[derive(Debug)]
pub enum CommandInfo {
    All,
    Count,
    List,
    Info(Vec<Bytes>),
    Docs,
}

impl CommandInfo {
    pub fn parse(parse: &mut Parse) -> Result<CommandInfo, Frame> {
        let Some(sub) = parse.keyword() else {
            return Ok(CommandInfo::All);
        };
        let command = match sub.as_str() {
            "COUNT" => CommandInfo::Count,
            "LIST" => CommandInfo::List,
            "INFO" => CommandInfo::Info(parse.rest()),
            "DOCS" => {
                parse.rest();
                CommandInfo::Docs
            }
            other => {
                return Err(Frame::error(format!(
                    "ERR unknown subcommand '{other}'. Try COMMAND COUNT, LIST, INFO or DOCS"
                )))
            }
        };
        Ok(command)
    }

    pub fn reply(self) -> Frame {
        match self {
            CommandInfo::All => Frame::Array(TABLE.iter().map(info).collect()),
            CommandInfo::Count => Frame::Integer(TABLE.len() as i64),
            CommandInfo::List => Frame::Array(
                TABLE
                    .iter()
                    .map(|e| Frame::Bulk(Bytes::from_static(e.0.as_bytes())))
                    .collect(),
            ),
            CommandInfo::Info(names) => Frame::Array(
                names
                    .iter()
                    .map(|name| {
                        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                        TABLE.iter().find(|e| e.0 == name).map_or(Frame::Null, info)
                    })
                    .collect(),
            ),
            CommandInfo::Docs => Frame::Map(Vec::new()),
        }
    }
}

fn info(&(name, arity, flags, first, last, step): &Entry) -> Frame {
    let words = |items: &[&'static str]| {
        Frame::Array(
            items
                .iter()
                .map(|w| Frame::Simple((*w).to_owned()))
                .collect(),
        )
    };
    Frame::Array(vec![
        Frame::Bulk(Bytes::from_static(name.as_bytes())),
        Frame::Integer(arity),
        words(flags),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        words(&[]),
        words(&[]),
        words(&[]),
        words(&[]),
    ])
}
