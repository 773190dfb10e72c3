"""The proxy's status page in a real browser: headless Chromium loads it from a running proxy
over real memcached nodes (`memfleet up`), the DOM says what the fleet is, a killed node shows
as down within seconds without a reload, and nothing scrolls sideways at 390 px.

Screenshots at 1280 and 390 px are saved in the test's directory, or in
$MEMFLEET_SCREENSHOT_DIR (the README's come from `MEMFLEET_SCREENSHOT_DIR=docs/images`).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client
from tests.browser.chromium import REQUIRE_ENV, Browser, browser, find_chromium
from tests.integration.fleet_helpers import Cmd

from memfleet.tools.drill.faults import memcached_pid

pytestmark = pytest.mark.integration

StartUp = Callable[..., tuple[Cmd, dict[str, Any]]]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but no chromium was found (scripts/setup.sh "
                        "installs Debian's chromium)")  # fmt: skip
        pytest.skip("no headless browser here (apt-get install -y chromium)")
    return path


def screenshot_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MEMFLEET_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def traffic(port: int, n: int) -> None:
    """``n`` sets and gets through the proxy (bounded; errors are expected once a node is
    dead, and are what makes the proxy mark it down)."""
    c = Client(("127.0.0.1", port), timeout=1, connect_timeout=1)
    try:
        for i in range(n):
            try:
                c.set(f"page:{i}", b"v" * 50, noreply=False)
                c.get(f"page:{i}")
            except Exception:  # a failed request is the point here
                pass
    finally:
        c.close()


def row_states(b: Browser) -> dict[str, str]:
    return dict(b.js(
        "Object.fromEntries([...document.querySelectorAll('tr[data-backend]')]"
        ".map(r => [r.dataset.backend, r.dataset.state]))"
    ))  # fmt: skip


def test_status_page_in_chromium(chromium: str, start_up: StartUp, tmp_path: Path) -> None:
    _, state = start_up("--topology", "replicated-sharded", "--shards", "2", "--replicas", "2",
                        "--memory", "16", "--restart", "never")  # fmt: skip
    metrics = state["proxy"]["metrics"]
    url = f"http://{metrics['host']}:{metrics['port']}/"
    shots = screenshot_dir(tmp_path)
    names = [f"{n['host']}:{n['port']}" for n in state["nodes"]]

    # Self-contained, strict and read-only, seen from a plain HTTP client first.
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    for external in ("src=", "href=", "<form", "<button", "<input", "@import", "url("):
        assert external not in body, external
    assert get(url, "POST")[0] == 405

    traffic(state["proxy"]["port"], 300)
    with browser(chromium) as b:
        b.call("Log.enable", session=True)
        b.viewport(1280, 900)
        b.goto(url)
        assert row_states(b) == {n: "up" for n in names}
        assert b.js("document.querySelector('main').textContent").count("up") >= 3
        assert "all 4 backends up" in b.js("document.body.innerText")
        assert "allfastest" in b.js("document.querySelector('main').innerText")  # the routes
        time.sleep(2.5)  # one refresh: the rates of a window with traffic
        traffic(state["proxy"]["port"], 200)
        b.pump(2.5)
        (shots / "status-page-1280.png").write_bytes(b.screenshot())
        assert b.console_errors() == [], "CSP violations or script errors"

        # A node dies; the page, left open, shows it down within seconds (no reload).
        victim = state["nodes"][0]
        os.kill(memcached_pid(victim["pid"]), signal.SIGKILL)
        seen = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            traffic(state["proxy"]["port"], 10)
            b.pump(0.3)
            seen = row_states(b).get(names[0])
            if seen in ("down", "repair"):
                break
        # repair: down, and writes it missed are journaled for its return.
        assert seen in ("down", "repair"), row_states(b)
        assert [row_states(b)[n] for n in names[1:]] == ["up", "up", "up"]
        assert "1 of 4 backends out of service" in b.js("document.body.innerText")

        # Phone width: cards, not a table wider than the screen.
        b.viewport(390, 844)
        b.goto(url)
        assert b.js("document.documentElement.scrollWidth") <= 390
        assert b.js("document.body.scrollWidth") <= 390
        assert row_states(b)[names[0]] in ("down", "repair")
        (shots / "status-page-390.png").write_bytes(b.screenshot())
        assert b.console_errors() == []
    for name in ("status-page-1280.png", "status-page-390.png"):
        data = (shots / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
