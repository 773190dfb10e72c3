"""Why a backend connection failed, as a type: the kinds ``stats backends`` and the metrics
count (``errors_<kind>``), each with its detail for the log line."""

from __future__ import annotations

from enum import Enum


class FailureKind(Enum):
    """The kind of a backend connection failure; its value names the counter."""

    CONNECT = "connect"  # the TCP (or TLS) connect failed or timed out
    TIMEOUT = "timeout"  # no reply within read_timeout
    CLOSED = "closed"  # the backend closed or reset the connection
    PROTOCOL = "protocol"  # a reply the framer could not read, or more replies than requests
    OTHER = "other"


class Failure:
    """One connection failure: its kind and a detail for the log."""

    __slots__ = ("detail", "kind")

    def __init__(self, kind: FailureKind, detail: str) -> None:
        self.kind = kind
        self.detail = detail

    def __str__(self) -> str:
        return self.detail
