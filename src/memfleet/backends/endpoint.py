"""What a backend connection needs of its backend: address, options, counters, and where to
report a failure. ``memfleet.backends.backend.Backend`` extends it with health and rejoin; the
connections (``memfleet.backends.connection``) only see this base, so neither module imports
the other's."""

from __future__ import annotations

import ssl
from typing import Any

from mypy_extensions import mypyc_attr

from memfleet.backends.failure import Failure
from memfleet.backends.latency import LatencyHistogram
from memfleet.config import BackendOptions
from memfleet.config.tls import client_context


@mypyc_attr(allow_interpreted_subclasses=True)
class Endpoint:
    """One memcached server's address, options and counters."""

    def __init__(self, host: str, port: int, options: BackendOptions) -> None:
        self.host = host
        self.port = port
        self.name = f"{host}:{port}"
        self.options = options
        self.down = False
        self.failures = 0
        # Counters for ``stats backends`` and metrics.
        self.requests = 0
        self.errors = 0
        self.failed_fast = 0
        self.queue_full = 0
        # Requests one connection may hold (limits.max_backend_queue; set by the builder).
        self.max_queue = 16384
        self.marked_down = 0
        # Observability, never touched per request: TCP connects (the first one included),
        # connection failures by kind, and a latency histogram once --metrics turns it on.
        self.connects = 0
        self.failure_kinds: dict[str, int] = {}
        self.latency: LatencyHistogram | None = None
        # Connections cut for a timeout and still draining (``connection.Drain``).
        self.drains: list[Any] = []
        self._tls: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        """The TLS context for this backend's connections (built once)."""
        if self._tls is None:
            assert self.options.tls is not None
            self._tls = client_context(self.options.tls)
        return self._tls

    def record_failure(self, failure: Failure, failed_requests: int) -> None:
        """Count a connection failure (``Backend`` adds the health rules)."""
        self.errors += failed_requests
        kind = failure.kind.value
        self.failure_kinds[kind] = self.failure_kinds.get(kind, 0) + 1
