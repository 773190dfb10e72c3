"""`memfleet render` annotates the proxy ConfigMap with its shard count and the config hash the
proxies report, so a proxy serving another config (one not yet reloaded) shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from memfleet.cli.main import main
from memfleet.config import parse_config
from memfleet.config.digest import config_hash
from memfleet.kube.common import CONFIGMAP_NAME
from memfleet.kube.configmap import HASH_ANNOTATION, SHARDS_ANNOTATION
from tests.helpers import Conn, ProxyProcess, free_port, wait_port

Obj = dict[str, Any]


def _configmap(tmp_path: Path, *args: str) -> Obj:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all((out / "proxy-config.yaml").read_text(encoding="utf-8")))
    (cm,) = [d for d in docs if d and d["kind"] == "ConfigMap"]
    assert cm["metadata"]["name"] == CONFIGMAP_NAME
    return cm


def _backends_per_pool(cm: Obj) -> set[int]:
    cfg = yaml.safe_load(cm["data"]["proxy.yaml"])
    return {len(p["backends"]) for name, p in cfg["pools"].items() if name != "gutter"}


@pytest.mark.parametrize(
    ("topology", "shards"),
    [("sharded", 3), ("sharded", 4), ("replicated-sharded", 4), ("gutter", 2), ("replicated", 3)],
)
def test_annotation_is_the_hash_of_the_configmaps_own_config(
    tmp_path: Path, topology: str, shards: int
) -> None:
    cm = _configmap(tmp_path, "--topology", topology, "--shards", str(shards))
    notes = cm["metadata"]["annotations"]
    # Recomputed from the ConfigMap's own text, the way a proxy that loads it does.
    cfg = parse_config(yaml.safe_load(cm["data"]["proxy.yaml"]), "proxy.yaml")
    assert notes[HASH_ANNOTATION] == config_hash(cfg)
    assert {int(notes[SHARDS_ANNOTATION])} == _backends_per_pool(cm)


def test_a_resize_changes_both_annotations(tmp_path: Path) -> None:
    three = _configmap(tmp_path / "a", "--topology", "sharded", "--shards", "3")
    four = _configmap(tmp_path / "b", "--topology", "sharded", "--shards", "4")
    a, b = three["metadata"]["annotations"], four["metadata"]["annotations"]
    assert (a[SHARDS_ANNOTATION], b[SHARDS_ANNOTATION]) == ("3", "4")
    assert a[HASH_ANNOTATION] != b[HASH_ANNOTATION]
    # The same render twice gives the same hash: it names a config, not a moment.
    again = _configmap(tmp_path / "c", "--topology", "sharded", "--shards", "3")
    assert again["metadata"]["annotations"] == a


DOC = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"


def _readyz_snippet() -> str:
    """The Python the documented wait loop runs in each proxy pod."""
    text = DOC.read_text(encoding="utf-8")
    return text.split("readyz='", 1)[1].split("'\n", 1)[0]


def test_a_proxy_on_the_configmap_reports_the_annotated_hash(tmp_path: Path) -> None:
    """A real proxy loading the ConfigMap's proxy.yaml (its backends' DNS names resolve
    nowhere here: /readyz then answers 503, which the documented loop reads all the same)
    reports the annotation's hash in stats and on /readyz's last line."""
    cm = _configmap(tmp_path, "--topology", "sharded", "--shards", "4")
    want = cm["metadata"]["annotations"][HASH_ANNOTATION]
    config = tmp_path / "proxy.yaml"
    config.write_text(cm["data"]["proxy.yaml"], encoding="utf-8")
    metrics = free_port()
    proxy = ProxyProcess(config, tmp_path, ("--watch-interval", "0", "--metrics",
                                            f"127.0.0.1:{metrics}"))  # fmt: skip
    try:
        wait_port(metrics)
        c = Conn(proxy.port)
        try:
            stats = c.request(b"stats\r\n")
        finally:
            c.close()
        assert f"STAT config_hash {want}\r\n".encode() in stats
        snippet = _readyz_snippet().replace("127.0.0.1:9150", f"127.0.0.1:{metrics}")
        got = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=30
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == want
    finally:
        proxy.stop()
