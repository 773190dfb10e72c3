"""The local fleet's rules without processes: restart back-off, exit statuses, where named
fleets live, and how `memfleet status` turns what it saw into an exit code and a table."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from memfleet.fleet.local.messages import FleetError, NameTaken
from memfleet.fleet.local.registry import FleetLock, check_name, is_running, state_dir
from memfleet.fleet.local.restarts import MAX_DELAY, STABLE_AFTER, Restarts
from memfleet.fleet.local.status import FleetStatus, NodeStatus, ProxyStatus
from memfleet.fleet.local.status_view import format_status
from memfleet.fleet.processes import describe_exit, exit_status


def test_back_off_doubles_caps_and_forgives_a_stable_run() -> None:
    r = Restarts()
    r.started(0.0)
    delays = []
    now = 0.0
    for _ in range(8):
        now += 0.5  # dies half a second after each start
        delay = r.exited(now, "status 137 (SIGKILL)", "always")
        assert delay is not None and r.down and not r.is_due(now)
        assert r.is_due(now + delay)
        delays.append(delay)
        now += delay
        r.restarted(now)
    assert delays == [1, 2, 4, 8, 16, MAX_DELAY, MAX_DELAY, MAX_DELAY]
    assert r.count == 8 and not r.down
    now += STABLE_AFTER  # ran long enough: the next crash starts over at 1 s
    assert r.exited(now, "status 1", "always") == 1


def test_restart_never_schedules_nothing() -> None:
    r = Restarts()
    r.started(0.0)
    assert r.exited(1.0, "status 137 (SIGKILL)", "never") is None
    assert r.down and r.due is None and not r.is_due(1e9)


def test_one_exit_status_per_kind_of_death() -> None:
    # Popen says -9 for a supervisor killed by SIGKILL; a supervisor whose memcached was
    # killed exits 137. Both are the same death.
    assert exit_status(-9) == exit_status(137) == 137
    assert describe_exit(-9) == describe_exit(137) == "status 137 (SIGKILL)"
    assert describe_exit(-15) == "status 143 (SIGTERM)"
    assert describe_exit(0) == "status 0" and describe_exit(2) == "status 2"


def test_state_dir_is_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    assert state_dir() == run / "memfleet"
    # Unset (root, CI): memfleet-UID in the temporary directory, created private.
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path = state_dir()
    assert path == tmp_path / f"memfleet-{os.getuid()}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    path.chmod(0o777)  # someone else could have made or opened it: refused, not used
    with pytest.raises(FleetError, match="mode 0700"):
        state_dir()


def test_fleet_names_are_file_names() -> None:
    assert check_name("default") == "default" and check_name("drill-12.a_b") == "drill-12.a_b"
    for bad in ("", "../x", "a/b", "Upper", "-x", "x" * 64):
        with pytest.raises(FleetError, match="--name"):
            check_name(bad)


def test_the_lock_tells_a_running_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    assert not is_running("x")
    lock = FleetLock("x")
    lock.acquire()
    try:
        assert is_running("x") and lock.held
        # Another process cannot take the name while this one holds it.
        code = ("from memfleet.fleet.local.registry import FleetLock\n"
                "FleetLock('x').acquire()")  # fmt: skip
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=30, env={**os.environ})  # fmt: skip
        assert r.returncode != 0 and "NameTaken" in r.stderr
        assert f"pid {os.getpid()}" in r.stderr
    finally:
        lock.release()
    assert not is_running("x")
    assert issubclass(NameTaken, FleetError)


def node(name: str, **kw: object) -> NodeStatus:
    base: dict[str, object] = {"name": name, "address": "127.0.0.1:1", "replica": 0, "shard": 0,
                               "process": "running", "restarts": 0, "last_exit": None,
                               "answers": True, "in_proxy": "up"}  # fmt: skip
    base.update(kw)
    return NodeStatus(**base)  # type: ignore[arg-type]


def fleet(*nodes: NodeStatus, proxy_answers: bool = True) -> FleetStatus:
    st = FleetStatus("default", "/x.json", running=True, topology="sharded, 2 shards")
    st.proxy = ProxyStatus("127.0.0.1:2", "running", 0, None, proxy_answers)
    st.nodes = list(nodes)
    return st


def test_status_exit_codes() -> None:
    assert fleet(node("a"), node("b")).exit_code == 0
    assert FleetStatus("default", "/x.json", running=False, why="gone").exit_code == 2
    down = fleet(node("a"), node("b", process="restarting", last_exit="status 137 (SIGKILL)"))
    assert down.exit_code == 1 and down.problems == ["b down"]
    assert fleet(node("a", answers=False)).exit_code == 1
    # Back and answering, but the proxy keeps it out until its missed writes are repaired.
    repair = fleet(node("a", in_proxy="repair", journal=12))
    assert repair.exit_code == 1 and repair.nodes[0].health == "repair"
    assert fleet(node("a"), proxy_answers=False).problems == ["proxy down"]


def test_status_table_names_what_is_wrong() -> None:
    text = format_status(fleet(node("memcached-0", items=10, bytes=2 << 20,
                                    limit_bytes=64 << 20, hit_rate=0.5, ops_per_sec=12.0),
                               node("memcached-1", process="restarting",
                                    last_exit="status 137 (SIGKILL)")))  # fmt: skip
    assert "memcached-0  127.0.0.1:1  up" in text
    assert "2.0/64 MB" in text and "50.0%" in text
    assert "down, restarting" in text
    assert text.splitlines()[-1] == "degraded: memcached-1 down (exited with status 137 (SIGKILL))"
    ok = format_status(fleet(node("memcached-0")))
    assert ok.splitlines()[-1] == "ok: the proxy and all 1 nodes are up"


def test_the_status_page_reads_the_journal_either_way() -> None:
    from types import SimpleNamespace

    from memfleet.observe.status_data import backend_state, rejoin_view, repaired

    # A backend with a public count (-1: a flush is due) ...
    public = SimpleNamespace(journaled=7, down=True, failures=0, invalidated=2, repaired=3)
    assert rejoin_view(public) == (7, False) and backend_state(public) == "repair"  # type: ignore[arg-type]
    assert repaired(public) == 5  # type: ignore[arg-type]
    flush = SimpleNamespace(journaled=-1, down=True, failures=0)
    assert rejoin_view(flush) == (None, True) and backend_state(flush) == "repair"  # type: ignore[arg-type]
    # ... or only its journal; down with nothing to repair is plain down.
    inner = SimpleNamespace(_journal={b"k"}, _flush_on_rejoin=False, down=False, failures=1)
    assert rejoin_view(inner) == (1, False) and backend_state(inner) == "failing"  # type: ignore[arg-type]
    assert backend_state(SimpleNamespace(_journal=set(), down=True, failures=3)) == "down"  # type: ignore[arg-type]
