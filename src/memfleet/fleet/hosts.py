"""Simulated hosts for ``memfleet up --hosts K``: network namespaces as failure units.

Layout (everything lives in namespaces this module creates; the root namespace gets no new
interface, address or route, so no traffic can leave the machine):

- ``<id>-sw``: a "switch" namespace holding a bridge;
- ``<id>-h<i>``: one namespace per host, ``eth0`` = 10.213.0.(10+i)/24, veth'd to the bridge;
- ``<id>-px``: the proxy's namespace, 10.213.0.2/24.

Clients on this machine reach the proxy through a small relay in ``memfleet up``: a thread
whose listening socket was made in the root namespace (127.0.0.1:PORT) and which then joins
the proxy's namespace (``setns`` is per thread), so its outgoing connections are made there.

A host is killed (every process in its namespace gets SIGKILL), cut (its link goes down: its
nodes hang, like a partition) or healed (link up; nodes of a killed host are restarted by
``up`` on SIGUSR2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memfleet.topology.presets import NodeSpec, Topology

SUBNET = "10.213.0"  # a private /24 that exists only inside our namespaces
PROXY_ADDRESS = f"{SUBNET}.2"
_CLONE_NEWNET = 0x40000000


class HostsError(Exception):
    """The namespaces could not be set up; ``str()`` is the one-line message."""


def hosts_unavailable() -> str | None:
    """Why ``--hosts`` cannot work here, or None."""
    if not sys.platform.startswith("linux"):
        return "simulated hosts need Linux network namespaces"
    if os.geteuid() != 0:
        return "simulated hosts need root (network namespaces)"
    if not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists():
        return "simulated hosts need iproute2 (`ip`): apt-get install -y iproute2"
    return None


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {r.stderr.strip()}")


@dataclass
class Host:
    """One simulated host."""

    name: str  # host-<i>, the failure_host of its nodes
    netns: str
    address: str
    switch_port: str  # its veth end on the bridge, in the switch namespace


class HostNetwork:
    """The namespaces, the bridge and the relay of one ``memfleet up --hosts K``."""

    def __init__(self, prefix: str, hosts: list[Host]) -> None:
        self.prefix = prefix
        self.switch = f"{prefix}-sw"
        self.proxy_ns_name = f"{prefix}-px"
        self.proxy_address = PROXY_ADDRESS
        self.hosts = hosts
        self.created: list[str] = []
        self._relay: _Relay | None = None

    @classmethod
    def create(cls, count: int, _workdir: Path) -> HostNetwork:
        """Create the switch, K hosts and the proxy namespace; HostsError on failure."""
        prefix = f"mf{os.getpid()}"
        hosts = [
            Host(f"host-{i}", f"{prefix}-h{i}", f"{SUBNET}.{10 + i}", f"h{i}") for i in range(count)
        ]
        net = cls(prefix, hosts)
        try:
            net._build()
        except Exception:
            net.destroy()
            raise
        return net

    def _build(self) -> None:
        _ip("netns", "add", self.switch)
        self.created.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        _ip("-n", self.switch, "link", "set", "lo", "up")
        ends = [(h.netns, h.switch_port, h.address) for h in self.hosts]
        ends.append((self.proxy_ns_name, "px", PROXY_ADDRESS))
        for netns, port, address in ends:
            _ip("netns", "add", netns)
            self.created.append(netns)
            # Both ends are created directly inside their namespaces: no interface ever
            # appears in the root namespace.
            _ip("link", "add", "name", port, "netns", self.switch, "type", "veth",
                "peer", "name", "eth0", "netns", netns)  # fmt: skip
            _ip("-n", self.switch, "link", "set", port, "master", "br0")
            _ip("-n", self.switch, "link", "set", port, "up")
            _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")

    def place(self, spec: NodeSpec, index: int, topo: Topology | None) -> Host:
        """The host of a node. Aligned replicas of one shard go to different hosts (shard s,
        replica r on host (s + r) mod K, which keeps them apart whenever K >= replicas);
        everything else is spread round-robin, as a scheduler without anti-affinity would."""
        k = len(self.hosts)
        aligned = topo is not None and topo.placement == "aligned"
        if aligned and topo is not None and topo.name in ("replicated", "replicated-sharded"):
            return self.hosts[(spec.shard + spec.replica) % k]
        return self.hosts[index % k]

    def netns_of(self, host_name: str) -> str:
        """The namespace of host ``host-<i>``."""
        return next(h.netns for h in self.hosts if h.name == host_name)

    def exec_prefix(self, netns: str) -> list[str]:
        """The argv prefix that runs a command inside a host's (or the proxy's) namespace."""
        return ["ip", "netns", "exec", netns]

    def state(self) -> dict[str, Any]:
        """For the state file: what ``memfleet fault`` needs."""
        return {
            "switch": self.switch,
            "proxy_netns": self.proxy_ns_name,
            "hosts": {
                h.name: {"netns": h.netns, "address": h.address, "switch_port": h.switch_port}
                for h in self.hosts
            },
        }

    def start_relay(self, host: str, port: int, inner_port: int) -> None:
        """Serve the proxy (in its namespace) on ``host:port`` of this machine."""
        self._relay = _Relay(host, port, self.proxy_ns_name, PROXY_ADDRESS, inner_port)
        self._relay.start()

    def stop_relay(self) -> None:
        """Stop accepting and relaying."""
        if self._relay is not None:
            self._relay.stop()
            self._relay = None

    def destroy(self) -> None:
        """Kill whatever still runs in the namespaces and delete them."""
        for netns in reversed(self.created):
            kill_netns(netns)
            with contextlib.suppress(HostsError):
                _ip("netns", "del", netns)
        self.created.clear()


def netns_pids(netns: str) -> list[int]:
    """Processes running in a namespace."""
    r = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def kill_netns(netns: str) -> int:
    """SIGKILL every process in a namespace; how many there were."""
    pids = netns_pids(netns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class _Relay(threading.Thread):
    """127.0.0.1:PORT (root namespace) → proxy address (proxy namespace), byte for byte."""

    def __init__(self, host: str, port: int, netns: str, target: str, target_port: int) -> None:
        super().__init__(name="memfleet-relay", daemon=True)
        # Made here, in the caller's (root) namespace, before the thread switches.
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.setblocking(False)
        self.netns = netns
        self.target = (target, target_port)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            fd = os.open(f"/var/run/netns/{self.netns}", os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
        except OSError as exc:
            self.error = str(exc)
            self.ready.set()
            return
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._client, sock=self.listener)
        self.stopping = asyncio.Event()
        self.ready.set()
        async with server:
            await self.stopping.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def start(self) -> None:
        """Start the thread and wait until it accepts (HostsError if it cannot)."""
        super().start()
        self.ready.wait(10)
        if self.error is not None:
            raise HostsError(f"relay into {self.netns}: {self.error}")

    def stop(self) -> None:
        """Stop accepting; open relayed connections end with the thread."""
        if self.loop is not None and hasattr(self, "stopping"):
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.join(5)
        self.listener.close()


# --- memfleet fault ----------------------------------------------------------------------------


def fault(state: dict[str, Any], action: str, name: str) -> str:
    """Apply ``kill-host``, ``cut-host`` or ``heal-host`` to a host of a running fleet."""
    hosts = (state.get("hosts") or {}).get("hosts") or {}
    if name not in hosts:
        known = ", ".join(hosts) or "none: the fleet runs without --hosts"
        raise HostsError(f"no host {name!r} (hosts: {known})")
    host = hosts[name]
    switch = state["hosts"]["switch"]
    if action == "kill-host":
        n = kill_netns(host["netns"])
        _ip("-n", switch, "link", "set", host["switch_port"], "down")
        return f"{name}: killed {n} processes, link down"
    if action == "cut-host":
        _ip("-n", switch, "link", "set", host["switch_port"], "down")
        return f"{name}: cut off the network (processes keep running)"
    _ip("-n", switch, "link", "set", host["switch_port"], "up")
    up_pid = state.get("up_pid")
    if isinstance(up_pid, int):
        # `memfleet up` restarts nodes that are no longer running (those of a killed host).
        with contextlib.suppress(ProcessLookupError):
            os.kill(up_pid, signal.SIGUSR2)
    return f"{name}: back on the network; nodes of a killed host are restarted"
