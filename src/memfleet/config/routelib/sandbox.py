"""Runs a routelib config in a sandboxed real Lua (lupa's Lua 5.4) and captures its calls.

The config is compiled as text only (no bytecode) into an environment that holds nothing but
what a routelib config uses: the routelib functions (``pools``, ``routes``, ``settings``,
``local_zone``, ``cmdmap``, the ``route_*`` handlers, ...), which only record their arguments
and the Lua line they were called from, and the safe parts of Lua's library (``string``
without ``dump`` and pattern matching, ``table``, ``math``, ``utf8``, ``pairs``, ``type``,
...). There is no
``load``, ``loadstring``, ``dofile``, ``loadfile``, ``require`` beyond ``require("routelib")``
(a no-op), no ``debug``, ``package``, ``io``, ``os``, ``pcall``, ``coroutine`` or
``setmetatable``, and no Python object at all (``register_eval=False``,
``register_builtins=False``). ``local_zone_from_env`` and ``local_zone_from_file`` only
record their argument here; the importer reads that one variable or file (see
:mod:`memfleet.config.routelib.importer` for the policy). A count hook bounds the
instructions a config may run and lupa's ``max_memory`` the memory it may take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memfleet.config.routelib.handlers import COMMANDS, HANDLERS

# A config is a few hundred table constructors: 20 million instructions is far beyond any
# real one and well under a second.
MAX_INSTRUCTIONS = 20_000_000
HOOK_EVERY = 10_000
MAX_MEMORY = 32 * 1024 * 1024
MAX_NODES = 200_000  # values converted back to Python
MAX_DEPTH = 64
CHUNK = "config"  # the chunk's name in Lua's messages, replaced by the file's name

_SAFE_GLOBALS = (
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
    "rawequal", "rawget", "rawlen",
)  # fmt: skip
_SAFE_LIBS = ("string", "table", "math", "utf8")

_BOOTSTRAP = r"""
local src, handlers, commands, safe_globals, safe_libs, max_steps, every = ...
local getinfo, sethook = debug.getinfo, debug.sethook
local load, pcall, setmetatable, tostring, type = load, pcall, setmetatable, tostring, type
-- string.dump would hand out bytecode. Pattern matching can run for hours inside one C call,
-- where the instruction count never looks: gone too. The string metatable reaches the real
-- string table, so they go from there.
for _, f in ipairs({"dump", "find", "match", "gmatch", "gsub"}) do string[f] = nil end
local calls = {}
local function here(level) local i = getinfo(level, "l"); return i and i.currentline or -1 end
local function record(kind, value)
  calls[#calls + 1] = {kind = kind, value = value, line = here(4)}
end
local env = {}
for _, n in ipairs(safe_globals) do env[n] = _G[n] end
for _, lib in ipairs(safe_libs) do
  local copy = {}
  for k, v in pairs(_G[lib]) do copy[k] = v end
  env[lib] = copy
end
env.unpack = table.unpack
env.print = function() end
env._G = env
local mcp = {CMD_ANY_STORAGE = "all"}
for _, c in ipairs(commands) do mcp["CMD_" .. c:upper()] = c end
env.mcp = mcp
for _, name in ipairs({"pools", "routes", "settings", "local_zone", "local_zone_from_env",
                       "local_zone_from_file", "verbose", "debug"}) do
  env[name] = function(a) record(name, a) end
end
env.say = function() end
env.dsay = function() end
env.find_pools = function() error("find_pools is unimplemented in routelib", 2) end
env.register_route_handlers = function(t) record("register_route_handlers", t) end
env.require = function(name)
  if name == "routelib" then return {} end
  error("require(" .. tostring(name) .. "): a config may require only \"routelib\"", 2)
end
env.cmdmap = function(t)
  if type(t) ~= "table" then error("cmdmap{} takes a table", 2) end
  return {__rl = "cmdmap", a = t, line = here(3)}
end
for _, h in ipairs(handlers) do
  env[h] = function(t) return {__rl = "route", f = h, a = t, line = here(3)} end
end
-- An unknown route_* name is recorded (the importer names it), any other unknown global is nil.
setmetatable(env, {__index = function(_, k)
  if type(k) == "string" and k:sub(1, 6) == "route_" then
    return function(t) return {__rl = "route", f = k, a = t, line = here(3), unknown = true} end
  end
  return nil
end})
local fn, err = load(src, "=" .. "CHUNK", "t", env)
if not fn then return nil, "syntax", err end
local steps = 0
sethook(function()
  steps = steps + every
  if steps > max_steps then error({cpu = here(3)}, 0) end
end, "", every)
local ok, e = pcall(fn)
sethook()
if not ok then
  if type(e) == "table" and e.cpu then return nil, "cpu", e.cpu end
  if e == "not enough memory" then return nil, "memory", "" end
  return nil, "error", tostring(e)
end
return calls
""".replace('"CHUNK"', f'"{CHUNK}"')


class SandboxError(Exception):
    """The config could not run; ``line`` is its Lua line where known (else 0)."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass
class RouteCall:
    """A ``route_*{...}`` call: the handler's name, its arguments and the Lua line."""

    name: str
    args: dict[Any, Any]
    line: int
    unknown: bool = False


@dataclass
class CmdMap:
    """A ``cmdmap{...}`` call."""

    entries: dict[Any, Any]
    line: int


@dataclass
class Call:
    """A top-level call (``pools``, ``routes``, ``settings``, ``local_zone``, ...)."""

    kind: str
    value: Any
    line: int


@dataclass
class Capture:
    """Everything a config called, in order."""

    calls: list[Call] = field(default_factory=list)

    def of(self, kind: str) -> list[Call]:
        """The calls of one kind."""
        return [c for c in self.calls if c.kind == kind]


def _split_message(msg: str) -> tuple[int, str]:
    """``config:12: reason`` -> (12, reason)."""
    prefix = CHUNK + ":"
    if msg.startswith(prefix):
        line_s, _, rest = msg[len(prefix) :].partition(":")
        if line_s.isdigit():
            return int(line_s), rest.strip()
    return 0, msg


class _Converter:
    def __init__(self, lua_type: Any) -> None:
        self.lua_type = lua_type
        self.nodes = 0

    def value(self, v: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise SandboxError("the config's tables are too large or too deeply nested")
        kind = self.lua_type(v)
        if kind == "table":
            return self.table(v, depth)
        if kind in ("function", "userdata", "thread"):
            raise SandboxError(f"a {kind} is not a config value")
        if isinstance(v, bytes):
            return v.decode("utf-8", "replace")
        return v

    def table(self, t: Any, depth: int) -> Any:
        items = {self.value(k, depth + 1): self.value(v, depth + 1) for k, v in t.items()}
        mark = items.get("__rl")
        if mark == "route":
            args = items.get("a")
            return RouteCall(
                str(items.get("f")),
                args if isinstance(args, dict) else ({} if args is None else {"": args}),
                int(items.get("line", 0)),
                bool(items.get("unknown", False)),
            )
        if mark == "cmdmap":
            entries = items.get("a")
            return CmdMap(entries if isinstance(entries, dict) else {}, int(items.get("line", 0)))
        if (
            items
            and all(isinstance(k, int) for k in items)
            and sorted(items) == list(range(1, len(items) + 1))
        ):
            return [items[i] for i in range(1, len(items) + 1)]
        return items


def run(source: str) -> Capture:
    """Run a routelib config; raise SandboxError (with the Lua line) if it cannot run."""
    from lupa import lua54

    lua = lua54.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=True,
        max_memory=MAX_MEMORY,
    )
    boot = lua.execute("return function(...) " + _BOOTSTRAP + " end")
    table = lua.table_from
    try:
        result = boot(
            source,
            table(list(HANDLERS)),
            table(list(COMMANDS)),
            table(list(_SAFE_GLOBALS)),
            table(list(_SAFE_LIBS)),
            MAX_INSTRUCTIONS,
            HOOK_EVERY,
        )
    except lua54.LuaMemoryError:
        raise SandboxError(f"the config took more than {MAX_MEMORY >> 20} MiB of memory") from None
    except lua54.LuaError as exc:
        line, reason = _split_message(str(exc))
        raise SandboxError(reason, line) from None
    if not isinstance(result, tuple):
        result = (result,)
    if result[0] is None:
        _, kind, detail = result
        if kind == "cpu":
            raise SandboxError(
                f"the config ran past its budget of {MAX_INSTRUCTIONS:,} Lua instructions "
                "(an endless loop?)",
                int(detail),
            )
        if kind == "memory":
            raise SandboxError(f"the config took more than {MAX_MEMORY >> 20} MiB of memory")
        line, reason = _split_message(str(detail))
        raise SandboxError(reason, line)
    conv = _Converter(lua.globals().type)
    calls = conv.value(result[0])
    out = Capture()
    for c in calls if isinstance(calls, list) else []:
        out.calls.append(Call(str(c.get("kind")), c.get("value"), int(c.get("line", 0))))
    return out
