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
    // MULTI/EXEC, MGET and WATCH rounds committed, judged with the lists.
    let txns_ok = summary["ops"]["by_f"]["txn"][0].as_u64().unwrap_or(0);
    assert!(
        txns_ok > 10,
        "{txns_ok} transactions committed: {summary:#}"
    );
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
    // `quorate check` reads it as documented: transactions beside single operations are
    // judged by the linearizable promise (transactions strict serializable).
    let checked = quorate()
        .args(["check", "--time-limit", "60s"])
        .arg(report.join("history.jsonl"))
        .output()
        .expect("quorate check runs");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{text}");
    assert!(text.contains("strict-serializable: yes"), "{text}");
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
        vec!["--protocol", "zab", "--ttl", "1s"],
        vec!["--ttl", "0s"],
    ] {
        let out = quorate()
            .arg("torture")
            .args(&args)
            .arg("--report")
            .arg(dir.path().join("r"))
            .output()
            .expect("quorate runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!dir.path().join("r").exists(), "{args:?} wrote a report");
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

/// `--ttl`: half of the register writes are `SET k v PX ms` on real processes, and the checker
/// models their expiry (crates/check/src/expiry.rs). The run must pass, and the same history
/// with the recorded time to live changed must not: a checker that ignored expiry would
/// accept both.
#[test]
fn ttl_writes_on_real_processes_are_checked_against_their_expiry() {
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
            "8s",
            "--nemesis",
            "kill,pause",
            "--ttl",
            "50ms",
            "--seed",
            "4",
            "--json",
            "--report",
        ])
        .arg(&report)
        .output()
        .expect("quorate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "seed 4: {stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    let put_ttl_ok = summary["ops"]["by_f"]["put_ttl"][0].as_u64().unwrap_or(0);
    assert!(put_ttl_ok > 50, "{summary:#}");
    assert_eq!(summary["models"][0]["model"], "linearizable");
    assert_eq!(summary["models"][0]["verdict"], "valid", "{summary:#}");

    // The recorded history, with appends and transactions left out (the torture judges them
    // separately, by the list-append analysis), as the node served it and with every time to
    // live shortened to 1 ms.
    let history = std::fs::read_to_string(report.join("history.jsonl")).unwrap();
    let lists = |l: &str| {
        l.contains("\"f\":\"append\"") || l.contains("\"key\":\"l") || l.contains("\"f\":\"txn\"")
    };
    let registers: String = history
        .lines()
        .filter(|l| !lists(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(registers.contains("\"f\":\"put_ttl\""));
    // To 1 ms with no clock error, any read of a value a millisecond after its write returned
    // is a read past the recorded expiry.
    let shortened = registers.replace("\",50,25]", "\",1,0]");
    let check = |text: &str, name: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = quorate()
            .args(["check", "--json", "--time-limit", "60s"])
            .arg(&file)
            .output()
            .expect("quorate check runs");
        let verdict: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("check --json prints JSON");
        verdict
    };
    let served = check(&registers, "as-served.jsonl");
    assert_eq!(served["valid"], true, "{served}");
    let shortened = check(&shortened, "shortened.jsonl");
    assert_eq!(shortened["valid"], false, "{shortened}");
}
