"""`memfleet render` annotates the proxy ConfigMap with its shard count and the config hash the
proxies report, so a proxy serving another config (one not yet reloaded) shows."""

from __future__ import annotations

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
