"""The command table: what each memcached command is, in one place.

Every layer reads this module instead of keeping its own list: the parser (which handler frames
a command), the routes (which commands write, what a null or an async route answers), the
config checks (which names a ``commands`` route and the deny-list accept), the stats counters
and the binary translation (which opcode is which command). A rule written twice drifts: the
deny-list once stopped the text ``flush_all`` and let the binary Flush through.

Effects are what a request does to the cache, whatever protocol spells it. ``deny_commands``
lists effects, and a request is refused when any of its effects is denied; ``effects_of`` is
the one function that computes them (the README's table is checked against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

# -- effects -------------------------------------------------------------------------------

READ: Final = 1 << 0
SET: Final = 1 << 1
ADD: Final = 1 << 2
REPLACE: Final = 1 << 3
APPEND: Final = 1 << 4
PREPEND: Final = 1 << 5
CAS: Final = 1 << 6
DELETE: Final = 1 << 7
INCR: Final = 1 << 8
DECR: Final = 1 << 9
TOUCH: Final = 1 << 10
FLUSH: Final = 1 << 11
STATS: Final = 1 << 12
ADMIN: Final = 1 << 13

# Effect names as ``deny_commands`` spells them, in the README's order.
EFFECTS: Final[dict[str, int]] = {
    "read": READ,
    "set": SET,
    "add": ADD,
    "replace": REPLACE,
    "append": APPEND,
    "prepend": PREPEND,
    "cas": CAS,
    "delete": DELETE,
    "incr": INCR,
    "decr": DECR,
    "touch": TOUCH,
    "flush": FLUSH,
    "stats": STATS,
    "admin": ADMIN,
}

# Older deny-list spellings that name exactly one effect.
EFFECT_ALIASES: Final[dict[str, str]] = {
    "get": "read",
    "gets": "read",
    "flush_all": "flush",
    "verbosity": "admin",
}


def effect_names(mask: int) -> list[str]:
    """The names of the effects in ``mask``, in table order."""
    return [name for name, bit in EFFECTS.items() if mask & bit]


def deny_mask(names: list[str]) -> int:
    """The effects a deny-list denies. ValueError (naming the entry) for a name that is not
    an effect, with the effects that command is made of when it is a command."""
    mask = 0
    for name in names:
        effect = EFFECT_ALIASES.get(name, name)
        bit = EFFECTS.get(effect)
        if bit is None:
            cmd = TEXT.get(name.encode())
            if cmd is not None:
                parts = " + ".join(effect_names(cmd.effects)) or "nothing deniable"
                raise ValueError(
                    f"{name!r} is a command, not an effect ({name} does {parts}); "
                    f"deny the effect to stop it"
                )
            raise ValueError(f"{name!r} is not an effect (one of: {', '.join(EFFECTS)})")
        mask |= bit
    return mask


# -- commands ------------------------------------------------------------------------------


class Family(IntEnum):
    """How a command is framed and routed."""

    GET = 1  # get/gets/gat/gats: many keys, split per backend and merged in key order
    STORE = 2  # set/add/replace/append/prepend/cas: a command line plus a data block
    KEYED = 3  # one key, one line: delete, incr, decr, touch
    META = 4  # mg/md/ma/me: one key, flags
    META_SET = 5  # ms: one key, flags, a data block
    LOCAL = 6  # answered by the proxy (from the nodes' answers where they concern the nodes)
    FLUSH = 7  # flush_all: every backend the route tree reaches


@dataclass(frozen=True, slots=True)
class Command:
    """One text or meta command.

    ``effects`` are the effects of the plain form (flags add to a meta command's, see
    ``effects_of``); ``counter`` is the proxy's ``stats`` counter it bumps; ``success`` is the
    reply a successful write gives (what ``allasync`` answers at once, empty for reads);
    ``null_reply`` what a route that stores nothing answers; ``quiet_hides`` the reply code
    the meta ``q`` flag hides.
    """

    name: bytes
    family: Family
    effects: int
    counter: str
    success: bytes = b""
    null_reply: bytes = b"END\r\n"
    quiet_hides: bytes = b""

    @property
    def writes(self) -> bool:
        """True for a command that may change the cache (a replica that missed it is stale)."""
        return bool(self.effects & WRITE_EFFECTS)

    @property
    def routable(self) -> bool:
        """True for a command that reaches a backend through the route tree by its key (a
        ``commands`` route may map it)."""
        return self.family in (Family.GET, Family.STORE, Family.KEYED, Family.META, Family.META_SET)


WRITE_EFFECTS: Final = SET | ADD | REPLACE | APPEND | PREPEND | CAS | DELETE | INCR | DECR | TOUCH

_STORED = b"STORED\r\n"
_NOT_STORED = b"NOT_STORED\r\n"
_NOT_FOUND = b"NOT_FOUND\r\n"

_COMMANDS: Final = (
    Command(b"get", Family.GET, READ, "cmd_get"),
    Command(b"gets", Family.GET, READ, "cmd_get"),
    Command(b"gat", Family.GET, READ | TOUCH, "cmd_get"),
    Command(b"gats", Family.GET, READ | TOUCH, "cmd_get"),
    Command(b"set", Family.STORE, SET, "cmd_set", _STORED, _NOT_STORED),
    Command(b"add", Family.STORE, ADD, "cmd_set", _STORED, _NOT_STORED),
    Command(b"replace", Family.STORE, REPLACE, "cmd_set", _STORED, _NOT_STORED),
    Command(b"append", Family.STORE, APPEND, "cmd_set", _STORED, _NOT_STORED),
    Command(b"prepend", Family.STORE, PREPEND, "cmd_set", _STORED, _NOT_STORED),
    Command(b"cas", Family.STORE, CAS, "cmd_set", _STORED, _NOT_FOUND),
    Command(b"delete", Family.KEYED, DELETE, "cmd_other", b"DELETED\r\n", _NOT_FOUND),
    Command(b"incr", Family.KEYED, INCR, "cmd_other", b"", _NOT_FOUND),
    Command(b"decr", Family.KEYED, DECR, "cmd_other", b"", _NOT_FOUND),
    Command(b"touch", Family.KEYED, TOUCH, "cmd_touch", b"TOUCHED\r\n", _NOT_FOUND),
    # A meta get counts as itself (``command_mg``), not in cmd_get: cmd_get counts the keys of
    # get-family requests, which the metrics export as command "get".
    Command(b"mg", Family.META, READ, "cmd_other", b"", b"EN\r\n", b"EN"),
    Command(b"ms", Family.META_SET, SET, "cmd_set", b"HD\r\n", b"NS\r\n", b"HD"),
    Command(b"md", Family.META, DELETE, "cmd_other", b"HD\r\n", b"NF\r\n", b"HD"),
    Command(b"ma", Family.META, INCR, "cmd_other", b"", b"NF\r\n", b"HD"),
    Command(b"me", Family.META, READ, "cmd_other", b"", b"EN\r\n"),
    Command(b"mn", Family.LOCAL, 0, ""),
    Command(b"flush_all", Family.FLUSH, FLUSH, "cmd_flush"),
    Command(b"stats", Family.LOCAL, STATS, ""),
    Command(b"verbosity", Family.LOCAL, ADMIN, ""),
    Command(b"cache_memlimit", Family.LOCAL, ADMIN, ""),
    Command(b"version", Family.LOCAL, 0, ""),
    Command(b"quit", Family.LOCAL, 0, ""),
)

TEXT: Final[dict[bytes, Command]] = {c.name: c for c in _COMMANDS}

# Names a ``commands`` route may map (everything else is answered by the proxy or fans out).
ROUTABLE: Final = frozenset(c.name.decode() for c in _COMMANDS if c.routable)
# Commands that change the cache: a replica that did not acknowledge one is stale.
WRITES: Final = frozenset(c.name for c in _COMMANDS if c.writes)
# The meta ``q`` flag hides these reply codes (memcached 1.6: mg a miss, ms/md/ma a success).
QUIET_HIDES: Final[dict[bytes, bytes]] = {c.name: c.quiet_hides for c in _COMMANDS if c.quiet_hides}
# Reply of a successful write, by command (empty for reads and arithmetic, whose reply is data).
SUCCESS: Final[dict[bytes, bytes]] = {c.name: c.success for c in _COMMANDS if c.success}
# What a route that stores nothing answers, by command.
NULL_REPLY: Final[dict[bytes, bytes]] = {c.name: c.null_reply for c in _COMMANDS if c.routable}
# The ``stats`` counter each command bumps.
COUNTER: Final[dict[bytes, str]] = {c.name: c.counter for c in _COMMANDS}
# Storage commands whose exptime is the third argument (the gutter's TTL cap rewrites it).
TEXT_STORES: Final = frozenset(c.name for c in _COMMANDS if c.family is Family.STORE)

# Meta mode tokens (``M<x>``), case-insensitive as memcached reads them.
_MS_MODES: Final[dict[bytes, int]] = {
    b"S": SET, b"s": SET, b"E": ADD, b"e": ADD, b"R": REPLACE, b"r": REPLACE,
    b"A": APPEND, b"a": APPEND, b"P": PREPEND, b"p": PREPEND,
}  # fmt: skip
_MA_MODES: Final[dict[bytes, int]] = {
    b"I": INCR, b"i": INCR, b"+": INCR, b"D": DECR, b"d": DECR, b"-": DECR,
}  # fmt: skip


def meta_effects(cmd: bytes, flags: list[bytes]) -> int:
    """The effects of a meta request with these flags (the tokens after the key; for ``ms``
    the data length first)."""
    if cmd == b"mg":
        mask = READ
        for f in flags:
            c = f[:1]
            if c == b"T":
                mask |= TOUCH
            elif c == b"N":
                mask |= ADD  # creates the item on a miss
        return mask
    if cmd == b"ms":
        mode = SET
        extra = 0
        for f in flags[1:]:
            c = f[:1]
            if c == b"M":
                mode = _MS_MODES.get(f[1:2], SET)
            elif c == b"C":
                extra |= CAS
            elif c == b"N":
                extra |= ADD  # append/prepend mode: creates the item on a miss
        if mode == SET and extra & CAS:
            mode = 0  # a set that compares a CAS is a cas, as the text ``cas`` is
        if not mode & (APPEND | PREPEND):
            extra &= ~ADD
        return mode | extra
    if cmd == b"md":
        mask = DELETE
        for f in flags:
            c = f[:1]
            if c == b"C":
                mask |= CAS
            elif c == b"T":
                mask |= TOUCH  # with I: the stale item's TTL changes
        return mask
    if cmd == b"ma":
        mode = INCR
        extra = 0
        for f in flags:
            c = f[:1]
            if c == b"M":
                mode = _MA_MODES.get(f[1:2], INCR)
            elif c == b"N":
                extra |= ADD
            elif c == b"T":
                extra |= TOUCH
            elif c == b"C":
                extra |= CAS
        return mode | extra
    entry = TEXT.get(cmd)
    return entry.effects if entry is not None else 0


# ``stats`` groups that do more than read counters: they change what the nodes do
# (admin), or list the keys the nodes hold (read).
_STATS_GROUPS: Final[dict[bytes, int]] = {
    b"sizes_enable": STATS | ADMIN,
    b"sizes_disable": STATS | ADMIN,
    b"cachedump": STATS | READ,
}


def stats_effects(args: list[bytes]) -> int:
    """The effects of ``stats <args>``: reading counters, unless the group changes the
    nodes (``detail on|off``, ``sizes_enable``...) or lists their keys (``cachedump``). One
    node asked by name (``stats @HOST:PORT <group>``) is the group's effects."""
    if args and args[0][:1] == b"@":
        args = args[1:]
    if not args:
        return STATS
    group = args[0]
    if group == b"detail":
        return STATS | ADMIN if args[1:2] in ([b"on"], [b"off"]) else STATS
    return _STATS_GROUPS.get(group, STATS)


def effects_of(cmd: bytes, args: list[bytes]) -> int:
    """The effects of a text or meta request: its command and its arguments (the tokens
    after the command name)."""
    entry = TEXT.get(cmd)
    if entry is None:
        return 0
    if entry.family is Family.META or entry.family is Family.META_SET:
        return meta_effects(cmd, args[1:])
    if cmd == b"stats":
        return stats_effects(args)
    return entry.effects


# Names memcached dispatches on before its unknown-command branch: every name of these first
# letters, the meta commands (two letters, ``m`` first) and these names (memcached 1.6,
# ``process_command_ascii``). Only a line none of them takes can be closed as HTTP.
_DISPATCHED_LETTERS: Final = frozenset(b"gsacidt")
_DISPATCHED_NAMES: Final = frozenset(
    (b"replace", b"prepend", b"bget", b"flush_all", b"version", b"quit", b"lru_crawler",
     b"watch", b"verbosity", b"lru", b"extstore", b"refresh_certs")
)  # fmt: skip
# memcached tokenizes at most 23 tokens; the rest of a longer line is not split.
_MAX_TOKENS: Final = 23


def looks_like_http(tokens: list[bytes]) -> bool:
    """memcached's rule for an unknown command: it hangs up without a word when the last
    token starts with ``HTTP/`` (``GET / HTTP/1.0``), so a browser or an HTTP health check
    pointed at the port does not get a stream of ``ERROR`` lines. A known command keeps its
    meaning (``get / HTTP/1.0`` is a get of two keys)."""
    name = tokens[0]
    if len(name) < 2 or name[0] in _DISPATCHED_LETTERS or name in _DISPATCHED_NAMES:
        return False
    if name[0] == 109 and len(name) == 2:  # "m?": meta
        return False
    return tokens[min(len(tokens), _MAX_TOKENS) - 1].startswith(b"HTTP/")


# -- binary opcodes ------------------------------------------------------------------------


class Op(IntEnum):
    """Binary protocol opcodes (memcached's ``protocol_binary.h``)."""

    GET = 0x00
    SET = 0x01
    ADD = 0x02
    REPLACE = 0x03
    DELETE = 0x04
    INCREMENT = 0x05
    DECREMENT = 0x06
    QUIT = 0x07
    FLUSH = 0x08
    GETQ = 0x09
    NOOP = 0x0A
    VERSION = 0x0B
    GETK = 0x0C
    GETKQ = 0x0D
    APPEND = 0x0E
    PREPEND = 0x0F
    STAT = 0x10
    SETQ = 0x11
    ADDQ = 0x12
    REPLACEQ = 0x13
    DELETEQ = 0x14
    INCREMENTQ = 0x15
    DECREMENTQ = 0x16
    QUITQ = 0x17
    FLUSHQ = 0x18
    APPENDQ = 0x19
    PREPENDQ = 0x1A
    VERBOSITY = 0x1B
    TOUCH = 0x1C
    GAT = 0x1D
    GATQ = 0x1E
    SASL_LIST_MECHS = 0x20
    SASL_AUTH = 0x21
    SASL_STEP = 0x22
    GATK = 0x23
    GATKQ = 0x24


@dataclass(frozen=True, slots=True)
class BinaryCommand:
    """One binary opcode: the command it is a quiet form of, the text/meta command the proxy
    sends for it, and its effects (a CAS or an auto-create add to them: ``binary_effects``)."""

    op: Op
    base: Op
    sends: bytes
    effects: int

    @property
    def quiet(self) -> bool:
        """True for a quiet opcode (GetQ, SetQ...): success (or a get's miss) is not sent."""
        return self.op != self.base


_BINARY: Final = (
    BinaryCommand(Op.GET, Op.GET, b"mg", READ),
    BinaryCommand(Op.GETQ, Op.GET, b"mg", READ),
    BinaryCommand(Op.GETK, Op.GETK, b"mg", READ),
    BinaryCommand(Op.GETKQ, Op.GETK, b"mg", READ),
    BinaryCommand(Op.GAT, Op.GAT, b"mg", READ | TOUCH),
    BinaryCommand(Op.GATQ, Op.GAT, b"mg", READ | TOUCH),
    BinaryCommand(Op.GATK, Op.GATK, b"mg", READ | TOUCH),
    BinaryCommand(Op.GATKQ, Op.GATK, b"mg", READ | TOUCH),
    BinaryCommand(Op.TOUCH, Op.TOUCH, b"mg", TOUCH),
    BinaryCommand(Op.SET, Op.SET, b"ms", SET),
    BinaryCommand(Op.SETQ, Op.SET, b"ms", SET),
    BinaryCommand(Op.ADD, Op.ADD, b"ms", ADD),
    BinaryCommand(Op.ADDQ, Op.ADD, b"ms", ADD),
    BinaryCommand(Op.REPLACE, Op.REPLACE, b"ms", REPLACE),
    BinaryCommand(Op.REPLACEQ, Op.REPLACE, b"ms", REPLACE),
    BinaryCommand(Op.APPEND, Op.APPEND, b"ms", APPEND),
    BinaryCommand(Op.APPENDQ, Op.APPEND, b"ms", APPEND),
    BinaryCommand(Op.PREPEND, Op.PREPEND, b"ms", PREPEND),
    BinaryCommand(Op.PREPENDQ, Op.PREPEND, b"ms", PREPEND),
    BinaryCommand(Op.DELETE, Op.DELETE, b"md", DELETE),
    BinaryCommand(Op.DELETEQ, Op.DELETE, b"md", DELETE),
    BinaryCommand(Op.INCREMENT, Op.INCREMENT, b"ma", INCR),
    BinaryCommand(Op.INCREMENTQ, Op.INCREMENT, b"ma", INCR),
    BinaryCommand(Op.DECREMENT, Op.DECREMENT, b"ma", DECR),
    BinaryCommand(Op.DECREMENTQ, Op.DECREMENT, b"ma", DECR),
    BinaryCommand(Op.FLUSH, Op.FLUSH, b"flush_all", FLUSH),
    BinaryCommand(Op.FLUSHQ, Op.FLUSH, b"flush_all", FLUSH),
    BinaryCommand(Op.STAT, Op.STAT, b"stats", STATS),
    BinaryCommand(Op.VERBOSITY, Op.VERBOSITY, b"verbosity", ADMIN),
    BinaryCommand(Op.NOOP, Op.NOOP, b"mn", 0),
    BinaryCommand(Op.VERSION, Op.VERSION, b"version", 0),
    BinaryCommand(Op.QUIT, Op.QUIT, b"quit", 0),
    BinaryCommand(Op.QUITQ, Op.QUIT, b"quit", 0),
    BinaryCommand(Op.SASL_LIST_MECHS, Op.SASL_LIST_MECHS, b"", 0),
    BinaryCommand(Op.SASL_AUTH, Op.SASL_AUTH, b"", 0),
    BinaryCommand(Op.SASL_STEP, Op.SASL_STEP, b"", 0),
)

BINARY: Final[dict[int, BinaryCommand]] = {int(c.op): c for c in _BINARY}
# Quiet opcode -> the command it is a quiet form of.
QUIET_OF: Final[dict[int, int]] = {int(c.op): int(c.base) for c in _BINARY if c.quiet}
# Incr/decr with this expiration fail on a miss instead of creating the item.
NO_AUTO_CREATE: Final = 0xFFFFFFFF


# Opcodes whose CAS field makes them conditional on the item's CAS.
_CAS_BASES: Final = frozenset(
    {Op.SET, Op.ADD, Op.REPLACE, Op.APPEND, Op.PREPEND, Op.DELETE, Op.INCREMENT, Op.DECREMENT}
)


def binary_effects(op: int, cas: int, arith_expiration: int = NO_AUTO_CREATE) -> int:
    """The effects of a binary request: its opcode's, a CAS (a Set with one is a cas, as
    memcached stores it), and an Increment/Decrement that may create the item (an add)."""
    entry = BINARY.get(op)
    if entry is None:
        return 0
    mask = entry.effects
    base = entry.base
    if cas and base in _CAS_BASES:
        mask = CAS if base == Op.SET else mask | CAS
    if (base == Op.INCREMENT or base == Op.DECREMENT) and arith_expiration != NO_AUTO_CREATE:
        mask |= ADD
    return mask
