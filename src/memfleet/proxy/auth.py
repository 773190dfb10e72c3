"""Client authentication: memcached's ASCII ``-Y`` style and binary SASL PLAIN share it.

Secrets stay here: nothing in this module logs a user name's password or a key file's
content, and the proxy logs only the peer address of a failed authentication.
"""

from __future__ import annotations

import hmac

from memfleet.config import AuthConfig


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

    def has_user(self, user: bytes) -> bool:
        """True when ``user`` has an entry (a reload that removes it closes its connections)."""
        found = False
        for u, _p in self._users:
            found |= hmac.compare_digest(u, user)
        return found
