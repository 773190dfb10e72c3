"""A worker's end of the channel to its supervisor (``memfleet proxy --workers N``).

The supervisor (``memfleet.proxy.peer_hub``) hands each worker one end of a Unix socket pair
(the descriptor number in ``MEMFLEET_PEER_FD``). Over it, lines of text:

- worker → supervisor: ``S`` (about to serve), ``F <backend>`` (this worker fences it),
  ``R <backend>`` (released), ``a <seq>`` (fence message ``seq`` applied);
- supervisor → worker: ``X <seq> <backend>`` (out of service: some worker fences it),
  ``U <backend>`` (no worker does any more), ``f <backend>`` (your fence is confirmed: every
  worker has it out of service), ``I <backend>`` (your predecessor died fencing it), ``H``
  (the answer to ``S``: everything before it has been sent; serve).

What the messages do to the backends is ``memfleet.backends.peers``; this module only moves
them.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import socket
from typing import cast

from memfleet.backends.fence import FENCE, ROW_BYTES, WriteFence
from memfleet.backends.peers import PEERS, PeerFences

log = logging.getLogger("memfleet.proxy")

ENV: str = "MEMFLEET_PEER_FD"
# "<fd> <row> <rows>": the shared write-fence table (memfleet.backends.fence) and this
# worker's row in it.
FENCE_ENV: str = "MEMFLEET_FENCE_TABLE"
# How long a starting worker waits for the supervisor's state before it serves without it.
JOIN_TIMEOUT = 10.0


class PeerLink(asyncio.Protocol):
    """The channel as an asyncio protocol: parses lines, applies them to ``PEERS``."""

    def __init__(self, peers: PeerFences) -> None:
        self.peers = peers
        self.transport: asyncio.WriteTransport | None = None
        self.buf = b""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)

    def send(self, line: bytes) -> None:
        """Write one line to the supervisor (the transport writes it at once when it can)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(line)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            self._apply(line.decode("utf-8", "replace").split(" "))

    def _apply(self, words: list[str]) -> None:
        peers = self.peers
        op = words[0]
        if op == "X" and len(words) == 3:
            peers.fenced_by_peers(words[2])
            self.send(b"a " + words[1].encode() + b"\n")
        elif op == "U" and len(words) == 2:
            peers.released_by_peers(words[1])
        elif op == "f" and len(words) == 2:
            peers.confirmed(words[1])
        elif op == "I" and len(words) == 2:
            peers.inherit(words[1])
        elif op == "H":
            if not self.ready.done():
                self.ready.set_result(None)
        else:
            log.warning("peer channel: unknown message %r", " ".join(words))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.peers.link is self:
            log.error(
                "lost the channel to the supervisor: this worker no longer shares rejoin "
                "fences with the others (those up stay up)",
                extra={"event": "peer_channel_lost"},
            )  # fmt: skip
            self.peers.detach()
        if not self.ready.done():
            self.ready.set_result(None)


def attach_fence_table(fence: WriteFence = FENCE) -> bool:
    """Map the write-fence table the supervisor shares with its workers, if it gave one."""
    spec = os.environ.pop(FENCE_ENV, None)
    if spec is None:
        return False
    try:
        fd, row, rows = (int(w) for w in spec.split())
        table = mmap.mmap(fd, rows * ROW_BYTES)
    except (OSError, ValueError) as exc:
        log.error("%s=%s is not a usable table (%s): fills not fenced across workers",
                  FENCE_ENV, spec, exc)  # fmt: skip
        return False
    os.close(fd)  # the mapping keeps the memory
    fence.share(memoryview(table).cast("q"), row, rows)
    return True


async def join_peers(peers: PeerFences = PEERS) -> PeerLink | None:
    """Connect to the supervisor if this process is one of its workers, and apply the fences
    it holds before serving; None in a single-process proxy."""
    attach_fence_table()
    fd = os.environ.pop(ENV, None)
    if fd is None:
        return None
    try:
        sock = socket.socket(fileno=int(fd))
    except (OSError, ValueError) as exc:
        log.error("%s=%s is not a usable socket (%s): fences not shared", ENV, fd, exc)
        return None
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    link = PeerLink(peers)
    await loop.create_unix_connection(lambda: link, sock=sock)
    peers.link = link
    link.send(b"S\n")
    try:
        await asyncio.wait_for(asyncio.shield(link.ready), JOIN_TIMEOUT)
    except TimeoutError:
        log.error("the supervisor did not send the shared fences within %gs", JOIN_TIMEOUT)
    return link


def leave_peers(link: PeerLink | None, peers: PeerFences = PEERS) -> None:
    """Close the channel (the worker is stopping; its fences stay with its slot)."""
    if link is None:
        return
    if peers.link is link:
        peers.link = None
    if link.transport is not None:
        link.transport.close()
