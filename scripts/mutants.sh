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
#   kv-features  the KV's expiry, leases, transactions, listing and change feed
#           (crates/core/src/kv/{expiry,lease,txn,listing,changes}.rs), judged the same way.
#   raft    crates/protocols/src/raft/{log,election,replication}.rs, judged by the protocol
#           crate's unit tests (scripted Raft scenarios from the paper) plus the simulator's
#           Raft batches: `raft_simulation` (200 seeds, every fault, safety checked after every
#           step), `raft_figure8`, `raft_scripted` and `raft_reconfig`.
#   raft-rest  Raft's other files (config, membership, message, mod, progress, read, safety,
#           snapshot, transfer), judged by the same oracle as `raft`.
#   paxos, multipaxos, zab, primary-backup, chain, craq, quorum, multiprimary
#           that protocol's sources in crates/protocols/src, judged by its unit tests there
#           and its simulator batches and scripted scenarios in quorate-sim's `sim` binary
#           (a test-name filter per protocol, below). Chain and CRAQ are the primary-backup
#           replica in another shape, so the three share one oracle: `primary-backup` mutates
#           the shared replica, `chain` chain/mod.rs, `craq` the read path (reads.rs).
#   shared  the building blocks in crates/protocols/src/{merkle,ring,session}.rs, judged by
#           their unit tests and the quorum and multi-primary tests and simulator batches
#           (the protocols that use them).
#
# Usage: scripts/mutants.sh <target> [extra cargo-mutants args, e.g. --shard 0/4 --in-place]
#   MUTANTS_BUDGET  wall-clock seconds for the whole run (default 1800); at the budget the run is
#                   stopped and the mutants tested so far are in the output's outcomes.json.
#   MUTANTS_OUT     output directory (default target/mutants/<target>); mutants.out/{caught,
#                   missed,timeout,unviable}.txt list the outcomes.
# The default build is in a copy of the tree (safe alongside other builds); `--in-place`
# reuses this tree's warm target dir, which is much faster but edits the sources while it runs:
# use it only in a private worktree with no other cargo command running.
#
#   MUTANTS_SAMPLE, MUTANTS_SEED  a seeded random sample of MUTANTS_SAMPLE mutants (below).
# Sampling is reproducible: `--shard k/n --sharding round-robin` (every n-th mutant) takes the same
# mutants every time for a given source, and `--no-shuffle` tests them in listing order.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-kv}"
shift || true
budget="${MUTANTS_BUDGET:-1800}"
out="${MUTANTS_OUT:-target/mutants/$target}"
mkdir -p "$out"

# Incremental builds by default: a mutant's build takes 5-25 s instead of ~4 min (measured in
# session 36; set CARGO_INCREMENTAL=0 to turn them off). Their hazard: the budget interrupts a
# build mid-way, and that once left the incremental cache inconsistent, so every later mutant
# failed to link ("undefined hidden symbol") and was reported *unviable*. The guard: a marker
# is written before cargo-mutants starts and removed only when it ended on its own; a marker
# found at the start means an earlier run was cut (budget, Ctrl-C, kill), and the incremental
# cache of this target dir is removed first (the workspace crates are rebuilt once; registry
# dependencies are not incremental and stay).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-1}"
common=(--no-shuffle --timeout 120 --build-timeout 600 --output "$out")
case "$target" in
    kv)
        args=(-f crates/core/src/kv.rs -f crates/core/src/kv/chunk.rs
              --test-package quorate-core)
        targets=()
        test_filter=()
        ;;
    kv-features)
        args=(-f crates/core/src/kv/expiry.rs -f crates/core/src/kv/lease.rs
              -f crates/core/src/kv/txn.rs -f crates/core/src/kv/listing.rs
              -f crates/core/src/kv/changes.rs --test-package quorate-core)
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
        test_filter=(--cargo-test-arg=-- --cargo-test-arg=raft --cargo-test-arg=cost::)
        ;;
    raft-rest)
        # The rest of Raft (its `tests` directory is test code and not mutated): configuration,
        # membership changes, messages, the node (`mod.rs`), follower progress, reads, the
        # safety checker, snapshots and leadership transfer, judged by the same oracle as `raft`.
        args=(--test-package quorate-protocols,quorate-sim)
        for file in config membership message mod progress read safety snapshot transfer; do
            args+=(-f "crates/protocols/src/raft/$file.rs")
        done
        targets=(--lib --test sim)
        test_filter=(--cargo-test-arg=-- --cargo-test-arg=raft --cargo-test-arg=cost::)
        ;;
    paxos | multipaxos | zab | primary-backup | chain | craq | quorum | multiprimary | shared)
        src=crates/protocols/src
        # Each protocol's sources (its `tests` modules are not mutated: cargo-mutants skips
        # `#[cfg(test)]` code), and the test-name filters that keep the oracle to that
        # protocol's unit tests (`<module>::tests::...`) and its simulator batches in `sim`.
        case "$target" in
            paxos)
                files=("$src"/paxos/*.rs)
                test_filter=(paxos --skip multipaxos) ;;
            multipaxos)
                files=("$src"/multipaxos/*.rs)
                test_filter=(multipaxos) ;;
            zab)
                files=("$src"/zab/*.rs)
                test_filter=(zab) ;;
            primary-backup)
                # The shared replica minus its read path (the `craq` target) and its test kit.
                files=("$src"/primary_backup/{config,log,message,mod,replication,safety,view_change}.rs)
                test_filter=(primary_backup chain craq) ;;
            chain)
                files=("$src"/chain/mod.rs)
                test_filter=(primary_backup chain craq) ;;
            craq)
                # Read confirmation rounds and CRAQ's clean/dirty reads and version queries.
                files=("$src"/primary_backup/reads.rs)
                test_filter=(primary_backup chain craq) ;;
            quorum)
                files=("$src"/quorum/*.rs)
                test_filter=(quorum) ;;
            multiprimary)
                files=("$src"/multiprimary/*.rs)
                test_filter=(multiprimary) ;;
            shared)
                # The Merkle tree, the consistent-hashing ring and the session table, judged
                # by their own unit tests and by the two protocols built on them: quorum
                # (ring, Merkle anti-entropy, sessions) and multi-primary (Merkle, sessions).
                files=("$src"/{merkle,ring,session}.rs)
                test_filter=(merkle ring session quorum multiprimary) ;;
        esac
        args=(--test-package quorate-protocols,quorate-sim)
        for file in "${files[@]}"; do
            case "$file" in */tests.rs | */testkit.rs) continue ;; esac
            args+=(-f "$file")
        done
        targets=(--lib --test sim)
        # Every protocol's oracle also runs the cost test (`cost::`, 0.4 s: messages, bytes
        # and fsyncs per operation of each protocol, VERIFICATION.md "Cost per operation").
        filter=("${test_filter[@]}" cost::)
        test_filter=(--cargo-test-arg=--)
        for word in "${filter[@]}"; do
            test_filter+=("--cargo-test-arg=$word")
        done
        ;;
    *)
        echo "unknown target '$target': use kv, kv-features, raft, raft-rest, paxos, multipaxos, zab, primary-backup," \
            "chain, craq, quorum, multiprimary or shared" >&2
        exit 2
        ;;
esac

# The targets go to every cargo invocation (`--cargo-arg`), so that the build of each mutant
# (`cargo test --no-run`) compiles only the oracle's test binaries, not all of quorate-sim's.
for target_arg in "${targets[@]}"; do
    args+=("--cargo-arg=$target_arg")
done

args+=("${test_filter[@]}")

# A seeded random sample: MUTANTS_SAMPLE=n picks n mutants of the listing (this target, plus any
# filter in the extra args) with Python's random.Random(MUTANTS_SEED).sample over the listing
# in its order, and selects exactly those with one anchored `--re` each (a name is unique: file,
# line, column and the replacement). The same seed and source give the same mutants.
# cargo-mutants 27.1.0 lets struct-field deletions (`delete field x from struct S expression`)
# through any `--re` / `--exclude-re`: they are tested too (raft-rest 6, quorum 3) and are
# outside the sample; "mutants listed" below counts them.
if [ -n "${MUTANTS_SAMPLE:-}" ]; then
    listing="$out/listing.txt"
    cargo mutants --list "${args[@]}" "$@" >"$listing"
    mapfile -t picked < <(python3 - "$listing" "$MUTANTS_SAMPLE" "${MUTANTS_SEED:-0}" <<'PY'
import random, sys
names = [line.rstrip("\n") for line in open(sys.argv[1]) if line.strip()]
n, seed = int(sys.argv[2]), int(sys.argv[3])
meta = set("\\.+*?()|[]{}^$#&-~")
for name in random.Random(seed).sample(names, min(n, len(names))):
    print("^" + "".join("\\" + c if c in meta else c for c in name) + "$")
PY
    )
    echo "sample: ${#picked[@]} of $(wc -l <"$listing") listed, seed ${MUTANTS_SEED:-0} (listing in $listing)"
    for pattern in "${picked[@]}"; do
        args+=(--re "$pattern")
    done
fi

echo "mutants listed: $(cargo mutants --list "${args[@]}" "$@" | wc -l) ($target, this sample)"
target_dir="${CARGO_TARGET_DIR:-target}"
marker="$target_dir/mutants/.run-in-progress"
mkdir -p "$target_dir/mutants"
if [ -f "$marker" ]; then
    pid="$(cat "$marker" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ "$pid" != "$$" ] && kill -0 "$pid" 2>/dev/null; then
        echo "another mutants.sh run (pid $pid) is using $target_dir; wait for it" >&2
        exit 1
    fi
    echo "an earlier run was interrupted: removing $target_dir/*/incremental before building"
    rm -rf "$target_dir"/debug/incremental "$target_dir"/release/incremental
fi
echo $$ >"$marker"
# `timeout` stops cargo-mutants (which restores the tree and stops its child) at the budget.
status=0
timeout --signal=INT --kill-after=60 "$budget" \
    cargo mutants "${common[@]}" "${args[@]}" "$@" || status=$?
for outcome in caught missed timeout unviable; do
    file="$out/mutants.out/$outcome.txt"
    echo "$outcome: $( [ -f "$file" ] && wc -l <"$file" || echo 0)"
done
# cargo-mutants counts a build that outlives --build-timeout as a "timeout" too, although no
# test judged that mutant; name those apart (they are not detections).
if [ -f "$out/mutants.out/outcomes.json" ] && command -v python3 >/dev/null; then
    python3 - "$out/mutants.out/outcomes.json" <<'PY'
import json, sys
outcomes = json.load(open(sys.argv[1]))["outcomes"]
builds = [o for o in outcomes if o["summary"] == "Timeout"
          and o["phase_results"][-1]["phase"] == "Build"]
print(f"of the timeouts, in the build (not judged): {len(builds)}")
PY
fi
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: those are results, not errors.
# A run that cargo-mutants ended itself (results 0, 2, 3; an error such as a failed baseline, 1
# or 4) leaves a consistent incremental cache; after the budget's SIGINT (124), the kill that
# follows it (137) or a Ctrl-C (130) the marker stays, and the next run clears the cache.
case "$status" in 124 | 130 | 137) ;; *) rm -f "$marker" ;; esac
case "$status" in 0 | 2 | 3 | 124 | 130) exit 0 ;; *) exit "$status" ;; esac
