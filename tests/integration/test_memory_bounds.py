"""Bounded memory: clients that pipeline reads of large values and never read the replies
cannot grow the proxy past its budgets, other clients keep being served, and the memory is
given back once they leave. RSS is read from /proc (a measurement, not a timing)."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config, proxy_stat, wait_until

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
VALUE = b"v" * 500_000
GETS = 10_000


def _peak_rss_kb(proxy: ProxyProcess) -> int:
    return int(
        next(
            line.split()[1]
            for line in open(f"/proc/{proxy.proc.pid}/status").read().splitlines()
            if line.startswith("VmHWM:")
        )
    )


def _reset_peak(proxy: ProxyProcess) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with open(f"/proc/{proxy.proc.pid}/clear_refs", "w") as f:
        f.write("5")


def _binary_getk(key: bytes) -> bytes:
    return struct.pack(">BBHBBHIIQ", 0x80, 0x0C, len(key), 0, 0, 0, len(key), 0, 0) + key


PIPELINES = {"text": b"get bigkey\r\n" * GETS, "binary": _binary_getk(b"bigkey") * GETS}


def _hostile(port: int, protocol: str = "text") -> socket.socket:
    """A client with a small receive buffer that sends GETS gets of the big key and never
    reads: as much of the pipeline as the proxy takes within a few seconds."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    data = memoryview(PIPELINES[protocol])
    deadline = time.monotonic() + 3.0
    while data and time.monotonic() < deadline:
        try:
            data = data[s.send(data) :]
        except BlockingIOError:
            time.sleep(0.01)
    return s


class _GoodClient(threading.Thread):
    """Another client doing sets and gets throughout, checking every answer."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.rounds = 0
        self.wrong: list[bytes] = []

    def run(self) -> None:
        c = Conn(self.port, timeout=10.0)
        try:
            while not self.stop.is_set() and self.rounds < 100_000:
                v = b"%d" % self.rounds
                got = c.request(b"set good 0 0 %d\r\n%s\r\nget good\r\n" % (len(v), v))
                if got != b"STORED\r\nVALUE good 0 %d\r\n%s\r\nEND\r\n" % (len(v), v):
                    self.wrong.append(got)
                    return
                self.rounds += 1
        finally:
            c.close()


@pytest.mark.parametrize(
    "clients, peak_mib, set_via, protocol",
    [
        (1, 64, "proxy", "text"),
        (4, 256, "proxy", "text"),
        (1, 64, "node", "text"),
        (4, 256, "node", "text"),
        (1, 64, "node", "binary"),
    ],
)
def test_non_reading_clients_stay_within_budget(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    clients: int,
    peak_mib: int,
    set_via: str,
    protocol: str,
) -> None:
    """The issue's figures: 500 KB values, 10,000 pipelined gets per client, the defaults.
    The value is set through the proxy (its size is known to it) or on the node directly
    (the proxy learns it only from the first replies); text gets, or binary GetK."""
    node = memcached_factory()
    proxy = proxy_factory(pool_config(node.address))  # the defaults: nothing raised
    c = Conn(proxy.port if set_via == "proxy" else node.port)
    assert c.request(b"set bigkey 0 0 %d\r\n%s\r\n" % (len(VALUE), VALUE)) == b"STORED\r\n"
    c.close()
    good = _GoodClient(proxy.port)
    good.start()
    assert wait_until(lambda: good.rounds > 100)
    idle_kb = proxy.rss_kb()
    _reset_peak(proxy)
    socks = [_hostile(proxy.port, protocol) for _ in range(clients)]
    try:
        time.sleep(2.0)  # replies on their way land; the proxy holds what it holds
        rounds = good.rounds
        assert wait_until(lambda: good.rounds > rounds + 100)  # still served meanwhile
        peak_kb = _peak_rss_kb(proxy)
    finally:
        for s in socks:
            s.close()
    assert (peak_kb - idle_kb) < peak_mib * 1024, (idle_kb, peak_kb)
    # Gone: the memory comes back (the proxy trims after a large release).
    assert wait_until(lambda: proxy.rss_kb() - idle_kb < 32 * 1024, seconds=10), (
        idle_kb,
        proxy.rss_kb(),
    )
    good.stop.set()
    good.join(15)
    assert not good.wrong
    assert good.rounds > 0


def _exchange(port: int, pipeline: bytes, slow: bool, seconds: float = 60.0) -> bytes:
    """Send ``pipeline`` (ending in ``mn``) while reading the replies, up to ``MN``; a slow
    reader takes small reads with pauses, so the proxy's budget fills and drains many
    times. One thread, non-blocking, bounded in time."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # before connect: the window
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    out = memoryview(pipeline)
    got = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while not got.endswith(b"MN\r\n") and time.monotonic() < deadline:
            want = [s] if out else []
            readable, writable, _ = select.select([s], want, [], 0.5)
            if writable:
                with contextlib.suppress(BlockingIOError):
                    out = out[s.send(out[:65536]) :]
            if readable:
                chunk = s.recv(16384 if slow else 1 << 20)
                if not chunk:
                    break
                got += chunk
                if slow:
                    time.sleep(0.001)
    finally:
        s.close()
    return bytes(got)


def _no_cas(replies: bytes) -> list[bytes]:
    # gets' CAS values are per node and per run: compared without them.
    return [
        line.rsplit(b" ", 1)[0] if line.startswith(b"VALUE big") else line
        for line in replies.split(b"\r\n")
    ]


def test_a_slow_reader_gets_every_reply_in_order(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    """Pauses and resumes of the budget lose, duplicate and reorder nothing, in every kind
    of request: the same pipeline sent to memcached and through the proxy, compared."""
    node = memcached_factory()
    proxy = proxy_factory(pool_config(node.address))
    setup = b"set bigkey 0 0 %d\r\n%s\r\nset small 0 0 2\r\nhi\r\n" % (len(VALUE), VALUE)
    big = b"b" * 70_000
    rounds = []
    for i in range(20):
        rounds.append(b"get bigkey\r\nset n%d 0 0 1 noreply\r\n%d\r\n" % (i, i % 10))
        rounds.append(b"get n%d small\r\nmg bigkey s v\r\nget small\r\n" % i)
        rounds.append(b"set big%d 0 0 %d noreply\r\n%s\r\ngets big%d\r\n" % (i, len(big), big, i))
    pipeline = b"".join(rounds) + b"mn\r\n"
    c = Conn(proxy.port)
    assert c.request(setup) == b"STORED\r\nSTORED\r\n"
    c.close()
    want = _exchange(node.port, pipeline, slow=False)
    got = _exchange(proxy.port, pipeline, slow=True)
    assert want.endswith(b"MN\r\n") and len(want) > 20 * 1_000_000
    assert _no_cas(got) == _no_cas(want)
    assert proxy_stat(proxy.port, "budget_paused") >= 1
    assert "max_client_bytes" in proxy.log()
