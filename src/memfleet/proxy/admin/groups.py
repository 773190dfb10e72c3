"""One rule per field: how each ``stats`` group's listings from every node become the one
listing a single memcached holding the whole fleet would give. The README's "Admin commands
over the fleet" section is this module in words.

Every function takes the nodes' replies (in route-tree order; a node that failed gave an
error, which is left out) and returns the client's reply. When no node answered with a
listing, the client gets the first node's reply (an error every node gave alike, or the
failure).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from memfleet.protocol import errors
from memfleet.proxy.admin.listing import (
    Fields,
    Rule,
    fields,
    is_listing,
    kept,
    largest,
    merge_fields,
    one_error,
    render,
    smallest,
    total,
)

# -- plain ``stats`` -------------------------------------------------------------------------

# Fields of one node's process, meaningless for a fleet: the proxy's own are shown instead.
GENERAL_SKIPPED: Final = frozenset((b"pid", b"time", b"version", b"libevent", b"pointer_size"))
GENERAL_RULES: Final[dict[bytes, Rule]] = {
    b"uptime": smallest,  # the node started last
    b"accepting_conns": smallest,  # 1 while every node accepts
    b"hash_power_level": largest,
    b"hash_is_expanding": largest,
    b"slab_reassign_running": largest,
    b"lru_crawler_running": largest,
}
# Every other field (curr_items, bytes, limit_maxbytes, evictions, get_hits...): summed.


def _general_rule(name: bytes) -> Rule:
    return GENERAL_RULES.get(name, total)


def fleet_totals(replies: list[bytes], own: set[bytes]) -> Fields:
    """The nodes' ``stats`` summed into fleet totals, for the proxy's ``stats``: a field the
    proxy does not count itself keeps memcached's name (``curr_items``, ``bytes``,
    ``limit_maxbytes``, ``evictions``...); one it counts too (``get_hits``, ``cmd_get``,
    ``curr_connections``...) is ``fleet_<name>``, next to the proxy's own. ``fleet_nodes``
    says how many nodes were asked, ``fleet_nodes_failed`` how many did not answer."""
    listings = [fields(r) for r in replies if is_listing(r)]
    merged = merge_fields(listings, _general_rule)
    out: Fields = [(b"fleet_nodes", b"%d" % len(replies))]
    out.append((b"fleet_nodes_failed", b"%d" % (len(replies) - len(listings))))
    for name, value in merged:
        if name in GENERAL_SKIPPED:
            continue
        out.append((b"fleet_" + name if name in own else name, value))
    return out


# -- ``stats settings`` ----------------------------------------------------------------------


def settings(replies: list[bytes], own: dict[bytes, bytes]) -> bytes:
    """The proxy's settings in memcached's format: the nodes' settings (each the first
    node's: one version and one configuration agree), ``maxbytes`` summed over the nodes,
    then the proxy's own values over them (``own``: maxconns, item_size_max, tcpport...)."""
    listings = [fields(r) for r in replies if is_listing(r)]
    merged = merge_fields(listings, lambda name: total if name == b"maxbytes" else kept)
    out = [(name, own.get(name, value)) for name, value in merged]
    seen = {name for name, _ in merged}
    out += [(name, value) for name, value in own.items() if name not in seen]
    if b"maxbytes" not in seen:
        out.insert(0, (b"maxbytes", b"0"))
    return render(out)


# -- ``stats slabs``, ``stats items``, ``stats sizes`` ---------------------------------------

_CLASS_FIELD = re.compile(rb"^(?:(items):)?(\d+):(\w+)$")

SLAB_RULES: Final[dict[bytes, Rule]] = {
    b"chunk_size": kept,  # a class's size is the same on every node of one version/settings
    b"chunks_per_page": kept,
}
# Every other per-class field of ``stats slabs`` (pages, chunks, hits): summed.
# Totals: ``active_slabs`` is counted again over the merged classes, the rest summed.

ITEM_RULES: Final[dict[bytes, Rule]] = {
    b"age": largest,  # the oldest item of the class in the fleet
    b"age_hot": largest,
    b"age_warm": largest,
}
# ``evicted_time``: the smallest over the nodes that evicted from the class (the most recent
# eviction in the fleet), 0 when none did. Every other per-class field: summed.


def _by_class(
    listings: list[Fields],
) -> tuple[dict[int, list[Fields]], list[Fields], bytes]:
    """Per class number, every node's fields of that class; the fields of no class; the
    line prefix (``items:`` for ``stats items``)."""
    classes: dict[int, list[Fields]] = {}
    rest: list[Fields] = []
    prefix = b""
    for node in listings:
        mine: dict[int, Fields] = {}
        other: Fields = []
        for name, value in node:
            m = _CLASS_FIELD.match(name)
            if m is None:
                other.append((name, value))
                continue
            if m.group(1):
                prefix = b"items:"
            mine.setdefault(int(m.group(2)), []).append((m.group(3), value))
        for cls, fs in mine.items():
            classes.setdefault(cls, []).append(fs)
        rest.append(other)
    return classes, rest, prefix


def _merge_classes(
    replies: list[bytes], class_rule: Callable[[list[Fields]], Fields]
) -> tuple[Fields, list[Fields]] | None:
    listings = [fields(r) for r in replies if is_listing(r)]
    if not listings:
        return None
    classes, rest, prefix = _by_class(listings)
    out: Fields = []
    for cls in sorted(classes):
        head = prefix + b"%d:" % cls
        out += [(head + name, value) for name, value in class_rule(classes[cls])]
    return out, rest


def _slab_class(nodes: list[Fields]) -> Fields:
    return merge_fields(nodes, lambda name: SLAB_RULES.get(name, total))


def slabs(replies: list[bytes]) -> bytes:
    """``stats slabs``: per class, the sizes kept and the counts summed; ``active_slabs`` the
    number of classes any node uses, ``total_malloced`` summed."""
    merged = _merge_classes(replies, _slab_class)
    if merged is None:
        return one_error(replies)
    out, rest = merged
    n_classes = len({name.split(b":", 1)[0] for name, _ in out})
    for name, value in merge_fields(rest, lambda _name: total):
        out.append((name, b"%d" % n_classes if name == b"active_slabs" else value))
    return render(out)


def _item_class(nodes: list[Fields]) -> Fields:
    merged = merge_fields(nodes, lambda name: ITEM_RULES.get(name, total))
    times = []
    for node in nodes:
        values = dict(node)
        if values.get(b"evicted", b"0") != b"0" and b"evicted_time" in values:
            times.append(values[b"evicted_time"])
    last = smallest(times) if times else b"0"
    return [(name, last if name == b"evicted_time" else value) for name, value in merged]


def items(replies: list[bytes]) -> bytes:
    """``stats items``: per class, the ages the largest, ``evicted_time`` the most recent
    eviction's, every count summed."""
    merged = _merge_classes(replies, _item_class)
    if merged is None:
        return one_error(replies)
    out, rest = merged
    return render(out + merge_fields(rest, lambda _name: total))


def sizes(replies: list[bytes]) -> bytes:
    """``stats sizes``: ``sizes_status`` the first node's, the item count of each size
    summed, sizes in increasing order."""
    listings = [fields(r) for r in replies if is_listing(r)]
    if not listings:
        return one_error(replies)
    merged = merge_fields(listings, lambda name: total if name.isdigit() else kept)
    named = [(k, v) for k, v in merged if not k.isdigit()]
    numbered = sorted(((k, v) for k, v in merged if k.isdigit()), key=lambda kv: int(kv[0]))
    return render(named + numbered)


def switch_lines(reply: bytes) -> bytes:
    """A node's answer to ``stats sizes_enable``/``sizes_disable`` from the reply it gave
    with ``stats sizes`` sent after it: the lines up to its ``sizes_status`` line, and the
    ``sizes_error`` line memcached adds to an ``error`` status (no ``END``, as memcached)."""
    lines = reply.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.startswith(b"STAT sizes_status "):
            if line.endswith(b" error") and lines[i + 1].startswith(b"STAT sizes_error "):
                i += 1
            return b"".join(x + b"\r\n" for x in lines[: i + 1])
    return reply


def sizes_switch(replies: list[bytes]) -> bytes:
    """``stats sizes_enable``/``sizes_disable``: the first node's answer, or the first one
    that differs from it (a node that could not switch)."""
    heads = [switch_lines(r) for r in replies if r.startswith(b"STAT ")]
    if not heads:
        return one_error(replies)
    for h in heads:
        if h != heads[0]:
            return h
    return heads[0]


# -- ``stats detail dump``, ``stats cachedump`` ----------------------------------------------


def detail_dump(replies: list[bytes]) -> bytes:
    """``stats detail dump``: one ``PREFIX`` line per prefix, each count summed over the
    nodes, prefixes in the order they first appear."""
    listings = [r for r in replies if is_listing(r)]
    if not listings:
        return one_error(replies)
    counts: dict[bytes, dict[bytes, int]] = {}
    for reply in listings:
        for line in reply.split(b"\r\n"):
            parts = line.split(b" ")
            if parts[0] != b"PREFIX" or len(parts) < 2:
                continue
            mine = counts.setdefault(parts[1], {})
            for name, value in zip(parts[2::2], parts[3::2], strict=False):
                if value.isdigit():
                    mine[name] = mine.get(name, 0) + int(value)
    out = []
    for prefix, mine in counts.items():
        body = b" ".join(b"%s %d" % kv for kv in mine.items())
        out.append(b"PREFIX %s %s\r\n" % (prefix, body))
    return b"".join(out) + errors.END


def cachedump(replies: list[bytes]) -> bytes:
    """``stats cachedump N M``: each node's ``ITEM`` lines (up to M from each), node after
    node, then one ``END``."""
    listings = [r for r in replies if is_listing(r)]
    if not listings:
        return one_error(replies)
    return b"".join(r[: -len(errors.END)] for r in listings) + errors.END


def all_done(success: bytes) -> Callable[[list[bytes]], bytes]:
    """For a command that changes every node (``stats detail on``, ``verbosity``,
    ``cache_memlimit``, ``stats reset``): ``success`` once every node answered it, else the
    first other answer."""

    def merge(replies: list[bytes]) -> bytes:
        for r in replies:
            if r != success:
                return r
        return success

    return merge
