"""The local zone of a routelib config, and the policy for what a config may read.

``local_zone("west")`` is the config's ``local_zone``. ``local_zone_from_env("NAME")``
reads that one environment variable when the config is loaded (by ``memfleet proxy``: at
start and at each reload; by ``memfleet config --from-routelib``: once, and the YAML holds
the value read). ``local_zone_from_file("PATH")`` reads that one file (relative to the
config's directory), at most 256 bytes, whose first line must be a zone name (letters,
digits, ``._-``); its content is never shown in a message. Nothing else of the environment
or the file system is visible to a config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_ZONE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ZONE_FILE_MAX = 256


def read_zone(kind: str, value: Any, environ: Mapping[str, str], base: Path) -> str:
    """The zone of a ``local_zone``/``local_zone_from_env``/``local_zone_from_file`` call;
    raise ValueError with the reason (never a file's content)."""
    if not isinstance(value, str):
        raise ValueError(f"{kind}() takes a string")
    if kind == "local_zone":
        zone = value
    elif kind == "local_zone_from_env":
        if not _ENV_NAME.match(value):
            raise ValueError(f"local_zone_from_env: {value!r} is not a variable name")
        if value not in environ:
            raise ValueError(f"local_zone_from_env: {value} is not set")
        zone = environ[value].strip()
    else:
        try:
            with (base / value).open("rb") as f:
                raw = f.read(ZONE_FILE_MAX + 1)
        except OSError as exc:
            raise ValueError(f"local_zone_from_file: cannot read {value}: {exc.strerror}") from None
        first = raw[:ZONE_FILE_MAX].decode("utf-8", "replace").splitlines()
        zone = first[0].strip() if first and len(raw) <= ZONE_FILE_MAX else ""
    if not _ZONE.match(zone):
        raise ValueError(f"{kind}: the zone must be 1-64 letters, digits, '.', '_' or '-'")
    return zone
