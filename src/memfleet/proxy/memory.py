"""The whole process's budget (``limits.max_memory``), and memory given back to the system.

Each client's budget (``max_client_bytes``, ``memfleet.proxy.budget``) bounds what one client
may make the proxy hold; many clients, or replies larger than their reservations, can still
add up. ``MemoryGuard.check`` adds up what every client holds; past ``max_memory`` it stops
reading from the clients that hold the most until the rest fit, and drops the clients that
hold the most *without reading their replies* (nothing else shrinks what they hold) until
the total is back under the limit. Reading resumes once the total is under three quarters
of it. It runs at every limits sweep (once a second) and, between sweeps, whenever
``max_memory / 16`` more bytes of replies have gone to clients that are not reading: the
one way memory grows fast.

Giving memory back: CPython frees a large ``bytes`` object with ``free()``, and glibc keeps
freed memory for reuse unless told otherwise, so RSS stays at its peak after a burst. Two
deliberate steps (glibc only; elsewhere, nothing):
- ``mallopt(M_MMAP_THRESHOLD, 128 KiB)`` at start: blocks of 128 KiB and more (large replies
  and the joined buffers of large values) always get their own mapping, returned to the
  system when freed. glibc otherwise raises that threshold each time such a block is freed,
  after which large blocks come from the heap and stay there. Cost: an mmap/munmap pair per
  large reply, a few microseconds against the tens it takes to copy that much.
- ``malloc_trim(0)`` once the total held has fallen by ``TRIM_AFTER`` from its peak (checked
  at each sweep): the smaller blocks a burst left in the heap go back too. Cost: one call of
  a few milliseconds at most once a second, only after such a release.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from memfleet.logs import LimitEvents
from memfleet.proxy.limits import LimitCounters

log = logging.getLogger("memfleet.proxy.memory")

# A fall of the total held this large since its peak is given back (malloc_trim).
TRIM_AFTER = 16 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_MMAP_THRESHOLD = 128 * 1024


class HeldClient(Protocol):
    """What the guard needs from a client connection."""

    peer: object

    @property
    def held(self) -> int: ...
    @property
    def write_paused(self) -> bool: ...
    def memory_pause(self) -> None: ...
    def memory_resume(self) -> None: ...
    def drop(self, reply: bytes) -> None: ...


class _Libc:
    """glibc's allocator controls, if this is glibc."""

    def __init__(self) -> None:
        self.trim: Callable[[int], int] | None = None
        try:
            # The symbols already loaded into this process (libc among them), not
            # ctypes.util.find_library: that runs ldconfig or a compiler, a slow subprocess.
            libc = ctypes.CDLL(None)
            trim = getattr(libc, "malloc_trim", None)
            mallopt = getattr(libc, "mallopt", None)
        except OSError:
            return
        if trim is None or mallopt is None:
            return  # not glibc (musl has neither): nothing to do
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        self.trim = trim


class MemoryGuard:
    """Keeps the clients of one process under ``max_memory`` together (see the module)."""

    def __init__(
        self,
        max_memory: Callable[[], int],
        clients: Callable[[], Iterable[HeldClient]],
        counters: LimitCounters,
        events: LimitEvents,
    ) -> None:
        self.max_memory = max_memory
        self.clients = clients
        self.counters = counters
        self.events = events
        self.trims = 0  # times memory was given back
        self.held = 0  # the total at the last check
        self._peak = 0
        self._unsent = 0  # reply bytes sent to non-reading clients since the last check
        self._stopped: list[HeldClient] = []
        self._libc: _Libc | None = None

    def start(self) -> None:
        """Set the allocator up to give large blocks back (see the module)."""
        if self._libc is None:
            self._libc = _Libc()

    def unsent(self, n: int) -> None:
        """``n`` bytes of replies went to a client that is not reading them."""
        self._unsent += n
        if self._unsent > self.max_memory() >> 4:
            self.check()

    def check(self) -> None:
        """Add up what every client holds; enforce the limit (see the module)."""
        self._unsent = 0
        limit = self.max_memory()
        holding = [(c.held, c) for c in self.clients()]
        total = sum(h for h, _ in holding)
        self.held = total
        if total > self._peak:
            self._peak = total
        if total <= limit:
            if self._stopped and total <= limit - (limit >> 2):
                for c in self._stopped:
                    c.memory_resume()
                self._stopped = []
            return
        holding.sort(key=lambda hc: hc[0], reverse=True)
        reading = total
        for held, c in holding:
            if total <= limit:
                break
            if c.write_paused:
                # It does not read: what it holds only goes when it goes.
                self.counters.memory_dropped += 1
                self.events.warning(
                    "max_memory", "dropping client %s: it holds %d bytes unread and the "
                    "process is over max_memory (%d)", c.peer, held, limit,
                )  # fmt: skip
                c.drop(b"")
                total -= held
                reading -= held
            elif reading > limit >> 1 and c not in self._stopped:
                self.counters.memory_paused += 1
                self.events.warning(
                    "max_memory", "client %s holds %d bytes and the process is over "
                    "max_memory (%d): reading paused", c.peer, held, limit,
                )  # fmt: skip
                c.memory_pause()
                self._stopped.append(c)
                reading -= held
        self.held = total

    def sweep(self) -> None:
        """Once a sweep: enforce, and give memory back after a large release."""
        self.check()
        if self._peak - self.held >= TRIM_AFTER:
            self._peak = self.held
            libc = self._libc
            if libc is not None and libc.trim is not None:
                libc.trim(0)
                self.trims += 1
                log.debug("gave memory back (malloc_trim) after a release")
