"""routelib's names, as its documentation gives them, and a checker for rendered files.

Kept apart from memfleet.config.routelib.handlers on purpose: every file memfleet renders is
checked against this table, so a wrong name there cannot pass here. Taken from:
- the route handler reference, https://docs.memcached.org/features/proxy/reference
  (memcached/memcached.github.io, content/features/proxy/reference.md);
- "Configure the built-in proxy", https://docs.memcached.org/features/proxy/configure
  (content/features/proxy/configure.md): pools{}, routes{}, conf, local_zone();
- the proxy API reference, https://docs.memcached.org/features/proxy/api-reference
  (content/features/proxy/api-reference.md): mcp.pool and mcp.backend options;
- routelib.lua's CMD_ID_MAP (memcached/memcached-proxylibs, lib/routelib/routelib.lua).
"""

from __future__ import annotations

from typing import Any

HANDLER_ARGS: dict[str, set[str]] = {
    "route_direct": {"child"},
    "route_null": set(),
    "route_allsync": {"children"},
    "route_allfastest": {"children", "miss", "wait"},
    "route_split": {"child_a", "child_b"},
    "route_ttl": {"ttl", "child"},
    "route_failover": {"children", "failover_count", "shuffle", "miss", "wait", "local_zone",
                       "stats", "stats_name"},
    "route_ratelim": {"child", "limit", "fillrate", "tickrate", "global", "fail_until_limit"},
    "route_random": {"children"},
    "route_zfailover": {"children", "stats", "miss", "failover_count", "local_zone",
                        "stats_name"},
}  # fmt: skip
POOL_FIELDS = {"options", "backend_options", "backends"}
POOL_OPTIONS = {"iothread", "beprefix", "seed", "filter", "filter_conf", "hash", "dist"}
BACKEND_OPTIONS = {
    "label", "host", "port", "connections", "down", "tls", "tcpkeepalive", "failurelimit",
    "connecttimeout", "retrywaittime", "readtimeout", "flaptime", "flapbackofframp",
    "flapbackoffmax",
}  # fmt: skip
ROUTES_FIELDS = {"conf", "map", "cmap", "default", "tag"}
CONF_FIELDS = {"mode", "start", "stop"}
COMMANDS = {
    "mg", "ms", "md", "mn", "ma", "me", "get", "gat", "set", "add", "cas", "gets", "gats",
    "incr", "decr", "touch", "append", "delete", "replace", "prepend", "all",
}  # fmt: skip

_CHECKER = r"""
local src, handler_args, tables = ...
local problems = {}
local function bad(msg) problems[#problems + 1] = msg end
local function check_keys(t, allowed, what)
  if type(t) ~= "table" then bad(what .. " is not a table"); return end
  for k in pairs(t) do
    if type(k) ~= "string" or not allowed[k] then
      bad(what .. ": undocumented key " .. tostring(k))
    end
  end
end
local env = {}
for name, args in pairs(handler_args) do
  env[name] = function(t)
    check_keys(t, args, name)
    return {handler = name}
  end
end
env.local_zone = function(z) if type(z) ~= "string" then bad("local_zone takes a string") end end
env.pools = function(p)
  for name, pool in pairs(p) do
    check_keys(pool, tables.pool_fields, "pool " .. name)
    if pool.options then check_keys(pool.options, tables.pool_options, "pool options") end
    if pool.backend_options then
      check_keys(pool.backend_options, tables.backend_options, "backend_options")
    end
    for _, b in ipairs(pool.backends or {}) do
      if type(b) ~= "string" or not b:match("^[^%s:]+:%d+$") then bad("backend " .. tostring(b)) end
    end
  end
end
env.routes = function(r)
  check_keys(r, tables.routes_fields, "routes")
  if r.conf then check_keys(r.conf, tables.conf_fields, "conf") end
  if r.cmap then check_keys(r.cmap, tables.commands, "cmap") end
  if r.default == nil then bad("routes without default") end
end
local fn, err = load(src, "=rendered", "t", env)
if not fn then return {"syntax: " .. err} end
local ok, e = pcall(fn)
if not ok then bad(tostring(e)) end
return problems
"""


def undocumented_names(lua_source: str) -> list[str]:
    """Every route handler, argument, pool field or option in ``lua_source`` that routelib's
    documentation does not name (and Lua errors): empty for a good file."""
    from lupa import lua54

    lua = lua54.LuaRuntime(register_eval=False, register_builtins=False)

    def lset(names: set[str]) -> Any:
        return lua.table_from({n: True for n in names})

    run = lua.execute("return function(...) " + _CHECKER + " end")
    tables = lua.table_from(
        {
            "pool_fields": lset(POOL_FIELDS),
            "pool_options": lset(POOL_OPTIONS),
            "backend_options": lset(BACKEND_OPTIONS),
            "routes_fields": lset(ROUTES_FIELDS),
            "conf_fields": lset(CONF_FIELDS),
            "commands": lset(COMMANDS),
        }
    )
    handlers = lua.table_from({h: lset(a) for h, a in HANDLER_ARGS.items()})
    problems = run(lua_source, handlers, tables)
    return [str(p) for p in problems.values()]
