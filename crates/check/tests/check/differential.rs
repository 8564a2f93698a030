//! Differential tests: every checker against a brute-force evaluation of its model's
//! definition (all orderings, all choices of which `info` operations happened) on thousands of
//! small random histories, valid and invalid, with `info` operations. Seeded: a failure names
//! the seed and prints the history.

use crate::brute;

use quorate_check::causal::check_causal;
use quorate_check::convergence::check_convergence;
use quorate_check::history::{pair, Event, EventKind, OpValue, Operation};
use quorate_check::linearizability::{
    check_linearizable, check_linearizable_search, Limits, Verdict,
};
use quorate_check::sequential::{check_sequential, check_sequential_search};
use quorate_check::session::{check_session, Guarantees};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Which operations a random history may contain.
#[derive(Clone, Copy, PartialEq)]
enum Mix {
    /// get, put, delete, cas, append (linearizability, sequential consistency).
    Kv,
    /// get, put, cas with unique written values (the linearizability fast path).
    Unique,
    /// get, put, cas, append with unique values and suffixes (appends read as CAS chains).
    UniqueAppend,
    /// get and put with unique values (causal, session).
    Register,
    /// get (sometimes multi-valued), put with unique values, delete (convergence).
    Convergence,
}

/// A small random history: `operations` operations over `processes` processes and `keys`
/// keys. Reads return a random value among those written on the key (or absent), so about
/// half the histories are invalid for the stronger models. A process that gets `info` stops.
fn random_history(
    rng: &mut Rng,
    operations: usize,
    processes: u64,
    keys: u64,
    mix: Mix,
) -> Vec<Operation> {
    let mut clock = vec![0u64; processes as usize];
    let mut stopped = vec![false; processes as usize];
    let mut written: Vec<Vec<String>> = vec![Vec::new(); keys as usize];
    let mut stamped: Vec<(u64, u64, Event)> = Vec::new();
    let mut next_value = 1;
    let multi = mix == Mix::Convergence && rng.chance(50);
    for n in 0..operations {
        let p = rng.below(processes) as usize;
        if stopped[p] {
            continue;
        }
        let key = rng.below(keys);
        let call = clock[p] + 1 + rng.below(3);
        let ret = call + rng.below(4);
        clock[p] = ret;
        let values = &mut written[key as usize];
        let pick = |rng: &mut Rng, values: &Vec<String>| -> Option<String> {
            if values.is_empty() || rng.chance(20) {
                None
            } else {
                Some(values[rng.below(values.len() as u64) as usize].clone())
            }
        };
        let roll = rng.below(100);
        let (invoke, done) = match (mix, roll) {
            (_, 0..45) => {
                let read = if multi {
                    let mut siblings: Vec<String> =
                        values.iter().filter(|_| rng.chance(40)).cloned().collect();
                    siblings.dedup();
                    OpValue::Siblings(siblings)
                } else {
                    OpValue::Get(pick(rng, values))
                };
                (OpValue::Get(None), read)
            }
            (Mix::Kv | Mix::Unique | Mix::UniqueAppend, 45..60) => {
                let cas = OpValue::Cas {
                    expected: pick(rng, values),
                    new: next_value.to_string(),
                };
                (cas.clone(), cas)
            }
            (Mix::Kv | Mix::Convergence, 60..68) => (OpValue::Delete, OpValue::Delete),
            (Mix::Kv, 68..73) | (Mix::UniqueAppend, 60..75) => {
                let append = OpValue::Append(format!("{next_value},"));
                (append.clone(), append)
            }
            _ => {
                let put = OpValue::Put(next_value.to_string());
                (put.clone(), put)
            }
        };
        if let OpValue::Put(v) | OpValue::Cas { new: v, .. } = &invoke {
            values.push(v.clone());
        }
        if let (Mix::UniqueAppend, OpValue::Append(suffix)) = (mix, &invoke) {
            // A state the append may have made, for reads to return.
            let base = pick(rng, values).unwrap_or_default();
            values.push(base + suffix);
        }
        next_value += 1;
        let kind = if rng.chance(15) {
            stopped[p] = true;
            EventKind::Info
        } else if matches!(invoke, OpValue::Cas { .. }) && rng.chance(20) {
            EventKind::Fail
        } else {
            EventKind::Ok
        };
        let event = |kind, value, time| Event {
            process: p as u64,
            kind,
            key: Some(format!("k{key}")),
            value,
            time,
            node: None,
            error: None,
            mode: Default::default(),
        };
        let done = if kind == EventKind::Ok {
            done
        } else {
            invoke.clone()
        };
        stamped.push((call, 2 * n as u64, event(EventKind::Invoke, invoke, call)));
        if !(kind == EventKind::Info && rng.chance(30)) {
            stamped.push((ret, 2 * n as u64 + 1, event(kind, done, ret)));
        }
    }
    stamped.sort_by_key(|(time, order, _)| (*time, *order));
    let events: Vec<Event> = stamped.into_iter().map(|(_, _, e)| e).collect();
    pair(&events).expect("generated histories pair")
}

fn show(ops: &[Operation]) -> String {
    ops.iter().map(|o| format!("  {o}\n")).collect()
}

fn valid(verdict: Verdict) -> bool {
    assert_ne!(verdict, Verdict::Unknown, "no limits were set");
    verdict == Verdict::Linearizable
}

#[test]
fn linearizability_agrees_with_brute_force() {
    let mut counts = [0; 2];
    for seed in 0..3000 {
        let mut rng = Rng(seed);
        let ops = random_history(&mut rng, 7, 3, 1 + seed % 2, Mix::Kv);
        let fast = valid(check_linearizable(&ops, &Limits::default()).verdict);
        let slow = brute::linearizable(&ops);
        assert_eq!(fast, slow, "seed {seed}:\n{}", show(&ops));
        counts[usize::from(slow)] += 1;
    }
    assert!(
        counts[0] > 300 && counts[1] > 300,
        "both verdicts occur: {counts:?}"
    );
}

#[test]
fn unique_value_fast_path_agrees_with_brute_force_and_the_search() {
    // get/put/cas with unique values: every key is decided by the polynomial fast path, whose
    // witness must violate linearizability on its own (brute force says so). With appends
    // (a third of the seeds) most keys are, the rest go to the search.
    let mut counts = [0; 2];
    let mut explained = 0;
    let mut explained_appends = 0;
    for seed in 0..6000 {
        let mut rng = Rng(seed);
        let mix = if seed % 3 == 2 {
            Mix::UniqueAppend
        } else {
            Mix::Unique
        };
        let ops = random_history(&mut rng, 8, 2 + seed % 3, 1 + seed % 2, mix);
        let report = check_linearizable(&ops, &Limits::default());
        let fast = valid(report.verdict);
        let search = valid(check_linearizable_search(&ops, &Limits::default()).verdict);
        let slow = brute::linearizable(&ops);
        assert_eq!(fast, slow, "seed {seed}:\n{}", show(&ops));
        assert_eq!(search, slow, "seed {seed} (search):\n{}", show(&ops));
        if !report.witness.is_empty() && mix == Mix::UniqueAppend {
            explained_appends += 1;
        }
        if !report.witness.is_empty() {
            explained += 1;
            let witness: Vec<Operation> = ops
                .iter()
                .filter(|o| report.witness.contains(&o.id))
                .cloned()
                .collect();
            assert!(
                !brute::linearizable(&witness),
                "seed {seed}: the witness is linearizable:\n{}",
                show(&witness)
            );
        }
        if mix == Mix::Unique {
            counts[usize::from(slow)] += 1;
        }
    }
    assert!(
        counts[0] > 400 && counts[1] > 400,
        "both verdicts occur: {counts:?}"
    );
    assert_eq!(
        explained - explained_appends,
        counts[0],
        "the fast path decides every invalid one without appends"
    );
    assert!(explained_appends > 100, "appends: {explained_appends}");
}

#[test]
fn fast_path_agrees_with_the_search_on_larger_histories() {
    // Too large for brute force: 40 operations, up to 6 processes, with info and fail.
    let mut counts = [0; 2];
    for seed in 0..3000 {
        let mut rng = Rng(seed);
        let mix = [Mix::Kv, Mix::Unique, Mix::UniqueAppend][seed as usize % 3];
        let ops = random_history(&mut rng, 40, 2 + seed % 5, 1 + seed % 2, mix);
        let fast = valid(check_linearizable(&ops, &Limits::default()).verdict);
        let search = valid(check_linearizable_search(&ops, &Limits::default()).verdict);
        assert_eq!(fast, search, "seed {seed}:\n{}", show(&ops));
        counts[usize::from(search)] += 1;
    }
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "both verdicts occur: {counts:?}"
    );
}

#[test]
fn sequential_consistency_agrees_with_brute_force() {
    let mut counts = [0; 2];
    for seed in 0..3000 {
        let mut rng = Rng(seed);
        let ops = random_history(&mut rng, 7, 3, 1 + seed % 2, Mix::Kv);
        let fast = valid(check_sequential(&ops, &Limits::default()).verdict);
        let search = valid(check_sequential_search(&ops, &Limits::default()).verdict);
        let slow = brute::sequential(&ops);
        assert_eq!(fast, slow, "seed {seed}:\n{}", show(&ops));
        assert_eq!(search, slow, "seed {seed} (search alone):\n{}", show(&ops));
        counts[usize::from(slow)] += 1;
    }
    assert!(
        counts[0] > 300 && counts[1] > 300,
        "both verdicts occur: {counts:?}"
    );
}

#[test]
fn causal_consistency_agrees_with_brute_force() {
    let mut counts = [0; 2];
    for seed in 0..3000 {
        let mut rng = Rng(seed);
        let ops = random_history(&mut rng, 7, 3, 1 + seed % 2, Mix::Register);
        let fast = valid(check_causal(&ops, &Limits::default()).unwrap().verdict);
        let slow = brute::causal(&ops);
        assert_eq!(fast, slow, "seed {seed}:\n{}", show(&ops));
        counts[usize::from(slow)] += 1;
    }
    assert!(
        counts[0] > 300 && counts[1] > 300,
        "both verdicts occur: {counts:?}"
    );
}

#[test]
fn session_guarantees_agree_with_brute_force_for_every_subset() {
    let mut counts = [0; 2];
    for seed in 0..1500 {
        let mut rng = Rng(seed);
        let ops = random_history(&mut rng, 6, 2 + seed % 2, 1 + seed % 2, Mix::Register);
        let reads = ops
            .iter()
            .filter(|o| matches!(o.value, OpValue::Get(_)))
            .count();
        if reads * (ops.len() - reads) > 12 {
            continue; // keep the brute force's 2^(reads·writes) views small
        }
        for subset in 0..16u8 {
            let report = check_session(&ops, Guarantees(subset), &Limits::default()).unwrap();
            let slow = brute::session(&ops, subset);
            assert_eq!(
                valid(report.verdict),
                slow,
                "seed {seed}, guarantees {subset:04b}:\n{}",
                show(&ops)
            );
            if subset == 0b1111 {
                counts[usize::from(slow)] += 1;
            }
        }
    }
    assert!(
        counts[0] > 100 && counts[1] > 100,
        "both verdicts occur: {counts:?}"
    );
}

#[test]
fn convergence_agrees_with_brute_force() {
    let mut counts = [0; 3];
    for seed in 0..3000 {
        let mut rng = Rng(seed);
        let ops = random_history(&mut rng, 7, 3, 1 + seed % 2, Mix::Convergence);
        let report = check_convergence(&ops).unwrap();
        let fast = match report.verdict {
            Verdict::Unknown => None,
            v => Some(v == Verdict::Linearizable),
        };
        let slow = brute::convergence(&ops);
        assert_eq!(fast, slow, "seed {seed}:\n{}\n{report:?}", show(&ops));
        counts[slow.map_or(2, usize::from)] += 1;
    }
    assert!(
        counts[0] > 200 && counts[1] > 200,
        "both verdicts occur: {counts:?}"
    );
}

#[test]
fn the_models_form_a_hierarchy() {
    // linearizable ⇒ sequential ⇒ causal ⇔ all four session guarantees together (for unique
    // writes, as Brzezinski et al. observed), and each guarantee alone is weaker still.
    let mut strict = [0; 3];
    for seed in 0..3000 {
        let mut rng = Rng(seed ^ 0xabcdef);
        let ops = random_history(&mut rng, 8, 3, 2, Mix::Register);
        let limits = Limits::default();
        let lin = valid(check_linearizable(&ops, &limits).verdict);
        let sc = valid(check_sequential(&ops, &limits).verdict);
        let cc = valid(check_causal(&ops, &limits).unwrap().verdict);
        let sg = valid(
            check_session(&ops, Guarantees::ALL, &limits)
                .unwrap()
                .verdict,
        );
        let one = (0..4).any(|g| {
            valid(
                check_session(&ops, Guarantees(1 << g), &limits)
                    .unwrap()
                    .verdict,
            )
        });
        assert!(
            !lin || sc,
            "seed {seed}: linearizable but not sequential:\n{}",
            show(&ops)
        );
        assert!(
            !sc || cc,
            "seed {seed}: sequential but not causal:\n{}",
            show(&ops)
        );
        assert_eq!(
            cc,
            sg,
            "seed {seed}: causal and the four guarantees disagree:\n{}",
            show(&ops)
        );
        strict[0] += usize::from(sc && !lin);
        strict[1] += usize::from(cc && !sc);
        strict[2] += usize::from(one && !cc);
    }
    assert!(
        strict.iter().all(|n| *n > 10),
        "each inclusion is strict somewhere: {strict:?}"
    );
}
