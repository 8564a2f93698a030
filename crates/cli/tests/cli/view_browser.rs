//! The HTML views (`quorate sim --html`, `quorate check --html`) opened in a real browser:
//! headless Chromium runs each page's script, and the tests read what it drew from the DOM it
//! dumps (the page marks its counts on `<body>` and sets `data-ready` last), from its console
//! (no errors) and from a screenshot.
//!
//! Chromium must be installed (`apt-get install -y chromium`; CI's `.ci/run` installs it).
//! Set `QUORATE_SKIP_BROWSER=1` to skip these tests where it cannot be.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quorate(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_quorate"))
        .args(args)
        .output()
        .expect("the quorate binary runs");
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "quorate {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether the browser tests run: Chromium present, or a clear failure saying how to get it.
fn browser_available() -> bool {
    if std::env::var("QUORATE_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("QUORATE_SKIP_BROWSER=1: skipping the browser tests");
        return false;
    }
    let found = Command::new("chromium").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "these tests open the HTML views in headless Chromium, which is not installed: \
         install it (`apt-get install -y chromium`, as CI's .ci/run does), or set \
         QUORATE_SKIP_BROWSER=1 to skip them"
    );
    true
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// What the browser made of a page: its `<body>` tag after the scripts ran, the whole DOM,
/// and every console message.
struct Opened {
    body: String,
    dom: String,
}

impl Opened {
    /// A number the page marked on `<body>` as `data-NAME`.
    fn count(&self, name: &str) -> u64 {
        let needle = format!("data-{name}=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no data-{name} on the page's body: {}", self.body))
            + needle.len();
        let end = start + self.body[start..].find('"').expect("a closing quote");
        self.body[start..end]
            .parse()
            .unwrap_or_else(|_| panic!("data-{name} is not a number: {}", self.body))
    }
}

fn open(page: &Path) -> Opened {
    let (opened, console) = open_with_console(page);
    assert!(
        console.is_empty(),
        "{}: the page logged to the console: {console:#?}",
        page.display()
    );
    opened
}

/// [`open`], answering what the page logged to the console instead of refusing it.
fn open_with_console(page: &Path) -> (Opened, Vec<String>) {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    let log = String::from_utf8_lossy(&output.stderr);
    let console: Vec<String> = log
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    let body = dom
        .find("<body")
        .map(|at| dom[at..at + dom[at..].find('>').expect("a tag")].to_string())
        .unwrap_or_else(|| panic!("{}: no <body> in the DOM: {dom}", page.display()));
    assert!(
        body.contains("data-ready=\"1\""),
        "{}: the page's script did not finish: {body}",
        page.display()
    );
    (Opened { body, dom }, console)
}

/// How many times `prefix` is followed by a digit in `dom`: elements the script drew, not the
/// script's own text that builds them.
fn drawn(dom: &str, prefix: &str) -> usize {
    dom.match_indices(prefix)
        .filter(|(at, _)| {
            dom[at + prefix.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .count()
}

fn sim_page(dir: &Path, protocol: &str, seed: u64, extra: &[&str]) -> PathBuf {
    let path = dir.join(format!("{protocol}-{seed}.html"));
    let seed = seed.to_string();
    let mut args = vec!["sim", "--protocol", protocol, "--seed", &seed, "--html"];
    let path_text = path.to_str().expect("a UTF-8 path").to_string();
    args.push(&path_text);
    args.extend_from_slice(extra);
    quorate(&args);
    path
}

#[test]
fn every_protocols_page_opens_without_console_errors() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let protocols = [
        "raft",
        "paxos",
        "multipaxos",
        "zab",
        "primary-backup",
        "chain",
        "craq",
        "quorum",
        "multiprimary",
    ];
    let pages: Vec<(&str, PathBuf)> = protocols
        .iter()
        .map(|p| (*p, sim_page(dir.path(), p, 3, &["--duration", "1s"])))
        .collect();
    // Two browsers at a time: the pages are independent.
    for pair in pages.chunks(2) {
        let opened: Vec<(&str, Opened)> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|(p, path)| scope.spawn(move || (*p, open(path))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("opened"))
                .collect()
        });
        for (protocol, page) in opened {
            assert!(page.count("node-lanes") >= 3, "{protocol}: {}", page.body);
            assert!(page.count("client-lanes") >= 1, "{protocol}: {}", page.body);
            assert!(page.count("messages") > 0, "{protocol}: {}", page.body);
            assert!(page.count("arrows-drawn") > 0, "{protocol}: {}", page.body);
            assert!(page.count("ops-drawn") > 0, "{protocol}: {}", page.body);
        }
    }
}

#[test]
fn a_raft_run_shows_crashes_partitions_leaders_and_messages() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let page = sim_page(
        dir.path(),
        "raft",
        1,
        &["--faults", "partition,crash,loss", "--duration", "3s"],
    );
    let opened = open(&page);
    assert!(opened.count("crashes") >= 1, "{}", opened.body);
    assert!(opened.count("partitions") >= 1, "{}", opened.body);
    assert!(
        opened.count("leader-bands") >= 2,
        "a leader change: {}",
        opened.body
    );
    assert!(opened.count("dropped") >= 1, "{}", opened.body);
    assert_eq!(opened.count("node-lanes"), 5);
    // Drawn, not only counted: shading, bands and arrows are in the SVG.
    for class in [
        "class=\"crash\"",
        "class=\"partition\"",
        "band band-leader",
        "class=\"arrow",
        "class=\"op ok",
    ] {
        assert!(opened.dom.contains(class), "no {class} in the drawing");
    }
    assert!(opened.count("arrows-drawn") > 10, "{}", opened.body);
    // The run passed: one linearization of its operations, drawn as points on their intervals.
    assert!(
        opened.body.contains("data-verdict=\"true\""),
        "{}",
        opened.body
    );
    let points = opened.count("lin-points");
    assert!(points >= opened.count("ops") / 2, "{}", opened.body);
    assert!(opened.count("lin-points-drawn") > 0, "{}", opened.body);
    assert_eq!(
        drawn(&opened.dom, "<circle class=\"lin-point\" data-op=\""),
        opened.count("lin-points-drawn") as usize
    );
    assert!(drawn(&opened.dom, "<polyline class=\"lin-path\" points=\"") > 0);
    // And it renders to pixels.
    let png = dir.path().join("raft.png");
    let shot = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,600",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(shot.status.success(), "{shot:?}");
    let bytes = std::fs::read(&png).expect("a screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        bytes.len() > 10_000,
        "a blank screenshot? {} bytes",
        bytes.len()
    );
}

#[test]
fn check_html_highlights_the_violation_of_a_bad_history() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    // A stale read: the get starts after the put of 1 completed, yet reads nothing; process 2's
    // put of 2 on another key is innocent.
    let history = dir.path().join("stale.jsonl");
    std::fs::write(
        &history,
        r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1","time":1}
{"process":2,"type":"invoke","f":"put","key":"y","value":"2","time":1}
{"process":0,"type":"ok","f":"put","key":"x","value":"1","time":2}
{"process":2,"type":"ok","f":"put","key":"y","value":"2","time":3}
{"process":1,"type":"invoke","f":"get","key":"x","time":4}
{"process":1,"type":"ok","f":"get","key":"x","value":null,"time":5}
"#,
    )
    .expect("written");
    let page = dir.path().join("stale.html");
    let output = quorate(&[
        "check",
        history.to_str().expect("UTF-8"),
        "--html",
        page.to_str().expect("UTF-8"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the history is not linearizable"
    );
    let opened = open(&page);
    assert!(
        opened.body.contains("data-verdict=\"false\""),
        "{}",
        opened.body
    );
    assert_eq!(opened.count("client-lanes"), 3);
    assert_eq!(opened.count("ops"), 3);
    assert_eq!(
        opened.count("violating"),
        2,
        "the put of x and the stale get"
    );
    assert_eq!(opened.count("violating-drawn"), 2);
    assert_eq!(opened.dom.matches("op ok violating").count(), 2);
    assert_eq!(opened.count("lin-points"), 0, "no linearization to show");

    // The same history with the get reading 1 is valid: the page draws one linearization, a
    // point on each operation's interval, in order.
    let valid = dir.path().join("valid.jsonl");
    let text = std::fs::read_to_string(&history).expect("read back");
    std::fs::write(
        &valid,
        text.replace(r#""value":null,"time":5"#, r#""value":"1","time":5"#),
    )
    .expect("written");
    let page = dir.path().join("valid.html");
    let output = quorate(&[
        "check",
        valid.to_str().expect("UTF-8"),
        "--html",
        page.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "linearizable");
    let opened = open(&page);
    assert!(
        opened.body.contains("data-verdict=\"true\""),
        "{}",
        opened.body
    );
    assert_eq!(opened.count("lin-points"), 3, "{}", opened.body);
    assert_eq!(opened.count("lin-points-drawn"), 3, "{}", opened.body);
    assert_eq!(
        drawn(&opened.dom, "<circle class=\"lin-point\" data-op=\""),
        3
    );
    // Key x's order: the put of 1, then the get; each point says when and where in the order.
    assert!(opened.dom.contains("put x 1: takes effect at "));
    assert!(opened.dom.contains("1 in key x's linearization"));
    assert!(opened.dom.contains("get x → 1: takes effect at "));
    assert!(opened.dom.contains("2 in key x's linearization"));
}

#[test]
fn scenario_pages_say_what_to_look_at_and_show_the_effect() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let page = |name: &str| {
        let path = dir.path().join(format!("{name}.html"));
        quorate(&[
            "sim",
            "--scenario",
            name,
            "--html",
            path.to_str().expect("UTF-8"),
        ]);
        open(&path)
    };
    let duel = page("paxos-duel");
    assert!(duel.dom.contains("Duelling proposers"), "the note is shown");
    assert!(duel.count("arrows-drawn") > 0, "{}", duel.body);
    let lww = page("lww-lost-update");
    assert!(lww.dom.contains("Last-write-wins on skewed clocks"));
    assert!(lww.dom.contains("LWW discarded: "), "the checker's finding");
    let split = page("split-brain-without-fencing");
    assert!(split.dom.contains("Split brain without fencing"));
    assert!(
        split.body.contains("data-verdict=\"false\""),
        "{}",
        split.body
    );
    assert!(split.count("leader-bands") >= 2, "{}", split.body);
    let figure8 = page("raft-figure8");
    assert!(figure8.dom.contains("Raft's Figure 8"), "the note is shown");
    assert!(
        figure8
            .dom
            .contains("<title>commit withheld: index 2 is on a quorum"),
        "the leader's decision is drawn on its lane"
    );
    assert!(
        figure8.count("notes-drawn") >= 12,
        "the script's steps: {}",
        figure8.body
    );
    assert!(
        figure8.body.contains("data-verdict=\"true\""),
        "{}",
        figure8.body
    );
    assert!(figure8.count("crashes") >= 3, "{}", figure8.body);
    assert!(
        figure8.count("leader-bands") >= 4,
        "terms 1 to 4: {}",
        figure8.body
    );
}

#[test]
fn compare_page_renders_its_table_and_every_plot() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let page = dir.path().join("compare.html");
    let page_text = page.to_str().expect("a UTF-8 path");
    quorate(&[
        "compare",
        "--protocols",
        "raft,zab,quorum",
        "--faults",
        "leader-crash",
        "--seeds",
        "2",
        "--html",
        page_text,
    ]);
    let opened = open(&page);
    assert_eq!(opened.count("rows"), 3, "{}", opened.body);
    assert_eq!(opened.count("plots"), 3, "{}", opened.body);
    // Every plot draws a curve or a bar per protocol (the latency CDF and throughput one
    // curve each, the message plot one bar each).
    assert!(opened.count("least-shapes") >= 3, "{}", opened.body);

    // The checks bite: the same page with the data marks' coordinates made NaN (an attribute
    // given twice: the parser keeps the first) renders the table and the axes but no mark,
    // and the browser says why on the console.
    let html = std::fs::read_to_string(&page).expect("the page");
    let broken = html
        .replace(
            "<polyline class=\"mark\" ",
            "<polyline class=\"mark\" points=\"NaN,NaN NaN,NaN\" ",
        )
        .replace(
            "<rect class=\"mark\" ",
            "<rect class=\"mark\" width=\"NaN\" height=\"NaN\" ",
        );
    let broken_page = dir.path().join("broken.html");
    std::fs::write(&broken_page, broken).expect("written");
    let (opened, console) = open_with_console(&broken_page);
    assert_eq!(opened.count("plots"), 3, "{}", opened.body);
    assert_eq!(opened.count("least-shapes"), 0, "{}", opened.body);
    assert!(
        console.iter().any(|line| line.contains("NaN")),
        "{console:#?}"
    );
}
