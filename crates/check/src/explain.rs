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
            OpValue::DeleteIf(expected) => {
                seen.insert(Some(expected.as_str()));
            }
            OpValue::PutTtlIfAbsent { .. } => {
                seen.insert(None);
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
            // Removing a `put_ttl` would remove its expiry too, which may explain a read.
            OpValue::Append(_)
            | OpValue::Incr(_)
            | OpValue::SetAdd(_)
            | OpValue::SetRemove(_)
            | OpValue::PutTtl { .. }
            | OpValue::PutTtlIfAbsent { .. }
            | OpValue::DeleteIf(_)
            | OpValue::ExpireIf(_)
            | OpValue::PutLease { .. }
            | OpValue::Lease(_)
            | OpValue::Txn(_) => false,
        }
    };
    ops.iter()
        .enumerate()
        .filter(|(i, op)| !range.contains(i) || !removable(op))
        .map(|(_, op)| op.clone())
        .collect()
}

/// A micro-op of a transaction: `append x 3,`, `r x → 1,3,`.
fn describe_mop(mop: &crate::txn::Mop) -> String {
    use crate::txn::Mop;
    match mop {
        Mop::Append { key, value } => format!("append {key} {value}"),
        Mop::Read { key, value } => format!("r {key} → {}", value.as_deref().unwrap_or("nil")),
        Mop::Write { key, value } => format!("w {key} {value}"),
    }
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
        OpValue::PutTtl { value, ttl_ms, .. } => format!("put{key} {value} px {ttl_ms}"),
        OpValue::ExpireIf(v) => format!("expire{key} if {v}"),
        OpValue::PutTtlIfAbsent { value, ttl_ms, .. } => {
            format!("put{key} {value} nx px {ttl_ms}")
        }
        OpValue::DeleteIf(v) => format!("delete{key} if {v}"),
        OpValue::PutLease { value, lease, .. } => format!("put{key} {value} lease {lease}"),
        OpValue::Lease(op) => format!("{} {}", op.f(), op.to_json()),
        OpValue::Delete => format!("delete{key}"),
        OpValue::Append(v) => format!("append{key} {v}"),
        OpValue::Cas { expected, new } => format!("cas{key} {}→{new}", text(expected)),
        OpValue::Txn(mops) => format!(
            "txn [{}]",
            mops.iter().map(describe_mop).collect::<Vec<_>>().join(", ")
        ),
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

/// A time axis: a unit that keeps tick labels short, and a round step between ticks.
struct Axis {
    unit: &'static str,
    /// Nanoseconds per unit.
    scale: f64,
    /// Nanoseconds between ticks.
    step: u64,
}

impl Axis {
    /// Times are nanoseconds (the history format's unit); about five to ten ticks.
    fn new(span: u64) -> Axis {
        let (unit, scale) = match span {
            0..10_000 => ("ns", 1.0),
            10_000..10_000_000 => ("µs", 1e3),
            10_000_000..10_000_000_000 => ("ms", 1e6),
            _ => ("s", 1e9),
        };
        let mut step = 1u64;
        'search: loop {
            for factor in [1, 2, 5] {
                let candidate = step.saturating_mul(factor);
                if span / candidate.max(1) <= 8 {
                    step = candidate;
                    break 'search;
                }
            }
            step = step.saturating_mul(10);
        }
        Axis { unit, scale, step }
    }

    fn label(&self, offset: u64) -> String {
        let value = offset as f64 / self.scale;
        if value.fract().abs() < 1e-9 {
            format!("{value:.0} {}", self.unit)
        } else {
            format!("{value:.1} {}", self.unit)
        }
    }
}

/// Approximate width of monospace text at font size 11.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.7
}

/// The same picture as SVG: one lane per process, one bar per operation (writes blue, reads
/// green, unknown outcomes dashed and open-ended), each labelled below its bar with its id and
/// what it did (labels that would overlap move to a lower row), a time axis in readable units
/// and a legend.
pub fn svg(ops: &[&Operation], title: &str) -> String {
    let mut ops: Vec<&Operation> = ops.to_vec();
    ops.sort_by_key(|o| (o.process, o.call, o.id));
    let processes: Vec<u64> = ops
        .iter()
        .map(|o| o.process)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (start, end) = span(&ops);
    let left = 20.0
        + processes
            .iter()
            .map(|p| text_width(&format!("process {p}")))
            .fold(60.0, f64::max);
    let width = 760.0;
    let x = |t: u64| left + (t - start) as f64 * width / (end - start) as f64;
    let (bar, row) = (20.0, 14.0);
    // Lay out each lane: the label rows every operation's label goes to.
    struct Placed<'a> {
        op: &'a Operation,
        x1: f64,
        x2: f64,
        row: usize,
        label: String,
    }
    let mut lanes: Vec<(u64, Vec<Placed>, usize)> = Vec::new();
    let mut right = left + width + 40.0;
    for p in &processes {
        let mut ends: Vec<f64> = Vec::new(); // per label row: where its last label ends
        let mut placed = Vec::new();
        for op in ops.iter().filter(|o| o.process == *p) {
            let x1 = x(op.call);
            let x2 = op.ret.map_or(left + width + 40.0, x).max(x1 + 4.0);
            let label = format!("#{} {}", op.id, describe(op));
            let row = match ends.iter().position(|e| *e + 6.0 <= x1) {
                Some(r) => r,
                None => {
                    ends.push(f64::MIN);
                    ends.len() - 1
                }
            };
            ends[row] = x1 + text_width(&label);
            right = right.max(ends[row] + 10.0);
            placed.push(Placed {
                op,
                x1,
                x2,
                row,
                label,
            });
        }
        lanes.push((*p, placed, ends.len().max(1)));
    }
    let top = 58.0;
    let lane_height = |rows: usize| bar + 8.0 + row * rows as f64;
    let lanes_height: f64 = lanes.iter().map(|(_, _, rows)| lane_height(*rows)).sum();
    let axis_y = top + lanes_height + 6.0;
    let height = axis_y + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{height:.0}" font-family="monospace" font-size="11">"#,
        right.max(left + width + 200.0)
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="18" font-size="13">{}</text>"#,
        escape(title)
    );
    // Legend.
    let legend = [
        ("#cfdcf2", "", "write (put, delete, cas, append)"),
        ("#cfe8cf", "", "read"),
        (
            "#ffffff",
            r#" stroke-dasharray="4 3""#,
            "unknown outcome (info)",
        ),
    ];
    let mut lx = 10.0;
    for (fill, dash, what) in legend {
        let _ = writeln!(
            out,
            r##"<rect x="{lx}" y="28" width="18" height="11" rx="2" fill="{fill}" stroke="#555"{dash}/><text x="{}" y="38">{what}</text>"##,
            lx + 24.0
        );
        lx += 24.0 + text_width(what) + 22.0;
    }
    let mut y = top;
    for (p, placed, rows) in &lanes {
        let _ = writeln!(out, r#"<text x="10" y="{}">process {p}</text>"#, y + 15.0);
        for item in placed {
            let read = matches!(item.op.value, OpValue::Get(_) | OpValue::Siblings(_));
            let fill = if read { "#cfe8cf" } else { "#cfdcf2" };
            let dash = if item.op.ret.is_none() {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r##"<rect x="{:.1}" y="{y}" width="{:.1}" height="{bar}" rx="3" fill="{fill}" stroke="#555"{dash}><title>{}</title></rect>"##,
                item.x1,
                item.x2 - item.x1,
                escape(&item.op.to_string())
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                item.x1,
                y + bar + 11.0 + row * item.row as f64,
                escape(&item.label)
            );
        }
        y += lane_height(*rows);
        let _ = writeln!(
            out,
            r##"<line x1="10" y1="{y}" x2="{:.0}" y2="{y}" stroke="#eee"/>"##,
            left + width
        );
    }
    // Time axis: ticks at round offsets from the earliest invocation shown.
    let axis = Axis::new(end - start);
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#777"/>"##,
        left + width
    );
    let mut offset = 0u64;
    while offset <= end - start {
        let tx = x(start + offset);
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{axis_y}" x2="{tx:.1}" y2="{}" stroke="#777"/><text x="{tx:.1}" y="{}" fill="#555" text-anchor="middle">{}</text>"##,
            axis_y + 4.0,
            axis_y + 16.0,
            axis.label(offset)
        );
        offset = match offset.checked_add(axis.step) {
            Some(next) => next,
            None => break,
        };
    }
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="{}" fill="#777">time after t = {start} ns (the earliest invocation shown)</text>"##,
        axis_y + 32.0
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
        assert!(drawing.contains("unknown outcome") && drawing.contains(" ns</text>"));
    }

    #[test]
    fn axes_use_readable_units_and_round_steps() {
        let axis = Axis::new(45_000_000);
        assert_eq!((axis.unit, axis.step), ("ms", 10_000_000));
        assert_eq!(axis.label(20_000_000), "20 ms");
        assert_eq!(Axis::new(30_000_000).step, 5_000_000);
        assert_eq!(Axis::new(3_000).unit, "ns");
        assert_eq!(Axis::new(120_000_000_000).label(20_000_000_000), "20 s");
    }

    #[test]
    fn huge_process_ids_keep_columns_and_labels_apart() {
        let text = format!(
            "{{\"process\":{big},\"type\":\"invoke\",\"f\":\"put\",\"key\":\"x\",\"value\":\"1\",\"time\":0}}\n\
             {{\"process\":{big},\"type\":\"ok\",\"f\":\"put\",\"key\":\"x\",\"value\":\"1\",\"time\":1}}\n\
             {{\"process\":{big},\"type\":\"invoke\",\"f\":\"put\",\"key\":\"x\",\"value\":\"2\",\"time\":2}}\n\
             {{\"process\":{big},\"type\":\"ok\",\"f\":\"put\",\"key\":\"x\",\"value\":\"2\",\"time\":3}}\n\
             {{\"process\":1,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"time\":1000}}\n\
             {{\"process\":1,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":\"1\",\"time\":1001}}\n",
            big = 1u64 << 40
        );
        let ops = pair(&parse_jsonl(&text).unwrap()).unwrap();
        let refs: Vec<&Operation> = ops.iter().collect();
        let lines: Vec<String> = timeline(&refs).lines().map(String::from).collect();
        let bar_column = |l: &String| l.find('|').unwrap();
        let starts: Vec<usize> = lines.iter().map(|l| l.find('#').unwrap()).collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{lines:?}");
        assert!(lines.iter().all(|l| bar_column(l) > 14), "{lines:?}");
        // The two back-to-back puts are too short for their labels: two label rows.
        let drawing = svg(&refs, "t");
        let label_ys: Vec<&str> = drawing
            .lines()
            .filter(|l| l.contains(">#0 put") || l.contains(">#1 put"))
            .map(|l| l.split("y=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        assert_eq!(label_ys.len(), 2);
        assert_ne!(label_ys[0], label_ys[1], "{drawing}");
    }
}
