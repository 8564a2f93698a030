#!/usr/bin/env python3
"""quorate vs Redis vs etcd, on this machine, in one run.

Starts, on loopback, with every data directory on the same disk:
  * a 3-node quorate Raft cluster (`quorate cluster`), every write fsynced on a majority
    before it is acknowledged;
  * one redis-server with `appendonly yes` and `appendfsync always` (fsync before every
    acknowledgement, but one copy: less durable than the two others);
  * a 3-node etcd cluster (Debian's etcd-server), which also acknowledges a write once it
    is fsynced on a majority.
Then runs SET and GET at 1, 64 and 256 clients, without and with pipelining (16 requests in
flight per connection): redis-benchmark against quorate's leader and Redis, and the
equivalent closed loop (bench/etcd-load) against etcd's leader. Each cell is the median of
--runs runs. Every process started is stopped by its PID at the end (or on Ctrl-C).

Needs: redis-tools, redis-server, etcd-server, etcd-client and protobuf-compiler (apt-get
install; protoc builds the etcd-client crate), and a Rust toolchain.
Usage:  python3 bench/run-bench.py [--runs 3] [--quick]
"""

import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import etcd_leader, log, start_etcd, start_redis, stop_on_signals, stop_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_csv(text):
    rows = list(csv.reader(io.StringIO(text.strip())))
    row = [r for r in rows if r and r[0] != "test"][-1]
    return {"rps": float(row[1]), "p50": float(row[4]), "p95": float(row[5]), "p99": float(row[6])}


def redis_benchmark(port, test, clients, pipeline, requests):
    args = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test.lower(),
            "-c", str(clients), "-n", str(requests), "-P", str(pipeline), "--csv"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"redis-benchmark failed: {out.stderr}")
    return parse_csv(out.stdout)


def etcd_benchmark(binary, endpoints, test, clients, pipeline, requests):
    op = "put" if test == "SET" else "get"
    args = [binary, "--endpoints", endpoints, "--op", op, "--clients", str(clients),
            "--depth", str(pipeline), "--requests", str(requests)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"etcd-load failed: {out.stderr}")
    return parse_csv(out.stdout)


def start_quorate_leader(work, quorate):
    """A 3-node quorate Raft cluster; the client port of its leader."""
    cluster = benchlib.start_quorate(work, quorate)
    return next(n["port"] for n in cluster["nodes"] if n["id"] == cluster["leader"])


def start_etcd_leader(work):
    """A 3-node etcd cluster; the endpoint of its leader, driven as quorate's leader is
    (followers would add a forwarding hop)."""
    leader = etcd_leader(start_etcd(work))
    if leader is None:
        raise SystemExit("no etcd leader")
    return f"http://127.0.0.1:{leader['port']}"


def requests_for(clients, pipeline, quick):
    base = {1: 2000, 64: 20000, 256: 40000}[clients]
    if pipeline > 1:
        base *= 4
    return max(1000, base // 4) if quick else base


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median is reported")
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests (a smoke run)")
    parser.add_argument("--work", help="directory for data and logs (default: target/bench-work)")
    args = parser.parse_args()
    for tool in ["redis-benchmark", "redis-server", "redis-cli", "etcd", "etcdctl", "protoc"]:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install redis-tools redis-server etcd-server etcd-client protobuf-compiler")
    log("building quorate and etcd-load (release)...")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "quorate"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", "bench/etcd-load/Cargo.toml"],
                   cwd=ROOT, check=True)
    quorate = os.path.join(ROOT, "target", "release", "quorate")
    etcd_load = os.path.join(ROOT, "bench", "etcd-load", "target", "release", "etcd-load")
    work = args.work or os.path.join(ROOT, "target", "bench-work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    stop_on_signals()
    try:
        q_port = start_quorate_leader(work, quorate)
        r_port = start_redis(work)
        e_endpoint = start_etcd_leader(work)
        log(f"quorate leader on {q_port}, redis on {r_port}, etcd leader {e_endpoint}; data in {work}")
        systems = {
            "quorate": lambda t, c, p, n: redis_benchmark(q_port, t, c, p, n),
            "redis": lambda t, c, p, n: redis_benchmark(r_port, t, c, p, n),
            "etcd": lambda t, c, p, n: etcd_benchmark(etcd_load, e_endpoint, t, c, p, n),
        }
        rows = []
        for test in ["SET", "GET"]:
            for pipeline in [1, 16]:
                for clients in [1, 64, 256]:
                    n = requests_for(clients, pipeline, args.quick)
                    cell = {}
                    for name in systems:
                        cell[name] = []
                    for run in range(args.runs):
                        for name, bench in systems.items():  # interleaved, against drift
                            cell[name].append(bench(test, clients, pipeline, n))
                    median = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                              for name, runs in cell.items()}
                    rows.append((test, clients, pipeline, n, median))
                    log(f"{test} c={clients} P={pipeline} n={n}: " + ", ".join(
                        f"{k} {v['rps']:.0f}/s p99 {v['p99']:.2f}ms" for k, v in median.items()))
    finally:
        stop_all()
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, median of {args.runs} run(s); "
          "throughput in requests/s, latency in ms\n")
    print("| test | clients | pipeline | quorate req/s | p50 | p99 | etcd req/s | p50 | p99 | "
          "quorate/etcd | redis req/s | p50 | p99 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for test, clients, pipeline, n, m in rows:
        q, e, r = m["quorate"], m["etcd"], m["redis"]
        print(f"| {test} | {clients} | {pipeline} | {q['rps']:.0f} | {q['p50']:.2f} | {q['p99']:.2f} | "
              f"{e['rps']:.0f} | {e['p50']:.2f} | {e['p99']:.2f} | {q['rps'] / e['rps']:.2f}x | "
              f"{r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")


if __name__ == "__main__":
    main()
