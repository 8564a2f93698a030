#!/usr/bin/env python3
"""TLS against plain TCP: redis-benchmark on the leader of a 3-node Raft cluster.

Usage: python3 bench/tls-bench.py [--binary target/release/quorate] [--runs 3]
       [--clients 64] [--requests 20000]

For plain and TLS in turn, starts `quorate cluster --free-ports` (with `--tls DIR` for TLS,
certificates from `quorate certs`), waits for the leader, and runs
`redis-benchmark -h 127.0.0.1 -p LEADER -t set,get -c C -n N [-P 16] --csv` (with
`--tls --cacert DIR/ca.pem` for TLS) RUNS times, unpipelined and with -P 16, interleaving
plain and TLS runs. Prints a Markdown table of the median requests/s. Stops each cluster by
its PID.
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
import tempfile
import time


def start(binary, data, tls):
    out_path = os.path.join(data, "cluster.out")
    args = [binary, "cluster", "--nodes", "3", "--free-ports", "--data-dir",
            os.path.join(data, "d")]
    if tls:
        args += ["--tls", tls]
    proc = subprocess.Popen(args, stdout=open(out_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        match = re.search(r"^leader: node (\d+)", open(out_path).read(), re.M)
        if match:
            manifest = json.load(open(os.path.join(data, "d", "cluster.json")))
            node = next(n for n in manifest["nodes"] if n["id"] == int(match.group(1)))
            return proc, int(node["client_addr"].rsplit(":", 1)[1])
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    raise SystemExit("no leader within 30 s:\n" + open(out_path).read())


def bench(port, tls, pipeline, args):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get",
           "-c", str(args.clients), "-n", str(args.requests), "-P", str(pipeline), "--csv"]
    if tls:
        cmd += ["--tls", "--cacert", os.path.join(tls, "ca.pem")]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = list(csv.reader(io.StringIO(text)))
    return {row[0]: float(row[1]) for row in rows[1:]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/quorate")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="quorate-tls-bench-")
    certs = os.path.join(work, "certs")
    subprocess.run([args.binary, "certs", "--out", certs, "--nodes", "3"], check=True,
                   stdout=subprocess.DEVNULL)
    results = {}  # (mode, pipeline, test) -> [req/s]
    clusters = {}
    try:
        for mode, tls in [("plain", None), ("tls", certs)]:
            data = os.path.join(work, mode)
            os.makedirs(data)
            clusters[mode] = start(args.binary, data, tls)
        for _ in range(args.runs):
            for pipeline in (1, 16):
                for mode, tls in [("plain", None), ("tls", certs)]:
                    port = clusters[mode][1]
                    for test, rps in bench(port, tls, pipeline, args).items():
                        results.setdefault((mode, pipeline, test), []).append(rps)
    finally:
        for proc, _ in clusters.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    print(f"| test | pipeline | plain req/s | TLS req/s | TLS/plain |  "
          f"(median of {args.runs}, {args.clients} clients, {args.requests} requests)")
    print("|---|---|---|---|---|")
    for test in ("SET", "GET"):
        for pipeline in (1, 16):
            plain = statistics.median(results[("plain", pipeline, test)])
            tls = statistics.median(results[("tls", pipeline, test)])
            print(f"| {test} | {pipeline} | {plain:.0f} | {tls:.0f} | {tls / plain:.2f} |")


if __name__ == "__main__":
    main()
