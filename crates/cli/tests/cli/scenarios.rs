//! The teaching scenarios of `quorate sim --scenario`: each run shows the effect it names, as
//! the checker's counters and verdict say, not only a page.

use std::process::{Command, Output};

fn scenario(name: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(["sim", "--scenario", name, "--json"])
        .args(extra)
        .output()
        .expect("the quorate binary runs")
}

fn last_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

fn counter(json: &serde_json::Value, name: &str) -> u64 {
    json["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {json}"))
}

#[test]
fn paxos_duel_pre_empts_most_rounds() {
    let output = scenario("paxos-duel", &["--trace"]);
    assert!(output.status.success(), "Paxos stays safe while it duels");
    let json = last_json(&output);
    assert_eq!(json["protocol"], "paxos-livelock");
    let decided = counter(&json, "registers_decided");
    let rounds = counter(&json, "rounds_to_decide");
    let preempted = counter(&json, "rounds_preempted");
    assert!(decided > 0, "{json}");
    assert!(
        rounds >= 3 * decided,
        "a duel: {rounds} rounds for {decided} registers"
    );
    assert!(preempted >= 20, "{json}");
    // The trace shows the duel: Nacks answering pre-empted ballots.
    let trace = String::from_utf8_lossy(&output.stdout);
    let nacks = trace
        .lines()
        .filter(|l| l.contains(" recv ") && l.contains("Nack"))
        .count();
    assert!(nacks >= 20, "{nacks} Nacks delivered");
}

#[test]
fn lww_lost_update_discards_an_acknowledged_later_write() {
    let output = scenario("lww-lost-update", &[]);
    assert!(
        output.status.success(),
        "LWW keeps its promise (convergence) while it loses the write"
    );
    let json = last_json(&output);
    assert_eq!(json["protocol"], "multiprimary");
    assert!(
        counter(&json, "lww_discarded_hlc") >= 1,
        "the checker found the lost update: {json}"
    );
}

#[test]
fn split_brain_without_fencing_is_reported_by_the_checker() {
    let output = scenario("split-brain-without-fencing", &[]);
    assert_eq!(output.status.code(), Some(1), "a violation");
    let json = last_json(&output);
    assert_eq!(json["protocol"], "primary-backup");
    assert!(json["violations"].as_u64().unwrap() >= 1, "{json}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("monotonicity"),
        "views go back by design without fencing; the violation is split brain: {stderr}"
    );
    assert!(stderr.contains(SPLIT_BRAIN_VIOLATION), "{stderr}");
}

/// What the checkers report for the scenario's seed.
const SPLIT_BRAIN_VIOLATION: &str = "one primary per view: n1 and n3 are both primary of view 4";

#[test]
fn raft_figure8_withholds_the_old_term_commit_and_stays_safe() {
    let output = scenario("raft-figure8", &["--trace"]);
    assert!(
        output.status.success(),
        "Raft stays safe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = last_json(&output);
    assert_eq!(json["protocol"], "raft");
    assert_eq!(json["violations"], 0, "{json}");
    assert_eq!(counter(&json, "old_term_commits_withheld"), 1, "{json}");
    // The trace tells the story in order: n1 leads term 4, finds its term-2 entry at index 2
    // on a quorum and withholds the commit, then commits index 3 (its term-4 no-op).
    let trace = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = trace.lines().collect();
    let at = |what: &dyn Fn(&str) -> bool, from: usize| {
        lines[from..].iter().position(|l| what(l)).map(|k| k + from)
    };
    let term4 = at(&|l| l.contains("n1 role Leader term=4"), 0).expect("n1 leads term 4");
    for (node, term) in [("n1", 1), ("n1", 2), ("n5", 3)] {
        let led = format!("{node} role Leader term={term} ");
        assert!(
            at(&|l| l.contains(&led), 0).is_some_and(|k| k < term4),
            "{led}"
        );
    }
    let withheld = at(
        &|l| l.contains("n1 commit withheld: index 2 is on a quorum but of older term 2"),
        term4,
    )
    .expect("n1 withholds the commit of index 2");
    let commit = at(
        &|l| l.contains(" n1 commit ") && !l.contains("withheld"),
        term4,
    )
    .expect("n1 commits in term 4");
    assert!(withheld < commit, "withheld first");
    assert!(lines[commit].ends_with("n1 commit 3"), "{}", lines[commit]);
    assert!(
        !lines[..term4]
            .iter()
            .any(|l| l.contains(" n1 commit 2") || l.contains(" n2 commit 2")),
        "nothing commits index 2 before term 4"
    );
}

/// Without fencing, a deposed primary's Prepare can contradict entries its successor
/// committed. Seeds 65 and 67 of this shape panicked ("truncating a committed entry"); the
/// replica now refuses such a Prepare as stale, and the batch reports violations (split
/// brain) on other seeds, never a panic.
#[test]
fn without_fencing_runs_report_violations_and_never_panic() {
    let output = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(["sim", "--protocol", "primary-backup", "--no-fencing"])
        .args(["--faults", "partition,loss,reorder", "--duration", "3s"])
        .args(["--first-seed", "60", "--seeds", "120", "--json"])
        .output()
        .expect("the quorate binary runs");
    let json = last_json(&output);
    assert_eq!(json["panicked_seeds"], serde_json::json!([]), "{json}");
    assert!(json["violations"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(output.status.code(), Some(1), "violations fail the run");
}
