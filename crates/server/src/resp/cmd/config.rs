//! `CONFIG GET parameter` and `CONFIG SET notify-keyspace-events classes`.
//!
//! `redis-benchmark` reads `save` and `appendonly` to print them; quorate fsyncs every write
//! before acknowledging it, which is what `appendonly yes` with `appendfsync always` means
//! for Redis, so that is what it answers. `notify-keyspace-events` turns keyspace
//! notifications on for this node, as in Redis (`KEA`: every event on both channel kinds; see
//! [`crate::watch`]); it is node-local and not persisted, like a Redis `CONFIG SET` without
//! `CONFIG REWRITE`. Other parameters read as absent (an empty map) and cannot be set.

use super::Parse;
use crate::resp::frame::Frame;
use crate::watch::Watch;
use bytes::Bytes;

const NOTIFY: &str = "notify-keyspace-events";

#[derive(Debug)]
pub struct Config {
    parameter: String,
    /// `CONFIG SET`'s value.
    value: Option<Bytes>,
}

impl Config {
    pub fn parse(parse: &mut Parse) -> Result<Config, Frame> {
        let set = match parse.keyword().as_deref() {
            Some("GET") => false,
            Some("SET") => true,
            _ => {
                return Err(Frame::error(
                    "ERR only CONFIG GET and CONFIG SET are supported",
                ))
            }
        };
        let parameter = String::from_utf8_lossy(&parse.bytes()?).to_ascii_lowercase();
        let value = if set { Some(parse.bytes()?) } else { None };
        Ok(Config { parameter, value })
    }

    pub fn reply(self, watch: &Watch) -> Frame {
        if let Some(value) = self.value {
            return match self.parameter.as_str() {
                NOTIFY => match watch.set_flags(&value) {
                    Ok(()) => Frame::ok(),
                    Err(e) => Frame::error(e),
                },
                other => Frame::error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{other}' (quorate sets only {NOTIFY})"
                )),
            };
        }
        let value = match self.parameter.as_str() {
            "save" => String::new(),
            "appendonly" => "yes".into(),
            "appendfsync" => "always".into(),
            NOTIFY => watch.flags(),
            _ => return Frame::Map(Vec::new()),
        };
        // A map, as Redis 7 answers over RESP3 (a flat pair over RESP2).
        Frame::Map(vec![(
            Frame::Bulk(Bytes::from(self.parameter)),
            Frame::Bulk(Bytes::from(value)),
        )])
    }
}
