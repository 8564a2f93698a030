#!/usr/bin/env python3
"""quorate builds against Redis (appendfsync always), with per-operation costs, in one run.

Starts one redis-server (`appendonly yes`, `appendfsync always`) and a 3-node Raft cluster
(`quorate cluster --free-ports`) from each binary given, all on loopback with their data on the
same disk, then runs redis-benchmark cells interleaved (binary A, binary B, ..., Redis, then
again) and prints the median of --runs runs per cell. Throughput on a shared machine is noisy,
so beside it every quorate cell reports costs that noise distorts little, read from the nodes'
own counters (`/metrics`) and from /proc around the cell:

  fsync/op     fdatasyncs of the three nodes' WALs per acknowledged request
  rec/fsync    WAL records per fdatasync (the group-commit batch)
  msg/op       peer messages sent by the three nodes per request
  ldr cpu us   CPU time (user + system) of the leader's process per request
  all cpu us   CPU time of the three node processes per request

and `x redis`, the throughput ratio to Redis measured in the same run (then its median).

A label ending in -wN (new-w1=PATH) runs that cluster's nodes with N tokio worker threads
(QUORATE_WORKER_THREADS; the default is 2). `--tuning LABEL:KEY=VALUE` (repeatable) passes
`--tuning KEY=VALUE` to that label's `quorate cluster`, so one binary can run twice with a
tunable on and off: `--tuning lease:lease_reads=true main=BIN lease=BIN` measures Raft's
lease reads beside the default ReadIndex reads.

Usage:  python3 bench/pipeline-bench.py [--runs 3] [--cells set:64:16,get:256:16] \
            [--strace] [--tuning LABEL:KEY=VALUE] LABEL=BINARY [LABEL=BINARY ...]
With --strace, one extra pass per cell runs the leader under `strace -f -c` and prints the
syscalls per request (strace slows the node; its throughput is not reported).
Needs redis-server and redis-tools (redis-benchmark), and strace for --strace.
"""

import argparse
import csv
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, log  # noqa: E402

PROCS = []
TICK = os.sysconf("SC_CLK_TCK")


def spawn(args, logfile, env=None):
    p = subprocess.Popen(args, stdout=open(logfile, "w"), stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env)
    PROCS.append(p)
    return p


def stop_all():
    for p in reversed(PROCS):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    for p in reversed(PROCS):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    PROCS.clear()


def role(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"],
                         capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"role:(\w+)", out)
    return m.group(1) if m else None


class Cluster:
    def __init__(self, label, binary, work, tuning=()):
        self.label = label
        data = os.path.join(work, label)
        env = dict(os.environ)
        m = re.search(r"-w(\d+)$", label)
        if m:  # e.g. new-w1: the nodes run one tokio worker thread each
            env["QUORATE_WORKER_THREADS"] = m.group(1)
        extra = [arg for kv in tuning for arg in ("--tuning", kv)]
        spawn([binary, "cluster", "--nodes", "3", "--free-ports", "--data-dir", data] + extra,
              os.path.join(work, label + ".out"), env)
        manifest = os.path.join(data, "cluster.json")
        deadline = time.time() + 60
        while not os.path.exists(manifest):
            if time.time() > deadline:
                raise SystemExit(f"{label}: cluster did not start")
            time.sleep(0.1)
        time.sleep(0.3)
        self.nodes = json.load(open(manifest))["nodes"]
        self.find_leader()

    def find_leader(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            for n in self.nodes:
                port = int(n["client_addr"].rsplit(":", 1)[1])
                try:
                    if role(port) == "leader":
                        self.port, self.leader = port, n
                        return
                except Exception:
                    pass
            time.sleep(0.2)
        raise SystemExit(f"{self.label}: no leader")

    def counters(self):
        total = {}
        for n in self.nodes:
            text = urllib.request.urlopen(f"http://{n['metrics_addr']}/metrics", timeout=5).read().decode()
            for name in ["wal_fsync_seconds_count", "wal_records", "peer_messages_sent", "steps"]:
                m = re.search(rf"^quorate_{name}(?:_total)? (\d+)", text, re.M)
                total[name] = total.get(name, 0) + (int(m.group(1)) if m else 0)
            cpu = cpu_seconds(n["pid"])
            total["cpu"] = total.get("cpu", 0) + cpu
            if n is self.leader:
                total["leader_cpu"] = cpu
        return total


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def bench(port, test, clients, pipeline, n):
    args = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-c", str(clients),
            "-n", str(n), "-P", str(pipeline), "--csv"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=900)
    rows = [r for r in csv.reader(io.StringIO(out.stdout.strip())) if r and r[0] != "test"]
    if out.returncode != 0 or not rows:
        raise SystemExit(f"redis-benchmark failed: {out.stderr}{out.stdout}")
    row = rows[-1]
    return {"rps": float(row[1]), "p50": float(row[4]), "p99": float(row[6])}


def requests_for(clients, pipeline):
    return {1: 2000, 64: 20000, 256: 40000}.get(clients, 20000) * (4 if pipeline > 1 else 1)


def strace_cell(cluster, test, clients, pipeline, n, work):
    out = os.path.join(work, "strace.txt")
    tracer = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(cluster.leader["pid"])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    bench(cluster.port, test, clients, pipeline, n)
    os.kill(tracer.pid, signal.SIGINT)
    tracer.wait()
    calls = {}
    for line in open(out):
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
    return total / n, [(name, c / n) for name, c in top]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cells", default="set:64:1,set:256:1,set:64:16,set:256:16,get:64:16,get:256:16")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--requests", type=int, help="requests per cell (default: by client count)")
    ap.add_argument("--tuning", action="append", default=[],
                    help="LABEL:KEY=VALUE, a protocol tunable for that label's cluster (repeatable)")
    ap.add_argument("binaries", nargs="+", help="LABEL=PATH")
    args = ap.parse_args()
    tunings = {}
    labels_given = {b.split("=", 1)[0] for b in args.binaries}
    for t in args.tuning:
        label, sep, kv = t.partition(":")
        if not sep or "=" not in kv or label not in labels_given:
            raise SystemExit(f"--tuning {t!r}: expected LABEL:KEY=VALUE with LABEL one of "
                             f"{', '.join(sorted(labels_given))}")
        tunings.setdefault(label, []).append(kv)
    work = tempfile.mkdtemp(prefix="pipeline-bench-")
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(143)))
    cells = [(t, int(c), int(p)) for t, c, p in (x.split(":") for x in args.cells.split(","))]
    results = {}
    try:
        clusters = [Cluster(label, path, work, tunings.get(label, ()))
                    for label, path in (b.split("=", 1) for b in args.binaries)]
        rport = None
        if not args.no_redis:
            rport = free_port()
            os.makedirs(os.path.join(work, "redis"))
            spawn(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir",
                   os.path.join(work, "redis"), "--appendonly", "yes", "--appendfsync", "always",
                   "--save", ""], os.path.join(work, "redis.out"))
            time.sleep(0.5)
        for (test, c, p) in cells:
            n = args.requests or requests_for(c, p)
            for r in range(args.runs):
                redis_rps = None
                if rport:
                    res = bench(rport, test, c, p, n)
                    results.setdefault((test, c, p, "redis"), []).append(res)
                    redis_rps = res["rps"]
                for cl in clusters:
                    if role(cl.port) != "leader":
                        cl.find_leader()
                    before = cl.counters()
                    res = bench(cl.port, test, c, p, n)
                    after = cl.counters()
                    d = {k: after[k] - before[k] for k in after}
                    res.update({
                        "fsync/op": d["wal_fsync_seconds_count"] / n,
                        "rec/fsync": d["wal_records"] / max(1, d["wal_fsync_seconds_count"]),
                        "msg/op": d["peer_messages_sent"] / n,
                        "ldr cpu us": d["leader_cpu"] * 1e6 / n,
                        "all cpu us": d["cpu"] * 1e6 / n,
                    })
                    if redis_rps:
                        res["x redis"] = res["rps"] / redis_rps
                    results.setdefault((test, c, p, cl.label), []).append(res)
                    log(f"run {r} {test} c={c} P={p} {cl.label}: " +
                        " ".join(f"{k}={v:.3g}" for k, v in res.items()))
                if redis_rps:
                    log(f"run {r} {test} c={c} P={p} redis: {redis_rps:.0f}/s")
            if args.strace:
                for cl in clusters:
                    per_op, top = strace_cell(cl, test, c, p, n, work)
                    results[(test, c, p, cl.label, "strace")] = (per_op, top)
                    log(f"strace {test} c={c} P={p} {cl.label}: {per_op:.2f} syscalls/op: " +
                        ", ".join(f"{k} {v:.2f}" for k, v in top))
    finally:
        stop_all()
    labels = [b.split("=", 1)[0] for b in args.binaries] + ([] if args.no_redis else ["redis"])
    keys = ["rps", "p50", "p99", "x redis", "fsync/op", "rec/fsync", "msg/op", "ldr cpu us", "all cpu us"]
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, median of {args.runs}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| test | clients | pipeline | system | " + " | ".join(keys) + " |")
    print("|---" * (4 + len(keys)) + "|")
    for (test, c, p) in cells:
        for label in labels:
            runs = results.get((test, c, p, label), [])
            if not runs:
                continue
            med = {k: statistics.median(r[k] for r in runs) for k in keys if k in runs[0]}
            cols = [f"{med[k]:.0f}" if k == "rps" else (f"{med[k]:.2f}" if k in med else "-") for k in keys]
            print(f"| {test.upper()} | {c} | {p} | {label} | " + " | ".join(cols) + " |")
    if args.strace:
        print("\nsyscalls per request on the leader (strace -f -c, one pass):\n")
        for (test, c, p) in cells:
            for label in labels:
                s = results.get((test, c, p, label, "strace"))
                if s:
                    print(f"- {test.upper()} c={c} P={p} {label}: {s[0]:.2f}/op — " +
                          ", ".join(f"{k} {v:.2f}" for k, v in s[1]))


if __name__ == "__main__":
    main()
