#!/usr/bin/env python3
"""A/B of two quorate builds: SET throughput and p99 of a 3-node Raft cluster, runs interleaved.

Starts `quorate cluster --protocol raft --nodes 3` from each binary in turn (loopback, client
ports 6391-6393, data under a temporary directory), drives its leader with redis-benchmark,
stops it by its PID, and prints the median of --runs runs per cell. Interleaving the builds
run by run makes the comparison robust to a machine whose load drifts.

Usage:  python3 bench/ab.py OLD_BINARY NEW_BINARY [--runs 5]
Needs:  redis-tools (redis-benchmark).
"""
import argparse, subprocess, time, re, tempfile, os, signal, statistics, csv, io
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("old"); parser.add_argument("new")
parser.add_argument("--runs", type=int, default=5, help="runs per build; the median is reported")
args = parser.parse_args()
bins = {"old": args.old, "new": args.new}
cells = [(1, 1, 2000), (64, 1, 20000), (256, 1, 40000), (64, 16, 80000)]
runs = args.runs
results = {}
def start(binary):
    d = tempfile.mkdtemp(prefix="ab-")
    out = open(os.path.join(d, "out"), "w")
    p = subprocess.Popen([binary, "cluster", "--protocol", "raft", "--nodes", "3", "--data-dir", d + "/data",
                          "--client-port", "6391", "--peer-port", "7191", "--metrics-port", "9191"],
                         stdout=out, stderr=subprocess.STDOUT)
    for _ in range(300):
        text = open(os.path.join(d, "out")).read()
        m = re.search(r"^leader: node (\d+)", text, re.M)
        if m:
            return p, 6390 + int(m.group(1))
        time.sleep(0.1)
    p.kill(); raise SystemExit("no leader:\n" + text)
def stop(p):
    p.send_signal(signal.SIGTERM); p.wait(timeout=30)
for r in range(runs):
    for name, binary in bins.items():
        p, port = start(binary)
        try:
            for (c, P, n) in cells:
                o = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-c", str(c), "-n", str(n),
                                    "-P", str(P), "--csv"], capture_output=True, text=True).stdout
                rows = list(csv.reader(io.StringIO(o)))
                row = rows[1]
                rps, p99 = float(row[1]), float(row[6])
                results.setdefault((c, P, name), []).append((rps, p99))
                print(f"run {r} {name} c={c} P={P}: {rps:.0f}/s p99 {p99}ms", flush=True)
        finally:
            stop(p)
print("\n| clients | pipeline | old req/s | old p99 | new req/s | new p99 | new/old |")
print("|---|---|---|---|---|---|---|")
for (c, P, n) in cells:
    o = results[(c, P, "old")]; w = results[(c, P, "new")]
    orps = statistics.median(x[0] for x in o); op99 = statistics.median(x[1] for x in o)
    nrps = statistics.median(x[0] for x in w); np99 = statistics.median(x[1] for x in w)
    print(f"| {c} | {P} | {orps:.0f} | {op99:.2f} | {nrps:.0f} | {np99:.2f} | {nrps/orps:.2f}x |")
