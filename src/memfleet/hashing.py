"""Key placement, bit-compatible with memcached's proxy.

``h = XXH3_64(key, seed64)`` where ``seed64`` is 0 for a pool without a seed and
``XXH3_64(seed_string)`` otherwise; the backend is ``jump_consistent_hash(h, n)``.
"""

from __future__ import annotations

import xxhash

_xxh3 = xxhash.xxh3_64_intdigest
_MASK64 = 0xFFFFFFFFFFFFFFFF
_LCG = 2862933555777941757
_TWO31 = float(1 << 31)


def pool_seed(seed: str | None) -> int:
    """The 64-bit hash seed memcached's proxy derives from a pool's ``seed`` option."""
    if not seed:
        return 0
    return int(_xxh3(seed.encode()))


def key_hash(key: bytes, seed64: int = 0) -> int:
    """XXH3-64 of the whole key with the pool's seed."""
    return int(_xxh3(key, seed64))


def jump_hash(h: int, buckets: int) -> int:
    """Google's jump consistent hash (Lamping & Veach), as memcached's proxy computes it.

    The double-precision division matters: it is what makes the result bit-exact with C.
    """
    b = -1
    j = 0
    while j < buckets:
        b = j
        h = (h * _LCG + 1) & _MASK64
        j = int((b + 1) * (_TWO31 / float((h >> 33) + 1)))
    return b


class Placement:
    """Maps keys to backend indexes for one pool (a seed and a backend count)."""

    __slots__ = ("buckets", "seed64")

    def __init__(self, buckets: int, seed: str | None = None) -> None:
        if buckets < 1:
            raise ValueError("a pool needs at least one backend")
        self.buckets = buckets
        self.seed64 = pool_seed(seed)

    def index(self, key: bytes) -> int:
        """The backend index the key belongs to."""
        if self.buckets == 1:
            return 0
        return jump_hash(_xxh3(key, self.seed64), self.buckets)
