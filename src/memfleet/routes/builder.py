"""Builds the route tree and the pools from a validated config.

Backends are looked up in ``reuse`` by address and options first, so a reload keeps the
connections (and health state) of every backend it did not change.
"""

from __future__ import annotations

from memfleet.backend import Backend
from memfleet.config import BackendOptions, ProxyConfig, parse_hostport
from memfleet.pool import Pool
from memfleet.routes.base import Route
from memfleet.routes.command import CommandRoute
from memfleet.routes.pool import PoolRoute

BackendKey = tuple[str, int, BackendOptions]


def build_pools(
    cfg: ProxyConfig, reuse: dict[BackendKey, Backend] | None = None
) -> dict[str, Pool]:
    """One Pool per configured pool; backends shared by address+options within the config."""
    reuse = reuse or {}
    made: dict[BackendKey, Backend] = {}
    pools: dict[str, Pool] = {}
    for name, pc in cfg.pools.items():
        options = BackendOptions.model_validate(
            pc.model_dump(include=set(BackendOptions.model_fields))
        )
        backends: list[Backend] = []
        for spec in pc.backends:
            host, port = parse_hostport(spec)
            key = (host, port, options)
            b = made.get(key) or reuse.get(key) or Backend(host, port, options)
            made[key] = b
            backends.append(b)
        pools[name] = Pool(name, backends, pc.seed)
    return pools


def build_routes(cfg: ProxyConfig, pools: dict[str, Pool]) -> Route:
    """The root route for the config's ``routes`` section."""
    by_pool: dict[str, Route] = {name: PoolRoute(pool) for name, pool in pools.items()}
    default = by_pool[cfg.routes["default"]]
    by_command = {
        cmd.encode(): by_pool[target] for cmd, target in cfg.routes.items() if cmd != "default"
    }
    if not by_command:
        return default
    return CommandRoute(by_command, default)
