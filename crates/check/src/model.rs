//! Sequential specifications: what each operation does to the state of one key.
//!
//! A history is linearizable when its operations can be put in one order, consistent with
//! real time, in which every operation is legal for this specification. Each key of the KV
//! store is an independent register, so the checker verifies every key on its own
//! (P-compositionality, Horn & Kroening 2015).

use crate::history::OpValue;

/// The state of one key: its value, or `None` when absent.
pub type RegisterState = Option<String>;

/// Applies `op` to `state`; `None` when `op` cannot have happened in that state (a read that
/// sees another value, a successful CAS whose comparison does not hold).
pub fn step(state: &RegisterState, op: &OpValue) -> Option<RegisterState> {
    match op {
        OpValue::Get(value) => (value == state).then(|| state.clone()),
        OpValue::Put(value) => Some(Some(value.clone())),
        OpValue::Delete => Some(None),
        OpValue::Append(suffix) => {
            let mut joined = state.clone().unwrap_or_default();
            joined.push_str(suffix);
            Some(Some(joined))
        }
        OpValue::Cas { expected, new } => (expected == state).then(|| Some(new.clone())),
        // A multi-value read is a register read when it returned at most one value.
        OpValue::Siblings(values) => match values.as_slice() {
            [] => state.is_none().then_some(None),
            [one] => (state.as_deref() == Some(one.as_str())).then(|| state.clone()),
            _ => None,
        },
        // Counter and set updates are not register operations: no register history has them.
        OpValue::Incr(_) | OpValue::SetAdd(_) | OpValue::SetRemove(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_steps() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(step(&None, &OpValue::Get(None)), Some(None));
        assert_eq!(step(&s("a"), &OpValue::Get(None)), None);
        assert_eq!(step(&s("a"), &OpValue::Append("b".into())), Some(s("ab")));
        assert_eq!(step(&None, &OpValue::Append("b".into())), Some(s("b")));
        let cas = OpValue::Cas {
            expected: s("a"),
            new: "c".into(),
        };
        assert_eq!(step(&s("a"), &cas), Some(s("c")));
        assert_eq!(step(&s("b"), &cas), None);
        assert_eq!(step(&s("b"), &OpValue::Delete), Some(None));
    }
}
