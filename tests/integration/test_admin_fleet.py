"""Admin commands over the fleet, against real nodes: the proxy over three memcached nodes
answers ``stats``, ``stats slabs``, ``stats items``, ``stats settings`` and ``stats sizes`` as
one memcached holding the whole fleet would, each field by its README rule, checked against
what the nodes themselves say; ``memcached-tool`` (Debian's memcached package) works against
it; one node can be asked by name; binary ``Stat`` groups are translated as memcached does.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration

TOOL_PATHS = ("/usr/share/memcached/scripts/memcached-tool",)
# Summed per class by the README's rules (the fields that do not move while nobody writes).
SLAB_SUMS = ("total_pages", "total_chunks", "used_chunks", "free_chunks", "cmd_set", "get_hits")
ITEM_SUMS = ("number", "mem_requested", "evicted", "outofmemory")
GENERAL_SUMS = ("curr_items", "total_items", "bytes", "limit_maxbytes", "evictions")


def memcached_tool() -> str | None:
    found = shutil.which("memcached-tool")
    if found:
        return found
    return next((p for p in TOOL_PATHS if Path(p).exists()), None)


def stat_map(reply: bytes) -> dict[str, str]:
    out = {}
    for line in reply.decode().split("\r\n"):
        if line.startswith("STAT "):
            _, name, value = (line + " ").split(" ", 2)
            out[name] = value.strip()
    return out


class Fleet:
    """Three nodes holding items of many sizes, a proxy over them, a connection to each."""

    def __init__(self, nodes: list[Memcached], proxy: ProxyProcess) -> None:
        self.nodes, self.proxy = nodes, proxy
        self.conn = Conn(proxy.port)
        self.direct = [Conn(n.port) for n in nodes]
        sizes = (5, 90, 400, 1500, 6000, 30000)
        data = b"".join(
            b"set item%d 0 0 %d\r\n%s\r\n" % (i, sizes[i % 6], b"v" * sizes[i % 6])
            for i in range(120)
        )
        assert self.conn.request(data).count(b"STORED\r\n") == 120
        self.conn.request(b"get " + b" ".join(b"item%d" % i for i in range(0, 120, 3)) + b"\r\n")

    def ask(self, line: bytes) -> bytes:
        return self.conn.request(line + b"\r\n", timeout=10)

    def each(self, line: bytes) -> list[dict[str, str]]:
        return [stat_map(c.request(line + b"\r\n")) for c in self.direct]

    def close(self) -> None:
        self.conn.close()
        for c in self.direct:
            c.close()


@pytest.fixture
def fleet(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> Iterator[Fleet]:
    nodes = [memcached_factory() for _ in range(3)]
    f = Fleet(nodes, proxy_factory(pool_config(*(n.address for n in nodes))))
    yield f
    f.close()


def classes(stats: dict[str, str], prefix: str = "") -> set[int]:
    return {int(k[len(prefix) :].split(":")[0]) for k in stats if re.match(prefix + r"\d+:", k)}


def test_slabs_and_items_are_the_sum_over_the_nodes(fleet: Fleet) -> None:
    merged = stat_map(fleet.ask(b"stats slabs"))
    nodes = fleet.each(b"stats slabs")
    used = set().union(*(classes(n) for n in nodes))
    assert len(used) >= 5 and classes(merged) == used
    for c in used:
        having = [n for n in nodes if f"{c}:chunk_size" in n]
        assert merged[f"{c}:chunk_size"] in {n[f"{c}:chunk_size"] for n in having}
        assert merged[f"{c}:chunks_per_page"] == having[0][f"{c}:chunks_per_page"]
        for field in SLAB_SUMS:
            want = sum(int(n[f"{c}:{field}"]) for n in having)
            assert int(merged[f"{c}:{field}"]) == want, (c, field)
    assert int(merged["active_slabs"]) == len(used)
    assert int(merged["total_malloced"]) == sum(int(n["total_malloced"]) for n in nodes)

    merged = stat_map(fleet.ask(b"stats items"))
    nodes = fleet.each(b"stats items")
    for c in classes(merged, "items:"):
        having = [n for n in nodes if f"items:{c}:number" in n]
        for field in ITEM_SUMS:
            want = sum(int(n[f"items:{c}:{field}"]) for n in having)
            assert int(merged[f"items:{c}:{field}"]) == want, (c, field)
        assert int(merged[f"items:{c}:age"]) >= max(int(n[f"items:{c}:age"]) for n in having)


def test_stats_adds_fleet_totals_to_the_proxys_counters(fleet: Fleet) -> None:
    reply = fleet.ask(b"stats")
    names = [line.split(b" ")[1] for line in reply.split(b"\r\n") if line.startswith(b"STAT ")]
    assert len(names) == len(set(names)), "a stat named twice"
    merged = stat_map(reply)
    nodes = fleet.each(b"stats")
    for field in GENERAL_SUMS:
        assert int(merged[field]) == sum(int(n[field]) for n in nodes), field
    # The proxy's own counters keep memcached's names; the nodes' sums of them are fleet_*.
    assert merged["version"].startswith("memfleet-") and merged["cmd_set"] == "120"
    assert int(merged["fleet_cmd_set"]) == sum(int(n["cmd_set"]) for n in nodes) == 120
    assert int(merged["fleet_get_hits"]) == sum(int(n["get_hits"]) for n in nodes) == 40
    assert merged["fleet_nodes"] == "3" and merged["fleet_nodes_failed"] == "0"

    settings = stat_map(fleet.ask(b"stats settings"))
    node_settings = fleet.each(b"stats settings")
    assert int(settings["maxbytes"]) == sum(int(n["maxbytes"]) for n in node_settings)
    assert settings["tcpport"] == str(fleet.proxy.port) and settings["maxconns"] == "4096"
    assert settings["item_size_max"] == "1048576"
    assert settings["num_threads"] == "1"  # the proxy's processes, not a node's threads
    assert settings["growth_factor"] == node_settings[0]["growth_factor"]


def test_one_node_by_name(fleet: Fleet) -> None:
    node, direct = fleet.nodes[1], fleet.direct[1]
    assert fleet.ask(b"stats @%s slabs" % node.address.encode()) == direct.request(
        b"stats slabs\r\n"
    )
    own = stat_map(fleet.ask(b"stats @%s" % node.address.encode()))
    assert own["pid"] == str(node.proc.pid if node.proc else 0)
    assert fleet.ask(b"stats @127.0.0.1:1 slabs") == b"CLIENT_ERROR no such node: 127.0.0.1:1\r\n"


def test_a_node_down(fleet: Fleet) -> None:
    fleet.nodes[2].kill()
    merged = stat_map(fleet.ask(b"stats"))
    assert merged["fleet_nodes"] == "3" and merged["fleet_nodes_failed"] == "1"
    assert stat_map(fleet.ask(b"stats slabs"))  # the others still answer
    assert fleet.ask(b"verbosity 1") == b"SERVER_ERROR backend failure\r\n"
    # Binary Verbosity says so too (a temporary failure), not success.
    c = Conn(fleet.proxy.port)
    c.send(HEADER.pack(0x80, 0x1B, 0, 4, 0, 0, 4, 9, 0) + struct.pack(">I", 1))
    head = _packet(c)
    c.close()
    assert HEADER.unpack_from(head)[5] == 0x86  # ETMPFAIL


def test_memcached_tool_against_the_fleet(fleet: Fleet) -> None:
    tool = memcached_tool()
    if tool is None or shutil.which("perl") is None:
        pytest.skip("memcached-tool (Debian's memcached package) or perl is not installed")
    addr = f"127.0.0.1:{fleet.proxy.port}"

    def run(mode: str) -> str:
        done = subprocess.run(
            ["perl", tool, addr, mode], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, (mode, done.stderr)
        return done.stdout

    slabs = fleet.each(b"stats slabs")
    items = fleet.each(b"stats items")
    rows = re.findall(
        r"^\s*(\d+)\s+(\S+)\s+(\d+)s\s+(\d+)\s+(\d+)\s+(yes|no)\s+(\d+)\s+(\d+)\s+(\d+)$",
        run("display"),
        re.M,
    )
    assert len(rows) >= 5
    for cls, size, _age, pages, count, _full, _ev, _evt, _oom in rows:
        c = int(cls)
        sizes = {int(n[f"{c}:chunk_size"]) for n in slabs if f"{c}:chunk_size" in n}
        shown = {f"{s}B" if s < 1024 else f"{s / 1024.0:.1f}K" for s in sizes}
        assert size in shown, (c, size, sizes)
        assert int(pages) == sum(int(n.get(f"{c}:total_pages", 0)) for n in slabs)
        assert int(count) == sum(int(n.get(f"items:{c}:number", 0)) for n in items)

    stats = run("stats")
    total = sum(int(n["curr_items"]) for n in fleet.each(b"stats"))
    assert re.search(rf"^\s+curr_items\s+{total}$", stats, re.M), stats[:2000]
    settings = run("settings")
    maxbytes = sum(int(n["maxbytes"]) for n in fleet.each(b"stats settings"))
    assert re.search(rf"^\s+maxbytes\s+{maxbytes}$", settings, re.M)
    assert re.search(r"^\s+sizes_status\s+disabled$", run("sizes"), re.M)


# -- binary Stat ------------------------------------------------------------------------------

HEADER = struct.Struct(">BBHBBHIIQ")


def _packet(c: Conn) -> bytes:
    """One whole binary response from ``c``."""
    buf = b""
    c.sock.settimeout(5)
    while len(buf) < 24 or len(buf) < 24 + HEADER.unpack_from(buf)[6]:
        chunk = c.sock.recv(1 << 16)
        assert chunk, f"closed after {buf!r}"
        buf += chunk
    return buf


def binary_stat(port: int, key: bytes) -> list[tuple[int, bytes, bytes]]:
    """(status, key, value) of each response to one binary Stat, up to its end packet or an
    error."""
    c = Conn(port)
    c.send(HEADER.pack(0x80, 0x10, len(key), 0, 0, 0, len(key), 7, 0) + key)
    out: list[tuple[int, bytes, bytes]] = []
    buf = b""
    while True:
        while len(buf) >= 24:
            _m, _op, kl, el, _dt, st, bl, _opq, _cas = HEADER.unpack_from(buf)
            if len(buf) < 24 + bl:
                break
            body = buf[24 : 24 + bl]
            buf = buf[24 + bl :]
            out.append((st, body[el : el + kl], body[el + kl :]))
            if st != 0 or kl == 0:
                c.close()
                return out
        c.sock.settimeout(5)
        chunk = c.sock.recv(1 << 16)
        assert chunk, f"closed after {out}"
        buf += chunk


def test_binary_stat_groups(fleet: Fleet, memcached_factory: Callable[..., Memcached]) -> None:
    direct = memcached_factory()
    port = fleet.proxy.port
    slabs = binary_stat(port, b"slabs")
    assert {k.decode() for _, k, _ in slabs[:-1]} == set(stat_map(fleet.ask(b"stats slabs")))
    for key in (b"detail on", b"cachedump 1 1", b"bogus", b"detail bogus"):
        want = [(st, k) for st, k, _ in binary_stat(direct.port, key)]
        assert [(st, k) for st, k, _ in binary_stat(port, key)] == want, key
    fleet.conn.request(b"get p:1 p:2 q:1\r\n")
    dump = binary_stat(port, b"detail dump")
    assert [k for _, k, _ in dump] == [b"detailed", b""]
    assert b"PREFIX p get 2 hit 0" in dump[0][2] and dump[0][2].endswith(b"END\r\n")
