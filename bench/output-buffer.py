#!/usr/bin/env python3
"""A client that pipelines 2,000 GETs of a 512 KiB value (1,000 MiB of replies) and never
reads, against one node with the default client_output_buffer_max (64 MiB): prints the
node's resident memory before, its peak (VmHWM), and the close the node logged.

Usage: python3 bench/output-buffer.py [target/release/quorate]   (Linux: reads /proc)
"""

import re
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/quorate"
    work = tempfile.mkdtemp(prefix="quorate-output-buffer-")
    ports = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s)
    peer, client = (s.getsockname()[1] for s in ports)
    for s in ports:
        s.close()
    log_path = f"{work}/node.log"
    node = subprocess.Popen(
        [binary, "serve", "--protocol", "raft", "--id", "1", "--peers", f"1=127.0.0.1:{peer}",
         "--client-addr", f"127.0.0.1:{client}", "--data-dir", f"{work}/d"],
        stderr=open(log_path, "w"))
    status = lambda field: int(re.search(
        field + r":\s+(\d+)", open(f"/proc/{node.pid}/status").read()).group(1)) // 1024
    try:
        deadline = time.time() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", client))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        value = b"x" * (512 << 10)
        conn.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(value), value))
        assert conn.recv(100) == b"+OK\r\n"
        time.sleep(0.5)
        print(f"resident before: {status('VmRSS')} MiB")
        greedy = socket.create_connection(("127.0.0.1", client))
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 2000)
        time.sleep(3)
        print(f"resident after: {status('VmRSS')} MiB, peak: {status('VmHWM')} MiB")
        closes = [l for l in open(log_path).read().splitlines() if "client_output_buffer_max" in l]
        print(closes[-1] if closes else "the node did not close the connection")
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=15)


if __name__ == "__main__":
    main()
