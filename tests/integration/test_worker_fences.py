"""``--workers 2``: a replica fenced by one worker is out of service for the other too, and
comes back only once every worker that journaled writes for it has repaired them, a worker's
restart included. Real memcached; the replica comes back warm (restartable memory file), so
an unrepaired replica would answer the old value."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, read_values, wait_until

pytestmark = pytest.mark.integration

FAST = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}
KEYS = [b"wf%d" % i for i in range(40)]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _pid(conn: Conn) -> int:
    return int(conn.request(b"stats\r\n").split(b"STAT pid ")[1].split(b"\r\n")[0])


def _one_per_worker(port: int, workers: int = 2) -> dict[int, Conn]:
    """A client connection to each worker (the kernel spreads connections over them)."""
    by_pid: dict[int, Conn] = {}
    deadline = time.monotonic() + 15  # the second worker may still be starting
    for _ in range(2000):
        if time.monotonic() > deadline:
            break
        c = Conn(port)
        pid = _pid(c)
        if pid in by_pid:
            c.close()
            continue
        by_pid[pid] = c
        if len(by_pid) == workers:
            break
    assert len(by_pid) == workers, "connections never reached both workers"
    return by_pid


class Restartable(Memcached):
    """memcached with a memory file: a graceful stop (SIGUSR1) and a start come back warm."""

    def __init__(self, mem_file: Path) -> None:
        super().__init__(extra=["-e", str(mem_file)])

    def graceful_stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        self.proc.wait(10)
        self.proc = None
        self.stopped_at = time.time()

    def start(self) -> None:
        # memcached 1.6.18 starts cold when its state file's stop time is not in the past.
        time.sleep(max(0.0, getattr(self, "stopped_at", 0.0) + 1.1 - time.time()))
        super().start()


def _fleet(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> tuple[Restartable, Memcached, ProxyProcess]:
    a = Restartable(tmp_path / "a.mem")
    b = memcached_factory()
    kids = ["replica_0", "replica_1"]
    cfg = {
        "pools": {
            "replica_0": {"backends": [a.address], **FAST},
            "replica_1": {"backends": [b.address], **FAST},
        },
        "routes": {
            "get": {"allfastest": {"children": kids, "miss": True}},
            "default": {"allsync": {"children": kids}},
        },
    }
    proxy = proxy_factory(cfg, ("--watch-interval", "0", "--workers", "2"))
    assert wait_until(lambda: len(_children(proxy.proc.pid)) == 2)
    return a, b, proxy


def test_a_write_one_worker_journaled_fences_the_replica_for_the_other(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    a, _b, proxy = _fleet(tmp_path, memcached_factory, proxy_factory)
    try:
        (pid_w, writer), (pid_r, reader) = _one_per_worker(proxy.port).items()
        for k in KEYS:
            assert writer.request(b"set %s 0 0 3\r\nold\r\n" % k) == b"STORED\r\n"
        assert read_values(reader, KEYS) == [b"old"] * len(KEYS)
        a.graceful_stop()
        # Only the writer's worker sees the replica missing: the reader's is idle.
        for k in KEYS:
            assert writer.request(b"set %s 0 0 3\r\nnew\r\n" % k) == b"STORED\r\n"
        a.start()  # back warm: it holds "old" for every key until it is repaired
        direct = Conn(a.port)
        first, last = KEYS[0], KEYS[-1]
        assert direct.request(b"get %s\r\n" % first) == b"VALUE %s 0 3\r\nold\r\nEND\r\n" % first
        deadline = time.monotonic() + 10
        seen_old = 0
        while time.monotonic() < deadline:
            values = read_values(reader, KEYS)
            seen_old += values.count(b"old")
            if direct.request(b"get %s\r\n" % last) == b"VALUE %s 0 3\r\nnew\r\nEND\r\n" % last:
                break  # repaired (by the writer's worker)
        assert seen_old == 0, f"the other worker read {seen_old} old values"
        assert wait_until(lambda: all(
            direct.request(b"get %s\r\n" % k) == b"VALUE %s 0 3\r\nnew\r\nEND\r\n" % k
            for k in KEYS))  # fmt: skip
        # And both workers serve from the repaired replica again: reads stay right.
        assert read_values(reader, KEYS) == [b"new"] * len(KEYS)
        assert read_values(writer, KEYS) == [b"new"] * len(KEYS)
        assert pid_w != pid_r
        direct.close()
    finally:
        a.stop()


def test_a_dead_workers_fences_go_to_its_successor_which_flushes(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    a, _b, proxy = _fleet(tmp_path, memcached_factory, proxy_factory)
    try:
        (pid_w, writer), (_pid_r, reader) = _one_per_worker(proxy.port).items()
        for k in KEYS:
            assert writer.request(b"set %s 0 0 3\r\nold\r\n" % k) == b"STORED\r\n"
        a.graceful_stop()
        for k in KEYS:
            assert writer.request(b"set %s 0 0 3\r\nnew\r\n" % k) == b"STORED\r\n"
        os.kill(pid_w, signal.SIGKILL)  # the worker that journaled them dies
        writer.close()
        assert wait_until(lambda: len(set(_children(proxy.proc.pid)) - {pid_w}) == 2)
        a.start()
        direct = Conn(a.port)
        seen_old = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen_old += read_values(reader, KEYS).count(b"old")
            if direct.request(b"get %s\r\n" % KEYS[0]) == b"END\r\n":
                break  # the successor flushed it
        assert seen_old == 0, f"{seen_old} old values read while the dead worker's keys were lost"
        assert direct.request(b"get %s\r\n" % KEYS[0]) == b"END\r\n"
        assert wait_until(lambda: "flushed before rejoining (its worker died" in proxy.log())
        assert read_values(reader, KEYS) == [b"new"] * len(KEYS)
        direct.close()
    finally:
        a.stop()


def test_fills_across_workers_copy_a_hit_and_never_outlive_a_delete(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    """The write fence the workers share: with no write anywhere, a hit is still copied to the
    replica that lacked it; a delete from one worker racing a read from the other never
    leaves the key on a replica (the fill's add lands in no order with the other worker's
    delete, on its own connection)."""
    a, b = memcached_factory(), memcached_factory()
    kids = ["replica_0", "replica_1"]
    cfg = {
        "pools": {"replica_0": {"backends": [a.address]}, "replica_1": {"backends": [b.address]}},
        "routes": {
            "get": {"allfastest": {"children": kids, "miss": True, "fill_ttl": 300}},
            "default": {"allsync": {"children": kids}},
        },
    }
    proxy = proxy_factory(cfg, ("--watch-interval", "0", "--workers", "2"))
    assert wait_until(lambda: len(_children(proxy.proc.pid)) == 2)
    (_, reader), (_, deleter) = _one_per_worker(proxy.port).items()
    on_a, on_b = Conn(a.port), Conn(b.port)
    assert on_a.request(b"set warm 0 0 1\r\nw\r\n") == b"STORED\r\n"
    assert reader.request(b"get warm\r\n") == b"VALUE warm 0 1\r\nw\r\nEND\r\n"
    assert wait_until(lambda: on_b.request(b"get warm\r\n") == b"VALUE warm 0 1\r\nw\r\nEND\r\n")
    rounds = 300
    deadline = time.monotonic() + 60
    keys = [b"race%d" % i for i in range(rounds)]
    for k in keys:
        if time.monotonic() > deadline:
            break
        assert on_a.request(b"set %s 0 0 1\r\nv\r\n" % k) == b"STORED\r\n"  # only a has it
        # Both requests in flight at once, on the two workers.
        reader.send(b"get %s\r\nmn\r\n" % k)
        deleter.send(b"delete %s\r\nmn\r\n" % k)
        reader.read_until(b"MN\r\n")
        assert deleter.read_until(b"MN\r\n") == b"DELETED\r\nMN\r\n"
    # A fill still on its way lands within a moment; then no replica may hold any key.
    time.sleep(0.5)
    left = [b"b:" + k for k in keys if on_b.request(b"get %s\r\n" % k) != b"END\r\n"]
    left += [b"a:" + k for k in keys if on_a.request(b"get %s\r\n" % k) != b"END\r\n"]
    assert left == [], f"{len(left)} deleted keys came back on a replica"
