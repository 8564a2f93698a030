"""What the benchmark scripts share: free ports, processes started and stopped by PID, and
clusters of quorate, Redis, etcd and ZooKeeper on loopback with their data on disk.

Every process a script starts goes through `spawn`, and `stop_all` stops each by its PID
(SIGTERM, then SIGKILL after 10 s); `stop_on_signals` makes Ctrl-C and SIGTERM do the same.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

PROCS = []
# PIDs a spawned process started itself (a `quorate cluster`'s nodes), with the command line
# that identifies them: checked before `stop_all` kills a survivor, so a reused PID is spared.
CHILD_PIDS = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


_handed_out = set()


def _candidate_range():
    """Ports below the OS's ephemeral range (as quorate_server::ports chooses them): a port
    from that range (what binding port 0 gives) may be taken meanwhile as the source port of
    any outgoing connection, so a server started or restarted on it can fail to bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return 10000, 32767
    if lo > 11000:
        return 10000, lo - 1
    if hi < 64535:
        return hi + 1, 65535
    return 10000, 32767


def free_port():
    """A free loopback port outside the ephemeral range, never the same twice per process."""
    lo, hi = _candidate_range()
    for _ in range(200):
        port = random.randint(lo, hi)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise SystemExit(f"no free port between {lo} and {hi} after 200 tries")


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout}s")


def spawn(name, args, logfile, **kwargs):
    out = open(logfile, "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            **kwargs)
    PROCS.append((name, proc))
    return proc


def stop(procs):
    """SIGTERM to every process of `procs` (pairs of name and Popen), SIGKILL to those still
    running 10 s later."""
    for _, proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.time() + 10
    for _, proc in procs:
        while proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    for pair in procs:
        if pair in PROCS:
            PROCS.remove(pair)


def stop_all():
    stop(list(reversed(PROCS)))
    for pid, marker in CHILD_PIDS:
        if alive_with(pid, marker):
            os.kill(pid, signal.SIGKILL)
    CHILD_PIDS.clear()


def alive_with(pid, marker):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def stop_on_signals():
    signal.signal(signal.SIGINT, lambda *_: (stop_all(), sys.exit(130)))
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(143)))


def redis_info(port, timeout=5):
    """`INFO replication` of the RESP server on `port`, as a dict (empty if it does not answer).
    Spoken with the standard library, so that the smoke test needs no redis-cli."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < resp_bulk_end(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return {}
    if not data.startswith(b"$"):
        return {}
    text = data.split(b"\r\n", 1)[1].decode(errors="replace")
    return dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line)


def resp_bulk_end(data):
    """The length of a complete RESP bulk string that `data` begins (an error or other reply
    is complete at its first line)."""
    head, _, _ = data.partition(b"\r\n")
    if not head.startswith(b"$"):
        return len(head) + 2
    return len(head) + 2 + max(int(head[1:]), 0) + 2


def start_quorate(work, quorate, protocol="raft", nodes=3, name="quorate"):
    """Starts `quorate cluster` and returns its nodes (id, client port, pid) once every node
    answers and, for a protocol with a leader, one is elected: {"nodes", "leader", "proc"},
    where "leader" is the leader's node id (None for leaderless protocols)."""
    data = os.path.join(work, name)
    proc = spawn(name, [quorate, "cluster", "--protocol", protocol, "--nodes", str(nodes),
                        "--free-ports", "--data-dir", data], os.path.join(work, f"{name}.out"))
    manifest = os.path.join(data, "cluster.json")
    deadline = time.time() + 30
    while True:
        try:
            described = json.load(open(manifest))
            break
        except (OSError, ValueError):
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"quorate cluster ({protocol}) did not start: see {work}/{name}.out")
            time.sleep(0.1)
    members = [{"id": n["id"], "port": int(n["client_addr"].rsplit(":", 1)[1]), "pid": n["pid"]}
               for n in described["nodes"]]
    CHILD_PIDS.extend((n["pid"], data) for n in members)
    deadline = time.time() + 30
    while time.time() < deadline:
        infos = [redis_info(n["port"]) for n in members]
        if infos and all("role" in i for i in infos):
            if all(i["role"] == "replica" for i in infos):  # leaderless: every node serves
                return {"nodes": members, "leader": None, "proc": proc}
            leaders = {i.get("leader_id", "") for i in infos}
            if len(leaders) == 1 and leaders.pop().isdigit():
                leader = int(infos[0]["leader_id"])
                return {"nodes": members, "leader": leader, "proc": proc}
        time.sleep(0.2)
    raise SystemExit(f"no quorate {protocol} leader after 30 s: see {data}/n*.log")


def start_redis(work):
    port = free_port()
    data = os.path.join(work, "redis")
    os.makedirs(data)
    spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data,
                    "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
          os.path.join(work, "redis.out"))
    wait_port(port)
    return port


def start_etcd(work, heartbeat_ms=250, election_ms=2500):
    """A 3-node etcd cluster; returns its members [{"name", "port", "proc"}] once one leads."""
    client = [free_port() for _ in range(3)]
    peer = [free_port() for _ in range(3)]
    cluster = ",".join(f"e{i}=http://127.0.0.1:{peer[i]}" for i in range(3))
    members = []
    for i in range(3):
        proc = spawn(f"etcd{i}", [
            "etcd", "--name", f"e{i}", "--data-dir", os.path.join(work, f"etcd{i}"),
            "--listen-client-urls", f"http://127.0.0.1:{client[i]}",
            "--advertise-client-urls", f"http://127.0.0.1:{client[i]}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer[i]}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "quorate-bench", "--logger", "zap",
            "--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms),
        ], os.path.join(work, f"etcd{i}.out"))
        members.append({"name": f"e{i}", "port": client[i], "proc": proc})
    for port in client:
        wait_port(port)
    if etcd_leader(members, timeout=30) is None:
        raise SystemExit("no etcd leader after 30 s")
    return members


def etcd_leader(members, timeout=10):
    """The member that leads (by `etcdctl endpoint status`), or None after `timeout` s."""
    endpoints = ",".join(f"http://127.0.0.1:{m['port']}" for m in members
                         if m["proc"].poll() is None)
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["etcdctl", "--endpoints", endpoints, "endpoint", "status", "-w", "json"],
                             capture_output=True, text=True, timeout=10,
                             env={**os.environ, "ETCDCTL_API": "3"})
        try:
            for status in json.loads(out.stdout):
                if status["Status"]["leader"] == status["Status"]["header"]["member_id"]:
                    port = int(status["Endpoint"].rsplit(":", 1)[1])
                    return next(m for m in members if m["port"] == port)
        except (ValueError, KeyError, TypeError, StopIteration):
            pass
        time.sleep(0.3)
    return None


ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"


def start_zookeeper(work, tick_ms=2000):
    """A 3-server ZooKeeper ensemble (Debian's `zookeeper` package, run as
    `java QuorumPeerMain zoo.cfg`, one JVM per server); returns its members
    [{"id", "port", "proc"}] once one leads. ZooKeeper fsyncs its transaction log before
    acknowledging (forceSync=yes is the default; written out here to say so)."""
    ids = [1, 2, 3]
    client = {i: free_port() for i in ids}
    quorum = {i: (free_port(), free_port()) for i in ids}
    members = []
    for i in ids:
        data = os.path.join(work, f"zk{i}")
        os.makedirs(data)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{i}\n")
        config = os.path.join(data, "zoo.cfg")
        with open(config, "w") as f:
            f.write(f"tickTime={tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
                    f"clientPort={client[i]}\nclientPortAddress=127.0.0.1\nforceSync=yes\n"
                    "maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\n")
            for j in ids:
                f.write(f"server.{j}=127.0.0.1:{quorum[j][0]}:{quorum[j][1]}\n")
        proc = spawn(f"zk{i}", ["java", "-Xmx512m", "-Dzookeeper.log.dir=" + data, "-cp",
                                ZOOKEEPER_JAR, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                                config], os.path.join(work, f"zk{i}.out"))
        members.append({"id": i, "port": client[i], "proc": proc})
    if zookeeper_leader(members, timeout=60) is None:
        raise SystemExit(f"no ZooKeeper leader after 60 s: see {work}/zk*.out")
    return members


def zookeeper_leader(members, timeout=10):
    """The member whose `srvr` four-letter word says `Mode: leader`, or None after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            if m["proc"].poll() is None and "Mode: leader" in four_letter(m["port"], b"srvr"):
                return m
        time.sleep(0.3)
    return None


def four_letter(port, word):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(word)
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""
