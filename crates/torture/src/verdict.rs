//! From a history to verdicts: quorate-check's checkers for the models a protocol promises,
//! plus a list-append analysis (lost, duplicated and phantom appends, reads that are not
//! prefixes of later ones) on the keys written with APPEND.
//!
//! [`judge`] is the one path every run's history goes through; tests feed it fabricated
//! histories to show each check can fail.

use quorate_check::history::pair;
use quorate_check::linearizability::Limits;
use quorate_check::{check, Event, Model, OpValue, Operation, Validity};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Separator after every token a client appends; a list key's value is `t1;t2;...;`.
pub const TOKEN_END: char = ';';

/// Whether a model's verdict decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Promise {
    /// The protocol promises it: a violation is a failure, unknown is not a pass.
    Promised,
    /// Reported for information only.
    Measured,
}

/// Which models to check.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub linearizable: Option<Promise>,
    pub appends: bool,
    pub convergence: bool,
}

/// One model's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ModelVerdict {
    pub model: String,
    pub promise: Promise,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: String,
    pub detail: String,
}

/// What the list-append analysis found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AppendStats {
    pub keys: usize,
    pub appends_ok: usize,
    pub appends_info: usize,
    pub reads: usize,
    /// Acknowledged appends missing from a read invoked after they were acknowledged.
    pub lost: usize,
    /// Tokens appearing more than once in one read.
    pub duplicated: usize,
    /// Tokens read that no append wrote, or that were read before their append was invoked.
    pub phantom: usize,
    /// Pairs of reads of which neither is a prefix of the other, or a later read shorter
    /// than an earlier one.
    pub not_prefix: usize,
    /// Acknowledged appends no later read could confirm.
    pub unconfirmed: usize,
    /// A few examples, for the report.
    pub examples: Vec<String>,
}

fn validity_name(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// Checks `events` by `plan`; `time_limit` bounds each search.
pub fn judge(
    events: &[Event],
    plan: &Plan,
    time_limit: Duration,
) -> Result<(Vec<ModelVerdict>, AppendStats), String> {
    let ops = pair(events).map_err(|e| format!("the recorded history is malformed: {e}"))?;
    let mut verdicts = Vec::new();
    let deadline = Instant::now() + time_limit;
    let cancelled = move || Instant::now() > deadline;
    let limits = Limits {
        memo_bytes_max: 256 << 20,
        cancelled: &cancelled,
    };
    if let Some(promise) = plan.linearizable {
        let report = check(Model::Linearizable, &ops, &limits).map_err(|e| e.to_string())?;
        let mut detail = report.headline.clone();
        if report.validity == Validity::Invalid {
            for id in report.witness.iter().take(12) {
                if let Some(op) = ops.iter().find(|o| o.id == *id) {
                    detail += &format!("\n  {op}");
                }
            }
        }
        verdicts.push(ModelVerdict {
            model: "linearizable".into(),
            promise,
            verdict: validity_name(report.validity).into(),
            detail,
        });
    }
    let mut stats = AppendStats::default();
    if plan.appends {
        stats = appends(&ops);
        let bad = stats.lost + stats.duplicated + stats.phantom + stats.not_prefix;
        let verdict = if bad > 0 {
            "invalid"
        } else if stats.appends_ok == 0 || stats.unconfirmed > 0 {
            "unknown"
        } else {
            "valid"
        };
        verdicts.push(ModelVerdict {
            model: "list-append".into(),
            promise: Promise::Promised,
            verdict: verdict.into(),
            detail: format!(
                "{} keys, {} ok appends, {} reads: {} lost, {} duplicated, {} phantom, {} not prefixes, {} unconfirmed",
                stats.keys,
                stats.appends_ok,
                stats.reads,
                stats.lost,
                stats.duplicated,
                stats.phantom,
                stats.not_prefix,
                stats.unconfirmed
            ),
        });
    }
    if plan.convergence {
        let report = check(Model::Convergence, &ops, &limits).map_err(|e| e.to_string())?;
        let mut detail = report.headline.clone();
        for line in report.details.iter().take(6) {
            detail += &format!("\n  {line}");
        }
        verdicts.push(ModelVerdict {
            model: "convergence".into(),
            promise: Promise::Promised,
            verdict: validity_name(report.validity).into(),
            detail,
        });
    }
    Ok((verdicts, stats))
}

fn tokens(value: &Option<String>) -> Vec<&str> {
    value
        .as_deref()
        .unwrap_or("")
        .split(TOKEN_END)
        .filter(|t| !t.is_empty())
        .collect()
}

/// The list-append analysis over every key that saw an APPEND.
pub fn appends(ops: &[Operation]) -> AppendStats {
    let mut stats = AppendStats::default();
    let list_keys: BTreeSet<&str> = ops
        .iter()
        .filter(|o| matches!(o.value, OpValue::Append(_)))
        .filter_map(|o| o.key.as_deref())
        .collect();
    stats.keys = list_keys.len();
    let example = |stats: &mut AppendStats, text: String| {
        if stats.examples.len() < 8 {
            stats.examples.push(text);
        }
    };
    for key in list_keys {
        let on_key = || ops.iter().filter(move |o| o.key.as_deref() == Some(key));
        // token -> (invoked, acknowledged)
        let mut written: BTreeMap<&str, (u64, Option<u64>)> = BTreeMap::new();
        for op in on_key() {
            if let OpValue::Append(text) = &op.value {
                let token = text.trim_end_matches(TOKEN_END);
                written.insert(token, (op.call, op.ret));
                if op.ret.is_some() {
                    stats.appends_ok += 1;
                } else {
                    stats.appends_info += 1;
                }
            }
        }
        let reads: Vec<(&Operation, Vec<&str>)> = on_key()
            .filter_map(|o| match &o.value {
                OpValue::Get(value) if o.ret.is_some() => Some((o, tokens(value))),
                _ => None,
            })
            .collect();
        stats.reads += reads.len();
        for (read, seen) in &reads {
            let ret = read.ret.expect("ok reads");
            let mut once = BTreeSet::new();
            for token in seen {
                if !once.insert(*token) {
                    stats.duplicated += 1;
                    example(&mut stats, format!("{key}: {token} read twice by {read}"));
                }
                match written.get(token) {
                    None => {
                        stats.phantom += 1;
                        example(
                            &mut stats,
                            format!("{key}: {token} never appended, read by {read}"),
                        );
                    }
                    Some((call, _)) if *call > ret => {
                        stats.phantom += 1;
                        example(
                            &mut stats,
                            format!("{key}: {token} read before its append was invoked, by {read}"),
                        );
                    }
                    _ => {}
                }
            }
        }
        // Every two reads: one is a prefix of the other; and a read invoked after another
        // returned is no shorter.
        for (i, (a, sa)) in reads.iter().enumerate() {
            for (b, sb) in reads.iter().skip(i + 1) {
                let (short, long) = if sa.len() <= sb.len() {
                    (sa, sb)
                } else {
                    (sb, sa)
                };
                let prefix = long.starts_with(short);
                let stale = (a.ret.expect("ok") < b.call && sa.len() > sb.len())
                    || (b.ret.expect("ok") < a.call && sb.len() > sa.len());
                if !prefix || stale {
                    stats.not_prefix += 1;
                    example(
                        &mut stats,
                        format!(
                            "{key}: reads disagree on order or go back in time:\n    {a}\n    {b}"
                        ),
                    );
                }
            }
        }
        for (token, (_, ret)) in &written {
            let Some(acked) = ret else { continue };
            let later: Vec<&(&Operation, Vec<&str>)> =
                reads.iter().filter(|(r, _)| r.call > *acked).collect();
            if later.is_empty() {
                stats.unconfirmed += 1;
            } else if let Some((r, _)) = later.iter().find(|(_, seen)| !seen.contains(token)) {
                stats.lost += 1;
                example(
                    &mut stats,
                    format!("{key}: acknowledged append {token} missing from later {r}"),
                );
            }
        }
    }
    stats
}
