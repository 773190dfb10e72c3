"""Shared fixtures: real memcached nodes and proxies, always stopped afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Memcached, ProxyProcess


@pytest.fixture
def memcached_factory() -> Iterator[Callable[..., Memcached]]:
    if shutil.which("memcached") is None:
        pytest.fail("memcached is not installed: apt-get install -y memcached")
    started: list[Memcached] = []

    def make(**kw: object) -> Memcached:
        m = Memcached(**kw)  # type: ignore[arg-type]
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop()


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    started: list[ProxyProcess] = []

    def make(config: dict[str, object] | Path, extra_args: tuple[str, ...] = ()) -> ProxyProcess:
        p = ProxyProcess(config, tmp_path, extra_args)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()
