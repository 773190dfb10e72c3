"""A routelib config (captured by the sandbox) as a memfleet config.

Every refusal is one line, ``FILE:LINE: reason``; what is accepted but has no effect in
memfleet comes back as notes of the same form.

Zones: see :mod:`memfleet.config.routelib.zones` for what a config may read.

``-- memfleet: {...}`` comments (JSON) carry what routelib lacks, as ``memfleet config
--format routelib`` writes them: on the line of a route call, options of that route (or
``"as"``: the memfleet route it stands for); on a line of its own, fields of the whole
config, merged in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memfleet.config.model import ConfigError
from memfleet.config.routelib import handlers as H
from memfleet.config.routelib.sandbox import CmdMap, RouteCall, SandboxError, run
from memfleet.config.routelib.zones import read_zone
from memfleet.config.routes import COMMANDS as ROUTABLE

_COMMENT = re.compile(r"--\s*memfleet:\s*(\{.*\})\s*$")


class RoutelibError(ConfigError):
    """A routelib config memfleet cannot take; ``str()`` is ``FILE:LINE: reason``."""


@dataclass
class Imported:
    """The memfleet config (YAML-ready data) and the notes on what has no effect."""

    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` deep-merged into ``base`` (mappings merge, anything else replaces)."""
    for k, v in patch.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


class _Importer:
    def __init__(self, name: str, source: str, environ: Mapping[str, str], base: Path) -> None:
        self.name = name
        self.source = source
        self.environ = environ
        self.base = base
        self.notes: list[str] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self.call_lines: dict[int, int] = {}
        self.pools: dict[str, dict[str, Any]] = {}
        self.sets: dict[str, dict[Any, str]] = {}  # set name -> member key -> pool name
        self.zone: str | None = None

    def fail(self, line: int, reason: str) -> RoutelibError:
        return RoutelibError(f"{self.name}:{line}: {reason}" if line else f"{self.name}: {reason}")

    def note(self, line: int, what: str, why: str) -> None:
        self.notes.append(f"{self.name}:{line}: {what} has no effect in memfleet: {why}")

    # -- the whole file --------------------------------------------------------------------

    def run(self) -> Imported:
        try:
            capture = run(self.source)
        except SandboxError as exc:
            raise self.fail(exc.line, exc.reason) from None
        self._read_comments()
        for c in capture.of("register_route_handlers"):
            raise self.fail(c.line, "custom route handlers (register_route_handlers) are not "
                            "supported: memfleet runs no Lua per request")  # fmt: skip
        settings: dict[str, Any] = {}
        for c in capture.of("settings"):
            if not isinstance(c.value, dict):
                raise self.fail(c.line, "settings{} takes a table")
            settings.update(c.value)
        settings_line = capture.of("settings")[-1].line if capture.of("settings") else 0
        pool_defaults, limits = self._settings(settings, settings_line)
        for c in capture.calls:
            if c.kind in ("local_zone", "local_zone_from_env", "local_zone_from_file"):
                try:
                    self.zone = read_zone(c.kind, c.value, self.environ, self.base)
                except ValueError as exc:
                    raise self.fail(c.line, str(exc)) from None
        pool_calls = capture.of("pools")
        if not pool_calls:
            raise self.fail(0, "no pools{} section")
        for c in pool_calls:
            self._pools(c.value, c.line, pool_defaults)
        route_calls = capture.of("routes")
        if not route_calls:
            raise self.fail(0, "no routes{} section")
        for c in route_calls:
            if isinstance(c.value, dict) and "tag" in c.value:
                raise self.fail(
                    c.line,
                    "routes{ tag = ... } (a route tree per tagged listener) is not supported: "
                    "a memfleet proxy serves one route tree",
                )
        if len(route_calls) > 1:
            raise self.fail(route_calls[1].line, "a second routes{} without a tag replaces "
                            "the first in routelib: give one")  # fmt: skip
        self._index_calls(route_calls[0].value)
        routes = self._routes(route_calls[0].value, route_calls[0].line)
        cfg: dict[str, Any] = {"pools": self.pools, "routes": routes}
        if self.zone is not None:
            cfg["local_zone"] = self.zone
        if limits:
            cfg["limits"] = limits
        for line in sorted(self.comments):
            if line not in self.call_lines:
                merge(cfg, self.comments[line])
        return Imported(cfg, self.notes)

    def _read_comments(self) -> None:
        for n, text in enumerate(self.source.splitlines(), 1):
            m = _COMMENT.search(text)
            if m is None:
                continue
            try:
                data = json.loads(m.group(1))
            except json.JSONDecodeError as exc:
                raise self.fail(n, f"-- memfleet: comment is not JSON: {exc.msg}") from None
            if not isinstance(data, dict):
                raise self.fail(n, "-- memfleet: comment must hold a JSON object")
            self.comments[n] = data

    def _index_calls(self, value: Any) -> None:
        if isinstance(value, RouteCall):
            self.call_lines[value.line] = self.call_lines.get(value.line, 0) + 1
            self._index_calls(value.args)
        elif isinstance(value, CmdMap):
            self._index_calls(value.entries)
        elif isinstance(value, dict):
            for v in value.values():
                self._index_calls(v)
        elif isinstance(value, list):
            for v in value:
                self._index_calls(v)

    # -- settings and zones ----------------------------------------------------------------

    def _settings(self, s: dict[str, Any], line: int) -> tuple[dict[str, Any], dict[str, Any]]:
        pool: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for k, v in s.items():
            if k in H.SETTINGS_POOL:
                pool[H.SETTINGS_POOL[k]] = v
            elif k in H.SETTINGS_LIMITS:
                if v:  # 0: no limit in the C proxy; memfleet's own bound stays
                    limits[H.SETTINGS_LIMITS[k]] = v
            elif k == "backend_use_tls":
                if v:
                    pool["tls"] = {}
            elif k == "pool_options":
                if not isinstance(v, dict):
                    raise self.fail(line, "settings.pool_options must be a table")
                pool.update(self._pool_options(v, line, "settings.pool_options"))
            elif k in H.SETTINGS_IGNORED:
                self.note(line, f"settings.{k}", H.SETTINGS_IGNORED[k])
            else:
                self.note(line, f"settings.{k}", "not a setting routelib documents")
        return pool, limits

    # -- pools -----------------------------------------------------------------------------

    def _pools(self, value: Any, line: int, defaults: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise self.fail(line, "pools{} takes a table of pools")
        taken = {str(k) for k, v in value.items() if not str(k).startswith("set_")}
        members: dict[str, int] = {}
        for k, v in value.items():
            if str(k).startswith("set_") and isinstance(v, dict):
                for mk in v:
                    members[str(mk)] = members.get(str(mk), 0) + 1
        for key, conf in sorted(value.items(), key=lambda kv: str(kv[0])):
            name = str(key)
            if name == H.INTERNAL_POOL:
                raise self.fail(line, "pools.internal: the proxy's internal cache is not "
                                "supported: memfleet keeps no cache of its own")  # fmt: skip
            if not name.startswith("set_"):
                self.pools[name] = self._pool(conf, line, f"pools.{name}", defaults)
                continue
            # Sorted: Lua's table order differs from run to run, the YAML written must not.
            items = (
                sorted(conf.items(), key=lambda kv: str(kv[0]))
                if isinstance(conf, dict)
                else enumerate(conf or [], 1)
            )
            self.sets[name] = {}
            for mk, mconf in items:
                m = str(mk)
                unique = not isinstance(mk, int) and m not in taken and members.get(m) == 1
                pname = m if unique else f"{name}_{m}"
                self.pools[pname] = self._pool(mconf, line, f"pools.{name}.{m}", defaults)
                self.sets[name][mk] = pname

    def _pool(self, conf: Any, line: int, where: str, defaults: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(conf, dict):
            raise self.fail(line, f"{where}: a pool is a table with backends")
        for k in conf:
            if k not in ("options", "backend_options", "backends"):
                raise self.fail(line, f"{where}.{k}: unknown pool field (routelib takes "
                                "options, backend_options, backends)")  # fmt: skip
        out: dict[str, Any] = {"backends": []}
        out.update(defaults)
        opts = conf.get("options") or {}
        bopts = conf.get("backend_options") or {}
        if not isinstance(opts, dict) or not isinstance(bopts, dict):
            raise self.fail(line, f"{where}: options and backend_options must be tables")
        out.update(self._pool_options(opts, line, f"{where}.options"))
        out.update(self._backend_options(bopts, line, f"{where}.backend_options"))
        backends = conf.get("backends")
        if not isinstance(backends, list) or not backends:
            raise self.fail(line, f"{where}.backends: a list of at least one backend is required")
        per_backend: list[dict[str, Any]] = []
        for i, b in enumerate(backends, 1):
            addr, own = self._backend(b, line, f"{where}.backends[{i}]")
            out["backends"].append(addr)
            per_backend.append(own)
        for k in {k for own in per_backend for k in own}:
            values = [own.get(k, out.get(k)) for own in per_backend]
            if any(v != values[0] for v in values):
                raise self.fail(line, f"{where}.backends: {k} differs between backends: "
                                "memfleet sets backend options per pool")  # fmt: skip
            out[k] = values[0]
        return out

    def _pool_options(self, opts: dict[str, Any], line: int, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in sorted(opts.items(), key=lambda kv: str(kv[0])):  # Lua's order is random
            if k in H.POOL_REFUSED:
                raise self.fail(line, f"{where}.{k}: not supported: {H.POOL_REFUSED[k]}")
            if k in H.POOL_IGNORED:
                self.note(line, f"{where}.{k}", H.POOL_IGNORED[k])
            elif k in H.POOL_OPTIONS:
                out[H.POOL_OPTIONS[k]] = str(v)
            else:
                raise self.fail(line, f"{where}.{k}: unknown pool option")
        return out

    def _backend_options(self, opts: dict[str, Any], line: int, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in sorted(opts.items(), key=lambda kv: str(kv[0])):
            if k in H.BACKEND_REFUSED:
                if v:
                    raise self.fail(line, f"{where}.{k}: not supported: {H.BACKEND_REFUSED[k]}")
            elif k in H.BACKEND_IGNORED:
                if H.BACKEND_IGNORED[k]:
                    self.note(line, f"{where}.{k}", H.BACKEND_IGNORED[k])
            elif k in H.BACKEND_OPTIONS:
                out[H.BACKEND_OPTIONS[k]] = v
            elif k == "tls":
                if v:
                    out["tls"] = {}
            else:
                raise self.fail(line, f"{where}.{k}: unknown backend option")
        return out

    def _backend(self, b: Any, line: int, where: str) -> tuple[str, dict[str, Any]]:
        if isinstance(b, dict):
            host, port = b.get("host"), b.get("port", 11211)
            if not isinstance(host, str) or not host:
                raise self.fail(line, f"{where}: a backend table needs host")
            rest = {k: v for k, v in b.items() if k not in ("host", "port")}
            own = self._backend_options(rest, line, where)
            return _address(host, port), own
        if not isinstance(b, str):
            raise self.fail(line, f'{where}: a backend is "HOST:PORT" or a table with host')
        text = b.strip()
        if text.endswith("_down_"):
            raise self.fail(line, f"{where}: {b!r}: not supported: {H.BACKEND_REFUSED['down']}")
        m = re.match(r"^(\S+?)(?::(\d+))?(?:\s+(\S+))?$", text)
        if m is None:
            raise self.fail(line, f"{where}: {b!r} is not HOST:PORT")
        return _address(m.group(1), m.group(2) or 11211), {}

    # -- routes ----------------------------------------------------------------------------

    def _routes(self, value: Any, line: int) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(line, "routes{} takes a table")
        for k in value:
            if k not in H.ROUTES_FIELDS:
                raise self.fail(line, f"routes.{k}: unknown field (routelib takes "
                                f"{', '.join(H.ROUTES_FIELDS)})")  # fmt: skip
        if value.get("default") is None:
            raise self.fail(line, "routes{}: a default route is required by memfleet "
                            "(routelib answers an unmatched request with an error)")  # fmt: skip
        default = self.route(value["default"], line, "routes.default")
        cmap: dict[str, Any] = {}
        for cmd, spec in (value.get("cmap") or {}).items():
            if self._derived(spec):
                continue
            name = self._command(cmd, line, "routes.cmap")
            if name == H.ANY_COMMAND:
                raise self.fail(line, "routes.cmap.all: give it as routes.default")
            cmap[name] = self.route(spec, line, f"routes.cmap.{name}")
        inner: Any = {"commands": {**cmap, "default": default}} if cmap else default
        if not value.get("map"):
            return {**cmap, "default": default}
        prefixes = self._map(value["map"], value.get("conf") or {}, line, inner)
        return {"default": {"prefix": {"prefixes": prefixes, "default": inner}}}

    def _derived(self, spec: Any) -> bool:
        return isinstance(spec, RouteCall) and bool(self.comments.get(spec.line, {}).get("derived"))

    def _command(self, cmd: Any, line: int, where: str) -> str:
        name = str(cmd)
        if name != H.ANY_COMMAND and name not in H.COMMANDS:
            raise self.fail(line, f"{where}: unknown command {name!r}")
        if name != H.ANY_COMMAND and name not in ROUTABLE:
            raise self.fail(line, f"{where}.{name}: memfleet cannot route {name!r} by command")
        return name

    def _map(self, entries: Any, conf: Any, line: int, fallback: Any) -> dict[str, Any]:
        if not isinstance(entries, dict) or not isinstance(conf, dict):
            raise self.fail(line, "routes.map and routes.conf must be tables")
        for k in conf:
            if k not in H.CONF_FIELDS:
                raise self.fail(line, f"routes.conf.{k}: unknown field")
        mode = conf.get("mode", "prefix")
        stop = str(conf.get("stop", H.DEFAULT_STOP))
        start = str(conf.get("start", "")) if mode == "anchor" else ""
        if mode not in ("prefix", "anchor") or not stop:
            raise self.fail(line, 'routes.conf: mode is "prefix" or "anchor", with a stop')
        out: dict[str, Any] = {}
        for key, spec in entries.items():
            k = str(key)
            if stop in k or (start and start in k):
                raise self.fail(line, f"routes.map.{k}: a map key cannot hold the stop string")
            where = f"routes.map.{k}"
            if isinstance(spec, CmdMap):
                by_cmd: dict[str, Any] = {}
                default = fallback
                for cmd, sub in spec.entries.items():
                    name = self._command(cmd, spec.line, where)
                    routed = self.route(sub, spec.line, f"{where}.{name}")
                    if name == H.ANY_COMMAND:
                        default = routed
                    else:
                        by_cmd[name] = routed
                out[start + k + stop] = {"commands": {**by_cmd, "default": default}}
            else:
                out[start + k + stop] = self.route(spec, line, where)
        return out

    def route(self, v: Any, line: int, where: str) -> Any:
        """One routelib route (a call, or a pool name) as a memfleet route spec."""
        if isinstance(v, str):
            return self._pool_name(v, line, where)
        if isinstance(v, CmdMap):
            raise self.fail(v.line, f"{where}: cmdmap{{}} is only valid as a routes.map entry")
        if not isinstance(v, RouteCall):
            raise self.fail(line, f"{where}: not a route (a route_*{{}} call or a pool name)")
        extras = self.comments.get(v.line, {})
        if extras and self.call_lines.get(v.line, 0) > 1:
            raise self.fail(v.line, "-- memfleet: comment on a line with more than one route call")
        if "as" in extras:
            return extras["as"]
        spec = self._call(v, where)
        extras = {k: e for k, e in extras.items() if k != "derived"}
        if extras:
            if not isinstance(spec, dict):
                raise self.fail(v.line, '-- memfleet: options on a route_direct: use "as"')
            ((handler, opts),) = spec.items()
            spec = {handler: merge(opts if isinstance(opts, dict) else {}, extras)}
        return spec

    def _call(self, v: RouteCall, where: str) -> Any:
        where = f"{where}.{v.name}"
        h = H.HANDLERS.get(v.name)
        if h is None or v.unknown:
            known = ", ".join(H.HANDLERS)
            raise self.fail(v.line, f"unknown route handler {v.name} (routelib has: {known})")
        if h.memfleet is None:
            raise self.fail(v.line, f"{v.name} is not supported: {h.why_unsupported}")
        opts: dict[str, Any] = {}
        kids: Any = None
        # In routelib's documented order, not Lua's (random) one: memfleet reads split's a
        # and b by their order.
        order = {a: i for i, a in enumerate([*h.args, *h.ignored])}
        for arg, value in sorted(v.args.items(), key=lambda kv: order.get(kv[0], len(order))):
            if arg in h.refused:
                raise self.fail(v.line, f"{where}.{arg}: not supported: {h.refused[arg]}")
            if arg in h.ignored:
                self.note(v.line, f"{v.name}.{arg}", h.ignored[arg])
            elif arg not in h.args:
                raise self.fail(v.line, f"{where}: unknown argument {arg!r} (routelib takes "
                                f"{', '.join([*h.args, *h.ignored]) or 'none'})")  # fmt: skip
            elif h.args[arg] == "":
                kids = value
            elif arg in ("child", "child_a", "child_b"):
                opts[h.args[arg]] = self.route(value, v.line, f"{where}.{arg}")
            else:
                opts[h.args[arg]] = value
        if h.memfleet == "null":
            return {"null": {}}
        required = [a for a in h.args if h.args[a] == "" or a in ("ttl", "child_a", "child_b")]
        for a in required:
            if a not in v.args:
                raise self.fail(v.line, f"{where}: {a} is required")
        if h.memfleet == "direct":
            return self.route(kids, v.line, f"{where}.child")
        if h.memfleet == "zfailover":
            opts["children"] = self._zones(kids, v.line, f"{where}.children")
        elif "children" in h.args:
            opts["children"] = self._children(kids, v.line, f"{where}.children")
        return {h.memfleet: opts}

    def _members(self, name: str) -> dict[Any, str] | None:
        return self.sets.get(name)

    def _children(self, kids: Any, line: int, where: str) -> list[Any]:
        if isinstance(kids, str):
            members = self._members(kids)
            if members is not None:
                return [members[k] for k in sorted(members, key=str)]
            return [self._pool_name(kids, line, where)]
        if isinstance(kids, list):
            out: list[Any] = []
            for i, k in enumerate(kids, 1):  # Lua counts from 1
                if isinstance(k, str) and self._members(k) is not None:
                    out += self._children(k, line, where)  # a set inside a list: its pools
                else:
                    out.append(self.route(k, line, f"{where}[{i}]"))
            return out
        if isinstance(kids, dict):
            return [self.route(kids[k], line, f"{where}.{k}") for k in sorted(kids, key=str)]
        raise self.fail(line, f"{where}: a list of pools or routes, or a pool set's name")

    def _zones(self, kids: Any, line: int, where: str) -> dict[str, Any]:
        if isinstance(kids, str):
            members = self._members(kids)
            if members is None:
                raise self.fail(line, f"{where}: no pool set {kids!r}")
            return {str(k): members[k] for k in sorted(members, key=str)}
        if isinstance(kids, dict):
            return {
                str(k): self.route(kids[k], line, f"{where}.{k}") for k in sorted(kids, key=str)
            }
        raise self.fail(line, f"{where}: route_zfailover takes a set of zoned pools")

    def _pool_name(self, name: str, line: int, where: str) -> str:
        if name in self.pools and not name.startswith("set_"):
            return name
        m = re.match(r"^(set_[A-Za-z0-9]+)_(.+)$", name)
        if m and m.group(1) in self.sets:
            for key, pname in self.sets[m.group(1)].items():
                if str(key) == m.group(2):
                    return pname
            raise self.fail(line, f"{where}: pool set {m.group(1)} has no member {m.group(2)!r}")
        if name in self.sets:
            raise self.fail(line, f"{where}: {name} is a pool set where one pool is expected")
        if name == H.INTERNAL_POOL:
            raise self.fail(line, f"{where}: the proxy's internal cache is not supported: "
                            "memfleet keeps no cache of its own")  # fmt: skip
        raise self.fail(line, f"{where}: no pool {name!r} in pools{{}}")


def _address(host: str, port: Any) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def import_source(
    source: str,
    name: str,
    environ: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Imported:
    """Import a routelib config's text; raise RoutelibError with ``name:LINE: reason``."""
    env = os.environ if environ is None else environ
    return _Importer(name, source, env, base or Path(".")).run()


def import_file(path: str | Path, environ: Mapping[str, str] | None = None) -> Imported:
    """Import a routelib config file; raise RoutelibError (or ConfigError) on one line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return import_source(text, str(path), environ, p.parent)
