"""What to render: the topology plus the Kubernetes-only choices."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from memfleet import __version__
from memfleet.topology.presets import Topology

ProxyMode = Literal["daemonset", "sidecar"]
Persistence = Literal["none", "memory-file", "restartable"]

PROXY_MODES: tuple[ProxyMode, ...] = ("daemonset", "sidecar")
PERSISTENCE_MODES: tuple[Persistence, ...] = ("none", "memory-file", "restartable")
DEFAULT_IMAGE = f"memfleet:{__version__}"
DEFAULT_NAMESPACE = "memfleet"
DEFAULT_CSI_DRIVER = "pmem-csi.intel.com"
DEFAULT_STORAGE_CLASS = "pmem-csi-sc-ext4"
PORT = 11211
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
    storage_class: str | None = DEFAULT_STORAGE_CLASS
    csi_driver: str = DEFAULT_CSI_DRIVER
    volume_size_mi: int | None = None
    zone_spread: bool = False
    image: str = DEFAULT_IMAGE
    app_replicas: int = 2

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} is not a DNS label")
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

    @property
    def proxy_mode(self) -> ProxyMode:
        """The proxy mode, the topology's default where none was given."""
        return self.proxy or DEFAULT_PROXY[self.topology.name]

    @property
    def persistent(self) -> bool:
        """Whether the cache lives in a memory file on a volume."""
        return self.persistence != "none"


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
    parts.append(f"--proxy {opts.proxy_mode}")
    parts.append(f"--persistence {opts.persistence}")
    if opts.persistence == "memory-file":
        parts.append(f"--csi-driver {opts.csi_driver}")
    if opts.persistence == "restartable" and opts.storage_class:
        parts.append(f"--storage-class {opts.storage_class}")
    if opts.persistent and opts.volume_size_mi is not None:
        parts.append(f"--volume-size {opts.volume_size_mi}")
    if opts.zone_spread:
        parts.append("--zone-spread")
    parts.append(f"--image {opts.image}")
    return " ".join(parts)
