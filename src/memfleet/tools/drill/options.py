"""What a drill does: the faults it knows, the keys it warms and writes, its settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAULTS = ("kill-node", "hang-node", "kill-host", "cut-host", "restart-node", "scale-out",
          "scale-in")  # fmt: skip
HOST_FAULTS = ("kill-host", "cut-host")
SCALE_FAULTS = ("scale-out", "scale-in")  # memfleet.tools.drill.scale
WARM_PREFIX = "drill:k:"
WRITE_PREFIX = "drill:w:"


class DrillError(Exception):
    """The drill could not run; ``str()`` is the one-line message."""


@dataclass
class DrillOptions:
    """What a drill does."""

    topologies: list[str]
    fault: str = "kill-node"
    duration: float = 20.0
    fault_at: float = 0.3  # fraction of the run
    heal_at: float = 0.6
    keys: int = 5_000
    connections: int = 4
    pipeline: int = 1
    rate: float = 3_000.0
    ratio: tuple[int, int] = (9, 1)
    value_size: int = 100
    hosts: int = 3
    # The proxy under test: ``memfleet up``'s own (1 worker, 1 instance), or the drill's own
    # over the same nodes, with ``workers`` processes each (``memfleet proxy --workers``) and
    # ``proxies`` instances (a DaemonSet's proxies: they share no journal). With several
    # instances the stale checker writes through the first and reads through the last, which
    # also carries the load.
    workers: int = 1
    proxies: int = 1
    out: Path | None = None
    log: Any = None  # a callable taking one progress line
    # The resize drills: the smaller of the two sizes (scale-out: shards → shards + 1,
    # scale-in: shards + 1 → shards), the proxy's migration window (None: from the change to
    # the heal time), and whether to drill each topology again with the window off.
    shards: int = 3
    migration_window: float | None = None
    baseline: bool = False
