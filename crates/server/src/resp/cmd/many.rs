//! Commands on several keys at once, each one request and one step of the state machine.
//!
//! - `MSET key value [key value ...]`: `OK`. One log entry sets every pair, so no read ever
//!   sees some of them and not the others (a key given twice takes its last value).
//! - `MGET key [key ...]`: the values (nil: absent), in the order asked, read from one state
//!   through the protocol's read path: in `LINEARIZABLE` mode (the default) the answer is a
//!   linearizable snapshot of all the keys, not one read per key.
//!
//! Protocols that replicate each key on its own (quorum, multiprimary) cannot order writes to
//! different keys and refuse both with an error naming the protocols that can.

use super::{unexpected, Parse};
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use quorate_core::{Op, Output};

#[derive(Debug)]
pub struct Many {
    op: Op,
}

impl Many {
    /// `MGET key [key ...]`.
    pub fn parse_mget(parse: &mut Parse) -> Result<Many, Frame> {
        let mut keys = vec![parse.sized("key")?];
        while parse.remaining() > 0 {
            keys.push(parse.sized("key")?);
        }
        Ok(Many {
            op: Op::GetMany { keys },
        })
    }

    /// `MSET key value [key value ...]`.
    pub fn parse_mset(parse: &mut Parse) -> Result<Many, Frame> {
        let mut pairs = vec![(parse.sized("key")?, parse.sized("value")?)];
        while parse.remaining() > 0 {
            let key = parse.sized("key")?;
            let value = parse.sized("value")?;
            pairs.push((key, value));
        }
        let op = Op::put_many(pairs).expect("at least the first pair");
        Ok(Many { op })
    }

    pub fn name(&self) -> &'static str {
        match self.op.is_read() {
            true => "mget",
            false => "mset",
        }
    }

    pub fn is_read(&self) -> bool {
        self.op.is_read()
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        let output = match self.op.is_read() {
            true => {
                let mode = exec.read_mode;
                exec.read(self.op, mode).await?
            }
            false => exec.write(self.op).await?,
        };
        match output {
            Output::Done => Ok(Frame::ok()),
            Output::Values(values) => Ok(Frame::Array(
                values
                    .into_iter()
                    .map(|value| value.map_or(Frame::Null, Frame::Bulk))
                    .collect(),
            )),
            other => Err(unexpected(other)),
        }
    }
}
