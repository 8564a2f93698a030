//! From a history to verdicts: quorate-check's checkers for the models a protocol promises,
//! plus a list-append analysis (lost, duplicated and phantom appends, reads that are not
//! prefixes of later ones) on the keys written with APPEND, backed by quorate-check's
//! Elle-style list-append checker on the same keys (its anomaly names go into the detail).
//!
//! [`judge`] is the one path every run's history goes through; tests feed it fabricated
//! histories to show each check can fail.

use quorate_check::history::pair;
use quorate_check::linearizability::Limits;
use quorate_check::{check, list_append, Event, Model, OpValue, Operation, Validity};
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
    /// Reads in which a token appears more than once.
    pub duplicated: usize,
    /// Reads with a token that no append to this key wrote (another key's, say), or that
    /// they returned before its append was invoked.
    pub phantom: usize,
    /// Pairs of reads of which neither is a prefix of the other, or a later read shorter
    /// than an earlier one.
    pub not_prefix: usize,
    /// Reads that list a token before one whose append was acknowledged before the first
    /// token's append was invoked (the list's order contradicts real time).
    pub misordered: usize,
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
    // Keys written with APPEND are judged by the list-append analysis below, not by the
    // linearizability search: with appends the search builds a new value for every prefix
    // it tries, and on a history with lost appends its memory grew past 6 GB before the
    // time limit. The analysis is linear-time per read and names what went wrong.
    // A transaction's micro-ops count as single operations on their keys for the counts
    // below; the Elle-style checker judges the transactions whole.
    let singles = single_mops(&ops);
    let list_keys: BTreeSet<Option<String>> = singles
        .iter()
        .filter(|o| matches!(o.value, OpValue::Append(_)))
        .map(|o| o.key.clone())
        .collect();
    let registers: Vec<Operation> = singles
        .iter()
        .filter(|o| !list_keys.contains(&o.key))
        .cloned()
        .collect();
    if let Some(promise) = plan.linearizable {
        let started = Instant::now();
        let report = check(Model::Linearizable, &registers, &limits).map_err(|e| e.to_string())?;
        let mut detail = format!(
            "{} ({} register operations, {:.1} s)",
            report.headline,
            registers.len(),
            started.elapsed().as_secs_f64()
        );
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
        stats = appends(&singles);
        // Backed by quorate-check's Elle-style checker over the same keys: it names the
        // dependency cycles (G0, G1c, G-single, G2, with real time) behind what the counts
        // above see, and any violation it finds fails the run too.
        let lists: Vec<Operation> = ops
            .iter()
            .filter(|o| list_keys.contains(&o.key) || matches!(o.value, OpValue::Txn(_)))
            .cloned()
            .collect();
        let elle = list_append::report(&lists);
        let elle_invalid = matches!(&elle, Ok(r) if r.validity == Validity::Invalid);
        let bad =
            stats.lost + stats.duplicated + stats.phantom + stats.not_prefix + stats.misordered;
        let verdict = if bad > 0 || elle_invalid {
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
                "{} keys, {} ok appends, {} reads: {} lost, {} duplicated, {} phantom, {} not prefixes, {} misordered, {} unconfirmed",
                stats.keys,
                stats.appends_ok,
                stats.reads,
                stats.lost,
                stats.duplicated,
                stats.phantom,
                stats.not_prefix,
                stats.misordered,
                stats.unconfirmed
            ) + &match &elle {
                Ok(report) if report.validity == Validity::Invalid => {
                    let mut text = format!("\n  elle: {}", report.headline);
                    for line in report.details.iter().take(4) {
                        text += &format!("\n  {line}");
                    }
                    text
                }
                Ok(report) => format!("\n  elle: {}", report.headline),
                Err(e) => format!("\n  elle: cannot check: {e}"),
            },
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

/// Every transaction as its micro-ops, each a single operation on its key with the
/// transaction's interval (its reads at one instant of it, as a single read's).
pub fn single_mops(ops: &[Operation]) -> Vec<Operation> {
    use quorate_check::txn::Mop;
    let mut singles = Vec::with_capacity(ops.len());
    for op in ops {
        let OpValue::Txn(mops) = &op.value else {
            singles.push(op.clone());
            continue;
        };
        for mop in mops {
            let value = match mop {
                Mop::Append { value, .. } => OpValue::Append(value.clone()),
                Mop::Read { value, .. } => OpValue::Get(value.clone()),
                Mop::Write { value, .. } => OpValue::Put(value.clone()),
            };
            singles.push(Operation {
                key: Some(mop.key().to_string()),
                value,
                ..op.clone()
            });
        }
    }
    singles
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
            let (mut twice, mut phantom) = (None, None);
            for token in seen {
                if !once.insert(*token) {
                    twice.get_or_insert(format!("{key}: {token} read twice by {read}"));
                }
                match written.get(token) {
                    None => {
                        phantom.get_or_insert(format!(
                            "{key}: {token} never appended to {key}, read by {read}"
                        ));
                    }
                    Some((call, _)) if *call > ret => {
                        phantom.get_or_insert(format!(
                            "{key}: {token} read before its append was invoked, by {read}"
                        ));
                    }
                    _ => {}
                }
            }
            if let Some(text) = twice {
                stats.duplicated += 1;
                example(&mut stats, text);
            }
            if let Some(text) = phantom {
                stats.phantom += 1;
                example(&mut stats, text);
            }
        }
        // In one read, a token listed after another must not have been acknowledged before
        // the other's append was invoked.
        for (read, seen) in &reads {
            let mut latest_call: Option<(u64, &str)> = None;
            for token in seen {
                let Some((call, ret)) = written.get(token) else {
                    continue;
                };
                if let (Some(ret), Some((before, earlier))) = (ret, latest_call) {
                    if *ret < before {
                        stats.misordered += 1;
                        example(&mut stats, format!("{key}: {earlier} listed before {token}, which was acknowledged before {earlier} was appended, in {read}"));
                        break;
                    }
                }
                if latest_call.is_none_or(|(c, _)| *call > c) {
                    latest_call = Some((*call, token));
                }
            }
        }
        // Every two reads: one is a prefix of the other. Prefix is transitive, so reads
        // sorted by length need only be compared with their neighbour.
        let mut by_length: Vec<&(&Operation, Vec<&str>)> = reads.iter().collect();
        by_length.sort_by_key(|(o, seen)| (seen.len(), o.id));
        for pair in by_length.windows(2) {
            let ((a, sa), (b, sb)) = (pair[0], pair[1]);
            if !sb.starts_with(sa) {
                stats.not_prefix += 1;
                example(
                    &mut stats,
                    format!("{key}: neither read is a prefix of the other:\n    {a}\n    {b}"),
                );
            }
        }
        // And a read invoked after another returned is no shorter (lists only grow).
        let mut by_return: Vec<&(&Operation, Vec<&str>)> = reads.iter().collect();
        by_return.sort_by_key(|(o, _)| o.ret);
        let mut by_call: Vec<&(&Operation, Vec<&str>)> = reads.iter().collect();
        by_call.sort_by_key(|(o, _)| o.call);
        let mut returned = 0;
        let mut longest: Option<&(&Operation, Vec<&str>)> = None;
        for later in by_call {
            while returned < by_return.len() && by_return[returned].0.ret < Some(later.0.call) {
                let r = by_return[returned];
                if longest.is_none_or(|l| r.1.len() > l.1.len()) {
                    longest = Some(r);
                }
                returned += 1;
            }
            if let Some((earlier, seen)) = longest {
                if later.1.len() < seen.len() {
                    stats.not_prefix += 1;
                    example(&mut stats, format!("{key}: a later read is shorter (went back in time):\n    {earlier}\n    {}", later.0));
                }
            }
        }
        // Lost: an acknowledged append missing from a read invoked after the
        // acknowledgement. Per read, walk the appends acknowledged before it began
        // (O(reads x appends) set lookups, not a scan of every read per append).
        let mut acked: Vec<(u64, &str)> = written
            .iter()
            .filter_map(|(token, (_, ret))| ret.map(|r| (r, *token)))
            .collect();
        acked.sort();
        let mut lost: BTreeSet<&str> = BTreeSet::new();
        for (read, seen) in &reads {
            let present: std::collections::HashSet<&str> = seen.iter().copied().collect();
            for (_, token) in acked.iter().take_while(|(ack, _)| *ack < read.call) {
                if !present.contains(token) && lost.insert(token) {
                    example(
                        &mut stats,
                        format!("{key}: acknowledged append {token} missing from later {read}"),
                    );
                }
            }
        }
        stats.lost += lost.len();
        let last_call = reads.iter().map(|(r, _)| r.call).max();
        stats.unconfirmed += acked
            .iter()
            .filter(|(ack, _)| last_call.is_none_or(|c| c <= *ack))
            .count();
    }
    stats
}
