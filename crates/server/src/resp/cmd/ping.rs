//! `PING [message]`: `PONG`, or the message back.

use super::Parse;
use crate::resp::frame::Frame;
use bytes::Bytes;

#[derive(Debug)]
pub struct Ping {
    message: Option<Bytes>,
}

impl Ping {
    pub fn parse(parse: &mut Parse) -> Result<Ping, Frame> {
        Ok(Ping {
            message: parse.optional(),
        })
    }

    pub fn reply(self) -> Frame {
        match self.message {
            None => Frame::Simple("PONG".into()),
            Some(message) => Frame::Bulk(message),
        }
    }

    /// The answer on a RESP2 connection with subscriptions: `[pong, message]`, as Redis
    /// answers there (so that it reads like a message).
    pub fn reply_subscribed(self) -> Frame {
        Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"pong")),
            Frame::Bulk(self.message.unwrap_or_default()),
        ])
    }
}
