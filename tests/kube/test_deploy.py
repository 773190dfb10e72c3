"""The committed deploy/ tree: fresh, and every base and overlay builds with kubectl kustomize."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from memfleet.cli.main import main
from memfleet.config import parse_config
from memfleet.kube import regen
from memfleet.topology.presets import TOPOLOGIES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DIRS = sorted(regen.all_files())


def test_deploy_is_fresh(tmp_path: Path) -> None:
    regen.write_all(tmp_path)
    stale = []
    for rel, files in regen.all_files().items():
        committed = {p.name for p in (DEPLOY / rel).glob("*") if p.is_file()}
        if committed != set(files):
            stale.append(f"{rel}: files {sorted(committed ^ set(files))}")
        for name in files:
            fresh = (tmp_path / rel / name).read_text(encoding="utf-8")
            path = DEPLOY / rel / name
            if not path.exists() or path.read_text(encoding="utf-8") != fresh:
                stale.append(f"{rel}/{name}")
    assert not stale, f"deploy/ is stale, run: python -m memfleet.kube.regen ({stale})"


def test_every_topology_has_a_base_with_a_readme() -> None:
    for name in TOPOLOGIES:
        text = (DEPLOY / name / "README.md").read_text(encoding="utf-8")
        for word in ("availability", "hit rate", "latency", "memory cost", "kubectl apply -k"):
            assert word in text, (name, word)


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize 5) is not installed")
@pytest.mark.parametrize("rel", DIRS)
def test_kustomize_builds(rel: str) -> None:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / rel)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert {d["kind"] for d in docs} >= {"StatefulSet", "ConfigMap", "NetworkPolicy"}
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    cfg = parse_config(yaml.safe_load(cm["data"]["proxy.yaml"]), rel)
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    (ns,) = namespaces
    for pool in cfg.pools.values():
        for backend in pool.backends:
            assert backend.startswith("127.0.0.1:") or f".{ns}.svc.cluster.local:" in backend
    if rel == regen.OVERLAY:
        assert ns == regen.OVERLAY_NAMESPACE
        (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
        spec = sts["spec"]["template"]["spec"]
        (vol,) = [v for v in spec["volumes"] if v["name"] == "data"]
        assert vol["csi"]["volumeAttributes"]["size"] == f"{regen.OVERLAY_VOLUME_MI}Mi"
        assert vol["csi"]["driver"] == "pmem-csi.intel.com"
        args = spec["containers"][0]["args"]
        assert args[-len(regen.OVERLAY_ARGS) :] == list(regen.OVERLAY_ARGS)
        assert "--size-from-volume" in args


def test_render_command_writes_a_base(tmp_path: Path) -> None:
    out = tmp_path / "base"
    result = CliRunner().invoke(
        main,
        [
            *("render", "--topology", "replicated-sharded", "--shards", "4", "--replicas", "3"),
            *("--namespace", "cache", "--memory", "512", "--persistence", "restartable"),
            *("--storage-class", "fast", "--zone-spread", "--image", "reg.example/mf:1"),
            *("--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"kustomization.yaml", "README.md", "memcached-2.yaml", "proxy.yaml"} <= names
    docs = [d for d in yaml.safe_load_all((out / "memcached-2.yaml").read_text()) if d]
    sts = docs[1]
    assert sts["metadata"]["namespace"] == "cache"
    assert sts["spec"]["replicas"] == 4
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.example/mf:1"


def test_render_to_stdout_and_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["render", "--topology", "gutter", "--proxy", "sidecar"])
    assert result.exit_code == 0
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet"}
    assert names == {"memcached", "memcached-gutter"}
    assert any(d["kind"] == "Deployment" for d in docs)
    bad = runner.invoke(main, ["render", "--namespace", "Not_A_Label"])
    assert bad.exit_code == 2
    assert "namespace" in bad.output
