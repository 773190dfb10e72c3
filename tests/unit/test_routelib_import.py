"""Importing routelib configs: the sandbox refuses what a config may not do, every mistake is
one line with the file and the Lua line, and the reference design's config imports to the
``independent`` replicated x sharded layout, placing keys as memcached's proxy does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from memfleet.backends.pool import Pool
from memfleet.config.model import ConfigError, parse_config
from memfleet.config.routelib.importer import RoutelibError, import_file, import_source
from memfleet.routes.builder import build_pools
from memfleet.topology.presets import Topology, template_address

VECTORS = Path(__file__).resolve().parents[1] / "data" / "hash_vectors.csv"
ADDR = "10.0.{replica}.{shard}:11211"


def reference_lua(address: str = ADDR) -> str:
    """The reference design's replicated x sharded config (two replica pools, own seeds)."""

    def backends(r: int) -> str:
        return ", ".join(f'"{address.format(replica=r, shard=s)}"' for s in range(3))

    return f"""-- the reference design's routelib config
pools{{
    set_all = {{
        replica_0 = {{ options = {{ seed = "replica_0" }}, backends = {{ {backends(0)} }} }},
        replica_1 = {{ options = {{ seed = "replica_1" }}, backends = {{ {backends(1)} }} }},
    }},
}}

routes{{
    cmap = {{
        get = route_allfastest{{ children = "set_all", miss = false }},
    }},
    default = route_allsync{{ children = "set_all" }},
}}
"""


def refused(source: str) -> str:
    with pytest.raises(RoutelibError) as info:
        import_source(source, "conf.lua")
    msg = str(info.value)
    assert "\n" not in msg
    return msg


POOLS = 'pools{ main = { backends = { "127.0.0.1:11211" } } }\n'
ROUTES = 'routes{ default = route_direct{ child = "main" } }\n'


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ('os.execute("touch /tmp/x")', "attempt to index a nil value (global 'os')"),
        ('io.open("/etc/passwd")', "attempt to index a nil value (global 'io')"),
        ('require("os")', 'require(os): a config may require only "routelib"'),
        ('require("socket")', 'require(socket): a config may require only "routelib"'),
        ('load("x = 1")()', "attempt to call a nil value (global 'load')"),
        ('loadstring("x = 1")()', "attempt to call a nil value (global 'loadstring')"),
        ('dofile("/etc/passwd")', "attempt to call a nil value (global 'dofile')"),
        ('loadfile("/etc/passwd")', "attempt to call a nil value (global 'loadfile')"),
        ("string.dump(print)", "attempt to call a nil value (field 'dump')"),
        ('local s = "" s:dump()', "attempt to call a nil value (method 'dump')"),
        # routelib's debug(true) is a config function; Lua's debug library is not there.
        ("debug.getinfo(1)", "attempt to index a function value (global 'debug')"),
        ('package.loadlib("x", "y")', "attempt to index a nil value (global 'package')"),
        ("while true do end", "the config ran past its budget of 20,000,000 Lua instructions"),
        # One C call out of reach of the instruction count: pattern matching is not there.
        (
            'local s = ("a"):rep(5000):find(".-.-.-.-.-.-b")',
            "attempt to call a nil value (method 'find')",
        ),
        ('string.gsub("a", "a", "b")', "attempt to call a nil value (field 'gsub')"),
    ],
)
def test_the_sandbox_refuses_with_file_and_line(code: str, reason: str) -> None:
    msg = refused(POOLS + "\n" + code + "\n" + ROUTES)
    assert msg.startswith(f"conf.lua:3: {reason}"), msg


def test_a_huge_allocation_hits_the_memory_limit() -> None:
    msg = refused(POOLS + 'local s = string.rep("x", 200 * 1024 * 1024)\n' + ROUTES)
    assert msg == "conf.lua: the config took more than 32 MiB of memory"
    msg = refused(POOLS + "local t = {} for i = 1, 1e9 do t[i] = i end\n" + ROUTES)
    assert msg == "conf.lua: the config took more than 32 MiB of memory"


def test_require_routelib_is_a_no_op() -> None:
    out = import_source('require("routelib")\n' + POOLS + ROUTES, "conf.lua")
    assert out.config["routes"] == {"default": "main"}


def test_errors_name_file_and_lua_line() -> None:
    assert refused(POOLS + "routes{\n  default = route_direct{ child = 'main' \n") == (
        "conf.lua:4: '}' expected (to close '{' at line 3) near <eof>"
    )
    msg = refused(POOLS + "routes{\n  default =\n    route_fastest{ children = {'main'} },\n}\n")
    assert msg.startswith("conf.lua:4: unknown route handler route_fastest (routelib has: ")
    assert refused(
        POOLS + "\nroutes{ default = route_allsync{ children = { 'main', 'nope' } } }"
    ) == ("conf.lua:3: routes.default.route_allsync.children[2]: no pool 'nope' in pools{}")
    assert refused(POOLS + "routes{ default = route_allsync{ children = 'set_x' } }") == (
        "conf.lua:2: routes.default.route_allsync.children: no pool 'set_x' in pools{}"
    )


def test_the_error_from_the_cli_and_the_proxy_is_the_same_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.lua"
    f.write_text(POOLS + "routes{ default = route_bogus{} }\n")
    from memfleet.config import load_config

    with pytest.raises(ConfigError, match=rf"^{f}:2: unknown route handler route_bogus"):
        load_config(f)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ('pools{ a = { options = { filter = "tags", filter_conf = "{}" }, backends = {"h:1"} } }',
         "pools.a.options.filter: not supported: memfleet places keys only by XXH3"),
        ('pools{ a = { options = { dist = 1 }, backends = {"h:1"} } }',
         "pools.a.options.dist: not supported"),
        ('pools{ a = { options = { hash = 1 }, backends = {"h:1"} } }',
         "pools.a.options.hash: not supported"),
        ('settings{ pool_options = { filter = "stop" } }',
         "settings.pool_options.filter: not supported"),
        ('pools{ internal = { backends = {"h:1"} } }', "pools.internal: the proxy's internal"),
        ('routes{ tag = "alt", default = route_null{} }', "routes{ tag = ... }"),
        ('routes{ default = route_ratelim{ child = "main", limit = 5 } }',
         "route_ratelim is not supported: memfleet has no rate limiter route"),
        ('register_route_handlers({ "myhello" })', "custom route handlers"),
        ('pools{ b = { backends = { "h:1 _down_" } } }', "pools.b.backends[1]: 'h:1 _down_'"),
        ('routes{ default = route_failover{ children = {"main"}, local_zone = "a" } }',
         "routes.default.route_failover.local_zone: not supported"),
    ],
)  # fmt: skip
def test_what_contradicts_memfleet_is_refused_with_line(code: str, reason: str) -> None:
    msg = refused(POOLS + code + "\n" + ("" if "routes{" in code else ROUTES))
    assert msg.startswith("conf.lua:2: ") and reason in msg, msg


def test_harmless_options_are_notes_not_errors() -> None:
    src = (
        "settings{ active_req_limit = 100, backend_connect_timeout = 3 }\n"
        "pools{ main = { options = { iothread = true }, backend_options = { flaptime = 3, "
        'readtimeout = 0.5 }, backends = { "127.0.0.1:11211 label" } } }\n'
        'routes{ default = route_failover{ children = { "main" }, stats = true } }\n'
    )
    out = import_source(src, "conf.lua")
    assert out.config["pools"]["main"] == {
        "backends": ["127.0.0.1:11211"], "connect_timeout": 3, "read_timeout": 0.5,
    }  # fmt: skip
    assert [n.split(": ", 1)[0] for n in out.notes] == ["conf.lua:1", "conf.lua:2", "conf.lua:2",
                                                        "conf.lua:3"]  # fmt: skip
    assert any("settings.active_req_limit has no effect in memfleet" in n for n in out.notes)


def test_the_reference_config_imports_to_the_independent_layout() -> None:
    imported = import_source(reference_lua(), "reference.lua").config
    preset = Topology("replicated-sharded", placement="independent").proxy_config(
        template_address(ADDR)
    )
    got = parse_config(imported)
    want = parse_config(preset)
    assert set(got.pools) == {"replica_0", "replica_1"}
    for name in ("replica_0", "replica_1"):
        assert got.pools[name].seed == name
        assert got.pools[name].backends == want.pools[name].backends
    assert got.routes == {
        "get": {"allfastest": {"children": ["replica_0", "replica_1"], "miss": False}},
        "default": {"allsync": {"children": ["replica_0", "replica_1"]}},
    }


def test_the_reference_config_places_keys_as_memcached_proxy() -> None:
    got = parse_config(import_source(reference_lua(), "reference.lua").config)
    pools = build_pools(got)
    with VECTORS.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["seed"] in ("replica_0", "replica_1")]
    assert len(rows) > 100
    for row in rows:
        assert pools[row["seed"]].placement.index(row["key"].encode()) == int(row["n3"]), row
    want = build_pools(parse_config(Topology("replicated-sharded", placement="independent")
                                    .proxy_config(template_address(ADDR))))  # fmt: skip
    for name in ("replica_0", "replica_1"):
        a: Pool = pools[name]
        b: Pool = want[name]
        for i in range(10_000):
            key = f"key:{i}".encode()
            assert (
                a.backends[a.placement.index(key)].key() == b.backends[b.placement.index(key)].key()
            )


def test_pool_sets_zones_and_prefix_maps() -> None:
    src = """
local_zone("west")
pools{
    set_main = {
        west = { backends = { "10.0.0.1:11211" } },
        east = { backends = { "10.0.1.1:11211" } },
    },
    set_cust = {
        west = { backends = { "10.0.2.1:11211" } },
        east = { backends = { "10.0.3.1" } },
    },
}
routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        main = route_zfailover{ children = "set_main", miss = true },
        cust = cmdmap{ set = route_direct{ child = "set_cust_west" } },
    },
    cmap = { get = route_random{ children = "set_cust" } },
    default = route_failover{ children = { "set_main_east", "set_main_west" } },
}
"""
    cfg = import_source(src, "zones.lua").config
    assert cfg["local_zone"] == "west"
    assert sorted(cfg["pools"]) == ["set_cust_east", "set_cust_west", "set_main_east",
                                    "set_main_west"]  # fmt: skip
    assert cfg["pools"]["set_cust_east"]["backends"] == ["10.0.3.1:11211"]
    inner = {"commands": {"get": {"random": {"children": ["set_cust_east", "set_cust_west"]}},
                          "default": {"failover": {"children": ["set_main_east",
                                                                "set_main_west"]}}}}  # fmt: skip
    assert cfg["routes"] == {"default": {"prefix": {
        "prefixes": {
            "main/": {"zfailover": {"children": {"east": "set_main_east", "west": "set_main_west"},
                                    "miss": True}},
            "cust/": {"commands": {"set": "set_cust_west", "default": inner}},
        },
        "default": inner,
    }}}  # fmt: skip
    parse_config(cfg)


def test_local_zone_from_env_and_file(tmp_path: Path) -> None:
    body = 'pools{ set_z = { a = { backends = {"h:1"} }, b = { backends = {"h:2"} } } }\n'
    body += 'routes{ default = route_zfailover{ children = "set_z" } }\n'
    src = 'local_zone_from_env("MCZONE")\n' + body
    assert import_source(src, "z.lua", {"MCZONE": "b"}).config["local_zone"] == "b"
    with pytest.raises(RoutelibError, match=r"^z.lua:1: local_zone_from_env: MCZONE is not set$"):
        import_source(src, "z.lua", {})
    (tmp_path / "zone.txt").write_text("a\n")
    (tmp_path / "c.lua").write_text('local_zone_from_file("zone.txt")\n' + body)
    assert import_file(tmp_path / "c.lua", {}).config["local_zone"] == "a"
    (tmp_path / "zone.txt").write_text("root:x:0:0:secret\n")
    with pytest.raises(RoutelibError) as info:
        import_file(tmp_path / "c.lua", {})
    assert "secret" not in str(info.value) and str(info.value).startswith(f"{tmp_path}/c.lua:1: ")


def test_anchor_mode_and_settings_limits() -> None:
    src = """settings{ backend_depth_limit = 500, backend_read_timeout = 2 }
pools{ a = { backends = { "h:1" } }, b = { backends = { "h:2" } } }
routes{
    conf = { mode = "anchor", start = "_", stop = "/" },
    map = { user = route_direct{ child = "b" } },
    default = route_direct{ child = "a" },
}
"""
    cfg = import_source(src, "a.lua").config
    assert cfg["limits"] == {"max_backend_queue": 500}
    assert cfg["pools"]["a"]["read_timeout"] == 2
    assert cfg["routes"] == {"default": {"prefix": {"prefixes": {"_user/": "b"}, "default": "a"}}}


def test_the_proxy_refuses_a_bad_lua_file_at_start_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.lua"
    bad.write_text(POOLS + "routes{ default = route_allsync{ children = { 'nope' } } }\n")
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "proxy", "--config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"memfleet: {bad}:2: routes.default.route_allsync.children[1]: no pool 'nope' in pools{{}}"
    )


def test_split_answers_from_child_a_whatever_the_order() -> None:
    from memfleet.config.routes import check_routes

    for args in ('child_b = "b", child_a = "a"', 'child_a = "a", child_b = "b"'):
        src = 'pools{ a = { backends = {"h:1"} }, b = { backends = {"h:2"} } }\n'
        src += f"routes{{ default = route_split{{ {args} }} }}\n"
        cfg = import_source(src, "s.lua").config
        assert cfg["routes"]["default"] == {"split": {"a": "a", "b": "b"}}
    # The same in YAML with b first: a still answers (children[0]).
    tree = check_routes({"default": {"split": {"b": "b", "a": "a"}}}, {}, {"a", "b"}, None)
    assert tree.default is not None
    assert [c.pool for c in tree.default.children] == ["a", "b"]
