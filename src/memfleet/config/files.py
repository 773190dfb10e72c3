"""Which reader a config file takes: routelib Lua (``*.lua``, memcached's proxy's format)
or memfleet's YAML. Every path that loads a config (``memfleet proxy``, its reload and file
watch, ``memfleet up``) comes through here."""

from __future__ import annotations

from pathlib import Path

from memfleet.config import model
from memfleet.config.model import ProxyConfig


def load_config(path: str | Path) -> ProxyConfig:
    """Read and validate a config file (routelib Lua for ``*.lua``, else YAML); raise
    ConfigError with a one-line message."""
    if Path(path).suffix == ".lua":
        from memfleet.config.routelib import load_lua

        return load_lua(path)
    return model.load_config(path)
