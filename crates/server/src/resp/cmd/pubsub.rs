//! `SUBSCRIBE`, `PSUBSCRIBE`, `UNSUBSCRIBE`, `PUNSUBSCRIBE` and `PUBLISH`: Redis pub/sub on one
//! node, which carries the keyspace notifications (see [`crate::watch`]).
//!
//! A subscribing connection gets one confirmation per channel, `[subscribe, channel, count]`
//! (RESP3: a push frame), then `[message, channel, payload]` or `[pmessage, pattern, channel,
//! payload]` for each message. Over RESP2 a subscribed connection takes only the pub/sub
//! commands, `PING` (answered `[pong, message]`) and `QUIT`, as in Redis; over RESP3 it takes
//! any command. `PUBLISH` reaches the subscribers of this node only (Redis Cluster would
//! forward it to every node); it answers how many subscriptions here matched.

use super::Parse;
use crate::resp::frame::Frame;
use bytes::Bytes;

/// Which of the four subscription commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Subscribe,
    PSubscribe,
    Unsubscribe,
    PUnsubscribe,
}

impl Kind {
    /// The word of its confirmations.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Subscribe => "subscribe",
            Kind::PSubscribe => "psubscribe",
            Kind::Unsubscribe => "unsubscribe",
            Kind::PUnsubscribe => "punsubscribe",
        }
    }

    /// Patterns rather than channels.
    pub fn patterns(self) -> bool {
        matches!(self, Kind::PSubscribe | Kind::PUnsubscribe)
    }

    pub fn adds(self) -> bool {
        matches!(self, Kind::Subscribe | Kind::PSubscribe)
    }
}

#[derive(Debug)]
pub struct Subscribe {
    pub kind: Kind,
    /// Channels or patterns; empty for an unsubscribe from all.
    pub names: Vec<Bytes>,
}

impl Subscribe {
    pub fn parse(name: &str, parse: &mut Parse) -> Result<Subscribe, Frame> {
        let kind = match name {
            "subscribe" => Kind::Subscribe,
            "psubscribe" => Kind::PSubscribe,
            "unsubscribe" => Kind::Unsubscribe,
            _ => Kind::PUnsubscribe,
        };
        let names = parse.rest();
        if kind.adds() && names.is_empty() {
            return Err(Frame::error(format!(
                "ERR wrong number of arguments for '{name}' command"
            )));
        }
        Ok(Subscribe { kind, names })
    }
}

#[derive(Debug)]
pub struct Publish {
    pub channel: Bytes,
    pub message: Bytes,
}

impl Publish {
    pub fn parse(parse: &mut Parse) -> Result<Publish, Frame> {
        Ok(Publish {
            channel: parse.bytes()?,
            message: parse.sized("message")?,
        })
    }

    pub fn reply(self, watch: &crate::watch::Watch) -> Frame {
        Frame::Integer(watch.publish(crate::watch::Message {
            channel: self.channel,
            payload: self.message,
        }))
    }
}
