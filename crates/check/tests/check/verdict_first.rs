//! Verdict first, explanation second: the verdict and the key a violation is reported on come
//! from the whole history, whatever the budget for shrinking the witness; the explanation
//! names only operations of the witness (the ones a drawing shows).

use quorate_check::generate::{generate, inject_stale_read, GenConfig};
use quorate_check::history::{pair, Operation};
use quorate_check::linearizability::{check_linearizable, Limits, Verdict};
use quorate_check::report::{check_with, Options, Report};
use quorate_check::{Model, Validity};
use std::cell::Cell;

/// A Porcupine-style history: 50 clients on a few keys, one stale read injected.
fn fifty_clients(seed: u64) -> Vec<Operation> {
    let mut events = generate(&GenConfig {
        operations: 5_000,
        keys: 5,
        processes: 50,
        seed,
        ..GenConfig::default()
    });
    inject_stale_read(&mut events).expect("a read to make stale");
    pair(&events).unwrap()
}

fn run(ops: &[Operation], search_only: bool, shrink: bool) -> (Report, Option<Report>) {
    let announced: Cell<Option<Report>> = Cell::new(None);
    let on_verdict = |r: &Report| announced.set(Some(r.clone()));
    let stop = move || !shrink;
    let options = Options {
        shrink_cancelled: &stop,
        on_verdict: &on_verdict,
        search_only,
    };
    let report = check_with(Model::Linearizable, ops, &Limits::default(), &options).unwrap();
    (report, announced.take())
}

/// The `#id`s an explanation names.
fn named(details: &[String]) -> Vec<usize> {
    let mut ids = Vec::new();
    for line in details {
        for part in line.split('#').skip(1) {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse() {
                ids.push(id);
            }
        }
    }
    ids
}

#[test]
fn the_key_and_verdict_do_not_depend_on_the_shrinking_budget() {
    for seed in 0..5 {
        let ops = fifty_clients(seed);
        for search_only in [false, true] {
            let (full, announced) = run(&ops, search_only, true);
            let (none, _) = run(&ops, search_only, false);
            let announced = announced.expect("the verdict is announced");
            assert_eq!(full.validity, Validity::Invalid, "seed {seed}");
            assert_eq!(announced.headline, full.headline, "seed {seed}");
            assert_eq!(none.headline, full.headline, "seed {seed} {search_only}");
            assert_eq!(none.key, full.key, "seed {seed} {search_only}");
            assert!(announced.witness.is_empty(), "announced before shrinking");
            // The witness violates on its own, and the text names only its operations.
            for report in [&full, &none] {
                let witness: Vec<Operation> = ops
                    .iter()
                    .filter(|o| report.witness.contains(&o.id))
                    .cloned()
                    .collect();
                assert_eq!(
                    check_linearizable(&witness, &Limits::default()).verdict,
                    Verdict::NotLinearizable,
                    "seed {seed}"
                );
                for id in named(&report.details) {
                    assert!(
                        report.witness.contains(&id),
                        "seed {seed}: #{id} not drawn: {report:?}"
                    );
                }
            }
        }
        // With the fast path the witness is the handful of operations that conflict.
        let (fast, _) = run(&ops, false, false);
        assert!(fast.witness.len() <= 4, "seed {seed}: {:?}", fast.witness);
    }
}

#[test]
fn singular_and_plural() {
    let text = r#"{"process":1,"type":"invoke","f":"get","key":"x"}
{"process":1,"type":"ok","f":"get","key":"x","value":"7"}"#;
    let ops = pair(&quorate_check::history::parse_jsonl(text).unwrap()).unwrap();
    let (report, _) = run(&ops, false, true);
    assert_eq!(report.witness, vec![0]);
    assert!(
        report
            .details
            .iter()
            .any(|l| l.contains("read a value no write wrote")),
        "{report:?}"
    );
    assert!(
        report
            .details
            .iter()
            .any(|l| l.starts_with("this operation cannot")),
        "{report:?}"
    );
}
