"""Bounded waits for fan-out routes (``ack_wait``) without a timer per request.

A replicated write answers once one replica has acknowledged it and the others have had
``ack_wait`` to answer; a replicated read's miss waits at most ``ack_wait`` for a hit. A timer
per request (``loop.call_later`` and its cancel) would cost about a microsecond each, more than
the rest of a fan-out. Instead every request that waits is put in the current batch; one timer
per route ticks every ``ack_wait / 2`` while anything waits and expires the batch before last.
A request thus waits between half of ``ack_wait`` and all of it. States are reused, so each
entry carries the state's generation: an entry whose state has moved on is skipped.
"""

from __future__ import annotations

import asyncio

from mypy_extensions import mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)
class Waiter:
    """A fan-out state that can run out of time. ``gen`` changes each time it is reused."""

    __slots__ = ("gen",)

    def __init__(self) -> None:
        self.gen = 0

    def expire(self) -> None:
        """The wait is over for the request this state holds (if it still holds it)."""


class Deadlines:
    """The waiting states of one route, in two batches, and the route's timer."""

    __slots__ = ("_cur", "_cur_gen", "_prev", "_prev_gen", "_tick", "_timer", "half")

    def __init__(self, wait: float) -> None:
        self.half = wait / 2
        self._cur: list[Waiter] = []
        self._cur_gen: list[int] = []
        self._prev: list[Waiter] = []
        self._prev_gen: list[int] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tick = self.tick  # bound once: scheduled every tick while anything waits

    def add(self, state: Waiter) -> None:
        """``state`` waits from now on (at most the route's ``ack_wait``)."""
        self._cur.append(state)
        self._cur_gen.append(state.gen)
        if self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # No event loop (a unit test driving routes by hand): nothing expires.
            self._cur.clear()
            self._cur_gen.clear()
            return
        self._timer = loop.call_later(self.half, self._tick)

    def tick(self) -> None:
        """Expire the batch before last; the current one becomes the next to expire."""
        self._timer = None
        prev = self._prev
        gens = self._prev_gen
        self._prev, self._cur = self._cur, []
        self._prev_gen, self._cur_gen = self._cur_gen, []
        for i in range(len(prev)):
            state = prev[i]
            if state.gen == gens[i]:
                state.expire()
        if (self._prev or self._cur) and self._timer is None:
            self._schedule()

    def cancel(self) -> None:
        """Stop the timer (the route is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
