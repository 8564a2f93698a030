//! The `quorate` binary as users run it: real processes, real output, real exit codes.

use std::process::{Command, Output};

fn quorate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(args)
        .output()
        .expect("the quorate binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn last_json(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    let line = text.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

#[test]
fn sim_prints_a_json_summary_with_the_promised_fields() {
    let output = quorate(&[
        "sim",
        "--protocol",
        "raft",
        "--nodes",
        "5",
        "--seeds",
        "20",
        "--faults",
        "all",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json = last_json(&output);
    for field in [
        "protocol",
        "seeds",
        "violations",
        "ops_ok",
        "ops_fail",
        "ops_info",
        "events",
        "events_per_s",
        "trace_hash",
    ] {
        assert!(json.get(field).is_some(), "missing {field} in {json}");
    }
    assert_eq!(json["protocol"], "raft");
    assert_eq!(json["seeds"], 20);
    assert_eq!(json["violations"], 0);
    assert!(json["ops_ok"].as_u64().unwrap() > 100);
    assert!(stdout(&output).contains("events/s"), "a table is printed");
}

#[test]
fn primary_backup_and_chain_report_what_local_reads_cost() {
    for protocol in ["primary-backup", "chain", "craq"] {
        let output = quorate(&[
            "sim",
            "--protocol",
            protocol,
            "--seeds",
            "20",
            "--faults",
            "all",
            "--json",
        ]);
        assert!(output.status.success(), "{protocol}: {}", stderr(&output));
        let json = last_json(&output);
        assert_eq!(json["protocol"], protocol);
        assert_eq!(json["violations"], 0, "{protocol}");
        assert!(json["ops_ok"].as_u64().unwrap() > 100, "{protocol}");
        let local_reads = json["counters"]["local_reads"].as_u64().unwrap();
        assert!(
            local_reads > 20,
            "{protocol}: local reads are on by default"
        );
        assert!(json["counters"].get("local_reads_stale").is_some());
        assert!(stdout(&output).contains("local reads: "), "{protocol}");
    }
}

#[test]
fn an_exported_history_leaves_local_reads_out_and_checks_linearizable() {
    let dir = std::env::temp_dir().join(format!("quorate-cli-pb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.jsonl");
    let path_text = path.to_str().unwrap();
    let args = [
        "sim",
        "--protocol",
        "chain",
        "--seed",
        "5",
        "--history",
        path_text,
    ];
    let output = quorate(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("local reads left out"),
        "{}",
        stderr(&output)
    );
    let output = quorate(&["check", path_text]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_same_seed_prints_the_same_trace_hash() {
    let run = || {
        let output = quorate(&["sim", "--seed", "17", "--json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        last_json(&output)["trace_hash"].clone()
    };
    assert_eq!(run(), run());
}

#[test]
fn trace_prints_one_line_per_event() {
    let output = quorate(&[
        "sim",
        "--seed",
        "3",
        "--faults",
        "none",
        "--duration",
        "200ms",
        "--trace",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("RequestVote"), "elections are traced");
    assert!(text.lines().count() > 100);
}

#[test]
fn bad_input_gets_a_one_line_error_and_exit_status_2() {
    for (args, expected) in [
        (vec!["sim", "--protocol", "bogus"], "bogus"),
        (vec!["sim", "--nodes", "0"], "--nodes must be at least 1"),
        (vec!["sim", "--faults", "meteor"], "unknown fault"),
        (vec!["sim", "--duration", "soon"], "soon"),
        (vec!["sim", "--trace"], "--seed"),
        (vec!["sim", "--nodes", "many"], "many"),
        (vec!["sim", "--local-reads", "1.5"], "--local-reads 1.5"),
        (
            vec!["sim", "--protocol", "chain", "--local-reads", "x"],
            "x",
        ),
        (vec!["check", "/nonexistent/history.jsonl"], "cannot read"),
    ] {
        let output = quorate(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn a_simulated_history_round_trips_through_quorate_check() {
    let dir = std::env::temp_dir().join(format!("quorate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.jsonl");
    let path_text = path.to_str().unwrap();
    let output = quorate(&["sim", "--seed", "5", "--history", path_text]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = quorate(&["check", path_text]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("linearizable"));

    // A stale read appended to the history makes it invalid (exit 1), with an explanation.
    let stale = r#"{"process":900,"type":"invoke","f":"put","key":"z","value":"1","time":1}
{"process":900,"type":"ok","f":"put","key":"z","value":"1","time":2}
{"process":901,"type":"invoke","f":"get","key":"z","time":3}
{"process":901,"type":"ok","f":"get","key":"z","value":null,"time":4}
"#;
    let bad = dir.join("stale.jsonl");
    std::fs::write(&bad, stale).unwrap();
    let output = quorate(&["check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("returned before it could take effect"));

    let garbage = dir.join("garbage.jsonl");
    std::fs::write(&garbage, "{\"process\":1}\n").unwrap();
    let output = quorate(&["check", garbage.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("line 1"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).unwrap();
}
