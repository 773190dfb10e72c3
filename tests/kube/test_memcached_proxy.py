"""``memfleet render --proxy memcached``: memcached's own proxy as the DaemonSet, its
ConfigMap holding the rendered routelib config (documented names only, importing back to the
topology's config) and routelib; every document validates strictly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from memfleet.config.model import parse_config
from memfleet.config.routelib.importer import import_source
from memfleet.kube.configmap import proxy_config
from memfleet.kube.memcached_proxy import CONFIG_LUA, ROUTELIB_LUA
from memfleet.kube.options import RenderOptions
from memfleet.kube.render import render
from memfleet.topology.presets import TOPOLOGIES, Topology
from tests.unit.routelib_doc import undocumented_names

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
IMAGE = "registry.example/memcached-proxy:1.6.45"


def opts(topology: str, **kw: object) -> RenderOptions:
    return RenderOptions(
        topology=Topology(topology), proxy="daemonset", proxy_server="memcached",
        proxy_image=IMAGE, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_memcached_proxy_bundle(topology: str) -> None:
    o = opts(topology, routelib="-- routelib itself\n")
    docs = render(o).documents()
    for doc in docs:
        for version in ("1.29", "1.33"):
            kv.validate(doc, version, strict=True)
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert cm["data"][ROUTELIB_LUA] == "-- routelib itself\n"
    lua = cm["data"][CONFIG_LUA]
    assert undocumented_names(lua) == []
    back = import_source(lua, CONFIG_LUA).config
    assert parse_config(back).model_dump() == parse_config(proxy_config(o)).model_dump()
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    proxy = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "proxy")
    assert proxy["image"] == IMAGE and proxy["command"] == ["memcached"]
    assert proxy["args"][:2] == [
        "-o", "proxy_config=/etc/memfleet/routelib.lua,proxy_arg=/etc/memfleet/config.lua",
    ]  # fmt: skip
    assert {"name": "config", "mountPath": "/etc/memfleet", "readOnly": True} in proxy[
        "volumeMounts"
    ]
    assert "memfleet.io/proxy" in ds["spec"]["template"]["metadata"]["labels"]


def test_without_routelib_the_configmap_holds_a_stand_in_that_stops_the_proxy() -> None:
    cm = render(opts("sharded")).documents()
    data = next(d for d in cm if d["kind"] == "ConfigMap")["data"]
    assert 'error("memfleet: routelib.lua is missing' in data[ROUTELIB_LUA]


def test_the_cli_needs_a_proxy_image(tmp_path: Path) -> None:
    def render_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memfleet", "render", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    r = render_cli("--proxy", "memcached")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "memfleet: render: --proxy memcached needs --proxy-image: the official memcached "
        "image is built without the proxy (see the README on building one)"
    )
    lib = tmp_path / "routelib.lua"
    lib.write_text("-- the library\n")
    r = render_cli("--proxy", "memcached", "--proxy-image", IMAGE, "--routelib", str(lib),
                   "--out", str(tmp_path / "base"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "base" / "proxy-config.yaml").read_text()
    assert "routelib.lua: |" in text and "-- the library" in text
    assert f"image: {IMAGE}" in (tmp_path / "base" / "proxy.yaml").read_text()


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize 5) is not installed")
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_the_rendered_base_builds_with_kustomize(topology: str, tmp_path: Path) -> None:
    assert KUBECTL is not None
    base = tmp_path / "base"
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "render", "--topology", topology, "--proxy",
         "memcached", "--proxy-image", IMAGE, "--out", str(base)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = subprocess.run(
        [KUBECTL, "kustomize", str(base)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    (proxy,) = [c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "proxy"]
    assert proxy["image"] == IMAGE
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and CONFIG_LUA in d["data"]]
    imported = import_source(cm["data"][CONFIG_LUA], "config.lua").config
    assert set(parse_config(imported, "config.lua").pools)
