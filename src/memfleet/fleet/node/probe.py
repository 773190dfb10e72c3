"""Asking a running memcached: where to reach it, whether it answers, how many items it has."""

from __future__ import annotations

import socket


def connect_host(listen: str) -> str:
    """Where the supervisor reaches memcached: the first -l address, wildcards as loopback."""
    host = listen.split(",")[0].strip()
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def ask(host: str, port: int, command: bytes, end: bytes, timeout: float = 1.0) -> bytes:
    """Send one command and read until ``end``; OSError when memcached does not answer."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(command)
        buf = b""
        while not buf.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf


def answers_version(host: str, port: int) -> str | None:
    """memcached's ``VERSION`` reply, or None while it does not answer."""
    try:
        reply = ask(host, port, b"version\r\n", b"\r\n")
    except OSError:
        return None
    return reply.decode(errors="replace").strip() if reply.startswith(b"VERSION ") else None


def item_count(host: str, port: int) -> int | None:
    """``curr_items`` from ``stats`` (None if it cannot be read)."""
    try:
        reply = ask(host, port, b"stats\r\n", b"END\r\n")
    except OSError:
        return None
    for line in reply.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == b"curr_items":
            return int(parts[2])
    return None
