"""The proxy's status page (``/`` on the metrics port), in the spirit of HAProxy's stats page.

One self-contained, read-only HTML document: its style and its one script are inline and
allowed by hash in a strict Content-Security-Policy (nothing else may load, connect only to
this origin, no frames, no forms); nothing on it changes anything. The script re-fetches the
page every few seconds and swaps its ``<main>`` in place (the server renders all of it; the
script never builds markup from data), and says so when the proxy stops answering. At a
390 px wide viewport the tables become one card per row, so nothing scrolls sideways.

Reach: the metrics port listens where ``--metrics`` says (``memfleet up``: a loopback port);
the rendered Kubernetes NetworkPolicy lets only the monitoring namespace in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from html import escape
from typing import TYPE_CHECKING, Any

from memfleet.observe.status_data import StatusSampler, snapshot

if TYPE_CHECKING:
    from memfleet.observe.metrics import ProxyView

REFRESH_SECONDS = 2

STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--mute:#5b6470;--line:#d7dbe0;
--up:#1a7f37;--down:#cf222e;--warn:#9a6700;--card:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#9aa4ae;
--line:#30363d;--card:#161b22;--up:#3fb950;--down:#f85149;--warn:#d29922}}
*{box-sizing:border-box}
body{margin:0;padding:12px;font:14px/1.4 system-ui,sans-serif;background:var(--bg);
color:var(--fg);overflow-wrap:anywhere}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}
.mute{color:var(--mute)}
.facts{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0;padding:0;list-style:none}
.facts b{font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right}
th:first-child,td:first-child{text-align:left}
th{font-weight:600;color:var(--mute);font-size:12px}
.state{font-weight:600}
[data-state=up] .state{color:var(--up)}
[data-state=down] .state,[data-state=repair] .state{color:var(--down)}
[data-state=failing] .state{color:var(--warn)}
tr[data-state=down],tr[data-state=repair]{background:color-mix(in srgb,var(--down) 10%,transparent)}
.bad{color:var(--down);font-weight:600}.ok{color:var(--up);font-weight:600}
ul.tree{margin:2px 0 6px;padding-left:18px}ul.tree ul{padding-left:16px}
#stale{background:var(--down);color:#fff;padding:6px 10px;border-radius:4px}
footer,.note{margin-top:18px;font-size:12px}
@media (max-width:700px){
table,thead,tbody{display:block;width:100%}
thead{display:none}
tr{display:grid;grid-template-columns:1fr 1fr;column-gap:16px;border:1px solid var(--line);
border-radius:6px;margin:0 0 8px;padding:4px 8px;background:var(--card)}
td{display:flex;justify-content:space-between;gap:8px;border:0;padding:1px 0;text-align:right}
td::before{content:attr(data-label);color:var(--mute);text-align:left}
td:first-child{grid-column:1/-1;font-weight:600}td:first-child::before{content:none}
}
"""

SCRIPT = """
(function () {
  var busy = false;
  function stale(on) {
    var s = document.getElementById("stale");
    if (s) { s.hidden = !on; }
  }
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(location.pathname, {cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.querySelector("main");
        var old = document.querySelector("main");
        if (fresh && old) { old.replaceWith(document.importNode(fresh, true)); }
        stale(false);
      })
      .catch(function () { stale(true); })
      .finally(function () { busy = false; });
  }
  setInterval(refresh, REFRESH_MS);
})();
""".replace("REFRESH_MS", str(REFRESH_SECONDS * 1000))


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


CSP = (
    "default-src 'none'; "
    f"style-src '{_hash(STYLE)}'; script-src '{_hash(SCRIPT)}'; connect-src 'self'; "
    "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


def _num(v: float | int | None, digits: int = 0) -> str:
    if v is None:
        return "–"
    if v == float("inf"):
        return "> 2500"
    return f"{v:,.{digits}f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _duration(seconds: int) -> str:
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _cells(cells: list[tuple[str, str, str]]) -> str:
    """``<td>`` per (label, text, class); the label is what a card shows beside the value."""
    return "".join(
        f'<td data-label="{escape(label)}"{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>'
        f"{escape(text)}</td>"
        for label, text, cls in cells
    )


def _backend_row(b: dict[str, Any]) -> str:
    state = b["state"]
    if state == "failing":
        state = f"failing {b['failures']}/{b['failure_limit']}"
    journal = "–" if b["journal"] is None else f"{b['journal']:,}"
    if b["flush_pending"]:
        journal = "flush due"
    repaired = b["repaired"] or 0
    cells = [
        ("backend", b["name"], ""),
        ("state", state, "state"),
        ("ops/s", _num(b["ops_per_sec"]), ""),
        ("errors", f"{b['errors']:,}", "bad" if b["errors"] else ""),
        ("failed fast", f"{b['failed_fast']:,}", ""),
        ("marked down", f"{b['marked_down']:,}", ""),
        ("in flight", f"{b['in_flight']:,}", ""),
        ("p50 ms", _num(b["p50_ms"], 2), ""),
        ("p99 ms", _num(b["p99_ms"], 2), ""),
        ("journal", journal, "bad" if b["journal"] or b["flush_pending"] else ""),
        ("repaired", f"{repaired:,}", ""),
    ]
    return (
        f'<tr data-backend="{escape(b["name"])}" data-state="{escape(b["state"])}">'
        f"{_cells(cells)}</tr>"
    )


BACKEND_HEADER = (
    "backend",
    "state",
    "ops/s",
    "errors",
    "failed fast",
    "marked down",
    "in flight",
    "p50 ms",
    "p99 ms",
    "journal",
    "repaired",
)


def _tree(node: dict[str, Any]) -> str:
    kids = "".join(_tree(c) for c in node["children"])
    return (
        f"<li>{escape(node['label'])}" + (f'<ul class="tree">{kids}</ul>' if kids else "") + "</li>"
    )


def render(doc: dict[str, Any]) -> str:
    """The page for one snapshot."""
    down = sum(1 for p in doc["pools"] for b in p["backends"] if b["state"] in ("down", "repair"))
    total = sum(len(p["backends"]) for p in doc["pools"])
    ready = (
        '<b class="ok">ready</b>'
        if doc["ready"]
        else (f'<b class="bad">not ready</b> ({escape(doc["ready_reason"])})')
    )
    verdict = (
        f'<b class="bad">{down} of {total} backends out of service</b>'
        if down
        else f'<b class="ok">all {total} backends up</b>'
    )
    facts = [
        ("uptime", _duration(doc["uptime_s"])),
        ("listen", doc["listen"]),
        ("connections", f"{doc['connections']:,}"),
        ("ops/s", _num(doc["ops_per_sec"])),
        ("hit rate", _pct(doc["hit_rate"])),
        ("in flight", f"{doc['in_flight']:,}"),
        ("client protocol errors", f"{doc['protocol_errors']:,}"),
        ("backend errors", f"{doc['backend_errors']:,}"),
        ("reloads", f"{doc['reloads']:,} ok, {doc['reloads_refused']:,} refused"),
    ]
    parts = [
        f'<p>{ready} · {verdict} · <span class="mute">updated '
        f"{time.strftime('%H:%M:%S', time.localtime(doc['time']))}</span></p>",
        '<ul class="facts">'
        + "".join(f"<li>{escape(k)} <b>{escape(v)}</b></li>" for k, v in facts)
        + "</ul>",
    ]
    head = "".join(f"<th>{escape(h)}</th>" for h in BACKEND_HEADER)
    for pool in doc["pools"]:
        rows = "".join(_backend_row(b) for b in pool["backends"])
        parts.append(
            f"<h2>pool {escape(pool['name'])}</h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )
    parts.append("<h2>routes</h2>")
    for r in doc["routes"]:
        live = (
            f'<span class="{"ok" if r["backends_up"] else "bad"}">{r["backends_up"]} of '
            f"{r['backends']} backends up</span>"
        )
        parts.append(
            f'<p><b>{escape(r["name"])}</b> · {live}</p><ul class="tree">{_tree(r["tree"])}</ul>'
        )
    hit = [lim for lim in doc["limits"] if lim["hits"]]
    parts.append("<h2>limits hit</h2>")
    if hit:
        parts.append(
            '<ul class="facts">'
            + "".join(
                f'<li>{escape(lim["limit"])} <b class="bad">{lim["hits"]:,}</b></li>' for lim in hit
            )
            + "</ul>"
        )
    else:
        parts.append('<p class="mute">none</p>')
    window = doc["window_s"]
    note = f"rates over the last {window:.1f} s" if window else "rates from the next refresh"
    parts.append(
        f'<p class="note mute">{escape(note)}; latency: the bound of the bucket the percentile '
        "falls in; journal: keys a replica missed, repaired before it serves again.</p>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>memfleet proxy {escape(doc['listen'])}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<header><h1>memfleet proxy</h1><div class=mute>version {escape(doc['version'])}, "
        f"pid {doc['pid']} · read-only · refreshes every {REFRESH_SECONDS} s</div>"
        '<p id="stale" hidden>The proxy does not answer: the figures below are the last it '
        "gave.</p></header>"
        f"<main>{''.join(parts)}</main>"
        '<footer class="mute">Also: /metrics (Prometheus), /status.json, /healthz, /readyz.'
        "</footer>"
        f"<script>{SCRIPT}</script></body></html>"
    )


def _finite(value: Any) -> Any:
    """JSON has no infinity: a latency past the last bucket becomes null there."""
    if isinstance(value, float) and value == float("inf"):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class StatusPage:
    """``/`` and ``/status.json`` for the metrics server; one sampler for every viewer. Its
    headers (the CSP) go on every answer of the metrics port."""

    paths: tuple[str, ...] = ("/", "/status.json")
    headers: tuple[tuple[str, str], ...] = HEADERS

    def __init__(self, proxy: ProxyView) -> None:
        self.proxy = proxy
        self.sampler = StatusSampler()

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for ``/`` or ``/status.json``."""
        doc = snapshot(self.proxy, self.sampler)
        if path == "/status.json":
            return 200, JSON_TYPE, json.dumps(_finite(doc)).encode()
        return 200, HTML_TYPE, render(doc).encode()
