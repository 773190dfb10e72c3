"""One poller per node: asks its own memcached for ``stats`` every few seconds and keeps the
last answer, so that every reader (the ``/metrics`` endpoint, a status page) sees the same
figures and memcached is asked once per interval however often it is scraped."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from memfleet.fleet.node.probe import ask


@dataclass(frozen=True)
class Snapshot:
    """The result of one poll. ``stats`` is empty when memcached did not answer."""

    taken: float  # time.time() of the poll
    stats: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether memcached answered this poll."""
        return self.error is None


def parse_stats(reply: bytes) -> dict[str, str]:
    """``STAT name value`` lines → {name: value} (``END`` and anything else is skipped)."""
    out: dict[str, str] = {}
    for line in reply.decode(errors="replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def poll_once(host: str, port: int, timeout: float) -> Snapshot:
    """Ask memcached for ``stats`` once."""
    now = time.time()
    try:
        reply = ask(host, port, b"stats\r\n", b"END\r\n", timeout=timeout)
    except OSError as exc:
        return Snapshot(now, error=str(exc) or type(exc).__name__)
    stats = parse_stats(reply)
    if "pid" not in stats:  # not memcached's stats: treat as no answer rather than zeros
        return Snapshot(now, error="unexpected reply to stats")
    return Snapshot(now, stats)


class StatsPoller:
    """Polls ``stats`` in a daemon thread every ``interval`` seconds."""

    def __init__(self, host: str, port: int, interval: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.interval = interval
        # The poll's own timeout stays below the interval, so polls never pile up.
        self.timeout = max(0.2, min(2.0, interval / 2))
        self.last: Snapshot | None = None
        self.last_ok: Snapshot | None = None
        self.polls = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> Snapshot:
        """Poll now and record the result (the thread calls this; tests may too)."""
        snap = poll_once(self.host, self.port, self.timeout)
        self.polls += 1
        if snap.ok:
            self.last_ok = snap
        else:
            self.failures += 1
        self.last = snap  # one reference swap: readers never see half a snapshot
        return snap

    def start(self) -> None:
        """Start polling in the background."""
        self._thread = threading.Thread(target=self._run, name="stats-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (bounded wait for the thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.poll()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
