"""``ttl``: cap the expiry of what is written through a route (the gutter's short TTL)."""

from __future__ import annotations

from collections.abc import Iterator

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.protocol.commands import TEXT_STORES
from memfleet.protocol.requests import Request
from memfleet.routes.base import Route

_TEXT_STORE = TEXT_STORES
# memcached reads an exptime above 30 days as a unix timestamp.
_RELATIVE_MAX = 60 * 60 * 24 * 30


def capped(exptime: int, ttl: int) -> int:
    """The exptime to store: never forever, never longer than ``ttl`` seconds from now."""
    if exptime < 0:
        return exptime  # already expired: leave it so
    if exptime == 0 or exptime > _RELATIVE_MAX:
        # Forever, or an absolute time we cannot compare without the server's clock.
        return ttl
    return min(exptime, ttl)


def cap_ttl(req: Request, ttl: int) -> Request:
    """A copy of a storage request whose TTL is at most ``ttl``; other requests unchanged."""
    wire = req.wire
    eol = wire.find(b"\n")
    line_end = eol - 1 if wire[eol - 1 : eol] == b"\r" else eol
    tokens = [t for t in wire[:line_end].split(b" ") if t]
    if req.cmd in _TEXT_STORE:
        tokens[3] = b"%d" % capped(int(tokens[3]), ttl)
    elif req.cmd == b"ms":
        for i, t in enumerate(tokens[3:], 3):
            if t[:1] == b"T":
                tokens[i] = b"T%d" % capped(int(t[1:] or b"0"), ttl)
                break
        else:
            tokens.append(b"T%d" % ttl)
    else:
        return req
    out = Request(req.kind, req.cmd, b" ".join(tokens) + b"\r\n" + wire[eol + 1 :], req.key)
    out.reply = req.reply
    out.args = tokens[1:]
    return out


class TTLRoute(Route):
    """Caps the TTL of set/add/replace/append/prepend/cas/ms sent to ``child``."""

    __slots__ = ("child", "ttl")

    def __init__(self, ttl: int, child: Route) -> None:
        self.ttl = ttl
        self.child = child

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Rewrite storage requests, pass the rest through."""
        self.child.send(cap_ttl(req, self.ttl), cb, token)

    def journal_key(self, key: bytes) -> None:
        """The child's."""
        self.child.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """The child's backends."""
        return self.child.backends()
