//! Seeing a run: one self-contained HTML page for a simulated run or any history.
//!
//! The page is `page.html` (vanilla JavaScript, CSS and SVG, no network access) with the run's
//! data embedded as JSON: the simulator's event record ([`quorate_sim::record`]), the client
//! operations paired from the history, and the checker's verdict with the operations of its
//! witness (the smallest violating set found, as `quorate check --svg` draws it). The script
//! draws a space-time diagram: a lane per node and per client process, messages as arrows,
//! crashes, pauses and partitions shaded, leader bands, operations as intervals; it marks what
//! it drew on `<body>` (`data-lanes`, `data-arrows-drawn`, `data-violating`, `data-ready`) so
//! that tests in a headless browser can check it.

use quorate_check::explain::describe;
use quorate_check::linearizability::{check_linearizable, Limits, Verdict as LinVerdict};
use quorate_check::report::Report;
use quorate_check::{Event as HistoryEvent, EventKind, Mode, Model, Operation, Validity};
use quorate_sim::record::{RunEvent, What};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TEMPLATE: &str = include_str!("page.html");

/// What the checker said, for the page's header and highlights.
pub struct Verdict {
    pub validity: Validity,
    pub headline: String,
    pub details: Vec<String>,
    /// History lines of the invocations of the witness's operations.
    pub witness_lines: Vec<usize>,
    /// For a valid history: one linearization, as `(line, time, rank)` per operation (see
    /// [`linearization`]); the page draws each as a point on the operation's interval.
    pub linearization: Vec<(usize, u64, usize)>,
}

impl Verdict {
    /// From a checker's report on `operations`.
    pub fn from_report(report: &Report, operations: &[Operation]) -> Verdict {
        Verdict {
            validity: report.validity,
            headline: report.headline.clone(),
            details: report.details.clone(),
            witness_lines: witness_lines(&report.witness, operations),
            linearization: Vec::new(),
        }
    }
}

/// The lines of the operations `ids` names.
fn witness_lines(ids: &[usize], operations: &[Operation]) -> Vec<usize> {
    ids.iter()
        .filter_map(|id| operations.iter().find(|o| o.id == *id))
        .map(|o| o.line)
        .collect()
}

/// Checks `operations` for linearizability within `time`, for the operations to highlight
/// when a verdict names no witness of its own (a promise broken, a failed simulation). Empty
/// when they are linearizable or the check ran out of time.
pub fn linearizability_witness(operations: &[Operation], time: Duration) -> Vec<usize> {
    let deadline = Instant::now() + time;
    let cancelled = move || Instant::now() > deadline;
    let limits = Limits {
        cancelled: &cancelled,
        ..Limits::default()
    };
    match quorate_check::check(Model::Linearizable, operations, &limits) {
        Ok(report) if report.validity == Validity::Invalid => {
            witness_lines(&report.witness, operations)
        }
        _ => Vec::new(),
    }
}

/// One linearization of the history's linearizable operations (those with `Mode::Linearizable`:
/// reads sent to any replica and final reads are left out, as every promise leaves them out of
/// linearizability), found within `time`: for every operation that took effect, the line of
/// its invocation, its linearization point (`KeyOrder::points`: inside its interval, in the
/// order) and its rank in its key's order. Empty when they are not linearizable, or undecided.
pub fn linearization(
    history: &[HistoryEvent],
    lines: &[usize],
    time: Duration,
) -> Vec<(usize, u64, usize)> {
    let (events, lines): (Vec<HistoryEvent>, Vec<usize>) = history
        .iter()
        .zip(lines)
        .filter(|(e, _)| e.mode == Mode::Linearizable)
        .map(|(e, line)| (e.clone(), *line))
        .unzip();
    let Ok(operations) = quorate_check::history::pair_lines(&events, &lines) else {
        return Vec::new();
    };
    let deadline = Instant::now() + time;
    let cancelled = move || Instant::now() > deadline;
    let limits = Limits {
        cancelled: &cancelled,
        ..Limits::default()
    };
    let report = check_linearizable(&operations, &limits);
    if report.verdict != LinVerdict::Linearizable {
        return Vec::new();
    }
    let line_of: BTreeMap<usize, usize> = operations.iter().map(|o| (o.id, o.line)).collect();
    report
        .linearization
        .iter()
        .flat_map(|order| {
            let points = order.points(&operations).into_iter().enumerate();
            points.map(|(rank, (id, at))| (line_of[&id], at, rank))
        })
        .collect()
}

/// Everything one page shows.
pub struct Page<'a> {
    pub title: String,
    pub subtitle: String,
    /// A sentence on what to look at (teaching scenarios).
    pub note: Option<String>,
    /// The simulator's record; empty for a history file.
    pub events: &'a [RunEvent],
    /// The history and the 1-based line of each event.
    pub history: &'a [HistoryEvent],
    pub lines: &'a [usize],
    pub verdict: Option<Verdict>,
}

impl Page<'_> {
    /// The page, as one HTML document.
    pub fn render(&self) -> String {
        let verdict = self.verdict.as_ref().map(|v| {
            json!({
                "valid": match v.validity {
                    Validity::Valid => json!(true),
                    Validity::Invalid => json!(false),
                    Validity::Unknown => Value::Null,
                },
                "headline": v.headline,
                "details": v.details,
                "witness": v.witness_lines,
                "linearization": v.linearization,
            })
        });
        let data = json!({
            "title": self.title,
            "subtitle": self.subtitle,
            "note": self.note,
            "nodes": node_lanes(self.events),
            "events": self.events,
            "ops": operations(self.history, self.lines),
            "verdict": verdict,
        });
        // Inside <script>, "</" could end the element early.
        let data = data.to_string().replace("</", "<\\/");
        TEMPLATE
            .replacen("__TITLE__", &escape(&self.title), 1)
            .replacen("__DATA__", &data, 1)
    }
}

/// The nodes that started during the run, in order: `n1`, `n2`, ...
fn node_lanes(events: &[RunEvent]) -> Vec<String> {
    let mut nodes: Vec<(u64, String)> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::Start { node, .. } => Some(node.clone()),
            _ => None,
        })
        .filter_map(|node| Some((node.strip_prefix('n')?.parse().ok()?, node)))
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes.into_iter().map(|(_, node)| node).collect()
}

/// The history's operations as intervals: each invocation with its completion (if any),
/// named by the invocation's line. Failed operations and unknown outcomes are kept, marked.
fn operations(history: &[HistoryEvent], lines: &[usize]) -> Vec<Value> {
    let mut open: BTreeMap<u64, (usize, &HistoryEvent)> = BTreeMap::new();
    let mut out = Vec::new();
    let op = |line: usize, invoke: &HistoryEvent, done: Option<&HistoryEvent>| {
        let value = match done {
            Some(done) if done.kind == EventKind::Ok => done.value.clone(),
            _ => invoke.value.clone(),
        };
        let operation = Operation {
            id: 0,
            process: invoke.process,
            key: invoke.key.clone(),
            value,
            call: invoke.time,
            ret: done.filter(|d| d.kind != EventKind::Info).map(|d| d.time),
            line,
            node: done.and_then(|d| d.node).or(invoke.node),
        };
        let status = match done.map(|d| d.kind) {
            Some(EventKind::Ok) => "ok",
            Some(EventKind::Fail) => "fail",
            _ => "info",
        };
        json!({
            "index": line,
            "line": line,
            "process": invoke.process,
            "key": invoke.key,
            "desc": describe(&operation),
            "call": operation.call,
            "ret": operation.ret,
            "status": status,
            "node": operation.node.map(|n| format!("n{n}")),
            "error": done.and_then(|d| d.error.clone()),
        })
    };
    for (event, &line) in history.iter().zip(lines) {
        if event.kind == EventKind::Invoke {
            if let Some((line, invoke)) = open.insert(event.process, (line, event)) {
                out.push(op(line, invoke, None));
            }
        } else if let Some((line, invoke)) = open.remove(&event.process) {
            out.push(op(line, invoke, Some(event)));
        }
    }
    out.extend(
        open.into_values()
            .map(|(line, invoke)| op(line, invoke, None)),
    );
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page of a history file (JSON lines or EDN), judged for linearizability within ten
/// seconds, with the violation highlighted: what `quorate torture --report DIR` writes next to
/// the history.
pub fn history_file_page(
    history: &std::path::Path,
    out: &std::path::Path,
    title: String,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = std::fs::read_to_string(history)
        .with_context(|| format!("cannot read {}", history.display()))?;
    let parsed = quorate_check::history::parse(&text, quorate_check::history::Format::Auto)?;
    let operations = parsed.pair()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let cancelled = move || Instant::now() > deadline;
    let limits = Limits {
        cancelled: &cancelled,
        ..Limits::default()
    };
    let report = quorate_check::check(Model::Linearizable, &operations, &limits)?;
    let mut verdict = Verdict::from_report(&report, &operations);
    if report.validity == Validity::Valid {
        verdict.linearization =
            linearization(&parsed.events, &parsed.lines, Duration::from_secs(10));
    }
    let page = Page {
        title,
        subtitle: format!(
            "{}: {} operations, one lane per client process",
            history.display(),
            operations.len()
        ),
        note: None,
        events: &[],
        history: &parsed.events,
        lines: &parsed.lines,
        verdict: Some(verdict),
    };
    write(&page, out)
}

/// Writes `page` to `path` and says so on standard error.
pub fn write(page: &Page, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let html = page.render();
    std::fs::write(path, &html).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "html: {} ({} KiB; open it in a browser, it needs no network)",
        path.display(),
        html.len().div_ceil(1024)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_check::{Mode, OpValue};

    fn event(process: u64, kind: EventKind, value: OpValue, time: u64) -> HistoryEvent {
        HistoryEvent {
            process,
            kind,
            key: Some("x".into()),
            value,
            time,
            node: None,
            error: None,
            mode: Mode::Linearizable,
        }
    }

    #[test]
    fn operations_pair_by_process_and_keep_unknown_outcomes() {
        let history = [
            event(0, EventKind::Invoke, OpValue::Put("1".into()), 1),
            event(1, EventKind::Invoke, OpValue::Get(None), 2),
            event(0, EventKind::Ok, OpValue::Put("1".into()), 3),
            event(1, EventKind::Ok, OpValue::Get(Some("1".into())), 4),
            event(2, EventKind::Invoke, OpValue::Put("2".into()), 5),
        ];
        let lines = [1, 2, 3, 4, 5];
        let ops = operations(&history, &lines);
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0]["desc"], "put x 1");
        assert_eq!(ops[1]["desc"], "get x → 1");
        assert_eq!(ops[1]["ret"], 4);
        assert_eq!(ops[2]["status"], "info");
        assert!(ops[2]["ret"].is_null());
    }

    #[test]
    fn the_data_cannot_close_its_script_element() {
        let page = Page {
            title: "a <b> title".into(),
            subtitle: "</script><script>alert(1)</script>".into(),
            note: None,
            events: &[],
            history: &[],
            lines: &[],
            verdict: None,
        };
        let html = page.render();
        assert_eq!(
            html.matches("</script>").count(),
            2,
            "only the page's own two"
        );
        assert!(html.contains("<title>a &lt;b&gt; title</title>"));
    }
}
