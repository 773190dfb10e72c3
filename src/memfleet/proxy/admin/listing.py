"""The nodes' ``STAT`` listings read into fields, the rules that merge one field's values from
every node into the fleet's value, and the merged listing written back in memcached's format.

A listing is what a node answers a ``stats`` group with: ``STAT <name> <value>`` lines and
``END``. A reply that is not one (an error, ``SERVER_ERROR backend failure`` from a node that
is down) has no fields and is left out of the merge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from memfleet.protocol import errors

_STAT: Final = b"STAT "
_END: Final = errors.END

Fields = list[tuple[bytes, bytes]]
# The values one field has on the nodes that report it (in route-tree order) -> the fleet's.
Rule = Callable[[list[bytes]], bytes]


def is_listing(reply: bytes) -> bool:
    """True for a node's stats listing (``STAT`` lines, ``ITEM`` or ``PREFIX`` lines, or an
    empty one: ``END``), False for an error or a one-line answer."""
    return reply == _END or reply[:5] == _STAT or reply[:5] == b"ITEM " or reply[:7] == b"PREFIX "


def fields(reply: bytes) -> Fields:
    """``(name, value)`` of each ``STAT`` line, in the node's order."""
    out: Fields = []
    for line in reply.split(b"\r\n"):
        if line[:5] == _STAT:
            name, _, value = line[5:].partition(b" ")
            out.append((name, value))
    return out


def render(lines: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``STAT`` lines and ``END``."""
    return b"".join(b"STAT %s %s\r\n" % (k, v) for k, v in lines) + _END


def _number(value: bytes) -> int | float | None:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return None


def _numbers(values: list[bytes]) -> list[int | float] | None:
    out: list[int | float] = []
    for v in values:
        n = _number(v)
        if n is None:
            return None
        out.append(n)
    return out


def _write(n: int | float, like: list[bytes]) -> bytes:
    if isinstance(n, int):
        return b"%d" % n
    # As memcached prints its floating-point fields: the nodes' number of decimals.
    decimals = max((len(v) - v.index(b".") - 1 for v in like if b"." in v), default=6)
    return b"%.*f" % (decimals, n)


def total(values: list[bytes]) -> bytes:
    """Counters and sizes: the sum (a field that is not a number: the first node's)."""
    nums = _numbers(values)
    if nums is None:
        return values[0]
    return _write(sum(nums), values)


def kept(values: list[bytes]) -> bytes:
    """Constants the nodes share (one version, one setting): the first node's value."""
    return values[0]


def largest(values: list[bytes]) -> bytes:
    """The maximum (an age: the oldest item in the fleet; a flag: set on any node)."""
    nums = _numbers(values)
    return values[0] if nums is None else _write(max(nums), values)


def smallest(values: list[bytes]) -> bytes:
    """The minimum (an uptime: the node started last; ``accepting_conns``: all of them)."""
    nums = _numbers(values)
    return values[0] if nums is None else _write(min(nums), values)


def merge_fields(per_node: list[Fields], rule_of: Callable[[bytes], Rule]) -> Fields:
    """One field list from every node's: each name once, in the order names first appear,
    its value by ``rule_of(name)`` over the nodes that report it."""
    values: dict[bytes, list[bytes]] = {}
    for node in per_node:
        for name, value in node:
            values.setdefault(name, []).append(value)
    return [(name, rule_of(name)(vs)) for name, vs in values.items()]


def one_error(replies: list[bytes]) -> bytes:
    """What the client gets when no node answered with a listing: the first node's reply
    (an error every node gave alike, or the first failure)."""
    return replies[0] if replies else _END
