"""Routes that send one request to several children: ``allfastest``, ``allasync`` and
``split`` (``allsync`` has its own module). Result classes follow memcached's proxy: only
END/EN is a miss."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.fence import FENCE, WriteFence
from memfleet.protocol.commands import SUCCESS
from memfleet.protocol.requests import Kind, Reply, Request
from memfleet.protocol.responses import ERROR, HIT, MISS, classify
from memfleet.routes.base import Route, drop, unique_backends
from memfleet.routes.pool import aligned_pools
from memfleet.routes.waits import Deadlines, Waiter

# What ``allasync`` answers at once, by command (the reply a successful write would give).
_ASYNC_REPLY: Final = SUCCESS


_FENCE: Final[WriteFence] = FENCE
# Seconds a replicated miss waits for a hit, and a replicated write for the other replicas.
DEFAULT_ACK_WAIT: Final = 0.05


def fill_request(hit: bytes, ttl: int, snapshot: int) -> Request | None:
    """An ``add`` that copies a text get hit to a replica that missed it (warm-up); None when
    there is nothing to copy, or when a write of the key was routed after the read that found
    the hit (``snapshot``: the write fence's counter when that read was routed), which the
    copy would undo (a deleted key brought back)."""
    if not hit.startswith(b"VALUE "):
        return None
    eol = hit.find(b"\r\n")
    parts = hit[:eol].split(b" ")
    key, flags, size = parts[1], parts[2], parts[3]
    end = eol + 2 + int(size) + 2
    if _FENCE.written_since(key, snapshot):
        return None
    wire = b"add %s %s %d %s\r\n" % (key, flags, ttl, size) + hit[eol + 2 : end]
    return Request(Kind.KEYED, b"add", wire, key, Reply.NOREPLY)


def _fill_stored(token: tuple[Route, bytes, int], reply: bytes) -> None:
    # With --workers: another worker's write of the key may have reached the replica before
    # this fill on a connection of its own; if one was in flight or active since the read,
    # the stored copy may undo it, so it is deleted again (a miss, never an old value).
    route, key, snapshot = token
    if reply.startswith(b"STORED") and _FENCE.peers_active(key, snapshot):
        wire = b"delete " + key + b"\r\n"
        route.send(Request(Kind.KEYED, b"delete", wire, key, Reply.NOREPLY), drop, None)


def send_fill(route: Route, req: Request, snapshot: int) -> None:
    """Send a fill made by ``fill_request`` to ``route`` (the replica that missed)."""
    if _FENCE.shared is None:
        route.send(req, drop, None)
    else:
        route.send(req, _fill_stored, (route, req.key, snapshot))


# Final: a C variable in the compiled build (an imported function is otherwise looked up in
# the module's dict each time a state is released).
_DROP: Final[ReplyCallback] = drop

# Fan-out states kept for reuse per allfastest route: enough for a burst of gets in flight,
# bounded so that a past burst does not hold memory forever.
_FREE_STATES: Final = 1024


class _Fastest(Waiter):
    """One fanned-out request: collects the children's replies, answers the client once.

    States are reused (``AllFastest._free``) rather than allocated per get, with their bound
    ``reply`` kept: a state and a bound method per request were most of what a replicated get
    allocated, and the garbage collector walked them all."""

    __slots__ = (
        "cb",
        "cmd",
        "done",
        "error",
        "hit",
        "miss",
        "missed",
        "on_reply",
        "remaining",
        "route",
        "snap",
        "token",
    )

    def __init__(self, route: AllFastest) -> None:
        super().__init__()
        self.route = route
        self.cmd = b""  # all a fill needs to know of the request
        self.cb: ReplyCallback = drop
        self.token: object = None
        self.remaining = 0
        self.done = False
        self.error = b""
        self.miss = b""
        self.hit = b""
        self.missed: list[int] = []
        self.snap = 0
        self.on_reply: ReplyCallback = self.reply

    def start(self, cmd: bytes, cb: ReplyCallback, token: object) -> None:
        """Begin a new request with this (fresh or reused) state."""
        self.cmd = cmd
        self.cb = cb
        self.token = token
        self.remaining = len(self.route.children)
        self.done = False
        self.snap = _FENCE.snapshot()  # a fill must not undo a write routed after this read

    def reply(self, index: int, reply: bytes) -> None:
        """Child ``index`` answered."""
        self.remaining -= 1
        if self.done:
            # A late copy: only a miss that a fill will repair is worth classifying.
            if self.hit and self.route.fill_ttl is not None and classify(reply) is MISS:
                self._fill([index])
            elif self.missed and not self.hit and reply.startswith(b"V"):
                self.hit = reply  # a hit after ack_wait answered the miss: still worth a fill
                self._fill(self.missed)
        else:
            result = HIT if reply.startswith(b"V") else classify(reply)
            if result is ERROR:
                if not self.error:
                    self.error = reply
            elif result is MISS and self.route.miss:
                self.miss = reply
                self.missed.append(index)
                deadlines = self.route._deadlines
                if deadlines is not None and self.remaining and len(self.missed) == 1:
                    deadlines.add(self)  # a miss waits at most ack_wait for a hit elsewhere
            else:
                self.done = True
                if result is HIT:
                    self.hit = reply
                    if self.missed:
                        self._fill(self.missed)
                self.cb(self.token, reply)
            if not self.done and not self.remaining:
                self.done = True
                self.cb(self.token, self.miss or self.error)
        if not self.remaining:
            self._release()

    def expire(self) -> None:
        """``ack_wait`` is over: a miss that still waits for a hit is the answer."""
        if not self.done and self.missed:
            self.done = True
            cb = self.cb
            self.cb = _DROP
            cb(self.token, self.miss)

    def _release(self) -> None:
        # Every child has answered: nothing refers to this state any more.
        self.gen += 1
        self.cb = _DROP
        self.token = None
        self.error = self.miss = self.hit = b""
        self.missed.clear()
        free = self.route._free
        if len(free) < _FREE_STATES:
            free.append(self)

    def _fill(self, indexes: list[int]) -> None:
        ttl = self.route.fill_ttl
        if ttl is None or self.cmd not in (b"get", b"gets"):
            return
        for i in indexes:
            req = fill_request(self.hit, ttl, self.snap)
            if req is not None:
                send_fill(self.route.children[i], req, self.snap)


class AllFastest(Route):
    """Send to every child; answer with the first non-error reply. With ``miss``, a miss
    waits for a hit elsewhere, at most ``ack_wait`` seconds (and ``fill_ttl`` copies that hit
    back to who missed it). A hit never waits."""

    __slots__ = ("_aligned", "_deadlines", "_free", "ack_wait", "children", "fill_ttl", "miss")

    def __init__(
        self,
        children: list[Route],
        miss: bool = False,
        fill_ttl: int | None = None,
        ack_wait: float = DEFAULT_ACK_WAIT,
    ):
        self.children = children
        self.miss = miss
        self.fill_ttl = fill_ttl
        self.ack_wait = ack_wait
        self._deadlines = Deadlines(ack_wait) if miss and ack_wait > 0 else None
        self._free: list[_Fastest] = []
        self._aligned = aligned_pools(children)

    def _state(self, cmd: bytes, cb: ReplyCallback, token: object) -> _Fastest:
        free = self._free
        state = free.pop() if free else _Fastest(self)
        state.start(cmd, cb, token)
        return state

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Fan out; the first useful reply answers the client."""
        reply = self._state(req.cmd, cb, token).on_reply
        for i, child in enumerate(self.children):
            child.send(req, reply, i)

    def send_get(self, key: bytes, wire: bytes, cb: ReplyCallback, token: object) -> None:
        """A plain get: every child's own plain-get path, no request object."""
        reply = self._state(b"get", cb, token).on_reply
        aligned = self._aligned
        if aligned is not None:
            shard = aligned[0].shard(key)
            for i, pool in enumerate(aligned):
                pool.backend_list[shard].send(wire, reply, i)
            return
        for i, child in enumerate(self.children):
            child.send_get(key, wire, reply, i)

    def journal_key(self, key: bytes) -> None:
        """Every child may hold an old value of ``key``."""
        for child in self.children:
            child.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """All children's backends."""
        return unique_backends(self.children)


class AllAsync(Route):
    """Send to every child without waiting; the client gets a success reply at once. Reads
    (nothing to answer without waiting) go to the first child and wait for it."""

    __slots__ = ("children",)

    def __init__(self, children: list[Route]) -> None:
        self.children = children

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Fire and forget for writes."""
        reply = _ASYNC_REPLY.get(req.cmd)
        if reply is None:
            self.children[0].send(req, cb, token)
            for child in self.children[1:]:
                child.send(req, drop, None)
            return
        for child in self.children:
            child.send(req, drop, None)
        cb(token, reply)

    def journal_key(self, key: bytes) -> None:
        """Every child may hold an old value of ``key``."""
        for child in self.children:
            child.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """All children's backends."""
        return unique_backends(self.children)


class Split(Route):
    """Answer from ``a``; copy the request to ``b`` without waiting for it."""

    __slots__ = ("a", "b")

    def __init__(self, a: Route, b: Route) -> None:
        self.a = a
        self.b = b

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """``a`` answers, ``b`` gets a copy."""
        self.a.send(req, cb, token)
        self.b.send(req, drop, None)

    def journal_key(self, key: bytes) -> None:
        """Both sides may hold an old value of ``key``."""
        self.a.journal_key(key)
        self.b.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """Both sides' backends."""
        return unique_backends([self.a, self.b])
