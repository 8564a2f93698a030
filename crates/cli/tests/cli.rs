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

#[test]
fn a_quorum_run_reports_linearizability_and_refuses_r_plus_w_not_above_n() {
    let output = quorate(&[
        "sim",
        "--protocol",
        "quorum",
        "--nodes",
        "5",
        "--n",
        "3",
        "--r",
        "2",
        "--w",
        "2",
        "--seeds",
        "20",
        "--faults",
        "all",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json = last_json(&output);
    assert_eq!(json["protocol"], "quorum");
    assert_eq!(json["violations"], 0);
    assert_eq!(json["models"]["linearizable"]["satisfied"], 20);
    assert_eq!(json["models"]["linearizable"]["promised"], true);
    assert_eq!(json["models"]["convergence"]["satisfied"], 20);

    let refused = quorate(&[
        "sim",
        "--protocol",
        "quorum",
        "--n",
        "3",
        "--r",
        "1",
        "--w",
        "2",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let err = stderr(&refused);
    assert!(err.contains("R + W = 3 is not more than N = 3"), "{err}");
    assert!(err.contains("--allow-partial"), "{err}");

    let partial = quorate(&[
        "sim",
        "--protocol",
        "quorum",
        "--n",
        "3",
        "--r",
        "1",
        "--w",
        "1",
        "--allow-partial",
        "--no-write-back",
        "--seeds",
        "20",
        "--json",
    ]);
    assert!(partial.status.success(), "{}", stderr(&partial));
    assert!(
        stdout(&partial).contains("stale reads:"),
        "{}",
        stdout(&partial)
    );
    let json = last_json(&partial);
    assert_eq!(json["models"]["linearizable"]["promised"], false);
    assert!(json["counters"]["stale_reads"].as_u64().unwrap() > 0);
}

#[test]
fn multiprimary_runs_each_resolution_and_reports_convergence() {
    for resolve in ["vv", "crdt", "lww"] {
        let output = quorate(&[
            "sim",
            "--protocol",
            "multiprimary",
            "--resolve",
            resolve,
            "--seeds",
            "10",
            "--json",
        ]);
        assert!(output.status.success(), "{resolve}: {}", stderr(&output));
        let json = last_json(&output);
        assert_eq!(json["violations"], 0, "{resolve}");
        assert_eq!(json["models"]["convergence"]["satisfied"], 10, "{resolve}");
    }
    let lww = quorate(&[
        "sim",
        "--protocol",
        "multiprimary",
        "--resolve",
        "lww",
        "--seeds",
        "10",
    ]);
    let text = stdout(&lww);
    assert!(text.contains("LWW discarded"), "{text}");
}

#[test]
fn options_of_another_protocol_are_refused() {
    for (args, expected) in [
        (
            vec!["sim", "--protocol", "raft", "--r", "2"],
            "apply to --protocol quorum",
        ),
        (
            vec!["sim", "--protocol", "quorum", "--resolve", "lww"],
            "apply to --protocol multiprimary",
        ),
        (vec!["sim", "--protocol", "quorum", "--sloppy"], "sloppy"),
        (
            vec![
                "sim",
                "--protocol",
                "quorum",
                "--preset",
                "strong",
                "--r",
                "1",
            ],
            "--preset",
        ),
        (
            vec![
                "sim",
                "--protocol",
                "quorum",
                "--nodes",
                "3",
                "--preset",
                "strong",
            ],
            "N = 5",
        ),
    ] {
        let output = quorate(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
