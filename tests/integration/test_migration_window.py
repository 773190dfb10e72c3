"""Resizing a pool over real memcached nodes, reloaded with SIGHUP: the migration window
(``migration_window``) keeps every key readable through the move, never serves an old value
(not after a write, not after a rollback), turns a vanished old node into plain misses, and
keeps conditional writes as they would be without the move. Each test runs the same steps
with ``migration_window: 0`` where that shows what the window is for."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config, wait_until
from tests.integration.test_binary_differential import ADD, INCR, NOOP, BinConn, incx, pkt, setx

from memfleet.backends.hashing import Placement
from memfleet.config import load_config
from memfleet.config.digest import config_hash
from memfleet.topology.presets import Topology

pytestmark = pytest.mark.integration

FAST = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}
KEYS = 2000
BATCH = 100


def _config(nodes: list[Memcached], window: float) -> dict[str, object]:
    cfg = pool_config(*(n.address for n in nodes), **FAST)
    cfg["migration_window"] = window
    return cfg


def _stat(conn: Conn, name: str, group: bytes = b"stats proxy") -> str:
    for line in conn.request(group + b"\r\n").decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] == name:
            return parts[2]
    raise AssertionError(f"no STAT {name}")


def _reload(proxy: ProxyProcess, conn: Conn, cfg: dict[str, object]) -> None:
    before = int(_stat(conn, "reloads"))
    proxy.write_config(cfg)
    proxy.reload()
    assert wait_until(lambda: int(_stat(conn, "reloads")) == before + 1), proxy.log()[-2000:]


def _set_all(conn: Conn, keys: list[str], value: Callable[[str], str], extra: str = "0 0") -> None:
    for i in range(0, len(keys), BATCH):
        chunk = keys[i : i + BATCH]
        data = b"".join(
            f"set {k} {extra} {len(value(k))}\r\n{value(k)}\r\n".encode() for k in chunk
        )
        assert conn.request(data) == b"STORED\r\n" * len(chunk)


def _get_all(conn: Conn, keys: list[str]) -> dict[str, str]:
    """What a multi-get through ``conn`` returns, key -> value (misses left out); any reply
    but values and END fails the test."""
    found: dict[str, str] = {}
    for i in range(0, len(keys), BATCH):
        reply = conn.request(("get " + " ".join(keys[i : i + BATCH]) + "\r\n").encode())
        lines = reply.split(b"\r\n")
        n = 0
        while lines[n] != b"END":
            head = lines[n].split(b" ")
            assert head[0] == b"VALUE", reply[:300]
            found[head[1].decode()] = lines[n + 1].decode()
            n += 2
        assert lines[n + 1 :] == [b""], reply[-300:]
    return found


def _owner(key: str, nodes: list[Memcached]) -> Memcached:
    return nodes[Placement(len(nodes)).index(key.encode())]


def _value(key: str) -> str:
    return "v1-" + key


def _new_value(key: str) -> str:
    return "v2-" + key


@pytest.mark.parametrize("window", [600.0, 0.0])
def test_scale_out_3_to_4_keeps_every_key_readable(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    window: float,
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes[:3], window))
    conn = Conn(proxy.port)
    keys = [f"so{i}" for i in range(KEYS)]
    _set_all(conn, keys, _value, extra="42 1000")
    moved = [k for k in keys if _owner(k, nodes) is nodes[3]]
    assert 300 < len(moved) < 700  # about a quarter moves to the new node

    _reload(proxy, conn, _config(nodes, window))
    got = _get_all(conn, keys)
    if window == 0:
        # Today's behaviour, for comparison: every moved key is a miss at once.
        assert len(got) == KEYS - len(moved)
        assert _stat(conn, "migration_active") == "0"
        return
    assert got == {k: _value(k) for k in keys}
    assert _stat(conn, "migration_active") == "1"
    assert int(_stat(conn, "migration_keys_moved")) == len(moved)
    assert wait_until(lambda: int(_stat(conn, "migration_copies")) == len(moved))
    # The copies are on the new node itself, with their flags and remaining TTL.
    direct = Conn(nodes[3].port)
    for k in moved[:50]:
        reply = direct.request(f"mg {k} v f t\r\n".encode()).decode()
        head = reply.split("\r\n")[0].split()
        assert head[0] == "VA" and "f42" in head, reply
        ttl = int(next(t for t in head if t.startswith("t"))[1:])
        assert 900 < ttl <= 1000
    # Read again: served by the new owners, nothing falls back any more.
    fallbacks = int(_stat(conn, "migration_fallbacks"))
    assert _get_all(conn, keys) == {k: _value(k) for k in keys}
    assert int(_stat(conn, "migration_fallbacks")) == fallbacks
    direct.close()
    conn.close()


@pytest.mark.parametrize("window", [600.0, 0.0])
def test_scale_in_4_to_3_keeps_every_key_readable(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    window: float,
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes, window))
    conn = Conn(proxy.port)
    keys = [f"si{i}" for i in range(KEYS)]
    # One TTL past 30 days: memcached takes it as a Unix time, and so must the copy.
    _set_all(conn, keys, _value, extra=f"7 {int(time.time()) + 40 * 86400}")
    moved = [k for k in keys if _owner(k, nodes) is nodes[3]]

    _reload(proxy, conn, _config(nodes[:3], window))
    got = _get_all(conn, keys)
    if window == 0:
        assert len(got) == KEYS - len(moved)
        return
    assert got == {k: _value(k) for k in keys}
    assert wait_until(lambda: int(_stat(conn, "migration_copies")) == len(moved))
    k = moved[0]
    new_owner = Conn(_owner(k, nodes[:3]).port)
    head = new_owner.request(f"mg {k} f t\r\n".encode()).decode().split()
    ttl = int(next(t for t in head if t.startswith("t"))[1:])
    assert head[0] == "HD" and "f7" in head and 39 * 86400 < ttl <= 40 * 86400 + 5
    new_owner.close()
    conn.close()


@pytest.mark.parametrize("window", [600.0, 0.0])
def test_a_write_or_a_rollback_during_the_window_serves_no_old_value(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    window: float,
) -> None:
    """The issue's case: keys overwritten on 4 nodes, then the config rolled back to 3."""
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes[:3], window))
    conn = Conn(proxy.port)
    keys = [f"rb{i}" for i in range(1000)]
    _set_all(conn, keys, _value)
    _reload(proxy, conn, _config(nodes, window))
    _set_all(conn, keys, _new_value)

    # Neither placement holds an old value of any key, on any node.
    if window > 0:
        for placement in (nodes[:3], nodes):
            for k in keys[:200]:
                direct = Conn(_owner(k, placement).port)
                assert b"v1-" not in direct.request(f"get {k}\r\n".encode())
                direct.close()

    _reload(proxy, conn, _config(nodes[:3], window))
    got = _get_all(conn, keys)
    stale = sum(1 for v in got.values() if v.startswith("v1-"))
    if window == 0:
        assert stale > 100  # what a rollback serves without the window
        return
    assert stale == 0
    assert got == {k: _new_value(k) for k in keys}
    assert _stat(conn, "migration_windows_started") == "2"
    conn.close()


def test_the_old_node_gone_during_the_window_is_plain_misses(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes, 600))
    conn = Conn(proxy.port)
    keys = [f"gone{i}" for i in range(KEYS)]
    _set_all(conn, keys, _value)
    on_removed = {k for k in keys if _owner(k, nodes) is nodes[3]}
    _reload(proxy, conn, _config(nodes[:3], 600))
    nodes[3].kill()
    got = _get_all(conn, keys)  # no error reply: _get_all fails on one
    assert set(got) == set(keys) - on_removed
    # Writes of its keys succeed; the deletes it cannot take are journaled, not errors.
    some = sorted(on_removed)[:100]
    _set_all(conn, some, _new_value)
    assert int(_stat(conn, "migration_old_delete_failures")) > 0
    assert _get_all(conn, some) == {k: _new_value(k) for k in some}
    conn.close()


@pytest.mark.parametrize("window", [600.0, 0.0])
def test_conditional_writes_act_as_without_the_move(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    window: float,
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes[:3], window))
    conn = Conn(proxy.port)
    moved = [k for k in (f"cw{i}" for i in range(400)) if _owner(k, nodes) is nodes[3]]
    assert len(moved) >= 15
    _set_all(conn, moved, lambda k: "10")
    _reload(proxy, conn, _config(nodes, window))
    k = iter(moved)
    ops = [
        (f"add {next(k)} 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
        (f"incr {next(k)} 5\r\n", "15\r\n"),
        (f"decr {next(k)} 3\r\n", "7\r\n"),
        (f"replace {next(k)} 0 0 1\r\nr\r\n", "STORED\r\n"),
        (f"append {next(k)} 0 0 1\r\na\r\n", "STORED\r\n"),
        (f"prepend {next(k)} 0 0 1\r\np\r\n", "STORED\r\n"),
        (f"touch {next(k)} 100\r\n", "TOUCHED\r\n"),
        (f"cas {next(k)} 0 0 1 1\r\nc\r\n", "EXISTS\r\n"),  # a wrong CAS: EXISTS, not NOT_FOUND
        (f"ms {next(k)} 1 ME\r\ne\r\n", "NS\r\n"),  # meta add
        (f"ma {next(k)} D1 v\r\n", "VA 2\r\n11\r\n"),  # meta incr
        (f"delete {next(k)}\r\n", "DELETED\r\n"),
        (f"md {next(k)}\r\n", "HD\r\n"),
    ]
    answers = [conn.request(op.encode()).decode() for op, _ in ops]
    # The binary spellings take the same path (translated to meta requests).
    binary = BinConn(proxy.port)
    binary.send(
        pkt(ADD, moved[13].encode(), setx(), b"x", opaque=1)
        + pkt(INCR, moved[14].encode(), incx(2), opaque=2)
        + pkt(NOOP, opaque=3)
    )
    added, incremented = binary.until_barrier(3)
    binary.close()
    if window == 0:
        assert answers[0] == "STORED\r\n" and answers[1] == "NOT_FOUND\r\n"
        assert added.status == 0  # stored: the old value was not seen
        return
    assert added.status == 2  # Data exists for key (on its old owner), as memcached says
    assert incremented.status == 0 and incremented.value == (12).to_bytes(8, "big")
    assert answers == [want for _, want in ops]
    got = _get_all(conn, moved[:12])
    # (memcached keeps a decremented value's length: "7 ")
    assert got[moved[0]] == "10" and got[moved[1]] == "15" and got[moved[2]] == "7 "
    assert got[moved[4]] == "10a" and got[moved[5]] == "p10"
    assert moved[10] not in got and moved[11] not in got  # deleted on both placements
    for d in (moved[10], moved[11]):
        old = Conn(_owner(d, nodes[:3]).port)
        assert old.request(f"get {d}\r\n".encode()) == b"END\r\n"
        old.close()
    # Pipelined: an incr waiting for its read-through, then a set of the same key: in order.
    k2 = moved[12]
    reply = conn.request(f"incr {k2} 1\r\nset {k2} 0 0 1\r\n9\r\nget {k2}\r\n".encode())
    assert reply == f"11\r\nSTORED\r\nVALUE {k2} 0 1\r\n9\r\nEND\r\n".encode()
    conn.close()


def test_replicated_sharded_2x3_to_2x4_and_back(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    big = Topology("replicated-sharded", shards=4, replicas=2)
    nodes = {n.name: memcached_factory() for n in big.nodes()}

    def config(shards: int) -> dict[str, object]:
        topo = Topology("replicated-sharded", shards=shards, replicas=2)
        cfg = topo.proxy_config(lambda n: nodes[n.name].address, pool_options=FAST)
        cfg["migration_window"] = 600
        return cfg

    proxy = proxy_factory(config(3))
    conn = Conn(proxy.port)
    keys = [f"rs{i}" for i in range(KEYS)]
    _set_all(conn, keys, _value)
    _reload(proxy, conn, config(4))
    assert _get_all(conn, keys) == {k: _value(k) for k in keys}
    # Both replicas of a moved key now hold it on shard 3: placement stays aligned.
    for k in [k for k in keys if Placement(4).index(k.encode()) == 3][:50]:
        for r in range(2):
            direct = Conn(nodes[f"memcached-{r}-3"].port)
            assert wait_until(lambda d=direct, k=k: b"v1-" in d.request(f"get {k}\r\n".encode()))
            direct.close()
    half = keys[: KEYS // 2]
    _set_all(conn, half, _new_value)
    _reload(proxy, conn, config(3))
    got = _get_all(conn, keys)
    assert got == {k: (_new_value(k) if k in set(half) else _value(k)) for k in keys}
    conn.close()


def test_config_hash_is_reported_and_the_window_ends(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes[:3], 1.0))
    conn = Conn(proxy.port)
    first = config_hash(load_config(proxy.config_path))
    assert _stat(conn, "config_hash", b"stats") == first
    keys = [f"end{i}" for i in range(400)]
    _set_all(conn, keys, _value)
    _reload(proxy, conn, _config(nodes, 1.0))
    second = config_hash(load_config(proxy.config_path))
    assert second != first and _stat(conn, "config_hash", b"stats") == second
    assert wait_until(lambda: _stat(conn, "migration_windows_ended") == "1")
    assert _stat(conn, "migration_active") == "0"
    # After the window only the new placement serves: the keys nobody read are misses now.
    moved = {k for k in keys if _owner(k, nodes) is nodes[3]}
    assert set(_get_all(conn, keys)) == set(keys) - moved
    log = proxy.log()
    assert "migration window open" in log and "migration window closed" in log
    conn.close()


def test_a_failed_old_owner_delete_is_journaled_and_retried(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes, 600))
    conn = Conn(proxy.port)
    removed = [k for k in (f"jr{i}" for i in range(600)) if _owner(k, nodes) is nodes[3]]
    _set_all(conn, removed, _value)
    _reload(proxy, conn, _config(nodes[:3], 600))
    nodes[3].stop_signal()  # the old owner hangs: its deletes time out, then fail fast

    def fails_fast() -> bool:
        before = int(_stat(conn, "migration_old_delete_failures"))
        _set_all(conn, removed[:1], _new_value)
        return int(_stat(conn, "migration_old_delete_failures")) == before + 1

    assert wait_until(fails_fast, seconds=20)
    written = removed[1:51]
    _set_all(conn, written, _new_value)  # their deletes never reach the old owner
    assert int(_stat(conn, "migration_journaled")) >= len(written)
    nodes[3].cont_signal()
    assert wait_until(lambda: _stat(conn, "migration_journaled") == "0", seconds=20)
    assert int(_stat(conn, "migration_old_delete_retries")) >= len(written)
    old = Conn(nodes[3].port)
    assert _get_all(old, written) == {}  # the retries deleted every old copy
    old.close()
    # Rolled back, the returning node serves the new values, not its old ones.
    _reload(proxy, conn, _config(nodes, 600))
    assert _get_all(conn, written) == {k: _new_value(k) for k in written}
    conn.close()


def test_flush_all_during_the_window_reaches_the_old_placement(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(_config(nodes, 600))
    conn = Conn(proxy.port)
    keys = [f"fl{i}" for i in range(400)]
    _set_all(conn, keys, _value)
    _reload(proxy, conn, _config(nodes[:3], 600))
    assert conn.request(b"flush_all\r\n") == b"OK\r\n"
    # The removed node was flushed too: nothing comes back through a read-through.
    assert _get_all(conn, keys) == {}
    conn.close()


def test_copies_across_workers_never_outlive_a_delete(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    """With ``--workers 2`` each worker has its own window; a read-through copy made by one
    worker racing a delete from the other never leaves the key on either node (the shared
    write fence drops the copy, or deletes it again once stored)."""
    from tests.integration.test_worker_fences import _one_per_worker

    a, b = memcached_factory(), memcached_factory()
    proxy = proxy_factory(_config([a], 600), ("--watch-interval", "0", "--workers", "2"))
    (_, reader), (_, deleter) = _one_per_worker(proxy.port).items()
    for c in (reader, deleter):
        before = int(_stat(c, "reloads"))
    proxy.write_config(_config([b], 600))
    proxy.reload()
    for c in (reader, deleter):
        assert wait_until(lambda c=c: int(_stat(c, "reloads")) == before + 1)
    on_a, on_b = Conn(a.port), Conn(b.port)
    keys = [b"race%d" % i for i in range(300)]
    deadline = time.monotonic() + 60
    for k in keys:
        if time.monotonic() > deadline:
            break
        assert on_a.request(b"set %s 0 0 1\r\nv\r\n" % k) == b"STORED\r\n"  # the old node only
        reader.send(b"get %s\r\nmn\r\n" % k)
        deleter.send(b"delete %s\r\nmn\r\n" % k)
        reader.read_until(b"MN\r\n")
        assert deleter.read_until(b"MN\r\n") == b"DELETED\r\nMN\r\n"
    time.sleep(0.5)  # a copy still on its way lands within a moment
    left = [b"b:" + k for k in keys if on_b.request(b"get %s\r\n" % k) != b"END\r\n"]
    left += [b"a:" + k for k in keys if on_a.request(b"get %s\r\n" % k) != b"END\r\n"]
    assert left == [], f"{len(left)} deleted keys came back"
