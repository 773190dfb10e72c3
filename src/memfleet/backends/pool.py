"""A pool: backends a key is hashed over (seeded XXH3 + jump hash, as memcached's proxy)."""

from __future__ import annotations

from memfleet.backends.backend import Backend
from memfleet.backends.hashing import Placement


class Pool:
    """Named list of backends with the placement rule; a down backend keeps its slot."""

    __slots__ = ("backends", "name", "placement", "seed")

    def __init__(self, name: str, backends: list[Backend], seed: str | None = None) -> None:
        self.name = name
        self.backends = backends
        self.seed = seed
        self.placement = Placement(len(backends), seed)

    def backend_for(self, key: bytes) -> Backend:
        """The backend that owns ``key`` (never remapped while that backend is down)."""
        return self.backends[self.placement.index(key)]
