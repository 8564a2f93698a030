//! `SELECT db`: quorate has one keyspace, database 0; some client libraries select it.

use super::Parse;
use crate::resp::frame::Frame;

#[derive(Debug)]
pub struct Select {
    db: i64,
}

impl Select {
    pub fn parse(parse: &mut Parse) -> Result<Select, Frame> {
        Ok(Select {
            db: parse.integer()?,
        })
    }

    pub fn reply(self) -> Frame {
        match self.db {
            0 => Frame::ok(),
            _ => Frame::error("ERR DB index is out of range: quorate has only database 0"),
        }
    }
}
