"""Choose between the compiled (mypyc) hot path and the pure-Python sources at import time.

The compiled modules are built from the very same ``.py`` files and sit beside them, and
Python's import system prefers an extension module to a source file. Two cases need the
sources instead, and this module makes the import system load them:

- ``MEMFLEET_PURE_PYTHON=1``: asked for explicitly (the tests run the whole suite both ways);
- a source checkout whose compiled modules are older than their sources: a developer edited a
  file after the last build, and silently running the stale machine code would be worse than
  running slower. A warning says how to rebuild.

Compiled modules call each other's classes directly, so it is all or nothing: one stale module
sends every memfleet module to its source.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
EXT_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


class SourceFirstFinder(importlib.abc.MetaPathFinder):
    """Finds ``memfleet.*`` modules as ``.py`` files, ignoring compiled ones beside them."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Spec for the ``.py`` of ``fullname``; None (the normal finders decide) otherwise."""
        if path is None or not fullname.startswith("memfleet."):
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, leaf + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def compiled_modules(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The compiled modules installed beside their sources under ``package_dir``."""
    found = []
    for root, _dirs, files in os.walk(package_dir):
        for name in files:
            if name.endswith(EXT_SUFFIXES):
                found.append(Path(root) / name)
    return found


def stale_modules(compiled: list[Path]) -> list[Path]:
    """Sources (``.py``, or the C helper's ``.c``) edited after their module was compiled
    (only meaningful in a source checkout: installing a wheel does not keep the build's file
    times)."""
    stale = []
    for ext in compiled:
        stem = ext.name.split(".", 1)[0]
        for source in (ext.with_name(stem + ".py"), ext.with_name(stem + ".c")):
            if source.exists() and source.stat().st_mtime > ext.stat().st_mtime:
                stale.append(source)
    return stale


def in_source_checkout() -> bool:
    """True for an editable install (``src/memfleet`` beside ``pyproject.toml``)."""
    return (PACKAGE_DIR.parent.parent / "pyproject.toml").exists()


def choose() -> None:
    """Install the source-first finder if pure Python is asked for or the build is stale."""
    if os.environ.get("MEMFLEET_PURE_PYTHON"):
        sys.meta_path.insert(0, SourceFirstFinder())
        return
    if not in_source_checkout():
        return
    stale = [str(p.relative_to(PACKAGE_DIR.parent)) for p in stale_modules(compiled_modules())]
    if stale:
        sys.meta_path.insert(0, SourceFirstFinder())
        warnings.warn(
            f"memfleet: {', '.join(stale[:3])}{' ...' if len(stale) > 3 else ''} changed after "
            "the compiled hot path was built; running the pure-Python sources. Rebuild with "
            "./scripts/setup.sh (or pip install -e .) to get the compiled speed back.",
            stacklevel=2,
        )


def is_compiled() -> bool:
    """Whether the proxy's request path is running compiled code."""
    from memfleet.protocol import parse

    return str(parse.__file__).endswith(EXT_SUFFIXES)
