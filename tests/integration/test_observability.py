"""`memfleet bench`, the Prometheus endpoint and the JSON logs, against real memcached."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymemcache.client.base import Client
from tests.helpers import (
    Conn,
    Memcached,
    ProxyProcess,
    free_port,
    pool_config,
    wait_port,
    wait_until,
)


def _bench(port: int, *args: str) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "bench", "--target", f"127.0.0.1:{port}", "--json",
         *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_bench_hit_rate_matches_what_was_written(
    memcached_factory: Callable[..., Memcached],
) -> None:
    mc = memcached_factory()
    c = Client(("127.0.0.1", mc.port), timeout=5)
    # Every key of one prefix, and the even half of another.
    c.set_many({f"all:{i}": b"v" for i in range(400)}, noreply=False)
    c.set_many({f"half:{i}": b"v" for i in range(0, 400, 2)}, noreply=False)
    c.close()

    full = _bench(mc.port, "--no-preload", "--ratio", "1:0", "--keys", "400",
                  "--key-prefix", "all:", "--duration", "1.5", "--processes", "2",
                  "--connections", "4", "--pipeline", "4")  # fmt: skip
    assert full["gets"] > 0 and full["sets"] == 0
    assert full["errors"] == 0
    assert full["hits"] == full["gets"] and full["hit_rate"] == 1.0

    half = _bench(mc.port, "--no-preload", "--ratio", "1:0", "--keys", "400",
                  "--key-prefix", "half:", "--duration", "1.5", "--processes", "1")  # fmt: skip
    assert half["hits"] + half["misses"] == half["gets"] > 1000
    # Keys are drawn uniformly: with >1000 gets the hit rate is 0.5 within a few percent.
    assert 0.4 < half["hit_rate"] < 0.6
    assert half["p50_us"] is not None and half["p50_us"] <= half["p99_us"] <= half["p999_us"]
    assert sum(s["ops"] for s in half["per_second"]) == half["ops"]

    # With the default preload every key is written first: everything hits.
    pre = _bench(mc.port, "--keys", "300", "--key-prefix", "pre:", "--duration", "1",
                 "--ratio", "3:1", "--processes", "1")  # fmt: skip
    assert pre["hit_rate"] == 1.0 and pre["errors"] == 0 and pre["sets"] > 0


def test_bench_refuses_non_loopback_targets() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "bench", "--target", "10.1.2.3:11211"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "loopback" in r.stderr


def _scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        rest = head[len(name) :]
        if labels:
            if not rest.startswith("{"):
                continue
            got = dict(kv.split("=", 1) for kv in rest.strip("{}").split(","))
            if any(got.get(k) != f'"{v}"' for k, v in labels.items()):
                continue
        elif rest:
            continue
        return float(value)
    return 0.0


def test_metrics_match_the_requests_sent(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    mc = memcached_factory()
    mport = free_port()
    proxy = proxy_factory(
        pool_config(mc.address, failure_limit=1, retry_timeout=30),
        extra_args=("--watch-interval", "0", "--metrics", f"127.0.0.1:{mport}"),
    )
    wait_port(mport)
    assert _scrape(mport, "/healthz")[0] == 200
    status, body = _scrape(mport, "/readyz")
    assert status == 200 and body.startswith("ready\nconfig_hash ")

    conn = Conn(proxy.port)
    sets = b"".join(b"set k%d 0 0 1\r\nx\r\n" % i for i in range(30))
    gets = b"".join(b"get k%d\r\n" % i for i in range(20))  # hits
    gets += b"".join(b"get none%d\r\n" % i for i in range(7))  # misses
    deletes = b"".join(b"delete k%d\r\n" % i for i in range(5))
    conn.request(sets + gets + deletes + b"bogus\r\n")

    status, text = _scrape(mport)
    assert status == 200
    assert _metric(text, "memfleet_requests_total", command="set", route="default") == 30
    assert _metric(text, "memfleet_requests_total", command="get", route="default") == 27
    assert _metric(text, "memfleet_requests_total", command="delete", route="default") == 5
    assert _metric(text, "memfleet_get_hits_total") == 20
    assert _metric(text, "memfleet_get_misses_total") == 7
    assert _metric(text, "memfleet_errors_total", kind="client_protocol") == 1
    assert _metric(text, "memfleet_backend_requests_total", backend=mc.address) == 62
    assert _metric(text, "memfleet_backend_up", backend=mc.address) == 1
    assert _metric(text, "memfleet_backend_latency_seconds_count", backend=mc.address) == 62
    assert _metric(text, "memfleet_route_latency_seconds_count", route="default") == 62
    assert _metric(text, "memfleet_client_connections") == 1

    # `stats proxy` / `stats backends` over the protocol report the same counters.
    stats = conn.request(b"stats proxy\r\nstats backends\r\n").decode()
    assert "STAT command_set 30\r\n" in stats and "STAT command_delete 5\r\n" in stats
    assert "STAT cmd_get 27\r\n" in stats and "STAT get_hits 20\r\n" in stats
    assert f"STAT {mc.address}:requests 62\r\n" in stats
    assert f"STAT {mc.address}:latency_count 62\r\n" in stats

    # The only backend goes away: the default route has no live path, so the proxy is not ready.
    mc.kill()
    assert conn.request(b"get k1\r\n").startswith(b"SERVER_ERROR")
    status, why = _scrape(mport, "/readyz")
    assert status == 503 and "default" in why and mc.address in why
    text = _scrape(mport)[1]
    assert _metric(text, "memfleet_backend_up", backend=mc.address) == 0
    assert _metric(text, "memfleet_backend_marked_down_total", backend=mc.address) == 1
    conn.close()


def test_json_logs_carry_events_and_the_peer(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    tmp_path: Path,
) -> None:
    mc = memcached_factory()
    proxy = proxy_factory(
        pool_config(mc.address, failure_limit=1, retry_timeout=30),
        extra_args=("--watch-interval", "0", "--log-format", "json"),
    )
    conn = Conn(proxy.port)
    conn.request(b"bogus\r\n")
    mc.kill()
    conn.request(b"get a\r\n")
    proxy.config_path.write_text("pools: [")  # a broken config: the reload is refused
    proxy.reload()
    conn.request(b"version\r\n")  # the reload is handled on the loop before this is answered
    conn.close()
    proxy.stop()
    lines = [json.loads(x) for x in proxy.log().splitlines() if x.startswith("{")]
    by_event = {x.get("event"): x for x in lines}
    err = by_event["client_protocol_error"]
    assert err["peer"].startswith("127.0.0.1:") and err["reply"] == "ERROR"
    down = by_event["backend_down"]
    assert "marked down" in down["msg"] and down["backend"] == mc.address
    assert "reload refused" in by_event["reload_refused"]["msg"]
    assert all({"ts", "level", "logger", "msg"} <= set(x) for x in lines)


def test_one_replica_down_keeps_the_proxy_ready(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    # /readyz is the DaemonSet's readiness: it means "every route has a live path", never
    # "every backend up", or one cache node out would take every proxy out of its Service.
    a, b = memcached_factory(), memcached_factory()
    mport = free_port()
    cfg = {
        "pools": {
            "replica_0": {"backends": [a.address], "failure_limit": 1, "retry_timeout": 30},
            "replica_1": {"backends": [b.address], "failure_limit": 1, "retry_timeout": 30},
        },
        "routes": {
            "get": {"allfastest": {"children": ["replica_0", "replica_1"]}},
            "default": {"allsync": {"children": ["replica_0", "replica_1"]}},
        },
    }
    proxy = proxy_factory(
        cfg, extra_args=("--watch-interval", "0", "--metrics", f"127.0.0.1:{mport}")
    )
    wait_port(mport)
    conn = Conn(proxy.port)
    assert conn.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    a.kill()
    conn.request(b"get k\r\n")  # a request to the dead node marks it down (failure_limit 1)
    assert wait_until(
        lambda: _metric(_scrape(mport)[1], "memfleet_backend_up", backend=a.address) == 0
    )
    status, body = _scrape(mport, "/readyz")
    assert status == 200 and body.startswith("ready\nconfig_hash ")
    b.kill()
    conn.request(b"get k\r\n")
    assert wait_until(lambda: _scrape(mport, "/readyz")[0] == 503)
    conn.close()
