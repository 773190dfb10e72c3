"""Writing replies and requests straight to a connection's socket.

A write through a uvloop transport costs far more than its system call: a buffer list, length
checks, a method looked up by name, the flow-control bookkeeping. On the proxy's hot path every
request pays for two or three writes, and the profile put a sixth of the proxy's user time
there. ``SocketWriter`` writes with one C call (``memfleet._sockio.send``, a non-blocking
``send``) whenever the transport has nothing buffered, which is nearly always; whatever the
socket does not take at once goes to the transport, which buffers it, applies flow control
(``pause_writing``) and reports errors exactly as before. Until that buffer drains, every write
goes through the transport too, so bytes never overtake each other.

The descriptor is only used between ``connection_made`` and ``connection_lost``: uvloop closes
a transport's socket after ``connection_lost`` returns, never before, so the number cannot
have been reused by then. Connections over TLS, and every connection of the pure-Python
fallback (or of a build without a C compiler), always write through the transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from memfleet._loader import is_compiled

Send = Callable[[int, bytes], int]


def _unavailable(_fd: int, _data: bytes) -> int:
    """Stands in for the C helper where it is not built (never called: fds stay -1)."""
    raise RuntimeError("memfleet._sockio is not available")


def _c_send() -> Send:
    if not is_compiled():
        return _unavailable  # the pure-Python fallback stays pure
    try:
        from memfleet._sockio import send
    except ImportError:  # built without a C compiler
        return _unavailable
    return send


send_now: Send = _c_send()


def direct_fd(transport: asyncio.BaseTransport) -> int:
    """The socket descriptor under ``transport`` if it may be written to directly, else -1."""
    if send_now is _unavailable:
        return -1
    if transport.get_extra_info("sslcontext") is not None:
        return -1  # the socket carries TLS records, not our bytes
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        fd = sock.fileno()
    except (AttributeError, OSError):
        return -1
    return fd if isinstance(fd, int) and fd >= 0 else -1


class SocketWriter:
    """Writes to one connection: straight to its socket while the transport has nothing
    buffered, through the transport otherwise (see the module's docstring)."""

    __slots__ = ("_send", "_sock_fd", "_transport", "_write", "fd")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._send = send_now  # an attribute, not a module global: no dict lookup per write
        self._write: Callable[[bytes], object] = transport.write
        self._sock_fd = direct_fd(transport)
        # The descriptor direct writes go to now; -1 while the transport holds bytes.
        self.fd = self._sock_fd

    def send(self, data: bytes) -> None:
        """Write ``data`` after everything written before it."""
        fd = self.fd
        if fd >= 0:
            left = self._send(fd, data)
            if left:
                self._spill(data, left)
            return
        self._through_transport(data)

    def _spill(self, data: bytes, left: int) -> None:
        # The socket took only part of it (its buffer is full) or nothing (full, or an error,
        # which the transport will meet again and report): the transport takes the rest.
        self.fd = -1
        self._write(data if left < 0 else data[len(data) - left :])

    def _through_transport(self, data: bytes) -> None:
        t = self._transport
        if self._sock_fd >= 0 and not t.get_write_buffer_size() and not t.is_closing():
            self.fd = self._sock_fd  # drained: direct writes again
            self.send(data)
            return
        self._write(data)

    def stop(self) -> None:
        """From now on, write through the transport only (it is closing, or being handed to
        another protocol)."""
        self.fd = self._sock_fd = -1
