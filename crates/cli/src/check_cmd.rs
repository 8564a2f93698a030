//! `quorate check`: verdicts on history files.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use quorate_check::explain::{svg, timeline};
use quorate_check::history::{self, Format, Operation};
use quorate_check::linearizability::Limits;
use quorate_check::report::{check_with, Options, Report};
use quorate_check::session::{Guarantee, Guarantees};
use quorate_check::{judge, list_append, txn, Judgement, Model, Promise, Validity};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
#[command(after_help = "Models, strongest first:\n  \
    linearizable  one order of all operations, consistent with real time (per key)\n  \
    sequential    one order of all operations, consistent with each process's order\n  \
    causal        every read explained by its causal past (unique writes; get/put only)\n  \
    session       read-your-writes, monotonic reads, monotonic writes, writes-follow-reads\n  \
    convergence   final reads agree, on a value (or siblings) the writes justify\n  \
    list-append   Elle's analysis of appends and list reads (also Elle :txn histories):\n  \
                  dependency cycles (G0, G1c, G-single, G2), G1a, G1b, lost appends,\n  \
                  duplicated and phantom elements, non-prefix reads\n\n\
Promises (--promise), what a system guarantees, judged as `quorate sim` judges its runs:\n  \
    linearizable     every operation linearizable (raft, paxos, multipaxos, pb, chain, craq)\n  \
    zab              linearizable writes and reads; sync and local reads in one order\n  \
    quorum           linearizable (R + W > N); final reads of the replicas agree\n  \
    quorum-sloppy    final reads agree; linearizability and stale reads measured\n  \
    lww, version-vectors, crdt   multi-primary: final reads agree, the resolver's rules\n\n\
Without --model or --promise: the promise the history's header names (`quorate sim\n\
--history` writes one), else list-append for histories of appends, reads and transactions\n\
only (and Elle :txn histories with appends or several micro-ops), the linearizable promise\n\
for transactions beside other operations (a torture history), linearizable otherwise.\n\n\
Exit status: 0 valid, 1 invalid, 2 bad input, 3 unknown (time limit or nothing to judge).\n\n\
Examples:\n  \
    quorate check h.jsonl\n  \
    quorate check knossos.edn --model sequential\n  \
    quorate check h.jsonl --model session --guarantees ryw,mr --svg why.svg\n  \
    quorate check h.jsonl --model convergence --json\n  \
    quorate check h.jsonl --promise quorum-sloppy\n  \
    quorate check elle-history.edn --model list-append")]
pub struct CheckArgs {
    /// A history: JSON lines (see README.md) or a Jepsen/Knossos EDN history.
    file: PathBuf,
    /// The consistency model to check against (default: see below).
    #[arg(long, value_enum)]
    model: Option<ModelArg>,
    /// Judge the history by what a system promises (see below) instead of one model.
    #[arg(long, value_parser = |s: &str| Promise::parse(s), conflicts_with = "model")]
    promise: Option<Promise>,
    /// The file format; `auto` looks at the first form.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// With `--model session`: which guarantees, as a comma-separated list of ryw, mr, mw,
    /// wfr (or all).
    #[arg(long, default_value = "all")]
    guarantees: String,
    /// Give up after this long and answer "unknown" (exit 3).
    #[arg(long, default_value = "60s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    time_limit: Duration,
    /// Time for shrinking a violation to a small witness, after the verdict is known.
    /// Shrinking only explains: it never changes the verdict or the key reported.
    #[arg(long, default_value = "1s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    shrink_time: Duration,
    /// Memory the search's memo may use per key before it answers "unknown" (e.g. 512M, 4G).
    #[arg(long, default_value = "512M", value_parser = parse_bytes)]
    memory_limit: usize,
    /// Linearizability by the search alone, skipping the polynomial check of keys whose
    /// written values are unique (a baseline for measurements).
    #[arg(long)]
    search_only: bool,
    /// Print the verdict as one line of JSON.
    #[arg(long)]
    json: bool,
    /// On a violation, draw the operations that explain it as an SVG timeline into FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write the history as one self-contained HTML page into FILE: every operation as an
    /// interval on its process's lane, the verdict, and the operations of a violation
    /// highlighted.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModelArg {
    Linearizable,
    Sequential,
    Causal,
    Session,
    Convergence,
    ListAppend,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Auto,
    Jsonl,
    Edn,
}

fn guarantees(list: &str) -> anyhow::Result<Guarantees> {
    let mut set = 0u8;
    for name in list.split(',').map(str::trim) {
        set |= match name {
            "all" => Guarantees::ALL.0,
            "ryw" | "read-your-writes" => 1 << Guarantee::ReadYourWrites as u8,
            "mr" | "monotonic-reads" => 1 << Guarantee::MonotonicReads as u8,
            "mw" | "monotonic-writes" => 1 << Guarantee::MonotonicWrites as u8,
            "wfr" | "writes-follow-reads" => 1 << Guarantee::WritesFollowReads as u8,
            other => bail!("unknown guarantee {other:?}: expected ryw, mr, mw, wfr or all"),
        };
    }
    Ok(Guarantees(set))
}

/// `512M`, `4G`, `65536`: bytes, with an optional binary K/M/G suffix.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 10),
        Some((i, 'M' | 'm')) => (&text[..i], 20),
        Some((i, 'G' | 'g')) => (&text[..i], 30),
        _ => (text, 0),
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512M or 4G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        FormatArg::Auto => Format::Auto,
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Edn => Format::Edn,
    };
    let file = args.file.display();
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {file}"))?;
    // Elle transaction histories: only list-append judges transactions of several
    // micro-ops; single-micro-op register transactions go the usual way.
    let edn =
        format == Format::Edn || (format == Format::Auto && history::detect(&text) == Format::Edn);
    if edn && txn::is_txn_history(&text) && matches!(args.model, None | Some(ModelArg::ListAppend))
    {
        let txns = txn::parse_edn_txns(&text).with_context(|| format!("{file}"))?;
        let lists = txns.iter().any(|t| {
            t.mops.len() > 1 || t.mops.iter().any(|m| matches!(m, txn::Mop::Append { .. }))
        });
        if args.model.is_some() || lists {
            let started = Instant::now();
            let report = list_append::report_txns(&txns).with_context(|| format!("{file}"))?;
            let none = history::History::default();
            return finish(&args, report, &[], &none, txns.len(), started, None);
        }
    }
    let parsed = history::parse(&text, format).with_context(|| format!("{file}"))?;
    let operations = parsed.pair().with_context(|| format!("{file}"))?;
    let started = Instant::now();
    let deadline = started + args.time_limit;
    let cancelled = move || Instant::now() > deadline;
    let limits = Limits {
        cancelled: &cancelled,
        memo_bytes_max: args.memory_limit,
    };
    // Transactions beside single operations (a torture history): no one model checks both,
    // the linearizable promise judges each part by its own.
    let mixed = operations
        .iter()
        .any(|o| matches!(o.value, history::OpValue::Txn(_)))
        && !list_append::is_list_append(&operations);
    let recorded = match (&parsed.promise, args.model) {
        (Some(name), None) => {
            let promise = Promise::parse(name).map_err(anyhow::Error::msg)?;
            Some(promise)
        }
        (None, None) if mixed => Some(Promise::Linearizable),
        _ => None,
    };
    if let Some(promise) = args.promise.or(recorded) {
        if args.promise.is_none() && !args.json {
            let why = match parsed.promise {
                Some(_) => "the promise the history names",
                None => "transactions strict serializable, the rest by the promise",
            };
            println!(
                "judging by {why}: {} (--model M checks one model instead)",
                promise.name()
            );
        }
        let judgement = judge(&parsed.events, promise, &limits);
        if let Some(path) = &args.html {
            write_judgement_page(&args, promise, &judgement, &parsed, &operations, path)?;
        }
        return Ok(print_judgement(
            &args,
            promise,
            &judgement,
            operations.len(),
            started,
        ));
    }
    let model = match args.model {
        None if list_append::is_list_append(&operations) => Model::ListAppend,
        None | Some(ModelArg::Linearizable) => Model::Linearizable,
        Some(ModelArg::Sequential) => Model::Sequential,
        Some(ModelArg::Causal) => Model::Causal,
        Some(ModelArg::Session) => Model::Session(guarantees(&args.guarantees)?),
        Some(ModelArg::Convergence) => Model::Convergence,
        Some(ModelArg::ListAppend) => Model::ListAppend,
    };
    // The verdict is printed the moment it is known; shrinking gets its own budget after it.
    let verdict_at = std::cell::Cell::new(None);
    let shrink_deadline = std::cell::Cell::new(None);
    let on_verdict = |report: &Report| {
        let at = started.elapsed();
        verdict_at.set(Some(at));
        shrink_deadline.set(Some(Instant::now() + args.shrink_time));
        if !args.json {
            println!(
                "{} ({} operations checked in {:.3}s)",
                report.headline,
                operations.len(),
                at.as_secs_f64()
            );
        }
    };
    let shrink_cancelled = || shrink_deadline.get().is_some_and(|d| Instant::now() > d);
    let options = Options {
        shrink_cancelled: &shrink_cancelled,
        on_verdict: &on_verdict,
        search_only: args.search_only,
    };
    let report = if model == Model::ListAppend {
        // From the parsed history, so that failed appends are known (aborted reads, G1a).
        list_append::report_history(&parsed)
    } else {
        check_with(model, &operations, &limits, &options)
    }
    .with_context(|| format!("{file}"))?;
    let verdict_s = verdict_at.get().map(|at| at.as_secs_f64());
    finish(
        &args,
        report,
        &operations,
        &parsed,
        operations.len(),
        started,
        verdict_s,
    )
}

/// The page of a history judged by a promise: the judgement's violations, and the
/// operations of a linearizability violation highlighted, if there is one.
fn write_judgement_page(
    args: &CheckArgs,
    promise: Promise,
    judgement: &Judgement,
    parsed: &history::History,
    operations: &[Operation],
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let validity = judgement.validity();
    let witness_lines = if validity == Validity::Invalid {
        crate::view::linearizability_witness(operations, args.shrink_time.max(args.time_limit))
    } else {
        Vec::new()
    };
    let word = match validity {
        Validity::Valid => "kept",
        Validity::Invalid => "broken",
        Validity::Unknown => "unknown",
    };
    let linearization = if validity == Validity::Valid {
        crate::view::linearization(&parsed.events, &parsed.lines, args.time_limit)
    } else {
        Vec::new()
    };
    let verdict = crate::view::Verdict {
        validity,
        headline: format!("promise {}: {word}", promise.name()),
        details: judgement.violations.clone(),
        witness_lines,
        linearization,
    };
    history_page(args, parsed, verdict, path)
}

/// Writes the page of `parsed` with `verdict` to `path`.
fn history_page(
    args: &CheckArgs,
    parsed: &history::History,
    verdict: crate::view::Verdict,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let page = crate::view::Page {
        title: format!("quorate check {}", args.file.display()),
        subtitle: format!(
            "{} events; one lane per process, each operation from invocation to completion              (orange: unknown outcome, grey: failed, red outline: in the violation)",
            parsed.events.len()
        ),
        note: None,
        events: &[],
        history: &parsed.events,
        lines: &parsed.lines,
        verdict: Some(verdict),
    };
    crate::view::write(&page, path)
}

/// Prints `report` (text or JSON, and the SVG) and turns it into the exit code.
fn finish(
    args: &CheckArgs,
    report: Report,
    operations: &[Operation],
    parsed: &history::History,
    checked: usize,
    started: Instant,
    verdict_s: Option<f64>,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.html {
        let mut verdict = crate::view::Verdict::from_report(&report, operations);
        if report.validity == Validity::Valid && report.model == Model::Linearizable {
            verdict.linearization =
                crate::view::linearization(&parsed.events, &parsed.lines, args.time_limit);
        }
        history_page(args, parsed, verdict, path)?;
    }
    let file = args.file.display();
    let model = report.model;
    let elapsed = started.elapsed();
    let code = match report.validity {
        Validity::Valid => 0,
        Validity::Invalid => 1,
        Validity::Unknown => 3,
    };
    let witness: Vec<&Operation> = report
        .witness
        .iter()
        .filter_map(|id| operations.iter().find(|o| o.id == *id))
        .collect();
    if let Some(path) = &args.svg {
        if !witness.is_empty() {
            let title = format!("{} — {}", file, report.headline);
            std::fs::write(path, svg(&witness, &title))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if args.json {
        let json = serde_json::json!({
            "model": model.name(),
            "valid": match report.validity {
                Validity::Valid => serde_json::json!(true),
                Validity::Invalid => serde_json::json!(false),
                Validity::Unknown => serde_json::json!("unknown"),
            },
            "headline": report.headline,
            "details": report.details,
            "key": report.key,
            "witness": witness.iter().map(|o| serde_json::json!({
                "id": o.id, "process": o.process, "key": o.key, "f": o.value.f(),
                "value": o.value.to_json(), "call": o.call, "ret": o.ret, "line": o.line,
            })).collect::<Vec<_>>(),
            "operations": checked,
            "verdict_s": verdict_s.unwrap_or(elapsed.as_secs_f64()),
            "elapsed_s": elapsed.as_secs_f64(),
        });
        println!("{json}");
        return Ok(ExitCode::from(code));
    }
    // Printed already, the moment the verdict was known, unless it came all at once.
    if verdict_s.is_none() {
        println!(
            "{} ({} operations checked in {:.3}s)",
            report.headline,
            checked,
            elapsed.as_secs_f64()
        );
    }
    for line in &report.details {
        println!("{line}");
    }
    if !witness.is_empty() {
        print!("{}", timeline(&witness));
    }
    Ok(ExitCode::from(code))
}

/// Prints what [`judge`] found (text or JSON) and turns it into the exit code.
fn print_judgement(
    args: &CheckArgs,
    promise: Promise,
    judgement: &Judgement,
    checked: usize,
    started: Instant,
) -> ExitCode {
    let elapsed = started.elapsed().as_secs_f64();
    let validity = judgement.validity();
    let (code, word) = match validity {
        Validity::Valid => (0, "kept"),
        Validity::Invalid => (1, "broken"),
        Validity::Unknown => (3, "unknown"),
    };
    let satisfied = |s: Option<bool>| match s {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    if args.json {
        let models: serde_json::Map<String, serde_json::Value> = judgement
            .models
            .iter()
            .map(|m| {
                let value = serde_json::json!({
                    "satisfied": m.satisfied,
                    "promised": m.promised,
                });
                (m.model.to_string(), value)
            })
            .collect();
        let counters: serde_json::Map<String, serde_json::Value> = judgement
            .counters
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::json!(value)))
            .collect();
        let json = serde_json::json!({
            "promise": promise.name(),
            "valid": match validity {
                Validity::Valid => serde_json::json!(true),
                Validity::Invalid => serde_json::json!(false),
                Validity::Unknown => serde_json::json!("unknown"),
            },
            "models": models,
            "violations": judgement.violations,
            "counters": counters,
            "operations": checked,
            "elapsed_s": elapsed,
        });
        println!("{json}");
        return ExitCode::from(code);
    }
    println!(
        "promise {}: {word} ({checked} operations judged in {elapsed:.3}s)",
        promise.name()
    );
    for m in &judgement.models {
        let how = if m.promised { "promised" } else { "measured" };
        println!("  {}: {} ({how})", m.model, satisfied(m.satisfied));
    }
    for violation in &judgement.violations {
        println!("  violation: {violation}");
    }
    if !judgement.counters.is_empty() {
        let counters: Vec<String> = judgement
            .counters
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        println!("  measured: {}", counters.join(", "));
    }
    ExitCode::from(code)
}
