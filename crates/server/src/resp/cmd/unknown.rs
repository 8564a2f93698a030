//! Any other command: an error naming it, as Redis words it.

use super::Parse;
use crate::resp::frame::Frame;

#[derive(Debug)]
pub struct Unknown {
    name: String,
}

impl Unknown {
    pub fn new(parse: &Parse) -> Unknown {
        Unknown {
            name: parse.name.chars().take(64).collect(),
        }
    }

    pub fn reply(self) -> Frame {
        Frame::error(format!(
            "ERR unknown command '{}'; quorate speaks PING GET SET DEL EXISTS APPEND INCR DECR INCRBY DECRBY CAS INFO CLIENT READMODE HELLO (COMMAND LIST names them all)",
            self.name.escape_default()
        ))
    }
}
