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
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROCS = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout}s")


def spawn(name, args, logfile):
    out = open(logfile, "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    PROCS.append((name, proc))
    return proc


def stop_all():
    for name, proc in reversed(PROCS):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.time() + 10
    for name, proc in reversed(PROCS):
        while proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    PROCS.clear()


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


def redis_info(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"],
                         capture_output=True, text=True, timeout=10)
    return dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)


def start_quorate(work, quorate):
    data = os.path.join(work, "quorate")
    spawn("quorate", [quorate, "cluster", "--nodes", "3", "--free-ports", "--data-dir", data],
          os.path.join(work, "quorate.out"))
    manifest = os.path.join(data, "cluster.json")
    deadline = time.time() + 30
    while not os.path.exists(manifest):
        if time.time() > deadline:
            raise SystemExit("quorate cluster did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    nodes = json.load(open(manifest))["nodes"]
    deadline = time.time() + 30
    while time.time() < deadline:
        for node in nodes:
            port = int(node["client_addr"].rsplit(":", 1)[1])
            try:
                if redis_info(port).get("role", "").strip() == "leader":
                    return port
            except Exception:
                pass
        time.sleep(0.2)
    raise SystemExit("no quorate leader")


def start_redis(work):
    port = free_port()
    data = os.path.join(work, "redis")
    os.makedirs(data)
    spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data,
                    "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
          os.path.join(work, "redis.out"))
    wait_port(port)
    return port


def start_etcd(work):
    client = [free_port() for _ in range(3)]
    peer = [free_port() for _ in range(3)]
    cluster = ",".join(f"e{i}=http://127.0.0.1:{peer[i]}" for i in range(3))
    for i in range(3):
        spawn(f"etcd{i}", [
            "etcd", "--name", f"e{i}", "--data-dir", os.path.join(work, f"etcd{i}"),
            "--listen-client-urls", f"http://127.0.0.1:{client[i]}",
            "--advertise-client-urls", f"http://127.0.0.1:{client[i]}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer[i]}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "quorate-bench", "--logger", "zap",
            # Longer than the defaults (100/1000 ms), so that a loaded machine does not cause
            # elections in the middle of a measurement; steady-state speed is unaffected.
            "--heartbeat-interval", "250", "--election-timeout", "2500",
        ], os.path.join(work, f"etcd{i}.out"))
    for port in client:
        wait_port(port)
    # Drive the leader, as quorate's leader is driven (followers would add a forwarding hop).
    endpoints = ",".join(f"http://127.0.0.1:{p}" for p in client)
    deadline = time.time() + 30
    while time.time() < deadline:
        out = subprocess.run(["etcdctl", "--endpoints", endpoints, "endpoint", "status", "-w", "json"],
                             capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"})
        try:
            for status in json.loads(out.stdout):
                if status["Status"]["leader"] == status["Status"]["header"]["member_id"]:
                    return status["Endpoint"]
        except Exception:
            pass
        time.sleep(0.3)
    raise SystemExit("no etcd leader")


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
    signal.signal(signal.SIGINT, lambda *_: (stop_all(), sys.exit(130)))
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(143)))
    try:
        q_port = start_quorate(work, quorate)
        r_port = start_redis(work)
        e_endpoint = start_etcd(work)
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
