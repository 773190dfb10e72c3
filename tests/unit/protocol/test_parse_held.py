"""Holding the parser back (a client's byte budget spent): parsing stops right after the
request that spent it, and nothing is lost, reordered or parsed twice when it resumes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memfleet._loader import is_compiled
from memfleet.protocol.parse import RequestParser, RequestSink
from memfleet.protocol.requests import Kind, Request
from tests.unit.protocol.test_parse import SESSION, parse_all, summary

if is_compiled():
    pytest.skip(
        "a test sink cannot subclass the compiled RequestSink; the same code is tested by the "
        "pure-Python run, and compiled through real clients in test_memory_bounds",
        allow_module_level=True,
    )

# Plain gets (the fast path), gets among sets, multi-gets and meta: every way in.
ROUND = b"get a\r\nget bb\r\nset c 0 0 1\r\nx\r\nget dd\r\nget a b\r\n"
PIPELINE = ROUND * 5 + SESSION + b"get e\r\n" * 7


class HoldingSink(RequestSink):
    """Records what it is handed; holds the parser after each request whose number is in
    ``hold_after``."""

    def __init__(self, parser: RequestParser, hold_after: set[int]) -> None:
        self.parser = parser
        self.hold_after = hold_after
        self.got: list[tuple[object, ...]] = []

    def _one(self, item: tuple[object, ...]) -> None:
        assert not self.parser.held, "a request was handed over while held"
        self.got.append(item)
        if len(self.got) in self.hold_after:
            self.parser.held = True

    def plain_get(self, key: bytes, line: bytes) -> None:
        self._one((Kind.GET, b"get", key, (key,), line))

    def request(self, req: Request) -> None:
        self._one(summary([req])[0][:5])


def whole() -> list[tuple[object, ...]]:
    return [s[:5] for s in summary(parse_all(PIPELINE))]


@given(
    st.lists(st.integers(min_value=0, max_value=len(PIPELINE)), max_size=8),
    st.sets(st.integers(min_value=1, max_value=60), max_size=10),
    st.booleans(),
)
@settings(max_examples=300)
def test_holding_anywhere_loses_and_reorders_nothing(
    cuts: list[int], hold_after: set[int], fast: bool
) -> None:
    p = RequestParser()
    p.fast = fast
    sink = HoldingSink(p, hold_after)
    prev = 0
    for c in [*sorted(cuts), len(PIPELINE)]:
        p.feed_into(PIPELINE[prev:c], sink)  # arrives while held, too: kept unparsed
        prev = c
        if p.held and len(sink.got) % 2:
            p.resume(sink)  # sometimes resumed between reads
    while p.held:
        n = len(sink.got)
        p.resume(sink)
        assert len(sink.got) > n or not p.held
    assert sink.got == whole()
    assert p.buffered == 0


def test_held_stops_right_after_the_request_that_spent_the_budget() -> None:
    p = RequestParser()
    sink = HoldingSink(p, {3})
    p.feed_into(b"get a\r\nget b\r\nget c\r\nget d\r\nget e\r\n", sink)
    assert [g[2] for g in sink.got] == [b"a", b"b", b"c"]
    assert p.buffered == len(b"get d\r\nget e\r\n")  # counted as the client's, unparsed
    p.resume(sink)
    assert [g[2] for g in sink.got] == [b"a", b"b", b"c", b"d", b"e"]


def test_a_refused_value_is_skipped_while_held() -> None:
    # The budget is spent by the too-large set (its error and the unlink of the old value
    # are handed over together): the rest of its value, arriving while held, is still
    # skipped, never parsed as requests.
    p = RequestParser(max_item_size=1024)
    sink = HoldingSink(p, {2})
    p.feed_into(b"set big 0 0 2000\r\n" + b"x" * 500, sink)
    assert p.held and [g[:2] for g in sink.got] == [(Kind.LOCAL, b""), (Kind.KEYED, b"delete")]
    p.feed_into(b"x" * 1500 + b"\r\nget kk\r\n", sink)
    p.resume(sink)
    assert [g[:3] for g in sink.got[2:]] == [(Kind.GET, b"get", b"kk")]
