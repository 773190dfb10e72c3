"""The image is one setting: ``--image``, and an ``images:`` entry in every kustomization that
``kustomize edit set image`` or an overlay changes for the whole base."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from memfleet.kube import RenderOptions, regen, render
from memfleet.kube.kustomize import base_files, image_parts, images_entry, write_files
from memfleet.topology.presets import Topology
from tests.kube.k8s import all_containers

KUBECTL = shutil.which("kubectl")


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("memfleet:0.1.0", ("memfleet", "0.1.0", None)),
        ("memfleet", ("memfleet", None, None)),
        ("ghcr.io/acme/memfleet:1.2", ("ghcr.io/acme/memfleet", "1.2", None)),
        ("registry:5000/memfleet", ("registry:5000/memfleet", None, None)),
        ("registry:5000/a/memfleet:v1", ("registry:5000/a/memfleet", "v1", None)),
        ("r.io/memfleet@sha256:abc", ("r.io/memfleet", None, "sha256:abc")),
        ("r.io/memfleet:1@sha256:abc", ("r.io/memfleet", "1", "sha256:abc")),
    ],
)
def test_image_parts(ref: str, parts: tuple[str, str | None, str | None]) -> None:
    assert image_parts(ref) == parts


@pytest.mark.parametrize("image", ["memfleet:0.1.0", "reg.example:5000/team/memfleet:2.0"])
def test_every_kustomization_names_the_image_every_container_runs(image: str) -> None:
    for opts in regen.bases(image).values():
        bundle = render(opts)
        kust = yaml.safe_load(base_files(bundle)["kustomization.yaml"])
        (entry,) = kust["images"]
        assert entry == images_entry(image)
        name, tag, _ = image_parts(image)
        assert entry["name"] == entry["newName"] == name and entry["newTag"] == tag
        containers = [
            c
            for d in bundle.documents()
            if d["kind"] in ("StatefulSet", "DaemonSet", "Deployment")
            for c in all_containers(d)
        ]
        assert containers and {c["image"] for c in containers} == {image}


def test_digest_pins_the_image() -> None:
    assert images_entry("r.io/memfleet@sha256:abc") == {
        "name": "r.io/memfleet",
        "newName": "r.io/memfleet",
        "digest": "sha256:abc",
    }


def test_regen_renders_the_tree_for_another_image(tmp_path: Path) -> None:
    image = "ghcr.io/acme/memfleet:0.1.0"
    assert regen.main(["--image", image, str(tmp_path)]) == 0
    for rel in regen.bases():
        text = "".join(p.read_text() for p in sorted((tmp_path / rel).glob("*.yaml")))
        assert f"image: {image}" in text and "image: memfleet:" not in text, rel
        readme = (tmp_path / rel / "README.md").read_text()
        assert f"--image {image}" in readme


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize 5) is not installed")
def test_an_overlay_points_the_whole_base_at_another_registry(tmp_path: Path) -> None:
    assert KUBECTL is not None
    opts = RenderOptions(topology=Topology("local-failover"), proxy="daemonset")
    write_files(tmp_path / "base", base_files(render(opts)))
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../base"],
                # What `kustomize edit set image memfleet=registry.example/cache/memfleet:9`
                # writes.
                "images": [
                    {
                        "name": "memfleet",
                        "newName": "registry.example/cache/memfleet",
                        "newTag": "9",
                    }
                ],
            }
        )
    )
    out = subprocess.run(
        [KUBECTL, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("StatefulSet", "DaemonSet", "Deployment")
        for c in all_containers(d)
    }
    assert images == {"registry.example/cache/memfleet:9"}
