"""Counting stale reads during a drill: a writer and a reader beside the bench load.

One connection writes (``set`` a new value, or ``delete``) keys of its own (``drill:s:<i>``),
another reads each key back once the write was acknowledged. With ``--workers`` the two
connections usually land on different workers; with several proxy instances the writer uses
the first and the reader the last. A read is **stale** when it returns a value
other than the last one acknowledged, or a value of a key whose delete was acknowledged. A
miss is counted apart (a lost key, not a stale one); after a write that got an error the
key's value is unknown until the next acknowledged write, and its reads are not judged.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

STALE_PREFIX = b"drill:s:"
KEYS = 200


@dataclass
class StaleCounts:
    """What the checker saw."""

    writes: int = 0
    write_errors: int = 0
    reads: int = 0
    read_errors: int = 0
    stale: int = 0
    misses: int = 0
    examples: list[str] = field(default_factory=list)


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.buf = b""

    def request(self, data: bytes, get: bool) -> bytes:
        self.sock.sendall(data)
        while True:
            if get and self.buf.startswith(b"VALUE "):
                eol = self.buf.find(b"\r\n")
                if eol >= 0:
                    size = int(self.buf[:eol].split()[3])
                    stop = eol + 2 + size + 2 + 5
                    if len(self.buf) >= stop:
                        out, self.buf = self.buf[:stop], self.buf[stop:]
                        return out
            else:
                eol = self.buf.find(b"\r\n")
                if eol >= 0:
                    out, self.buf = self.buf[: eol + 2], self.buf[eol + 2 :]
                    return out
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


class StaleChecker(threading.Thread):
    """Writes and reads back at ``rate`` operations per second until stopped (bounded by
    ``seconds`` and a count)."""

    def __init__(
        self,
        host: str,
        port: int,
        seconds: float,
        rate: float = 300.0,
        read_from: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.read_from = read_from or (host, port)
        self.seconds = seconds
        self.rate = rate
        self.counts = StaleCounts()
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Finish the current round and return."""
        self._stop_event.set()

    def run(self) -> None:
        c = self.counts
        expected: dict[int, bytes | None] = {}
        unknown: set[int] = set()
        writer = reader = None
        deadline = time.monotonic() + self.seconds
        seq = 0
        try:
            writer, reader = _Conn(self.host, self.port), _Conn(*self.read_from)
            while not self._stop_event.is_set() and time.monotonic() < deadline:
                seq += 1
                if seq > 10_000_000:
                    break
                i = seq % KEYS
                key = STALE_PREFIX + b"%d" % i
                value = b"%d:%d" % (i, seq)
                try:
                    if seq % 4 == 0:
                        reply = writer.request(b"delete " + key + b"\r\n", False)
                        ok = reply in (b"DELETED\r\n", b"NOT_FOUND\r\n")
                        new: bytes | None = None
                    else:
                        wire = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value)
                        ok = writer.request(wire, False) == b"STORED\r\n"
                        new = value
                except OSError:
                    writer.close()
                    writer = _Conn(self.host, self.port)
                    ok, new = False, None
                c.writes += 1
                if ok:
                    expected[i] = new
                    unknown.discard(i)
                else:
                    c.write_errors += 1
                    unknown.add(i)
                self._read(reader, key, i, expected, unknown)
                time.sleep(max(0.0, 2.0 / self.rate))
        except OSError as exc:
            c.examples.append(f"checker stopped: {exc}")
        finally:
            for conn in (writer, reader):
                if conn is not None:
                    conn.close()

    def _read(self, reader: _Conn, key: bytes, i: int, expected: dict[int, bytes | None],
              unknown: set[int]) -> None:  # fmt: skip
        c = self.counts
        got = reader.request(b"get " + key + b"\r\n", True)
        c.reads += 1
        if not (got.startswith(b"VALUE ") or got == b"END\r\n"):
            c.read_errors += 1
            return
        if i in unknown or i not in expected:
            return
        want = expected[i]
        value = got.split(b"\r\n")[1] if got.startswith(b"VALUE ") else None
        if value == want:
            return
        if value is None:
            c.misses += 1
            return
        c.stale += 1
        if len(c.examples) < 5:
            c.examples.append(f"{key.decode()}: read {value!r}, last acknowledged {want!r}")
