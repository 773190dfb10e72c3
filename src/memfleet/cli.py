"""The ``memfleet`` command line. Thin: parse flags, call the modules that do the work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import click

from memfleet import __version__
from memfleet.config import ConfigError, load_config, parse_hostport

log = logging.getLogger("memfleet")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def install_uvloop() -> bool:
    """Use uvloop where it is installed (it is the largest single speed-up)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memfleet")
def main() -> None:
    """memfleet: memcached as a distributed cache."""


@main.command()
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="Proxy config file (YAML).",
)  # fmt: skip
@click.option("--listen", default=None, help="HOST:PORT to listen on (overrides the config).")
@click.option("--log-level", default="info", show_default=True)
@click.option("--no-uvloop", is_flag=True, help="Use asyncio's own event loop.")
def proxy(config_path: str, listen: str | None, log_level: str, no_uvloop: bool) -> None:
    """Run the memcached-protocol routing proxy."""
    _setup_logging(log_level)
    try:
        cfg = load_config(config_path)
        if listen is not None:
            parse_hostport(listen)
    except ConfigError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    except ValueError as exc:
        click.echo(f"memfleet: --listen: {exc}", err=True)
        sys.exit(2)
    if not no_uvloop:
        install_uvloop()
    try:
        asyncio.run(_run_proxy(cfg, config_path, listen))
    except OSError as exc:
        click.echo(f"memfleet: cannot listen on {listen or cfg.listen}: {exc.strerror}", err=True)
        sys.exit(1)


async def _run_proxy(cfg: object, config_path: str, listen: str | None) -> None:
    from memfleet.config import ProxyConfig
    from memfleet.server import Proxy

    assert isinstance(cfg, ProxyConfig)
    proxy = Proxy(cfg, config_path)
    await proxy.start(listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, proxy.reload)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        with contextlib.suppress(Exception):
            await proxy.close()


if __name__ == "__main__":  # pragma: no cover
    main()
