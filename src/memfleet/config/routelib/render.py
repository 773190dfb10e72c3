"""A memfleet config as a routelib config for memcached's C proxy.

Placement is the same by construction: each pool keeps its backends in order and its
``seed``. What routelib has no words for goes into ``-- memfleet: {...}`` comments (JSON),
which :mod:`memfleet.config.routelib.importer` reads back, so rendering and importing again
gives the same memfleet config; plain ``-- memfleet: ...`` lines tell the reader what the C
proxy will not do.

routelib's route_ttl rewrites only ms/set/add/cas and fails every other command, while
memfleet's ttl passes other commands through: where a route holds a ttl, every other command
gets its own ``cmap`` entry with the ttl left out (marked ``"derived"``, dropped on import).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any

from memfleet.config.model import parse_config
from memfleet.config.routelib import handlers as H
from memfleet.config.routes import COMMANDS as ROUTABLE

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LUA_KEYWORDS = frozenset(
    ("and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
     "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while")
)  # fmt: skip
# memfleet pool option -> routelib backend option (the first routelib spelling of each).
_BACKEND: dict[str, str] = {}
for _rl, _mf in H.BACKEND_OPTIONS.items():
    _BACKEND.setdefault(_mf, _rl)
_POOL_EXTRA_SKIP = frozenset(("backends", "seed", "tls", *_BACKEND))
_TOP_LEVEL_SKIP = frozenset(("pools", "routes", "local_zone", "named_routes"))

_WHY = {
    "ack": "route_allsync waits for every child and answers the first error; memfleet "
    "acknowledges a write once the replicas in service have it (ack) and repairs the rest",
    "ack_wait": "the C proxy has no ack_wait (how long a write waits for the slower replicas)",
    "fill_ttl": "the C proxy copies no hit back to the replica or zone that missed it (fill_ttl)",
    "rejoin": "the C proxy keeps no journal of the writes a backend missed and repairs nothing "
    "when it returns (rejoin, journal_limit)",
    "derived": "route_ttl rewrites only ms/set/add/cas and fails other commands: those get "
    "their own cmap entry without the TTL cap (replace is not capped by the C proxy)",
}


class RenderError(ValueError):
    """A memfleet config with no routelib equivalent; the message names the field."""


def lua_string(s: str) -> str:
    """A Lua string literal."""
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + "".join(c if c >= " " else f"\\{ord(c):03d}" for c in out) + '"'


def lua_key(k: str) -> str:
    """A table key: bare where Lua allows it."""
    return k if _IDENT.match(k) and k not in _LUA_KEYWORDS else f"[{lua_string(k)}]"


def lua_value(v: Any) -> str:
    """A scalar as Lua."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return lua_string(v)
    raise RenderError(f"{v!r} has no Lua form here")


def _comment(extras: dict[str, Any]) -> str:
    return f" -- memfleet: {json.dumps(extras, sort_keys=True)}" if extras else ""


def _has_ttl(spec: Any, named: dict[str, Any]) -> bool:
    if isinstance(spec, str):
        return spec in named and _has_ttl(named[spec], named)
    if not isinstance(spec, dict) or len(spec) != 1:
        return False
    ((h, args),) = spec.items()
    if h == "ttl":
        return True
    if not isinstance(args, dict):
        return False
    values = list(args.values())
    kids = args.get("children")
    values += list(kids.values()) if isinstance(kids, dict) else list(kids or [])
    if h == "prefix":
        values += list(args.get("prefixes", {}).values())
    return any(_has_ttl(v, named) for v in values if isinstance(v, (str, dict)))


def _strip_ttl(spec: Any, named: dict[str, Any]) -> Any:
    """``spec`` with every ttl route replaced by its child (named routes inlined)."""
    if isinstance(spec, str):
        return _strip_ttl(named[spec], named) if spec in named else spec
    ((h, args),) = spec.items()
    if h == "ttl":
        return _strip_ttl(args["child"], named)
    if not isinstance(args, dict):
        return spec
    out: dict[str, Any] = {}
    for k, v in args.items():
        if k == "children" and isinstance(v, list):
            out[k] = [_strip_ttl(c, named) for c in v]
        elif k in ("children", "prefixes") and isinstance(v, dict):
            out[k] = {z: _strip_ttl(c, named) for z, c in v.items()}
        elif k in ("child", "a", "b", "default"):
            out[k] = _strip_ttl(v, named)
        else:
            out[k] = v
    return {h: out}


class _Renderer:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.pools: dict[str, Any] = cfg["pools"]
        self.named: dict[str, Any] = cfg.get("named_routes") or {}
        self.reasons: set[str] = set()

    def route(self, spec: Any, ind: str, where: str, top: bool, extra: dict[str, Any]) -> str:
        """A route as Lua starting at the current column; ``top``: a place where routelib
        needs a call (a bare pool name is a route only as a child)."""
        if isinstance(spec, str) and spec in self.named:
            return self.route(self.named[spec], ind, where, top, extra)
        if isinstance(spec, str):
            if not top and not extra:
                return lua_string(spec)
            return f"route_direct{{{_comment(extra)}\n{ind}    child = {lua_string(spec)},\n{ind}}}"
        ((h, args),) = spec.items()
        where = f"{where}.{h}"
        if h == "direct":
            return self.route(str(args), ind, where, top, extra)
        if h in H.NO_ROUTELIB:
            raise RenderError(f"{where}: no routelib equivalent: {H.NO_ROUTELIB[h]}")
        if h in ("commands", "prefix"):
            raise RenderError(f"{where}: routelib maps commands and key prefixes only at the "
                              "top of routes{}")  # fmt: skip
        rl = H.TO_ROUTELIB[h]
        handler = H.HANDLERS[rl]
        back = {mf: a for a, mf in handler.args.items() if mf}
        opts = dict(args) if isinstance(args, dict) else {}
        # With "as" the comment stands for the whole route: its own extras are in there.
        extras = dict(extra)
        keep = "as" not in extras
        lines: list[str] = []
        inner = ind + "    "
        for k, v in opts.items():
            if k == "children":
                lines.append(f"children = {self.children(v, inner, f'{where}.children')},")
            elif k in back and k in ("child", "a", "b"):
                lines.append(f"{back[k]} = {self.route(v, inner, f'{where}.{k}', False, {})},")
            elif k in back:
                lines.append(f"{back[k]} = {lua_value(v)},")
            else:
                if keep:
                    extras[k] = v
                self.reasons.add(k)
        body = "".join(f"{inner}{line}\n" for line in lines)
        return f"{rl}{{{_comment(extras)}\n{body}{ind}}}"

    def children(self, kids: Any, ind: str, where: str) -> str:
        inner = ind + "    "
        if isinstance(kids, dict):
            items = [f"{lua_key(str(z))} = {self.route(c, inner, f'{where}.{z}', False, {})}"
                     for z, c in kids.items()]  # fmt: skip
        else:
            items = [self.route(c, inner, f"{where}[{i}]", False, {}) for i, c in enumerate(kids)]
        if all(not x.startswith("route_") and "\n" not in x for x in items):
            return "{ " + ", ".join(items) + " }"
        return "{\n" + "".join(f"{inner}{x},\n" for x in items) + ind + "}"

    def pools_lua(self) -> tuple[str, dict[str, Any]]:
        extras: dict[str, Any] = {}
        out = ["pools{"]
        for name, pool in self.pools.items():
            if name.startswith("set_"):
                raise RenderError(f"pools.{name}: routelib reads a set_ name as a set of pools")
            out.append(f"    {lua_key(name)} = {{")
            if pool.get("seed") is not None:
                out.append(f"        options = {{ seed = {lua_string(str(pool['seed']))} }},")
            bopts = [f"{_BACKEND[k]} = {lua_value(pool[k])}" for k in _BACKEND if k in pool]
            if pool.get("tls") is not None:
                bopts.append("tls = true")
                if pool["tls"]:
                    extras.setdefault(name, {})["tls"] = pool["tls"]
            if bopts:
                out.append(f"        backend_options = {{ {', '.join(bopts)} }},")
            out.append("        backends = {")
            out += [f"            {lua_string(b)}," for b in pool["backends"]]
            out.append("        },")
            out.append("    },")
            rest = {k: v for k, v in pool.items() if k not in _POOL_EXTRA_SKIP}
            if rest:
                extras.setdefault(name, {}).update(rest)
                self.reasons.add("rejoin")
        out.append("}")
        return "\n".join(out), extras

    def routes_lua(self) -> str:
        routes: dict[str, Any] = self.cfg["routes"]
        default = routes["default"]
        cmds = {c: s for c, s in routes.items() if c != "default"}
        for c in cmds:
            if c not in H.COMMANDS:
                raise RenderError(f"routes.{c}: routelib's cmap has no {c!r}")
        out = ["routes{"]
        prefix = default.get("prefix") if isinstance(default, dict) else None
        if prefix is not None:
            out += self._map(prefix)
            default = prefix["default"]
        entries: list[tuple[str, Any, dict[str, Any]]] = []
        for c, spec in cmds.items():
            if c not in H.TTL_COMMANDS and _has_ttl(spec, self.named):
                entries.append((c, _strip_ttl(spec, self.named), {"as": spec}))
                self.reasons.add("derived")
            else:
                entries.append((c, spec, {}))
        if _has_ttl(default, self.named):
            stripped = _strip_ttl(default, self.named)
            for c in H.COMMANDS:
                if c not in cmds and c not in H.TTL_COMMANDS and c in ROUTABLE:
                    entries.append((c, stripped, {"derived": True}))
                    self.reasons.add("derived")
        if entries:
            out.append("    cmap = {")
            for c, spec, extra in entries:
                out.append(
                    f"        {c} = {self.route(spec, '        ', f'routes.{c}', True, extra)},"
                )
            out.append("    },")
        out.append(f"    default = {self.route(default, '    ', 'routes.default', True, {})},")
        out.append("}")
        return "\n".join(out)

    def _map(self, prefix: dict[str, Any]) -> list[str]:
        keys = list(prefix["prefixes"])
        stop = H.DEFAULT_STOP
        if not all(k.endswith(stop) and stop not in k[: -len(stop)] and k != stop for k in keys):
            raise RenderError(
                "routes.default.prefix.prefixes: routelib's map matches a key up to a stop "
                f"string: every prefix must end in one {stop!r}"
            )
        out = [f'    conf = {{ mode = "prefix", stop = {lua_string(stop)} }},', "    map = {"]
        for k, spec in prefix["prefixes"].items():
            where = f"routes.default.prefix.prefixes.{k}"
            body = self.route(spec, "        ", where, True, {})
            out.append(f"        {lua_key(k[: -len(stop)])} = {body},")
        out.append("    },")
        return out


def render_routelib(cfg: dict[str, Any], header: Iterable[str] = ()) -> str:
    """The routelib Lua text of a memfleet config (YAML-ready data); raise RenderError where
    routelib cannot say it and ConfigError for a config memfleet itself refuses."""
    parse_config(copy.deepcopy(cfg))
    r = _Renderer(cfg)
    pools, pool_extras = r.pools_lua()
    routes = r.routes_lua()
    top = {k: v for k, v in cfg.items() if k not in _TOP_LEVEL_SKIP}
    if r.named:
        top["named_routes"] = r.named
    if pool_extras:
        top["pools"] = pool_extras
    lines = [f"-- {h}" for h in header]
    lines += [
        "-- memcached's proxy: memcached -o proxy_config=routelib.lua,proxy_arg=THIS_FILE",
        "-- memfleet: the JSON in these comments carries what routelib has no words for;",
        "-- memfleet: `memfleet config --from-routelib` and `memfleet proxy` read it back.",
    ]
    lines += [f"-- memfleet: {_WHY[k]}" for k in sorted(r.reasons) if k in _WHY]
    if top:
        lines.append(f"-- memfleet: {json.dumps(top, sort_keys=True)}")
    lines.append("")
    if cfg.get("local_zone") is not None:
        lines += [f"local_zone({lua_string(str(cfg['local_zone']))})", ""]
    lines += [pools, "", routes, ""]
    return "\n".join(lines)
