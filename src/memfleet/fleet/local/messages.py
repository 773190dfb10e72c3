"""What ``memfleet up`` tells its user: progress lines, and why the fleet could not start."""

from __future__ import annotations

import click


class FleetError(Exception):
    """Why the fleet could not start; ``str()`` is the one-line message."""


class NameTaken(FleetError):
    """Another running ``memfleet up`` holds the fleet's name."""


def say(message: str) -> None:
    """A progress line on stderr (stdout carries the table)."""
    click.echo(f"memfleet up: {message}", err=True)
