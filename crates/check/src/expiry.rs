//! Keys that expire, in the linearizability model.
//!
//! A `put_ttl` of value `v` with time to live `ttl` installs `v` like a `put`; some time later
//! the key becomes absent *if it still holds `v`* (a later write overtakes the expiry). The
//! checker models that as an operation of its own, `expire v` ([`OpValue::ExpireIf`]), added
//! for every `put_ttl`, which must take effect within a window:
//!
//! - **not before** `call + ttl - ε`: the deadline is the writer's leader's clock at some point
//!   after the write was invoked, plus `ttl`, and the node that expires the key reads a clock
//!   at most ε ahead of that one; and not before the write itself takes effect (when its value
//!   is written once: the expiry is of that write's value);
//! - **not after** `ret + ttl + ε` when the write completed: past it every node's clock has
//!   passed the deadline, and a read must not return `v` any more (*no read returns an expired
//!   value*); a write with unknown outcome may take effect arbitrarily late, so its expiry has
//!   no upper bound.
//!
//! ε is `clock_error_ms`, recorded with the write by whoever knows the clocks (the simulator:
//! twice the largest clock offset plus the drift over the run). Unique values keep expiries
//! of different writes apart. With these operations added, the per-key search decides
//! linearizability with expiry as it does for everything else; keys with expiries skip the
//! unique-values fast path. The search places an expiry whose value has been replaced at once
//! instead of trying it everywhere (`linearizability::search`): with ε large against the time
//! to live, a hot key's many pending expiries otherwise multiplied its configurations past any
//! limit.

use crate::history::{OpValue, Operation};
use std::borrow::Cow;

const MS: u64 = 1_000_000;

/// `operations` plus one `expire` per `put_ttl` (the originals unchanged, in order, so their
/// ids stay the positions; the expiries follow, numbered on).
pub fn with_expiries(operations: &[Operation]) -> Cow<'_, [Operation]> {
    let expiries: Vec<Operation> = operations
        .iter()
        .filter_map(|op| match &op.value {
            OpValue::PutTtl {
                value,
                ttl_ms,
                clock_error_ms,
            }
            | OpValue::PutTtlIfAbsent {
                value,
                ttl_ms,
                clock_error_ms,
            } => Some(expiry_of(op, value, *ttl_ms, *clock_error_ms)),
            OpValue::PutLease { value, expires, .. } => Some(lease_end_of(op, value, *expires)),
            _ => None,
        })
        .collect();
    if expiries.is_empty() {
        return Cow::Borrowed(operations);
    }
    let mut all = operations.to_vec();
    // Ids follow the largest recorded one (lease operations may have left gaps).
    let first = operations.iter().map(|o| o.id + 1).max().unwrap_or(0);
    for (n, mut expiry) in expiries.into_iter().enumerate() {
        expiry.id = first + n;
        all.push(expiry);
    }
    Cow::Owned(all)
}

fn expiry_of(write: &Operation, value: &str, ttl_ms: u64, clock_error_ms: u64) -> Operation {
    let (ttl, error) = (ttl_ms * MS, clock_error_ms * MS);
    Operation {
        id: 0,
        // A process of its own: nothing orders it after the writer's later operations.
        process: u64::MAX - write.id as u64,
        key: write.key.clone(),
        value: OpValue::ExpireIf(value.to_string()),
        call: (write.call + ttl).saturating_sub(error).max(write.call),
        ret: write.ret.map(|ret| ret + ttl + error),
        line: write.line,
        node: None,
    }
}

/// The end of a `put_lease`'s value with its lease (see [`crate::lease`]): within the
/// window the lease's events allow, never before the write; a lease the history says nothing
/// about may end at any time.
fn lease_end_of(write: &Operation, value: &str, window: Option<crate::lease::Window>) -> Operation {
    let window = window.unwrap_or(crate::lease::Window { from: 0, by: None });
    let call = window.from.max(write.call);
    Operation {
        id: 0,
        process: u64::MAX - write.id as u64,
        key: write.key.clone(),
        value: OpValue::ExpireIf(value.to_string()),
        call,
        // A value attached after its lease's end (which the system must refuse) has to go
        // at once.
        ret: write.ret.and(window.by).map(|by| by.max(call)),
        line: write.line,
        node: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{check_linearizable, Limits, Verdict};

    fn op(id: usize, process: u64, value: OpValue, call: u64, ret: Option<u64>) -> Operation {
        Operation {
            id,
            process,
            key: Some("k".into()),
            value,
            call: call * MS,
            ret: ret.map(|r| r * MS),
            line: id + 1,
            node: None,
        }
    }

    fn put_ttl(v: &str, ttl_ms: u64) -> OpValue {
        OpValue::PutTtl {
            value: v.into(),
            ttl_ms,
            clock_error_ms: 5,
        }
    }

    fn get(v: Option<&str>) -> OpValue {
        OpValue::Get(v.map(String::from))
    }

    fn verdict(ops: &[Operation]) -> Verdict {
        check_linearizable(ops, &Limits::default()).verdict
    }

    /// One hot key: 300 overlapping `put_ttl`s from 12 processes, each read right after it
    /// returns, with a clock error ten times the time to live (what a long run with clock
    /// faults records), so every expiry window spans most of the history. The search places
    /// replaced values' expiries at once; trying them everywhere made every subset of pending
    /// expiries a configuration of its own and ran into the memo bound ("unknown"), as did expiries
    /// allowed before their own write.
    #[test]
    fn many_pending_expiries_on_a_hot_key_are_decided() {
        let mut ops = Vec::new();
        for i in 0..300u64 {
            let value = OpValue::PutTtl {
                value: format!("v{i}"),
                ttl_ms: 100,
                clock_error_ms: 1_000,
            };
            let id = ops.len();
            ops.push(op(id, i % 12, value, i * 3, Some(i * 3 + 20)));
            let id = ops.len();
            let read = get(Some(&format!("v{i}")));
            ops.push(op(id, 100 + i % 12, read, i * 3 + 21, Some(i * 3 + 22)));
        }
        let limits = Limits::default();
        let verdict = |ops: &[Operation]| check_linearizable(ops, &limits).verdict;
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // A read at the end of a value replaced long before is still caught.
        let last = ops.len() - 1;
        ops[last].value = get(Some("v3"));
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
    }

    /// A `put_ttl` with unknown outcome that nobody reads may still explain a later absent
    /// read, through its expiry: the checker must not drop it as it drops unobserved
    /// writes (found by `quorate sim --ttl` on a hot key, seed 500035, once such runs could
    /// be decided).
    #[test]
    fn an_unobserved_expiring_write_with_unknown_outcome_can_explain_an_absent_read() {
        let ops = [
            op(0, 1, OpValue::Put("b".into()), 0, Some(10)),
            op(1, 2, put_ttl("a", 100), 20, None),
            op(2, 3, get(None), 500, Some(510)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // A plain put in its place never expires: the absent read is impossible.
        let mut plain = ops.clone();
        plain[1].value = OpValue::Put("a".into());
        assert_eq!(verdict(&plain), Verdict::NotLinearizable);
    }

    #[test]
    fn a_key_reads_absent_after_its_expiry_and_present_before() {
        let ops = [
            op(0, 1, put_ttl("a", 100), 0, Some(10)),
            op(1, 2, get(Some("a")), 20, Some(30)),
            op(2, 2, get(None), 200, Some(210)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_read_of_the_value_well_past_its_deadline_is_caught() {
        // Expiry must happen by 10 + 100 + 5 ms; a read invoked at 200 saw the value.
        let ops = [
            op(0, 1, put_ttl("a", 100), 0, Some(10)),
            op(1, 2, get(Some("a")), 200, Some(210)),
        ];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
        // Without the time to live, the same history is fine: the model is what catches it.
        let mut plain = ops.clone();
        plain[0].value = OpValue::Put("a".into());
        assert_eq!(verdict(&plain), Verdict::Linearizable);
    }

    #[test]
    fn a_key_that_expires_too_early_or_comes_back_is_caught() {
        let early = [
            op(0, 1, put_ttl("a", 100), 0, Some(10)),
            op(1, 2, get(None), 20, Some(30)),
        ];
        assert_eq!(verdict(&early), Verdict::NotLinearizable);
        // A replica that ignored the expiry answers the value after another answered absent.
        let back = [
            op(0, 1, put_ttl("a", 100), 0, Some(10)),
            op(1, 2, get(None), 104, Some(106)),
            op(2, 3, get(Some("a")), 107, Some(108)),
        ];
        assert_eq!(verdict(&back), Verdict::NotLinearizable);
    }

    #[test]
    fn a_later_write_overtakes_the_expiry_and_unknown_writes_may_expire_late() {
        let overtaken = [
            op(0, 1, put_ttl("a", 100), 0, Some(10)),
            op(1, 1, OpValue::Put("b".into()), 20, Some(30)),
            op(2, 2, get(Some("b")), 300, Some(310)),
        ];
        assert_eq!(verdict(&overtaken), Verdict::Linearizable);
        let unknown = [
            op(0, 1, put_ttl("a", 100), 0, None),
            op(1, 2, get(Some("a")), 300, Some(310)),
        ];
        assert_eq!(verdict(&unknown), Verdict::Linearizable);
    }

    fn lock(v: &str, ttl_ms: u64) -> OpValue {
        OpValue::PutTtlIfAbsent {
            value: v.into(),
            ttl_ms,
            clock_error_ms: 5,
        }
    }

    fn release(v: &str) -> OpValue {
        OpValue::DeleteIf(v.into())
    }

    #[test]
    fn a_lock_is_taken_again_after_its_release_or_its_lease_and_never_while_held() {
        let released = [
            op(0, 1, lock("a", 1_000), 0, Some(10)),
            op(1, 1, release("a"), 20, Some(30)),
            op(2, 2, lock("b", 1_000), 40, Some(50)),
            op(3, 2, get(Some("b")), 60, Some(70)),
        ];
        assert_eq!(verdict(&released), Verdict::Linearizable);
        let expired = [
            op(0, 1, lock("a", 100), 0, Some(10)),
            op(1, 2, lock("b", 1_000), 200, Some(210)),
            // The first holder's release comes too late: recorded as failed, it is dropped.
        ];
        assert_eq!(verdict(&expired), Verdict::Linearizable);
        // Two holders at once: the second acquire succeeded while the first lease ran.
        let double = [
            op(0, 1, lock("a", 1_000), 0, Some(10)),
            op(1, 2, lock("b", 1_000), 20, Some(30)),
        ];
        assert_eq!(verdict(&double), Verdict::NotLinearizable);
        // A release that deleted a lock it did not hold.
        let foreign = [
            op(0, 1, lock("a", 1_000), 0, Some(10)),
            op(1, 2, release("x"), 20, Some(30)),
        ];
        assert_eq!(verdict(&foreign), Verdict::NotLinearizable);
        // A release leaves the key absent; a read after it seeing the token is caught.
        let stale = [
            op(0, 1, lock("a", 1_000), 0, Some(10)),
            op(1, 1, release("a"), 20, Some(30)),
            op(2, 2, get(Some("a")), 40, Some(50)),
        ];
        assert_eq!(verdict(&stale), Verdict::NotLinearizable);
    }

    #[test]
    fn locks_and_releases_round_trip_through_json() {
        let value = lock("a", 100);
        assert_eq!(value.f(), "put_ttl_nx");
        assert_eq!(value.to_json().to_string(), r#"["a",100,5]"#);
        let line = r#"{"process":1,"type":"invoke","f":"put_ttl_nx","key":"k","value":["a",100,5],"time":0}
{"process":1,"type":"ok","f":"put_ttl_nx","key":"k","value":["a",100,5],"time":1}
{"process":1,"type":"invoke","f":"delete_if","key":"k","value":"a","time":2}
{"process":1,"type":"ok","f":"delete_if","key":"k","value":"a","time":3}"#;
        let events = crate::history::parse_jsonl(line).unwrap();
        assert_eq!(events[1].value, lock("a", 100));
        assert_eq!(events[3].value, release("a"));
        assert_eq!(release("a").f(), "delete_if");
    }

    #[test]
    fn put_ttl_round_trips_through_json() {
        let value = put_ttl("a", 100);
        assert_eq!(value.f(), "put_ttl");
        let json = value.to_json();
        assert_eq!(json.to_string(), r#"["a",100,5]"#);
    }
}
