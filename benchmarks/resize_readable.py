"""Keys readable through a resize, with and without the migration window (README, "Resizing a
pool"): real memcached nodes, the real proxy, the config reloaded with SIGHUP, as issue 21
measured it.

    python benchmarks/resize_readable.py              # 20,000 keys, window 600 and 0
    python benchmarks/resize_readable.py --keys 5000

Per window: keys warmed on 3 nodes, reloaded to 4, every key read (readable after 3 -> 4);
every key written again on 4, reloaded back to 3, every key read (readable after 4 -> 3: with
the value last written); of the first 1,000 of those writes, how many read back their value
from before the resize after the rollback (stale). Correctness figures, not timing: safe on a
busy machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import Conn, Memcached, ProxyProcess, pool_config, wait_until

BATCH = 100


def _reload(proxy: ProxyProcess, conn: Conn, cfg: dict[str, object]) -> None:
    def reloads() -> int:
        for line in conn.request(b"stats\r\n").decode().splitlines():
            if line.startswith("STAT reloads "):
                return int(line.split()[2])
        raise RuntimeError("no reloads counter")

    before = reloads()
    proxy.write_config(cfg)
    proxy.reload()
    if not wait_until(lambda: reloads() == before + 1):
        raise RuntimeError("the proxy did not reload")


def _set(conn: Conn, keys: list[str], value: str) -> None:
    for i in range(0, len(keys), BATCH):
        chunk = keys[i : i + BATCH]
        data = b"".join(f"set {k} 0 0 {len(value)}\r\n{value}\r\n".encode() for k in chunk)
        if conn.request(data) != b"STORED\r\n" * len(chunk):
            raise RuntimeError("a set failed")


def _get(conn: Conn, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for i in range(0, len(keys), BATCH):
        lines = conn.request(("get " + " ".join(keys[i : i + BATCH]) + "\r\n").encode()).split(
            b"\r\n"
        )
        n = 0
        while lines[n].startswith(b"VALUE "):
            found[lines[n].split(b" ")[1].decode()] = lines[n + 1].decode()
            n += 2
        if lines[n] != b"END":
            raise RuntimeError(f"unexpected reply line {lines[n][:80]!r}")
    return found


def run(keys: int, window: float, workdir: Path) -> tuple[int, int, int]:
    """(readable after 3 -> 4, readable after 4 -> 3, stale reads after the rollback)."""
    nodes = [Memcached() for _ in range(4)]
    proxy: ProxyProcess | None = None
    try:

        def config(n: int) -> dict[str, object]:
            cfg = pool_config(*(m.address for m in nodes[:n]))
            cfg["migration_window"] = window
            return cfg

        proxy = ProxyProcess(config(3), workdir)
        conn = Conn(proxy.port)
        names = [f"key:{i}" for i in range(keys)]
        _set(conn, names, "v1")
        _reload(proxy, conn, config(4))
        out = len(_get(conn, names))
        _set(conn, names[1000:], "v2")
        overwritten = names[:1000]
        _set(conn, overwritten, "v3")
        _reload(proxy, conn, config(3))
        got = _get(conn, names)
        latest = {k: ("v3" if i < 1000 else "v2") for i, k in enumerate(names)}
        stale = sum(1 for k in overwritten if got.get(k) == "v1")
        conn.close()
        return out, sum(1 for k, v in got.items() if v == latest[k]), stale
    finally:
        if proxy is not None:
            proxy.stop()
        for m in nodes:
            m.stop()


def main() -> None:
    """Print one line per window."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for window in (600.0, 0.0):
            out, back, stale = run(args.keys, window, Path(tmp))
            print(
                f"migration_window {window:g}: 3 -> 4 nodes {out:,}/{args.keys:,} readable, "
                f"4 -> 3 {back:,}/{args.keys:,}, {stale:,} of 1,000 overwritten keys stale "
                "after the rollback"
            )


if __name__ == "__main__":
    main()
