"""Regenerates the committed ``deploy/`` tree:
``python -m memfleet.kube.regen [--image REGISTRY/memfleet:TAG] [DIR]``.

``deploy/<topology>/`` holds each topology's base with the defaults, ``deploy/persistence/``
the persistent variants (in-memory emptyDir, default storage class, and the same with
``--pmem``), ``deploy/dev/`` bases for one-node clusters (``--dev``), and
``deploy/examples/pmem-overlay/`` an overlay in the style of the PMEM-CSI memcached example
(namespace, volume size and extra memcached arguments). A test renders into a temporary
directory and fails when ``deploy/`` differs. The release workflow renders the same tree with
``--image`` set to the image it pushed and attaches it to the release.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from memfleet.kube.common import CONFIGMAP_NAME
from memfleet.kube.configmap import proxy_config_yaml
from memfleet.kube.kustomize import KUSTOMIZATION, base_files, dump, write_files
from memfleet.kube.options import DEFAULT_IMAGE, RenderOptions
from memfleet.kube.readme import readme
from memfleet.kube.render import render
from memfleet.kube.sizing import cache_for_volume, cache_memory
from memfleet.topology.presets import TOPOLOGIES, Topology

OVERLAY = "examples/pmem-overlay"
OVERLAY_BASE = "persistence/sharded-memory-file-pmem"
OVERLAY_NAMESPACE = "cache-prod"
OVERLAY_VOLUME_MI = 1024
OVERLAY_ARGS = ("--", "--threads=4", "--conn-limit=4096")


def bases(image: str = DEFAULT_IMAGE) -> dict[str, RenderOptions]:
    """Directory (relative to deploy/) → the options rendered into it."""
    out = {name: RenderOptions(topology=Topology(name)) for name in TOPOLOGIES}
    sharded, rs = Topology("sharded"), Topology("replicated-sharded")
    out["persistence/sharded-memory-file"] = RenderOptions(
        topology=sharded, persistence="memory-file"
    )
    out["persistence/replicated-sharded-restartable"] = RenderOptions(
        topology=rs, persistence="restartable"
    )
    out[OVERLAY_BASE] = RenderOptions(topology=sharded, persistence="memory-file", pmem=True)
    out["persistence/replicated-sharded-restartable-pmem"] = RenderOptions(
        topology=rs, persistence="restartable", pmem=True
    )
    # One-node clusters (kind, minikube): a shared proxy and a sidecar topology.
    out["dev/replicated-sharded"] = RenderOptions(topology=rs, dev=True)
    out["dev/replicated"] = RenderOptions(topology=Topology("replicated"), dev=True)
    return {d: dataclasses.replace(o, image=image) for d, o in out.items()}


def overlay_files() -> dict[str, str]:
    """The example overlay: another namespace (so the proxy config is re-rendered for it), a
    1 GiB memory-file volume with matching memory, and extra memcached arguments."""
    base_opts = bases()[OVERLAY_BASE]
    opts = dataclasses.replace(
        base_opts, namespace=OVERLAY_NAMESPACE, volume_size_mi=OVERLAY_VOLUME_MI
    )
    mem = cache_memory(cache_for_volume(OVERLAY_VOLUME_MI))
    resize = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "memcached"},
        "spec": {
            "template": {
                "spec": {
                    "volumes": [
                        {
                            "name": "data",
                            "csi": {"volumeAttributes": {"size": f"{OVERLAY_VOLUME_MI}Mi"}},
                        }
                    ],
                    "containers": [
                        {
                            "name": "memcached",
                            "resources": {
                                "requests": {"memory": mem.request},
                                "limits": {"memory": mem.limit},
                            },
                        }
                    ],
                }
            }
        },
    }
    # args is a list of strings, which a strategic merge would replace whole: append instead.
    extra_args = [
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": a}
        for a in OVERLAY_ARGS
    ]
    target = {"kind": "StatefulSet", "name": "memcached"}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": OVERLAY_NAMESPACE,
        "resources": [f"../../{OVERLAY_BASE}"],
        "patches": [
            {"target": target, "patch": dump(resize)},
            {"target": target, "patch": dump(extra_args)},
        ],
        # The backends' DNS names contain the namespace: replace the proxy config with one
        # rendered for the new namespace. No name suffix, so the proxies reload it in place.
        "configMapGenerator": [
            {
                "name": CONFIGMAP_NAME,
                # The base's namespace, to find the ConfigMap it replaces; the overlay's
                # namespace then applies to it like to everything else.
                "namespace": base_opts.namespace,
                "behavior": "replace",
                "files": ["proxy.yaml"],
                "options": {"disableNameSuffixHash": True},
            }
        ],
    }
    head = (
        "# Generated by: python -m memfleet.kube.regen. An overlay on the sharded memory-file\n"
        f"# base: namespace {OVERLAY_NAMESPACE}, a {OVERLAY_VOLUME_MI} Mi volume (the node sizes "
        "its cache from it),\n# memory to match, and extra memcached arguments after `--`.\n"
    )
    proxy_head = (
        "# The proxy config for namespace "
        f"{OVERLAY_NAMESPACE}: memfleet render --topology sharded "
        f"--namespace {OVERLAY_NAMESPACE}\n"
    )
    return {
        KUSTOMIZATION: head + dump(kustomization),
        "proxy.yaml": proxy_head + proxy_config_yaml(opts),
    }


def all_files(image: str = DEFAULT_IMAGE) -> dict[str, dict[str, str]]:
    """Directory (relative to deploy/) → file name → text."""
    out = {d: base_files(render(o), readme(o)) for d, o in bases(image).items()}
    out[OVERLAY] = overlay_files()
    return out


def write_all(root: Path, image: str = DEFAULT_IMAGE) -> list[Path]:
    """Write every generated directory under ``root``; return the directories."""
    dirs = []
    for rel, files in all_files(image).items():
        write_files(root / rel, files)
        dirs.append(root / rel)
    return dirs


def main(argv: list[str] | None = None) -> int:
    """Entry point: regenerate ``deploy/`` (or the directory given)."""
    parser = argparse.ArgumentParser(prog="python -m memfleet.kube.regen")
    parser.add_argument(
        "--image", default=DEFAULT_IMAGE, help=f"image of every base [default: {DEFAULT_IMAGE}]"
    )
    parser.add_argument("dir", nargs="?", type=Path, help="[default: the checkout's deploy/]")
    args = parser.parse_args(argv)
    root = args.dir or Path(__file__).resolve().parents[3] / "deploy"
    for d in write_all(root, args.image):
        print(d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
