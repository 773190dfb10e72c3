"""``memfleet config --from-routelib`` and ``--format routelib``: the CLI side (thin)."""

from __future__ import annotations

import sys
from typing import Any

import click
import yaml

from memfleet.config import ConfigError


def print_imported(path: str, fmt: str) -> None:
    """Import a routelib file and print it as memfleet YAML (or routelib again); the notes
    on what has no effect go to stderr; a refusal exits 2 with its one line."""
    from memfleet.config.model import parse_config
    from memfleet.config.routelib.importer import import_file

    try:
        imported = import_file(path)
        parse_config(imported.config, path)
    except ConfigError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    for note in imported.notes:
        click.echo(f"memfleet: note: {note}", err=True)
    if fmt == "routelib":
        print_routelib(imported.config, [f"imported by memfleet from {path}"])
    else:
        click.echo(yaml.safe_dump(imported.config, sort_keys=False), nl=False)


def print_routelib(cfg: dict[str, Any], header: list[str]) -> None:
    """Print a memfleet config as routelib Lua; exit 2 where routelib cannot say it."""
    from memfleet.config.routelib.render import RenderError, render_routelib

    try:
        click.echo(render_routelib(cfg, header), nl=False)
    except (RenderError, ConfigError) as exc:
        click.echo(f"memfleet: --format routelib: {exc}", err=True)
        sys.exit(2)


def preset_header(topology: str, placement: str, replicas: int) -> list[str]:
    """The first comment lines of a rendered preset: what it is, and its placement."""
    from memfleet import __version__

    lines = [f"memcached proxy (routelib) config for memfleet's {topology} topology, "
             f"rendered by memfleet {__version__}."]  # fmt: skip
    if topology == "replicated-sharded" and replicas > 1:
        if placement == "aligned":
            lines.append(
                "memfleet: aligned placement is just equal seeds: every replica pool hashes "
                "with the same (no) seed, so a key has the same shard in each."
            )
        else:
            lines.append("memfleet: independent placement: each replica pool has its own seed.")
    return lines
