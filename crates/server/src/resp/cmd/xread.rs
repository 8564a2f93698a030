//! `XREAD [COUNT n] [BLOCK ms] STREAMS __changes__ <id>`: the change feed (etcd's watch with a
//! start revision) in the shape of a Redis stream read.
//!
//! Every committed change is an entry `<revision>-<n>` with the fields `key`, `event` (Redis's
//! keyspace event name) and, unless the key is now absent, `value`. Revisions are the same on
//! every node of a log protocol, so a client resumes after the last id it saw, at any node,
//! without missing or repeating a change; `$` starts after the node's latest revision and `0`
//! from the oldest kept. A resume point older than the node's window is refused with
//! `-ERR required revision has been compacted` and the oldest revision one can resume after.
//! `BLOCK ms` waits up to `ms` (0: for ever) for a change, answering nil if none came. `COUNT`
//! bounds the entries but never splits one command's changes. `__changes__` is the only
//! stream: quorate keeps no Redis stream type.

use super::Parse;
use crate::resp::frame::{Frame, Proto};
use crate::watch::{Watch, CHANGES_STREAM};
use bytes::Bytes;
use std::time::Duration;

/// Entries answered at most, whatever `COUNT` asks (whole commands may add a few).
const COUNT_MAX: usize = 10_000;

#[derive(Debug)]
pub struct XRead {
    count: usize,
    block: Option<Duration>,
    /// `None`: `$`, after the node's latest revision.
    after: Option<(u64, u32)>,
}

impl XRead {
    pub fn parse(parse: &mut Parse) -> Result<XRead, Frame> {
        let mut read = XRead {
            count: COUNT_MAX,
            block: None,
            after: None,
        };
        loop {
            match parse.keyword().as_deref() {
                Some("COUNT") => {
                    let n = parse.integer()?;
                    read.count = (n.max(1) as usize).min(COUNT_MAX);
                }
                Some("BLOCK") => {
                    let ms = parse.integer()?;
                    if ms < 0 {
                        return Err(Frame::error("ERR timeout is negative"));
                    }
                    read.block = Some(Duration::from_millis(ms as u64));
                }
                Some("STREAMS") => break,
                _ => return Err(Frame::error("ERR syntax error")),
            }
        }
        let rest = parse.rest();
        if rest.len() != 2 {
            return Err(Frame::error(
                "ERR only one stream can be read: XREAD ... STREAMS __changes__ <revision>",
            ));
        }
        if rest[0] != CHANGES_STREAM {
            return Err(Frame::error(
                "ERR the only stream is __changes__ (the change feed); quorate keeps no Redis streams",
            ));
        }
        read.after = parse_id(&rest[1])?;
        Ok(read)
    }

    pub async fn execute(self, watch: &Watch, proto: Proto) -> Frame {
        if let Some(why) = watch.refusal() {
            return Frame::error(format!("ERR no change feed on this node: {why}"));
        }
        let mut revisions = watch.revisions();
        let after = self.after.unwrap_or((watch.revision(), u32::MAX));
        let deadline = self
            .block
            .filter(|d| !d.is_zero())
            .map(|d| tokio::time::Instant::now() + d);
        loop {
            revisions.borrow_and_update();
            match watch.read(after, self.count) {
                Err(compacted) => {
                    return Frame::error(format!(
                        "ERR required revision has been compacted: the oldest revision kept is {}; resume with XREAD STREAMS __changes__ {}",
                        compacted.oldest, compacted.oldest
                    ))
                }
                Ok(changes) if !changes.is_empty() => return reply(changes, proto),
                Ok(_) if self.block.is_none() => return Frame::Null,
                Ok(_) => {}
            }
            let changed = revisions.changed();
            match deadline {
                Some(at) => match tokio::time::timeout_at(at, changed).await {
                    Ok(Ok(())) => {}
                    _ => return Frame::Null,
                },
                None => {
                    if changed.await.is_err() {
                        return Frame::Null;
                    }
                }
            }
        }
    }
}

/// `$`, `<revision>` or `<revision>-<n>`.
fn parse_id(id: &[u8]) -> Result<Option<(u64, u32)>, Frame> {
    if id == b"$" {
        return Ok(None);
    }
    let bad = || Frame::error("ERR Invalid stream ID specified as stream command argument");
    let text = std::str::from_utf8(id).map_err(|_| bad())?;
    let (revision, n) = match text.split_once('-') {
        Some((r, n)) => (r, Some(n)),
        None => (text, None),
    };
    let revision: u64 = revision.parse().map_err(|_| bad())?;
    // A bare revision means every change of it was seen.
    let n: u32 = match n {
        Some(n) => n.parse().map_err(|_| bad())?,
        None => u32::MAX,
    };
    Ok(Some((revision, n)))
}

/// Redis's stream reply: `[[stream, [[id, [field, value, ...]], ...]]]`; RESP3 a map.
fn reply(changes: Vec<quorate_core::kv::Change>, proto: Proto) -> Frame {
    let bulk = |b: &'static str| Frame::Bulk(Bytes::from_static(b.as_bytes()));
    let entries = changes
        .into_iter()
        .map(|c| {
            let mut fields = vec![
                bulk("key"),
                Frame::Bulk(c.key),
                bulk("event"),
                bulk(c.event.name()),
            ];
            if let Some(value) = c.value {
                fields.push(bulk("value"));
                fields.push(Frame::Bulk(value));
            }
            let id = format!("{}-{}", c.revision, c.n);
            Frame::Array(vec![Frame::Bulk(Bytes::from(id)), Frame::Array(fields)])
        })
        .collect();
    let stream = Frame::Bulk(Bytes::from_static(CHANGES_STREAM));
    match proto {
        Proto::Resp2 => Frame::Array(vec![Frame::Array(vec![stream, Frame::Array(entries)])]),
        Proto::Resp3 => Frame::Map(vec![(stream, Frame::Array(entries))]),
    }
}
