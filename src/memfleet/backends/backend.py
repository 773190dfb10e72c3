"""A backend: one memcached server, its pipelined connections and its health.

Health follows memcached's proxy: ``failure_limit`` connection failures in a row mark the
backend down, after which requests fail at once without a network trip; every
``retry_timeout`` a probe reconnects (re-resolving the hostname) and sends ``version``; the
backend takes traffic again only once that is answered. A backend under a replicated route
also keeps a rejoin journal: the keys of writes it missed, repaired on it before it serves
again (``memfleet.backends.repair``). With ``--workers`` the fact that it is out of service is
shared by all workers (``memfleet.backends.peers``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from mypy_extensions import mypyc_attr

from memfleet.backends.connection import BackendConnection, ReplyCallback
from memfleet.backends.endpoint import Endpoint
from memfleet.backends.failure import Failure
from memfleet.backends.latency import LatencyHistogram
from memfleet.backends.peers import PEERS, PeerFences
from memfleet.backends.rejoin_mark import RejoinMark
from memfleet.backends.repair import MAX_ROUNDS, RepairRound
from memfleet.config import BackendOptions
from memfleet.protocol import errors

log = logging.getLogger("memfleet.backends")

__all__ = ["Backend", "BackendConnection", "LatencyHistogram", "ReplyCallback"]

_FAILURE: Final = errors.BACKEND_FAILURE
_PEERS: Final[PeerFences] = PEERS


def _ignore(_n: int) -> None:
    pass


# Compiled; tests subclass it in Python to script a backend.
@mypyc_attr(allow_interpreted_subclasses=True)
class Backend(Endpoint):
    """One memcached server as the proxy sees it: address, options, connections, health."""

    def __init__(self, host: str, port: int, options: BackendOptions) -> None:
        super().__init__(host, port, options)
        self._conns: list[BackendConnection] = []
        self._single: BackendConnection | None = None  # the connection, when there is one
        self._rr = 0
        self._retry: asyncio.TimerHandle | None = None
        self._probing = False
        self._closed = False
        # Keys whose writes this backend did not acknowledge (rejoin: repair / invalidate),
        # and where to copy them from (sibling replicas; set by the route builder).
        self._journal: set[bytes] = set()
        self._flush_on_rejoin = False
        self._flush_reason = "journal overflow"
        self.repair_sources: list[Any] = []
        self._round: RepairRound | None = None
        self._rounds = 0
        # Counters: keys copied, deleted, copies dropped for a later write, flushes, and
        # times taken out of service for missed writes.
        self.repaired = 0
        self.invalidated = 0
        self.repair_dropped = 0
        self.rejoin_flushes = 0
        self.out_of_service = 0
        # Shared with the other --workers (memfleet.backends.peers): this worker fences the
        # backend (it has keys of its own to repair), some worker does, the backend is down
        # only for that, and a dead predecessor's fence waits for its node to settle.
        self._fenced_here = False
        self._peer_fenced = False
        self._held_only = False
        self._settling = False
        self.peer_holds = 0
        # Shared with other proxy instances, in the cache (memfleet.backends.rejoin_mark).
        self._mark = RejoinMark(self.name, [])
        self.mark_waits = 0

    def key(self) -> tuple[str, int, BackendOptions]:
        """What identifies a backend across reloads: same key, same connections kept."""
        return (self.host, self.port, self.options)

    def _connections(self) -> list[BackendConnection]:
        if not self._conns:
            self._conns = [BackendConnection(self) for _ in range(self.options.connections)]
            self._single = self._conns[0] if len(self._conns) == 1 else None
        return self._conns

    def send(self, wire: bytes, cb: ReplyCallback, token: Any) -> None:
        """Send one request; a down backend answers ``SERVER_ERROR backend failure`` at once."""
        self.requests += 1
        if self.down:
            self.failed_fast += 1
            self.errors += 1
            cb(token, _FAILURE)
            return
        single = self._single
        if single is not None:
            single.send(wire, cb, token)
            return
        conns = self._conns or self._connections()
        if len(conns) == 1:
            conns[0].send(wire, cb, token)
        else:
            self._rr = (self._rr + 1) % len(conns)
            conns[self._rr].send(wire, cb, token)

    @property
    def in_flight(self) -> int:
        """Requests sent or queued to this backend and not answered yet."""
        return sum(c.in_flight for c in self._conns)

    @property
    def journals(self) -> bool:
        """Whether failed writes must be remembered for this backend's rejoin."""
        return self.options.rejoin not in (None, "none")

    def missed_write(self, key: bytes) -> None:
        """A write for ``key`` was not acknowledged, or answered differently than the other
        replicas: the backend may hold an old value.

        It must not serve until the key is repaired on it, so it is taken out of service at
        once (its requests fail fast, and replicated routes answer from the other replicas).
        """
        if not self.journals or self._closed:
            return
        if self.options.rejoin == "flush" or self._flush_on_rejoin:
            self._flush_on_rejoin = True
        elif len(self._journal) >= self.options.journal_limit:
            self._flush_on_rejoin = True
            self._journal.clear()
            log.warning(
                "backend %s: rejoin journal over its limit of %d keys; it will be flushed "
                "before it serves again", self.name, self.options.journal_limit,
                extra={"event": "journal_overflow", "backend": self.name},
            )  # fmt: skip
        else:
            self._journal.add(key)
        if not self._fenced_here and _PEERS.link is not None:
            self._fenced_here = True
            _PEERS.fence(self.name)
        mark = self._mark
        if not mark.held and self.repair_sources:
            mark.sources = self.repair_sources
            mark.raise_()
        if self._held_only:
            # Out of service only for another worker's fence so far: now it has keys of this
            # worker's to repair too.
            self._held_only = False
            self._schedule_retry(0.0)
        elif not self.down:
            self.down = True
            self.marked_down += 1
            self.out_of_service += 1
            log.error(
                "backend %s missed writes; out of service until it is repaired", self.name,
                extra={"event": "backend_down", "backend": self.name, "reason": "missed writes"},
            )  # fmt: skip
            # A backend that still answers (it diverged, or was slow) is repaired at once; one
            # that failed waits for its retry interval.
            self._schedule_retry(0.0 if self.failures == 0 else None)

    @property
    def journaled(self) -> int:
        """Keys waiting for their repair (or -1: a flush is due)."""
        return -1 if self._flush_on_rejoin else len(self._journal)

    def repair_send(self, wire: bytes, cb: ReplyCallback, token: Any) -> None:
        """Send on the backend's own connection while it is out of service (its repair)."""
        self._connections()[0].send(wire, cb, token)

    def _drained(self) -> bool:
        """Nothing sent before the outage can still be applied: every connection cut while
        the node hung has drained, and no other connection has requests in flight (and no
        dead predecessor's connections may still be read: see ``inherit_flush``)."""
        conns = self._conns
        return not self._settling and not self.drains and all(c.in_flight == 0 for c in conns[1:])

    def _await_drain(self, deadline: float) -> None:
        self._retry = None
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if self._drained():
            self._next_round()
        elif loop.time() < deadline:
            self._retry = loop.call_later(0.01, self._await_drain, deadline)
        elif not self.drains:
            self._settling = False  # a dead worker's connections had their read_timeout
            self._next_round()
        else:
            # The node answers on a new connection but not on the old ones (a partition that
            # healed only one way, say): cut them, so nothing more is sent, and go on.
            log.warning(
                "backend %s: %d cut connection(s) did not drain; closing them before the "
                "repair", self.name, len(self.drains),
                extra={"event": "drain_timeout", "backend": self.name},
            )  # fmt: skip
            for d in list(self.drains):
                d.abort()
            self._next_round()

    def _next_round(self) -> None:
        """Repair what the journal holds now; serve again once it is empty."""
        if self._closed:
            return
        if self._flush_on_rejoin:
            self._flush_on_rejoin = False
            self._journal.clear()
            self.repair_send(b"flush_all\r\n", self._rejoin_flushed, None)
            return
        if not self._journal:
            self._serve_again()
            return
        keys = list(self._journal)
        self._journal = set()
        self._round = RepairRound(self)
        copy = self.options.rejoin == "repair" and bool(self.repair_sources)
        self._round.run(keys, copy)

    def repair_finished(self, complete: bool) -> None:
        """A repair round is over (``RepairRound`` calls this)."""
        rnd = self._round
        self._round = None
        if rnd is not None:
            self.repaired += rnd.copied
            self.invalidated += rnd.deleted
            self.repair_dropped += rnd.dropped
            for k in rnd.redo_keys:
                self.missed_write(k)
        self._rounds += 1
        if self._closed:
            return
        if (not self._journal and not self._flush_on_rejoin) or self._rounds < MAX_ROUNDS:
            self._next_round()
        else:
            self._schedule_retry()

    def _rejoin_flushed(self, _token: Any, reply: bytes) -> None:
        if reply == b"OK\r\n":
            self.rejoin_flushes += 1
            log.warning(
                "backend %s flushed before rejoining (%s)", self.name, self._flush_reason,
                extra={"event": "rejoin_flush", "backend": self.name},
            )  # fmt: skip
            self._flush_reason = "journal overflow"
            self._next_round()
        else:
            self._flush_on_rejoin = True
            self._schedule_retry()

    def record_failure(self, failure: Failure, failed_requests: int) -> None:
        """Count a connection failure; mark the backend down at the failure limit."""
        super().record_failure(failure, failed_requests)
        reason = failure.detail
        kind = failure.kind.value
        if self._closed:
            return
        if self.down:
            return
        self.failures += 1
        log.warning(
            "backend %s failed (%s), %d request(s) failed, %d/%d failures",
            self.name, reason, failed_requests, self.failures, self.options.failure_limit,
            extra={"event": "backend_failure", "backend": self.name, "kind": kind},
        )  # fmt: skip
        if self.failures >= self.options.failure_limit:
            self.down = True
            self.marked_down += 1
            log.error(
                "backend %s marked down; retrying every %gs", self.name, self.options.retry_timeout,
                extra={"event": "backend_down", "backend": self.name, "reason": reason},
            )  # fmt: skip
            self._schedule_retry()

    def _schedule_retry(self, delay: float | None = None) -> None:
        if self._closed or self._retry is not None or self._probing:
            return
        loop = asyncio.get_running_loop()
        wait = self.options.retry_timeout if delay is None else delay
        self._retry = loop.call_later(wait, self._probe)

    def _probe(self) -> None:
        self._retry = None
        if self._closed:
            return
        # The probe goes through a connection's normal path: it reconnects (re-resolving the
        # name) and its reply or failure comes back to _probe_done.
        self._probing = True
        self._connections()[0].send(b"version\r\n", self._probe_done, None)
        if self._mark.held:
            self._mark.sources = self.repair_sources
            self._mark.refresh()

    def _probe_done(self, _token: Any, reply: bytes) -> None:
        self._probing = False
        if self._closed:
            return
        if not reply.startswith(b"VERSION"):
            self._schedule_retry()
            return
        if not self._journal and not self._flush_on_rejoin:
            self._serve_again()
            return
        # The repair waits for whatever the node may still apply from before (bounded).
        self._rounds = 0
        deadline = asyncio.get_running_loop().time() + self.options.read_timeout
        self._await_drain(deadline)

    def _serve_again(self) -> None:
        """Nothing is left to repair here: back in service once no other proxy instance has
        keys of its own to repair on this backend (its rejoin mark)."""
        if not self.repair_sources or not self.journals:
            self._back_in_service()
            return
        self._mark.sources = self.repair_sources
        self._mark.settle(self._mark_answered)

    def _mark_answered(self, others: int) -> None:
        if self._closed:
            return
        if self._journal or self._flush_on_rejoin:
            self._next_round()  # written again while the mark was read
        elif others > 0:
            self.mark_waits += 1
            if self.mark_waits == 1 or self.mark_waits % 30 == 0:
                log.warning(
                    "backend %s: repaired by this proxy; %d other proxy process(es) still "
                    "repair it (its rejoin mark); asking again in %gs", self.name, others,
                    self.options.retry_timeout,
                    extra={"event": "backend_mark_wait", "backend": self.name},
                )  # fmt: skip
            self._schedule_retry()
        else:
            self._back_in_service()

    def _back_in_service(self) -> None:
        self.failures = 0
        if self._fenced_here:
            self._fenced_here = False
            _PEERS.release(self.name)
        if self._peer_fenced:
            # Repaired here; it serves again once no worker fences it (this one's release
            # included: the supervisor says when).
            self._held_only = True
            log.info(
                "backend %s: repaired by this worker; waits for the other workers", self.name,
                extra={"event": "backend_held", "backend": self.name},
            )  # fmt: skip
            return
        self.down = False
        if self.journals:
            log.warning(
                "backend %s is back up (rejoined: %d keys repaired, %d invalidated, %d "
                "flushes so far)", self.name, self.repaired, self.invalidated,
                self.rejoin_flushes, extra={"event": "backend_up", "backend": self.name},
            )  # fmt: skip
        else:
            log.warning(
                "backend %s is back up", self.name,
                extra={"event": "backend_up", "backend": self.name},
            )  # fmt: skip

    # Fences shared by --workers (memfleet.backends.peers) ---------------------------------

    def peer_fenced(self) -> None:
        """Some worker (this one included) fenced this backend: out of service here until
        none does."""
        if self._peer_fenced or self._closed:
            return
        self._peer_fenced = True
        if not self.down:
            self.down = True
            self._held_only = True
            self.marked_down += 1
            self.out_of_service += 1
            self.peer_holds += 1
            log.error(
                "backend %s missed writes in another worker; out of service until it is "
                "repaired", self.name,
                extra={"event": "backend_down", "backend": self.name, "reason": "peer fence"},
            )  # fmt: skip

    def peer_released(self) -> None:
        """No worker fences this backend any more."""
        if not self._peer_fenced:
            return
        self._peer_fenced = False
        if self._held_only and not self._closed:
            self._held_only = False
            self._back_in_service()

    def inherit_flush(self) -> None:
        """This worker's predecessor died fencing this backend: what it journaled is gone, so
        the backend is flushed before it serves again (warm data lost, never an old value).
        The flush waits one ``read_timeout`` after the node answers, for anything the dead
        worker's connections still had in the node's socket."""
        if self._closed:
            return
        if not self._fenced_here:
            self._fenced_here = True
            _PEERS.adopt(self.name)
        self._flush_on_rejoin = True
        self._flush_reason = "its worker died with keys journaled"
        self._settling = True
        self._held_only = False
        if not self.down:
            self.down = True
            self.marked_down += 1
            self.out_of_service += 1
        self._schedule_retry(0.0)

    def retire(self) -> None:
        """Taken out by a reload: no new requests come; the ones in flight finish."""
        if self._fenced_here:
            self._fenced_here = False
            _PEERS.release(self.name)  # its journal goes with it, as in one process
        if self._mark.held:
            self._mark.settle(_ignore)
        self._closed = True
        self.down = True  # a late request from the old route tree fails fast
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for c in self._conns:
            c.drain()
        self._conns = []
        self._single = None

    def close(self) -> None:
        """Stop probing and close every connection."""
        self._closed = True
        self.down = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for c in self._conns:
            c.close()
        self._conns = []
        self._single = None
