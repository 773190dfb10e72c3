"""routelib configs served by ``memfleet proxy --config FILE.lua`` over real memcached nodes:
the reference design's config, and one config per route handler the README claims, each with
a get, a set and (where the handler has one) a failover; reload and file watch of a Lua file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, wait_until

from memfleet.backends.hashing import Placement

pytestmark = pytest.mark.integration

Nodes = Callable[..., Memcached]
Proxies = Callable[..., ProxyProcess]


def start(tmp_path: Path, proxies: Proxies, lua: str, *args: str) -> tuple[ProxyProcess, Conn]:
    f = tmp_path / "proxy.lua"
    f.write_text(lua)
    p = proxies(f, args) if args else proxies(f)
    return p, Conn(p.port)


def pool(name: str, *nodes: Memcached, seed: str | None = None) -> str:
    backends = ", ".join(f'"{n.address}"' for n in nodes)
    options = f'options = {{ seed = "{seed}" }}, ' if seed else ""
    health = "backend_options = { failurelimit = 1 }"
    return f"{name} = {{ {options}{health}, backends = {{ {backends} }} }},"


def held(node: Memcached, key: str) -> bytes | None:
    """The value ``node`` itself holds for ``key`` (asked directly, not through the proxy)."""
    c = Conn(node.port)
    try:
        reply = c.request(f"get {key}\r\n".encode())
    finally:
        c.close()
    if reply == b"END\r\n":
        return None
    return reply.split(b"\r\n")[1]


def set_(c: Conn, key: str, value: str, exptime: int = 0) -> bytes:
    return c.request(f"set {key} 0 {exptime} {len(value)}\r\n{value}\r\n".encode())


def get(c: Conn, key: str) -> bytes:
    return c.request(f"get {key}\r\n".encode())


def hit(key: str, value: str) -> bytes:
    return f"VALUE {key} 0 {len(value)}\r\n{value}\r\nEND\r\n".encode()


def test_reference_config_places_like_memcached_proxy_and_survives_a_node(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    replicas = [[memcached_factory() for _ in range(3)] for _ in range(2)]
    sets = "\n".join(
        "        " + pool(f"replica_{r}", *nodes, seed=f"replica_{r}")
        for r, nodes in enumerate(replicas)
    )
    lua = f"""pools{{
    set_all = {{
{sets}
    }},
}}
routes{{
    cmap = {{ get = route_allfastest{{ children = "set_all", miss = false }} }},
    default = route_allsync{{ children = "set_all" }},
}}
"""
    _, c = start(tmp_path, proxy_factory, lua)
    keys = [f"key_{i}" for i in range(200)]
    for k in keys:
        assert set_(c, k, "v" + k) == b"STORED\r\n"
    for r, nodes in enumerate(replicas):
        place = Placement(3, f"replica_{r}")
        for k in keys:
            where = [i for i, n in enumerate(nodes) if held(n, k) is not None]
            assert where == [place.index(k.encode())], (r, k)
    assert all(get(c, k) == hit(k, "v" + k) for k in keys)
    replicas[0][0].kill()
    assert all(get(c, k) == hit(k, "v" + k) for k in keys)


def test_route_direct_and_cmdmap_map(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    lua = f"""pools{{ {pool("a", a)} {pool("b", b)} }}
routes{{
    map = {{ user = cmdmap{{ set = route_direct{{ child = "b" }} }} }},
    default = route_direct{{ child = "a" }},
}}
"""
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "plain", "1") == b"STORED\r\n" and get(c, "plain") == hit("plain", "1")
    assert held(a, "plain") == b"1" and held(b, "plain") is None
    assert set_(c, "user/7", "x") == b"STORED\r\n"
    assert held(b, "user/7") == b"x" and held(a, "user/7") is None
    assert get(c, "user/7") == b"END\r\n"  # only set is mapped for user/: a get goes to a


def test_route_allsync_writes_every_pool(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    lua = f"pools{{ {pool('a', a)} {pool('b', b)} }}\n"
    lua += 'routes{ default = route_allsync{ children = { "a", "b" } } }\n'
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"STORED\r\n"
    assert held(a, "k") == b"v" and held(b, "k") == b"v"
    assert get(c, "k") == hit("k", "v")


def test_route_allfastest_answers_from_the_living_pool(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    lua = f"pools{{ {pool('a', a)} {pool('b', b)} }}\n"
    lua += 'routes{ cmap = { get = route_allfastest{ children = { "a", "b" }, miss = true } },\n'
    lua += '        default = route_allsync{ children = { "a", "b" } } }\n'
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"STORED\r\n" and get(c, "k") == hit("k", "v")
    a.kill()
    assert get(c, "k") == hit("k", "v")


def test_route_failover_fails_over(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    lua = f"pools{{ {pool('main', a)} {pool('backup', b)} }}\n"
    lua += 'routes{ cmap = { get = route_failover{ children = { "main", "backup" } } },\n'
    lua += '        default = route_allsync{ children = { "main", "backup" } } }\n'
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"STORED\r\n" and get(c, "k") == hit("k", "v")
    assert held(b, "k") == b"v"
    a.kill()
    assert get(c, "k") == hit("k", "v")


def test_route_zfailover_reads_the_local_zone_first_then_the_others(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    near, far = memcached_factory(), memcached_factory()
    lua = f"""local_zone("west")
pools{{ set_z = {{ {pool("west", near)} {pool("east", far)} }} }}
routes{{
    cmap = {{ get = route_zfailover{{ children = "set_z", miss = true }} }},
    default = route_allsync{{ children = "set_z" }},
}}
"""
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"STORED\r\n" and get(c, "k") == hit("k", "v")
    # Only the far zone holds "f": a miss in the near zone fails over (miss = true).
    Conn(far.port).request(b"set f 0 0 1\r\nx\r\n")
    assert get(c, "f") == hit("f", "x")
    # Both hold "z", differently: the local zone answers.
    Conn(near.port).request(b"set z 0 0 4\r\nnear\r\n")
    Conn(far.port).request(b"set z 0 0 3\r\nfar\r\n")
    assert all(get(c, "z") == hit("z", "near") for _ in range(20))
    near.kill()
    assert get(c, "k") == hit("k", "v")


def test_route_split_copies_writes_to_b_and_answers_from_a(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    lua = f"pools{{ {pool('a', a)} {pool('b', b)} }}\n"
    lua += 'routes{ default = route_split{ child_a = "a", child_b = "b" } }\n'
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"STORED\r\n" and get(c, "k") == hit("k", "v")
    assert held(a, "k") == b"v"
    assert wait_until(lambda: held(b, "k") == b"v", 5)
    Conn(b.port).request(b"set only_b 0 0 1\r\nx\r\n")
    assert get(c, "only_b") == b"END\r\n"


def test_route_ttl_caps_what_it_writes(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a = memcached_factory()
    lua = f"pools{{ {pool('main', a)} }}\n"
    lua += 'routes{ default = route_ttl{ ttl = 100, child = "main" } }\n'
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"STORED\r\n" and get(c, "k") == hit("k", "v")
    reply = Conn(a.port).request(b"mg k t\r\n")
    assert reply.startswith(b"HD t") and 0 < int(reply.split(b"t", 1)[1]) <= 100, reply


def test_route_null_stores_and_finds_nothing(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a = memcached_factory()
    lua = f"pools{{ {pool('main', a)} }}\nroutes{{ default = route_null{{}} }}\n"
    _, c = start(tmp_path, proxy_factory, lua)
    assert set_(c, "k", "v") == b"NOT_STORED\r\n"
    assert get(c, "k") == b"END\r\n" and held(a, "k") is None


def test_route_random_sends_each_request_to_one_pool(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    lua = f"pools{{ {pool('a', a)} {pool('b', b)} }}\n"
    lua += 'routes{ default = route_random{ children = { "a", "b" } } }\n'
    _, c = start(tmp_path, proxy_factory, lua)
    for i in range(40):
        assert set_(c, f"k{i}", "v") == b"STORED\r\n"
        assert get(c, f"k{i}") in (b"END\r\n", hit(f"k{i}", "v"))
    for i in range(40):
        assert [held(n, f"k{i}") for n in (a, b)].count(b"v") == 1


def test_a_lua_config_reloads_on_sighup_and_on_change_and_keeps_the_last_good_one(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    a, b = memcached_factory(), memcached_factory()
    one = f"pools{{ {pool('a', a)} {pool('b', b)} }}\n"
    one += 'routes{ default = route_direct{ child = "a" } }\n'
    proxy, c = start(tmp_path, proxy_factory, one, "--watch-interval", "0.2")
    assert set_(c, "k1", "v") == b"STORED\r\n" and held(a, "k1") == b"v"
    proxy.config_path.write_text(one.replace('child = "a"', 'child = "b"'))
    assert wait_until(lambda: proxy.log().count("reloaded proxy.lua") >= 1, 10)
    assert set_(c, "k2", "v") == b"STORED\r\n" and held(b, "k2") == b"v"
    proxy.config_path.write_text(one.replace("route_direct", "route_bogus"))
    assert wait_until(lambda: "reload refused" in proxy.log(), 10)
    assert "proxy.lua:2: unknown route handler route_bogus" in proxy.log()
    assert set_(c, "k3", "v") == b"STORED\r\n" and held(b, "k3") == b"v"
    time.sleep(0.3)  # let the watcher see the bad file once more before SIGHUP
    proxy.config_path.write_text(one)
    proxy.reload()
    assert wait_until(lambda: set_(c, "k4", "v") == b"STORED\r\n" and held(a, "k4") == b"v", 10)


def test_a_rendered_preset_serves_from_its_lua_file(
    tmp_path: Path, memcached_factory: Nodes, proxy_factory: Proxies
) -> None:
    from memfleet.config.routelib.render import render_routelib
    from memfleet.topology.presets import Topology

    nodes = {
        n: memcached_factory() for n in ("memcached-local", *(f"memcached-{s}" for s in range(3)))
    }
    cfg = Topology("local-failover").proxy_config(lambda node: nodes[node.name].address)
    _, c = start(tmp_path, proxy_factory, render_routelib(cfg))
    assert set_(c, "k", "v", exptime=0) == b"STORED\r\n" and get(c, "k") == hit("k", "v")
    assert held(nodes["memcached-local"], "k") == b"v"
    # The local tier's TTL cap (carried in a -- memfleet: comment) applies: at most 5 s.
    ttl = Conn(nodes["memcached-local"].port).request(b"mg k t\r\n")
    assert ttl.startswith(b"HD t") and 0 < int(ttl.split(b"t", 1)[1]) <= 5, ttl
    assert c.request(b"delete k\r\n") == b"DELETED\r\n"
    assert held(nodes["memcached-local"], "k") is None
