"""Backend reply framing, reply classes and multi-get merging."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memfleet.protocol.responses import (
    FramingError,
    ResponseFramer,
    Result,
    classify,
    merge_get_replies,
)

STREAM = [
    b"VALUE a 0 3\r\nabc\r\nVALUE b 5 1 99\r\nx\r\nEND\r\n",
    b"END\r\n",
    b"STORED\r\n",
    b"VA 2 s2 Oabc\r\nhi\r\n",
    b"EN\r\n",
    b"HD O1\r\n",
    b"SERVER_ERROR out of memory\r\n",
    b"VALUE big 0 9\r\n\r\nEND\r\n\r\n\r\nEND\r\n",  # a value that looks like replies
    b"42\r\n",
    # stats listings run until END, whatever their lines look like
    b"STAT pid 1\r\nSTAT version 1.6.18\r\nSTAT 1:chunk_size 96\r\nEND\r\n",
    b"STORED\r\n",
    b"ITEM k [5 b; 0 s]\r\nITEM j [1 b; 0 s]\r\nEND\r\n",
    b"PREFIX a get 2 hit 1 set 0 del 0\r\nEND\r\n",
    b"STAT sizes_status disabled\r\nEND\r\n",
    b"OK\r\n",
    b"RESET\r\n",
]


@given(st.lists(st.integers(0, len(b"".join(STREAM))), max_size=10))
@settings(max_examples=300)
def test_framing_is_independent_of_read_boundaries(cuts: list[int]) -> None:
    data = b"".join(STREAM)
    f = ResponseFramer()
    got: list[bytes] = []
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        got += f.feed(data[prev:c])
        prev = max(prev, c)
    assert got == STREAM


@pytest.mark.parametrize(
    "data",
    [
        b"VALUE a 0 zz\r\n",
        b"VALUE a 0 -5\r\nEND\r\n",
        b"VALUE a\r\n",
        b"VALUE  0 1\r\nx\r\nEND\r\n",  # no key
        b"VALUE a x 1\r\nx\r\nEND\r\n",  # flags not a number
        b"VALUE a 0 1 \r\nx\r\nEND\r\n",  # an empty cas
        b"VALUE a 0 1\rx\nx\r\nEND\r\n",  # CR not followed by LF
        b"VALUE a 0 1\r\nxy\r\nEND\r\n",  # a data block longer than its length says
        b"VALUE a 0 12345678901\r\n",  # over 10 digits: more than any value can be
        b"VALUE a 0 99999999999999999999999\r\n",
        b"VA 999999999999999999999999 s\r\n",
        b"VA x\r\n",
    ],
)
def test_garbage_length_is_a_framing_error(data: bytes) -> None:
    with pytest.raises(FramingError):
        ResponseFramer().feed(data)


@pytest.mark.parametrize(
    ("reply", "result"),
    [
        (b"VALUE a 0 1\r\nx\r\nEND\r\n", Result.HIT),
        (b"VA 1\r\nx\r\n", Result.HIT),
        (b"END\r\n", Result.MISS),
        (b"EN\r\n", Result.MISS),
        (b"EN kabc\r\n", Result.MISS),
        (b"NOT_FOUND\r\n", Result.OK),
        (b"NOT_STORED\r\n", Result.OK),
        (b"EXISTS\r\n", Result.OK),
        (b"NF\r\n", Result.OK),
        (b"SERVER_ERROR backend failure\r\n", Result.ERROR),
        (b"CLIENT_ERROR bad data chunk\r\n", Result.ERROR),
        (b"ERROR\r\n", Result.ERROR),
    ],
)
def test_result_classes_follow_memcached_proxy(reply: bytes, result: Result) -> None:
    assert classify(reply) is result


def test_merge_keeps_key_order_and_treats_failed_keys_as_misses() -> None:
    a = b"VALUE a 0 1\r\n1\r\nEND\r\n"
    b = b"VALUE b 0 1\r\n2\r\nEND\r\n"
    fail = b"SERVER_ERROR backend failure\r\n"
    assert (
        merge_get_replies([b, b"END\r\n", a]) == b"VALUE b 0 1\r\n2\r\nVALUE a 0 1\r\n1\r\nEND\r\n"
    )
    assert merge_get_replies([fail, a]) == b"VALUE a 0 1\r\n1\r\nEND\r\n"
    assert merge_get_replies([fail, fail]) == fail
    assert merge_get_replies([b"END\r\n", b"END\r\n"]) == b"END\r\n"


@given(
    key=st.binary(min_size=1, max_size=250).filter(lambda k: not set(k) & set(b" \r\n\0")),
    flags=st.integers(0, 2**32 - 1),
    value=st.binary(max_size=300),
    cas=st.none() | st.integers(0, 2**64 - 1),
    cuts=st.lists(st.integers(0, 700), max_size=4),
)
@settings(max_examples=300)
def test_any_value_line_frames_exactly(
    key: bytes, flags: int, value: bytes, cas: int | None, cuts: list[int]
) -> None:
    # The length is read from the end of the VALUE line, so keys ending in digits and lines
    # with or without a cas must all give it right.
    head = b"VALUE %s %d %d" % (key, flags, len(value))
    if cas is not None:
        head += b" %d" % cas
    reply = head + b"\r\n" + value + b"\r\nEND\r\n"
    stream = reply + b"STORED\r\n" + reply
    framer = ResponseFramer()
    got: list[bytes] = []
    prev = 0
    for c in [*sorted(cuts), len(stream)]:
        got += framer.feed(stream[prev:c] if c > prev else b"")
        prev = max(prev, c)
    assert got == [reply, b"STORED\r\n", reply]
