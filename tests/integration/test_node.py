"""`memfleet node`: the supervisor around one real memcached: warm and cold restarts, a
corrupt state file, pinned options, sizing from a volume, a missing binary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers import free_port
from tests.integration.fleet_helpers import (
    Cmd,
    client,
    curr_items,
    get_keys,
    set_keys,
    wait_for,
)

pytestmark = pytest.mark.integration

MIB = 1024 * 1024

StartNode = Callable[..., Cmd]


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[StartNode]:
    """Start ``memfleet node`` with the given args and wait until it reports ready."""
    started: list[Cmd] = []

    def start(*args: str, port: int, ready: bool = True) -> Cmd:
        ready_file = tmp_path / f"ready-{port}"
        ready_file.unlink(missing_ok=True)  # a SIGKILLed node leaves its ready file behind
        n = len(started)
        cmd = Cmd(
            ["node", "--port", str(port), "--ready-file", str(ready_file), *args, "--", "-t", "1"],
            tmp_path / f"node-{port}-{n}.log",
        )
        started.append(cmd)
        if ready:
            wait_for(ready_file.exists, "ready file", cmd, timeout=30)
        return cmd

    yield start
    for cmd in started:
        cmd.stop()


def test_restartable_warm_on_sigterm_cold_on_sigkill(tmp_path: Path, start_node: StartNode) -> None:
    port = free_port()
    mem = tmp_path / "data" / "cache.mem"
    args = ("--memory", "64", "--memory-file", str(mem), "--restartable")

    node = start_node(*args, port=port)
    assert "cold start" in node.log()
    items = set_keys(client(port), 10_000)

    node.signal(signal.SIGTERM)
    assert node.wait() == 0
    assert "graceful stop (SIGUSR1)" in node.log()
    assert (mem.parent / "cache.mem.meta").exists()

    node = start_node(*args, port=port)
    assert "warm restart, 10000 items" in node.log()
    assert get_keys(client(port), list(items)) == items

    node.kill_group()  # SIGKILL: no state file is written, the next start is cold
    assert not (mem.parent / "cache.mem.meta").exists()
    node = start_node(*args, port=port)
    assert "no state file: this start will be cold" in node.log()
    assert curr_items(port) == 0
    node.signal(signal.SIGINT)  # Ctrl-C is a graceful stop too
    assert node.wait() == 0


# Each of these makes memcached 1.6.18 abort (SIGABRT, or a heap corruption for the truncated
# one): without the supervisor's check the node would crash-loop.
CORRUPT = [
    (b"", "is empty"),
    (b"garbage\nKmaxbytes 67108864\n", "is not a tag"),
    (b"Tmain\nKslab_config 1.25\nKmaxbytes 6710", "truncated"),
]


def test_corrupt_state_file_starts_cold_with_a_warning(
    tmp_path: Path, start_node: StartNode
) -> None:
    port = free_port()
    mem = tmp_path / "cache.mem"
    args = ("--memory", "48", "--memory-file", str(mem), "--restartable")
    node = start_node(*args, port=port)
    for content, reason in CORRUPT:
        set_keys(client(port), 100)
        node.signal(signal.SIGTERM)
        assert node.wait() == 0
        (tmp_path / "cache.mem.meta").write_bytes(content)

        node = start_node(*args, port=port)
        log = node.log()
        assert "warning: state file" in log and reason in log, log
        assert "this start will be cold" in log
        assert (tmp_path / "cache.mem.meta.bad").read_bytes() == content
        assert curr_items(port) == 0
        c = client(port)
        assert c.set("k", b"v", noreply=False) and c.get("k") == b"v"


def test_changed_memory_is_a_cold_start_with_the_reason(
    tmp_path: Path, start_node: StartNode
) -> None:
    port = free_port()
    mem = tmp_path / "cache.mem"
    node = start_node("--memory", "64", "--memory-file", str(mem), "--restartable", port=port)
    set_keys(client(port), 100)
    node.signal(signal.SIGTERM)
    assert node.wait() == 0

    node = start_node("--memory", "80", "--memory-file", str(mem), "--restartable", port=port)
    log = node.log()
    assert "this start will be cold because -m (--memory) changed (64 → 80)" in log, log
    assert curr_items(port) == 0
    assert int(client(port).stats()[b"limit_maxbytes"]) == 80 * MIB


def test_missing_memcached_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "node", "--memcached", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "apt-get install -y memcached" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    vol = tmp_path / "vol"
    vol.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(vol)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield vol
    subprocess.run(["umount", "-l", str(vol)], capture_output=True, timeout=30)


def test_size_from_volume_on_a_small_tmpfs(small_tmpfs: Path, start_node: StartNode) -> None:
    st = os.statvfs(small_tmpfs)
    total = st.f_blocks * st.f_frsize
    reserve = max(2 * MIB, total // 100) + MIB
    expected = (total - reserve) // MIB
    mem = small_tmpfs / "cache.mem"

    prep = subprocess.run(
        [sys.executable, "-m", "memfleet", "node", "prepare", "--memory-file", str(mem),
         "--size-from-volume", "--owner", "nobody"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert prep.returncode == 0, prep.stderr
    assert f"-m {expected}, preallocated" in prep.stderr
    assert mem.stat().st_size == expected * MIB
    assert mem.stat().st_uid == int(
        subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout
    )

    port = free_port()
    node = start_node(
        "--memory-file", str(mem), "--size-from-volume", "--restartable", port=port
    )  # fmt: skip
    assert f"-m {expected}" in node.log()
    c = client(port)
    assert int(c.stats()[b"limit_maxbytes"]) == expected * MIB
    assert mem.stat().st_size == expected * MIB
    assert expected * MIB + reserve <= total  # it fits, with the reserve left over
    set_keys(c, 1000)
    node.signal(signal.SIGTERM)
    assert node.wait() == 0
