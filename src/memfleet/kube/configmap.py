"""The proxy config as a ConfigMap: backends are the cache pods' stable DNS names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from memfleet.config import parse_config
from memfleet.config.digest import config_hash
from memfleet.kube.common import CONFIGMAP_NAME, Obj, labels, metadata
from memfleet.kube.options import LOCAL_PORT, PORT, RenderOptions
from memfleet.kube.sizing import proxy_max_memory
from memfleet.topology.presets import NodeSpec, Topology, template_address


def statefulset_of(node: NodeSpec) -> str:
    """The StatefulSet a cache node's pod belongs to (its name without the ordinal)."""
    return node.name.rsplit("-", 1)[0] if node.name[-1].isdigit() else node.name


def node_address(namespace: str) -> Callable[[NodeSpec], str]:
    """Address of a node: the pod's DNS name under its StatefulSet's headless Service; the
    local tier of ``local-failover`` is a sidecar on the proxy's own loopback."""
    cluster = template_address(
        "{name}.{statefulset}-headless." + namespace + f".svc.cluster.local:{PORT}"
    )

    def address(node: NodeSpec) -> str:
        if node.role == "local":
            return f"127.0.0.1:{LOCAL_PORT}"
        return cluster(node)

    return address


def proxy_listen(opts: RenderOptions) -> str:
    """A DaemonSet proxy serves the cluster; a sidecar serves only its own pod."""
    return f"0.0.0.0:{PORT}" if opts.proxy_mode == "daemonset" else f"127.0.0.1:{PORT}"


def proxy_config(opts: RenderOptions) -> dict[str, Any]:
    """The proxy config data (what ``memfleet proxy`` loads), its process budget derived
    from the container's memory limit (one worker per container)."""
    cfg = opts.topology.proxy_config(node_address(opts.namespace), listen=proxy_listen(opts))
    limits = cfg.setdefault("limits", {})
    limits.setdefault("max_memory", proxy_max_memory(1))
    return cfg


def proxy_config_yaml(opts: RenderOptions) -> str:
    """The proxy config as the YAML text stored in the ConfigMap."""
    return yaml.safe_dump(proxy_config(opts), sort_keys=False)


# What the ConfigMap says about itself: the shards per pool it names, and the hash every
# proxy reports once it serves this config (stats, metrics, /readyz), so that a scale-in can
# wait until no proxy serves the old placement and a proxy left behind is visible.
SHARDS_ANNOTATION = "memfleet.io/shards"
HASH_ANNOTATION = "memfleet.io/config-hash"


def shard_count(topology: Topology) -> int:
    """The shards of the cluster tier (a pool's backends; 1 where every pool is one node)."""
    return sum(1 for n in topology.nodes() if n.role == "cache" and n.replica == 0)


def configmap_annotations(cfg: dict[str, Any], shards: int) -> dict[str, str]:
    """The ConfigMap's annotations for the proxy config ``cfg`` (YAML-ready data): the hash
    is taken over the validated model, exactly as a proxy that loaded it reports it."""
    return {
        SHARDS_ANNOTATION: str(shards),
        HASH_ANNOTATION: config_hash(parse_config(cfg, "the rendered proxy config")),
    }


def configmap(opts: RenderOptions) -> Obj:
    """The ConfigMap. Mounted as a directory (never subPath, which would freeze the file), so
    an update swaps the directory's symlink and the proxy reloads it."""
    cfg = proxy_config(opts)
    meta = metadata(CONFIGMAP_NAME, opts.namespace, labels(CONFIGMAP_NAME, "proxy"))
    meta["annotations"] = configmap_annotations(cfg, shard_count(opts.topology))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {"proxy.yaml": yaml.safe_dump(cfg, sort_keys=False)},
    }
