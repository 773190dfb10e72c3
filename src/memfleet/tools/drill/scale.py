"""The resize drills (``--fault scale-out`` and ``scale-in``): the fleet resized under load by
``memfleet scale`` itself, and what the clients saw of it.

``scale-out`` starts the fleet with ``--shards`` shards and adds one; ``scale-in`` starts it
with one more and removes it. The change comes at 30% of the run. The proxy's migration
window is, unless given, the time from there to 60% of the run, so the run shows the window
and the time after it (for ``scale-in`` the removed node is stopped when it ends). With
``--baseline`` each topology is drilled again with ``migration_window: 0`` (a plain reload,
today's behaviour of every memcached proxy), side by side.

What the summary adds to the fault drills' figures: the misses after the change (every warmed
key hits before it, so each is a key the move lost, at least for the moment), the lowest hit
rate of any second from the change on, and the proxy's own migration counters.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from memfleet.tools.drill.fleet_process import FleetProcess
from memfleet.tools.drill.options import DrillError, DrillOptions

SCALE_TIMEOUT = 120.0


def scale_sizes(opts: DrillOptions) -> tuple[int, int]:
    """(shards before, shards after) of the drill's resize."""
    small = opts.shards
    return (small, small + 1) if opts.fault == "scale-out" else (small + 1, small)


def auto_window(opts: DrillOptions) -> float:
    """The migration window when none is given: from the change to the heal time."""
    if opts.migration_window is not None:
        return opts.migration_window
    return round(opts.duration * (opts.heal_at - opts.fault_at), 1)


class ScaleInjector(threading.Thread):
    """Runs ``memfleet scale --shards N`` on the drill's fleet at ``t_fault`` (wall clock),
    then waits (bounded) for the end of the migration window: for a scale-in, until ``up``
    has stopped the removed node."""

    def __init__(self, fleet: FleetProcess, shards: int, t_fault: float, window: float,
                 scale_in: bool) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.fleet = fleet
        self.shards = shards
        self.t_fault = t_fault
        self.window = window
        self.scale_in = scale_in
        self.requested_at: float | None = None
        self.injected_at: float | None = None  # the proxy serves the new size
        self.healed_at: float | None = None  # the window is over
        self.output = ""
        self.error: str | None = None
        self._stop_event = threading.Event()

    def cancel(self) -> None:
        """Stop waiting."""
        self._stop_event.set()

    def run(self) -> None:
        try:
            if self._stop_event.wait(max(0.0, self.t_fault - time.time())):
                return
            self.requested_at = time.time()
            r = subprocess.run(
                [sys.executable, "-m", "memfleet", "scale", "--shards", str(self.shards),
                 "--state-file", str(self.fleet.state_path), "--timeout", str(SCALE_TIMEOUT)],
                capture_output=True, text=True, timeout=SCALE_TIMEOUT + 10,
            )  # fmt: skip
            self.output = (r.stderr + r.stdout).strip()
            if r.returncode != 0:
                raise DrillError(f"memfleet scale --shards {self.shards}: {self.output}")
            self.injected_at = time.time()
            self._wait_window()
        except (OSError, subprocess.SubprocessError, DrillError) as exc:
            self.error = str(exc)

    def _wait_window(self) -> None:
        assert self.injected_at is not None
        end = self.injected_at + self.window
        if not self.scale_in:
            if not self._stop_event.wait(max(0.0, end - time.time())):
                self.healed_at = time.time()
            return
        # `up` stops the removed node once the window is over: that is the heal.
        deadline = end + 30
        while not self._stop_event.is_set() and time.time() < deadline:
            state = self.fleet.reload_state()
            if time.time() >= end and not state.get("retiring"):
                self.healed_at = time.time()
                return
            self._stop_event.wait(0.1)


def proxy_migration_stats(host: str, port: int) -> dict[str, int]:
    """The proxy's migration counters (the ``migration_*`` lines of ``stats proxy``)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"stats proxy\r\n")
        buf = b""
        deadline = time.monotonic() + 5
        while not buf.endswith(b"END\r\n") and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        for line in buf.decode(errors="replace").split("\r\n"):
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT" and "migrat" in parts[1]:
                with contextlib.suppress(ValueError):
                    out[parts[1]] = int(parts[2])
    return out


def scale_summary(
    series: list[dict[str, Any]], requested_at: float, migration: dict[str, int]
) -> dict[str, Any]:
    """What the resize cost the clients: misses before and from the second the resize began,
    the lowest hit rate of those seconds, and the proxy's migration counters."""
    before = [p for p in series if p["t"] + 1 <= requested_at]
    after = [p for p in series if p["t"] + 1 > requested_at]
    rates = [p["hit_rate"] for p in after if p["hit_rate"] is not None]
    return {
        "misses_before_change": sum(int(p.get("misses", 0)) for p in before),
        "misses_after_change": sum(int(p.get("misses", 0)) for p in after),
        "min_hit_rate_after_change": min(rates) if rates else None,
        "seconds_below_99pct": sum(1 for r in rates if r < 0.99),
        "proxy_migration": migration,
    }


def scale_report_line(topology: str, s: dict[str, Any]) -> str:
    """The drill's progress line for a resize."""
    low = s.get("min_hit_rate_after_change")
    return (f"{topology}: lowest hit rate {'-' if low is None else f'{low:.2%}'} in a second "
            f"after the change, {s['misses_after_change']} misses after it, "
            f"{s['errors']} errors, {s['stale_reads']} stale reads; proxy: "
            + json.dumps(s.get("proxy_migration") or {}))  # fmt: skip
