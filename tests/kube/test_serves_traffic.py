"""The proxy config of a rendered ConfigMap serves real traffic (issue 5's last acceptance item).

For every topology the test renders the manifests, takes ``proxy.yaml`` out of the
``memfleet-proxy`` ConfigMap and the proxy's arguments and environment out of the rendered
DaemonSet or app Deployment, and runs them for real: in a fresh network, mount and PID
namespace (``unshare``) every backend hostname (a pod's DNS name) gets its own loopback address
through a hosts file bind-mounted over ``/etc/hosts`` in that mount namespace only, one real
memcached listens on each address at the pod port 11211, and pymemcache drives traffic through
the proxy. The test then asks every node directly which keys it holds and checks that against
:class:`memfleet.hashing.Placement`.

The part that runs inside the namespaces is this same file run as a script (``--driver``), so
it is linted and type-checked with the test. It prints one JSON object; the test asserts on it.
Needs root (network namespaces and bind mounts); skipped otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from memfleet.backends.hashing import Placement
from memfleet.config import ProxyConfig, parse_config, parse_hostport
from memfleet.kube import RenderOptions, render
from memfleet.kube.common import CONFIG_FILE, CONFIGMAP_NAME
from memfleet.kube.kustomize import dump_all
from memfleet.topology.presets import TOPOLOGIES, Topology

Obj = dict[str, Any]
MEMCACHED = "/usr/bin/memcached"
UNSHARE = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child"]
# Pod DNS names get 127.0.10.1, 127.0.10.2, ...: all of 127.0.0.0/8 is local on ``lo``, so
# each node has an address of its own without adding interfaces.
HOST_NET = ipaddress.IPv4Address("127.0.10.0")
# No UDP, one thread, the smallest cache: the nodes only need to hold a few hundred keys.
MEMCACHED_ARGS = ("-U", "0", "-t", "1", "-m", "16")
KEYS = 300
DRIVER_TIMEOUT = 30.0

# The pools a written key must land in: the default route of each topology writes to these
# (allsync to every replica; local + cluster for local-failover; only ``main`` while it is
# healthy for gutter). Any other pool holding the key is a routing bug.
WRITE_POOLS: dict[str, tuple[str, ...]] = {
    "sharded": ("main",),
    "replicated": ("replica_0", "replica_1"),
    "local-failover": ("local", "cluster"),
    "replicated-sharded": ("replica_0", "replica_1"),
    "gutter": ("main",),
}


# -- test side (runs in pytest, outside the namespaces) --------------------------------------


def _rendered_documents(topology: str) -> list[Obj]:
    """Every document of the rendered topology, read back from the YAML text ``memfleet
    render`` writes (so the test sees what ``kubectl apply`` would see)."""
    bundle = render(RenderOptions(topology=Topology(topology)))
    return [d for d in yaml.safe_load_all(dump_all(bundle.documents())) if d]


def _proxy_container(docs: list[Obj]) -> Obj:
    """The ``proxy`` container of the DaemonSet or of the app Deployment (a native sidecar)."""
    found: list[Obj] = [
        c
        for d in docs
        if d["kind"] in ("DaemonSet", "Deployment")
        for c in [
            *d["spec"]["template"]["spec"].get("initContainers", []),
            *d["spec"]["template"]["spec"]["containers"],
        ]
        if c["name"] == "proxy"
    ]
    assert len(found) == 1, f"expected one proxy container, found {len(found)}"
    return found[0]


def _proxy_args(container: Obj, config_path: Path) -> tuple[list[str], dict[str, str], str]:
    """The manifest's proxy arguments and environment, adapted to one shared namespace.

    Two substitutions, both forced by running every pod in one network namespace: the config
    path (the ConfigMap's mount point does not exist here) and a wildcard listen address. In
    Kubernetes a DaemonSet proxy binds ``0.0.0.0:11211`` in its own pod's namespace; here a
    wildcard listener cannot coexist with the cache nodes listening on ``127.0.10.x:11211``
    (EADDRINUSE), so it binds 127.0.0.1 on the same port instead.
    """
    assert container["command"] == ["memfleet"]
    args: list[str] = list(container["args"])
    assert args[0] == "proxy" and CONFIG_FILE in args, args
    args[args.index(CONFIG_FILE)] = str(config_path)
    listen_at = args.index("--listen") + 1
    host, port = parse_hostport(args[listen_at])
    if host == "0.0.0.0":
        host = "127.0.0.1"
    args[listen_at] = f"{host}:{port}"
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    return args, env, args[listen_at]


def _value(i: int) -> str:
    """Values of varying length, so a mixed-up reply cannot pass as the right one."""
    return f"value-{i}-" + "x" * (i % 97)


def _spec(topology: str, workdir: Path) -> tuple[Obj, ProxyConfig]:
    """Everything the driver needs, taken from the rendered manifests."""
    docs = _rendered_documents(topology)
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == CONFIGMAP_NAME]
    assert len(maps) == 1
    text = maps[0]["data"]["proxy.yaml"]
    cfg = parse_config(yaml.safe_load(text), "proxy.yaml")
    # Written as the ConfigMap volume would present it: a directory holding proxy.yaml.
    config_dir = workdir / "config"
    config_dir.mkdir()
    config_path = config_dir / "proxy.yaml"
    config_path.write_text(text, encoding="utf-8")
    args, env, listen = _proxy_args(_proxy_container(docs), config_path)

    hosts: dict[str, str] = {}
    nodes: list[Obj] = []
    for pool in cfg.pools.values():
        for backend in pool.backends:
            host, port = parse_hostport(backend)
            try:
                ip = str(ipaddress.ip_address(host))  # local-failover's 127.0.0.1 sidecar
            except ValueError:
                ip = hosts.setdefault(host, str(HOST_NET + len(hosts) + 1))
            nodes.append({"backend": backend, "ip": ip, "port": port})
    keys = [f"kube:{topology}:{i}" for i in range(KEYS)]
    spec: Obj = {
        "hosts": hosts,
        "hosts_file": str(workdir / "hosts"),
        "nodes": nodes,
        "proxy_argv": [sys.executable, "-m", "memfleet", *args],
        "proxy_env": env,
        "proxy_listen": listen,
        "proxy_log": str(workdir / "proxy.log"),
        "items": {k: _value(i) for i, k in enumerate(keys)},
        # Every fourth key is deleted through the proxy and must be gone from every node.
        "delete": keys[::4],
    }
    return spec, cfg


@pytest.fixture(scope="module")
def namespaces_allowed() -> None:
    """Skip unless this process may create network, mount and PID namespaces."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and a bind mount over /etc/hosts")
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("unshare/mount (util-linux) not installed")
    if not Path(MEMCACHED).exists():
        pytest.fail(f"{MEMCACHED} is not installed: apt-get install -y memcached")
    probe = subprocess.run(
        [*UNSHARE, "sh", "-c", "ip link set lo up"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"unshare --net --mount not permitted here: {probe.stderr.strip()}")


@pytest.mark.usefixtures("namespaces_allowed")
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_rendered_config_serves_traffic(topology: str, tmp_path: Path) -> None:
    """The rendered ConfigMap's proxy.yaml, run with the manifest's proxy arguments against one
    memcached per pod DNS name, stores, reads and deletes every key, each on its hashed node."""
    spec, cfg = _spec(topology, tmp_path)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    real_hosts = Path("/etc/hosts").read_bytes()

    done = subprocess.run(
        [*UNSHARE, sys.executable, str(Path(__file__).resolve()), "--driver", str(spec_path)],
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT + 10,
        check=False,
    )
    # The bind mount lived in the private mount namespace only.
    assert Path("/etc/hosts").read_bytes() == real_hosts
    assert done.returncode == 0, f"driver failed:\n{done.stdout}\n{done.stderr}"
    out: Obj = json.loads(done.stdout)
    log = f"proxy log:\n{out['proxy_log']}"

    assert not out["errors"], f"{out['errors'][:5]}\n{log}"
    # Every pod DNS name resolved to its own address inside the namespace.
    assert spec["hosts"], "the rendered config names no pod DNS names"
    assert out["resolved"] == spec["hosts"]

    items: dict[str, str] = spec["items"]
    deleted = set(spec["delete"])
    live = [k for k in items if k not in deleted]
    # Through the proxy: every set stored, every get and get_many returned the value set.
    assert out["stored"] == len(items), log
    assert out["got"] == {k: items[k] for k in items}, log
    assert out["got_many"] == {k: items[k] for k in items}, log
    assert out["deleted"] == len(deleted), log
    assert out["after_delete"] == {k: items[k] for k in live}, log

    # On the nodes themselves: each live key sits exactly where Placement says, in every pool
    # the topology writes to, and nowhere else; deleted keys are on no node.
    expected: dict[str, set[str]] = {}
    for key in live:
        where = set()
        for name in WRITE_POOLS[topology]:
            pool = cfg.pools[name]
            where.add(pool.backends[Placement(len(pool.backends), pool.seed).index(key.encode())])
        expected[key] = where
    holders = {k: set(v) for k, v in out["holders"].items()}
    wrong = {
        k: (sorted(holders.get(k, ())), sorted(w))
        for k, w in expected.items()
        if holders.get(k, set()) != w
    }
    assert not wrong, (
        f"{len(wrong)} keys misplaced (held by, expected), e.g. {list(wrong.items())[:3]}"
    )
    assert set(holders) == set(live), sorted(set(holders) - set(live))[:5]
    # Every node of a written pool took a share: the hosts mapping did not fold pods together.
    used = {b for bs in holders.values() for b in bs}
    for name in WRITE_POOLS[topology]:
        assert set(cfg.pools[name].backends) <= used, (name, sorted(used))


# -- driver side (runs inside the namespaces, as ``python THIS_FILE --driver SPEC``) ---------


def _wait_port(ip: str, port: int, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts on ip:port, up to the deadline; fail at once if the
    process that should listen there has exited (no point waiting out the deadline)."""
    while True:
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {ip}:{port}") from None
            time.sleep(0.02)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every started process, killing any that does not exit within 3 s."""
    for p in procs:
        with contextlib.suppress(OSError):
            p.terminate()
    for p in procs:
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(3)


@contextlib.contextmanager
def _started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put started processes in; all of them are stopped on the way out, errors
    included (the PID namespace kills any straggler when the driver exits)."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        _stop(procs)


def _chunks(keys: list[str], n: int = 50) -> Iterator[list[str]]:
    """Keys in batches, so one multi-get stays a modest request."""
    for i in range(0, len(keys), n):
        yield keys[i : i + n]


def _drive(spec: Obj, out: Obj) -> None:
    """Set up the namespace, start nodes and proxy, drive traffic, record what happened."""
    from pymemcache.client.base import Client  # type: ignore[import-untyped]

    deadline = time.monotonic() + DRIVER_TIMEOUT
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    hosts_file = Path(spec["hosts_file"])
    lines = ["127.0.0.1 localhost"] + [f"{ip} {host}" for host, ip in spec["hosts"].items()]
    hosts_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # ``unshare --mount`` made every mount private, so this is invisible outside.
    subprocess.run(["mount", "--bind", str(hosts_file), "/etc/hosts"], check=True, timeout=10)
    out["resolved"] = {h: socket.gethostbyname(h) for h in spec["hosts"]}

    root = ["-u", "root"] if os.geteuid() == 0 else []
    with _started() as procs:
        for node in spec["nodes"]:
            procs.append(
                subprocess.Popen(
                    [MEMCACHED, "-l", node["ip"], "-p", str(node["port"]), *MEMCACHED_ARGS, *root],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for node, proc in zip(spec["nodes"], procs, strict=True):
            _wait_port(node["ip"], node["port"], deadline, proc)

        log = Path(spec["proxy_log"])
        with log.open("wb") as log_f:
            procs.append(
                subprocess.Popen(
                    spec["proxy_argv"],
                    env={**os.environ, **spec["proxy_env"]},
                    stdout=log_f,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            _traffic(spec, out, deadline, Client, procs[-1])
        finally:
            out["proxy_log"] = log.read_text(errors="replace")[-4000:]


def _traffic(
    spec: Obj, out: Obj, deadline: float, client_cls: Any, proxy_proc: subprocess.Popen[bytes]
) -> None:
    """Traffic through the proxy, then a look at every node directly."""
    host, port = parse_hostport(spec["proxy_listen"])
    _wait_port(host, port, deadline, proxy_proc)

    def client(h: str, p: int) -> Any:
        # noreply off: a set must report whether it was stored.
        return client_cls((h, p), connect_timeout=2, timeout=5, default_noreply=False)

    proxy = client(host, port)
    # The proxy accepts before its backends are known healthy: retry one write, bounded.
    while True:
        try:
            if proxy.set("kube:ready", "1"):
                break
        except Exception as exc:  # a backend error reply raises; keep trying until deadline
            out["errors"].append(f"ready: {exc!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the proxy never stored a key")
        time.sleep(0.05)
    out["errors"].clear()
    proxy.delete("kube:ready")

    items: dict[str, str] = spec["items"]
    keys = list(items)
    out["stored"] = sum(1 for k, v in items.items() if proxy.set(k, v) is True)
    out["got"] = {k: v.decode() for k in keys if (v := proxy.get(k)) is not None}
    out["got_many"] = {}
    for chunk in _chunks(keys):
        out["got_many"].update({k: v.decode() for k, v in proxy.get_many(chunk).items()})
    out["deleted"] = sum(1 for k in spec["delete"] if proxy.delete(k) is True)
    out["after_delete"] = {}
    for chunk in _chunks(keys):
        out["after_delete"].update({k: v.decode() for k, v in proxy.get_many(chunk).items()})
    proxy.close()

    holders: dict[str, list[str]] = {}
    for node in spec["nodes"]:
        direct = client(node["ip"], node["port"])
        for chunk in _chunks(keys):
            for k in direct.get_many(chunk):
                holders.setdefault(k, []).append(node["backend"])
        direct.close()
    out["holders"] = holders


def _driver_main(spec_path: str) -> int:
    """Run the driver; always print a JSON result (errors included) and exit 0 unless the
    result could not be produced at all."""
    spec: Obj = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    out: Obj = {"errors": [], "proxy_log": ""}
    try:
        _drive(spec, out)
    except Exception as exc:
        out["errors"].append(f"driver: {exc!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--driver":
        sys.exit(_driver_main(sys.argv[2]))
    sys.exit(f"usage: {sys.argv[0]} --driver SPEC.json")
