"""memcached's proxy configs (routelib Lua), in and out: ``importer`` reads one (run by
``sandbox`` in a sandboxed real Lua), ``render`` writes one, ``handlers`` is the one table of
routelib names both use."""

from __future__ import annotations

import logging
from pathlib import Path

from memfleet.config.model import ProxyConfig, parse_config

log = logging.getLogger("memfleet.config")


def load_lua(path: str | Path) -> ProxyConfig:
    """A routelib config file as a validated memfleet config (``memfleet proxy --config
    FILE.lua``); what has no effect in memfleet is logged as a warning."""
    from memfleet.config.routelib.importer import import_file

    imported = import_file(path)
    for note in imported.notes:
        log.warning("%s", note, extra={"event": "routelib_note"})
    return parse_config(imported.config, str(path))
