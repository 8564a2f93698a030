"""One load generator for every system of bench/compare-real.py: the same closed loop, the same
keys and values, the same clock, whatever the wire protocol.

A *client* is one connection that sends a request, waits for its answer, and sends the next
(a closed loop, as `redis-benchmark -P 1`). Three adapters speak the three wire protocols with
the standard library only, so that the generator costs the same per request for every system:

  * RESP (quorate's nodes and Redis): `SET k v`, `GET k`;
  * etcd's HTTP/JSON gateway (`POST /v3/kv/put`, `POST /v3/kv/range`; a range is
    linearizable unless it asks to be serializable, as etcd's gRPC API);
  * ZooKeeper's own protocol (jute records over TCP): `setData` and `getData` on one znode
    per key, with version -1 (no compare-and-set). ZooKeeper serves reads from the server the
    client is connected to (sequential consistency, not linearizability: there is no `sync`
    before each read), so its reads are cheaper than the others'.

`measure` runs C clients for a fixed time in W worker processes (Python's interpreter lock
would otherwise make the generator the bottleneck sooner) and reports throughput and latency
percentiles. `probe_unavailability` writes continuously from a few clients connected to nodes
that stay up, kills the leader, and reports how long no write issued after the kill was
acknowledged: the time until writes succeed again.
"""

import asyncio
import base64
import json
import multiprocessing
import random
import signal
import struct
import time

CONNECT_TIMEOUT = 2.0


class Resp:
    """A RESP (Redis protocol) connection."""

    def __init__(self, host, port):
        self.addr = (host, port)
        self.reader = self.writer = None

    async def connect(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(*self.addr), CONNECT_TIMEOUT)

    async def call(self, *args):
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.writer.write(b"".join(parts))
        return await self.reply()

    async def reply(self):
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else (await self.reader.readexactly(n + 2))[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [await self.reply() for _ in range(n)]
        return rest

    async def set(self, key, value):
        await self.call("SET", key, value)

    async def get(self, key):
        return await self.call("GET", key)

    async def setup(self, keys):
        pass

    def close(self):
        if self.writer:
            self.writer.close()


class Etcd:
    """An HTTP/1.1 keep-alive connection to etcd's JSON gateway (the v3 API over HTTP)."""

    def __init__(self, host, port):
        self.addr = (host, port)
        self.reader = self.writer = None

    async def connect(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(*self.addr), CONNECT_TIMEOUT)

    async def post(self, path, body):
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
        status = await self.reader.readline()
        if not status:
            raise ConnectionError("etcd closed the connection")
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            payload = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                payload += chunk[:-2]
        else:
            payload = await self.reader.readexactly(length)
        if b" 200 " not in status:
            raise RuntimeError(f"etcd answered {status.decode().strip()}: {payload[:200]!r}")
        return json.loads(payload)

    async def set(self, key, value):
        await self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    async def get(self, key):
        kvs = (await self.post("/v3/kv/range", {"key": b64(key)})).get("kvs", [])
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    async def setup(self, keys):
        pass

    def close(self):
        if self.writer:
            self.writer.close()


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


class ZooKeeper:
    """A ZooKeeper session over its own protocol: length-prefixed jute records.

    Requests are answered in order on a session, so a closed loop needs no matching beyond
    checking the xid. Opcodes and record layouts are those of zookeeper.jute (3.x)."""

    CREATE, GET_DATA, SET_DATA = 1, 4, 5
    NODE_EXISTS = -110
    ROOT = "/quorate-bench"

    def __init__(self, host, port):
        self.addr = (host, port)
        self.reader = self.writer = None
        self.xid = 0

    async def connect(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(*self.addr), CONNECT_TIMEOUT)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
        self.send(struct.pack(">iqiqi16s?", 0, 0, 10000, 0, 16, b"\0" * 16, False))
        answer = await self.frame()
        _version, timeout, session = struct.unpack(">iiq", answer[:16])
        if timeout <= 0 or session == 0:
            raise ConnectionError("ZooKeeper refused the session (the server has no quorum yet)")

    def send(self, payload):
        self.writer.write(struct.pack(">i", len(payload)) + payload)

    async def frame(self):
        (n,) = struct.unpack(">i", await self.reader.readexactly(4))
        return await self.reader.readexactly(n)

    async def request(self, opcode, record):
        self.xid += 1
        self.send(struct.pack(">ii", self.xid, opcode) + record)
        while True:
            answer = await self.frame()
            xid, _zxid, err = struct.unpack(">iqi", answer[:16])
            if xid == self.xid:
                return err, answer[16:]
            # xid -2 answers a ping, -1 is a watch event: neither is ours to wait for.

    async def set(self, key, value):
        err, _ = await self.request(self.SET_DATA, ustring(self.path(key)) + buffer(value)
                                    + struct.pack(">i", -1))
        check(err, "setData", key)

    async def get(self, key):
        err, body = await self.request(self.GET_DATA, ustring(self.path(key)) + b"\0")
        check(err, "getData", key)
        (n,) = struct.unpack(">i", body[:4])
        return body[4:4 + n] if n >= 0 else None

    async def setup(self, keys):
        """Creates the znodes (one per key) that setData and getData need."""
        world_anyone = struct.pack(">ii", 1, 31) + ustring("world") + ustring("anyone")
        for path in [self.ROOT] + [self.path(k) for k in keys]:
            record = ustring(path) + buffer(b"") + world_anyone + struct.pack(">i", 0)
            err, _ = await self.request(self.CREATE, record)
            if err not in (0, self.NODE_EXISTS):
                check(err, "create", path)

    def path(self, key):
        return f"{self.ROOT}/{key}"

    def close(self):
        if self.writer:
            self.writer.close()


def ustring(text):
    data = text.encode()
    return struct.pack(">i", len(data)) + data


def buffer(data):
    data = data if isinstance(data, bytes) else str(data).encode()
    return struct.pack(">i", len(data)) + data


def check(err, what, key):
    if err != 0:
        raise RuntimeError(f"ZooKeeper {what} {key}: error code {err}")


ADAPTERS = {"resp": Resp, "etcd": Etcd, "zookeeper": ZooKeeper}


def keys_of(n):
    return [f"k{i}" for i in range(n)]


async def client_loop(adapter, addr, keys, reads, value, start, stop, latencies, errors):
    """One closed-loop client: until `stop`, a GET with probability `reads`, else a SET;
    latencies (in microseconds) are kept for requests sent after `start`."""
    conn = None
    rng = random.Random()
    while time.monotonic() < stop:
        try:
            if conn is None:
                conn = adapter(*addr)
                await conn.connect()
            key = rng.choice(keys)
            sent = time.monotonic()
            if rng.random() < reads:
                await asyncio.wait_for(conn.get(key), 5)
            else:
                await asyncio.wait_for(conn.set(key, value), 5)
            if sent >= start:
                latencies.append(int((time.monotonic() - sent) * 1e6))
        except (OSError, RuntimeError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            errors.append(f"{type(e).__name__}: {e}")
            if conn:
                conn.close()
            conn = None
            await asyncio.sleep(0.05)
    if conn:
        conn.close()


def worker(kind, addrs, clients, keys, reads, value, start, stop, pipe):
    # Forked from a script whose handlers stop every server: that is the parent's job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    async def run():
        latencies, errors = [], []
        await asyncio.gather(*[
            client_loop(ADAPTERS[kind], addrs[i % len(addrs)], keys, reads, value, start, stop,
                        latencies, errors) for i in range(clients)])
        return latencies, errors
    pipe.send(asyncio.run(run()))
    pipe.close()


def prepare(kind, addr, keys):
    async def run():
        conn = ADAPTERS[kind](*addr)
        await conn.connect()
        await conn.setup(keys)
        for key in keys:  # every key exists before the clock starts: GETs find a value
            await conn.set(key, "v")
        conn.close()
    asyncio.run(asyncio.wait_for(run(), 60))


def measure(kind, addrs, clients, seconds, reads, keys=100, value_size=16, warmup=1.0, workers=2):
    """Runs `clients` closed-loop clients against `addrs` for `warmup` + `seconds` and returns
    {"ops_s", "p50_ms", "p99_ms", "ops", "errors"} over the last `seconds`."""
    names = keys_of(keys)
    prepare(kind, addrs[0], names)
    value = "x" * value_size
    start = time.monotonic() + 0.1 * workers + warmup  # the workers' start-up is not measured
    stop = start + seconds
    ctx = multiprocessing.get_context("fork")
    jobs = []
    for w in range(workers):
        share = clients // workers + (1 if w < clients % workers else 0)
        if share == 0:
            continue
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker, args=(kind, addrs, share, names, reads, value, start,
                                                stop, child), daemon=True)
        proc.start()
        jobs.append((proc, parent))
    latencies, errors = [], []
    for proc, parent in jobs:
        if not parent.poll(seconds + warmup + 30):
            proc.kill()
            raise RuntimeError("a load worker did not finish in time")
        lat, err = parent.recv()
        latencies += lat
        errors += err
        proc.join(5)
    latencies.sort()
    if not latencies:
        raise RuntimeError(f"no request succeeded; first errors: {errors[:3]}")
    return {
        "ops_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50) / 1000,
        "p99_ms": percentile(latencies, 0.99) / 1000,
        "ops": len(latencies),
        "errors": len(errors),
    }


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def probe_unavailability(kind, survivors, kill, before=2.0, limit=30.0, interval=0.01):
    """Starts a write every `interval` seconds (open loop, so that a write stuck on the dead
    leader does not hold back the next one) on connections to `survivors`, the nodes that stay
    up; after `before` seconds calls `kill()`, and returns the seconds from the kill until the
    first write started after it was acknowledged (None if none was within `limit`). A write
    is abandoned, with its connection, after 2 s; a new connection's set-up counts in its
    write's time, as it would for a new client."""
    keys = [f"probe{i}" for i in range(4)]
    prepare(kind, survivors[0], keys)

    async def run():
        idle = {addr: [] for addr in survivors}
        successes, tasks = [], set()

        async def attempt(n):
            addr = survivors[n % len(survivors)]
            sent = time.monotonic()
            conn = idle[addr].pop() if idle[addr] else None
            try:
                if conn is None:
                    conn = ADAPTERS[kind](*addr)
                    await conn.connect()
                await asyncio.wait_for(conn.set(keys[n % len(keys)], f"{sent:.6f}"), 2.0)
                successes.append((sent, time.monotonic()))
                idle[addr].append(conn)
            except (OSError, RuntimeError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                if conn:
                    conn.close()

        def after(killed):
            return [acked for sent, acked in successes if sent >= killed]

        begin, n, killed = time.monotonic(), 0, None
        while True:
            now = time.monotonic()
            if killed is None and now >= begin + before:
                if not successes:
                    break
                killed = now
                kill()
            if killed is not None and (after(killed) or now >= killed + limit):
                break
            if len(tasks) < 256:
                task = asyncio.create_task(attempt(n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(interval)
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conns in idle.values():
            for conn in conns:
                conn.close()
        if killed is None:
            raise RuntimeError("no write succeeded before the crash: the probe cannot measure")
        return min(after(killed)) - killed if after(killed) else None
    return asyncio.run(run())
