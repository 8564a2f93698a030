#!/usr/bin/env python3
"""How much one disk gains from concurrent fsyncs: the ceiling of a replicated write.

A 3-node cluster on one disk makes every acknowledged write durable twice (the leader's
record and one follower's, written at the same time), where a single Redis with
`appendfsync always` syncs once. This measures what the disk does with one, two and three
writers, each appending a 100-byte record and calling fdatasync in a loop on a file of its
own, interleaved over several runs, and prints the median rate of each shape and the time
one fsync takes in it.

    python3 bench/fsync-concurrency.py [--dir DIR] [--syncs N] [--runs R]
"""
import argparse
import os
import statistics
import tempfile
import threading
import time


def writer(path, syncs, elapsed):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(syncs):
            os.write(fd, b"x" * 100)
            os.fdatasync(fd)
        elapsed.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)


def rate(directory, writers, syncs):
    """Total fdatasyncs per second with `writers` concurrent writers."""
    elapsed = []
    threads = [
        threading.Thread(
            target=writer, args=(os.path.join(directory, f"fsync-{i}"), syncs, elapsed)
        )
        for i in range(writers)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return writers * syncs / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="where to write (default: a temporary directory on the disk of the current directory)")
    parser.add_argument("--syncs", type=int, default=2000, help="fdatasyncs per writer per run")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir or ".") as directory:
        rates = {k: [] for k in (1, 2, 3)}
        for _ in range(args.runs):
            for writers in rates:
                rates[writers].append(rate(directory, writers, args.syncs))
    print("| writers | fdatasyncs/s (all writers) | per writer | one fsync takes | runs |")
    print("|---|---|---|---|---|")
    for writers, runs in rates.items():
        median = statistics.median(runs)
        each = median / writers
        print(
            f"| {writers} | {median:,.0f} | {each:,.0f} | {1e6 / each:,.0f} µs | "
            + ", ".join(f"{r:,.0f}" for r in runs)
            + " |"
        )


if __name__ == "__main__":
    main()
