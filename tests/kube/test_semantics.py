"""What the rendered objects mean: placement, sizing, membership, persistence, policy."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from memfleet.backends.hashing import jump_hash, key_hash
from memfleet.config import LimitsConfig, parse_config
from memfleet.kube import RenderOptions, render
from memfleet.kube.sizing import (
    PROCESS_OVERHEAD_MI,
    cache_memory,
    claim_size_mi,
    volume_size_mi,
)
from memfleet.topology.presets import Topology
from tests.kube.k8s import all_containers, matches, mebibytes, pod_spec, pods, term_selector
from tests.kube.variants import variant_id, variants

Obj = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
VARIANTS = pytest.mark.parametrize("opts", variants(), ids=variant_id)


def _kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


def _all_pods(docs: list[Obj]) -> dict[str, tuple[Obj, dict[str, str]]]:
    return {name: (sts, lbls) for sts in _kind(docs, "StatefulSet") for name, lbls in pods(sts)}


def _required_anti(sts: Obj) -> list[Obj]:
    aff = pod_spec(sts).get("affinity", {}).get("podAntiAffinity", {})
    terms: list[Obj] = aff.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    return terms


def _repels(incoming: tuple[Obj, dict[str, str]], existing: dict[str, str], key: str) -> bool:
    """Whether the incoming pod may not share a ``key`` domain with an existing pod (its own
    required terms, or the existing pod's, which the scheduler also honours)."""
    sts, lbls = incoming
    return any(
        t["topologyKey"] == key and matches(term_selector(t, lbls), existing)
        for t in _required_anti(sts)
    )


# -- placement -------------------------------------------------------------------------------


@pytest.mark.parametrize("zone_spread", [False, True])
def test_aligned_anti_affinity_keeps_one_shard_apart(zone_spread: bool) -> None:
    topo = Topology("replicated-sharded", shards=4, replicas=3)
    docs = render(RenderOptions(topology=topo, zone_spread=zone_spread)).documents()
    key = ZONE if zone_spread else HOSTNAME
    all_pods = _all_pods(docs)
    assert len(all_pods) == 12
    for (a, pa), (b, pb) in itertools.permutations(all_pods.items(), 2):
        same_shard = a.rsplit("-", 1)[1] == b.rsplit("-", 1)[1]
        same_replica = a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0]
        # Two copies of one shard: never in one domain; anything else may share one.
        assert _repels(pa, pb[1], key) == (same_shard and not same_replica), (a, b)
        assert not _repels(pa, pb[1], ZONE if key == HOSTNAME else HOSTNAME)


def test_aligned_rule_degrades_to_stricter_without_match_label_keys() -> None:
    # Where the API server drops matchLabelKeys (1.29/1.30 without the feature gate), the
    # rule must still keep the copies of a shard apart (it then keeps replicas apart).
    docs = render(RenderOptions(topology=Topology("replicated-sharded"))).documents()
    all_pods = _all_pods(docs)
    for (a, (sts, la)), (b, (_, lb)) in itertools.permutations(all_pods.items(), 2):
        terms = [{k: v for k, v in t.items() if k != "matchLabelKeys"} for t in _required_anti(sts)]
        repels = any(matches(term_selector(t, la), lb) for t in terms)
        if a.rsplit("-", 1)[1] == b.rsplit("-", 1)[1] and a[:11] != b[:11]:
            assert repels, (a, b)


def test_independent_placement_has_no_cross_replica_rule() -> None:
    topo = Topology("replicated-sharded", placement="independent")
    docs = render(RenderOptions(topology=topo)).documents()
    for sts in _kind(docs, "StatefulSet"):
        assert _required_anti(sts) == []
        spread = pod_spec(sts)["topologySpreadConstraints"]
        assert spread[0]["topologyKey"] == HOSTNAME
        assert matches(spread[0]["labelSelector"], sts["spec"]["template"]["metadata"]["labels"])
    cfg = parse_config(_proxy_config(docs))
    assert {p.seed for p in cfg.pools.values()} == {"replica_0", "replica_1"}


def test_reference_statefulset_at_most_one_pod_per_node() -> None:
    docs = render(RenderOptions(topology=Topology("sharded"))).documents()
    (sts,) = _kind(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    container = pod_spec(sts)["containers"][0]
    assert container["resources"]["requests"]["memory"] == "300Mi"
    assert container["resources"]["limits"]["memory"] == "400Mi"
    assert "--memory" in container["args"]
    assert container["args"][container["args"].index("--memory") + 1] == "256"
    all_pods = _all_pods(docs)
    for pa, pb in itertools.permutations(all_pods.values(), 2):
        assert _repels(pa, pb[1], HOSTNAME)


@pytest.mark.parametrize(
    "opts",
    [o for o in variants() if o.topology.name == "replicated-sharded"],
    ids=variant_id,
)
def test_every_replica_spreads_over_nodes(opts: RenderOptions) -> None:
    for sts in _kind(render(opts).documents(), "StatefulSet"):
        (host,) = [
            c for c in pod_spec(sts)["topologySpreadConstraints"] if c["topologyKey"] == HOSTNAME
        ]
        hard = "ScheduleAnyway" if opts.dev else "DoNotSchedule"
        assert host["maxSkew"] == 1 and host["whenUnsatisfiable"] == hard


# -- sizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cache_mb", [16, 64, 256, 1000, 4096, 65536])
def test_sizing_rule(cache_mb: int) -> None:
    mem = cache_memory(cache_mb)
    assert mem.limit_mi > mem.request_mi > cache_mb
    assert mem.request_mi >= cache_mb * 1.05 + 28
    assert mem.limit_mi - mem.request_mi >= max(100, cache_mb / 4)
    assert volume_size_mi(cache_mb) >= cache_mb * 1.02 + 16
    # ext4 keeps 5% for root and its metadata takes a few % more: memcache must still be able
    # to allocate the whole file and the state file.
    assert claim_size_mi(cache_mb) * 0.92 >= cache_mb + 2


def test_reference_sizing() -> None:
    assert (cache_memory(256).request, cache_memory(256).limit) == ("300Mi", "400Mi")


@VARIANTS
def test_memory_limit_exceeds_request_exceeds_cache(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    checked = 0
    for w in _kind(docs, "StatefulSet") + _kind(docs, "Deployment") + _kind(docs, "DaemonSet"):
        for c in all_containers(w):
            res = c["resources"]
            request = mebibytes(res["requests"]["memory"])
            limit = mebibytes(res["limits"]["memory"])
            assert limit > request, c["name"]
            if c["name"] in ("memcached", "local-cache"):
                cache_mb = opts.memory_mb if c["name"] == "memcached" else opts.local_memory_mb
                assert request > cache_mb
                checked += 1
    assert checked >= 1


# -- membership ------------------------------------------------------------------------------


def _proxy_config(docs: list[Obj]) -> Obj:
    (cm,) = _kind(docs, "ConfigMap")
    data: Obj = yaml.safe_load(cm["data"]["proxy.yaml"])
    return data


@VARIANTS
def test_configmap_names_exactly_the_statefulset_pods(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    cfg = parse_config(_proxy_config(docs), "proxy.yaml")
    backends = [b for pool in cfg.pools.values() for b in pool.backends]
    ns = opts.namespace
    expected = set()
    for sts in _kind(docs, "StatefulSet"):
        svc = sts["spec"]["serviceName"]
        (service,) = [s for s in _kind(docs, "Service") if s["metadata"]["name"] == svc]
        assert service["spec"]["clusterIP"] == "None"
        assert matches(
            {"matchLabels": service["spec"]["selector"]},
            sts["spec"]["template"]["metadata"]["labels"],
        )
        for name, _ in pods(sts):
            expected.add(f"{name}.{svc}.{ns}.svc.cluster.local:11211")
    cluster = [b for b in backends if not b.startswith("127.0.0.1:")]
    assert len(cluster) == len(set(cluster))
    assert set(cluster) == expected
    local = [b for b in backends if b.startswith("127.0.0.1:")]
    if opts.topology.name == "local-failover":
        assert local == ["127.0.0.1:11212"]
        assert cfg.local_zone == "local"
        workload = (_kind(docs, "DaemonSet") + _kind(docs, "Deployment"))[0]
        (lc,) = [c for c in all_containers(workload) if c["name"] == "local-cache"]
        assert lc["args"][lc["args"].index("--port") + 1] == "11212"
        assert lc["args"][lc["args"].index("--memory") + 1] == "64"
        (proxy,) = [c for c in all_containers(workload) if c["name"] == "proxy"]
        assert {"name": "MEMFLEET_ZONE", "value": "local"} in proxy["env"]
    else:
        assert local == []


def test_scale_out_adds_one_shard_and_moves_few_keys() -> None:
    def backends(shards: int) -> list[str]:
        docs = render(RenderOptions(topology=Topology("sharded", shards=shards))).documents()
        return list(parse_config(_proxy_config(docs)).pools["main"].backends)

    old, new = backends(3), backends(4)
    assert new[:3] == old and new[3].startswith("memcached-3.memcached-headless.")
    keys = [f"key:{i}".encode() for i in range(4000)]
    moved = [k for k in keys if jump_hash(key_hash(k), 3) != jump_hash(key_hash(k), 4)]
    # Jump hash moves ~1/(N+1) of the keys, all of them to the new shard.
    assert 0.2 < len(moved) / len(keys) < 0.3
    assert all(jump_hash(key_hash(k), 4) == 3 for k in moved)


# -- proxy -----------------------------------------------------------------------------------


@VARIANTS
def test_proxy_mounts_the_config_directory(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    (workload,) = _kind(docs, "DaemonSet") + _kind(docs, "Deployment")
    (proxy,) = [c for c in all_containers(workload) if c["name"] == "proxy"]
    assert proxy["args"][:3] == ["proxy", "--config", "/etc/memfleet/proxy.yaml"]
    (mount,) = [m for m in proxy["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == "/etc/memfleet" and "subPath" not in mount
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == _kind(docs, "ConfigMap")[0]["metadata"]["name"]
    for w in [*_kind(docs, "StatefulSet"), workload]:
        for c in all_containers(w):
            assert all("subPath" not in m for m in c.get("volumeMounts", []))
    if opts.proxy_mode == "sidecar":
        assert proxy["restartPolicy"] == "Always"
        assert proxy in pod_spec(workload)["initContainers"]
        assert proxy["args"][-1] == "127.0.0.1:11211"
    else:
        assert workload["kind"] == "DaemonSet"
        assert proxy["args"][-1] == "0.0.0.0:11211"
        (svc,) = [s for s in _kind(docs, "Service") if s["metadata"]["name"] == "memfleet-proxy"]
        assert svc["spec"]["type"] == opts.service_type
        assert svc["spec"]["internalTrafficPolicy"] == "Local"
        assert svc["spec"]["ports"][0]["port"] == 11211
        assert matches(
            {"matchLabels": svc["spec"]["selector"]},
            workload["spec"]["template"]["metadata"]["labels"],
        )


# -- persistence -----------------------------------------------------------------------------


@VARIANTS
def test_persistence(opts: RenderOptions) -> None:
    for sts in _kind(render(opts).documents(), "StatefulSet"):
        spec = pod_spec(sts)
        (node,) = spec["containers"]
        args = node["args"]
        startup = node["startupProbe"]
        startup_s = startup["periodSeconds"] * startup["failureThreshold"]
        assert "livenessProbe" in node and "readinessProbe" in node
        volumes = {v["name"]: v for v in spec["volumes"]}
        if opts.persistence == "none":
            assert "volumeClaimTemplates" not in sts["spec"]
            assert "initContainers" not in spec and "data" not in volumes
            assert "--memory-file" not in args
            continue
        assert args[args.index("--memory-file") + 1] == "/data/memory-file"
        # Root prepares a PMEM-CSI inline volume and sizes the cache from it; everywhere else
        # the node is told its size (a provisioner may round a claim up).
        if opts.root_init:
            assert "--size-from-volume" in args and "--memory" not in args
        else:
            assert args[args.index("--memory") + 1] == str(opts.memory_mb)
            assert "--size-from-volume" not in args
        if opts.root_init:
            (prep,) = spec["initContainers"]
            assert prep["args"][:2] == ["node", "prepare"]
            assert prep["args"][prep["args"].index("--owner") + 1] == "memcache"
            assert prep["args"][-1] == "--not-restartable"
        else:
            assert "initContainers" not in spec
        if opts.persistence == "restartable":
            assert "--restartable" in args and "data" not in volumes
            assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
                "whenDeleted": "Delete",
                "whenScaled": "Delete",
            }
            (claim,) = sts["spec"]["volumeClaimTemplates"]
            assert claim["metadata"]["name"] == "data"
            storage = claim["spec"]["resources"]["requests"]["storage"]
            assert storage == f"{claim_size_mi(opts.memory_mb)}Mi"
            if opts.pmem:
                assert claim["spec"]["storageClassName"] == "pmem-csi-sc-ext4"
            else:
                # The cluster's default class: the field is absent, never "".
                assert "storageClassName" not in claim["spec"]
            stop = int(args[args.index("--stop-timeout") + 1])
            # The kubelet waits longer than the supervisor's own stop timeout.
            assert spec["terminationGracePeriodSeconds"] > stop >= 60
            # A warm restart of a large cache takes a while: the kubelet must not kill it.
            assert startup_s >= 1800
            continue
        assert "persistentVolumeClaimRetentionPolicy" not in sts["spec"]
        assert "--restartable" not in args
        vol = volumes["data"]
        size = f"{volume_size_mi(opts.memory_mb)}Mi"
        if opts.pmem:
            assert vol["csi"] == {
                "driver": "pmem-csi.intel.com",
                "volumeAttributes": {"size": size},
            }
        else:
            assert vol["emptyDir"] == {"medium": "Memory", "sizeLimit": size}
            # tmpfs pages count against the pod's memory: the limit holds the whole volume
            # plus the processes around it.
            limit = mebibytes(node["resources"]["limits"]["memory"])
            assert limit >= mebibytes(size) + PROCESS_OVERHEAD_MI


def test_csi_driver_storage_class_and_volume_size_are_configurable() -> None:
    opts = RenderOptions(
        topology=Topology("sharded"),
        persistence="memory-file",
        pmem=True,
        csi_driver="example.csi.k8s.io",
        volume_size_mi=2048,
    )
    (sts,) = render(opts).statefulsets()
    (vol,) = [v for v in pod_spec(sts)["volumes"] if v["name"] == "data"]
    assert vol["csi"] == {"driver": "example.csi.k8s.io", "volumeAttributes": {"size": "2048Mi"}}
    opts = RenderOptions(topology=Topology("gutter"), persistence="restartable")
    for sts in render(opts).statefulsets():
        assert "storageClassName" not in sts["spec"]["volumeClaimTemplates"][0]["spec"]
    for pmem in (False, True):
        opts = RenderOptions(
            topology=Topology("gutter"), persistence="restartable", storage_class="fast", pmem=pmem
        )
        for sts in render(opts).statefulsets():
            assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    opts = RenderOptions(
        topology=Topology("sharded"), persistence="memory-file", volume_size_mi=512
    )
    (sts,) = render(opts).statefulsets()
    (vol,) = [v for v in pod_spec(sts)["volumes"] if v["name"] == "data"]
    assert vol["emptyDir"]["sizeLimit"] == "512Mi"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"csi_driver": "x.csi.io", "persistence": "memory-file"},  # no --pmem
        {"pmem": True},  # nothing to keep
        {"storage_class": "fast", "persistence": "memory-file"},
        {"persistence": "memory-file", "volume_size_mi": 100},  # smaller than the file
    ],
)
def test_storage_options_that_mean_nothing_are_refused(kwargs: Obj) -> None:
    with pytest.raises(ValueError):
        RenderOptions(topology=Topology("sharded"), **kwargs)


# -- policy and security ---------------------------------------------------------------------


@VARIANTS
def test_every_cache_pod_has_exactly_one_budget(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    pdbs = _kind(docs, "PodDisruptionBudget")
    if opts.dev:
        # On one node any budget blocks a drain once the first evicted pod cannot return.
        assert pdbs == []
        return
    for name, (_, lbls) in _all_pods(docs).items():
        budgets = [p for p in pdbs if matches(p["spec"]["selector"], lbls)]
        assert len(budgets) == 1, name
        assert budgets[0]["spec"]["maxUnavailable"] == 1
    if opts.topology.name == "replicated-sharded":
        # A drain never takes both copies of a shard: one budget spans a shard's replicas.
        for pdb in pdbs:
            shard = pdb["metadata"]["name"].rsplit("-", 1)[1]
            covered = [
                n for n, (_, lb) in _all_pods(docs).items() if matches(pdb["spec"]["selector"], lb)
            ]
            assert covered == [f"memcached-{r}-{shard}" for r in range(opts.topology.replicas)]


@VARIANTS
def test_only_proxy_pods_reach_cache_pods(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    (cache_np,) = [
        n for n in _kind(docs, "NetworkPolicy") if n["metadata"]["name"] == "memcached-from-proxies"
    ]
    proxies = [
        w["spec"]["template"]["metadata"]["labels"]
        for w in _kind(docs, "DaemonSet") + _kind(docs, "Deployment")
    ]
    assert proxies
    (rule,) = cache_np["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 11211}]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}  # same namespace, pods only
    for _, (_, lbls) in _all_pods(docs).items():
        assert matches(cache_np["spec"]["podSelector"], lbls)
        assert not matches(peer["podSelector"], lbls)
    for lbls in proxies:
        assert matches(peer["podSelector"], lbls)


@VARIANTS
def test_non_root_security_context(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    for w in _kind(docs, "StatefulSet") + _kind(docs, "DaemonSet") + _kind(docs, "Deployment"):
        spec = pod_spec(w)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 11211
        assert spec["automountServiceAccountToken"] is False
        for c in all_containers(w):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            if c["name"] == "prepare":
                # Only the --pmem memory-file init container is root, to hand the CSI inline
                # volume to memcache.
                assert opts.root_init and sc["runAsUser"] == 0
            else:
                assert sc["runAsNonRoot"] is True and "add" not in sc["capabilities"]
            assert c["image"] == opts.image
    (ns,) = _kind(docs, "Namespace")
    level = ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    assert level == ("baseline" if opts.root_init else "restricted")


def _mib(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2]) * 1024 * 1024


@VARIANTS
def test_proxy_process_budget_fits_its_container(opts: RenderOptions) -> None:
    """limits.max_memory comes from the proxy container's memory limit: under it, with room
    for the process's own baseline (the OOM killer would take the whole proxy)."""
    docs = render(opts).documents()
    cfg = parse_config(_proxy_config(docs), "proxy.yaml")
    containers = [
        c
        for d in docs
        if d["kind"] in ("DaemonSet", "Deployment")
        for c in [*pod_spec(d).get("initContainers", []), *pod_spec(d)["containers"]]
        if c["name"] == "proxy"
    ]
    assert containers
    for c in containers:
        limit = _mib(c["resources"]["limits"]["memory"])
        assert 0 < cfg.limits.max_memory <= limit - 64 * 1024 * 1024
    assert cfg.limits.max_memory < LimitsConfig().max_memory  # derived, not the default
