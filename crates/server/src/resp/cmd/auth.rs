//! `AUTH [username] password`: who this connection is (see [`crate::auth`]).

use super::Parse;
use crate::auth::{self, Access};
use crate::resp::frame::Frame;
use bytes::Bytes;

#[derive(Debug)]
pub struct Auth {
    user: Option<Bytes>,
    password: Bytes,
}

impl Auth {
    pub fn parse(parse: &mut Parse) -> Result<Auth, Frame> {
        let first = parse.bytes()?;
        Ok(match parse.optional() {
            Some(password) => Auth {
                user: Some(first),
                password,
            },
            None => Auth {
                user: None,
                password: first,
            },
        })
    }

    /// The connection's new access, or the error to answer.
    pub fn check(&self, config: &crate::ServerConfig) -> Result<Access, String> {
        auth::authenticate(
            config.requirepass.as_deref(),
            &config.users,
            self.user.as_deref(),
            &self.password,
        )
    }
}
