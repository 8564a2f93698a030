//! Leases in the register model: when may a key attached to a lease disappear?
//!
//! A `put_lease` of value `v` on lease `L` installs `v` like a `put`; the key then becomes
//! absent, *if it still holds `v`*, when `L` ends: it runs out, or a `lease_revoke` ends it.
//! As for `put_ttl` ([`crate::expiry`]), the checker models that end as an `expire v`
//! operation of its own that must take effect within a window; here the window comes from
//! the lease's own operations in the history, which [`resolve`] reads before the per-key
//! search runs (`linearizability::check_keys`):
//!
//! - **not before** the latest invocation of the `lease_grant` or of a `lease_keepalive`
//!   that succeeded, plus the lease's time to live, minus ε: a successful keep-alive means the
//!   lease was alive when it was applied, and it then moved the deadline to its own proposal
//!   time plus the time to live. A `lease_revoke` (succeeded or unknown) may end it from its
//!   invocation on.
//! - **not after** the latest completion of the grant and of every keep-alive that succeeded,
//!   plus the time to live, plus ε; or the completion of a successful revocation, if that is
//!   earlier. A keep-alive whose outcome is unknown may have moved the deadline arbitrarily
//!   late (the lease is renewed as long as some renewal applies before its deadline), so then
//!   there is no upper bound unless a revocation gives one.
//!
//! ε is the `clock_error_ms` recorded with the grant and each keep-alive (the clocks' spread
//! over the lease's life, as for `put_ttl`); each bound uses the ε of the event that sets it.
//! Failed keep-alives and revocations changed nothing and bound nothing.
//!
//! Left out: that a lease's keys disappear *together* (each key is checked on its own), and
//! attaching a key to a lease granted in another history.

use crate::history::{Event, EventKind, OpValue, Operation};
use serde_json::Value as Json;
use std::borrow::Cow;
use std::collections::BTreeMap;

const MS: u64 = 1_000_000;

/// An operation on a lease (`OpValue::Lease`), as recorded.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum LeaseOp {
    /// Grant a lease living `ttl_ms` after it is applied; `id` comes with the completion.
    /// JSON: `[ttl_ms, clock_error_ms, id or null]`.
    Grant {
        ttl_ms: u64,
        clock_error_ms: u64,
        id: Option<u64>,
    },
    /// Renew lease `id` (`ok`: renewed; `fail`: it was gone). JSON: `[id, clock_error_ms]`.
    KeepAlive { id: u64, clock_error_ms: u64 },
    /// End lease `id` and remove its keys (`ok`: ended; `fail`: it was gone). JSON: `id`.
    Revoke { id: u64 },
}

/// When an attached value's end must take effect: from, and by (`None`: no upper bound), in
/// nanoseconds on the history's clock.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Window {
    pub from: u64,
    pub by: Option<u64>,
}

impl LeaseOp {
    pub fn f(&self) -> &'static str {
        match self {
            LeaseOp::Grant { .. } => "lease_grant",
            LeaseOp::KeepAlive { .. } => "lease_keepalive",
            LeaseOp::Revoke { .. } => "lease_revoke",
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            LeaseOp::Grant {
                ttl_ms,
                clock_error_ms,
                id,
            } => Json::Array(vec![
                Json::from(*ttl_ms),
                Json::from(*clock_error_ms),
                id.map_or(Json::Null, Json::from),
            ]),
            LeaseOp::KeepAlive { id, clock_error_ms } => {
                Json::Array(vec![Json::from(*id), Json::from(*clock_error_ms)])
            }
            LeaseOp::Revoke { id } => Json::from(*id),
        }
    }

    pub fn from_json(f: &str, value: &Json) -> Result<LeaseOp, String> {
        let count = |v: &Json, what: &str| {
            v.as_u64()
                .ok_or_else(|| format!("{f}'s {what} is not a count: {v}"))
        };
        match (f, value.as_array().map(Vec::as_slice)) {
            ("lease_grant", Some([ttl, error, id])) => Ok(LeaseOp::Grant {
                ttl_ms: count(ttl, "ttl_ms")?,
                clock_error_ms: count(error, "clock_error_ms")?,
                id: if id.is_null() {
                    None
                } else {
                    Some(count(id, "id")?)
                },
            }),
            ("lease_keepalive", Some([id, error])) => Ok(LeaseOp::KeepAlive {
                id: count(id, "id")?,
                clock_error_ms: count(error, "clock_error_ms")?,
            }),
            ("lease_revoke", None) => Ok(LeaseOp::Revoke {
                id: count(value, "id")?,
            }),
            ("lease_grant", _) => Err(format!(
                "lease_grant takes [ttl_ms, clock_error_ms, id or null], found {value}"
            )),
            ("lease_keepalive", _) => Err(format!(
                "lease_keepalive takes [id, clock_error_ms], found {value}"
            )),
            _ => Err(format!("{f} takes a lease id, found {value}")),
        }
    }
}

/// What the history says about one lease.
#[derive(Default)]
struct Life {
    ttl_ms: u64,
    /// Latest (invocation, ε) of the grant or a successful keep-alive.
    renewed_from: Option<(u64, u64)>,
    /// Latest (completion, ε) of the grant or a successful keep-alive.
    renewed_by: Option<(u64, u64)>,
    /// A keep-alive with unknown outcome.
    renewal_unknown: bool,
    /// Earliest invocation of a revocation that succeeded or may have.
    revoked_from: Option<u64>,
    /// Earliest completion of a revocation that succeeded.
    revoked_by: Option<u64>,
}

impl Life {
    fn window(&self) -> Window {
        let ttl = self.ttl_ms * MS;
        let from = self
            .renewed_from
            .map_or(0, |(call, error)| (call + ttl).saturating_sub(error * MS));
        let runs_out = match (self.renewal_unknown, self.renewed_by) {
            (false, Some((ret, error))) => Some(ret + ttl + error * MS),
            _ => None,
        };
        let from = self.revoked_from.map_or(from, |call| from.min(call));
        let by = match (runs_out, self.revoked_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Window { from, by }
    }
}

fn later(current: Option<(u64, u64)>, time: u64, error: u64) -> Option<(u64, u64)> {
    match current {
        Some((t, _)) if t >= time => current,
        _ => Some((time, error)),
    }
}

/// The operations with the lease operations taken out and every `put_lease` given the
/// window its lease's operations allow (see the module docs); ids are kept. Histories
/// without leases come back as they are.
pub fn resolve(operations: &[Operation]) -> Cow<'_, [Operation]> {
    let is_lease = |o: &Operation| matches!(o.value, OpValue::Lease(_));
    if !operations.iter().any(is_lease) {
        return Cow::Borrowed(operations);
    }
    let lives = lives(operations);
    let resolved = operations
        .iter()
        .filter(|o| !is_lease(o))
        .cloned()
        .map(|mut op| {
            if let OpValue::PutLease { lease, expires, .. } = &mut op.value {
                *expires = lives.get(lease).map(Life::window);
            }
            op
        })
        .collect();
    Cow::Owned(resolved)
}

/// How many leases the history granted, renewed and revoked (successfully), for reports;
/// nothing when it has no lease events.
pub fn counts(history: &[Event]) -> Vec<(&'static str, u64)> {
    let count = |f: &str| {
        history
            .iter()
            .filter(|e| e.kind == EventKind::Ok && e.value.f() == f)
            .count() as u64
    };
    if !history.iter().any(|e| matches!(e.value, OpValue::Lease(_))) {
        return Vec::new();
    }
    vec![
        ("leases_granted", count("lease_grant")),
        ("lease_keepalives", count("lease_keepalive")),
        ("leases_revoked", count("lease_revoke")),
    ]
}

/// Each lease's life, from its operations (paired: failed ones are not there, and only
/// successes and unknown outcomes bound a lease).
fn lives(operations: &[Operation]) -> BTreeMap<u64, Life> {
    let mut lives: BTreeMap<u64, Life> = BTreeMap::new();
    for op in operations {
        let OpValue::Lease(lease) = &op.value else {
            continue;
        };
        match *lease {
            LeaseOp::Grant {
                ttl_ms,
                clock_error_ms,
                id: Some(id),
            } => {
                let Some(ret) = op.ret else { continue };
                let life = lives.entry(id).or_default();
                life.ttl_ms = ttl_ms;
                life.renewed_from = later(life.renewed_from, op.call, clock_error_ms);
                life.renewed_by = later(life.renewed_by, ret, clock_error_ms);
            }
            LeaseOp::Grant { .. } => {}
            LeaseOp::KeepAlive { id, clock_error_ms } => {
                let life = lives.entry(id).or_default();
                match op.ret {
                    Some(ret) => {
                        life.renewed_from = later(life.renewed_from, op.call, clock_error_ms);
                        life.renewed_by = later(life.renewed_by, ret, clock_error_ms);
                    }
                    None => life.renewal_unknown = true,
                }
            }
            LeaseOp::Revoke { id } => {
                let life = lives.entry(id).or_default();
                life.revoked_from = Some(life.revoked_from.map_or(op.call, |t| t.min(op.call)));
                if let Some(ret) = op.ret {
                    life.revoked_by = Some(life.revoked_by.map_or(ret, |t| t.min(ret)));
                }
            }
        }
    }
    lives
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair, Mode};
    use crate::linearizability::{check_linearizable, Limits, Verdict};

    fn event(process: u64, kind: EventKind, key: Option<&str>, value: OpValue, ms: u64) -> Event {
        Event {
            process,
            kind,
            key: key.map(str::to_string),
            value,
            time: ms * MS,
            node: None,
            error: None,
            mode: Mode::Linearizable,
        }
    }

    fn grant(id: Option<u64>) -> OpValue {
        OpValue::Lease(LeaseOp::Grant {
            ttl_ms: 100,
            clock_error_ms: 5,
            id,
        })
    }

    fn put(value: &str) -> OpValue {
        OpValue::PutLease {
            value: value.into(),
            lease: 1,
            expires: None,
        }
    }

    fn get(value: Option<&str>) -> OpValue {
        OpValue::Get(value.map(str::to_string))
    }

    /// Grant at 0..10 ms (ttl 100, ε 5), attach `v` at 20..30, then whatever `rest` adds;
    /// the verdict of a read of `read` at `at` ms.
    fn verdict(rest: Vec<Event>, read: Option<&str>, at: u64) -> Verdict {
        use EventKind::*;
        let mut history = vec![
            event(1, Invoke, None, grant(None), 0),
            event(1, Ok, None, grant(Some(1)), 10),
            event(1, Invoke, Some("k"), put("v"), 20),
            event(1, Ok, Some("k"), put("v"), 30),
        ];
        history.extend(rest);
        history.push(event(2, Invoke, Some("k"), get(None), at));
        history.push(event(2, Ok, Some("k"), get(read), at + 1));
        let operations = pair(&history).expect("pairs");
        check_linearizable(&operations, &Limits::default()).verdict
    }

    #[test]
    fn an_attached_value_is_gone_only_inside_its_leases_window() {
        // Window: from 0 + 100 - 5 = 95 ms, by 10 + 100 + 5 = 115 ms.
        assert_eq!(verdict(vec![], Some("v"), 50), Verdict::Linearizable);
        assert_eq!(
            verdict(vec![], None, 50),
            Verdict::NotLinearizable,
            "gone too early"
        );
        assert_eq!(verdict(vec![], None, 100), Verdict::Linearizable);
        assert_eq!(verdict(vec![], Some("v"), 100), Verdict::Linearizable);
        assert_eq!(
            verdict(vec![], Some("v"), 120),
            Verdict::NotLinearizable,
            "outlived"
        );
    }

    #[test]
    fn keep_alives_move_the_window_and_revocations_cut_it_short() {
        use EventKind::*;
        let keep = |kind| {
            let value = OpValue::Lease(LeaseOp::KeepAlive {
                id: 1,
                clock_error_ms: 5,
            });
            event(3, kind, None, value, if kind == Invoke { 60 } else { 70 })
        };
        // Renewed at 60..70: from 155, by 175.
        let renewed = || vec![keep(Invoke), keep(Ok)];
        assert_eq!(verdict(renewed(), Some("v"), 150), Verdict::Linearizable);
        assert_eq!(verdict(renewed(), None, 120), Verdict::NotLinearizable);
        // A renewal that failed renews nothing.
        assert_eq!(
            verdict(vec![keep(Invoke), keep(Fail)], Some("v"), 150),
            Verdict::NotLinearizable
        );
        // One with unknown outcome may renew forever.
        assert_eq!(
            verdict(vec![keep(Invoke), keep(Info)], Some("v"), 5_000),
            Verdict::Linearizable
        );
        let revoke = |kind, ms| {
            let value = OpValue::Lease(LeaseOp::Revoke { id: 1 });
            event(4, kind, None, value, ms)
        };
        let revoked = || vec![revoke(Invoke, 40), revoke(Ok, 45)];
        assert_eq!(verdict(revoked(), None, 50), Verdict::Linearizable);
        assert_eq!(verdict(revoked(), Some("v"), 50), Verdict::NotLinearizable);
    }

    #[test]
    fn lease_events_round_trip_through_json() {
        for op in [
            LeaseOp::Grant {
                ttl_ms: 100,
                clock_error_ms: 3,
                id: Some(7),
            },
            LeaseOp::Grant {
                ttl_ms: 100,
                clock_error_ms: 3,
                id: None,
            },
            LeaseOp::KeepAlive {
                id: 7,
                clock_error_ms: 3,
            },
            LeaseOp::Revoke { id: 7 },
        ] {
            assert_eq!(LeaseOp::from_json(op.f(), &op.to_json()), Ok(op));
        }
        assert!(LeaseOp::from_json("lease_keepalive", &Json::from(3)).is_err());
    }
}
