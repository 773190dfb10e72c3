"""A get line of any length: answered as memcached answers it, streamed, with the proxy's
memory bounded by the client's budget, not by the line or its reply (RSS from /proc)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration

KEYS = 20_000
VALUE = b"x" * 2048


def _rss_kb(pid: int, field: str = "VmRSS:") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise AssertionError(field)


def _slow_get(port: int, line: bytes, want: int, seconds: float = 60.0) -> bytes:
    """Send ``line`` and read its reply slowly (small reads, pauses), up to ``want`` bytes."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before connect: the window
    s.connect(("127.0.0.1", port))
    s.sendall(line)
    got = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while len(got) < want and time.monotonic() < deadline:
            if select.select([s], [], [], 1.0)[0]:
                chunk = s.recv(32768)
                if not chunk:
                    break
                got += chunk
                time.sleep(0.0005)
    finally:
        s.close()
    return bytes(got)


@pytest.mark.parametrize("pieces", [1, 16])
def test_a_get_of_20000_keys_is_streamed_within_the_budget(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    pieces: int,
) -> None:
    """The issue's figures: 20,000 keys of 2 KiB values (about 40 MiB of reply) on one get
    line, read slowly: every value in order, one END, RSS growth under the per-client budget
    (4 MiB) plus 16 MiB. ``pieces``: the line sent whole, or in 16 writes (streamed parts)."""
    nodes = [memcached_factory(memory_mb=128) for _ in range(3)]
    proxy = proxy_factory(pool_config(*(n.address for n in nodes)))
    keys = [b"key%05d" % i for i in range(KEYS)]
    c = Conn(proxy.port)
    for i in range(0, KEYS, 500):
        c.send(
            b"".join(
                b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(VALUE), VALUE)
                for k in keys[i : i + 500]
            )
        )
    assert c.request(b"") == b""  # every noreply set done (request() ends with mn)
    c.close()
    want = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(VALUE), VALUE) for k in keys) + b"END\r\n"
    line = b"get " + b" ".join(keys) + b"\r\n"
    before = proxy.rss_kb()
    with open(f"/proc/{proxy.proc.pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM from now on
    s = socket.socket()
    if pieces == 1:
        got = _slow_get(proxy.port, line, len(want))
    else:
        s.close()
        step = len(line) // pieces + 1
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.connect(("127.0.0.1", proxy.port))
        for i in range(0, len(line), step):
            s.sendall(line[i : i + step])
            time.sleep(0.02)
        got = bytearray()
        deadline = time.monotonic() + 60
        while len(got) < len(want) and time.monotonic() < deadline:
            if select.select([s], [], [], 1.0)[0]:
                chunk = s.recv(32768)
                if not chunk:
                    break
                got += chunk
        got = bytes(got)
    s.close()
    peak = _rss_kb(proxy.proc.pid, "VmHWM:")
    assert got == want
    assert (peak - before) < (4 + 16) * 1024, (before, peak)
