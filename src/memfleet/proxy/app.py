"""The asyncio listener and client connections: thin around the codec and the route tree.

Each client connection numbers its requests; replies may complete out of order (different
backends) and are written strictly in request order. A reply is written at once when nothing
earlier is outstanding and nothing later is in flight; otherwise replies are gathered and
written once per event-loop turn.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from memfleet import __version__, is_compiled
from memfleet.backends.backend import Backend
from memfleet.backends.pool import Pool
from memfleet.config import ConfigError, ProxyConfig, load_config, parse_hostport
from memfleet.config.tls import server_context
from memfleet.logs import LimitEvents, RateLimitedLog, peer_text
from memfleet.observe.stats import ProxyStats, backend_stats, proxy_extra_lines, render
from memfleet.protocol import errors
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Kind, Reply, Request, hidden_by_quiet
from memfleet.protocol.responses import merge_get_replies
from memfleet.proxy.auth import PasswordFile
from memfleet.proxy.limits import TOO_MANY_CONNECTIONS, LimitCounters, Sweeper
from memfleet.routes.base import Route
from memfleet.routes.builder import BackendKey, build_pools, build_routes
from memfleet.sockio import SocketWriter

log = logging.getLogger("memfleet.proxy")

# One line per client protocol error, with the peer; a flood is summarised, not echoed.
protocol_error_log = RateLimitedLog(log, "client_protocol_error")
_VERSION = f"VERSION memfleet-{__version__}\r\n".encode()
_CRLF = b"\r\n"


def _drop(_token: object, _reply: bytes) -> None:
    """Reply callback for noreply requests: the client asked for nothing."""


class _Gather:
    """Collects the per-key replies of a multi-key get, or the per-backend replies of a
    flush_all, and hands one merged reply to the client."""

    __slots__ = ("client", "merge", "parts", "remaining", "seq")

    def __init__(
        self, client: ClientConnection, seq: int, n: int, merge: Callable[[list[bytes]], bytes]
    ) -> None:
        self.client = client
        self.seq = seq
        self.parts: list[bytes] = [b""] * n
        self.remaining = n
        self.merge = merge

    def part(self, index: int, reply: bytes) -> None:
        self.parts[index] = reply
        self.remaining -= 1
        if not self.remaining:
            self.client.deliver(self.seq, self.merge(self.parts))


def _merge_flush(parts: list[bytes]) -> bytes:
    for p in parts:
        if p != errors.OK:
            return p
    return errors.OK


class Proxy:
    """The running proxy's state: config, pools, route tree, stats. Reload swaps them."""

    def __init__(
        self, cfg: ProxyConfig, config_path: str | None = None, zone: str | None = None
    ) -> None:
        self.config_path = config_path
        self.zone = zone
        self.stats = ProxyStats()
        self.cfg = cfg
        self.pools: dict[str, Pool] = build_pools(cfg)
        self.root: Route = build_routes(cfg, self.pools, zone)
        self.clients: set[ClientConnection] = set()
        self._server: asyncio.AbstractServer | None = None
        # Takes over a connection whose first byte is the binary protocol's magic; without
        # one, such a connection is refused with a binary "unknown command" reply.
        self.binary_handler: Callable[[ClientConnection, bytes], None] | None = None
        from memfleet.proxy.binary_connection import handle_binary

        self.binary_handler = handle_binary
        # Observability hook: memfleet.observe.metrics gives backends a reload adds their latency
        # histogram (with --metrics only; nothing runs per request either way).
        self.after_apply: Callable[[], None] | None = None
        self.limit_counters = LimitCounters()
        self.auth: PasswordFile | None = None
        self.deny: frozenset[bytes] = frozenset()
        self._apply_policy(cfg)
        self.events = LimitEvents(log)
        self.sweeper = Sweeper(
            lambda: self.cfg.limits, lambda: self.clients, self.limit_counters, self.events
        )

    def _apply_policy(self, cfg: ProxyConfig) -> None:
        """Client authentication and the command deny-list (re-read on every reload, so a
        password file can be rotated without a restart)."""
        self.auth = PasswordFile.from_config(cfg.auth) if cfg.auth is not None else None
        self.deny = frozenset(c.encode() for c in cfg.deny_commands)
        for c in self.clients:
            c.refresh_policy()

    def all_backends(self) -> list[Backend]:
        """Every backend of every pool, each once."""
        seen: dict[int, Backend] = {}
        for p in self.pools.values():
            for b in p.backends:
                seen.setdefault(id(b), b)
        return list(seen.values())

    def new_parser(self) -> RequestParser:
        """A request parser with this config's limits."""
        return RequestParser(self.cfg.max_item_size, self.cfg.max_line_length)

    async def start(self, listen: str | None = None, reuse_port: bool = False) -> tuple[str, int]:
        """Listen for clients; return the bound address (port 0 picks a free one)."""
        host, port = parse_hostport(listen or self.cfg.listen)
        loop = asyncio.get_running_loop()
        tls = server_context(self.cfg.tls) if self.cfg.tls is not None else None
        self._server = await loop.create_server(
            lambda: ClientConnection(self),
            host,
            port,
            backlog=1024,
            reuse_port=reuse_port,
            ssl=tls,
        )
        # uvloop hands back a list where typeshed says tuple; compiled code checks the type.
        sockets: Any = cast(Any, self._server).sockets
        sock = sockets[0].getsockname()
        self.sweeper.start()
        log.info(
            "memfleet proxy listening on %s:%d (hot path: %s)", sock[0], sock[1],
            "compiled" if is_compiled() else "pure Python",
        )  # fmt: skip
        return str(sock[0]), int(sock[1])

    def reload(self, path: str | None = None) -> bool:
        """Load the config again; on any error keep serving the old one and say why."""
        path = path or self.config_path
        if path is None:
            return False
        try:
            cfg = load_config(path)
            self.apply(cfg)
        except (ConfigError, ValueError) as exc:
            self.stats.reloads_failed += 1
            log.error(
                "reload refused, keeping the running config: %s", exc,
                extra={"event": "reload_refused", "config": path},
            )  # fmt: skip
            return False
        self.stats.reloads += 1
        log.info("reloaded %s", Path(path).name, extra={"event": "reload_ok", "config": path})
        return True

    def _config_fingerprint(self) -> tuple[str, int, int, int] | None:
        if self.config_path is None:
            return None
        try:
            real = os.path.realpath(self.config_path)
            st = os.stat(real)
        except OSError:
            return None
        return (real, st.st_mtime_ns, st.st_size, st.st_ino)

    async def watch_config(self, interval: float = 1.0) -> None:
        """Reload when the config changes. A Kubernetes ConfigMap update swaps a symlink in
        the file's directory, so the file's resolved path is compared, not just its mtime."""
        last = self._config_fingerprint()
        while True:
            await asyncio.sleep(interval)
            now = self._config_fingerprint()
            if now is not None and now != last:
                last = now
                self.reload()

    def apply(self, cfg: ProxyConfig) -> None:
        """Swap in a new config. Unchanged backends keep their connections; requests in
        flight finish on the backends they were sent to."""
        old = {b.key(): b for b in self.all_backends()}
        reuse: dict[BackendKey, Backend] = dict(old)
        pools = build_pools(cfg, reuse)
        root = build_routes(cfg, pools, self.zone)
        self.cfg, self.pools, self.root = cfg, pools, root
        self._apply_policy(cfg)
        kept = {id(b) for b in self.all_backends()}
        for b in old.values():
            if id(b) not in kept:
                b.retire()
        if self.after_apply is not None:
            self.after_apply()

    async def close(self) -> None:
        """Stop listening, close clients and backends."""
        self.sweeper.stop()
        if self._server is not None:
            self._server.close()
        for c in list(self.clients):
            c.close()
        for b in self.all_backends():
            b.close()
        if self._server is not None:
            await self._server.wait_closed()


# Young collections every this many net allocations of GC-tracked objects (CPython: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Make Python's cyclic garbage collector cheap for a proxy that is up and serving.

    Requests in flight keep thousands of small tracked objects alive at any moment (fan-out
    states, callbacks). With CPython's default threshold a young collection runs every 700
    allocations and walks all of them: 15% of the proxy's CPU in the replicated, pipelined
    benchmark. Raising the threshold makes each walk pay for many more allocations, and
    freezing what exists after start-up (modules, config, routes) keeps it out of every full
    collection. Cycles (a closed connection and its bound callbacks) are still collected."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


class ClientConnection(asyncio.Protocol):
    """One client: parse, dispatch to the route tree, write replies in order."""

    # Slotted: a proxy holds thousands of idle connections, each one of these.
    __slots__ = (
        "_authed", "_close_at", "_deliver_cb", "_flush_handle", "_get_cb", "_head",
        "_inflight_paused", "_loop", "_max_inflight", "_next", "_out", "_ready", "_registered",
        "_write_paused", "_writer",
        "idle_for", "parser", "partial_for", "peer", "proxy", "stalled_for", "stats",
        "sweep_next", "transport",
    )  # fmt: skip

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.stats = proxy.stats
        self.parser = proxy.new_parser()
        self.transport: asyncio.Transport | None = None
        # Every reply goes through it (straight to the socket when it can: memfleet.sockio).
        self._writer: SocketWriter | None = None
        # Bound once too, instead of a new bound method for every get.
        self._get_cb: Callable[[int, bytes], None] = self._deliver_get
        self._deliver_cb: Callable[[int, bytes], None] = self.deliver
        self.peer: Any = None
        self._next = 0  # sequence number of the next request that expects a reply
        self._head = 0  # sequence number of the next reply to write
        self._ready: dict[int, bytes] = {}
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._close_at = -1  # write up to this reply, then close
        self._loop = asyncio.get_running_loop()
        limits = proxy.cfg.limits
        self._max_inflight = limits.max_inflight
        self._inflight_paused = False
        self._write_paused = False
        self._registered = False
        self._authed = proxy.auth is None
        self.refresh_policy()
        # Kept for the limits sweep (memfleet.limits.Sweeper).
        self.sweep_next = 0
        self.idle_for = 0.0
        self.partial_for = 0.0
        self.stalled_for = 0.0

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        t = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        limits = self.proxy.cfg.limits
        if self.stats.curr_connections >= limits.max_connections:
            # memcached's own answer; everyone already connected keeps being served.
            self.proxy.limit_counters.rejected_connections += 1
            self.proxy.events.warning(
                "maxconns", "refused client %s: %d connections open (max_connections)",
                self.peer, self.stats.curr_connections,
            )  # fmt: skip
            t.write(TOO_MANY_CONNECTIONS)
            t.close()
            return
        self.transport = t
        self._writer = SocketWriter(t)
        self._registered = True
        t.set_write_buffer_limits(high=limits.max_pending_bytes)
        self.proxy.clients.add(self)
        self.stats.curr_connections += 1
        self.stats.total_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        # Break the cycles through bound methods now: with the GC's raised threshold an idle
        # proxy would otherwise hold closed connections until the next collection.
        if self._writer is not None:
            self._writer.stop()  # the socket is closed after this returns
            self._writer = None
        self._get_cb = self._deliver_cb = _drop
        if self.transport is not None and self._registered:
            self.transport = None
            self._registered = False
            self.proxy.clients.discard(self)
            self.stats.curr_connections -= 1
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests until it does
        # (the sweep drops it if that lasts past stalled_timeout).
        self._write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.transport is not None and not self._inflight_paused:
            self.transport.resume_reading()

    # -- limits (memfleet.proxy.limits) ----------------------------------------------------------

    @property
    def requests_seen(self) -> int:
        """Grows with every request read (noreply ones too): the sweep's sign of progress."""
        return self._next + self.parser.parsed

    @property
    def in_flight(self) -> int:
        """Requests whose replies are not written yet."""
        return self._next - self._head

    @property
    def buffered(self) -> int:
        """Bytes of a request not yet complete."""
        return self.parser.buffered

    @property
    def write_paused(self) -> bool:
        """The client has left max_pending_bytes of replies unread."""
        return self._write_paused

    def drop(self, reply: bytes) -> None:
        """Close because of a limit: write ``reply`` if it can go, then hang up."""
        t = self.transport
        if t is None:
            return
        if self._writer is not None:
            self._writer.stop()  # closing: the transport writes what is left, then nothing
        if self._write_paused:
            t.abort()  # it does not read: nothing more can be written
            return
        if reply:
            t.write(reply)
        t.close()

    def _too_many_in_flight(self) -> None:
        # A client pipelining faster than its replies come back: stop reading from it until
        # half of them are written.
        self._inflight_paused = True
        self.proxy.limit_counters.inflight_paused += 1
        self.proxy.events.warning(
            "inflight", "client %s has %d requests in flight (max_inflight): reading paused",
            self.peer, self._next - self._head,
        )  # fmt: skip
        if self.transport is not None:
            self.transport.pause_reading()

    def _in_flight_drained(self) -> None:
        self._inflight_paused = False
        if self.transport is not None and not self._write_paused:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if data.startswith(b"get ") and self.parser.can_bypass():
            n = len(data)
            if data.endswith(b"\r\n") and 6 < n <= 256:
                key = data[4:-2]
                # Bytes membership by int: with a bytes argument CPython first tries it as an
                # int and builds (then drops) a TypeError, which costs more than the search.
                if 32 not in key and 10 not in key:  # no space, no newline
                    # One plain get, the most common read there is: no loop, no parsed request.
                    self.stats.cmd_get += 1
                    seq = self._next
                    self._next = seq + 1
                    self.proxy.root.send_get(key, data, self._get_cb, seq)
                    return
            # Pipelined requests: plain gets take the fast path, anything else (a set...) is
            # parsed on its own, and the gets after it go fast again.
            pos = self._plain_gets(data, 0)
            while pos < n:
                reqs, pos = self.parser.feed_one(data, pos)
                for req in reqs:
                    self.dispatch(req)
                if pos < n:
                    pos = self._plain_gets(data, pos)
        else:
            req = None
            if data.startswith(b"set ") and self.parser.can_bypass():
                req = self.parser.plain_set(data)  # one plain set: no general parse
            if req is not None:
                self.dispatch(req)
            else:
                for req in self.parser.feed(data):
                    self.dispatch(req)
        if self._next - self._head > self._max_inflight:
            self._too_many_in_flight()

    def _plain_gets(self, data: bytes, pos: int) -> int:
        """Fast path for the most common requests there are: ``get <key>\\r\\n`` lines, alone
        or pipelined, go to their route as the client's own bytes, with no parsed request
        object. Starts at ``pos``; returns where the first request that needs the parser
        starts."""
        n = len(data)
        root = self.proxy.root
        cb = self._get_cb
        first = seq = self._next
        # A slice compared, not startswith(prefix, pos): a primitive in the compiled build.
        while data[pos : pos + 4] == b"get ":
            eol = data.find(b"\n", pos)
            # Anything unusual (no CR, a second key, a key too long or empty) is the parser's.
            if eol < 0 or data[eol - 1] != 13 or not 7 <= eol - pos <= 255:
                break
            key = data[pos + 4 : eol - 1]
            if 32 in key:  # a second key: the parser's (an int operand: see data_received)
                break
            wire = data if pos == 0 and eol == n - 1 else data[pos : eol + 1]
            # The slot is taken before sending: a down backend answers synchronously.
            self._next = seq + 1
            root.send_get(key, wire, cb, seq)
            seq += 1
            pos = eol + 1
        self.stats.cmd_get += seq - first
        return pos

    # -- dispatch ------------------------------------------------------------------------

    def refresh_policy(self) -> None:
        """Take the fast path only where no policy needs to see the request."""
        if self.proxy.auth is None:
            self._authed = True
        self.parser.no_bypass = not self._authed or b"get" in self.proxy.deny

    def _unauthenticated(self, req: Request) -> None:
        # memcached's -Y: until authenticated, only `set <any> 0 0 <len>` carrying
        # "<user> <password>" is accepted; it is answered even with noreply.
        kind = req.kind
        if kind in (Kind.QUIT, Kind.CLOSE, Kind.BINARY):
            self.dispatch(req, checked=True)
            return
        if kind is not Kind.KEYED or req.cmd != b"set":
            self._local(errors.UNAUTHENTICATED)
            return
        data = req.wire[req.wire.index(b"\n") + 1 : -2]
        user, sep, password = data.partition(b" ")
        auth = self.proxy.auth
        if not sep or not user or not password:
            self._local(errors.BAD_AUTH_TOKEN)
        elif auth is not None and auth.check(user, password):
            self._authed = True
            self.refresh_policy()
            self._local(errors.STORED)
        else:
            self.proxy.events.warning("auth", "client %s failed to authenticate", self.peer)
            self._local(errors.AUTH_FAILURE)

    def dispatch(self, req: Request, checked: bool = False) -> None:
        """Send one request on its way; its reply slot keeps the client's order."""
        if not checked:
            if not self._authed:
                self._unauthenticated(req)
                return
            deny = self.proxy.deny
            if deny and req.cmd in deny:
                self.proxy.events.warning(
                    "deny", "client %s sent a denied command %r", self.peer, req.cmd
                )
                if req.reply is not Reply.NOREPLY:
                    self._local(errors.DENIED)
                return
        kind = req.kind
        stats = self.stats
        if kind is Kind.KEYED:
            cmd = req.cmd
            if cmd in (b"set", b"ms", b"add", b"replace", b"append", b"prepend", b"cas"):
                stats.cmd_set += 1
            else:
                stats.cmd_other += 1
            stats.commands[cmd] = stats.commands.get(cmd, 0) + 1
            mode = req.reply
            if mode is Reply.NORMAL:
                seq = self._next
                self._next = seq + 1
                self.proxy.root.send(req, self._deliver_cb, seq)
            elif mode is Reply.NOREPLY:
                self.proxy.root.send(req, _drop, None)
            else:
                seq = self._next
                self._next = seq + 1
                self.proxy.root.send(req, self._deliver_quiet, (seq, req.cmd))
        elif kind is Kind.GET:
            self._get(req)
        elif kind is Kind.LOCAL:
            if req.wire[:1] in (b"E", b"C"):
                stats.protocol_errors += 1
                protocol_error_log.emit(self.peer, req.wire)
            elif req.wire is errors.TOO_LARGE:
                self.proxy.limit_counters.too_large += 1
                self.proxy.events.warning(
                    "item_size", "client %s sent a value over max_item_size (%d bytes)",
                    self.peer, self.proxy.cfg.max_item_size,
                )  # fmt: skip
            if req.reply is not Reply.NOREPLY:
                self._local(req.wire)
        elif kind is Kind.FLUSH:
            self._flush_all(req)
        elif kind is Kind.VERSION:
            self._local(_VERSION)
        elif kind is Kind.VERBOSITY:
            if req.reply is not Reply.NOREPLY:
                self._local(errors.OK)
        elif kind is Kind.STATS:
            self._local(self._stats(req.args))
        elif kind is Kind.BINARY:
            handler = self.proxy.binary_handler
            if handler is not None:
                handler(self, req.wire)
                return
            data = req.wire
            refusal = errors.binary_refusal(data[1] if len(data) > 1 else 0, data[12:16])
            self.dispatch(Request(Kind.CLOSE, b"", refusal))
        else:  # QUIT, CLOSE
            if kind is Kind.CLOSE:
                stats.protocol_errors += 1
                log.info(
                    "closing client %s: protocol violation", self.peer,
                    extra={"event": "client_closed", "peer": peer_text(self.peer)},
                )  # fmt: skip
            seq = self._next
            self._next = seq + 1
            self._close_at = seq
            self.deliver(seq, req.wire)

    def _local(self, reply: bytes) -> None:
        seq = self._next
        self._next = seq + 1
        self.deliver(seq, reply)

    def _get(self, req: Request) -> None:
        keys = req.keys
        n = len(keys)
        self.stats.cmd_get += n
        seq = self._next
        self._next = seq + 1
        root = self.proxy.root
        if n == 1:
            root.send(req, self._deliver_get, seq)
            return
        gather = _Gather(self, seq, n, self._merge_get)
        prefix = req.prefix + b" "
        for i, key in enumerate(keys):
            sub = Request(Kind.GET, req.cmd, prefix + key + _CRLF, key)
            sub.keys = [key]
            sub.prefix = req.prefix
            root.send(sub, gather.part, i)

    def _merge_get(self, parts: list[bytes]) -> bytes:
        for p in parts:
            if p.startswith(b"V"):
                self.stats.get_hits += 1
            else:
                self.stats.get_misses += 1
        return merge_get_replies(parts)

    def _flush_all(self, req: Request) -> None:
        self.stats.cmd_flush += 1
        backends = list(self.proxy.root.backends())
        if req.reply is Reply.NOREPLY:
            for b in backends:
                b.send(req.wire, _drop, None)
            return
        seq = self._next
        self._next = seq + 1
        gather = _Gather(self, seq, len(backends), _merge_flush)
        for i, b in enumerate(backends):
            b.send(req.wire, gather.part, i)

    def _stats(self, args: list[bytes]) -> bytes:
        proxy = self.proxy
        if not args:
            return render(self.stats.general() + proxy.limit_counters.lines())
        sub = args[0]
        if sub == b"backends":
            return render(backend_stats(proxy.all_backends()))
        if sub == b"proxy":
            lines = self.stats.general() + proxy.limit_counters.lines()
            lines += [(f"pool_{name}_backends", len(p.backends)) for name, p in proxy.pools.items()]
            lines += [("backends_down", sum(b.down for b in proxy.all_backends()))]
            lines += proxy_extra_lines(proxy)
            return render(lines)
        if sub == b"reset":
            self.stats.reset()
            return errors.RESET
        return errors.ERROR

    # -- replies -------------------------------------------------------------------------

    def _deliver_get(self, seq: int, reply: bytes) -> None:
        if reply.startswith(b"V"):
            self.stats.get_hits += 1
        else:
            self.stats.get_misses += 1
        if seq == self._head and seq + 1 == self._next and not self._out and self._close_at < 0:
            # The only request in flight: its reply goes out now (nothing to order it with).
            self._head = seq + 1
            writer = self._writer
            if writer is not None:
                writer.send(reply)
            if self._inflight_paused:
                self._in_flight_drained()
            return
        self.deliver(seq, reply)

    def _deliver_quiet(self, token: tuple[int, bytes], reply: bytes) -> None:
        seq, cmd = token
        self.deliver(seq, b"" if hidden_by_quiet(cmd, reply) else reply)

    def deliver(self, seq: int, reply: bytes) -> None:
        """The reply for request ``seq``; written once every earlier reply has been."""
        if seq != self._head:
            self._ready[seq] = reply
            return
        head = seq + 1
        ready = self._ready
        if ready and head in ready:
            parts = [reply]
            while head in ready:
                parts.append(ready.pop(head))
                head += 1
            reply = b"".join(parts)
        closing = self._close_at >= 0 and head > self._close_at
        self._head = head
        if self._inflight_paused and self._next - head <= self._max_inflight // 2:
            self._in_flight_drained()
        transport = self.transport
        if transport is None or (self._close_at >= 0 and transport.is_closing()):
            return
        if head == self._next and not self._out and not closing:
            # Nothing else in flight: write now rather than wait for the end of the turn.
            writer = self._writer
            if reply and writer is not None:
                writer.send(reply)
            return
        if reply:
            self._out.append(reply)
        if closing:
            self._flush()
            self.close()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        writer = self._writer
        if self._out and writer is not None:
            out = self._out
            self._out = []
            writer.send(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        """Close the client connection: at proxy shutdown, or once the reply it was to close
        after (``quit``, a protocol error) is written."""
        if self._writer is not None:
            self._writer.stop()  # replies still coming are dropped, as the transport does
        if self.transport is not None:
            self.transport.close()
