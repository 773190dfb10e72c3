"""The memcached binary: where it is, and which version it is."""

from __future__ import annotations

import os
import shutil
import subprocess

from memfleet.fleet.node.messages import NodeError

INSTALL_HINT = "apt-get install -y memcached"


def find_memcached(explicit: str | None = None) -> str:
    """The memcached binary; NodeError naming the install command when it is missing."""
    candidate = explicit or shutil.which("memcached") or "/usr/bin/memcached"
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    raise NodeError(f"memcached not found ({candidate}); install it: {INSTALL_HINT}")


def memcached_version(binary: str) -> str:
    """``1.6.18`` from ``memcached -V`` (empty when it cannot be told)."""
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    parts = out.split()
    return parts[1] if len(parts) >= 2 else ""
