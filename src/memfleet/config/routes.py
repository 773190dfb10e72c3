"""Route specs: the ``routes:`` section of the config, checked and turned into a plain tree.

The grammar of that section is part of the config file's schema, so it lives with the config;
``memfleet.routes.builder`` builds the route objects from the checked tree.

A spec is either a name (a pool, or a route from ``named_routes``) or a one-key mapping
``{handler: arguments}``:

```yaml
routes:                       # itself a per-command map; ``default`` is required
  get: {allfastest: {children: [replica_0, replica_1], miss: true}}
  default: {allsync: {children: [replica_0, replica_1]}}
named_routes:
  cluster: {failover: {children: [main, backup]}}
```

Every mistake raises ``SpecError`` whose message starts with the field path, e.g.
``routes.get.allfastest.children[1]: unknown pool or route 'replica_9'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from memfleet.protocol.commands import ROUTABLE

# Commands a ``commands`` route may map: the command table's routable ones.
COMMANDS = ROUTABLE

HANDLERS = (
    "direct", "allfastest", "allsync", "allasync", "failover", "zfailover", "ttl", "split",
    "null", "random", "commands", "prefix",
)  # fmt: skip


# allsync's write policies: acknowledged by the replicas in service (a replica that misses the
# write is journaled and repaired), or by every replica (memcached's proxy's strict one).
ACK_POLICIES = ("available", "all")


class SpecError(ValueError):
    """A route spec mistake; the message names the field."""


@dataclass
class Node:
    """One checked route spec: a handler name, its options and its children."""

    handler: str
    pool: str = ""  # for ``direct``
    children: list[Node] = field(default_factory=list)
    zones: dict[str, Node] = field(default_factory=dict)  # zfailover
    by_key: dict[str, Node] = field(default_factory=dict)  # commands / prefix
    default: Node | None = None
    options: dict[str, Any] = field(default_factory=dict)


_OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "allfastest": {"children": list, "miss": bool, "fill_ttl": int, "ack_wait": (int, float)},
    "allsync": {"children": list, "ack": str, "ack_wait": (int, float)},
    "allasync": {"children": list},
    "failover": {"children": list, "miss": bool, "failover_count": int, "shuffle": bool},
    "zfailover": {"children": dict, "miss": bool, "fill_ttl": int},
    "ttl": {"ttl": int, "child": (str, dict)},
    "split": {"a": (str, dict), "b": (str, dict)},
    "random": {"children": list},
    "prefix": {"prefixes": dict, "default": (str, dict)},
}
_REQUIRED = {
    "allfastest": ("children",),
    "allsync": ("children",),
    "allasync": ("children",),
    "failover": ("children",),
    "zfailover": ("children",),
    "ttl": ("ttl", "child"),
    "split": ("a", "b"),
    "random": ("children",),
    "prefix": ("prefixes", "default"),
}


class _Checker:
    def __init__(self, pools: set[str], named: Mapping[str, Any]) -> None:
        self.pools = pools
        self.named = named
        self.resolved: dict[str, Node] = {}
        self.stack: list[str] = []

    def name(self, ref: str, path: str) -> Node:
        if ref in self.named:
            if ref in self.stack:
                cycle = " -> ".join([*self.stack[self.stack.index(ref) :], ref])
                raise SpecError(f"{path}: route cycle {cycle}")
            if ref not in self.resolved:
                self.stack.append(ref)
                self.resolved[ref] = self.spec(self.named[ref], f"named_routes.{ref}")
                self.stack.pop()
            return self.resolved[ref]
        if ref in self.pools:
            return Node("direct", pool=ref)
        raise SpecError(f"{path}: unknown pool or route {ref!r}")

    def spec(self, spec: Any, path: str) -> Node:
        if isinstance(spec, str):
            return self.name(spec, path)
        if spec is None:
            raise SpecError(f"{path}: a route is required")
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise SpecError(f"{path}: a route is a pool name or one {{handler: options}} mapping")
        ((handler, args),) = spec.items()
        where = f"{path}.{handler}"
        if handler not in HANDLERS:
            raise SpecError(f"{path}: unknown route handler {handler!r}")
        if handler == "direct":
            if not isinstance(args, str) or args not in self.pools:
                raise SpecError(f"{where}: unknown pool {args!r}")
            return Node("direct", pool=args)
        if handler == "null":
            if args not in (None, {}):
                raise SpecError(f"{where}: takes no options")
            return Node("null")
        if handler == "commands":
            return self.commands(args, where)
        if not isinstance(args, Mapping):
            raise SpecError(f"{where}: options must be a mapping")
        self._check_options(handler, args, where)
        if handler == "split":  # children[0] answers: a, whatever order the mapping has
            args = {"a": args["a"], "b": args["b"]}
        node = Node(handler)
        for opt, value in args.items():
            if opt in ("children",) and isinstance(value, list):
                if not value:
                    raise SpecError(f"{where}.children: needs at least one child")
                node.children = [
                    self.spec(c, f"{where}.children[{i}]") for i, c in enumerate(value)
                ]
            elif opt == "children":  # zfailover's zone map
                if not value:
                    raise SpecError(f"{where}.children: needs at least one zone")
                node.zones = {
                    str(z): self.spec(c, f"{where}.children.{z}") for z, c in value.items()
                }
            elif opt in ("child", "a", "b"):
                node.children.append(self.spec(value, f"{where}.{opt}"))
            elif opt == "default":
                node.default = self.spec(value, f"{where}.default")
            elif opt == "prefixes":
                if not value:
                    raise SpecError(f"{where}.prefixes: needs at least one prefix")
                node.by_key = {
                    str(p): self.spec(c, f"{where}.prefixes.{p}") for p, c in value.items()
                }
            else:
                node.options[opt] = value
        if handler == "ttl" and node.options["ttl"] <= 0:
            raise SpecError(f"{where}.ttl: must be a positive number of seconds")
        if handler == "failover" and node.options.get("failover_count", 1) < 1:
            raise SpecError(f"{where}.failover_count: must be at least 1")
        if node.options.get("fill_ttl", 0) < 0:
            raise SpecError(f"{where}.fill_ttl: must not be negative")
        if not 0 <= node.options.get("ack_wait", 0) <= 60:
            raise SpecError(f"{where}.ack_wait: must be between 0 and 60 seconds")
        ack = node.options.get("ack", "available")
        if ack not in ACK_POLICIES:
            raise SpecError(f"{where}.ack: must be one of {', '.join(ACK_POLICIES)}, not {ack!r}")
        if ack == "all" and "ack_wait" in node.options:
            raise SpecError(f"{where}.ack_wait: does not apply with ack: all (every reply waits)")
        return node

    def _check_options(self, handler: str, args: Mapping[str, Any], where: str) -> None:
        allowed = _OPTIONS[handler]
        for opt, value in args.items():
            if opt not in allowed:
                raise SpecError(f"{where}.{opt}: unknown option")
            want = allowed[opt]
            if isinstance(value, bool) and want in (int, (int, float)):
                raise SpecError(f"{where}.{opt}: must be a number")
            if not isinstance(value, want):
                names = {list: "a list", dict: "a mapping", bool: "true or false", int: "a number",
                         str: "a string"}  # fmt: skip
                kind = names.get(want, "a route") if isinstance(want, type) else "a route"
                kind = "a number of seconds" if want == (int, float) else kind
                raise SpecError(f"{where}.{opt}: must be {kind}")
        for opt in _REQUIRED.get(handler, ()):
            if opt not in args:
                raise SpecError(f"{where}.{opt}: is required")

    def commands(self, args: Any, where: str) -> Node:
        if not isinstance(args, Mapping):
            raise SpecError(f"{where}: must be a mapping of command to route")
        if "default" not in args:
            raise SpecError(f"{where}: a 'default' route is required")
        node = Node("commands")
        for cmd, spec in args.items():
            if cmd == "default":
                node.default = self.spec(spec, f"{where}.default")
            elif cmd not in COMMANDS:
                raise SpecError(f"{where}.{cmd}: {cmd!r} is not a routable command")
            else:
                node.by_key[cmd] = self.spec(spec, f"{where}.{cmd}")
        return node


def check_routes(
    routes: Any, named_routes: Mapping[str, Any], pools: set[str], local_zone: str | None
) -> Node:
    """Check the whole ``routes`` section; return its tree (a ``commands`` node)."""
    checker = _Checker(pools, named_routes)
    for name in named_routes:
        if name in pools:
            raise SpecError(f"named_routes.{name}: a pool has that name already")
        checker.name(name, f"named_routes.{name}")
    root = checker.commands(routes, "routes")
    if local_zone is not None:
        _check_zones(root, local_zone)
    return root


def _check_zones(node: Node, zone: str, seen: set[int] | None = None) -> None:
    seen = seen if seen is not None else set()
    if id(node) in seen:
        return
    seen.add(id(node))
    if node.handler == "zfailover" and zone not in node.zones:
        raise SpecError(
            f"local_zone: {zone!r} is not a zone of a zfailover route "
            f"(zones: {', '.join(sorted(node.zones))})"
        )
    for child in [*node.children, *node.zones.values(), *node.by_key.values()]:
        _check_zones(child, zone, seen)
    if node.default is not None:
        _check_zones(node.default, zone, seen)
