#!/usr/bin/env bash
# Mutation campaign over the protocol cores and the KV state machine (issue 15), time-bounded.
#
# cargo-mutants (`cargo install cargo-mutants --locked`) makes one small change at a time to
# the source (a `<` becomes `<=`, a function returns `Default::default()`, a `&&` becomes `||`)
# and runs an oracle; a mutant the oracle does not fail "survives" (missed) and shows a gap in
# the tests or the simulator's checks.
#
# Oracles, per target:
#   kv      crates/core/src/kv.rs and kv/chunk.rs, judged by `cargo test -p quorate-core`
#           (the KV's unit tests and the chunked-transfer tests).
#   raft    crates/protocols/src/raft/{log,election,replication}.rs, judged by the protocol
#           crate's unit tests (scripted Raft scenarios from the paper) plus the simulator's
#           Raft batches: `raft_simulation` (200 seeds, every fault, safety checked after every
#           step), `raft_figure8`, `raft_scripted` and `raft_reconfig`.
#
# Usage: scripts/mutants.sh [kv|raft] [extra cargo-mutants args, e.g. --shard 0/4 --in-place]
#   MUTANTS_BUDGET  wall-clock seconds for the whole run (default 1800); at the budget the run is
#                   stopped and the mutants tested so far are in the output's outcomes.json.
#   MUTANTS_OUT     output directory (default target/mutants/<target>); mutants.out/{caught,
#                   missed,timeout,unviable}.txt list the outcomes.
# The default build is in a copy of the tree (safe alongside other builds); `--in-place`
# reuses this tree's warm target dir, which is much faster but edits the sources while it runs:
# use it only in a private worktree with no other cargo command running.
#
# Sampling is reproducible: `--shard k/n --sharding round-robin` (every n-th mutant) takes the same
# mutants every time for a given source, and `--no-shuffle` tests them in listing order.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-kv}"
shift || true
budget="${MUTANTS_BUDGET:-1800}"
out="${MUTANTS_OUT:-target/mutants/$target}"
mkdir -p "$out"

common=(--no-shuffle --timeout 120 --build-timeout 600 --output "$out")
case "$target" in
    kv)
        args=(-f crates/core/src/kv.rs -f crates/core/src/kv/chunk.rs
              --test-package quorate-core)
        targets=()
        test_filter=()
        ;;
    raft)
        args=(-f crates/protocols/src/raft/log.rs -f crates/protocols/src/raft/election.rs
              -f crates/protocols/src/raft/replication.rs
              --test-package quorate-protocols,quorate-sim)
        # quorate-sim's integration tests are one binary; the name filter keeps the oracle
        # to Raft's tests there (raft_simulation, raft_figure8, raft_scripted, raft_reconfig)
        # and in quorate-protocols (the raft:: modules).
        targets=(--lib --test sim)
        test_filter=(--cargo-test-arg=-- --cargo-test-arg=raft)
        ;;
    *)
        echo "unknown target '$target': use kv or raft" >&2
        exit 2
        ;;
esac

# The targets go to every cargo invocation (`--cargo-arg`), so that the build of each mutant
# (`cargo test --no-run`) compiles only the oracle's test binaries, not all of quorate-sim's.
for target_arg in "${targets[@]}"; do
    args+=("--cargo-arg=$target_arg")
done

args+=("${test_filter[@]}")

echo "mutants listed: $(cargo mutants --list "${args[@]}" "$@" | wc -l) ($target, this sample)"
# `timeout` stops cargo-mutants (which restores the tree and stops its child) at the budget.
status=0
timeout --signal=INT --kill-after=60 "$budget" \
    cargo mutants "${common[@]}" "${args[@]}" "$@" || status=$?
for outcome in caught missed timeout unviable; do
    file="$out/mutants.out/$outcome.txt"
    echo "$outcome: $( [ -f "$file" ] && wc -l <"$file" || echo 0)"
done
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: those are results, not errors.
case "$status" in 0 | 2 | 3 | 124 | 130) exit 0 ;; *) exit "$status" ;; esac
