"""The click commands ``memfleet node`` (run the supervisor) and ``memfleet node prepare``.

They live here rather than in :mod:`memfleet.cli` because ``python -m memfleet.fleet.node``
must run them without importing the command line (which brings the proxy and pydantic).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from memfleet.fleet.node.messages import NodeError, say
from memfleet.fleet.node.plan import NodeOptions
from memfleet.fleet.node.prepare import prepare
from memfleet.fleet.node.supervisor import Supervisor
from memfleet.manpage import ManCommand, ManGroup


class _NodeGroup(ManGroup):
    """``memfleet node [OPTIONS] [-- MEMCACHED ARGS]`` runs the supervisor; ``memfleet node
    prepare`` is the init-container step. Everything after ``--`` goes to memcached."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["memfleet.passthrough"] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)


@contextlib.contextmanager
def _user_errors_exit() -> Iterator[None]:
    """A node's own errors and file errors end the command with one line, not a traceback."""
    try:
        yield
    except NodeError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(exc.status)
    except OSError as exc:
        click.echo(f"memfleet: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        sys.exit(1)


@click.group(
    "node", cls=_NodeGroup, invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    examples=(
        ("memfleet node --port 11211 --memory 1024", "One memcached of 1 GB on 127.0.0.1."),
        ("memfleet node --memory-file /pmem/cache --size-from-volume --restartable",
         "The cache in a file on a PMEM (or tmpfs) volume, sized from it, warm across "
         "restarts."),
        ("memfleet node --memory 64 --metrics 127.0.0.1:9151 -- -t 2", "Prometheus metrics "
         "on port 9151; memcached's own -t 2 passed through."),
    ),
    exit_codes=(
        (0, "memcached stopped when asked (SIGTERM, SIGINT)"),
        (1, "a file could not be prepared (the message names it)"),
        (2, "a bad option, memcached missing, or a --metrics port taken"),
        ("128+N", "memcached was killed by signal N (137: SIGKILL)"),
        ("other", "memcached's own exit status"),
    ),
    environment=(
        ("MEMFLEET_POOL, MEMFLEET_REPLICA, MEMFLEET_SHARD", "The metrics labels (as "
         "--pool, --replica, --shard)."),
        ("MEMFLEET_PURE_PYTHON=1", "Run memfleet uncompiled (the node runs no hot path)."),
    ),
)  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=11211, show_default=True,
              help="memcached's TCP port (-p).")  # fmt: skip
@click.option("--listen", default="127.0.0.1", show_default=True, help="memcached's -l.")
@click.option("--memory", type=click.IntRange(1), default=None,
              help="Cache size in MB (-m).  [default: 64, or from the volume]")  # fmt: skip
@click.option(
    "--memory-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Keep the cache in this mmap'd file (memcached -e): PMEM, DAX, tmpfs.",
)  # fmt: skip
@click.option(
    "--size-from-volume", is_flag=True,
    help="Size the cache from the file system holding --memory-file (minus a reserve).",
)  # fmt: skip
@click.option(
    "--restartable", is_flag=True,
    help="Warm restarts: stop gracefully (SIGUSR1) on SIGTERM/SIGINT, check the state file.",
)  # fmt: skip
@click.option("--user", default=None,
              help="memcached's -u.  [default: root when run as root, else none]")  # fmt: skip
@click.option(
    "--ready-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Touched once memcached answers version; removed on exit.",
)  # fmt: skip
@click.option("--stop-timeout", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="Seconds a stop (a restartable node saving its cache) may take before "
              "SIGKILL.")  # fmt: skip
@click.option("--memcached", "memcached_bin", default=None,
              help="memcached binary to run.  [default: memcached on PATH, "
              "/usr/bin/memcached]")  # fmt: skip
@click.option(
    "--metrics", default=None, metavar="HOST:PORT",
    help="Serve memcached's stats as Prometheus metrics (/metrics, /healthz, /readyz).",
)  # fmt: skip
@click.option(
    "--metrics-interval", type=click.FloatRange(0.1), default=5.0, show_default=True,
    help="Seconds between two stats polls of memcached.",
)  # fmt: skip
@click.option(
    "--pool", envvar="MEMFLEET_POOL", default="", show_envvar=True,
    help="Metrics label: the proxy pool ({replica} and {shard} are filled in).  [default: "
    "none]",
)  # fmt: skip
@click.option("--replica", envvar="MEMFLEET_REPLICA", default="", show_envvar=True,
              help="Metrics label: the replica.  [default: none]")  # fmt: skip
@click.option("--shard", envvar="MEMFLEET_SHARD", default="", show_envvar=True,
              help="Metrics label: the shard.  [default: none]")  # fmt: skip
@click.pass_context
def node_group(
    ctx: click.Context,
    port: int,
    listen: str,
    memory: int | None,
    memory_file: Path | None,
    size_from_volume: bool,
    restartable: bool,
    user: str | None,
    ready_file: Path | None,
    stop_timeout: float,
    memcached_bin: str | None,
    metrics: str | None,
    metrics_interval: float,
    pool: str,
    replica: str,
    shard: str,
) -> None:
    """Supervise one memcached: memory-file sizing, warm restarts, readiness, metrics
    (extra memcached arguments after --)."""
    if ctx.invoked_subcommand is not None:
        return
    opts = NodeOptions(
        port=port,
        listen=listen,
        memory=memory,
        memory_file=memory_file.absolute() if memory_file else None,
        size_from_volume=size_from_volume,
        restartable=restartable,
        user=user,
        ready_file=ready_file,
        stop_timeout=stop_timeout,
        memcached=memcached_bin,
        extra=list(ctx.meta.get("memfleet.passthrough", [])),
        metrics=metrics,
        metrics_interval=metrics_interval,
        pool=pool,
        replica=replica,
        shard=shard,
    )
    with _user_errors_exit():
        status = Supervisor(opts).run()
    sys.exit(status)


@node_group.command(
    "prepare", cls=ManCommand,
    examples=(
        ("memfleet node prepare --memory-file /pmem/cache --size-from-volume --owner memcache",
         "A Kubernetes init container (as root): size and preallocate the file, check its "
         "state file, give both to the memcache user."),
    ),
    exit_codes=((0, "prepared"), (1, "a file could not be prepared"), (2, "a bad option")),
)  # fmt: skip
@click.option(
    "--memory-file", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="The memory file the node will use.",
)  # fmt: skip
@click.option("--memory", type=click.IntRange(1), default=None,
              help="Cache size in MB.  [default: 64, or from the volume]")  # fmt: skip
@click.option("--size-from-volume", is_flag=True, help="Size from the file system.")
@click.option("--owner", default=None,
              help="User to give the files to (e.g. memcache).  [default: unchanged]")  # fmt: skip
@click.option(
    "--restartable/--not-restartable", default=True, show_default=True,
    help="Keep a valid state file (else remove it).",
)  # fmt: skip
def prepare_cmd(
    memory_file: Path,
    memory: int | None,
    size_from_volume: bool,
    owner: str | None,
    restartable: bool,
) -> None:
    """Size and preallocate a memory file, check its state file and chown both (for a
    Kubernetes init container)."""
    with _user_errors_exit():
        summary = prepare(memory_file.absolute(), memory, size_from_volume, owner, restartable)
    say(f"prepared {summary}")
