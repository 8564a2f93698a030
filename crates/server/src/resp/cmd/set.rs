//! `SET key value [NX]`: `OK`. With `NX`, only if the key is absent (a compare-and-set
//! against "absent"): `OK` if set, nil if not. Expiry options are refused: quorate keys do
//! not expire.
//!
//! With a protocol that keeps siblings (multiprimary with version vectors), SET carries the
//! causal context the connection has seen for the key, superseding exactly those versions
//! (see `session::Contexts`).

use super::{unexpected, Parse};
use crate::metrics::Metrics;
use crate::resp::frame::Frame;
use crate::resp::session::{CallError, Exec};
use bytes::Bytes;
use quorate_core::{Op, Output};
use quorate_protocols::multiprimary::SIBLING_LIMIT_REFUSAL;

#[derive(Debug)]
pub struct Set {
    key: Bytes,
    value: Bytes,
    only_if_absent: bool,
}

impl Set {
    pub fn parse(parse: &mut Parse) -> Result<Set, Frame> {
        let key = parse.sized("key")?;
        let value = parse.sized("value")?;
        let mut only_if_absent = false;
        while let Some(option) = parse.keyword() {
            match option.as_str() {
                "NX" => only_if_absent = true,
                "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL" => {
                    return Err(Frame::error(
                        "ERR expiry is not supported: quorate keys do not expire",
                    ))
                }
                other => {
                    return Err(Frame::error(format!(
                        "ERR unsupported SET option '{other}'"
                    )))
                }
            }
        }
        Ok(Set {
            key,
            value,
            only_if_absent,
        })
    }

    pub async fn execute(self, exec: &mut Exec) -> Result<Frame, CallError> {
        if self.only_if_absent {
            let op = Op::Cas {
                key: self.key,
                expected: None,
                new: self.value,
            };
            return match exec.write(op).await? {
                Output::Swapped(true) => Ok(Frame::ok()),
                Output::Swapped(false) => Ok(Frame::Null),
                other => Err(unexpected(other)),
            };
        }
        if exec.model().causal_contexts {
            let op = Op::PutWithContext {
                key: self.key.clone(),
                value: Some(self.value),
                context: exec.contexts.get(&self.key),
            };
            let written = exec.write(op).await;
            if let Err(CallError::Rejected(why)) = &written {
                if why.starts_with(SIBLING_LIMIT_REFUSAL) {
                    Metrics::inc(&exec.node.metrics.sibling_limit_refusals);
                }
            }
            return match written? {
                Output::Written { context } => {
                    exec.contexts.learn(&self.key, &context);
                    Ok(Frame::ok())
                }
                other => Err(unexpected(other)),
            };
        }
        let op = Op::Put {
            key: self.key,
            value: self.value,
        };
        match exec.write(op).await? {
            Output::Done => Ok(Frame::ok()),
            other => Err(unexpected(other)),
        }
    }
}
