"""Build memfleet, compiling the proxy's hot path to C with mypyc where a compiler is available.

Everything else about the package lives in pyproject.toml; this file only adds the compiled
modules. ``MEMFLEET_COMPILE`` chooses:

- unset or ``auto``: compile when a C compiler and Python's headers are present, otherwise
  install pure Python and say so (the proxy works either way, only slower);
- ``1``: compile, and fail the install if that is not possible (CI uses this, so a broken
  compile cannot hide behind the fallback);
- ``0``: pure Python.

The compiled modules are the same source files; ``MEMFLEET_PURE_PYTHON=1`` at run time makes an
installed package ignore them (see ``memfleet/_loader.py``).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent

# The modules a request passes through, plus the ones that subclass or are subclassed by them
# (a compiled class can only be extended by another compiled class, except where marked).
COMPILED = [
    "memfleet/protocol/buffer.py",
    "memfleet/protocol/errors.py",
    "memfleet/protocol/requests.py",
    "memfleet/protocol/text_framing.py",
    "memfleet/protocol/parse.py",
    "memfleet/protocol/responses.py",
    "memfleet/protocol/commands.py",
    "memfleet/protocol/binary/packets.py",
    "memfleet/protocol/binary/translate.py",
    "memfleet/protocol/binary/parse.py",
    "memfleet/backends/hashing.py",
    "memfleet/proxy/limits.py",
    "memfleet/observe/stats.py",
    "memfleet/backends/failure.py",
    "memfleet/backends/latency.py",
    "memfleet/backends/fence.py",
    "memfleet/backends/endpoint.py",
    "memfleet/backends/connection.py",
    "memfleet/backends/repair.py",
    "memfleet/backends/backend.py",
    "memfleet/backends/pool.py",
    "memfleet/routes/base.py",
    "memfleet/routes/pool.py",
    "memfleet/routes/migrate_state.py",
    "memfleet/routes/migrate.py",
    "memfleet/routes/waits.py",
    "memfleet/routes/fanout.py",
    "memfleet/routes/allsync.py",
    "memfleet/routes/failover.py",
    "memfleet/routes/modify.py",
    "memfleet/routes/misc.py",
    "memfleet/routes/command.py",
    "memfleet/proxy/gate.py",
    "memfleet/proxy/budget.py",
    "memfleet/proxy/flow.py",
    "memfleet/proxy/serving.py",
    "memfleet/proxy/answers.py",
    "memfleet/proxy/client_flow.py",
    "memfleet/proxy/connection.py",
    "memfleet/proxy/binary_connection.py",
    "memfleet/sockio.py",
]

# The one hand-written C module: a socket send that keeps the GIL (see memfleet/sockio.py).
SOCKIO = Extension("memfleet._sockio", ["src/memfleet/_sockio.c"], extra_compile_args=["-O2"])

# Type-checking for compilation only: the build environment does not have the runtime
# dependencies (pydantic, uvloop...), and the strict project settings are enforced by CI's own
# mypy run, not here.
MYPY_BUILD_CONFIG = """\
[mypy]
python_version = 3.11
ignore_missing_imports = True
follow_imports = silent
"""


def _mode() -> str:
    mode = os.environ.get("MEMFLEET_COMPILE", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        sys.exit(f"setup.py: MEMFLEET_COMPILE={mode!r}: must be auto, 0 or 1")
    return mode


def _toolchain_missing() -> str | None:
    """Why this machine cannot compile extensions, or None if it can."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc}) on PATH"
    include = sysconfig.get_paths().get("include", "")
    if not (Path(include) / "Python.h").exists():
        return f"Python headers missing ({include}/Python.h; install python3-dev)"
    return None


class _BuildExt(build_ext):
    """build_ext that, in auto mode, falls back to pure Python if the C build itself fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if _mode() == "1":
                raise
            print(
                f"memfleet: compiling the hot path failed ({exc}); installing pure Python",
                file=sys.stderr,
            )


def _extensions() -> list[object]:
    mode = _mode()
    if mode == "0":
        return []
    missing = _toolchain_missing()
    if missing is not None:
        if mode == "1":
            sys.exit(f"setup.py: MEMFLEET_COMPILE=1 but {missing}")
        print(f"memfleet: {missing}; installing pure Python (slower)", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    fd, cfg = tempfile.mkstemp(suffix=".ini", prefix="memfleet-mypyc-")
    with os.fdopen(fd, "w") as f:
        f.write(MYPY_BUILD_CONFIG)
    try:
        paths = [f"src/{p}" for p in COMPILED]
        compiled = mypycify(["--config-file", cfg, *paths], opt_level="3", group_name="memfleet")
        return [*compiled, SOCKIO]
    finally:
        os.unlink(cfg)


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildExt})
