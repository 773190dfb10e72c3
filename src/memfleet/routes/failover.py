"""``failover`` (children one at a time) and ``zfailover`` (local zone first)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.fence import FENCE
from memfleet.protocol.requests import Request
from memfleet.protocol.responses import ERROR, HIT, MISS, OK, classify
from memfleet.routes.base import Route, unique_backends
from memfleet.routes.fanout import fill_request, send_fill


class _Try:
    __slots__ = ("best", "cb", "i", "left", "order", "req", "route", "token")

    def __init__(
        self, route: Failover, req: Request, cb: ReplyCallback, token: object, order: list[Route]
    ) -> None:
        self.route = route
        self.req = req
        self.cb = cb
        self.token = token
        self.order = order
        self.left = min(route.failover_count, len(order))
        self.i = 0
        self.best = b""

    def next(self) -> None:
        child = self.order[self.i]
        self.i += 1
        self.left -= 1
        child.send(self.req, self.reply, None)

    def reply(self, _token: object, reply: bytes) -> None:
        result = classify(reply)
        again = result is ERROR or (result is MISS and self.route.miss)
        if result is not ERROR or not self.best:
            self.best = reply  # a miss is a better answer than a later error
        if again and self.left:
            self.next()
        else:
            self.cb(self.token, self.best if again else reply)


class Failover(Route):
    """Try children one at a time: on an error (and on a miss with ``miss``), the next one,
    at most ``failover_count`` tries. ``shuffle`` spreads the first try over the children."""

    __slots__ = ("children", "failover_count", "miss", "shuffle")

    def __init__(
        self,
        children: list[Route],
        miss: bool = False,
        failover_count: int | None = None,
        shuffle: bool = False,
    ) -> None:
        self.children = children
        self.miss = miss
        self.failover_count = failover_count or len(children)
        self.shuffle = shuffle

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Start with the first (or a random) child."""
        order = self.children
        if self.shuffle:
            order = random.sample(order, len(order))
        _Try(self, req, cb, token, order).next()

    def journal_key(self, key: bytes) -> None:
        """Every child may hold an old value of ``key``."""
        for child in self.children:
            child.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """All children's backends."""
        return unique_backends(self.children)


class _Zone:
    __slots__ = ("cb", "error", "miss", "remaining", "req", "route", "snap", "token")

    def __init__(self, route: ZFailover, req: Request, cb: ReplyCallback, token: object) -> None:
        self.route = route
        self.req = req
        self.cb = cb
        self.token = token
        self.remaining = 0
        self.error = b""
        self.miss = b""
        self.snap = FENCE.snapshot()  # the fill must not undo a write routed after this read

    def local(self, _token: object, reply: bytes) -> None:
        result = classify(reply)
        if result is ERROR or (result is MISS and self.route.miss):
            if result is MISS:
                self.miss = reply
            else:
                self.error = reply
            self.others()
        else:
            self.cb(self.token, reply)

    def others(self) -> None:
        others = self.route.remote
        if not others:
            self.cb(self.token, self.miss or self.error)
            return
        self.remaining = len(others)
        for child in others:
            child.send(self.req, self.remote, None)

    def remote(self, _token: object, reply: bytes) -> None:
        self.remaining -= 1
        if self.remaining < 0:
            return  # answered already
        result = classify(reply)
        if result is HIT or (result is OK):
            self.remaining = -1
            self.cb(self.token, reply)
            fill_ttl = self.route.fill_ttl
            local = self.route.local
            if (
                result is HIT
                and self.miss
                and local is not None
                and fill_ttl is not None
                and self.req.cmd in (b"get", b"gets")
            ):
                fill = fill_request(reply, fill_ttl, self.snap)
                if fill is not None:
                    send_fill(local, fill, self.snap)
            return
        if result is MISS:
            self.miss = reply
        elif not self.error:
            self.error = reply
        if self.remaining == 0:
            self.cb(self.token, self.miss or self.error)


class ZFailover(Route):
    """The local zone's route first; on its error (or miss, with ``miss``) every other zone
    in parallel, and the first hit wins (with ``fill_ttl``, copied into the local zone).
    Without a local zone, all zones in parallel."""

    __slots__ = ("fill_ttl", "local", "miss", "remote", "zones")

    def __init__(
        self,
        zones: dict[str, Route],
        local_zone: str | None,
        miss: bool = False,
        fill_ttl: int | None = None,
    ) -> None:
        self.zones = zones
        self.miss = miss
        self.fill_ttl = fill_ttl
        self.local = zones.get(local_zone) if local_zone is not None else None
        self.remote = [r for z, r in zones.items() if z != local_zone]

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Local zone first, then the rest."""
        state = _Zone(self, req, cb, token)
        if self.local is None:
            state.others()
        else:
            self.local.send(req, state.local, None)

    def journal_key(self, key: bytes) -> None:
        """Every zone may hold an old value of ``key``."""
        for zone in self.zones.values():
            zone.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """Every zone's backends."""
        return unique_backends(self.zones.values())
