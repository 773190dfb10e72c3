"""The rejoin mark several proxy instances share in the cache: what it sends, and how the
sources' answers are read."""

from __future__ import annotations

from memfleet.backends.rejoin_mark import MARK_TTL, RejoinMark


class _Source:
    """A repair source pool with one scripted backend."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sent: list[bytes] = []

    def backend_for(self, key: bytes) -> _Source:
        assert key == b"memfleet:rejoin:10.0.0.1:11211"
        return self

    def send(self, wire: bytes, cb: object, token: object) -> None:
        self.sent.append(wire)
        cb(token, self.answer)  # type: ignore[operator]


def test_raised_once_lowered_once_and_the_largest_count_wins() -> None:
    one, two = _Source(b"VA 1\r\n0\r\n"), _Source(b"VA 1\r\n2\r\n")
    mark = RejoinMark("10.0.0.1:11211", [one, two])
    mark.raise_()
    mark.raise_()  # once per outage
    assert one.sent == [b"ma memfleet:rejoin:10.0.0.1:11211 N%d J1 T%d\r\n" % (MARK_TTL, MARK_TTL)]
    got: list[int] = []
    mark.settle(got.append)
    assert one.sent[-1] == b"ma memfleet:rejoin:10.0.0.1:11211 MD v\r\n"
    assert got == [2]  # another process still holds it on one source
    mark.settle(got.append)  # not held any more: only read
    assert one.sent[-1] == b"mg memfleet:rejoin:10.0.0.1:11211 v\r\n"


def test_a_miss_is_nobody_and_an_error_does_not_count() -> None:
    got: list[int] = []
    RejoinMark("10.0.0.1:11211", [_Source(b"EN\r\n")]).settle(got.append)
    RejoinMark("10.0.0.1:11211", [_Source(b"SERVER_ERROR backend failure\r\n")]).settle(got.append)
    RejoinMark("10.0.0.1:11211", []).settle(got.append)
    assert got == [0, 0, 0]
