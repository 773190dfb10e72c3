"""The ``memfleet`` command line. Thin: parse flags, call the modules that do the work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import click

from memfleet import __version__
from memfleet.config import ConfigError, load_config, parse_hostport
from memfleet.manpage import ENVIRONMENT, ManCommand, ManGroup
from memfleet.topology.options import topology_options
from memfleet.topology.presets import Topology, template_address

DEFAULT_BACKEND_TEMPLATE = "{name}.{statefulset}-headless.default.svc.cluster.local:11211"

log = logging.getLogger("memfleet")


def _setup_logging(level: str, fmt: str = "text") -> None:
    from memfleet.logs import setup_logging

    setup_logging(level, fmt)


def install_uvloop() -> bool:
    """Use uvloop where it is installed (it is the largest single speed-up)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def version_text() -> str:
    """``memfleet --version``: memfleet's version, which hot path runs, Python's version."""
    from memfleet import is_compiled

    hot = "compiled" if is_compiled() else "pure Python"
    return f"memfleet {__version__} (hot path: {hot}; Python {sys.version.split()[0]})"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit()


@click.group(
    cls=ManGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    examples=(
        ("./scripts/setup.sh && source .venv/bin/activate", "Install, then put memfleet on "
         "the PATH of this shell (or call .venv/bin/memfleet)."),
        ("memfleet up", "A local fleet: 2 replicas × 3 shards of memcached behind the proxy "
         "on 127.0.0.1:11211."),
        ("memfleet status --watch", "Watch it (another terminal); `memfleet down` stops it."),
        ("memfleet COMMAND --help", "Each command's options, examples and exit statuses."),
    ),
    exit_codes=(
        (0, "success"),
        (1, "the command ran and failed (each command says what)"),
        (2, "bad usage: an unknown option, a bad value, a config refused"),
    ),
)  # fmt: skip
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
    help="Print the version and which hot path runs.",
)  # fmt: skip
def main() -> None:
    """memfleet: memcached as a distributed cache, on one machine or on Kubernetes: a
    memcached-protocol routing proxy in front of real memcached nodes."""


PROXY_EXAMPLES = (
    ("memfleet proxy --config proxy.yaml", "Serve the config's pools and routes on its "
     "listen address (examples/proxy.yaml shows every option)."),
    ("memfleet proxy --config proxy.yaml --listen 127.0.0.1:11311 --metrics 127.0.0.1:9150",
     "Another port, with the status page on http://127.0.0.1:9150/ and /metrics."),
    ("memfleet config --topology sharded > proxy.yaml", "A config to start from."),
    ("kill -HUP PID", "Reload the config (a bad one is refused; the old one keeps serving)."),
)  # fmt: skip
PROXY_EXIT = (
    (0, "stopped by SIGTERM or Ctrl-C"),
    (1, "could not listen (the message names the address: the memcache port or --metrics)"),
    (2, "the config or an option was refused (file, field and reason on one line)"),
)
PROXY_ENV = (
    ("MEMFLEET_ZONE", "This proxy's zone (as --zone)."),
    *ENVIRONMENT,
)


@main.command(cls=ManCommand, examples=PROXY_EXAMPLES, exit_codes=PROXY_EXIT,
              environment=PROXY_ENV)  # fmt: skip
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="Proxy config file: YAML (listen, pools, routes, limits, TLS, auth), or a routelib "
    "Lua file (*.lua) of memcached's proxy.",
)  # fmt: skip
@click.option("--listen", default=None,
              help="HOST:PORT to listen on.  [default: the config's listen]")  # fmt: skip
@click.option(
    "--zone", envvar="MEMFLEET_ZONE", default=None,
    help="This proxy's zone for zfailover routes (env MEMFLEET_ZONE).  [default: the "
    "config's local_zone]",
)  # fmt: skip
@click.option(
    "--watch-interval", type=click.FloatRange(0), default=1.0, show_default=True,
    help="Seconds between checks of the config file for changes (0: only SIGHUP reloads).",
)  # fmt: skip
@click.option("--log-level", default="info", show_default=True,
              help="debug, info, warning or error.")  # fmt: skip
@click.option("--no-uvloop", is_flag=True, help="Use asyncio's own event loop (slower).")
@click.option(
    "--metrics", default=None, metavar="HOST:PORT",
    help="Serve the status page (/), Prometheus /metrics, /healthz and /readyz over HTTP "
    "here.  [default: none]",
)  # fmt: skip
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="json: one object per line, with an event field.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(1, 256), default=1, show_default=True,
    help="Proxy processes sharing the port (SO_REUSEPORT), e.g. one per core.",
)  # fmt: skip
@click.option("--reuse-port", is_flag=True, hidden=True, help="Set by --workers for each worker.")
def proxy(
    config_path: str,
    listen: str | None,
    zone: str | None,
    watch_interval: float,
    log_level: str,
    no_uvloop: bool,
    metrics: str | None,
    log_format: str,
    workers: int,
    reuse_port: bool,
) -> None:
    """Run the memcached-protocol routing proxy (any memcached client can talk to it)."""
    _setup_logging(log_level, log_format)
    if metrics is not None:
        try:
            parse_hostport(metrics)
        except ValueError as exc:
            click.echo(f"memfleet: --metrics: {exc}", err=True)
            sys.exit(2)
    try:
        cfg = load_config(config_path)
        if listen is not None:
            parse_hostport(listen)
        if zone is not None:
            from memfleet.config.routes import check_routes

            check_routes(cfg.routes, cfg.named_routes, set(cfg.pools), zone)
    except ConfigError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    except ValueError as exc:
        flag = "--zone" if zone is not None and "zone" in str(exc) else "--listen"
        click.echo(f"memfleet: {flag}: {exc}", err=True)
        sys.exit(2)
    if workers > 1:
        try:
            sys.exit(_supervise(workers, cfg.listen if listen is None else listen, metrics))
        except OSError as exc:  # the merged metrics port is the one thing bound here
            what = f"--metrics {metrics}: cannot listen" if metrics else "cannot start workers"
            click.echo(f"memfleet: {what}: {_why(exc)}", err=True)
            sys.exit(1)
    if not no_uvloop:
        install_uvloop()
    try:
        asyncio.run(
            _run_proxy(
                cfg,
                config_path,
                listen,
                zone,
                watch_interval,
                metrics=metrics,
                reuse_port=reuse_port,
            )
        )
    except MetricsListenError as exc:
        click.echo(f"memfleet: --metrics {metrics}: cannot listen: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"memfleet: cannot listen on {listen or cfg.listen}: {_why(exc)}", err=True)
        sys.exit(1)


def _why(exc: OSError) -> str:
    """The OS's reason alone (asyncio's message repeats the address, in another form)."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


class MetricsListenError(Exception):
    """The metrics port could not be bound (told apart from the memcache port's error)."""


def _supervise(workers: int, listen: str, metrics: str | None) -> int:
    """Run ``workers`` copies of this very command on one port; see memfleet.workers."""
    from memfleet.proxy.workers import supervise

    host, port = parse_hostport(listen)
    args = sys.argv[sys.argv.index("proxy") + 1 :]
    worker_args: list[str] = []
    skip = False
    for a in args:  # the workers get everything but --workers, --metrics and --listen
        if skip:
            skip = False
            continue
        if a in ("--workers", "--metrics", "--listen"):
            skip = True
            continue
        if a.startswith(("--workers=", "--metrics=", "--listen=")):
            continue
        worker_args.append(a)
    worker_args += ["--listen", f"{host}:{port}"]
    return supervise(worker_args, workers, parse_hostport(metrics) if metrics else None)


async def _run_proxy(
    cfg: object,
    config_path: str,
    listen: str | None,
    zone: str | None,
    watch_interval: float,
    metrics: str | None = None,
    reuse_port: bool = False,
) -> None:
    from memfleet.config import ProxyConfig
    from memfleet.proxy.app import Proxy

    assert isinstance(cfg, ProxyConfig)
    proxy = Proxy(cfg, config_path, zone)
    # The signals first: a SIGHUP that arrived between listening and these (a deploy tool
    # reloading a proxy it has just seen listen) would otherwise end the process.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, proxy.reload)
    metrics_server = None
    if metrics is not None:
        from memfleet.observe import metrics as metrics_mod

        metrics_mod.enable(proxy)  # before the first client: latency is measured from then on
        from memfleet.observe.status_page import StatusPage

        metrics_server = metrics_mod.MetricsServer(proxy, StatusPage(proxy))
        try:
            await metrics_server.start(*parse_hostport(metrics))
        except OSError as exc:
            raise MetricsListenError(_why(exc)) from None
    await proxy.start(listen, reuse_port=reuse_port)
    from memfleet.proxy.app import tune_gc_for_serving

    tune_gc_for_serving()
    watcher = loop.create_task(proxy.watch_config(watch_interval)) if watch_interval else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        log.info("shutting down")
        if metrics_server is not None:
            with contextlib.suppress(Exception):
                await metrics_server.close()
        with contextlib.suppress(Exception):
            await proxy.close()


@main.command(
    "config", cls=ManCommand,
    examples=(
        ("memfleet config --topology sharded --shards 4 > proxy.yaml", "A sharded pool over "
         "the 4 pods of a StatefulSet."),
        ("memfleet config --topology gutter --backend-template '127.0.0.1:{shard}1211'",
         "Backends on this machine instead of Kubernetes DNS names."),
        ("memfleet config --from-routelib proxy.lua > proxy.yaml", "memcached's proxy "
         "config (routelib) as memfleet YAML."),
        ("memfleet config --topology gutter --format routelib > gutter.lua", "A routelib "
         "config for memcached's own proxy."),
    ),
    exit_codes=((0, "printed"), (2, "a bad option or a bad --backend-template field")),
)  # fmt: skip
@topology_options("replicated-sharded: one seed for all replicas, or one each.")
@click.option(
    "--backend-template", default=DEFAULT_BACKEND_TEMPLATE, show_default=True,
    help="Backend address; fields {name} {statefulset} {pool} {role} {replica} {shard}.",
)  # fmt: skip
@click.option("--gutter-ttl", type=click.IntRange(1), default=10, show_default=True,
              help="gutter: the TTL cap (seconds) of what the gutter pool stores.")  # fmt: skip
@click.option("--local-ttl-max", type=click.IntRange(1), default=5, show_default=True,
              help="local-failover: the TTL cap (seconds) of the local tier.")  # fmt: skip
@click.option("--listen", default="0.0.0.0:11211", show_default=True,
              help="The config's listen address.")  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "routelib"]), default="yaml",
    show_default=True, help="routelib: a Lua config for memcached's own proxy.",
)  # fmt: skip
@click.option(
    "--from-routelib", type=click.Path(dir_okay=False), default=None, metavar="FILE.lua",
    help="Convert memcached's proxy config (routelib Lua) instead of a preset.",
)  # fmt: skip
def config_cmd(
    topology: str,
    shards: int,
    replicas: int,
    placement: str,
    backend_template: str,
    gutter_ttl: int,
    local_ttl_max: int,
    listen: str,
    fmt: str,
    from_routelib: str | None,
) -> None:
    """Print the proxy config of a topology preset (YAML, for `memfleet proxy --config`)."""
    import yaml

    from memfleet.cli import routelib

    if from_routelib is not None:
        routelib.print_imported(from_routelib, fmt)
        return

    topo = Topology(
        topology,
        shards=shards,
        replicas=replicas,
        placement="aligned" if placement == "aligned" else "independent",
        gutter_ttl=gutter_ttl,
        local_ttl_max=local_ttl_max,
    )
    try:
        cfg = topo.proxy_config(template_address(backend_template), listen=listen)
    except (KeyError, IndexError, ValueError) as exc:
        click.echo(f"memfleet: --backend-template: bad field {exc}", err=True)
        sys.exit(2)
    if fmt == "routelib":
        routelib.print_routelib(cfg, routelib.preset_header(topology, placement, replicas))
        return
    click.echo(yaml.safe_dump(cfg, sort_keys=False), nl=False)


# Kubernetes manifests: `memfleet render` (the renderer itself, memfleet.kube, has no commands).
from memfleet.cli.render import render_cmd  # noqa: E402

main.add_command(render_cmd)


# Local fleet and node supervisor: `memfleet node`, `up`, `status`, `down`, `fault`. The node
# command lives beside the supervisor: `python -m memfleet.fleet.node` runs it without the CLI.
from memfleet.cli.fleet import up_cmd  # noqa: E402
from memfleet.cli.fleet_ops import down_cmd, fault_cmd, status_cmd  # noqa: E402
from memfleet.fleet.node.command import node_group  # noqa: E402

main.add_command(node_group)
main.add_command(up_cmd)
main.add_command(status_cmd)
main.add_command(down_cmd)
main.add_command(fault_cmd)

# Observability: `memfleet bench` (load generator) and `memfleet drill` (fault drills).
from memfleet.cli.bench import bench_cmd  # noqa: E402
from memfleet.cli.drill import drill_cmd  # noqa: E402

main.add_command(bench_cmd)
main.add_command(drill_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
