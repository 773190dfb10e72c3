"""Builds the route tree and the pools from a validated config.

Backends are looked up in ``reuse`` by address and options first, so a reload keeps the
connections (and health state) of every backend it did not change.
"""

from __future__ import annotations

from collections.abc import Callable

from memfleet.backends.backend import Backend
from memfleet.backends.pool import Pool
from memfleet.config import BackendOptions, ProxyConfig, parse_hostport
from memfleet.config.routes import Node, check_routes
from memfleet.routes.allsync import AllSync
from memfleet.routes.base import Route
from memfleet.routes.command import CommandRoute
from memfleet.routes.failover import Failover, ZFailover
from memfleet.routes.fanout import DEFAULT_ACK_WAIT, AllAsync, AllFastest, Split
from memfleet.routes.migrate import MigrationRoute
from memfleet.routes.misc import NullRoute, PrefixRoute, RandomRoute
from memfleet.routes.modify import TTLRoute
from memfleet.routes.pool import PoolRoute

BackendKey = tuple[str, int, BackendOptions]
# Wraps a pool's route while its resize window is open (memfleet.proxy.migration): the pool's
# name and route in, the route the tree uses out.
Wrap = Callable[[str, PoolRoute], Route]


def build_pools(
    cfg: ProxyConfig, reuse: dict[BackendKey, Backend] | None = None
) -> dict[str, Pool]:
    """One Pool per configured pool; backends shared by address+options within the config."""
    reuse = reuse or {}
    made: dict[BackendKey, Backend] = {}
    pools: dict[str, Pool] = {}
    rejoin = default_rejoin(cfg)
    for name, pc in cfg.pools.items():
        fields = pc.model_dump(include=set(BackendOptions.model_fields))
        if fields["rejoin"] is None:
            fields["rejoin"] = rejoin.get(name, "none")
        options = BackendOptions.model_validate(fields)
        backends: list[Backend] = []
        for spec in pc.backends:
            host, port = parse_hostport(spec)
            key = (host, port, options)
            b = made.get(key) or reuse.get(key) or Backend(host, port, options)
            b.max_queue = cfg.limits.max_backend_queue
            made[key] = b
            backends.append(b)
        pools[name] = Pool(name, backends, pc.seed)
    return pools


def register_repair_sources(children: list[Route]) -> None:
    """Each replica pool's backends are repaired from the other replica pools of the route
    (a replica behind a ``ttl`` cap is no source: its copies expire early). A replica in its
    resize window is a source through its migration route (which reads through)."""
    pools: list[PoolRoute | MigrationRoute] = [
        c for c in children if type(c) is PoolRoute or type(c) is MigrationRoute
    ]
    for p in pools:
        others = [o for o in pools if o is not p]
        pool = p.new if isinstance(p, MigrationRoute) else p
        for b in pool.backend_list:
            b.repair_sources += [o for o in others if all(o is not s for s in b.repair_sources)]


def default_rejoin(cfg: ProxyConfig) -> dict[str, str]:
    """The ``rejoin`` of pools that do not set it: safe by default. A pool under ``allsync``
    or ``allfastest`` is a replica: it journals what it misses and is repaired from the other
    replicas before it serves again. A pool under ``failover``/``zfailover`` (the gutter's
    main pool) has its missed keys deleted when it returns (what stood in for it is no
    replica to copy from). Any other pool never misses a write it could serve later."""
    tree = check_routes(cfg.routes, cfg.named_routes, set(cfg.pools), None)
    out = dict.fromkeys(pools_under(tree, FAILING_OVER), "invalidate")
    out.update(dict.fromkeys(pools_under(tree, REPLICATED), "repair"))
    return out


def build_routes(
    cfg: ProxyConfig,
    pools: dict[str, Pool],
    local_zone: str | None = None,
    wrap: Wrap | None = None,
) -> Route:
    """The root route for the config's ``routes`` section.

    ``local_zone`` (from ``--zone`` or the environment) overrides the config's ``local_zone``;
    ``wrap`` gives the route each pool is reached through (its migration route during a
    resize window; the pool's own route otherwise).
    """
    zone = local_zone if local_zone is not None else cfg.local_zone
    tree = check_routes(cfg.routes, cfg.named_routes, set(pools), zone)
    builder = _Builder(pools, zone, wrap)
    root = builder.build(tree)
    for pool in pools.values():
        for b in pool.backends:
            b.repair_sources = []
    for made in builder.made.values():
        if isinstance(made, (AllSync, AllFastest)):
            register_repair_sources(made.children)
    for name in pools_under(tree, COPYING):
        pool_route = builder.direct.get(name)
        if pool_route is not None:
            pool_route.fenced = True
    return root


REPLICATED = frozenset(("allfastest", "allsync"))
FAILING_OVER = frozenset(("failover", "zfailover"))
# Routes that copy between their children (fills, repairs) or send a key's writes elsewhere
# when a child fails: their pools count writes in the write fence.
COPYING = REPLICATED | FAILING_OVER


def pools_under(node: Node, handlers: frozenset[str]) -> set[str]:
    """The pools reached below a route of one of ``handlers``."""
    found: set[str] = set()
    seen: set[tuple[int, bool]] = set()

    def walk(n: Node, inside: bool) -> None:
        if (id(n), inside) in seen:
            return
        seen.add((id(n), inside))
        if n.handler == "direct":
            if inside:
                found.add(n.pool)
            return
        inside = inside or n.handler in handlers
        for c in [*n.children, *n.zones.values(), *n.by_key.values()]:
            walk(c, inside)
        if n.default is not None:
            walk(n.default, inside)

    walk(node, False)
    return found


class _Builder:
    def __init__(self, pools: dict[str, Pool], zone: str | None, wrap: Wrap | None) -> None:
        self.pools = pools
        self.zone = zone
        self.wrap = wrap
        self.direct: dict[str, PoolRoute] = {}
        self.reached: dict[str, Route] = {}  # what the tree holds for each pool
        self.made: dict[int, Route] = {}  # a named route used twice is built once

    def build(self, node: Node) -> Route:
        if id(node) not in self.made:
            self.made[id(node)] = self._make(node)
        return self.made[id(node)]

    def _make(self, node: Node) -> Route:
        h = node.handler
        opts = node.options
        kids = [self.build(c) for c in node.children]
        if h == "direct":
            if node.pool not in self.direct:
                pool_route = PoolRoute(self.pools[node.pool])
                self.direct[node.pool] = pool_route
                wrap = self.wrap
                reached = pool_route if wrap is None else wrap(node.pool, pool_route)
                self.reached[node.pool] = reached
            return self.reached[node.pool]
        if h == "commands":
            assert node.default is not None
            default = self.build(node.default)
            by_cmd = {c.encode(): self.build(n) for c, n in node.by_key.items()}
            return CommandRoute(by_cmd, default) if by_cmd else default
        if h == "prefix":
            assert node.default is not None
            by_prefix = {p.encode(): self.build(n) for p, n in node.by_key.items()}
            return PrefixRoute(by_prefix, self.build(node.default))
        if h == "allfastest":
            wait = float(opts.get("ack_wait", DEFAULT_ACK_WAIT))
            return AllFastest(kids, bool(opts.get("miss", False)), opts.get("fill_ttl"), wait)
        if h == "allsync":
            wait = float(opts.get("ack_wait", DEFAULT_ACK_WAIT))
            return AllSync(kids, str(opts.get("ack", "available")), wait)
        if h == "allasync":
            return AllAsync(kids)
        if h == "failover":
            return Failover(
                kids,
                bool(opts.get("miss", False)),
                opts.get("failover_count"),
                bool(opts.get("shuffle", False)),
            )
        if h == "zfailover":
            zones = {z: self.build(n) for z, n in node.zones.items()}
            return ZFailover(zones, self.zone, bool(opts.get("miss", False)), opts.get("fill_ttl"))
        if h == "ttl":
            return TTLRoute(int(opts["ttl"]), kids[0])
        if h == "split":
            return Split(kids[0], kids[1])
        if h == "random":
            return RandomRoute(kids)
        if h == "null":
            return NullRoute()
        raise AssertionError(f"unhandled route handler {h}")
