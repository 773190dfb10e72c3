"""The request parser: events from bytes, incremental, bounded, never raising."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memfleet.protocol import errors
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Kind, Reply, Request


def summary(reqs: list[Request]) -> list[tuple[object, ...]]:
    return [(r.kind, r.cmd, r.key, tuple(r.keys), r.wire, r.reply) for r in reqs]


def parse_all(data: bytes, **kw: int) -> list[Request]:
    return RequestParser(**kw).feed(data)


def test_get_many_keys() -> None:
    [r] = parse_all(b"get a bb ccc\r\n")
    assert r.kind is Kind.GET and r.keys == [b"a", b"bb", b"ccc"] and r.prefix == b"get"
    [r] = parse_all(b"gats 30 k1 k2\r\n")
    assert r.keys == [b"k1", b"k2"] and r.prefix == b"gats 30"


def test_set_keeps_client_bytes_and_strips_noreply() -> None:
    [r] = parse_all(b"set k 1 2 3\r\nabc\r\n")
    assert (r.kind, r.key, r.wire, r.reply) == (
        Kind.KEYED,
        b"k",
        b"set k 1 2 3\r\nabc\r\n",
        Reply.NORMAL,
    )
    [r] = parse_all(b"cas k 1 2 3 99 noreply\r\nabc\r\n")
    assert r.wire == b"cas k 1 2 3 99\r\nabc\r\n" and r.reply is Reply.NOREPLY
    [r] = parse_all(b"delete k noreply\r\n")
    assert r.wire == b"delete k\r\n" and r.reply is Reply.NOREPLY


def test_meta_quiet_flag_is_stripped_and_base64_key_decoded() -> None:
    [r] = parse_all(b"mg a2V5 b v q O5\r\n")
    assert r.key == b"key" and r.reply is Reply.QUIET and r.wire == b"mg a2V5 b v O5\r\n"
    [r] = parse_all(b"ms k 2 q T0\r\nhi\r\n")
    assert r.wire == b"ms k 2 T0\r\nhi\r\n" and r.reply is Reply.QUIET


@pytest.mark.parametrize(
    ("data", "replies"),
    [
        (b"foo\r\n", [errors.ERROR]),
        (b"\r\n", [errors.ERROR]),
        (b"get\r\n", [errors.ERROR]),
        (b"get " + b"k" * 251 + b"\r\n", [errors.BAD_FORMAT]),
        (b"set k 0 0 abc\r\nhi\r\n", [errors.BAD_FORMAT, errors.ERROR]),
        (b"set k 0 0 2\r\nhiXX\r\n", [errors.BAD_CHUNK, errors.ERROR]),
        (b"ms k 2 q\r\nhiXX\r\n", [errors.BAD_CHUNK, errors.ERROR]),
        (b"gat abc k\r\n", [errors.BAD_EXPTIME]),
        (b"gat 10\r\n", [errors.END]),
        (b"mn\r\n", [errors.MN]),
    ],
)
def test_malformed_requests_get_memcacheds_reply(data: bytes, replies: list[bytes]) -> None:
    got = parse_all(data)
    assert [r.wire for r in got] == replies
    assert all(r.kind is Kind.LOCAL for r in got)


def test_too_large_value_is_swallowed_across_reads_and_old_value_deleted() -> None:
    p = RequestParser(max_item_size=1024)
    out = p.feed(b"set k 0 0 5000\r\n" + b"x" * 3000)
    assert [r.wire for r in out] == [errors.TOO_LARGE, b"delete k\r\n"]
    assert out[1].reply is Reply.NOREPLY
    assert p.feed(b"x" * 2000) == []
    [r] = p.feed(b"\r\nget k\r\n")
    assert r.kind is Kind.GET
    assert p.buffered < 64


def test_binary_magic_hands_the_connection_over() -> None:
    p = RequestParser()
    first = b"\x80\x00\x00\x01" + bytes(20)
    [r] = p.feed(first)
    assert r.kind is Kind.BINARY and r.wire == first
    assert p.feed(b"get k\r\n") == []


def test_long_lines_follow_memcacheds_rule() -> None:
    # A line that is not a get: a read ending inside it past 2048 bytes closes the connection
    # silently, as does a complete one longer than memcached's 16 KiB read buffer; a complete
    # one up to that is parsed.
    [r] = RequestParser().feed(b"x" * 2049)
    assert r.kind is Kind.CLOSE and r.wire == b""
    [r] = RequestParser().feed(b"x" * (16 * 1024 + 1) + b"\r\n")
    assert r.kind is Kind.CLOSE and r.wire == b""
    [r] = RequestParser().feed(b"set k 0 0 4294967297\r\nx\r\n")  # strtol into an int32
    assert r.kind is Kind.KEYED and r.wire.endswith(b"\r\nx\r\n")
    [r] = RequestParser().feed(b"touch " + b"a" * 3000 + b" 0\r\n")
    assert r.kind is Kind.LOCAL and r.wire == errors.BAD_FORMAT
    [r] = RequestParser().feed(b"gat 0 " + b"k " * 3000 + b"\r\n")
    assert r.kind is Kind.GET and len(r.keys) == 3000


def test_a_get_line_longer_than_the_limit_is_handed_over_in_parts() -> None:
    p = RequestParser(max_line_length=4096)
    line = b"get " + b" ".join(b"key%d" % i for i in range(2000)) + b"\r\n"
    got: list[Request] = []
    for i in range(0, len(line), 1000):
        got += p.feed(line[i : i + 1000])
        assert p.buffered <= 4096 + 1000  # never the whole line
    assert all(r.kind is Kind.GET for r in got)
    assert [r.more for r in got] == [True] * (len(got) - 1) + [False]
    assert [k for r in got for k in r.keys] == [b"key%d" % i for i in range(2000)]
    # A key over 250 bytes in a later part: memcached's error, and the rest of the line
    # (still arriving) is dropped, not parsed.
    p = RequestParser(max_line_length=4096)
    got = p.feed(b"get " + b"k " * 3000 + b"z" * 300 + b" k")
    assert got[-1].wire == errors.BAD_FORMAT
    assert p.feed(b" more keys\r\nget k\r\n")[0].keys == [b"k"]


def test_quit_stops_parsing() -> None:
    out = parse_all(b"get a\r\nquit\r\nget b\r\n")
    assert [r.kind for r in out] == [Kind.GET, Kind.QUIT]


SESSION = (
    b"set k 0 0 5\r\nhello\r\nget k a b\r\nmg k v q\r\nms m 3 T0\r\nabc\r\n"
    b"delete k noreply\r\nincr n 1\r\nbogus\r\nset x 0 0 2\r\nxyz\r\ngat 5 k\r\n"
    b"cas k 0 0 1 5\r\nz\r\nmn\r\nflush_all\r\nstats\r\nversion\r\nverbosity 1\r\n"
)


def feed_in_pieces(
    feed: Callable[[bytes], list[Request]], data: bytes, cuts: list[int]
) -> list[Request]:
    """``data`` fed in the pieces ``cuts`` (offsets, any order) make; every request back."""
    got: list[Request] = []
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        got += feed(data[prev:c])
        prev = c
    return got


@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=12))
@settings(max_examples=300)
def test_any_split_gives_the_same_requests(cuts: list[int]) -> None:
    whole = summary(parse_all(SESSION))
    p = RequestParser()
    got = feed_in_pieces(p.feed, SESSION, cuts)
    assert summary(got) == whole
    assert len(whole) == 16


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=6))
@settings(max_examples=400)
def test_garbage_never_raises_and_stays_bounded(data: bytes, cuts: list[int]) -> None:
    p = RequestParser(max_item_size=2048, max_line_length=2048)
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        for r in p.feed(data[prev:c]):
            assert isinstance(r, Request)
        prev = max(prev, c)
        assert p.buffered <= 2048 + 2048 + 4


def feed_like_the_fast_path(p: RequestParser, chunk: bytes) -> list[Request]:
    """What the server does with a read: request by request with feed_one when nothing is
    buffered, otherwise feed."""
    if not p.can_bypass():
        return p.feed(chunk)
    got: list[Request] = []
    pos = 0
    while pos < len(chunk):
        reqs, nxt = p.feed_one(chunk, pos)
        assert nxt > pos
        got += reqs
        pos = nxt
    return got


@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=12))
@settings(max_examples=300)
def test_one_request_at_a_time_gives_the_same_requests(cuts: list[int]) -> None:
    whole = summary(parse_all(SESSION))
    p = RequestParser()
    got = feed_in_pieces(lambda chunk: feed_like_the_fast_path(p, chunk), SESSION, cuts)
    assert summary(got) == whole
    assert p.parsed == len(whole)


def test_feed_one_swallows_a_too_large_value_and_stops_at_a_close() -> None:
    p = RequestParser(max_item_size=4)
    assert p.can_bypass()
    reqs, nxt = p.feed_one(b"set k 0 0 10\r\n0123", 0)
    assert [r.wire for r in reqs] == [errors.TOO_LARGE, b"delete k\r\n"]
    assert nxt == len(b"set k 0 0 10\r\n0123")
    # The rest of the value (and its CRLF) is swallowed as it arrives, then parsing goes on.
    assert summary(p.feed(b"456789\r\nget a\r\n")) == summary(parse_all(b"get a\r\n"))
    q = RequestParser()
    assert q.can_bypass()
    reqs, nxt = q.feed_one(b"quit\r\nget a\r\n", 0)
    assert [r.kind for r in reqs] == [Kind.QUIT]
    assert nxt == len(b"quit\r\nget a\r\n")


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=6))
@settings(max_examples=300)
def test_garbage_one_request_at_a_time_matches_feed(data: bytes, cuts: list[int]) -> None:
    a = RequestParser(max_item_size=2048, max_line_length=2048)
    b = RequestParser(max_item_size=2048, max_line_length=2048)
    a.can_bypass()  # both have "spoken text" (no binary handover), as the fast path implies
    got_a: list[Request] = []
    got_b: list[Request] = []
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        chunk = data[prev:c] if c > prev else b""
        prev = max(prev, c)
        got_a += a.feed(chunk)
        got_b += feed_like_the_fast_path(b, chunk)
    assert summary(got_b) == summary(got_a)


@given(st.text(alphabet="0123456789+- x\u0663", max_size=24))
@settings(max_examples=500)
def test_numbers_are_read_as_strtol_reads_them(text: str) -> None:
    from memfleet.protocol.buffer import parse_int as _parse_int

    tok = text.encode()
    # The reference: optional sign, then ASCII digits only (Arabic-Indic digits are refused).
    body = tok[1:] if tok[:1] in (b"+", b"-") and len(tok) > 1 else tok
    want = int(tok) if body and all(48 <= c <= 57 for c in body) else None
    assert _parse_int(tok) == want


def _mostly(valid: list[bytes], invalid: list[bytes]) -> st.SearchStrategy[bytes]:
    # Valid parts most of the time, so that whole valid requests, and requests with exactly
    # one thing wrong, are both common.
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(invalid))


_set_parts = st.tuples(
    _mostly([b"k", b"user:42", b"a" * 250], [b"a" * 251, b"", b"a\rb", b"k\x01"]),
    _mostly([b"0", b"7", b"123456789"], [b"4294967296", b"1234567890", b"-1", b"x", b""]),
    _mostly([b"0", b"300", b"999999999"], [b"-1", b"+5", b""]),
    st.integers(0, 12),
    _mostly([b""], [b" noreply", b" ", b"  extra"]),
    _mostly([b"\r\n"], [b"\n"]),
    _mostly([b"0"], [b"-2", b"-1", b"1", b"2"]),  # data bytes beyond the announced length
    _mostly([b"\r\n"], [b"\n", b"xx", b"\r\nget k\r\n"]),
)


@given(_set_parts)
@settings(max_examples=1000)
def test_the_plain_set_path_agrees_with_the_parser(parts: tuple) -> None:  # type: ignore[type-arg]
    key, flags, exptime, size, tail, eol, extra, end = parts
    data = b"set %s %s %s %d%s%s" % (key, flags, exptime, size, tail, eol)
    data += b"v" * max(0, size + int(extra)) + end
    fast = RequestParser(max_item_size=10).plain_set(data)
    if fast is None:
        return
    [want] = RequestParser(max_item_size=10).feed(data)
    got = (fast.kind, fast.cmd, fast.wire, fast.key, fast.reply)
    assert got == (want.kind, want.cmd, want.wire, want.key, want.reply)


@pytest.mark.parametrize(
    "data",
    [
        b"set k 0 0 1\r\nv\r\n",
        b"set user:42 7 300 10\r\n0123456789\r\n",
        b"set " + b"a" * 250 + b" 123456789 999999999 0\r\n\r\n",
    ],
)
def test_plain_sets_take_the_fast_path(data: bytes) -> None:
    req = RequestParser().plain_set(data)
    assert req is not None
    assert (req.kind, req.cmd, req.wire, req.reply) == (Kind.KEYED, b"set", data, Reply.NORMAL)
    assert req.key == data.split(b" ")[1]


@given(st.binary(max_size=30), st.integers(0, 30))
@settings(max_examples=500)
def test_digits_are_read_in_place_as_int_reads_them(data: bytes, start: int) -> None:
    from memfleet.protocol.buffer import MAX_DIGITS, read_digits

    data = data.replace(b"\x00", b"7")  # more digit runs than random bytes give
    n = len(data)
    i = min(start, n)
    end = i
    while end < n and data[end : end + 1].isdigit():
        end += 1
    want = int(data[i:end]) if 0 < end - i <= MAX_DIGITS else -1
    assert read_digits(data, i, n) == (end, want)
