"""Sizing rules: container memory from the cache size, volume size, graceful-stop time.

The rules are documented in ``docs/kubernetes.md``; keep the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# memcached's own memory beyond -m: the hash table (8 bytes per bucket, grown at 1.5 items per
# bucket), per-connection and per-thread buffers, the LRU crawler and slab-page rounding.
# Measured fleets sit at 2-4% of -m; 5% leaves margin.
SLAB_OVERHEAD = 0.05
# Fixed cost per pod: the memfleet supervisor (a CPython process, ~20 MiB resident) plus
# memcached's baseline (~4 MiB with the default 4 worker threads).
PROCESS_OVERHEAD_MI = 28
# Floor of the limit's headroom: enough for a burst of connections (each costs memcached its
# read and write buffers) and for `kubectl exec` into the pod.
MIN_HEADROOM_MI = 100
# A memory-file volume: `memfleet node --size-from-volume` gives memcached the file system's
# size minus 1% (at least 2 MiB) and 1 MiB for the state file; the file system itself takes a
# little more (ext4's journal and inode tables). 2% + 16 Mi keeps -m at or just above the
# requested cache size, so the memory request and limit still fit it.
VOLUME_OVERHEAD = 0.02
VOLUME_RESERVE_MI = 16
# A restartable claim holds a file of exactly the cache size, written by memcache (not root):
# ext4 keeps 5% of its blocks for root, and its journal and inode tables take up to ~3% more,
# so the claim asks for 10% + 32 Mi beyond the cache (the state file included).
CLAIM_OVERHEAD = 0.10
CLAIM_RESERVE_MI = 32
# Graceful stop of a restartable node: memcached writes its state file and the kernel writes
# back the memory file's dirty pages; assume at least 100 MiB/s of write-back. The kubelet
# waits a little longer than the supervisor (`memfleet node --stop-timeout`), so the
# supervisor, not SIGKILL, decides when a stop has failed.
STOP_BASE_SECONDS = 60
WRITEBACK_MIB_PER_SECOND = 100
GRACE_MARGIN_SECONDS = 15


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


@dataclass(frozen=True)
class MemorySize:
    """Memory request and limit of a cache container, in MiB."""

    request_mi: int
    limit_mi: int

    @property
    def request(self) -> str:
        """The request as a Kubernetes quantity."""
        return f"{self.request_mi}Mi"

    @property
    def limit(self) -> str:
        """The limit as a Kubernetes quantity."""
        return f"{self.limit_mi}Mi"


def cache_memory(cache_mb: int) -> MemorySize:
    """Request = cache × 1.05 + 28 Mi, rounded up to 10 Mi; limit = request + max(100 Mi,
    cache / 4), rounded up to 10 Mi. 256 MB → 300Mi / 400Mi (the reference sizing).

    The limit's headroom grows with the cache because memcached's hash-table expansion holds
    the old and the new (twice as large) table at once; an OOM kill would cost the whole cache.
    """
    if cache_mb < 1:
        raise ValueError("cache size must be at least 1 MB")
    request = _round_up(cache_mb * (1 + SLAB_OVERHEAD) + PROCESS_OVERHEAD_MI, 10)
    limit = _round_up(request + max(MIN_HEADROOM_MI, cache_mb / 4), 10)
    return MemorySize(request, limit)


def volume_size_mi(cache_mb: int) -> int:
    """Size of the memory-file volume: cache × 1.02 + 16 Mi, rounded up to 10 Mi."""
    return _round_up(cache_mb * (1 + VOLUME_OVERHEAD) + VOLUME_RESERVE_MI, 10)


def claim_size_mi(cache_mb: int) -> int:
    """Size of a restartable claim: cache × 1.10 + 32 Mi, rounded up to 10 Mi."""
    return _round_up(cache_mb * (1 + CLAIM_OVERHEAD) + CLAIM_RESERVE_MI, 10)


def stop_timeout_seconds(cache_mb: int) -> int:
    """How long a restartable node's graceful stop may take: 60 s plus write-back time."""
    return STOP_BASE_SECONDS + math.ceil(cache_mb / WRITEBACK_MIB_PER_SECOND)


def grace_seconds(cache_mb: int) -> int:
    """terminationGracePeriodSeconds of a restartable node: the stop timeout plus 15 s."""
    return stop_timeout_seconds(cache_mb) + GRACE_MARGIN_SECONDS


def cache_for_volume(volume_mi: int) -> int:
    """The cache size a volume of ``volume_mi`` provisions for (the inverse of
    :func:`volume_size_mi`, rounded down)."""
    return max(1, math.floor((volume_mi - VOLUME_RESERVE_MI) / (1 + VOLUME_OVERHEAD)))


# The proxy container's memory limit, and what the proxy process itself takes before any
# client holds anything (interpreter, libraries, route tree: 43 MiB measured, rounded up).
PROXY_MEMORY_LIMIT_MIB = 256
PROXY_BASELINE_MIB = 64


def proxy_max_memory(workers: int = 1) -> int:
    """``limits.max_memory`` for each of ``workers`` proxy processes in one container: three
    quarters of what the container's limit leaves after their baseline, shared out, so
    transient copies and allocator slack stay under the limit before the kernel's OOM
    killer would take the whole proxy."""
    free = PROXY_MEMORY_LIMIT_MIB - PROXY_BASELINE_MIB * workers
    if free <= 0:
        raise ValueError(f"{workers} proxy workers do not fit in {PROXY_MEMORY_LIMIT_MIB} MiB")
    return free * 3 // 4 // workers * 1024 * 1024
