"""When the proxy reads from a client: flow control as its own small object.

Four independent reasons stop reading from a client, and reading resumes only once none
holds: its transport's buffer of unwritten replies is over its high-water mark (``WRITE``),
too many of its requests are in flight (``INFLIGHT``, ``max_inflight``), its byte budget is
spent (``BUDGET``, ``max_client_bytes``), or the whole process is over ``max_memory`` and this
client is one of those holding the most (``MEMORY``). Each reason is set and cleared by its
own rule; this object only turns the set of reasons into ``pause_reading``/``resume_reading``
calls, once per transition.
"""

from __future__ import annotations

import asyncio
from typing import Final

WRITE: Final = 1
INFLIGHT: Final = 2
BUDGET: Final = 4
MEMORY: Final = 8


class ReadFlow:
    """The reasons a client is not read from now (a bit set), and its transport."""

    __slots__ = ("reasons", "transport")

    def __init__(self) -> None:
        self.reasons = 0
        self.transport: asyncio.Transport | None = None

    def pause(self, reason: int) -> bool:
        """Stop reading for ``reason``; False if it already held."""
        before = self.reasons
        if before & reason:
            return False
        self.reasons = before | reason
        if not before and self.transport is not None:
            self.transport.pause_reading()
        return True

    def resume(self, reason: int) -> bool:
        """``reason`` no longer holds; reading resumes if no other does. False if it did not
        hold."""
        before = self.reasons
        if not before & reason:
            return False
        self.reasons = before & ~reason
        if not self.reasons and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        return True
