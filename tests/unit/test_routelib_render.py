"""Rendering to routelib: every preset round-trips (render, import: the same memfleet config)
and every rendered file uses only names routelib's documentation gives (tests/unit/routelib_doc)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from memfleet.config.model import parse_config
from memfleet.config.routelib.importer import import_source
from memfleet.config.routelib.render import RenderError, render_routelib
from memfleet.topology.presets import TOPOLOGIES, Topology, template_address
from tests.unit.routelib_doc import undocumented_names

CASES = [
    (t, placement, replicas, shards)
    for t in TOPOLOGIES
    for placement in ("aligned", "independent")
    for replicas, shards in ((2, 3), (3, 1))
]


def preset(name: str, placement: str, replicas: int, shards: int) -> dict[str, Any]:
    topo = Topology(
        name, shards=shards, replicas=replicas,
        placement="aligned" if placement == "aligned" else "independent",
    )  # fmt: skip
    return topo.proxy_config(template_address("10.0.{replica}.{shard}:11211"), listen="0.0.0.0:1")


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_every_preset_round_trips(case: tuple[str, str, int, int]) -> None:
    cfg = preset(*case)
    lua = render_routelib(cfg)
    back = import_source(lua, "rendered.lua").config
    assert parse_config(back).model_dump() == parse_config(cfg).model_dump()


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_every_rendered_file_uses_documented_names_only(case: tuple[str, str, int, int]) -> None:
    lua = render_routelib(preset(*case))
    assert undocumented_names(lua) == []


def test_the_checker_catches_an_undocumented_name() -> None:
    lua = render_routelib(preset("replicated-sharded", "aligned", 2, 3))
    assert undocumented_names(lua.replace("miss = true", "mis = true", 1)) == [
        "route_allfastest: undocumented key mis"
    ]
    assert undocumented_names(lua.replace("= route_allsync{", "= route_allsink{", 1))


def test_placement_is_carried_by_seeds() -> None:
    lua = render_routelib(preset("replicated-sharded", "independent", 2, 3))
    assert 'options = { seed = "replica_0" }' in lua
    assert 'options = { seed = "replica_1" }' in lua
    assert (
        "seed"
        not in render_routelib(preset("replicated-sharded", "aligned", 2, 3))
        .replace("same (no) seed", "")
        .split("pools{", 1)[1]
    )


def test_memfleet_only_behaviour_is_in_comments() -> None:
    lua = render_routelib(preset("replicated-sharded", "aligned", 2, 3))
    get = re.search(r"get = route_allfastest\{ -- memfleet: (.*)", lua)
    assert get is not None and '"fill_ttl": 300' in get.group(1)
    assert re.search(r"default = route_allsync\{ -- memfleet: \{\"ack\": \"available\"\}", lua)
    assert '"rejoin": "repair"' in lua
    assert "the C proxy keeps no journal" in lua


def test_a_ttl_route_gets_command_entries_routelib_can_serve() -> None:
    # routelib's route_ttl fails anything but ms/set/add/cas: delete must not go through it.
    lua = render_routelib(preset("local-failover", "aligned", 2, 3))
    delete = lua.split("delete = ", 1)[1].split("\n        },", 1)[0]
    assert delete.startswith("route_allsync{") and "route_ttl" not in delete
    assert '"derived": true' in delete
    default = lua.split("    default = ", 1)[1]
    assert "route_ttl{" in default
    get = lua.split("get = ", 1)[1].split("\n        },", 1)[0]
    assert "route_ttl" not in get and '"as": ' in get


def test_what_routelib_cannot_say_is_refused_with_the_field() -> None:
    cfg = {
        "pools": {"a": {"backends": ["h:1"]}, "b": {"backends": ["h:2"]}},
        "routes": {"default": {"allasync": {"children": ["a", "b"]}}},
    }
    with pytest.raises(RenderError, match=r"routes.default.allasync: no routelib equivalent"):
        render_routelib(cfg)


def test_prefix_routes_render_as_a_map_and_round_trip() -> None:
    cfg = {
        "pools": {"a": {"backends": ["h:1"]}, "b": {"backends": ["h:2"]}},
        "routes": {"default": {"prefix": {"prefixes": {"user/": "a"}, "default": "b"}}},
    }
    lua = render_routelib(cfg)
    assert 'conf = { mode = "prefix", stop = "/" }' in lua and "user = route_direct{" in lua
    assert undocumented_names(lua) == []
    back = import_source(lua, "x.lua").config
    assert parse_config(back).model_dump() == parse_config(cfg).model_dump()


def test_cli_renders_and_reads_back(tmp_path: Any) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memfleet", "config", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    r = cli("--topology", "gutter", "--format", "routelib")
    assert r.returncode == 0, r.stderr
    lua = tmp_path / "gutter.lua"
    lua.write_text(r.stdout)
    yaml_direct = cli("--topology", "gutter").stdout
    back = cli("--from-routelib", str(lua))
    assert back.returncode == 0, back.stderr
    import yaml

    assert parse_config(yaml.safe_load(back.stdout)).model_dump() == (
        parse_config(yaml.safe_load(yaml_direct)).model_dump()
    )
