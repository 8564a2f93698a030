#!/usr/bin/env python3
"""redis-py with its defaults against a real 3-node quorate cluster, across a leader kill.

Usage: redis_py_defaults.py QUORATE_BINARY

Starts `quorate cluster --free-ports` (its own data directory), talks to every node with
`redis.Redis(host, port)` and nothing else configured (redis-py 8 opens with HELLO 3 and
CLIENT SETINFO), runs `pipeline()` transactions and concurrent WATCH/MULTI/EXEC retry loops,
kills the leader with SIGKILL, and checks that acknowledged writes survive and the new leader
serves, transactions and WATCH included. Watches too: a `pubsub()` keyspace-notification
subscriber on a follower sees writes before and after the kill, and the change feed
(`XREAD ... STREAMS __changes__`) resumes at another node from the last id seen, missing and
repeating nothing. redis-py's `Lock` (SET NX PX, and its release/extend/reacquire scripts by
EVALSHA) keeps mutual exclusion for threads on every node, before and after the kill, and a
lock held across the kill stays held. Leases after the kill: `LEASE GRANT`, keys attached with
`SET ... LEASE`, `LEASE KEEPALIVE/TTL/KEYS/REVOKE` by `execute_command`, and an ephemeral key
(`SET ... EPHEMERAL`) that goes when its connection closes. Stops the cluster by its PID on
every path. Exit 0 on success.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import redis


def wait_for(pattern, lines, deadline):
    while time.time() < deadline:
        for line in lines():
            match = re.search(pattern, line)
            if match:
                return match
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {pattern!r}")


def watch_incr(r, key, times):
    """The WATCH/MULTI/EXEC retry loop from redis-py's documentation: read, then write only if
    nobody changed the key in between, else retry. Returns how many retries it took."""
    retries = 0
    with r.pipeline() as pipe:
        for _ in range(times):
            while True:
                try:
                    pipe.watch(key)
                    value = int(pipe.get(key) or 0)
                    pipe.multi()
                    pipe.set(key, value + 1)
                    pipe.execute()
                    break
                except redis.WatchError:
                    retries += 1
    return retries


def transactions(clients, tag):
    """pipeline() (MULTI/EXEC by default) on every node, and concurrent WATCH retry loops
    through different nodes that must lose no increment."""
    for n, r in clients.items():
        pipe = r.pipeline()  # transaction=True
        pipe.set(f"t{tag}{n}", 1).incrby(f"t{tag}{n}", 41).get(f"t{tag}{n}")
        pipe.mset({f"u{tag}{n}": "a"}).mget(f"u{tag}{n}", "never-written")
        assert pipe.execute() == [True, 42, b"42", True, [b"a", None]]
        # A command redis-py sends inside MULTI that fails at EXEC answers its error in
        # place; the others still apply (Redis's semantics).
        pipe = r.pipeline()
        pipe.incr(f"u{tag}{n}").set(f"v{tag}{n}", "x")
        results = pipe.execute(raise_on_error=False)
        assert isinstance(results[0], redis.ResponseError) and results[1] is True, results
    key = f"counter{tag}"
    threads, retries = [], []
    per_thread = 15
    for r in clients.values():
        t = threading.Thread(target=lambda r=r: retries.append(watch_incr(r, key, per_thread)))
        threads.append(t)
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a WATCH retry loop did not finish"
    total = per_thread * len(clients)
    value = int(next(iter(clients.values())).get(key))
    assert value == total, f"{value} != {total}: an increment was lost or applied twice"
    print(f"pipeline() and WATCH retry loops on {len(clients)} nodes: {total} increments, "
          f"{sum(retries)} retries")


def locks(clients, tag):
    """redis-py's `Lock` as applications use it: SET NX PX to acquire, its Lua scripts
    (EVALSHA, SCRIPT LOAD on NOSCRIPT) to release, extend and reacquire. Mutual exclusion is
    checked by a read-modify-write that only the lock protects, from threads on every node."""
    nodes = list(clients.values())
    first, second = nodes[0], nodes[-1]
    lock = first.lock(f"lock{tag}", timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.locked() and lock.owned()
    other = second.lock(f"lock{tag}", timeout=5)
    assert not other.acquire(blocking=False), "two holders at once"
    left = first.pttl(f"lock{tag}")
    assert lock.extend(10)  # Adds 10 s to the time left.
    assert first.pttl(f"lock{tag}") > left + 5000
    assert lock.reacquire()  # Back to the lock's 5 s.
    assert first.pttl(f"lock{tag}") <= 5000
    assert lock.extend(3, replace_ttl=True)
    assert first.pttl(f"lock{tag}") <= 3000
    try:
        other.release()
        raise AssertionError("released a lock held by another token")
    except redis.exceptions.LockError:
        pass
    lock.release()
    assert not lock.locked()
    assert other.acquire(blocking=False)
    other.release()
    # A lease that runs out frees the lock; its holder can no longer extend it.
    short = first.lock(f"lease{tag}", timeout=0.2)
    assert short.acquire(blocking=False)
    time.sleep(0.6)
    assert second.lock(f"lease{tag}", timeout=5).acquire(blocking=False)
    try:
        short.extend(5)
        raise AssertionError("extended a lock whose lease ran out")
    except redis.exceptions.LockNotOwnedError:
        pass
    second.delete(f"lease{tag}")

    counter, rounds, errors = f"lockcount{tag}", 8, []

    def worker(r):
        try:
            for _ in range(rounds):
                with r.lock(f"mutex{tag}", timeout=10, blocking_timeout=30):
                    value = int(r.get(counter) or 0)
                    time.sleep(0.005)
                    r.set(counter, value + 1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(r,)) for r in nodes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = int(first.get(counter))
    assert total == rounds * len(threads), f"{total} increments under the lock, not {rounds * len(threads)}"
    print(f"Lock on {len(nodes)} nodes: acquire/extend/reacquire/release, a lease running out, "
          f"{total} increments under the lock, none lost: ok")


def next_event(sub, key, deadline_s=10):
    """The next keyspace event of `key` on the pubsub `sub`, as (channel, event)."""
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        message = sub.get_message(timeout=0.5)
        if message and message["type"] == "pmessage":
            if message["channel"] == f"__keyspace@0__:{key}".encode():
                return message["data"]
    raise SystemExit(f"no keyspace event for {key!r} within {deadline_s} s")


def feed(r, after):
    """The change feed after id `after` as [(id, {field: value})], RESP2 or RESP3 shaped."""
    answer = r.xread({"__changes__": after}, block=2000)
    if not answer:
        return []
    streams = answer.items() if isinstance(answer, dict) else answer
    entries = []
    for name, lists in streams:
        assert name == b"__changes__", name
        # RESP3's parser wraps each stream's entries in one more list.
        for entry in (lists[0] if lists and isinstance(lists[0], list) else lists):
            entries.append((entry[0].decode(), entry[1]))
    return entries


def leases(clients, host_port):
    """etcd-style leases and a ZooKeeper-style ephemeral key, through execute_command."""
    nodes = list(clients.items())
    (a, ra), (b, rb) = nodes[0], nodes[-1]
    lease = ra.execute_command("LEASE", "GRANT", 30)
    assert isinstance(lease, int) and lease > 0, lease
    assert ra.execute_command("SET", "svc1", "up", "LEASE", lease)
    assert rb.execute_command("SET", "svc2", "up", "LEASE", lease)
    assert sorted(rb.execute_command("LEASE", "KEYS", lease)) == [b"svc1", b"svc2"]
    assert 25 <= ra.execute_command("LEASE", "TTL", lease) <= 30
    assert 25 <= rb.ttl("svc2") <= 30, "a leased key's TTL is its lease's"
    assert ra.execute_command("LEASE", "KEEPALIVE", lease) == 30
    assert rb.execute_command("LEASE", "REVOKE", lease) == 2
    assert ra.get("svc1") is None and ra.get("svc2") is None
    assert ra.execute_command("LEASE", "TTL", lease) == -2
    try:
        ra.execute_command("SET", "svc3", "up", "LEASE", lease)
        raise SystemExit("SET ... LEASE on a revoked lease was accepted")
    except redis.exceptions.ResponseError as e:
        assert "not found" in str(e), e
    assert ra.get("svc3") is None
    # An ephemeral key lives as long as its connection (here: one dedicated connection).
    host, port = host_port
    session = redis.Redis(host=host, port=port, single_connection_client=True)
    assert session.execute_command("CLIENT", "LEASE") is None
    assert session.execute_command("SET", "member", "me", "EPHEMERAL")
    held = session.execute_command("CLIENT", "LEASE")
    assert rb.execute_command("LEASE", "KEYS", held) == [b"member"]
    session.close()
    deadline = time.time() + 5  # Well within the 10 s session timeout: revoked at the close.
    while ra.get("member") is not None:
        assert time.time() < deadline, "the ephemeral key outlived its connection"
        time.sleep(0.05)


def main():
    binary = sys.argv[1]
    data = tempfile.mkdtemp(prefix="quorate-redis-py-")
    out_path = os.path.join(data, "cluster.out")
    out = open(out_path, "w")
    cluster = subprocess.Popen(
        [binary, "cluster", "--protocol", "raft", "--nodes", "3", "--free-ports",
         "--data-dir", os.path.join(data, "d")],
        stdout=out, stderr=subprocess.STDOUT)
    try:
        lines = lambda: open(out_path).read().splitlines()
        wait_for(r"^leader: node", lines, time.time() + 30)
        manifest = json.load(open(os.path.join(data, "d", "cluster.json")))
        nodes = {n["id"]: n for n in manifest["nodes"]}
        clients = {}
        for n, node in nodes.items():
            host, port = node["client_addr"].rsplit(":", 1)
            clients[n] = redis.Redis(host=host, port=int(port))
        # With its defaults redis-py 8 asks for RESP3 and falls back, with a warning, to
        # RESP2 when HELLO is refused: check that it did not need to.
        connection = clients[1].connection_pool.get_connection()
        speaks = connection.protocol
        clients[1].connection_pool.release(connection)
        print(f"redis-py {redis.__version__}: RESP{speaks}")
        if int(redis.__version__.split(".")[0]) >= 8:
            assert speaks == 3, f"redis-py fell back to RESP{speaks}" 
        # Every node takes every command (followers forward).
        for n, r in clients.items():
            assert r.ping()
            assert r.set(f"k{n}", f"v{n}")
            assert r.get(f"k{n}") == f"v{n}".encode()
            assert r.get("never-written") is None
            assert r.incr(f"n{n}") == 1 and r.incrby(f"n{n}", 41) == 42
            assert r.append(f"k{n}", "!") == len(f"v{n}!")
            assert r.exists(f"k{n}", "never-written") == 1
            pipe = r.pipeline(transaction=False)
            for i in range(20):
                pipe.set(f"p{n}-{i}", i)
            pipe.get(f"p{n}-19")
            assert pipe.execute()[-1] == b"19"
            r.client_setname(f"app{n}")
            assert r.client_getname() == f"app{n}"
        transactions(clients, "a")
        locks(clients, "a")
        info = clients[1].info("replication")
        leader = int(info["leader_id"])
        # A lock taken before the kill is still held, and releasable, after it.
        holder = next(n for n in clients if n != leader)
        held = clients[holder].lock("held-across-the-kill", timeout=60)
        assert held.acquire(blocking=False)
        # Keyspace notifications on a follower, as redis-py users turn them on.
        watcher_node = next(n for n in clients if n != leader)
        feeder_node = next(n for n in clients if n not in (leader, watcher_node))
        watcher = clients[watcher_node]
        assert watcher.config_set("notify-keyspace-events", "KEA")
        flags = watcher.config_get("notify-keyspace-events")
        assert list(flags.values()) in (["AKE"], [b"AKE"]), flags
        sub = watcher.pubsub()
        sub.psubscribe("__keyspace@0__:*")
        clients[leader].set("watched", "1")
        assert next_event(sub, "watched") == b"set"
        clients[feeder_node].delete("watched")
        assert next_event(sub, "watched") == b"del"
        # The change feed: read everything so far at the watcher's node, remember the last id.
        seen = feed(watcher, "0")
        assert seen, "the feed is empty"
        assert seen[-1][1][b"key"] == b"watched" and seen[-1][1][b"event"] == b"del", seen[-1]
        last_id = seen[-1][0]
        print(f"pubsub keyspace events and the change feed up to {last_id}: ok")
        pid = nodes[leader]["pid"]
        os.kill(pid, signal.SIGKILL)
        print(f"killed the leader, node {leader} (pid {pid})")
        survivor = next(r for n, r in clients.items() if n != leader)
        deadline = time.time() + 20
        while True:
            try:
                survivor.set("after", "kill")
                break
            except redis.exceptions.RedisError as e:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        for n in clients:
            if n != leader:
                assert survivor.get(f"k{n}") == f"v{n}!".encode()
                assert survivor.get(f"n{n}") == b"42"
        assert survivor.get("after") == b"kill"
        assert held.owned() and not survivor.lock("held-across-the-kill").acquire(blocking=False)
        # The subscriber on a surviving follower keeps getting events after the kill.
        clients[feeder_node].set("watched", "2")
        assert next_event(sub, "watched") == b"set"
        sub.close()
        # Resume the feed at the other survivor from the last id seen before the kill: exactly
        # the changes after it, in commit order, none missed, none repeated.
        # A follower's feed holds a write once that follower applies it, which may be after
        # the write was acknowledged: read on until it arrives.
        resumed, deadline = [], time.time() + 10
        while not resumed or resumed[-1][1][b"key"] != b"watched":
            assert time.time() < deadline, resumed
            resumed += feed(clients[feeder_node], resumed[-1][0] if resumed else last_id)
        events = [(e[1][b"key"], e[1][b"event"]) for e in resumed]
        # A SET retried after the kill may have taken effect twice: both are changes.
        assert events[-1] == (b"watched", b"set") and events[0] == (b"after", b"set"), events
        assert set(events[:-1]) == {(b"after", b"set")}, events
        ids = [tuple(map(int, e[0].split("-"))) for e in resumed]
        assert ids == sorted(set(ids)) and ids[0] > tuple(map(int, last_id.split("-"))), ids
        print(f"pubsub after the leader kill, the feed resumed at node {feeder_node}: ok")
        held.release()
        print("a Lock held across the leader kill stayed held, then released: ok")
        # Listing after the kill: scan_iter follows SCAN's cursor to 0 (each key once),
        # KEYS and DBSIZE read the new leader's state.
        pipelined = {f"p{n}-{i}".encode() for n in clients for i in range(20)}
        scanned = list(survivor.scan_iter(match="p*", count=7))
        assert len(scanned) == len(pipelined) and set(scanned) == pipelined, scanned
        assert sorted(survivor.keys("k*")) == sorted(f"k{n}".encode() for n in clients)
        # p*, k*, n*, after, t/u/v*, countera, watched, lockcounta
        assert survivor.dbsize() == 3 * 20 + 3 + 3 + 1 + 3 * 3 + 1 + 1 + 1
        assert survivor.mget("after", "never-written") == [b"kill", None]
        assert int(survivor.get("countera")) == 45
        survivors = {n: r for n, r in clients.items() if n != leader}
        transactions(survivors, "b")
        locks(survivors, "b")
        follower = next(n for n in survivors if survivors[n].info("replication")["role"] != "leader")
        host, port = nodes[follower]["client_addr"].rsplit(":", 1)
        leases(survivors, (host, int(port)))
        print("leases and an ephemeral key after the leader kill: ok")
        print("redis-py defaults: every command, transactions, the leader kill, "
              "scan_iter/keys/dbsize: ok")
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()


if __name__ == "__main__":
    main()
