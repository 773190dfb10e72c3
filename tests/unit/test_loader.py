"""The choice between the compiled hot path and the pure-Python sources (memfleet._loader)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import memfleet
from memfleet import _loader

HOT_MODULES = [
    "memfleet.proxy.connection",
    "memfleet.proxy.gate",
    "memfleet.backends.backend",
    "memfleet.protocol.parse",
]


def module_files(env: dict[str, str]) -> list[str]:
    """Where a fresh interpreter loads the hot modules from, under ``env``."""
    code = "import importlib\n" + "".join(
        f"print(importlib.import_module({name!r}).__file__)\n" for name in HOT_MODULES
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_this_run_uses_the_implementation_it_asked_for() -> None:
    # CI runs the suite twice: MEMFLEET_EXPECT_COMPILED=1 with a compiled build, then again
    # with MEMFLEET_PURE_PYTHON=1. Either way the other pass must not silently run instead.
    if os.environ.get("MEMFLEET_PURE_PYTHON"):
        assert not memfleet.is_compiled()
    elif os.environ.get("MEMFLEET_EXPECT_COMPILED"):
        assert memfleet.is_compiled(), "the compiled hot path was expected but is not in use"
    else:
        pytest.skip("neither MEMFLEET_PURE_PYTHON nor MEMFLEET_EXPECT_COMPILED is set")


def test_pure_python_flag_loads_every_module_from_source() -> None:
    env = {**os.environ, "MEMFLEET_PURE_PYTHON": "1"}
    files = module_files(env)
    assert len(files) == len(HOT_MODULES)
    assert all(f.endswith(".py") for f in files), files


def test_without_the_flag_a_compiled_build_is_used() -> None:
    compiled = _loader.compiled_modules()
    if not compiled:
        pytest.skip("this install is pure Python (no compiler at install time)")
    if _loader.stale_modules(compiled):
        pytest.skip("sources changed since the last build (rebuild: pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k != "MEMFLEET_PURE_PYTHON"}
    files = module_files(env)
    assert all(not f.endswith(".py") for f in files), files


def test_a_source_newer_than_its_compiled_module_is_stale(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    suffix = _loader.EXT_SUFFIXES[0]
    fresh_src, fresh_ext = pkg / "a.py", pkg / f"a{suffix}"
    old_src, old_ext = pkg / "sub" / "b.py", pkg / "sub" / f"b{suffix}"
    for path in (fresh_src, fresh_ext, old_src, old_ext):
        path.write_text("")
    os.utime(fresh_src, (1000, 1000))
    os.utime(fresh_ext, (2000, 2000))
    os.utime(old_ext, (1000, 1000))
    os.utime(old_src, (2000, 2000))  # edited after the build
    compiled = _loader.compiled_modules(pkg)
    assert sorted(compiled) == sorted([fresh_ext, old_ext])
    assert _loader.stale_modules(compiled) == [old_src]


def test_source_first_finder_only_answers_for_memfleet(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("X = 1\n")
    (tmp_path / f"mod{_loader.EXT_SUFFIXES[0]}").write_text("not an extension")
    finder = _loader.SourceFirstFinder()
    spec = finder.find_spec("memfleet.mod", [str(tmp_path)])
    assert spec is not None and spec.origin == str(tmp_path / "mod.py")
    assert finder.find_spec("other.mod", [str(tmp_path)]) is None
    assert finder.find_spec("memfleet", None) is None
    assert finder.find_spec("memfleet.missing", [str(tmp_path)]) is None
