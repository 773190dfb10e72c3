"""What a bench run does: its loopback target, the keys and their values, the request mix."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_PREFIX = "mfbench:"
RECV_SIZE = 256 * 1024  # bytes read from a socket at once


class BenchError(Exception):
    """A problem with the arguments or the target; ``str()`` is the one-line message."""


def parse_target(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` of a loopback address (``localhost`` is 127.0.0.1)."""
    host, sep, port_s = spec.rpartition(":")
    if not sep or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise BenchError(f"--target: {spec!r} is not HOST:PORT")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise BenchError(f"--target: {host!r} is not a loopback address (bench stays local)")
    return host.strip("[]"), int(port_s)


def parse_ratio(spec: str) -> tuple[int, int]:
    """``get:set`` weights such as ``9:1`` (``1:0`` reads only)."""
    try:
        g, s = (int(x) for x in spec.split(":"))
    except ValueError:
        raise BenchError(f"--ratio: {spec!r} is not GET:SET (e.g. 9:1)") from None
    if g < 0 or s < 0 or g + s == 0:
        raise BenchError(f"--ratio: {spec!r} needs non-negative weights, not both 0")
    return g, s


def key_of(prefix: bytes, i: int) -> bytes:
    """The key with index ``i``."""
    return prefix + b"%d" % i


def value_of(i: int, size: int) -> bytes:
    """The value stored under key ``i`` (deterministic, no CR/LF)."""
    stem = b"%d|" % i
    return (stem * (size // len(stem) + 1))[:size]


@dataclass
class BenchConfig:
    """What a bench run does."""

    host: str
    port: int
    connections: int = 8
    pipeline: int = 1
    ratio: tuple[int, int] = (9, 1)
    keys: int = 10_000
    value_size: int = 100
    duration: float = 10.0
    processes: int = 1
    key_prefix: str = DEFAULT_PREFIX
    # Sets go to their own keys (``<set_prefix><i>``) when given: a drill keeps the keys it
    # warmed untouched so that what is lost can be counted exactly.
    set_prefix: str | None = None
    rate: float = 0.0  # total requests per second; 0: as fast as replies come
    timeout: float = 3.0  # a batch unanswered this long counts as errors, connection reset
    max_ops: int = 0  # stop after this many requests in total (0: duration only)
    seed: int = 1
    # Requests are pre-built in this many batches per worker and cycled through, so a run
    # touches at most batches × pipeline distinct keys (a hot set when that is under ``keys``).
    batches: int = 512
