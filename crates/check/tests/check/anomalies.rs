//! Textbook anomalies: each is rejected by the models it violates and accepted by the weaker
//! ones, and the explanation names the right operations.
//!
//! Histories are written one operation per line: `p<process> <f> <key> <value> <call> <ret>`,
//! where a read's value is what it returned (`nil` absent, `{a,b}` siblings), a CAS's value is
//! `expected>new`, and a return of `?` means the outcome is unknown (`info`).

use quorate_check::history::{pair, Event, EventKind, OpValue, Operation};
use quorate_check::linearizability::Limits;
use quorate_check::session::{Guarantee, Guarantees};
use quorate_check::{check, Model, Validity};

fn history(text: &str) -> Vec<Operation> {
    let mut stamped = Vec::new();
    for (n, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [p, f, key, value, call, ret] = w[..] else {
            panic!("bad line {line}")
        };
        let process: u64 = p[1..].parse().unwrap();
        let opt = |v: &str| (v != "nil").then(|| v.to_string());
        let (invoke, done) = match f {
            "get" if value.starts_with('{') => {
                let inner = value.trim_matches(|c| c == '{' || c == '}');
                let siblings = inner
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                (OpValue::Get(None), OpValue::Siblings(siblings))
            }
            "get" => (OpValue::Get(None), OpValue::Get(opt(value))),
            "put" => (OpValue::Put(value.into()), OpValue::Put(value.into())),
            "delete" => (OpValue::Delete, OpValue::Delete),
            "cas" => {
                let (e, n) = value.split_once('>').unwrap();
                let cas = OpValue::Cas {
                    expected: opt(e),
                    new: n.into(),
                };
                (cas.clone(), cas)
            }
            _ => panic!("unknown f {f}"),
        };
        let call: u64 = call.parse().unwrap();
        let event = |kind, value, time| Event {
            process,
            kind,
            key: Some(key.to_string()),
            value,
            time,
            node: None,
            error: None,
            mode: Default::default(),
        };
        stamped.push((call, 2 * n, event(EventKind::Invoke, invoke.clone(), call)));
        match ret {
            "?" => {}
            r => {
                let r: u64 = r.parse().unwrap();
                stamped.push((r, 2 * n + 1, event(EventKind::Ok, done, r)));
            }
        }
    }
    stamped.sort_by_key(|(t, n, _)| (*t, *n));
    pair(&stamped.into_iter().map(|(_, _, e)| e).collect::<Vec<_>>()).unwrap()
}

const ALL: Model = Model::Session(Guarantees::ALL);

fn validity(model: Model, ops: &[Operation]) -> Validity {
    check(model, ops, &Limits::default()).unwrap().validity
}

/// Asserts the verdict of each model, in the order linearizable, sequential, causal, session.
fn verdicts(ops: &[Operation], expected: [bool; 4]) {
    let models = [Model::Linearizable, Model::Sequential, Model::Causal, ALL];
    for (model, valid) in models.into_iter().zip(expected) {
        let want = if valid {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(validity(model, ops), want, "{}", model.name());
    }
}

/// The minimal sets of session guarantees the history violates, as names.
fn culprits(ops: &[Operation]) -> String {
    check(ALL, ops, &Limits::default()).unwrap().headline
}

#[test]
fn stale_read_is_sequentially_consistent_but_not_linearizable() {
    // A real-time violation: the read began after 2 was written, and returned 1.
    let ops = history(
        "p0 put x 1 0 1
         p0 put x 2 2 3
         p1 get x 1 4 5",
    );
    verdicts(&ops, [false, true, true, true]);
    let report = check(Model::Linearizable, &ops, &Limits::default()).unwrap();
    assert_eq!(
        report.witness,
        vec![0, 1, 2],
        "the three operations explain it"
    );
    // As a final read it also shows a lost update: 2 superseded 1 (same session).
    let report = check(Model::Convergence, &ops, &Limits::default()).unwrap();
    assert_eq!(report.validity, Validity::Invalid);
    assert!(
        report.details[0].contains("superseded"),
        "{:?}",
        report.details
    );
}

#[test]
fn new_old_inversion_is_not_linearizable() {
    let ops = history(
        "p0 put x 1 0 1
         p0 put x 2 2 10
         p1 get x 2 3 4
         p2 get x 1 5 6",
    );
    verdicts(&ops, [false, true, true, true]);
}

#[test]
fn reading_ones_own_write_then_an_older_value_violates_ryw_with_mw() {
    let ops = history(
        "p0 put x 1 0 1
         p0 put x 2 2 3
         p0 get x 1 4 5",
    );
    verdicts(&ops, [false, false, false, false]);
    assert!(
        culprits(&ops).contains("read-your-writes + monotonic-writes"),
        "{}",
        culprits(&ops)
    );
}

#[test]
fn not_seeing_ones_own_write_violates_read_your_writes() {
    let ops = history(
        "p0 put x 1 0 1
         p0 get x nil 2 3",
    );
    verdicts(&ops, [false, false, false, false]);
    assert_eq!(culprits(&ops), "violates read-your-writes");
    let only = Model::Session(Guarantees(1 << Guarantee::MonotonicReads as u8));
    assert_eq!(
        validity(only, &ops),
        Validity::Valid,
        "monotonic reads alone allow it"
    );
}

#[test]
fn forgetting_a_value_already_read_violates_monotonic_reads() {
    let ops = history(
        "p0 put x 1 0 1
         p1 get x 1 2 3
         p1 get x nil 4 5",
    );
    verdicts(&ops, [false, false, false, false]);
    assert_eq!(culprits(&ops), "violates monotonic-reads");
}

#[test]
fn a_reply_seen_before_its_question_violates_causality() {
    // p1 reads x=1 and then writes y=2 (a reply); p2 sees the reply but not the question.
    let ops = history(
        "p0 put x 1 0 1
         p1 get x 1 2 3
         p1 put y 2 4 5
         p2 get y 2 6 7
         p2 get x nil 8 9",
    );
    verdicts(&ops, [false, false, false, false]);
    let report = check(Model::Causal, &ops, &Limits::default()).unwrap();
    assert!(report.headline.contains("initial"), "{}", report.headline);
    assert_eq!(
        report.witness,
        vec![0, 1, 2, 3, 4],
        "the whole causal chain"
    );
    assert!(
        culprits(&ops).contains("monotonic-reads + writes-follow-reads"),
        "{}",
        culprits(&ops)
    );
}

#[test]
fn concurrent_writes_seen_in_different_orders_are_causal_but_not_sequential() {
    // Sequential consistency implies causal consistency, so no causality violation is
    // sequentially consistent; the converse gap is this one: p2 and p3 disagree on the order
    // of two concurrent writes. Causal consistency allows it; it never converges.
    let ops = history(
        "p0 put x 1 0 1
         p1 put x 2 0 1
         p2 get x 1 2 3
         p2 get x 2 4 5
         p3 get x 2 2 3
         p3 get x 1 4 5",
    );
    verdicts(&ops, [false, false, true, true]);
    let report = check(Model::Convergence, &ops, &Limits::default()).unwrap();
    assert_eq!(report.validity, Validity::Invalid);
    assert!(
        report.details[0].contains("disagree"),
        "{:?}",
        report.details
    );
}

#[test]
fn write_skew_on_registers_is_causal_but_not_sequential() {
    // Dekker / store buffering: each process writes its flag, then finds the other's unset.
    let ops = history(
        "p0 put x 1 0 1
         p0 get y nil 2 3
         p1 put y 1 0 1
         p1 get x nil 2 3",
    );
    verdicts(&ops, [false, false, true, true]);
}

#[test]
fn lost_update_by_two_successful_cas_is_not_even_sequential() {
    let ops = history(
        "p0 get x nil 0 1
         p1 get x nil 0 1
         p0 cas x nil>1 2 3
         p1 cas x nil>2 2 3",
    );
    assert_eq!(validity(Model::Linearizable, &ops), Validity::Invalid);
    assert_eq!(validity(Model::Sequential, &ops), Validity::Invalid);
    assert!(
        check(Model::Causal, &ops, &Limits::default()).is_err(),
        "cas is not supported"
    );
}

#[test]
fn a_read_of_a_value_never_written_is_rejected_by_every_model() {
    let ops = history(
        "p0 put x 1 0 1
         p1 get x 42 2 3",
    );
    verdicts(&ops, [false, false, false, false]);
    assert!(check(Model::Causal, &ops, &Limits::default())
        .unwrap()
        .headline
        .contains("thin-air"));
    assert_eq!(validity(Model::Convergence, &ops), Validity::Invalid);
}

#[test]
fn a_write_with_unknown_outcome_may_be_read_at_any_later_point() {
    let ops = history(
        "p0 put x 1 0 ?
         p1 get x nil 1 2
         p1 get x 1 10 11
         p2 get x 1 12 13",
    );
    verdicts(&ops, [true, true, true, true]);
    // Each process's last read is after the write was invoked, and they agree.
    assert_eq!(validity(Model::Convergence, &ops), Validity::Valid);
}

#[test]
fn siblings_must_be_exactly_the_concurrent_writes() {
    let concurrent = "p0 put x a 0 1
                      p1 put x b 0 1";
    let check_final = |final_reads: &str| {
        let ops = history(&format!("{concurrent}\n{final_reads}"));
        validity(Model::Convergence, &ops)
    };
    assert_eq!(
        check_final("p2 get x {a,b} 5 6\np3 get x {b,a} 5 6"),
        Validity::Valid
    );
    assert_eq!(
        check_final("p2 get x {a} 5 6"),
        Validity::Invalid,
        "b was lost"
    );
    assert_eq!(
        check_final("p2 get x {a,b} 5 6\np3 get x {a} 5 6"),
        Validity::Invalid
    );
    // A client that read both siblings and wrote c superseded them.
    let resolved = format!("{concurrent}\np2 get x {{a,b}} 2 3\np2 put x c 4 5");
    let ops = history(&format!("{resolved}\np3 get x {{c}} 6 7"));
    assert_eq!(validity(Model::Convergence, &ops), Validity::Valid);
    let ops = history(&format!("{resolved}\np3 get x {{a,c}} 6 7"));
    let report = check(Model::Convergence, &ops, &Limits::default()).unwrap();
    assert_eq!(
        report.validity,
        Validity::Invalid,
        "a came back after c superseded it"
    );
    assert!(
        report.details[0].contains("siblings"),
        "{:?}",
        report.details
    );
}

#[test]
fn last_writer_wins_on_a_skewed_clock_loses_a_write() {
    // p1 read p0's write and then overwrote it; the replicas converge on p0's value anyway.
    let ops = history(
        "p0 put x old 0 1
         p1 get x old 2 3
         p1 put x new 4 5
         p2 get x old 6 7
         p3 get x old 6 7",
    );
    let report = check(Model::Convergence, &ops, &Limits::default()).unwrap();
    assert_eq!(report.validity, Validity::Invalid);
    assert_eq!(report.witness, vec![0, 2, 3]);
}
