"""``direct``: the key's backend in one pool."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import xxhash

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.fence import FENCE, WriteFence
from memfleet.backends.hashing import jump_hash
from memfleet.backends.peers import PEERS, PeerFences
from memfleet.backends.pool import Pool
from memfleet.protocol import errors
from memfleet.protocol.commands import WRITES
from memfleet.protocol.requests import Request
from memfleet.routes.base import Route

# Final: the compiled build keeps these in C variables instead of looking them up per call.
_xxh3: Final = xxhash.xxh3_64_intdigest

FAILURE: Final = errors.BACKEND_FAILURE

_WRITES: Final = WRITES  # from the command table: a replica that missed one is stale
_FENCE: Final[WriteFence] = FENCE
_PEERS: Final[PeerFences] = PEERS


def _after_write(token: tuple[Backend, bytes, ReplyCallback, object], reply: bytes) -> None:
    backend, key, cb, inner = token
    _FENCE.settled(key)
    if reply is FAILURE:
        backend.missed_write(key)
        # With --workers: not before every worker has the backend out of service.
        if _PEERS.pending and _PEERS.hold(cb, inner, reply):
            return
    cb(inner, reply)


_AFTER_WRITE: Final[ReplyCallback] = _after_write  # a C variable, not a dict lookup per write


class PoolRoute(Route):
    """Sends a request to the backend its key hashes to.

    In a pool whose backends journal for rejoin, a write the backend did not acknowledge is
    recorded on it (see ``Backend.missed_write``). In a pool a fill or a repair may write to
    (``fenced``: under a replicated or failover route), every write is counted in the write
    fence first, so that no copy made from an earlier read lands after it.
    """

    __slots__ = ("_journal", "_jump", "_n", "_one", "_seed64", "_track", "backend_list", "pool")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.backend_list = pool.backends
        # The placement rule, unpacked: ``shard`` computes it without calls into Placement.
        self._jump = jump_hash
        self._seed64 = pool.placement.seed64
        self._n = len(pool.backends)
        self._one = pool.backends[0] if len(pool.backends) == 1 else None
        self._journal = any(b.journals for b in pool.backends)
        self._track = self._journal

    @property
    def fenced(self) -> bool:
        """Whether this pool's writes are counted in the write fence."""
        return self._track

    @fenced.setter
    def fenced(self, value: bool) -> None:
        self._track = value or self._journal

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Forward ``req`` as it is to its key's backend."""
        self.send_to(self.shard(req.key), req, cb, token)

    def send_to(self, index: int, req: Request, cb: ReplyCallback, token: object) -> None:
        """Forward ``req`` to backend ``index`` (its key's, as ``shard`` computed it)."""
        b = self.backend_list[index]
        if self._track and req.cmd in _WRITES:
            _FENCE.bump(req.key)
            # With --workers the shared fence counts the write until its backend answers.
            if self._journal or _FENCE.shared is not None:
                b.send(req.wire, _AFTER_WRITE, (b, req.key, cb, token))
                return
        b.send(req.wire, cb, token)

    def backend_for(self, key: bytes) -> Backend:
        """The backend ``key`` goes to."""
        return self.backend_list[self.shard(key)]

    def journal_key(self, key: bytes) -> None:
        """The key's backend may hold an old value of ``key``."""
        self.backend_list[self.shard(key)].missed_write(key)

    def placement_key(self) -> tuple[int, int]:
        """Pools with equal placement keys put every key on the same backend index."""
        return (self._seed64, self._n)

    def shard(self, key: bytes) -> int:
        """The index of ``key``'s backend in this pool."""
        if self._one is not None:
            return 0
        return self._jump(_xxh3(key, self._seed64), self._n)

    def shard_of(self, h: int) -> int:
        """The index of the backend for a key whose seeded hash is ``h`` (a migration route
        hashes a key once for its placements of one seed)."""
        if self._one is not None:
            return 0
        return self._jump(h, self._n)

    def send_get(self, key: bytes, wire: bytes, cb: ReplyCallback, token: object) -> None:
        """A plain get: straight to the key's backend."""
        self.backend_list[self.shard(key)].send(wire, cb, token)

    def backends(self) -> Iterator[Backend]:
        """The pool's backends."""
        return iter(self.backend_list)

    def __repr__(self) -> str:
        return f"PoolRoute({self.pool.name})"


def aligned_pools(children: list[Route]) -> list[PoolRoute] | None:
    """The children as pools, if they all place keys alike (pools of one size and seed, as
    the topologies build replicas): a key is then hashed once for all of them. A pool in its
    resize window is reached through its migration route (``memfleet.routes.migrate``), which
    is no plain pool: its requests must go through it, so the fan-out sends them child by
    child until the window ends and the tree is built again with plain (and, when every
    replica was resized alike, again aligned) pools."""
    pools = [c for c in children if type(c) is PoolRoute]
    if len(pools) == len(children) > 1 and len({p.placement_key() for p in pools}) == 1:
        return pools
    return None
