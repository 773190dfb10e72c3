"""What ``memfleet up`` was told."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from memfleet.fleet.local.layout import Layout
from memfleet.fleet.local.registry import DEFAULT_NAME
from memfleet.fleet.local.restarts import RestartPolicy

Persistence = Literal["none", "memory-file", "restartable"]
PERSISTENCE = ("none", "memory-file", "restartable")
DEFAULT_PORT = 11211
DEFAULT_NODE_MEMORY_MB = 64


@dataclass
class FleetOptions:
    """Everything ``memfleet up`` was told."""

    layout: Layout
    port: int = DEFAULT_PORT
    persistence: Persistence = "none"
    data_dir: Path | None = None
    memory: int = DEFAULT_NODE_MEMORY_MB
    state_file: Path | None = None
    hosts: int = 0
    ready_timeout: float = 120.0
    stop_timeout: float = 60.0
    log_level: str = "info"
    name: str = DEFAULT_NAME
    restart: RestartPolicy = "always"
    metrics: tuple[str, int] | None = None  # the proxy's metrics and status page
    # The proxy config's migration_window (seconds a resize keeps the old placement beside
    # the new one; 0: off); None: the config's own, or the proxy's default.
    migration_window: float | None = None
