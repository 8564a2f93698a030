#!/usr/bin/env python3
"""Every protocol quorate serves, on real processes, beside etcd, ZooKeeper and Redis, in one run.

Each run starts, on loopback, with every data directory on the same disk:
  * a 3-node `quorate cluster --protocol P` for every protocol P the node serves (raft,
    multipaxos, zab, primary-backup, chain, craq, quorum, multiprimary);
  * a 3-node etcd cluster (Raft; Debian's etcd-server), its default timeouts;
  * a 3-server ZooKeeper ensemble (ZAB; Debian's zookeeper, forceSync=yes: the log is
    fsynced before a write is acknowledged);
  * one redis-server with appendfsync always: the single-node ceiling (one copy, no quorum).
Then drives each with the same generator (bench/loadgen.py: C closed-loop clients, 100 keys,
16-byte values, W worker processes), for S seconds after a 1 s warm-up, twice: `mixed` (half
GETs, half SETs) and `write` (SETs only). Clients connect to the leader (for protocols with
one: raft, multipaxos, zab, primary-backup, chain, craq, etcd, ZooKeeper) or are spread over
every node (quorum, multiprimary). Last, per system, a probe writes continuously from clients
connected to the nodes that stay up, the leader (node 1 if there is none) is killed with
SIGKILL, and the time until a write sent after the kill is acknowledged is the
unavailability. Each number is the median of --runs runs, each run on fresh clusters, started
one after another (a start that fails, say on a port taken meanwhile, is stopped and retried).
Every process started is stopped by its PID at the end of its run (also on Ctrl-C).

The generator is Python on the same cores as the servers: it bounds every row (see
BENCHMARKS.md), so compare rows within one run, and throughput only below that bound.

Needs (Debian bookworm; a missing system is skipped with a note):
  apt-get install redis-server etcd-server etcd-client zookeeper default-jre-headless
(quorate's own nodes need only python3: the smoke test runs them alone.)
Usage:  python3 bench/compare-real.py [--runs 3] [--seconds 5] [--clients 32] [--json]
        python3 bench/compare-real.py --smoke --quorate target/debug/quorate   # CI: quorate only
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import loadgen  # noqa: E402
from benchlib import log  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOCOLS = ["raft", "multipaxos", "zab", "primary-backup", "chain", "craq", "quorum",
             "multiprimary"]
WORKLOADS = {"mixed": 0.5, "write": 0.0}  # share of GETs
LOCAL = "127.0.0.1"


class System:
    """A started system: where the load goes, and how to crash its leader."""

    def __init__(self, name, kind, targets, crash=None, procs=()):
        self.name, self.kind, self.targets = name, kind, targets
        self.crash = crash  # () -> (kill function, surviving addresses); None: no crash
        self.procs = procs


def quorate_system(work, binary, protocol):
    cluster = benchlib.start_quorate(work, binary, protocol, name=f"quorate-{protocol}")
    nodes = cluster["nodes"]
    if cluster["leader"] is None:
        targets = [(LOCAL, n["port"]) for n in nodes]
    else:
        targets = [(LOCAL, next(n["port"] for n in nodes if n["id"] == cluster["leader"]))]

    def crash():
        victim = nodes[0]
        if cluster["leader"] is not None:  # the leader now, which may not be the first one
            info = benchlib.redis_info(nodes[0]["port"])
            victim = next(n for n in nodes if str(n["id"]) == info.get("leader_id"))
        survivors = [(LOCAL, n["port"]) for n in nodes if n is not victim]
        return (lambda: os.kill(victim["pid"], signal.SIGKILL)), survivors

    procs = [p for p in benchlib.PROCS if p[1] is cluster["proc"]]
    return System(f"quorate {protocol}", "resp", targets, crash, procs)


def etcd_system(work):
    # etcd's own defaults (100 ms heartbeat, 1 s election timeout), as quorate's defaults
    # (75 ms, 300-600 ms) are used for quorate: the unavailability column compares defaults.
    members = benchlib.start_etcd(work, heartbeat_ms=100, election_ms=1000)
    leader = benchlib.etcd_leader(members)

    def crash():
        victim = benchlib.etcd_leader(members)
        return victim["proc"].kill, [(LOCAL, m["port"]) for m in members if m is not victim]

    procs = [p for p in benchlib.PROCS if any(p[1] is m["proc"] for m in members)]
    return System("etcd (Raft)", "etcd", [(LOCAL, leader["port"])], crash, procs)


def zookeeper_system(work):
    members = benchlib.start_zookeeper(work)
    leader = benchlib.zookeeper_leader(members)

    def crash():
        victim = benchlib.zookeeper_leader(members)
        return victim["proc"].kill, [(LOCAL, m["port"]) for m in members if m is not victim]

    procs = [p for p in benchlib.PROCS if any(p[1] is m["proc"] for m in members)]
    return System("ZooKeeper (ZAB)", "zookeeper", [(LOCAL, leader["port"])], crash, procs)


def redis_system(work):
    port = benchlib.start_redis(work)
    procs = [p for p in benchlib.PROCS if p[0] == "redis"]
    return System("Redis (1 node, fsync always)", "resp", [(LOCAL, port)], None, procs)


def available(args):
    """The systems to run, as (key, start function); prints a note for each one skipped."""
    chosen = []
    for protocol in args.protocols:
        chosen.append((f"quorate-{protocol}",
                       lambda work, p=protocol: quorate_system(work, args.quorate, p)))
    needs = {"etcd": (["etcd", "etcdctl"], "etcd-server etcd-client", etcd_system),
             "zookeeper": (["java"], "zookeeper default-jre-headless", zookeeper_system),
             "redis": (["redis-server"], "redis-server", redis_system)}
    for key in args.others:
        tools, packages, start = needs[key]
        missing = [t for t in tools if shutil.which(t) is None]
        if key == "zookeeper" and not os.path.exists(benchlib.ZOOKEEPER_JAR):
            missing.append(benchlib.ZOOKEEPER_JAR)
        if missing:
            log(f"note: skipping {key}: {', '.join(missing)} not found "
                f"(apt-get install {packages})")
        else:
            chosen.append((key, start))
    return chosen


def start_with_retries(start, work, attempts=3):
    """Starts a system, one after the other (started side by side, two systems could pick the
    same free port between its probe and its use); a start that fails (a port taken meanwhile,
    no leader in time) is stopped by PID and tried again in a fresh directory."""
    for attempt in range(1, attempts + 1):
        before = len(benchlib.PROCS)
        directory = os.path.join(work, f"try{attempt}")
        os.makedirs(directory)
        try:
            return start(directory)
        except SystemExit as e:
            benchlib.stop(benchlib.PROCS[before:])
            if attempt == attempts:
                raise
            log(f"  start failed ({e}); trying again")


def one_run(args, chosen, work):
    """Starts every chosen system, measures each workload, crashes each leader; returns
    {key: {"mixed": {...}, "write": {...}, "unavailable_s": x}}."""
    results = {}
    systems = {}
    try:
        log(f"starting {', '.join(key for key, _ in chosen)}")
        for key, start in chosen:
            systems[key] = start_with_retries(start, os.path.join(work, key))
        for workload, reads in WORKLOADS.items():
            for key, system in systems.items():  # systems interleaved, against drift
                m = loadgen.measure(system.kind, system.targets, args.clients, args.seconds,
                                    reads, keys=args.keys, workers=args.workers,
                                    warmup=args.warmup)
                results.setdefault(key, {"name": system.name})[workload] = m
                log(f"  {workload:5} {system.name:30} {m['ops_s']:8.0f} ops/s  p50 "
                    f"{m['p50_ms']:6.2f} ms  p99 {m['p99_ms']:7.2f} ms  errors {m['errors']}")
        for key, system in systems.items():
            unavailable = None
            if system.crash and not args.no_crash:
                kill, survivors = system.crash()
                unavailable = loadgen.probe_unavailability(
                    system.kind, survivors, kill, before=args.crash_after, limit=args.crash_limit)
                log(f"  crash {system.name:30} writes again after "
                    + (f"{unavailable:.3f} s" if unavailable is not None
                       else f"more than {args.crash_limit} s"))
            results[key]["unavailable_s"] = unavailable
            results[key]["crashed"] = bool(system.crash and not args.no_crash)
            benchlib.stop(system.procs)
    finally:
        benchlib.stop_all()
    return results


def median_of(runs):
    """The median, per system and number, over runs."""
    out = {}
    for key in runs[0]:
        row = {"system": runs[0][key]["name"]}
        for workload in WORKLOADS:
            for field in ["ops_s", "p50_ms", "p99_ms"]:
                row[f"{workload}_{field}"] = statistics.median(r[key][workload][field] for r in runs)
            row[f"{workload}_errors"] = sum(r[key][workload]["errors"] for r in runs)
            if "redis" in runs[0]:  # the ratio within each run, then its median
                row[f"{workload}_x_redis"] = statistics.median(
                    r[key][workload]["ops_s"] / r["redis"][workload]["ops_s"] for r in runs)
        if runs[0][key]["crashed"]:
            times = [r[key]["unavailable_s"] for r in runs]
            # A probe that saw no write within the limit counts as the limit (a lower bound).
            row["unavailable_s"] = statistics.median(
                t if t is not None else float("inf") for t in times)
            row["unavailable_runs_s"] = times
        else:
            row["unavailable_s"] = None
        out[key] = row
    return out


def print_table(rows, args):
    redis = rows.get("redis")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores (load average {load} at the end), "
          f"median of {args.runs} run(s), "
          f"{args.clients} clients, {args.seconds:g} s per cell; ops/s and ms"
          + ("; x Redis = throughput over Redis's in the same run (median of the runs' ratios)"
             if redis else "") + "\n")
    head = ["system"]
    for workload in WORKLOADS:
        head += [f"{workload} ops/s", "p50", "p99"] + (["x Redis"] if redis else [])
    head.append("writes again after crash")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows.values():
        cells = [row["system"]]
        for workload in WORKLOADS:
            cells += [f"{row[f'{workload}_ops_s']:.0f}", f"{row[f'{workload}_p50_ms']:.2f}",
                      f"{row[f'{workload}_p99_ms']:.2f}"]
            if redis:
                cells.append(f"{row[f'{workload}_x_redis']:.2f}")
        u = row["unavailable_s"]
        cells.append("n/a" if u is None else (f"> {args.crash_limit:g} s" if u == float("inf")
                                               else f"{u:.2f} s"))
        print("| " + " | ".join(cells) + " |")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--seconds", type=float, default=5, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1, help="unmeasured seconds first")
    parser.add_argument("--clients", type=int, default=32, help="closed-loop clients")
    parser.add_argument("--keys", type=int, default=100, help="distinct keys")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--protocols", default="all", help="all, or a comma-separated list")
    parser.add_argument("--others", default="etcd,zookeeper,redis",
                        help="other systems beside quorate (comma-separated; '' for none)")
    parser.add_argument("--no-crash", action="store_true", help="skip the leader crash")
    parser.add_argument("--crash-after", type=float, default=2, help="probe seconds before the kill")
    parser.add_argument("--crash-limit", type=float, default=20, help="longest wait after it")
    parser.add_argument("--quorate", help="the quorate binary (default: build release)")
    parser.add_argument("--work", help="data and logs (default: target/compare-real)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON, last line")
    parser.add_argument("--smoke", action="store_true",
                        help="CI: quorate only, 1 run, 0.3 s cells, 4 clients, 10 keys; fails unless every "
                             "protocol has a row with nonzero throughput and a measured crash")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.seconds, args.warmup, args.clients = 1, 0.3, 0.1, 4
        args.keys, args.workers, args.others = 10, 1, ""
        args.crash_after, args.crash_limit = 0.3, 10
    args.protocols = PROTOCOLS if args.protocols == "all" else args.protocols.split(",")
    unknown = [p for p in args.protocols if p not in PROTOCOLS]
    if unknown:
        parser.error(f"unknown protocol(s) {unknown}: choose from {', '.join(PROTOCOLS)}")
    args.others = [o for o in args.others.split(",") if o]
    unknown = [o for o in args.others if o not in ("etcd", "zookeeper", "redis")]
    if unknown:
        parser.error(f"unknown system(s) {unknown}: choose from etcd, zookeeper, redis")
    return args


def main():
    args = parse_args()
    if args.quorate is None:
        log("building quorate (release)...")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "quorate"], cwd=ROOT, check=True)
        args.quorate = os.path.join(ROOT, "target", "release", "quorate")
    chosen = available(args)
    work = args.work or os.path.join(ROOT, "target", "compare-real")
    shutil.rmtree(work, ignore_errors=True)
    benchlib.stop_on_signals()
    runs = []
    for r in range(args.runs):
        log(f"run {r + 1} of {args.runs}")
        runs.append(one_run(args, chosen, os.path.join(work, f"run{r + 1}")))
    rows = median_of(runs)
    print_table(rows, args)
    if args.smoke:
        bad = [k for k, row in rows.items() if not row["mixed_ops_s"] > 0
               or not row["write_ops_s"] > 0 or row["unavailable_s"] in (None, float("inf"))]
        missing = [f"quorate-{p}" for p in args.protocols if f"quorate-{p}" not in rows]
        if bad or missing:
            raise SystemExit(f"smoke test failed: no throughput or no recovery for {bad}, "
                             f"no row for {missing}")
    if args.json:
        for row in rows.values():  # JSON has no infinity: a probe that timed out is null
            if row["unavailable_s"] == float("inf"):
                row["unavailable_s"] = None
        print(json.dumps({"date": time.strftime("%Y-%m-%d"), "runs": args.runs,
                          "clients": args.clients, "seconds": args.seconds,
                          "crash_limit_s": args.crash_limit, "loadavg": os.getloadavg(),
                          "rows": list(rows.values())}))


if __name__ == "__main__":
    main()
