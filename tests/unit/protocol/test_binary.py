"""The binary-protocol codec: incremental over any split, bounded, never raising, and each
request translated to meta a backend accepts, each reply back to memcached's response."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memfleet.config import parse_config
from memfleet.protocol.binary import (
    Action,
    BinaryParser,
    BinaryRequest,
    Op,
    Status,
    response,
    stats_response,
    translate_reply,
)
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Kind, Reply
from memfleet.proxy.app import Proxy
from memfleet.proxy.binary_connection import BinaryClientConnection, handle_binary
from memfleet.proxy.connection import ClientConnection
from memfleet.proxy.gate import PolicyGate

HEADER = struct.Struct(">BBHBBHIIQ")


def pkt(op: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", opaque: int = 0,
        cas: int = 0) -> bytes:  # fmt: skip
    body = extras + key + value
    return HEADER.pack(0x80, op, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


def setx(flags: int = 0, exptime: int = 0) -> bytes:
    return struct.pack(">II", flags, exptime)


def incx(delta: int, initial: int = 0, exptime: int = 0) -> bytes:
    return struct.pack(">QQI", delta, initial, exptime)


def one(data: bytes, **kw: int) -> BinaryRequest:
    [b] = BinaryParser(**kw).feed(data)
    return b


def wire(data: bytes) -> bytes:
    b = one(data)
    assert b.request is not None, b
    return b.request.wire


def unpack(data: bytes) -> tuple[Any, ...]:
    """(opcode, status, opaque, cas, extras, key, value) of one response packet."""
    _m, op, kl, el, _dt, st_, bl, opq, cas = HEADER.unpack_from(data)
    body = data[24:]
    assert len(body) == bl
    return op, st_, opq, cas, body[:el], body[el : el + kl], body[el + kl :]


def summary(reqs: list[BinaryRequest]) -> list[tuple[object, ...]]:
    return [
        (b.action, b.opcode, b.opaque, b.cas, b.key, b.extras, b.value, b.response,
         b.request.wire if b.request else None, [s.wire for s in b.side])
        for b in reqs
    ]  # fmt: skip


# -- translation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (pkt(Op.GET, b"k"), b"mg k v f c\r\n"),
        (pkt(Op.GETKQ, b"k"), b"mg k v f c\r\n"),
        (pkt(Op.TOUCH, b"k", struct.pack(">I", 30)), b"mg k f c T30\r\n"),
        (pkt(Op.GATQ, b"k", struct.pack(">I", 0xFFFFFFFF)), b"mg k v f c T2147483647\r\n"),
        (pkt(Op.SET, b"k", setx(5, 10), b"hi"), b"ms k 2 F5 T10 c\r\nhi\r\n"),
        (pkt(Op.ADDQ, b"k", setx(), b"hi"), b"ms k 2 F0 T0 c ME\r\nhi\r\n"),
        (pkt(Op.REPLACE, b"k", setx(), b""), b"ms k 0 F0 T0 c MR\r\n\r\n"),
        (pkt(Op.ADD, b"k", setx(), b"x", cas=7), b"ms k 1 F0 T0 c C7\r\nx\r\n"),
        (pkt(Op.APPEND, b"k", value=b"x"), b"ms k 1 c MA\r\nx\r\n"),
        (pkt(Op.PREPENDQ, b"k", value=b"x", cas=3), b"ms k 1 c MP C3\r\nx\r\n"),
        (pkt(Op.DELETE, b"k"), b"md k\r\n"),
        (pkt(Op.DELETEQ, b"k", cas=9), b"md k C9\r\n"),
        (pkt(Op.INCREMENT, b"n", incx(2, 10, 60)), b"ma n N60 J10 D2 v c\r\n"),
        (pkt(Op.DECREMENT, b"n", incx(2, 10, 0xFFFFFFFF)), b"ma n D2 MD v c\r\n"),
        (pkt(Op.INCREMENTQ, b"n", incx(1), cas=4), b"ma n N0 J0 D1 v c C4\r\n"),
        (pkt(Op.GET, b"a b"), b"mg YSBi v f c b\r\n"),
        (pkt(Op.SET, b"a\r\n", setx(), b"v"), b"ms YQ0K 1 F0 T0 c b\r\nv\r\n"),
        (pkt(Op.FLUSH), b"flush_all\r\n"),
        (pkt(Op.FLUSHQ, extras=struct.pack(">I", 30)), b"flush_all 30\r\n"),
    ],
)
def test_translation(data: bytes, expect: bytes) -> None:
    assert wire(data) == expect


keys = st.binary(min_size=1, max_size=186)


@given(key=keys, value=st.binary(max_size=64), flags=st.integers(0, 2**32 - 1))
def test_translation_round_trips_through_the_text_parser(
    key: bytes, value: bytes, flags: int
) -> None:
    """Every translated request is one well-formed meta request for the same routing key, as
    the proxy's own text/meta parser reads it."""
    for data in (
        pkt(Op.SET, key, setx(flags), value),
        pkt(Op.APPENDQ, key, value=value, cas=5),
        pkt(Op.GETK, key),
        pkt(Op.GAT, key, struct.pack(">I", 5)),
        pkt(Op.DELETE, key),
        pkt(Op.DECREMENTQ, key, incx(3, 4, 5)),
    ):
        b = one(data)
        assert b.request is not None and b.request.key == key
        [r] = RequestParser().feed(b.request.wire)
        assert r.kind is Kind.KEYED and r.key == key and r.cmd == b.request.cmd
        assert r.reply is Reply.NORMAL  # backends always reply; quiet is the proxy's job


def test_key_too_long_for_base64_is_refused_without_closing() -> None:
    b = one(pkt(Op.GET, b" " * 187))
    assert b.action is Action.LOCAL and unpack(b.response)[1] == Status.EINVAL


# -- replies -------------------------------------------------------------------------------


def reply(data: bytes, backend: bytes) -> tuple[Any, ...] | None:
    out = translate_reply(one(data), backend)
    return unpack(out) if out else None


def test_get_replies() -> None:
    hit = b"VA 5 f7 c42\r\nhello\r\n"
    flags = struct.pack(">I", 7)
    assert reply(pkt(Op.GET, b"k", opaque=3), hit) == (0, 0, 3, 42, flags, b"", b"hello")
    assert reply(pkt(Op.GETKQ, b"k", opaque=3), hit) == (0x0D, 0, 3, 42, flags, b"k", b"hello")
    assert reply(pkt(Op.GET, b"k", opaque=3), b"EN\r\n") == (0, 1, 3, 0, b"", b"", b"Not found")
    assert reply(pkt(Op.GETK, b"k"), b"EN\r\n") == (0x0C, 1, 0, 0, b"", b"k", b"")
    assert reply(pkt(Op.GETQ, b"k"), b"EN\r\n") is None
    assert reply(pkt(Op.TOUCH, b"k", b"\0" * 4), b"HD f7 c9\r\n") == (
        Op.TOUCH, 0, 0, 9, flags, b"", b""
    )  # fmt: skip


def test_write_replies() -> None:
    assert reply(pkt(Op.SET, b"k", setx(), b"v"), b"HD c5\r\n") == (1, 0, 0, 5, b"", b"", b"")
    assert reply(pkt(Op.SETQ, b"k", setx(), b"v"), b"HD c5\r\n") is None
    assert reply(pkt(Op.ADD, b"k", setx(), b"v"), b"NS\r\n")[1] == Status.KEY_EEXISTS  # type: ignore[index]
    assert reply(pkt(Op.REPLACEQ, b"k", setx(), b"v"), b"NS\r\n")[1] == Status.KEY_ENOENT  # type: ignore[index]
    assert reply(pkt(Op.APPEND, b"k", value=b"v"), b"NS\r\n")[1] == Status.NOT_STORED  # type: ignore[index]
    assert reply(pkt(Op.SET, b"k", setx(), b"v", cas=1), b"EX\r\n")[1] == Status.KEY_EEXISTS  # type: ignore[index]
    assert reply(pkt(Op.SET, b"k", setx(), b"v", cas=1), b"NF\r\n")[1] == Status.KEY_ENOENT  # type: ignore[index]
    assert reply(pkt(Op.DELETEQ, b"k"), b"NF\r\n") == (
        Op.DELETEQ, 1, 0, 0, b"", b"", b"Not found"
    )  # fmt: skip
    assert reply(pkt(Op.INCREMENT, b"n", incx(1)), b"VA 2 c8\r\n15\r\n") == (
        Op.INCREMENT, 0, 0, 8, b"", b"", struct.pack(">Q", 15)
    )  # fmt: skip
    non_numeric = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    assert reply(pkt(Op.INCREMENTQ, b"n", incx(1)), non_numeric)[1] == Status.DELTA_BADVAL  # type: ignore[index]
    assert reply(pkt(Op.FLUSHQ), b"OK\r\n") is None


@pytest.mark.parametrize(
    ("backend", "status"),
    [
        (b"SERVER_ERROR backend failure\r\n", Status.ETMPFAIL),
        (b"SERVER_ERROR object too large for cache\r\n", Status.E2BIG),
        (b"SERVER_ERROR out of memory storing object\r\n", Status.ENOMEM),
        (b"CLIENT_ERROR bad command line format\r\n", Status.EINVAL),
        (b"ERROR\r\n", Status.UNKNOWN_COMMAND),
        (b"SERVER_ERROR something else\r\n", Status.EINTERNAL),
    ],
)
def test_error_replies(backend: bytes, status: int) -> None:
    got = reply(pkt(Op.SETQ, b"k", setx(), b"v", opaque=5), backend)
    assert got is not None and got[:3] == (Op.SETQ, status, 5)


def test_quiet_get_treats_a_failed_shard_as_a_miss() -> None:
    failure = b"SERVER_ERROR backend failure\r\n"
    assert reply(pkt(Op.GETKQ, b"k"), failure) is None
    assert reply(pkt(Op.GET, b"k"), failure)[1] == Status.ETMPFAIL  # type: ignore[index]


def test_stats_response() -> None:
    out = stats_response(9, b"STAT pid 1\r\nSTAT version memfleet-x\r\nEND\r\n")
    end = (Op.STAT, 0, 9, 0, b"", b"", b"")
    assert responses(out) == [
        (Op.STAT, 0, 9, 0, b"", b"pid", b"1"),
        (Op.STAT, 0, 9, 0, b"", b"version", b"memfleet-x"),
        end,
    ]
    assert responses(stats_response(9, b"RESET\r\n")) == [end]
    assert unpack(stats_response(9, b"ERROR\r\n"))[1] == Status.KEY_ENOENT


@given(st.binary(max_size=200))
def test_reply_translation_never_raises(garbage: bytes) -> None:
    for data in (pkt(Op.GETK, b"k"), pkt(Op.INCREMENT, b"k", incx(1)), pkt(Op.SET, b"k", setx())):
        out = translate_reply(one(data), garbage)
        assert out == b"" or out[0] == 0x81


# -- framing -------------------------------------------------------------------------------


SESSION = (
    pkt(Op.SET, b"k", setx(1, 2), b"value", opaque=1, cas=0)
    + pkt(Op.GETKQ, b"k", opaque=2)
    + pkt(Op.NOOP, opaque=3)
    + pkt(0x50, value=b"zzz", opaque=4)
    + pkt(Op.SET, b"big", setx(), b"x" * 3000, opaque=5)
    + pkt(Op.GET, b"k", opaque=6)
    + pkt(Op.STAT, b"items", opaque=7)
    + pkt(Op.VERSION, opaque=8)
    + pkt(Op.SASL_AUTH, b"PLAIN", value=b"\0u\0p", opaque=9)
    + pkt(Op.INCREMENT, b"n", incx(1), opaque=10)
    + pkt(Op.QUIT, opaque=11)
    + pkt(Op.GET, b"after quit")
)


def parse_in_pieces(data: bytes, cuts: list[int], max_item_size: int = 2048) -> list[BinaryRequest]:
    p = BinaryParser(max_item_size)
    out: list[BinaryRequest] = []
    prev = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        out += p.feed(data[prev:cut])
        prev = cut
    return out


def test_session_parses() -> None:
    got = BinaryParser(2048).feed(SESSION)
    assert [b.opaque for b in got] == list(range(1, 12))
    assert got[3].action is Action.LOCAL and unpack(got[3].response)[1] == Status.UNKNOWN_COMMAND
    assert got[4].action is Action.LOCAL and unpack(got[4].response)[1] == Status.E2BIG
    assert [s.wire for s in got[4].side] == [b"md big\r\n"]  # a failed set unlinks
    assert got[-1].action is Action.QUIT


@settings(max_examples=300)
@given(st.lists(st.integers(0, len(SESSION)), max_size=40))
def test_incremental_over_any_split(cuts: list[int]) -> None:
    assert summary(parse_in_pieces(SESSION, cuts)) == summary(BinaryParser(2048).feed(SESSION))


@settings(max_examples=300)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=10))
def test_garbage_never_raises(garbage: bytes, cuts: list[int]) -> None:
    for data in (b"\x80" + garbage, pkt(Op.NOOP) + b"\x80" + garbage, garbage):
        for b in parse_in_pieces(data, [c for c in cuts if c <= len(data)]):
            assert isinstance(b, BinaryRequest)


def test_bounded_memory() -> None:
    p = BinaryParser(max_item_size=1024)
    # A refused value is skipped as it arrives, never held.
    body = 8 + 1 + 1_000_000  # extras, key, a 1 MB value
    [b] = p.feed(HEADER.pack(0x80, Op.SET, 1, 8, 0, 0, body, 1, 0) + setx() + b"k")
    assert unpack(b.response)[1] == Status.E2BIG
    for _ in range(100):
        assert p.feed(b"x" * 10000) == []
        assert p.buffered == 0
    # A header promising a 64 KiB key is refused at once, without waiting for it.
    [b] = BinaryParser().feed(HEADER.pack(0x80, 0, 65535, 0, 0, 0, 65535, 1, 0))
    assert b.action is Action.CLOSE and unpack(b.response)[1] == Status.EINVAL
    # What an incomplete request holds is capped by the header, extras, key and value limit.
    p = BinaryParser(max_item_size=1024)
    data = pkt(Op.SET, b"k" * 250, setx(), b"v" * 1024)
    assert p.feed(data[:-1]) == [] and p.buffered == len(data) - 1 <= 24 + 8 + 250 + 1024


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (pkt(Op.GET, b"k", b"xxxx"), Status.EINVAL),
        (pkt(Op.GET, b"x" * 251), Status.EINVAL),
        (pkt(Op.NOOP, value=b"abc"), Status.EINVAL),
        (pkt(Op.SET, b"k", b"", b"v"), Status.EINVAL),
        (pkt(Op.INCREMENT, b"n", b"\0" * 8), Status.EINVAL),
        (HEADER.pack(0x80, 0, 5, 0, 0, 0, 2, 4, 0) + b"abcde", Status.UNKNOWN_COMMAND),
    ],
)
def test_protocol_errors_close(data: bytes, status: int) -> None:
    p = BinaryParser()
    [b] = p.feed(data + pkt(Op.NOOP))
    assert b.action is Action.CLOSE and unpack(b.response)[1] == status
    assert p.closed and p.feed(pkt(Op.NOOP)) == []


def test_bad_magic_closes_silently() -> None:
    [noop, bad] = BinaryParser().feed(pkt(Op.NOOP, opaque=1) + b"\x81" + bytes(23))
    assert noop.action is Action.NOOP and bad.action is Action.CLOSE and bad.response == b""


def test_response_layout() -> None:
    out = response(Op.GETK, Status.OK, 0x01020304, 5, b"key", b"\0\0\0\1", b"val")
    assert out[:2] == b"\x81\x0c" and len(out) == 24 + 4 + 3 + 3
    assert unpack(out) == (Op.GETK, 0, 0x01020304, 5, b"\0\0\0\1", b"key", b"val")


# -- the connection: hand-over and SASL ------------------------------------------------------


class FakeTransport:
    """Just enough of a transport to run a connection without a socket."""

    def __init__(self) -> None:
        self.out = b""
        self.closed = False
        self.protocol: object = None

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol: object) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


class Auth:
    def check(self, user: bytes, password: bytes) -> bool:
        return (user, password) == (b"alice", b"secret")


def run_connection(data: list[bytes], auth: object = None) -> tuple[bytes, Proxy, FakeTransport]:
    async def go() -> tuple[bytes, Proxy, FakeTransport]:
        cfg = parse_config(
            {
                "pools": {"main": {"backends": ["127.0.0.1:1"]}},
                "routes": {"default": {"null": None}},
            }
        )
        proxy = Proxy(cfg)
        if auth is not None:
            proxy.serving.gate = PolicyGate(auth, 0, proxy.events, proxy.stats)  # type: ignore[arg-type]
        conn = ClientConnection(proxy.serving)
        t = FakeTransport()
        conn.connection_made(t)  # type: ignore[arg-type]
        conn.data_received(data[0])
        assert isinstance(t.protocol, BinaryClientConnection)
        for d in data[1:]:
            t.protocol.data_received(d)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return t.out, proxy, t

    return asyncio.run(go())


def responses(out: bytes) -> list[tuple[Any, ...]]:
    got = []
    while out:
        n = 24 + HEADER.unpack_from(out)[6]
        got.append(unpack(out[:n]))
        out = out[n:]
    return got


def test_handover_keeps_connection_accounting() -> None:
    out, proxy, t = run_connection([pkt(Op.NOOP, opaque=1)[:5], pkt(Op.NOOP, opaque=1)[5:]])
    assert responses(out) == [(Op.NOOP, 0, 1, 0, b"", b"", b"")]
    assert proxy.stats.curr_connections == 1 and len(proxy.clients) == 1
    assert isinstance(next(iter(proxy.clients)), BinaryClientConnection)
    assert proxy.serving.binary_handler is handle_binary
    t.protocol.connection_lost(None)  # type: ignore[attr-defined]
    assert proxy.stats.curr_connections == 0 and not proxy.clients


def test_sasl_without_auth_configured_is_auth_not_required() -> None:
    out, _, _ = run_connection(
        [pkt(Op.SASL_LIST_MECHS, opaque=1) + pkt(Op.SASL_AUTH, b"PLAIN", value=b"\0x\0y", opaque=2)
         + pkt(Op.GET, b"k", opaque=3)]
    )  # fmt: skip
    assert [(r[0], r[1], r[6]) for r in responses(out)] == [
        (Op.SASL_LIST_MECHS, 0, b"PLAIN"),
        (Op.SASL_AUTH, 0, b"Authenticated"),
        (Op.GET, Status.KEY_ENOENT, b"Not found"),  # the null route: a miss
    ]


def test_sasl_with_auth_configured() -> None:
    plain = b"\0alice\0secret"
    out, _, t = run_connection([pkt(Op.GET, b"k", opaque=1) + pkt(Op.NOOP)], auth=Auth())
    assert [(r[1], r[2]) for r in responses(out)] == [(Status.AUTH_ERROR, 1)] and t.closed
    out, _, t = run_connection(
        [pkt(Op.VERSION, opaque=1) + pkt(Op.SASL_AUTH, b"PLAIN", value=b"\0alice\0wrong", opaque=2)
         + pkt(Op.SASL_AUTH, b"PLAIN", value=plain, opaque=3) + pkt(Op.GET, b"k", opaque=4)],
        auth=Auth(),
    )  # fmt: skip
    assert [(r[0], r[1]) for r in responses(out)] == [
        (Op.VERSION, 0),
        (Op.SASL_AUTH, Status.AUTH_ERROR),
        (Op.SASL_AUTH, 0),
        (Op.GET, Status.KEY_ENOENT),
    ]
    assert not t.closed
