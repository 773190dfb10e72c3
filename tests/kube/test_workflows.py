""".github/workflows cannot run here (no GitHub Actions, no Docker daemon, no kind), so they are
checked as far as can be without running them: against the GitHub workflow schema that
check-jsonschema vendors (offline), for the steps the release and the smoke test depend on,
and the smoke client itself runs against a real proxy over real memcached nodes."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from memfleet.kube import regen
from memfleet.kube.kustomize import images_entry
from memfleet.kube.options import DEFAULT_IMAGE
from tests.helpers import Memcached, ProxyProcess

pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema (the dev extras)")

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _load(name: str) -> Obj:
    doc: Obj = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def _steps(doc: Obj) -> list[Obj]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "check_jsonschema"),
            *("--builtin-schema", "vendor.github-workflows", str(path)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _runs(doc: Obj) -> str:
    return "\n".join(s.get("run", "") for s in _steps(doc))


def test_the_workflows_exist() -> None:
    assert [f.name for f in FILES] == ["kind-smoke.yml", "release.yml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    out = _schema_check(path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    assert _schema_check(bad).returncode != 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_and_permissions_least(path: Path) -> None:
    doc = _load(path.name)
    assert doc["permissions"] == {"contents": "read"}, "write access only where a job needs it"
    for step in _steps(doc):
        if "uses" in step:
            version = step["uses"].partition("@")[2]
            assert version.startswith("v") and version[1:].isdigit(), step["uses"]
    for job in doc["jobs"].values():
        assert job["timeout-minutes"] <= 120


def test_release_tests_builds_two_platforms_pushes_and_attaches_the_bases() -> None:
    doc = _load("release.yml")
    assert doc["on"] == {"push": {"tags": ["v*"]}}
    jobs = doc["jobs"]
    assert "bash .ci/run" in _runs({"jobs": {"t": jobs["test"]}})
    image = jobs["image"]
    assert image["needs"] == "test" and image["permissions"]["packages"] == "write"
    (build,) = [s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push")]
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True
    uses = {s.get("uses", "").partition("@")[0] for s in image["steps"]}
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action"} <= uses
    names = _runs({"jobs": {"i": image}})
    assert 'repo="ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/memfleet"' in names
    (login,) = [s for s in image["steps"] if s.get("uses", "").startswith("docker/login")]
    assert login["with"]["registry"] == "ghcr.io"
    release = jobs["release"]
    assert release["needs"] == "image" and release["permissions"] == {"contents": "write"}
    script = _runs({"jobs": {"r": release}})
    assert 'python -m memfleet.kube.regen --image "${IMAGE}"' in script
    assert "gh release create" in script and "gh release upload" in script


def test_release_renders_what_regen_renders(tmp_path: Path) -> None:
    # The release's render step, run here: every base, for the pushed image.
    image = "ghcr.io/acme/memfleet:0.1.0"
    assert regen.main(["--image", image, str(tmp_path / "deploy")]) == 0
    rendered = {str(p.parent.relative_to(tmp_path / "deploy")) for p in tmp_path.rglob("*.yaml")}
    assert rendered == set(regen.all_files())


def test_smoke_runs_committed_bases_with_the_image_set_by_an_overlay() -> None:
    doc = _load("kind-smoke.yml")
    (job,) = doc["jobs"].values()
    matrix = job["strategy"]["matrix"]["include"]
    bases = {m["base"] for m in matrix}
    assert bases <= set(regen.bases()), "every base the smoke test applies is committed"
    assert any(b.startswith("dev/") for b in bases) and any(not b.startswith("dev/") for b in bases)
    for m in matrix:
        # dev bases on one node; production bases need a node per copy/shard.
        assert (m["workers"] == 0) == m["base"].startswith("dev/"), m
        assert (ROOT / "deploy" / m["base"] / "kustomization.yaml").exists()
    script = _runs(doc)
    assert 'kind load docker-image "memfleet:${IMAGE_TAG}"' in script
    assert 'docker build -t "memfleet:${IMAGE_TAG}" .' in script
    # The overlay's images entry must name the image as the committed bases do.
    assert f"- name: {images_entry(DEFAULT_IMAGE)['name']}\n" in script
    assert "rollout status" in script
    assert "memfleet-proxy.${NAMESPACE}.svc.cluster.local:11211" in script
    assert "exec deploy/memfleet-app -c app" in script


@pytest.mark.integration
def test_the_smoke_client_passes_through_a_real_proxy(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    smoke = _load("kind-smoke.yml")["env"]["SMOKE"]
    nodes = [memcached_factory() for _ in range(3)]
    proxy = proxy_factory(
        {
            "pools": {"main": {"backends": [n.address for n in nodes]}},
            "routes": {"default": "main"},
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", smoke, f"127.0.0.1:{proxy.port}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "200 keys set and read back" in out.stdout
    # The keys went through the proxy to the nodes, spread over all three.
    items = [_curr_items(n.port) for n in nodes]
    assert sum(items) == 200 and all(items), items


def _curr_items(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += sock.recv(65536)
    for line in data.decode().splitlines():
        if line.startswith("STAT curr_items "):
            return int(line.split()[2])
    raise AssertionError("no curr_items")
