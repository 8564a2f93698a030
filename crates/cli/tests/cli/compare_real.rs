//! `bench/compare-real.py --smoke`: the real-process comparison, quorate only, on a tiny
//! setting (one run, 0.3 s cells, 4 clients, a leader kill -9 per cluster), so that the script
//! and its load generator cannot rot. etcd, ZooKeeper and Redis are not needed here.
//!
//! Needs python3 (standard library only; CI's `.ci/run` installs it when missing).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROTOCOLS: [&str; 4] = ["raft", "zab", "primary-backup", "quorum"];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/compare-real.py")
}

/// The `cluster.json` manifests the script's clusters left under `dir`.
fn manifests(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            manifests(&path, found);
        } else if path.file_name().is_some_and(|n| n == "cluster.json") {
            found.push(path);
        }
    }
}

#[test]
fn the_real_process_comparison_runs_every_cluster_and_stops_every_node() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new("python3")
        .arg(script())
        .args(["--smoke", "--json", "--protocols", &PROTOCOLS.join(",")])
        .arg("--quorate")
        .arg(env!("CARGO_BIN_EXE_quorate"))
        .arg("--work")
        .arg(dir.path())
        .output()
        .expect("python3 runs (apt-get install python3, as CI's .ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );

    // The table, then the JSON on the last line.
    assert!(stdout.contains("| system | mixed ops/s |"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("--json prints JSON last ({e}):\n{stdout}"));
    let rows = json["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().map(|r| r["system"].as_str().unwrap()).collect();
    let expected: Vec<String> = PROTOCOLS.iter().map(|p| format!("quorate {p}")).collect();
    assert_eq!(names, expected, "{stdout}");
    for row in rows {
        for field in ["mixed_ops_s", "write_ops_s", "mixed_p50_ms", "write_p99_ms"] {
            assert!(row[field].as_f64().unwrap() > 0.0, "{field}: {row}");
        }
        assert!(
            row["mixed_p50_ms"].as_f64() <= row["mixed_p99_ms"].as_f64(),
            "{row}"
        );
        // Every cluster lost its leader (or node 1) and took writes again within the limit.
        let unavailable = row["unavailable_s"].as_f64();
        assert!(
            unavailable.is_some_and(|u| (0.0..10.0).contains(&u)),
            "{row}"
        );
    }
    // A leaderless cluster keeps writing through a node's death: its clients' other nodes
    // coordinate (one probe interval of slack, and the machine's noise).
    let quorum = &rows[3];
    assert!(quorum["unavailable_s"].as_f64().unwrap() < 1.0, "{quorum}");

    // Every node of every cluster was stopped by the script.
    let mut found = Vec::new();
    manifests(dir.path(), &mut found);
    assert!(found.len() >= PROTOCOLS.len(), "{found:?}");
    for manifest in found {
        let text = fs::read_to_string(&manifest).unwrap();
        let described: serde_json::Value = serde_json::from_str(&text).unwrap();
        let data = manifest.parent().unwrap().to_str().unwrap().to_string();
        for node in described["nodes"].as_array().unwrap() {
            let pid = node["pid"].as_i64().unwrap();
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(&data),
                "node {pid} of {} still runs",
                manifest.display()
            );
        }
    }
}
