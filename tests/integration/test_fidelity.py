"""The same bytes to one memcached and through the proxy over three memcached nodes: the
replies must be identical byte for byte (issue 17). Covered here: HTTP request lines (closed
unanswered, by memcached's rule), pipelines that mix bad requests with good ones, and the
admin commands whose replies do not depend on how many nodes hold the data (errors, ``OK``,
``RESET``, the sizes switches, a one-prefix ``stats detail dump``, ``stats cachedump``).

Where the reply does depend on it (``stats``, ``stats slabs``...), the fleet's merged reply is
checked against the nodes' own in tests/integration/test_admin_fleet.py; the README lists
every difference ("What the proxy does, and where it differs from memcached").
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration

LONG = b"x" * 251

# Each line alone on a fresh connection, then `mn`: memcached closes on some (nothing sent,
# the `mn` never answered), answers the others.
HTTP_CASES = [
    b"GET / HTTP/1.0\r\n",
    b"PUT /x HTTP/1.1\r\n",
    b"DELETE HTTP/1.1\r\n",
    b"HTTP/1.0\r\n",
    b"ver HTTP/1.0\r\n",
    b"foo HTTP/\r\n",
    b"foo " + b"a " * 21 + b"HTTP/1.1 b c\r\n",
    b"GET / HTTP/1.0\nget a\r\n",
    b"set a 0 0 1\r\n1\r\nget a\r\nGET / HTTP/1.0\r\nget a\r\n",  # earlier replies written
    b"get / HTTP/1.0\r\n",  # a get of two keys
    b"gxx / HTTP/1.0\r\n",
    b"G HTTP/1.0\r\n",
    b"mz HTTP/1.0\r\n",
    b"lru_crawler HTTP/1.1\r\n",
    b"foo HTTP/1.1 x\r\n",
    b"foo http/1.1\r\n",
    b"foo " + b"a " * 20 + b"HTTP/1.1 b c\r\n",
    b"quit HTTP/1.0\r\n",
    b"flush_all HTTP/1.0\r\n",
    b"verbosity HTTP/1.0\r\n",
]

# Pipelines, each sent in one write: bad requests between good ones, keys on every node.
PIPELINES: list[tuple[str, bytes]] = [
    (
        "too-long keys in storage commands",
        b"set a 0 0 1\r\n1\r\nset " + LONG + b" 0 0 5\r\nhello\r\nset b 0 0 1\r\n2\r\n"
        b"add " + LONG + b" 0 0 1\r\nx\r\ncas " + LONG + b" 0 0 1 1\r\nx\r\n"
        b"append " + LONG + b" 0 0 1\r\nx\r\nms " + LONG + b" 1\r\nx\r\nget a b c\r\n",
    ),
    (
        "too-long keys elsewhere",
        b"incr " + LONG + b" 1\r\ndelete " + LONG + b"\r\ntouch " + LONG + b" 10\r\n"
        b"mg " + LONG + b" v\r\nget a\r\n",
    ),
    # First on its connection: memcached 1.6.18 drops the error replies pipelined before a
    # get whose later key is too long (a README difference); the proxy answers each.
    ("a too-long key after the first in a get", b"gat 10 a " + LONG + b"\r\nget a\r\n"),
    (
        "bad lengths",
        b"set c 0 0 abc\r\nhello\r\nset d 0 0 -1\r\nset e 0 0 1x\r\nx\r\n"
        b"set f 0 0 3\r\nabcdef\r\nget c d e f a\r\n"
        b"ms h abc\r\nhi\r\nms i 2\r\nhiXX\r\nmg a v\r\n",
    ),
    (
        "too large, then good",
        b"set big 0 0 2000000\r\n" + b"v" * 2000000 + b"\r\nset j 0 0 2\r\nok\r\nget big j\r\n",
    ),
    (
        "unknown commands",
        b"bogus\r\nset k 0 0 1\r\n3\r\nGET k\r\n\r\nget k a b\r\nslabs\r\nget\r\nx\r\nmn\r\n",
    ),
    (
        "noreply among errors",
        b"set l 0 0 1 noreply\r\n4\r\nset " + LONG + b" 0 0 1 noreply\r\nx\r\n"
        b"set m 0 0 z noreply\r\nincr l 1 noreply\r\nbogus noreply\r\nget l m\r\n",
    ),
]

# A pipeline that ends the connection part-way: everything before `quit` (or the HTTP line)
# is answered, nothing after it is read.
CLOSING: list[tuple[str, bytes]] = [
    (
        "quit mid-pipeline",
        b"set q 0 0 1\r\n1\r\nbogus\r\nget q a b\r\nset " + LONG + b" 0 0 1\r\nx\r\n"
        b"quit\r\nset q 0 0 1\r\n2\r\nget q\r\n",
    ),
    ("http mid-pipeline", b"set r 0 0 1\r\n1\r\nget r\r\nPOST /x HTTP/1.1\r\nset r 0 0 1\r\n2\r\n"),
]


def _open(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` then ``mn`` on a fresh connection; the bytes back (up to ``MN``) and
    whether the server closed the connection instead of answering ``mn``."""
    with _open(port) as s:
        s.sendall(data + b"mn\r\n")
        want = data.count(b"mn\r\n") + 1
        buf = b""
        deadline = time.monotonic() + timeout
        while not (buf.endswith(b"MN\r\n") and buf.count(b"MN\r\n") >= want):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return buf, True
            buf += chunk
        return buf[:-4], False


@pytest.fixture
def pair(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> tuple[Memcached, list[Memcached], ProxyProcess]:
    """One memcached alone, and a proxy over three others."""
    direct = memcached_factory()
    nodes = [memcached_factory() for _ in range(3)]
    return direct, nodes, proxy_factory(pool_config(*(n.address for n in nodes)))


def _mismatches(cases: list[tuple[str, bytes]], direct: int, proxy: int) -> list[str]:
    out = []
    for name, data in cases:
        want, got = exchange(direct, data), exchange(proxy, data)
        if want != got:
            out.append(f"{name}:\n  memcached: {want!r:.300}\n  proxy:     {got!r:.300}")
    return out


def test_http_lines_close_as_memcached_closes(
    pair: tuple[Memcached, list[Memcached], ProxyProcess],
) -> None:
    direct, _nodes, proxy = pair
    cases = [(repr(c[:40]), c) for c in HTTP_CASES]
    assert not (problems := _mismatches(cases, direct.port, proxy.port)), "\n".join(problems)
    closes = sum(exchange(direct.port, c)[1] for c in HTTP_CASES if not c.startswith(b"quit"))
    assert closes >= 8  # the harness does see memcached hang up
    c = Conn(proxy.port)
    stats = c.request(b"stats proxy\r\n")
    c.close()
    # Each HTTP case was sent once to the proxy; each hang-up is counted.
    assert b"STAT http_closed %d\r\n" % closes in stats, stats[-400:]


def test_pipelines_mixing_bad_and_good_requests(
    pair: tuple[Memcached, list[Memcached], ProxyProcess],
) -> None:
    direct, nodes, proxy = pair
    problems = _mismatches(PIPELINES + CLOSING, direct.port, proxy.port)
    assert not problems, "\n".join(problems)
    # The keys did spread over the nodes: the comparison covers merging, not one backend.
    holding = 0
    for n in nodes:
        got, _ = exchange(n.port, b"get a b j k l q r\r\n")
        holding += got.count(b"VALUE") > 0
    assert holding >= 2


# Admin commands whose reply is the same whatever the number of nodes.
ADMIN_SAME = [
    b"stats detail\r\n",
    b"stats detail xx\r\n",
    b"stats detail on\r\n",
    b"stats detail off\r\n",
    b"stats detail on extra\r\n",
    b"stats cachedump 1\r\n",
    b"stats cachedump x y\r\n",
    b"stats cachedump 300 1\r\n",
    b"stats bogus\r\n",
    b"stats reset\r\n",
    b"stats sizes\r\n",
    b"stats sizes_enable\r\nstats sizes_enable\r\n",
    b"stats sizes\r\n",
    b"stats sizes_disable\r\n",
    b"cache_memlimit 1\r\n",
    b"cache_memlimit x\r\n",
    b"cache_memlimit\r\n",
    b"cache_memlimit 1 2 3\r\n",
    b"cache_memlimit 2000000000\r\n",
    b"cache_memlimit 100\r\ncache_memlimit 64 noreply\r\ncache_memlimit noreply\r\n",
    b"cache_memlimit 64 extra\r\n",
    b"verbosity 1\r\nverbosity 0 noreply\r\nverbosity\r\n",
    b"cache_memlimit 65\r\n",
]


def test_admin_commands_answer_as_memcached_answers(
    pair: tuple[Memcached, list[Memcached], ProxyProcess],
) -> None:
    direct, nodes, proxy = pair
    cases = [(c.decode().strip(), c) for c in ADMIN_SAME]
    # One prefix: its merged counts are the one memcached's, byte for byte.
    keys = [b"p:%d" % i for i in range(12)]
    setup = b"stats detail on\r\n" + b"".join(b"set %s 0 0 1\r\n1\r\n" % k for k in keys)
    reads = b"get " + b" ".join(keys[:8]) + b" p:none\r\ndelete p:1\r\n"
    cases.append(("stats detail dump", setup + reads + b"stats detail dump\r\n"))
    problems = _mismatches(cases, direct.port, proxy.port)
    assert not problems, "\n".join(problems)
    # The same bytes reached every node: each switched its limit and its prefix stats.
    for n in nodes:
        got, _ = exchange(n.port, b"stats settings\r\n")
        assert b"STAT detail_enabled yes\r\n" in got and b"STAT maxbytes 68157440\r\n" in got


def test_cachedump_lists_every_nodes_items(
    pair: tuple[Memcached, list[Memcached], ProxyProcess],
) -> None:
    direct, nodes, proxy = pair
    for m in [direct, *nodes]:
        # One LRU per class (not hot/warm/cold), so every item is listed at once.
        assert exchange(m.port, b"lru mode flat\r\n")[0] == b"OK\r\n"
    data = b"".join(b"set c%d 0 0 %d\r\n%s\r\n" % (i, i % 7, b"z" * (i % 7)) for i in range(30))
    exchange(direct.port, data)
    exchange(proxy.port, data)
    want, _ = exchange(direct.port, b"stats cachedump 1 0\r\n")
    got, _ = exchange(proxy.port, b"stats cachedump 1 0\r\n")
    assert want.count(b"ITEM ") == 30
    # Node after node instead of one LRU order: the same lines, one END.
    assert got.endswith(b"\r\nEND\r\n") and got.count(b"END\r\n") == 1
    assert sorted(got.split(b"\r\n")) == sorted(want.split(b"\r\n"))
    # M is per node: up to M from each.
    got, _ = exchange(proxy.port, b"stats cachedump 1 2\r\n")
    assert 3 <= got.count(b"ITEM ") <= 6


def test_documented_differences(pair: tuple[Memcached, list[Memcached], ProxyProcess]) -> None:
    """The README's differences found by these tests, as they are today on both sides."""
    direct, _nodes, proxy = pair
    # memcached drops the error replies pipelined just before a get whose later key is too
    # long; the proxy answers each request.
    data = b"incr " + LONG + b" 1\r\nbogus\r\nget a " + LONG + b"\r\n"
    bad = b"CLIENT_ERROR bad command line format\r\n"
    assert exchange(direct.port, data) == (bad, False)
    assert exchange(proxy.port, data) == (bad + b"ERROR\r\n" + bad, False)
    # A length above 2^31-1: both keep its low 32 bits (memcached's strtol into an int32).
    data = b"set w 0 0 4294967297\r\nx\r\nget w\r\n"
    assert exchange(direct.port, data)[0] == b"STORED\r\nVALUE w 0 1\r\nx\r\nEND\r\n"
    assert exchange(proxy.port, data)[0] == b"STORED\r\nVALUE w 0 1\r\nx\r\nEND\r\n"
    # stats conns is one node's business.
    assert exchange(proxy.port, b"stats conns\r\n")[0] == b"ERROR\r\n"
    assert exchange(direct.port, b"stats conns\r\n")[0].startswith(b"STAT ")
