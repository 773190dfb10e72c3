"""``memfleet render``: a topology as a kustomize base (or as YAML on stdout); the manifests
themselves come from :mod:`memfleet.kube`, which holds no commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memfleet.kube.kustomize import base_files, dump_all, write_files
from memfleet.kube.options import (
    DEFAULT_CSI_DRIVER,
    DEFAULT_IMAGE,
    DEFAULT_NAMESPACE,
    DEFAULT_STORAGE_CLASS,
    PERSISTENCE_MODES,
    PROXY_MODES,
    RenderOptions,
)
from memfleet.kube.readme import readme
from memfleet.kube.render import render as render_bundle
from memfleet.topology.options import topology_options
from memfleet.topology.presets import Topology


@click.command("render")
@topology_options("replicated-sharded: shard s of every replica on different nodes.")
@click.option("--namespace", default=DEFAULT_NAMESPACE, show_default=True)
@click.option(
    "--memory", "memory_mb", type=click.IntRange(16), default=256, show_default=True,
    help="Cache size per pod, MB; requests, limits and volumes follow from it.",
)  # fmt: skip
@click.option(
    "--proxy", type=click.Choice(PROXY_MODES), default=None,
    help="DaemonSet + LoadBalancer, or a native sidecar of an example app "
    "[default: sidecar for replicated and local-failover, else daemonset].",
)  # fmt: skip
@click.option(
    "--persistence", type=click.Choice(PERSISTENCE_MODES), default="none", show_default=True
)
@click.option(
    "--storage-class", default=DEFAULT_STORAGE_CLASS, show_default=True,
    help="restartable: the volumeClaimTemplate's storage class ('' for the cluster default).",
)  # fmt: skip
@click.option(
    "--csi-driver", default=DEFAULT_CSI_DRIVER, show_default=True,
    help="memory-file: the CSI driver of the inline volume.",
)  # fmt: skip
@click.option(
    "--volume-size", "volume_size_mi", type=click.IntRange(32), default=None,
    help="Memory-file volume size in Mi [default: from --memory].",
)  # fmt: skip
@click.option(
    "--zone-spread", is_flag=True,
    help="Keep copies apart per zone (topology.kubernetes.io/zone) instead of per node.",
)  # fmt: skip
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="NAME:TAG of the image.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Write a kustomize base into DIR [default: all documents to stdout].",
)  # fmt: skip
def render_cmd(
    topology: str,
    shards: int,
    replicas: int,
    placement: str,
    namespace: str,
    memory_mb: int,
    proxy: str | None,
    persistence: str,
    storage_class: str,
    csi_driver: str,
    volume_size_mi: int | None,
    zone_spread: bool,
    image: str,
    out: Path | None,
) -> None:
    """Write a topology as Kubernetes manifests (a kustomize base: kubectl apply -k DIR)."""
    try:
        opts = RenderOptions(
            topology=Topology(
                topology,
                shards=shards,
                replicas=replicas,
                placement="aligned" if placement == "aligned" else "independent",
            ),
            namespace=namespace,
            memory_mb=memory_mb,
            proxy="daemonset" if proxy == "daemonset" else "sidecar" if proxy else None,
            persistence=(
                "memory-file"
                if persistence == "memory-file"
                else "restartable"
                if persistence == "restartable"
                else "none"
            ),
            storage_class=storage_class or None,
            csi_driver=csi_driver,
            volume_size_mi=volume_size_mi,
            zone_spread=zone_spread,
            image=image,
        )
    except ValueError as exc:
        click.echo(f"memfleet: render: {exc}", err=True)
        sys.exit(2)
    bundle = render_bundle(opts)
    if out is None:
        click.echo(dump_all(bundle.documents()), nl=False)
        return
    write_files(out, base_files(bundle, readme(opts)))
    click.echo(f"wrote {out} (kubectl apply -k {out})", err=True)
