//! Checker benchmarks: time and peak heap of each checker on generated histories.
//!
//! ```sh
//! cargo bench -p quorate-check --bench checkers            # everything (a few minutes)
//! cargo bench -p quorate-check --bench checkers -- target  # only the 100k-operation target
//! cargo bench -p quorate-check --bench checkers -- models  # every model on register histories
//! ```
//!
//! Histories come from `quorate_check::generate` (linearizable by construction: 50% reads,
//! 40% writes, 10% CAS, unique values, 1% `info`); "stale" variants have one late read
//! changed to return a value overwritten before it was invoked. Each case runs several times;
//! the median wall time and the peak heap growth during the check (a counting global
//! allocator, so the history itself is excluded) are printed. One core: the checkers are
//! single-threaded. The "models" cases go through `quorate_check::check`, which includes
//! shrinking a violation to its witness, with a 20 s time limit per run.

use quorate_check::generate::{generate, inject_stale_read, GenConfig};
use quorate_check::history::{pair, Operation};
use quorate_check::linearizability::{check_linearizable, Limits};
use quorate_check::session::Guarantees;
use quorate_check::{check, Model};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `check` `runs` times; returns the median time, the peak heap growth and the answer.
fn measure<T>(runs: usize, mut check: impl FnMut() -> T) -> (Duration, usize, T) {
    let mut times = Vec::new();
    let mut peak = 0;
    let mut answer = None;
    for _ in 0..runs {
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let started = Instant::now();
        let result = check();
        times.push(started.elapsed());
        peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
        answer = Some(result);
    }
    times.sort();
    (times[times.len() / 2], peak, answer.unwrap())
}

fn history(operations: usize, keys: usize, processes: usize, stale: bool) -> Vec<Operation> {
    history_with(operations, keys, processes, stale, true)
}

fn history_with(
    operations: usize,
    keys: usize,
    processes: usize,
    stale: bool,
    cas: bool,
) -> Vec<Operation> {
    let config = GenConfig {
        operations,
        keys,
        processes,
        cas,
        seed: 42,
        ..GenConfig::default()
    };
    let mut events = generate(&config);
    if stale {
        inject_stale_read(&mut events).expect("a read to make stale");
    }
    pair(&events).expect("generated histories pair")
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn linearizability_case(operations: usize, keys: usize, processes: usize, stale: bool) {
    let ops = history(operations, keys, processes, stale);
    let runs = if operations >= 1_000_000 { 3 } else { 5 };
    let (time, peak, report) = measure(runs, || check_linearizable(&ops, &Limits::default()));
    println!(
        "| linearizable | {operations} | {keys} | {processes} | {} | {:?} | {:.3} s | {:.1} MB |",
        if stale { "stale read" } else { "valid" },
        report.verdict,
        time.as_secs_f64(),
        mb(peak)
    );
}

/// The other models on register histories (get/put only, so causal and session apply).
fn model_case(model: Model, operations: usize, stale: bool) {
    let ops = history_with(operations, 10, 16, stale, false);
    let runs = if operations >= 100_000 { 1 } else { 3 };
    let (time, peak, report) = measure(runs, || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let cancelled = move || Instant::now() > deadline;
        let limits = Limits {
            cancelled: &cancelled,
            ..Limits::default()
        };
        check(model, &ops, &limits).unwrap()
    });
    println!(
        "| {} | {operations} | 10 | 16 | {} | {:?} | {:.3} s | {:.1} MB |",
        model.name(),
        if stale { "stale read" } else { "valid" },
        report.validity,
        time.as_secs_f64(),
        mb(peak)
    );
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!(
        "| checker | operations | keys | processes | history | verdict | median | peak heap |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    if wants("target") {
        let (_, peak, ops) = measure(1, || history(100_000, 10, 16, false));
        eprintln!(
            "(the 100k-operation history itself, paired: {} operations, {:.1} MB of heap)",
            ops.len(),
            mb(peak)
        );
        linearizability_case(100_000, 10, 16, false);
        linearizability_case(100_000, 10, 16, true);
    }
    if wants("length") {
        for operations in [10_000, 100_000, 1_000_000] {
            linearizability_case(operations, 10, 16, false);
        }
    }
    if wants("concurrency") {
        for processes in [4, 16, 64] {
            linearizability_case(100_000, 10, processes, false);
        }
    }
    if wants("models") {
        let session = Model::Session(Guarantees::ALL);
        for (model, sizes) in [
            (Model::Linearizable, &[10_000, 100_000][..]),
            (Model::Sequential, &[1_000, 10_000, 100_000][..]),
            (Model::Causal, &[10_000, 100_000][..]),
            (session, &[10_000][..]),
            (Model::Convergence, &[10_000, 100_000][..]),
        ] {
            for &operations in sizes {
                model_case(model, operations, false);
                model_case(model, operations, true);
            }
        }
    }
}
