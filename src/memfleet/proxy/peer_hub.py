"""The supervisor's side of the fences ``--workers`` share (``memfleet.backends.peers`` says
what they mean, ``memfleet.proxy.peer_link`` is the worker's end and the wire format).

The supervisor owns the state: which worker slots fence which backend. It runs in one thread
of the supervisor, over one Unix socket pair per worker (made before the worker starts, the
worker's end inherited as a descriptor), so a worker that dies closes its end and a restarted
one gets a new pair with the state so far written into it before it reads anything.

Rules:

- a backend some slot fences is out of service for every worker: the first fence is sent to
  all (``X``), and a fence is confirmed to the worker that asked (``f``) once every serving
  worker has acknowledged that ``X``. A starting worker is not waited for: it says when it
  is about to serve (``S``) and gets ``H`` back behind everything sent so far, which it
  applies before it listens;
- the backend serves again (``U`` to all) when no slot fences it;
- a slot's fences outlive its worker: the next worker of that slot inherits them (``I``) and
  flushes those backends, since the dead worker's journal is gone.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from dataclasses import dataclass, field

log = logging.getLogger("memfleet.proxy.workers")


@dataclass
class _Worker:
    slot: int
    sock: socket.socket
    inbuf: bytes = b""
    outbuf: bytearray = field(default_factory=bytearray)
    acked: int = 0  # the last fence message it applied
    serving: bool = False  # it said it is about to serve: from then on it is waited for


class PeerHub:
    """The fences of all worker slots, and the thread that serves their channels."""

    def __init__(self) -> None:
        self.fencers: dict[str, set[int]] = {}
        self.x_seq: dict[str, int] = {}  # the fence message that took each backend out
        self.seq = 0
        self.workers: dict[int, _Worker] = {}
        self.waiting: list[tuple[int, str, int]] = []  # (slot, backend, seq needed)
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._new: list[_Worker] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peer-hub", daemon=True)

    def start(self) -> None:
        """Serve the channels in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close every channel."""
        self._stop.set()
        self._wake()
        self._thread.join(5)
        with self._lock:
            for w in list(self.workers.values()):
                self._drop(w)
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()

    def new_worker(self, slot: int) -> socket.socket:
        """A channel for the worker about to start in ``slot``; returns the worker's end (the
        caller passes it to the worker and closes its own copy once the worker runs)."""
        mine, theirs = socket.socketpair()
        mine.setblocking(False)
        with self._lock:
            old = self.workers.get(slot)
            if old is not None:
                self._gone(old)
            w = _Worker(slot, mine, acked=self.seq)
            self.workers[slot] = w
            for name in sorted(self.fencers):
                w.outbuf += b"X %d %s\n" % (self.x_seq[name], name.encode())
            for name in sorted(n for n, slots in self.fencers.items() if slot in slots):
                w.outbuf += b"I %s\n" % name.encode()
            self._new.append(w)  # the thread registers it (the selector is the thread's)
        self._wake()
        return theirs

    def fenced(self) -> dict[str, set[int]]:
        """A copy of which slots fence which backend (for logs and tests)."""
        with self._lock:
            return {k: set(v) for k, v in self.fencers.items()}

    # The thread -------------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"w")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._sel.select(1.0)
            except (OSError, ValueError):
                return
            with self._lock:
                for w in self._new:
                    if self.workers.get(w.slot) is w:
                        self._sel.register(w.sock, selectors.EVENT_READ, w)
                        self._flush(w)
                self._new.clear()
                for key, mask in events:
                    w = key.data
                    if w is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    if self.workers.get(w.slot) is not w:
                        continue
                    if mask & selectors.EVENT_READ:
                        self._read(w)
                    if mask & selectors.EVENT_WRITE and self.workers.get(w.slot) is w:
                        self._flush(w)

    def _read(self, w: _Worker) -> None:
        try:
            data = w.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone(w)
            return
        w.inbuf += data
        *lines, w.inbuf = w.inbuf.split(b"\n")
        for line in lines:
            self._apply(w, line.decode("utf-8", "replace").split(" "))
        self._confirm()

    def _apply(self, w: _Worker, words: list[str]) -> None:
        op = words[0]
        if op == "F" and len(words) == 2:
            name = words[1]
            slots = self.fencers.setdefault(name, set())
            if not slots:
                self.seq += 1
                self.x_seq[name] = self.seq
                self._broadcast(b"X %d %s\n" % (self.seq, name.encode()))
                log.warning("worker %d fenced %s: out of service for every worker", w.slot, name)
            slots.add(w.slot)
            self.waiting.append((w.slot, name, self.x_seq[name]))
        elif op == "R" and len(words) == 2:
            name = words[1]
            held = self.fencers.get(name)
            if held is None:
                return
            held.discard(w.slot)
            if not held:
                del self.fencers[name]
                self._broadcast(b"U %s\n" % name.encode())
                log.warning("%s repaired by every worker that fenced it: back in service", name)
        elif op == "S":
            w.acked = self.seq  # all of it is queued ahead of the H it waits for
            w.serving = True
            w.outbuf += b"H\n"
            self._flush(w)
        elif op == "a" and len(words) == 2 and words[1].isdigit():
            w.acked = max(w.acked, int(words[1]))
        else:
            log.warning("peer channel of worker %d: unknown message %r", w.slot, " ".join(words))

    def _confirm(self) -> None:
        """Confirm every fence all connected workers have applied."""
        keep: list[tuple[int, str, int]] = []
        for slot, name, needed in self.waiting:
            asker = self.workers.get(slot)
            if asker is None:
                continue  # it died: its successor inherits the fence, nobody waits
            if all(w.acked >= needed for w in self.workers.values() if w.serving):
                asker.outbuf += b"f %s\n" % name.encode()
                self._flush(asker)
            else:
                keep.append((slot, name, needed))
        self.waiting = keep

    def _broadcast(self, line: bytes) -> None:
        for w in list(self.workers.values()):
            w.outbuf += line
            self._flush(w)

    def _flush(self, w: _Worker) -> None:
        if not w.outbuf:
            return
        try:
            n = w.sock.send(w.outbuf)
        except BlockingIOError:
            n = 0
        except OSError:
            self._gone(w)
            return
        del w.outbuf[:n]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if w.outbuf else 0)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(w.sock, events, w)

    def _gone(self, w: _Worker) -> None:
        """The worker's end closed (it exited): its fences stay with its slot."""
        if self.workers.get(w.slot) is w:
            del self.workers[w.slot]
            held = sorted(n for n, slots in self.fencers.items() if w.slot in slots)
            if held:
                log.warning(
                    "worker %d exited fencing %s; its successor flushes them before they "
                    "serve again", w.slot, ", ".join(held),
                )  # fmt: skip
        self._drop(w)
        self._confirm()

    def _drop(self, w: _Worker) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(w.sock)
        w.sock.close()
