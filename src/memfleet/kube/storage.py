"""Where a node keeps its memory file: the pod volume or claim, and how the node sizes its cache.

Three layouts, chosen by ``--persistence`` and ``--pmem``:

- ``memory-file``: an ``emptyDir`` in memory (tmpfs), ``sizeLimit`` from the sizing rule. Its
  pages are charged to the pod like any other memory, so the container's memory limit covers
  it (``docs/kubernetes.md``, "Sizing rule"); it is lost with the pod, as a cache may be.
- ``restartable``: a ``volumeClaimTemplate`` on the cluster's default storage class (or
  ``--storage-class``). memcached's graceful stop writes the state file next to it and the
  next pod on the same claim starts warm.
- ``--pmem``: PMEM-CSI's layout: a CSI inline volume for ``memory-file``, its storage class for
  ``restartable``. An inline volume is prepared by root, which sizes the cache from the volume
  (an overlay that resizes the volume resizes the cache), as in the PMEM-CSI example.

Everywhere else the node is told ``--memory`` and the volume is sized to hold it: a generic
provisioner may round a claim up (to 1 GiB, or 10 GiB on some clouds), and sizing from the
volume would then give memcached far more than its memory limit; and a file system keeps
blocks for root (ext4: 5%) that the memcache user cannot allocate.

Only a CSI inline volume needs root: the kubelet applies ``fsGroup`` to emptyDirs and claims,
but to an inline CSI volume only when its driver declares ``fsGroupPolicy: File``, which
PMEM-CSI's does not promise. That layout keeps an init container that hands the file to the
memcache user as root; every other layout runs as memcache throughout (the node supervisor
sizes, preallocates and checks the memory file itself).
"""

from __future__ import annotations

from memfleet.kube.common import DATA_DIR, MEMORY_FILE, Obj, root_prepare_security_context
from memfleet.kube.options import RenderOptions
from memfleet.kube.sizing import claim_size_mi, volume_size_mi

DATA_VOLUME = "data"
PREPARE_ARGS = (
    *("node", "prepare", "--memory-file", MEMORY_FILE),
    *("--size-from-volume", "--owner", "memcache"),
)
# prepare keeps a valid state file only where the next start is meant to be warm.
PREPARE_STATE = {"memory-file": "--not-restartable", "restartable": "--restartable"}


def data_size_mi(opts: RenderOptions) -> int:
    """The data volume's size in Mi: ``--volume-size`` or the sizing rule (a claim's rule
    leaves room for the file system's own blocks)."""
    if opts.volume_size_mi:
        return opts.volume_size_mi
    if opts.persistence == "restartable":
        return claim_size_mi(opts.memory_mb)
    return volume_size_mi(opts.memory_mb)


def sizes_from_volume(opts: RenderOptions) -> bool:
    """Whether the node takes its cache size from the volume rather than from ``--memory``:
    only the root-prepared CSI inline volume of ``--pmem`` (see the module's docstring)."""
    return opts.root_init


def memory_file_args(opts: RenderOptions) -> list[str]:
    """``memfleet node`` arguments that place (and size) the cache in the memory file."""
    args = ["--memory-file", MEMORY_FILE]
    if sizes_from_volume(opts):
        return [*args, "--size-from-volume"]
    return [*args, "--memory", str(opts.memory_mb)]


def data_volume(opts: RenderOptions) -> Obj | None:
    """The pod's ``data`` volume, or None (no persistence, or a claim template provides it)."""
    if opts.persistence != "memory-file":
        return None
    size = f"{data_size_mi(opts)}Mi"
    if opts.pmem:
        csi = {"driver": opts.inline_csi_driver, "volumeAttributes": {"size": size}}
        return {"name": DATA_VOLUME, "csi": csi}
    # tmpfs: the sizeLimit bounds it (beyond it the kubelet evicts the pod) and the pages
    # count against the pod's memory limit.
    return {"name": DATA_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": size}}


def claim_template(opts: RenderOptions, lbls: dict[str, str]) -> Obj | None:
    """The restartable layout's ``volumeClaimTemplate``, or None."""
    if opts.persistence != "restartable":
        return None
    claim: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{data_size_mi(opts)}Mi"}},
    }
    storage_class = opts.claim_storage_class
    if storage_class:
        claim["storageClassName"] = storage_class
    # No storageClassName at all (not ""): the cluster's default class provisions it.
    return {"metadata": {"name": DATA_VOLUME, "labels": lbls}, "spec": claim}


def data_mount() -> Obj:
    """Where the node sees its data volume."""
    return {"name": DATA_VOLUME, "mountPath": DATA_DIR}


def prepare_container(opts: RenderOptions) -> Obj | None:
    """The --pmem memory-file layout's root init container (size, preallocate and check the
    memory file, then chown it to memcache), or None everywhere else."""
    if not opts.root_init:
        return None
    return {
        "name": "prepare",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memfleet"],
        "args": [*PREPARE_ARGS, PREPARE_STATE[opts.persistence]],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": root_prepare_security_context(),
        "volumeMounts": [data_mount()],
    }
