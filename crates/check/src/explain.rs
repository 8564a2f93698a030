//! Explanations: shrinking a violation to a small set of operations that still cannot be
//! ordered, and drawing operations as a text timeline or an SVG picture.
//!
//! ## Shrinking
//!
//! [`minimize`] runs delta debugging (Zeller's ddmin, complements only) over the operations,
//! keeping a removal only when the smaller history still violates the model. It removes only
//! operations whose removal cannot *create* a violation, so a violation of the small set
//! implies one of the whole history:
//!
//! - reads (a read only constrains), and
//! - writes (put, delete, CAS) whose value no remaining operation of the key observes, on keys
//!   without appends: until the next write, nobody looks at the state such a write installed,
//!   so dropping it keeps every order legal (for every model here).
//!
//! The result is the smallest set *found* within the budget of checks, not necessarily the
//! smallest that exists.

use crate::history::{OpValue, Operation};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Shrinks `ops` while `violates` holds, within `budget` calls of it. `violates(ops)` must be
/// true on entry.
pub fn minimize(
    ops: &[Operation],
    violates: &mut dyn FnMut(&[Operation]) -> bool,
    mut budget: usize,
) -> Vec<Operation> {
    let mut current = ops.to_vec();
    let mut parts = 2usize;
    while current.len() >= 2 && budget > 0 {
        let chunk = current.len().div_ceil(parts);
        let mut reduced = false;
        for start in (0..current.len()).step_by(chunk) {
            let candidate = without(&current, start..(start + chunk).min(current.len()));
            if candidate.len() == current.len() {
                continue;
            }
            budget -= 1;
            if violates(&candidate) {
                current = candidate;
                parts = (parts - 1).max(2);
                reduced = true;
                break;
            }
            if budget == 0 {
                break;
            }
        }
        if !reduced {
            if parts >= current.len() {
                break;
            }
            parts = (parts * 2).min(current.len());
        }
    }
    current
}

/// `ops` without the removable operations in `range` (see the module documentation).
fn without(ops: &[Operation], range: std::ops::Range<usize>) -> Vec<Operation> {
    let kept: Vec<&Operation> = ops
        .iter()
        .enumerate()
        .filter(|(i, _)| !range.contains(i))
        .map(|(_, op)| op)
        .collect();
    // Per key: observed values (None = absent), and whether it has appends.
    let mut observed: BTreeMap<Option<&str>, BTreeSet<Option<&str>>> = BTreeMap::new();
    let mut appends: BTreeSet<Option<&str>> = BTreeSet::new();
    for op in ops {
        if matches!(op.value, OpValue::Append(_)) {
            appends.insert(op.key.as_deref());
        }
    }
    for op in &kept {
        let seen = observed.entry(op.key.as_deref()).or_default();
        match &op.value {
            OpValue::Get(v) => {
                seen.insert(v.as_deref());
            }
            OpValue::Siblings(vs) => {
                seen.extend(vs.iter().map(|v| Some(v.as_str())));
                if vs.is_empty() {
                    seen.insert(None);
                }
            }
            OpValue::Cas { expected, .. } => {
                seen.insert(expected.as_deref());
            }
            _ => {}
        }
    }
    let removable = |op: &Operation| {
        let key = op.key.as_deref();
        let unobserved = |v: Option<&str>| {
            !appends.contains(&key) && !observed.get(&key).is_some_and(|s| s.contains(&v))
        };
        match &op.value {
            OpValue::Get(_) | OpValue::Siblings(_) => true,
            OpValue::Put(v) | OpValue::Cas { new: v, .. } => unobserved(Some(v)),
            OpValue::Delete => unobserved(None),
            OpValue::Append(_) | OpValue::Incr(_) | OpValue::SetAdd(_) | OpValue::SetRemove(_) => {
                false
            }
        }
    };
    ops.iter()
        .enumerate()
        .filter(|(i, op)| !range.contains(i) || !removable(op))
        .map(|(_, op)| op.clone())
        .collect()
}

/// A short description of an operation: `put x 3`, `get x → 3`, `cas x 1→2`.
pub fn describe(op: &Operation) -> String {
    let key = op
        .key
        .as_deref()
        .map(|k| format!(" {k}"))
        .unwrap_or_default();
    let text = |v: &Option<String>| v.as_deref().unwrap_or("nil").to_string();
    match &op.value {
        OpValue::Get(v) => format!("get{key} → {}", text(v)),
        OpValue::Siblings(vs) => format!("get{key} → {{{}}}", vs.join(", ")),
        OpValue::Put(v) => format!("put{key} {v}"),
        OpValue::Delete => format!("delete{key}"),
        OpValue::Append(v) => format!("append{key} {v}"),
        OpValue::Cas { expected, new } => format!("cas{key} {}→{new}", text(expected)),
        OpValue::Incr(amount) => format!("incr{key} {amount}"),
        OpValue::SetAdd(element) => format!("add{key} {element}"),
        OpValue::SetRemove(element) => format!("remove{key} {element}"),
    }
}

fn span(ops: &[&Operation]) -> (u64, u64) {
    let start = ops.iter().map(|o| o.call).min().unwrap_or(0);
    let end = ops
        .iter()
        .map(|o| o.ret.unwrap_or(o.call))
        .chain(ops.iter().map(|o| o.call))
        .max()
        .unwrap_or(start);
    (start, end.max(start + 1))
}

/// A text timeline: one line per operation (by invocation), its interval drawn to scale.
/// An operation with unknown outcome runs off the right edge (`-->?`).
pub fn timeline(ops: &[&Operation]) -> String {
    const WIDTH: u64 = 48;
    let mut ops: Vec<&Operation> = ops.to_vec();
    ops.sort_by_key(|o| (o.call, o.id));
    let (start, end) = span(&ops);
    let column =
        |t: u64| ((t - start) as u128 * u128::from(WIDTH) / u128::from(end - start)) as usize;
    // Columns as wide as the widest entry, so that 2^40 process ids keep them aligned.
    let process_width = ops
        .iter()
        .map(|o| o.process.to_string().len())
        .max()
        .unwrap_or(1)
        .max(4);
    let id_width = ops
        .iter()
        .map(|o| o.id.to_string().len())
        .max()
        .unwrap_or(1)
        .max(5);
    let what_width = ops
        .iter()
        .map(|o| describe(o).chars().count())
        .max()
        .unwrap_or(1)
        .max(24);
    let mut out = String::new();
    for op in ops {
        let from = column(op.call);
        let bar = match op.ret {
            Some(ret) => {
                let to = column(ret).max(from + 1);
                format!("{}|{}|", " ".repeat(from), "-".repeat(to - from - 1))
            }
            None => format!(
                "{}|{}>?",
                " ".repeat(from),
                "-".repeat(WIDTH as usize - from)
            ),
        };
        let ret = op.ret.map_or_else(|| "?".into(), |r| r.to_string());
        let _ = writeln!(
            out,
            "  p{:<process_width$} {bar:<52} #{:<id_width$} {:<what_width$} [{} .. {ret}] line {}",
            op.process,
            op.id,
            describe(op),
            op.call,
            op.line
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The same picture as SVG: one lane per process, one bar per operation (writes blue, reads
/// green, unknown outcomes dashed and open-ended), labelled with what it did.
pub fn svg(ops: &[&Operation], title: &str) -> String {
    let mut ops: Vec<&Operation> = ops.to_vec();
    ops.sort_by_key(|o| (o.process, o.call));
    let processes: Vec<u64> = ops
        .iter()
        .map(|o| o.process)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (start, end) = span(&ops);
    let (left, width, lane) = (90.0, 760.0, 44.0);
    let x = |t: u64| left + (t - start) as f64 * width / (end - start) as f64;
    let height = 60.0 + lane * processes.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="monospace" font-size="11">"#,
        left + width + 120.0
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="18" font-size="13">{}</text>"#,
        escape(title)
    );
    for (row, p) in processes.iter().enumerate() {
        let y = 40.0 + lane * row as f64;
        let _ = writeln!(out, r#"<text x="10" y="{}">process {p}</text>"#, y + 16.0);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            y + 30.0,
            left + width,
            y + 30.0
        );
        for op in ops.iter().filter(|o| o.process == *p) {
            let x1 = x(op.call);
            let x2 = op.ret.map_or(left + width + 40.0, x).max(x1 + 4.0);
            let read = matches!(op.value, OpValue::Get(_) | OpValue::Siblings(_));
            let fill = if read { "#cfe8cf" } else { "#cfdcf2" };
            let dash = if op.ret.is_none() {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r##"<rect x="{x1:.1}" y="{y}" width="{:.1}" height="22" rx="3" fill="{fill}" stroke="#555"{dash}><title>{}</title></rect>"##,
                x2 - x1,
                escape(&op.to_string())
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}">#{} {}</text>"#,
                x1 + 3.0,
                y + 15.0,
                op.id,
                escape(&describe(op))
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="{}" fill="#777">t = {start}</text><text x="{}" y="{}" fill="#777" text-anchor="end">t = {end}</text>"##,
        height - 6.0,
        left + width,
        height - 6.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair, parse_jsonl};
    use crate::linearizability::{check_linearizable, Limits, Verdict};

    #[test]
    fn a_stale_read_shrinks_to_the_three_operations_that_explain_it() {
        // Noise around a stale read: other keys, other reads, other writes.
        let mut text = String::new();
        let mut t = 0;
        let mut push = |p: u64, f: &str, key: &str, invoke: &str, done: &str| {
            text += &format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"{f}\",\"key\":\"{key}\",\"value\":{invoke},\"time\":{t}}}\n");
            text += &format!("{{\"process\":{p},\"type\":\"ok\",\"f\":\"{f}\",\"key\":\"{key}\",\"value\":{done},\"time\":{}}}\n", t + 1);
            t += 2;
        };
        for i in 0..10 {
            push(
                i % 3,
                "put",
                "y",
                &format!("\"y{i}\""),
                &format!("\"y{i}\""),
            );
        }
        push(0, "put", "x", "\"1\"", "\"1\"");
        push(1, "get", "x", "null", "\"1\"");
        push(0, "put", "x", "\"2\"", "\"2\"");
        push(2, "get", "x", "null", "\"2\"");
        push(1, "get", "x", "null", "\"1\""); // stale
        push(0, "put", "x", "\"3\"", "\"3\"");
        let ops = pair(&parse_jsonl(&text).unwrap()).unwrap();
        let mut violates = |ops: &[Operation]| {
            check_linearizable(ops, &Limits::default()).verdict == Verdict::NotLinearizable
        };
        assert!(violates(&ops));
        let small = minimize(&ops, &mut violates, 500);
        let described: Vec<String> = small.iter().map(describe).collect();
        assert_eq!(described, vec!["put x 1", "put x 2", "get x → 1"]);
        let picture = timeline(&small.iter().collect::<Vec<_>>());
        assert_eq!(picture.lines().count(), 3);
        assert!(picture.contains("get x → 1"), "{picture}");
        let drawing = svg(&small.iter().collect::<Vec<_>>(), "stale read");
        assert!(drawing.starts_with("<svg") && drawing.contains("put x 2"));
    }
}
