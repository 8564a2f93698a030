#!/usr/bin/env python3
"""redis-py over TLS against a real 3-node quorate cluster started with `--tls`.

Usage: redis_py_tls.py QUORATE_BINARY

Runs `quorate cluster --tls DIR --free-ports` (DIR empty, so the cluster writes a development
CA and node certificates first), connects to every node with
`redis.Redis(host, port, ssl=True, ssl_ca_certs=DIR/ca.pem)`, writes through one node and
reads through all, and checks that a client without `ssl=True` is refused with the node's
error. Stops the cluster by its PID on every path. Exit 0 on success.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import redis


def wait_for(pattern, lines, deadline):
    while time.time() < deadline:
        for line in lines():
            if re.search(pattern, line):
                return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {pattern!r}")


def main():
    binary = sys.argv[1]
    data = tempfile.mkdtemp(prefix="quorate-redis-py-tls-")
    certs = os.path.join(data, "certs")
    out_path = os.path.join(data, "cluster.out")
    out = open(out_path, "w")
    cluster = subprocess.Popen(
        [binary, "cluster", "--protocol", "raft", "--nodes", "3", "--free-ports",
         "--data-dir", os.path.join(data, "d"), "--tls", certs],
        stdout=out, stderr=subprocess.STDOUT)
    try:
        lines = lambda: open(out_path).read().splitlines()
        wait_for(r"^leader: node", lines, time.time() + 30)
        manifest = json.load(open(os.path.join(data, "d", "cluster.json")))
        ca = os.path.join(certs, "ca.pem")
        clients = {}
        for node in manifest["nodes"]:
            host, port = node["client_addr"].rsplit(":", 1)
            clients[node["id"]] = redis.Redis(
                host=host, port=int(port), ssl=True, ssl_ca_certs=ca,
                socket_timeout=10)
        assert clients[1].set("tls-key", "tls-value") is True
        for n, client in clients.items():
            got = client.get("tls-key")
            assert got == b"tls-value", f"node {n} answered {got!r}"
        host, port = manifest["nodes"][0]["client_addr"].rsplit(":", 1)
        try:
            redis.Redis(host=host, port=int(port), socket_timeout=5).ping()
            raise SystemExit("a plain-text client was served on the TLS port")
        except redis.exceptions.ResponseError as e:
            assert "accepts TLS connections only" in str(e), e
        except redis.exceptions.ConnectionError as e:
            # redis-py may see the close before it reads the error line.
            print(f"plain-text client refused: {e}")
        print(f"redis-py {redis.__version__} over TLS against a 3-node cluster: ok")
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=15)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
        if cluster.returncode not in (0, -signal.SIGTERM):
            print(open(out_path).read())


if __name__ == "__main__":
    main()
