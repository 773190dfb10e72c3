"""The policy gate: the one place every request passes before it reaches a route.

Text, meta and binary requests (quiet or not) all come here as ``Request`` objects, so one rule
holds for every way of spelling a request: authentication first, then the deny-list by effect
(``memfleet.protocol.commands``). A reload builds a new gate and every connection reads the
proxy's current one for each request, so a policy change applies to connections already open.

The counters a refusal bumps live here too; the per-command counters are bumped by the
connection right after the gate lets a request through (``ClientConnection.dispatch``).
"""

from __future__ import annotations

from typing import Final

from memfleet.logs import LimitEvents
from memfleet.observe.stats import ProxyStats
from memfleet.protocol import errors
from memfleet.protocol.commands import effect_names
from memfleet.protocol.requests import Kind, Request
from memfleet.proxy.auth import PasswordFile

# Why a request was refused (0: it was not).
ADMITTED: Final = 0
UNAUTHENTICATED: Final = 1
DENIED: Final = 2


class PolicyGate:
    """Authentication and the deny-list for one config generation.

    ``active`` is False when there is nothing to check: the connections' fast paths (which
    skip building a request) are allowed only then.
    """

    __slots__ = ("active", "auth", "deny", "events", "stats")

    def __init__(
        self, auth: PasswordFile | None, deny: int, events: LimitEvents, stats: ProxyStats
    ) -> None:
        self.auth = auth
        self.deny = deny
        self.events = events
        self.stats = stats
        self.active = auth is not None or deny != 0

    def check(self, req: Request, authenticated: bool, peer: object) -> int:
        """``ADMITTED``, or why ``req`` must be refused. ``authenticated`` says whether the
        connection has logged in (or is exempt for this request, as a binary Version is)."""
        # Hanging up needs no login: quit, and an HTTP request line (closed unanswered).
        kind = req.kind
        hangs_up = kind is Kind.QUIT or kind is Kind.HTTP
        if self.auth is not None and not authenticated and not hangs_up:
            self.stats.auth_refused += 1
            return UNAUTHENTICATED
        deny = self.deny
        if deny and req.effect_mask() & deny:
            self.stats.cmd_denied += 1
            self.events.warning(
                "deny", "client %s sent a denied command %r (denied effect: %s)", peer, req.cmd,
                ", ".join(effect_names(req.effect_mask() & deny)),
            )  # fmt: skip
            return DENIED
        return ADMITTED

    def login(self, user: bytes, password: bytes, peer: object) -> bool:
        """True when ``password`` is right for ``user`` (a failure is logged, rate-limited)."""
        auth = self.auth
        if auth is not None and auth.check(user, password):
            return True
        self.events.warning("auth", "client %s failed to authenticate", peer)
        return False

    def ascii_login(self, req: Request, peer: object) -> tuple[bytes, bytes | None]:
        """memcached's -Y: until authenticated, only ``set <any> 0 0 <len>`` carrying
        ``<user> <password>`` is accepted (answered even with noreply). Returns the reply and
        the user now authenticated (None if not)."""
        if req.kind is not Kind.KEYED or req.cmd != b"set":
            return errors.UNAUTHENTICATED, None
        data = req.wire[req.wire.index(b"\n") + 1 : -2]
        user, sep, password = data.partition(b" ")
        if not sep or not user or not password:
            return errors.BAD_AUTH_TOKEN, None
        if self.login(user, password, peer):
            return errors.STORED, user
        return errors.AUTH_FAILURE, None

    def knows(self, user: bytes) -> bool:
        """True while ``user`` may stay connected: no authentication, or still in the file."""
        return self.auth is None or self.auth.has_user(user)
