"""A replica's rejoin mark: what several proxy instances (a DaemonSet) share about it.

Proxy instances share no journal (``memfleet.backends.peers`` is for the workers of one
proxy). So a proxy that journals keys for a replica also raises a counter *in the cache*, on
the replica's repair sources (the healthy replicas it copies from): the key
``memfleet:rejoin:<host:port>`` (meta arithmetic: created at 1, incremented, with a TTL). It
lowers it once it has repaired what it journaled. Any proxy that had the replica out of
service, for any reason, puts it back only when the counter is 0 or absent: until then the
other proxies still have keys to repair there, and it asks again every ``retry_timeout``.

The counter lives ``MARK_TTL`` seconds from its last raise or refresh; a proxy refreshes the
marks it holds at each probe of its replica, so a proxy that died holding one keeps the
replica out for at most that long. What it does not cover: a proxy that never had the
replica out of service (it saw no failure: idle during a short hang, or a divergent write
through another proxy) serves it as before; and a raise that no source took (all of them
down) protects nothing. Nothing here runs per request: only a replica's first journaled key,
its probes while out of service, and its rejoin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("memfleet.backends")

MARK_PREFIX: Final = b"memfleet:rejoin:"
MARK_TTL: Final = 30


def _drop(_token: object, _reply: bytes) -> None:
    pass


def _number(reply: bytes) -> int | None:
    """The value of an ``ma``/``mg`` ``v`` reply; 0 for a miss; None for an error."""
    if reply.startswith(b"VA "):
        body = reply.split(b"\r\n", 2)[1]
        return int(body) if body.isdigit() else 1  # not ours: count it as held
    if reply.startswith(b"EN") or reply.startswith(b"NF"):
        return 0
    return None


class RejoinMark:
    """The mark of one backend (its name), kept on its repair sources."""

    __slots__ = ("held", "key", "sources")

    def __init__(self, name: str, sources: list[Any]) -> None:
        self.key = MARK_PREFIX + name.encode()
        self.sources = sources  # pools: the mark goes to the backend its key places in each
        self.held = False

    def _backends(self) -> list[Any]:
        return [s.backend_for(self.key) for s in self.sources]

    def raise_(self) -> None:
        """This process has keys to repair on the replica (once per outage)."""
        if self.held:
            return
        self.held = True
        wire = b"ma %s N%d J1 T%d\r\n" % (self.key, MARK_TTL, MARK_TTL)
        for b in self._backends():
            b.send(wire, _drop, None)

    def refresh(self) -> None:
        """Keep a held mark alive (at each probe while the replica is out of service)."""
        if self.held:
            for b in self._backends():
                b.send(b"mg %s T%d\r\n" % (self.key, MARK_TTL), _drop, None)

    def settle(self, done: Callable[[int], None]) -> None:
        """Lower this process's mark if it holds one, then call ``done`` with how many
        processes still hold one (the largest count any source gives; 0 when none answers:
        with no healthy replica to ask, the returning one serves)."""
        backends = self._backends()
        if not backends:
            done(0)
            return
        wire = b"ma %s MD v\r\n" % self.key if self.held else b"mg %s v\r\n" % self.key
        self.held = False
        state = _Settle(len(backends), done)
        for b in backends:
            b.send(wire, state.reply, None)


class _Settle:
    __slots__ = ("done", "highest", "left")

    def __init__(self, left: int, done: Callable[[int], None]) -> None:
        self.left = left
        self.done = done
        self.highest = 0

    def reply(self, _token: object, reply: bytes) -> None:
        n = _number(reply)
        if n is not None and n > self.highest:
            self.highest = n
        self.left -= 1
        if self.left == 0:
            self.done(self.highest)
