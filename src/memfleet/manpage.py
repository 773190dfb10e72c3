"""Help that reads like a man page: whole summaries, every default shown, examples, exit
statuses and environment variables for every command.

click cuts a command's summary in the group's list at about 45 characters (``heal it,...``)
and wraps long words anywhere, a default included; the classes here list whole summaries,
wrap only between words, and add the ``Examples``, ``Exit status`` and ``Environment``
sections. Every command of ``memfleet`` uses them (tests/unit/test_help.py checks it).

This module stands beside the packages, not in :mod:`memfleet.cli`: ``memfleet node`` (run as
``python -m memfleet.fleet.node``, without the command line) uses it too.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import click

# What every command reads from its environment (the proxy's own options say theirs).
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("MEMFLEET_PURE_PYTHON=1", "Run the pure-Python sources instead of the compiled hot path."),
    (
        "MEMFLEET_COMPILE=auto|1|0",
        "At install time (pip, ./scripts/setup.sh): compile the hot "
        "path when possible (auto, the default), always (1: fail otherwise) or never (0).",
    ),
    (
        "XDG_RUNTIME_DIR",
        "Where named fleets keep their state (DIR/memfleet); unset: "
        "memfleet-UID in the temporary directory (TMPDIR, else /tmp).",
    ),
)

MAX_WIDTH = 100


class ManFormatter(click.HelpFormatter):
    """click's formatter, but definitions wrap between words only (a long default such as
    a DNS name stays whole instead of being split mid-word)."""

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        """A definition list (options, commands) whose second column wraps at spaces."""
        rows = list(rows)
        first_width = min(max((len(r[0]) for r in rows), default=0), col_max)
        first_col = first_width + col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_width:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            width = max(self.width - first_col - self.current_indent, 20)
            lines = textwrap.wrap(
                " ".join(second.split()), width, break_long_words=False, break_on_hyphens=False
            )
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")

    def write_lines(self, lines: Iterable[str]) -> None:
        """Lines written as they are (examples), at the current indent."""
        for line in lines:
            self.write(f"{'':>{self.current_indent}}{line}\n" if line else "\n")


class ManContext(click.Context):
    """A context whose help uses :class:`ManFormatter`."""

    formatter_class = ManFormatter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_content_width", MAX_WIDTH)
        super().__init__(*args, **kwargs)


def _sections(
    formatter: click.HelpFormatter,
    examples: Sequence[tuple[str, str]],
    exit_codes: Sequence[tuple[int | str, str]],
    environment: Sequence[tuple[str, str]],
) -> None:
    assert isinstance(formatter, ManFormatter)
    if examples:
        with formatter.section("Examples"):
            for command, what in examples:
                formatter.write_lines(f"# {line}" for line in textwrap.wrap(what, 76))
                formatter.write_lines([f"$ {command}", ""])
    if exit_codes:
        with formatter.section("Exit status"):
            formatter.write_dl([(str(code), what) for code, what in exit_codes])
    if environment:
        with formatter.section("Environment"):
            formatter.write_dl(list(environment))


class ManCommand(click.Command):
    """A command with examples, exit statuses and environment variables in its help."""

    context_class = ManContext

    def __init__(
        self,
        *args: Any,
        examples: Sequence[tuple[str, str]] = (),
        exit_codes: Sequence[tuple[int | str, str]] = (),
        environment: Sequence[tuple[str, str]] = ENVIRONMENT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.examples = examples
        self.exit_codes = exit_codes
        self.environment = environment

    def get_short_help_str(self, limit: int = 45) -> str:
        """The whole first sentence, never cut."""
        return _summary(self, super().get_short_help_str(10_000))

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The epilog, then the man-page sections."""
        super().format_epilog(ctx, formatter)
        _sections(formatter, self.examples, self.exit_codes, self.environment)


class ManGroup(click.Group):
    """A group listing its commands' whole summaries, with the man-page sections."""

    context_class = ManContext
    command_class = ManCommand

    def __init__(
        self,
        *args: Any,
        examples: Sequence[tuple[str, str]] = (),
        exit_codes: Sequence[tuple[int | str, str]] = (),
        environment: Sequence[tuple[str, str]] = ENVIRONMENT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.examples = examples
        self.exit_codes = exit_codes
        self.environment = environment

    def get_short_help_str(self, limit: int = 45) -> str:
        """The whole first sentence, never cut."""
        return _summary(self, super().get_short_help_str(10_000))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Every subcommand with its whole summary."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The epilog, then the man-page sections."""
        super().format_epilog(ctx, formatter)
        _sections(formatter, self.examples, self.exit_codes, self.environment)


def _summary(cmd: click.Command, fallback: str) -> str:
    # click keeps only the first sentence of the docstring and cuts it to ``limit``; the
    # summary here is the whole first paragraph (one sentence by convention).
    if cmd.short_help:
        return cmd.short_help
    if cmd.help:
        return " ".join(cmd.help.split("\n\n", 1)[0].split())
    return fallback
