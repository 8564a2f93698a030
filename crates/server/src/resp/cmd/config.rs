//! `CONFIG GET parameter`: what tools ask on connecting.
//!
//! `redis-benchmark` reads `save` and `appendonly` to print them; quorate fsyncs every write
//! before acknowledging it, which is what `appendonly yes` with `appendfsync always` means
//! for Redis, so that is what it answers. Other parameters read as absent (an empty list).

use super::Parse;
use crate::resp::frame::Frame;
use bytes::Bytes;

#[derive(Debug)]
pub struct Config {
    parameter: String,
}

impl Config {
    pub fn parse(parse: &mut Parse) -> Result<Config, Frame> {
        match parse.keyword().as_deref() {
            Some("GET") => {}
            _ => return Err(Frame::error("ERR only CONFIG GET is supported")),
        }
        let parameter = String::from_utf8_lossy(&parse.bytes()?).to_ascii_lowercase();
        Ok(Config { parameter })
    }

    pub fn reply(self) -> Frame {
        let value = match self.parameter.as_str() {
            "save" => "",
            "appendonly" => "yes",
            "appendfsync" => "always",
            _ => return Frame::Array(Vec::new()),
        };
        Frame::Array(vec![
            Frame::Bulk(Bytes::from(self.parameter)),
            Frame::Bulk(Bytes::from_static(value.as_bytes())),
        ])
    }
}
