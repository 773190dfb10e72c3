"""The one table of routelib names and their memfleet equivalents.

Import (routelib Lua -> memfleet), render (memfleet -> routelib Lua) and the tests read it, so
a mapping rule lives here only.

Names are routelib's own, taken from its documentation and source:
- the route handler reference, docs.memcached.org/features/proxy/reference
  (memcached/memcached.github.io, content/features/proxy/reference.md): route_direct,
  route_null, route_allsync, route_allfastest, route_split, route_ttl, route_failover,
  route_ratelim, route_random, route_zfailover and their arguments;
- "Configure the built-in proxy" (content/features/proxy/configure.md): pools{}, pool
  ``options`` / ``backend_options`` / ``backends``, pool sets (``set_`` names), routes{}
  with ``map``, ``cmap``, ``conf`` (``mode``, ``start``, ``stop``), ``default``, ``tag``,
  ``local_zone()``, ``cmdmap{}``;
- the proxy API reference (content/features/proxy/api-reference.md): ``mcp.backend``
  options (connecttimeout, readtimeout, retrywaittime, failurelimit, connections, tls, down,
  flaptime, ...) and ``mcp.pool`` options (seed, filter, filter_conf, hash, dist, iothread,
  beprefix);
- the settings reference (content/features/proxy/settings-reference.md);
- routelib.lua itself (memcached/memcached-proxylibs, lib/routelib/routelib.lua): the
  command names of ``cmap``/``cmdmap`` (CMD_ID_MAP), pool-set child names
  (``set_NAME`` and ``set_NAME_MEMBER``), and that route_ttl rewrites only ms, set, add
  and cas (any other command through it gets ``SERVER_ERROR invalid command for
  route_ttl``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# Why a name is refused: it would place keys elsewhere than the C proxy does.
PLACEMENT = (
    "memfleet places keys only by XXH3 (the pool's seed) and jump hash, as the C proxy does "
    "by default"
)


@dataclass(frozen=True)
class Handler:
    """One routelib route handler: its arguments and what each becomes in memfleet.

    ``args`` maps a routelib argument to the memfleet option of the same meaning ("" for the
    child arguments, which become the memfleet route's children). ``ignored`` are accepted
    and reported as having no effect in memfleet, with the reason; ``refused`` stop the
    import, with the reason.
    """

    routelib: str
    memfleet: str | None
    args: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    why_unsupported: str = ""


_STATS = "memfleet counts every route in `stats` and /metrics already"
_WAIT = "memfleet bounds each try by the backends' read_timeout"

HANDLERS: Final[dict[str, Handler]] = {
    h.routelib: h
    for h in (
        Handler("route_direct", "direct", {"child": ""}),
        Handler("route_null", "null"),
        Handler("route_allsync", "allsync", {"children": ""}),
        Handler(
            "route_allfastest", "allfastest", {"children": "", "miss": "miss", "wait": "ack_wait"}
        ),
        Handler("route_split", "split", {"child_a": "a", "child_b": "b"}),
        Handler("route_ttl", "ttl", {"ttl": "ttl", "child": "child"}),
        Handler(
            "route_failover",
            "failover",
            {
                "children": "",
                "failover_count": "failover_count",
                "shuffle": "shuffle",
                "miss": "miss",
            },
            ignored={"wait": _WAIT, "stats": _STATS, "stats_name": _STATS},
            refused={
                "local_zone": "memfleet's failover keeps its children's order; use "
                "route_zfailover for a zone-first order"
            },
        ),
        Handler(
            "route_zfailover",
            "zfailover",
            {"children": "", "miss": "miss"},
            ignored={
                "stats": _STATS,
                "stats_name": _STATS,
                "failover_count": "routelib's zfailover asks every far zone at once too",
            },
        ),
        Handler("route_random", "random", {"children": ""}),
        Handler(
            "route_ratelim",
            None,
            why_unsupported="memfleet has no rate limiter route (its limits are per client "
            "and per backend queue: see `limits`)",
        ),
    )
}
# memfleet handlers routelib cannot express.
NO_ROUTELIB: Final[dict[str, str]] = {
    "allasync": "routelib has no fire-and-forget fan-out",
}
# The routelib handler of each memfleet handler.
TO_ROUTELIB: Final[dict[str, str]] = {h.memfleet: n for n, h in HANDLERS.items() if h.memfleet}

# routelib.lua's CMD_ID_MAP: the command names ``cmap`` and ``cmdmap{}`` take ("all" is
# CMD_ANY_STORAGE: any command not listed).
COMMANDS: Final = (
    "mg", "ms", "md", "mn", "ma", "me", "get", "gat", "set", "add", "cas", "gets", "gats",
    "incr", "decr", "touch", "append", "delete", "replace", "prepend",
)  # fmt: skip
ANY_COMMAND: Final = "all"
# What route_ttl rewrites in routelib.lua; memfleet's ttl also caps replace/append/prepend.
TTL_COMMANDS: Final = frozenset(("ms", "set", "add", "cas"))

# mcp.backend options (per pool in routelib's backend_options, or per backend table) and
# memfleet's per-pool backend option of the same meaning.
BACKEND_OPTIONS: Final[dict[str, str]] = {
    "connecttimeout": "connect_timeout",
    "readtimeout": "read_timeout",
    "retrywaittime": "retry_timeout",
    # routelib's README spells it so in its backend_options example.
    "retrytimeout": "retry_timeout",
    "failurelimit": "failure_limit",
    "connections": "connections",
}
BACKEND_IGNORED: Final[dict[str, str]] = {
    "label": "",  # connection sharing: memfleet shares a backend by address and options
    "tcpkeepalive": "memfleet does not set TCP keepalive on backend connections",
    "flaptime": "memfleet has no flap detection (failure_limit and retry_timeout only)",
    "flapbackofframp": "memfleet has no flap detection (failure_limit and retry_timeout only)",
    "flapbackoffmax": "memfleet has no flap detection (failure_limit and retry_timeout only)",
}
BACKEND_REFUSED: Final[dict[str, str]] = {
    "down": "memfleet has no backend forced down by config: it would serve keys from it",
}

# mcp.pool options.
POOL_OPTIONS: Final[dict[str, str]] = {"seed": "seed"}
POOL_IGNORED: Final[dict[str, str]] = {
    "iothread": "memfleet runs each backend's connection in its worker's event loop",
    "beprefix": "memfleet shares a backend by address and options",
}
POOL_REFUSED: Final[dict[str, str]] = {
    "filter": PLACEMENT + " over the whole key",
    "filter_conf": PLACEMENT + " over the whole key",
    "hash": PLACEMENT,
    "dist": PLACEMENT + " (no ketama)",
}

# settings{}: the proxy-wide defaults memfleet has per pool or in ``limits``.
SETTINGS_POOL: Final[dict[str, str]] = {
    "backend_connect_timeout": "connect_timeout",
    "backend_read_timeout": "read_timeout",
    "backend_retry_waittime": "retry_timeout",
    "backend_failure_limit": "failure_limit",
}
SETTINGS_LIMITS: Final[dict[str, str]] = {"backend_depth_limit": "max_backend_queue"}
SETTINGS_IGNORED: Final[dict[str, str]] = {
    "active_req_limit": "memfleet limits requests per client (limits.max_inflight)",
    "active_request_limit": "memfleet limits requests per client (limits.max_inflight)",
    "buffer_memory_limit": "memfleet bounds memory per client and per process "
    "(limits.max_client_bytes, limits.max_memory) by pausing reads, not by failing requests",
    "tcp_keepalive": BACKEND_IGNORED["tcpkeepalive"],
    "backend_flap_time": BACKEND_IGNORED["flaptime"],
    "backend_flap_backoff_ramp": BACKEND_IGNORED["flaptime"],
    "backend_flap_backoff_max": BACKEND_IGNORED["flaptime"],
    "backend_use_iothread": POOL_IGNORED["iothread"],
}
# routes{} fields.
ROUTES_FIELDS: Final = ("conf", "map", "cmap", "default", "tag")
CONF_FIELDS: Final = ("mode", "start", "stop")
DEFAULT_STOP: Final = "/"
# Top-level functions a config may call (besides pools, routes, settings and the handlers).
TOP_LEVEL: Final = (
    "pools", "routes", "settings", "local_zone", "local_zone_from_env", "local_zone_from_file",
    "verbose", "debug", "say", "dsay", "cmdmap", "register_route_handlers", "find_pools",
)  # fmt: skip
# The pool routelib's newer versions route to the proxy's own cache.
INTERNAL_POOL: Final = "internal"
