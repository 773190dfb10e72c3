"""What to render: the topology plus the Kubernetes-only choices."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from memfleet import __version__
from memfleet.topology.presets import Topology

ProxyMode = Literal["daemonset", "sidecar"]
Persistence = Literal["none", "memory-file", "restartable"]
ServiceType = Literal["ClusterIP", "LoadBalancer"]

PROXY_MODES: tuple[ProxyMode, ...] = ("daemonset", "sidecar")
PERSISTENCE_MODES: tuple[Persistence, ...] = ("none", "memory-file", "restartable")
SERVICE_TYPES: tuple[ServiceType, ...] = ("ClusterIP", "LoadBalancer")
DEFAULT_IMAGE = f"memfleet:{__version__}"
DEFAULT_NAMESPACE = "memfleet"
# Where Prometheus runs (--monitoring): the only namespace that may reach the metrics ports.
DEFAULT_MONITORING_NAMESPACE = "monitoring"
# The PMEM-CSI layout (--pmem): its driver for inline memory-file volumes and its storage class
# for restartable claims. Without --pmem neither appears anywhere: a memory file lives in an
# in-memory emptyDir and a restartable claim asks for the cluster's default storage class.
PMEM_CSI_DRIVER = "pmem-csi.intel.com"
PMEM_STORAGE_CLASS = "pmem-csi-sc-ext4"
PORT = 11211
# Least room beyond the memory file on a volume the node does not size itself from.
VOLUME_MARGIN_MI = 16
# The local tier of local-failover listens next to the proxy, on the pod's loopback only.
LOCAL_PORT = 11212

# Where each topology's proxy runs unless --proxy says otherwise: a shared proxy per node for
# the pooled topologies, a sidecar where the reference puts one next to the app.
DEFAULT_PROXY: dict[str, ProxyMode] = {
    "sharded": "daemonset",
    "replicated": "sidecar",
    "local-failover": "sidecar",
    "replicated-sharded": "daemonset",
    "gutter": "daemonset",
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class RenderOptions:
    """Everything ``memfleet render`` needs to write one kustomize base."""

    topology: Topology = field(default_factory=lambda: Topology("replicated-sharded"))
    namespace: str = DEFAULT_NAMESPACE
    memory_mb: int = 256
    local_memory_mb: int = 64
    proxy: ProxyMode | None = None
    persistence: Persistence = "none"
    # None: the cluster's default storage class (or PMEM-CSI's with --pmem).
    storage_class: str | None = None
    # None: PMEM-CSI's driver; only the --pmem memory-file layout has a CSI inline volume.
    csi_driver: str | None = None
    volume_size_mi: int | None = None
    zone_spread: bool = False
    image: str = DEFAULT_IMAGE
    # None: 2, or 1 with --dev.
    app_replicas: int | None = None
    service_type: ServiceType = "ClusterIP"
    lb_source_ranges: tuple[str, ...] = ()
    pmem: bool = False
    dev: bool = False
    # ServiceMonitors, alert rules, a dashboard (memfleet.kube.monitoring).
    monitoring: bool = False
    monitoring_namespace: str = DEFAULT_MONITORING_NAMESPACE
    # memcached's own proxy instead of memfleet's (memfleet.kube.memcached_proxy): its image
    # (the official one has no proxy) and routelib.lua's text for the ConfigMap.
    proxy_server: Literal["memfleet", "memcached"] = "memfleet"
    proxy_image: str | None = None
    routelib: str | None = None

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} is not a DNS label")
        if not _DNS_LABEL.match(self.monitoring_namespace):
            ns = self.monitoring_namespace
            raise ValueError(f"monitoring namespace {ns!r} is not a DNS label")
        if self.memory_mb < 16 or self.local_memory_mb < 16:
            raise ValueError("cache size must be at least 16 MB")
        if self.proxy is not None and self.proxy not in PROXY_MODES:
            raise ValueError(f"unknown proxy mode {self.proxy!r}")
        if self.persistence not in PERSISTENCE_MODES:
            raise ValueError(f"unknown persistence {self.persistence!r}")
        if self.volume_size_mi is not None and self.volume_size_mi < 32:
            raise ValueError("volume size must be at least 32 Mi")
        if not self.image or any(c.isspace() for c in self.image):
            raise ValueError(f"image {self.image!r} is not an image reference")
        if self.service_type not in SERVICE_TYPES:
            raise ValueError(f"unknown service type {self.service_type!r}")
        self._check_load_balancer()
        if self.pmem and not self.persistent:
            raise ValueError("--pmem needs --persistence memory-file or restartable")
        if self.storage_class and self.persistence != "restartable":
            raise ValueError("--storage-class is for --persistence restartable only")
        if self.csi_driver is not None and not (self.pmem and self.persistence == "memory-file"):
            raise ValueError("--csi-driver is for --pmem --persistence memory-file only")
        # Unless root prepares a --pmem inline volume, the node is told --memory and the volume
        # must hold that file, its state file and the file system's own overhead.
        least = self.memory_mb + VOLUME_MARGIN_MI
        if self.volume_size_mi is not None and not self.root_init and self.volume_size_mi < least:
            raise ValueError(
                f"--volume-size {self.volume_size_mi} cannot hold a {self.memory_mb} MB "
                f"memory file (at least {least} Mi)"
            )
        self._check_proxy_server()
        if self.app_replicas is not None and self.app_replicas < 1:
            raise ValueError("the example app needs at least one replica")

    def _check_proxy_server(self) -> None:
        if self.proxy_server == "memcached":
            if self.proxy_mode != "daemonset":
                raise ValueError("--proxy memcached runs memcached's proxy as a DaemonSet")
            if not self.proxy_image or any(c.isspace() for c in self.proxy_image):
                raise ValueError(
                    "--proxy memcached needs --proxy-image: the official memcached image is "
                    "built without the proxy (see the README on building one)"
                )
            if self.monitoring:
                raise ValueError(
                    "--monitoring scrapes memfleet's proxy: not with --proxy memcached"
                )
        elif self.proxy_image is not None or self.routelib is not None:
            raise ValueError("--proxy-image and --routelib are for --proxy memcached")

    def _check_load_balancer(self) -> None:
        # An internet-facing load balancer in front of an unauthenticated cache is the one
        # default that must never happen by accident: the source ranges are required, and
        # 0.0.0.0/0 has to be written out by whoever wants it.
        if self.service_type == "LoadBalancer":
            if self.proxy_mode != "daemonset":
                raise ValueError("--service-type LoadBalancer needs --proxy daemonset")
            if not self.lb_source_ranges:
                raise ValueError(
                    "--service-type LoadBalancer needs at least one --lb-source-range CIDR "
                    "(the clients allowed to reach it; 0.0.0.0/0 opens it to everyone)"
                )
        elif self.lb_source_ranges:
            raise ValueError("--lb-source-range needs --service-type LoadBalancer")
        for cidr in self.lb_source_ranges:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"--lb-source-range {cidr!r} is not a CIDR") from None
            if "/" not in cidr:
                raise ValueError(f"--lb-source-range {cidr!r} is not a CIDR (no /prefix)")

    @property
    def proxy_mode(self) -> ProxyMode:
        """The proxy mode, the topology's default where none was given."""
        return self.proxy or DEFAULT_PROXY[self.topology.name]

    @property
    def persistent(self) -> bool:
        """Whether the cache lives in a memory file on a volume."""
        return self.persistence != "none"

    @property
    def claim_storage_class(self) -> str | None:
        """The restartable claims' storage class; None asks for the cluster's default."""
        return self.storage_class or (PMEM_STORAGE_CLASS if self.pmem else None)

    @property
    def inline_csi_driver(self) -> str:
        """The driver of the --pmem memory-file layout's CSI inline volume."""
        return self.csi_driver or PMEM_CSI_DRIVER

    @property
    def root_init(self) -> bool:
        """Whether a pod needs a root init container: only a CSI inline volume, whose driver
        may not apply fsGroup (only drivers declaring ``fsGroupPolicy: File`` do), so the
        memory file is handed to memcache by root. Claims and emptyDirs get fsGroup."""
        return self.pmem and self.persistence == "memory-file"

    @property
    def replicas_of_app(self) -> int:
        """Replicas of the example app Deployment."""
        if self.app_replicas is not None:
            return self.app_replicas
        return 1 if self.dev else 2


def command_line(opts: RenderOptions) -> str:
    """The ``memfleet render`` invocation that reproduces these options (without --out)."""
    t = opts.topology
    parts = ["memfleet render", f"--topology {t.name}"]
    if t.name != "replicated":
        parts.append(f"--shards {t.shards}")
    if t.name in ("replicated", "replicated-sharded"):
        parts.append(f"--replicas {t.replicas}")
    if t.name == "replicated-sharded":
        parts.append(f"--placement {t.placement}")
    parts += [f"--namespace {opts.namespace}", f"--memory {opts.memory_mb}"]
    if opts.proxy_server == "memcached":
        parts += ["--proxy memcached", f"--proxy-image {opts.proxy_image}"]
    else:
        parts.append(f"--proxy {opts.proxy_mode}")
    if opts.service_type != "ClusterIP":
        parts.append(f"--service-type {opts.service_type}")
        parts += [f"--lb-source-range {cidr}" for cidr in opts.lb_source_ranges]
    parts.append(f"--persistence {opts.persistence}")
    if opts.pmem:
        parts.append("--pmem")
    if opts.csi_driver is not None:
        parts.append(f"--csi-driver {opts.csi_driver}")
    if opts.persistence == "restartable" and opts.storage_class:
        parts.append(f"--storage-class {opts.storage_class}")
    if opts.persistent and opts.volume_size_mi is not None:
        parts.append(f"--volume-size {opts.volume_size_mi}")
    if opts.zone_spread:
        parts.append("--zone-spread")
    if opts.dev:
        parts.append("--dev")
    if opts.monitoring:
        parts.append("--monitoring")
        if opts.monitoring_namespace != DEFAULT_MONITORING_NAMESPACE:
            parts.append(f"--monitoring-namespace {opts.monitoring_namespace}")
    parts.append(f"--image {opts.image}")
    return " ".join(parts)
