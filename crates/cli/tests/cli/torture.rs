//! `quorate torture` end to end: real node processes under kill -9 and SIGSTOP, and the
//! report it leaves. (That the verdict path catches violations is shown on fabricated
//! histories in crates/torture/tests/verdict.rs.)

use std::path::Path;
use std::process::Command;

fn quorate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quorate"))
}

#[test]
fn a_short_raft_run_under_kill_and_pause_passes_and_reports() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = dir.path().join("report");
    let out = quorate()
        .args([
            "torture",
            "--protocol",
            "raft",
            "--nodes",
            "3",
            "--duration",
            "10s",
            "--nemesis",
            "kill,pause",
            "--seed",
            "1",
            "--json",
            "--report",
        ])
        .arg(&report)
        .output()
        .expect("quorate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "seed 1: exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(summary["exit_code"], 0);
    assert!(summary["ops"]["ok"].as_u64().unwrap() > 200, "{summary:#}");
    let models = summary["models"].as_array().expect("models");
    let names: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["linearizable", "list-append"], "{summary:#}");
    assert!(
        models.iter().all(|m| m["verdict"] == "valid"),
        "{summary:#}"
    );
    assert_eq!(summary["appends"]["lost"], 0);
    assert!(summary["appends"]["appends_ok"].as_u64().unwrap() > 0);
    // The report directory, as documented.
    for file in [
        "history.jsonl",
        "nemesis.log",
        "summary.json",
        "n1.log",
        "n2.log",
        "n3.log",
    ] {
        assert!(report.join(file).exists(), "{file} missing");
    }
    let history = std::fs::read_to_string(report.join("history.jsonl")).unwrap();
    let events = quorate_check::history::parse_jsonl(&history).expect("a valid history");
    assert!(events.len() > 400);
    let nemesis = std::fs::read_to_string(report.join("nemesis.log")).unwrap();
    assert!(
        nemesis.contains("kill: kill -9") || nemesis.contains("pause: SIGSTOP"),
        "{nemesis}"
    );
    assert!(nemesis.contains("stopped every node"), "{nemesis}");
    // Resources were measured, and no node outlived the run.
    let nodes = summary["nodes_end"].as_array().expect("nodes_end");
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert!(node["rss_kb"].as_u64().unwrap_or(0) > 0, "{node}");
        assert!(node["fds"].as_u64().unwrap_or(0) > 0, "{node}");
        let pid = node["pid"].as_u64().expect("a pid");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node pid {pid} still exists"
        );
    }
}

#[test]
fn bad_input_exits_2_before_starting_anything() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for args in [
        vec!["--nemesis", "kill,flood"],
        vec!["--nodes", "0"],
        vec!["--protocol", "nope"],
    ] {
        let out = quorate()
            .arg("torture")
            .args(&args)
            .arg("--report")
            .arg(dir.path().join("r"))
            .output()
            .expect("quorate runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A directory that is not an earlier report is never cleared.
    std::fs::write(dir.path().join("precious"), "data").unwrap();
    let out = quorate()
        .args(["torture", "--duration", "1s", "--report"])
        .arg(dir.path())
        .output()
        .expect("quorate runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(dir.path().join("precious").exists());
}
