//! The fuzz targets' corpus (`fuzz/corpus/<target>/`, grown by `cargo +nightly fuzz run`),
//! replayed on stable as ordinary tests, then mutated at random from a fixed seed: bytes from
//! clients, peers, damaged disks and history files must never make quorate panic. A failing
//! input is printed with its target, so it can be added to the corpus as a regression.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("resp", quorate_server::fuzzing::resp),
    ("peer", quorate_server::fuzzing::peer),
    ("wal", quorate_storage::fuzzing::recover),
    ("history", quorate_check::fuzzing::history),
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    inputs
}

/// Runs `input` through `target`, naming the input if it panics.
fn run(name: &str, target: Target, input: &[u8]) {
    if std::panic::catch_unwind(|| target(input)).is_err() {
        panic!("fuzz target {name} panicked on input {input:?}");
    }
}

#[test]
fn every_corpus_input_is_handled_without_a_panic() {
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "the {name} corpus is empty");
        for input in &inputs {
            run(name, target, input);
        }
    }
}

/// One random change to `input`: a flipped bit, an inserted or deleted run, a chunk spliced
/// from elsewhere, or an interesting number written in.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
    let at = |rng: &mut StdRng, len: usize| rng.random_range(0..=len);
    match rng.random_range(0..5) {
        0 if !input.is_empty() => {
            let i = rng.random_range(0..input.len());
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 => {
            let i = at(rng, input.len());
            let run: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
            input.splice(i..i, run);
        }
        2 if !input.is_empty() => {
            let i = rng.random_range(0..input.len());
            let j = (i + rng.random_range(1..32)).min(input.len());
            input.drain(i..j);
        }
        3 if input.len() > 2 => {
            let i = rng.random_range(0..input.len());
            let j = rng.random_range(i..input.len());
            let chunk = input[i..j].to_vec();
            let k = at(rng, input.len());
            input.splice(k..k, chunk);
        }
        _ => {
            let numbers: [&[u8]; 6] = [
                b"-1",
                b"0",
                b"4294967295",
                b"\xff\xff\xff\xff",
                b"$-1",
                b"*9999999",
            ];
            let n = numbers[rng.random_range(0..numbers.len())];
            let i = at(rng, input.len());
            input.splice(i..i, n.iter().copied());
        }
    }
}

#[test]
fn random_mutations_of_the_corpus_are_handled_without_a_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        for _ in 0..3_000 {
            let mut input = inputs[rng.random_range(0..inputs.len())].clone();
            for _ in 0..rng.random_range(1..6) {
                mutate(&mut rng, &mut input);
            }
            run(name, target, &input);
        }
    }
}
