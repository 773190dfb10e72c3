"""Direct socket writes (memfleet.sockio): bytes stay in order through a full socket buffer,
the C send reports what it did not write, and only plain sockets are written directly."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import pytest

import memfleet
from memfleet import sockio
from memfleet.sockio import SocketWriter, direct_fd

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None

compiled_only = pytest.mark.skipif(
    not memfleet.is_compiled(), reason="direct writes are part of the compiled build only"
)


def _c_send() -> Any:
    from memfleet import _sockio

    return _sockio.send


@compiled_only
def test_c_send_reports_what_the_socket_did_not_take() -> None:
    send = _c_send()
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        assert send(a.fileno(), b"hello") == 0
        assert b.recv(16) == b"hello"
        # Nobody reads b: the buffers fill, then a send takes part of its bytes or none.
        results = [send(a.fileno(), b"x" * 65536) for _ in range(64)]
        assert any(r > 0 or r == -errno.EAGAIN for r in results), results
        assert all(r == -errno.EAGAIN or 0 <= r <= 65536 for r in results), results
    finally:
        a.close()
        b.close()


@compiled_only
def test_c_send_returns_the_error_of_a_peer_that_hung_up() -> None:
    send = _c_send()
    a, b = socket.socketpair()
    b.close()
    try:
        assert send(a.fileno(), b"late") in (-errno.EPIPE, -errno.ECONNRESET)
    finally:
        a.close()


@compiled_only
def test_c_send_refuses_anything_but_an_fd_and_bytes() -> None:
    send = _c_send()
    with pytest.raises(TypeError):
        send(0, "text")
    with pytest.raises(TypeError):
        send(0)
    with pytest.raises(ValueError):
        send(-1, b"x")


class _Transport:
    """Just what direct_fd asks of a transport."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes) -> None:
        pass


def test_only_plain_sockets_are_written_directly() -> None:
    with socket.socket() as sock:
        plain = direct_fd(_Transport({"socket": sock}))  # type: ignore[arg-type]
        tls = direct_fd(_Transport({"socket": sock, "sslcontext": object()}))  # type: ignore[arg-type]
        assert tls == -1
        assert direct_fd(_Transport({})) == -1  # type: ignore[arg-type]
        if memfleet.is_compiled():
            assert plain == sock.fileno()
        else:
            assert plain == -1  # the pure-Python fallback stays pure
            assert sockio.send_now is sockio._unavailable


def _loops() -> list[Any]:
    loops: list[Any] = [asyncio.new_event_loop]
    if uvloop is not None:
        loops.append(uvloop.new_event_loop)
    return loops


@pytest.mark.parametrize("new_loop", _loops(), ids=lambda f: f.__module__.split(".")[0])
def test_bytes_stay_in_order_through_a_full_socket(new_loop: Any) -> None:
    """A reader that stops reading fills the socket: the writer spills to the transport and
    keeps every later write there until it drains, even once the socket has room again (the
    transport's bytes go first), then writes directly again."""
    chunks = [b"%06d" % i + bytes([65 + i % 26]) * 8186 for i in range(400)]  # 3.2 MB
    total = sum(map(len, chunks))

    async def run() -> tuple[bytes, bool, int]:
        loop = asyncio.get_running_loop()
        reader_sock, writer_sock = socket.socketpair()
        reader_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        writer_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        reader_sock.setblocking(False)
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=writer_sock)
        writer = SocketWriter(transport)  # type: ignore[arg-type]
        direct_at_start = writer.fd >= 0
        got = bytearray()
        sent = 0
        while sent < len(chunks) and writer.fd >= 0:
            writer.send(chunks[sent])
            sent += 1
        spilled = writer.fd < 0
        # Room in the socket again, while the transport still holds bytes (its loop has not
        # run): what is written now must still come after them.
        for _ in range(100):
            try:
                got += reader_sock.recv(1 << 16)
            except BlockingIOError:
                break
        for chunk in chunks[sent:]:
            writer.send(chunk)
        deadline = loop.time() + 20
        while len(got) < total and loop.time() < deadline:
            try:
                got += reader_sock.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        while transport.get_write_buffer_size() and loop.time() < deadline:
            await asyncio.sleep(0.001)
        writer.send(b"tail")  # drained: straight to the socket again (compiled build)
        fd_after = writer.fd
        await asyncio.sleep(0.01)
        got += reader_sock.recv(16)
        transport.close()
        reader_sock.close()
        return bytes(got), direct_at_start and spilled, fd_after

    loop = new_loop()
    try:
        got, spilled, fd_after = loop.run_until_complete(run())
    finally:
        loop.close()
    assert len(got) == total + 4
    assert got == b"".join(chunks) + b"tail"
    if memfleet.is_compiled():
        assert spilled, "the socket never filled: the spill path was not exercised"
        assert fd_after >= 0
    else:
        assert fd_after == -1
