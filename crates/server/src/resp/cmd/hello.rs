//! `HELLO [protover [AUTH username password] [SETNAME clientname]]`: the handshake current
//! client libraries open with (redis-py 8 sends `HELLO 3` by default).
//!
//! `protover` 2 or 3 chooses how this connection's replies are written from this reply on
//! (RESP3 has its own nil and map types); any other version is refused with `-NOPROTO`, as
//! Redis does, and the connection stays as it was. The answer is a map describing the server:
//! `server`, `version`, `proto`, `id` (the connection's session id), `mode` (`standalone`:
//! any node takes any command and forwards what it cannot serve), `role` and `modules`.
//!
//! `AUTH user password` authenticates as the `AUTH` command does (see [`crate::auth`]); on a
//! node with passwords, a connection that has not authenticated gets `-NOAUTH` for a
//! `HELLO` without it, as Redis answers.

use super::Parse;
use crate::resp::frame::{Frame, Proto};
use crate::resp::session::Session;
use bytes::Bytes;

const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

#[derive(Debug)]
pub struct Hello {
    proto: Option<Proto>,
    auth: Option<(Bytes, Bytes)>,
    name: Option<Bytes>,
}

impl Hello {
    pub fn parse(parse: &mut Parse) -> Result<Hello, Frame> {
        let mut hello = Hello {
            proto: None,
            auth: None,
            name: None,
        };
        if parse.remaining() == 0 {
            return Ok(hello);
        }
        hello.proto = Some(match parse.integer() {
            Ok(2) => Proto::Resp2,
            Ok(3) => Proto::Resp3,
            _ => return Err(Frame::error("NOPROTO unsupported protocol version")),
        });
        while let Some(option) = parse.keyword() {
            match option.as_str() {
                "AUTH" => hello.auth = Some((parse.bytes()?, parse.bytes()?)),
                "SETNAME" => hello.name = Some(parse.bytes()?),
                other => {
                    return Err(Frame::error(format!(
                        "ERR syntax error in HELLO option '{other}': use AUTH user pass or SETNAME name"
                    )))
                }
            }
        }
        Ok(hello)
    }

    /// The reply, and the protocol the connection speaks from it on.
    pub fn reply(
        self,
        session: &mut Session,
        current: Proto,
        config: &crate::ServerConfig,
    ) -> (Frame, Proto) {
        if let Some((user, password)) = &self.auth {
            let checked = crate::auth::authenticate(
                config.requirepass.as_deref(),
                &config.users,
                Some(user),
                password,
            );
            match checked {
                Ok(access) => session.access = Some(access),
                Err(e) => return (Frame::error(e), current),
            }
        }
        if session.access.is_none() {
            return (Frame::error(NOAUTH_HELLO), current);
        }
        if let Some(name) = &self.name {
            session.name = Some(String::from_utf8_lossy(name).into_owned());
        }
        let proto = self.proto.unwrap_or(current);
        let bulk = |text: &str| Frame::Bulk(Bytes::from(text.to_owned()));
        let map = Frame::Map(vec![
            (bulk("server"), bulk("quorate")),
            (bulk("version"), bulk(env!("CARGO_PKG_VERSION"))),
            (bulk("proto"), Frame::Integer(proto.version())),
            (bulk("id"), Frame::Integer(session.primary.0 as i64)),
            (bulk("mode"), bulk("standalone")),
            (bulk("role"), bulk("master")),
            (bulk("modules"), Frame::Array(Vec::new())),
        ]);
        (map, proto)
    }
}
