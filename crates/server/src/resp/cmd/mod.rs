//! One file per command. Each parses itself from the frame's arguments ([`Parse`]) and either
//! answers from the connection's own state or runs against the node through [`Exec`].

mod append;
mod auth;
mod cas;
mod client;
mod command;
mod config;
mod del;
mod exists;
mod expire;
mod get;
mod hello;
mod incr;
mod info;
mod lease;
mod listing;
mod many;
mod member;
mod multi;
mod ping;
mod pubsub;
mod readmode;
mod script;
mod select;
mod set;
mod snapshot;
mod strlen;
mod ttl;
mod unknown;
mod xread;

pub use append::Append;
pub use auth::Auth;
pub use cas::Cas;
pub use client::Client;
pub use command::CommandInfo;
pub use config::Config;
pub use del::{Del, GetDel};
pub use exists::Exists;
pub use expire::Expire;
pub use get::Get;
pub use hello::Hello;
pub use incr::Incr;
pub use info::Info;
pub use lease::Lease;
pub use listing::Listing;
pub use many::Many;
pub use member::Member;
pub use multi::{ExecTxn, Multi, Queued, Reply, Watch, Watched};
pub use ping::Ping;
pub use pubsub::{Kind as SubscribeKind, Publish, Subscribe};
pub use readmode::ReadModeCmd;
pub use script::Script;
pub use select::Select;
pub use set::{Leased, Set};
pub use snapshot::Snapshot;
pub use strlen::Describe;
pub use ttl::Ttl;
pub use unknown::Unknown;
pub use xread::XRead;

use super::frame::Frame;
use super::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Output, ReadMode};

/// A parsed client command.
#[derive(Debug)]
pub enum Command {
    Ping(Ping),
    Get(Get),
    Set(Set),
    Del(Del),
    Exists(Exists),
    Append(Append),
    Incr(Incr),
    Cas(Cas),
    GetDel(GetDel),
    Many(Many),
    Listing(Listing),
    Expire(Expire),
    Ttl(Ttl),
    /// `LEASE GRANT|KEEPALIVE|REVOKE|TTL|PTTL|KEYS` (`lease.rs`).
    Lease(Lease),
    Describe(Describe),
    Info(Info),
    Client(Client),
    ReadMode(ReadModeCmd),
    Config(Config),
    CommandInfo(CommandInfo),
    Hello(Hello),
    Auth(Auth),
    Select(Select),
    Snapshot(Snapshot),
    /// `EVAL`, `EVALSHA` and `SCRIPT`: the lock scripts of client libraries (`script.rs`).
    Script(Script),
    /// `MULTI`, `DISCARD`, `UNWATCH`: the connection's own transaction state (`multi.rs`).
    Multi,
    Discard,
    Unwatch,
    Watch(Watch),
    /// `EXEC`: parsed empty; the connection fills in its queue and watches.
    Exec(ExecTxn),
    Subscribe(Subscribe),
    Publish(Publish),
    XRead(XRead),
    Member(Member),
    Quit,
    Unknown(Unknown),
}

impl Command {
    /// Parses a command frame. An `Err` is the error frame to answer (the connection stays
    /// open: the frame itself was well-formed RESP).
    pub fn from_frame(frame: Frame, value_max: usize) -> Result<Command, Frame> {
        let mut parse = Parse::new(frame, value_max)?;
        let name = parse.name.to_ascii_lowercase();
        let command = match name.as_str() {
            "ping" => Command::Ping(Ping::parse(&mut parse)?),
            "get" => Command::Get(Get::parse(&mut parse)?),
            "set" => Command::Set(Set::parse(&mut parse)?),
            "setex" | "psetex" => Command::Set(Set::parse_setex(&name, &mut parse)?),
            "expire" | "pexpire" | "persist" => Command::Expire(Expire::parse(&name, &mut parse)?),
            "ttl" | "pttl" => Command::Ttl(Ttl::parse(&name, &mut parse)?),
            "lease" => Command::Lease(Lease::parse(&mut parse)?),
            "strlen" | "type" => Command::Describe(Describe::parse(&name, &mut parse)?),
            "setnx" => Command::Set(Set::parse_setnx(&mut parse)?),
            "getset" => Command::Set(Set::parse_getset(&mut parse)?),
            "getdel" => Command::GetDel(GetDel::parse(&mut parse)?),
            "delifeq" => Command::Cas(Cas::parse_delifeq(&mut parse)?),
            "eval" | "evalsha" => Command::Script(Script::parse_eval(&name, &mut parse)?),
            "script" => Command::Script(Script::parse_script(&mut parse)?),
            "delex" => Cas::parse_delex(&mut parse)?,
            "mget" => Command::Many(Many::parse_mget(&mut parse)?),
            "mset" => Command::Many(Many::parse_mset(&mut parse)?),
            "msetnx" => Command::Many(Many::parse_msetnx(&mut parse)?),
            "multi" => Command::Multi,
            "exec" => Command::Exec(ExecTxn::default()),
            "discard" => Command::Discard,
            "watch" => Command::Watch(Watch::parse(&mut parse)?),
            "unwatch" => Command::Unwatch,
            "dbsize" => Command::Listing(Listing::parse_dbsize()),
            "keys" => Command::Listing(Listing::parse_keys(&mut parse)?),
            "scan" => Command::Listing(Listing::parse_scan(&mut parse)?),
            "del" | "unlink" => Command::Del(Del::parse(&mut parse)?),
            "exists" => Command::Exists(Exists::parse(&mut parse)?),
            "append" => Command::Append(Append::parse(&mut parse)?),
            "incr" | "decr" | "incrby" | "decrby" => Command::Incr(Incr::parse(&name, &mut parse)?),
            "cas" => Command::Cas(Cas::parse(&mut parse)?),
            "info" => Command::Info(Info::parse(&mut parse)?),
            "client" => Command::Client(Client::parse(&mut parse)?),
            "readmode" | "readonly" | "readwrite" => {
                Command::ReadMode(ReadModeCmd::parse(&name, &mut parse)?)
            }
            "config" => Command::Config(Config::parse(&mut parse)?),
            "command" => Command::CommandInfo(CommandInfo::parse(&mut parse)?),
            "hello" => Command::Hello(Hello::parse(&mut parse)?),
            "auth" => Command::Auth(Auth::parse(&mut parse)?),
            "select" => Command::Select(Select::parse(&mut parse)?),
            "snapshot" => Command::Snapshot(Snapshot::parse(&mut parse)?),
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => {
                Command::Subscribe(Subscribe::parse(&name, &mut parse)?)
            }
            "publish" => Command::Publish(Publish::parse(&mut parse)?),
            "xread" => Command::XRead(XRead::parse(&mut parse)?),
            "member" => Command::Member(Member::parse(&mut parse)?),
            "quit" => Command::Quit,
            _ => return Ok(Command::Unknown(Unknown::new(&parse))),
        };
        parse.finish()?;
        Ok(command)
    }

    /// True for commands that run against the node (and so take a session lane).
    pub fn needs_node(&self) -> bool {
        matches!(
            self,
            Command::Get(_)
                | Command::Set(_)
                | Command::Del(_)
                | Command::Exists(_)
                | Command::Append(_)
                | Command::Incr(_)
                | Command::Cas(_)
                | Command::GetDel(_)
                | Command::Many(_)
                | Command::Listing(_)
                | Command::Expire(_)
                | Command::Ttl(_)
                | Command::Lease(_)
                | Command::Describe(_)
                | Command::Watch(_)
                | Command::Exec(_)
        ) || matches!(self, Command::Script(script) if script.needs_node())
    }

    /// The command as part of a transaction, or `None` when transactions do not take it
    /// (see `multi.rs`).
    pub fn queued(self) -> Option<Queued> {
        Some(match self {
            Command::Get(cmd) => cmd.queued(),
            Command::Set(cmd) => cmd.queued(),
            Command::Del(cmd) => cmd.queued(),
            Command::GetDel(cmd) => cmd.queued(),
            Command::Exists(cmd) => cmd.queued(),
            Command::Append(cmd) => cmd.queued(),
            Command::Incr(cmd) => cmd.queued(),
            Command::Expire(cmd) => cmd.queued(),
            Command::Ttl(cmd) => cmd.queued(),
            Command::Many(cmd) => cmd.queued()?,
            _ => return None,
        })
    }

    /// Why the command may not be queued between `MULTI` and `EXEC`, when a specific reason
    /// beats the list of those that may (see `queued`).
    pub fn refused_in_transaction(&self) -> Option<&'static str> {
        match self {
            Command::Lease(_) => Some(
                "ERR LEASE is not allowed inside a transaction on quorate: grant, renew or \
                 revoke the lease before MULTI",
            ),
            Command::Set(set) if set.leased().is_some() => Some(
                "ERR SET with LEASE or EPHEMERAL is not allowed inside a transaction on \
                 quorate: a leased write fails alone when its lease is gone",
            ),
            _ => None,
        }
    }

    /// True for commands that change the store (refused to read-only users).
    pub fn is_write(&self) -> bool {
        self.needs_node() && !self.is_read()
    }

    /// True for commands only `admin` users may run (membership, backups).
    pub fn is_admin(&self) -> bool {
        matches!(self, Command::Snapshot(_) | Command::Member(_))
    }

    /// True for commands a connection may send before it authenticates.
    pub fn before_auth(&self) -> bool {
        matches!(self, Command::Auth(_) | Command::Hello(_) | Command::Quit)
    }

    /// The command's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping(_) => "ping",
            Command::Get(_) => "get",
            Command::Set(_) => "set",
            Command::Del(_) => "del",
            Command::Exists(_) => "exists",
            Command::Append(_) => "append",
            Command::Incr(_) => "incr",
            Command::Cas(_) => "cas",
            Command::GetDel(_) => "getdel",
            Command::Many(cmd) => cmd.name(),
            Command::Listing(cmd) => cmd.name(),
            Command::Expire(_) => "expire",
            Command::Ttl(_) => "ttl",
            Command::Lease(_) => "lease",
            Command::Describe(cmd) => cmd.name(),
            Command::Info(_) => "info",
            Command::Client(_) => "client",
            Command::ReadMode(_) => "readmode",
            Command::Config(_) => "config",
            Command::CommandInfo(_) => "command",
            Command::Hello(_) => "hello",
            Command::Auth(_) => "auth",
            Command::Select(_) => "select",
            Command::Snapshot(_) => "snapshot",
            Command::Script(_) => "eval",
            Command::Multi => "multi",
            Command::Discard => "discard",
            Command::Unwatch => "unwatch",
            Command::Watch(_) => "watch",
            Command::Exec(_) => "exec",
            Command::Subscribe(cmd) => cmd.kind.word(),
            Command::Publish(_) => "publish",
            Command::XRead(_) => "xread",
            Command::Member(_) => "member",
            Command::Quit => "quit",
            Command::Unknown(_) => "unknown",
        }
    }

    /// True for commands that only read. A read waits until the connection's earlier writes
    /// completed (see `session::Order`).
    pub fn is_read(&self) -> bool {
        match self {
            Command::Get(_)
            | Command::Exists(_)
            | Command::Ttl(_)
            | Command::Describe(_)
            | Command::Listing(_)
            | Command::Watch(_) => true,
            Command::Many(cmd) => cmd.is_read(),
            Command::Lease(cmd) => cmd.is_read(),
            _ => false,
        }
    }

    /// True for commands that send exactly one request to the node (see `session::Order`).
    pub fn is_single_request(&self) -> bool {
        match self {
            Command::Del(cmd) => cmd.keys() == 1,
            Command::Exists(cmd) => cmd.keys() == 1,
            Command::Script(cmd) => cmd.is_single_request(),
            // It may grant the session lease first.
            Command::Set(cmd) => cmd.leased() != Some(Leased::Session),
            _ => true,
        }
    }

    /// Runs a command that needs the node.
    pub async fn execute(self, exec: &mut Exec) -> Frame {
        // The rarer commands' futures are boxed: this future is as large as the largest arm,
        // and every request's task carries it (see `Handler::spawn`).
        let result = match self {
            Command::Get(cmd) => cmd.execute(exec).await,
            Command::Set(cmd) => cmd.execute(exec).await,
            Command::Del(cmd) => cmd.execute(exec).await,
            Command::Exists(cmd) => cmd.execute(exec).await,
            Command::Append(cmd) => cmd.execute(exec).await,
            Command::Incr(cmd) => cmd.execute(exec).await,
            Command::Expire(cmd) => cmd.execute(exec).await,
            Command::Ttl(cmd) => cmd.execute(exec).await,
            Command::Lease(cmd) => Box::pin(cmd.execute(exec)).await,
            Command::Describe(cmd) => Box::pin(cmd.execute(exec)).await,
            Command::Cas(cmd) => cmd.execute(exec).await,
            Command::GetDel(cmd) => cmd.execute(exec).await,
            Command::Many(cmd) => Box::pin(cmd.execute(exec)).await,
            Command::Listing(cmd) => Box::pin(cmd.execute(exec)).await,
            Command::Watch(cmd) => Box::pin(cmd.execute(exec)).await,
            Command::Exec(cmd) => Box::pin(cmd.execute(exec)).await,
            Command::Script(cmd) => Box::pin(cmd.execute(exec)).await,
            other => unreachable!("{other:?} does not need the node"),
        };
        result.unwrap_or_else(|e| e.to_frame())
    }
}

/// The arguments of a command, consumed left to right.
pub struct Parse {
    /// The command name as sent.
    pub name: String,
    args: std::vec::IntoIter<Bytes>,
    value_max: usize,
}

impl Parse {
    fn new(frame: Frame, value_max: usize) -> Result<Parse, Frame> {
        let Frame::Array(items) = frame else {
            return Err(Frame::error(
                "ERR Protocol error: expected an array of bulk strings",
            ));
        };
        let mut args = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Frame::Bulk(bytes) => args.push(bytes),
                Frame::Simple(text) => args.push(Bytes::from(text)),
                Frame::Integer(n) => args.push(Bytes::from(n.to_string())),
                _ => {
                    return Err(Frame::error(
                        "ERR Protocol error: command arguments must be bulk strings",
                    ))
                }
            }
        }
        let mut args = args.into_iter();
        let Some(name) = args.next() else {
            return Err(Frame::error("ERR empty command"));
        };
        Ok(Parse {
            name: String::from_utf8_lossy(&name).into_owned(),
            args,
            value_max,
        })
    }

    fn arity(&self) -> Frame {
        Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            self.name.to_ascii_lowercase()
        ))
    }

    /// The next argument, which must be there.
    pub fn bytes(&mut self) -> Result<Bytes, Frame> {
        self.args.next().ok_or_else(|| self.arity())
    }

    /// The next argument as a key or value, refused above `value_max`.
    pub fn sized(&mut self, what: &str) -> Result<Bytes, Frame> {
        let bytes = self.bytes()?;
        if bytes.len() > self.value_max {
            return Err(Frame::error(format!(
                "ERR {what} is {} bytes, over the limit of {} (value_max)",
                bytes.len(),
                self.value_max
            )));
        }
        Ok(bytes)
    }

    pub fn optional(&mut self) -> Option<Bytes> {
        self.args.next()
    }

    /// The next argument as text, upper-cased (for keywords).
    pub fn keyword(&mut self) -> Option<String> {
        self.args
            .next()
            .map(|b| String::from_utf8_lossy(&b).to_ascii_uppercase())
    }

    pub fn integer(&mut self) -> Result<i64, Frame> {
        let bytes = self.bytes()?;
        parse_integer(&bytes)
            .ok_or_else(|| Frame::error("ERR value is not an integer or out of range"))
    }

    pub fn remaining(&self) -> usize {
        self.args.len()
    }

    /// Every argument left.
    pub fn rest(&mut self) -> Vec<Bytes> {
        self.args.by_ref().collect()
    }

    fn finish(&mut self) -> Result<(), Frame> {
        match self.args.len() {
            0 => Ok(()),
            _ => Err(Frame::error(format!(
                "ERR syntax error: unexpected arguments to '{}'",
                self.name.to_ascii_lowercase()
            ))),
        }
    }
}

pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Parses an optional trailing read-mode word (`LINEARIZABLE`, `SYNC` or `LOCAL`).
fn read_mode_arg(parse: &mut Parse) -> Result<Option<ReadMode>, Frame> {
    match parse.keyword().as_deref() {
        None => Ok(None),
        Some("LINEARIZABLE") => Ok(Some(ReadMode::Linearizable)),
        Some("SYNC") => Ok(Some(ReadMode::Sync)),
        Some("LOCAL") => Ok(Some(ReadMode::Local)),
        Some(other) => Err(Frame::error(format!(
            "ERR unknown read mode '{other}': use LINEARIZABLE, SYNC or LOCAL"
        ))),
    }
}

/// A read's answer as a value: `Value`, or `Siblings` from a protocol that keeps concurrent
/// versions (whose context the connection remembers for its next SET of `key`). `None`: the
/// key is absent; several values: concurrent writes nobody has reconciled yet.
fn read_values(exec: &Exec, key: &Bytes, output: Output) -> Result<Vec<Bytes>, CallError> {
    match output {
        Output::Value(value) => Ok(value.into_iter().collect()),
        Output::Siblings { values, context } => {
            exec.contexts.learn(key, &context);
            Ok(values)
        }
        other => Err(unexpected(other)),
    }
}

/// Shorthand for commands whose node answer does not have the expected shape.
pub(crate) fn unexpected(output: quorate_core::Output) -> CallError {
    CallError::Unknown(format!(
        "the node answered with an unexpected output {output:?}"
    ))
}

/// For a command only the leader serves (`SNAPSHOT`, `MEMBER`): `MOVED` to the leader when
/// `error` names another node as leader, or `TRYAGAIN` while its client address is unknown
/// (`done` says what happens there, e.g. "snapshots are taken"); `None` for other errors.
pub(crate) fn to_leader(
    node: &crate::runtime::NodeHandle,
    error: &quorate_core::ClientError,
    done: &str,
) -> Option<Frame> {
    use quorate_core::ClientError;
    match *error {
        ClientError::NotLeader {
            leader: Some(leader),
        }
        | ClientError::Indeterminate {
            leader: Some(leader),
        } if leader != node.me() => Some(match node.peers.client_addr_of(leader) {
            Some(addr) => Frame::error(format!("MOVED 0 {addr}")),
            None => Frame::error(format!(
                "TRYAGAIN {done} at the leader, node {leader}, whose client address is not known yet"
            )),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(words: &[&str]) -> Frame {
        Frame::Array(
            words
                .iter()
                .map(|w| Frame::Bulk(Bytes::copy_from_slice(w.as_bytes())))
                .collect(),
        )
    }

    #[test]
    fn every_command_in_the_table_is_dispatched_and_counted() {
        for (name, arity, ..) in command::TABLE {
            // The fewest words the command takes, each a harmless integer argument.
            let mut words = vec![*name];
            words.extend(std::iter::repeat_n("1", arity.unsigned_abs() as usize - 1));
            let parsed = Command::from_frame(frame(&words), 1024);
            assert!(
                !matches!(parsed, Ok(Command::Unknown(_))),
                "{name} is in COMMAND's table but not dispatched"
            );
        }
        let count = Command::from_frame(frame(&["COMMAND", "COUNT"]), 1024).unwrap();
        let Command::CommandInfo(count) = count else {
            panic!("COMMAND COUNT parsed as {count:?}");
        };
        assert_eq!(count.reply(), Frame::Integer(command::TABLE.len() as i64));
    }

    #[test]
    fn every_command_that_runs_against_the_node_has_a_latency_histogram() {
        for (name, arity, ..) in command::TABLE {
            let mut words = vec![*name];
            words.extend(std::iter::repeat_n("1", arity.unsigned_abs() as usize - 1));
            let Ok(parsed) = Command::from_frame(frame(&words), 1024) else {
                continue;
            };
            if parsed.needs_node() {
                assert!(
                    crate::metrics::NODE_COMMANDS.contains(&parsed.name()),
                    "{name} runs as {:?}, which has no histogram",
                    parsed.name()
                );
            }
        }
    }

    #[test]
    fn command_info_answers_known_names_and_nil_for_others() {
        let Ok(Command::CommandInfo(info)) =
            Command::from_frame(frame(&["command", "info", "GET", "nosuch"]), 1024)
        else {
            panic!("COMMAND INFO did not parse");
        };
        let Frame::Array(items) = info.reply() else {
            panic!("not an array");
        };
        assert_eq!(items.len(), 2);
        let Frame::Array(get) = &items[0] else {
            panic!("GET's entry is {:?}", items[0]);
        };
        assert_eq!(get[0], Frame::Bulk(Bytes::from_static(b"get")));
        assert_eq!(get[1], Frame::Integer(-2));
        assert_eq!(items[1], Frame::Null);
    }

    #[test]
    fn hello_takes_versions_two_and_three_and_refuses_others() {
        for (version, ok) in [("2", true), ("3", true), ("4", false), ("x", false)] {
            let parsed = Command::from_frame(frame(&["HELLO", version]), 1024);
            match (parsed, ok) {
                (Ok(Command::Hello(_)), true) => {}
                (Err(Frame::Error(e)), false) => assert!(e.starts_with("NOPROTO"), "{e}"),
                (other, _) => panic!("HELLO {version}: {other:?}"),
            }
        }
    }
}
