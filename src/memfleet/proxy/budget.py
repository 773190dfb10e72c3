"""How much room a request reserves in its client's byte budget before it is forwarded.

A reply's size is known only when it arrives, and by then it must be kept: the backend
connections are shared, so they cannot be paused for one client. So every request a client
has in flight counts for its connection's estimate of a reply (``learn``: the largest reply it
has had lately, up at once and down slowly, never below a 64th of the budget), a read of a key
this worker has seen a large value for counts for that value's size (``SizeHints``), and a
request's own bytes count while it is on its way when they are more than the estimate (a large
``set``).

The floor is what bounds a surprise: a value never seen before can come back larger than
its reservation, but at most ``FLOOR_SHARE`` (64) requests of one client are ever in flight on
the floor estimate, so what a client can hold beyond its budget is at most 64 replies of
``max_item_size`` before the first of them teaches the estimate. 64 in flight costs no
throughput: a connection's round trip through the proxy is about 100 µs, so 64 in flight
allow over 600,000 requests a second per client, more than a proxy process serves in all.
The per-process ``max_memory`` (``memfleet.proxy.memory``) bounds what many clients add up to.
"""

from __future__ import annotations

from typing import Final

# A reply is never estimated below budget / FLOOR_SHARE (see the module).
FLOOR_SHARE: Final = 64
# Values at least this large are remembered by key.
HINT_MIN: Final = 64 * 1024
# At most this many keys are remembered (the oldest is forgotten first): 4096 entries of a
# short key and an int, well under 1 MiB.
HINT_KEYS: Final = 4096


class SizeHints:
    """The sizes of the large values one worker has seen lately, by key."""

    __slots__ = ("sizes",)

    def __init__(self) -> None:
        self.sizes: dict[bytes, int] = {}

    def note(self, key: bytes, size: int) -> None:
        """A value of ``size`` bytes was stored or read under ``key`` (size >= HINT_MIN)."""
        sizes = self.sizes
        if key not in sizes and len(sizes) >= HINT_KEYS:
            del sizes[next(iter(sizes))]
        sizes[key] = size

    def note_reply(self, reply: bytes) -> None:
        """A large get reply (``VALUE <key> ...``) arrived: remember its key's size."""
        if reply.startswith(b"VALUE "):
            end = reply.find(b" ", 6)
            if end > 6:
                self.note(reply[6:end], len(reply))


def learn(est: int, size: int, floor: int) -> int:
    """A connection's reply estimate after a reply of ``size`` bytes: up at once, down by a
    sixteenth of the difference per reply (so a run of small replies after a large one lowers
    it over a few dozen replies, not at the first), never below ``floor``."""
    if size >= est:
        return size
    est -= (est - size) >> 4
    return est if est > floor else floor
