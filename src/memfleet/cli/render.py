"""``memfleet render``: a topology as a kustomize base (or as YAML on stdout); the manifests
themselves come from :mod:`memfleet.kube`, which holds no commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memfleet.kube.kustomize import base_files, dump_all, write_files
from memfleet.kube.monitoring import plain_files
from memfleet.kube.options import (
    DEFAULT_IMAGE,
    DEFAULT_MONITORING_NAMESPACE,
    DEFAULT_NAMESPACE,
    PERSISTENCE_MODES,
    PMEM_CSI_DRIVER,
    PMEM_STORAGE_CLASS,
    PROXY_MODES,
    SERVICE_TYPES,
    RenderOptions,
)
from memfleet.kube.readme import readme
from memfleet.kube.render import render as render_bundle
from memfleet.manpage import ManCommand
from memfleet.topology.options import topology_options
from memfleet.topology.presets import Topology


@click.command(
    "render", cls=ManCommand,
    examples=(
        ("memfleet render --topology replicated-sharded --out cache/", "A kustomize base; "
         "then kubectl apply -k cache/."),
        ("memfleet render --dev --out dev/", "For kind or minikube: one node is enough."),
        ("memfleet render --topology sharded --persistence restartable --pmem --out pmem/",
         "Warm restarts on PMEM-CSI volumes."),
        ("memfleet render --monitoring --out cache/", "With ServiceMonitors, alert rules, a "
         "dashboard and NetworkPolicies for the metrics ports."),
        ("memfleet render --proxy memcached --proxy-image REGISTRY/memcached-proxy:1.6 "
         "--routelib routelib.lua --out cache/", "memcached's own proxy, configured by a "
         "rendered routelib file."),
    ),
    exit_codes=((0, "written"), (2, "a bad option or combination (the message says which)")),
    epilog="docs/kubernetes.md says what is rendered and why; the proxy's status page and "
    "metrics (port 9150) are reachable only from where the NetworkPolicy lets in.",
)  # fmt: skip
@topology_options("replicated-sharded: shard s of every replica on different nodes.")
@click.option("--namespace", default=DEFAULT_NAMESPACE, show_default=True,
              help="The namespace of every object.")  # fmt: skip
@click.option(
    "--memory", "memory_mb", type=click.IntRange(16), default=256, show_default=True,
    help="Cache size per pod, MB; requests, limits and volumes follow from it.",
)  # fmt: skip
@click.option(
    "--proxy", type=click.Choice([*PROXY_MODES, "memcached"]), default=None,
    help="DaemonSet behind a node-local Service, or a native sidecar of an example app "
    "[default: sidecar for replicated and local-failover, else daemonset]; memcached: "
    "memcached's own proxy as the DaemonSet, configured by a rendered routelib file.",
)  # fmt: skip
@click.option(
    "--proxy-image", default=None, metavar="IMAGE",
    help="--proxy memcached: an image of memcached built with --enable-proxy (the official "
    "image has no proxy).",
)  # fmt: skip
@click.option(
    "--routelib", "routelib_path", type=click.Path(dir_okay=False, exists=True), default=None,
    help="--proxy memcached: routelib.lua (memcached-proxylibs) for the ConfigMap.",
)  # fmt: skip
@click.option(
    "--service-type", type=click.Choice(SERVICE_TYPES), default="ClusterIP", show_default=True,
    help="The DaemonSet's Service. LoadBalancer needs --lb-source-range.",
)  # fmt: skip
@click.option(
    "--lb-source-range", "lb_source_ranges", multiple=True, metavar="CIDR",
    help="LoadBalancer: a client range allowed in (repeatable; required, no default).",
)  # fmt: skip
@click.option(
    "--persistence", type=click.Choice(PERSISTENCE_MODES), default="none", show_default=True,
    help="memory-file: an in-memory emptyDir; restartable: a claim on the default storage class.",
)  # fmt: skip
@click.option(
    "--pmem", is_flag=True,
    help=f"PMEM-CSI's layout: a CSI inline volume ({PMEM_CSI_DRIVER}) for memory-file, "
    f"storage class {PMEM_STORAGE_CLASS} for restartable. Its init container runs as root.",
)  # fmt: skip
@click.option(
    "--storage-class", default=None,
    help="restartable: the claims' storage class [default: the cluster's default class].",
)  # fmt: skip
@click.option(
    "--csi-driver", default=None,
    help=f"--pmem memory-file: the inline volume's CSI driver [default: {PMEM_CSI_DRIVER}].",
)  # fmt: skip
@click.option(
    "--volume-size", "volume_size_mi", type=click.IntRange(32), default=None,
    help="Memory-file volume size in Mi [default: from --memory].",
)  # fmt: skip
@click.option(
    "--zone-spread", is_flag=True,
    help="Keep copies apart per zone (topology.kubernetes.io/zone) instead of per node.",
)  # fmt: skip
@click.option(
    "--dev", is_flag=True,
    help="A dev cluster (kind, minikube, one node): soft anti-affinity, no disruption "
    "budgets, token CPU requests. Without it a one-node cluster leaves pods Pending.",
)  # fmt: skip
@click.option(
    "--monitoring", is_flag=True,
    help="Add ServiceMonitors, alert rules (PrometheusRule), a Grafana dashboard and "
    "NetworkPolicies for the metrics ports (prometheus-operator; docs/monitoring.md).",
)  # fmt: skip
@click.option(
    "--monitoring-namespace", default=DEFAULT_MONITORING_NAMESPACE, show_default=True,
    help="--monitoring: the namespace Prometheus scrapes from.",
)  # fmt: skip
@click.option(
    "--image", default=DEFAULT_IMAGE, show_default=True,
    help="REGISTRY/NAME:TAG of the image (also the kustomization's images: entry).",
)  # fmt: skip
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
    proxy_image: str | None,
    routelib_path: str | None,
    service_type: str,
    lb_source_ranges: tuple[str, ...],
    persistence: str,
    pmem: bool,
    storage_class: str | None,
    csi_driver: str | None,
    volume_size_mi: int | None,
    zone_spread: bool,
    dev: bool,
    monitoring: bool,
    monitoring_namespace: str,
    image: str,
    out: Path | None,
) -> None:
    """Write a topology as Kubernetes manifests: a kustomize base for kubectl apply -k DIR,
    or every document on stdout."""
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
            proxy=(
                "daemonset" if proxy in ("daemonset", "memcached") else "sidecar" if proxy else None
            ),
            proxy_server="memcached" if proxy == "memcached" else "memfleet",
            proxy_image=proxy_image,
            routelib=Path(routelib_path).read_text() if routelib_path else None,
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
            service_type="LoadBalancer" if service_type == "LoadBalancer" else "ClusterIP",
            lb_source_ranges=lb_source_ranges,
            pmem=pmem,
            dev=dev,
            monitoring=monitoring,
            monitoring_namespace=monitoring_namespace,
        )
    except ValueError as exc:
        click.echo(f"memfleet: render: {exc}", err=True)
        sys.exit(2)
    bundle = render_bundle(opts)
    if out is None:
        click.echo(dump_all(bundle.documents()), nl=False)
        return
    files = base_files(bundle, readme(opts))
    if opts.monitoring:
        # The rules file and the dashboard JSON, for a Prometheus and a Grafana set up by
        # hand (beside the base; the kustomization does not list them).
        files.update(plain_files())
    write_files(out, files)
    click.echo(f"wrote {out} (kubectl apply -k {out})", err=True)
