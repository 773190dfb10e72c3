"""The command table: the effects the code computes for each request are the README's.

The integration test (tests/integration/test_policy.py) proves the proxy refuses what the
table says; this one proves the one function the gate asks (``Request.effect_mask``) agrees
with the table row by row, for requests framed by the real parsers, so a change to either side
shows here first, with the row that drifted.
"""

from __future__ import annotations

import re

import pytest

from memfleet.protocol import commands
from memfleet.protocol.binary import BinaryParser
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Request
from tests.integration.test_policy import ROWS, Row, build


def parsed(row: Row) -> Request:
    """The internal request the proxy's own parser makes of a row's bytes."""
    data = build(row).data
    if row.protocol.startswith("binary"):
        [b] = BinaryParser().feed(data)
        assert b.request is not None, row.label()
        return b.request
    reqs = [r for r in RequestParser().feed(data)]
    assert len(reqs) == 1, (row.label(), reqs)
    return reqs[0]


@pytest.mark.parametrize("row", ROWS, ids=[r.label() for r in ROWS])
def test_effects_match_the_readme(row: Row) -> None:
    got = set(commands.effect_names(parsed(row).effect_mask()))
    assert got == set(row.effects), f"{row.label()}: code says {sorted(got)}"


def test_every_effect_is_in_the_table() -> None:
    seen = {e for r in ROWS for e in r.effects}
    assert seen == set(commands.EFFECTS)


@pytest.mark.parametrize(
    ("names", "mask"),
    [
        (["flush_all"], commands.FLUSH),
        (["get", "gets"], commands.READ),
        (["touch", "incr"], commands.TOUCH | commands.INCR),
        (["verbosity"], commands.ADMIN),
    ],
)
def test_deny_list_names(names: list[str], mask: int) -> None:
    assert commands.deny_mask(names) == mask


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gat", "'gat' is a command, not an effect (gat does read + touch)"),
        ("version", "'version' is a command, not an effect (version does nothing deniable)"),
        ("flsh", "'flsh' is not an effect (one of: read, set,"),
    ],
)
def test_deny_list_rejects_what_is_not_an_effect(name: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        commands.deny_mask([name])


def test_every_text_command_has_a_parser_handler() -> None:
    from memfleet.protocol.text_framing import _HANDLERS

    assert set(_HANDLERS) == set(commands.TEXT)
