//! `EVAL`, `EVALSHA`, `SCRIPT LOAD|EXISTS|FLUSH`: the lock scripts client libraries send,
//! run as the state machine's own operations. There is no Lua interpreter.
//!
//! ## Why scripts at all
//!
//! A Redis lock client takes a lock with `SET name token NX PX ms`, which quorate serves, but
//! releases, extends and re-arms it with Lua scripts ("delete the key if it still holds my
//! token"): redis-py's `Lock` calls `EVALSHA` and, on `NOSCRIPT`, `SCRIPT LOAD` then
//! `EVALSHA` again. Without them no lock can ever be released. A general interpreter would
//! have to run inside every replica's state machine, deterministically; instead each script
//! clients actually send is recognized by its text (whitespace aside) and carried out with
//! operations the store already replicates and the simulator already checks:
//!
//! | script (redis-py `Lock`) | carried out as |
//! |---|---|
//! | release: delete `KEYS[1]` if it holds `ARGV[1]` | one `Op::DeleteIf` (`DELIFEQ`) |
//! | reacquire: if it holds `ARGV[1]`, `PEXPIRE KEYS[1] ARGV[2]` | `WATCH`'s revision read, a read of the value, then a transaction guarded by the revision (`Guard::Unchanged`) that sets the deadline |
//! | extend: if it holds `ARGV[1]` and has a deadline, add `ARGV[2]` ms to it (or set it, with `ARGV[3] = 1`) | the same, after reading the time left |
//!
//! The guarded transaction applies only if the key did not change (value or deadline) since
//! the revision was read, so the reads before it still hold when it applies: the script is
//! atomic, as Lua is in Redis. If the key changed meanwhile the steps run again (a few
//! times). One difference: an extension adds `ARGV[2]` to the time left when it was read,
//! measured from when the leader proposes the transaction, so the lease may end a round trip
//! later than Redis's would, never earlier. Deadlines are Raft's: on other protocols reacquire
//! and extend are refused as `PEXPIRE` is.
//!
//! Any other script is refused by name (`ERR quorate runs no Lua ...`), and `EVALSHA` of an
//! unknown digest answers `NOSCRIPT`, as Redis does before a `SCRIPT LOAD`.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Expiry, Guard, Lifetime, Op, Output, ReadMode, Time};
use std::sync::LazyLock;

/// How many times a script's guarded step runs again when its key changed meanwhile.
const ATTEMPTS: usize = 8;

/// The scripts quorate carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Release,
    Reacquire,
    Extend,
}

/// redis-py's `Lock` scripts (redis/lock.py, unchanged from 4.x to 8.x).
const RELEASE: &str = "
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    ";

const REACQUIRE: &str = "
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        if tonumber(ARGV[2]) > 0 then
            redis.call('pexpire', KEYS[1], ARGV[2])
        end
        return 1
    ";

const EXTEND: &str = "
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        local expiration = redis.call('pttl', KEYS[1])
        if not expiration then
            expiration = 0
        end
        if expiration < 0 then
            return 0
        end

        local newttl = ARGV[2]
        if ARGV[3] == \"0\" then
            newttl = ARGV[2] + expiration
        end
        if tonumber(newttl) <= 0 then
            return 1
        end
        redis.call('pexpire', KEYS[1], newttl)
        return 1
    ";

/// Each known script with its text as clients send it and its SHA1 digest.
static SCRIPTS: LazyLock<Vec<(Known, String, String)>> = LazyLock::new(|| {
    [
        (Known::Release, RELEASE),
        (Known::Reacquire, REACQUIRE),
        (Known::Extend, EXTEND),
    ]
    .into_iter()
    .map(|(known, text)| {
        (
            known,
            normalized(text.as_bytes()),
            sha1_hex(text.as_bytes()),
        )
    })
    .collect()
});

fn sha1_hex(text: &[u8]) -> String {
    sha1_smol::Sha1::from(text).digest().to_string()
}

/// The script's words joined by single spaces: texts that differ in layout compare equal.
fn normalized(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The known script `text` is, if any.
fn recognize(text: &[u8]) -> Option<(Known, &'static str)> {
    let text = normalized(text);
    SCRIPTS
        .iter()
        .find(|(_, known, _)| *known == text)
        .map(|(known, _, sha)| (*known, sha.as_str()))
}

/// The known script whose digest is `sha` (any case), if any.
fn by_sha(sha: &[u8]) -> Option<Known> {
    let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
    SCRIPTS
        .iter()
        .find(|(_, _, digest)| *digest == sha)
        .map(|(known, ..)| *known)
}

fn not_runnable() -> Frame {
    Frame::error(
        "ERR quorate runs no Lua: EVAL, EVALSHA and SCRIPT LOAD take only the lock scripts \
         of redis-py's Lock (release, extend, reacquire); use DELIFEQ, SET NX PX, \
         MULTI/EXEC with WATCH, or CAS instead",
    )
}

/// `SCRIPT ...` and the scripts `EVAL`/`EVALSHA` run.
#[derive(Debug)]
pub enum Script {
    /// `SCRIPT LOAD`, answered here: the digest.
    Loaded(String),
    /// `SCRIPT EXISTS`: 1 or 0 per digest.
    Exists(Vec<bool>),
    /// `SCRIPT FLUSH`: nothing to forget.
    Flushed,
    /// A script to run against the node.
    Run {
        known: Known,
        key: Bytes,
        args: Vec<Bytes>,
    },
}

impl Script {
    /// `SCRIPT LOAD text`, `SCRIPT EXISTS sha ...`, `SCRIPT FLUSH [ASYNC|SYNC]`.
    pub fn parse_script(parse: &mut Parse) -> Result<Script, Frame> {
        match parse.keyword().as_deref() {
            Some("LOAD") => {
                let text = parse.bytes()?;
                let (_, sha) = recognize(&text).ok_or_else(not_runnable)?;
                Ok(Script::Loaded(sha.to_string()))
            }
            Some("EXISTS") => {
                let shas = parse.rest();
                if shas.is_empty() {
                    return Err(Frame::error(
                        "ERR wrong number of arguments for 'script|exists' command",
                    ));
                }
                Ok(Script::Exists(
                    shas.iter().map(|sha| by_sha(sha).is_some()).collect(),
                ))
            }
            Some("FLUSH") => {
                parse.keyword();
                Ok(Script::Flushed)
            }
            other => Err(Frame::error(format!(
                "ERR unknown SCRIPT subcommand '{}': quorate takes LOAD, EXISTS and FLUSH",
                other.unwrap_or_default()
            ))),
        }
    }

    /// `EVAL text numkeys key ... arg ...` (`evalsha`: a digest instead of the text).
    pub fn parse_eval(name: &str, parse: &mut Parse) -> Result<Script, Frame> {
        let script = parse.bytes()?;
        let known = if name.starts_with("evalsha") {
            by_sha(&script)
                .ok_or_else(|| Frame::error("NOSCRIPT No matching script. Please use EVAL."))?
        } else {
            recognize(&script).ok_or_else(not_runnable)?.0
        };
        let keys = parse.integer()?;
        if keys != 1 {
            return Err(Frame::error(format!(
                "ERR this script takes 1 key, {keys} given"
            )));
        }
        let key = parse.sized("key")?;
        let args = parse.rest();
        let wanted = match known {
            Known::Release => 1,
            Known::Reacquire => 2,
            Known::Extend => 3,
        };
        if args.len() != wanted {
            return Err(Frame::error(format!(
                "ERR this script takes {wanted} arguments, {} given",
                args.len()
            )));
        }
        Ok(Script::Run { known, key, args })
    }

    /// True for what runs against the node (the scripts; `SCRIPT` is answered here).
    pub fn needs_node(&self) -> bool {
        matches!(self, Script::Run { .. })
    }

    /// True when the script sends one request to the node (release); the others read
    /// before they write.
    pub fn is_single_request(&self) -> bool {
        !matches!(self, Script::Run { known, .. } if *known != Known::Release)
    }

    /// `SCRIPT`'s answer, which needs no node.
    pub fn answer(&self) -> Frame {
        match self {
            Script::Loaded(sha) => Frame::Bulk(Bytes::from(sha.clone())),
            Script::Exists(found) => Frame::Array(
                found
                    .iter()
                    .map(|&f| Frame::Integer(i64::from(f)))
                    .collect(),
            ),
            Script::Flushed | Script::Run { .. } => Frame::ok(),
        }
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let Script::Run { known, key, args } = self else {
            return Ok(self.answer());
        };
        let token = args[0].clone();
        if known == Known::Release {
            return match exec
                .write(Op::DeleteIf {
                    key,
                    expected: token,
                })
                .await?
            {
                Output::Existed(done) => Ok(Frame::Integer(i64::from(done))),
                other => Err(unexpected(other)),
            };
        }
        let ms = |arg: &Bytes| {
            super::parse_integer(arg).ok_or_else(|| {
                CallError::Rejected("ERR value is not an integer or out of range".into())
            })
        };
        let amount = ms(&args[1])?;
        let replace = known == Known::Reacquire || args.get(2).is_some_and(|a| &a[..] != b"0");
        for _ in 0..ATTEMPTS {
            let Some(revision) = holds(exec, &key, &token).await? else {
                return Ok(Frame::Integer(0));
            };
            let ttl_ms = if replace {
                amount
            } else {
                match time_left(exec, &key).await? {
                    Some(left) => amount.saturating_add(left),
                    None => return Ok(Frame::Integer(0)), // No deadline to extend.
                }
            };
            if ttl_ms <= 0 {
                return Ok(Frame::Integer(1));
            }
            let guards = vec![Guard::Unchanged {
                key: key.clone(),
                revision,
            }];
            let expire = Op::Expire {
                key: key.clone(),
                expiry: Expiry::After {
                    ttl_ms: ttl_ms as u64,
                },
            };
            let txn = Op::txn(guards, vec![expire]).expect("a guard and an operation");
            match exec.write(txn).await? {
                Output::Txn(Some(_)) => return Ok(Frame::Integer(1)),
                Output::Txn(None) => continue, // The key changed since: read again.
                other => return Err(unexpected(other)),
            }
        }
        Err(CallError::Rejected(format!(
            "ERR the key changed {ATTEMPTS} times while the script ran; retry"
        )))
    }
}

/// The key's revision if it holds `token` (read after the revision, so a transaction
/// guarded by it applies only while the key still holds it); `None` otherwise.
async fn holds(exec: &mut Exec, key: &Bytes, token: &Bytes) -> Result<Option<u64>, CallError> {
    let revisions = Op::Revisions {
        keys: vec![key.clone()],
    };
    let revision = match exec.read(revisions, ReadMode::Linearizable).await? {
        Output::Revisions(revisions) if revisions.len() == 1 => revisions[0],
        other => return Err(unexpected(other)),
    };
    let get = Op::Get { key: key.clone() };
    match exec.read(get, ReadMode::Linearizable).await? {
        Output::Value(Some(value)) if value == *token => Ok(Some(revision)),
        Output::Value(_) => Ok(None),
        other => Err(unexpected(other)),
    }
}

/// The milliseconds the key has left (`PTTL`), or `None` when it has no deadline.
async fn time_left(exec: &mut Exec, key: &Bytes) -> Result<Option<i64>, CallError> {
    let lifetime = match exec
        .read(Op::Ttl { key: key.clone() }, ReadMode::Linearizable)
        .await?
    {
        Output::Lifetime(lifetime) => lifetime,
        other => return Err(unexpected(other)),
    };
    Ok(match lifetime {
        Lifetime::Until(_) => {
            Some(lifetime.pttl_ms(Time::from_nanos(crate::runtime::unix_nanos())))
        }
        Lifetime::Absent | Lifetime::Forever => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digests redis-py computes for its scripts (hashlib.sha1 of the text).
    #[test]
    fn the_lock_scripts_are_known_by_text_and_by_digest() {
        for (known, text) in [
            (Known::Release, RELEASE),
            (Known::Reacquire, REACQUIRE),
            (Known::Extend, EXTEND),
        ] {
            let (found, sha) = recognize(text.as_bytes()).expect("known");
            assert_eq!(found, known);
            assert_eq!(by_sha(sha.as_bytes()), Some(known));
            assert_eq!(by_sha(sha.to_uppercase().as_bytes()), Some(known));
            // Layout does not matter.
            let reflowed = text.replace("\n        ", "\n  ");
            assert_eq!(recognize(reflowed.as_bytes()).map(|k| k.0), Some(known));
        }
        assert!(recognize(b"return redis.call('flushall')").is_none());
        assert!(by_sha(b"0000000000000000000000000000000000000000").is_none());
    }
}
