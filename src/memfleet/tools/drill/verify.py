"""Reading every warmed key back after the run: what holds its value, what is missing, what
holds another value and what could not be read."""

from __future__ import annotations

import socket
import time

from memfleet.tools.bench.workload import key_of, value_of
from memfleet.tools.drill.options import WARM_PREFIX, DrillError, DrillOptions


def verify_keys(host: str, port: int, keys: int, value_size: int) -> dict[str, int]:
    """Read every warmed key (pipelined single gets): how many hold their value, are missing,
    hold another value, or could not be read (an error reply)."""
    out = {"ok": 0, "missing": 0, "wrong": 0, "unreadable": 0}
    prefix = WARM_PREFIX.encode()
    chunk = 100
    with socket.create_connection((host, port), timeout=10) as s:
        for lo in range(0, keys, chunk):
            idx = range(lo, min(keys, lo + chunk))
            s.sendall(b"".join(b"get " + key_of(prefix, i) + b"\r\n" for i in idx))
            buf = b""
            pos = 0
            for i in idx:
                while True:
                    reply_end = _reply_end(buf, pos)
                    if reply_end >= 0:
                        break
                    data = s.recv(1 << 20)
                    if not data:
                        raise DrillError("verify: the proxy closed the connection")
                    buf += data
                reply = buf[pos:reply_end]
                pos = reply_end
                if reply.startswith(b"VALUE "):
                    body = reply.split(b"\r\n", 2)[1]
                    out["ok" if body == value_of(i, value_size) else "wrong"] += 1
                elif reply == b"END\r\n":
                    out["missing"] += 1
                else:
                    out["unreadable"] += 1
    return out


def _reply_end(buf: bytes, pos: int) -> int:
    """End of the complete get reply starting at ``pos`` in ``buf``, or -1."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return -1
    if buf.startswith(b"VALUE ", pos):
        length = int(buf[pos:eol].split()[3])
        stop = eol + 2 + length + 2
        return stop + 5 if len(buf) >= stop + 5 else -1
    return eol + 2


def verify_when_settled(host: str, port: int, opts: DrillOptions) -> dict[str, int]:
    """Read the warmed keys back; a node that was just restarted may still be marked down in
    the proxy for one retry interval, so unreadable keys are read again a few times."""
    verify = verify_keys(host, port, opts.keys, opts.value_size)
    for _ in range(10):
        if not verify["unreadable"]:
            break
        time.sleep(0.5)
        verify = verify_keys(host, port, opts.keys, opts.value_size)
    return verify
