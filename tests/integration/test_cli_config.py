"""The proxy command: a bad config is one line and exit 2; SIGHUP reloads, and a bad new
config is refused while the old one keeps serving."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration


def run_proxy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memfleet", "proxy", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "proxy.yaml"
    bad.write_text(
        "pools:\n  main:\n    backends: ['127.0.0.1:1', '127.0.0.1:2', 'host:abc']\n"
        "routes:\n  default: main\n"
    )
    r = run_proxy("--config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"memfleet: {bad}: pools.main.backends[2]: 'host:abc' is not HOST:PORT"
    )
    assert "Traceback" not in r.stderr + r.stdout


def test_missing_config_and_bad_listen(tmp_path: Path) -> None:
    r = run_proxy("--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    good = tmp_path / "ok.yaml"
    good.write_text("pools: {main: {backends: ['127.0.0.1:1']}}\nroutes: {default: main}\n")
    r = run_proxy("--config", str(good), "--listen", "nowhere")
    assert r.returncode == 2 and "--listen" in r.stderr and "Traceback" not in r.stderr


def _wait_log(proxy: ProxyProcess, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proxy.log().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged {count}x:\n{proxy.log()}")


def test_sighup_reload_swaps_pools_and_refuses_bad_config(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    a, b = memcached_factory(), memcached_factory()
    proxy = proxy_factory(pool_config(a.address))
    conn = Conn(proxy.port)
    assert conn.request(b"set k 0 0 1\r\na\r\n") == b"STORED\r\n"

    proxy.config_path.write_text("pools: {main: {backends: ['127.0.0.1:abc']}}\n")
    proxy.reload()
    _wait_log(proxy, "reload refused")
    assert "pools.main.backends[0]" in proxy.log()
    assert conn.request(b"get k\r\n") == b"VALUE k 0 1\r\na\r\nEND\r\n"  # old config serves

    proxy.write_config(pool_config(b.address))
    proxy.reload()
    _wait_log(proxy, "reloaded")
    # Now on node b, which never saw k: the migration window reads it through from a.
    assert conn.request(b"get k\r\n") == b"VALUE k 0 1\r\na\r\nEND\r\n"
    assert conn.request(b"set k 0 0 1\r\nb\r\n") == b"STORED\r\n"
    direct_b = Conn(b.port)
    assert direct_b.request(b"get k\r\n") == b"VALUE k 0 1\r\nb\r\nEND\r\n"
    assert Conn(a.port).request(b"get k\r\n") == b"END\r\n"  # the write deleted a's copy
    stats = conn.request(b"stats\r\n")
    assert b"STAT reloads 1\r\n" in stats and b"STAT reloads_failed 1\r\n" in stats
    conn.close()
    direct_b.close()
