"""Storing every key before a run, so that gets can hit and a drill can count what is lost."""

from __future__ import annotations

import socket

from memfleet.tools.bench.workload import RECV_SIZE, BenchConfig, BenchError, key_of, value_of


def preload(cfg: BenchConfig, indices: range | None = None, prefix: str | None = None) -> int:
    """Store ``prefix<i>`` for every index (default: all keys), pipelined; returns how many
    were stored (``STORED``)."""
    indices = indices if indices is not None else range(cfg.keys)
    p = (prefix if prefix is not None else cfg.key_prefix).encode()
    stored = 0
    chunk = 200
    with socket.create_connection((cfg.host, cfg.port), timeout=10) as s:
        idx = list(indices)
        for lo in range(0, len(idx), chunk):
            part = idx[lo : lo + chunk]
            req = b"".join(
                b"set %s 0 0 %d\r\n%s\r\n" % (key_of(p, i), cfg.value_size,
                                              value_of(i, cfg.value_size))
                for i in part
            )  # fmt: skip
            s.sendall(req)
            buf = b""
            while buf.count(b"\r\n") < len(part):
                data = s.recv(RECV_SIZE)
                if not data:
                    raise BenchError("preload: the target closed the connection")
                buf += data
            stored += buf.count(b"STORED\r\n")
    return stored
