"""Client authentication (memcached's ASCII ``-Y`` style and binary SASL PLAIN share it) and
TLS contexts for the client side and the backend side.

Secrets stay here: nothing in this module logs a user name's password or a key file's
content, and the proxy logs only the peer address of a failed authentication.
"""

from __future__ import annotations

import hmac
import ssl

from memfleet.config import AuthConfig, TLSConfig


class PasswordFile:
    """Checks ``user``/``password`` against memcached-style ``user:password`` lines.

    Every entry is compared, in constant time, whatever matches: how long a check takes
    says nothing about which user exists or how much of a password was right.
    """

    def __init__(self, users: dict[bytes, bytes]) -> None:
        self._users = list(users.items())

    @classmethod
    def from_config(cls, cfg: AuthConfig) -> PasswordFile:
        """Load the config's file (ValueError with a reason if it cannot be used)."""
        return cls(cfg.load())

    def check(self, user: bytes, password: bytes) -> bool:
        """True when ``password`` is right for ``user``."""
        ok = False
        for u, p in self._users:
            # Both comparisons always run: no early exit on the user name.
            match_user = hmac.compare_digest(u, user)
            match_password = hmac.compare_digest(p, password)
            ok |= match_user & match_password
        return ok


def server_context(cfg: TLSConfig) -> ssl.SSLContext:
    """The proxy's TLS context towards clients (client certificates required with ``ca``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert cfg.cert is not None and cfg.key is not None
    ctx.load_cert_chain(cfg.cert, cfg.key)
    if cfg.ca:
        ctx.load_verify_locations(cfg.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cfg: TLSConfig) -> ssl.SSLContext:
    """A TLS context for connecting to backends (memcached ``-Z``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.ca:
        ctx.load_verify_locations(cfg.ca)
    else:
        ctx.load_default_certs()
    if not cfg.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert and cfg.key:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    return ctx
