//! `STRLEN key`: the length of the value (0 if absent); `TYPE key`: `string`, or `none` if
//! absent. Each is one read of one key in the connection's read mode; a protocol that keeps
//! siblings answers for the first of them.

use super::{read_values, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::Op;

#[derive(Debug)]
pub struct Describe {
    key: Bytes,
    /// True: STRLEN; false: TYPE.
    length: bool,
}

impl Describe {
    /// Parses `strlen` or `type` and its key.
    pub fn parse(name: &str, parse: &mut Parse) -> Result<Describe, Frame> {
        let key = parse.sized("key")?;
        Ok(Describe {
            key,
            length: name == "strlen",
        })
    }

    pub fn name(&self) -> &'static str {
        match self.length {
            true => "strlen",
            false => "type",
        }
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let mode = exec.read_mode;
        let output = exec
            .read(
                Op::Get {
                    key: self.key.clone(),
                },
                mode,
            )
            .await?;
        let value = read_values(exec, &self.key, output)?.into_iter().next();
        Ok(match (self.length, value) {
            (true, value) => Frame::Integer(value.map_or(0, |v| v.len() as i64)),
            (false, Some(_)) => Frame::Simple("string".into()),
            (false, None) => Frame::Simple("none".into()),
        })
    }
}
