"""What each admin command asks of the nodes, and which merge makes the client's reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.peers import PEERS
from memfleet.protocol import errors
from memfleet.protocol.commands import FLUSH
from memfleet.protocol.requests import Kind, Request
from memfleet.proxy import answers
from memfleet.proxy.admin import groups
from memfleet.proxy.admin.listing import render as render_fields
from memfleet.proxy.serving import Serving

_CRLF: Final = b"\r\n"
DETAIL_USAGE: Final = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"

Merge = Callable[[list[bytes]], bytes]

# Groups asked of every node and merged field by field.
_MERGED: Final[dict[bytes, Merge]] = {
    b"slabs": groups.slabs,
    b"items": groups.items,
    b"sizes": groups.sizes,
    b"cachedump": groups.cachedump,
}
# memcached answers these with ``STAT`` lines and no ``END``, which no reply framer can tell
# from the start of a listing: each is sent followed by ``stats sizes`` (whose listing ends
# in ``END``), and its own lines are taken back off the front (``groups.sizes_switch``).
_SIZES_SWITCH: Final = frozenset((b"sizes_enable", b"sizes_disable"))
_SWITCH_TAIL: Final = b"stats sizes\r\n"


def answer(serving: Serving, req: Request, cb: ReplyCallback, token: object) -> None:
    """Answer one admin request (``Kind.STATS`` or ``Kind.VERBOSITY``) through
    ``cb(token, reply)``."""
    if req.kind is Kind.VERBOSITY:
        # The framer checked the level; the nodes get it without noreply (they always reply).
        wire = b"verbosity " + req.args[0] + _CRLF
        fan_out(serving, wire, groups.all_done(errors.OK), cb, token)
        return
    if req.cmd == b"cache_memlimit":  # each node's own limit: N goes unchanged to each
        fan_out(serving, req.wire, groups.all_done(errors.OK), cb, token)
        return
    args = req.args
    if not args:
        own = stats_lines(serving)
        names = {name.encode() for name, _ in own}
        wire = b"stats\r\n"

        def general(replies: list[bytes]) -> bytes:
            lines = [(k.encode(), str(v).encode()) for k, v in own]
            return render_fields(lines + groups.fleet_totals(replies, names))

        fan_out(serving, wire, general, cb, token)
        return
    group = args[0]
    if group[:1] == b"@":
        one_node(serving, group[1:], args[1:], cb, token)
    elif group in _SIZES_SWITCH:
        fan_out(serving, b"stats " + group + _CRLF + _SWITCH_TAIL, groups.sizes_switch, cb, token)
    elif group in _MERGED:
        fan_out(serving, b"stats " + b" ".join(args) + _CRLF, _MERGED[group], cb, token)
    elif group == b"settings":
        own_settings = proxy_settings(serving)
        fan_out(
            serving, b"stats settings\r\n", lambda r: groups.settings(r, own_settings), cb, token
        )
    elif group == b"detail":
        sub = args[1] if len(args) > 1 else b""
        wire = b"stats detail " + sub + _CRLF
        if sub == b"on" or sub == b"off":
            fan_out(serving, wire, groups.all_done(errors.OK), cb, token)
        elif sub == b"dump":
            fan_out(serving, wire, groups.detail_dump, cb, token)
        else:
            cb(token, DETAIL_USAGE)
    elif group == b"reset":
        serving.stats.reset()
        fan_out(serving, b"stats reset\r\n", groups.all_done(errors.RESET), cb, token)
    else:
        # The proxy's own groups (proxy, backends) or memcached's ERROR.
        cb(token, answers.stats(serving, args))


def fan_out(serving: Serving, wire: bytes, merge: Merge, cb: ReplyCallback, token: object) -> None:
    """Send ``wire`` to every backend the route tree reaches; ``cb(token, merge(replies))``
    once all have answered (at once, over no replies, when there is none)."""
    backends = list(serving.root.backends())
    if not backends:
        cb(token, merge([]))
        return
    gather = answers.Gather(cb, token, len(backends), merge)
    for i, b in enumerate(backends):
        b.send(wire, gather.part, i)


def one_node(
    serving: Serving, name: bytes, args: list[bytes], cb: ReplyCallback, token: object
) -> None:
    """``stats @HOST:PORT [<group>...]``: that node's own answer, unmerged."""
    node = find_node(serving, name.decode(errors="replace"))
    if node is None:
        cb(token, b"CLIENT_ERROR no such node: %s\r\n" % name)
        return
    wire = b" ".join([b"stats", *args]) + _CRLF
    if args and args[0] in _SIZES_SWITCH:
        gather = answers.Gather(cb, token, 1, groups.sizes_switch)
        node.send(wire + _SWITCH_TAIL, gather.part, 0)
        return
    node.send(wire, cb, token)


def find_node(serving: Serving, name: str) -> Backend | None:
    """The backend of any pool called ``name`` (``HOST:PORT`` as the config spells it)."""
    for b in serving.all_backends():
        if b.name == name:
            return b
    return None


def stats_lines(serving: Serving) -> list[tuple[str, object]]:
    """The proxy's own ``stats`` counters (and its connection limit, which memcached
    reports there too)."""
    own = serving.stats.general() + serving.limit_counters.lines()
    return [*own, ("max_connections", serving.cfg.limits.max_connections)]


def proxy_settings(serving: Serving) -> dict[bytes, bytes]:
    """The settings that are the proxy's, not the nodes', by memcached's names."""
    cfg = serving.cfg
    limits = cfg.limits
    host, port = serving.address
    yes_no = {True: b"yes", False: b"no"}
    own = {
        b"maxconns": b"%d" % limits.max_connections,
        b"tcpport": b"%d" % port,
        b"udpport": b"0",
        b"inter": host.encode() or b"NULL",
        b"binding_protocol": b"auto-negotiate",  # text, meta and binary on one port
        b"auth_enabled_sasl": yes_no[cfg.auth is not None],
        b"auth_enabled_ascii": yes_no[cfg.auth is not None],
        b"item_size_max": b"%d" % cfg.max_item_size,
        b"idle_timeout": b"%d" % int(limits.idle_timeout),
        b"ssl_enabled": yes_no[cfg.tls is not None],
        # memcached's worker threads; the proxy's are its processes, one event loop each.
        b"num_threads": b"%d" % PEERS.workers,
    }
    if serving.gate.deny & FLUSH:
        own[b"flush_enabled"] = b"no"
    return own
