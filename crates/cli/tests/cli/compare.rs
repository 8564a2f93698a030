//! `quorate compare` as users run it: every protocol under the same leader crash, one row each,
//! every field measured and sane.

use std::process::Command;

/// The protocols whose writes go through one leader (primary, head): a leader crash stops
/// writes until a new one takes over.
const LEADER_BASED: [&str; 6] = [
    "raft",
    "multipaxos",
    "zab",
    "primary-backup",
    "chain",
    "craq",
];

/// Every node coordinates writes: crashing one (node 1) leaves the others writing.
const LEADERLESS: [&str; 3] = ["quorum", "multiprimary-lww", "multiprimary-vv"];

#[test]
fn compare_reports_one_measured_row_per_protocol_under_a_leader_crash() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let html = dir.path().join("compare.html");
    let output = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args([
            "compare",
            "--protocols",
            "all",
            "--faults",
            "leader-crash",
            "--seeds",
            "3",
        ])
        .args(["--json", "--html"])
        .arg(&html)
        .output()
        .expect("the quorate binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("some output");
    let json: serde_json::Value = serde_json::from_str(line).expect("the last line is JSON");
    let rows = json["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10, "one row per protocol: {names:?}");
    for name in LEADER_BASED.iter().chain(&LEADERLESS).chain(&["paxos"]) {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let row = |name: &str| rows.iter().find(|r| r["protocol"] == name).expect("a row");
    let number = |r: &serde_json::Value, field: &str| {
        r[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: {field} is {}", r["protocol"], r[field]))
    };
    let violations: f64 = rows.iter().map(|r| number(r, "violations")).sum();
    assert_eq!(
        output.status.success(),
        violations == 0.0,
        "exit status and rows agree"
    );
    for r in rows {
        assert_eq!(number(r, "seeds"), 3.0);
        assert!(number(r, "throughput_ops_per_s") > 0.0, "{r}");
        let (p50, p99, p999) = (
            number(r, "latency_p50_ms"),
            number(r, "latency_p99_ms"),
            number(r, "latency_p999_ms"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
        let messages = number(r, "messages_per_op");
        assert!(messages > 0.0, "{r}");
        // Every message is at least its 8-byte frame header.
        assert!(number(r, "bytes_per_op") >= 8.0 * messages, "{r}");
        // Every protocol here is durable: it fsyncs before it acknowledges.
        assert!(number(r, "fsyncs_per_op") > 0.0, "{r}");
        assert_eq!(number(r, "crashed_runs"), 3.0, "{r}");
        assert!(number(r, "local_reads") > 0.0, "{r}");
        assert!(
            r["models"].as_object().is_some_and(|m| !m.is_empty()),
            "{r}"
        );
        assert_eq!(r["latency_cdf_ms"].as_array().map(Vec::len), Some(101));
        assert_eq!(r["timeline_ops_per_s"].as_array().map(Vec::len), Some(40));
    }
    let fastest_leader_based = LEADER_BASED
        .iter()
        .map(|name| {
            let r = row(name);
            assert_eq!(
                number(r, "crashed_leader_runs"),
                3.0,
                "{name} crashed its leader"
            );
            number(r, "unavailability_mean_ms")
        })
        .fold(f64::MAX, f64::min);
    // A new leader needs at least an election timeout (150 ms and more everywhere here).
    assert!(fastest_leader_based > 100.0, "{fastest_leader_based}");
    for name in LEADERLESS {
        let r = row(name);
        assert_eq!(
            number(r, "crashed_leader_runs"),
            0.0,
            "{name} has no leader"
        );
        let outage = number(r, "unavailability_mean_ms");
        assert!(outage < fastest_leader_based, "{name}: {outage} ms");
    }
    assert_eq!(
        row("raft")["models"]["linearizable"]["held"].as_f64(),
        Some(3.0)
    );
    assert!(number(row("multiprimary-lww"), "lww_puts_acked") > 0.0);
    assert!(row("multiprimary-lww")["lww_discarded"].is_number());
    assert!(number(row("multiprimary-vv"), "sibling_reads") > 0.0);
    assert!(row("raft")["lww_discarded"].is_null());
    let page = std::fs::read_to_string(&html).expect("the HTML report was written");
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<svg ").count(), 3, "three plots inline");
    assert_eq!(page.matches("<tr>").count(), 11, "a header and ten rows");
    for outside in ["src=", "href=", "@import"] {
        assert!(
            !page.contains(outside),
            "the page is self-contained: {outside}"
        );
    }
}
