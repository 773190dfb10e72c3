"""The binary protocol: one scripted session sent to memcached directly and through the proxy
(one backend) gives identical responses, field by field (opcode, status, opaque, CAS, key,
extras, value); pylibmc with ``binary=True`` works through the proxy over three backends;
text and binary clients see each other's writes.

Each step is followed by a Noop with its own opaque as a barrier, so the responses of one step
are compared on their own. CAS values are compared exactly: the proxy's meta translation
consumes memcached's CAS counter exactly as the binary commands do (one per stored item, one
per flush), so the two servers' counters stay in step.

Documented differences, checked separately below: Version answers ``memfleet-<version>``;
Stat answers the proxy's own counters; Verbosity is answered "OK" (memcached 1.6.18 answers
"Unknown command" and then skips the next 4 bytes of the stream); SASL list mechs answers
``PLAIN`` and SASL auth succeeds (memcached without SASL answers "Unknown command").
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

from memfleet.backends.hashing import Placement

pytestmark = pytest.mark.integration

HEADER = struct.Struct(">BBHBBHIIQ")
BARRIER = 0xBA000000
MB = 1024 * 1024

GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION = range(12)
GETK, GETKQ, APPEND, PREPEND, STAT, SETQ, ADDQ, REPLACEQ, DELETEQ = range(12, 21)
INCRQ, DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ, VERBOSITY, TOUCH, GAT, GATQ = range(21, 31)
SASL_LIST, SASL_AUTH = 0x20, 0x21
GATK, GATKQ = 0x23, 0x24


def pkt(
    op: int,
    key: bytes = b"",
    extras: bytes = b"",
    value: bytes = b"",
    opaque: int = 0,
    cas: int = 0,
) -> bytes:
    body = extras + key + value
    return HEADER.pack(0x80, op, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


def setx(flags: int = 0, exptime: int = 0) -> bytes:
    return struct.pack(">II", flags, exptime)


def incx(delta: int, initial: int = 0, exptime: int = 0) -> bytes:
    return struct.pack(">QQI", delta, initial, exptime)


def exp(seconds: int) -> bytes:
    return struct.pack(">I", seconds)


class Resp(NamedTuple):
    """One binary response, every field."""

    magic: int
    opcode: int
    status: int
    datatype: int
    opaque: int
    cas: int
    extras: bytes
    key: bytes
    value: bytes


def split(buf: bytes) -> tuple[list[Resp], bytes]:
    """Complete responses in ``buf``, and the bytes left over."""
    out: list[Resp] = []
    while len(buf) >= 24:
        magic, op, kl, el, dt, st, bl, opq, cas = HEADER.unpack_from(buf)
        if len(buf) < 24 + bl:
            break
        body = buf[24 : 24 + bl]
        out.append(
            Resp(magic, op, st, dt, opq, cas, body[:el], body[el : el + kl], body[el + kl :])
        )
        buf = buf[24 + bl :]
    return out, buf


class BinConn:
    """A raw binary-protocol connection (bounded reads, 127.0.0.1 only)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.closed = False

    def send(self, data: bytes | list[bytes]) -> None:
        # A list is sent piece by piece: requests split at arbitrary points across writes.
        for part in data if isinstance(data, list) else [data]:
            self.sock.sendall(part)
            if isinstance(data, list):
                time.sleep(0.02)

    def _recv(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no reply; have {self.buf[-100:]!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def until_barrier(self, opaque: int, timeout: float = 10.0) -> list[Resp]:
        """Every response up to the Noop answering ``opaque`` (which is left out)."""
        deadline = time.monotonic() + timeout
        got: list[Resp] = []
        while True:
            resps, self.buf = split(self.buf)
            for i, r in enumerate(resps):
                if r.opcode == NOOP and r.opaque == opaque:
                    rest = b"".join(pkt_bytes(x) for x in resps[i + 1 :])
                    self.buf = rest + self.buf
                    return got + resps[:i]
            got += resps
            if not self._recv(deadline):
                raise ConnectionError(f"closed before the barrier; got {got}")

    def until_closed(self, timeout: float = 10.0) -> list[Resp]:
        """Every response until the server closes the connection."""
        deadline = time.monotonic() + timeout
        while self._recv(deadline):
            pass
        resps, rest = split(self.buf)
        assert rest == b"", f"partial response before close: {rest!r}"
        return resps

    def close(self) -> None:
        self.sock.close()


def pkt_bytes(r: Resp) -> bytes:
    body = r.extras + r.key + r.value
    header = HEADER.pack(
        r.magic, r.opcode, len(r.key), len(r.extras), r.datatype, r.status, len(body), r.opaque
    )
    return header[:16] + struct.pack(">Q", r.cas) + body


BIG = 2 * MB
ODD_KEY = b"a key\r\nwith\x00bytes"

# (name, requests). Barrier Noops are added by the runner.
SCRIPT: list[tuple[str, bytes | list[bytes]]] = [
    ("set", pkt(SET, b"k", setx(5), b"hello", opaque=1)),
    ("get hit", pkt(GET, b"k", opaque=2)),
    ("getk hit", pkt(GETK, b"k", opaque=3)),
    ("get miss", pkt(GET, b"nope", opaque=4) + pkt(GETK, b"nope", opaque=5)),
    ("set flags/exptime", pkt(SET, b"f", setx(0xFFFFFFFF, 0xFFFFFFFF), b"v", 6) + pkt(GET, b"f")),
    (
        "quiet multi-get",
        pkt(SET, b"a", setx(1), b"A", 7)
        + pkt(SET, b"b", setx(2), b"BB", 8)
        + b"".join(pkt(GETKQ, k, opaque=9 + i) for i, k in enumerate([b"b", b"x", b"a", b"k"]))
        + pkt(GETQ, b"nope", opaque=13)
        + pkt(GETQ, b"a", opaque=14),
    ),
    ("add exists", pkt(ADD, b"k", setx(), b"x", opaque=15)),
    ("add new", pkt(ADD, b"newkey", setx(3), b"x", opaque=16) + pkt(GETK, b"newkey", opaque=17)),
    ("addq", pkt(ADDQ, b"newkey", setx(), b"y", 18) + pkt(ADDQ, b"newkey2", setx(), b"y", 19)),
    ("replace missing", pkt(REPLACE, b"missing", setx(), b"x", opaque=20)),
    ("replace", pkt(REPLACE, b"k", setx(7), b"HELLO", 21) + pkt(GET, b"k", opaque=22)),
    ("replaceq", pkt(REPLACEQ, b"k", setx(), b"h", 23) + pkt(REPLACEQ, b"zz", setx(), b"h", 24)),
    ("setq", pkt(SETQ, b"k", setx(9), b"hello", 25) + pkt(GET, b"k", opaque=26)),
    (
        "append prepend",
        pkt(APPEND, b"k", value=b"!", opaque=27)
        + pkt(PREPEND, b"k", value=b"<", opaque=28)
        + pkt(GET, b"k", opaque=29),
    ),
    ("append missing", pkt(APPEND, b"nope", value=b"!", opaque=30)),
    (
        "appendq prependq",
        pkt(APPENDQ, b"k", value=b"1", opaque=31)
        + pkt(PREPENDQ, b"nope", value=b"2", opaque=32)
        + pkt(GET, b"k", opaque=33),
    ),
    ("cas mismatch", pkt(SET, b"k", setx(), b"x", opaque=34, cas=999999)),
    ("cas missing", pkt(SET, b"nope", setx(), b"x", opaque=35, cas=1)),
    ("add with cas mismatch", pkt(ADD, b"k", setx(), b"x", opaque=36, cas=999999)),
    ("replace with cas missing", pkt(REPLACE, b"nope", setx(), b"x", opaque=37, cas=5)),
    ("append cas mismatch", pkt(APPEND, b"k", value=b"x", opaque=38, cas=999999)),
    ("delete cas mismatch", pkt(DELETE, b"k", opaque=39, cas=999999)),
    (
        "incr cas mismatch",
        pkt(SET, b"c", setx(), b"1", 40) + pkt(INCR, b"c", incx(1), b"", 41, 9999),
    ),
    ("delete", pkt(DELETE, b"newkey", opaque=42) + pkt(DELETE, b"newkey", opaque=43)),
    ("deleteq", pkt(DELETEQ, b"newkey2", opaque=44) + pkt(DELETEQ, b"newkey2", opaque=45)),
    (
        "incr decr",
        pkt(SET, b"n", setx(), b"10", 46)
        + pkt(INCR, b"n", incx(5), opaque=47)
        + pkt(DECR, b"n", incx(100), opaque=48)
        + pkt(INCR, b"n", incx(2**64 - 1), opaque=49)
        + pkt(INCR, b"n", incx(3), opaque=50),
    ),
    (
        "incr auto-create",
        pkt(INCR, b"ctr", incx(1, 42, 0), opaque=51)
        + pkt(INCR, b"ctr", incx(1, 42, 0), opaque=52)
        + pkt(DECR, b"ctr2", incx(1, 7, 100), opaque=53)
        + pkt(GET, b"ctr", opaque=54),
    ),
    ("incr no auto-create", pkt(INCR, b"nope", incx(1, 5, 0xFFFFFFFF), opaque=55)),
    ("decr no auto-create", pkt(DECR, b"nope", incx(1, 5, 0xFFFFFFFF), opaque=56)),
    ("incr non-numeric", pkt(INCR, b"a", incx(1), opaque=57) + pkt(DECR, b"a", incx(1), opaque=58)),
    (
        "incrq decrq",
        pkt(INCRQ, b"n", incx(1), opaque=59)
        + pkt(DECRQ, b"n", incx(1), opaque=60)
        + pkt(INCRQ, b"a", incx(1), opaque=61)
        + pkt(INCRQ, b"nope", incx(1, 0, 0xFFFFFFFF), opaque=62)
        + pkt(GET, b"n", opaque=63),
    ),
    ("touch", pkt(TOUCH, b"k", exp(100), opaque=64) + pkt(TOUCH, b"nope", exp(100), opaque=65)),
    ("gat", pkt(GAT, b"k", exp(100), opaque=66) + pkt(GAT, b"nope", exp(10), opaque=67)),
    ("gatq", pkt(GATQ, b"k", exp(0), opaque=68) + pkt(GATQ, b"nope", exp(0), opaque=69)),
    ("gatk", pkt(GATK, b"k", exp(0), opaque=70) + pkt(GATK, b"nope", exp(0), opaque=71)),
    ("gatkq", pkt(GATKQ, b"k", exp(0), opaque=72) + pkt(GATKQ, b"nope", exp(0), opaque=73)),
    (
        "cas good",
        pkt(GETK, b"a", opaque=74),
        # The CAS of "a" is read from the reply at run time (see _resolve).
    ),
    ("binary key", pkt(SET, ODD_KEY, setx(4), b"odd", 76) + pkt(GETK, ODD_KEY, opaque=77)),
    ("key 250", pkt(SET, b"y" * 250, setx(), b"1", 78) + pkt(GETK, b"y" * 250, opaque=79)),
    ("empty value", pkt(SET, b"e", setx(1), b"", 80) + pkt(GET, b"e", opaque=81)),
    ("value too large", pkt(SET, b"k", setx(), b"x" * BIG, 82) + pkt(GET, b"k", opaque=83)),
    ("setq too large", pkt(SETQ, b"a", setx(), b"x" * BIG, 84) + pkt(GET, b"a", opaque=85)),
    ("append too large", pkt(APPEND, b"b", value=b"x" * BIG, opaque=86)),
    ("value 1MiB", pkt(SET, b"b", setx(), b"v" * MB, 87) + pkt(GETK, b"b", opaque=88)),
    (
        "value under limit",
        pkt(SET, b"big", setx(), b"v" * 900000, 89) + pkt(GET, b"big", opaque=90),
    ),
    ("unknown opcode", pkt(0x50, opaque=91) + pkt(0x45, value=b"body", opaque=92)),
    ("version", pkt(VERSION, opaque=101)),
    ("stat", pkt(STAT, opaque=102)),
    ("stat reset", pkt(STAT, b"reset", opaque=103)),
    ("stat unknown group", pkt(STAT, b"nosuch", opaque=104)),
    (
        "split across writes",
        [
            (pkt(SET, b"s", setx(), b"split", 93) + pkt(GETK, b"s", opaque=94))[i : i + 7]
            for i in range(0, 200, 7)
        ],
    ),
    ("flush", pkt(FLUSH, opaque=95) + pkt(GET, b"s", opaque=96)),
    ("flushq", pkt(SET, b"s", setx(), b"1", 97) + pkt(FLUSHQ, extras=exp(0), opaque=98)),
    ("after flush", pkt(GET, b"s", opaque=99) + pkt(SET, b"s", setx(), b"2", 100)),
]

# Sessions that end with the server closing the connection: each on its own connection.
CLOSING: list[tuple[str, bytes]] = [
    ("quit", pkt(SET, b"q", setx(), b"1", 1) + pkt(QUIT, opaque=2) + pkt(GET, b"q", opaque=3)),
    ("quitq", pkt(GET, b"q", opaque=1) + pkt(QUITQ, opaque=2) + pkt(GET, b"q", opaque=3)),
    ("get with extras", pkt(NOOP, opaque=1) + pkt(GET, b"k", b"xxxx", opaque=2)),
    ("key too long", pkt(GET, b"x" * 251, opaque=3)),
    ("keylen over bodylen", HEADER.pack(0x80, GET, 5, 0, 0, 0, 2, 4, 0) + b"abcde"),
    ("noop with a body", pkt(NOOP, value=b"abc", opaque=5)),
    ("set without extras", pkt(SET, b"k", b"", b"v", opaque=6)),
    ("incr bad extras", pkt(INCR, b"n", b"\0" * 8, opaque=7)),
    ("bad magic", pkt(NOOP, opaque=8) + b"\x81" + bytes(23)),
]


def _resolve(name: str, stage: int, replies: list[Resp]) -> bytes:
    """Follow-up requests built from a step's replies so far (CAS values read at run time);
    empty when the step is done."""
    if name != "cas good" or stage > 2:
        return b""
    cas = replies[-1].cas
    if stage == 0:
        return pkt(SET, b"a", setx(), b"zz", opaque=75, cas=cas)
    if stage == 1:
        return pkt(APPEND, b"a", value=b"+", opaque=75, cas=cas) + pkt(GETK, b"a", opaque=75)
    return pkt(DELETE, b"a", opaque=75, cas=cas) + pkt(GET, b"a", opaque=75)


def normalized(replies: list[Resp]) -> list[Resp]:
    """The documented exceptions masked: the Version string, and the Stat values (each
    server reports its own), of which only the end packet is kept."""
    out = []
    for r in replies:
        if r.opcode == VERSION and r.status == 0:
            r = r._replace(value=b"<version>")
        elif r.opcode == STAT and r.status == 0 and r.key:
            continue
        out.append(r)
    return out


def run_script(port: int) -> list[list[Resp]]:
    out: list[list[Resp]] = []
    conn = BinConn(port)
    try:
        for i, (name, data) in enumerate(SCRIPT):
            conn.send(data)
            conn.send(pkt(NOOP, opaque=BARRIER + i))
            replies = conn.until_barrier(BARRIER + i)
            for stage in range(3):
                follow = _resolve(name, stage, replies)
                conn.send(follow + pkt(NOOP, opaque=BARRIER + 1000 + stage))
                replies += conn.until_barrier(BARRIER + 1000 + stage)
            out.append(normalized(replies))
        # A truncated header, then the client hangs up: nothing more comes back.
        conn.send(pkt(NOOP, opaque=1) + pkt(GET, b"k")[:10])
        conn.sock.shutdown(socket.SHUT_WR)
        out.append(conn.until_closed())
    finally:
        conn.close()
    for _name, data in CLOSING:
        c = BinConn(port)
        try:
            c.send(data)
            out.append(c.until_closed())
        finally:
            c.close()
    return out


def test_session_is_identical(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    direct = memcached_factory(extra=["-B", "auto"])
    backend = memcached_factory()
    proxy = proxy_factory(pool_config(backend.address))
    want = run_script(direct.port)
    got = run_script(proxy.port)
    names = [n for n, _ in SCRIPT] + ["truncated header"] + [n for n, _ in CLOSING]
    mismatches = [
        f"{name}:\n  memcached: {str(w)[:600]}\n  proxy:     {str(g)[:600]}"
        for name, w, g in zip(names, want, got, strict=True)
        if w != g
    ]
    assert not mismatches, "\n".join(mismatches)
    # The script exercises real replies, not a wall of identical errors.
    by_name = dict(zip(names, got, strict=True))
    multi = by_name["quiet multi-get"]
    assert [(r.opaque, r.key, r.value) for r in multi if r.opcode != SET] == [
        (9, b"b", b"BB"),
        (11, b"a", b"A"),
        (12, b"k", b"hello"),
        (14, b"", b"A"),
    ]
    assert [r.status for r in by_name["cas good"]] == [0, 0, 0, 0, 0, 1]
    assert by_name["value too large"][0].status == 0x03
    assert by_name["incr non-numeric"][0].status == 0x06
    assert by_name["cas mismatch"][0].status == 0x02
    assert by_name["unknown opcode"][0].status == 0x81
    assert by_name["get with extras"][-1].status == 0x04
    assert by_name["binary key"][1].key == ODD_KEY
    assert by_name["stat"] == [Resp(0x81, STAT, 0, 0, 102, 0, b"", b"", b"")]


def test_getkq_batch_fans_out_and_keeps_order(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    backends = [memcached_factory() for _ in range(3)]
    proxy = proxy_factory(pool_config(*(b.address for b in backends)))
    keys = [b"batch%d" % i for i in range(60)]
    stored = keys[::2]
    placement = Placement(3)
    assert {placement.index(k) for k in stored} == {0, 1, 2}
    c = BinConn(proxy.port)
    try:
        c.send(b"".join(pkt(SETQ, k, setx(i), k.upper(), i) for i, k in enumerate(stored)))
        c.send(pkt(NOOP, opaque=999))
        assert c.until_barrier(999) == []
        batch = b"".join(pkt(GETKQ, k, opaque=1000 + i) for i, k in enumerate(keys))
        c.send(batch + pkt(NOOP, opaque=2000))
        got = c.until_barrier(2000)
        assert [(r.opaque, r.key, r.value) for r in got] == [
            (1000 + i, k, k.upper()) for i, k in enumerate(keys) if k in stored
        ]
        assert [struct.unpack(">I", r.extras)[0] for r in got] == list(range(len(stored)))
    finally:
        c.close()
    for index, node in enumerate(backends):
        want = {k.decode() for k in stored if placement.index(k) == index}
        assert _keys_on(node, [k.decode() for k in stored]) == want


def test_documented_differences(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    backend = memcached_factory()
    proxy = proxy_factory(pool_config(backend.address))
    c = BinConn(proxy.port)
    try:
        c.send(pkt(VERSION, opaque=1) + pkt(NOOP, opaque=2))
        [v] = c.until_barrier(2)
        assert v.status == 0 and v.value.startswith(b"memfleet-")
        c.send(pkt(STAT, opaque=3) + pkt(NOOP, opaque=4))
        stats = c.until_barrier(4)
        assert {r.key for r in stats} >= {b"curr_connections", b"cmd_get", b""}
        assert stats[-1].key == b"" and stats[-1].value == b"" and stats[-1].opaque == 3
        c.send(pkt(STAT, b"nosuch", opaque=5) + pkt(NOOP, opaque=6))
        assert [r.status for r in c.until_barrier(6)] == [0x01]
        c.send(pkt(VERBOSITY, extras=exp(1), opaque=7) + pkt(NOOP, opaque=8))
        assert [(r.opcode, r.status) for r in c.until_barrier(8)] == [(VERBOSITY, 0)]
        c.send(pkt(SASL_LIST, opaque=9) + pkt(NOOP, opaque=10))
        [mechs] = c.until_barrier(10)
        assert (mechs.status, mechs.value) == (0, b"PLAIN")
        c.send(pkt(SASL_AUTH, b"PLAIN", value=b"\0user\0secret", opaque=11) + pkt(NOOP, opaque=12))
        [auth] = c.until_barrier(12)
        assert (auth.status, auth.value, auth.opaque) == (0, b"Authenticated", 11)
        # The connection goes on after SASL.
        c.send(pkt(SET, b"k", setx(), b"v", 13) + pkt(GET, b"k", opaque=14) + pkt(NOOP, opaque=15))
        assert [r.value for r in c.until_barrier(15)] == [b"", b"v"]
    finally:
        c.close()


def test_text_and_binary_clients_share_data(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    backends = [memcached_factory() for _ in range(3)]
    proxy = proxy_factory(pool_config(*(b.address for b in backends)))
    text = Conn(proxy.port)
    binary = BinConn(proxy.port)
    try:
        assert text.request(b"set fromtext 3 0 5\r\nhello\r\n") == b"STORED\r\n"
        binary.send(pkt(GETK, b"fromtext", opaque=1) + pkt(SET, b"frombin", setx(4), b"bin", 2))
        binary.send(pkt(INCR, b"count", incx(1, 10), opaque=3) + pkt(NOOP, opaque=4))
        got = binary.until_barrier(4)
        assert (got[0].status, got[0].extras, got[0].value) == (0, struct.pack(">I", 3), b"hello")
        assert text.request(b"get frombin count\r\n") == (
            b"VALUE frombin 4 3\r\nbin\r\nVALUE count 0 2\r\n10\r\nEND\r\n"
        )
        assert text.request(b"delete fromtext\r\nincr count 5\r\n") == b"DELETED\r\n15\r\n"
        binary.send(pkt(GET, b"fromtext", opaque=5) + pkt(GET, b"count", opaque=6))
        binary.send(pkt(NOOP, opaque=7))
        miss, count = binary.until_barrier(7)
        assert miss.status == 0x01 and count.value == b"15"
    finally:
        text.close()
        binary.close()


def _keys_on(node: Memcached, keys: list[str]) -> set[str]:
    c = Conn(node.port)
    try:
        found = set()
        for k in keys:
            if c.request(f"get {k}\r\n".encode()) != b"END\r\n":
                found.add(k)
        return found
    finally:
        c.close()


def test_pylibmc_binary_over_three_backends(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
    tmp_path: Path,
) -> None:
    try:
        import pylibmc
    except ImportError:
        pytest.fail(
            "pylibmc is not installed: apt-get install -y libmemcached-dev, pip install pylibmc"
        )
    backends = [memcached_factory() for _ in range(3)]
    proxy = proxy_factory(pool_config(*(b.address for b in backends)))
    mc = pylibmc.Client([f"127.0.0.1:{proxy.port}"], binary=True, behaviors={"cas": True})
    try:
        keys = [f"key{i}" for i in range(30)]
        for i, k in enumerate(keys):
            assert mc.set(k, f"value{i}")
        assert mc.get("key3") == "value3"
        assert mc.get("absent") is None
        many = mc.get_multi([*keys, "absent1", "absent2"])
        assert many == {k: f"value{i}" for i, k in enumerate(keys)}
        assert mc.set("counter", 10)
        assert mc.incr("counter", 5) == 15
        assert mc.decr("counter", 20) == 0
        assert mc.add("key0", "again") is False
        assert mc.replace("key0", "replaced")
        assert mc.append("key0", "!") and mc.prepend("key0", "<")
        assert mc.get("key0") == "<replaced!"
        value, cas = mc.gets("key1")
        assert value == "value1"
        assert mc.cas("key1", "new1", cas)
        assert not mc.cas("key1", "newer", cas)  # the CAS moved on
        assert mc.get("key1") == "new1"
        assert mc.delete("key2")
        assert not mc.delete("key2")
        assert mc.get("key2") is None
        assert mc.touch("key4", 100)
        mc.set_multi({"m1": "1", "m2": "2"})
        assert mc.get_multi(["m1", "m2"]) == {"m1": "1", "m2": "2"}
        mc.delete_multi(["m1", "m2"])
        assert mc.get_multi(["m1", "m2"]) == {}

        # Keys are on the backends the placement rule predicts, and only there.
        placement = Placement(3)
        stored = [k for k in keys if k != "key2"]
        for index, node in enumerate(backends):
            expect = {k for k in stored if placement.index(k.encode()) == index}
            assert expect, "30 keys over 3 nodes: every node holds some"
            assert _keys_on(node, stored) == expect
    finally:
        mc.disconnect_all()
