"""When ``memfleet up`` restarts what exited, as a StatefulSet's ``restartPolicy: Always``
does: after a delay that doubles while the child keeps failing (1 s, 2 s, 4 s ... at most
30 s, like Kubernetes' crash-loop back-off but scaled to one machine); a child that ran for
30 s is forgiven and its next restart comes after 1 s again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RestartPolicy = Literal["always", "never"]
RESTART_POLICIES = ("always", "never")
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 30.0  # seconds of running that reset the back-off


@dataclass
class Restarts:
    """One child's restart record: how often, why last, and when the next one is due."""

    count: int = 0
    crashes: int = 0  # exits in a row without a stable run
    started_at: float = 0.0
    due: float | None = None  # monotonic time of the pending restart
    last_exit: str | None = None  # ``status 137 (SIGKILL)``
    down: bool = False  # exited, and that exit has been seen

    def started(self, now: float) -> None:
        """The child was (re)started at ``now``."""
        self.started_at = now
        self.due = None
        self.down = False

    def exited(self, now: float, how: str, policy: RestartPolicy) -> float | None:
        """The child exited (``how``); returns the delay before its restart, or None."""
        self.last_exit = how
        self.down = True
        if now - self.started_at >= STABLE_AFTER:
            self.crashes = 0
        self.crashes += 1
        if policy == "never":
            self.due = None
            return None
        delay = min(MAX_DELAY, FIRST_DELAY * 2.0 ** (self.crashes - 1))
        self.due = now + delay
        return delay

    def is_due(self, now: float) -> bool:
        """Whether the pending restart's time has come."""
        return self.due is not None and now >= self.due

    def restarted(self, now: float) -> None:
        """The restart happened."""
        self.count += 1
        self.started(now)
