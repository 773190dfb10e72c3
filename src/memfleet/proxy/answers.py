"""Commands the proxy answers itself, written once for every protocol: ``flush_all`` fan-out,
the proxy's own ``stats`` groups (``stats proxy``, ``stats backends``), ``version``. The admin
commands asked of the nodes (``stats`` and its other groups) are ``memfleet.proxy.admin``'s.

Each produces the text reply; a binary connection translates it like any other reply.
"""

from __future__ import annotations

from collections.abc import Callable

from memfleet import __version__
from memfleet.backends.backend import ReplyCallback
from memfleet.observe.stats import backend_stats, proxy_extra_lines, render
from memfleet.protocol import errors
from memfleet.proxy.serving import Serving

VERSION = f"VERSION memfleet-{__version__}\r\n".encode()


class Gather:
    """Collects the per-key replies of a multi-key get, or the per-backend replies of a
    flush, and hands one merged reply on."""

    __slots__ = ("cb", "merge", "parts", "remaining", "token")

    def __init__(
        self, cb: ReplyCallback, token: object, n: int, merge: Callable[[list[bytes]], bytes]
    ) -> None:
        self.cb = cb
        self.token = token
        self.parts: list[bytes] = [b""] * n
        self.remaining = n
        self.merge = merge

    def part(self, index: int, reply: bytes) -> None:
        """Reply ``index`` arrived; the merged reply goes on once all have."""
        self.parts[index] = reply
        self.remaining -= 1
        if not self.remaining:
            self.cb(self.token, self.merge(self.parts))


def merge_flush(parts: list[bytes]) -> bytes:
    """The first error any backend gave, else ``OK``."""
    for p in parts:
        if p != errors.OK:
            return p
    return errors.OK


def flush_all(serving: Serving, wire: bytes, cb: ReplyCallback, token: object) -> None:
    """Send ``flush_all`` to every backend the route tree reaches; ``cb(token, reply)`` once
    all have answered (at once, ``OK``, when there is none)."""
    serving.stats.cmd_flush += 1
    backends = list(serving.root.backends())
    if not backends:
        cb(token, errors.OK)
        return
    gather = Gather(cb, token, len(backends), merge_flush)
    for i, b in enumerate(backends):
        b.send(wire, gather.part, i)


def stats(serving: Serving, args: list[bytes]) -> bytes:
    """The reply to ``stats <group>`` for the proxy's own groups (memcached's ``ERROR`` for
    any other)."""
    counters = serving.stats
    sub = args[0] if args else b""
    if sub == b"backends":
        return render(backend_stats(serving.all_backends()))
    if sub == b"proxy":
        backends = serving.all_backends()
        lines = counters.general() + serving.limit_counters.lines()
        lines += [(f"pool_{name}_backends", len(p.backends)) for name, p in serving.pools.items()]
        lines += [("backends_down", sum(b.down for b in backends))]
        lines += proxy_extra_lines(counters, backends, (c.in_flight for c in serving.clients))
        lines += [
            ("client_bytes_held", sum(c.held for c in serving.clients)),
            ("max_client_bytes", serving.cfg.limits.max_client_bytes),
            ("max_memory", serving.cfg.limits.max_memory),
            ("memory_trims", serving.memory.trims),
        ]
        lines += serving.migration.lines(serving.migration_journal.size)
        return render(lines)
    return errors.ERROR
