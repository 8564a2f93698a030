//! `quorate check`: verdicts on history files.

use anyhow::Context;
use clap::Args;
use quorate_check::history::{pair, parse_jsonl};
use quorate_check::linearizability::{check_linearizable, Limits};
use quorate_check::Verdict;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A history in JSON lines (see ARCHITECTURE.md for the format).
    file: std::path::PathBuf,
    /// Give up after this long and answer "unknown" (exit 3).
    #[arg(long, default_value = "60s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    time_limit: Duration,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let events = parse_jsonl(&text).with_context(|| format!("{}", args.file.display()))?;
    let operations = pair(&events).with_context(|| format!("{}", args.file.display()))?;
    let deadline = Instant::now() + args.time_limit;
    let cancelled = move || Instant::now() > deadline;
    let limits = Limits {
        cancelled: &cancelled,
        ..Limits::default()
    };
    let started = Instant::now();
    let report = check_linearizable(&operations, &limits);
    let elapsed = started.elapsed();
    let (word, code) = match report.verdict {
        Verdict::Linearizable => ("linearizable", 0),
        Verdict::NotLinearizable => ("not linearizable", 1),
        Verdict::Unknown => ("unknown", 3),
    };
    if args.json {
        let json = serde_json::json!({
            "model": "linearizable",
            "valid": match report.verdict { Verdict::Linearizable => serde_json::json!(true), Verdict::NotLinearizable => serde_json::json!(false), Verdict::Unknown => serde_json::json!("unknown") },
            "operations": operations.len(),
            "key": report.key,
            "elapsed_s": elapsed.as_secs_f64(),
        });
        println!("{json}");
    } else {
        println!(
            "{word}: {} operations checked in {:.3}s",
            operations.len(),
            elapsed.as_secs_f64()
        );
        if report.verdict == Verdict::NotLinearizable {
            println!(
                "key {:?} has no linearization.",
                report.key.as_deref().unwrap_or("-")
            );
            println!(
                "longest linearizable prefix ({} operations):",
                report.linearized.len()
            );
            for id in report.linearized.iter().rev().take(8).rev() {
                println!("  {}", operations[*id]);
            }
            if let Some(stuck) = report.stuck {
                println!("then this operation returned before it could take effect:");
                println!("  {}", operations[stuck]);
            }
        }
        if let Some(reason) = &report.reason {
            println!("({reason})");
        }
    }
    Ok(ExitCode::from(code))
}
