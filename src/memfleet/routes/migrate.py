"""``migrate``: a pool during its resize window (opened and closed by
``memfleet.proxy.migration``; installed only while a window is open, so a proxy outside one
pays nothing for it).

A reload that changes a pool's backend list keeps the placements that served before (newest
first) beside the new one. For a key whose owner changed (``moved``):

- a read (``get``, ``mg`` without ``T``/``N``...) asks the new owner; on a miss or an error,
  each old owner in turn with the client's own request, and the first hit answers. That hit
  is then copied to the new owner (read with ``mg <key> v f t``, written with ``ms ... ME``:
  only where the new owner still has nothing, flags and remaining TTL kept as a repair keeps
  them), unless a write of the key was routed after that read (the write fence);
- a write that replaces the value (``set``, ``ms``) goes to the new owner, and every old
  owner's copy is deleted, so neither a rollback nor a later read-through finds an old value;
- a delete goes to the new owner and every old one; the client hears ``DELETED`` (``HD``)
  when any of them held the key;
- any other write (``add``, ``replace``, ``append``, ``prepend``, ``cas``, ``incr``/``decr``,
  ``touch``, ``gat``, ``mg`` with ``T`` or ``N``, ``ma``...) first reads the key through from
  the old owners and copies it over, then runs on the new owner, then deletes the old copies:
  it succeeds or fails as it would have without the move. Later requests of that key wait
  behind it (in order), so a pipelined ``incr`` then ``set`` keeps its order.

An old-owner delete that fails is journaled (``DeleteJournal``) and retried; while a key is
journaled on a backend, that backend is never read for it, and any request sending the key
there sends the delete first. What a copy cannot keep: CAS values (each node has its own) and
sub-second TTLs, as for repairs (``memfleet.backends.repair``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Final

import xxhash

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.fence import FENCE, WriteFence
from memfleet.backends.repair import exptime, key_token, parse_hit
from memfleet.protocol.commands import DELETE, READ, SET
from memfleet.protocol.requests import Kind, Request
from memfleet.protocol.responses import ERROR, MISS, classify
from memfleet.routes.base import Route, unique_backends
from memfleet.routes.migrate_state import DeleteJournal, MigrationCounters
from memfleet.routes.pool import PoolRoute

_FENCE: Final[WriteFence] = FENCE
_xxh3: Final = xxhash.xxh3_64_intdigest


def _ignore(_token: object, _reply: bytes) -> None:
    """Reply callback for deletes of a copy nobody waits for."""


def _is_miss_or_error(reply: bytes) -> bool:
    result = classify(reply)
    return result is MISS or result is ERROR


class _OldDelete:
    """One old owner's delete: journaled if it fails; tells a client's delete whether the
    old owner held the key."""

    __slots__ = ("backend", "journal", "key", "parent")

    def __init__(
        self, journal: DeleteJournal, backend: Backend, key: bytes, parent: _Delete | None
    ) -> None:
        self.journal = journal
        self.backend = backend
        self.key = key
        self.parent = parent

    def reply(self, _token: object, reply: bytes) -> None:
        """The old owner answered the delete."""
        _FENCE.settled(self.key)
        found = reply.startswith(b"HD")
        if not found and not reply.startswith(b"NF"):
            self.journal.add(self.backend.name, self.key)
            self.journal.counters.old_delete_failures += 1
        if self.parent is not None:
            self.parent.old_done(found)


class _Delete:
    """A client's delete of a moved key: the new owner's answer, ``DELETED``/``HD`` when an
    old owner held the key and the new one did not."""

    __slots__ = ("cb", "found", "left", "new_reply", "token")

    def __init__(self, cb: ReplyCallback, token: object, olds: int) -> None:
        self.cb = cb
        self.token = token
        self.left = olds
        self.found = False
        self.new_reply = b""

    def on_new(self, _token: object, reply: bytes) -> None:
        """The new owner answered."""
        self.new_reply = reply
        if not _not_found(reply) or not self.left:
            self._answer()

    def old_done(self, found: bool) -> None:
        """An old owner answered."""
        self.found = self.found or found
        self.left -= 1
        if not self.left and self.new_reply and _not_found(self.new_reply):
            self._answer()

    def _answer(self) -> None:
        reply = self.new_reply
        if self.found and _not_found(reply):
            reply = b"DELETED\r\n" if reply.startswith(b"NOT_FOUND") else b"HD" + reply[2:]
        cb = self.cb
        self.left = -1
        cb(self.token, reply)


def _not_found(reply: bytes) -> bool:
    return reply.startswith(b"NOT_FOUND") or reply.startswith(b"NF")


class _Moved:
    """A request of a moved key: its client's callback, the new owner's index and the old
    owners still to ask (``i``: the next one)."""

    __slots__ = ("cb", "i", "index", "owners", "req", "route", "token")

    def __init__(
        self,
        route: MigrationRoute,
        req: Request,
        cb: ReplyCallback,
        token: object,
        index: int,
        owners: list[Backend],
    ) -> None:
        self.route = route
        self.req = req
        self.cb = cb
        self.token = token
        self.index = index
        self.owners = owners
        self.i = 0


class _Read(_Moved):
    """A read of a moved key: the new owner, then each old owner, then the copy."""

    __slots__ = ("first", "snap")

    def __init__(
        self,
        route: MigrationRoute,
        req: Request,
        cb: ReplyCallback,
        token: object,
        index: int,
        owners: list[Backend],
    ) -> None:
        super().__init__(route, req, cb, token, index, owners)
        self.first = b""
        self.snap = 0

    def on_new(self, _token: object, reply: bytes) -> None:
        """The new owner answered: a hit is the answer; on a miss, the old owners."""
        if not _is_miss_or_error(reply):
            self.cb(self.token, reply)
            return
        self.first = reply
        self.route.counters.fallbacks += 1
        self._next_old()

    def _next_old(self) -> None:
        owners = self.owners
        journal = self.route.journal
        while self.i < len(owners):
            b = owners[self.i]
            self.i += 1
            if journal.size and journal.holds(b.name, self.req.key):
                continue  # it may hold an old value: not a source
            b.send(self.req.wire, self.on_old, None)
            return
        self.cb(self.token, self.first)  # nowhere: the new owner's miss (or error)

    def on_old(self, _token: object, reply: bytes) -> None:
        """An old owner answered with the client's own request."""
        if _is_miss_or_error(reply):
            self._next_old()
            return
        counters = self.route.counters
        counters.fallback_hits += 1
        counters.keys_moved += 1
        self.cb(self.token, reply)
        _Copy(self.route, self.req.key, self.index, None).start(self.owners[self.i - 1])


class _Copy:
    """Copy a key from an old owner to its new owner (``ms ... ME``: only where it has
    nothing), then go on with ``then`` (a read-through) if given."""

    __slots__ = ("index", "key", "route", "snap", "source", "then")

    def __init__(
        self, route: MigrationRoute, key: bytes, index: int, then: _Through | None
    ) -> None:
        self.route = route
        self.key = key
        self.index = index
        self.then = then
        self.snap = 0
        self.source: Backend | None = None

    def start(self, source: Backend) -> None:
        """Read the key's value, flags and TTL from ``source``."""
        self.source = source
        tok, b64 = key_token(self.key)
        self.snap = _FENCE.snapshot()  # the copy must not undo a write routed after this read
        source.send(b"mg " + tok + b64 + b" v f t\r\n", self.on_read, None)

    def on_read(self, _token: object, reply: bytes) -> None:
        """The old owner's value (or not)."""
        hit = parse_hit(reply)
        if hit is None:
            self._done(reply.startswith(b"EN"))
            return
        if self.then is not None:
            self.route.counters.keys_moved += 1
        if _FENCE.written_since(self.key, self.snap):
            self.route.counters.copies_dropped += 1
            self._done(True)
            return
        value, flags, ttl = hit
        exp = exptime(ttl, time.time())
        if exp is None:
            self._done(True)  # expires now: nothing to copy
            return
        tok, b64 = key_token(self.key)
        head = b"ms %s %d F%d T%d ME%s\r\n" % (tok, len(value), flags, exp, b64)
        target = self.route.new.backend_list[self.index]
        target.send(head + value + b"\r\n", self.on_written, None)

    def on_written(self, _token: object, reply: bytes) -> None:
        """The new owner stored the copy (or already held the key)."""
        if reply.startswith(b"HD"):
            if _FENCE.shared is not None and _FENCE.peers_active(self.key, self.snap):
                # With --workers: another worker's write of the key may have reached the new
                # owner first on a connection of its own; the copy may undo it, so it goes.
                self.route.counters.copies_dropped += 1
                tok, b64 = key_token(self.key)
                target = self.route.new.backend_list[self.index]
                target.send(b"md " + tok + b64 + b"\r\n", _ignore, None)
            else:
                self.route.counters.copies += 1
        self._done(True)

    def _done(self, answered: bool) -> None:
        then = self.then
        if then is not None:
            then.copied(answered)


class _Through(_Moved):
    """A conditional write of a moved key: read through from the old owners, then run."""

    __slots__ = ()

    def start(self) -> None:
        """Hold the key's later requests, then try the old owners in turn."""
        self.route.busy[self.req.key] = []
        self._next_old()

    def _next_old(self) -> None:
        owners = self.owners
        journal = self.route.journal
        while self.i < len(owners):
            b = owners[self.i]
            self.i += 1
            if journal.size and journal.holds(b.name, self.req.key):
                continue
            _Copy(self.route, self.req.key, self.index, self).start(b)
            return
        self._run()

    def copied(self, answered: bool) -> None:
        """A copy attempt is over: ``answered`` when that old owner gave an answer (hit or
        miss); after an error, the next old owner is asked."""
        if answered:
            self._run()
        else:
            self._next_old()

    def _run(self) -> None:
        route = self.route
        req = self.req
        route.write(req, self.cb, self.token, self.index, self.owners)
        route.release(req.key)


class MigrationRoute(Route):
    """A pool route during its resize window: ``new`` serves, ``olds`` (the placements that
    served before, newest first) are read through and cleaned (see the module docstring)."""

    __slots__ = ("_same_seed", "_seed64", "aliases", "busy", "counters", "journal", "new", "olds")

    def __init__(
        self,
        new: PoolRoute,
        olds: list[PoolRoute],
        counters: MigrationCounters,
        journal: DeleteJournal,
    ) -> None:
        self.new = new
        # Every write is counted in the write fence (copies read before it are dropped); the
        # pool's route counts it until its backend answers (with --workers, for the others).
        new.fenced = True
        self.olds = olds
        self.counters = counters
        self.journal = journal
        # Per old placement: old backend index -> the new index of the same node (or -1),
        # so that "same owner" is one integer comparison.
        where = {b.name: i for i, b in enumerate(new.backend_list)}
        self.aliases: list[list[int]] = [
            [where.get(b.name, -1) for b in old.backend_list] for old in olds
        ]
        # Keys with a read-through in flight -> the requests waiting behind it.
        self.busy: dict[bytes, list[tuple[Request, ReplyCallback, object]]] = {}
        # A key is hashed once for the new placement and every old one of the same seed.
        self._seed64 = new.placement_key()[0]
        self._same_seed = [old.placement_key()[0] == self._seed64 for old in olds]

    def old_owners(self, key: bytes, h: int, index: int) -> list[Backend]:
        """The old owners of ``key`` (seeded hash ``h``) that are not its new owner (backend
        ``index``), each once, newest placement first; empty when the key did not move."""
        out: list[Backend] = []
        for n in range(len(self.olds)):
            old = self.olds[n]
            i = old.shard_of(h) if self._same_seed[n] else old.shard(key)
            if self.aliases[n][i] != index:
                b = old.backend_list[i]
                if all(o is not b for o in out):
                    out.append(b)
        return out

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Route ``req`` by the new placement, reading through and cleaning up the old."""
        key = req.key
        h = _xxh3(key, self._seed64)
        index = self.new.shard_of(h)
        owners = self.old_owners(key, h, index)
        if not owners:
            self.new.send_to(index, req, cb, token)
            return
        waiting = self.busy.get(key)
        if waiting is not None:
            self.counters.queued += 1
            waiting.append((req, cb, token))
            return
        self._clear(key, index)
        effects = req.effect_mask()
        if effects == READ:
            state = _Read(self, req, cb, token, index, owners)
            self.new.send_to(index, req, state.on_new, None)
        elif effects in (SET, DELETE):
            self.write(req, cb, token, index, owners)
        else:
            _Through(self, req, cb, token, index, owners).start()

    def send_get(self, key: bytes, wire: bytes, cb: ReplyCallback, token: object) -> None:
        """A plain get: the pool's own fast path unless the key moved."""
        h = _xxh3(key, self._seed64)
        index = self.new.shard_of(h)
        if not self.old_owners(key, h, index):
            self.new.backend_list[index].send(wire, cb, token)
            return
        req = Request(Kind.GET, b"get", wire, key)
        req.keys = [key]
        req.prefix = b"get"
        self.send(req, cb, token)

    def _clear(self, key: bytes, index: int) -> None:
        """A delete journaled on the new owner goes first (it may hold an old value)."""
        journal = self.journal
        if journal.size:
            b = self.new.backend_list[index]
            if journal.holds(b.name, key) and b.name not in journal.flush_due:
                journal.send_delete(b, key)

    def write(
        self, req: Request, cb: ReplyCallback, token: object, index: int, owners: list[Backend]
    ) -> None:
        """Send a write to the new owner and delete the key on every old owner (a delete's
        answer says whether any of them held it)."""
        key = req.key
        journal = self.journal
        parent: _Delete | None = None
        if req.effect_mask() == DELETE:
            parent = _Delete(cb, token, len(owners))
            self.new.send_to(index, req, parent.on_new, None)
        else:
            self.new.send_to(index, req, cb, token)
        tok, b64 = key_token(key)
        wire = b"md " + tok + b64 + b"\r\n"
        for b in owners:
            self.counters.old_deletes += 1
            # The old copy's delete is part of the write: until it is answered, a copy read
            # from that node (by another worker, too) must not land.
            _FENCE.bump(key)
            b.send(wire, _OldDelete(journal, b, key, parent).reply, None)

    def release(self, key: bytes) -> None:
        """The read-through of ``key`` has sent its write: the requests that waited go on,
        in order (until one of them holds the key again)."""
        waiting = self.busy.pop(key, None)
        if not waiting:
            return
        for n in range(len(waiting)):
            again = self.busy.get(key)
            if again is not None:
                again.extend(waiting[n:])
                return
            req, cb, token = waiting[n]
            self.send(req, cb, token)

    def journal_key(self, key: bytes) -> None:
        """The new owner may hold an old value of ``key`` (a replicated write it missed)."""
        self.new.journal_key(key)

    def backend_for(self, key: bytes) -> Backend:
        """The backend ``key`` is served from (its new owner): as a repair source."""
        return self.new.backend_for(key)

    def placement_key(self) -> tuple[int, int]:
        """The new placement's (replicas resized together keep it equal)."""
        return self.new.placement_key()

    def backends(self) -> Iterator[Backend]:
        """The new placement's backends, then the old ones': ``flush_all`` must reach every
        node a read-through may read from (a flushed value must not come back through it)."""
        return unique_backends([self.new, *self.olds])

    def __repr__(self) -> str:
        return f"MigrationRoute({self.new.pool.name}, olds={len(self.olds)})"
