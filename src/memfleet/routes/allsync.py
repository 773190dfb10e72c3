"""``allsync``: a write sent to every child (replica), answered once they have acknowledged it.

Two policies (``ack``):

- ``available`` (the default): the write succeeds when every replica in service acknowledged
  it and at least one did. A replica that failed, timed out, did not answer within
  ``ack_wait``, or answered differently from the reply the client gets, is journaled for the
  key and out of service until repaired (``Route.journal_key`` → ``Backend.missed_write``), so
  no reader sees what it holds. The client gets the first success in list order (``STORED``,
  ``DELETED``, ``TOUCHED``, ``HD``, a number...), else the first other answer (``NOT_STORED``,
  ``EXISTS``, ``NOT_FOUND``...), else the first error: only a write no replica took fails.
- ``all`` (memcached's proxy's, and memfleet's before): wait for every reply; the first error
  in list order wins, otherwise the last child's reply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.peers import PEERS, PeerFences
from memfleet.protocol.requests import Request
from memfleet.protocol.responses import ERROR, classify
from memfleet.routes.base import Route, drop, unique_backends
from memfleet.routes.fanout import DEFAULT_ACK_WAIT
from memfleet.routes.pool import PoolRoute, aligned_pools
from memfleet.routes.waits import Deadlines, Waiter

_DROP: Final[ReplyCallback] = drop
_PEERS: Final[PeerFences] = PEERS
# Fan-out states kept for reuse per route (as allfastest's).
_FREE_STATES: Final = 1024


def succeeded(reply: bytes) -> bool:
    """True for a reply that says the write was done."""
    c = reply[:1]
    if c == b"S":
        return reply.startswith(b"STORED")
    if c in (b"D", b"T"):
        return reply.startswith(b"DELETED") or reply.startswith(b"TOUCHED")
    if c in (b"H", b"V", b"O"):
        return reply[:2] in (b"HD", b"VA", b"OK") or reply.startswith(b"VALUE")
    return c.isdigit()


def absent(reply: bytes) -> bool:
    """True for an answer that says the replica does not hold the key: nothing old to read
    there, so it is not stale whatever the others answered."""
    return reply.startswith(b"NOT_FOUND") or reply[:2] in (b"NF", b"EN")


def outcome(reply: bytes) -> bytes:
    """What two replicas must agree on: the reply without meta ``c`` (CAS) tokens, which
    differ per node even when both stored the same value."""
    eol = reply.find(b"\r\n")
    line = reply[:eol] if eol >= 0 else reply
    if b" c" not in line or reply[:2] not in (b"HD", b"VA", b"NS", b"EX", b"NF"):
        return reply
    kept = [t for t in line.split(b" ") if not t.startswith(b"c")]
    return b" ".join(kept) + reply[len(line) :]


def agrees(reply: bytes, answer: bytes) -> bool:
    """True when a replica that answered ``reply`` holds what the client was told."""
    if reply == answer or absent(reply) or reply.startswith(b"VALUE"):
        return True  # a get-and-touch hit: its value is not this write's outcome
    if classify(reply) is ERROR:
        return False
    return outcome(reply) == outcome(answer)


class _Sync(Waiter):
    """One write sent to every child, until it can be answered. Reused like allfastest's."""

    __slots__ = (
        "answered", "cb", "expired", "key", "on_reply", "remaining", "replies", "route", "token",
    )  # fmt: skip

    def __init__(self, route: AllSync) -> None:
        super().__init__()
        self.route = route
        self.replies: list[bytes] = [b""] * len(route.children)
        self.remaining = 0
        self.answered = False
        self.expired = False
        self.key = b""
        self.cb: ReplyCallback = drop
        self.token: object = None
        self.on_reply: ReplyCallback = self.reply

    def start(self, key: bytes, cb: ReplyCallback, token: object) -> None:
        """Begin a new request with this (fresh or reused) state."""
        self.key = key
        self.cb = cb
        self.token = token
        self.remaining = len(self.replies)
        self.answered = False
        self.expired = False
        replies = self.replies
        for i in range(len(replies)):
            replies[i] = b""

    def reply(self, index: int, reply: bytes) -> None:
        """Child ``index`` answered."""
        self.replies[index] = reply
        self.remaining -= 1
        if self.answered:
            if not self.remaining:
                self._release()  # a late copy: its replica was journaled already
            return
        if not self.remaining or (self.expired and classify(reply) is not ERROR):
            self._finish()

    def expire(self) -> None:
        """``ack_wait`` is over: answer if a replica has acknowledged."""
        if self.answered or not self.remaining:
            return
        self.expired = True
        for r in self.replies:
            if r and classify(r) is not ERROR:
                self._finish()
                return

    def _finish(self) -> None:
        route = self.route
        replies = self.replies
        journaled = False
        if route.strict:
            answer = replies[-1]
            for r in replies:
                if classify(r) is ERROR:
                    answer = r
                    break
        else:
            answer = self._available_answer()
            key = self.key
            for i, r in enumerate(replies):
                if not r or not agrees(r, answer):
                    # Failed, not answered in time, or holding something else: out of service
                    # until repaired, before the client hears of the write.
                    route.children[i].journal_key(key)
                    journaled = True
        cb = self.cb
        token = self.token
        self.answered = True
        self.cb = _DROP
        self.token = None
        if not self.remaining:
            self._release()  # before answering: the answer may lead to another request
        # With --workers, a journaled write is answered once every worker has the replica
        # out of service (memfleet.backends.peers): at once unless its fence is new.
        if journaled and _PEERS.pending and _PEERS.hold(cb, token, answer):
            return
        cb(token, answer)

    def _available_answer(self) -> bytes:
        first_answer = first_error = b""
        for r in self.replies:
            if not r:
                continue
            if classify(r) is ERROR:
                if not first_error:
                    first_error = r
            elif succeeded(r):
                return r
            elif not first_answer:
                first_answer = r
        return first_answer or first_error

    def _release(self) -> None:
        self.gen += 1
        free = self.route._free
        if len(free) < _FREE_STATES:
            free.append(self)


class AllSync(Route):
    """Send to every child; answer by the ``ack`` policy (see the module docstring)."""

    __slots__ = ("_aligned", "_deadlines", "_free", "ack_wait", "children", "strict")

    def __init__(
        self, children: list[Route], ack: str = "available", ack_wait: float = DEFAULT_ACK_WAIT
    ) -> None:
        if ack not in ("available", "all"):
            raise ValueError(f"ack must be 'available' or 'all', not {ack!r}")
        self.children = children
        self.strict = ack == "all"
        self.ack_wait = ack_wait
        self._free: list[_Sync] = []
        # ack_wait does not apply under ack: all (every reply is waited for).
        self._deadlines = (
            Deadlines(ack_wait) if not self.strict and ack_wait > 0 and len(children) > 1 else None
        )
        self._aligned: list[PoolRoute] | None = aligned_pools(children)

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Fan out and gather the replies."""
        free = self._free
        state = free.pop() if free else _Sync(self)
        state.start(req.key, cb, token)
        reply = state.on_reply
        deadlines = self._deadlines
        if deadlines is not None:
            deadlines.add(state)
        aligned = self._aligned
        if aligned is not None:
            shard = aligned[0].shard(req.key)
            for i, pool in enumerate(aligned):
                pool.send_to(shard, req, reply, i)
            return
        for i, child in enumerate(self.children):
            child.send(req, reply, i)

    def journal_key(self, key: bytes) -> None:
        """Every child may hold an old value of ``key``."""
        for child in self.children:
            child.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """All children's backends."""
        return unique_backends(self.children)
