"""One scripted session, sent to memcached directly and through the proxy (one backend):
the replies must be identical byte for byte.

Each step is followed by ``mn`` as a barrier, so the replies of one step are compared on their
own. Documented proxy-side differences, checked separately below:

- ``version`` answers ``VERSION memfleet-<version>``;
- ``stats`` answers the proxy's own counters and the fleet's (tests/integration/
  test_admin_fleet.py; the differential over three nodes is test_fidelity.py);
- (a long line that is not a get closes both silently: checked below, as it ends the session);
- the binary protocol is accepted (its own differential test is test_binary_differential.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration

BIG = 2 * 1024 * 1024

SCRIPT: list[tuple[str, bytes]] = [
    ("set", b"set k 0 0 5\r\nhello\r\n"),
    ("get hit", b"get k\r\n"),
    ("get miss", b"get nope\r\n"),
    ("multi-get order", b"set a 1 0 1\r\nA\r\nset b 2 0 2\r\nBB\r\nget b nope a k a\r\n"),
    ("gets", b"gets a b\r\n"),
    ("gat", b"gat 100 a nope b\r\n"),
    ("gats", b"gats 0 a\r\n"),
    ("gat no keys", b"gat 10\r\n"),
    ("gat bad exptime", b"gat abc k\r\n"),
    ("add exists", b"add k 0 0 1\r\nx\r\n"),
    ("add new", b"add newkey 0 0 1\r\nx\r\n"),
    ("replace missing", b"replace missing 0 0 1\r\nx\r\n"),
    ("replace", b"replace k 5 0 5\r\nHELLO\r\nget k\r\n"),
    ("append prepend", b"append k 0 0 1\r\n!\r\nprepend k 0 0 1\r\n<\r\nget k\r\n"),
    ("append missing", b"append nope 0 0 1\r\n!\r\n"),
    ("cas mismatch", b"cas k 0 0 1 999999\r\nx\r\n"),
    ("cas missing", b"cas nope 0 0 1 1\r\nx\r\n"),
    ("cas good", b"gets a\r\ncas a 0 0 2 3\r\nzz\r\nget a\r\n"),
    ("cas bad unique", b"cas k 0 0 1 abc\r\na\r\n"),
    ("cas missing unique", b"cas k 0 0 1\r\na\r\n"),
    ("delete", b"delete newkey\r\ndelete newkey\r\n"),
    ("delete 0", b"set d 0 0 1\r\n1\r\ndelete d 0\r\n"),
    ("delete bad time", b"delete k 5\r\n"),
    ("delete too many", b"delete\r\ndelete a b c d\r\n"),
    (
        "incr decr",
        b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr n 18446744073709551615\r\n",
    ),
    ("incr non-numeric", b"incr k 1\r\n"),
    ("incr bad delta", b"incr n abc\r\nincr n -1\r\n"),
    ("incr missing", b"incr nope 1\r\ndecr nope 1\r\n"),
    ("incr arity", b"incr n\r\nincr n 1 2 3\r\n"),
    ("touch", b"touch k 100\r\ntouch nope 100\r\ntouch k abc\r\ntouch k\r\n"),
    ("unknown command", b"foo\r\nGET k\r\n\r\nget\r\n"),
    ("key too long", b"get " + b"x" * 251 + b"\r\n"),
    ("key 250 ok", b"set " + b"y" * 250 + b" 0 0 1\r\n1\r\nget " + b"y" * 250 + b"\r\n"),
    ("set key too long", b"set " + b"x" * 251 + b" 0 0 5\r\nhello\r\n"),
    ("multi-get key too long", b"get a " + b"x" * 251 + b" b\r\n"),
    ("bad data chunk short", b"set k 0 0 5\r\nhel\r\nget k\r\n"),
    ("bad data chunk long", b"set k 0 0 5\r\nhelloXX\r\nget k\r\n"),
    ("bad length", b"set k 0 0 abc\r\nhello\r\n"),
    ("negative length", b"set k 0 0 -1\r\n"),
    ("bad flags", b"set k abc 0 1\r\na\r\nset k -1 0 1\r\na\r\n"),
    ("bad exptime", b"set k 0 abc 1\r\na\r\n"),
    ("set arity", b"set k 0 0\r\nset k 0 0 5 noreply extra\r\nhello\r\n"),
    ("set extra token", b"set k 0 0 5 garbage\r\nhello\r\nget k\r\n"),
    ("value over limit", b"set k 0 0 %d\r\n" % BIG + b"x" * BIG + b"\r\nget k\r\n"),
    ("value just under limit", b"set big 0 0 900000\r\n" + b"v" * 900000 + b"\r\nget big\r\n"),
    ("noreply storm", b"".join(b"set s%d 0 0 2 noreply\r\n%02d\r\n" % (i, i) for i in range(50))),
    ("noreply storm read", b"get " + b" ".join(b"s%d" % i for i in range(50)) + b"\r\n"),
    (
        "noreply mixed",
        b"incr s1 1 noreply\r\ndelete s2 noreply\r\ntouch s3 10 noreply\r\n"
        b"incr k 1 noreply\r\nget s1 s2 s3\r\n",
    ),
    ("noreply errors hidden", b"set k 0 0 5 noreply\r\nhelloXX\r\nset k 0 0 abc noreply\r\nhi\r\n"),
    ("noreply too large", b"set k 0 0 %d noreply\r\n" % BIG + b"x" * BIG + b"\r\n"),
    ("flush_all", b"flush_all\r\nget a b\r\nflush_all 0 noreply\r\n"),
    ("flush_all bad", b"flush_all abc\r\nflush_all 1 2 3\r\n"),
    ("verbosity", b"verbosity 1\r\nverbosity 1 noreply\r\nverbosity\r\nverbosity abc\r\n"),
    ("leading spaces", b"  set sp 0 0 1\r\n1\r\n get  sp \r\n"),
    ("bare newline", b"set nl 0 0 1\na\r\nget nl\n"),
    # meta protocol
    ("ms mg", b"ms m 3\r\nabc\r\nmg m v\r\nmg m s v f t\r\n"),
    ("mg flags", b"mg m k v c O123\r\nmg nope v\r\nmg nope k O9\r\n"),
    ("mg hit no value", b"mg m\r\n"),
    ("mg quiet", b"mg nope v q\r\nmg m v q\r\nmg nope k q O7\r\n"),
    ("ms quiet", b"ms m 2 q\r\nhi\r\nms m 2 q MA\r\n!!\r\nms nope 1 q MR\r\nx\r\nmg m v\r\n"),
    ("ms modes", b"ms m2 1 ME\r\n1\r\nms m2 1 ME\r\n2\r\nms m2 1 MP\r\n0\r\nmg m2 v\r\n"),
    ("ms invalid mode", b"ms m 1 MZ\r\n1\r\nms m 1 MZZ\r\n1\r\n"),
    ("ms invalid flag", b"ms m 2 Z\r\nhi\r\n"),
    ("ms bad length", b"ms m abc\r\nhi\r\nms m\r\nhi\r\nms m -1\r\n"),
    ("ms key too long", b"ms " + b"x" * 251 + b" 2\r\nhi\r\n"),
    ("ms bad chunk", b"ms m 2\r\nhiXX\r\nms m 2 q\r\nhiYY\r\n"),
    ("ms too large", b"ms m 2000000 T0\r\n" + b"x" * 2000000 + b"\r\nmg m v\r\n"),
    ("ms cas", b"ms c 1\r\n1\r\nmg c c\r\nms c 1 C1\r\n2\r\nms c 1 I\r\n3\r\nmg c v\r\n"),
    ("md", b"md m\r\nmd m\r\nmd m q\r\nmd nope q\r\nms m 1\r\n1\r\nmd m q\r\nmg m v\r\n"),
    ("md invalidate", b"ms i 1\r\n1\r\nmd i I T30\r\nmg i v c\r\nmd i q C1\r\n"),
    ("ma", b"ma nope\r\nms ctr 1\r\n5\r\nma ctr\r\nma ctr v\r\nma ctr q\r\nma ctr MD D2 v\r\n"),
    ("ma vivify", b"ma viv N0 J13 v\r\nma viv v\r\n"),
    ("ma errors", b"ma m\r\nma ctr MX\r\nms s 3\r\nabc\r\nma s q\r\n"),
    ("meta base64", b"ms a2V5 2 b\r\nhi\r\nmg a2V5 b v k\r\nget key\r\nmg !!! b v\r\n"),
    ("meta errors", b"mg\r\nmg " + b"x" * 251 + b" v\r\nmg m zz\r\n"),
    ("meta opaque too long", b"mg m v O123456789012345678901234567890123\r\n"),
    ("mn", b"mn\r\nmn\r\n"),
    ("me", b"ms dbg 1 T0\r\n1\r\nme dbg\r\n"),
]


def _run_script(port: int) -> list[bytes]:
    conn = Conn(port)
    try:
        return [conn.request(data, timeout=10) for _, data in SCRIPT]
    finally:
        conn.close()


def test_session_is_identical(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    direct = memcached_factory()
    backend = memcached_factory()
    proxy = proxy_factory(pool_config(backend.address))
    want = _run_script(direct.port)
    got = _run_script(proxy.port)
    mismatches = [
        f"{name}:\n  memcached: {w[:300]!r}\n  proxy:     {g[:300]!r}"
        for (name, _), w, g in zip(SCRIPT, want, got, strict=True)
        if w != g
    ]
    assert not mismatches, "\n".join(mismatches)
    # The script must exercise real replies, not a wall of identical errors.
    assert b"VALUE b 2 2\r\nBB\r\nVALUE a 1 1\r\nA\r\nVALUE k 0 5\r\nhello\r\nVALUE a" in got[3]


def test_quit_closes_after_earlier_replies(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    backend = memcached_factory()
    proxy = proxy_factory(pool_config(backend.address))
    for port in (backend.port, proxy.port):
        c = Conn(port)
        c.send(b"set q 0 0 1\r\n1\r\nget q\r\nquit\r\nget q\r\n")
        assert c.read_all_until_closed() == b"STORED\r\nVALUE q 0 1\r\n1\r\nEND\r\n"
        c.close()


def test_documented_differences(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    backend = memcached_factory()
    proxy = proxy_factory(pool_config(backend.address))
    c = Conn(proxy.port)
    assert c.request(b"version\r\n").startswith(b"VERSION memfleet-")
    stats = c.request(b"stats\r\n")
    assert b"STAT curr_connections 1\r\n" in stats and stats.endswith(b"END\r\n")
    c.close()

    # A line that is not a get, over 2048 bytes, whose end has not arrived when a read ends:
    # both hang up silently (memcached's rule, read for read); a longer line than memcached's
    # 16 KiB read buffer never completes there: the proxy hangs up on it too.
    for port in (backend.port, proxy.port):
        c = Conn(port)
        c.send(b"x" * 3000)
        assert c.read_all_until_closed() == b""
        c.close()
        c = Conn(port)
        c.send(b"x" * (16 * 1024 + 100) + b"\r\n")
        assert c.read_all_until_closed() == b""
        c.close()

    # The binary protocol is accepted (tests/integration/test_binary_differential.py): a Get
    # miss is answered "not found" with the client's opaque, and the connection stays open.
    c = Conn(proxy.port)
    header = bytes([0x80, 0x00, 0, 1, 0, 0, 0, 0]) + (1).to_bytes(4, "big") + b"OPAQ" + bytes(8)
    c.send(header + b"k")
    reply = c.read_until(b"Not found")
    assert reply[0] == 0x81 and reply[1] == 0x00 and reply[6:8] == b"\x00\x01"
    assert reply[12:16] == b"OPAQ"
    c.close()
