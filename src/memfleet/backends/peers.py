"""Out of service for every worker: the rejoin fences ``--workers`` share.

With ``memfleet proxy --workers N`` each worker is a process with its own backends, journals
and repairs. A replica that missed a write in one worker holds an old value for every worker,
so the fact that it is out of service is shared through the supervisor
(``memfleet.proxy.peer_hub``; this worker's end of the channel is
``memfleet.proxy.peer_link``):

- the first key a worker journals for a backend *fences* it: the worker tells the supervisor,
  which tells every worker to take the backend out of service, and confirms once all of them
  have done so. Until then, the replies of this worker's journaled writes are held
  (``hold``), so no client hears of such a write while another worker could still read the
  replica's old value. Later keys of the same outage cost nothing more (the fence is up).
- each worker repairs the keys it journaled itself (on its own connections, after its own
  drain), then *releases* its fence. The backend serves again, in every worker, once no worker
  fences it: a repair done by one is known to all, and none rejoins before all are done.
- a worker that dies with fences up leaves them to its successor (same slot), which flushes
  those backends before releasing: the dead worker's journal is gone, and a flush loses warm
  data, never serves an old value.

Nothing here runs per request: only a journaled write, a fence message and a rejoin do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("memfleet.backends")

# Held replies wait at most this long for the supervisor's confirmation (a worker that does
# not answer it is stuck and serves nobody meanwhile); then they are sent, and it is logged.
HOLD_LIMIT: Final = 1.0


class PeerFences:
    """This worker's view of the fences all workers share, and the replies held for them."""

    __slots__ = ("_held", "_timer", "backends", "fenced", "given_up", "inherited", "link",
                 "mine", "pending", "workers")  # fmt: skip

    def __init__(self) -> None:
        # The channel to the supervisor (``send(line)``), None in a single-process proxy.
        self.link: Any = None
        # Every backend of the current config (set by the app).
        self.backends: Callable[[], list[Any]] = list
        # Backend names some worker fences (the supervisor says so), and this worker's own
        # fences with how many backends of that name hold them.
        self.fenced: set[str] = set()
        self.mine: dict[str, int] = {}
        # Fences left by this slot's previous worker, to flush before releasing.
        self.inherited: set[str] = set()
        # Fences sent and not confirmed yet, and the replies waiting for them.
        self.pending: dict[str, int] = {}
        self._held: list[tuple[Any, object, bytes]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.given_up = 0
        # Processes of this proxy (--workers; the supervisor says how many): 1 alone.
        self.workers = 1

    @property
    def waiting(self) -> bool:
        """True while a fence of this worker is not confirmed: journaled replies wait."""
        return bool(self.pending)

    def fence(self, name: str) -> None:
        """A backend called ``name`` journaled its first key here: fence it for all."""
        n = self.mine.get(name, 0)
        self.mine[name] = n + 1
        if n or self.link is None:
            return
        self.pending[name] = self.pending.get(name, 0) + 1
        self.link.send(b"F " + name.encode() + b"\n")

    def adopt(self, name: str) -> None:
        """Take over a fence this slot holds already (left by its previous worker)."""
        self.mine[name] = self.mine.get(name, 0) + 1

    def release(self, name: str) -> None:
        """A backend called ``name`` has nothing left to repair here."""
        n = self.mine.get(name, 0)
        if n <= 1:
            self.mine.pop(name, None)
            if n == 1 and self.link is not None:
                self.link.send(b"R " + name.encode() + b"\n")
        else:
            self.mine[name] = n - 1

    def hold(self, cb: Any, token: object, reply: bytes) -> bool:
        """Keep ``cb(token, reply)`` until every fence of this worker is confirmed; False
        (call it now) when none waits."""
        if not self.pending:
            return False
        self._held.append((cb, token, reply))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(HOLD_LIMIT, self._give_up)
        return True

    def confirmed(self, name: str) -> None:
        """Every worker has ``name`` out of service now."""
        n = self.pending.get(name, 0)
        if n <= 1:
            self.pending.pop(name, None)
        else:
            self.pending[name] = n - 1
        if not self.pending:
            self._send_held()

    def _give_up(self) -> None:
        self._timer = None
        if not self.pending:
            return
        self.given_up += 1
        log.warning(
            "fence of %s not confirmed by every worker within %gs; answering anyway",
            ", ".join(sorted(self.pending)), HOLD_LIMIT,
            extra={"event": "fence_unconfirmed"},
        )  # fmt: skip
        self.pending.clear()
        self._send_held()

    def _send_held(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for cb, token, reply in held:
            cb(token, reply)

    # What the supervisor says ---------------------------------------------------------------

    def fenced_by_peers(self, name: str) -> None:
        """Some worker fenced ``name``: out of service here too."""
        self.fenced.add(name)
        for b in self.backends():
            if b.name == name and b.journals:
                b.peer_fenced()

    def released_by_peers(self, name: str) -> None:
        """No worker fences ``name`` any more."""
        self.fenced.discard(name)
        for b in self.backends():
            if b.name == name:
                b.peer_released()

    def inherit(self, name: str) -> None:
        """This slot's previous worker died fencing ``name``: flush it before releasing."""
        self.inherited.add(name)
        self.sync()

    def sync(self) -> None:
        """Apply what is known to the current backends (at start and after a reload)."""
        for b in self.backends():
            if not b.journals:
                continue
            if b.name in self.inherited:
                self.inherited.discard(b.name)
                b.inherit_flush()
            if b.name in self.fenced:
                b.peer_fenced()

    def detach(self) -> None:
        """The supervisor is gone: fences up stay up (safe), none is sent any more."""
        self.link = None
        self.pending.clear()
        self._send_held()


# One per process, like the write fence: every config generation shares it.
PEERS: Final = PeerFences()
