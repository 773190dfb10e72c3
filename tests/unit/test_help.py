"""Every command's --help reads like a man page: summaries whole, every option described (its
default with it, never split mid-word), examples, exit statuses, environment variables."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from memfleet import __version__
from memfleet.cli import main
from memfleet.manpage import ManCommand, ManGroup


def commands(cmd: click.Command = main, path: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], click.Command]
]:  # fmt: skip
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(click.Context(cmd)):
            sub = cmd.get_command(click.Context(cmd), name)
            assert sub is not None
            yield from commands(sub, (*path, name))


ALL = list(commands())
IDS = [" ".join(("memfleet", *p)) for p, _ in ALL]


def flat(text: str) -> str:
    return " ".join(text.split())


def help_of(path: tuple[str, ...], width: int = 80) -> str:
    r = CliRunner().invoke(main, [*path, "--help"], terminal_width=width)
    assert r.exit_code == 0, r.output
    return r.output


def whole_summary(cmd: click.Command) -> str:
    assert cmd.help, "no docstring"
    return flat(cmd.help.split("\n\n", 1)[0])


def test_every_command_is_covered() -> None:
    names = {" ".join(p) for p, _ in ALL}
    for expected in ("up", "status", "down", "fault", "scale", "proxy", "bench", "drill", "render",
                     "config", "node", "node prepare"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_help_reads_like_a_man_page(path: tuple[str, ...], cmd: click.Command, width: int) -> None:
    out = help_of(path, width)
    text = flat(out)
    assert isinstance(cmd, ManCommand | ManGroup), "a man-page command class"
    # The summary of each subcommand, whole (click cuts them at ~45 characters: `heal it,...`).
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            assert f"{name} {whole_summary(sub)}" in text, name
        assert "..." not in out.split("Commands:", 1)[1].split("\n\n", 1)[0]
    assert whole_summary(cmd) in text
    # Every option described, with its default, and nothing split inside a word.
    ctx = click.Context(cmd, info_name=path[-1] if path else "memfleet")
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        assert param.help, f"{param.opts[0]} has no description"
        record = param.get_help_record(ctx)
        assert record is not None
        assert flat(record[1]) in text, f"{param.opts[0]}: cut or split: {record[1]!r}"
        takes_value = not param.is_flag and not param.multiple and not param.required
        if takes_value and param.default is not None:
            assert "[default:" in record[1], f"{param.opts[0]} does not show its default"
    for section in ("Examples:", "Exit status:", "Environment:"):
        assert section in out, section
    assert "$ memfleet" in out  # examples are real command lines


def test_the_environment_is_documented() -> None:
    text = flat(help_of(()))
    for name in ("MEMFLEET_PURE_PYTHON", "MEMFLEET_COMPILE", "XDG_RUNTIME_DIR"):
        assert name in text
    assert "MEMFLEET_ZONE" in flat(help_of(("proxy",)))
    assert "MEMFLEET_SHARD" in flat(help_of(("node",)))


def test_exit_statuses_of_status_are_listed() -> None:
    text = flat(help_of(("status",)))
    assert "0 the proxy and every node are up" in text
    assert "1 degraded" in text and "2 the fleet is not running" in text


def test_version() -> None:
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0
    assert r.output.startswith(f"memfleet {__version__} (hot path: ")
