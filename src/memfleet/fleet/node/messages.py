"""What the node supervisor tells its user: log lines, and the errors the user can fix."""

from __future__ import annotations

import click

log_prefix = "memfleet node"


def say(message: str) -> None:
    """One log line on stderr (the supervisor's stdout is memcached's)."""
    click.echo(f"{log_prefix}: {message}", err=True)


class NodeError(Exception):
    """A problem the user can fix; ``str()`` is the one-line message, ``status`` the exit."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status
