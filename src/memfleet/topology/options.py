"""Command-line options shared by the commands that take a topology preset."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from memfleet.topology.presets import DEFAULT_TOPOLOGY, TOPOLOGIES

F = TypeVar("F", bound=Callable[..., object])


def topology_options(placement_help: str) -> Callable[[F], F]:
    """``--topology``, ``--shards``, ``--replicas`` and ``--placement``, the same everywhere."""

    def wrap(f: F) -> F:
        f = click.option(
            "--placement", type=click.Choice(["aligned", "independent"]), default="aligned",
            show_default=True, help=placement_help,
        )(f)  # fmt: skip
        f = click.option(
            "--replicas", type=click.IntRange(1, 64), default=2, show_default=True,
            help="Replica pools (replicated and replicated-sharded).",
        )(f)  # fmt: skip
        f = click.option(
            "--shards", type=click.IntRange(1, 1024), default=3, show_default=True,
            help="Shards per pool (nodes per replica).",
        )(f)  # fmt: skip
        return click.option(
            "--topology", type=click.Choice(TOPOLOGIES), default=DEFAULT_TOPOLOGY,
            show_default=True, help="Topology preset.",
        )(f)  # fmt: skip

    return wrap
