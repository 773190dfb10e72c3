"""memcached's rule for HTTP on its port: an unknown command whose last token starts with
``HTTP/`` closes the connection without a reply; a command memcached knows keeps its meaning.
Each case was checked against memcached 1.6.18 (tests/integration/test_fidelity.py replays
them against both)."""

from __future__ import annotations

import pytest

from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Kind


def kinds(data: bytes) -> list[Kind]:
    return [r.kind for r in RequestParser().feed(data)]


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/1.0",
        b"PUT /x HTTP/1.1",
        b"DELETE HTTP/1.1",
        b"HTTP/1.0",
        b"ver HTTP/1.0",  # "v" names only version and verbosity
        b"foo HTTP/",
        b"foo " + b"a " * 21 + b"HTTP/1.1 b c",  # the 23rd token: memcached splits no further
    ],
)
def test_http_lines_close(line: bytes) -> None:
    assert kinds(line + b"\r\nget k\r\n") == [Kind.HTTP]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"get / HTTP/1.0", Kind.GET),  # a get of two keys
        (b"gxx / HTTP/1.0", Kind.LOCAL),  # g...: memcached's get branch says ERROR
        (b"G HTTP/1.0", Kind.LOCAL),  # one letter: ERROR before any rule
        (b"mz HTTP/1.0", Kind.LOCAL),  # two letters, m first: meta, ERROR
        (b"lru_crawler HTTP/1.1", Kind.LOCAL),  # a command memcached has
        (b"foo HTTP/1.1 x", Kind.LOCAL),  # not the last token
        (b"foo http/1.1", Kind.LOCAL),  # case matters
        (b"foo " + b"a " * 20 + b"HTTP/1.1 b c", Kind.LOCAL),
        (b"stats HTTP/1.0", Kind.STATS),
    ],
)
def test_other_lines_keep_their_meaning(line: bytes, kind: Kind) -> None:
    assert kinds(line + b"\r\n") == [kind]


def test_nothing_after_the_http_line_is_read() -> None:
    p = RequestParser()
    assert [r.kind for r in p.feed(b"get a\r\nGET / HTTP/1.0\r\nset x 0 0 1\r\n")] == [
        Kind.GET,
        Kind.HTTP,
    ]
    assert p.feed(b"1\r\nget x\r\n") == []
